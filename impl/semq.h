/*
 * A weighted semaphore with FIFO waiters (golang.org/x/sync/semaphore.Weighted),
 * written once and instantiated as every template of impl/: the family's
 * sem.c includes its adapter.h (FAM_LOCK*, FAM_W_*, FAM_SEM_FAST) and then
 * this file, which defines the family's cp_<family>_sem_* entry points.
 *
 * State: one atomic word, word = cur << 1 | SQ_WAITERS, where cur is the
 * number of permits held and SQ_WAITERS says the waiter queue is non-empty.
 *
 * Invariants:
 *   - 0 <= cur <= size at every instant;
 *   - under the lock, SQ_WAITERS is set iff the queue is non-empty; the bit
 *     and the queue change only under the lock;
 *   - while SQ_WAITERS is clear, cur may change outside the lock, but only by
 *     CAS on the whole word (the fast paths: sq_try_fast, sq_release_fast);
 *     while it is set, nobody acquires outside the lock and releases take the
 *     lock, so every change of cur happens under the lock. A CAS that loaded
 *     the word before the bit was set fails, so no fast path slips past it;
 *   - FIFO, as Weighted: an acquire succeeds at once only if n fits and no
 *     one waits; the grant loop (sq_grant) takes waiters from the head while
 *     the head fits, so a large head blocks later small ones;
 *   - a queued waiter ends exactly one way: the granter's claim CAS (it then
 *     holds the permits, added to cur under the lock) or its ctx's cancel /
 *     its deadline (it then holds nothing). A cancelled waiter removes itself;
 *     if it was the head, its removal may let the next ones in, so it re-runs
 *     the grant loop (Weighted's notifyWaiters). A granter that meets a
 *     cancelled waiter at the head drops it and goes on.
 *
 * The mutex family takes the lock for every operation (FAM_SEM_FAST 0: the
 * CASes then always succeed); futex and lockfree (FAM_SEM_FAST 1) try the
 * lock-free fast paths first.
 */
#ifndef CP_IMPL_SEMQ_H
#define CP_IMPL_SEMQ_H

#ifndef FAM_NAME
#error "include the family's adapter.h before impl/semq.h"
#endif

#include "../core/internal.h"
#include "wq.h"

#include <errno.h>
#include <stdint.h>

#define SQ_WAITERS ((uint64_t)1)
#define SQ_CUR(w) ((int64_t)((w) >> 1))
#define SQ_N(n) ((uint64_t)(n) << 1)

typedef struct sq_node {
    cp_waiter *w;
    int64_t n;
    struct sq_node *next, *prev;
    bool queued;
} sq_node;

typedef struct semq {
    CP_ALIGNED _Atomic uint64_t word;
    int64_t size;
    FAM_LOCK_T lock;
    sq_node *first, *last;
} semq;

static inline void sq_init(semq *s, int64_t size)
{
    atomic_init(&s->word, 0);
    s->size = size;
    FAM_LOCK_INIT(&s->lock);
    s->first = s->last = NULL;
}

static inline void sq_fini(semq *s) { FAM_LOCK_FINI(&s->lock); }

/* Acquire n if it fits and nobody waits. One CAS; acquire ordering: what the
 * previous holder did before its release happens before our critical work. */
