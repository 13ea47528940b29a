/*
 * ordone: a consumer that stops early must not leak the upstream. The
 * or-done channel of the seed catalogue (flows_ordone): orDone(ctx, c) is a wrapper
 * goroutine that forwards c to an unbuffered output, every receive and send
 * a select with <-ctx.Done(), and closes the output when it leaves; the
 * consumer ranges over the output, and when it has had enough it cancels
 * the ctx and waits for everything upstream to be gone.
 *
 * Threads: --producers P generators (each its own sequence, sends selecting
 * with the ctx's done; --capacity is the upstream channel's), the wrapper,
 * the consumer. The upstream never ends by itself unless --set
 * src_items=M (then the producers send M items in all and the last one
 * closes the upstream, and the wrapper's close reaches the consumer).
 * The consumer takes --items items (or runs for --duration), then stops: it
 * waits (at most 1 s) until the wrapper holds an item it is trying to hand
 * over -- the moment at which a wrapper whose send has no ctx case is stuck
 * for good -- cancels the ctx, and waits for the upstream.
 *
 * One op: an item received by the consumer. Latency: producer's send start
 * -> consumer's receive (two hops). Metric: stop_to_joined_ns, the
 * consumer's cancel -> every upstream thread (producers, wrapper) has
 * returned (a WaitGroup wait, as Go's wg.Wait()).
 *
 * Variants: default; seed: the wrapper's send `out <- v` without the
 * `case <-ctx.Done()`: once the consumer has left it blocks forever. The
 * run fails with "leaked N upstream threads" after 1 s, then releases the
 * wrapper (its blocked send also watches an internal ctx that only the
 * harness cancels) so that it can be joined.
 *
 * Invariants, checked on every run:
 *   - nothing lost or duplicated: items sent = received + abandoned by the
 *     wrapper on cancel + left in the upstream channel, and likewise for the
 *     checksum of wl_mix(tag);
 *   - per-producer FIFO at the consumer;
 *   - count mode: the consumer got --items items, or all M when the
 *     upstream had fewer (and then it saw the close);
 *   - every upstream thread returns within 1 s of the consumer's stop
 *     (else FAIL, naming how many leaked), and the wrapper closed its output;
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>

enum { P_SRC_ITEMS, P_COUNT };
enum { M_STOP_TO_JOINED };
static const wl_param ordone_params[] = {
    [P_SRC_ITEMS] = { "src_items", 0, "the upstream sends M items in all, then closes; 0: it never ends by itself", 4000 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(ordone_params, P_COUNT);


struct item { uint64_t tag, ts; };

struct od_state {
    wl_run *r;
    int producers, seed, finite;
    cp_chan *c, *out;
    cp_ctx *ctx;                    /* the pattern's: cancelled by the consumer when it stops */
    cp_ctx *reap;                   /* internal: cancelled only to release a leaked thread */
    cp_wg *upstream;                /* producers + wrapper */
    _Atomic int live_upstream;
    wl_group live_producers;        /* finite upstream: the last producer closes c */
    _Atomic uint64_t offers;        /* items the wrapper has begun to hand over; one more than
                                     * the consumer received: it holds one it is trying to send */
    _Atomic int wrapper_done;
    _Atomic uint64_t sent, sent_sum;
    wl_errors err;
    uint64_t abandoned, abandoned_sum;      /* the wrapper's, read after wl_join */
    uint64_t got, got_sum;                  /* the consumer's */
    int saw_closed;
};

static void upstream_exit(struct od_state *s)
{
    atomic_fetch_sub(&s->live_upstream, 1);
    cp_wg_done(s->upstream);
}

static void *producer(wl_thread *self, void *arg)
{
    struct od_state *s = arg;
    const int id = self->rank;
    const int64_t sample = s->r->cfg->lat_sample;
    /* finite upstream: this producer's share of src_items */
    const uint64_t n = s->finite ? wl_share((uint64_t)s->r->cfg->set[P_SRC_ITEMS], s->producers, id) : 0;
    int64_t until_sample = 0;
    uint64_t seq = 0, sum = 0;
    struct item it;
    cp_case cs[2] = { { .op = CP_SEND, .ch = s->c, .elem = &it }, { .op = CP_WAIT, .ev = cp_ctx_done(s->ctx) } };
    wl_phase(self, "send");
    for (; !s->finite || seq < n; seq++) {
        it.tag = wl_tag((uint64_t)id, seq);
        it.ts = 0;
        if (wl_sample(sample, &until_sample)) {
            it.ts = wl_now();
        }
        cp_status st;
        int i = cp_select(cs, 2, NULL, &st);
        if (i != 0) break;                      /* <-ctx.Done() */
        if (st != CP_OK) {
            wl_note(&s->err, "producer's send failed (status)", (uint64_t)st, 0);
            break;
        }
        sum += wl_mix(it.tag);
    }
    atomic_fetch_add(&s->sent, seq);
    atomic_fetch_add(&s->sent_sum, sum);
    self->ops = seq;
    if (s->finite && wl_group_leave(&s->live_producers)) cp_chan_close(s->c);
    wl_phase(self, "done");
    upstream_exit(s);
    return NULL;
}

