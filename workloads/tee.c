/*
 * tee: one stream duplicated to two outputs, as the tee channel of the
 * seeds (flows_tee): for each item v taken from the input (a select with
 * <-ctx.Done()), the tee goroutine sends v to both outputs in whichever
 * order they become ready (a select over the two sends and <-ctx.Done(),
 * twice, dropping the output that took it), and closes both outputs when
 * it leaves. It takes the next item only when both have this one, so the
 * slower reader paces both.
 *
 * Threads: a producer (its sends select with the ctx's done; it closes the
 * input after --items items or at the end of --duration), the tee, and two
 * readers ranging over their outputs. Reader 2 is the slow one: it does
 * --work-ns of work per item. --capacity is that of the input and of both
 * outputs (default 0, as the seed's). --set stop_at=K: reader 2 leaves after
 * K items: it waits (at most 1 s) until the tee offers it the next item --
 * the moment at which a tee whose sends have no ctx case is stuck for good
 * -- cancels the ctx, and waits for the others to return.
 *
 * One op: an item delivered to both outputs. Latency: per output, the
 * producer's send start -> that reader's receive (each reader records its
 * own; the table merges them). Metrics: out1_p50_ns / out2_p50_ns, the
 * median latency of each output; skew_max, the largest lead in items one
 * reader had over the other; stop_to_exit_ns, reader 2's cancel -> the
 * producer, the tee and reader 1 returned (with stop_at).
 *
 * Variants: default; seed: the tee's inner select without the
 * `case <-ctx.Done()`: when one reader stops, the tee blocks forever
 * offering it an item, and the other reader waits forever for a close. The
 * run fails with "leaked N threads" after 1 s, then releases them (the
 * tee's select also watches an internal ctx that only the harness cancels).
 *
 * Invariants, checked on every run:
 *   - each reader receives exactly 0, 1, 2, ... in order (nothing lost,
 *     duplicated or reordered);
 *   - pacing: when a reader receives item s, the other has received at
 *     least s - capacity - 1 (the tee had delivered s items to it, at most
 *     capacity of which wait in its buffer, one in its hands uncounted);
 *   - accounting: sent = taken by the tee + left in the input; per output,
 *     delivered = received + left in its buffer, and taken - 1 <= delivered
 *     <= taken (only the item in hand at a cancel may miss an output); with
 *     no stop every item reaches both (count mode: exactly --items);
 *   - both outputs are closed at the end;
 *   - after reader 2's stop, every other thread returns within 1 s (else
 *     FAIL, naming how many leaked);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>

enum { P_STOP_AT, P_COUNT };
enum { M_OUT1_P50, M_OUT2_P50, M_SKEW_MAX, M_STOP_TO_EXIT };
static const wl_param tee_params[] = {
    [P_STOP_AT] = { "stop_at", 0, "reader 2 leaves after K items and cancels the ctx (the seed variant leaks only then); 0: it reads to the end", 3000 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(tee_params, P_COUNT);


struct item { uint64_t seq, ts; };

struct tee_state {
    wl_run *r;
    int seed;
    int64_t cap;
    cp_chan *in, *out[2];
    cp_ctx *ctx;                    /* the pattern's: cancelled by reader 2 when it leaves */
    cp_ctx *reap;                   /* internal: cancelled only to release leaked threads */
    cp_wg *others;                  /* producer, tee, reader 1: what reader 2 waits for */
    _Atomic int live_others;
    _Atomic uint64_t got[2];        /* items each reader has received */
    _Atomic uint64_t offered;       /* items the tee has taken and begun to offer */
    _Atomic int tee_done;
    _Atomic int64_t skew_max;
    _Atomic uint64_t errors;
    _Atomic(const char *) first_error;
    _Atomic uint64_t err_a, err_b;
    uint64_t sent;                  /* the producer's */
    uint64_t taken, delivered[2];   /* the tee's */
    int stopped;                    /* reader 2 left early */
};

