/*
 * fan_out_fan_in: one source feeds an input channel, N workers read it
 * (fan-out) and their results merge into one output channel (fan-in) that a
 * sink reads. The seeds' flows_fan_out_fan_in (seed 000); the shape of the
 * playbooks' fanOut/fanIn (seed 003's processJobs, seed 001's merge).
 * --threads=N workers (default 4); --set merge=M chooses the fan-in:
 *   0 (forward): each worker has its own output channel and a forwarder
 *      thread per worker copies it into the merged channel, which a closer
 *      closes once every forwarder is done (the seed catalogue's fanIn: wg.Wait();
 *      close(out));
 *   1 (shared): the workers send into one shared channel, which the closer
 *      closes once every worker is done.
 * Every send and receive is ctx-aware, Go's
 *
 *     select { case out <- v: case <-ctx.Done(): return }
 *
 * written as cp_select over the channel case and a CP_WAIT case on the
 * ctx's done event. Channels of --capacity (default 0: unbuffered); --items
 * or --duration; --work-ns of busy work per item in a worker. --set
 * cancel_at=K: the sink cancels the ctx after K results and leaves; 0: never.
 *
 * One op: one result received by the sink. Latency: the source's send start
 * -> the sink's receive end (through a worker and, with merge=0, a
 * forwarder).
 *
 * Variants: default (the above); seed, seed 002's fanOut and fanIn:
 * `for val := range input { out <- process(val) }` and `for val := range c
 * { out <- val }`, fed in the same style (`in <- job`): no ctx case
 * anywhere. Correct while the sink reads; once it cancels and leaves, the
 * source, workers and forwarders block forever in their sends (and the
 * closer in its wait) as soon as what is left exceeds what the channels
 * buffer: the run reports "leaked N threads", then closes every channel to
 * release them so that they can be joined.
 *
 * Invariants, checked on every run:
 *   - each item processed once: the sink keeps a bitmap of ids (results it
 *     received and results left in the output channels), no id twice; the
 *     workers' processed count == received + dropped on cancel + left in the
 *     output channels;
 *   - each result is its item's (value == the worker's function of its id);
 *   - count and checksum: what the source sent == processed + left in the
 *     input channel, and the sum of wl_mix(id) over what the sink received,
 *     what was dropped and what was left matches the source's;
 *   - without cancellation nothing is dropped or left, and in count mode the
 *     sink received exactly --items;
 *   - all threads joined on cancel: every thread has exited within 1 s of
 *     the sink's cancel (a bounded wait: leaked threads fail the run, naming
 *     how many, instead of hanging it);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_MERGE, P_CANCEL_AT, P_COUNT };
enum { M_CANCEL_TO_EXIT, M_LEAKED };
enum { V_DEFAULT, V_SEED };
enum { MERGE_FORWARD, MERGE_SHARED };
static const wl_param fan_out_fan_in_params[] = {
    [P_MERGE] = { "merge", MERGE_FORWARD, "fan-in: 0 forward (a forwarder thread per worker, the seed catalogue's fanIn), 1 shared (one channel)", 1 },
    [P_CANCEL_AT] = { "cancel_at", 0, "the sink cancels the ctx after K results and leaves; 0: never", 2000 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(fan_out_fan_in_params, P_COUNT);

#define EXIT_BOUND_NS 1000000000ull     /* sink's cancel -> every thread exited */

struct msg { uint64_t id, v, ts; };

static inline uint64_t process(uint64_t id) { return wl_mix(id ^ 0x5eedf00dull); }

struct fofi;
struct worker_arg { struct fofi *f; int i; };

struct fofi {
    wl_run *r;
    int workers, merge, seed;
    uint64_t cancel_at;
    cp_chan *in, *out;
    cp_chan **wout;             /* merge=forward: worker i -> forwarder i */
    cp_ctx *ctx;
    cp_event *done;             /* cp_ctx_done(ctx) */
    cp_wg *wg;                  /* what the closer waits for: forwarders, or workers */
    cp_event *all_exited;       /* fired by the last thread but the sink to exit */
    wl_group live;
    _Atomic uint64_t processed, dropped, dropped_sum;
    uint64_t sent, sent_sum;    /* the source's, read after wl_join */
    /* the sink's, read after wl_join (and the run's drain) */
    uint8_t *seen;
    size_t seen_bytes;
    uint64_t got, got_sum, dup, first_dup, bad_value, cancelled_at;
    int oom;
    cp_status sink_end;
};

static void thread_exit(struct fofi *f)
{
    if (wl_group_leave(&f->live)) cp_event_fire(f->all_exited);
}

