/*
 * workerpool_dynamic: a worker pool whose size follows the load, between
 * --set min=N and --threads=MAX workers. The dynamic-size pool of seed 000
 * (pools_workerpool_dynamic): a submitter feeds a bounded job queue in bursts
 * (--set burst=B jobs at full speed, then --set pause_us=P of quiet), a
 * scaler on a ticker (--set tick_us) adds one worker when the backlog has
 * stayed above the mark (queue depth > --set mark, or the submitter blocked on
 * a full queue, or jobs waiting with no worker at all) for --set grow_ticks
 * consecutive ticks, and a worker retires after --set idle_us without a job
 * (its own timer: Go's `case <-time.After(idle)`), unless the pool is at min.
 * Results go to a collector, as in workerpool; --set cancel_after_ms=T
 * cancels the pool's ctx mid-run.
 *
 * A worker is a goroutine: here, one of MAX thread slots started at the run's
 * start gate; a slot is dormant until the scaler hands it a start token (the
 * `go` statement: the pool's count `live` includes a worker from the moment
 * it is started, as a goroutine counts from `go`), runs the worker loop, and
 * returns to dormant when it retires. So growing costs a channel hand-off,
 * not a pthread_create, and the run needs no more than MAX + 3 threads
 * however often the pool breathes.
 *
 * One op: one job's result collected (ops/s is jobs/s). Latency: a job's
 * sojourn, from its submission to its result being collected.
 *
 * Metrics (each repetition): reaction_ns, the median over load steps (the
 * start of a burst) of the time to the next worker added; workers_min,
 * workers_mean, workers_max, the pool's size sampled at every scaler tick;
 * grows and shrinks, the number of workers added and retired.
 *
 * Invariants, checked on every run:
 *   - never above max: each activation of a slot counts the workers running
 *     their loop, and that count (which never exceeds `live`) is <= max; each
 *     change of `live` lands in [min, max] (the value the atomic wrote), and
 *     so does every sample the scaler takes before shutdown;
 *   - never below min: a retirement leaves `live` >= min (same check), the
 *     samples too, and when the pool shuts down every worker that was started
 *     has retired or exited (activations == retirements + exits);
 *   - as workerpool: no job counted twice (a bitmap of ids); nothing lost:
 *     submitted == collected + abandoned (a result a cancelled worker could
 *     not send) + left in the queue; collected == results the workers
 *     delivered; without cancellation every job is collected (count mode:
 *     exactly --items);
 *   - cancellation observed promptly: every thread has exited within 1 s of
 *     the cancel (else the run fails, naming the time);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_MIN, P_MARK, P_GROW_TICKS, P_TICK_US, P_IDLE_US, P_BURST, P_PAUSE_US, P_CANCEL_AFTER_MS, P_COUNT };
static const wl_param workerpool_dynamic_params[] = {
    [P_MIN] = { "min", 1, "fewest workers (the pool starts with min; --threads is the most)", 4 },
    [P_MARK] = { "mark", 8, "backlog mark: queue depth above it counts as pressure", 16 },
    [P_GROW_TICKS] = { "grow_ticks", 2, "add a worker after this many consecutive ticks under pressure (0: 1)", 4 },
    [P_TICK_US] = { "tick_us", 200, "the scaler's ticker period, us", 0 },
    [P_IDLE_US] = { "idle_us", 1000, "a worker retires after this long without a job (not below min), us", 2000 },
    [P_BURST] = { "burst", 5000, "jobs per burst at full speed; 0: one burst, no pauses", 5000 },
    [P_PAUSE_US] = { "pause_us", 5000, "quiet time between bursts, us", 2000 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the pool's ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(workerpool_dynamic_params, P_COUNT);

struct job { uint64_t id, submitted; };
struct result { uint64_t id, submitted; };

struct dpool {
    wl_run *r;
    cp_chan *jobs, *results, *wake;     /* wake: start tokens for dormant slots */
    cp_timer *tick;                     /* the scaler's ticker */
    cp_timer **idle;                    /* each slot's idle timer */
    cp_ctx *ctx;                        /* NULL unless cancellation is asked for */
    int64_t min, max, mark, grow_ticks;
    uint64_t tick_ns, idle_ns, burst, pause_ns;
    _Atomic int64_t live;               /* the pool's size: started, not retired/exited */
    _Atomic int64_t running;            /* slots inside the worker loop (<= live) */
    _Atomic int shutdown;               /* set before jobs closes or once a cancel is seen */
    _Atomic int blocked;                /* the submitter waits on a full queue */
    _Atomic uint64_t step_at;           /* start of the latest burst not yet answered; 0: none */
    wl_group slots_out;                 /* slot threads not yet exited; the last closes results */
    _Atomic uint64_t submitted, delivered, abandoned;
    _Atomic uint64_t activations, retirements, exits;
    wl_errors bad;                      /* [min, max] violations: the first, its value (a), how many */
    /* collector-only */
    wl_idset seen;                      /* the job ids collected */
    uint64_t collected, dup, first_dup;
    /* scaler-only */
    uint64_t samples, sample_sum, grows;
    int64_t wmin, wmax;
    cp_hist *reaction;
};

