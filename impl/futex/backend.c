/* The futex family's backend table: how generic code reaches it; and the
 * start-up probe of futex_waitv(2), which its select parks with. */
#include "adapter.h"

#include <string.h>

int cp__futex_waitv;

/* The description, completed by the probe below with what select does. */
static char fx_describe[256] =
    "lock-free ring; waiters spin briefly, then FUTEX_WAIT on an event count (wake only if parked)";

/* Once, before main: a kernel with futex_waitv(2) refuses an empty list
 * with EINVAL; one without it says ENOSYS, and a seccomp filter that
 * forbids it something else (EPERM): both mean "not available". Nothing is
 * running yet, so the plain int is safe; afterwards it is only read. */
__attribute__((constructor)) static void fx_probe_waitv(void)
{
    int saved = errno;
    long r = syscall(SYS_futex_waitv, NULL, 0u, 0u, NULL, CLOCK_MONOTONIC);
    cp__futex_waitv = r == -1 && errno == EINVAL;
    errno = saved;
    size_t n = strlen(fx_describe);
    snprintf(fx_describe + n, sizeof fx_describe - n, "%s",
             cp__futex_waitv ? "; select parks with futex_waitv(2)"
                             : "; no futex_waitv(2): select re-checks its rings every 1 ms");
    if (!cp__futex_waitv)
        fputs("libcp: futex_waitv(2) unavailable (Linux < 5.16, or forbidden): futex select falls "
              "back to 1 ms futex waits on its waiter word, re-checking buffered channels in "
              "between\n", stderr);
}

const cp_backend cp_backend_futex = {
    .name = "futex",
    .describe = fx_describe,
    CP_WAITER_OPS(futex)
    CP_FAMILY_OPS(futex),
};
