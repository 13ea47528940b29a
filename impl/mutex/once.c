/*
 * mutex family: Once (sync.Once). pthread_once cannot pass an argument, so:
 * an atomic done flag and a pthread mutex, as Go's sync.Once is written.
 * Invariants: done goes 0 -> 1 once, after fn has returned, under the
 * mutex; fn runs under the mutex, so concurrent callers wait on it.
 *
 * Orderings: the fast path's acquire load of done pairs with the release
 * store after fn (callers that take the mutex are ordered by it as well).
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

__attribute__((noinline)) static void once_slow(cp_once *o, void (*fn)(void *), void *arg)
{
    cp_check(pthread_mutex_lock(&o->mu) == 0);
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
