/*
 * cp_pool (sync.Pool) on every backend: usable memory of obj_size, same-
 * thread reuse, objects cycling across threads (through the shared stack
 * when a cache overflows, and through the exit destructor), cp_pool_free
 * reaching objects cached by live threads, many pools on one thread, and
 * many threads at once with an owner tag on every object (no object held by
 * two threads). Leaks are caught by the ASan build (LeakSanitizer), races
 * by the TSan build. CP_TEST_SCALE (default 1) scales the stress loop.
 */
#include "../test.h"

#include <errno.h>
#include <stdint.h>

/* A fresh object's bytes are whatever malloc left there, which can be an
 * object freed by an earlier test (TSan's allocator does not scribble on
 * freed memory): each test marks its objects with its own magic. */
static uint64_t magic_base = 0x706f6f6c6f626a31ull;    /* "poolobj1" */
static uint64_t MAGIC;
static void new_magic(void) { MAGIC = ++magic_base; }

/* An object as these tests use it: a magic that marks it as initialised,
 * and who holds it (0: nobody). */
struct obj { uint64_t magic; _Atomic uint64_t owner; };

static void t_sizes(const cp_backend *b)
{
    errno = 0;
    CHECK(cp_pool_new(b, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(cp_pool_new(b, SIZE_MAX) == NULL);
    CHECK(cp_pool_new(NULL, 8) == NULL);
    cp_pool_free(NULL);

    size_t sizes[] = { 1, 7, 8, 24, 4096, (size_t)1 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        cp_pool *p = cp_pool_new(b, sizes[i]);
        CHECK(p != NULL);
        if (!p) continue;
        cp_pool_put(p, NULL);           /* no-op */
        unsigned char *o[3];
        for (int k = 0; k < 3; k++) {
            o[k] = cp_pool_get(p);
            CHECK(o[k] != NULL);
            memset(o[k], 0x5a + k, sizes[i]);   /* ASan: out of bounds if too small */
        }
        CHECK(o[0] != o[1] && o[1] != o[2] && o[0] != o[2]);
        for (int k = 0; k < 3; k++) CHECK_EQ(o[k][sizes[i] - 1], 0x5a + k);
        for (int k = 0; k < 3; k++) cp_pool_put(p, o[k]);
        cp_pool_free(p);                /* frees the cached objects: LSan */
    }
}

/* put then get on one thread returns the same object, LIFO. */
static void t_same_thread(const cp_backend *b)
{
    cp_pool *p = cp_pool_new(b, 32);
    void *a = cp_pool_get(p), *c = cp_pool_get(p);
    cp_pool_put(p, a);
    CHECK(cp_pool_get(p) == a);
    cp_pool_put(p, a);
    cp_pool_put(p, c);
    CHECK(cp_pool_get(p) == c);
    CHECK(cp_pool_get(p) == a);
    /* more than a thread cache holds, and all come back */
    enum { N = 200 };
    void *o[N];
    for (int i = 0; i < N; i++) o[i] = cp_pool_get(p);
    for (int i = 0; i < N; i++) cp_pool_put(p, o[i]);
    int found = 0;
    void *g[N];
    for (int i = 0; i < N; i++) {
        g[i] = cp_pool_get(p);
        for (int k = 0; k < N; k++) found += g[i] == o[k];
    }
    CHECK_EQ(found, N);
    for (int i = 0; i < N; i++) cp_pool_put(p, g[i]);
    cp_pool_put(p, a);
    cp_pool_put(p, c);
    cp_pool_free(p);
}

/* ---- objects cycle across threads ---- */
enum { XN = 64, XSMALL = 8 };
struct xarg {
    cp_pool *p;
    int n;
    void *objs[XN];
    _Atomic int stage;      /* 0: working, 1: put done, 2: may exit */
    int use_new;            /* after stage 2: use p2 once, then exit */
    cp_pool *_Atomic p2;
    int p2_ok;
};

static void *x_putter(void *arg)
{
    struct xarg *x = arg;
    for (int i = 0; i < x->n; i++) x->objs[i] = cp_pool_get(x->p);
    for (int i = 0; i < x->n; i++) cp_pool_put(x->p, x->objs[i]);
    int zero = 0;   /* t_cross_exit starts at stage 2: do not wait then */
    atomic_compare_exchange_strong(&x->stage, &zero, 1);
    while (atomic_load_explicit(&x->stage, memory_order_acquire) != 2) t_sleep_ms(1);
    cp_pool *p2 = atomic_load_explicit(&x->p2, memory_order_acquire);
    if (p2) {   /* a new pool, perhaps at the freed one's address */
        struct obj *o = cp_pool_get(p2);
        x->p2_ok = o != NULL;
        if (o) { o->magic = MAGIC; cp_pool_put(p2, o); }
    }
    return NULL;
}

static int count_in(void *const *set, int n, void *o)
{
    int c = 0;
    for (int i = 0; i < n; i++) c += set[i] == o;
    return c;
}

/* A puts more than its cache holds and stays alive: the overflow reached
 * the shared stack, so this thread gets at least XN - 32 of A's objects. */
static void t_cross_overflow(const cp_backend *b)
{
    struct xarg x = { .p = cp_pool_new(b, 48), .n = XN };
    pthread_t t = t_spawn(x_putter, &x);
    while (atomic_load_explicit(&x.stage, memory_order_acquire) != 1) t_sleep_ms(1);
    void *g[XN];
    int mine = 0;
    for (int i = 0; i < XN; i++) {
        g[i] = cp_pool_get(x.p);
        mine += count_in(x.objs, XN, g[i]);
    }
    CHECK(mine >= XN - 32);
    atomic_store_explicit(&x.stage, 2, memory_order_release);
    t_join(t, 5000, "putter");
    for (int i = 0; i < XN; i++) cp_pool_put(x.p, g[i]);
    cp_pool_free(x.p);
}

/* A puts a few (they stay in its cache) and exits: its destructor hands
 * them to the shared stack, so this thread gets exactly A's objects. */
static void t_cross_exit(const cp_backend *b)
{
    struct xarg x = { .p = cp_pool_new(b, 48), .n = XSMALL };
    atomic_init(&x.stage, 2);
    pthread_t t = t_spawn(x_putter, &x);
    t_join(t, 5000, "putter");
    void *g[XSMALL];
    int mine = 0;
    for (int i = 0; i < XSMALL; i++) {
        g[i] = cp_pool_get(x.p);
        mine += count_in(x.objs, XSMALL, g[i]);
    }
    CHECK_EQ(mine, XSMALL);
    for (int i = 0; i < XSMALL; i++) cp_pool_put(x.p, g[i]);
    cp_pool_free(x.p);
}

/* cp_pool_free while A is alive with objects in its cache: they are freed
 * (else LSan reports them, or A's exit touches the freed pool: ASan); then
 * A uses a new pool, maybe at the same address: it must not get a freed
 * object out of a stale slot (ASan: use after free). */
static void t_free_live_cache(const cp_backend *b)
{
    struct xarg x = { .p = cp_pool_new(b, sizeof(struct obj)), .n = XSMALL };
    new_magic();
    pthread_t t = t_spawn(x_putter, &x);
    while (atomic_load_explicit(&x.stage, memory_order_acquire) != 1) t_sleep_ms(1);
    cp_pool_free(x.p);
    cp_pool *p2 = cp_pool_new(b, sizeof(struct obj));
    atomic_store_explicit(&x.p2, p2, memory_order_release);
    atomic_store_explicit(&x.stage, 2, memory_order_release);
    t_join(t, 5000, "putter");
    CHECK(x.p2_ok);
    /* A's exit gave its object back: it is the one we get */
    struct obj *o = cp_pool_get(p2);
    CHECK(o && o->magic == MAGIC);
    cp_pool_put(p2, o);
    cp_pool_free(p2);
}

/* More pools on one thread than a thread cache has slots: evictions give
 * objects back to the right pool (each pool has its own size; the object
 * records its pool, and is written in full: ASan catches a small object
 * handed out by a pool of bigger ones). */
static void t_many_pools(const cp_backend *b)
{
    enum { NP = 13, ROUNDS = 40, HOLD = 5 };
    cp_pool *p[NP];
    for (int i = 0; i < NP; i++) p[i] = cp_pool_new(b, 16 + 24 * (size_t)i);
    int bad = 0;
    new_magic();
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < NP; i++) {
            uint64_t *o[HOLD];
            for (int k = 0; k < HOLD; k++) {
                o[k] = cp_pool_get(p[i]);
                if (o[k][0] == MAGIC && o[k][1] != (uint64_t)i) bad++;
                memset(o[k], 0, 16 + 24 * (size_t)i);
                o[k][0] = MAGIC;
                o[k][1] = (uint64_t)i;
            }
            for (int k = 0; k < HOLD; k++) cp_pool_put(p[i], o[k]);
        }
    }
    CHECK_EQ(bad, 0);
    for (int i = 0; i < NP; i++) cp_pool_free(p[i]);
}

