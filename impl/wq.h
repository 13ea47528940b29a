/*
 * The intrusive waiter queue, written once: a FIFO, doubly linked, of nodes
 * that live on their waiters' stacks (Go's waitq of sudogs). gochan.h (a
 * channel's sendq and recvq), condq.h, semq.h and the mutex family's
 * WaitGroup instantiate it for their node and queue types with
 *
 *   CP_WQ_DEFINE(pfx, node_t, queue_t, ON_CLAIM)
 *
 * where node_t has the fields `cp_waiter *w; node_t *next, *prev; bool
 * queued;` and queue_t the fields `node_t *first, *last;`. It defines
 *   pfx_enqueue(q, n)    append n at the tail;
 *   pfx_push_front(q, n) put n at the head (a waiter older than every one
 *                        on q: gochan.h's hand-off slot);
 *   pfx_remove(q, n)     unlink n, which is on q;
 *   pfx_pop_claimed(q)   take nodes off the head until one's waiter is
 *                        claimed (FAM_W_CLAIM), then ON_CLAIM(n) and return
 *                        it; NULL once q is empty. A node whose claim fails
 *                        belongs to a waiter its ctx cancelled or whose
 *                        deadline passed: it is dropped, and that waiter,
 *                        seeing queued == false, does not remove it again;
 *   pfx_finish_all(n)    finish (FAM_W_FINISH) the waiter of every node of
 *                        a list linked through next, reading next first: a
 *                        node dies with its waiter once it is finished.
 * Like every template of impl/, it is included after the family's adapter.h.
 *
 * Invariants, all under the lock of the structure that owns the queue:
 *   - a node is on the queue iff node->queued, and only the lock holder
 *     changes that or the links;
 *   - a node on the queue belongs to a thread that is inside its wait (its
 *     stack frame lives until it has removed itself or seen its waiter
 *     DONE);
 *   - a node taken off the queue is the taker's: its next link may thread a
 *     private list of claimed nodes, to be finished after unlocking (a
 *     wake-up can be a syscall).
 */
#ifndef CP_IMPL_WQ_H
#define CP_IMPL_WQ_H

#ifndef FAM_NAME
#error "include the family's adapter.h before impl/wq.h"
#endif

#include "../core/internal.h"

#define CP_WQ_NO_HOOK(n) ((void)(n))

#define CP_WQ_DEFINE(pfx, node_t, queue_t, ON_CLAIM)                          \
    static inline void pfx##_enqueue(queue_t *q, node_t *n)                   \
    {                                                                         \
        n->next = NULL;                                                       \
        n->prev = q->last;                                                    \
        if (q->last) q->last->next = n;                                       \
        else q->first = n;                                                    \
        q->last = n;                                                          \
        n->queued = true;                                                     \
    }                                                                         \
    static inline __attribute__((unused)) void pfx##_push_front(queue_t *q, node_t *n) \
    {                                                                         \
        n->prev = NULL;                                                       \
        n->next = q->first;                                                   \
        if (q->first) q->first->prev = n;                                     \
        else q->last = n;                                                     \
        q->first = n;                                                         \
        n->queued = true;                                                     \
    }                                                                         \
    static inline void pfx##_remove(queue_t *q, node_t *n)                    \
    {                                                                         \
        if (n->prev) n->prev->next = n->next;                                 \
        else q->first = n->next;                                              \
        if (n->next) n->next->prev = n->prev;                                 \
        else q->last = n->prev;                                               \
        n->next = n->prev = NULL;                                             \
        n->queued = false;                                                    \
    }                                                                         \
    static inline node_t *pfx##_pop_claimed(queue_t *q)                       \
    {                                                                         \
        node_t *n;                                                            \
        while ((n = q->first)) {                                              \
            pfx##_remove(q, n);                                               \
            if (FAM_W_CLAIM(n->w)) {                                          \
                ON_CLAIM(n);                                                  \
                return n;                                                     \
            }                                                                 \
        }                                                                     \
        return NULL;                                                          \
    }                                                                         \
    static inline void pfx##_finish_all(node_t *wake)                         \
    {                                                                         \
        while (wake) {                                                        \
            node_t *n = wake;                                                 \
            wake = n->next;     /* before the finish: n dies with its waiter */ \
            FAM_W_FINISH(n->w);                                               \
        }                                                                     \
    }

#endif /* CP_IMPL_WQ_H */
