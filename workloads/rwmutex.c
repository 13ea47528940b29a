/*
 * rwmutex: T threads share a "map" of 64 uint64 slots under a cp_rwlock;
 * one op in --set write_ratio=N is a write (under wlock: all 64 slots get
 * the same new value), the rest are reads (under rlock: read all 64). The
 * shape of Go's BenchmarkRWMutexWrite100/Work (sync/rwmutex_test.go).
 *
 * One op: one read or write critical section. Latency: the time to acquire
 * the lock (read or write), sampled 1 in --lat-sample. --work-ns of busy
 * work is done inside every critical section.
 *
 * Invariants, checked on every run:
 *   - no torn write: a reader always sees all 64 slots equal;
 *   - no lost write: the final value equals the number of writes;
 *   - a reader never sees the value go backwards;
 *   - count mode: exactly --items ops; every thread joined.
 */
#include "runtime/workload.h"

enum { P_WRITE_RATIO, P_COUNT };
static const wl_param rwmutex_params[] = {
    [P_WRITE_RATIO] = { "write_ratio", 10, "one op in N is a write (1: all writes)" },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(rwmutex_params, P_COUNT);

enum { M_FAIR };     /* M_FAIR, M_FAIR + 1: WL_METRICS_FAIRNESS */
#define SLOTS 64

struct rw_state {
    wl_run *r;
    cp_rwlock *l;
    uint64_t slot[SLOTS];       /* under l */
    _Atomic uint64_t writes, torn, backwards;
};
static void *rw_worker(wl_thread *self, void *arg)
{
    struct rw_state *s = arg;
    const uint64_t id = (uint64_t)self->rank;
    wl_run *r = s->r;
    const int64_t work = r->cfg->k.work_ns, sample = r->cfg->lat_sample;
    uint64_t ratio = (uint64_t)r->cfg->set[P_WRITE_RATIO];
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, (int)r->cfg->k.threads, (int)id);
    uint64_t rng = wl_mix(r->cfg->seed ^ (id + 1));
    uint64_t done = 0, writes = 0, torn = 0, backwards = 0, last = 0;
    int64_t until_sample = sample ? (int64_t)(id % (uint64_t)sample) : 0;

    if (ratio == 0) ratio = 1;
    wl_phase(self, "rw");
    for (; wl_more(r, done, n); done++) {
        rng = wl_mix(rng);
        int write = rng % ratio == 0;
        uint64_t t0 = 0;
        int sampled = wl_sample(sample, &until_sample);
        if (sampled) t0 = wl_now();
        if (write) {
            cp_rwlock_wlock(s->l);
            if (sampled) cp_hist_record(self->hist, wl_since(t0));
            uint64_t v = s->slot[0] + 1;
            for (int k = 0; k < SLOTS; k++) s->slot[k] = v;
            if (work) wl_work(work);
            cp_rwlock_wunlock(s->l);
            writes++;
        } else {
            cp_rwlock_rlock(s->l);
            if (sampled) cp_hist_record(self->hist, wl_since(t0));
            uint64_t v = s->slot[0];
            int bad = 0;
            for (int k = 1; k < SLOTS; k++) bad |= s->slot[k] != v;
            if (work) wl_work(work);
            cp_rwlock_runlock(s->l);
            torn += bad;
            backwards += v < last;
            last = v;
        }
    }
    atomic_fetch_add(&s->writes, writes);
    atomic_fetch_add(&s->torn, torn);
    atomic_fetch_add(&s->backwards, backwards);
    self->ops = done;
    wl_phase(self, "done");
    return NULL;
}

static int rwmutex_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    int T = (int)c->k.threads;
    struct rw_state s = { .r = r };
    s.l = cp_rwlock_new(c->b);
    if (!s.l) return -1;
    wl_spawn_n(r, T, "rw", rw_worker, &s);
    wl_start_and_join(r);

    uint64_t ops = wl_fairness(r, 0, r->nthr, M_FAIR).sum;
    if (atomic_load(&s.torn))
        wl_fail(r, "torn write: %llu reads saw the 64 slots disagree",
                (unsigned long long)atomic_load(&s.torn));
    if (atomic_load(&s.backwards))
        wl_fail(r, "%llu reads saw the value go backwards", (unsigned long long)atomic_load(&s.backwards));
    if (s.slot[0] != atomic_load(&s.writes))
        wl_fail(r, "lost write: value %llu after %llu writes", (unsigned long long)s.slot[0],
                (unsigned long long)atomic_load(&s.writes));
    wl_check_items(r, ops, "%llu ops, asked for --items=%lld");
    r->ops = ops;
    cp_rwlock_free(s.l);
    return 0;
}

WL_DEFINE(rwmutex) = {
    .name = "rwmutex",
    .seed_key = "primitives_rwmutex",
    .group = "primitives",
    .desc = "readers and writers over a 64-slot map under an rwlock (Go's BenchmarkRWMutex)",
    .op = "read or write critical section",
    .latency = "rlock/wlock acquire",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED,
                  .capacity = WL_UNUSED, .payload = WL_UNUSED, .work_ns = 0, .items = 1000000 },
    .params = rwmutex_params,
    .run = rwmutex_run,
    .metrics = (const wl_metric_def[]){ WL_METRICS_FAIRNESS, { NULL } },
};
