/*
 * cp_mutex, cp_rwlock and cp_cond semantics, the same body on every backend
 * (sync.Mutex, sync.RWMutex, sync.Cond). Blocking checks are bounded with
 * t_join, so a lost wake-up or a starved writer fails instead of hanging.
 */
#include "../test.h"

#include <signal.h>
#include <time.h>

#define MS 1000000ull

static double scale(void)
{
    const char *sc = getenv("CP_TEST_SCALE");
    double s = sc ? atof(sc) : 1.0;
    return s > 0 ? s : 1.0;
}

/* ---------------- mutex ---------------- */

struct mx { cp_mutex *m; atomic_int flag; long counter; int iters; };

static void *try_other(void *p)
{
    struct mx *x = p;
    atomic_store(&x->flag, cp_mutex_trylock(x->m) ? 1 : 2);
    if (atomic_load(&x->flag) == 1) cp_mutex_unlock(x->m);
    return NULL;
}

static void *lock_then_flag(void *p)
{
    struct mx *x = p;
    cp_mutex_lock(x->m);
    atomic_store(&x->flag, 1);
    cp_mutex_unlock(x->m);
    return NULL;
}

static void t_mutex_basics(const cp_backend *b)
{
    struct mx x = { .m = cp_mutex_new(b) };
    CHECK(x.m != NULL);
    cp_mutex_lock(x.m);
    pthread_t t = t_spawn(try_other, &x);
    t_join(t, 1000, "trylock on a held mutex");
    CHECK_EQ(atomic_load(&x.flag), 2);          /* held: trylock fails */
    atomic_store(&x.flag, 0);
    t = t_spawn(lock_then_flag, &x);
    t_sleep_ms(50);
    CHECK_EQ(atomic_load(&x.flag), 0);          /* blocked while we hold it */
    cp_mutex_unlock(x.m);
    t_join(t, 1000, "lock after unlock");
    CHECK_EQ(atomic_load(&x.flag), 1);
    CHECK(cp_mutex_trylock(x.m));               /* free again: trylock wins */
    CHECK(!cp_mutex_trylock(x.m));
    cp_mutex_unlock(x.m);
    for (int i = 0; i < 1000; i++) {            /* many uncontended rounds */
        cp_mutex_lock(x.m);
        cp_mutex_unlock(x.m);
    }
    atomic_store(&x.flag, 0);
    t = t_spawn(try_other, &x);
    t_join(t, 1000, "trylock on a free mutex");
    CHECK_EQ(atomic_load(&x.flag), 1);
    cp_mutex_free(x.m);
}

static void *count_worker(void *p)
{
    struct mx *x = p;
    for (int i = 0; i < x->iters; i++) {
        if (i % 7 == 0) {
            while (!cp_mutex_trylock(x->m)) {}
        } else {
            cp_mutex_lock(x->m);
        }
        x->counter++;               /* plain data: the lock alone orders it */
        cp_mutex_unlock(x->m);
    }
    return NULL;
}

static void t_mutex_counter(const cp_backend *b)
{
    struct mx x = { .m = cp_mutex_new(b), .iters = (int)(20000 * scale()) };
    pthread_t t[4];
    for (int i = 0; i < 4; i++) t[i] = t_spawn(count_worker, &x);
    for (int i = 0; i < 4; i++) t_join(t[i], 30000, "counter worker");
    CHECK_EQ(x.counter, 4L * x.iters);
    cp_mutex_free(x.m);
}

/* lockfree: a waiter that has yielded for 1 ms starves, and while it
 * starves nobody else takes the lock, even while it is free (Go's
 * starvation mode; impl/lockfree/mutex.c). To see the lock free while the
 * waiter starves, the waiter is held in a signal handler meanwhile: a
 * barging lock then lets the unlocking thread's trylock win. */
struct starve { cp_mutex *m; atomic_int got, release, parked, unpark; };
static struct starve *starve_s;

