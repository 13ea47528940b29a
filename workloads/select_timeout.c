/*
 * select_timeout: P producers of variable speed send items on two channels,
 * high and low priority; one consumer drains them with a priority select:
 * first a non-blocking receive from high (drained first, always), else a
 * select over high and low that either has a timeout case (a cp_timer,
 * re-armed for each select: Go's `case <-time.After(d)`) or a default case
 * (non-blocking, Go's `default:`; the consumer then does idle_ns of other
 * work and comes back). The select patterns of seed 001 ("Select with
 * Timeout and Default": the timeout select, the non-blocking select and the
 * priority select); seed 000 has no key for it.
 *
 * Each producer sends its share of --items; an item goes to the high channel
 * with probability hi_pct %, else to the low one; after an item the producer
 * pauses pause_us with probability pause_pct % (cp_sleep: the slow phases
 * the timeouts are for). --set mode=0: every select has the timeout case,
 * 1: every select has a default case, 2: they alternate.
 * --set cancel_after_ms=T cancels one ctx that ends producers and consumer.
 *
 * One op: one item received (high or low). Latency: from the start of its
 * send to its receive (sampled 1 in --lat-sample).
 *
 * Invariants, checked on every run:
 *   - count and checksum per channel: received + left in the channel ==
 *     sent (left is 0 without a cancel), sum of wl_mix(tag) likewise;
 *   - per-producer FIFO on each channel;
 *   - priority: a high item that was in its channel when a low item was
 *     taken is received before the next low item (one low item may overtake
 *     a high one that arrived during the select, no more);
 *   - timeouts: the tick of a timeout case is never earlier than the
 *     deadline the select armed (never early, no stale tick from an earlier
 *     arming, as Go 1.23 promises after Stop/Reset);
 *   - cancellation: every thread has exited within 1 s of the cancel;
 *   - every thread joined.
 *
 * Metrics: timeouts (timeout cases taken), defaults (default cases taken),
 * beyond_p50_ns / beyond_p99_ns (time from the armed deadline to the
 * consumer's wake-up, when the timeout case fired), overtakes (low items
 * taken while a high item was already waiting: allowed, counted).
 *
 * Variants: `seed` is seed 001's priority loop as written:
 *   for { select { case msg := <-high: ... default: select { case msg :=
 *   <-high: ... case msg := <-low: ... } } }
 * It receives without `, ok` and has no exit: once the producers close the
 * channels, every receive returns at once with a zero value, and the loop
 * spins on phantom messages forever (no timeout, no ctx either). Here the
 * phantoms are counted; after 10000 of them the consumer gives up and the
 * run fails, naming the count.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_MODE, P_TIMEOUT_US, P_HI_PCT, P_PAUSE_PCT, P_PAUSE_US, P_IDLE_NS, P_CANCEL_AFTER_MS, P_COUNT };
enum { M_TIMEOUTS, M_DEFAULTS, M_BEYOND_P50, M_BEYOND_P99, M_OVERTAKES };
enum { HI, LO };
static const wl_param select_timeout_params[] = {
    [P_MODE] = { "mode", 2, "0: every select has a timeout case, 1: a default case, 2: alternate", 2 },
    [P_TIMEOUT_US] = { "timeout_us", 100, "the timeout case fires this long after the select starts", 300 },
    [P_HI_PCT] = { "hi_pct", 10, "percent of items sent on the high-priority channel", 100 },
    [P_PAUSE_PCT] = { "pause_pct", 1, "after an item, a producer pauses with this probability (%)", 2 },
    [P_PAUSE_US] = { "pause_us", 300, "the pause (slow phase) in us", 300 },
    [P_IDLE_NS] = { "idle_ns", 500, "after a default case, the consumer works this long before it looks again", 2000 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("producers and consumer"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(select_timeout_params, P_COUNT);

#define PHANTOM_LIMIT 10000

struct item { uint64_t tag, ts; };

struct st_state {
    wl_run *r;
    int producers, seed;
    cp_chan *ch[2];
    cp_ctx *ctx;                        /* NULL unless cancel_after_ms */
    wl_group live_producers;
    _Atomic uint64_t hi_sent_done;      /* high items whose send has returned */
    _Atomic uint64_t sent[2], sent_sum[2];
    uint64_t recv[2], recv_sum[2];      /* the consumer's, read after wl_join */
    uint64_t timeouts, defaults, overtakes, phantoms;
    cp_hist *beyond;
    wl_errors err;
};

