/*
 * cp_select / cp_try_select semantics, the same body on every backend
 * (Go's select: runtime/select.go, and its tests in runtime/chan_test.go).
 * Rendezvous (capacity 0) and buffered channels are both covered: in the
 * lockfree and futex families they are different structures (gochan, ring).
 */
#include "../test.h"

#define MS 1000000ull

static double scale(void)
{
    const char *s = getenv("CP_TEST_SCALE");
    double f = s ? atof(s) : 1.0;
    return f > 0 ? f : 1.0;
}

static cp_case RECV(cp_chan *ch, void *elem) { return (cp_case){ .op = CP_RECV, .ch = ch, .elem = elem }; }
static cp_case SEND(cp_chan *ch, void *elem) { return (cp_case){ .op = CP_SEND, .ch = ch, .elem = elem }; }
static cp_case WAIT(cp_event *ev) { return (cp_case){ .op = CP_WAIT, .ev = ev }; }

/* ---- ready cases are taken, nil cases never ---- */
static void t_ready(const cp_backend *b)
{
    cp_chan *c1 = cp_chan_new(b, sizeof(int), 1), *c2 = cp_chan_new(b, sizeof(int), 1);
    int v = 5, got = 0;
    cp_status st;
    CHECK_ST(cp_chan_send(c2, &v, NULL), CP_OK);
    cp_case cs[] = { RECV(c1, &got), RECV(NULL, &got), RECV(c2, &got), WAIT(NULL) };
    for (int k = 0; k < 2; k++) {
        st = CP_EINVAL;
        int i = k ? cp_try_select(cs, 4, &st) : cp_select(cs, 4, NULL, &st);
        CHECK_EQ(i, 2);
        CHECK_ST(st, CP_OK);
        CHECK_EQ(got, 5);
        CHECK_ST(cp_chan_send(c2, &v, NULL), CP_OK);
    }
    /* send cases: c2 is full, c1 has room */
    int w = 9;
    cp_case ss[] = { SEND(c2, &w), SEND(NULL, &w), SEND(c1, &w) };
    CHECK_EQ(cp_select(ss, 3, NULL, &st), 2);
    CHECK_ST(st, CP_OK);
    CHECK_ST(cp_chan_recv(c1, &got, NULL), CP_OK);
    CHECK_EQ(got, 9);
    /* a fired event is ready */
    cp_event *ev = cp_event_new(b);
    cp_event_fire(ev);
    cp_case es[] = { SEND(c2, &w), WAIT(ev) };
    CHECK_EQ(cp_try_select(es, 2, &st), 1);
    CHECK_ST(st, CP_OK);
    cp_event_free(ev);
    cp_chan_free(c1);
    cp_chan_free(c2);
}

/* ---- nothing ready ---- */
static void t_wouldblock(const cp_backend *b)
{
    size_t caps[] = { 0, 2 };
    for (int k = 0; k < 2; k++) {
        cp_chan *c1 = cp_chan_new(b, sizeof(int), caps[k]), *c2 = cp_chan_new(b, sizeof(int), caps[k]);
        int v = 1;
        for (size_t i = 0; i < caps[k]; i++) CHECK_ST(cp_chan_send(c2, &v, NULL), CP_OK); /* full */
        cp_event *ev = cp_event_new(b);
        cp_case cs[] = { RECV(c1, &v), SEND(c2, &v), WAIT(ev), RECV(NULL, &v) };
        cp_status st = CP_OK;
        CHECK_EQ(cp_try_select(cs, 4, &st), -1);
        CHECK_ST(st, CP_WOULDBLOCK);
        CHECK_EQ(cp_chan_len(c1), 0);
        CHECK_EQ(cp_chan_len(c2), caps[k]);
        cp_event_free(ev);
        cp_chan_free(c1);
        cp_chan_free(c2);
    }
    cp_status st = CP_OK;
    CHECK_EQ(cp_try_select(NULL, 0, &st), -1);
    CHECK_ST(st, CP_WOULDBLOCK);
    /* blocking select with nothing to wait for: would block forever */
    st = CP_OK;
    CHECK_EQ(cp_select(NULL, 0, NULL, &st), -1);
    CHECK_ST(st, CP_EINVAL);
    cp_case nil[] = { RECV(NULL, NULL) };
    st = CP_OK;
    /* only nil cases plus a ctx: waits for the ctx */
    cp_ctx *ctx = cp_ctx_with_timeout(b, NULL, 20 * MS);
    uint64_t dl = cp_ctx_deadline(ctx);
    CHECK_EQ(cp_select(nil, 1, ctx, &st), -1);
    CHECK_ST(st, CP_DEADLINE);
    CHECK(cp_now_ns() >= dl);
    CHECK_EQ(cp_select(NULL, 0, ctx, &st), -1);
    CHECK_ST(st, CP_DEADLINE);
    cp_ctx_free(ctx);
}

