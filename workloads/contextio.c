/*
 * contextio: a writer that honours cancellation mid-write. Write(p) sends p
 * (--payload bytes) to a sink in chunks of --set chunk=B bytes over a
 * channel (--capacity chunks of buffer), looks at its ctx before each chunk
 * and sends with it, so a cancel stops it between chunks, and it returns
 * (bytes written, reason) as io.Writer must: n < len(p) only with an error.
 * The sink reads a Write's chunks and, once --set cancel_pct=P percent of
 * the Write has arrived, cancels its ctx and stops reading: from then on the
 * writer can only fill the channel's buffer, then must notice the cancel. The
 * seeds' orchestration_contextio ("a writer that respects context
 * cancellation").
 *
 * One op: one chunk written (Write's look at its ctx and its send). Latency:
 * that look + send, where a Write blocked on the sink waits (sampled 1 in
 * --lat-sample chunks). Count mode: Writes until exactly --items chunks are
 * written (the last Write is cut to what is left; a cancelled Write writes
 * fewer, at least one); time mode: Writes until --duration ends.
 *
 * Per Write, after it returned, the sink reads what the channel still holds
 * and checks (invariants, every Write of every run):
 *   - bytes written = bytes reported: what reached the sink == the n Write
 *     returned, each chunk of the right Write at the right offset, in order,
 *     its first and last byte intact;
 *   - n == len(p) with CP_OK, n < len(p) with CP_CANCELED, and CP_CANCELED
 *     only after the sink's cancel;
 *   - it stops promptly: after the cancel it wrote at most what the buffer
 *     held (capacity chunks), and returned within 1 s of the cancel (else
 *     the run fails, naming the time);
 *   - every thread joined.
 * Metrics: cancel_to_return_ns (the repetition's worst cancel -> Write
 * return; 0 if no Write saw a cancel), cancelled_writes.
 *
 * --variant=seed: cancellation by abandonment, as playbook 003's
 * doWorkWithTimeout ("Timeout and Cancellation": the work runs in a
 * goroutine, the caller selects on its result and ctx.Done() and returns
 * ctx.Err() on a cancel), applied to Write: a helper thread writes the whole
 * p with plain blocking sends, Write returns (0, CP_CANCELED) at the cancel
 * while the helper keeps writing. The sink then sees bytes written != bytes
 * reported, and the helper still blocked in its send (a leaked thread); it
 * is released by reading the rest of its Write, after counting.
 */
