/*
 * Select (runtime/select.go), written once: the machinery below and one
 * skeleton, cp_<family>_select and cp_<family>_try_select, at the end.
 * Instantiated as every template of impl/: the family's chan.c includes its
 * adapter.h and gochan.h, defines struct sel_park (what its park keeps
 * across rounds), includes this file, and then defines the hooks declared
 * below: which channels are gochans, how a ring case is tried, and how a
 * blocked select parks (the family's park hook).
 *
 * A select sees its cases through a gc_sel: a random poll order (Go's
 * pollorder: a Fisher-Yates permutation from a per-thread xorshift), the
 * distinct gochans of its channel cases sorted by address (Go's lockorder;
 * locking them in that order, skipping duplicates, is sellock), and per case
 * a slot holding its sudog (gochan cases) and wake-list node (CP_WAIT cases).
 * A case whose ch/ev is NULL is never ready (Go's nil channel). A channel
 * that is not a gochan (the lockfree/futex families' rings) is tried through
 * the family's sel_ring_try hook.
 *
 * Invariant: while a select is blocked, each of its gochan sudogs and event
 * nodes is registered once, all pointing to one waiter; the first waker
 * claims the waiter and writes the case index into w->index (gc_pop_claimed for
 * channels, gc_sel_ev_fired for events); before the select returns every
 * registration is gone (gc_sel_dequeue under the locks, cp_wlist_del).
 */
#ifndef CP_IMPL_SELECT_H
#define CP_IMPL_SELECT_H

#ifndef FAM_NAME
#error "include the family's adapter.h before impl/select.h"
#endif

#include "gochan.h"

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

/* Non-blocking select, linearizable: it reports WOULDBLOCK only if
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

/* ---- the family's hooks (defined in its chan.c, after this file) ---- */
struct sel_park;
/* The family's gochan of a channel, NULL if it is a ring. */
static gochan *sel_gc_of(cp_chan *ch);
/* Try a ring case once (recording its version in sl for gc_sel_try). */
static cp_status sel_ring_try(cp_case *c, gc_selslot *sl);
/* Before the first round (CP_OK or an error such as CP_ENOMEM), after the last. */
static cp_status sel_park_begin(gc_sel *s, struct sel_park *p);
static void sel_park_end(gc_sel *s, struct sel_park *p);
/* Park the select's waiter w, which is on every gochan case's queue (the
 * locks dropped): until it is DONE (a partner claimed it; returned) or
 * CANCELED / TIMEDOUT (the ctx, the deadline s->deadline, or the family's
 * own look at its rings ended it). Everything it registers it unregisters
 * before it returns. */
static uint32_t sel_park(gc_sel *s, cp_waiter *w, cp_ctx *ctx, struct sel_park *p);

/* For the families whose waiter a wake-list callback can end (mutex,
 * futex): register w on every waited event and on the ctx ... */
static inline void gc_sel_watch(gc_sel *s, cp_waiter *w, cp_ctx *ctx, cp_wnode *cn)
{
    gc_sel_watch_events(s, w);
    if (cp__ctx_watch(ctx, w, cn)) FAM_W_CANCEL(w);   /* ended meanwhile */
}
/* ... and, after the park, take those registrations back. */
static inline void gc_sel_unwatch(gc_sel *s, cp_wnode *cn)
{
    cp_wlist_del(cn);
    gc_sel_unwatch_events(s);
}

/* ---- the skeleton ----
 * Go's selectgo: lock every gochan (address order), poll the cases in
 * random order; if none is ready and the ctx lives, enqueue one sudog per
 * gochan case, all for one waiter, unlock and park (the family's hook). The
 * first waker claims the waiter and records its case; the select then
 * relocks and removes every sudog left behind. A park that ended otherwise
 * (the ctx, the deadline, a ring that looked ready) polls again: a waited
 * ctx done event counts as fired at its owner's deadline, and an ended ctx
 * is reported after the poll. */
int FAM_FN(select)(cp_case *cases, size_t n, cp_ctx *ctx, cp_status *st)
{
    gc_sel s;
    cp_status e = gc_sel_init(&s, cases, n, &FAM_BACKEND, ctx, sel_gc_of);
    if (e == CP_OK && !s.live && !ctx) e = CP_EINVAL;   /* would block forever */
    struct sel_park park;
    if (e == CP_OK) e = sel_park_begin(&s, &park);
    if (e) {
        gc_sel_fini(&s);
        *st = e;
        return -1;
    }
    int i;
    for (;;) {
        cp_waiter *fin = NULL;
        gc_sel_lock(&s);
        if ((i = gc_sel_poll(&s, st, &fin, sel_ring_try)) >= 0) {
            gc_sel_unlock(&s);
            if (fin) FAM_W_FINISH(fin);
            break;
        }
        if ((e = cp__ctx_err_fast(ctx))) {
            gc_sel_unlock(&s);
            *st = e;
            break;
        }
        cp_waiter w;
        FAM_W_INIT(&w);
        gc_sel_enqueue(&s, &w);
        gc_sel_unlock(&s);

        uint32_t r = sel_park(&s, &w, ctx, &park);
        if (s.nlocks) {
            gc_sel_lock(&s);
            gc_sel_dequeue(&s);
            gc_sel_unlock(&s);
        }
        if (r == CP_W_DONE) i = gc_sel_done(&w, st);
        FAM_W_FINI(&w);
        if (r == CP_W_DONE) break;
        /* cancelled or timed out: poll again, then report the ctx */
    }
    sel_park_end(&s, &park);
    gc_sel_fini(&s);
    return i;
}

int FAM_FN(try_select)(cp_case *cases, size_t n, cp_status *st)
{
    gc_sel s;
    cp_status e = gc_sel_init(&s, cases, n, &FAM_BACKEND, NULL, sel_gc_of);
    int i = -1;
    if (e) *st = e;
    else i = gc_sel_try(&s, st, sel_ring_try);
    gc_sel_fini(&s);
    return i;
}

#endif /* CP_IMPL_SELECT_H */