/* ---- fairness: several always-ready cases are chosen uniformly ---- */
static void t_fair(const cp_backend *b, size_t cap, int k, int use_try)
{
    enum { ROUNDS = 20000 };
    cp_chan *ch[4];
    int vals[4], out = 0;
    cp_case cs[4];
    /* cases 0..k-2: receives from channels holding an item; case k-1: a send
     * to a channel with room (cap > 0) or a fired event (cap 0) */
    cp_event *ev = cp_event_new(b);
    cp_event_fire(ev);
    for (int i = 0; i < k; i++) {
        ch[i] = cp_chan_new(b, sizeof(int), cap ? cap : 1);
        vals[i] = i;
        if (i < k - 1) {
            CHECK_ST(cp_chan_send(ch[i], &vals[i], NULL), CP_OK);
            cs[i] = RECV(ch[i], &out);
        } else {
            cs[i] = cap ? SEND(ch[i], &vals[i]) : WAIT(ev);
        }
    }
    long hits[4] = { 0 };
    for (int r = 0; r < ROUNDS; r++) {
        cp_status st;
        int i = use_try ? cp_try_select(cs, (size_t)k, &st) : cp_select(cs, (size_t)k, NULL, &st);
        if (i < 0 || i >= k || st != CP_OK) {
            CHECK(0);
            break;
        }
        hits[i]++;
        if (cs[i].op == CP_RECV) { CHECK_EQ(out, i); CHECK_ST(cp_chan_send(ch[i], &vals[i], NULL), CP_OK); }
        if (cs[i].op == CP_SEND) CHECK_ST(cp_chan_recv(ch[i], &out, NULL), CP_OK);
    }
    for (int i = 0; i < k; i++) {
        double share = (double)hits[i] / ROUNDS, want = 1.0 / k;
        if (share < want - 0.05 || share > want + 0.05)
            fprintf(stderr, "[%s] k=%d case %d share %.3f\n", t_where, k, i, share);
        CHECK(share >= want - 0.05 && share <= want + 0.05);
        cp_chan_free(ch[i]);
    }
    cp_event_free(ev);
}

/* ---- blocked selects and who wakes them ---- */
struct sel_op {
    cp_case *cs;
    size_t n;
    cp_ctx *ctx;
    int idx;
    cp_status st;
    uint64_t ended;
};
static void *do_select(void *p)
{
    struct sel_op *o = p;
    o->idx = cp_select(o->cs, o->n, o->ctx, &o->st);
    o->ended = cp_now_ns();
    return NULL;
}
struct chan_op { cp_chan *ch; int val; cp_status st; unsigned delay_ms; };
static void *do_send(void *p)
{
    struct chan_op *o = p;
    t_sleep_ms(o->delay_ms);
    o->st = cp_chan_send(o->ch, &o->val, NULL);
    return NULL;
}