static void starve_park(int sig)
{
    (void)sig;
    atomic_store(&starve_s->parked, 1);
    struct timespec ts = { 0, 100000 };
    while (!atomic_load(&starve_s->unpark)) nanosleep(&ts, NULL);
}

static void *starve_waiter(void *p)
{
    struct starve *s = p;
    cp_mutex_lock(s->m);
    atomic_store(&s->got, 1);
    while (!atomic_load(&s->release)) sched_yield();
    cp_mutex_unlock(s->m);
    return NULL;
}

static void t_mutex_starving(const cp_backend *b)
{
    if (strcmp(cp_backend_name(b), "lockfree")) return;
    struct starve s = { .m = cp_mutex_new(b) };
    starve_s = &s;
    struct sigaction sa = { .sa_handler = starve_park }, old;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, &old) == 0);
    cp_mutex_lock(s.m);
    pthread_t t = t_spawn(starve_waiter, &s);
    t_sleep_ms(100);            /* the waiter yields all along: far past 1 ms */
    CHECK(pthread_kill(t, SIGUSR1) == 0);
    while (!atomic_load(&s.parked)) sched_yield();
    cp_mutex_unlock(s.m);       /* free, and its starving waiter held off */
    bool barged = cp_mutex_trylock(s.m);
    CHECK(!barged);
    if (barged) cp_mutex_unlock(s.m);
    atomic_store(&s.unpark, 1);
    t_sleep_ms(1);
    atomic_store(&s.release, 1);
    t_join(t, 5000, "the starving waiter");
    CHECK_EQ(atomic_load(&s.got), 1);
    CHECK(cp_mutex_trylock(s.m));   /* nobody starves any more: barging again */
    cp_mutex_unlock(s.m);
    sigaction(SIGUSR1, &old, NULL);
    cp_mutex_free(s.m);
}

/* ---------------- rwlock ---------------- */

struct rw {
    cp_rwlock *l;
    atomic_int inside, max_inside, entered, stop, writer_in;
};

static void *reader_pair(void *p)
{
    struct rw *r = p;
    cp_rwlock_rlock(r->l);
    atomic_fetch_add(&r->inside, 1);
    /* wait (bounded) until the other reader is inside too */
    for (int i = 0; i < 2000 && atomic_load(&r->inside) < 2; i++) t_sleep_ms(1);
    int n = atomic_load(&r->inside);
    if (n > atomic_load(&r->max_inside)) atomic_store(&r->max_inside, n);
    cp_rwlock_runlock(r->l);
    return NULL;
}

static void *rlock_flag(void *p)
{
    struct rw *r = p;
    cp_rwlock_rlock(r->l);
    atomic_store(&r->entered, 1);
    cp_rwlock_runlock(r->l);
    return NULL;
}

static void *wlock_flag(void *p)
{
    struct rw *r = p;
    cp_rwlock_wlock(r->l);
    atomic_store(&r->entered, 1);
    cp_rwlock_wunlock(r->l);
    return NULL;
}

static void t_rwlock_basics(const cp_backend *b)
{
    struct rw r = { .l = cp_rwlock_new(b) };
    CHECK(r.l != NULL);
    /* two readers inside at once */
    pthread_t a = t_spawn(reader_pair, &r), c = t_spawn(reader_pair, &r);
    t_join(a, 3000, "reader 1");
    t_join(c, 3000, "reader 2");
    CHECK_EQ(atomic_load(&r.max_inside), 2);

    /* a writer excludes readers, and writers */
    void *(*fns[2])(void *) = { rlock_flag, wlock_flag };
    for (int k = 0; k < 2; k++) {
        cp_rwlock_wlock(r.l);
        atomic_store(&r.entered, 0);
        pthread_t t = t_spawn(fns[k], &r);
        t_sleep_ms(50);
        CHECK_EQ(atomic_load(&r.entered), 0);
        cp_rwlock_wunlock(r.l);
        t_join(t, 1000, k ? "writer after wunlock" : "reader after wunlock");
        CHECK_EQ(atomic_load(&r.entered), 1);
    }
    /* readers exclude a writer */
    cp_rwlock_rlock(r.l);
    atomic_store(&r.entered, 0);
    pthread_t t = t_spawn(wlock_flag, &r);
    t_sleep_ms(50);
    CHECK_EQ(atomic_load(&r.entered), 0);
    cp_rwlock_runlock(r.l);
    t_join(t, 1000, "writer after runlock");
    CHECK_EQ(atomic_load(&r.entered), 1);
    cp_rwlock_free(r.l);
}

