/*
 * lockfree family: weighted semaphore (x/sync/semaphore.Weighted), semq.h under
 * a spin lock (pause, then yield), waiters spin on their own state word
 * (cp_lockfree_w_park: pause, then sched_yield; never sleep in the kernel).
 *
 * Invariants: those of semq.h. Uncontended acquire and release are one CAS
 * on the word (cur << 1 | waiters); the lock is taken only when a request
 * does not fit or somebody waits.
 */
#include "../../core/internal.h"
#include "waiter.h"

#define SQ_LOCK_T cp_spin
#define SQ_LOCK_INIT(l) atomic_init(&(l)->v, 0)
#define SQ_LOCK_FINI(l) ((void)(l))
#define SQ_LOCK cp_spin_lock
#define SQ_UNLOCK cp_spin_unlock
#define SQ_W_INIT cp_lockfree_w_init
#define SQ_W_FINI cp_lockfree_w_fini
#define SQ_W_CLAIM cp_lockfree_w_claim
#define SQ_W_FINISH cp_lockfree_w_finish
#define SQ_W_PARK cp_lockfree_w_park
#include "../semq.h"

struct cp_sem {
    const cp_backend *b;
    semq q;
};

cp_sem *cp_lockfree_sem_new(const cp_backend *b, int64_t permits)
{
    if (b != &cp_backend_lockfree || permits < 0 || permits > INT64_MAX / 4) { errno = EINVAL; return NULL; }
    cp_sem *s = cp__zalloc(sizeof *s);
    if (!s) return NULL;
    s->b = b;
    sq_init(&s->q, permits);
    return s;
}

void cp_lockfree_sem_free(cp_sem *s)
{
    if (!s) return;
    sq_fini(&s->q);
    free(s);
}

cp_status cp_lockfree_sem_acquire(cp_sem *s, int64_t n, cp_ctx *ctx)
{
    if (sq_bad_n(&s->q, n) || (ctx && ctx->b != s->b)) return CP_EINVAL;
    if (ctx) {  /* Weighted: a ctx already done fails even if permits are free */
        cp_status st = cp__ctx_err_fast(ctx);
        if (st) return st;
    }
    if (cp_likely(sq_try_fast(&s->q, n))) return CP_OK;
    return sq_acquire_slow(&s->q, n, ctx);
}

cp_status cp_lockfree_sem_try_acquire(cp_sem *s, int64_t n)
{
    if (sq_bad_n(&s->q, n)) return CP_EINVAL;
    return sq_try_fast(&s->q, n) ? CP_OK : CP_WOULDBLOCK;
}

void cp_lockfree_sem_release(cp_sem *s, int64_t n)
{
    if (n < 0) cp_die("semaphore: release of a negative count");
    if (n == 0) return;
    if (cp_likely(sq_release_fast(&s->q, n))) return;
    sq_release_locked(&s->q, n);
}