static int in_bounds(const struct dpool *p, int64_t n) { return n >= p->min && n <= p->max; }

/* ---- submitter: bursts of jobs separated by pauses ---- */
static void *submitter(wl_thread *self, void *arg)
{
    struct dpool *p = arg;
    wl_run *r = p->r;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    int64_t until_sample = 0;
    uint64_t id = 0, in_burst = 0;
    atomic_store(&p->step_at, cp_now_ns());     /* the first burst is a step from zero load */
    for (; wl_more(r, id, n); id++) {
        if (p->burst && in_burst == p->burst) {
            in_burst = 0;
            wl_phase(self, "pause");
            if (p->pause_ns && cp_sleep(p->pause_ns, p->ctx) != CP_OK) break;
            if (!wl_more(r, id, n)) break;
            atomic_store(&p->step_at, cp_now_ns());
        }
        in_burst++;
        struct job j = { .id = id };
        if (wl_sample(sample, &until_sample)) {
            j.submitted = wl_now();
        }
        wl_phase(self, "submit");
        cp_status st = cp_chan_try_send(p->jobs, &j);
        if (st == CP_WOULDBLOCK) {
            atomic_store(&p->blocked, 1);       /* backlog the scaler can see, capacity 0 included */
            st = cp_chan_send(p->jobs, &j, p->ctx);
            atomic_store(&p->blocked, 0);
        }
        if (st != CP_OK) break;                 /* cancelled */
    }
    atomic_store(&p->submitted, id);
    self->ops = id;
    wl_phase(self, "close jobs");
    atomic_store(&p->shutdown, 1);              /* before the close: workers exit after it */
    cp_chan_close(p->jobs);
    wl_phase(self, "done");
    return NULL;
}

/* ---- a slot: dormant until started, then the worker loop ---- */

/* One job: the work, then its result. 0: go on; -1: cancelled. */
static int process(struct dpool *p, const struct job *j, uint64_t *done, uint64_t *abandoned)
{
    if (p->r->cfg->k.work_ns) wl_work(p->r->cfg->k.work_ns);
    struct result res = { .id = j->id, .submitted = j->submitted };
    if (cp_chan_send(p->results, &res, p->ctx) != CP_OK) {
        ++*abandoned;       /* cancelled with a result in hand: counted, not lost */
        return -1;
    }
    ++*done;
    return 0;
}

/* Retire if the pool is above min: a CAS, so that two idle workers cannot
 * both take the pool from min + 1 to min - 1. */
static int try_retire(struct dpool *p)
{
    int64_t n = atomic_load(&p->live);
    while (n > p->min)
        if (atomic_compare_exchange_weak(&p->live, &n, n - 1)) {
            if (!in_bounds(p, n - 1)) wl_note(&p->bad, "a retirement left the pool at", (uint64_t)(n - 1), 0);
            return 1;
        }
    return 0;
}

