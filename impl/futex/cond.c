/*
 * futex family: cp_cond is condq.h (a FIFO of waiters, see its invariants)
 * under a futex mutex; each waiter spins briefly, then FUTEX_WAITs on its
 * own state word (cp_futex_w_park), so a signal wakes exactly the thread it
 * claimed, and a ctx cancel or a deadline (futex timeout) ends the sleep.
 */
#include "futex.h"
#include "waiter.h"

#define CQ_LOCK_T cp_fmutex
#define CQ_LOCK_INIT(l) atomic_init(&(l)->v, 0)
#define CQ_LOCK_FINI(l) ((void)(l))
#define CQ_LOCK cp_fmutex_lock
#define CQ_UNLOCK cp_fmutex_unlock
#define CQ_W_INIT cp_futex_w_init
#define CQ_W_FINI cp_futex_w_fini
#define CQ_W_CLAIM cp_futex_w_claim
#define CQ_W_FINISH cp_futex_w_finish
#define CQ_W_PARK cp_futex_w_park
#define CQ_M_LOCK cp_futex_mutex_lock
#define CQ_M_UNLOCK cp_futex_mutex_unlock
#include <cp/family.h>
#include "../condq.h"

struct cp_cond {
    const cp_backend *b;
    condq q;
};

cp_cond *cp_futex_cond_new(const cp_backend *b)
{
    if (b != &cp_backend_futex) { errno = EINVAL; return NULL; }
    cp_cond *c = cp__zalloc(sizeof *c);
    if (!c) return NULL;
    c->b = b;
    cq_init(&c->q);
    return c;
}

void cp_futex_cond_free(cp_cond *c)
{
    if (!c) return;
    cq_fini(&c->q);
    free(c);
}

cp_status cp_futex_cond_wait(cp_cond *c, cp_mutex *m, cp_ctx *ctx)
{
    if (cp_unlikely(CP_OBJ_B(m) != c->b || (ctx && ctx->b != c->b))) return CP_EINVAL;
    return cq_wait(&c->q, m, ctx);
}
void cp_futex_cond_signal(cp_cond *c) { cq_signal(&c->q); }
void cp_futex_cond_broadcast(cp_cond *c) { cq_broadcast(&c->q); }
