/*
 * heartbeat_time: W workers (--threads) each emit a heartbeat on a ticker
 * (--set period_us) while they work; an observer receives every worker's
 * beats and results and checks the period. The ticker heartbeat of seed 000
 * (scale_heartbeat_time: "Simple heartbeat mechanism using time.Ticker"),
 * in the shape of Concurrency in Go's doWork(done, pulseInterval): the worker
 * loops on a select over done, the ticker (a tick sends a pulse without
 * blocking: `select { case heartbeat <- struct{}{}: default: }`, so a beat
 * nobody takes is dropped, never queued) and the send of its current result;
 * the heartbeat channel has capacity 1. A unit of work is --work-ns of busy
 * work followed by the send of its result; --set cancel_after_ms=T cancels
 * the workers' ctx mid-run.
 *
 * One op: a unit's result received by the observer. Latency: a heartbeat's
 * tick (the ticker's fire time) -> the observer receiving that beat (one
 * sample per beat, not per op: how stale a beat is when it is seen).
 *
 * Metrics (each repetition; timing on this machine is noisy, so these are
 * figures, never pass/fail): jitter_p50_ns and jitter_p99_ns, |interval -
 * period| over consecutive beats of one worker as the observer receives
 * them; missed_beats, the periods without a beat (an interval of k periods
 * misses k - 1); beats received; dropped, the ticks a worker could not turn
 * into a beat (its heartbeat channel still full).
 *
 * Invariants, checked on every run:
 *   - results: each worker's results arrive once each and in order (unit
 *     seq 0, 1, 2, ... per worker), their count is the units done (count
 *     mode: exactly --items without cancellation);
 *   - beats: each worker's beat seq strictly increases at the observer (no
 *     duplicate, no reorder); beats sent == received + left in the channel
 *     at the end, and ticks taken == beats sent + dropped;
 *   - never faster than the ticker: a worker takes at most one tick per
 *     period elapsed since its ticker started (+1), as ticks are never early;
 *   - cancellation observed promptly: every thread has exited within 1 s of
 *     the cancel (else the run fails, naming the time);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_PERIOD_US, P_CANCEL_AFTER_MS, P_COUNT };
static const wl_param heartbeat_time_params[] = {
    [P_PERIOD_US] = { "period_us", 1000, "heartbeat period (the ticker's), us", 2000 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the workers' ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(heartbeat_time_params, P_COUNT);

struct beat { uint32_t worker; uint32_t _pad; uint64_t seq, tick; };
struct result { uint32_t worker; uint32_t _pad; uint64_t seq; };

struct hb;
struct hb_worker {
    struct hb *h;
    uint32_t id;
    uint64_t units;             /* count mode: this worker's share */
    cp_chan *beats;             /* capacity 1, closed by the worker at its end */
    cp_timer *ticker;
    /* published at the worker's end */
    uint64_t done, ticks, sent, dropped, abandoned, too_fast, t_start, t_stop;
};

struct hb {
    wl_run *r;
    int workers;
    uint64_t period;
    cp_chan *results;
    cp_ctx *ctx;                /* NULL unless cancellation is asked for */
    struct hb_worker *w;
    wl_group live;              /* workers still running; the last closes results */
    /* observer-only */
    uint64_t *next_result, *last_beat_seq, *last_beat_at;
    uint64_t got_results, got_beats, bad_order, bad_beat, missed, first_bad[3];
    cp_hist *jitter;
};

static void *worker(wl_thread *self, void *arg)
{
    struct hb_worker *w = arg;
    struct hb *h = w->h;
    wl_run *r = h->r;
    const int64_t work = r->cfg->k.work_ns;
    uint64_t tick, seq = 0, bseq = 0;
    struct result res = { .worker = w->id };
    cp_case cs[2] = { { .op = CP_RECV, .ch = cp_timer_chan(w->ticker), .elem = &tick },
                      { .op = CP_SEND, .ch = h->results, .elem = &res } };
    /* the ticker runs from here: reset it on the start gate's side */
    w->t_start = cp_now_ns();
    cp_timer_reset(w->ticker, h->period);
    for (; wl_more(r, seq, w->units); seq++) {
        wl_phase(self, "work");
        if (work) wl_work(work);
        res.seq = seq;
        cp_status st;
        int i;
        wl_phase(self, "select tick/result");
        while ((i = cp_select(cs, 2, h->ctx, &st)) == 0) {
            w->ticks++;
            struct beat b = { .worker = w->id, .seq = bseq, .tick = tick };
            if (cp_chan_try_send(w->beats, &b) == CP_OK) w->sent++, bseq++;
            else w->dropped++;      /* nobody took the last one: drop, never queue */
        }
        if (i < 0) {                /* cancelled with a result in hand */
            w->abandoned++;
            break;
        }
        w->done++;
    }
    w->t_stop = cp_now_ns();
    cp_timer_stop(w->ticker);
    /* ticks are never early: at most one per whole period since the reset */
    if (w->ticks > (w->t_stop - w->t_start) / h->period + 1) w->too_fast = w->ticks;
    self->ops = w->done;
    wl_phase(self, "close");
    cp_chan_close(w->beats);
    if (wl_group_leave(&h->live)) cp_chan_close(h->results);
    wl_phase(self, "done");
    return NULL;
}