static void t_wake_by_chan(const cp_backend *b, size_t cap)
{
    enum { K = 3 };
    for (int j = 0; j < K; j++) {
        /* receive cases woken by a send on channel j */
        cp_chan *ch[K];
        int got = -1;
        cp_case cs[K];
        for (int i = 0; i < K; i++) {
            ch[i] = cp_chan_new(b, sizeof(int), cap);
            cs[i] = RECV(ch[i], &got);
        }
        struct sel_op o = { .cs = cs, .n = K };
        pthread_t t = t_spawn(do_select, &o);
        t_sleep_ms(10);
        int v = 100 + j;
        CHECK_ST(cp_chan_send(ch[j], &v, NULL), CP_OK);
        t_join(t, 5000, "select across a send");
        CHECK_EQ(o.idx, j);
        CHECK_ST(o.st, CP_OK);
        CHECK_EQ(got, 100 + j);

        /* send cases (channels full, or no receiver) woken by a receive on j */
        int out[K];
        int filler = -7;
        for (int i = 0; i < K; i++) {
            for (size_t f = 0; f < cap; f++) CHECK_ST(cp_chan_send(ch[i], &filler, NULL), CP_OK);
            out[i] = 200 + i;
            cs[i] = SEND(ch[i], &out[i]);
        }
        o = (struct sel_op){ .cs = cs, .n = K };
        t = t_spawn(do_select, &o);
        t_sleep_ms(10);
        int r = 0;
        CHECK_ST(cp_chan_recv(ch[j], &r, NULL), CP_OK);
        t_join(t, 5000, "select across a receive");
        CHECK_EQ(o.idx, j);
        CHECK_ST(o.st, CP_OK);
        CHECK_EQ(r, cap ? filler : 200 + j);
        for (int i = 0; i < K; i++) {
            /* exactly one item moved: channel j got the select's item */
            CHECK_EQ(cp_chan_len(ch[i]), cap);
            cp_chan_free(ch[i]);
        }
    }
}

static void t_wake_by_event_ctx(const cp_backend *b, size_t cap)
{
    cp_chan *ch = cp_chan_new(b, sizeof(int), cap);
    int got;
    /* event fire */
    cp_event *ev = cp_event_new(b);
    cp_case cs[] = { RECV(ch, &got), WAIT(ev) };
    struct sel_op o = { .cs = cs, .n = 2 };
    pthread_t t = t_spawn(do_select, &o);
    t_sleep_ms(10);
    uint64_t t0 = cp_now_ns();
    cp_event_fire(ev);
    t_join(t, 5000, "select across an event fire");
    CHECK_EQ(o.idx, 1);
    CHECK_ST(o.st, CP_OK);
    CHECK(o.ended - t0 < 1000 * MS);
    cp_event_free(ev);

    /* ctx cancel, promptly */
    cp_event *never = cp_event_new(b);
    cs[1] = WAIT(never);
    cp_ctx *ctx = cp_ctx_with_cancel(b, NULL);
    o = (struct sel_op){ .cs = cs, .n = 2, .ctx = ctx };
    t = t_spawn(do_select, &o);
    t_sleep_ms(10);
    t0 = cp_now_ns();
    cp_ctx_cancel(ctx);
    t_join(t, 5000, "select across a cancel");
    CHECK_EQ(o.idx, -1);
    CHECK_ST(o.st, CP_CANCELED);
    CHECK(o.ended - t0 < 1000 * MS);
    /* an ended ctx with nothing ready: at once */
    CHECK_EQ(cp_select(cs, 2, ctx, &o.st), -1);
    CHECK_ST(o.st, CP_CANCELED);
    cp_ctx_free(ctx);

    /* deadline: never early */
    ctx = cp_ctx_with_timeout(b, NULL, 30 * MS);
    uint64_t dl = cp_ctx_deadline(ctx);
    o = (struct sel_op){ .cs = cs, .n = 2, .ctx = ctx };
    t = t_spawn(do_select, &o);
    t_join(t, 5000, "select across a deadline");
    CHECK_EQ(o.idx, -1);
    CHECK_ST(o.st, CP_DEADLINE);
    CHECK(o.ended >= dl);
    CHECK(o.ended - dl < 1000 * MS);
    cp_ctx_free(ctx);

    /* a ctx's done event as a case (the or-done shape): it counts as fired
     * at the ctx's deadline, with no one calling cp_ctx_err */
    ctx = cp_ctx_with_timeout(b, NULL, 30 * MS);
    dl = cp_ctx_deadline(ctx);
    cs[1] = WAIT(cp_ctx_done(ctx));
    o = (struct sel_op){ .cs = cs, .n = 2 };
    t = t_spawn(do_select, &o);
    t_join(t, 5000, "select on a done event across its deadline");
    CHECK_EQ(o.idx, 1);
    CHECK_ST(o.st, CP_OK);
    CHECK(o.ended >= dl);
    cp_ctx_free(ctx);
    cp_event_free(never);
    cp_chan_free(ch);
}

