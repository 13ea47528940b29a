/*
 * cond_broadcast: T waiters and a broadcaster in rounds (a cyclic barrier
 * on a cp_cond): once all T waiters wait for the next generation, the
 * broadcaster bumps the generation and broadcasts; each waiter checks that
 * it observed exactly the new generation, then waits for the next. The
 * shape of Go's BenchmarkCondBroadcast-style barriers (sync.Cond).
 *
 * One op: one round (one broadcast, T wake-ups). Latency: broadcast -> each
 * waiter's wake-up (holding the mutex again), sampled 1 in --lat-sample
 * rounds (every waiter of a sampled round records).
 *
 * Invariants, checked on every run:
 *   - every broadcast wakes every waiter: each waiter observes every
 *     generation exactly once (its count of rounds == the rounds run, and
 *     each wake-up finds generation == the one it waited past + 1);
 *   - no spurious wake-up: a cp_cond_wait that returns CP_OK always finds
 *     the generation moved;
 *   - count mode: exactly --items rounds; every thread joined.
 */
#include "runtime/workload.h"

enum { M_FAIR };     /* M_FAIR, M_FAIR + 1: WL_METRICS_FAIRNESS */

struct cb_state {
    wl_run *r;
    cp_mutex *m;
    cp_cond *gen_cv;            /* waiters: the generation moved */
    cp_cond *arrived_cv;        /* broadcaster: all waiters arrived */
    int waiters;
    /* under m: */
    uint64_t gen, ts;           /* ts: when gen was broadcast, 0: not sampled */
    int arrived, closed;
    uint64_t skipped, spurious, short_rounds;
};

static void *cb_waiter(wl_thread *self, void *arg)
{
    struct cb_state *s = arg;
    uint64_t rounds = 0;
    cp_mutex_lock(s->m);
    for (;;) {
        uint64_t mine = s->gen;
        if (++s->arrived == s->waiters) cp_cond_signal(s->arrived_cv);
        wl_phase(self, "wait");
        for (;;) {
            cp_status st = cp_cond_wait(s->gen_cv, s->m, NULL);
            if (st != CP_OK) { wl_fail(s->r, "cond wait returned %s", cp_status_str(st)); break; }
            if (s->gen != mine || s->closed) break;
            s->spurious++;
        }
        if (s->gen == mine) break;          /* closed */
        if (s->ts) cp_hist_record(self->hist, wl_since(s->ts));
        if (s->gen != mine + 1) s->skipped++;
        rounds++;
        if (s->closed) break;
    }
    cp_mutex_unlock(s->m);
    self->ops = rounds;
    wl_phase(self, "done");
    return NULL;
}

static void *cb_broadcaster(wl_thread *self, void *arg)
{
    struct cb_state *s = arg;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    int64_t until_sample = 0;
    uint64_t i = 0;
    cp_mutex_lock(s->m);
    for (; wl_more(r, i, n); i++) {
        wl_phase(self, "wait arrivals");
        while (s->arrived < s->waiters) cp_cond_wait(s->arrived_cv, s->m, NULL);
        wl_phase(self, "broadcast");
        s->arrived = 0;
        s->gen++;
        s->ts = 0;
        if (wl_sample(sample, &until_sample)) {
            s->ts = wl_now();
        }
        cp_cond_broadcast(s->gen_cv);
    }
    /* Close only once everyone has seen the last generation (arrived again). */
    while (s->arrived < s->waiters) cp_cond_wait(s->arrived_cv, s->m, NULL);
    s->closed = 1;
    cp_cond_broadcast(s->gen_cv);
    cp_mutex_unlock(s->m);
    self->ops = i;
    wl_phase(self, "done");
    return NULL;
}

static int cond_broadcast_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct cb_state s = { .r = r, .waiters = (int)c->k.threads };
    s.m = cp_mutex_new(c->b);
    s.gen_cv = cp_cond_new(c->b);
    s.arrived_cv = cp_cond_new(c->b);
    if (!s.m || !s.gen_cv || !s.arrived_cv) return -1;
    wl_spawn_n(r, s.waiters, "waiter", cb_waiter, &s);
    wl_spawn(r, "broadcaster", cb_broadcaster, &s);
    wl_start_and_join(r);

    uint64_t rounds = r->thr[r->nthr - 1].ops;
    wl_spread f = wl_fairness(r, 0, s.waiters, M_FAIR);
    uint64_t mn = f.min, mx = f.max;
    if (s.skipped)
        wl_fail(r, "%llu wake-ups skipped a generation", (unsigned long long)s.skipped);
    if (s.spurious)
        wl_fail(r, "%llu spurious wake-ups (generation unchanged)", (unsigned long long)s.spurious);
    if (s.waiters && (mn != rounds || mx != rounds))
        wl_fail(r, "a broadcast missed a waiter: %llu rounds, waiters saw %llu..%llu",
                (unsigned long long)rounds, (unsigned long long)mn, (unsigned long long)mx);
    wl_check_items(r, rounds, "%llu rounds, asked for --items=%lld");
    r->ops = rounds;
    cp_cond_free(s.gen_cv);
    cp_cond_free(s.arrived_cv);
    cp_mutex_free(s.m);
    return 0;
}

WL_DEFINE(cond_broadcast) = {
    .name = "cond_broadcast",
    .seed_key = "primitives_broadcast",
    .group = "primitives",
    .desc = "T waiters, rounds of cond broadcast (a cyclic barrier); every waiter sees every round",
    .op = "round (one broadcast, T wake-ups)",
    .latency = "broadcast -> each waiter re-holds the mutex",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED,
                  .capacity = WL_UNUSED, .payload = WL_UNUSED, .work_ns = 0, .items = 5000 },
    .params = (const wl_param[]){ { NULL, 0, NULL } },
    .run = cond_broadcast_run,
    .metrics = (const wl_metric_def[]){ WL_METRICS_FAIRNESS, { NULL } },
};