static void note_error(struct tee_state *s, const char *what, uint64_t a, uint64_t b)
{
    const char *none = NULL;
    if (atomic_compare_exchange_strong(&s->first_error, &none, what)) {
        atomic_store(&s->err_a, a);
        atomic_store(&s->err_b, b);
    }
    atomic_fetch_add(&s->errors, 1);
}

static void other_exit(struct tee_state *s)
{
    atomic_fetch_sub(&s->live_others, 1);
    cp_wg_done(s->others);
}

static void *producer(wl_thread *self, void *arg)
{
    struct tee_state *s = arg;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    int64_t until_sample = 0;
    struct item it;
    cp_case cs[2] = { { .op = CP_SEND, .ch = s->in, .elem = &it }, { .op = CP_WAIT, .ev = cp_ctx_done(s->ctx) } };
    uint64_t seq = 0;
    wl_phase(self, "send");
    for (; wl_more(r, seq, n); seq++) {
        it.seq = seq;
        it.ts = 0;
        if (wl_sample(sample, &until_sample)) {
            it.ts = wl_now();
        }
        cp_status st;
        if (cp_select(cs, 2, NULL, &st) != 0) break;   /* <-ctx.Done() */
        if (st != CP_OK) {
            note_error(s, "producer's send failed (status, seq)", (uint64_t)st, seq);
            break;
        }
    }
    s->sent = seq;
    self->ops = seq;
    cp_chan_close(s->in);
    wl_phase(self, "done");
    other_exit(s);
    return NULL;
}

static void *tee(wl_thread *self, void *arg)
{
    struct tee_state *s = arg;
    struct item v;
    cp_event *done = cp_ctx_done(s->ctx);
    cp_case rx[2] = { { .op = CP_RECV, .ch = s->in, .elem = &v }, { .op = CP_WAIT, .ev = done } };
    cp_case tx[3];
    int which[2];
    for (;;) {
        cp_status st;
        wl_phase(self, "recv");
        int i = cp_select(rx, 2, NULL, &st);
        if (i != 0 || st == CP_CLOSED) break;
        if (st != CP_OK) {
            note_error(s, "tee's receive failed (status, taken)", (uint64_t)st, s->taken);
            break;
        }
        s->taken++;
        atomic_fetch_add(&s->offered, 1);
        /* out1, out2 := out1, out2; two rounds of select, a sent output set to nil */
        int m = 0;
        for (int j = 0; j < 2; j++) {
            tx[m] = (cp_case){ .op = CP_SEND, .ch = s->out[j], .elem = &v };
            which[m++] = j;
        }
        wl_phase(self, "send both");
        for (int round = 0; round < 2; round++) {
            size_t nc = (size_t)m;
            if (!s->seed) tx[nc++] = (cp_case){ .op = CP_WAIT, .ev = done };
            i = cp_select(tx, nc, s->seed ? s->reap : NULL, &st);
            if (i < 0 || i >= m) goto out;      /* ctx done (seed: reaped) with v in hand */
            if (st != CP_OK) {
                note_error(s, "tee's send failed (status, seq)", (uint64_t)st, v.seq);
                goto out;
            }
            s->delivered[which[i]]++;
            tx[i] = tx[m - 1];                  /* drop the output that took it */
            which[i] = which[m - 1];
            m--;
        }
    }
out:
    cp_chan_close(s->out[0]);
    cp_chan_close(s->out[1]);
    atomic_store(&s->tee_done, 1);
    self->ops = s->taken;
    wl_phase(self, "done");
    other_exit(s);
    return NULL;
}

