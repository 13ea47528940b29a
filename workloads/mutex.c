/*
 * mutex: T threads increment one shared counter under a cp_mutex, with
 * --work-ns of busy work inside the critical section and --set outside_ns
 * outside it. The shape of Go's BenchmarkMutex / BenchmarkMutexWork
 * (sync/mutex_test.go).
 *
 * One op: one critical section (one increment). Latency: the time to
 * acquire the lock (cp_mutex_lock's duration), sampled 1 in --lat-sample.
 * Count-based runs share one budget of --items increments (taken under the
 * lock), so how the ops split between threads shows the lock's fairness:
 * the fairness metrics (wl_fairness) are the fewest and most ops of one thread.
 *
 * Invariants, checked on every run:
 *   - the counter (plain memory, ordered only by the lock) equals the sum of
 *     the threads' own op counts, and --items exactly in count mode;
 *   - a shadow copy written at the start and checked at the end of each
 *     critical section is never disturbed (mutual exclusion);
 *   - every thread joined.
 */
#include "runtime/workload.h"

enum { P_OUTSIDE_NS, P_COUNT };
static const wl_param mutex_params[] = {
    [P_OUTSIDE_NS] = { "outside_ns", 0, "busy work between critical sections (ns)" },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(mutex_params, P_COUNT);

enum { M_FAIR };     /* M_FAIR, M_FAIR + 1: WL_METRICS_FAIRNESS */

struct mx_state {
    wl_run *r;
    cp_mutex *m;
    uint64_t counter;       /* under m */
    uint64_t owner;         /* under m: who is inside (id + 1) */
    uint64_t budget;        /* count mode: total increments; 0: time-based */
    _Atomic uint64_t overlaps;
};

static void *mx_worker(wl_thread *self, void *arg)
{
    struct mx_state *s = arg;
    const uint64_t id = (uint64_t)self->rank;
    wl_run *r = s->r;
    const int64_t work = r->cfg->k.work_ns, outside = r->cfg->set[P_OUTSIDE_NS];
    const int64_t sample = r->cfg->lat_sample;
    int64_t until_sample = sample ? (int64_t)(id % (uint64_t)sample) : 0;
    uint64_t done = 0, overlaps = 0;

    wl_phase(self, "lock");
    for (;;) {
        if (s->budget == 0 && wl_stopped(r)) break;
        if (wl_sample(sample, &until_sample)) {
            uint64_t t0 = wl_now();
            cp_mutex_lock(s->m);
            cp_hist_record(self->hist, wl_since(t0));
        } else {
            cp_mutex_lock(s->m);
        }
        if (s->budget && s->counter >= s->budget) {
            cp_mutex_unlock(s->m);
            break;
        }
        s->owner = id + 1;
        s->counter++;
        if (work) wl_work(work);
        overlaps += s->owner != id + 1;
        cp_mutex_unlock(s->m);
        done++;
        if (outside) wl_work(outside);
    }
    if (overlaps) atomic_fetch_add(&s->overlaps, overlaps);
    self->ops = done;
    wl_phase(self, "done");
    return NULL;
}

static int mutex_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    int T = (int)c->k.threads;
    struct mx_state s = { .r = r, .budget = c->duration > 0 ? 0 : (uint64_t)c->k.items };
    s.m = cp_mutex_new(c->b);
    if (!s.m) return -1;
    if (s.budget == 0 && c->duration <= 0) s.budget = 1; /* --items=0: one op */
    wl_spawn_n(r, T, "locker", mx_worker, &s);
    wl_start_and_join(r);

    uint64_t sum = wl_fairness(r, 0, r->nthr, M_FAIR).sum;
    if (atomic_load(&s.overlaps))
        wl_fail(r, "mutual exclusion broken: %llu critical sections saw another thread inside",
                (unsigned long long)atomic_load(&s.overlaps));
    if (s.counter != sum)
        wl_fail(r, "counter %llu != %llu increments the threads made (lost update)",
                (unsigned long long)s.counter, (unsigned long long)sum);
    if (c->duration <= 0 && s.counter != s.budget)
        wl_fail(r, "counter %llu, asked for --items=%llu", (unsigned long long)s.counter,
                (unsigned long long)s.budget);
    r->ops = sum;
    cp_mutex_free(s.m);
    return 0;
}

WL_DEFINE(mutex) = {
    .name = "mutex",
    .group = "primitives",
    .desc = "T threads increment one counter under a mutex (Go's BenchmarkMutex)",
    .op = "critical section",
    .latency = "lock acquire",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED,
                  .capacity = WL_UNUSED, .payload = WL_UNUSED, .work_ns = 0, .items = 2000000 },
    .params = mutex_params,
    .run = mutex_run,
    .metrics = (const wl_metric_def[]){ WL_METRICS_FAIRNESS, { NULL } },
};
