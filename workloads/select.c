/*
 * select: K producers, each on its own channel, and one consumer selecting
 * over all K channels plus the done event of a ctx (Go's
 * `select { case v := <-ch[i]: ... case <-ctx.Done(): return }`, the fan-in
 * loop of the or-done / merge patterns).
 *
 * One op: one item received by the consumer's select. Latency: an item's
 * time from the start of its send to the return of the select that received
 * it (sampled 1 in --lat-sample items; needs --payload >= 16).
 * --producers = K (default 4), --capacity per channel (default 64), --items
 * in total (default 1M). The last producer to finish cancels the ctx; the
 * consumer then drains the channels with try_select.
 *
 * Invariants, checked on every run:
 *   - count and checksum: items received == items sent, and the sum of
 *     wl_mix(tag) agrees (a loss and a duplicate do not cancel out);
 *   - per-producer FIFO: each producer's seq increases as received;
 *   - every channel served: a channel that had items never got 0 receives
 *     (the failure message gives the largest deviation of the channels'
 *     shares of the receives from 1/K, in percent);
 *   - every thread joined (wl_join).
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>


struct sel_state {
    wl_run *r;
    int producers;
    size_t payload;
    cp_chan **ch;
    cp_ctx *ctx;
    wl_group producers_live;        /* the last producer to end cancels ctx */
    _Atomic uint64_t sent, sent_sum;
    uint64_t *sent_on;              /* per channel, written by its producer */
    uint64_t *got_on;               /* per channel, written by the consumer */
    uint64_t recv, recv_sum;        /* the consumer's, read after wl_join */
    wl_errors err;
};

static void *producer(wl_thread *self, void *arg)
{
    struct sel_state *s = arg;
    wl_run *r = s->r;
    const int id = self->rank;
    const int64_t sample = r->cfg->lat_sample;
    const size_t payload = s->payload;
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, s->producers, id);
    cp_chan *ch = s->ch[id];
    unsigned char item[payload];
    uint64_t seq = 0, sum = 0;
    int64_t until_sample = 0;

    memset(item, 0, payload);
    wl_phase(self, "send");
    for (; wl_more(r, seq, n); seq++) {
        uint64_t tag = wl_tag((uint64_t)id, seq);
        memcpy(item, &tag, 8);
        if (payload >= 16) {
            uint64_t ts = 0;
            if (wl_sample(sample, &until_sample)) {
                ts = wl_now();
            }
            memcpy(item + 8, &ts, 8);
        }
        cp_status st = cp_chan_send(ch, item, NULL);
        if (st != CP_OK) {
            wl_note(&s->err, "send failed (status, seq)", (uint64_t)st, seq);
            break;
        }
        sum += wl_mix(tag);
    }
    s->sent_on[id] = seq;
    atomic_fetch_add(&s->sent, seq);
    atomic_fetch_add(&s->sent_sum, sum);
    self->ops = seq;
    wl_phase(self, "cancel");
    if (wl_group_leave(&s->producers_live)) cp_ctx_cancel(s->ctx);
    wl_phase(self, "done");
    return NULL;
}

static void *consumer(wl_thread *self, void *arg)
{
    struct sel_state *s = arg;
    const int k = s->producers;
    const size_t payload = s->payload;
    const int64_t work = s->r->cfg->k.work_ns;
    unsigned char item[payload];
    int64_t *last = calloc((size_t)k, sizeof *last);
    cp_case *cs = calloc((size_t)k + 1, sizeof *cs);
    uint64_t n = 0, sum = 0;

    if (!last || !cs) {
        wl_note(&s->err, "out of memory", 0, 0);
        free(last);
        free(cs);
        return NULL;
    }
    for (int i = 0; i < k; i++) {
        last[i] = -1;
        cs[i] = (cp_case){ .op = CP_RECV, .ch = s->ch[i], .elem = item };
    }
    cs[k] = (cp_case){ .op = CP_WAIT, .ev = cp_ctx_done(s->ctx) };
    wl_phase(self, "select");
    for (bool draining = false;;) {
        cp_status st;
        /* after the done case fired: drain without it, without blocking */
        int i = draining ? cp_try_select(cs, (size_t)k, &st) : cp_select(cs, (size_t)k + 1, NULL, &st);
        if (i == k && !draining) {
            draining = true;
            wl_phase(self, "drain");
            continue;
        }
        if (i < 0) {
            if (st != CP_WOULDBLOCK) wl_note(&s->err, "select failed (status, index)", (uint64_t)st, (uint64_t)i);
            break;
        }
        if (st != CP_OK) {
            wl_note(&s->err, "select case ended with (status, index)", (uint64_t)st, (uint64_t)i);
            break;
        }
        uint64_t tag;
        memcpy(&tag, item, 8);
        if (payload >= 16) {
            uint64_t ts;
            memcpy(&ts, item + 8, 8);
            if (ts) cp_hist_record(self->hist, wl_since(ts));
        }
        uint64_t pid = wl_tag_src(tag);
        int64_t seq = (int64_t)wl_tag_seq(tag);
        if (pid != (uint64_t)i) {
            wl_note(&s->err, "item of producer on another channel (producer, channel)", pid, (uint64_t)i);
        } else {
            if (seq <= last[pid]) wl_note(&s->err, "per-producer FIFO broken (seq, after)", (uint64_t)seq, (uint64_t)last[pid]);
            last[pid] = seq;
        }
        s->got_on[i]++;
        sum += wl_mix(tag);
        n++;
        if (work) wl_work(work);
    }
    free(last);
    free(cs);
    s->recv = n;
    s->recv_sum = sum;
    self->ops = n;
    wl_phase(self, "done");
    return NULL;
}

