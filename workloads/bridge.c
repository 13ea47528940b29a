/*
 * bridge: a channel of channels flattened into one stream. The seeds'
 * flows_bridge (seed 000), the bridge of "Concurrency in Go" (4.x): --producers
 * threads (default 1) each make inner channels one after another, send each
 * on the shared channel of channels (unbuffered, as Go's
 * `make(chan (<-chan interface{}))`), fill it with --set inner=K items and
 * close it; one bridge thread takes the inner channels in turn and forwards
 * every item of each onto the output stream, which a consumer reads. Every
 * operation of producers and bridge is ctx-aware (the backpressure of a slow
 * consumer reaches the producers; a cancel stops them all): the bridge's
 * `for v := range orDone(done, stream) { select { case out <- v: case
 * <-done: } }` is a ctx-aware receive from the inner channel (no orDone
 * helper thread) and a ctx-aware send, and before each send the bridge
 * checks the ctx, so that after a cancel at most the send already under way
 * completes. Inner channels and the output have --capacity (default 0).
 * --set cancel_at=N: the consumer cancels after N items, then drains the
 * output until the bridge closes it (counting the items it still gets);
 * 0: never. --items in total (split over the producers) or --duration
 * (producers stop between inner channels).
 *
 * Inner channels are made per use, as in Go; a producer frees one once the
 * bridge says it is done with it (it has seen it closed and drained), the
 * rest are freed after the run.
 *
 * One op: an item received by the consumer. Latency: the producer's send
 * into the inner channel -> the consumer's receive end.
 *
 * Variants: default (the above); seed, the book's genVals producer:
 * `chanStream <- stream` and `stream <- v` without a ctx case. The bridge
 * itself is correct and exits on the cancel; the producer, whose only reader
 * has left, blocks forever (once what is left exceeds what the inner channel
 * buffers): the run reports "leaked N threads", then closes the channel of
 * channels and each producer's current inner channel to release them so
 * that they can be joined.
 *
 * Invariants, checked on every run:
 *   - order within each inner channel: its items arrive 0, 1, ..., K-1,
 *     contiguous (no item of another channel in between);
 *   - inner channels in order: each producer's channels arrive 0, 1, 2, ...
 *     with none skipped or repeated, and a channel is complete (K items, or
 *     the remainder for the last one in count mode) before the next starts;
 *   - count and checksum: every item a producer sent is received, or dropped
 *     by the bridge on cancel, or left in a channel after the run; without
 *     cancellation nothing is dropped or left and, in count mode, the
 *     consumer received exactly --items;
 *   - no item after cancel: after the consumer's cancel the bridge closes
 *     the output within 1 s, and the consumer receives at most the output's
 *     capacity + 1 items more (what was buffered, and the send under way);
 *   - the bridge and the producers exit within 1 s of the cancel (a bounded
 *     wait: leaked threads fail the run, naming how many, instead of hanging
 *     it), and a producer never holds more than 3 unreleased inner channels;
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>

enum { P_INNER, P_CANCEL_AT, P_COUNT };
enum { M_CANCEL_TO_EXIT, M_LEAKED, M_LATE };
enum { V_DEFAULT, V_SEED };
static const wl_param bridge_params[] = {
    [P_INNER] = { "inner", 16, "items per inner channel (the last one in count mode: the remainder)", 64 },
    [P_CANCEL_AT] = { "cancel_at", 0, "the consumer cancels after N items, then drains until the bridge closes; 0: never", 2000 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(bridge_params, P_COUNT);

#define EXIT_BOUND_NS 1000000000ull     /* consumer's cancel -> every thread exited */
#define RING 4                          /* a producer's unreleased inner channels */

struct item { uint32_t p, k; uint64_t j, ts; };
struct inner_ref { cp_chan *ch; uint64_t j; uint32_t p; };

static inline uint64_t item_hash(uint32_t p, uint64_t j, uint32_t k)
{
    return wl_mix(wl_mix((uint64_t)p << 40 | j) + k);
}

struct bridge_state;

struct producer {
    struct bridge_state *s;
    uint32_t id;
    uint64_t share;             /* count mode: its items */
    cp_mutex *mu;               /* guards ring, nring and cur (the run's release reads them) */
    cp_chan *ring[RING];        /* made and not yet freed, oldest first */
    uint64_t ring_j[RING];
    int nring;
    cp_chan *cur;               /* the inner channel it is sending into */
    _Atomic uint64_t released;  /* the bridge is done with its channels j < released */
    uint64_t sent, sent_sum;
    int overflow, oom;
};

