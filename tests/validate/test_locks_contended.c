/*
 * Locks under contention, every backend:
 *   - mutex: T threads add to a plain counter (and a plain checksum of
 *     thread-tagged values) under the lock; the totals must be exact;
 *   - rwlock: writers fill 64 slots with one new value, readers check that
 *     all 64 slots are equal (no torn write) and never go backwards;
 *   - cond: a bounded queue (array under the mutex, two conds "not full" /
 *     "not empty", signal on every change, broadcast at the end): nothing
 *     lost or duplicated (count and sum), no waiter left asleep.
 * CP_TEST_SCALE (default 1) multiplies the iteration counts.
 */
#include "../test.h"

#define cp_check_status(e) do { cp_status s_ = (e); if (s_ != CP_OK) { fprintf(stderr, "[%s] cond wait: %s\n", t_where, cp_status_str(s_)); exit(1); } } while (0)

static double scale(void)
{
    const char *sc = getenv("CP_TEST_SCALE");
    double s = sc ? atof(sc) : 1.0;
    return s > 0 ? s : 1.0;
}

/* ---- mutex ---- */
struct mx { cp_mutex *m; long iters; uint64_t count, sum; };
struct mx_arg { struct mx *x; int id; };

static void *mx_worker(void *p)
{
    struct mx_arg *a = p;
    for (long i = 0; i < a->x->iters; i++) {
        cp_mutex_lock(a->x->m);
        a->x->count++;
        a->x->sum += (uint64_t)a->id * 1000003u + (uint64_t)i;
        cp_mutex_unlock(a->x->m);
    }
    return NULL;
}

static void mutex_run(const cp_backend *b, int T, long iters)
{
    struct mx x = { .m = cp_mutex_new(b), .iters = iters };
    pthread_t t[16];
    struct mx_arg a[16];
    uint64_t want = 0;
    for (int i = 0; i < T; i++) {
        a[i] = (struct mx_arg){ &x, i };
        t[i] = t_spawn(mx_worker, &a[i]);
        for (long k = 0; k < iters; k++) want += (uint64_t)i * 1000003u + (uint64_t)k;
    }
    for (int i = 0; i < T; i++) t_join(t[i], 60000, "mutex worker");
    CHECK_EQ(x.count, (uint64_t)T * (uint64_t)iters);
    CHECK(x.sum == want);
    cp_mutex_free(x.m);
}

/* ---- rwlock ---- */
struct rw { cp_rwlock *l; uint64_t slot[64]; long iters; atomic_long torn, backwards, reads; };

static void *rw_writer(void *p)
{
    struct rw *r = p;
    for (long i = 0; i < r->iters; i++) {
        cp_rwlock_wlock(r->l);
        uint64_t v = r->slot[0] + 1;
        for (int k = 0; k < 64; k++) r->slot[k] = v;
        cp_rwlock_wunlock(r->l);
    }
    return NULL;
}

static void *rw_reader(void *p)
{
    struct rw *r = p;
    uint64_t last = 0;
    for (long i = 0; i < r->iters * 4; i++) {
        cp_rwlock_rlock(r->l);
        uint64_t v = r->slot[0];
        int bad = 0;
        for (int k = 1; k < 64; k++) bad |= r->slot[k] != v;
        cp_rwlock_runlock(r->l);
        if (bad) atomic_fetch_add(&r->torn, 1);
        if (v < last) atomic_fetch_add(&r->backwards, 1);
        last = v;
    }
    atomic_fetch_add(&r->reads, r->iters * 4);
    return NULL;
}

static void rwlock_run(const cp_backend *b, int R, int W, long iters)
{
    struct rw r = { .l = cp_rwlock_new(b), .iters = iters };
    pthread_t t[16];
    int n = 0;
    for (int i = 0; i < W; i++) t[n++] = t_spawn(rw_writer, &r);
    for (int i = 0; i < R; i++) t[n++] = t_spawn(rw_reader, &r);
    for (int i = 0; i < n; i++) t_join(t[i], 60000, "rwlock thread");
    CHECK_EQ(atomic_load(&r.torn), 0);
    CHECK_EQ(atomic_load(&r.backwards), 0);
    CHECK_EQ(r.slot[0], (uint64_t)W * (uint64_t)iters);     /* no write lost */
    cp_rwlock_free(r.l);
}

