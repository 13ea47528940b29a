/*
 * lockfree family: WaitGroup (sync.WaitGroup). One atomic counter; Wait
 * spins with pause, then yields, re-reading the counter and checking its
 * ctx (and deadline) as it goes. Nobody sleeps in the kernel, so Add has
 * nobody to wake: reaching 0 is the whole signal.
 *
 * Invariants: count >= 0 after every add (a negative count aborts, as Go
 * panics); Wait returns CP_OK only after it read count == 0. Reuse: a Wait
 * that misses a 0 because a new Add came first waits for the next 0.
 *
 * Orderings: every add is an acq_rel RMW, so the adds form one release
 * sequence; Wait's acquire load that reads 0 synchronises with all of them
 * (Done happens before Wait returns).
 */
#include "adapter.h"

#include <errno.h>

struct cp_wg {
    const cp_backend *b;
    CP_ALIGNED _Atomic int64_t count;
};

cp_wg *cp_lockfree_wg_new(const cp_backend *b)
{
    if (b != &cp_backend_lockfree) { errno = EINVAL; return NULL; }
    cp_wg *wg = cp__zalloc(sizeof *wg);
    if (!wg) return NULL;
    wg->b = b;
    atomic_init(&wg->count, 0);
    return wg;
}

void cp_lockfree_wg_free(cp_wg *wg) { free(wg); }

__attribute__((noreturn, cold)) static void wg_negative(void)
{
    fputs("libcp: negative WaitGroup counter\n", stderr);
    abort();
}

void cp_lockfree_wg_add(cp_wg *wg, int64_t delta)
{
    int64_t v = atomic_fetch_add_explicit(&wg->count, delta, memory_order_acq_rel) + delta;
    if (cp_unlikely(v < 0)) wg_negative();
}

void cp_lockfree_wg_done(cp_wg *wg) { cp_lockfree_wg_add(wg, -1); }

cp_status cp_lockfree_wg_wait(cp_wg *wg, cp_ctx *ctx)
{
    if (ctx && ctx->b != wg->b) return CP_EINVAL;
    bool spin = cp_spin_begin();
    cp_status st = CP_OK;
    for (unsigned n = 0;; n++) {
        if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0) break;
        if ((n & 15) == 0 && (st = cp__ctx_err_fast(ctx))) break;
        if (spin && n < LF_SPIN * 16) cp_cpu_relax();
        else sched_yield();
    }
    if (spin) cp_spin_end();
    return st;
}