/* A ctx-aware channel operation: CP_OK, CP_CLOSED, or CP_CANCELED when the
 * done case won. seed: the bare operation, which cannot see the cancel. */
static cp_status op_ctx(struct fofi *f, int op, cp_chan *ch, void *elem)
{
    if (f->seed) return op == CP_SEND ? cp_chan_send(ch, elem, NULL) : cp_chan_recv(ch, elem, NULL);
    cp_case cs[2] = { { .op = op, .ch = ch, .elem = elem }, { .op = CP_WAIT, .ev = f->done } };
    cp_status st;
    int k = cp_select(cs, 2, NULL, &st);
    return k == 0 ? st : CP_CANCELED;
}

static void drop(struct fofi *f, const struct msg *m)
{
    atomic_fetch_add(&f->dropped, 1);
    atomic_fetch_add(&f->dropped_sum, wl_mix(m->id));
}

static void *source(wl_thread *self, void *arg)
{
    struct fofi *f = arg;
    wl_run *r = f->r;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    int64_t until_sample = 0;
    uint64_t id = 0, sum = 0;
    wl_phase(self, "send");
    for (; wl_more(r, id, n); id++) {
        struct msg m = { .id = id };
        if (wl_sample(sample, &until_sample)) {
            m.ts = wl_now();
        }
        if (op_ctx(f, CP_SEND, f->in, &m) != CP_OK) break;     /* cancelled: not sent */
        sum += wl_mix(id);
    }
    f->sent = id;
    f->sent_sum = sum;
    self->ops = id;
    wl_phase(self, "close");
    cp_chan_close(f->in);
    wl_phase(self, "done");
    thread_exit(f);
    return NULL;
}

static void *worker(wl_thread *self, void *arg)
{
    struct worker_arg *a = arg;
    struct fofi *f = a->f;
    const int64_t work = f->r->cfg->k.work_ns;
    cp_chan *out = f->merge == MERGE_FORWARD ? f->wout[a->i] : f->out;
    uint64_t n = 0;
    struct msg m;
    wl_phase(self, "recv");
    while (op_ctx(f, CP_RECV, f->in, &m) == CP_OK) {
        if (work) wl_work(work);
        m.v = process(m.id);
        n++;
        wl_phase(self, "send");
        if (op_ctx(f, CP_SEND, out, &m) != CP_OK) {
            drop(f, &m);
            break;
        }
        wl_phase(self, "recv");
    }
    atomic_fetch_add(&f->processed, n);
    self->ops = n;
    wl_phase(self, "close");
    if (f->merge == MERGE_FORWARD) cp_chan_close(out);     /* defer close(out) of its own channel */
    else cp_wg_done(f->wg);
    wl_phase(self, "done");
    thread_exit(f);
    return NULL;
}

static void *forwarder(wl_thread *self, void *arg)
{
    struct worker_arg *a = arg;
    struct fofi *f = a->f;
    struct msg m;
    uint64_t n = 0;
    wl_phase(self, "recv");
    while (op_ctx(f, CP_RECV, f->wout[a->i], &m) == CP_OK) {
        wl_phase(self, "send");
        if (op_ctx(f, CP_SEND, f->out, &m) != CP_OK) {
            drop(f, &m);
            break;
        }
        n++;
        wl_phase(self, "recv");
    }
    self->ops = n;
    wl_phase(self, "done");
    cp_wg_done(f->wg);
    thread_exit(f);
    return NULL;
}

static void *closer(wl_thread *self, void *arg)
{
    struct fofi *f = arg;
    wl_phase(self, "wg wait");
    cp_wg_wait(f->wg, NULL);
    wl_phase(self, "close");
    cp_chan_close(f->out);
    wl_phase(self, "done");
    thread_exit(f);
    return NULL;
}

/* 1 if id was seen before, 0 if not, -1 out of memory */
static int mark_seen(struct fofi *f, uint64_t id)
{
    size_t byte = (size_t)(id >> 3);
    if (byte >= f->seen_bytes) {
        size_t n = f->seen_bytes ? f->seen_bytes : 4096;
        while (n <= byte) n *= 2;
        uint8_t *s = realloc(f->seen, n);
        if (!s) return -1;
        memset(s + f->seen_bytes, 0, n - f->seen_bytes);
        f->seen = s;
        f->seen_bytes = n;
    }
    uint8_t bit = (uint8_t)(1u << (id & 7));
    int was = (f->seen[byte] & bit) != 0;
    f->seen[byte] |= bit;
    return was;
}

/* a result reached the sink or was found in an output channel */
static void check_result(struct fofi *f, const struct msg *m)
{
    int was = mark_seen(f, m->id);
    if (was < 0) f->oom = 1;
    else if (was && !f->dup++) f->first_dup = m->id;
    if (m->v != process(m->id)) f->bad_value++;
}