/* The worker loop: 1 if it retired (back to dormant), 0 on shutdown. */
static int work_loop(wl_thread *self, struct dpool *p, cp_timer *idle, uint64_t *done, uint64_t *abandoned)
{
    struct job j;
    cp_case cs[2] = { { .op = CP_RECV, .ch = p->jobs, .elem = &j },
                      { .op = CP_RECV, .ch = cp_timer_chan(idle), .elem = &(uint64_t){ 0 } } };
    for (;;) {
        wl_phase(self, "recv job");
        cp_status st = cp_chan_try_recv(p->jobs, &j);
        if (st == CP_WOULDBLOCK) {
            /* Go 1.23: after Reset returns no stale tick is received */
            cp_timer_reset(idle, p->idle_ns);
            int i = cp_select(cs, 2, p->ctx, &st);
            if (i < 0) return 0;                                        /* cancelled */
            if (i == 1) {
                /* idle for idle_ns; a job that raced with the tick is served first */
                st = cp_chan_try_recv(p->jobs, &j);
                if (st == CP_WOULDBLOCK) {
                    if (try_retire(p)) return 1;
                    continue;                                           /* at min: stay */
                }
            }
        }
        if (st == CP_CLOSED) return 0;                                  /* drained: shutdown */
        wl_phase(self, "work");
        if (process(p, &j, done, abandoned)) return 0;
    }
}

struct slot_arg { struct dpool *p; cp_timer *idle; };

static void *slot(wl_thread *self, void *arg)
{
    struct dpool *p = ((struct slot_arg *)arg)->p;
    cp_timer *idle = ((struct slot_arg *)arg)->idle;
    uint64_t done = 0, abandoned = 0, tok;
    for (;;) {
        wl_phase(self, "dormant");
        if (cp_chan_recv(p->wake, &tok, p->ctx) != CP_OK) break;   /* the pool ended */
        atomic_fetch_add(&p->activations, 1);
        int64_t n = atomic_fetch_add(&p->running, 1) + 1;
        if (n > p->max) wl_note(&p->bad, "workers running their loop at once", (uint64_t)(n), 0);
        int retired = work_loop(self, p, idle, &done, &abandoned);
        atomic_fetch_sub(&p->running, 1);
        if (retired) {
            atomic_fetch_add(&p->retirements, 1);
            continue;
        }
        /* shutdown (jobs closed and drained, or cancelled): leave the pool */
        atomic_store(&p->shutdown, 1);
        atomic_fetch_sub(&p->live, 1);
        atomic_fetch_add(&p->exits, 1);
        break;
    }
    cp_timer_stop(idle);
    atomic_fetch_add(&p->delivered, done);
    atomic_fetch_add(&p->abandoned, abandoned);
    self->ops = done;
    if (wl_group_leave(&p->slots_out)) cp_chan_close(p->results);
    wl_phase(self, "done");
    return NULL;
}

/* ---- scaler: samples the backlog on a ticker, adds workers ---- */
static void grow(struct dpool *p)
{
    int64_t n = atomic_load(&p->live);
    while (n < p->max)
        if (atomic_compare_exchange_weak(&p->live, &n, n + 1)) {
            if (!in_bounds(p, n + 1)) wl_note(&p->bad, "a grow took the pool to", (uint64_t)(n + 1), 0);
            uint64_t tok = 1;
            /* never blocks: tokens in flight <= live <= max = wake's capacity */
            cp_chan_send(p->wake, &tok, NULL);
            p->grows++;
            uint64_t t = atomic_exchange(&p->step_at, 0);
            if (t) cp_hist_record(p->reaction, wl_diff(cp_now_ns(), t));
            return;
        }
}

static void *scaler(wl_thread *self, void *arg)
{
    struct dpool *p = arg;
    int64_t above = 0;
    uint64_t t;
    wl_phase(self, "tick");
    while (cp_chan_recv(cp_timer_chan(p->tick), &t, p->ctx) == CP_OK) {
        int64_t n = atomic_load(&p->live);
        size_t depth = cp_chan_len(p->jobs);
        int closing = atomic_load(&p->shutdown);
        if (!closing) {
            if (!in_bounds(p, n)) wl_note(&p->bad, "the scaler sampled a pool size of", (uint64_t)(n), 0);
            p->samples++;
            p->sample_sum += (uint64_t)n;
            if (n < p->wmin) p->wmin = n;
            if (n > p->wmax) p->wmax = n;
        } else if (depth == 0) {
            break;          /* jobs closed and drained: nothing left to grow for */
        }
        int pressure = (int64_t)depth > p->mark || atomic_load(&p->blocked) || (depth > 0 && n == 0);
        above = pressure ? above + 1 : 0;
        if (above >= p->grow_ticks) {
            grow(p);
            above = 0;
        }
    }
    cp_timer_stop(p->tick);
    if (cp_ctx_err(p->ctx)) atomic_store(&p->shutdown, 1);
    wl_phase(self, "close wake");
    cp_chan_close(p->wake);     /* dormant slots exit (a pending token is still served first) */
    wl_phase(self, "done");
    return NULL;
}

