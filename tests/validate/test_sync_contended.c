/* sem, wg and once under contention on every backend.
 *
 *   sem: T threads take random weights (1..K) from a capacity-K semaphore,
 *        some with a short random timeout or a ctx cancelled by a
 *        neighbour: the weight held never exceeds K, every OK is matched
 *        by a release, and afterwards try_acquire(K) succeeds (a cancelled
 *        or expired waiter leaves nothing behind, races of grant against
 *        cancel included);
 *   wg:  rounds of fork/join: Wait returns only after all N Dones;
 *   once: rounds of T threads racing on a fresh Once: fn runs once and all
 *        see its value.
 * CP_TEST_SCALE (default 1) multiplies the iteration counts. */
#include "../test.h"

#define MS 1000000ull

static double scale = 1.0;
static _Atomic int bad;   /* failures seen by worker threads (CHECK is main-thread only) */

struct semctx {
    cp_sem *s;
    const cp_backend *b;
    int64_t cap;
    _Atomic int64_t held, max_held, oks, cancels;
    int iters;
};
struct semthr { struct semctx *c; unsigned seed; };

static void *sem_thread(void *p)
{
    struct semthr *t = p;
    struct semctx *c = t->c;
    unsigned seed = t->seed;
    for (int i = 0; i < c->iters; i++) {
        int64_t n = 1 + rand_r(&seed) % c->cap;
        int mode = rand_r(&seed) % 4;
        cp_ctx *ctx = NULL;
        if (mode == 1) ctx = cp_ctx_with_timeout(c->b, NULL, (uint64_t)(rand_r(&seed) % 200) * 1000);
        cp_status st = cp_sem_acquire(c->s, n, ctx);
        if (st == CP_OK) {
            int64_t h = atomic_fetch_add(&c->held, n) + n;
            int64_t m = atomic_load(&c->max_held);
            while (h > m && !atomic_compare_exchange_weak(&c->max_held, &m, h)) {}
            if (rand_r(&seed) % 8 == 0) sched_yield();
            atomic_fetch_sub(&c->held, n);
            cp_sem_release(c->s, n);
            atomic_fetch_add(&c->oks, 1);
        } else {
            if (st != CP_DEADLINE) atomic_fetch_add(&bad, 1);
            atomic_fetch_add(&c->cancels, 1);
        }
        cp_ctx_free(ctx);
        if (mode == 2 && cp_sem_try_acquire(c->s, 1) == CP_OK) cp_sem_release(c->s, 1);
    }
    return NULL;
}

/* A canceller racing grants: a waiter is cancelled while a release may be
 * granting it. Exactly one wins; either way nothing leaks. */
struct race { cp_sem *s; cp_ctx *ctx; cp_status st; };
static void *race_waiter(void *p)
{
    struct race *r = p;
    r->st = cp_sem_acquire(r->s, 2, r->ctx);
    if (r->st == CP_OK) cp_sem_release(r->s, 2);
    return NULL;
}

static void t_sem(const cp_backend *b)
{
    struct semctx c = { .b = b, .cap = 5, .iters = (int)(3000 * scale) + 1 };
    c.s = cp_sem_new(b, c.cap);
    struct semthr th[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        th[i] = (struct semthr){ &c, 1234u + (unsigned)i };
        t[i] = t_spawn(sem_thread, &th[i]);
    }
    for (int i = 0; i < 6; i++) t_join(t[i], 60000, "sem thread");
    CHECK(atomic_load(&c.max_held) <= c.cap);
    CHECK_EQ(atomic_load(&c.held), 0);
    CHECK_EQ(atomic_load(&c.oks) + atomic_load(&c.cancels), 6 * c.iters);
    CHECK_ST(cp_sem_try_acquire(c.s, c.cap), CP_OK);
    cp_sem_release(c.s, c.cap);

    int rounds = (int)(500 * scale) + 1, oks = 0;
    for (int i = 0; i < rounds; i++) {
        CHECK_ST(cp_sem_try_acquire(c.s, c.cap), CP_OK);
        struct race r = { .s = c.s, .ctx = cp_ctx_with_cancel(b, NULL) };
        pthread_t w = t_spawn(race_waiter, &r);
        for (int k = 0; k < i % 50; k++) sched_yield();
        if (i & 1) { cp_sem_release(c.s, c.cap); cp_ctx_cancel(r.ctx); }
        else { cp_ctx_cancel(r.ctx); cp_sem_release(c.s, c.cap); }
        t_join(w, 5000, "race waiter");
        CHECK(r.st == CP_OK || r.st == CP_CANCELED);
        oks += r.st == CP_OK;
        cp_ctx_free(r.ctx);
        CHECK_ST(cp_sem_try_acquire(c.s, c.cap), CP_OK);    /* nothing leaked */
        cp_sem_release(c.s, c.cap);
    }
    printf("[%s] sem: %lld ok, %lld expired; race: %d granted of %d\n", t_where,
           (long long)atomic_load(&c.oks), (long long)atomic_load(&c.cancels), oks, rounds);
    cp_sem_free(c.s);
}

struct wgc { cp_wg *wg; _Atomic int dones; };
static void *wg_worker(void *p)
{
    struct wgc *c = p;
    sched_yield();
    atomic_fetch_add(&c->dones, 1);
    cp_wg_done(c->wg);
    return NULL;
}

static void t_wg(const cp_backend *b)
{
    struct wgc c = { .wg = cp_wg_new(b) };
    int rounds = (int)(300 * scale) + 1;
    for (int r = 0; r < rounds; r++) {
        atomic_store(&c.dones, 0);
        cp_wg_add(c.wg, 4);
        pthread_t t[4];
        for (int i = 0; i < 4; i++) t[i] = t_spawn(wg_worker, &c);
        CHECK_ST(cp_wg_wait(c.wg, NULL), CP_OK);
        CHECK_EQ(atomic_load(&c.dones), 4);
        for (int i = 0; i < 4; i++) t_join(t[i], 5000, "wg worker");
    }
    cp_wg_free(c.wg);
}

struct oc { cp_once *o; _Atomic int runs, gate; int value; };
static void once_fn(void *p) { struct oc *c = p; atomic_fetch_add(&c->runs, 1); c->value = 7; }
static void *once_thread(void *p)
{
    struct oc *c = p;
    while (!atomic_load(&c->gate)) {}
    cp_once_do(c->o, once_fn, c);
    if (c->value != 7) atomic_fetch_add(&bad, 1);
    return NULL;
}

static void t_once(const cp_backend *b)
{
    int rounds = (int)(300 * scale) + 1;
    for (int r = 0; r < rounds; r++) {
        struct oc c = { .o = cp_once_new(b) };
        pthread_t t[4];
        for (int i = 0; i < 4; i++) t[i] = t_spawn(once_thread, &c);
        atomic_store(&c.gate, 1);
        for (int i = 0; i < 4; i++) t_join(t[i], 5000, "once thread");
        CHECK_EQ(atomic_load(&c.runs), 1);
        cp_once_free(c.o);
    }
}

int main(void)
{
    const char *sc = getenv("CP_TEST_SCALE");
    if (sc) scale = atof(sc);
    FOR_EACH_BACKEND(b) {
        t_sem(b);
        t_wg(b);
        t_once(b);
    }
    CHECK_EQ(atomic_load(&bad), 0);
    return t_finish("test_sync_contended");
}
