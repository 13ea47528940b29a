/*
 * lockfree family: cp_mutex is a ticket lock (FIFO, fair) that never sleeps
 * in the kernel.
 *
 * Why ticket and not MCS (DESIGN.md asks "ticket or MCS: measure which";
 * not measured: there is no MCS lock here to compare with): on these 2-vCPU
 * machines at most a
 * couple of threads spin at once, so the cost MCS saves (every waiter
 * polling one shared line) is small; a ticket lock needs no per-thread node
 * (cp_mutex_lock takes no argument to carry one, and a thread-local node
 * pool would be needed for MCS), unlock is one store instead of a CAS plus
 * a possible wait for the successor's link, and the queue position gives
 * proportional backoff for free. Its weakness, shared with MCS: when the
 * thread whose turn it is has been preempted, everyone behind it waits for
 * it to be scheduled (oversubscription), which sched_yield only softens.
 *
 * Invariants: next is the next ticket to hand out, owner the ticket being
 * served; owner <= next (mod 2^32); the lock is held iff owner != next, by
 * the thread holding ticket owner; only the holder writes owner.
 * Orderings: unlock is a release store of owner, lock an acquire load that
 * sees its own ticket, so the protected data is ordered by owner (TSan sees
 * it). Taking a ticket needs no ordering (relaxed fetch_add).
 *
 * Wait policy: a waiter d places behind the holder pauses about d times
 * TK_PAUSE between looks (proportional backoff: the head of the queue polls
 * tightly, the tail stays off the line); after about TK_SPIN_NS worth of
 * pauses, or at once if cp_spin_begin gives it no spinner slot, it calls
 * sched_yield between looks.
 */
#include "../../core/internal.h"
#include "waiter.h"

#include <errno.h>

#define TK_PAUSE 16u            /* pauses per place in the queue */
#define TK_SPIN_PAUSES 4096u    /* about 100 us of pausing, then yield */

struct cp_mutex {
    const cp_backend *b;
    _Atomic uint32_t next;
    _Atomic uint32_t owner;
};

cp_mutex *cp_lockfree_mutex_new(const cp_backend *b)
{
    if (b != &cp_backend_lockfree) { errno = EINVAL; return NULL; }
    cp_mutex *m = cp__zalloc(sizeof *m);
    if (!m) return NULL;
    m->b = b;
    atomic_init(&m->next, 0);
    atomic_init(&m->owner, 0);
    return m;
}

void cp_lockfree_mutex_free(cp_mutex *m) { free(m); }

__attribute__((noinline)) static void lock_slow(cp_mutex *m, uint32_t t)
{
    bool spin = cp_spin_begin();
    unsigned paused = 0;
    for (;;) {
        uint32_t o = atomic_load_explicit(&m->owner, memory_order_acquire);
        if (o == t) break;
        if (spin && paused < TK_SPIN_PAUSES) {
            uint32_t d = t - o;         /* places ahead of us, >= 1 */
            unsigned n = d == 1 ? 1 : (d - 1) * TK_PAUSE;
            for (unsigned i = 0; i < n; i++) cp_cpu_relax();
            paused += n;
        } else {
            sched_yield();
        }
    }
    if (spin) cp_spin_end();
}

void cp_lockfree_mutex_lock(cp_mutex *m)
{
    uint32_t t = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
    if (cp_likely(atomic_load_explicit(&m->owner, memory_order_acquire) == t)) return;
    lock_slow(m, t);
}

bool cp_lockfree_mutex_trylock(cp_mutex *m)
{
    /* The lock is free iff next == owner. owner only grows, so if the CAS
     * finds next == o, owner was o then too: we hold ticket o, now served.
     * The acquire load of owner pairs with the last unlock's release. */
    uint32_t o = atomic_load_explicit(&m->owner, memory_order_acquire);
    uint32_t e = o;
    return atomic_compare_exchange_strong_explicit(&m->next, &e, o + 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

void cp_lockfree_mutex_unlock(cp_mutex *m)
{
    uint32_t o = atomic_load_explicit(&m->owner, memory_order_relaxed);
    atomic_store_explicit(&m->owner, o + 1, memory_order_release);
}
