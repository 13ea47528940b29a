/*
 * mutex family: weighted semaphore (x/sync/semaphore.Weighted), semq.h under
 * a pthread mutex; every operation takes the mutex (as Weighted does), and a
 * waiter sleeps on its own condition variable (cp_mutex_w_park).
 *
 * Invariants: those of semq.h; here the word only ever changes under the
 * mutex, so its CASes never fail.
 */
#include "../../core/internal.h"
#include "waiter.h"

#define SQ_LOCK_T pthread_mutex_t
#define SQ_LOCK_INIT(l) cp_mutex__lock_init(l)
#define SQ_LOCK_FINI(l) cp_check(pthread_mutex_destroy(l) == 0)
#define SQ_LOCK(l) cp_check(pthread_mutex_lock(l) == 0)
#define SQ_UNLOCK(l) cp_check(pthread_mutex_unlock(l) == 0)
#define SQ_W_INIT cp_mutex_w_init
#define SQ_W_FINI cp_mutex_w_fini
#define SQ_W_CLAIM cp_mutex_w_claim
#define SQ_W_FINISH cp_mutex_w_finish
#define SQ_W_PARK cp_mutex_w_park
#include "../semq.h"

struct cp_sem {
    const cp_backend *b;
    semq q;
};

cp_sem *cp_mutex_sem_new(const cp_backend *b, int64_t permits)
{
    if (b != &cp_backend_mutex || permits < 0 || permits > INT64_MAX / 4) { errno = EINVAL; return NULL; }
    cp_sem *s = cp__zalloc(sizeof *s);
    if (!s) return NULL;
    s->b = b;
    sq_init(&s->q, permits);
    return s;
}

void cp_mutex_sem_free(cp_sem *s)
{
    if (!s) return;
    sq_fini(&s->q);
    free(s);
}

cp_status cp_mutex_sem_acquire(cp_sem *s, int64_t n, cp_ctx *ctx)
{
    if (sq_bad_n(&s->q, n) || (ctx && ctx->b != s->b)) return CP_EINVAL;
    if (ctx) {  /* Weighted: a ctx already done fails even if permits are free */
        cp_status st = cp__ctx_err_fast(ctx);
        if (st) return st;
    }
    return sq_acquire_slow(&s->q, n, ctx);
}

cp_status cp_mutex_sem_try_acquire(cp_sem *s, int64_t n)
{
    if (sq_bad_n(&s->q, n)) return CP_EINVAL;
    return sq_try_locked(&s->q, n);
}

void cp_mutex_sem_release(cp_sem *s, int64_t n)
{
    if (n < 0) cp_die("semaphore: release of a negative count");
    if (n == 0) return;
    sq_release_locked(&s->q, n);
}