static void *producer(wl_thread *self, void *arg)
{
    struct st_state *s = arg;
    wl_run *r = s->r;
    const wl_cfg *c = r->cfg;
    const int id = self->rank;
    const uint64_t n = wl_share((uint64_t)c->k.items, s->producers, id);
    const uint64_t hi_pct = (uint64_t)c->set[P_HI_PCT], pause_pct = (uint64_t)c->set[P_PAUSE_PCT];
    const uint64_t pause_ns = (uint64_t)c->set[P_PAUSE_US] * 1000u;
    const int64_t sample = c->lat_sample;
    int64_t until_sample = 0;
    uint64_t x = wl_mix(c->seed ^ (uint64_t)id) | 1, seq[2] = { 0, 0 }, sum[2] = { 0, 0 }, i;
    wl_phase(self, "send");
    for (i = 0; wl_more(r, i, n); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int which = x % 100 < hi_pct ? HI : LO;
        struct item it = { .tag = wl_tag((uint64_t)id, seq[which]) };
        if (wl_sample(sample, &until_sample)) {
            it.ts = wl_now();
        }
        if (cp_chan_send(s->ch[which], &it, s->ctx) != CP_OK) break;    /* cancelled */
        if (which == HI) atomic_fetch_add(&s->hi_sent_done, 1);
        seq[which]++;
        sum[which] += wl_mix(it.tag);
        if (pause_ns && (x >> 32) % 100 < pause_pct) {
            wl_phase(self, "pause");
            if (cp_sleep(pause_ns, s->ctx) != CP_OK) break;
            wl_phase(self, "send");
        }
    }
    for (int w = 0; w < 2; w++) {
        atomic_fetch_add(&s->sent[w], seq[w]);
        atomic_fetch_add(&s->sent_sum[w], sum[w]);
    }
    self->ops = i;
    wl_phase(self, "close");
    if (wl_group_leave(&s->live_producers)) {
        cp_chan_close(s->ch[HI]);
        cp_chan_close(s->ch[LO]);
    }
    wl_phase(self, "done");
    return NULL;
}

struct consumer_ctx {
    struct st_state *s;
    wl_thread *self;
    uint64_t *last[2];                  /* per producer, next expected seq */
    int hi_pending;                     /* a high item was waiting at the last low receive */
    uint64_t hi_recv_then;
};

/* One item taken from channel w (or a phantom, in the seed variant). */
static void take(struct consumer_ctx *k, int w, const struct item *it)
{
    struct st_state *s = k->s;
    if (it->ts) cp_hist_record(k->self->hist, wl_since(it->ts));
    uint64_t pid = wl_tag_src(it->tag), seq = wl_tag_seq(it->tag);
    if (pid >= (uint64_t)s->producers) wl_note(&s->err, "item from an unknown producer (producer, seq)", pid, seq);
    else if (seq != k->last[w][pid]) wl_note(&s->err, "per-producer FIFO broken (seq, expected)", seq, k->last[w][pid]);
    else k->last[w][pid] = seq + 1;
    s->recv[w]++;
    s->recv_sum[w] += wl_mix(it->tag);
    if (w == LO) {
        /* hi_sent_done counts sends that returned: such an item is in the
         * high channel (or was received), so the next round's non-blocking
         * receive from high must find it */
        if (k->hi_pending && s->recv[HI] == k->hi_recv_then)
            wl_note(&s->err, "priority broken: a high item waited across two low receives (high received, sent)",
                       s->recv[HI], atomic_load(&s->hi_sent_done));
        uint64_t h = atomic_load(&s->hi_sent_done);
        k->hi_pending = h > s->recv[HI];
        k->hi_recv_then = s->recv[HI];
        if (k->hi_pending) s->overtakes++;
    }
}

