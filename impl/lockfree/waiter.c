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

/* cp_w_spin's spin (LF_SPIN * 16 pauses, adaptive as every family's) and
 * its yields, then yields until DONE or the deadline: no sleep. */
uint32_t cp_lockfree_w_park(cp_waiter *w, uint64_t deadline)
{
    CP_CHAOS_POINT();   /* registered, not yet waiting */
    uint32_t s = cp_w_spin(w, deadline, LF_SPIN * 16, 0);
    for (unsigned n = 0; s < CP_W_DONE; n++) {
        if (s == CP_W_WAITING && deadline && (n & 15) == 0 && cp_now_ns() >= deadline)
            lw_cas(w, CP_W_TIMEDOUT);
        else
            sched_yield();
        s = atomic_load_explicit(&w->state, memory_order_acquire);
    }
    return s;
}

