/*
 * A Go-style channel under one lock (runtime/chan.go's hchan), written once
 * and instantiated by each family with its own lock and waiter:
 *
 *   mutex family:          every capacity (pthread mutex, condvar parking)
 *   lockfree/futex family: capacity 0 (rendezvous) only; their buffered
 *                          channels use the lock-free ring of ring.h
 *
 * Instantiated as every template of impl/: the family's chan.c includes its
 * adapter.h (FAM_LOCK*, FAM_W_*) and then this file. The channel entry
 * points stay in chan.c (a ring or a gochan, by capacity, is the family's
 * choice); the select entry points come from the skeleton at the end.
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

#ifndef FAM_NAME
#error "include the family's adapter.h before impl/gochan.h"
#endif

#include "../core/chaos.h"
#include "../core/internal.h"
#include "ring.h"   /* cp_ring_copy */

#include <string.h>

typedef struct gc_sudog {
    cp_waiter *w;
    void *elem;             /* sender: the item; receiver: where it goes */
    struct gc_sudog *next, *prev;
    int idx;                /* select: the case this sudog stands for */
    bool queued;
} gc_sudog;

typedef struct gc_waitq { gc_sudog *first, *last; } gc_waitq;

typedef struct gochan {
    FAM_LOCK_T lock;
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
        if (FAM_W_CLAIM(sg->w)) {
            CP_CHAOS_POINT();   /* between the claim CAS and its follow-up */
            /* The claimer tells a select which case fired (written before
             * the finish's release, read after the waiter sees DONE). */
            sg->w->index = sg->idx;
            return sg;
        }
    }
    return NULL;
}

static inline unsigned char *gc_slot(gochan *c, size_t i) { return c->buf + i * c->elem_size; }

static inline int gc_init(gochan *c, size_t elem_size, size_t cap, unsigned char *buf)
{
    memset(c, 0, sizeof *c);
    FAM_LOCK_INIT(&c->lock);
    c->elem_size = elem_size;
    c->cap = cap;
    c->buf = buf;
    return 0;
}

static inline void gc_fini(gochan *c) { FAM_LOCK_FINI(&c->lock); }

/* Park on q after the fast checks failed; called with the lock held, returns
 * with it released. me->elem is set by the caller. */
static cp_status gc_block(gochan *c, gc_waitq *q, gc_sudog *me, cp_ctx *ctx)
{
    cp_waiter w;
    cp_wnode cn;
    FAM_W_INIT(&w);
    me->w = &w;
    /* Lock order: channel lock -> ctx wake list -> waiter. The ctx callback
     * only touches the waiter, never the channel. */
    cp_status st = cp__ctx_watch(ctx, &w, &cn);
    if (st) {
        FAM_UNLOCK(&c->lock);
        FAM_W_FINI(&w);
        return st;
    }
    gc_enqueue(q, me);
    FAM_UNLOCK(&c->lock);

    uint32_t s = FAM_W_PARK(&w, cp_ctx_deadline(ctx));
    cp_wlist_del(&cn);
    if (s != CP_W_DONE) {
        FAM_LOCK(&c->lock);
        if (me->queued) gc_remove(q, me);
        FAM_UNLOCK(&c->lock);
        FAM_W_FINI(&w);
        return cp__ctx_reason(ctx);
    }
    int ok = w.ok;
    FAM_W_FINI(&w);
    return ok ? CP_OK : CP_CLOSED;
}

/* Under the lock: complete a send now if it can be (CP_OK, CP_CLOSED) or
 * say CP_WOULDBLOCK. *fin: a claimed partner to finish after unlocking. */
static inline __attribute__((always_inline)) cp_status
gc_send_locked(gochan *c, const void *elem, cp_waiter **fin)
{
    if (c->closed) return CP_CLOSED;
    gc_sudog *sg = gc_dequeue(&c->recvq);
    if (sg) {   /* a receiver is waiting: hand over directly */
        cp_ring_copy(sg->elem, elem, c->elem_size);
        sg->w->ok = 1;
        *fin = sg->w;
        return CP_OK;
    }
    if (c->count < c->cap) {
        cp_ring_copy(gc_slot(c, c->sendx), elem, c->elem_size);
        if (++c->sendx == c->cap) c->sendx = 0;
        c->count++;
        return CP_OK;
    }
    return CP_WOULDBLOCK;
}

/* Under the lock: complete a receive now (CP_OK, CP_CLOSED when closed and
 * drained) or say CP_WOULDBLOCK. *fin as above. */
