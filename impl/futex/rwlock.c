/*
 * futex family: cp_rwlock is rwword.h's writer-preferring word (see its
 * invariants), readers and writers sleeping on two event counts (futex.h's
 * cp_ec). No pthread objects.
 *
 * Who wakes whom (each wake is a cp_ec_signal: a fence and a load unless a
 * thread sleeps there):
 *   - runlock of the last reader with WW > 0 -> the writers' ec;
 *   - wunlock with WW > 0 -> the writers' ec (readers stay blocked by WW
 *     until the last waiting writer has had its turn, and its wunlock, with
 *     WW == 0, wakes them); wunlock with WW == 0 -> the readers' ec.
 * The decision is taken on the value our RMW returned (rwword.h), so a
 * thread that registers after our RMW sees the freed state itself. The ec's
 * seq_cst fences order "change s, then look for sleepers" against
 * "announce sleeping, then re-check s".
 *
 * Wait policy: as the futex mutex, a brief spin (FX_SPIN pauses, if
 * cp_spin_begin grants a slot), then FUTEX_WAIT on the ec.
 */
#include "adapter.h"

struct cp_rwlock {
    const cp_backend *b;
    _Atomic uint32_t s;
    cp_ec rd_ec;    /* readers sleep here */
    cp_ec wr_ec;    /* writers sleep here */
};

#include "../rwword.h"

static inline void rw_init_wait(cp_rwlock *l)
{
    atomic_init(&l->rd_ec.w, 0);
    atomic_init(&l->wr_ec.w, 0);
}

/* Spin, then sleep on the reader's or the writer's ec. */
static inline __attribute__((always_inline)) void rw_wait(cp_rwlock *l, bool writer)
{
    cp_ec *ec = writer ? &l->wr_ec : &l->rd_ec;
    uint32_t s;
    if (cp_spin_begin()) {
        for (int i = 0; i < FX_SPIN; i++) {
            cp_cpu_relax();
            s = atomic_load_explicit(&l->s, memory_order_relaxed);
            if (rw_try(l, &s, writer)) { cp_spin_end(); return; }
        }
        cp_spin_end();
    }
    for (;;) {
        uint32_t v = cp_ec_prepare(ec); /* flag + seq_cst fence */
        s = atomic_load_explicit(&l->s, memory_order_relaxed);
        if (rw_try(l, &s, writer)) return;
        cp_futex_wait(&ec->w, v, 0);
    }
}

static inline void rw_after_runlock(cp_rwlock *l, uint32_t old)
{
    if ((old & RD_MASK) == 1 && (old & WW_MASK)) cp_ec_signal(&l->wr_ec);
}

static inline void rw_after_wunlock(cp_rwlock *l, uint32_t old)
{
    if (old & WW_MASK) cp_ec_signal(&l->wr_ec);
    else cp_ec_signal(&l->rd_ec);
}
