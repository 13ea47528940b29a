/* Weighted semaphore, WaitGroup and Once semantics, the same body on every
 * backend (x/sync/semaphore.Weighted, sync.WaitGroup, sync.Once). */
#include "../test.h"

#define MS 1000000ull

/* ---- a thread that acquires n, holds until told, then releases ---- */
struct holder {
    cp_sem *s;
    int64_t n;
    cp_ctx *ctx;
    _Atomic int entered, acquired, go_release, ended;
    cp_status st;
};

static void *holder_fn(void *p)
{
    struct holder *h = p;
    atomic_store(&h->entered, 1);
    h->st = cp_sem_acquire(h->s, h->n, h->ctx);
    if (h->st == CP_OK) {
        atomic_store(&h->acquired, 1);
        while (!atomic_load(&h->go_release)) t_sleep_ms(1);
        cp_sem_release(h->s, h->n);
    }
    atomic_store(&h->ended, 1);
    return NULL;
}

/* Start h and give it time to queue (the project's convention: 20 ms; a
 * slow start can only make a "still blocked" check pass, never fail). */
static pthread_t start_holder(struct holder *h)
{
    pthread_t t = t_spawn(holder_fn, h);
    while (!atomic_load(&h->entered)) t_sleep_ms(1);
    t_sleep_ms(20);
    return t;
}

/* Bounded wait for a flag: only a lost wake-up misses 1 s. */
static bool wait_flag(_Atomic int *f)
{
    for (int i = 0; i < 1000; i++) {
        if (atomic_load(f)) return true;
        t_sleep_ms(1);
    }
    return atomic_load(f) != 0;
}

static void t_sem_basics(const cp_backend *b)
{
    CHECK(cp_sem_new(b, -1) == NULL);
    cp_sem *z = cp_sem_new(b, 0);
    CHECK(z != NULL);
    CHECK_ST(cp_sem_try_acquire(z, 1), CP_EINVAL);
    CHECK_ST(cp_sem_acquire(z, 1, NULL), CP_EINVAL);
    cp_sem_free(z);

    cp_sem *s = cp_sem_new(b, 3);
    CHECK_ST(cp_sem_acquire(s, 4, NULL), CP_EINVAL);    /* more than capacity: at once */
    CHECK_ST(cp_sem_acquire(s, -1, NULL), CP_EINVAL);
    CHECK_ST(cp_sem_try_acquire(s, 4), CP_EINVAL);
    CHECK_ST(cp_sem_try_acquire(s, -1), CP_EINVAL);
    CHECK_ST(cp_sem_try_acquire(s, 2), CP_OK);
    CHECK_ST(cp_sem_try_acquire(s, 2), CP_WOULDBLOCK);
    CHECK_ST(cp_sem_try_acquire(s, 1), CP_OK);
    CHECK_ST(cp_sem_try_acquire(s, 1), CP_WOULDBLOCK);
    cp_sem_release(s, 2);
    CHECK_ST(cp_sem_acquire(s, 2, NULL), CP_OK);
    cp_sem_release(s, 3);
    CHECK_ST(cp_sem_try_acquire(s, 3), CP_OK);
    cp_sem_release(s, 1);
    cp_sem_release(s, 2);
    /* Weighted: a ctx already done fails even with permits free */
    cp_ctx *c = cp_ctx_with_cancel(b, NULL);
    cp_ctx_cancel(c);
    CHECK_ST(cp_sem_acquire(s, 1, c), CP_CANCELED);
    cp_ctx_free(c);
    c = cp_ctx_with_deadline(b, NULL, cp_now_ns() - 1);
    CHECK_ST(cp_sem_acquire(s, 1, c), CP_DEADLINE);
    cp_ctx_free(c);
    CHECK_ST(cp_sem_try_acquire(s, 3), CP_OK);          /* nothing leaked */
    cp_sem_release(s, 3);
    cp_sem_free(s);
}

/* ---- acquiring 0 permits: CP_OK at once unless the ctx has ended ----
 * (Weighted.Acquire(ctx, 0) returns nil; here also while every permit is
 * held and while a waiter is queued: zero permits take nothing from anyone,
 * so there is nothing for FIFO order to protect.) A blocked acquire of 0
 * would end with the 5 s ctx's CP_DEADLINE instead of hanging the test. */
