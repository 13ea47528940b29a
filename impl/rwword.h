/*
 * A writer-preferring reader/writer lock on one atomic word, written once:
 * the word's logic and the cp_<family>_rwlock_* entry points. Instantiated
 * as every template of impl/: the family's rwlock.c includes its adapter.h,
 * defines struct cp_rwlock (b, the word s, and what its waiters need),
 * includes this file, and then defines the hooks declared below: how a
 * blocked reader or writer waits (its wait policy) and whom an unlock wakes.
 * The lockfree and futex families use it (the mutex family's rwlock is a
 * pthread rwlock).
 *
 * The word s:  bits  0..19  readers holding the lock (RD_MASK)
 *              bit   20     a writer holds it (WR)
 *              bits 21..31  writers waiting (WW_ONE each, up to 2047)
 * Invariants:
 *   - WR set => no reader holds it (RD == 0); RD > 0 => WR clear;
 *   - writer preference: a reader enters only while WR and WW are both 0,
 *     so once a writer waits, new readers queue behind it and the writer
 *     gets in when the current readers leave (sync.RWMutex's promise; a
 *     steady stream of writers can in turn hold readers off);
 *   - a writer registers in WW before it waits and leaves WW in the same
 *     CAS that sets WR, so "WW > 0" means "someone must be woken when the
 *     lock frees".
 * Orderings: every acquisition is an acquire CAS, every release a release
 * RMW, and all changes to s are RMWs (one total order), so the protected
 * data is ordered by s alone (TSan sees it), and an unlock's wake decision,
 * taken on the value its RMW returned, is exact.
 */
#ifndef CP_IMPL_RWWORD_H
#define CP_IMPL_RWWORD_H

#ifndef FAM_NAME
#error "include the family's adapter.h before impl/rwword.h"
#endif

#include "../core/internal.h"

#include <errno.h>

#define RD_MASK ((1u << 20) - 1)
#define WR (1u << 20)
#define WW_ONE (1u << 21)
#define WW_MASK (~(WW_ONE - 1))

/* ---- the family's hooks (defined in its rwlock.c, after this file) ---- */
/* rwlock_new: set up what the family's waiters need beside the word. */
static inline void rw_init_wait(cp_rwlock *l);
/* Wait until rw_try(l, &s, writer) succeeds (a writer is counted in WW);
 * always_inline, so that writer is a constant. */
static inline void rw_wait(cp_rwlock *l, bool writer);
/* After a runlock / wunlock: old is the word the release RMW replaced. */
static inline void rw_after_runlock(cp_rwlock *l, uint32_t old);
static inline void rw_after_wunlock(cp_rwlock *l, uint32_t old);

/* Try to enter as a reader given the current word; false if blocked. */
static inline __attribute__((always_inline)) bool rd_try(cp_rwlock *l, uint32_t *s)
{
    while (!(*s & (WR | WW_MASK))) {
        if ((*s & RD_MASK) == RD_MASK) cp_die("rwlock: too many readers");
        if (atomic_compare_exchange_weak_explicit(&l->s, s, *s + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

/* A registered writer (counted in WW) tries to take the lock. */
static inline __attribute__((always_inline)) bool wr_try(cp_rwlock *l, uint32_t *s)
{
    while (!(*s & (WR | RD_MASK))) {
        if (atomic_compare_exchange_weak_explicit(&l->s, s, *s - WW_ONE + WR,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
    return false;
}

/* writer is a constant at every use: this folds to one of the two. */
#define rw_try(l, s, writer) ((writer) ? wr_try(l, s) : rd_try(l, s))

cp_rwlock *FAM_FN(rwlock_new)(const cp_backend *b)
{
    if (b != &FAM_BACKEND) { errno = EINVAL; return NULL; }
    cp_rwlock *l = cp__zalloc(sizeof *l);
    if (!l) return NULL;
    l->b = b;
    atomic_init(&l->s, 0);
    rw_init_wait(l);
    return l;
}

void FAM_FN(rwlock_free)(cp_rwlock *l) { free(l); }

__attribute__((noinline)) static void rlock_slow(cp_rwlock *l) { rw_wait(l, false); }

void FAM_FN(rwlock_rlock)(cp_rwlock *l)
{
    uint32_t s = atomic_load_explicit(&l->s, memory_order_relaxed);
    if (cp_likely(rd_try(l, &s))) return;
    rlock_slow(l);
}

void FAM_FN(rwlock_runlock)(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_sub_explicit(&l->s, 1, memory_order_release);
    if (cp_unlikely((old & RD_MASK) == 0)) cp_die("rwlock: runlock without rlock");
    rw_after_runlock(l, old);
}

__attribute__((noinline)) static void wlock_slow(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_add_explicit(&l->s, WW_ONE, memory_order_relaxed);
    if ((old & WW_MASK) == WW_MASK) cp_die("rwlock: too many waiting writers");
    rw_wait(l, true);
}

void FAM_FN(rwlock_wlock)(cp_rwlock *l)
{
    uint32_t z = 0;
    if (cp_likely(atomic_compare_exchange_strong_explicit(&l->s, &z, WR, memory_order_acquire,
                                                          memory_order_relaxed)))
        return;
    wlock_slow(l);
}

void FAM_FN(rwlock_wunlock)(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_sub_explicit(&l->s, WR, memory_order_release);
    if (cp_unlikely(!(old & WR))) cp_die("rwlock: wunlock without wlock");
    rw_after_wunlock(l, old);
}

#endif /* CP_IMPL_RWWORD_H */