struct bridge_state {
    wl_run *r;
    int producers, seed;
    uint64_t inner, cancel_at;
    size_t cap;
    struct producer *prod;
    cp_chan *streams;           /* the channel of channels */
    cp_chan *out;
    cp_ctx *ctx;
    cp_event *all_exited;       /* fired by the last producer / the bridge to exit */
    wl_group live, live_producers;
    uint64_t dropped, dropped_sum;      /* the bridge's, read after wl_join */
    /* the consumer's, read after wl_join */
    uint64_t got, got_sum, late, bad_item, bad_chan, bad_incomplete, bad_producer, cancelled_at;
    cp_status drain_end;
};

static void thread_exit(struct bridge_state *s)
{
    if (wl_group_leave(&s->live)) cp_event_fire(s->all_exited);
}

/* items in channel j of a producer: K, or in count mode the remainder */
static uint64_t chan_size(const struct bridge_state *s, const struct producer *p, uint64_t j)
{
    if (s->r->cfg->duration > 0) return s->inner;
    uint64_t before = j * s->inner;
    return p->share - before < s->inner ? p->share - before : s->inner;
}

/* a new inner channel for producer p, or NULL; frees the released ones */
static cp_chan *inner_new(struct producer *p, uint64_t j)
{
    struct bridge_state *s = p->s;
    uint64_t rel = atomic_load_explicit(&p->released, memory_order_acquire);
    cp_chan *ch = NULL;
    cp_mutex_lock(p->mu);
    int keep = 0;
    for (int i = 0; i < p->nring; i++) {
        if (p->ring_j[i] < rel) {
            cp_chan_free(p->ring[i]);
        } else {
            p->ring[keep] = p->ring[i];
            p->ring_j[keep++] = p->ring_j[i];
        }
    }
    p->nring = keep;
    if (p->nring == RING) p->overflow = 1;
    else if (!(ch = cp_chan_new(s->r->cfg->b, sizeof(struct item), s->cap))) p->oom = 1;
    else {
        p->ring[p->nring] = ch;
        p->ring_j[p->nring++] = j;
        p->cur = ch;
    }
    cp_mutex_unlock(p->mu);
    return ch;
}

static void *producer(wl_thread *self, void *arg)
{
    struct producer *p = arg;
    struct bridge_state *s = p->s;
    wl_run *r = s->r;
    const int timed = r->cfg->duration > 0;
    const int64_t sample = r->cfg->lat_sample;
    cp_ctx *ctx = s->seed ? NULL : s->ctx;     /* seed: genVals without done */
    int64_t until_sample = 0;
    uint64_t n = 0, sum = 0;
    for (uint64_t j = 0;; j++) {
        /* time-based: stop between inner channels; count mode: after the
         * channel that holds the last of its share */
        if (wl_stopped(r) || (!timed && j * s->inner >= p->share)) break;
        wl_phase(self, "make inner");
        cp_chan *ch = inner_new(p, j);
        if (!ch) break;
        struct inner_ref ref = { .ch = ch, .j = j, .p = p->id };
        wl_phase(self, "send inner");
        if (cp_chan_send(s->streams, &ref, ctx) != CP_OK) {
            cp_chan_close(ch);
            break;
        }
        uint64_t size = chan_size(s, p, j), k = 0;
        wl_phase(self, "fill inner");
        for (; k < size; k++) {
            struct item it = { .p = p->id, .k = (uint32_t)k, .j = j };
            if (wl_sample(sample, &until_sample)) {
                it.ts = wl_now();
            }
            if (cp_chan_send(ch, &it, ctx) != CP_OK) break;
            n++;
            sum += item_hash(p->id, j, (uint32_t)k);
        }
        cp_chan_close(ch);     /* defer close(stream) */
        if (k < size) break;
    }
    p->sent = n;
    p->sent_sum = sum;
    self->ops = n;
    wl_phase(self, "close");
    if (wl_group_leave(&s->live_producers)) cp_chan_close(s->streams);
    wl_phase(self, "done");
    thread_exit(s);
    return NULL;
}