static void on_beat(wl_thread *self, struct hb *h, const struct beat *b)
{
    uint64_t now = cp_now_ns();
    uint32_t w = b->worker;
    h->got_beats++;
    cp_hist_record(self->hist, wl_diff(now, b->tick));
    if (h->last_beat_at[w]) {
        if (b->seq <= h->last_beat_seq[w] && !h->bad_beat++) h->first_bad[1] = b->seq;
        uint64_t gap = wl_diff(now, h->last_beat_at[w]);
        cp_hist_record(h->jitter, gap > h->period ? gap - h->period : h->period - gap);
        uint64_t k = (gap + h->period / 2) / h->period;     /* periods this interval spans */
        if (k > 1) h->missed += k - 1;
    }
    h->last_beat_seq[w] = b->seq;
    h->last_beat_at[w] = now;
}

static void *observer(wl_thread *self, void *arg)
{
    struct hb *h = arg;
    int n = h->workers + 1;
    cp_case *cs = calloc((size_t)n, sizeof *cs);
    struct beat b;
    struct result res;
    if (!cs) return NULL;       /* the counts then fail the run */
    for (int i = 0; i < h->workers; i++) cs[i] = (cp_case){ .op = CP_RECV, .ch = h->w[i].beats, .elem = &b };
    cs[h->workers] = (cp_case){ .op = CP_RECV, .ch = h->results, .elem = &res };
    wl_phase(self, "observe");
    /* no ctx: drain every beat and result until each channel is closed */
    while (n > 0) {
        cp_status st;
        int i = cp_select(cs, (size_t)n, NULL, &st);
        if (i < 0) break;
        if (st == CP_CLOSED) {
            cs[i] = cs[--n];    /* that channel is done: stop selecting on it */
            continue;
        }
        if (cs[i].ch != h->results) {
            on_beat(self, h, &b);
            continue;
        }
        if (res.worker >= (uint32_t)h->workers || res.seq != h->next_result[res.worker]) {
            if (!h->bad_order++) h->first_bad[0] = res.seq;
        } else {
            h->next_result[res.worker]++;
        }
        h->got_results++;
    }
    free(cs);
    self->ops = h->got_results;
    wl_phase(self, "done");
    return NULL;
}

