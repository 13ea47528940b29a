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
/* A waiter's sched_yields after its spin, before its futex sleep (waiter.c's
 * waiters, chan.c's ring waits). */
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

/* ---- counted event count: one wake at a time ----
 * A cp_ec whose plain waiters (a channel's blocked senders or receivers)
 * count themselves instead of setting the flag, so that a signal wakes one
 * of them, not the herd, and no signal makes a system call while a woken
 * waiter has yet to run. Waiters that need every signal (a select, parked
 * on several words with futex_waitv) still set the flag (bit 0) and are
 * woken all at once. Word: generation << 2 | WAKING (bit 1) | flag (bit 0).
 * Invariants:
 *   - sleepers counts the threads between cp_ecq_prepare and cp_ecq_done;
 *   - WAKING is set by the signal that wakes one sleeper, and cleared by the
 *     next waiter to prepare (the woken one, when it looks again: see
 *     cp_ecq_unwake), so no thread sleeps while it is set; while it is set,
 *     a signal does nothing, and the waiter that clears it, once it has what
 *     it waited for, passes the wake on if more is there;
 *   - a waiter that leaves without what it waited for (its ctx, its
 *     deadline) passes its wake on too;
 *   - every wake bumps the generation, so that a waiter not yet asleep does
 *     not fall asleep (its futex_wait sees a new word).
 * Dekker pairs (seq_cst on both sides): a waiter's counter increment before
 * its re-check, against the signaller's fence before it reads the counter;
 * a woken waiter's clearing of WAKING before it looks for more, against
 * the signaller's fence before it reads WAKING. */
#define CP_ECQ_WAKING 2u
#define CP_ECQ_GEN 4u
typedef struct cp_ecq { cp_ec ec; _Atomic uint32_t sleepers; } cp_ecq;

static inline uint32_t cp_ecq_prepare(cp_ecq *q)
{
#ifndef CP_BROKEN_LOSTWAKE
    atomic_fetch_add_explicit(&q->sleepers, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
#endif
    return atomic_load_explicit(&q->ec.w, memory_order_seq_cst);
}

static inline void cp_ecq_done(cp_ecq *q)
{
#ifndef CP_BROKEN_LOSTWAKE
    atomic_fetch_sub_explicit(&q->sleepers, 1, memory_order_relaxed);
#else
    (void)q;
#endif
}

/* A waiter's value from cp_ecq_prepare with WAKING set: clear it, so that it
 * never sleeps while signals are held back (the woken one may be itself, or
 * may have left). *cleared: it cleared it, and so owes the check for more
 * (cp_ecq_prepare's caller passes the wake on if there is). */
static inline uint32_t cp_ecq_unwake(cp_ecq *q, uint32_t v, bool *cleared)
{
    if (cp_likely(!(v & CP_ECQ_WAKING))) return v;
    v = atomic_fetch_and_explicit(&q->ec.w, ~CP_ECQ_WAKING, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    *cleared = *cleared || (v & CP_ECQ_WAKING);
    return v & ~CP_ECQ_WAKING;
}

/* all: wake everyone (close, a ctx kick); else one sleeper, unless a woken
 * one has yet to run; everyone if a select sleeps here (the flag). */
__attribute__((noinline, cold)) static void cp_ecq_wake(cp_ecq *q, bool all)
{
    uint32_t v = atomic_load_explicit(&q->ec.w, memory_order_relaxed), nv;
    do {
        all = all || (v & 1);
        if (!all && (v & CP_ECQ_WAKING)) return;
        nv = all ? (v + CP_ECQ_GEN) & ~(CP_ECQ_WAKING | 1u) : (v + CP_ECQ_GEN) | CP_ECQ_WAKING;
    } while (!atomic_compare_exchange_weak_explicit(&q->ec.w, &v, nv, memory_order_release,
                                                    memory_order_relaxed));
    cp_futex_wake(&q->ec.w, all ? INT_MAX : 1);
}

/* cp_ecq_signal after an operation whose last atomic write was a seq_cst
 * RMW that a waiter's re-check reads after its cp_ecq_prepare: the ring's
 * claim CAS on tail or head (CP_RING_CLAIM_ORDER, set seq_cst by chan.c; the
 * waiter's exact try reads that index after a fence, and a claimed but not
 * yet published slot makes it wait for the publish, not sleep). That RMW
 * and these seq_cst loads are the signaller's half of the Dekker pair as
 * the fence and a later store are in cp_ecq_signal: either the waiter's
 * re-check sees the claim, or these loads see its count. So no fence,
 * which gcc makes a second locked instruction per channel operation. */
static inline void cp_ecq_signal_claimed(cp_ecq *q)
{
    uint32_t v = atomic_load_explicit(&q->ec.w, memory_order_seq_cst);
    uint32_t n = atomic_load_explicit(&q->sleepers, memory_order_seq_cst);
    if (cp_unlikely((v & 1) || (n && !(v & CP_ECQ_WAKING)))) cp_ecq_wake(q, false);
}

/* After a store (or nothing) that a waiter's re-check reads: the fence
 * before the loads is the signaller's half of the Dekker pair. */
static inline void cp_ecq_signal(cp_ecq *q)
{
    atomic_thread_fence(memory_order_seq_cst);
    cp_ecq_signal_claimed(q);
}

static inline void cp_ecq_broadcast(cp_ecq *q)
{
    atomic_thread_fence(memory_order_seq_cst);
    cp_ecq_wake(q, true);
}

#endif /* CP_IMPL_FUTEX_H */
