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
 *
 * Starvation (Go's sync.Mutex starvation mode, by its 1 ms rule): barging
 * lets the thread that just unlocked take the lock again while its line is
 * still in its cache, before a waiter on another core has even seen it
 * free, so with 4 or 8 threads on 2 cores one thread could wait out a
 * whole run (fairness 0.000, a 40 ms wait in a 42 ms run). A waiter that
 * has yielded for LF_STARVE_NS counts itself in `starving`; while that is
 * non-zero, nobody else takes the lock (the fast path hands back a lock it
 * barged into, the other waiters wait, trylock fails), so a starving
 * waiter gets it as soon as it runs and the lock is free. `starving` is a
 * hint about who goes first, not part of the data's ordering: relaxed.
 * Liveness: a starving waiter is runnable, and everyone else yields.
 */
#include "adapter.h"

#include <errno.h>

#define LF_BACKOFF_MAX 64u       /* pauses between two looks, at most */
#define LF_SPIN_PAUSES 4096u     /* about 100 us of pausing, then yield */
#define LF_STARVE_NS 1000000u    /* yielding this long: starving (Go's 1 ms) */

struct cp_mutex {
    const cp_backend *b;
    _Atomic uint32_t locked;
    _Atomic uint32_t starving;  /* waiters that yielded LF_STARVE_NS or more */
};

cp_mutex *cp_lockfree_mutex_new(const cp_backend *b)
{
    if (b != &cp_backend_lockfree) { errno = EINVAL; return NULL; }
    cp_mutex *m = cp__zalloc(sizeof *m);
    if (!m) return NULL;
    m->b = b;
    atomic_init(&m->locked, 0);
    atomic_init(&m->starving, 0);
    return m;
}

void cp_lockfree_mutex_free(cp_mutex *m) { free(m); }

/* Whether a waiter that is not starving must stay off the lock. */
static inline bool someone_starves(cp_mutex *m)
{
    return atomic_load_explicit(&m->starving, memory_order_relaxed) != 0;
}

__attribute__((noinline)) static void lock_slow(cp_mutex *m)
{
    bool spin = cp_spin_begin(), starving = false;
    unsigned paused = 0, backoff = 1;
    uint64_t t0 = 0;    /* its first yield */
    for (;;) {
        while (atomic_load_explicit(&m->locked, memory_order_relaxed) ||
               (!starving && someone_starves(m))) {
            if (spin && paused < LF_SPIN_PAUSES) {
                for (unsigned i = 0; i < backoff; i++) cp_cpu_relax();
                paused += backoff;
                if (backoff < LF_BACKOFF_MAX) backoff *= 2;
                continue;
            }
            sched_yield();
            if (starving) continue;
            uint64_t now = cp_now_ns();
            if (!t0) {
                t0 = now;
            } else if (now - t0 >= LF_STARVE_NS) {
                starving = true;
                atomic_fetch_add_explicit(&m->starving, 1, memory_order_relaxed);
            }
        }
        if (!atomic_exchange_explicit(&m->locked, 1, memory_order_acquire)) break;
    }
    if (starving) atomic_fetch_sub_explicit(&m->starving, 1, memory_order_relaxed);
    if (spin) cp_spin_end();
}

void cp_lockfree_mutex_lock(cp_mutex *m)
{
    /* The load after the exchange hits the line the exchange brought. */
    if (cp_likely(!atomic_exchange_explicit(&m->locked, 1, memory_order_acquire))) {
        if (cp_likely(!someone_starves(m))) return;
        atomic_store_explicit(&m->locked, 0, memory_order_release);   /* theirs */
    }
    lock_slow(m);
}

bool cp_lockfree_mutex_trylock(cp_mutex *m)
{
    return !atomic_load_explicit(&m->locked, memory_order_relaxed) && !someone_starves(m) &&
           !atomic_exchange_explicit(&m->locked, 1, memory_order_acquire);
}

void cp_lockfree_mutex_unlock(cp_mutex *m)
{
    atomic_store_explicit(&m->locked, 0, memory_order_release);
}