/* ---- cond: bounded queue ---- */
#define QCAP 4
struct bq {
    cp_mutex *m;
    cp_cond *not_full, *not_empty;
    uint64_t buf[QCAP];
    int head, count, closed;
    long per_producer;
    atomic_int live_producers;
    atomic_ulong got, got_sum;
};
struct bq_arg { struct bq *q; int id; };

static void *bq_producer(void *p)
{
    struct bq_arg *a = p;
    struct bq *q = a->q;
    for (long i = 0; i < q->per_producer; i++) {
        uint64_t item = (uint64_t)a->id << 32 | (uint64_t)i;
        cp_mutex_lock(q->m);
        while (q->count == QCAP) cp_check_status(cp_cond_wait(q->not_full, q->m, NULL));
        q->buf[(q->head + q->count) % QCAP] = item;
        q->count++;
        cp_cond_signal(q->not_empty);
        cp_mutex_unlock(q->m);
    }
    if (atomic_fetch_sub(&q->live_producers, 1) == 1) {
        cp_mutex_lock(q->m);
        q->closed = 1;
        cp_cond_broadcast(q->not_empty);
        cp_mutex_unlock(q->m);
    }
    return NULL;
}

static void *bq_consumer(void *p)
{
    struct bq *q = p;
    unsigned long n = 0, sum = 0;
    for (;;) {
        cp_mutex_lock(q->m);
        while (q->count == 0 && !q->closed) cp_check_status(cp_cond_wait(q->not_empty, q->m, NULL));
        if (q->count == 0) {
            cp_mutex_unlock(q->m);
            break;
        }
        uint64_t item = q->buf[q->head];
        q->head = (q->head + 1) % QCAP;
        q->count--;
        cp_cond_signal(q->not_full);
        cp_mutex_unlock(q->m);
        n++;
        sum += (unsigned long)(item * 0x9e3779b97f4a7c15ull);
    }
    atomic_fetch_add(&q->got, n);
    atomic_fetch_add(&q->got_sum, sum);
    return NULL;
}

static void cond_run(const cp_backend *b, int P, int C, long per)
{
    struct bq q = { .m = cp_mutex_new(b), .not_full = cp_cond_new(b), .not_empty = cp_cond_new(b),
                    .per_producer = per };
    atomic_init(&q.live_producers, P);
    pthread_t t[16];
    struct bq_arg a[16];
    unsigned long want = 0;
    int n = 0;
    for (int i = 0; i < C; i++) t[n++] = t_spawn(bq_consumer, &q);
    for (int i = 0; i < P; i++) {
        a[i] = (struct bq_arg){ &q, i };
        t[n++] = t_spawn(bq_producer, &a[i]);
        for (long k = 0; k < per; k++)
            want += (unsigned long)(((uint64_t)i << 32 | (uint64_t)k) * 0x9e3779b97f4a7c15ull);
    }
    for (int i = 0; i < n; i++) t_join(t[i], 60000, "bounded-queue thread (lost wake-up?)");
    CHECK_EQ(atomic_load(&q.got), (unsigned long)P * (unsigned long)per);
    CHECK(atomic_load(&q.got_sum) == want);
    cp_cond_free(q.not_full);
    cp_cond_free(q.not_empty);
    cp_mutex_free(q.m);
}

int main(void)
{
    double s = scale();
    FOR_EACH_BACKEND(b)
    {
        mutex_run(b, 2, (long)(100000 * s));
        mutex_run(b, 4, (long)(30000 * s));
        rwlock_run(b, 3, 1, (long)(5000 * s));
        rwlock_run(b, 4, 2, (long)(3000 * s));
        cond_run(b, 1, 1, (long)(20000 * s));
        cond_run(b, 3, 3, (long)(5000 * s));
        cond_run(b, 4, 1, (long)(5000 * s));
    }
    return t_finish("test_locks_contended");
}
