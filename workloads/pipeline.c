/*
 * pipeline: sources -> S map stages -> sink, wired by channels. The seeds'
 * flows_pipeline (seed 000), the cancellable pipeline of Go's "Pipelines and
 * cancellation": every stage is
 *
 *     go func() { defer close(out); for n := range in {
 *         select { case out <- f(n): case <-ctx.Done(): return } } }()
 *
 * with a ctx-aware receive too (cp_chan_recv(in, ctx)), so a stage blocked
 * on either side sees the cancel.
 * --producers sources (default 1) send into stage 0; --set stages=S map
 * stages (default 3; 0: sources feed the sink directly), each of --set
 * width=W threads (default 1) reading one input channel, the last of them
 * to exit closing the stage's output; channels of --capacity (default 0:
 * unbuffered, as Go's make(chan int)); one sink sums what comes out.
 * --set cancel_at=K: the sink cancels the pipeline's ctx after K items and
 * leaves (mid-stream); 0: never. --work-ns of busy work per item per stage.
 * Stage s maps v -> wl_mix(v + s + 1).
 *
 * One op: an item through all the stages (received by the sink). Latency:
 * the source's send start -> the sink's receive end.
 *
 * Variants: default (the above); seed, the pipeline of the playbooks
 * (seeds 001, 002, 003): `for n := range in { out <- f(n) }` and a source
 * `out <- n`, no ctx anywhere. It works while the sink reads, but once the
 * sink cancels and leaves (cancel_at > 0) the stages block forever in their
 * sends, unless the channels happen to buffer everything that is left (use
 * --capacity=0 to see it every time): the run reports "leaked N threads",
 * then closes every channel to release them so that they can be joined.
 *
 * Invariants, checked on every run:
 *   - count and checksum of the mapped values: what the sources sent is
 *     accounted for, as items the sink received, items a stage dropped
 *     because of the cancel, and items left in the channels; the sink
 *     verifies each value is the S-fold map of its tag, and the sum of the
 *     final values of all of them matches the sources' sum;
 *   - without cancellation nothing is dropped or left, and in count mode the
 *     sink received exactly --items;
 *   - per-source order with width 1 (every stage FIFO): each source's seq
 *     increases at the sink;
 *   - every stage joined after a cancel mid-stream: all threads have exited
 *     within 1 s of the sink's cancel (a bounded wait: a leaked stage fails
 *     the run, naming how many, instead of hanging it);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>

enum { P_STAGES, P_WIDTH, P_CANCEL_AT, P_COUNT };
enum { M_CANCEL_TO_EXIT, M_LEAKED };
enum { V_DEFAULT, V_SEED };
static const wl_param pipeline_params[] = {
    [P_STAGES] = { "stages", 3, "map stages between the sources and the sink (0: none)", 5 },
    [P_WIDTH] = { "width", 1, "threads per stage, all reading the stage's input (1: order kept per source)", 3 },
    [P_CANCEL_AT] = { "cancel_at", 0, "the sink cancels the pipeline after K items and leaves; 0: never", 2000 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(pipeline_params, P_COUNT);

#define EXIT_BOUND_NS 1000000000ull     /* sink's cancel -> every thread exited */

struct item { uint64_t tag, v, ts; };

struct pipe;
struct stage { struct pipe *p; int s; wl_stage io; };   /* W threads, ch[s] -> ch[s + 1] */

struct pipe {
    wl_run *r;
    int sources, stages, width;
    int seed;
    uint64_t cancel_at;
    cp_chan **ch;               /* stages + 1 channels: ch[s] feeds stage s, ch[stages] the sink */
    struct stage *st;
    cp_ctx *ctx;
    cp_event *all_exited;       /* fired by the last thread (sources and stages) to exit */
    wl_group live;              /* sources and stage threads still running */
    wl_stage sources_out;       /* the sources -> ch[0]; the last one closes it */
    _Atomic uint64_t sent, sent_sum, dropped, dropped_sum;
    /* the sink's, read after wl_join */
    uint64_t got, got_sum, bad_value, bad_order, bad_tag, cancelled_at;
    cp_status sink_end;
};