static int select_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct sel_state s = {
        .r = r,
        .producers = (int)c->k.producers,
        .payload = (size_t)(c->k.payload < 8 ? 8 : c->k.payload),
    };
    const int k = s.producers;
    int ret = -1;
    wl_group_init(&s.producers_live, k);
    s.ch = calloc((size_t)k, sizeof *s.ch);
    s.sent_on = calloc((size_t)k, sizeof *s.sent_on);
    s.got_on = calloc((size_t)k, sizeof *s.got_on);
    s.ctx = cp_ctx_with_cancel(c->b, NULL);
    if (!s.ch || !s.sent_on || !s.got_on || !s.ctx) goto out;
    for (int i = 0; i < k; i++) {
        if (!(s.ch[i] = cp_chan_new(c->b, s.payload, (size_t)c->k.capacity))) goto out;
        if (i < 8) wl_watch(r, "items", s.ch[i]);
    }

    wl_spawn(r, "consumer", consumer, &s);
    wl_spawn_n(r, k, "producer", producer, &s);
    wl_start_and_join(r);

    uint64_t sent = atomic_load(&s.sent), recv = s.recv;
    wl_errors_fail(r, &s.err);
    if (recv != sent)
        wl_fail(r, "count: received %llu items, sent %llu", (unsigned long long)recv,
                (unsigned long long)sent);
    else if (s.recv_sum != atomic_load(&s.sent_sum))
        wl_fail(r, "checksum: received items' sum %016llx != sent %016llx",
                (unsigned long long)s.recv_sum, (unsigned long long)atomic_load(&s.sent_sum));
    wl_check_items(r, sent, "count: sent %llu items, asked for %lld");
    /* every channel that had items served; shares reported only on failure */
    int starved = -1;
    double maxdev = 0;
    for (int i = 0; i < k; i++) {
        if (s.sent_on[i] && !s.got_on[i] && starved < 0) starved = i;
        double share = recv ? (double)s.got_on[i] / (double)recv : 0;
        double dev = share - 1.0 / k;
        if (dev < 0) dev = -dev;
        if (dev > maxdev) maxdev = dev;
    }
    if (starved >= 0)
        wl_fail(r, "fairness: channel %d got 0 of %llu receives while it had %llu items "
                   "(max deviation of shares from 1/%d: %.1f%%)",
                starved, (unsigned long long)recv, (unsigned long long)s.sent_on[starved], k,
                100 * maxdev);
    r->ops = recv;
    ret = 0;
out:
    if (s.ch)
        for (int i = 0; i < k; i++) cp_chan_free(s.ch[i]);
    cp_ctx_free(s.ctx);
    free(s.ch);
    free(s.sent_on);
    free(s.got_on);
    return ret;
}

WL_DEFINE(select) = {
    .name = "select",
    .group = "flows",
    .desc = "K producers, a channel each -> one consumer selecting over all K + ctx done",
    .op = "item received by select",
    .latency = "send start -> select return",
    .defaults = { .threads = WL_UNUSED, .producers = 4, .consumers = WL_UNUSED, .capacity = 64,
                  .payload = 16, .work_ns = 0, .items = 1000000 },
    .params = (const wl_param[]){ { NULL, 0, NULL } },
    .run = select_run,
};
