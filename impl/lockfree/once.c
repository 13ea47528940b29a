/*
 * lockfree family: Once (sync.Once). One state word: 0 not run, 1 running,
 * 3 done. Only the caller that wins 0 -> 1 runs fn; the others spin with
 * pause, then yield, until the word reads 3. The word only moves forward.
 *
 * Orderings: the acquire load that reads 3 (fast path and spinners) pairs
 * with the runner's release store after fn: what fn wrote is visible to
 * every caller that returns.
 */
#include "adapter.h"

#include <errno.h>

enum { O_NEW = 0, O_RUNNING = 1, O_DONE = 3 };

struct cp_once {
    const cp_backend *b;
    _Atomic uint32_t st;
};

cp_once *cp_lockfree_once_new(const cp_backend *b)
{
    if (b != &cp_backend_lockfree) { errno = EINVAL; return NULL; }
    cp_once *o = cp__zalloc(sizeof *o);
    if (!o) return NULL;
    o->b = b;
    atomic_init(&o->st, O_NEW);
    return o;
}

void cp_lockfree_once_free(cp_once *o) { free(o); }

__attribute__((noinline)) static void once_slow(cp_once *o, void (*fn)(void *), void *arg)
{
    uint32_t s = O_NEW;
    if (atomic_compare_exchange_strong_explicit(&o->st, &s, O_RUNNING, memory_order_acquire,
                                                memory_order_acquire)) {
        fn(arg);
        atomic_store_explicit(&o->st, O_DONE, memory_order_release);
        return;
    }
    bool spin = cp_spin_begin();
    for (unsigned n = 0; s != O_DONE; n++) {
        if (spin && n < LF_SPIN * 16) cp_cpu_relax();
        else sched_yield();
        s = atomic_load_explicit(&o->st, memory_order_acquire);
    }
    if (spin) cp_spin_end();
}

void cp_lockfree_once_do(cp_once *o, void (*fn)(void *), void *arg)
{
    if (cp_likely(atomic_load_explicit(&o->st, memory_order_acquire) == O_DONE)) return;
    once_slow(o, fn, arg);
}