static inline __attribute__((always_inline)) cp_status
gc_recv_locked(gochan *c, void *elem, cp_waiter **fin)
{
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
        *fin = sg->w;
        return CP_OK;
    }
    if (c->count > 0) {
        cp_ring_copy(elem, gc_slot(c, c->recvx), c->elem_size);
        if (++c->recvx == c->cap) c->recvx = 0;
        c->count--;
        return CP_OK;
    }
    if (c->closed) return CP_CLOSED;
    return CP_WOULDBLOCK;
}

static cp_status gc_send(gochan *c, const void *elem, cp_ctx *ctx, bool block)
{
    cp_waiter *fin = NULL;
    FAM_LOCK(&c->lock);
    cp_status st = gc_send_locked(c, elem, &fin);
    if (st != CP_WOULDBLOCK || !block) {
        FAM_UNLOCK(&c->lock);
        if (fin) FAM_W_FINISH(fin);
        return st;
    }
    gc_sudog me = { .elem = (void *)elem };
    return gc_block(c, &c->sendq, &me, ctx);
}

static cp_status gc_recv(gochan *c, void *elem, cp_ctx *ctx, bool block)
{
    cp_waiter *fin = NULL;
    FAM_LOCK(&c->lock);
    cp_status st = gc_recv_locked(c, elem, &fin);
    if (st != CP_WOULDBLOCK || !block) {
        FAM_UNLOCK(&c->lock);
        if (fin) FAM_W_FINISH(fin);
        return st;
    }
    gc_sudog me = { .elem = elem };
    return gc_block(c, &c->recvq, &me, ctx);
}