/* ---- collector ---- */
static void *collector(wl_thread *self, void *arg)
{
    struct dpool *p = arg;
    struct result res;
    wl_phase(self, "collect");
    while (cp_chan_recv(p->results, &res, NULL) == CP_OK) {    /* closed by the last slot */
        if (res.submitted) cp_hist_record(self->hist, wl_since(res.submitted));
        int was = wl_idset_mark(&p->seen, res.id);
        if (was < 0) { p->dup = ~0ull; break; }
        if (was && !p->dup++) p->first_dup = res.id;
        p->collected++;
    }
    self->ops = p->collected;
    wl_phase(self, "done");
    return NULL;
}

static void dyn_free(struct dpool *p)
{
    wl_idset_free(&p->seen);
    for (int64_t i = 0; p->idle && i < p->max; i++) cp_timer_free(p->idle[i]);
    free(p->idle);
    cp_timer_free(p->tick);
    if (p->reaction) cp_hist_free(p->reaction);
    cp_ctx_free(p->ctx);
    cp_chan_free(p->jobs);
    cp_chan_free(p->results);
    cp_chan_free(p->wake);
}

static int dyn_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct dpool p = {
        .r = r,
        .min = c->set[P_MIN],
        .max = c->k.threads,
        .mark = c->set[P_MARK],
        .grow_ticks = c->set[P_GROW_TICKS] > 0 ? c->set[P_GROW_TICKS] : 1,
        .tick_ns = (uint64_t)c->set[P_TICK_US] * 1000u,
        .idle_ns = (uint64_t)c->set[P_IDLE_US] * 1000u,
        .burst = (uint64_t)c->set[P_BURST],
        .pause_ns = (uint64_t)c->set[P_PAUSE_US] * 1000u,
        .wmin = INT64_MAX,
        .wmax = -1,
    };
    int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    atomic_init(&p.live, p.min);
    wl_group_init(&p.slots_out, (int)p.max);
    struct slot_arg *sa = calloc((size_t)p.max, sizeof *sa);
    p.idle = calloc((size_t)p.max, sizeof *p.idle);
    p.jobs = cp_chan_new(c->b, sizeof(struct job), (size_t)c->k.capacity);
    p.results = cp_chan_new(c->b, sizeof(struct result), (size_t)c->k.capacity);
    p.wake = cp_chan_new(c->b, sizeof(uint64_t), (size_t)p.max);
    p.tick = cp_ticker_new(c->b, p.tick_ns);
    p.reaction = cp_hist_new(3, 3600ull * 1000000000ull);
    if (cancel_ms > 0) p.ctx = cp_ctx_with_cancel(c->b, NULL);
    int ok = sa && p.idle && p.jobs && p.results && p.wake && p.tick && p.reaction && (cancel_ms <= 0 || p.ctx);
    for (int64_t i = 0; ok && i < p.max; i++)
        if ((ok = (p.idle[i] = cp_timer_new(c->b, p.idle_ns)) != NULL)) cp_timer_stop(p.idle[i]);
    if (!ok) {
        dyn_free(&p);
        free(sa);
        return -1;
    }
    wl_watch(r, "jobs", p.jobs);
    wl_watch(r, "results", p.results);
    wl_watch(r, "wake", p.wake);
    for (int64_t i = 0; i < p.min; i++) cp_chan_send(p.wake, &(uint64_t){ 1 }, NULL);   /* the first min */

    wl_spawn(r, "collector", collector, &p);
    for (int64_t i = 0; i < p.max; i++) {
        sa[i] = (struct slot_arg){ &p, p.idle[i] };
        wl_spawn(r, "worker", slot, &sa[i]);
    }
    wl_spawn(r, "scaler", scaler, &p);
    wl_spawn(r, "submitter", submitter, &p);

    uint64_t cancelled_at = wl_start_cancel_join(r, p.ctx, cancel_ms);

    uint64_t left = 0;
    struct job j;
    while (cp_chan_try_recv(p.jobs, &j) == CP_OK) {
        if (wl_idset_mark(&p.seen, j.id) > 0) p.dup++;
        left++;
    }
    uint64_t submitted = atomic_load(&p.submitted), delivered = atomic_load(&p.delivered);
    uint64_t abandoned = atomic_load(&p.abandoned);
    uint64_t tokens_left = wl_drain(p.wake, &(uint64_t){ 0 });
    int64_t live_end = atomic_load(&p.live);
    if (live_end != (int64_t)tokens_left)
        wl_fail(r, "pool size %lld after every worker left, with %llu workers started but never run",
                (long long)live_end, (unsigned long long)tokens_left);
    uint64_t act = atomic_load(&p.activations), ret = atomic_load(&p.retirements), ex = atomic_load(&p.exits);
    if (atomic_load(&p.bad.n))
        wl_fail(r, "pool size out of [min %lld, max %lld]: %s %lld (%llu violations)", (long long)p.min,
                (long long)p.max, atomic_load(&p.bad.first), (long long)atomic_load(&p.bad.a),
                (unsigned long long)atomic_load(&p.bad.n));
    if (act != ret + ex)
        wl_fail(r, "workers unaccounted for: %llu started != %llu retired + %llu exited", (unsigned long long)act,
                (unsigned long long)ret, (unsigned long long)ex);
    if (p.dup)
        wl_fail(r, "job counted twice: %llu duplicates (first id %llu)", (unsigned long long)p.dup,
                (unsigned long long)p.first_dup);
    if (submitted != p.collected + abandoned + left)
        wl_fail(r, "jobs lost: submitted %llu != collected %llu + abandoned %llu + left in queue %llu",
                (unsigned long long)submitted, (unsigned long long)p.collected, (unsigned long long)abandoned,
                (unsigned long long)left);
    if (delivered != p.collected)
        wl_fail(r, "results lost: workers delivered %llu, collector got %llu", (unsigned long long)delivered,
                (unsigned long long)p.collected);
    if (!p.ctx && (abandoned || left))
        wl_fail(r, "no cancellation, yet %llu abandoned and %llu left in the queue", (unsigned long long)abandoned,
                (unsigned long long)left);
    if (!p.ctx && c->duration <= 0 && p.collected != (uint64_t)c->k.items)
        wl_fail(r, "collected %llu results, expected %lld", (unsigned long long)p.collected, (long long)c->k.items);
    wl_check_cancel_stop(r, cancelled_at);

    if (cp_hist_count(p.reaction)) wl_metric(r, 0, (double)cp_hist_percentile(p.reaction, 50));
    if (p.samples) {
        wl_metric(r, 1, (double)p.wmin);
        wl_metric(r, 2, (double)p.sample_sum / (double)p.samples);
        wl_metric(r, 3, (double)p.wmax);
    }
    wl_metric(r, 4, (double)p.grows);
    wl_metric(r, 5, (double)ret);
    r->ops = p.collected;
    dyn_free(&p);
    free(sa);
    return 0;
}