static inline uint64_t map_stage(uint64_t v, int s) { return wl_mix(v + (uint64_t)s + 1); }
/* the value an item should carry after stages from..S-1 */
static uint64_t map_rest(const struct pipe *p, uint64_t v, int from)
{
    for (int s = from; s < p->stages; s++) v = map_stage(v, s);
    return v;
}

static void thread_exit(struct pipe *p)
{
    if (wl_group_leave(&p->live)) cp_event_fire(p->all_exited);
}

static void *source(wl_thread *self, void *arg)
{
    struct pipe *p = arg;
    wl_run *r = p->r;
    const int id = self->rank;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, p->sources, id);
    cp_ctx *ctx = p->seed ? NULL : p->ctx;
    int64_t until_sample = 0;
    uint64_t seq = 0, sum = 0;
    wl_phase(self, "send");
    for (; wl_more(r, seq, n); seq++) {
        struct item it = { .tag = wl_tag((uint64_t)id, seq) };
        it.v = it.tag;
        if (wl_sample(sample, &until_sample)) {
            it.ts = wl_now();
        }
        if (cp_chan_send(p->ch[0], &it, ctx) != CP_OK) break;   /* cancelled: not sent */
        sum += map_rest(p, it.tag, 0);
    }
    atomic_fetch_add(&p->sent, seq);
    atomic_fetch_add(&p->sent_sum, sum);
    self->ops = seq;
    wl_phase(self, "close");
    wl_stage_leave(&p->sources_out);
    wl_phase(self, "done");
    thread_exit(p);
    return NULL;
}

static void *stage(wl_thread *self, void *arg)
{
    struct stage *sg = arg;
    struct pipe *p = sg->p;
    const int64_t work = p->r->cfg->k.work_ns;
    cp_ctx *ctx = p->seed ? NULL : p->ctx;
    uint64_t n = 0;
    struct item it;
    wl_phase(self, "recv");
    while (cp_chan_recv(sg->io.in, &it, ctx) == CP_OK) {
        it.v = map_stage(it.v, sg->s);
        if (work) wl_work(work);
        wl_phase(self, "send");
        if (cp_chan_send(sg->io.out, &it, ctx) != CP_OK) {
            /* cancelled with an item in hand: dropped, and accounted for */
            atomic_fetch_add(&p->dropped, 1);
            atomic_fetch_add(&p->dropped_sum, map_rest(p, it.v, sg->s + 1));
            break;
        }
        n++;
        wl_phase(self, "recv");
    }
    self->ops = n;
    wl_phase(self, "close");
    wl_stage_leave(&sg->io);    /* defer close(out), last of W */
    wl_phase(self, "done");
    thread_exit(p);
    return NULL;
}

static void *sink(wl_thread *self, void *arg)
{
    struct pipe *p = arg;
    cp_chan *in = p->ch[p->stages];
    int64_t *last = malloc((size_t)p->sources * sizeof *last);
    struct item it;
    uint64_t got = 0, sum = 0;
    cp_status st;
    if (!last) { p->bad_tag = ~0ull; return NULL; }
    for (int i = 0; i < p->sources; i++) last[i] = -1;
    wl_phase(self, "recv");
    /* No ctx: the sink reads until the last stage closes its output, or
     * cancels the pipeline itself and leaves. */
    while ((st = cp_chan_recv(in, &it, NULL)) == CP_OK) {
        if (it.ts) cp_hist_record(self->hist, wl_since(it.ts));
        uint64_t src = wl_tag_src(it.tag);
        int64_t seq = (int64_t)wl_tag_seq(it.tag);
        if (src >= (uint64_t)p->sources) {
            p->bad_tag++;
        } else {
            if (p->width == 1 && seq <= last[src]) p->bad_order++;
            last[src] = seq;
        }
        if (it.v != map_rest(p, it.tag, 0)) p->bad_value++;
        sum += it.v;
        got++;
        if (got == p->cancel_at) {
            wl_phase(self, "cancel");
            p->cancelled_at = wl_now();
            cp_ctx_cancel(p->ctx);
            break;
        }
    }
    p->sink_end = st;
    p->got = got;
    p->got_sum = sum;
    self->ops = got;
    free(last);
    wl_phase(self, "done");
    return NULL;
}