static void *bridge(wl_thread *self, void *arg)
{
    struct bridge_state *s = arg;
    uint64_t n = 0;
    struct inner_ref ref;
    struct item it;
    wl_phase(self, "recv inner");
    while (cp_chan_recv(s->streams, &ref, s->ctx) == CP_OK) {
        cp_status st;
        wl_phase(self, "forward");
        while ((st = cp_chan_recv(ref.ch, &it, s->ctx)) == CP_OK) {
            if (cp_ctx_err(s->ctx) != CP_OK || cp_chan_send(s->out, &it, s->ctx) != CP_OK) {
                s->dropped++;
                s->dropped_sum += item_hash(it.p, it.j, it.k);
                goto out;
            }
            n++;
        }
        if (st != CP_CLOSED) goto out;     /* cancelled */
        /* drained and closed: its producer may free it */
        atomic_store_explicit(&s->prod[ref.p].released, ref.j + 1, memory_order_release);
        wl_phase(self, "recv inner");
    }
out:
    self->ops = n;
    wl_phase(self, "close");
    cp_chan_close(s->out);     /* defer close(valStream) */
    wl_phase(self, "done");
    thread_exit(s);
    return NULL;
}

/* per producer: the channel expected next; the channel being received */
struct order { uint64_t next_j; };

static void consume(struct bridge_state *s, struct order *o, const struct item *it, int64_t *cur_p,
                    uint64_t *cur_j, uint64_t *cur_n)
{
    if (it->p >= (uint32_t)s->producers) {
        s->bad_producer++;
        return;
    }
    if ((int64_t)it->p != *cur_p || it->j != *cur_j) {
        /* a new inner channel starts: the previous one was complete */
        if (*cur_p >= 0 && *cur_n != chan_size(s, &s->prod[*cur_p], *cur_j)) s->bad_incomplete++;
        if (it->j != o[it->p].next_j) s->bad_chan++;
        if (it->k != 0) s->bad_item++;
        o[it->p].next_j = it->j + 1;
        *cur_p = it->p;
        *cur_j = it->j;
        *cur_n = 1;
    } else {
        if (it->k != *cur_n) s->bad_item++;
        ++*cur_n;
    }
    s->got_sum += item_hash(it->p, it->j, it->k);
    s->got++;
}

static void *consumer(wl_thread *self, void *arg)
{
    struct bridge_state *s = arg;
    struct order *o = calloc((size_t)s->producers, sizeof *o);
    int64_t cur_p = -1;
    uint64_t cur_j = 0, cur_n = 0;
    struct item it;
    if (!o) { s->bad_producer = ~0ull; return NULL; }
    wl_phase(self, "recv");
    /* No ctx: it reads until the bridge closes the output, or cancels. */
    while (cp_chan_recv(s->out, &it, NULL) == CP_OK) {
        if (it.ts) cp_hist_record(self->hist, wl_since(it.ts));
        consume(s, o, &it, &cur_p, &cur_j, &cur_n);
        if (s->got == s->cancel_at) {
            wl_phase(self, "cancel, drain");
            s->cancelled_at = wl_now();
            cp_ctx_cancel(s->ctx);
            /* what still comes out after the cancel, for at most the bound */
            cp_ctx *bound = cp_ctx_with_timeout(s->r->cfg->b, NULL, EXIT_BOUND_NS);
            cp_status st;
            while ((st = cp_chan_recv(s->out, &it, bound)) == CP_OK) {
                consume(s, o, &it, &cur_p, &cur_j, &cur_n);
                s->late++;
            }
            s->drain_end = bound ? st : CP_ENOMEM;
            cp_ctx_free(bound);
            break;
        }
    }
    self->ops = s->got;
    free(o);
    wl_phase(self, "done");
    return NULL;
}

