/*
 * mutex family: state under a pthread mutex, blocked threads sleep on a
 * pthread condition variable (CLOCK_MONOTONIC) owned by their waiter.
 * (The waiter's invariant: adapter.h.)
 */
#include "adapter.h"

#include <errno.h>

/* ---- the channel: gochan.h under a pthread mutex ---- */
#include "../gochan.h"

struct cp_chan {
    const cp_backend *b;
    gochan gc;
};

#define OWN(ch, ctx) ((ctx) == NULL || (ctx)->b == (ch)->b)

cp_chan *cp_mutex_chan_new(const cp_backend *b, size_t elem_size, size_t cap)
{
    if (b != &cp_backend_mutex) { errno = EINVAL; return NULL; }
    size_t hdr = (sizeof(cp_chan) + 15) & ~(size_t)15, bytes;
    /* hdr + cap * elem_size, or ENOMEM if it (or one element, even for
     * capacity 0) does not fit: see cp__obj_size. */
    if (!cp__obj_size(hdr, cap, elem_size, &bytes)) { errno = ENOMEM; return NULL; }
    cp_chan *ch = cp__zalloc(bytes);
    if (!ch) return NULL;
    ch->b = b;
    gc_init(&ch->gc, elem_size, cap, cap ? (unsigned char *)ch + hdr : NULL);
    return ch;
}

void cp_mutex_chan_free(cp_chan *ch)
{
    if (!ch) return;
    gc_fini(&ch->gc);
    free(ch);
}

cp_status cp_mutex_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    return gc_send(&ch->gc, elem, ctx, true);
}
cp_status cp_mutex_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    return gc_recv(&ch->gc, elem, ctx, true);
}
cp_status cp_mutex_chan_try_send(cp_chan *ch, const void *elem) { return gc_send(&ch->gc, elem, NULL, false); }
cp_status cp_mutex_chan_try_recv(cp_chan *ch, void *elem) { return gc_recv(&ch->gc, elem, NULL, false); }
cp_status cp_mutex_chan_close(cp_chan *ch) { return gc_close(&ch->gc); }
size_t cp_mutex_chan_len(cp_chan *ch) { return gc_len(&ch->gc); }
size_t cp_mutex_chan_cap(cp_chan *ch) { return ch->gc.cap; }

/* ---- select: Go's selectgo under pthread mutexes ----
 * Every channel of this family is a gochan, so select is Go's algorithm as
 * it stands: lock all the channels (address order), poll the cases in random
 * order, and if none is ready enqueue one sudog per channel case, all for one
 * waiter, register that waiter on every CP_WAIT event and on the ctx, unlock
 * and sleep on the waiter's condvar (deadline: the ctx's, or a waited ctx
 * done event's owner's). The first waker claims the waiter and records its
 * case; the select then relocks and removes every sudog left behind. A
 * timeout re-polls (a waited ctx done event counts as fired at its owner's
 * deadline) and then returns the ctx's reason. */
static gochan *m_gc_of(cp_chan *ch) { return &ch->gc; }
static cp_status m_no_ring(cp_case *c, gc_selslot *sl) { (void)c; (void)sl; return CP_WOULDBLOCK; }

int cp_mutex_select(cp_case *cases, size_t n, cp_ctx *ctx, cp_status *st)
{
    gc_sel s;
    cp_status e = gc_sel_init(&s, cases, n, &cp_backend_mutex, ctx, m_gc_of);
    if (e == CP_OK && !s.live && !ctx) e = CP_EINVAL;   /* would block forever */
    if (e) {
        gc_sel_fini(&s);
        *st = e;
        return -1;
    }
    int i;
    for (;;) {
        cp_waiter *fin = NULL;
        gc_sel_lock(&s);
        if ((i = gc_sel_poll(&s, st, &fin, m_no_ring)) >= 0) {
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
        cp_wnode cn;
        cp_mutex_w_init(&w);
        gc_sel_enqueue(&s, &w);
        gc_sel_unlock(&s);
        gc_sel_watch_events(&s, &w);
        if (cp__ctx_watch(ctx, &w, &cn)) cp_mutex_w_cancel(&w);   /* ended meanwhile */

        uint32_t r = cp_mutex_w_park(&w, s.deadline);
        cp_wlist_del(&cn);
        gc_sel_unwatch_events(&s);
        gc_sel_lock(&s);
        gc_sel_dequeue(&s);
        gc_sel_unlock(&s);
        if (r == CP_W_DONE) i = gc_sel_done(&w, st);
        cp_mutex_w_fini(&w);
        if (r == CP_W_DONE) break;
        /* cancelled or timed out: re-poll, then report the ctx */
    }
    gc_sel_fini(&s);
    return i;
}

int cp_mutex_try_select(cp_case *cases, size_t n, cp_status *st)
{
    gc_sel s;
    cp_status e = gc_sel_init(&s, cases, n, &cp_backend_mutex, NULL, m_gc_of);
    int i = -1;
    if (e) *st = e;
    else i = gc_sel_try(&s, st, m_no_ring);
    gc_sel_fini(&s);
    return i;
}
