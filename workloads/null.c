/*
 * null: the harness's own per-op cost, with no cp primitive. Each of T
 * threads does, per item, everything the chan workload does around its
 * channel operations (the stop/count check, the tag and filler, latency
 * sampling one item in --lat-sample, the FIFO and integrity checks, the
 * checksum), moving the item through a local buffer instead of a channel.
 * chan's ns/op minus null's ns/op at the same --payload and --lat-sample is
 * what the channel itself costs (STYLE.md: "a null/empty implementation to
 * show the harness's own overhead"). The code is the same for every --impl.
 *
 * One op: one item. Latency: from the send-side timestamp to the receive-
 * side record (no hand-off in between: the clock's own cost, two reads).
 *
 * Invariants, checked on every run:
 *   - count: items "received" == items "sent", == --items in count mode;
 *   - checksum: sum of wl_mix(tag) received == sum sent;
 *   - per-thread order and integrity of every item (as chan checks them);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

struct null_state {
    wl_run *r;
    size_t payload;
    _Atomic uint64_t sent, sent_sum, recv, recv_sum, errors;
};

static inline unsigned char fill_byte(uint64_t tag) { return (unsigned char)(wl_mix(tag) | 1); }

static void *null_thread(wl_thread *self, void *arg)
{
    struct null_state *s = arg;
    const int id = self->rank;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample;
    const size_t payload = s->payload;
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, (int)r->cfg->k.threads, id);
    unsigned char item[payload];
    volatile unsigned char *slot = item;    /* the "channel": the compiler must really copy */
    uint64_t seq = 0, sum_in = 0, sum_out = 0, errors = 0;
    int64_t until_sample = 0, last = -1;

    memset(item, 0, payload);
    wl_phase(self, "loop");
    for (; wl_more(r, seq, n); seq++) {
        uint64_t tag = (uint64_t)id << 40 | seq, ts = 0;
        if (wl_sample(sample, &until_sample)) {
            ts = wl_now();
        }
        memcpy((unsigned char *)slot, &tag, 8);
        if (payload >= 16) memcpy((unsigned char *)slot + 8, &ts, 8);
        if (payload > 16) slot[payload - 1] = fill_byte(tag);
        sum_in += wl_mix(tag);
        /* the receive side */
        uint64_t got, t;
        memcpy(&got, (unsigned char *)slot, 8);
        if (payload >= 16) {
            memcpy(&t, (unsigned char *)slot + 8, 8);
            if (t) cp_hist_record(self->hist, wl_diff(wl_now(), t));
        }
        int64_t sq = (int64_t)(got & ((1ull << 40) - 1));
        errors += sq <= last;
        last = sq;
        if (payload > 16) errors += slot[payload - 1] != fill_byte(got);
        sum_out += wl_mix(got);
    }
    atomic_fetch_add(&s->sent, seq);
    atomic_fetch_add(&s->recv, seq);
    atomic_fetch_add(&s->sent_sum, sum_in);
    atomic_fetch_add(&s->recv_sum, sum_out);
    atomic_fetch_add(&s->errors, errors);
    self->ops = seq;
    wl_phase(self, "done");
    return NULL;
}

static int null_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    int threads = (int)c->k.threads;
    struct null_state s = { .r = r, .payload = (size_t)c->k.payload };
    wl_spawn_n(r, threads, "null", null_thread, &s);
    wl_start_and_join(r);
    uint64_t sent = atomic_load(&s.sent), recv = atomic_load(&s.recv);
    if (recv != sent || atomic_load(&s.recv_sum) != atomic_load(&s.sent_sum))
        wl_fail(r, "checksum: %llu items out, %llu in, sums differ or not", (unsigned long long)recv,
                (unsigned long long)sent);
    if (atomic_load(&s.errors))
        wl_fail(r, "order or integrity: %llu items out of order or torn", (unsigned long long)atomic_load(&s.errors));
    wl_check_items(r, sent, "count: %llu items, asked for %lld");
    r->ops = recv;
    return 0;
}

WL_DEFINE(null) = {
    .name = "null",
    .group = "primitives",
    .desc = "the harness's own per-op cost: chan's per-item bookkeeping with no channel (same for every impl)",
    .op = "item",
    .latency = "timestamp -> record, no hand-off (the clock's cost)",
    .defaults = { .threads = 1, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = 16, .work_ns = WL_UNUSED, .items = 10000000 },
    .params = (const wl_param[]){ { NULL, 0, NULL } },
    .run = null_run,
};