#include "runtime/workload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_CHUNK, P_CANCEL_PCT, P_COUNT };
enum { M_CANCEL_NS, M_CANCELLED };
enum { V_DEFAULT, V_SEED };
static const wl_param contextio_params[] = {
    [P_CHUNK] = { "chunk", 4096, "bytes per chunk: Write looks at its ctx before each", 64 },
    [P_CANCEL_PCT] = { "cancel_pct", 50, "the sink cancels a Write once this % of it arrived; 0: never", 100 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(contextio_params, P_COUNT);

#define MAX_CHUNK (1 << 20)

struct chunk_hdr { uint64_t write_id; uint32_t off, len, total, pad; };   /* then len bytes */
struct end { uint64_t write_id, n, len, chunks, t_return; int32_t status, last; };
struct ack { uint64_t write_id; };
struct result { uint64_t n, k; int32_t status; };

struct cio_state {
    wl_run *r;
    int seed;
    size_t payload, chunk, elem;
    int64_t cancel_pct;             /* the sink cancels a Write once this % arrived; 0: never */
    cp_chan *data;                  /* chunks, writer (or helper) -> sink */
    cp_chan *ctl;                   /* struct end: Write returned, writer -> sink */
    cp_chan *ack;                   /* struct ack: sink -> writer, the Write is checked */
    cp_chan *req, *res;             /* seed: writer -> helper, helper -> writer (capacity 1) */
    _Atomic(cp_ctx *) cur;          /* the current Write's ctx, for the sink to cancel */
    _Atomic int helper_busy;
    unsigned char *wbuf, *sbuf, *hbuf;  /* one chunk each: writer, sink, helper */
    uint64_t made, chunks;          /* Writes the writer made, chunks they wrote */
    _Atomic int failed;             /* the sink found a violation: the writer stops */
    /* sink-only findings, read after the join */
    char fail[400];
    int nfail;
    uint64_t worst_cancel_ns, cancelled_writes, writes;
};

static void note(struct cio_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct cio_state *s, const char *fmt, ...)
{
    atomic_store(&s->failed, 1);
    if (s->nfail++) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail, sizeof s->fail, fmt, ap);
    va_end(ap);
}

/* the content of byte `off` of Write w */
static inline unsigned char content(uint64_t w, uint64_t off) { return (unsigned char)(wl_mix(w) + off * 0x9d); }

static void fill_chunk(unsigned char *buf, uint64_t w, uint64_t off, size_t len, size_t total)
{
    struct chunk_hdr h = { w, (uint32_t)off, (uint32_t)len, (uint32_t)total, 0 };
    memcpy(buf, &h, sizeof h);
    unsigned char *p = buf + sizeof h;
    unsigned char c = content(w, off);
    for (size_t i = 0; i < len; i++, c = (unsigned char)(c + 0x9d)) p[i] = c;
}

/* ---- Write(p[:len]), ctx-aware: (n, status); *k: chunks written ---- */
struct sampler { int64_t every, left; cp_hist *h; };

static cp_status ctx_write(struct cio_state *s, unsigned char *buf, uint64_t w, size_t total, cp_ctx *ctx,
                           uint64_t *n, uint64_t *k, struct sampler *sm)
{
    *n = *k = 0;
    while (*n < total) {
        uint64_t t0 = sm->every && --sm->left <= 0 ? (sm->left = sm->every, wl_now()) : 0;
        cp_status st = cp_ctx_err(ctx);
        if (st != CP_OK) return st;
        size_t len = total - *n < s->chunk ? total - *n : s->chunk;
        fill_chunk(buf, w, *n, len, total);
        if ((st = cp_chan_send(s->data, buf, ctx)) != CP_OK) return st;   /* not written */
        if (t0) cp_hist_record(sm->h, wl_since(t0));
        *n += len;
        ++*k;
    }
    return CP_OK;
}

/* ---- the seed: the write runs in a helper, the caller gives up at the cancel ---- */
static void *helper(wl_thread *self, void *arg)
{
    struct cio_state *s = arg;
    unsigned char *buf = s->hbuf;
    uint64_t rq[2];     /* Write id, its length */
    wl_phase(self, "wait request");
    while (cp_chan_recv(s->req, rq, NULL) == CP_OK) {
        wl_phase(self, "write (no ctx)");
        uint64_t n = 0, k = 0;
        while (n < rq[1]) {
            size_t len = rq[1] - n < s->chunk ? rq[1] - n : s->chunk;
            fill_chunk(buf, rq[0], n, len, rq[1]);
            if (cp_chan_send(s->data, buf, NULL) != CP_OK) break;
            n += len;
            k++;
        }
        atomic_store(&s->helper_busy, 0);
        struct result res = { n, k, CP_OK };
        cp_chan_send(s->res, &res, NULL);       /* capacity 1: never blocks */
        wl_phase(self, "wait request");
    }
    wl_phase(self, "done");
    return NULL;
}

static cp_status seed_write(struct cio_state *s, uint64_t w, size_t total, cp_ctx *ctx, uint64_t *n, uint64_t *k,
                           int *abandoned)
{
    uint64_t rq[2] = { w, total };
    atomic_store(&s->helper_busy, 1);
    cp_chan_send(s->req, rq, NULL);
    struct result res;
    cp_case cs[2] = { { .op = CP_RECV, .ch = s->res, .elem = &res }, { .op = CP_WAIT, .ev = cp_ctx_done(ctx) } };
    cp_status st;
    if (cp_select(cs, 2, NULL, &st) == 0) { *n = res.n; *k = res.k; return (cp_status)res.status; }
    *n = *k = 0;        /* case <-ctx.Done(): return ctx.Err() -- the helper goes on */
    *abandoned = 1;
    return cp_ctx_err(ctx);
}

static void *writer(wl_thread *self, void *arg)
{
    struct cio_state *s = arg;
    wl_run *r = s->r;
    const uint64_t items = (uint64_t)r->cfg->k.items;
    struct sampler sm = { r->cfg->lat_sample, 0, self->hist };
    unsigned char *buf = s->wbuf;
    uint64_t w, chunks = 0;
    for (w = 0; wl_more(r, chunks, items) && !atomic_load(&s->failed); w++) {
        size_t total = s->payload;
        if (r->cfg->duration <= 0 && (items - chunks) * s->chunk < total) total = (items - chunks) * s->chunk;
        cp_ctx *ctx = cp_ctx_with_cancel(r->cfg->b, NULL);
        if (!ctx) break;        /* out of memory: the count check reports it */
        atomic_store(&s->cur, ctx);
        wl_phase(self, "Write");
        uint64_t n = 0, k = 0;
        int abandoned = 0;
        cp_status st = s->seed ? seed_write(s, w, total, ctx, &n, &k, &abandoned)
                               : ctx_write(s, buf, w, total, ctx, &n, &k, &sm);
        struct end e = { .write_id = w, .n = n, .len = total, .chunks = k, .t_return = cp_now_ns(),
                         .status = (int32_t)st };
        chunks += k;
        wl_phase(self, "report");
        cp_chan_send(s->ctl, &e, NULL);
        struct ack a;
        wl_phase(self, "wait ack");
        cp_chan_recv(s->ack, &a, NULL);
        if (abandoned) {    /* the seed's helper result, left behind by the abandoned Write */
            struct result stale;
            wl_phase(self, "seed: collect stale result");
            cp_chan_recv(s->res, &stale, NULL);
        }
        atomic_store(&s->cur, NULL);
        cp_ctx_free(ctx);
    }
    self->ops = chunks;
    s->made = w;
    s->chunks = chunks;
    struct end last = { .write_id = w, .last = 1 };
    wl_phase(self, "close");
    cp_chan_send(s->ctl, &last, NULL);
    if (s->req) cp_chan_close(s->req);
    wl_phase(self, "done");
    return NULL;
}

/* ---- the sink ---- */
struct sink_write { uint64_t w, got, nchunks, total, at_cancel; int cancelled; uint64_t t_cancel; };

static void take_chunk(struct cio_state *s, struct sink_write *sw, const unsigned char *buf)
{
    struct chunk_hdr h;
    memcpy(&h, buf, sizeof h);
    const unsigned char *p = buf + sizeof h;
    if (!sw->nchunks) sw->total = h.total;
    if (h.write_id != sw->w || h.off != sw->got || h.len == 0 || h.len > s->chunk || h.total != sw->total)
        note(s, "Write %llu: chunk of Write %llu at offset %u (%u bytes), expected offset %llu",
             (unsigned long long)sw->w, (unsigned long long)h.write_id, h.off, h.len, (unsigned long long)sw->got);
    else if (p[0] != content(h.write_id, h.off) ||
             p[h.len - 1] != (unsigned char)(content(h.write_id, h.off) + (h.len - 1) * 0x9d))
        note(s, "Write %llu: chunk at offset %u torn", (unsigned long long)sw->w, h.off);
    sw->got += h.len;
    sw->nchunks++;
    uint64_t cancel_at = s->cancel_pct ? sw->total * (uint64_t)s->cancel_pct / 100 : 0;
    if (s->cancel_pct && !cancel_at) cancel_at = 1;
    if (!sw->cancelled && cancel_at && sw->got >= cancel_at) {
        cp_ctx *c = atomic_load(&s->cur);
        sw->t_cancel = cp_now_ns();
        sw->at_cancel = sw->got;
        sw->cancelled = 1;
        cp_ctx_cancel(c);
    }
}

static void check_write(struct cio_state *s, struct sink_write *sw, const struct end *e, int helper_running)
{
    unsigned long long w = (unsigned long long)sw->w;
    if (e->write_id != sw->w) note(s, "Write %llu: its report names Write %llu", w, (unsigned long long)e->write_id);
    if (e->n != sw->got) {
        if (helper_running)
            note(s, "Write %llu: bytes written %llu != bytes reported %llu, and the Write's helper is still "
                    "writing after it returned: leaked 1 thread (cancellation by abandonment)",
                 w, (unsigned long long)sw->got, (unsigned long long)e->n);
        else
            note(s, "Write %llu: bytes written %llu != bytes reported %llu", w, (unsigned long long)sw->got,
                 (unsigned long long)e->n);
    }
    if (e->status == CP_OK && e->n != e->len)
        note(s, "Write %llu: returned OK after %llu of %llu bytes", w, (unsigned long long)e->n,
             (unsigned long long)e->len);
    if (!s->seed && e->chunks != sw->nchunks)
        note(s, "Write %llu: %llu chunks written, the sink got %llu", w, (unsigned long long)e->chunks,
             (unsigned long long)sw->nchunks);
    if (e->status == CP_CANCELED && !sw->cancelled) note(s, "Write %llu: returned CANCELED, nobody cancelled it", w);
    if (e->status == CP_CANCELED && e->n >= e->len) note(s, "Write %llu: CANCELED with all bytes written", w);
    if (e->status != CP_OK && e->status != CP_CANCELED)
        note(s, "Write %llu: returned %s", w, cp_status_str((cp_status)e->status));
    if (sw->cancelled && !s->seed) {
        uint64_t after = e->n > sw->at_cancel ? e->n - sw->at_cancel : 0;
        uint64_t room = (uint64_t)cp_chan_cap(s->data) * s->chunk;
        if (after > room)
            note(s, "Write %llu: wrote %llu bytes after the cancel, the sink's buffer holds %llu", w,
                 (unsigned long long)after, (unsigned long long)room);
    }
    if (sw->cancelled && e->status == CP_CANCELED) {
        uint64_t d = e->t_return > sw->t_cancel ? e->t_return - sw->t_cancel : 0;
        if (d > s->worst_cancel_ns) s->worst_cancel_ns = d;
        if (d > WL_BOUND_NS) note(s, "Write %llu: returned %.3f s after the cancel (bound 1 s)", w, (double)d / 1e9);
        s->cancelled_writes++;
    }
}

static void *sink(wl_thread *self, void *arg)
{
    struct cio_state *s = arg;
    unsigned char *buf = s->sbuf;
    struct end e;
    for (uint64_t w = 0;; w++) {
        struct sink_write sw = { .w = w };
        int have_end = 0;
        wl_phase(self, "read");
        while (!sw.cancelled && !have_end) {
            cp_case cs[2] = { { .op = CP_RECV, .ch = s->data, .elem = buf }, { .op = CP_RECV, .ch = s->ctl, .elem = &e } };
            cp_status st;
            int k = cp_select(cs, 2, NULL, &st);
            if (k == 0 && st == CP_OK) take_chunk(s, &sw, buf);
            else if (k == 1 && st == CP_OK) have_end = 1;
            else { note(s, "sink: select returned %d (%s)", k, cp_status_str(st)); goto out; }
        }
        if (!have_end) {            /* cancelled: stop reading, wait for the Write to return */
            wl_phase(self, "cancelled: wait for Write");
            if (cp_chan_recv(s->ctl, &e, NULL) != CP_OK) break;
        }
        if (e.last) break;
        /* the seed's helper, blocked in a send after its Write returned? (counted
         * now, before the drain below lets it go on) */
        int helper_running = s->seed && atomic_load(&s->helper_busy);
        /* what the Write put in the buffer before it returned */
        wl_phase(self, "drain");
        while (cp_chan_try_recv(s->data, buf) == CP_OK) take_chunk(s, &sw, buf);
        check_write(s, &sw, &e, helper_running);
        if (s->seed && sw.got < e.len && e.n != sw.got) {
            /* release the abandoned helper (after counting it): read the rest of its Write */
            wl_phase(self, "seed: release helper");
            cp_ctx *bound = cp_ctx_with_timeout(s->r->cfg->b, NULL, 5 * WL_BOUND_NS);
            while (sw.got < e.len && cp_chan_recv(s->data, buf, bound) == CP_OK) take_chunk(s, &sw, buf);
            cp_ctx_free(bound);
        }
        s->writes++;
        struct ack a = { w };
        wl_phase(self, "ack");
        cp_chan_send(s->ack, &a, NULL);
    }
out:
    wl_phase(self, "done");
    return NULL;
}

static int contextio_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct cio_state st = { .r = r }, *s = &st;
    s->seed = c->variant == V_SEED;
    s->payload = (size_t)c->k.payload;
    s->chunk = (size_t)c->set[P_CHUNK];
    s->elem = sizeof(struct chunk_hdr) + s->chunk;
    s->cancel_pct = c->set[P_CANCEL_PCT];
    s->data = cp_chan_new(c->b, s->elem, (size_t)c->k.capacity);
    s->ctl = cp_chan_new(c->b, sizeof(struct end), 1);
    s->ack = cp_chan_new(c->b, sizeof(struct ack), 0);
    if (s->seed) {
        s->req = cp_chan_new(c->b, 2 * sizeof(uint64_t), 0);
        s->res = cp_chan_new(c->b, sizeof(struct result), 1);
    }
    s->wbuf = malloc(s->elem);
    s->sbuf = malloc(s->elem);
    s->hbuf = malloc(s->elem);
    cp_chan *all[] = { s->data, s->ctl, s->ack, s->req, s->res };
    if (!s->data || !s->ctl || !s->ack || (s->seed && (!s->req || !s->res)) || !s->wbuf || !s->sbuf || !s->hbuf) {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (all[i]) cp_chan_free(all[i]);
        free(s->wbuf);
        free(s->sbuf);
        free(s->hbuf);
        return -1;
    }
    wl_watch(r, "data", s->data);
    wl_watch(r, "ctl", s->ctl);
    wl_spawn(r, "sink", sink, s);
    if (s->seed) wl_spawn(r, "helper", helper, s);
    wl_spawn(r, "writer", writer, s);
    wl_start_and_join(r);

    if (s->nfail) wl_fail(r, "%s%s", s->fail, s->nfail > 1 ? " (and more)" : "");
    if (s->writes != s->made)
        wl_fail(r, "the sink checked %llu Writes, the writer made %llu", (unsigned long long)s->writes,
                (unsigned long long)s->made);
    if (c->duration <= 0 && !wl_stopped(r) && !s->nfail && s->chunks != (uint64_t)c->k.items)
        wl_fail(r, "%llu chunks written, expected %lld", (unsigned long long)s->chunks, (long long)c->k.items);
    wl_metric(r, M_CANCEL_NS, (double)s->worst_cancel_ns);
    wl_metric(r, M_CANCELLED, (double)s->cancelled_writes);
    r->ops = s->chunks;

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) cp_chan_free(all[i]);
    free(s->wbuf);
    free(s->sbuf);
    free(s->hbuf);
    return 0;
}

