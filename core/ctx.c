/*
 * cp_ctx: a cancellation tree with deadlines, as Go's context package.
 *
 * Invariants:
 *  - err goes 0 -> CP_CANCELED or CP_DEADLINE once (first reason wins), and
 *    done fires right after, so done fired => err != 0.
 *  - A live child is linked on its parent's done wake list through in_parent;
 *    the parent's fire cancels it with the parent's reason. A child is
 *    linked only while the parent's err is 0, checked under that list's
 *    lock; otherwise it is ended with the parent's reason before it is
 *    returned. So once anyone has seen a parent's err != 0, every child
 *    created after that is returned with err set and done fired.
 *  - tree_lock orders unlinking against freeing: a parent is freed only after
 *    taking tree_lock once after its fire, and a child reads its link to the
 *    parent only under tree_lock, so freeing a child never touches a freed
 *    parent. Lock order: tree_lock -> a wake list's lock -> a child's list.
 *
 * Deadlines are honoured without a timer thread: every blocking call parks
 * with the effective deadline as a timeout, and whoever observes the deadline
 * passed (cp_ctx_err, a timed-out waiter) ends the ctx, which fires done.
 */
#include "chaos.h"
#include "internal.h"

#include <errno.h>

void cp__event_init(cp_event *e, const cp_backend *b, cp_ctx *owner);

static cp_spin tree_lock = CP_SPIN_INIT;

/* End c with exactly this reason (first reason wins), then fire done. */
static void ctx_end_as(cp_ctx *c, uint32_t reason)
{
    uint32_t zero = 0;
    if (atomic_compare_exchange_strong_explicit(&c->err, &zero, reason,
                                                memory_order_acq_rel, memory_order_acquire)) {
        CP_CHAOS_POINT();   /* err is set, done not yet fired */
        cp_event_fire(&c->done);
    }
}

static void ctx_end(cp_ctx *c, uint32_t reason)
{
    /* An expired ctx stays CP_DEADLINE even if the cancel comes later. */
    if (reason == CP_CANCELED && c->deadline && cp_now_ns() >= c->deadline)
        reason = CP_DEADLINE;
    ctx_end_as(c, reason);
}

static void cancel_child(cp_wnode *n)
{
    cp_ctx *child = n->arg;
    uint32_t reason = atomic_load_explicit(&child->parent->err, memory_order_acquire);
    ctx_end(child, reason ? reason : CP_CANCELED);
}

static cp_ctx *ctx_new(const cp_backend *b, cp_ctx *parent, uint64_t deadline)
{
    if (!b || (parent && parent->b != b)) { errno = EINVAL; return NULL; }
    cp_ctx *c = cp__zalloc(sizeof *c);
    if (!c) return NULL;
    c->b = b;
    c->parent = parent;
    uint64_t pd = parent ? parent->deadline : 0;
    c->deadline = (pd && (!deadline || pd < deadline)) ? pd : deadline;
    atomic_init(&c->err, 0);
    cp__event_init(&c->done, b, c);
    c->in_parent.fn = cancel_child;
    c->in_parent.arg = c;
    /* Go's propagateCancel: the parent's err is read and the child linked
     * under one lock (the parent's wake list's), so that the parent's
     * ctx_end, which sets err before it fires done, cannot slip a child in
     * between: either we link before the CAS (and the fire cancels us), or we
     * see err and end the child here, before anyone else can reach it (it is
     * on no list), so err is set and done fired when it is returned. A caller
     * that has seen the parent's err != 0 sees it again under the lock (its
     * own later read of the same word cannot go back), so its child is born
     * ended with the parent's reason, as is. A parent whose done event was
     * fired by hand, without an err, cancels (as cancel_child does). */
    uint32_t perr = 0;
    if (parent && !cp_wlist_add_unless(&parent->done.wl, &c->in_parent, &parent->err, &perr))
        ctx_end_as(c, perr ? perr : CP_CANCELED);
    if (c->deadline && cp_now_ns() >= c->deadline) ctx_end(c, CP_DEADLINE);
    return c;
}

cp_ctx *cp_ctx_with_cancel(const cp_backend *b, cp_ctx *parent)
{
    return ctx_new(b, parent, 0);
}

cp_ctx *cp_ctx_with_deadline(const cp_backend *b, cp_ctx *parent, uint64_t deadline_ns)
{
    /* deadline 0 would mean "none": a deadline at the epoch has passed. */
    return ctx_new(b, parent, deadline_ns ? deadline_ns : 1);
}

cp_ctx *cp_ctx_with_timeout(const cp_backend *b, cp_ctx *parent, uint64_t timeout_ns)
{
    /* now + timeout saturates (as Go's Time.Add does): a timeout too large
     * to add is the end of time, some 584 years after boot, i.e. never,
     * instead of a sum that wraps into the past and expires at once. Every
     * wait turns UINT64_MAX into a valid absolute timespec (cp__ts). */
    uint64_t now = cp_now_ns();
    uint64_t dl = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
    return cp_ctx_with_deadline(b, parent, dl);
}

void cp_ctx_cancel(cp_ctx *c)
{
    if (c) ctx_end(c, CP_CANCELED);
}

cp_status cp_ctx_err(cp_ctx *c)
{
    if (!c) return CP_OK;
    uint32_t e = atomic_load_explicit(&c->err, memory_order_acquire);
    if (e) return (cp_status)e;
    if (c->deadline && cp_now_ns() >= c->deadline) {
        ctx_end(c, CP_DEADLINE);
        return (cp_status)atomic_load_explicit(&c->err, memory_order_acquire);
    }
    return CP_OK;
}

cp_event *cp_ctx_done(cp_ctx *c)
{
    return c ? &c->done : NULL;
}

uint64_t cp_ctx_deadline(cp_ctx *c)
{
    return c ? c->deadline : 0;
}

void cp_ctx_free(cp_ctx *c)
{
    if (!c) return;
    ctx_end(c, CP_CANCELED);    /* cancels and unlinks every child */
    cp_spin_lock(&tree_lock);
    cp_wlist_del(&c->in_parent);
    cp_spin_unlock(&tree_lock);
    /* A child that is unlinking itself holds tree_lock while it may still
     * look at our list; the lock/unlock above waited for it. */
    free(c);
}

/* A child unlinks itself from its parent only under tree_lock; see above.
 * Waiters (not ctxs) on a ctx's list unlink with plain cp_wlist_del: the ctx
 * outlives the calls that wait on it. */
static void cancel_waiter(cp_wnode *n)
{
    cp_waiter *w = n->arg;
    w->b->w_cancel(w);
}

cp_status cp__ctx_watch(cp_ctx *ctx, cp_waiter *w, cp_wnode *n)
{
    n->list = NULL;
    if (!ctx) return CP_OK;
    cp_status st = cp__ctx_err_fast(ctx);
    if (st) return st;
    n->fn = cancel_waiter;
    n->arg = w;
    if (!cp_wlist_add(&ctx->done.wl, n)) return cp_ctx_err(ctx);
    return CP_OK;
}

cp_status cp__ctx_reason(cp_ctx *ctx)
{
    cp_status st = cp_ctx_err(ctx);
    /* A waiter ends CANCELED/TIMEDOUT only because its ctx ended, and
     * TIMEDOUT only at or after the deadline, so st is never CP_OK here. */
    if (st == CP_OK) cp_die("waiter woken without its ctx ending");
    return st;
}
