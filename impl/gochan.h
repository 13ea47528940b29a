/*
 * A Go-style channel under one lock (runtime/chan.go's hchan), written once
 * and instantiated by each family with its own lock and waiter:
 *
 *   mutex family:          every capacity (pthread mutex, condvar parking)
 *   lockfree/futex family: capacity 0 (rendezvous) only; their buffered
 *                          channels use the lock-free ring of ring.h
 *
 * The includer defines, before including this file:
 *   GC_LOCK_T, GC_LOCK_INIT(l), GC_LOCK_FINI(l), GC_LOCK(l), GC_UNLOCK(l)
 *   GC_W_INIT(w), GC_W_FINI(w), GC_W_CLAIM(w), GC_W_FINISH(w), GC_W_PARK(w, dl)
 *
 * Invariants (under the lock), as chan.go states them:
 *   - at least one of sendq and recvq is empty, except for waiters that
 *     have already been claimed or cancelled and are about to be dropped;
 *   - for a buffered channel: count > 0 implies recvq holds no live waiter,
 *     count < cap implies sendq holds no live waiter;
 *   - a sudog is on a queue iff sg->queued; only the lock holder changes it.
 * A waiter is claimed by exactly one party (CAS on its state, see
 * core/internal.h). The claimer copies the data under the lock, sets w->ok,
 * and after unlocking finishes the waiter (DONE + wake-up). Close claims every
 * queued waiter under the lock and wakes them after unlocking.
 */
#ifndef CP_IMPL_GOCHAN_H
#define CP_IMPL_GOCHAN_H

#include "../core/internal.h"
#include "ring.h"   /* cp_ring_copy */

#include <string.h>

typedef struct gc_sudog {
    cp_waiter *w;
    void *elem;             /* sender: the item; receiver: where it goes */
    struct gc_sudog *next, *prev;
    bool queued;
} gc_sudog;

typedef struct gc_waitq { gc_sudog *first, *last; } gc_waitq;

typedef struct gochan {
    GC_LOCK_T lock;
    size_t elem_size, cap;
    size_t count, recvx, sendx;
    int closed;
    gc_waitq sendq, recvq;
    unsigned char *buf;     /* cap * elem_size bytes, NULL for cap 0 */
} gochan;

static inline void gc_enqueue(gc_waitq *q, gc_sudog *sg)
{
    sg->next = NULL;
    sg->prev = q->last;
    if (q->last) q->last->next = sg;
    else q->first = sg;
    q->last = sg;
    sg->queued = true;
}

static inline void gc_remove(gc_waitq *q, gc_sudog *sg)
{
    if (sg->prev) sg->prev->next = sg->next;
    else q->first = sg->next;
    if (sg->next) sg->next->prev = sg->prev;
    else q->last = sg->prev;
    sg->next = sg->prev = NULL;
    sg->queued = false;
}

/* First waiter that we manage to claim; drops cancelled/timed-out ones. */
static inline gc_sudog *gc_dequeue(gc_waitq *q)
{
    gc_sudog *sg;
    while ((sg = q->first)) {
        gc_remove(q, sg);
        if (GC_W_CLAIM(sg->w)) return sg;
    }
    return NULL;
}

static inline unsigned char *gc_slot(gochan *c, size_t i) { return c->buf + i * c->elem_size; }

static inline int gc_init(gochan *c, size_t elem_size, size_t cap, unsigned char *buf)
{
    memset(c, 0, sizeof *c);
    GC_LOCK_INIT(&c->lock);
    c->elem_size = elem_size;
    c->cap = cap;
    c->buf = buf;
    return 0;
}

static inline void gc_fini(gochan *c) { GC_LOCK_FINI(&c->lock); }

/* Park on q after the fast checks failed; called with the lock held, returns
 * with it released. me->elem is set by the caller. */