/* ---- many threads: no object owned twice ---- */
struct stress {
    cp_pool *p;
    int iters;
    _Atomic int go;
    _Atomic uint64_t twice, wrong_owner, nulls, ops;
};
struct sarg { struct stress *s; uint64_t id; };

/* Rounds of: get 1..64 objects, tag them, put them back in random order.
 * More than a thread cache holds (32), so caches overflow to the shared
 * stack and refill from it, concurrently, and objects move between threads. */
static void *s_worker(void *arg)
{
    struct sarg *a = arg;
    struct stress *s = a->s;
    enum { H = 64 };
    struct obj *held[H];
    uint64_t rng = a->id * 0x9e3779b97f4a7c15ull + 1, ops = 0;
    while (!atomic_load_explicit(&s->go, memory_order_acquire)) sched_yield();
    while (ops < (uint64_t)s->iters) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        int n = 1 + (int)(rng % H);
        for (int i = 0; i < n; i++) {
            struct obj *o = cp_pool_get(s->p);
            if (!o) { atomic_fetch_add(&s->nulls, 1); n = i; break; }
            if (o->magic != MAGIC) {            /* fresh from malloc */
                o->magic = MAGIC;
                atomic_store_explicit(&o->owner, a->id, memory_order_relaxed);
            } else if (atomic_exchange(&o->owner, a->id) != 0) {
                atomic_fetch_add(&s->twice, 1);
            }
            held[i] = o;
        }
        while (n) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            int k = (int)((rng >> 8) % (unsigned)n);
            struct obj *o = held[k];
            held[k] = held[--n];
            if (atomic_exchange(&o->owner, 0) != a->id) atomic_fetch_add(&s->wrong_owner, 1);
            cp_pool_put(s->p, o);
            ops++;
        }
    }
    atomic_fetch_add(&s->ops, ops);
    return NULL;
}

