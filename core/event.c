/*
 * cp_event: a one-shot broadcast (Go's close(done)), the same for every
 * backend; only the parking of a waiter is the backend's.
 *
 * Invariant: fired goes 0 -> 1 once; every waiter registered on wl before
 * the fire is claimed by the fire, and a waiter that registers after it
 * finds wl fired and does not block.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

void cp__event_init(cp_event *e, const cp_backend *b, cp_ctx *owner)
{
    e->b = b;
    atomic_init(&e->fired, 0);
    e->owner = owner;
    cp_wlist_init(&e->wl);
}

cp_event *cp_event_new(const cp_backend *b)
{
    if (!b) { errno = EINVAL; return NULL; }
    cp_event *e = cp__zalloc(sizeof *e);
    if (!e) return NULL;
    cp__event_init(e, b, NULL);
    return e;
}

void cp_event_free(cp_event *e)
{
    if (e && !e->owner) free(e);
}

void cp_event_fire(cp_event *e)
{
    if (!e) return;
    /* acq_rel: the fire publishes what the firer did before it. */
    if (atomic_exchange_explicit(&e->fired, 1, memory_order_acq_rel)) return;
    cp_wlist_fire(&e->wl);
}

bool cp_event_fired(cp_event *e)
{
    return e && atomic_load_explicit(&e->fired, memory_order_acquire);
}

static void wake_on_fire(cp_wnode *n)
{
    cp_waiter *w = n->arg;
    if (w->b->w_claim(w)) {
        w->ok = 1;
        w->b->w_finish(w);
    }
}

cp_status cp_event_wait(cp_event *e, cp_ctx *ctx)
{
    if (!e || (ctx && ctx->b != e->b)) return CP_EINVAL;
    if (cp_event_fired(e)) return CP_OK;
    /* A ctx's done event wakes its waiters at the ctx's deadline by itself. */
    if (e->owner && cp_ctx_err(e->owner)) return CP_OK;
    cp_status st = cp_ctx_err(ctx);
    if (st) return st;

    const cp_backend *b = e->b;
    cp_waiter w;
    b->w_init(&w);
    cp_wnode en = { .fn = wake_on_fire, .arg = &w };
    cp_wnode cn = { 0 };
    if (!cp_wlist_add(&e->wl, &en)) { b->w_fini(&w); return CP_OK; }
    st = cp__ctx_watch(ctx, &w, &cn);
    if (st) {
        cp_wlist_del(&en);
        b->w_fini(&w);
        return st;
    }
    uint64_t dl = cp_ctx_deadline(ctx);
    uint64_t odl = e->owner ? e->owner->deadline : 0;
    if (odl && (!dl || odl < dl)) dl = odl;

    uint32_t s = b->w_park(&w, dl);
    cp_wlist_del(&en);
    cp_wlist_del(&cn);
    b->w_fini(&w);
    if (s == CP_W_DONE) return CP_OK;
    /* Timed out at the owner's deadline: that ends the owner, which fires e. */
    if (e->owner && cp_ctx_err(e->owner)) return CP_OK;
    return cp__ctx_reason(ctx);
}