static int bridge_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct bridge_state s = {
        .r = r,
        .producers = (int)c->k.producers,
        .inner = (uint64_t)c->set[P_INNER],
        .cancel_at = (uint64_t)c->set[P_CANCEL_AT],
        .cap = (size_t)c->k.capacity,
        .seed = c->variant == V_SEED,
        .drain_end = CP_CLOSED,
    };
    const int nthreads = s.producers + 1;      /* all but the consumer */
    const uint64_t items = (uint64_t)c->k.items;
    int rc = -1;
    wl_group_init(&s.live, nthreads);
    wl_group_init(&s.live_producers, s.producers);
    s.prod = calloc((size_t)s.producers, sizeof *s.prod);
    s.streams = cp_chan_new(c->b, sizeof(struct inner_ref), 0);
    s.out = cp_chan_new(c->b, sizeof(struct item), s.cap);
    s.ctx = cp_ctx_with_cancel(c->b, NULL);
    s.all_exited = cp_event_new(c->b);
    if (!s.prod || !s.streams || !s.out || !s.ctx || !s.all_exited) goto out;
    for (int i = 0; i < s.producers; i++) {
        struct producer *p = &s.prod[i];
        p->s = &s;
        p->id = (uint32_t)i;
        p->share = wl_share(items, s.producers, i);
        atomic_init(&p->released, 0);
        if (!(p->mu = cp_mutex_new(c->b))) goto out;
    }
    rc = 0;
    wl_watch(r, "streams", s.streams);
    wl_watch(r, "out", s.out);

    const int consumer_index = wl_spawn(r, "consumer", consumer, &s);
    wl_spawn(r, "bridge", bridge, &s);
    for (int i = 0; i < s.producers; i++) wl_spawn(r, "producer", producer, &s.prod[i]);

    wl_start(r);
    wl_wait_duration(r);
    wl_join_thread(r, consumer_index);  /* it cancels as it leaves: see wl_join_thread */
    /* Until producers and bridge have exited; after the consumer's cancel,
     * for at most EXIT_BOUND_NS. */
    int leaked = 0;
    for (;;) {
        cp_ctx *bound = NULL;
        if (cp_ctx_err(s.ctx) != CP_OK) bound = cp_ctx_with_timeout(c->b, NULL, EXIT_BOUND_NS);
        cp_case cs[2] = { { .op = CP_WAIT, .ev = s.all_exited }, { .op = CP_WAIT, .ev = cp_ctx_done(s.ctx) } };
        cp_status st;
        int k = cp_select(cs, bound ? 1 : 2, bound, &st);
        cp_ctx_free(bound);
        if (k == 0) break;
        if (k == 1) continue;
        leaked = wl_group_live(&s.live);
        wl_fail(r, "bridge leaked %d of %d producer/bridge threads: still blocked %.1f s after the consumer "
                   "cancelled (a send without a ctx case)", leaked, nthreads, (double)EXIT_BOUND_NS / 1e9);
        /* counted; now release them (a send on a closed channel returns) so
         * that they can be joined */
        cp_chan_close(s.streams);
        cp_chan_close(s.out);
        for (int i = 0; i < s.producers; i++) {
            cp_mutex_lock(s.prod[i].mu);
            if (s.prod[i].cur) cp_chan_close(s.prod[i].cur);
            cp_mutex_unlock(s.prod[i].mu);
        }
        break;
    }
    wl_join(r);

    /* what the channels still hold: the output, and inner channels the
     * bridge did not finish */
    uint64_t left = 0, left_sum = 0, sent = 0, sent_sum = 0;
    struct item it;
    while (cp_chan_try_recv(s.out, &it) == CP_OK) left++, left_sum += item_hash(it.p, it.j, it.k);
    int overflow = 0, oom = 0, short_p = -1;
    for (int i = 0; i < s.producers; i++) {
        struct producer *p = &s.prod[i];
        for (int q = 0; q < p->nring; q++)
            while (cp_chan_try_recv(p->ring[q], &it) == CP_OK) left++, left_sum += item_hash(it.p, it.j, it.k);
        sent += p->sent;
        sent_sum += p->sent_sum;
        overflow |= p->overflow;
        oom |= p->oom;
        if (p->sent != p->share && short_p < 0) short_p = i;
    }
    int cancelled = s.cancelled_at != 0;
    uint64_t exit_ns = cancelled ? wl_diff(r->t_end, s.cancelled_at) : 0;
    if (oom) wl_fail(r, "out of memory for an inner channel");
    if (overflow)
        wl_fail(r, "a producer held %d inner channels the bridge had not released (it takes them one at a time)",
                RING);
    if (s.bad_producer) wl_fail(r, "%llu items from an unknown producer", (unsigned long long)s.bad_producer);
    if (s.bad_item)
        wl_fail(r, "order within an inner channel broken %llu times (items out of order, or of two channels "
                   "interleaved)", (unsigned long long)s.bad_item);
    if (s.bad_chan)
        wl_fail(r, "inner channels out of order %llu times (a producer's channel skipped or repeated)",
                (unsigned long long)s.bad_chan);
    if (s.bad_incomplete)
        wl_fail(r, "%llu inner channels cut short: the next one started before all their items came",
                (unsigned long long)s.bad_incomplete);
    if (sent != s.got + s.dropped + left)
        wl_fail(r, "count: producers sent %llu, consumer received %llu + dropped on cancel %llu + left in "
                   "channels %llu", (unsigned long long)sent, (unsigned long long)s.got,
                (unsigned long long)s.dropped, (unsigned long long)left);
    else if (sent_sum != s.got_sum + s.dropped_sum + left_sum)
        wl_fail(r, "checksum: producers' %016llx != received + dropped + left %016llx", (unsigned long long)sent_sum,
                (unsigned long long)(s.got_sum + s.dropped_sum + left_sum));
    if (!cancelled && (s.dropped || left))
        wl_fail(r, "no cancellation, yet %llu dropped and %llu left in channels", (unsigned long long)s.dropped,
                (unsigned long long)left);
    if (!cancelled && c->duration <= 0 && !r->stop && short_p >= 0)
        wl_fail(r, "count: producer %d sent %llu items, its share is %llu", short_p,
                (unsigned long long)s.prod[short_p].sent, (unsigned long long)s.prod[short_p].share);
    if (!cancelled && c->duration <= 0 && !r->stop && s.got != items)
        wl_fail(r, "count: the consumer received %llu items, expected %llu", (unsigned long long)s.got,
                (unsigned long long)items);
    if (cancelled && s.late > s.cap + 1)
        wl_fail(r, "items after cancel: the consumer received %llu items after it cancelled, more than the "
                   "output buffers (%zu) + the one send under way", (unsigned long long)s.late, s.cap);
    if (cancelled && !leaked && s.drain_end != CP_CLOSED)
        wl_fail(r, "the bridge did not close its output within %.1f s of the cancel (drain ended with %s)",
                (double)EXIT_BOUND_NS / 1e9, cp_status_str(s.drain_end));
    if (!leaked && exit_ns > EXIT_BOUND_NS)
        wl_fail(r, "cancellation took %.3f s to stop every thread (bound %.1f s)", (double)exit_ns / 1e9,
                (double)EXIT_BOUND_NS / 1e9);
    if (cancelled) {
        wl_metric(r, M_CANCEL_TO_EXIT, (double)exit_ns);
        wl_metric(r, M_LATE, (double)s.late);
    }
    wl_metric(r, M_LEAKED, leaked);
    r->ops = s.got;