static cp_status gc_close(gochan *c)
{
    FAM_LOCK(&c->lock);
    if (c->closed) {
        FAM_UNLOCK(&c->lock);
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
    FAM_UNLOCK(&c->lock);
    while (wake) {
        sg = wake;
        wake = sg->next;    /* read before the finish: sg dies with its waiter */
        FAM_W_FINISH(sg->w);
    }
    return CP_OK;
}

static inline size_t gc_len(gochan *c)
{
    FAM_LOCK(&c->lock);
    size_t n = c->count;
    FAM_UNLOCK(&c->lock);
    return n;
}

/* ==== select (runtime/select.go), shared by the families ====
 *
 * A select sees its cases through a gc_sel: a random poll order (Go's
 * pollorder: a Fisher-Yates permutation from a per-thread xorshift), the
 * distinct gochans of its channel cases sorted by address (Go's lockorder;
 * locking them in that order, skipping duplicates, is sellock), and per case
 * a slot holding its sudog (gochan cases) and wake-list node (CP_WAIT cases).
 * A case whose ch/ev is NULL is never ready (Go's nil channel). A channel
 * that is not a gochan (the lockfree/futex families' rings) is tried through
 * the family's ring_try hook.
 *
 * Invariant: while a select is blocked, each of its gochan sudogs and event
 * nodes is registered once, all pointing to one waiter; the first waker
 * claims the waiter and writes the case index into w->index (gc_dequeue for
 * channels, gc_sel_ev_fired for events); before the select returns every
 * registration is gone (gc_sel_dequeue under the locks, cp_wlist_del).
 */
#include <stddef.h>

static _Thread_local uint64_t gc_rng_state;

/* Uniform in [0, n): xorshift64, then Lemire's multiply-shift. */
static inline uint32_t gc_rand(uint32_t n)
{
    uint64_t x = gc_rng_state;
    if (cp_unlikely(!x)) {
        x = (uint64_t)(uintptr_t)&gc_rng_state ^ cp_now_ns();
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        x ^= x >> 31;
        if (!x) x = 0x9e3779b97f4a7c15ull;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    gc_rng_state = x;
    return (uint32_t)(((x >> 32) * (uint64_t)n) >> 32);
}

typedef struct gc_selslot {
    gc_sudog sg;            /* gochan case: its registration; sg.idx = case index */
    cp_wnode en;            /* CP_WAIT case: its node on the event's wake list */
    gochan *gc;             /* the case's gochan, or NULL (ring, event, nil) */
    cp_chan *ring;          /* a channel case that is not a gochan, or NULL */
    uint64_t vh, vt, pvh, pvt;  /* try_select: a ring's (head, tail) before the try */
} gc_selslot;

#define GC_SEL_SMALL 8
typedef struct gc_sel {
    cp_case *cases;
    size_t n, live, nlocks, nrings;
    gc_selslot *slot;
    uint32_t *poll;
    gochan **locks;
    uint64_t deadline;      /* min of the ctx's and every waited ctx-done event's owner's */
    void *mem;
    gc_selslot slot_s[GC_SEL_SMALL];
    uint32_t poll_s[GC_SEL_SMALL];
    gochan *locks_s[GC_SEL_SMALL];
} gc_sel;

static inline uint64_t gc_min_deadline(uint64_t a, uint64_t b)
{
    return (a && (!b || a < b)) ? a : b;
}

/* Validates (every object of backend b, ops known) and prepares s.
 * gc_of: the family's gochan of a channel, NULL if it is a ring. */
static inline cp_status gc_sel_init(gc_sel *s, cp_case *cases, size_t n, const cp_backend *b,
                                    cp_ctx *ctx, gochan *(*gc_of)(cp_chan *ch))
{
    s->mem = NULL;
    s->cases = cases;
    s->n = n;
    s->live = s->nlocks = s->nrings = 0;
    if ((ctx && ctx->b != b) || n > UINT32_MAX || (n && !cases)) return CP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        cp_case *c = &cases[i];
        if (c->op == CP_SEND || c->op == CP_RECV) {
            if (c->ch && CP_OBJ_B(c->ch) != b) return CP_EINVAL;
        } else if (c->op == CP_WAIT) {
            if (c->ev && c->ev->b != b) return CP_EINVAL;
        } else {
            return CP_EINVAL;
        }
    }
    if (n <= GC_SEL_SMALL) {
        s->slot = s->slot_s;
        s->poll = s->poll_s;
        s->locks = s->locks_s;
    } else {
        s->mem = malloc(n * (sizeof(gc_selslot) + sizeof(uint32_t) + sizeof(gochan *)));
        if (!s->mem) return CP_ENOMEM;
        s->slot = s->mem;
        s->locks = (gochan **)(s->slot + n);
        s->poll = (uint32_t *)(s->locks + n);
    }
    s->deadline = cp_ctx_deadline(ctx);
    for (size_t i = 0; i < n; i++) {
        cp_case *c = &cases[i];
        gc_selslot *sl = &s->slot[i];
        memset(sl, 0, sizeof *sl);
        sl->sg.idx = (int)i;
        if (c->op != CP_WAIT && c->ch) {
            s->live++;
            if ((sl->gc = gc_of(c->ch))) s->locks[s->nlocks++] = sl->gc;
            else sl->ring = c->ch, s->nrings++;
        } else if (c->op == CP_WAIT && c->ev) {
            s->live++;
            if (c->ev->owner) s->deadline = gc_min_deadline(c->ev->owner->deadline, s->deadline);
        }
        /* Go's pollorder: inside-out Fisher-Yates */
        uint32_t j = gc_rand((uint32_t)i + 1);
        s->poll[i] = s->poll[j];
        s->poll[j] = (uint32_t)i;
    }
    /* Go's lockorder: by address, duplicates dropped. Insertion sort: n is small. */
    size_t m = 0;
    for (size_t i = 0; i < s->nlocks; i++) {
        gochan *g = s->locks[i];
        size_t k = m;
        while (k > 0 && (uintptr_t)s->locks[k - 1] > (uintptr_t)g) k--;
        if (k > 0 && s->locks[k - 1] == g) continue;
        memmove(&s->locks[k + 1], &s->locks[k], (m - k) * sizeof *s->locks);
        s->locks[k] = g;
        m++;
    }
    s->nlocks = m;
    return CP_OK;
}

static inline void gc_sel_fini(gc_sel *s) { free(s->mem); }

static inline void gc_sel_lock(gc_sel *s)
{
    for (size_t i = 0; i < s->nlocks; i++) FAM_LOCK(&s->locks[i]->lock);
}
static inline void gc_sel_unlock(gc_sel *s)
{
    for (size_t i = s->nlocks; i-- > 0;) FAM_UNLOCK(&s->locks[i]->lock);
}

/* Is the event ready? A ctx's done event also counts as fired once its
 * owner's deadline has passed (as cp_event_wait does; cp_ctx_err ends it). */
static inline bool gc_ev_ready(cp_event *e)
{
    if (cp_event_fired(e)) return true;
    return e->owner && cp__ctx_err_fast(e->owner) != CP_OK;
}

/* One pass over the cases in poll order, with every gochan of the select
 * locked. Returns the case that proceeded (its status in *st) or -1.
 * *fin: a claimed partner to finish after unlocking. */
static inline int gc_sel_poll(gc_sel *s, cp_status *st, cp_waiter **fin,
                              cp_status (*ring_try)(cp_case *c, gc_selslot *sl))
{
    for (size_t k = 0; k < s->n; k++) {
        uint32_t i = s->poll[k];
        cp_case *c = &s->cases[i];
        gc_selslot *sl = &s->slot[i];
        cp_status r;
        if (c->op == CP_WAIT) {
            if (!c->ev || !gc_ev_ready(c->ev)) continue;
            r = CP_OK;
        } else if (sl->gc) {
            r = c->op == CP_SEND ? gc_send_locked(sl->gc, c->elem, fin)
                                 : gc_recv_locked(sl->gc, c->elem, fin);
        } else if (sl->ring) {
            r = ring_try(c, sl);
        } else {
            continue;
        }
        if (r != CP_WOULDBLOCK) {
            *st = r;
            return (int)i;
        }
    }
    return -1;
}

/* Non-blocking select, linearizable (API.md): it reports WOULDBLOCK only if
 * at one instant no case could proceed. The gochans stay locked across the
 * whole call, so their state is frozen; an event's "not fired" holds for
 * every earlier instant. Rings are not locked: a ring found not ready in two
 * consecutive passes with the same (head, tail) read before each try was not
 * ready at any instant between them (head and tail only grow, and they alone
 * decide empty/full/closed), so the instant between the passes has every
 * case not ready. A ring that moved between the passes costs another pass. */
static inline int gc_sel_try(gc_sel *s, cp_status *st,
                             cp_status (*ring_try)(cp_case *c, gc_selslot *sl))
{
    cp_waiter *fin = NULL;
    cp_status r = CP_WOULDBLOCK;
    gc_sel_lock(s);
    int i = gc_sel_poll(s, &r, &fin, ring_try);
    while (i < 0 && s->nrings) {
        for (size_t k = 0; k < s->n; k++) s->slot[k].pvh = s->slot[k].vh, s->slot[k].pvt = s->slot[k].vt;
        if ((i = gc_sel_poll(s, &r, &fin, ring_try)) >= 0) break;
        bool same = true;
        for (size_t k = 0; k < s->n && same; k++)
            same = s->slot[k].vh == s->slot[k].pvh && s->slot[k].vt == s->slot[k].pvt;
        if (same) break;
    }
    gc_sel_unlock(s);
    if (fin) FAM_W_FINISH(fin);
    *st = i < 0 ? CP_WOULDBLOCK : r;
    return i;
}

/* Under the locks: put w's sudog on every gochan case's queue. */
static inline void gc_sel_enqueue(gc_sel *s, cp_waiter *w)
{
    for (size_t i = 0; i < s->n; i++) {
        gc_selslot *sl = &s->slot[i];
        if (!sl->gc) continue;
        sl->sg.w = w;
        sl->sg.elem = s->cases[i].elem;
        gc_enqueue(s->cases[i].op == CP_SEND ? &sl->gc->sendq : &sl->gc->recvq, &sl->sg);
    }
}

/* Under the locks: take every sudog that no waker dequeued off its queue. */
static inline void gc_sel_dequeue(gc_sel *s)
{
    for (size_t i = 0; i < s->n; i++) {
        gc_selslot *sl = &s->slot[i];
        if (sl->gc && sl->sg.queued)
            gc_remove(s->cases[i].op == CP_SEND ? &sl->gc->sendq : &sl->gc->recvq, &sl->sg);
    }
}

/* A waited event fired: claim the select's waiter for that case. Runs under
 * the event's wake-list lock; touches only the waiter. */
static void gc_sel_ev_fired(cp_wnode *n)
{
    gc_selslot *sl = (gc_selslot *)((char *)n - offsetof(gc_selslot, en));
    cp_waiter *w = n->arg;
    if (FAM_W_CLAIM(w)) {
        w->index = sl->sg.idx;
        w->ok = 1;
        FAM_W_FINISH(w);
    }
}

/* Register w on every CP_WAIT case's event (an event that has already
 * fired claims w at once). */
static inline void gc_sel_watch_events(gc_sel *s, cp_waiter *w)
{
    for (size_t i = 0; i < s->n; i++) {
        cp_case *c = &s->cases[i];
        if (c->op != CP_WAIT || !c->ev) continue;
        cp_wnode *en = &s->slot[i].en;
        en->fn = gc_sel_ev_fired;
        en->arg = w;
        if (!cp_wlist_add(&c->ev->wl, en)) gc_sel_ev_fired(en);
    }
}

static inline void gc_sel_unwatch_events(gc_sel *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->cases[i].op == CP_WAIT) cp_wlist_del(&s->slot[i].en);
}

/* The result of a select whose waiter ended DONE. */
static inline int gc_sel_done(cp_waiter *w, cp_status *st)
{
    *st = w->ok ? CP_OK : CP_CLOSED;
    return w->index;
}

#endif /* CP_IMPL_GOCHAN_H */
