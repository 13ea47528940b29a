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

/* ---- select: select.h's skeleton as it stands ----
 * Every channel of this family is a gochan, so select is Go's algorithm
 * under pthread mutexes; the park registers the waiter on every CP_WAIT
 * event and on the ctx and sleeps on its condvar (deadline: the ctx's, or
 * a waited ctx done event's owner's). */
struct sel_park { char unused; };
#include "../select.h"

static gochan *sel_gc_of(cp_chan *ch) { return &ch->gc; }
static cp_status sel_ring_try(cp_case *c, gc_selslot *sl) { (void)c; (void)sl; return CP_WOULDBLOCK; }
static cp_status sel_park_begin(gc_sel *s, struct sel_park *p) { (void)s; (void)p; return CP_OK; }
static void sel_park_end(gc_sel *s, struct sel_park *p) { (void)s; (void)p; }

static uint32_t sel_park(gc_sel *s, cp_waiter *w, cp_ctx *ctx, struct sel_park *p)
{
    (void)p;
    cp_wnode cn;
    gc_sel_watch(s, w, ctx, &cn);
    uint32_t r = cp_mutex_w_park(w, s->deadline);
    gc_sel_unwatch(s, &cn);
    return r;
}