static void *sink(wl_thread *self, void *arg)
{
    struct fofi *f = arg;
    struct msg m;
    uint64_t got = 0, sum = 0;
    cp_status st;
    wl_phase(self, "recv");
    /* No ctx: the sink reads until the closer closes the merged channel, or
     * cancels the ctx itself and leaves. */
    while ((st = cp_chan_recv(f->out, &m, NULL)) == CP_OK) {
        if (m.ts) cp_hist_record(self->hist, wl_since(m.ts));
        check_result(f, &m);
        sum += wl_mix(m.id);
        if (++got == f->cancel_at) {
            wl_phase(self, "cancel");
            f->cancelled_at = wl_now();
            cp_ctx_cancel(f->ctx);
            break;
        }
    }
    f->sink_end = st;
    f->got = got;
    f->got_sum = sum;
    self->ops = got;
    wl_phase(self, "done");
    return NULL;
}

static int fofi_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct fofi f = {
        .r = r,
        .workers = (int)c->k.threads,
        .merge = (int)c->set[P_MERGE],
        .cancel_at = (uint64_t)c->set[P_CANCEL_AT],
        .seed = c->variant == V_SEED,
    };
    const int forward = f.merge == MERGE_FORWARD;
    const int nthreads = 1 + f.workers + (forward ? f.workers : 0) + 1;   /* all but the sink */
    const size_t cap = (size_t)c->k.capacity;
    int rc = -1;
    wl_group_init(&f.live, nthreads);
    struct worker_arg *wa = calloc((size_t)f.workers, sizeof *wa);
    f.wout = calloc((size_t)f.workers, sizeof *f.wout);
    f.in = cp_chan_new(c->b, sizeof(struct msg), cap);
    f.out = cp_chan_new(c->b, sizeof(struct msg), cap);
    f.ctx = cp_ctx_with_cancel(c->b, NULL);
    f.wg = cp_wg_new(c->b);
    f.all_exited = cp_event_new(c->b);
    if (!wa || !f.wout || !f.in || !f.out || !f.ctx || !f.wg || !f.all_exited) goto out;
    for (int i = 0; forward && i < f.workers; i++)
        if (!(f.wout[i] = cp_chan_new(c->b, sizeof(struct msg), cap))) goto out;
    f.done = cp_ctx_done(f.ctx);
    rc = 0;
    wl_watch(r, "in", f.in);
    wl_watch(r, "out", f.out);
    for (int i = 0; forward && i < f.workers && i < 6; i++) wl_watch(r, "worker", f.wout[i]);

    cp_wg_add(f.wg, f.workers);
    const int sink_index = wl_spawn(r, "sink", sink, &f);
    wl_spawn(r, "closer", closer, &f);
    for (int i = 0; i < f.workers; i++) {
        wa[i] = (struct worker_arg){ &f, i };
        if (forward) wl_spawn(r, "forwarder", forwarder, &wa[i]);
        wl_spawn(r, "worker", worker, &wa[i]);
    }
    wl_spawn(r, "source", source, &f);

    wl_start(r);
    wl_wait_duration(r);
    wl_join_thread(r, sink_index);  /* it cancels as it leaves: see wl_join_thread */
    /* Until everyone but the sink has exited; after the sink's cancel,
     * for at most EXIT_BOUND_NS. */
    int leaked = 0;
    for (;;) {
        cp_ctx *bound = NULL;
        if (cp_ctx_err(f.ctx) != CP_OK) bound = cp_ctx_with_timeout(c->b, NULL, EXIT_BOUND_NS);
        cp_case cs[2] = { { .op = CP_WAIT, .ev = f.all_exited }, { .op = CP_WAIT, .ev = f.done } };
        cp_status st;
        int k = cp_select(cs, bound ? 1 : 2, bound, &st);
        cp_ctx_free(bound);
        if (k == 0) break;
        if (k == 1) continue;
        leaked = wl_group_live(&f.live);
        wl_fail(r, "fan_out_fan_in leaked %d of %d threads: still blocked %.1f s after the sink cancelled "
                   "(a send without a ctx case)", leaked, nthreads, (double)EXIT_BOUND_NS / 1e9);
        /* counted; now release them: operations on closed channels return,
         * so that they can be joined */
        cp_chan_close(f.in);
        for (int i = 0; forward && i < f.workers; i++) cp_chan_close(f.wout[i]);
        cp_chan_close(f.out);
        break;
    }
    wl_join(r);

    /* what the channels still hold: unprocessed in `in`, results elsewhere */
    uint64_t left_in = 0, left_out = 0, left_sum = 0;
    struct msg m;
    while (cp_chan_try_recv(f.in, &m) == CP_OK) left_in++, left_sum += wl_mix(m.id);
    for (int i = 0; i <= (forward ? f.workers : 0); i++) {
        cp_chan *ch = i < (forward ? f.workers : 0) ? f.wout[i] : f.out;
        while (cp_chan_try_recv(ch, &m) == CP_OK) {
            check_result(&f, &m);
            left_out++;
            left_sum += wl_mix(m.id);
        }
    }
    uint64_t processed = atomic_load(&f.processed), dropped = atomic_load(&f.dropped);
    uint64_t dropped_sum = atomic_load(&f.dropped_sum);
    int cancelled = f.cancelled_at != 0;
    uint64_t exit_ns = cancelled ? wl_diff(r->t_end, f.cancelled_at) : 0;
    if (f.oom) wl_fail(r, "out of memory for the bitmap of ids");
    if (f.dup)
        wl_fail(r, "item processed twice: %llu duplicate results (first id %llu)", (unsigned long long)f.dup,
                (unsigned long long)f.first_dup);
    if (f.bad_value)
        wl_fail(r, "%llu results do not match their item (value != process(id))", (unsigned long long)f.bad_value);
    if (processed != f.got + dropped + left_out)
        wl_fail(r, "count: workers processed %llu, sink received %llu + dropped on cancel %llu + left in output "
                   "channels %llu", (unsigned long long)processed, (unsigned long long)f.got,
                (unsigned long long)dropped, (unsigned long long)left_out);
    if (f.sent != processed + left_in)
        wl_fail(r, "count: the source sent %llu, workers processed %llu + left in the input channel %llu",
                (unsigned long long)f.sent, (unsigned long long)processed, (unsigned long long)left_in);
    else if (f.sent_sum != f.got_sum + dropped_sum + left_sum)
        wl_fail(r, "checksum: the source's %016llx != sink's + dropped + left %016llx", (unsigned long long)f.sent_sum,
                (unsigned long long)(f.got_sum + dropped_sum + left_sum));
    if (!cancelled && (dropped || left_in || left_out || f.sink_end != CP_CLOSED))
        wl_fail(r, "no cancellation, yet %llu dropped, %llu + %llu left in channels, sink ended with %s",
                (unsigned long long)dropped, (unsigned long long)left_in, (unsigned long long)left_out,
                cp_status_str(f.sink_end));
    if (!cancelled && c->duration <= 0 && !r->stop && f.got != (uint64_t)c->k.items)
        wl_fail(r, "count: the sink received %llu results, expected %lld", (unsigned long long)f.got,
                (long long)c->k.items);
    if (!leaked && exit_ns > EXIT_BOUND_NS)
        wl_fail(r, "cancellation took %.3f s to stop every thread (bound %.1f s)", (double)exit_ns / 1e9,
                (double)EXIT_BOUND_NS / 1e9);
    if (cancelled) wl_metric(r, M_CANCEL_TO_EXIT, (double)exit_ns);
    wl_metric(r, M_LEAKED, leaked);
    r->ops = f.got;