static void t_sem_zero(const cp_backend *b)
{
    cp_sem *z = cp_sem_new(b, 0);
    CHECK_ST(cp_sem_acquire(z, 0, NULL), CP_OK);
    CHECK_ST(cp_sem_try_acquire(z, 0), CP_OK);
    cp_sem_release(z, 0);
    cp_sem_free(z);

    cp_sem *s = cp_sem_new(b, 3);
    cp_ctx *live = cp_ctx_with_timeout(b, NULL, 5000 * MS);
    CHECK_ST(cp_sem_acquire(s, 0, NULL), CP_OK);
    CHECK_ST(cp_sem_acquire(s, 0, live), CP_OK);
    CHECK_ST(cp_sem_try_acquire(s, 0), CP_OK);
    CHECK_ST(cp_sem_try_acquire(s, 3), CP_OK);          /* zero took nothing */
    CHECK_ST(cp_sem_acquire(s, 0, live), CP_OK);        /* every permit held */
    CHECK_ST(cp_sem_try_acquire(s, 0), CP_OK);
    struct holder h = { .s = s, .n = 2 };
    pthread_t t = start_holder(&h);                     /* queued: 2 > 0 free */
    CHECK(!atomic_load(&h.acquired));
    CHECK_ST(cp_sem_acquire(s, 0, live), CP_OK);        /* not behind the waiter */
    CHECK_ST(cp_sem_try_acquire(s, 0), CP_OK);
    /* an ended ctx wins, as for any n */
    cp_ctx *c = cp_ctx_with_cancel(b, NULL);
    cp_ctx_cancel(c);
    CHECK_ST(cp_sem_acquire(s, 0, c), CP_CANCELED);
    cp_ctx_free(c);
    c = cp_ctx_with_deadline(b, NULL, cp_now_ns() - 1);
    CHECK_ST(cp_sem_acquire(s, 0, c), CP_DEADLINE);
    cp_ctx_free(c);
    /* a ctx of another backend is still an invalid argument */
    const cp_backend *other = cp_backend_at((size_t)(bi_of(b) + 1) % cp_backend_count());
    c = cp_ctx_with_cancel(other, NULL);
    CHECK_ST(cp_sem_acquire(s, 0, c), CP_EINVAL);
    cp_ctx_free(c);
    CHECK_ST(cp_ctx_err(live), CP_OK);

    cp_sem_release(s, 3);                               /* the waiter gets its 2 */
    CHECK(wait_flag(&h.acquired));
    atomic_store(&h.go_release, 1);
    t_join(t, 1000, "waiter behind a full semaphore");
    CHECK_ST(cp_sem_try_acquire(s, 3), CP_OK);          /* no permits leaked */
    cp_sem_release(s, 3);
    cp_ctx_free(live);
    cp_sem_free(s);
}

/* A waiter queued: try_acquire fails although permits suffice. */
static bool queued_behind(cp_sem *s)
{
    for (int i = 0; i < 1000; i++) {
        if (cp_sem_try_acquire(s, 1) == CP_WOULDBLOCK) return true;
        cp_sem_release(s, 1);
        t_sleep_ms(1);
    }
    return false;
}

