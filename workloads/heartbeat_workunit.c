/*
 * heartbeat_workunit: W workers (--threads) each beat once at the start of
 * every unit of work, then do the unit (--work-ns) and send its result; an
 * observer receives beats and results and checks that it saw every unit's
 * beat before that unit's result. The work-unit heartbeat of seed 000
 * (scale_heartbeat_workunit: "Heartbeat mechanism driven by work-unit
 * progress"), in the shape of Concurrency in Go's doWork: a heartbeat
 * channel per worker (capacity --capacity, Go's 1), an unbuffered results
 * channel. --set drop=1 beats as Go's version does, `select { case
 * heartbeat <- struct{}{}: default: }`, so that a worker nobody listens to
 * never blocks, and a beat the channel cannot take is dropped (counted);
 * drop=0 (the default) sends the beat with the ctx, so none is lost.
 * --set cancel_after_ms=T cancels the workers' ctx mid-run.
 *
 * One op: a unit's result received by the observer. Latency: the unit's beat
 * (sent at its start) -> its result received.
 *
 * Metrics (each repetition): beats received; dropped, the beats a full
 * channel refused (drop=1 only).
 *
 * Invariants, checked on every run:
 *   - every unit's beat before its result: when the observer takes unit u's
 *     result it first takes what is in that worker's heartbeat channel, and
 *     then must have seen beat u (beats come in order and a beat is sent
 *     before its unit's result); with drop=1, for every beat not dropped;
 *   - beats in order: each worker's beat seqs strictly increase (drop=0:
 *     0, 1, 2, ... with no gap); beats sent == received + left in the
 *     channel at the end; beats sent + dropped + abandoned (cancelled) ==
 *     units started;
 *   - results: each worker's units once each and in order; results
 *     received == units done (count mode: exactly --items without
 *     cancellation);
 *   - cancellation observed promptly: every thread has exited within 1 s of
 *     the cancel (else the run fails, naming the time);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_DROP, P_CANCEL_AFTER_MS, P_COUNT };
static const wl_param heartbeat_workunit_params[] = {
    [P_DROP] = { "drop", 0, "1: a beat the heartbeat channel cannot take is dropped (Go's select/default); 0: sent", 1 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the workers' ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(heartbeat_workunit_params, P_COUNT);

struct beat { uint32_t worker; uint32_t _pad; uint64_t seq; };
struct result { uint32_t worker; uint32_t beat_dropped; uint64_t seq, t_beat; };

struct wu;
struct wu_worker {
    struct wu *h;
    uint32_t id;
    uint64_t units;             /* count mode: this worker's share */
    cp_chan *beats;             /* closed by the worker at its end */
    /* published at the worker's end */
    uint64_t started, done, sent, dropped, beat_abandoned, result_abandoned;
};

struct wu {
    wl_run *r;
    int workers, drop;
    cp_chan *results;           /* unbuffered, closed by the last worker */
    cp_ctx *ctx;                /* NULL unless cancellation is asked for */
    struct wu_worker *w;
    wl_group live;
    /* observer-only */
    int64_t *last_beat;         /* per worker, -1 before the first */
    uint64_t *next_result;
    uint64_t got_beats, got_results, unseen, bad_beat, bad_order, first_bad[3];
};

static void *worker(wl_thread *self, void *arg)
{
    struct wu_worker *w = arg;
    struct wu *h = w->h;
    wl_run *r = h->r;
    const int64_t work = r->cfg->k.work_ns;
    uint64_t seq = 0;
    for (; wl_more(r, seq, w->units); seq++) {
        w->started++;
        struct beat b = { .worker = w->id, .seq = seq };
        struct result res = { .worker = w->id, .seq = seq, .t_beat = cp_now_ns() };
        wl_phase(self, "beat");
        if (h->drop) {
            if (cp_chan_try_send(w->beats, &b) == CP_OK) w->sent++;
            else w->dropped++, res.beat_dropped = 1;
        } else if (cp_chan_send(w->beats, &b, h->ctx) == CP_OK) {
            w->sent++;
        } else {
            w->beat_abandoned++;    /* cancelled */
            break;
        }
        wl_phase(self, "work");
        if (work) wl_work(work);
        wl_phase(self, "send result");
        if (cp_chan_send(h->results, &res, h->ctx) != CP_OK) {
            w->result_abandoned++;
            break;
        }
        w->done++;
    }
    self->ops = w->done;
    wl_phase(self, "close");
    cp_chan_close(w->beats);
    if (wl_group_leave(&h->live)) cp_chan_close(h->results);
    wl_phase(self, "done");
    return NULL;
}

static void on_beat(struct wu *h, const struct beat *b)
{
    int64_t last = h->last_beat[b->worker];
    int ok = h->drop ? (int64_t)b->seq > last : (int64_t)b->seq == last + 1;
    if (!ok && !h->bad_beat++) h->first_bad[1] = b->seq;
    h->last_beat[b->worker] = (int64_t)b->seq;
    h->got_beats++;
}

