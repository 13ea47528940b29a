/*
 * generator: a cancellable generator thread emits an arithmetic sequence
 * (start, start + step, ...) over a channel; its consumer takes its share of
 * the items, then cancels the generator's ctx and leaves. The seeds'
 * flows_generator (seed 000), Go's
 *
 *     go func() { defer close(out); for v := start; ; v += step {
 *         select { case out <- v: case <-ctx.Done(): return } } }()
 *
 * where the select with ctx.Done() is cp_chan_send(out, &v, ctx).
 * --threads=G independent generator/consumer pairs (default 1), each with its
 * own channel of --capacity (default 0: unbuffered, as Go's make(chan int))
 * and its own ctx; --items in total (split over the pairs) or --duration.
 *
 * One op: one item received by a consumer. Latency: the generator's send
 * start -> the consumer's receive end (sampled 1 in --lat-sample).
 * Parameters: start, step (--set start=A --set step=D).
 * Metrics: cancel_to_exit_ns, the longest time of a pair from the consumer's
 * cancel to its generator thread's exit; leaked_threads, the generators
 * still running 1 s after their cancel.
 *
 * Variants: default (the above); seed, the playbooks' generator (seeds 001,
 * 003): `out <- n` without a ctx case, so once the consumer has left the
 * generator blocks in its send forever (at any --capacity: it fills the
 * buffer first). The run reports "leaked N threads", then closes the
 * channel, which releases the blocked send (CP_CLOSED) so that the
 * generator can be joined.
 *
 * Invariants, checked on every run:
 *   - exactly the sequence, in order: the k-th item a consumer receives is
 *     start + k * step (mod 2^64), and so are the items still buffered in
 *     the channel after the run (they continue the sequence);
 *   - count: each generator's successful sends == the items its consumer
 *     took + the items left in the channel; count mode: each consumer took
 *     exactly its share of --items;
 *   - the generator exits after the cancel: every generator thread has
 *     finished within 1 s of its consumer's cancel (measured, and a bounded
 *     wait, so a leaked generator fails the run instead of hanging it);
 *   - the generator closes its channel on exit (the drain ends CP_CLOSED);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>

enum { P_START, P_STEP, P_COUNT };
enum { M_CANCEL_TO_EXIT, M_LEAKED };
enum { V_DEFAULT, V_SEED };
static const wl_param generator_params[] = {
    [P_START] = { "start", 1, "first value of the sequence", 1000 },
    [P_STEP] = { "step", 3, "difference between consecutive values", 7 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(generator_params, P_COUNT);

#define EXIT_BOUND_NS 1000000000ull     /* cancel -> generator exit */

struct item { uint64_t v, ts; };

struct pair {
    wl_run *r;
    cp_chan *ch;
    cp_ctx *ctx;            /* cancelled by the consumer */
    cp_event *exited;       /* fired by the generator as its last act */
    uint64_t start, step, quota;
    int gen_index;          /* the generator's slot in r->thr */
    int con_index;          /* the consumer's */
    /* the generator's, read after wl_join */
    uint64_t sent;
    /* the consumer's, read after wl_join */
    uint64_t taken, bad, bad_at, bad_got, cancelled_at;
    cp_status recv_err;
};

static void *generator(wl_thread *self, void *arg)
{
    struct pair *g = arg;
    wl_run *r = g->r;
    const int seed = r->cfg->variant == V_SEED;
    const int64_t sample = r->cfg->lat_sample;
    int64_t until_sample = 0;
    uint64_t v = g->start, n = 0;
    wl_phase(self, "send");
    for (;; n++, v += g->step) {
        struct item it = { .v = v };
        if (wl_sample(sample, &until_sample)) {
            it.ts = wl_now();
        }
        /* seed: `out <- v`, the pitfall: no ctx case */
        if (cp_chan_send(g->ch, &it, seed ? NULL : g->ctx) != CP_OK) break;
    }
    g->sent = n;
    self->ops = n;
    wl_phase(self, "close");
    cp_chan_close(g->ch);   /* defer close(out) */
    wl_phase(self, "done");
    cp_event_fire(g->exited);
    return NULL;
}

static void *consumer(wl_thread *self, void *arg)
{
    struct pair *g = arg;
    wl_run *r = g->r;
    uint64_t want = g->start, k = 0;
    struct item it;
    wl_phase(self, "recv");
    while (wl_more(r, k, g->quota)) {
        cp_status st = cp_chan_recv(g->ch, &it, NULL);
        if (st != CP_OK) { g->recv_err = st; break; }   /* it closed before the cancel */
        if (it.ts) cp_hist_record(self->hist, wl_since(it.ts));
        if (it.v != want && !g->bad++) g->bad_at = k, g->bad_got = it.v;
        want += g->step;
        k++;
    }
    g->taken = k;
    self->ops = k;
    wl_phase(self, "cancel");
    g->cancelled_at = wl_now();
    cp_ctx_cancel(g->ctx);
    wl_phase(self, "done");
    return NULL;
}

