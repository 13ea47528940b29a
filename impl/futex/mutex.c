/*
 * futex family: cp_mutex is the futex mutex of futex.h (Drepper's mutex 3).
 *
 * Invariant (the word v): 0 free, 1 locked, 2 locked and someone may sleep
 * on v. Only a thread that saw 2, or set it, sleeps; unlock wakes one
 * sleeper iff the word was 2. Lock is an acquire RMW, unlock a release
 * exchange, so TSan sees the hand-off of the protected data.
 *
 * Wait policy: an uncontended lock is one CAS. A contended one spins
 * briefly (FX_SPIN pauses, only if it gets a spinner slot from
 * cp_spin_begin: spinning pays only while the holder has a core), then
 * marks the word 2 and FUTEX_WAITs. Not FIFO: a woken sleeper competes with
 * arriving threads (barging), as sync.Mutex in normal mode.
 */
#include "adapter.h"

struct cp_mutex {
    const cp_backend *b;
    cp_fmutex m;
};

cp_mutex *cp_futex_mutex_new(const cp_backend *b)
{
    if (b != &cp_backend_futex) { errno = EINVAL; return NULL; }
    cp_mutex *m = cp__zalloc(sizeof *m);
    if (!m) return NULL;
    m->b = b;
    atomic_init(&m->m.v, 0);
    return m;
}

void cp_futex_mutex_free(cp_mutex *m) { free(m); }

__attribute__((noinline)) static void lock_slow(cp_fmutex *m)
{
    if (cp_spin_begin()) {
        for (int i = 0; i < FX_SPIN; i++) {
            cp_cpu_relax();
            if (atomic_load_explicit(&m->v, memory_order_relaxed) == 0 && cp_fmutex_trylock(m)) {
                cp_spin_end();
                return;
            }
        }
        cp_spin_end();
    }
    /* Taking the word with 2 (not 1) after a sleep is conservative: we
     * cannot know whether others still sleep, so our unlock will wake one. */
    while (atomic_exchange_explicit(&m->v, 2, memory_order_acquire) != 0)
        cp_futex_wait(&m->v, 2, 0);
}

void cp_futex_mutex_lock(cp_mutex *m)
{
    if (cp_likely(cp_fmutex_trylock(&m->m))) return;
    lock_slow(&m->m);
}

bool cp_futex_mutex_trylock(cp_mutex *m) { return cp_fmutex_trylock(&m->m); }

void cp_futex_mutex_unlock(cp_mutex *m) { cp_fmutex_unlock(&m->m); }