static int hb_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct hb h = {
        .r = r,
        .workers = (int)c->k.threads,
        .period = (uint64_t)c->set[P_PERIOD_US] * 1000u,
    };
    const int W = h.workers;
    int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    int rc = 0;
    wl_group_init(&h.live, W);
    h.w = calloc((size_t)W, sizeof *h.w);
    h.next_result = calloc((size_t)W, sizeof *h.next_result);
    h.last_beat_seq = calloc((size_t)W, sizeof *h.last_beat_seq);
    h.last_beat_at = calloc((size_t)W, sizeof *h.last_beat_at);
    h.jitter = cp_hist_new(3, 3600ull * 1000000000ull);
    h.results = cp_chan_new(c->b, sizeof(struct result), (size_t)c->k.capacity);
    if (cancel_ms > 0) h.ctx = cp_ctx_with_cancel(c->b, NULL);
    int ok = h.w && h.next_result && h.last_beat_seq && h.last_beat_at && h.jitter && h.results &&
             (cancel_ms <= 0 || h.ctx);
    for (int i = 0; ok && i < W; i++) {
        struct hb_worker *w = &h.w[i];
        w->h = &h;
        w->id = (uint32_t)i;
        w->units = wl_share((uint64_t)c->k.items, W, i);
        w->beats = cp_chan_new(c->b, sizeof(struct beat), 1);
        w->ticker = cp_ticker_new(c->b, h.period);
        ok = w->beats && w->ticker;
        if (ok) cp_timer_stop(w->ticker);     /* armed for real by its worker */
    }
    if (!ok) {
        rc = -1;
        goto out;
    }
    wl_watch(r, "results", h.results);
    if (W > 0) wl_watch(r, "beats[0]", h.w[0].beats);

    wl_spawn(r, "observer", observer, &h);
    for (int i = 0; i < W; i++) wl_spawn(r, "worker", worker, &h.w[i]);
    uint64_t cancelled_at = wl_start_cancel_join(r, h.ctx, cancel_ms);

    uint64_t done = 0, ticks = 0, sent = 0, dropped = 0, abandoned = 0, left = 0;
    for (int i = 0; i < W; i++) {
        struct hb_worker *w = &h.w[i];
        struct beat b;
        left += wl_drain(w->beats, &b);
        done += w->done, ticks += w->ticks, sent += w->sent, dropped += w->dropped, abandoned += w->abandoned;
        if (w->too_fast)
            wl_fail(r, "worker %d took %llu ticks in %.3f ms: faster than one per period of %llu us", i,
                    (unsigned long long)w->too_fast, (double)(w->t_stop - w->t_start) / 1e6,
                    (unsigned long long)(h.period / 1000));
    }
    if (h.bad_order)
        wl_fail(r, "%llu results out of order or duplicated (first: seq %llu)", (unsigned long long)h.bad_order,
                (unsigned long long)h.first_bad[0]);
    if (h.got_results != done)
        wl_fail(r, "results lost: workers sent %llu, observer got %llu", (unsigned long long)done,
                (unsigned long long)h.got_results);
    if (!h.ctx && c->duration <= 0 && done != (uint64_t)c->k.items)
        wl_fail(r, "%llu units done, expected %lld", (unsigned long long)done, (long long)c->k.items);
    if (!h.ctx && abandoned) wl_fail(r, "no cancellation, yet %llu results abandoned", (unsigned long long)abandoned);
    if (h.bad_beat)
        wl_fail(r, "%llu beats duplicated or out of order (first: seq %llu)", (unsigned long long)h.bad_beat,
                (unsigned long long)h.first_bad[1]);
    if (sent != h.got_beats + left)
        wl_fail(r, "beats lost: sent %llu != received %llu + left %llu", (unsigned long long)sent,
                (unsigned long long)h.got_beats, (unsigned long long)left);
    if (ticks != sent + dropped)
        wl_fail(r, "ticks %llu != beats sent %llu + dropped %llu", (unsigned long long)ticks,
                (unsigned long long)sent, (unsigned long long)dropped);
    wl_check_cancel_stop(r, cancelled_at);

    if (cp_hist_count(h.jitter)) {
        wl_metric(r, 0, (double)cp_hist_percentile(h.jitter, 50));
        wl_metric(r, 1, (double)cp_hist_percentile(h.jitter, 99));
        wl_metric(r, 2, (double)h.missed);
    }
    wl_metric(r, 3, (double)h.got_beats);
    wl_metric(r, 4, (double)dropped);
    r->ops = h.got_results;
out:
    for (int i = 0; h.w && i < W; i++) {
        cp_timer_free(h.w[i].ticker);
        cp_chan_free(h.w[i].beats);
    }
    free(h.w);
    free(h.next_result);
    free(h.last_beat_seq);
    free(h.last_beat_at);
    if (h.jitter) cp_hist_free(h.jitter);
    cp_chan_free(h.results);
    cp_ctx_free(h.ctx);
    return rc;
}

static const char *hb_check(const wl_cfg *c)
{
    return c->set[P_PERIOD_US] < 1 ? "--set period_us (the heartbeat period) must be >= 1" : NULL;
}

WL_DEFINE(heartbeat_time) = {
    .name = "heartbeat_time",
    .seed_key = "scale_heartbeat_time",
    .group = "scale",
    .desc = "W workers beat on a ticker (non-blocking pulse) while they send results; an observer checks the period",
    .op = "result received",
    .latency = "tick fired -> beat received (per beat)",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 0,
                  .payload = WL_UNUSED, .work_ns = 10000, .items = 20000 },
    .params = heartbeat_time_params,
    .metrics = (const wl_metric_def[]){
        { "jitter_p50_ns", "ns", "|beat interval - period| at the observer, median" },
        { "jitter_p99_ns", "ns", "|beat interval - period| at the observer, 99th percentile" },
        { "missed_beats", "count", "periods without a beat at the observer" },
        { "beats", "count", "beats received" },
        { "dropped", "count", "ticks not turned into a beat (heartbeat channel full)" },
        { NULL, NULL, NULL },
    },
    .run = hb_run,
    .check = hb_check,
};