static int generator_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    const int npairs = (int)c->k.threads;
    const uint64_t items = (uint64_t)c->k.items;
    struct pair *p = calloc((size_t)npairs, sizeof *p);
    if (!p) return -1;
    int rc = 0;
    for (int i = 0; i < npairs; i++) {
        p[i] = (struct pair){
            .r = r,
            .start = (uint64_t)c->set[P_START],
            .step = (uint64_t)c->set[P_STEP],
            .quota = wl_share(items, npairs, i),
            .ch = cp_chan_new(c->b, sizeof(struct item), (size_t)c->k.capacity),
            .ctx = cp_ctx_with_cancel(c->b, NULL),
            .exited = cp_event_new(c->b),
        };
        if (!p[i].ch || !p[i].ctx || !p[i].exited) { rc = -1; goto out; }
    }
    if (npairs <= 4)
        for (int i = 0; i < npairs; i++) wl_watch(r, "out", p[i].ch);
    for (int i = 0; i < npairs; i++) {
        p[i].con_index = wl_spawn(r, "consumer", consumer, &p[i]);
        p[i].gen_index = wl_spawn(r, "generator", generator, &p[i]);
    }

    wl_start(r);
    wl_wait_duration(r);
    /* Every consumer cancels (count mode: after its share; time-based: at
     * the stop); then each generator has EXIT_BOUND_NS to exit, measured
     * from when the last cancel was seen. */
    /* A consumer returns right after its cancel (see wl_join_thread). */
    for (int i = 0; i < npairs; i++) wl_join_thread(r, p[i].con_index);
    cp_ctx *bound = cp_ctx_with_timeout(c->b, NULL, EXIT_BOUND_NS);
    int leaked = 0;
    for (int i = 0; i < npairs; i++)
        if (cp_event_wait(p[i].exited, bound) != CP_OK) leaked++;
    cp_ctx_free(bound);
    if (leaked) {
        wl_fail(r, "generator leaked %d of %d threads: still blocked in send %.1f s after their consumer "
                   "cancelled (a send without a ctx case)", leaked, npairs, (double)EXIT_BOUND_NS / 1e9);
        /* counted; now release them (their send returns CP_CLOSED) so that
         * they can be joined */
        for (int i = 0; i < npairs; i++)
            if (!cp_event_fired(p[i].exited)) cp_chan_close(p[i].ch);
    }
    wl_join(r);

    uint64_t worst = 0, taken = 0;
    for (int i = 0; i < npairs; i++) {
        struct pair *g = &p[i];
        uint64_t exit_ns = wl_diff(r->thr[g->gen_index].ended, g->cancelled_at);
        if (exit_ns > worst) worst = exit_ns;
        taken += g->taken;
        /* what the channel still holds continues the sequence, then CP_CLOSED */
        uint64_t left = 0, want = g->start + g->taken * g->step;
        struct item it;
        cp_status st;
        while ((st = cp_chan_try_recv(g->ch, &it)) == CP_OK) {
            if (it.v != want && !g->bad++) g->bad_at = g->taken + left, g->bad_got = it.v;
            want += g->step;
            left++;
        }
        if (g->bad)
            wl_fail(r, "sequence broken: pair %d, item %llu is %llu, expected %llu (%llu wrong items)", i,
                    (unsigned long long)g->bad_at, (unsigned long long)g->bad_got,
                    (unsigned long long)(g->start + g->bad_at * g->step), (unsigned long long)g->bad);
        if (g->recv_err != CP_OK)
            wl_fail(r, "pair %d: the consumer's receive ended with %s before it cancelled", i,
                    cp_status_str(g->recv_err));
        if (st != CP_CLOSED)
            wl_fail(r, "pair %d: the generator exited without closing its channel (drain ended with %s)", i,
                    cp_status_str(st));
        if (g->sent != g->taken + left)
            wl_fail(r, "count: pair %d: generator sent %llu items, consumer took %llu + %llu left in the channel", i,
                    (unsigned long long)g->sent, (unsigned long long)g->taken, (unsigned long long)left);
        if (c->duration <= 0 && !r->stop && g->taken != g->quota)
            wl_fail(r, "count: pair %d took %llu items, expected %llu", i, (unsigned long long)g->taken,
                    (unsigned long long)g->quota);
    }
    if (!leaked && worst > EXIT_BOUND_NS)
        wl_fail(r, "cancellation: a generator took %.3f s from its consumer's cancel to exit (bound %.1f s)",
                (double)worst / 1e9, (double)EXIT_BOUND_NS / 1e9);
    wl_metric(r, M_CANCEL_TO_EXIT, (double)worst);
    wl_metric(r, M_LEAKED, leaked);
    r->ops = taken;
out:
    for (int i = 0; i < npairs; i++) {
        cp_ctx_free(p[i].ctx);
        if (p[i].ch) cp_chan_free(p[i].ch);
        if (p[i].exited) cp_event_free(p[i].exited);
    }
    free(p);
    return rc;
}

WL_DEFINE(generator) = {
    .name = "generator",
    .group = "flows",
    .desc = "cancellable generator -> channel -> consumer, which takes N and cancels (x --threads pairs)",
    .op = "item received",
    .latency = "generator send start -> consumer receive end",
    .defaults = { .threads = 1, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 0,
                  .payload = WL_UNUSED, .work_ns = WL_UNUSED, .items = 50000 },
    .params = generator_params,
    .run = generator_run,
    .seed_key = "flows_generator",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "cancel_to_exit_ns", "ns", "longest consumer cancel -> generator thread exit of the pairs" },
        { "leaked_threads", "count", "generators still running 1 s after their consumer cancelled" },
        { NULL, NULL, NULL },
    },
};