static inline bool sq_try_fast(semq *s, int64_t n)
{
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    for (;;) {
        if ((w & SQ_WAITERS) || SQ_CUR(w) + n > s->size) return false;
        if (atomic_compare_exchange_weak_explicit(&s->word, &w, w + SQ_N(n),
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

static inline void sq_overrelease(void) { cp_die("semaphore: released more than held"); }

/* Release n while nobody waits: one CAS (release ordering, the pair of the
 * acquire above). Returns false if the waiters bit is set: take the lock. */
static inline bool sq_release_fast(semq *s, int64_t n)
{
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    for (;;) {
        if (w & SQ_WAITERS) return false;
        if (SQ_CUR(w) < n) sq_overrelease();
        if (atomic_compare_exchange_weak_explicit(&s->word, &w, w - SQ_N(n),
                                                  memory_order_release, memory_order_relaxed))
            return true;
    }
}

CP_WQ_DEFINE(sq, sq_node, semq, CP_WQ_NO_HOOK)

/* Under the lock: grant waiters from the head while the head fits; return
 * the claimed ones (linked through next) to be finished after unlocking.
 * Clears SQ_WAITERS if the queue ends empty. While the bit is set, cur
 * changes only under the lock, so a relaxed view of it here is exact;
 * the hand-off to a granted waiter is ordered by its state word (claim,
 * then finish with release; the waiter's park reads it with acquire). */
static inline sq_node *sq_grant(semq *s)
{
    sq_node *wake = NULL, **tail = &wake, *nd;
    while ((nd = s->first)) {
        uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
        if (SQ_CUR(w) + nd->n > s->size) break;    /* the head blocks the rest */
        sq_remove(s, nd);
        if (!FAM_W_CLAIM(nd->w)) continue;           /* cancelled: it holds nothing */
        atomic_fetch_add_explicit(&s->word, SQ_N(nd->n), memory_order_relaxed);
        *tail = nd;
        tail = &nd->next;
    }
    *tail = NULL;
    if (!s->first) atomic_fetch_and_explicit(&s->word, ~SQ_WAITERS, memory_order_release);
    return wake;
}

/* Release with the lock: for the mutex family always, for the others when
 * the waiters bit is set. acq_rel: our critical work happens before the
 * permits reach whoever takes them next (fast path or grant). */
__attribute__((noinline, unused)) static void sq_release_locked(semq *s, int64_t n)
{
    FAM_LOCK(&s->lock);
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    for (;;) {
        if (SQ_CUR(w) < n) {
            FAM_UNLOCK(&s->lock);
            sq_overrelease();
        }
        if (atomic_compare_exchange_weak_explicit(&s->word, &w, w - SQ_N(n),
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    sq_node *wake = s->first ? sq_grant(s) : NULL;
    FAM_UNLOCK(&s->lock);
    sq_finish_all(wake);
}

static inline cp_status sq_try_locked(semq *s, int64_t n)
{
    FAM_LOCK(&s->lock);
    bool ok = sq_try_fast(s, n);
    FAM_UNLOCK(&s->lock);
    return ok ? CP_OK : CP_WOULDBLOCK;
}

/* The slow path: take the lock, acquire if n fits and nobody waits, else
 * queue (setting the waiters bit) and park. */
__attribute__((noinline, unused)) static cp_status sq_acquire_slow(semq *s, int64_t n, cp_ctx *ctx)
{
    FAM_LOCK(&s->lock);
    uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    for (;;) {
        if (w & SQ_WAITERS) break;
        if (SQ_CUR(w) + n <= s->size) {
            if (atomic_compare_exchange_weak_explicit(&s->word, &w, w + SQ_N(n),
                                                      memory_order_acquire, memory_order_relaxed)) {
                FAM_UNLOCK(&s->lock);
                return CP_OK;
            }
            continue;
        }
        /* Does not fit: announce a waiter. A fast release that loaded the
         * word before this CAS fails its own CAS and takes the lock, which
         * it gets only after we are queued. seq_cst: nothing to pair with
         * beyond the word itself, but it is off the fast path. */
        if (atomic_compare_exchange_weak_explicit(&s->word, &w, w | SQ_WAITERS,
                                                  memory_order_seq_cst, memory_order_relaxed))
            break;
    }

    cp_waiter wt;
    cp_wnode cn;
    sq_node me = { .w = &wt, .n = n };
    FAM_W_INIT(&wt);
    wt.crowd = true;
    /* Lock order: semaphore lock -> ctx wake list -> waiter. */
    cp_status st = cp__ctx_watch(ctx, &wt, &cn);
    if (st) {
        /* Not queued: if the bit was ours alone, take it back. */
        if (!s->first) atomic_fetch_and_explicit(&s->word, ~SQ_WAITERS, memory_order_relaxed);
        FAM_UNLOCK(&s->lock);
        FAM_W_FINI(&wt);
        return st;
    }
    sq_enqueue(s, &me);
    FAM_UNLOCK(&s->lock);

    uint32_t r = FAM_W_PARK(&wt, cp_ctx_deadline(ctx));
    cp_wlist_del(&cn);
    if (r == CP_W_DONE) {   /* granted: the permits are ours */
        FAM_W_FINI(&wt);
        return CP_OK;
    }
    /* Cancelled or timed out: our CAS won, so no granter counted us. */
    FAM_LOCK(&s->lock);
    sq_node *wake = NULL;
    if (me.queued) {
        bool head = s->first == &me;
        sq_remove(s, &me);
        if (head || !s->first) wake = sq_grant(s);  /* also clears the bit if empty */
    }
    FAM_UNLOCK(&s->lock);
    sq_finish_all(wake);
    FAM_W_FINI(&wt);
    return cp__ctx_reason(ctx);
}

/* Argument checks shared by acquire and try_acquire. n == 0 is valid: it
 * succeeds at once (unless the ctx has ended) without touching the word or
 * the queue, as Weighted.Acquire(ctx, 0) returns nil. Unlike Weighted, it
 * does not queue behind waiters (nor does try_acquire(0) fail while some
 * wait): zero permits take nothing from anyone, so FIFO has nothing to
 * protect, and cp.h asks for "at once". It orders nothing either (no
 * acquire load): there is no holder it could come after. */
static inline bool sq_bad_n(const semq *s, int64_t n) { return n < 0 || n > s->size; }


/* ---- the family's entry points ---- */
struct cp_sem {
    const cp_backend *b;
    semq q;
};

cp_sem *FAM_FN(sem_new)(const cp_backend *b, int64_t permits)
{
    if (b != &FAM_BACKEND || permits < 0 || permits > INT64_MAX / 4) {
        errno = EINVAL;
        return NULL;
    }
    cp_sem *s = cp__zalloc(sizeof *s);
    if (!s) return NULL;
    s->b = b;
    sq_init(&s->q, permits);
    return s;
}

void FAM_FN(sem_free)(cp_sem *s)
{
    if (!s) return;
    sq_fini(&s->q);
    free(s);
}

cp_status FAM_FN(sem_acquire)(cp_sem *s, int64_t n, cp_ctx *ctx)
{
    if (sq_bad_n(&s->q, n) || (ctx && ctx->b != s->b)) return CP_EINVAL;
    if (ctx) { /* Weighted: a ctx already done fails even if permits are free */
        cp_status st = cp__ctx_err_fast(ctx);
        if (st) return st;
    }
    if (n == 0) return CP_OK;                   /* see sq_bad_n */
    if (FAM_SEM_FAST && cp_likely(sq_try_fast(&s->q, n))) return CP_OK;
    return sq_acquire_slow(&s->q, n, ctx);
}

cp_status FAM_FN(sem_try_acquire)(cp_sem *s, int64_t n)
{
    if (sq_bad_n(&s->q, n)) return CP_EINVAL;
    if (n == 0) return CP_OK;                   /* see sq_bad_n */
    if (FAM_SEM_FAST) return sq_try_fast(&s->q, n) ? CP_OK : CP_WOULDBLOCK;
    return sq_try_locked(&s->q, n);
}

void FAM_FN(sem_release)(cp_sem *s, int64_t n)
{
    if (n < 0) cp_die("semaphore: release of a negative count");
    if (n == 0) return;
    if (FAM_SEM_FAST && cp_likely(sq_release_fast(&s->q, n))) return;
    sq_release_locked(&s->q, n);
}

#endif /* CP_IMPL_SEMQ_H */
