/*
 * futex family: Once (sync.Once). One futex word:
 *   0 not run, 1 running, 2 running and someone may sleep, 3 done.
 * Invariants: the word only moves forward (0 -> 1 -> [2 ->] 3); only the
 * caller that won 0 -> 1 runs fn; only a caller that saw 2 (or set it)
 * sleeps, and the runner's exchange to 3 wakes all iff it replaced 2.
 *
 * Orderings: the fast path's acquire load that reads 3 pairs with the
 * runner's release (acq_rel) exchange after fn: everything fn wrote is
 * visible to every caller that returns. Sleepers re-read the word with
 * acquire after waking, so the same pair covers them.
 */
#include "adapter.h"

#include <limits.h>

enum { O_NEW = 0, O_RUNNING = 1, O_SLEEPERS = 2, O_DONE = 3 };

struct cp_once {
    const cp_backend *b;
    _Atomic uint32_t st;
};

cp_once *cp_futex_once_new(const cp_backend *b)
{
    if (b != &cp_backend_futex) { errno = EINVAL; return NULL; }
    cp_once *o = cp__zalloc(sizeof *o);
    if (!o) return NULL;
    o->b = b;
    atomic_init(&o->st, O_NEW);
    return o;
}

void cp_futex_once_free(cp_once *o) { free(o); }

__attribute__((noinline)) static void once_slow(cp_once *o, void (*fn)(void *), void *arg)
{
    uint32_t s = O_NEW;
    if (atomic_compare_exchange_strong_explicit(&o->st, &s, O_RUNNING, memory_order_acquire,
                                                memory_order_acquire)) {
        fn(arg);
        if (atomic_exchange_explicit(&o->st, O_DONE, memory_order_acq_rel) == O_SLEEPERS)
            cp_futex_wake(&o->st, INT_MAX);
        return;
    }
    if (s == O_DONE) return;
    if (cp_spin_begin()) {
        for (int i = 0; i < FX_SPIN && s != O_DONE; i++) {
            cp_cpu_relax();
            s = atomic_load_explicit(&o->st, memory_order_acquire);
        }
        cp_spin_end();
        if (s == O_DONE) return;
    }
    /* then yields, as every futex wait (cp_yield_due): the runner may be
     * without a CPU, and an fn of some microseconds ends within the floor */
    uint64_t t0 = cp_now_ns();
    for (int y = 0; s != O_DONE && cp_yield_due(y, FX_PARK_YIELDS, t0); y++) {
        sched_yield();
        s = atomic_load_explicit(&o->st, memory_order_acquire);
    }
    if (s == O_DONE) return;
    for (;;) {
        s = atomic_load_explicit(&o->st, memory_order_acquire);
        if (s == O_DONE) return;
        if (s == O_RUNNING &&
            !atomic_compare_exchange_strong_explicit(&o->st, &s, O_SLEEPERS, memory_order_acquire,
                                                     memory_order_acquire))
            continue;
        cp_futex_wait(&o->st, O_SLEEPERS, 0);
    }
}

void cp_futex_once_do(cp_once *o, void (*fn)(void *), void *arg)
{
    if (cp_likely(atomic_load_explicit(&o->st, memory_order_acquire) == O_DONE)) return;
    once_slow(o, fn, arg);
}