out:
    if (f.wout)
        for (int i = 0; i < f.workers; i++)
            if (f.wout[i]) cp_chan_free(f.wout[i]);
    if (f.in) cp_chan_free(f.in);
    if (f.out) cp_chan_free(f.out);
    if (f.wg) cp_wg_free(f.wg);
    if (f.all_exited) cp_event_free(f.all_exited);
    cp_ctx_free(f.ctx);
    free(f.wout);
    free(f.seen);
    free(wa);
    return rc;
}

static const char *fofi_check(const wl_cfg *c)
{
    return c->set[P_MERGE] > MERGE_SHARED ? "--set merge must be 0 (forward: a forwarder per worker) or 1 (shared)"
                                          : NULL;
}

WL_DEFINE(fan_out_fan_in) = {
    .name = "fan_out_fan_in",
    .group = "flows",
    .desc = "source -> N workers (fan-out) -> merged channel (fan-in) -> sink, every op ctx-aware",
    .op = "result received",
    .latency = "source send start -> sink receive end",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 0,
                  .payload = WL_UNUSED, .work_ns = 0, .items = 30000 },
    .params = fan_out_fan_in_params,
    .run = fofi_run,
    .check = fofi_check,
    .seed_key = "flows_fan_out_fan_in",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "cancel_to_exit_ns", "ns", "sink's cancel -> the last other thread exited (cancel_at > 0)" },
        { "leaked_threads", "count", "threads still running 1 s after the sink cancelled" },
        { NULL, NULL, NULL },
    },
};