/* ---- closed channels ---- */
static void t_closed(const cp_backend *b, size_t cap)
{
    cp_chan *open_ = cp_chan_new(b, sizeof(int), cap), *ch = cp_chan_new(b, sizeof(int), cap);
    int v = 3, got = 0;
    if (cap) CHECK_ST(cp_chan_send(ch, &v, NULL), CP_OK);
    CHECK_ST(cp_chan_close(ch), CP_OK);
    cp_case cs[] = { RECV(open_, &got), RECV(ch, &got) };
    cp_status st;
    if (cap) { /* drains first */
        CHECK_EQ(cp_select(cs, 2, NULL, &st), 1);
        CHECK_ST(st, CP_OK);
        CHECK_EQ(got, 3);
    }
    CHECK_EQ(cp_select(cs, 2, NULL, &st), 1);
    CHECK_ST(st, CP_CLOSED);
    CHECK_EQ(cp_try_select(cs, 2, &st), 1);
    CHECK_ST(st, CP_CLOSED);
    cp_case ss[] = { RECV(open_, &got), SEND(ch, &v) };
    CHECK_EQ(cp_select(ss, 2, NULL, &st), 1);
    CHECK_ST(st, CP_CLOSED);
    cp_chan_free(ch);

    /* blocked select woken by a close */
    ch = cp_chan_new(b, sizeof(int), cap);
    cs[1] = RECV(ch, &got);
    struct sel_op o = { .cs = cs, .n = 2 };
    pthread_t t = t_spawn(do_select, &o);
    t_sleep_ms(10);
    CHECK_ST(cp_chan_close(ch), CP_OK);
    t_join(t, 5000, "select across a close");
    CHECK_EQ(o.idx, 1);
    CHECK_ST(o.st, CP_CLOSED);
    cp_chan_free(ch);
    cp_chan_free(open_);
}

/* ---- two selects meet on a rendezvous channel (neither is a plain op) ---- */
static void t_select_pair(const cp_backend *b)
{
    cp_chan *ch = cp_chan_new(b, sizeof(int), 0), *other = cp_chan_new(b, sizeof(int), 1);
    for (int r = 0; r < 20; r++) {
        int v = 40 + r, got = 0, dummy = 0;
        cp_case sc[] = { SEND(ch, &v), RECV(other, &dummy) };
        cp_case rc[] = { RECV(other, &dummy), RECV(ch, &got) };
        struct sel_op so = { .cs = sc, .n = 2 }, ro = { .cs = rc, .n = 2 };
        pthread_t t1 = t_spawn(do_select, &so);
        if (r & 1) t_sleep_ms(1);
        pthread_t t2 = t_spawn(do_select, &ro);
        t_join(t1, 5000, "select send vs select recv");
        t_join(t2, 5000, "select recv vs select send");
        CHECK_EQ(so.idx, 0);
        CHECK_EQ(ro.idx, 1);
        CHECK_EQ(got, 40 + r);
    }
    cp_chan_free(ch);
    cp_chan_free(other);
}

/* ---- no registration left behind ---- */
__attribute__((noinline)) static void scribble_stack(void)
{
    volatile unsigned char junk[16384];
    memset((void *)junk, 0xa5, sizeof junk);
}

