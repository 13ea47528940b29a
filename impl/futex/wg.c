/*
 * futex family: WaitGroup (sync.WaitGroup). A counter and an event count
 * (futex.h's cp_ec: generation << 1 | waiters flag) on separate lines.
 *
 * Invariants:
 *   - count >= 0 after every add (a negative count aborts, as Go panics);
 *   - a waiter sleeps only on an ec value it read (with the flag set) before
 *     its last check of count and of its ctx; an add that brings count to 0
 *     signals the ec, which bumps the generation and wakes every sleeper iff
 *     the flag is set. The seq_cst fences inside cp_ec_prepare/cp_ec_signal
 *     are the Dekker pair: either the waiter's re-check sees count == 0, or
 *     the adder sees the flag. A cancel kicks the ec the same way, after it
 *     has set the ctx's error.
 *   - Wait returns CP_OK when it sees count == 0. Reuse is allowed: a Wait
 *     that sleeps through a 0 and a new Add waits for the next 0 (Go would
 *     call that misuse and panic; here it is only a longer wait).
 *
 * Orderings: every add is an acq_rel RMW on count, so the RMWs form one
 * release sequence and Wait's acquire load that reads 0 makes everything
 * the Done-ers did before Done visible (Go: Done happens before Wait
 * returns). The ec carries no data.
 */
#include "adapter.h"

struct cp_wg {
    const cp_backend *b;
    CP_ALIGNED _Atomic int64_t count;
    CP_ALIGNED cp_ec ec;
};

cp_wg *cp_futex_wg_new(const cp_backend *b)
{
    if (b != &cp_backend_futex) { errno = EINVAL; return NULL; }
    cp_wg *wg = cp__zalloc(sizeof *wg);
    if (!wg) return NULL;
    wg->b = b;
    atomic_init(&wg->count, 0);
    atomic_init(&wg->ec.w, 0);
    return wg;
}

void cp_futex_wg_free(cp_wg *wg) { free(wg); }

__attribute__((noreturn, cold)) static void wg_negative(void)
{
    fputs("libcp: negative WaitGroup counter\n", stderr);
    abort();
}

void cp_futex_wg_add(cp_wg *wg, int64_t delta)
{
    int64_t v = atomic_fetch_add_explicit(&wg->count, delta, memory_order_acq_rel) + delta;
    if (cp_unlikely(v < 0)) wg_negative();
    if (v == 0) cp_ec_signal(&wg->ec);
}

void cp_futex_wg_done(cp_wg *wg) { cp_futex_wg_add(wg, -1); }

static void kick_ec(cp_wnode *n) { cp_ec_signal(n->arg); }

static inline bool wg_zero(cp_wg *wg)
{
    return atomic_load_explicit(&wg->count, memory_order_acquire) == 0;
}

cp_status cp_futex_wg_wait(cp_wg *wg, cp_ctx *ctx)
{
    if (ctx && ctx->b != wg->b) return CP_EINVAL;
    if (wg_zero(wg)) return CP_OK;
    cp_status st = cp__ctx_err_fast(ctx);
    if (st) return st;
    if (cp_spin_begin()) {
        bool z = false;
        for (int i = 0; i < FX_SPIN && !(z = wg_zero(wg)); i++) cp_cpu_relax();
        cp_spin_end();
        if (z) return CP_OK;
    }
    /* then yields, as every futex wait (cp_yield_due) */
    uint64_t t0 = cp_now_ns();
    for (int y = 0; cp_yield_due(y, FX_PARK_YIELDS, t0); y++) {
        sched_yield();
        if (wg_zero(wg)) return CP_OK;
        if ((st = cp__ctx_err_fast(ctx))) return st;
    }
    cp_wnode cn = { .fn = kick_ec, .arg = &wg->ec, .list = NULL };
    if (ctx && !cp_wlist_add(&ctx->done.wl, &cn)) return cp_ctx_err(ctx);
    uint64_t dl = cp_ctx_deadline(ctx);
    for (;;) {
        uint32_t v = cp_ec_prepare(&wg->ec);
        if (wg_zero(wg)) { st = CP_OK; break; }
        if ((st = cp__ctx_err_fast(ctx))) break;
        cp_futex_wait(&wg->ec.w, v, dl);
    }
    cp_wlist_del(&cn);
    return st;
}