/* Reader 2 leaves: once the tee offers it an item, cancel, wait for the rest. */
static void leave(wl_thread *self, struct tee_state *s, uint64_t got)
{
    wl_run *r = s->r;
    wl_phase(self, "stop");
    s->stopped = 1;
    for (uint64_t t0 = wl_now(); atomic_load(&s->offered) <= got && !atomic_load(&s->tee_done);) {
        if (wl_since(t0) > WL_BOUND_NS) break;
        wl_sleep_ns(20000);
    }
    uint64_t t_stop = wl_now();
    cp_ctx_cancel(s->ctx);
    cp_ctx *bound = cp_ctx_with_timeout(r->cfg->b, NULL, WL_BOUND_NS);
    cp_status st = bound ? cp_wg_wait(s->others, bound) : CP_ENOMEM;
    uint64_t dt = wl_since(t_stop);
    cp_ctx_free(bound);
    if (st == CP_OK) {
        wl_metric(r, M_STOP_TO_EXIT, (double)dt);
        return;
    }
    int leaked = atomic_load(&s->live_others);
    wl_fail(r, "leaked %d thread%s: still running %.3f s after reader 2 stopped (the tee %s)", leaked,
            leaked == 1 ? "" : "s", (double)dt / 1e9,
            atomic_load(&s->tee_done) ? "returned" : "is blocked offering an item to the reader that left");
    cp_ctx_cancel(s->reap);                     /* release them, so that they can be joined */
    cp_wg_wait(s->others, NULL);
}

struct reader_arg { struct tee_state *s; int j; };

static void *reader(wl_thread *self, void *arg)
{
    struct reader_arg *a = arg;
    struct tee_state *s = a->s;
    const int j = a->j;
    const int64_t work = j == 1 ? s->r->cfg->k.work_ns : 0;
    const uint64_t stop_at = j == 1 ? (uint64_t)s->r->cfg->set[P_STOP_AT] : 0;
    uint64_t expect = 0;
    int64_t skew = 0;
    struct item v;
    cp_status st = CP_OK;
    wl_phase(self, "recv");
    while (!(stop_at && expect == stop_at) && (st = cp_chan_recv(s->out[j], &v, NULL)) == CP_OK) {
        atomic_store_explicit(&s->got[j], expect + 1, memory_order_release);
        if (v.ts) cp_hist_record(self->hist, wl_since(v.ts));
        if (v.seq != expect) note_error(s, "a reader got an item out of sequence (got, expected)", v.seq, expect);
        /* the tee delivered items 0..seq-1 to the other output before taking this one */
        int64_t lead = (int64_t)v.seq - (int64_t)atomic_load_explicit(&s->got[1 - j], memory_order_acquire);
        if (lead > s->cap + 1) note_error(s, "pacing: a reader ran ahead of the other by (items, capacity)",
                                          (uint64_t)lead, (uint64_t)s->cap);
        if (lead > skew) skew = lead;
        expect++;
        if (work) wl_work(work);
    }
    self->ops = expect;
    wl_max_store_i(&s->skew_max, skew);
    if (stop_at && expect == stop_at) leave(self, s, expect);
    else if (st != CP_CLOSED) note_error(s, "a reader's receive failed (status, reader)", (uint64_t)st, (uint64_t)j);
    wl_phase(self, "done");
    if (j == 0) other_exit(s);
    return NULL;
}