static const char *contextio_check(const wl_cfg *c)
{
    if (c->set[P_CHUNK] < 1 || c->set[P_CHUNK] > MAX_CHUNK) return "--set chunk: 1 to 1048576 bytes";
    if (c->set[P_CANCEL_PCT] > 100) return "--set cancel_pct: 0 to 100";
    if ((uint64_t)c->k.capacity * (uint64_t)(c->set[P_CHUNK] + (int64_t)sizeof(struct chunk_hdr)) > (256u << 20))
        return "--capacity x --set chunk: at most 256 MiB of channel buffer";
    return NULL;
}

WL_DEFINE(contextio) = {
    .name = "contextio",
    .group = "orchestration",
    .desc = "a ctx-aware Write in chunks to a sink that cancels it mid-write",
    .op = "chunk written",
    .latency = "chunk: ctx look + send",
    .defaults = { .threads = WL_UNUSED, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 4,
                  .payload = 65536, .work_ns = WL_UNUSED, .items = 50000 },
    .params = contextio_params,
    .run = contextio_run,
    .check = contextio_check,
    .seed_key = "orchestration_contextio",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "cancel_to_return_ns", "ns", "worst time from the sink's cancel to Write's return" },
        { "cancelled_writes", "count", "Writes that returned CANCELED" },
        { NULL, NULL, NULL },
    },
};
