/* ctx tree and event semantics, on every backend (Go's context package). */
#include "../test.h"

#include "core/hooks.h"     /* cp_chaos_enable: widen race windows in chaos builds */

#define MS 1000000ull

static double scale(void)
{
    const char *s = getenv("CP_TEST_SCALE");
    double f = s ? atof(s) : 1.0;
    return f > 0 ? f : 1.0;
}

static void t_tree(const cp_backend *b)
{
    CHECK_ST(cp_ctx_err(NULL), CP_OK);
    cp_ctx_cancel(NULL);
    cp_ctx_free(NULL);

    cp_ctx *root = cp_ctx_with_cancel(b, NULL);
    cp_ctx *a = cp_ctx_with_cancel(b, root);
    cp_ctx *a1 = cp_ctx_with_cancel(b, a);
    cp_ctx *bb = cp_ctx_with_cancel(b, root);
    CHECK(cp_ctx_done(a) == cp_ctx_done(a));
    CHECK(!cp_event_fired(cp_ctx_done(a)));

    cp_ctx_cancel(bb); /* a sibling's cancel touches nobody else */
    CHECK_ST(cp_ctx_err(bb), CP_CANCELED);
    CHECK_ST(cp_ctx_err(root), CP_OK);
    CHECK_ST(cp_ctx_err(a), CP_OK);

    cp_ctx_cancel(root); /* reaches every descendant */
    CHECK_ST(cp_ctx_err(root), CP_CANCELED);
    CHECK_ST(cp_ctx_err(a), CP_CANCELED);
    CHECK_ST(cp_ctx_err(a1), CP_CANCELED);
    CHECK(cp_event_fired(cp_ctx_done(a1)));
    /* a child made under a cancelled parent is born cancelled */
    cp_ctx *late = cp_ctx_with_cancel(b, a);
    CHECK_ST(cp_ctx_err(late), CP_CANCELED);
    cp_ctx_free(late);

    /* free in any order: parent first, then children (ASan checks the rest) */
    cp_ctx_free(root);
    cp_ctx_free(a1);
    cp_ctx_free(a);
    cp_ctx_free(bb);

    /* freeing a parent with live children cancels them */
    root = cp_ctx_with_cancel(b, NULL);
    a = cp_ctx_with_cancel(b, root);
    cp_ctx_free(root);
    CHECK_ST(cp_ctx_err(a), CP_CANCELED);
    cp_ctx_free(a);
}

static void t_deadlines(const cp_backend *b)
{
    /* a child of an expiring parent reports CP_DEADLINE */
    cp_ctx *p = cp_ctx_with_timeout(b, NULL, 20 * MS);
    cp_ctx *c = cp_ctx_with_cancel(b, p);
    CHECK_EQ(cp_ctx_deadline(c), cp_ctx_deadline(p));
    CHECK_ST(cp_ctx_err(c), CP_OK);
    t_sleep_ms(30);
    CHECK_ST(cp_ctx_err(c), CP_DEADLINE);
    CHECK_ST(cp_ctx_err(p), CP_DEADLINE);
    /* expired stays DEADLINE after a later cancel */
    cp_ctx_cancel(p);
    CHECK_ST(cp_ctx_err(p), CP_DEADLINE);
    cp_ctx_free(c);
    cp_ctx_free(p);

    /* cancelled before the deadline stays CANCELED after it */
    p = cp_ctx_with_timeout(b, NULL, 10 * MS);
    cp_ctx_cancel(p);
    t_sleep_ms(20);
    CHECK_ST(cp_ctx_err(p), CP_CANCELED);
    cp_ctx_free(p);

    /* a child's own earlier deadline wins over the parent's later one */
    p = cp_ctx_with_timeout(b, NULL, 10000 * MS);
    c = cp_ctx_with_timeout(b, p, 10 * MS);
    CHECK(cp_ctx_deadline(c) < cp_ctx_deadline(p));
    t_sleep_ms(20);
    CHECK_ST(cp_ctx_err(c), CP_DEADLINE);
    CHECK_ST(cp_ctx_err(p), CP_OK);
    cp_ctx_free(c);
    cp_ctx_free(p);

    /* a deadline already in the past */
    p = cp_ctx_with_deadline(b, NULL, cp_now_ns() - 1);
    CHECK_ST(cp_ctx_err(p), CP_DEADLINE);
    CHECK(cp_event_fired(cp_ctx_done(p)));
    cp_ctx_free(p);
}

