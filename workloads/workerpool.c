/*
 * workerpool: a submitter feeds jobs into a bounded queue, N workers drain
 * it and send one result per job to a results channel, a collector counts
 * them. The fixed-size worker pool of the seed catalogue (pools_workerpool): jobs can
 * fail (--set fail_every=K: every K-th job reports an error, as a result, not
 * lost) and the pool can be cancelled (--set cancel_after_ms=T: one ctx ends
 * submitter and workers, and the pool must stop cleanly).
 *
 * One op: one result collected. Latency: a job's sojourn, from its
 * submission to its result being collected.
 *
 * Invariants, checked on every run:
 *   - no job counted twice: the collector keeps a bitmap of job ids;
 *   - nothing lost: submitted == collected + abandoned + left in the queue,
 *     where abandoned counts the results a worker could not send because the
 *     pool was cancelled, and left is what the queue still held;
 *   - collected == results the workers delivered;
 *   - failures are reported: each result's error flag matches its job id;
 *   - without cancellation every job is collected (count mode: exactly
 *     --items);
 *   - cancellation is observed promptly: every thread has exited within a
 *     second of the cancel (else the run fails, naming the cancel latency);
 *   - every thread joined.
 */
#include "runtime/workload.h"

enum { P_FAIL_EVERY, P_CANCEL_AFTER_MS, P_COUNT };
static const wl_param workerpool_params[] = {
    [P_FAIL_EVERY] = { "fail_every", 0, "every K-th job fails (reported as a failed result); 0: none", 10 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the pool's ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(workerpool_params, P_COUNT);

/* submitted: when the job was (intended to be) submitted, 0 if not timed;
 * actual: open loop only, when it really was. */
struct job { uint64_t id, submitted, actual; };
struct result { uint64_t id, submitted, actual; uint32_t failed; uint32_t worker; };

struct pool {
    wl_run *r;
    cp_chan *jobs, *results;
    cp_ctx *ctx;            /* NULL unless cancellation is asked for */
    int workers;
    uint64_t fail_every;
    wl_group workers_out;   /* the workers -> results; the last one closes it */
    _Atomic uint64_t submitted, delivered, abandoned;
    /* collector-only */
    wl_idset seen;          /* the job ids collected */
    uint64_t collected, failures, dup, bad_flag, first_dup;
};

static void *submitter(wl_thread *self, void *arg)
{
    struct pool *p = arg;
    wl_run *r = p->r;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    int64_t until_sample = 0;
    uint64_t id = 0;
    /* open loop (--rate): one submission every 1/rate s, on schedule */
    const uint64_t interval = r->cfg->rate > 0 ? (uint64_t)(1e9 / r->cfg->rate) : 0;
    wl_phase(self, "submit");
    for (; wl_more(r, id, n); id++) {
        struct job j = { .id = id };
        uint64_t intended = interval ? wl_pace(r, id, interval, 0) : 0;
        if (interval && !intended) break;   /* stopped while waiting for its time */
        if (wl_sample(sample, &until_sample)) {
            j.actual = wl_now();
            j.submitted = interval ? intended : j.actual;
        }
        if (cp_chan_send(p->jobs, &j, p->ctx) != CP_OK) break;   /* cancelled */
    }
    atomic_store(&p->submitted, id);
    self->ops = id;
    wl_phase(self, "close jobs");
    cp_chan_close(p->jobs);
    wl_phase(self, "done");
    return NULL;
}

static void *worker(wl_thread *self, void *arg)
{
    struct pool *p = arg;
    const int64_t work = p->r->cfg->k.work_ns;
    uint64_t done = 0, abandoned = 0;
    struct job j;
    wl_phase(self, "recv job");
    while (cp_chan_recv(p->jobs, &j, p->ctx) == CP_OK) {
        if (work) wl_work(work);
        struct result res = {
            .id = j.id,
            .submitted = j.submitted,
            .actual = j.actual,
            .failed = p->fail_every && (j.id + 1) % p->fail_every == 0,
            .worker = (uint32_t)(self - p->r->thr),
        };
        wl_phase(self, "send result");
        if (cp_chan_send(p->results, &res, p->ctx) != CP_OK) {
            abandoned++;    /* cancelled with a result in hand: counted, not lost */
            break;
        }
        done++;
        wl_phase(self, "recv job");
    }
    atomic_fetch_add(&p->delivered, done);
    atomic_fetch_add(&p->abandoned, abandoned);
    self->ops = done;
    if (wl_group_leave(&p->workers_out)) cp_chan_close(p->results);
    wl_phase(self, "done");
    return NULL;
}

static void *collector(wl_thread *self, void *arg)
{
    struct pool *p = arg;
    struct result res;
    wl_phase(self, "collect");
    /* No ctx: the collector drains every delivered result until the last
     * worker closes the channel, also after a cancel. */
    while (cp_chan_recv(p->results, &res, NULL) == CP_OK) {
        if (res.submitted) {
            uint64_t now = wl_now();
            cp_hist_record(self->hist, wl_diff(now, res.submitted));
            if (self->hist_u) cp_hist_record(self->hist_u, wl_diff(now, res.actual));
        }
        int was = wl_idset_mark(&p->seen, res.id);
        if (was < 0) { p->dup = ~0ull; break; }
        if (was && !p->dup++) p->first_dup = res.id;
        uint32_t want = p->fail_every && (res.id + 1) % p->fail_every == 0;
        if (res.failed != want) p->bad_flag++;
        p->failures += res.failed;
        p->collected++;
    }
    self->ops = p->collected;
    wl_phase(self, "done");
    return NULL;
}

static int workerpool_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct pool p = {
        .r = r,
        .workers = (int)c->k.threads,
        .fail_every = (uint64_t)c->set[P_FAIL_EVERY],
    };
    int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    wl_group_init(&p.workers_out, p.workers);
    p.jobs = cp_chan_new(c->b, sizeof(struct job), (size_t)c->k.capacity);
    p.results = cp_chan_new(c->b, sizeof(struct result), (size_t)c->k.capacity);
    if (cancel_ms > 0) p.ctx = cp_ctx_with_cancel(c->b, NULL);
    if (!p.jobs || !p.results || (cancel_ms > 0 && !p.ctx)) return -1;
    wl_watch(r, "jobs", p.jobs);
    wl_watch(r, "results", p.results);

    wl_spawn(r, "collector", collector, &p);
    wl_spawn_n(r, p.workers, "worker", worker, &p);
    wl_spawn(r, "submitter", submitter, &p);
    uint64_t cancelled_at = wl_start_cancel_join(r, p.ctx, cancel_ms);

    /* what the queue still holds after everyone stopped */
    uint64_t left = 0;
    struct job j;
    while (cp_chan_try_recv(p.jobs, &j) == CP_OK) {
        if (wl_idset_mark(&p.seen, j.id) > 0) p.dup++;
        left++;
    }

    uint64_t submitted = atomic_load(&p.submitted), delivered = atomic_load(&p.delivered);
    uint64_t abandoned = atomic_load(&p.abandoned);
    if (p.dup)
        wl_fail(r, "job counted twice: %llu duplicates (first id %llu)", (unsigned long long)p.dup,
                (unsigned long long)p.first_dup);
    if (submitted != p.collected + abandoned + left)
        wl_fail(r, "jobs lost: submitted %llu != collected %llu + abandoned %llu + left in queue %llu",
                (unsigned long long)submitted, (unsigned long long)p.collected,
                (unsigned long long)abandoned, (unsigned long long)left);
    if (delivered != p.collected)
        wl_fail(r, "results lost: workers delivered %llu, collector got %llu",
                (unsigned long long)delivered, (unsigned long long)p.collected);
    if (p.bad_flag)
        wl_fail(r, "%llu results carry the wrong failure flag", (unsigned long long)p.bad_flag);
    if (!p.ctx && (abandoned || left))
        wl_fail(r, "no cancellation, yet %llu abandoned and %llu left in the queue",
                (unsigned long long)abandoned, (unsigned long long)left);
    if (!p.ctx && c->duration <= 0 && p.collected != (uint64_t)c->k.items)
        wl_fail(r, "collected %llu results, expected %lld", (unsigned long long)p.collected,
                (long long)c->k.items);
    wl_check_cancel_stop(r, cancelled_at);

    r->ops = p.collected;
    wl_idset_free(&p.seen);
    cp_ctx_free(p.ctx);
    cp_chan_free(p.jobs);
    cp_chan_free(p.results);
    return 0;
}

WL_DEFINE(workerpool) = {
    .name = "workerpool",
    .seed_key = "pools_workerpool",
    .group = "pools",
    .desc = "submitter -> bounded job queue -> N workers -> results -> collector",
    .op = "result collected",
    .latency = "job submitted -> result collected",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 100,
                  .payload = WL_UNUSED, .work_ns = 0, .items = 1000000 },
    .params = workerpool_params,
    .run = workerpool_run,
    .open_loop = 1,
};
