/*
 * mutex family: cp_cond is condq.h (a FIFO of waiters, see its invariants)
 * under an adaptive pthread mutex; each waiter sleeps on its own pthread
 * condvar (CLOCK_MONOTONIC, so the ctx deadline is a timed wait), and a
 * cancel from its ctx signals that condvar. Why not one pthread_cond_t for
 * the cond: pthread condvars allow spurious wake-ups and cannot be woken by
 * a ctx; per-waiter records give exactly-one-per-signal and cancellation.
 */
#include "../../core/internal.h"
#include "waiter.h"

#include <errno.h>

#define CQ_LOCK_T pthread_mutex_t
#define CQ_LOCK_INIT(l) cp_mutex__lock_init(l)
#define CQ_LOCK_FINI(l) cp_check(pthread_mutex_destroy(l) == 0)
#define CQ_LOCK(l) cp_check(pthread_mutex_lock(l) == 0)
#define CQ_UNLOCK(l) cp_check(pthread_mutex_unlock(l) == 0)
#define CQ_W_INIT cp_mutex_w_init
#define CQ_W_FINI cp_mutex_w_fini
#define CQ_W_CLAIM cp_mutex_w_claim
#define CQ_W_FINISH cp_mutex_w_finish
#define CQ_W_PARK cp_mutex_w_park
#define CQ_M_LOCK cp_mutex_mutex_lock
#define CQ_M_UNLOCK cp_mutex_mutex_unlock
#include <cp/family.h>
#include "../condq.h"

struct cp_cond {
    const cp_backend *b;
    condq q;
};

cp_cond *cp_mutex_cond_new(const cp_backend *b)
{
    if (b != &cp_backend_mutex) { errno = EINVAL; return NULL; }
    cp_cond *c = cp__zalloc(sizeof *c);
    if (!c) return NULL;
    c->b = b;
    cq_init(&c->q);
    return c;
}

void cp_mutex_cond_free(cp_cond *c)
{
    if (!c) return;
    cq_fini(&c->q);
    free(c);
}

cp_status cp_mutex_cond_wait(cp_cond *c, cp_mutex *m, cp_ctx *ctx)
{
    if (cp_unlikely(CP_OBJ_B(m) != c->b || (ctx && ctx->b != c->b))) return CP_EINVAL;
    return cq_wait(&c->q, m, ctx);
}
void cp_mutex_cond_signal(cp_cond *c) { cq_signal(&c->q); }
void cp_mutex_cond_broadcast(cp_cond *c) { cq_broadcast(&c->q); }
