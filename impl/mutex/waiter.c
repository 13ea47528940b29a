/*
 * The mutex family's waiter: how a blocked thread parks and is woken (the
 * state machine of core/internal.h).
 */
#define _GNU_SOURCE
#include "adapter.h"
#include "../../core/chaos.h"

#include <errno.h>

static pthread_condattr_t mono_attr;
static pthread_once_t mono_once = PTHREAD_ONCE_INIT;
static void mono_attr_init(void)
{
    cp_check(pthread_condattr_init(&mono_attr) == 0);
    cp_check(pthread_condattr_setclock(&mono_attr, CLOCK_MONOTONIC) == 0);
}

/* The channel lock: glibc's adaptive mutex spins briefly before it sleeps,
 * which is what pthread offers against a lock held for a few nanoseconds. */
static pthread_mutexattr_t adaptive_attr;
static pthread_once_t adaptive_once = PTHREAD_ONCE_INIT;
static void adaptive_attr_init(void)
{
    cp_check(pthread_mutexattr_init(&adaptive_attr) == 0);
    cp_check(pthread_mutexattr_settype(&adaptive_attr, PTHREAD_MUTEX_ADAPTIVE_NP) == 0);
}

void cp_mutex__lock_init(pthread_mutex_t *l)
{
    pthread_once(&adaptive_once, adaptive_attr_init);
    cp_check(pthread_mutex_init(l, &adaptive_attr) == 0);
}

void cp_mutex_w_init(cp_waiter *w)
{
    pthread_once(&mono_once, mono_attr_init);
    atomic_init(&w->state, CP_W_WAITING);
    w->ok = 0;
    w->index = -1;
    w->crowd = false;
    w->buffered = false;
    w->spun = false;
    w->b = &cp_backend_mutex;
    cp_check(pthread_mutex_init(&w->mu, NULL) == 0);
    cp_check(pthread_cond_init(&w->cv, &mono_attr) == 0);
}

void cp_mutex_w_fini(cp_waiter *w)
{
    cp_check(pthread_cond_destroy(&w->cv) == 0);
    cp_check(pthread_mutex_destroy(&w->mu) == 0);
}

bool cp_mutex_w_claim(cp_waiter *w)
{
    return cp_w_cas_from_waiting(w, CP_W_CLAIMED, MX_SLEEPING) != ~0u;
}

/* End a wait: move the state to `to`, from WAITING only (cancel) or from
 * the mover's own CLAIMED (finish). Lock-free while the waiter has not
 * announced a sleep: it sees the move on its own, and nobody touches w
 * after it. Once MX_SLEEPING is set (by the waiter, holding w->mu), the
 * move and the signal are made under w->mu: the waiter can see the move
 * only after this unlock, the mover's last touch of w, which may be gone as
 * soon as the waiter returns. */
static bool mw_end(cp_waiter *w, uint32_t to, bool from_waiting)
{
    uint32_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    while (!(s & MX_SLEEPING)) {
        if (from_waiting && (s & CP_W_STATE) != CP_W_WAITING) return false;
        if (atomic_compare_exchange_weak_explicit(&w->state, &s, to, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return true;
    }
    cp_check(pthread_mutex_lock(&w->mu) == 0);
    bool won = true;
    if (from_waiting)
        won = cp_w_cas_from_waiting(w, to, MX_SLEEPING) != ~0u;
    else
        atomic_store_explicit(&w->state, to, memory_order_release);
    if (won) cp_check(pthread_cond_signal(&w->cv) == 0);
    cp_check(pthread_mutex_unlock(&w->mu) == 0);
    return won;
}

void cp_mutex_w_finish(cp_waiter *w) { mw_end(w, CP_W_DONE, false); }

bool cp_mutex_w_cancel(cp_waiter *w) { return mw_end(w, CP_W_CANCELED, true); }

/* MX_SPIN pauses and MX_HANDOFF_YIELDS yields, MX_CROWD_YIELDS for a crowd
 * waiter (cp_w_spin), before the sleep on the condvar, whose wake-up costs
 * 25-50 us on these VMs. */
uint32_t cp_mutex_w_park(cp_waiter *w, uint64_t deadline)
{
    CP_CHAOS_POINT();   /* registered, not yet asleep */
    uint32_t st = cp_w_spin(w, deadline, MX_SPIN, w->crowd ? MX_CROWD_YIELDS : MX_HANDOFF_YIELDS);
    if (st >= CP_W_DONE) return st;
    struct timespec ts = cp__ts(deadline);
    cp_check(pthread_mutex_lock(&w->mu) == 0);
    for (;;) {
        uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
        st = s & CP_W_STATE;
        if (st >= CP_W_DONE) break;
        if (st == CP_W_WAITING && deadline && cp_now_ns() >= deadline) {
            atomic_compare_exchange_strong_explicit(&w->state, &s, CP_W_TIMEDOUT,
                                                    memory_order_acq_rel, memory_order_relaxed);
            continue;
        }
        /* Publish the sleep before it: this CAS and the ender's lock-free
         * CAS (mw_end) are on one word, so either the ender sees
         * MX_SLEEPING and ends the wait under w->mu, or this CAS fails and
         * the loop sees the new state. */
        if (!(s & MX_SLEEPING)) {
            if (!atomic_compare_exchange_strong_explicit(&w->state, &s, s | MX_SLEEPING,
                                                         memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
        }
        CP_CHAOS_POINT();   /* MX_SLEEPING published, cond wait not yet entered */
        int rc = (st == CP_W_WAITING && deadline)
                     ? pthread_cond_timedwait(&w->cv, &w->mu, &ts)
                     : pthread_cond_wait(&w->cv, &w->mu);
        if (rc && rc != ETIMEDOUT) cp_die("pthread_cond_wait: %d", rc);
    }
    cp_check(pthread_mutex_unlock(&w->mu) == 0);
    CP_CHAOS_POINT();   /* woken, not yet back */
    return st;
}