static void *observer(wl_thread *self, void *arg)
{
    struct wu *h = arg;
    int n = h->workers + 1;
    cp_case *cs = calloc((size_t)n, sizeof *cs);
    struct beat b;
    struct result res;
    if (!cs) return NULL;       /* the counts then fail the run */
    for (int i = 0; i < h->workers; i++) cs[i] = (cp_case){ .op = CP_RECV, .ch = h->w[i].beats, .elem = &b };
    cs[h->workers] = (cp_case){ .op = CP_RECV, .ch = h->results, .elem = &res };
    wl_phase(self, "observe");
    while (n > 0) {             /* no ctx: drain until every channel is closed */
        cp_status st;
        int i = cp_select(cs, (size_t)n, NULL, &st);
        if (i < 0) break;
        if (st == CP_CLOSED) {
            cs[i] = cs[--n];
            continue;
        }
        if (cs[i].ch != h->results) {
            on_beat(h, &b);
            continue;
        }
        h->got_results++;
        if (res.worker >= (uint32_t)h->workers) {
            if (!h->bad_order++) h->first_bad[0] = res.seq;
            continue;
        }
        /* the select may pick the result while its beat still waits in the
         * heartbeat channel (both ready: a random pick); take those first */
        struct beat pending;
        while (cp_chan_try_recv(h->w[res.worker].beats, &pending) == CP_OK) on_beat(h, &pending);
        if (!res.beat_dropped && h->last_beat[res.worker] < (int64_t)res.seq && !h->unseen++)
            h->first_bad[2] = res.seq;
        if (res.seq != h->next_result[res.worker]) {
            if (!h->bad_order++) h->first_bad[0] = res.seq;
        } else {
            h->next_result[res.worker]++;
        }
        cp_hist_record(self->hist, wl_diff(cp_now_ns(), res.t_beat));
    }
    free(cs);
    self->ops = h->got_results;
    wl_phase(self, "done");
    return NULL;
}

static int wu_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct wu h = { .r = r, .workers = (int)c->k.threads, .drop = c->set[P_DROP] != 0 };
    const int W = h.workers;
    int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    int rc = 0;
    wl_group_init(&h.live, W);
    h.w = calloc((size_t)W, sizeof *h.w);
    h.last_beat = malloc((size_t)W * sizeof *h.last_beat);
    h.next_result = calloc((size_t)W, sizeof *h.next_result);
    h.results = cp_chan_new(c->b, sizeof(struct result), 0);
    if (cancel_ms > 0) h.ctx = cp_ctx_with_cancel(c->b, NULL);
    int ok = h.w && h.last_beat && h.next_result && h.results && (cancel_ms <= 0 || h.ctx);
    for (int i = 0; ok && i < W; i++) {
        struct wu_worker *w = &h.w[i];
        w->h = &h;
        w->id = (uint32_t)i;
        w->units = wl_share((uint64_t)c->k.items, W, i);
        h.last_beat[i] = -1;
        ok = (w->beats = cp_chan_new(c->b, sizeof(struct beat), (size_t)c->k.capacity)) != NULL;
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

    uint64_t started = 0, done = 0, sent = 0, dropped = 0, babandoned = 0, rabandoned = 0, left = 0;
    for (int i = 0; i < W; i++) {
        struct wu_worker *w = &h.w[i];
        struct beat b;
        left += wl_drain(w->beats, &b);
        started += w->started, done += w->done, sent += w->sent, dropped += w->dropped;
        babandoned += w->beat_abandoned, rabandoned += w->result_abandoned;
    }
    if (h.unseen)
        wl_fail(r, "%llu results arrived before their unit's beat (first: unit %llu)", (unsigned long long)h.unseen,
                (unsigned long long)h.first_bad[2]);
    if (h.bad_beat)
        wl_fail(r, "%llu beats out of order, duplicated or missing (first: seq %llu)", (unsigned long long)h.bad_beat,
                (unsigned long long)h.first_bad[1]);
    if (h.bad_order)
        wl_fail(r, "%llu results out of order or duplicated (first: unit %llu)", (unsigned long long)h.bad_order,
                (unsigned long long)h.first_bad[0]);
    if (sent != h.got_beats + left)
        wl_fail(r, "beats lost: sent %llu != received %llu + left %llu", (unsigned long long)sent,
                (unsigned long long)h.got_beats, (unsigned long long)left);
    if (started != sent + dropped + babandoned)
        wl_fail(r, "units started %llu != beats sent %llu + dropped %llu + abandoned %llu",
                (unsigned long long)started, (unsigned long long)sent, (unsigned long long)dropped,
                (unsigned long long)babandoned);
    if (h.got_results != done)
        wl_fail(r, "results lost: workers sent %llu, observer got %llu", (unsigned long long)done,
                (unsigned long long)h.got_results);
    if (!h.ctx && (babandoned || rabandoned))
        wl_fail(r, "no cancellation, yet %llu beats and %llu results abandoned", (unsigned long long)babandoned,
                (unsigned long long)rabandoned);
    if (!h.ctx && c->duration <= 0 && done != (uint64_t)c->k.items)
        wl_fail(r, "%llu units done, expected %lld", (unsigned long long)done, (long long)c->k.items);
    wl_check_cancel_stop(r, cancelled_at);

    wl_metric(r, 0, (double)h.got_beats);
    wl_metric(r, 1, (double)dropped);
    r->ops = h.got_results;
out:
    for (int i = 0; h.w && i < W; i++) cp_chan_free(h.w[i].beats);
    free(h.w);
    free(h.last_beat);
    free(h.next_result);
    cp_chan_free(h.results);
    cp_ctx_free(h.ctx);
    return rc;
}

WL_DEFINE(heartbeat_workunit) = {
    .name = "heartbeat_workunit",
    .seed_key = "scale_heartbeat_workunit",
    .group = "scale",
    .desc = "W workers beat at the start of every unit, then send its result; the observer sees each beat first",
    .op = "result received",
    .latency = "unit's beat sent -> its result received",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 1,
                  .payload = WL_UNUSED, .work_ns = 1000, .items = 30000 },
    .params = heartbeat_workunit_params,
    .metrics = (const wl_metric_def[]){
        { "beats", "count", "beats received by the observer" },
        { "dropped", "count", "beats refused by a full heartbeat channel (drop=1)" },
        { NULL, NULL, NULL },
    },
    .run = wu_run,
};
