/*
 * futex family: a writer-preferring reader/writer lock on one atomic word,
 * readers and writers sleeping on two event counts (futex.h's cp_ec). No
 * pthread objects.
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
 *   - a writer registers in WW before it sleeps and leaves WW in the same
 *     CAS that sets WR, so "WW > 0" means "someone must be woken when the
 *     lock frees".
 * Who wakes whom (each wake is a cp_ec_signal: a fence and a load unless a
 * thread sleeps there):
 *   - runlock of the last reader with WW > 0 -> the writers' ec;
 *   - wunlock with WW > 0 -> the writers' ec (readers stay blocked by WW
 *     until the last waiting writer has had its turn, and its wunlock, with
 *     WW == 0, wakes them); wunlock with WW == 0 -> the readers' ec.
 * The decision is taken on the value our RMW returned, and all changes to s
 * are RMWs (one total order), so a thread that registers after our RMW sees
 * the freed state itself. The ec's seq_cst fences order "change s, then look
 * for sleepers" against "announce sleeping, then re-check s".
 * Orderings: every acquisition is an acquire CAS, every release a release
 * RMW, so the protected data is ordered by s alone (TSan sees it).
 *
 * Wait policy: as the futex mutex, a brief spin (FX_SPIN pauses, if
 * cp_spin_begin grants a slot), then FUTEX_WAIT on the ec.
 */
#include "adapter.h"

#define RD_MASK ((1u << 20) - 1)
#define WR (1u << 20)
#define WW_ONE (1u << 21)
#define WW_MASK (~(WW_ONE - 1))

struct cp_rwlock {
    const cp_backend *b;
    _Atomic uint32_t s;
    cp_ec rd_ec;    /* readers sleep here */
    cp_ec wr_ec;    /* writers sleep here */
};

cp_rwlock *cp_futex_rwlock_new(const cp_backend *b)
{
    if (b != &cp_backend_futex) { errno = EINVAL; return NULL; }
    cp_rwlock *l = cp__zalloc(sizeof *l);
    if (!l) return NULL;
    l->b = b;
    atomic_init(&l->s, 0);
    atomic_init(&l->rd_ec.w, 0);
    atomic_init(&l->wr_ec.w, 0);
    return l;
}

void cp_futex_rwlock_free(cp_rwlock *l) { free(l); }

/* Try to enter as a reader given the current word; false if blocked. */
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

/* A registered writer (counted in WW) tries to take the lock. */
static inline bool wr_try(cp_rwlock *l, uint32_t *s)
{
    while (!(*s & (WR | RD_MASK))) {
        if (atomic_compare_exchange_weak_explicit(&l->s, s, *s - WW_ONE + WR,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Wait until try() succeeds: spin, then sleep on ec. */
#define RW_WAIT(l, ec, try)                                                  \
    do {                                                                     \
        uint32_t s_;                                                         \
        if (cp_spin_begin()) {                                               \
            for (int i_ = 0; i_ < FX_SPIN; i_++) {                           \
                cp_cpu_relax();                                              \
                s_ = atomic_load_explicit(&(l)->s, memory_order_relaxed);    \
                if (try(l, &s_)) { cp_spin_end(); return; }                  \
            }                                                                \
            cp_spin_end();                                                   \
        }                                                                    \
        for (;;) {                                                           \
            uint32_t v_ = cp_ec_prepare(ec); /* flag + seq_cst fence */      \
            s_ = atomic_load_explicit(&(l)->s, memory_order_relaxed);        \
            if (try(l, &s_)) return;                                         \
            cp_futex_wait(&(ec)->w, v_, 0);                                  \
        }                                                                    \
    } while (0)

__attribute__((noinline)) static void rlock_slow(cp_rwlock *l) { RW_WAIT(l, &l->rd_ec, rd_try); }

void cp_futex_rwlock_rlock(cp_rwlock *l)
{
    uint32_t s = atomic_load_explicit(&l->s, memory_order_relaxed);
    if (cp_likely(rd_try(l, &s))) return;
    rlock_slow(l);
}

void cp_futex_rwlock_runlock(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_sub_explicit(&l->s, 1, memory_order_release);
    if (cp_unlikely((old & RD_MASK) == 0)) cp_die("rwlock: runlock without rlock");
    if ((old & RD_MASK) == 1 && (old & WW_MASK)) cp_ec_signal(&l->wr_ec);
}

__attribute__((noinline)) static void wlock_slow(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_add_explicit(&l->s, WW_ONE, memory_order_relaxed);
    if ((old & WW_MASK) == WW_MASK) cp_die("rwlock: too many waiting writers");
    RW_WAIT(l, &l->wr_ec, wr_try);
}

void cp_futex_rwlock_wlock(cp_rwlock *l)
{
    uint32_t z = 0;
    if (cp_likely(atomic_compare_exchange_strong_explicit(&l->s, &z, WR, memory_order_acquire,
                                                          memory_order_relaxed)))
        return;
    wlock_slow(l);
}

void cp_futex_rwlock_wunlock(cp_rwlock *l)
{
    uint32_t old = atomic_fetch_sub_explicit(&l->s, WR, memory_order_release);
    if (cp_unlikely(!(old & WR))) cp_die("rwlock: wunlock without wlock");
    if (old & WW_MASK) cp_ec_signal(&l->wr_ec);
    else cp_ec_signal(&l->rd_ec);
}