static void t_sem_fifo(const cp_backend *b)
{
    cp_sem *s = cp_sem_new(b, 10);
    CHECK_ST(cp_sem_try_acquire(s, 5), CP_OK);
    struct holder a = { .s = s, .n = 10 }, hb = { .s = s, .n = 6 }, hc = { .s = s, .n = 5 },
                  hd = { .s = s, .n = 1 };
    pthread_t ta = start_holder(&a);
    CHECK(queued_behind(s));            /* 5 free, yet A at the head blocks 1 */
    CHECK(!atomic_load(&a.acquired));
    pthread_t tb = start_holder(&hb);
    pthread_t tc = start_holder(&hc);
    pthread_t td = start_holder(&hd);
    CHECK(!atomic_load(&hb.acquired));  /* 6 > 5 free */
    CHECK(!atomic_load(&hc.acquired));  /* 5 fits, but A and B are ahead */
    CHECK(!atomic_load(&hd.acquired));

    cp_sem_release(s, 5);               /* A (10) */
    CHECK(wait_flag(&a.acquired));
    t_sleep_ms(20);
    CHECK(!atomic_load(&hb.acquired) && !atomic_load(&hc.acquired) && !atomic_load(&hd.acquired));

    atomic_store(&a.go_release, 1);     /* B (6); C (5) does not fit; D (1) would, but waits behind C */
    CHECK(wait_flag(&hb.acquired));
    t_sleep_ms(20);
    CHECK(!atomic_load(&hc.acquired));
    CHECK(!atomic_load(&hd.acquired));

    atomic_store(&hb.go_release, 1);    /* C and D together */
    CHECK(wait_flag(&hc.acquired));
    CHECK(wait_flag(&hd.acquired));
    atomic_store(&hc.go_release, 1);
    atomic_store(&hd.go_release, 1);
    t_join(ta, 1000, "A");
    t_join(tb, 1000, "B");
    t_join(tc, 1000, "C");
    t_join(td, 1000, "D");
    CHECK_ST(cp_sem_try_acquire(s, 10), CP_OK);
    cp_sem_free(s);
}

/* A cancelled (or expired) waiter at the head: it returns its ctx's reason,
 * holds nothing, and its removal lets the next waiter in. */
static void t_sem_cancel(const cp_backend *b, bool deadline)
{
    cp_sem *s = cp_sem_new(b, 4);
    CHECK_ST(cp_sem_try_acquire(s, 2), CP_OK);
    cp_ctx *c = deadline ? cp_ctx_with_timeout(b, NULL, 200 * MS) : cp_ctx_with_cancel(b, NULL);
    struct holder a = { .s = s, .n = 4, .ctx = c }, hb = { .s = s, .n = 1 };
    pthread_t ta = start_holder(&a);
    pthread_t tb = start_holder(&hb);
    CHECK(!atomic_load(&hb.acquired));  /* fits, but A is ahead */
    if (!deadline) cp_ctx_cancel(c);
    t_join(ta, 1000, "cancelled head");
    CHECK_ST(a.st, deadline ? CP_DEADLINE : CP_CANCELED);
    CHECK(wait_flag(&hb.acquired));     /* unblocked by A's removal alone */
    atomic_store(&hb.go_release, 1);
    t_join(tb, 1000, "next waiter");
    cp_sem_release(s, 2);
    CHECK_ST(cp_sem_try_acquire(s, 4), CP_OK);   /* no permits leaked */
    cp_sem_release(s, 4);

    /* A cancelled waiter in the middle: the ones around it are granted in order. */
    CHECK_ST(cp_sem_try_acquire(s, 4), CP_OK);
    cp_ctx *c2 = cp_ctx_with_cancel(b, NULL);
    struct holder h1 = { .s = s, .n = 3 }, h2 = { .s = s, .n = 2, .ctx = c2 }, h3 = { .s = s, .n = 1 };
    pthread_t t1 = start_holder(&h1), t2 = start_holder(&h2), t3 = start_holder(&h3);
    cp_ctx_cancel(c2);
    t_join(t2, 1000, "cancelled middle");
    CHECK_ST(h2.st, CP_CANCELED);
    CHECK(!atomic_load(&h1.acquired) && !atomic_load(&h3.acquired));
    cp_sem_release(s, 4);
    CHECK(wait_flag(&h1.acquired));
    CHECK(wait_flag(&h3.acquired));
    atomic_store(&h1.go_release, 1);
    atomic_store(&h3.go_release, 1);
    t_join(t1, 1000, "h1");
    t_join(t3, 1000, "h3");
    CHECK_ST(cp_sem_try_acquire(s, 4), CP_OK);
    cp_sem_free(s);
    cp_ctx_free(c);
    cp_ctx_free(c2);
}

/* ---- WaitGroup ---- */
struct wgw { cp_wg *wg; cp_ctx *ctx; cp_status st; _Atomic int entered, ended; };
static void *wg_waiter(void *p)
{
    struct wgw *w = p;
    atomic_store(&w->entered, 1);
    w->st = cp_wg_wait(w->wg, w->ctx);
    atomic_store(&w->ended, 1);
    return NULL;
}
static pthread_t start_wgw(struct wgw *w)
{
    pthread_t t = t_spawn(wg_waiter, w);
    while (!atomic_load(&w->entered)) t_sleep_ms(1);
    t_sleep_ms(20);
    return t;
}