static void t_stress(const cp_backend *b, int threads, double scale)
{
    struct stress s = { .p = cp_pool_new(b, 64), .iters = (int)(100000 * scale) };
    if (s.iters < 1000) s.iters = 1000;
    new_magic();
    struct sarg a[16];
    pthread_t t[16];
    for (int i = 0; i < threads; i++) {
        a[i] = (struct sarg){ &s, (uint64_t)i + 1 };
        t[i] = t_spawn(s_worker, &a[i]);
    }
    atomic_store_explicit(&s.go, 1, memory_order_release);
    for (int i = 0; i < threads; i++) t_join(t[i], 60000, "stress worker");
    CHECK_EQ(atomic_load(&s.twice), 0);
    CHECK_EQ(atomic_load(&s.wrong_owner), 0);
    CHECK_EQ(atomic_load(&s.nulls), 0);
    CHECK(atomic_load(&s.ops) > 0);
    cp_pool_free(s.p);      /* every object is back: in the shared stack */
}

int main(void)
{
    const char *sc = getenv("CP_TEST_SCALE");
    double scale = sc ? atof(sc) : 1.0;
    FOR_EACH_BACKEND(b)
    {
        t_sizes(b);
        t_same_thread(b);
        t_cross_overflow(b);
        t_cross_exit(b);
        t_free_live_cache(b);
        t_many_pools(b);
        t_stress(b, 2, scale);
        t_stress(b, 8, scale / 4);
    }
    return t_finish("test_pool");
}
