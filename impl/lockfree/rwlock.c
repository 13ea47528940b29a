/*
 * lockfree family: cp_rwlock is rwword.h's writer-preferring word (see its
 * invariants); waiters pause, then yield, and never sleep in the kernel, so
 * an unlock has nobody to wake.
 *
 * Wait policy: exponential pause (1, 2, 4 ... 64 pauses between looks),
 * about LF_SPIN rounds of it while cp_spin_begin grants a spinner slot,
 * then sched_yield between looks.
 */
#include "adapter.h"

struct cp_rwlock {
    const cp_backend *b;
    _Atomic uint32_t s;
};

#include "../rwword.h"

static inline void rw_init_wait(cp_rwlock *l) { (void)l; }

static inline __attribute__((always_inline)) void rw_wait(cp_rwlock *l, bool writer)
{
    bool spin = cp_spin_begin();
    for (unsigned n = 0;; n++) {
        uint32_t s = atomic_load_explicit(&l->s, memory_order_relaxed);
        if (rw_try(l, &s, writer)) break;
        if (spin && n < LF_SPIN) {
            unsigned k = 1u << (n < 6 ? n : 6);
            for (unsigned i = 0; i < k; i++) cp_cpu_relax();
        } else {
            sched_yield();
        }
    }
    if (spin) cp_spin_end();
}

static inline void rw_after_runlock(cp_rwlock *l, uint32_t old) { (void)l; (void)old; }
static inline void rw_after_wunlock(cp_rwlock *l, uint32_t old) { (void)l; (void)old; }