static void t_losers_removed(const cp_backend *b, size_t cap)
{
    cp_chan *c1 = cp_chan_new(b, sizeof(int), cap), *c2 = cp_chan_new(b, sizeof(int), cap);
    cp_event *ev = cp_event_new(b);
    cp_ctx *ctx = cp_ctx_with_cancel(b, NULL);
    int got = 0;
    cp_case cs[] = { RECV(c1, &got), RECV(c2, &got), WAIT(ev) };
    struct chan_op s1 = { .ch = c1, .val = 11, .delay_ms = 10 };
    pthread_t t = t_spawn(do_send, &s1);
    cp_status st;
    CHECK_EQ(cp_select(cs, 3, ctx, &st), 0);  /* on this thread's stack */
    CHECK_ST(st, CP_OK);
    CHECK_EQ(got, 11);
    t_join(t, 5000, "sender to the select");
    scribble_stack();   /* a sudog left on c2 would now be garbage */

    /* c2 works as if the select had never been there */
    int v = 22;
    for (size_t i = 0; i < cap; i++) CHECK_ST(cp_chan_try_send(c2, &v), CP_OK);
    CHECK_ST(cp_chan_try_send(c2, &v), CP_WOULDBLOCK);  /* nobody receives */
    for (size_t i = 0; i < cap; i++) CHECK_ST(cp_chan_try_recv(c2, &v), CP_OK);
    struct chan_op s2 = { .ch = c2, .val = 33, .delay_ms = 0 };
    t = t_spawn(do_send, &s2);
    int r = 0;
    CHECK_ST(cp_chan_recv(c2, &r, NULL), CP_OK);     /* pairs with the plain send */
    t_join(t, 5000, "rendezvous after a select");
    CHECK_ST(s2.st, CP_OK);
    CHECK_EQ(r, 33);
    /* and its waiter is gone from the event and the ctx */
    cp_event_fire(ev);
    cp_ctx_cancel(ctx);
    CHECK_ST(cp_chan_close(c2), CP_OK);
    CHECK_ST(cp_chan_close(c1), CP_OK);

    /* the same after a select that ended by its ctx */
    cp_chan *c3 = cp_chan_new(b, sizeof(int), cap);
    cp_ctx *tmo = cp_ctx_with_timeout(b, NULL, 5 * MS);
    cp_case cs3[] = { RECV(c3, &got), SEND(c3, &v) };
    if (cap) for (size_t i = 0; i < cap; i++) CHECK_ST(cp_chan_send(c3, &v, NULL), CP_OK);
    if (cap) cs3[0] = SEND(c3, &v);  /* full: no case ready */
    CHECK_EQ(cp_select(cs3, 2, tmo, &st), -1);
    CHECK_ST(st, CP_DEADLINE);
    scribble_stack();
    CHECK_ST(cp_chan_close(c3), CP_OK);
    cp_ctx_free(tmo);
    cp_chan_free(c3);

    cp_ctx_free(ctx);
    cp_event_free(ev);
    cp_chan_free(c1);
    cp_chan_free(c2);
}

/* ---- objects of two backends ---- */
static void t_mismatch(const cp_backend *b)
{
    const cp_backend *other = cp_backend_at((size_t)(bi_of(b) + 1) % cp_backend_count());
    cp_chan *mine = cp_chan_new(b, sizeof(int), 1), *theirs = cp_chan_new(other, sizeof(int), 1);
    cp_event *tev = cp_event_new(other);
    cp_ctx *tctx = cp_ctx_with_cancel(other, NULL);
    int v = 1;
    CHECK_ST(cp_chan_send(mine, &v, NULL), CP_OK);   /* ready: still EINVAL */
    cp_status st = CP_OK;
    cp_case c1[] = { RECV(mine, &v), RECV(theirs, &v) };
    CHECK_EQ(cp_select(c1, 2, NULL, &st), -1);
    CHECK_ST(st, CP_EINVAL);
    CHECK_EQ(cp_try_select(c1, 2, &st), -1);
    CHECK_ST(st, CP_EINVAL);
    cp_case c2[] = { RECV(mine, &v), WAIT(tev) };
    CHECK_EQ(cp_select(c2, 2, NULL, &st), -1);
    CHECK_ST(st, CP_EINVAL);
    cp_case c3[] = { RECV(mine, &v) };
    CHECK_EQ(cp_select(c3, 1, tctx, &st), -1);
    CHECK_ST(st, CP_EINVAL);
    cp_case c4[] = { { .op = 42, .ch = mine } };
    CHECK_EQ(cp_select(c4, 1, NULL, &st), -1);
    CHECK_ST(st, CP_EINVAL);
    CHECK_EQ(cp_chan_len(mine), 1);  /* nothing was taken */
    cp_ctx_free(tctx);
    cp_event_free(tev);
    cp_chan_free(mine);
    cp_chan_free(theirs);
}