static int tee_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct tee_state s = { .r = r, .seed = c->variant == 1, .cap = c->k.capacity };
    int ret = -1;
    atomic_init(&s.live_others, 3);
    s.in = cp_chan_new(c->b, sizeof(struct item), (size_t)s.cap);
    s.out[0] = cp_chan_new(c->b, sizeof(struct item), (size_t)s.cap);
    s.out[1] = cp_chan_new(c->b, sizeof(struct item), (size_t)s.cap);
    s.ctx = cp_ctx_with_cancel(c->b, NULL);
    s.reap = cp_ctx_with_cancel(c->b, NULL);
    s.others = cp_wg_new(c->b);
    if (!s.in || !s.out[0] || !s.out[1] || !s.ctx || !s.reap || !s.others) goto out;
    wl_watch(r, "in", s.in);
    wl_watch(r, "out1", s.out[0]);
    wl_watch(r, "out2", s.out[1]);
    cp_wg_add(s.others, 3);

    struct reader_arg ra[2] = { { &s, 0 }, { &s, 1 } };
    int rd[2];
    rd[0] = wl_spawn(r, "reader1", reader, &ra[0]);
    rd[1] = wl_spawn(r, "reader2", reader, &ra[1]);
    wl_spawn(r, "tee", tee, &s);
    wl_spawn(r, "producer", producer, &s);
    wl_start_and_join(r);

    uint64_t left_in = 0, left_out[2] = { 0, 0 }, got[2] = { atomic_load(&s.got[0]), atomic_load(&s.got[1]) };
    struct item v;
    left_in = wl_drain(s.in, &v);
    int unclosed = 0;
    for (int j = 0; j < 2; j++) {
        cp_status st;
        while ((st = cp_chan_try_recv(s.out[j], &v)) == CP_OK) left_out[j]++;
        if (st != CP_CLOSED) unclosed++;
    }
    if (atomic_load(&s.errors))
        wl_fail(r, "%s: %llu, %llu (%llu errors)", atomic_load(&s.first_error),
                (unsigned long long)atomic_load(&s.err_a), (unsigned long long)atomic_load(&s.err_b),
                (unsigned long long)atomic_load(&s.errors));
    if (s.sent != s.taken + left_in)
        wl_fail(r, "items lost upstream: sent %llu != taken by the tee %llu + left in the input %llu",
                (unsigned long long)s.sent, (unsigned long long)s.taken, (unsigned long long)left_in);
    for (int j = 0; j < 2; j++) {
        if (s.delivered[j] != got[j] + left_out[j])
            wl_fail(r, "output %d: the tee delivered %llu items, reader got %llu + %llu left in its buffer", j + 1,
                    (unsigned long long)s.delivered[j], (unsigned long long)got[j],
                    (unsigned long long)left_out[j]);
        if (s.delivered[j] > s.taken || s.delivered[j] + 1 < s.taken)
            wl_fail(r, "output %d: delivered %llu of %llu items taken (at most the one in hand may miss it)",
                    j + 1, (unsigned long long)s.delivered[j], (unsigned long long)s.taken);
        if (!s.stopped && (s.delivered[j] != s.taken || left_in))
            wl_fail(r, "no stop, yet output %d got %llu of %llu items taken (%llu left in the input)", j + 1,
                    (unsigned long long)s.delivered[j], (unsigned long long)s.taken,
                    (unsigned long long)left_in);
    }
    if (!s.stopped && c->duration <= 0 && (got[0] != (uint64_t)c->k.items || got[1] != (uint64_t)c->k.items))
        wl_fail(r, "readers got %llu and %llu items, expected %lld each", (unsigned long long)got[0],
                (unsigned long long)got[1], (long long)c->k.items);
    if (unclosed) wl_fail(r, "%d output(s) left open by the tee", unclosed);

    for (int j = 0; j < 2; j++) {
        cp_hist *h = r->thr[rd[j]].hist;
        if (cp_hist_count(h)) wl_metric(r, j ? M_OUT2_P50 : M_OUT1_P50, (double)cp_hist_percentile(h, 50.0));
    }
    wl_metric(r, M_SKEW_MAX, (double)atomic_load(&s.skew_max));
    r->ops = got[0] < got[1] ? got[0] : got[1];
    ret = 0;
out:
    cp_chan_free(s.in);
    cp_chan_free(s.out[0]);
    cp_chan_free(s.out[1]);
    cp_ctx_free(s.ctx);
    cp_ctx_free(s.reap);
    cp_wg_free(s.others);
    return ret;
}

WL_DEFINE(tee) = {
    .name = "tee",
    .group = "flows",
    .desc = "producer -> tee -> two readers, every item to both; the slower reader paces both",
    .op = "item delivered to both outputs",
    .latency = "producer send start -> each reader's receive (per output)",
    .defaults = { .threads = WL_UNUSED, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 0,
                  .payload = WL_UNUSED, .work_ns = 0, .items = 20000 },
    .params = tee_params,
    .run = tee_run,
    .seed_key = "flows_tee",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "out1_p50_ns", "ns", "median latency to output 1 (the fast reader)" },
        { "out2_p50_ns", "ns", "median latency to output 2 (the slow reader, --work-ns)" },
        { "skew_max", "count", "the largest lead in items one reader had over the other" },
        { "stop_to_exit_ns", "ns", "reader 2's cancel -> producer, tee and reader 1 returned (stop_at)" },
        { NULL, NULL, NULL },
    },
};
