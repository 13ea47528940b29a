/*
 * sync.Cond written once (as gochan.h is for channels) and instantiated by
 * each family with its own internal lock, waiter and mutex:
 *
 *   mutex family:    adaptive pthread mutex, waiters sleep on their condvar
 *   futex family:    cp_flock, waiters FUTEX_WAIT on their state word
 *   lockfree family: cp_spin, waiters spin/yield on their state word
 *
 * Instantiated as every template of impl/: the family's cond.c includes its
 * adapter.h (FAM_LOCK*, FAM_W_*, FAM_M_LOCK/UNLOCK: its cp_mutex) and then
 * this file, which defines the family's cp_<family>_cond_* entry points.
 *
 * Invariants (under the cond's internal lock):
 *   - the queue is a FIFO of wq.h (see its invariants): a node is on it iff
 *     node->queued, and belongs to a thread inside cq_wait;
 *   - signal removes nodes from the head until it claims one (CAS, see
 *     core/internal.h): a node whose waiter was cancelled or timed out loses
 *     nothing, the signal goes to the next live waiter, or is dropped if
 *     there is none (a signal with no waiter is lost, as in sync.Cond);
 *   - so one signal finishes at most one waiter, and a waiter returns CP_OK
 *     only if a signal/broadcast finished it: no spurious wake-ups.
 * A waiter enqueues itself before it unlocks m (Go's notifyListAdd before
 * Unlock): a signal issued after the waiter released m always finds it.
 * Lock order: m -> cond lock -> ctx wake list -> waiter. The claimer
 * finishes waiters after dropping the cond lock (a wake-up can be a
 * syscall).
 */
#ifndef CP_IMPL_CONDQ_H
#define CP_IMPL_CONDQ_H

#ifndef FAM_NAME
#error "include the family's adapter.h before impl/condq.h"
#endif

#include "../core/internal.h"
#include "wq.h"

#include <errno.h>

typedef struct cq_node {
    cp_waiter *w;
    struct cq_node *next, *prev;
    bool queued;
} cq_node;

typedef struct condq {
    FAM_LOCK_T lock;
    cq_node *first, *last;
} condq;

static inline void cq_init(condq *q)
{
    FAM_LOCK_INIT(&q->lock);
    q->first = q->last = NULL;
}

static inline void cq_fini(condq *q)
{
    /* Freeing a cond with waiters is a caller bug: they would sleep forever. */
    if (q->first) cp_die("cp_cond_free: the cond still has waiters");
    FAM_LOCK_FINI(&q->lock);
}

CP_WQ_DEFINE(cq, cq_node, condq, CP_WQ_NO_HOOK)

/* m is held on entry and on return, whatever the status. */
static cp_status cq_wait(condq *q, cp_mutex *m, cp_ctx *ctx)
{
    cp_waiter w;
    cp_wnode cn;
    cq_node me = { .w = &w };
    FAM_W_INIT(&w);
    /* An ended ctx returns at once, m still held, nothing queued. */
    cp_status st = cp__ctx_watch(ctx, &w, &cn);
    if (st) {
        FAM_W_FINI(&w);
        return st;
    }
    FAM_LOCK(&q->lock);
    cq_enqueue(q, &me);
    FAM_UNLOCK(&q->lock);
    FAM_M_UNLOCK(m);     /* after the enqueue: see the header */

    uint32_t s = FAM_W_PARK(&w, cp_ctx_deadline(ctx));
    cp_wlist_del(&cn);  /* after this no cancel callback touches w */
    if (s != CP_W_DONE) {
        /* Cancelled or timed out: we won the CAS, so no signal was spent on
         * us; take ourselves off the queue unless a signaller dropped us. */
        FAM_LOCK(&q->lock);
        if (me.queued) cq_remove(q, &me);
        FAM_UNLOCK(&q->lock);
        st = cp__ctx_reason(ctx);
    }
    FAM_W_FINI(&w);
    FAM_M_LOCK(m);
    return st;
}

static void cq_signal(condq *q)
{
    /* Fast path: nobody queued. A racy peek would be enough for sync.Cond's
     * semantics (a waiter that enqueues concurrently with a signal may or
     * may not get it), but the lock keeps TSan's view simple and it is
     * short. */
    FAM_LOCK(&q->lock);
    cq_node *n = cq_pop_claimed(q);
    FAM_UNLOCK(&q->lock);
    /* n lives on its waiter's stack until the finish below: read n->w first. */
    if (n) FAM_W_FINISH(n->w);
}

static void cq_broadcast(condq *q)
{
    cq_node *wake = NULL, **tail = &wake, *n;
    FAM_LOCK(&q->lock);
    while ((n = cq_pop_claimed(q))) {   /* FIFO: wake in arrival order */
        *tail = n;          /* n is off the queue: its links are ours now */
        tail = &n->next;
    }
    *tail = NULL;
    FAM_UNLOCK(&q->lock);
    cq_finish_all(wake);
}

/* ---- the family's entry points ---- */
struct cp_cond {
    const cp_backend *b;
    condq q;
};

cp_cond *FAM_FN(cond_new)(const cp_backend *b)
{
    if (b != &FAM_BACKEND) { errno = EINVAL; return NULL; }
    cp_cond *c = cp__zalloc(sizeof *c);
    if (!c) return NULL;
    c->b = b;
    cq_init(&c->q);
    return c;
}

void FAM_FN(cond_free)(cp_cond *c)
{
    if (!c) return;
    cq_fini(&c->q);
    free(c);
}

cp_status FAM_FN(cond_wait)(cp_cond *c, cp_mutex *m, cp_ctx *ctx)
{
    if (cp_unlikely(CP_OBJ_B(m) != c->b || (ctx && ctx->b != c->b))) return CP_EINVAL;
    return cq_wait(&c->q, m, ctx);
}
void FAM_FN(cond_signal)(cp_cond *c) { cq_signal(&c->q); }
void FAM_FN(cond_broadcast)(cp_cond *c) { cq_broadcast(&c->q); }

#endif /* CP_IMPL_CONDQ_H */