static int pipeline_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct pipe p = {
        .r = r,
        .sources = (int)c->k.producers,
        .stages = (int)c->set[P_STAGES],
        .width = (int)c->set[P_WIDTH],
        .cancel_at = (uint64_t)c->set[P_CANCEL_AT],
        .seed = c->variant == V_SEED,
    };
    wl_group_init(&p.live, p.sources + p.stages * p.width);
    int rc = -1, nch = p.stages + 1;
    p.ch = calloc((size_t)nch, sizeof *p.ch);
    p.st = calloc((size_t)p.stages + 1, sizeof *p.st);
    p.ctx = cp_ctx_with_cancel(c->b, NULL);
    p.all_exited = cp_event_new(c->b);
    if (!p.ch || !p.st || !p.ctx || !p.all_exited) goto out;
    for (int i = 0; i < nch; i++)
        if (!(p.ch[i] = cp_chan_new(c->b, sizeof(struct item), (size_t)c->k.capacity))) goto out;
    rc = 0;
    /* for the watchdog: the first stages' inputs and the sink's */
    static const char *const names[] = { "stage0", "stage1", "stage2", "stage3", "stage4", "stage5" };
    for (int i = 0; i < p.stages && i < 6; i++) wl_watch(r, names[i], p.ch[i]);
    wl_watch(r, "sink", p.ch[p.stages]);

    const int sink_index = wl_spawn(r, "sink", sink, &p);
    for (int s = 0; s < p.stages; s++) {
        p.st[s] = (struct stage){ .p = &p, .s = s };
        wl_stage_init(&p.st[s].io, p.ch[s], p.ch[s + 1], p.width);
        wl_spawn_n(r, p.width, "stage", stage, &p.st[s]);
    }
    wl_stage_init(&p.sources_out, NULL, p.ch[0], p.sources);
    wl_spawn_n(r, p.sources, "source", source, &p);

    wl_start(r);
    wl_wait_duration(r);
    wl_join_thread(r, sink_index);  /* see wl_join_thread */
    /* The sink ends either when the last stage closes its output (it
     * received everything) or by cancelling; after a cancel every other
     * thread has EXIT_BOUND_NS to exit. */
    int leaked = 0;
    for (;;) {
        cp_ctx *bound = NULL;
        if (cp_ctx_err(p.ctx) != CP_OK) bound = cp_ctx_with_timeout(c->b, NULL, EXIT_BOUND_NS);
        cp_case cs[2] = { { .op = CP_WAIT, .ev = p.all_exited }, { .op = CP_WAIT, .ev = cp_ctx_done(p.ctx) } };
        cp_status st;
        int k = cp_select(cs, bound ? 1 : 2, bound, &st);
        cp_ctx_free(bound);
        if (k == 0) break;              /* everyone exited */
        if (k == 1) continue;           /* the sink cancelled: now bounded */
        leaked = wl_group_live(&p.live);
        wl_fail(r, "pipeline leaked %d of %d source/stage threads: still blocked %.1f s after the sink cancelled "
                   "(a send without a ctx case)", leaked, p.sources + p.stages * p.width,
                (double)EXIT_BOUND_NS / 1e9);
        /* counted; now release them: a blocked send or receive on a closed
         * channel returns, so that they can be joined */
        for (int i = 0; i < nch; i++) cp_chan_close(p.ch[i]);
        break;
    }
    wl_join(r);

    /* what the channels still hold, each item's final value */
    uint64_t left = 0, left_sum = 0;
    struct item it;
    for (int i = 0; i < nch; i++)
        while (cp_chan_try_recv(p.ch[i], &it) == CP_OK) {
            left++;
            left_sum += map_rest(&p, it.v, i);
        }
    uint64_t sent = atomic_load(&p.sent), dropped = atomic_load(&p.dropped);
    uint64_t sent_sum = atomic_load(&p.sent_sum), dropped_sum = atomic_load(&p.dropped_sum);
    int cancelled = p.cancelled_at != 0;
    uint64_t exit_ns = cancelled ? wl_diff(r->t_end, p.cancelled_at) : 0;
    if (p.bad_value)
        wl_fail(r, "%llu items reached the sink with a wrong value (not the %d-stage map of their tag)",
                (unsigned long long)p.bad_value, p.stages);
    if (p.bad_tag)
        wl_fail(r, "%llu items reached the sink with an unknown source", (unsigned long long)p.bad_tag);
    if (p.bad_order)
        wl_fail(r, "per-source order broken %llu times (width 1: every stage is FIFO)", (unsigned long long)p.bad_order);
    if (sent != p.got + dropped + left)
        wl_fail(r, "count: sources sent %llu, sink received %llu + dropped on cancel %llu + left in channels %llu",
                (unsigned long long)sent, (unsigned long long)p.got, (unsigned long long)dropped,
                (unsigned long long)left);
    else if (sent_sum != p.got_sum + dropped_sum + left_sum)
        wl_fail(r, "checksum of the mapped values: sources' %016llx != sink's + dropped + left %016llx",
                (unsigned long long)sent_sum, (unsigned long long)(p.got_sum + dropped_sum + left_sum));
    if (!cancelled && (dropped || left || p.sink_end != CP_CLOSED))
        wl_fail(r, "no cancellation, yet %llu dropped, %llu left in channels, sink ended with %s",
                (unsigned long long)dropped, (unsigned long long)left, cp_status_str(p.sink_end));
    if (!cancelled && c->duration <= 0 && !r->stop && p.got != (uint64_t)c->k.items)
        wl_fail(r, "count: the sink received %llu items, expected %lld", (unsigned long long)p.got,
                (long long)c->k.items);
    if (!leaked && exit_ns > EXIT_BOUND_NS)
        wl_fail(r, "cancellation took %.3f s to stop every stage (bound %.1f s)", (double)exit_ns / 1e9,
                (double)EXIT_BOUND_NS / 1e9);
    if (cancelled) wl_metric(r, M_CANCEL_TO_EXIT, (double)exit_ns);
    wl_metric(r, M_LEAKED, leaked);
    r->ops = p.got;
