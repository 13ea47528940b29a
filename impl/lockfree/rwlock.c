/*
 * lockfree family: a writer-preferring spin reader/writer lock on one atomic
 * word; waiters pause, then yield, and never sleep in the kernel.
 *
 * The word s:  bits  0..19  readers holding the lock (RD_MASK)
 *              bit   20     a writer holds it (WR)
 *              bits 21..31  writers waiting (WW_ONE each, up to 2047)
 * Invariants:
 *   - WR set => no reader holds it; readers hold it => WR clear;
 *   - writer preference: a reader enters only while WR and WW are both 0,
 *     so once a writer waits, new readers hold back and the writer gets in
 *     when the current readers leave (a steady stream of writers can in
 *     turn hold readers off);
 *   - a waiting writer leaves WW in the same CAS that sets WR.
 * Orderings: acquisitions are acquire CASes, releases release RMWs; all
 * changes to s are RMWs, so the protected data is ordered by s alone.
 *
 * Wait policy: exponential pause (1, 2, 4 ... 64 pauses between looks),
 * about LF_SPIN rounds of it while cp_spin_begin grants a spinner slot,
 * then sched_yield between looks.
 */
#include "adapter.h"

#include <errno.h>

#define RD_MASK ((1u << 20) - 1)
#define WR (1u << 20)
#define WW_ONE (1u << 21)
#define WW_MASK (~(WW_ONE - 1))

struct cp_rwlock {
    const cp_backend *b;
    _Atomic uint32_t s;
};

cp_rwlock *cp_lockfree_rwlock_new(const cp_backend *b)
{
    if (b != &cp_backend_lockfree) { errno = EINVAL; return NULL; }
    cp_rwlock *l = cp__zalloc(sizeof *l);
    if (!l) return NULL;
    l->b = b;
    atomic_init(&l->s, 0);
    return l;
}

void cp_lockfree_rwlock_free(cp_rwlock *l) { free(l); }

static inline bool rd_try(cp_rwlock *l, uint32_t *s)
{
    while (!(*s & (WR | WW_MASK))) {
        if ((*s & RD_MASK) == RD_MASK) cp_die("rwlock: too many readers");
        if (atomic_compare_exchange_weak_explicit(&l->s, s, *s + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static inline bool wr_try(cp_rwlock *l, uint32_t *s)
{
    while (!(*s & (WR | RD_MASK))) {
        if (atomic_compare_exchange_weak_explicit(&l->s, s, *s - WW_ONE + WR,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
    return false;
}

#define RW_SPIN(l, try)                                                      \
    do {                                                                     \
        bool spin_ = cp_spin_begin();                                        \
        for (unsigned n_ = 0;; n_++) {                                       \
            uint32_t s_ = atomic_load_explicit(&(l)->s, memory_order_relaxed); \
            if (try(l, &s_)) break;                                          \
            if (spin_ && n_ < LF_SPIN) {                                     \
                unsigned k_ = 1u << (n_ < 6 ? n_ : 6);                       \
                for (unsigned i_ = 0; i_ < k_; i_++) cp_cpu_relax();         \
            } else {                                                         \
                sched_yield();                                               \
            }                                                                \
        }                                                                    \
        if (spin_) cp_spin_end();                                            \
    } while (0)

__attribute__((noinline)) static void rlock_slow(cp_rwlock *l) { RW_SPIN(l, rd_try); }

void cp_lockfree_rwlock_rlock(cp_rwlock *l)
{
    uint32_t s = atomic_load_explicit(&l->s, memory_order_relaxed);
    if (cp_likely(rd_try(l, &s))) return;
    rlock_slow(l);
}

void cp_lockfree_rwlock_runlock(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_sub_explicit(&l->s, 1, memory_order_release);
    if (cp_unlikely((old & RD_MASK) == 0)) cp_die("rwlock: runlock without rlock");
}

__attribute__((noinline)) static void wlock_slow(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_add_explicit(&l->s, WW_ONE, memory_order_relaxed);
    if ((old & WW_MASK) == WW_MASK) cp_die("rwlock: too many waiting writers");
    RW_SPIN(l, wr_try);
}

void cp_lockfree_rwlock_wlock(cp_rwlock *l)
{
    uint32_t z = 0;
    if (cp_likely(atomic_compare_exchange_strong_explicit(&l->s, &z, WR, memory_order_acquire,
                                                          memory_order_relaxed)))
        return;
    wlock_slow(l);
}

void cp_lockfree_rwlock_wunlock(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_sub_explicit(&l->s, WR, memory_order_release);
    if (cp_unlikely(!(old & WR))) cp_die("rwlock: wunlock without wlock");
}
