/*
 * Raw futex(2) helpers for the futex family: wait/wake wrappers, a futex
 * mutex, and an event count. No pthread synchronisation objects.
 */
#ifndef CP_IMPL_FUTEX_H
#define CP_IMPL_FUTEX_H

#include "../../core/internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449         /* Linux 5.16+; older headers lack the number */
#endif

/* Sleep while *w == val, until woken or until the CLOCK_MONOTONIC deadline
 * (0: none). Spurious returns are fine: every caller re-checks. */
static inline void cp_futex_wait(_Atomic uint32_t *w, uint32_t val, uint64_t deadline)
{
    long r;
    if (deadline) {
        struct timespec ts = cp__ts(deadline);
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
        r = syscall(SYS_futex, w, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, &ts, NULL,
                    FUTEX_BITSET_MATCH_ANY);
    } else {
        r = syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
    }
    if (r == -1 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
        cp_die("futex wait: errno %d", errno);
}

static inline void cp_futex_wake(_Atomic uint32_t *w, int n)
{
    if (syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0) == -1)
        cp_die("futex wake: errno %d", errno);
}

/* Brief spin before a futex sleep: a futex wake of a halted vCPU costs about
 * 25 us here, so a few microseconds of spinning pay for themselves. */
#define FX_SPIN 100
/* A parked waiter's sched_yields after its spin (waiter.c). */
#ifndef FX_PARK_YIELDS
#define FX_PARK_YIELDS 16
#endif

/* ---- futex mutex (Drepper, "Futexes are tricky", mutex 3) ----
 * Invariant: 0 free, 1 locked, 2 locked and someone may sleep on it. Only a
 * thread that saw 2 (or set it) sleeps; unlock wakes one sleeper iff the word
 * was 2. Acquire on lock, release on unlock. */
typedef struct cp_fmutex { _Atomic uint32_t v; } cp_fmutex;

static inline bool cp_fmutex_trylock(cp_fmutex *m)
{
    uint32_t z = 0;
    return atomic_compare_exchange_strong_explicit(&m->v, &z, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void cp_fmutex_lock(cp_fmutex *m)
{
    if (cp_likely(cp_fmutex_trylock(m))) return;
    for (int i = 0; i < FX_SPIN; i++) {
        cp_cpu_relax();
        if (atomic_load_explicit(&m->v, memory_order_relaxed) == 0 && cp_fmutex_trylock(m))
            return;
    }
    while (atomic_exchange_explicit(&m->v, 2, memory_order_acquire) != 0)
        cp_futex_wait(&m->v, 2, 0);
}

static inline void cp_fmutex_unlock(cp_fmutex *m)
{
    if (atomic_exchange_explicit(&m->v, 0, memory_order_release) == 2) cp_futex_wake(&m->v, 1);
}

/* ---- event count (as ck_ec): word = 2 * generation + waiters flag ----
 * A waiter: v = cp_ec_prepare() (sets the flag), re-checks its condition,
 * then cp_futex_wait(word, v). A signaller, after making the condition true:
 * cp_ec_signal(), which is a fence and a load when nobody waits, and bumps
 * the generation (clearing the flag) and wakes all sleepers otherwise.
 * The seq_cst fences on both sides are the Dekker pair: either the waiter's
 * re-check sees the new state, or the signaller sees the flag. */
typedef struct cp_ec { _Atomic uint32_t w; } cp_ec;

static inline uint32_t cp_ec_prepare(cp_ec *e)
{
#ifndef CP_BROKEN_LOSTWAKE
    uint32_t v = atomic_fetch_or_explicit(&e->w, 1, memory_order_seq_cst) | 1;
    atomic_thread_fence(memory_order_seq_cst);
    return v;
#else
    /* Negative control (impl/broken/): the waiter does not announce itself,
     * so a signaller that finds no flag never wakes it: a lost wake-up. */
    return atomic_load_explicit(&e->w, memory_order_seq_cst);
#endif
}

__attribute__((noinline, cold)) static void cp_ec_wake_slow(cp_ec *e, uint32_t v)
{
    /* A failed CAS means someone else bumped it (and woke everyone), or a
     * waiter that prepared after our fence, which will see our state. */
    if (atomic_compare_exchange_strong_explicit(&e->w, &v, (v + 2) & ~1u, memory_order_relaxed,
                                                memory_order_relaxed))
        cp_futex_wake(&e->w, INT_MAX);
}

static inline void cp_ec_signal(cp_ec *e)
{
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t v = atomic_load_explicit(&e->w, memory_order_relaxed);
    if (cp_unlikely(v & 1)) cp_ec_wake_slow(e, v);
}

#endif /* CP_IMPL_FUTEX_H */
