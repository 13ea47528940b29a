/*
 * lockfree family: cp_cond is condq.h (a FIFO of waiters, see its invariants)
 * under a cp_spin lock (TTAS, pause then yield); each waiter spins with a
 * pause, then yields, polling its own state word (cp_lockfree_w_park): it
 * never sleeps in the kernel. A ctx cancel flips the state word; the deadline
 * is checked as it polls.
 */
#include "../../core/internal.h"

#include <errno.h>
#include "waiter.h"

#define CQ_LOCK_T cp_spin
#define CQ_LOCK_INIT(l) atomic_init(&(l)->v, 0)
#define CQ_LOCK_FINI(l) ((void)(l))
#define CQ_LOCK cp_spin_lock
#define CQ_UNLOCK cp_spin_unlock
#define CQ_W_INIT cp_lockfree_w_init
#define CQ_W_FINI cp_lockfree_w_fini
#define CQ_W_CLAIM cp_lockfree_w_claim
#define CQ_W_FINISH cp_lockfree_w_finish
#define CQ_W_PARK cp_lockfree_w_park
#define CQ_M_LOCK cp_lockfree_mutex_lock
#define CQ_M_UNLOCK cp_lockfree_mutex_unlock
#include <cp/family.h>
#include "../condq.h"

struct cp_cond {
    const cp_backend *b;
    condq q;
};

cp_cond *cp_lockfree_cond_new(const cp_backend *b)
{
    if (b != &cp_backend_lockfree) { errno = EINVAL; return NULL; }
    cp_cond *c = cp__zalloc(sizeof *c);
    if (!c) return NULL;
    c->b = b;
    cq_init(&c->q);
    return c;
}

void cp_lockfree_cond_free(cp_cond *c)
{
    if (!c) return;
    cq_fini(&c->q);
    free(c);
}

cp_status cp_lockfree_cond_wait(cp_cond *c, cp_mutex *m, cp_ctx *ctx)
{
    if (cp_unlikely(CP_OBJ_B(m) != c->b || (ctx && ctx->b != c->b))) return CP_EINVAL;
    return cq_wait(&c->q, m, ctx);
}
void cp_lockfree_cond_signal(cp_cond *c) { cq_signal(&c->q); }
void cp_lockfree_cond_broadcast(cp_cond *c) { cq_broadcast(&c->q); }