out:
    if (p.ch)
        for (int i = 0; i < nch; i++)
            if (p.ch[i]) cp_chan_free(p.ch[i]);
    if (p.all_exited) cp_event_free(p.all_exited);
    cp_ctx_free(p.ctx);
    free(p.ch);
    free(p.st);
    return rc;
}

static const char *pipeline_check(const wl_cfg *c)
{
    if (c->set[P_WIDTH] < 1) return "--set width (threads per stage) must be >= 1";
    if (c->set[P_STAGES] > 64) return "--set stages must be <= 64";
    if (c->set[P_WIDTH] > 64) return "--set width must be <= 64";
    return NULL;
}

WL_DEFINE(pipeline) = {
    .name = "pipeline",
    .group = "flows",
    .desc = "sources -> S map stages (W threads each) -> sink, wired by channels, cancellable mid-stream",
    .op = "item through all stages",
    .latency = "source send start -> sink receive end",
    .defaults = { .threads = WL_UNUSED, .producers = 1, .consumers = WL_UNUSED, .capacity = 0,
                  .payload = WL_UNUSED, .work_ns = 0, .items = 20000 },
    .params = pipeline_params,
    .run = pipeline_run,
    .check = pipeline_check,
    .seed_key = "flows_pipeline",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "cancel_to_exit_ns", "ns", "sink's cancel -> the last source/stage thread exited (cancel_at > 0)" },
        { "leaked_threads", "count", "source/stage threads still running 1 s after the sink cancelled" },
        { NULL, NULL, NULL },
    },
};