/* ---- Go's TestNonblockSelectRace: try_select is linearizable ----
 * c1 holds an item; concurrently the main thread fills c2, then drains c1.
 * At every instant c1 or c2 holds an item, so the helper's try_select over
 * both must never report WOULDBLOCK. A helper thread is reused across
 * iterations (a handshake on `round`), so many iterations stay cheap. */
/* 0..127 pauses, so that the two threads' steps slide over each other */
static void t_jitter(unsigned x)
{
    x ^= x >> 15;
    x *= 0x2c1b3c6du;
    x ^= x >> 12;
    for (volatile unsigned i = x & 127; i > 0; i--) continue;
}
struct race {
    cp_chan *c1, *c2;
    _Atomic int round, done_round, stop;
    _Atomic long wouldblock;
};
static void *race_helper(void *p)
{
    struct race *r = p;
    for (int seen = 0;;) {
        int cur;
        while ((cur = atomic_load(&r->round)) == seen && !atomic_load(&r->stop)) sched_yield();
        if (atomic_load(&r->stop)) return NULL;
        seen = cur;
        t_jitter((unsigned)cur * 2654435761u);
        int v;
        cp_case cs[] = { RECV(r->c1, &v), RECV(r->c2, &v) };
        cp_status st;
        if (cp_try_select(cs, 2, &st) < 0) atomic_fetch_add(&r->wouldblock, 1);
        atomic_store(&r->done_round, cur);
    }
}
static void t_nonblock_race(const cp_backend *b)
{
    int iters = (int)(20000 * scale());
    uint64_t until = cp_now_ns() + 3000 * MS;   /* bounded time on a busy machine */
    struct race r = { .c1 = cp_chan_new(b, sizeof(int), 1), .c2 = cp_chan_new(b, sizeof(int), 1) };
    pthread_t t = t_spawn(race_helper, &r);
    int v = 1, done = 0;
    for (int i = 1; i <= iters && cp_now_ns() < until; i++, done++) {
        CHECK_ST(cp_chan_send(r.c1, &v, NULL), CP_OK);
        atomic_store(&r.round, i);
        t_jitter((unsigned)i * 40503u);
        CHECK_ST(cp_chan_send(r.c2, &v, NULL), CP_OK);
        (void)cp_chan_try_recv(r.c1, &v);
        while (atomic_load(&r.done_round) != i) sched_yield();
        /* empty both for the next round */
        (void)cp_chan_try_recv(r.c1, &v);
        (void)cp_chan_try_recv(r.c2, &v);
    }
    atomic_store(&r.stop, 1);
    t_join(t, 5000, "race helper");
    if (atomic_load(&r.wouldblock))
        fprintf(stderr, "[%s] try_select saw no ready case %ld times in %d rounds\n", t_where,
                atomic_load(&r.wouldblock), done);
    CHECK_EQ(atomic_load(&r.wouldblock), 0);
    cp_chan_free(r.c1);
    cp_chan_free(r.c2);
}

/* ---- a case with an unknown op is an invalid argument, never "not ready" ----
 * On cp_select and cp_try_select, through the table (cp_select) and the
 * family's own symbol (cp_<family>_select), whatever the case's object and
 * wherever the case sits: index -1, *st = CP_EINVAL, nothing taken. */