out:
    if (s.prod)
        for (int i = 0; i < s.producers; i++) {
            for (int q = 0; q < s.prod[i].nring; q++) cp_chan_free(s.prod[i].ring[q]);
            if (s.prod[i].mu) cp_mutex_free(s.prod[i].mu);
        }
    if (s.streams) cp_chan_free(s.streams);
    if (s.out) cp_chan_free(s.out);
    if (s.all_exited) cp_event_free(s.all_exited);
    cp_ctx_free(s.ctx);
    free(s.prod);
    return rc;
}

static const char *bridge_check(const wl_cfg *c)
{
    if (c->set[P_INNER] < 1) return "--set inner (items per inner channel) must be >= 1";
    if (c->set[P_INNER] > UINT32_MAX) return "--set inner must be < 2^32";
    return NULL;
}

WL_DEFINE(bridge) = {
    .name = "bridge",
    .group = "flows",
    .desc = "producers -> a channel of channels -> bridge -> one stream -> consumer, ctx-aware backpressure",
    .op = "item received",
    .latency = "producer send into inner channel -> consumer receive end",
    .defaults = { .threads = WL_UNUSED, .producers = 1, .consumers = WL_UNUSED, .capacity = 0,
                  .payload = WL_UNUSED, .work_ns = WL_UNUSED, .items = 30000 },
    .params = bridge_params,
    .run = bridge_run,
    .check = bridge_check,
    .seed_key = "flows_bridge",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "cancel_to_exit_ns", "ns", "consumer's cancel -> the last thread exited (cancel_at > 0)" },
        { "leaked_threads", "count", "producer/bridge threads still running 1 s after the cancel" },
        { "late_items", "count", "items the consumer received after its cancel (cancel_at > 0)" },
        { NULL, NULL, NULL },
    },
};
