/*
 * The futex family's waiter: how a blocked thread parks and is woken (the
 * state machine of core/internal.h).
 */
#include "adapter.h"
#include "../../core/chaos.h"

void cp_futex_w_init(cp_waiter *w)
{
    atomic_init(&w->state, CP_W_WAITING);
    w->ok = 0;
    w->index = -1;
    w->crowd = false;
    w->buffered = false;
    w->spun = false;
    w->b = &cp_backend_futex;
}
void cp_futex_w_fini(cp_waiter *w) { (void)w; }

bool cp_futex_w_claim(cp_waiter *w)
{
    return cp_w_cas_from_waiting(w, CP_W_CLAIMED, FX_PARKED) != ~0u;
}

bool cp_futex_w_cancel(cp_waiter *w)
{
    uint32_t old = cp_w_cas_from_waiting(w, CP_W_CANCELED, FX_PARKED);
    if (old == ~0u) return false;
    if (old & FX_PARKED) cp_futex_wake(&w->state, 1);
    return true;
}

void cp_futex_w_finish(cp_waiter *w)
{
    uint32_t old = atomic_exchange_explicit(&w->state, CP_W_DONE, memory_order_acq_rel);
    if (old & FX_PARKED) cp_futex_wake(&w->state, 1);
}

/* Before the futex sleep, whose wake-up costs 25-50 us on these VMs:
 * cp_w_spin's FX_SPIN pauses and FX_PARK_YIELDS yields. */
static uint32_t fw_sleep(cp_waiter *w, uint64_t deadline);

uint32_t cp_futex_w_park(cp_waiter *w, uint64_t deadline)
{
    CP_CHAOS_POINT();   /* registered, not yet parked */
    uint32_t s = cp_w_spin(w, deadline, FX_SPIN, FX_PARK_YIELDS);
    return s >= CP_W_DONE ? s : fw_sleep(w, deadline);
}

/* the futex sleep until DONE, CANCELED or TIMEDOUT */
static uint32_t fw_sleep(cp_waiter *w, uint64_t deadline)
{
    for (;;) {
        uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
        uint32_t st = s & CP_W_STATE;
        if (st >= CP_W_DONE) return st;
        if (st == CP_W_WAITING && deadline && cp_now_ns() >= deadline) {
            atomic_compare_exchange_strong_explicit(&w->state, &s, CP_W_TIMEDOUT,
                                                    memory_order_acq_rel, memory_order_relaxed);
            continue;
        }
        if (!(s & FX_PARKED)) {
            if (!atomic_compare_exchange_strong_explicit(&w->state, &s, s | FX_PARKED,
                                                         memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
            s |= FX_PARKED;
        }
        CP_CHAOS_POINT();   /* PARKED published, futex wait not yet entered */
        cp_futex_wait(&w->state, s, st == CP_W_WAITING ? deadline : 0);
    }
}