static const char *dyn_check(const wl_cfg *c)
{
    if (c->set[P_MIN] > c->k.threads) return "--set min must be <= --threads (the pool's max)";
    if (c->set[P_TICK_US] < 1) return "--set tick_us (the scaler's period) must be >= 1";
    return NULL;
}

WL_DEFINE(workerpool_dynamic) = {
    .name = "workerpool_dynamic",
    .seed_key = "pools_workerpool_dynamic",
    .group = "pools",
    .desc = "bursts -> bounded job queue -> min..max workers (grown on backlog, retired when idle) -> collector",
    .op = "result collected",
    .latency = "job submitted -> result collected",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 64,
                  .payload = WL_UNUSED, .work_ns = 2000, .items = 50000 },
    .params = workerpool_dynamic_params,
    .metrics = (const wl_metric_def[]){
        { "reaction_ns", "ns", "load step (a burst starts) -> next worker added, median over steps" },
        { "workers_min", "count", "fewest workers seen by the scaler's samples" },
        { "workers_mean", "count", "mean pool size over the scaler's samples" },
        { "workers_max", "count", "most workers seen by the scaler's samples" },
        { "grows", "count", "workers added by the scaler" },
        { "shrinks", "count", "workers retired after idle_us" },
        { NULL, NULL, NULL },
    },
    .run = dyn_run,
    .check = dyn_check,
};
