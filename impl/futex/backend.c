/* The futex family's backend table: how generic code reaches it; the
 * start-up probes of futex_waitv(2), which its select parks with, and of
 * membarrier(2), which its internal lock's slow path uses (cp_flock); and
 * that slow path. */
#include "adapter.h"

#include <linux/membarrier.h>
#include <string.h>

int cp__futex_waitv;
int cp__fx_membarrier;

/* cp_flock's slow path (adapter.h): spin, then announce, barrier, try, sleep. */
void cp__fx_flock_slow(cp_flock *l)
{
    for (int i = 0; i < FX_SPIN; i++) {
        cp_cpu_relax();
        if (!atomic_load_explicit(&l->v, memory_order_relaxed) &&
            !atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
            return;
    }
    for (;;) {
        atomic_fetch_add_explicit(&l->sleepers, 1, memory_order_seq_cst);
        if (!cp__fx_membarrier)
            atomic_thread_fence(memory_order_seq_cst);  /* the plain Dekker pair */
        else if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
            cp_die("membarrier: errno %d", errno);
        bool got = !atomic_exchange_explicit(&l->v, 1, memory_order_acquire);
        if (!got) cp_futex_wait(&l->v, 1, 0);
        atomic_fetch_sub_explicit(&l->sleepers, 1, memory_order_relaxed);
        if (got || !atomic_exchange_explicit(&l->v, 1, memory_order_acquire)) return;
    }
}

/* The description, completed by the probe below with what select does. */
static char fx_describe[256] =
    "lock-free ring; waiters spin briefly, then FUTEX_WAIT on an event count (wake only if parked)";

/* Once, before main: membarrier's registration for PRIVATE_EXPEDITED
 * succeeds on Linux 4.14+ (without it, cp_flock fences). A kernel with
 * futex_waitv(2) refuses an empty list
 * with EINVAL; one without it says ENOSYS, and a seccomp filter that
 * forbids it something else (EPERM): both mean "not available". Nothing is
 * running yet, so the plain int is safe; afterwards it is only read. */
__attribute__((constructor)) static void fx_probe_waitv(void)
{
    int saved = errno;
    const char *off = getenv("CP_NO_MEMBARRIER");   /* tests of the fenced unlock */
    cp__fx_membarrier = !(off && *off) &&
                        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    long r = syscall(SYS_futex_waitv, NULL, 0u, 0u, NULL, CLOCK_MONOTONIC);
    cp__futex_waitv = r == -1 && errno == EINVAL;
    errno = saved;
    size_t n = strlen(fx_describe);
    snprintf(fx_describe + n, sizeof fx_describe - n, "%s%s",
             cp__futex_waitv ? "; select parks with futex_waitv(2)"
                             : "; no futex_waitv(2): select re-checks its rings every 1 ms",
             cp__fx_membarrier ? "" : "; no membarrier(2): the internal lock's unlock fences");
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