static void *consumer(wl_thread *self, void *arg)
{
    struct st_state *s = arg;
    const wl_cfg *c = s->r->cfg;
    const int mode = (int)c->set[P_MODE];
    const uint64_t timeout = (uint64_t)c->set[P_TIMEOUT_US] * 1000u;
    const int64_t idle = c->set[P_IDLE_NS];
    struct consumer_ctx k = { .s = s, .self = self };
    cp_chan *ch[2] = { s->ch[HI], s->ch[LO] };
    cp_timer *tm = cp_timer_new(c->b, timeout);
    k.last[HI] = calloc((size_t)s->producers, sizeof(uint64_t));
    k.last[LO] = calloc((size_t)s->producers, sizeof(uint64_t));
    if (!tm || !k.last[HI] || !k.last[LO]) {
        wl_note(&s->err, "out of memory (producers, 0)", (uint64_t)s->producers, 0);
        goto out;
    }
    cp_timer_stop(tm);
    struct item it, zero = { 0, 0 };
    uint64_t tick;
    for (uint64_t round = 0; ch[HI] || ch[LO]; round++) {
        /* priority: high first, without blocking */
        if (ch[HI]) {
            cp_status st = cp_chan_try_recv(ch[HI], &it);
            if (st == CP_OK) {
                take(&k, HI, &it);
                continue;
            }
            if (st == CP_CLOSED) {
                if (!s->seed) {
                    ch[HI] = NULL;
                    continue;
                }
                if (++s->phantoms >= PHANTOM_LIMIT) break;
                continue;               /* the seed's `msg := <-high` got a zero value */
            }
        }
        cp_case cs[3] = {
            { .op = CP_RECV, .ch = ch[HI], .elem = &it },
            { .op = CP_RECV, .ch = ch[LO], .elem = &it },
            { .op = CP_RECV, .ch = cp_timer_chan(tm), .elem = &tick },
        };
        cp_status st;
        int idx;
        if (s->seed) {
            /* no timeout, no ctx, no `ok`: a closed channel is a zero message */
            idx = cp_select(cs, 2, NULL, &st);
            if (st == CP_CLOSED) {
                it = zero;
                if (++s->phantoms >= PHANTOM_LIMIT) break;
                continue;
            }
        } else if (mode == 1 || (mode == 2 && (round & 1))) {
            wl_phase(self, "select default");
            idx = cp_try_select(cs, 2, &st);
            if (idx < 0) {
                s->defaults++;
                if (idle) wl_work(idle);
                if (cp_ctx_err(s->ctx) != CP_OK) break;
                continue;
            }
        } else {
            wl_phase(self, "select timeout");
            uint64_t deadline = cp_now_ns() + timeout;
            cp_timer_reset(tm, timeout);
            idx = cp_select(cs, 3, s->ctx, &st);
            if (idx == 2) {
                uint64_t now = cp_now_ns();
                if (tick < deadline) wl_note(&s->err, "timeout tick earlier than the armed deadline (ns early, timeout ns)",
                                                deadline - tick, timeout);
                cp_hist_record(s->beyond, now > deadline ? now - deadline : 0);
                s->timeouts++;
                continue;
            }
            cp_timer_stop(tm);
            if (idx < 0) break;         /* cancelled */
        }
        if (st == CP_CLOSED) {
            ch[idx] = NULL;
            continue;
        }
        take(&k, idx, &it);
    }
out:
    cp_timer_free(tm);
    free(k.last[HI]);
    free(k.last[LO]);
    self->ops = s->recv[HI] + s->recv[LO];
    wl_phase(self, "done");
    return NULL;
}