struct ew { cp_event *e; cp_ctx *ctx; cp_status st; uint64_t ended; };
static void *do_wait(void *p)
{
    struct ew *w = p;
    w->st = cp_event_wait(w->e, w->ctx);
    w->ended = cp_now_ns();
    return NULL;
}

static void t_event(const cp_backend *b)
{
    enum { N = 4 };
    cp_event *e = cp_event_new(b);
    CHECK(!cp_event_fired(e));
    struct ew ws[N];
    pthread_t ts[N];
    for (int i = 0; i < N; i++) {
        ws[i] = (struct ew){ .e = e };
        ts[i] = t_spawn(do_wait, &ws[i]);
    }
    t_sleep_ms(20);
    cp_event_fire(e);
    cp_event_fire(e); /* idempotent */
    for (int i = 0; i < N; i++) {
        t_join(ts[i], 5000, "event waiter across fire");
        CHECK_ST(ws[i].st, CP_OK);
    }
    CHECK(cp_event_fired(e));
    CHECK_ST(cp_event_wait(e, NULL), CP_OK);
    cp_event_free(e);

    /* a wait ends with its ctx */
    e = cp_event_new(b);
    cp_ctx *ctx = cp_ctx_with_cancel(b, NULL);
    ws[0] = (struct ew){ .e = e, .ctx = ctx };
    ts[0] = t_spawn(do_wait, &ws[0]);
    t_sleep_ms(20);
    cp_ctx_cancel(ctx);
    t_join(ts[0], 5000, "event waiter across cancel");
    CHECK_ST(ws[0].st, CP_CANCELED);
    cp_ctx_free(ctx);

    ctx = cp_ctx_with_timeout(b, NULL, 20 * MS);
    CHECK_ST(cp_event_wait(e, ctx), CP_DEADLINE);
    CHECK(cp_now_ns() >= cp_ctx_deadline(ctx));
    cp_ctx_free(ctx);
    cp_event_free(e);

    /* waiting on a ctx's done event wakes at its deadline, with no timer thread */
    ctx = cp_ctx_with_timeout(b, NULL, 20 * MS);
    ws[0] = (struct ew){ .e = cp_ctx_done(ctx) };
    ts[0] = t_spawn(do_wait, &ws[0]);
    t_join(ts[0], 5000, "wait on done across deadline");
    CHECK_ST(ws[0].st, CP_OK);
    CHECK(ws[0].ended >= cp_ctx_deadline(ctx));
    CHECK_ST(cp_ctx_err(ctx), CP_DEADLINE);
    cp_ctx_free(ctx);

    /* a parent's cancel wakes a waiter on a grandchild's done event */
    cp_ctx *root = cp_ctx_with_cancel(b, NULL);
    cp_ctx *mid = cp_ctx_with_cancel(b, root);
    cp_ctx *leaf = cp_ctx_with_cancel(b, mid);
    ws[0] = (struct ew){ .e = cp_ctx_done(leaf) };
    ts[0] = t_spawn(do_wait, &ws[0]);
    t_sleep_ms(10);
    cp_ctx_cancel(root);
    t_join(ts[0], 5000, "wait on grandchild's done across root cancel");
    CHECK_ST(ws[0].st, CP_OK);
    cp_ctx_free(leaf);
    cp_ctx_free(mid);
    cp_ctx_free(root);
}

