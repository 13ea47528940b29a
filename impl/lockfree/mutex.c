/*
 * lockfree family: cp_mutex is a test-and-test-and-set lock with bounded
 * exponential backoff, then sched_yield; it never sleeps in the kernel.
 *
 * Why not the ticket lock this family had: a strict FIFO hands the lock to
 * the next ticket even when that thread is not running. With more threads
 * than cores (4 threads on these 2 vCPUs) the lock then waits a scheduler
 * quantum for a preempted successor at nearly every hand-off: 4 threads x
 * 100k lock/unlock took more than 8 s (29.7k pairs/s, issue 13). A TTAS lock
 * lets whichever thread is running take a free lock (barging), as pthread and
 * Go's sync.Mutex do in normal mode; the price is fairness, which the mutex
 * workload reports (fair_min_ops / fair_max_ops) beside the throughput.
 *
 * Invariant: locked is 1 iff some thread holds the lock; only the holder
 * stores 0. Orderings: the winning exchange is an acquire, unlock a release
 * store, so the protected data is ordered by locked (TSan sees it); waiters
 * poll with relaxed loads and only try the exchange when they see it free
 * (test-and-test-and-set keeps the line shared while it is held).
 *
 * Wait policy: a waiter doubles its pause count between looks (1, 2, 4, ...
 * up to LF_BACKOFF_MAX pauses), so contending spinners fall off the line;
 * after about LF_SPIN_PAUSES pauses, or at once if cp_spin_begin gives it no
 * spinner slot (more waiters than cores - 1), it calls sched_yield between
 * looks, which lets the holder run when it was preempted.
 */
#include "adapter.h"

#include <errno.h>

#define LF_BACKOFF_MAX 64u       /* pauses between two looks, at most */
#define LF_SPIN_PAUSES 4096u     /* about 100 us of pausing, then yield */

struct cp_mutex {
    const cp_backend *b;
    _Atomic uint32_t locked;
};

cp_mutex *cp_lockfree_mutex_new(const cp_backend *b)
{
    if (b != &cp_backend_lockfree) { errno = EINVAL; return NULL; }
    cp_mutex *m = cp__zalloc(sizeof *m);
    if (!m) return NULL;
    m->b = b;
    atomic_init(&m->locked, 0);
    return m;
}

void cp_lockfree_mutex_free(cp_mutex *m) { free(m); }

__attribute__((noinline)) static void lock_slow(cp_mutex *m)
{
    bool spin = cp_spin_begin();
    unsigned paused = 0, backoff = 1;
    for (;;) {
        while (atomic_load_explicit(&m->locked, memory_order_relaxed)) {
            if (spin && paused < LF_SPIN_PAUSES) {
                for (unsigned i = 0; i < backoff; i++) cp_cpu_relax();
                paused += backoff;
                if (backoff < LF_BACKOFF_MAX) backoff *= 2;
            } else {
                sched_yield();
            }
        }
        if (!atomic_exchange_explicit(&m->locked, 1, memory_order_acquire)) break;
    }
    if (spin) cp_spin_end();
}

void cp_lockfree_mutex_lock(cp_mutex *m)
{
    if (cp_likely(!atomic_exchange_explicit(&m->locked, 1, memory_order_acquire))) return;
    lock_slow(m);
}

bool cp_lockfree_mutex_trylock(cp_mutex *m)
{
    return !atomic_load_explicit(&m->locked, memory_order_relaxed) &&
           !atomic_exchange_explicit(&m->locked, 1, memory_order_acquire);
}

void cp_lockfree_mutex_unlock(cp_mutex *m)
{
    atomic_store_explicit(&m->locked, 0, memory_order_release);
}