static void *reader_stream(void *p)
{
    struct rw *r = p;
    while (!atomic_load(&r->stop)) {
        cp_rwlock_rlock(r->l);
        atomic_fetch_add(&r->inside, 1);
        t_sleep_ms(1);
        /* Hand off: leave only while another reader is inside (a CAS, so
         * two cannot both leave the last one alone), or after 20 ms: a lock
         * that lets readers in past a waiting writer then never becomes
         * free and starves the writer. */
        int left = 0;
        for (int k = 0; k < 20 && !left && !atomic_load(&r->stop); k++) {
            int n = atomic_load(&r->inside);
            if (n >= 2) left = atomic_compare_exchange_strong(&r->inside, &n, n - 1);
            else t_sleep_ms(1);
        }
        if (!left) atomic_fetch_sub(&r->inside, 1);
        cp_rwlock_runlock(r->l);
    }
    return NULL;
}

static void *writer_once(void *p)
{
    struct rw *r = p;
    cp_rwlock_wlock(r->l);
    atomic_store(&r->writer_in, 1);
    if (atomic_load(&r->inside) != 0) atomic_store(&r->entered, -1);  /* reader inside! */
    cp_rwlock_wunlock(r->l);
    return NULL;
}

/* A writer must get in while three threads keep taking read locks that
 * overlap: a reader-preferring lock starves it. */
static void t_rwlock_writer_not_starved(const cp_backend *b)
{
    struct rw r = { .l = cp_rwlock_new(b) };
    pthread_t rd[3];
    for (int i = 0; i < 3; i++) rd[i] = t_spawn(reader_stream, &r);
    for (int i = 0; i < 2000 && atomic_load(&r.inside) == 0; i++) t_sleep_ms(1);
    t_sleep_ms(20);
    uint64_t t0 = cp_now_ns();
    pthread_t w = t_spawn(writer_once, &r);
    for (int i = 0; i < 1000 && !atomic_load(&r.writer_in); i++) t_sleep_ms(1);
    uint64_t waited = cp_now_ns() - t0;
    CHECK_EQ(atomic_load(&r.writer_in), 1);     /* got in within ~1 s */
    CHECK(waited < 1000 * MS);
    CHECK(atomic_load(&r.entered) != -1);       /* and alone */
    atomic_store(&r.stop, 1);
    t_join(w, 5000, "starved writer");
    for (int i = 0; i < 3; i++) t_join(rd[i], 5000, "reader stream");
    cp_rwlock_free(r.l);
}

/* ---------------- cond ---------------- */

struct cv {
    cp_cond *c;
    cp_mutex *m;
    cp_ctx *ctx;
    int waiting;            /* under m */
    atomic_int woken, ok, canceled, held_on_return;
    cp_status st;
    uint64_t returned;
};

static void *cond_waiter(void *p)
{
    struct cv *v = p;
    cp_mutex_lock(v->m);
    v->waiting++;
    cp_status st = cp_cond_wait(v->c, v->m, v->ctx);
    v->waiting--;
    v->st = st;
    v->returned = cp_now_ns();
    /* m must be held on return, whatever the status: we may touch waiting
     * above (TSan would see a race otherwise) and nobody else can lock it. */
    if (!cp_mutex_trylock(v->m)) atomic_fetch_add(&v->held_on_return, 1);
    else cp_mutex_unlock(v->m);     /* (not held: undo, the check fails) */
    if (st == CP_OK) atomic_fetch_add(&v->ok, 1);
    else if (st == CP_CANCELED) atomic_fetch_add(&v->canceled, 1);
    atomic_fetch_add(&v->woken, 1);
    cp_mutex_unlock(v->m);
    return NULL;
}