/* orDone(ctx, c): forward c to out until c closes or the ctx ends. */
static void *wrapper(wl_thread *self, void *arg)
{
    struct od_state *s = arg;
    struct item v;
    cp_event *done = cp_ctx_done(s->ctx);
    cp_case rx[2] = { { .op = CP_RECV, .ch = s->c, .elem = &v }, { .op = CP_WAIT, .ev = done } };
    cp_case tx[2] = { { .op = CP_SEND, .ch = s->out, .elem = &v }, { .op = CP_WAIT, .ev = done } };
    uint64_t n = 0;
    for (;;) {
        cp_status st;
        wl_phase(self, "recv upstream");
        int i = cp_select(rx, 2, NULL, &st);
        if (i != 0 || st == CP_CLOSED) break;  /* ctx done, or the upstream closed */
        if (st != CP_OK) {
            wl_note(&s->err, "wrapper's receive failed (status)", (uint64_t)st, 0);
            break;
        }
        wl_phase(self, "send out");
        atomic_fetch_add(&s->offers, 1);
        /* the seed: `out <- v` alone (only the harness's reap ctx can end it) */
        i = s->seed ? cp_select(tx, 1, s->reap, &st) : cp_select(tx, 2, NULL, &st);
        if (i != 0) {                           /* cancelled with an item in hand: counted */
            s->abandoned++;
            s->abandoned_sum += wl_mix(v.tag);
            break;
        }
        if (st != CP_OK) {
            wl_note(&s->err, "wrapper's send failed (status)", (uint64_t)st, 0);
            break;
        }
        n++;
    }
    cp_chan_close(s->out);                      /* defer close(out) */
    atomic_store(&s->wrapper_done, 1);
    self->ops = n;
    wl_phase(self, "done");
    upstream_exit(s);
    return NULL;
}

static void *consumer(wl_thread *self, void *arg)
{
    struct od_state *s = arg;
    wl_run *r = s->r;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    const int64_t work = r->cfg->k.work_ns;
    int64_t *last = calloc((size_t)s->producers, sizeof *last);
    struct item v;
    if (!last) wl_note(&s->err, "out of memory", 0, 0);
    else
        for (int i = 0; i < s->producers; i++) last[i] = -1;
    wl_phase(self, "recv");
    while (last && wl_more(r, s->got, n)) {
        cp_status st = cp_chan_recv(s->out, &v, NULL);     /* for v := range orDone(ctx, c) */
        if (st == CP_CLOSED) {
            s->saw_closed = 1;
            break;
        }
        if (st != CP_OK) {
            wl_note(&s->err, "consumer's receive failed (status)", (uint64_t)st, 0);
            break;
        }
        if (v.ts) cp_hist_record(self->hist, wl_since(v.ts));
        uint64_t pid = wl_tag_src(v.tag);
        int64_t seq = (int64_t)wl_tag_seq(v.tag);
        if (pid >= (uint64_t)s->producers) {
            wl_note(&s->err, "item from an unknown producer", pid, 0);
        } else {
            if (seq <= last[pid]) wl_note(&s->err, "per-producer FIFO broken at seq", (uint64_t)seq, 0);
            last[pid] = seq;
        }
        s->got++;
        s->got_sum += wl_mix(v.tag);
        if (work) wl_work(work);
    }
    free(last);
    self->ops = s->got;

    /* Stop early: when the wrapper is offering the next item (or is gone). */
    wl_phase(self, "stop");
    for (uint64_t t0 = wl_now(); atomic_load(&s->offers) <= s->got && !atomic_load(&s->wrapper_done);) {
        if (wl_since(t0) > WL_BOUND_NS) break;     /* then stop wherever it is */
        wl_sleep_ns(20000);
    }
    uint64_t t_stop = wl_now();
    cp_ctx_cancel(s->ctx);
    cp_ctx *bound = cp_ctx_with_timeout(r->cfg->b, NULL, WL_BOUND_NS);
    cp_status st = bound ? cp_wg_wait(s->upstream, bound) : CP_ENOMEM;
    uint64_t dt = wl_since(t_stop);
    cp_ctx_free(bound);
    if (st == CP_OK) {
        wl_metric(r, M_STOP_TO_JOINED, (double)dt);
    } else {
        int leaked = atomic_load(&s->live_upstream);
        wl_fail(r, "leaked %d upstream thread%s: still running %.3f s after the consumer stopped "
                   "(the wrapper %s)", leaked, leaked == 1 ? "" : "s", (double)dt / 1e9,
                atomic_load(&s->offers) > s->got ? "is blocked handing over an item" : "did not return");
        cp_ctx_cancel(s->reap);                 /* release them, so that they can be joined */
        cp_wg_wait(s->upstream, NULL);
    }
    wl_phase(self, "done");
    return NULL;
}

