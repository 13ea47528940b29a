/*
 * mutex family: Once (sync.Once). pthread_once cannot pass an argument, so:
 * an atomic done flag and a pthread mutex, as Go's sync.Once is written.
 * Invariants: done goes 0 -> 1 once, after fn has returned, under the
 * mutex; fn runs under the mutex, so concurrent callers wait for done
 * (once_wait) or on the mutex.
 *
 * Orderings: the fast path's acquire load of done, and once_wait's, pair
 * with the release store after fn (callers that take the mutex are ordered
 * by it as well).
 */
#include "adapter.h"

#include <errno.h>

struct cp_once {
    const cp_backend *b;
    _Atomic uint32_t done;
    pthread_mutex_t mu;
};

cp_once *cp_mutex_once_new(const cp_backend *b)
{
    if (b != &cp_backend_mutex) { errno = EINVAL; return NULL; }
    cp_once *o = cp__zalloc(sizeof *o);
    if (!o) return NULL;
    o->b = b;
    atomic_init(&o->done, 0);
    cp_mutex__lock_init(&o->mu);
    return o;
}

void cp_mutex_once_free(cp_once *o)
{
    if (!o) return;
    cp_check(pthread_mutex_destroy(&o->mu) == 0);
    free(o);
}

/* A caller that finds fn running waits for done as the family's waiters
 * do (MX_SPIN pauses, then yields with cp_yield_due's floor) before it
 * takes the mutex, whose sleep would cost a wake-up when fn returns. */
static bool once_wait(cp_once *o)
{
    for (int i = 0; i < MX_SPIN; i++) {
        if (atomic_load_explicit(&o->done, memory_order_acquire)) return true;
        cp_cpu_relax();
    }
    uint64_t t0 = cp_now_ns();
    for (int y = 0; cp_yield_due(y, MX_HANDOFF_YIELDS, t0); y++) {
        sched_yield();
        if (atomic_load_explicit(&o->done, memory_order_acquire)) return true;
    }
    return false;
}

__attribute__((noinline)) static void once_slow(cp_once *o, void (*fn)(void *), void *arg)
{
    int rc = pthread_mutex_trylock(&o->mu);
    if (rc == EBUSY) {
        if (once_wait(o)) return;
        rc = pthread_mutex_lock(&o->mu);
    }
    cp_check(rc == 0);
    if (!atomic_load_explicit(&o->done, memory_order_relaxed)) {
        fn(arg);
        atomic_store_explicit(&o->done, 1, memory_order_release);
    }
    cp_check(pthread_mutex_unlock(&o->mu) == 0);
}

void cp_mutex_once_do(cp_once *o, void (*fn)(void *), void *arg)
{
    if (cp_likely(atomic_load_explicit(&o->done, memory_order_acquire))) return;
    once_slow(o, fn, arg);
}