static int select_timeout_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct st_state s = { .r = r, .producers = (int)c->k.producers, .seed = c->variant == 1 };
    int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    wl_group_init(&s.live_producers, s.producers);
    s.ch[HI] = cp_chan_new(c->b, sizeof(struct item), (size_t)c->k.capacity);
    s.ch[LO] = cp_chan_new(c->b, sizeof(struct item), (size_t)c->k.capacity);
    s.beyond = cp_hist_new(2, 3600ull * 1000000000ull);
    if (cancel_ms > 0) s.ctx = cp_ctx_with_cancel(c->b, NULL);
    if (!s.ch[HI] || !s.ch[LO] || !s.beyond || (cancel_ms > 0 && !s.ctx)) {
        cp_chan_free(s.ch[HI]);
        cp_chan_free(s.ch[LO]);
        if (s.beyond) cp_hist_free(s.beyond);
        cp_ctx_free(s.ctx);
        return -1;
    }
    wl_watch(r, "high", s.ch[HI]);
    wl_watch(r, "low", s.ch[LO]);
    wl_spawn(r, "consumer", consumer, &s);
    wl_spawn_n(r, s.producers, "producer", producer, &s);
    uint64_t cancelled_at = wl_start_cancel_join(r, s.ctx, cancel_ms);

    uint64_t left[2] = { 0, 0 }, left_sum[2] = { 0, 0 };
    struct item it;
    for (int w = 0; w < 2; w++)
        while (cp_chan_try_recv(s.ch[w], &it) == CP_OK) {
            left[w]++;
            left_sum[w] += wl_mix(it.tag);
        }
    static const char *const wname[2] = { "high", "low" };
    wl_errors_fail(r, &s.err);
    if (s.phantoms)
        wl_fail(r, "the priority loop took %llu zero-value messages from closed channels (received without ok) and "
                   "has no exit: it would spin forever",
                (unsigned long long)s.phantoms);
    for (int w = 0; w < 2; w++) {
        uint64_t sent = atomic_load(&s.sent[w]);
        if (s.recv[w] + left[w] != sent)
            wl_fail(r, "%s channel: received %llu + left %llu != sent %llu", wname[w], (unsigned long long)s.recv[w],
                    (unsigned long long)left[w], (unsigned long long)sent);
        else if (s.recv_sum[w] + left_sum[w] != atomic_load(&s.sent_sum[w]))
            wl_fail(r, "%s channel: checksum of received + left != sent", wname[w]);
        if (!s.ctx && !s.phantoms && left[w])
            wl_fail(r, "%s channel: %llu items left without a cancel", wname[w], (unsigned long long)left[w]);
    }
    uint64_t total = atomic_load(&s.sent[HI]) + atomic_load(&s.sent[LO]);
    if (!s.ctx && c->duration <= 0 && total != (uint64_t)c->k.items)
        wl_fail(r, "sent %llu items, asked for %lld", (unsigned long long)total, (long long)c->k.items);
    wl_check_cancel_stop(r, cancelled_at);

    wl_metric(r, M_TIMEOUTS, (double)s.timeouts);
    wl_metric(r, M_DEFAULTS, (double)s.defaults);
    if (cp_hist_count(s.beyond)) {
        wl_metric(r, M_BEYOND_P50, (double)cp_hist_percentile(s.beyond, 50));
        wl_metric(r, M_BEYOND_P99, (double)cp_hist_percentile(s.beyond, 99));
    }
    wl_metric(r, M_OVERTAKES, (double)s.overtakes);
    r->ops = s.recv[HI] + s.recv[LO];
    cp_hist_free(s.beyond);
    cp_ctx_free(s.ctx);
    cp_chan_free(s.ch[HI]);
    cp_chan_free(s.ch[LO]);
    return 0;
}

static const char *select_timeout_check(const wl_cfg *c)
{
    if (c->set[P_MODE] > 2) return "--set mode must be 0 (timeout), 1 (default) or 2 (both)";
    if (c->set[P_TIMEOUT_US] < 1) return "--set timeout_us must be >= 1";
    if (c->set[P_HI_PCT] > 100) return "--set hi_pct must be 0..100";
    if (c->set[P_PAUSE_PCT] > 100) return "--set pause_pct must be 0..100";
    return NULL;
}

WL_DEFINE(select_timeout) = {
    .name = "select_timeout",
    .group = "flows",
    .desc = "priority select (high drained first) with a timeout case or a default case over bursty producers",
    .op = "item received",
    .latency = "send start -> receive",
    .defaults = { .threads = WL_UNUSED, .producers = 1, .consumers = WL_UNUSED, .capacity = 16,
                  .payload = WL_UNUSED, .work_ns = WL_UNUSED, .items = 20000 },
    .params = select_timeout_params,
    .run = select_timeout_run,
    .check = select_timeout_check,
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "timeouts", "count", "timeout cases taken" },
        { "defaults", "count", "default cases taken (nothing ready)" },
        { "beyond_p50_ns", "ns", "wake-up after the armed deadline, p50 (timeout cases)" },
        { "beyond_p99_ns", "ns", "wake-up after the armed deadline, p99 (timeout cases)" },
        { "overtakes", "count", "low items taken while a high item was already waiting (at most one each)" },
        { NULL, NULL, NULL },
    },
};