static cp_status gc_block(gochan *c, gc_waitq *q, gc_sudog *me, cp_ctx *ctx)
{
    cp_waiter w;
    cp_wnode cn;
    GC_W_INIT(&w);
    me->w = &w;
    /* Lock order: channel lock -> ctx wake list -> waiter. The ctx callback
     * only touches the waiter, never the channel. */
    cp_status st = cp__ctx_watch(ctx, &w, &cn);
    if (st) {
        GC_UNLOCK(&c->lock);
        GC_W_FINI(&w);
        return st;
    }
    gc_enqueue(q, me);
    GC_UNLOCK(&c->lock);

    uint32_t s = GC_W_PARK(&w, cp_ctx_deadline(ctx));
    cp_wlist_del(&cn);
    if (s != CP_W_DONE) {
        GC_LOCK(&c->lock);
        if (me->queued) gc_remove(q, me);
        GC_UNLOCK(&c->lock);
        GC_W_FINI(&w);
        return cp__ctx_reason(ctx);
    }
    int ok = w.ok;
    GC_W_FINI(&w);
    return ok ? CP_OK : CP_CLOSED;
}

static cp_status gc_send(gochan *c, const void *elem, cp_ctx *ctx, bool block)
{
    GC_LOCK(&c->lock);
    if (c->closed) {
        GC_UNLOCK(&c->lock);
        return CP_CLOSED;
    }
    gc_sudog *sg = gc_dequeue(&c->recvq);
    if (sg) {   /* a receiver is waiting: hand over directly */
        cp_ring_copy(sg->elem, elem, c->elem_size);
        sg->w->ok = 1;
        GC_UNLOCK(&c->lock);
        GC_W_FINISH(sg->w);
        return CP_OK;
    }
    if (c->count < c->cap) {
        cp_ring_copy(gc_slot(c, c->sendx), elem, c->elem_size);
        if (++c->sendx == c->cap) c->sendx = 0;
        c->count++;
        GC_UNLOCK(&c->lock);
        return CP_OK;
    }
    if (!block) {
        GC_UNLOCK(&c->lock);
        return CP_WOULDBLOCK;
    }
    gc_sudog me = { .elem = (void *)elem };
    return gc_block(c, &c->sendq, &me, ctx);
}

static cp_status gc_recv(gochan *c, void *elem, cp_ctx *ctx, bool block)
{
    GC_LOCK(&c->lock);
    gc_sudog *sg = gc_dequeue(&c->sendq);
    if (sg) {
        if (c->cap == 0) {
            cp_ring_copy(elem, sg->elem, c->elem_size);
        } else {
            /* Buffer is full (a sender waits): take its head, put the
             * sender's item at the tail, which is the same slot. */
            unsigned char *slot = gc_slot(c, c->recvx);
            cp_ring_copy(elem, slot, c->elem_size);
            cp_ring_copy(slot, sg->elem, c->elem_size);
            if (++c->recvx == c->cap) c->recvx = 0;
            c->sendx = c->recvx;
        }
        sg->w->ok = 1;
        GC_UNLOCK(&c->lock);
        GC_W_FINISH(sg->w);
        return CP_OK;
    }
    if (c->count > 0) {
        cp_ring_copy(elem, gc_slot(c, c->recvx), c->elem_size);
        if (++c->recvx == c->cap) c->recvx = 0;
        c->count--;
        GC_UNLOCK(&c->lock);
        return CP_OK;
    }
    if (c->closed) {
        GC_UNLOCK(&c->lock);
        return CP_CLOSED;
    }
    if (!block) {
        GC_UNLOCK(&c->lock);
        return CP_WOULDBLOCK;
    }
    gc_sudog me = { .elem = elem };
    return gc_block(c, &c->recvq, &me, ctx);
}

static cp_status gc_close(gochan *c)
{
    GC_LOCK(&c->lock);
    if (c->closed) {
        GC_UNLOCK(&c->lock);
        return CP_CLOSED;
    }
    c->closed = 1;
    /* Claim every waiter under the lock, wake them after (chan.go's
     * closechan). A woken sender's item is not delivered. */
    gc_sudog *wake = NULL, *sg;
    while ((sg = gc_dequeue(&c->recvq)) || (sg = gc_dequeue(&c->sendq))) {
        sg->w->ok = 0;
        sg->next = wake;
        wake = sg;
    }
    GC_UNLOCK(&c->lock);
    while (wake) {
        sg = wake;
        wake = sg->next;    /* read before the finish: sg dies with its waiter */
        GC_W_FINISH(sg->w);
    }
    return CP_OK;
}

static inline size_t gc_len(gochan *c)
{
    GC_LOCK(&c->lock);
    size_t n = c->count;
    GC_UNLOCK(&c->lock);
    return n;
}

#endif /* CP_IMPL_GOCHAN_H */