/* Wait until n threads are queued on the cond: they enqueue before they
 * release m, so "waiting == n" read under m means all n are queued. */
static void wait_queued(struct cv *v, int n)
{
    for (int i = 0; i < 5000; i++) {
        cp_mutex_lock(v->m);
        int w = v->waiting;
        cp_mutex_unlock(v->m);
        if (w >= n) return;
        t_sleep_ms(1);
    }
    fprintf(stderr, "[%s] waiters never queued\n", t_where);
    exit(1);
}

static void t_cond_signal_broadcast(const cp_backend *b)
{
    struct cv v = { .c = cp_cond_new(b), .m = cp_mutex_new(b) };
    CHECK(v.c != NULL);
    enum { N = 3 };
    pthread_t t[N];
    for (int i = 0; i < N; i++) t[i] = t_spawn(cond_waiter, &v);
    wait_queued(&v, N);
    cp_cond_signal(v.c);                /* wakes exactly one */
    t_sleep_ms(100);
    CHECK_EQ(atomic_load(&v.woken), 1);
    cp_mutex_lock(v.m);                 /* signal under the lock works too */
    cp_cond_signal(v.c);
    cp_mutex_unlock(v.m);
    t_sleep_ms(100);
    CHECK_EQ(atomic_load(&v.woken), 2);
    cp_cond_broadcast(v.c);             /* wakes the rest */
    for (int i = 0; i < N; i++) t_join(t[i], 1000, "cond waiter");
    CHECK_EQ(atomic_load(&v.woken), N);
    CHECK_EQ(atomic_load(&v.ok), N);
    CHECK_EQ(atomic_load(&v.held_on_return), N);

    /* broadcast wakes every waiter */
    atomic_store(&v.woken, 0);
    atomic_store(&v.ok, 0);
    enum { M = 5 };
    pthread_t u[M];
    for (int i = 0; i < M; i++) u[i] = t_spawn(cond_waiter, &v);
    wait_queued(&v, M);
    cp_cond_broadcast(v.c);
    for (int i = 0; i < M; i++) t_join(u[i], 1000, "broadcast waiter");
    CHECK_EQ(atomic_load(&v.ok), M);
    cp_cond_broadcast(v.c);             /* nobody waits: no-ops */
    cp_cond_signal(v.c);
    cp_cond_free(v.c);
    cp_mutex_free(v.m);
}

/* A signal with no waiter is lost; a deadline returns CP_DEADLINE with m
 * held and is never early. */
static void t_cond_lost_and_deadline(const cp_backend *b)
{
    struct cv v = { .c = cp_cond_new(b), .m = cp_mutex_new(b) };
    cp_cond_signal(v.c);
    cp_cond_signal(v.c);
    uint64_t t0 = cp_now_ns();
    v.ctx = cp_ctx_with_timeout(b, NULL, 100 * MS);
    pthread_t t = t_spawn(cond_waiter, &v);
    t_join(t, 2000, "deadline waiter");
    CHECK_ST(v.st, CP_DEADLINE);
    CHECK(v.returned >= t0 + 100 * MS);         /* not early */
    CHECK(v.returned < t0 + 1000 * MS);         /* and prompt */
    CHECK_EQ(atomic_load(&v.held_on_return), 1);
    CHECK_EQ(atomic_load(&v.ok), 0);
    /* an already-expired ctx returns at once, m still held */
    cp_mutex_lock(v.m);
    CHECK_ST(cp_cond_wait(v.c, v.m, v.ctx), CP_DEADLINE);
    CHECK(!cp_mutex_trylock(v.m));
    cp_mutex_unlock(v.m);
    cp_ctx_free(v.ctx);
    /* a ctx of another backend is refused */
    const cp_backend *other = cp_backend_at((bi_of(b) + 1) % cp_backend_count());
    cp_ctx *x = cp_ctx_with_cancel(other, NULL);
    cp_mutex_lock(v.m);
    CHECK_ST(cp_cond_wait(v.c, v.m, x), CP_EINVAL);
    cp_mutex_unlock(v.m);
    cp_ctx_free(x);
    cp_cond_free(v.c);
    cp_mutex_free(v.m);
}