static void t_wg(const cp_backend *b)
{
    cp_wg *wg = cp_wg_new(b);
    CHECK(wg != NULL);
    CHECK_ST(cp_wg_wait(wg, NULL), CP_OK);      /* zero: at once */
    for (int round = 0; round < 3; round++) {   /* reusable */
        cp_wg_add(wg, 2);
        struct wgw w[3] = { { .wg = wg }, { .wg = wg }, { .wg = wg } };
        pthread_t t[3];
        for (int i = 0; i < 3; i++) t[i] = start_wgw(&w[i]);
        for (int i = 0; i < 3; i++) CHECK(!atomic_load(&w[i].ended));
        cp_wg_done(wg);
        t_sleep_ms(20);
        for (int i = 0; i < 3; i++) CHECK(!atomic_load(&w[i].ended));
        cp_wg_done(wg);                         /* wakes every waiter */
        for (int i = 0; i < 3; i++) {
            t_join(t[i], 1000, "wg waiter");
            CHECK_ST(w[i].st, CP_OK);
        }
    }

    /* cancel and deadline while the counter is positive */
    cp_wg_add(wg, 1);
    cp_ctx *c = cp_ctx_with_cancel(b, NULL);
    struct wgw wc = { .wg = wg, .ctx = c };
    pthread_t tc = start_wgw(&wc);
    CHECK(!atomic_load(&wc.ended));
    cp_ctx_cancel(c);
    t_join(tc, 1000, "wg cancel");
    CHECK_ST(wc.st, CP_CANCELED);
    cp_ctx_free(c);
    uint64_t t0 = cp_now_ns();     /* before the ctx: its deadline is >= t0 + 30 ms */
    c = cp_ctx_with_timeout(b, NULL, 30 * MS);
    CHECK_ST(cp_wg_wait(wg, c), CP_DEADLINE);
    CHECK(cp_now_ns() - t0 >= 30 * MS);         /* never early */
    cp_ctx_free(c);
    cp_wg_done(wg);
    CHECK_ST(cp_wg_wait(wg, NULL), CP_OK);
    cp_wg_free(wg);
}

/* ---- Once ---- */
struct once_arg {
    cp_once *o;
    _Atomic int runs, gate;
    int value;                  /* plain: published by the once */
    int seen[8];
};
static void once_fn(void *p)
{
    struct once_arg *a = p;
    atomic_fetch_add(&a->runs, 1);
    t_sleep_ms(10);             /* others arrive while fn runs and must wait */
    a->value = 42;
}
struct once_thr { struct once_arg *a; int i; };
static void *once_thread(void *p)
{
    struct once_thr *t = p;
    while (!atomic_load(&t->a->gate)) sched_yield();
    cp_once_do(t->a->o, once_fn, t->a);
    t->a->seen[t->i] = t->a->value;
    return NULL;
}

static void t_once(const cp_backend *b)
{
    struct once_arg a = { .o = cp_once_new(b) };
    CHECK(a.o != NULL);
    struct once_thr th[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        th[i] = (struct once_thr){ &a, i };
        t[i] = t_spawn(once_thread, &th[i]);
    }
    atomic_store(&a.gate, 1);
    for (int i = 0; i < 8; i++) t_join(t[i], 1000, "once caller");
    CHECK_EQ(atomic_load(&a.runs), 1);
    for (int i = 0; i < 8; i++) CHECK_EQ(a.seen[i], 42);
    cp_once_do(a.o, once_fn, &a);
    CHECK_EQ(atomic_load(&a.runs), 1);
    cp_once_free(a.o);
}

int main(void)
{
    FOR_EACH_BACKEND(b) {
        t_sem_basics(b);
        t_sem_zero(b);
        t_sem_fifo(b);
        t_sem_cancel(b, false);
        t_sem_cancel(b, true);
        t_wg(b);
        t_once(b);
    }
    return t_finish("test_sync");
}
