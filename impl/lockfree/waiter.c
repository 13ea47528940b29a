/*
 * The lockfree family's waiter: how a blocked thread parks and is woken (the
 * state machine of core/internal.h).
 */
#include "adapter.h"
#include "../../core/chaos.h"

void cp_lockfree_w_init(cp_waiter *w)
{
    atomic_init(&w->state, CP_W_WAITING);
    w->ok = 0;
    w->index = -1;
    w->crowd = false;
    w->buffered = false;
    w->spun = false;
    w->b = &cp_backend_lockfree;
}
void cp_lockfree_w_fini(cp_waiter *w) { (void)w; }

static bool lw_cas(cp_waiter *w, uint32_t to)
{
    uint32_t exp = CP_W_WAITING;
    return atomic_compare_exchange_strong_explicit(&w->state, &exp, to,
                                                   memory_order_acq_rel, memory_order_relaxed);
}
bool cp_lockfree_w_claim(cp_waiter *w) { return lw_cas(w, CP_W_CLAIMED); }
bool cp_lockfree_w_cancel(cp_waiter *w) { return lw_cas(w, CP_W_CANCELED); }
void cp_lockfree_w_finish(cp_waiter *w)
{
    /* release: the hand-off's data and w->ok happen before DONE. */
    atomic_store_explicit(&w->state, CP_W_DONE, memory_order_release);
}

uint32_t cp_lockfree_w_park(cp_waiter *w, uint64_t deadline)
{
    CP_CHAOS_POINT();   /* registered, not yet waiting */
    bool spin = cp_spin_begin();
    for (unsigned n = 0;; n++) {
        uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
        if (s >= CP_W_DONE) {
            if (spin) cp_spin_end();
            return s;
        }
        if (s == CP_W_WAITING && deadline && (n & 15) == 0 && cp_now_ns() >= deadline) {
            lw_cas(w, CP_W_TIMEDOUT);
            continue;
        }
        if (spin && n < LF_SPIN * 16) cp_cpu_relax();
        else sched_yield();
    }
}