/* Concurrent cancels and frees of a tree (TSan and ASan watch this one). */
struct tree_arg { const cp_backend *b; int seed; };
static void *tree_churn(void *p)
{
    struct tree_arg *a = p;
    unsigned s = (unsigned)a->seed;
    for (int i = 0; i < 300; i++) {
        cp_ctx *r = cp_ctx_with_cancel(a->b, NULL);
        cp_ctx *k[8];
        for (int j = 0; j < 8; j++) k[j] = cp_ctx_with_cancel(a->b, j ? k[rand_r(&s) % j] : r);
        if (rand_r(&s) & 1) cp_ctx_cancel(k[rand_r(&s) % 8]);
        if (rand_r(&s) & 1) cp_ctx_free(r), r = NULL;
        for (int j = 7; j >= 0; j--) cp_ctx_free(k[j]);
        cp_ctx_free(r);
    }
    return NULL;
}

static void t_tree_concurrent(const cp_backend *b)
{
    /* one parent, children created/cancelled/freed from several threads */
    pthread_t ts[3];
    struct tree_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct tree_arg){ b, i + 1 };
        ts[i] = t_spawn(tree_churn, &args[i]);
    }
    for (int i = 0; i < 3; i++) t_join(ts[i], 30000, "ctx churn");
}

/* ---- a child of an ended parent is born ended (Go's propagateCancel) ----
 * Several threads create and free children of a parent (and of a child made
 * before the cancel) while the main thread cancels the parent. A thread
 * that has seen cp_ctx_err(base) != CP_OK and then creates a child must get
 * one that reports base's reason from its first cp_ctx_err, whose done event
 * has fired, and on which blocking calls return that reason at once. The
 * window (err set, done not yet fired) is a chaos point in ctx_end, so the
 * chaos builds (tsan, asan) hit it in most rounds; release builds rarely.
 * Failures are counted in atomics (CHECK's counters are not thread-safe). */
struct born_arg {
    const cp_backend *b;
    cp_ctx *base;
    cp_chan *ch;            /* empty, never closed: a recv can only end by its ctx */
    cp_event *ev;           /* never fired */
    _Atomic int *started;
    _Atomic int *bad_err, *bad_done, *bad_recv, *bad_wait, *hits;
};

static void *born_churn(void *p)
{
    struct born_arg *a = p;
    atomic_fetch_add(a->started, 1);
    for (long i = 0; i < 10000000; i++) {
        cp_status seen = cp_ctx_err(a->base);
        cp_ctx *c = cp_ctx_with_cancel(a->b, a->base);
        if (!c) { atomic_fetch_add(a->bad_err, 1); break; }
        if (seen == CP_OK) {    /* nothing promised yet: churn the parent's list */
            cp_ctx_free(c);
            continue;
        }
        atomic_fetch_add(a->hits, 1);
        if (cp_ctx_err(c) != seen) atomic_fetch_add(a->bad_err, 1);
        if (!cp_event_fired(cp_ctx_done(c))) atomic_fetch_add(a->bad_done, 1);
        long x;
        if (cp_chan_recv(a->ch, &x, c) != seen) atomic_fetch_add(a->bad_recv, 1);
        if (cp_event_wait(a->ev, c) != seen) atomic_fetch_add(a->bad_wait, 1);
        cp_ctx_free(c);
        break;
    }
    return NULL;
}

static void t_child_of_ended(const cp_backend *b)
{
    enum { T = 4 };
    int rounds = (int)(300 * scale());
    _Atomic int bad_err = 0, bad_done = 0, bad_recv = 0, bad_wait = 0, hits = 0;
    cp_chan *ch = cp_chan_new(b, sizeof(long), 1);
    cp_event *ev = cp_event_new(b);
    cp_chaos_enable(true);
    for (int r = 0; r < rounds; r++) {
        /* Odd rounds end by deadline (whoever reads the clock first ends
         * the parent), even rounds by cancel. */
        cp_ctx *parent = (r & 1) ? cp_ctx_with_timeout(b, NULL, 200000) : cp_ctx_with_cancel(b, NULL);
        cp_ctx *mid = cp_ctx_with_cancel(b, parent);
        _Atomic int started = 0;
        struct born_arg args[T];
        pthread_t ts[T];
        for (int i = 0; i < T; i++) {
            args[i] = (struct born_arg){ b, (i & 1) ? mid : parent, ch, ev, &started,
                                         &bad_err, &bad_done, &bad_recv, &bad_wait, &hits };
            ts[i] = t_spawn(born_churn, &args[i]);
        }
        while (atomic_load(&started) < T) sched_yield();
        for (volatile int k = (r * 7919) % 5000; k > 0; k--) {}
        if (!(r & 1)) cp_ctx_cancel(parent);
        for (int i = 0; i < T; i++) t_join(ts[i], 30000, "child of an ended parent");
        cp_ctx_free(mid);
        cp_ctx_free(parent);
    }
    cp_chaos_enable(false);
    CHECK(atomic_load(&hits) > 0);
    CHECK_EQ(atomic_load(&bad_err), 0);     /* first cp_ctx_err was not the parent's reason */
    CHECK_EQ(atomic_load(&bad_done), 0);    /* done not fired when the child came back */
    CHECK_EQ(atomic_load(&bad_recv), 0);
    CHECK_EQ(atomic_load(&bad_wait), 0);
    cp_event_free(ev);
    cp_chan_free(ch);
}