typedef int (*sel_fn)(cp_case *, size_t, cp_ctx *, cp_status *);
typedef int (*try_fn)(cp_case *, size_t, cp_status *);
static void family_select(const cp_backend *b, sel_fn *sel, try_fn *try_sel)
{
    const char *n = cp_backend_name(b);
    *sel = NULL, *try_sel = NULL;
#define FAMILY_SELECT(f) if (!strcmp(n, #f)) *sel = cp_##f##_select, *try_sel = cp_##f##_try_select;
    CP_FAMILY_LIST(FAMILY_SELECT)
#undef FAMILY_SELECT
}

static void t_unknown_op(const cp_backend *b)
{
    sel_fn fsel;
    try_fn ftry;
    family_select(b, &fsel, &ftry);
    CHECK(fsel != NULL && ftry != NULL);
    cp_chan *ch = cp_chan_new(b, sizeof(int), 1);
    cp_event *ev = cp_event_new(b);
    cp_event_fire(ev);
    cp_ctx *ctx = cp_ctx_with_timeout(b, NULL, 5000 * MS);  /* a wrong wait ends, never hangs */
    int v = 3;
    CHECK_ST(cp_chan_send(ch, &v, NULL), CP_OK);            /* ch is ready for a receive */
    const int ops[] = { 0, 42, -1, 4 };
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        cp_case bad_ch = { .op = ops[k], .ch = ch, .elem = &v };
        cp_case bad_ev = { .op = ops[k], .ev = ev };
        cp_case bad_nil = { .op = ops[k] };
        cp_case sets[][2] = {
            { bad_ch }, { bad_ev }, { bad_nil },
            { RECV(ch, &v), bad_ch }, { bad_nil, RECV(ch, &v) }, { WAIT(ev), bad_ev },
        };
        const size_t lens[] = { 1, 1, 1, 2, 2, 2 };
        for (size_t j = 0; j < sizeof lens / sizeof *lens; j++) {
            cp_status st;
            for (int via = 0; via < 5; via++) {
                int i = 99;
                st = CP_OK;
                switch (via) {
                case 0: i = cp_select(sets[j], lens[j], NULL, &st); break;
                case 1: i = cp_select(sets[j], lens[j], ctx, &st); break;
                case 2: i = cp_try_select(sets[j], lens[j], &st); break;
                case 3: if (fsel) i = fsel(sets[j], lens[j], ctx, &st); else st = CP_EINVAL, i = -1; break;
                case 4: if (ftry) i = ftry(sets[j], lens[j], &st); else st = CP_EINVAL, i = -1; break;
                }
                if (i != -1 || st != CP_EINVAL)
                    fprintf(stderr, "[%s] op %d, set %zu, via %d: index %d, %s\n", t_where, ops[k], j, via,
                            i, cp_status_str(st));
                CHECK_EQ(i, -1);
                CHECK_ST(st, CP_EINVAL);
            }
        }
    }
    CHECK_EQ(cp_chan_len(ch), 1);   /* nothing was taken */
    CHECK_ST(cp_ctx_err(ctx), CP_OK);
    cp_ctx_free(ctx);
    cp_event_free(ev);
    cp_chan_free(ch);
}

int main(void)
{
    FOR_EACH_BACKEND(b)
    {
        t_ready(b);
        t_wouldblock(b);
        for (int u = 0; u < 2; u++) {
            t_fair(b, 0, 2, u);
            t_fair(b, 0, 4, u);
            t_fair(b, 4, 2, u);
            t_fair(b, 4, 4, u);
        }
        size_t caps[] = { 0, 2 };
        for (int k = 0; k < 2; k++) {
            t_wake_by_chan(b, caps[k]);
            t_wake_by_event_ctx(b, caps[k]);
            t_closed(b, caps[k]);
            t_losers_removed(b, caps[k]);
        }
        t_select_pair(b);
        t_mismatch(b);
        t_unknown_op(b);
        t_nonblock_race(b);
    }
    return t_finish("test_select");
}