static int ordone_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct od_state s = {
        .r = r,
        .producers = (int)c->k.producers,
        .seed = c->variant == 1,
        .finite = c->set[P_SRC_ITEMS] > 0,
    };
    const int P = s.producers;
    int ret = -1;
    atomic_init(&s.live_upstream, P + 1);
    wl_group_init(&s.live_producers, P);
    s.c = cp_chan_new(c->b, sizeof(struct item), (size_t)c->k.capacity);
    s.out = cp_chan_new(c->b, sizeof(struct item), 0);     /* orDone's output is unbuffered */
    s.ctx = cp_ctx_with_cancel(c->b, NULL);
    s.reap = cp_ctx_with_cancel(c->b, NULL);
    s.upstream = cp_wg_new(c->b);
    if (!s.c || !s.out || !s.ctx || !s.reap || !s.upstream) goto out;
    wl_watch(r, "upstream", s.c);
    wl_watch(r, "out", s.out);
    cp_wg_add(s.upstream, P + 1);

    wl_spawn(r, "consumer", consumer, &s);
    wl_spawn(r, "wrapper", wrapper, &s);
    wl_spawn_n(r, P, "producer", producer, &s);
    wl_start_and_join(r);

    uint64_t left = 0, left_sum = 0;
    struct item v;
    while (cp_chan_try_recv(s.c, &v) == CP_OK) {
        left++;
        left_sum += wl_mix(v.tag);
    }
    uint64_t sent = atomic_load(&s.sent);
    if (atomic_load(&s.err.n))
        wl_fail(r, "%s %llu (%llu errors)", atomic_load(&s.err.first), (unsigned long long)atomic_load(&s.err.a),
                (unsigned long long)atomic_load(&s.err.n));
    if (sent != s.got + s.abandoned + left)
        wl_fail(r, "items lost: sent %llu != received %llu + abandoned by the wrapper %llu + left upstream %llu",
                (unsigned long long)sent, (unsigned long long)s.got, (unsigned long long)s.abandoned,
                (unsigned long long)left);
    else if (atomic_load(&s.sent_sum) != s.got_sum + s.abandoned_sum + left_sum)
        wl_fail(r, "checksum: sent %016llx != received + abandoned + left %016llx",
                (unsigned long long)atomic_load(&s.sent_sum),
                (unsigned long long)(s.got_sum + s.abandoned_sum + left_sum));
    uint64_t src = (uint64_t)c->set[P_SRC_ITEMS];
    if (c->duration <= 0) {
        uint64_t want = (uint64_t)c->k.items;
        if (s.finite && src < want) want = src;
        if (s.got != want)
            wl_fail(r, "the consumer got %llu items, expected %llu", (unsigned long long)s.got,
                    (unsigned long long)want);
        if (s.finite && src < (uint64_t)c->k.items && !s.saw_closed)
            wl_fail(r, "the upstream ended after %llu items but the consumer never saw the close",
                    (unsigned long long)src);
    } else if (s.finite && s.got > src) {
        wl_fail(r, "the consumer got %llu items from an upstream of %llu", (unsigned long long)s.got,
                (unsigned long long)src);
    }
    if (cp_chan_try_recv(s.out, &v) != CP_CLOSED) wl_fail(r, "the wrapper left its output open");
    r->ops = s.got;
    ret = 0;
out:
    cp_chan_free(s.c);
    cp_chan_free(s.out);
    cp_ctx_free(s.ctx);
    cp_ctx_free(s.reap);
    cp_wg_free(s.upstream);
    return ret;
}

WL_DEFINE(ordone) = {
    .name = "ordone",
    .group = "flows",
    .desc = "P producers -> or-done wrapper -> consumer that stops early; the upstream must not leak",
    .op = "item received",
    .latency = "producer send start -> consumer receive",
    .defaults = { .threads = WL_UNUSED, .producers = 1, .consumers = WL_UNUSED, .capacity = 0,
                  .payload = WL_UNUSED, .work_ns = 0, .items = 20000 },
    .params = ordone_params,
    .run = ordone_run,
    .seed_key = "flows_ordone",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "stop_to_joined_ns", "ns", "consumer's cancel -> every upstream thread returned" },
        { NULL, NULL, NULL },
    },
};
