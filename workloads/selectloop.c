/*
 * selectloop: the cancellable for-select worker loop of the seed catalogue
 * (flows_selectloop):
 *
 *   for {
 *       select {
 *       case <-ctx.Done(): return
 *       case j, ok := <-in:
 *           if !ok { return }
 *           handle(j)
 *       }
 *   }
 *
 * Threads: a producer sends --items jobs (or for --duration) into `in`
 * (--capacity), then stops the workers, by cancelling their ctx
 * (--set stop=0) or by closing `in` (--set stop=1), and waits for them;
 * --threads W workers run the loop, each job's handling is --work-ns of
 * work.
 *
 * One op: a job handled. Latency: the producer's send start -> the start of
 * its handling. Metrics: stop_to_exit_ns, the stop -> every worker has
 * returned (a WaitGroup wait); late, jobs handled after the stop was issued
 * but before the worker's select saw it (legal: a select with both cases
 * ready picks one at random).
 *
 * Variants: default; seed: the classic `break` inside the select, meant to
 * leave the loop, leaves only the select: after the stop the worker spins
 * on, handling whatever the channel still holds. The run counts the jobs
 * handled after the stop was observed, fails with "leaked N worker
 * threads" when they are still looping 1 s after the stop, and then
 * releases them (their select also watches an internal ctx that only the
 * harness cancels).
 *
 * Invariants, checked on every run:
 *   - every worker returns within 1 s of the stop (else FAIL, naming how
 *     many leaked);
 *   - nothing is handled after the stop is observed: once a worker's select
 *     returned the done case or a closed channel, it handles no further job;
 *   - nothing lost before it: jobs sent = handled + left in the channel
 *     (count and checksum of wl_mix(seq)); with stop=close nothing is left;
 *   - per-worker order: each worker sees seq increase (one FIFO producer);
 *   - count mode: exactly --items sent; every thread joined.
 */
#include "runtime/workload.h"