static void t_cond_cancel(const cp_backend *b)
{
    struct cv v = { .c = cp_cond_new(b), .m = cp_mutex_new(b) };
    v.ctx = cp_ctx_with_cancel(b, NULL);
    pthread_t t = t_spawn(cond_waiter, &v);
    wait_queued(&v, 1);
    uint64_t t0 = cp_now_ns();
    cp_ctx_cancel(v.ctx);
    t_join(t, 1000, "cancelled waiter");
    CHECK_ST(v.st, CP_CANCELED);
    CHECK(v.returned - t0 < 1000 * MS);
    CHECK_EQ(atomic_load(&v.held_on_return), 1);
    /* the cancelled waiter left the queue: a later waiter gets the next signal */
    cp_ctx_free(v.ctx);
    v.ctx = NULL;
    t = t_spawn(cond_waiter, &v);
    wait_queued(&v, 1);
    cp_cond_signal(v.c);
    t_join(t, 1000, "waiter after a cancelled one");
    CHECK_ST(v.st, CP_OK);
    cp_cond_free(v.c);
    cp_mutex_free(v.m);
}

/* A cancel racing a signal: the signal is never lost. Waiter A has a ctx,
 * B has none; one signal and A's cancel race. If A returns CP_OK it took
 * the signal (B must still be waiting); if A returns CP_CANCELED the signal
 * must have reached B, which returns on its own. */
struct racer { struct cv *v; };
static void *do_cancel(void *p) { cp_ctx_cancel(p); return NULL; }

static void t_cond_signal_races_cancel(const cp_backend *b)
{
    int rounds = (int)(300 * scale());
    if (rounds < 20) rounds = 20;
    int a_ok = 0, a_cancel = 0;
    for (int r = 0; r < rounds; r++) {
        cp_cond *c = cp_cond_new(b);
        cp_mutex *m = cp_mutex_new(b);
        struct cv va = { .c = c, .m = m, .ctx = cp_ctx_with_cancel(b, NULL) };
        struct cv vb = { .c = c, .m = m };
        pthread_t ta = t_spawn(cond_waiter, &va);
        wait_queued(&va, 1);
        pthread_t tb = t_spawn(cond_waiter, &vb);
        wait_queued(&vb, 1);
        pthread_t tc = t_spawn(do_cancel, va.ctx);
        if (r & 1) sched_yield();
        cp_cond_signal(c);
        t_join(tc, 1000, "canceller");
        t_join(ta, 1000, "waiter A");
        if (va.st == CP_OK) {
            a_ok++;
            cp_cond_broadcast(c);       /* B was not signalled: release it */
        } else {
            CHECK_ST(va.st, CP_CANCELED);
            a_cancel++;
        }
        t_join(tb, 1000, "waiter B (lost signal?)");
        CHECK_ST(vb.st, CP_OK);
        CHECK_EQ(atomic_load(&va.held_on_return) + atomic_load(&vb.held_on_return), 2);
        cp_ctx_free(va.ctx);
        cp_cond_free(c);
        cp_mutex_free(m);
    }
    printf("[%s] signal vs cancel: A signalled %d, A cancelled %d of %d\n", t_where, a_ok,
           a_cancel, rounds);
}

int main(void)
{
    FOR_EACH_BACKEND(b)
    {
        t_mutex_basics(b);
        t_mutex_counter(b);
        t_mutex_starving(b);
        t_rwlock_basics(b);
        t_rwlock_writer_not_starved(b);
        t_cond_signal_broadcast(b);
        t_cond_lost_and_deadline(b);
        t_cond_cancel(b);
        t_cond_signal_races_cancel(b);
    }
    return t_finish("test_locks");
}
