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
    uint32_t exp = CP_W_WAITING;
    return atomic_compare_exchange_strong_explicit(&w->state, &exp, CP_W_CLAIMED,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

void cp_mutex_w_finish(cp_waiter *w)
{
    cp_check(pthread_mutex_lock(&w->mu) == 0);
    atomic_store_explicit(&w->state, CP_W_DONE, memory_order_release);
    cp_check(pthread_cond_signal(&w->cv) == 0);
    cp_check(pthread_mutex_unlock(&w->mu) == 0);
}

bool cp_mutex_w_cancel(cp_waiter *w)
{
    cp_check(pthread_mutex_lock(&w->mu) == 0);
    uint32_t exp = CP_W_WAITING;
    bool won = atomic_compare_exchange_strong_explicit(&w->state, &exp, CP_W_CANCELED,
                                                       memory_order_acq_rel, memory_order_relaxed);
    if (won) cp_check(pthread_cond_signal(&w->cv) == 0);
    cp_check(pthread_mutex_unlock(&w->mu) == 0);
    return won;
}

uint32_t cp_mutex_w_park(cp_waiter *w, uint64_t deadline)
{
    struct timespec ts = cp__ts(deadline);
    uint32_t s;
    CP_CHAOS_POINT();   /* registered, not yet asleep */
    cp_check(pthread_mutex_lock(&w->mu) == 0);
    for (;;) {
        s = atomic_load_explicit(&w->state, memory_order_acquire);
        if (s >= CP_W_DONE) break;
        if (s == CP_W_WAITING && deadline && cp_now_ns() >= deadline) {
            uint32_t exp = CP_W_WAITING;
            atomic_compare_exchange_strong_explicit(&w->state, &exp, CP_W_TIMEDOUT,
                                                    memory_order_acq_rel, memory_order_relaxed);
            continue;
        }
        int rc = (s == CP_W_WAITING && deadline)
                     ? pthread_cond_timedwait(&w->cv, &w->mu, &ts)
                     : pthread_cond_wait(&w->cv, &w->mu);
        if (rc && rc != ETIMEDOUT) cp_die("pthread_cond_wait: %d", rc);
    }
    cp_check(pthread_mutex_unlock(&w->mu) == 0);
    CP_CHAOS_POINT();   /* woken, not yet back */
    return s;
}