enum { P_STOP, P_COUNT };
enum { M_STOP_TO_EXIT, M_LATE };
static const wl_param selectloop_params[] = {
    [P_STOP] = { "stop", 0, "how the workers are stopped: 0 cancel their ctx, 1 close the input", 1 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(selectloop_params, P_COUNT);


struct job { uint64_t seq, ts; };

struct sl_state {
    wl_run *r;
    int workers, seed, by_close;
    cp_chan *in;
    cp_ctx *ctx;                    /* the workers': cancelled by the producer for stop=0 */
    cp_ctx *reap;                   /* internal: cancelled only to release leaked workers */
    cp_wg *wg;
    _Atomic int live;
    _Atomic int stop_issued;
    _Atomic uint64_t handled, handled_sum, after_observed, late, errors;
    _Atomic(const char *) first_error;
    _Atomic uint64_t err_a, err_b;
    uint64_t sent, sent_sum;        /* the producer's */
};

static void note_error(struct sl_state *s, const char *what, uint64_t a, uint64_t b)
{
    const char *none = NULL;
    if (atomic_compare_exchange_strong(&s->first_error, &none, what)) {
        atomic_store(&s->err_a, a);
        atomic_store(&s->err_b, b);
    }
    atomic_fetch_add(&s->errors, 1);
}

static void *producer(wl_thread *self, void *arg)
{
    struct sl_state *s = arg;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    int64_t until_sample = 0;
    uint64_t seq = 0, sum = 0;
    wl_phase(self, "send");
    for (; wl_more(r, seq, n); seq++) {
        struct job j = { .seq = seq };
        if (wl_sample(sample, &until_sample)) {
            j.ts = wl_now();
        }
        cp_status st = cp_chan_send(s->in, &j, NULL);  /* the workers loop until the stop */
        if (st != CP_OK) {
            note_error(s, "producer's send failed (status, seq)", (uint64_t)st, seq);
            break;
        }
        sum += wl_mix(seq);
    }
    s->sent = seq;
    s->sent_sum = sum;
    self->ops = seq;

    wl_phase(self, "stop");
    atomic_store(&s->stop_issued, 1);
    uint64_t t_stop = wl_now();
    if (s->by_close) cp_chan_close(s->in);
    else cp_ctx_cancel(s->ctx);
    cp_ctx *bound = cp_ctx_with_timeout(r->cfg->b, NULL, WL_BOUND_NS);
    cp_status st = bound ? cp_wg_wait(s->wg, bound) : CP_ENOMEM;
    uint64_t dt = wl_since(t_stop);
    cp_ctx_free(bound);
    if (st == CP_OK) {
        wl_metric(r, M_STOP_TO_EXIT, (double)dt);
    } else {
        int leaked = atomic_load(&s->live);
        wl_fail(r, "leaked %d of %d worker threads: still looping %.3f s after the %s (%llu jobs handled after "
                   "they saw it)",
                leaked, s->workers, (double)dt / 1e9, s->by_close ? "close" : "cancel",
                (unsigned long long)atomic_load(&s->after_observed));
        cp_ctx_cancel(s->reap);                 /* release them, so that they can be joined */
        cp_wg_wait(s->wg, NULL);
    }
    wl_phase(self, "done");
    return NULL;
}

struct worker_local { int64_t last; uint64_t n, sum; };

static void handle(wl_thread *self, struct sl_state *s, struct worker_local *w, const struct job *j, int observed)
{
    if (observed) atomic_fetch_add(&s->after_observed, 1);
    if (atomic_load_explicit(&s->stop_issued, memory_order_relaxed)) atomic_fetch_add(&s->late, 1);
    if (j->ts) cp_hist_record(self->hist, wl_since(j->ts));
    if ((int64_t)j->seq <= w->last) note_error(s, "per-worker order broken (seq, after)", j->seq, (uint64_t)w->last);
    w->last = (int64_t)j->seq;
    w->n++;
    w->sum += wl_mix(j->seq);
    if (s->r->cfg->k.work_ns) wl_work(s->r->cfg->k.work_ns);
}

static void *worker(wl_thread *self, void *arg)
{
    struct sl_state *s = arg;
    struct worker_local w = { .last = -1 };
    struct job j;
    cp_case cs[2] = { { .op = CP_RECV, .ch = s->in, .elem = &j }, { .op = CP_WAIT, .ev = cp_ctx_done(s->ctx) } };
    cp_status st;
    wl_phase(self, "select");
    if (!s->seed) {
        for (;;) {
            int i = cp_select(cs, 2, NULL, &st);
            if (i == 1) break;                  /* case <-ctx.Done(): return */
            if (st == CP_CLOSED) break;         /* if !ok { return } */
            if (st != CP_OK) {
                note_error(s, "worker's select failed (status, index)", (uint64_t)st, (uint64_t)i);
                break;
            }
            handle(self, s, &w, &j, 0);
        }
    } else {
        /* the seed: `break` leaves the select, not the for. Only the harness's
         * reap ends the loop (checked apart: once the stop is seen a case is
         * always ready, and a select with a ready case never looks at its ctx). */
        int observed = 0;
        while (cp_ctx_err(s->reap) == CP_OK) {
            int i = cp_select(cs, 2, s->reap, &st);
            if (i < 0) break;                   /* reaped by the harness */
            if (i == 1 || st == CP_CLOSED) {
                if (!observed) wl_phase(self, "spinning after the stop");
                observed = 1;
                continue;                       /* break */
            }
            handle(self, s, &w, &j, observed);
        }
    }
    atomic_fetch_add(&s->handled, w.n);
    atomic_fetch_add(&s->handled_sum, w.sum);
    self->ops = w.n;
    wl_phase(self, "done");
    atomic_fetch_sub(&s->live, 1);
    cp_wg_done(s->wg);
    return NULL;
}

static int selectloop_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct sl_state s = {
        .r = r,
        .workers = (int)c->k.threads,
        .seed = c->variant == 1,
        .by_close = c->set[P_STOP] == 1,
    };
    int ret = -1;
    atomic_init(&s.live, s.workers);
    s.in = cp_chan_new(c->b, sizeof(struct job), (size_t)c->k.capacity);
    s.ctx = cp_ctx_with_cancel(c->b, NULL);
    s.reap = cp_ctx_with_cancel(c->b, NULL);
    s.wg = cp_wg_new(c->b);
    if (!s.in || !s.ctx || !s.reap || !s.wg) goto out;
    wl_watch(r, "in", s.in);
    cp_wg_add(s.wg, s.workers);

    wl_spawn_n(r, s.workers, "worker", worker, &s);
    wl_spawn(r, "producer", producer, &s);
    wl_start_and_join(r);

    uint64_t left = 0, left_sum = 0;
    struct job j;
    while (cp_chan_try_recv(s.in, &j) == CP_OK) {
        left++;
        left_sum += wl_mix(j.seq);
    }
    uint64_t handled = atomic_load(&s.handled), after = atomic_load(&s.after_observed);
    if (atomic_load(&s.errors))
        wl_fail(r, "%s: %llu, %llu (%llu errors)", atomic_load(&s.first_error),
                (unsigned long long)atomic_load(&s.err_a), (unsigned long long)atomic_load(&s.err_b),
                (unsigned long long)atomic_load(&s.errors));
    if (after)
        wl_fail(r, "%llu jobs handled after the worker had seen the %s", (unsigned long long)after,
                s.by_close ? "close" : "cancel");
    if (s.sent != handled + left)
        wl_fail(r, "jobs lost: sent %llu != handled %llu + left in the channel %llu", (unsigned long long)s.sent,
                (unsigned long long)handled, (unsigned long long)left);
    else if (s.sent_sum != atomic_load(&s.handled_sum) + left_sum)
        wl_fail(r, "checksum: sent %016llx != handled + left %016llx", (unsigned long long)s.sent_sum,
                (unsigned long long)(atomic_load(&s.handled_sum) + left_sum));
    if (s.by_close && left)
        wl_fail(r, "%llu jobs sent before the close were never handled", (unsigned long long)left);
    wl_check_items(r, s.sent, "sent %llu jobs, asked for %lld");
    wl_metric(r, M_LATE, (double)atomic_load(&s.late));
    r->ops = handled;
    ret = 0;
out:
    cp_chan_free(s.in);
    cp_ctx_free(s.ctx);
    cp_ctx_free(s.reap);
    cp_wg_free(s.wg);
    return ret;
}

static const char *selectloop_check(const wl_cfg *c)
{
    return c->set[P_STOP] > 1 ? "--set stop must be 0 (cancel the ctx) or 1 (close the input)" : NULL;
}

WL_DEFINE(selectloop) = {
    .name = "selectloop",
    .group = "flows",
    .desc = "W for-select workers on one input, stopped by ctx cancel or by closing the input",
    .op = "job handled",
    .latency = "producer send start -> handling starts",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 16,
                  .payload = WL_UNUSED, .work_ns = 0, .items = 100000 },
    .params = selectloop_params,
    .run = selectloop_run,
    .check = selectloop_check,
    .seed_key = "flows_selectloop",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "stop_to_exit_ns", "ns", "the stop (cancel or close) -> every worker returned" },
        { "late", "count", "jobs handled after the stop was issued, before the worker's select saw it" },
        { NULL, NULL, NULL },
    },
};