/* ---- a huge timeout means "never": now + timeout saturates ----
 * With the sum wrapping, the deadline lands in the past and the ctx is
 * expired at once; every blocking call on it then returns CP_DEADLINE
 * instead of waiting. Here each one must wait for its partner. */
struct late_arg { cp_chan *ch; cp_event *ev; };
static void *late_partner(void *p)
{
    struct late_arg *a = p;
    long v = 7;
    for (int i = 0; i < 2; i++) {
        t_sleep_ms(10);
        cp_chan_send(a->ch, &v, NULL);
    }
    t_sleep_ms(10);
    cp_event_fire(a->ev);
    return NULL;
}

static void t_huge_timeout(const cp_backend *b)
{
    uint64_t now = cp_now_ns();
    uint64_t huge[] = { UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - now + 1, UINT64_MAX / 2 + 1 };
    for (size_t k = 0; k < sizeof huge / sizeof *huge; k++) {
        cp_ctx *c = cp_ctx_with_timeout(b, NULL, huge[k]);
        CHECK_ST(cp_ctx_err(c), CP_OK);
        CHECK(!cp_event_fired(cp_ctx_done(c)));
        CHECK(cp_ctx_deadline(c) > now);
        if (k < 3) CHECK(cp_ctx_deadline(c) == UINT64_MAX);   /* saturated */
        cp_ctx *kid = cp_ctx_with_timeout(b, c, UINT64_MAX);  /* a child inherits it, unexpired */
        CHECK_ST(cp_ctx_err(kid), CP_OK);
        cp_ctx_free(kid);
        cp_ctx_free(c);
    }
    /* a deadline at the very end of time is honoured as a (very) timed wait */
    for (size_t cap = 0; cap < 2; cap++) {
        cp_ctx *c = cp_ctx_with_timeout(b, NULL, UINT64_MAX);
        struct late_arg a = { cp_chan_new(b, sizeof(long), cap), cp_event_new(b) };
        pthread_t t = t_spawn(late_partner, &a);
        long got = 0;
        CHECK_ST(cp_chan_recv(a.ch, &got, c), CP_OK);
        CHECK_EQ(got, 7);
        cp_case rc = { .op = CP_RECV, .ch = a.ch, .elem = &got };
        cp_status st = CP_EINVAL;
        CHECK_EQ(cp_select(&rc, 1, c, &st), 0);
        CHECK_ST(st, CP_OK);
        CHECK_ST(cp_event_wait(a.ev, c), CP_OK);
        t_join(t, 5000, "partner of a huge-timeout ctx");
        CHECK_ST(cp_ctx_err(c), CP_OK);
        cp_ctx_cancel(c);
        CHECK_ST(cp_ctx_err(c), CP_CANCELED);
        cp_event_free(a.ev);
        cp_chan_free(a.ch);
        cp_ctx_free(c);
    }
}

int main(void)
{
    FOR_EACH_BACKEND(b)
    {
        t_tree(b);
        t_deadlines(b);
        t_event(b);
        t_tree_concurrent(b);
        t_child_of_ended(b);
        t_huge_timeout(b);
    }
    return t_finish("test_ctx");
}
