/*
 * chan: P producers and C consumers move items through one channel.
 * The shape of Go's BenchmarkChanProdCons (runtime/chan_test.go).
 *
 * One op: one item received. Latency: an item's time from the start of its
 * send to the end of its receive (sampled 1 in --lat-sample items).
 * Item: 8-byte tag (producer << 40 | seq), then the send timestamp when the
 * payload has room (>= 16 bytes), then filler bytes derived from the tag.
 * Open loop (--rate=R): each producer sends on a fixed schedule of R/P items
 * per second; the item carries its intended send time (bytes 8..15) and its
 * actual one (16..23), and the consumer records both latencies.
 *
 * Invariants, checked on every run:
 *   - count: items received == items sent (the last producer closes the
 *     channel; consumers drain it until CP_CLOSED);
 *   - checksum: sum of wl_mix(tag) received == sum sent (a lost item and a
 *     duplicate do not cancel out);
 *   - per-producer FIFO: each consumer sees each producer's seq increase;
 *   - integrity: the filler of every item matches its tag (no torn copy);
 *   - every thread joined (wl_join).
 *
 * --variant=bare: the same producer and consumer loops, checks included,
 * over a bare Vyukov MPMC ring compiled into this file instead of a cp_chan:
 * no library call, no close mark, no ctx; a waiting side spins with pause,
 * then yields, as the lockfree family does. The last producer pushes one
 * end mark per consumer. It is the reference that the buffered chan is
 * measured against ("what does libcp's channel pay beyond a ring?"): the
 * same code for every --impl, like the null pattern. Needs a power-of-two
 * --capacity, or 0: then a bare rendezvous, one hand-off slot whose turn
 * word and item share a cache line (items up to 56 bytes), the reference for
 * the unbuffered chan ("what does a hand-off cost beyond the cache line it
 * must cross twice?").
 */
#include "runtime/workload.h"

#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>


/* ---- the bare ring (--variant=bare) ----
 * Vyukov's bounded MPMC queue. Invariant: cell i holds the item of position
 * p iff its seq == p + 1, and is free for position p iff seq == p (i = p &
 * mask). A pusher claims tail with a CAS (relaxed: the cell's seq carries
 * the data), writes, then publishes with a release store of seq = p + 1; a
 * popper acquires seq, reads, and frees the cell for the next lap with a
 * release store of seq = p + mask + 1. */
typedef struct bare_cell { _Atomic uint64_t seq; unsigned char data[]; } bare_cell;
typedef struct bare_ring {
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) uint64_t mask;
    size_t size, stride;
    unsigned char *cells;
} bare_ring;

static inline bare_cell *bare_at(bare_ring *q, uint64_t pos)
{
    return (bare_cell *)(q->cells + (pos & q->mask) * q->stride);
}

/* The common sizes as constant-size copies, as ring.h does. */
static inline void bare_copy(void *dst, const void *src, size_t n)
{
    if (n == 8) memcpy(dst, src, 8);
    else if (n == 16) memcpy(dst, src, 16);
    else memcpy(dst, src, n);
}

static inline void bare_wait(unsigned *n)
{
    if (*n < 24) {      /* the lockfree family's LF_SPIN */
        for (unsigned k = 1u << (*n < 6 ? *n : 6); k; k--) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        (*n)++;
    } else {
        sched_yield();
    }
}

static inline void bare_push(bare_ring *q, const void *elem)
{
    unsigned n = 0;
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        bare_cell *c = bare_at(q, pos);
        int64_t dif = (int64_t)(atomic_load_explicit(&c->seq, memory_order_acquire) - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                bare_copy(c->data, elem, q->size);
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return;
            }
        } else {
            if (dif < 0) bare_wait(&n);     /* full */
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
}

static inline void bare_pop(bare_ring *q, void *elem)
{
    unsigned n = 0;
    uint64_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        bare_cell *c = bare_at(q, pos);
        int64_t dif = (int64_t)(atomic_load_explicit(&c->seq, memory_order_acquire) - (pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                bare_copy(elem, c->data, q->size);
                atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
                return;
            }
        } else {
            if (dif < 0) bare_wait(&n);     /* empty */
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

static bare_ring *bare_new(size_t cap, size_t size)
{
    size_t stride = (sizeof(bare_cell) + size + 7) & ~(size_t)7;
    bare_ring *q = aligned_alloc(64, sizeof *q);
    if (!q) return NULL;
    q->cells = aligned_alloc(64, (cap * stride + 63) & ~(size_t)63);
    if (!q->cells) { free(q); return NULL; }
    q->mask = cap - 1;
    q->size = size;
    q->stride = stride;
    for (uint64_t i = 0; i < cap; i++) atomic_init(&bare_at(q, i)->seq, i);
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    return q;
}

static void bare_free(bare_ring *q)
{
    if (q) free(q->cells);
    free(q);
}

/* ---- the bare rendezvous (--variant=bare --capacity=0) ----
 * One slot. Invariant: its turn word only grows, in steps of one, and for
 * the k-th hand-off (turn 4k .. 4k+4) means 4k: free, 4k+1: a sender
 * writes the item, 4k+2: the item is there, 4k+3: a receiver copies it,
 * 4k+4: taken (the next hand-off's free). A sender claims with a CAS 4k ->
 * 4k+1 (acquire: its write of the item follows the last receiver's read)
 * and publishes with a release store of 4k+2; a receiver claims with a CAS
 * 4k+2 -> 4k+3 (acquire: it then reads the item) and frees with a release
 * store of 4k+4; the
 * sender returns once turn >= 4k+4, so a send ends only after its item was
 * taken, as an unbuffered channel's does. Any number of either side. */
typedef struct bare_rdv {
    _Alignas(64) _Atomic uint64_t turn;
    unsigned char data[56];
} bare_rdv;

static inline void bare_rdv_send(bare_rdv *q, const void *elem, size_t size)
{
    unsigned n = 0;
    for (;;) {
        uint64_t t = atomic_load_explicit(&q->turn, memory_order_relaxed);
        if (t % 4 == 0 && atomic_compare_exchange_weak_explicit(&q->turn, &t, t + 1, memory_order_acquire,
                                                                memory_order_relaxed)) {
            bare_copy(q->data, elem, size);
            atomic_store_explicit(&q->turn, t + 2, memory_order_release);
            n = 0;
            while (atomic_load_explicit(&q->turn, memory_order_acquire) < t + 4) bare_wait(&n);
            return;
        }
        bare_wait(&n);
    }
}

static inline void bare_rdv_recv(bare_rdv *q, void *elem, size_t size)
{
    unsigned n = 0;
    for (;;) {
        uint64_t t = atomic_load_explicit(&q->turn, memory_order_relaxed);
        if (t % 4 == 2 && atomic_compare_exchange_weak_explicit(&q->turn, &t, t + 1, memory_order_acquire,
                                                                memory_order_relaxed)) {
            bare_copy(elem, q->data, size);
            atomic_store_explicit(&q->turn, t + 2, memory_order_release);
            return;
        }
        bare_wait(&n);
    }
}

enum { CHAN_DEFAULT, CHAN_BARE };  /* the variants */
enum { VIA_CHAN, VIA_RING, VIA_RDV };   /* what the loops move items through */
#define BARE_END UINT64_MAX     /* the end mark's tag: no producer's */

struct chan_state {
    wl_run *r;
    cp_chan *ch;
    bare_ring *bare;        /* --variant=bare: instead of ch (capacity > 0) */
    bare_rdv *rdv;          /* --variant=bare --capacity=0 */
    int producers, consumers;
    size_t payload;
    size_t hdr;             /* tag + timestamps: 16 bytes, 24 in open loop; filler after */
    wl_stage producers_out;     /* the producers -> ch; the last one closes it */
    _Atomic uint64_t sent, sent_sum, recv, recv_sum;
    wl_errors err;
};

static inline unsigned char fill_byte(uint64_t tag) { return (unsigned char)(wl_mix(tag) | 1); }

/* The loops, specialised at compile time for a cp_chan, the bare ring and
 * the bare rendezvous (via: VIA_*). */
static inline __attribute__((always_inline)) void *produce(wl_thread *self, struct chan_state *s, const int via)
{
    wl_run *r = s->r;
    const int id = self->rank;
    const int64_t sample = r->cfg->lat_sample;
    const size_t payload = s->payload;
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, s->producers, id);
    const double rate = r->cfg->rate;
    const uint64_t interval = rate > 0 ? (uint64_t)((double)s->producers * 1e9 / rate) : 0;
    const uint64_t phase = rate > 0 ? (uint64_t)((double)id * 1e9 / rate) : 0;
    unsigned char item[payload];
    uint64_t seq = 0, sum = 0;
    int64_t until_sample = 0;

    memset(item, 0, payload);
    wl_phase(self, "send");
    for (; wl_more(r, seq, n); seq++) {
        uint64_t tag = wl_tag((uint64_t)id, seq);
        memcpy(item, &tag, 8);
        uint64_t intended = interval ? wl_pace(r, seq, interval, phase) : 0;
        if (interval && !intended) break;   /* stopped while waiting for its time */
        if (payload >= 16) {
            uint64_t ts = 0, actual = 0;
            if (wl_sample(sample, &until_sample)) {
                actual = wl_now();
                ts = interval ? intended : actual;
            }
            memcpy(item + 8, &ts, 8);
            if (interval) memcpy(item + 16, &actual, 8);
        }
        if (payload > s->hdr) item[payload - 1] = fill_byte(tag);
        cp_status st = CP_OK;
        if (via == VIA_RING) bare_push(s->bare, item);
        else if (via == VIA_RDV) bare_rdv_send(s->rdv, item, payload);
        else st = cp_chan_send(s->ch, item, NULL);
        if (st != CP_OK) {
            wl_note(&s->err, "send failed (status, seq)", (uint64_t)st, seq);
            break;
        }
        sum += wl_mix(tag);
    }
    atomic_fetch_add(&s->sent, seq);
    atomic_fetch_add(&s->sent_sum, sum);
    self->ops = seq;
    wl_phase(self, "close");
    if (via == VIA_CHAN) {
        wl_stage_leave(&s->producers_out);
    } else if (wl_group_leave(&s->producers_out.g)) {
        uint64_t end = BARE_END;
        memcpy(item, &end, 8);
        for (int i = 0; i < s->consumers; i++) {
            if (via == VIA_RING) bare_push(s->bare, item);
            else bare_rdv_send(s->rdv, item, payload);
        }
    }
    wl_phase(self, "done");
    return NULL;
}

static void *producer(wl_thread *self, void *arg) { return produce(self, arg, VIA_CHAN); }
static void *producer_ring(wl_thread *self, void *arg) { return produce(self, arg, VIA_RING); }
static void *producer_rdv(wl_thread *self, void *arg) { return produce(self, arg, VIA_RDV); }

static inline __attribute__((always_inline)) void *consume(wl_thread *self, struct chan_state *s, const int via)
{
    const size_t payload = s->payload;
    const int64_t work = s->r->cfg->k.work_ns;
    unsigned char item[payload];
    int64_t *last = calloc((size_t)s->producers, sizeof *last);
    uint64_t n = 0, sum = 0;
    cp_status st;

    if (!last) { wl_note(&s->err, "out of memory", 0, 0); return NULL; }
    for (int i = 0; i < s->producers; i++) last[i] = -1;
    wl_phase(self, "recv");
    for (;;) {
        uint64_t tag;
        if (via != VIA_CHAN) {
            if (via == VIA_RING) bare_pop(s->bare, item);
            else bare_rdv_recv(s->rdv, item, payload);
            memcpy(&tag, item, 8);
            if (tag == BARE_END) {
                st = CP_CLOSED;
                break;
            }
        } else {
            if ((st = cp_chan_recv(s->ch, item, NULL)) != CP_OK) break;
            memcpy(&tag, item, 8);
        }
        if (payload >= 16) {
            uint64_t ts;
            memcpy(&ts, item + 8, 8);
            if (ts) {
                uint64_t now = wl_now();
                cp_hist_record(self->hist, wl_diff(now, ts));
                if (self->hist_u) {
                    uint64_t actual;
                    memcpy(&actual, item + 16, 8);
                    cp_hist_record(self->hist_u, wl_diff(now, actual));
                }
            }
        }
        uint64_t pid = wl_tag_src(tag);
        int64_t seq = (int64_t)wl_tag_seq(tag);
        if (pid >= (uint64_t)s->producers) {
            wl_note(&s->err, "item from an unknown producer (producer, seq)", pid, (uint64_t)seq);
        } else {
            if (seq <= last[pid]) wl_note(&s->err, "per-producer FIFO broken (seq, after)", (uint64_t)seq, (uint64_t)last[pid]);
            last[pid] = seq;
        }
        if (payload > s->hdr && item[payload - 1] != fill_byte(tag))
            wl_note(&s->err, "torn item: filler does not match tag (tag, byte)", tag, item[payload - 1]);
        sum += wl_mix(tag);
        n++;
        if (work) wl_work(work);
    }
    if (st != CP_CLOSED) wl_note(&s->err, "recv ended with (status) instead of closed", (uint64_t)st, 0);
    free(last);
    atomic_fetch_add(&s->recv, n);
    atomic_fetch_add(&s->recv_sum, sum);
    self->ops = n;
    wl_phase(self, "done");
    return NULL;
}

static void *consumer(wl_thread *self, void *arg) { return consume(self, arg, VIA_CHAN); }
static void *consumer_ring(wl_thread *self, void *arg) { return consume(self, arg, VIA_RING); }
static void *consumer_rdv(wl_thread *self, void *arg) { return consume(self, arg, VIA_RDV); }

static int chan_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct chan_state s = {
        .r = r,
        .producers = (int)c->k.producers,
        .consumers = (int)c->k.consumers,
        .payload = (size_t)c->k.payload,
        .hdr = c->rate > 0 ? 24 : 16,
    };
    const int via = c->variant != CHAN_BARE ? VIA_CHAN : c->k.capacity ? VIA_RING : VIA_RDV;
    if (via == VIA_RING) {
        if (!(s.bare = bare_new((size_t)c->k.capacity, s.payload))) return -1;
    } else if (via == VIA_RDV) {
        if (!(s.rdv = aligned_alloc(64, sizeof *s.rdv))) return -1;
        atomic_init(&s.rdv->turn, 0);
    } else {
        if (!(s.ch = cp_chan_new(c->b, s.payload, (size_t)c->k.capacity))) return -1;
        wl_watch(r, "items", s.ch);
    }
    wl_stage_init(&s.producers_out, NULL, s.ch, s.producers);

    wl_spawn_n(r, s.consumers, "consumer", via == VIA_RING ? consumer_ring : via == VIA_RDV ? consumer_rdv : consumer, &s);
    wl_spawn_n(r, s.producers, "producer", via == VIA_RING ? producer_ring : via == VIA_RDV ? producer_rdv : producer, &s);
    wl_start_and_join(r);

    uint64_t sent = atomic_load(&s.sent), recv = atomic_load(&s.recv);
    wl_errors_fail(r, &s.err);
    if (recv != sent)
        wl_fail(r, "count: received %llu items, sent %llu", (unsigned long long)recv,
                (unsigned long long)sent);
    else if (atomic_load(&s.recv_sum) != atomic_load(&s.sent_sum))
        wl_fail(r, "checksum: received items' sum %016llx != sent %016llx",
                (unsigned long long)atomic_load(&s.recv_sum), (unsigned long long)atomic_load(&s.sent_sum));
    wl_check_items(r, sent, "count: sent %llu items, asked for %lld");
    r->ops = recv;
    if (via == VIA_RING) bare_free(s.bare);
    else if (via == VIA_RDV) free(s.rdv);
    else cp_chan_free(s.ch);
    return 0;
}

static const char *chan_check(const wl_cfg *c)
{
    if (c->variant == CHAN_BARE && (c->k.capacity == 1 || (c->k.capacity & (c->k.capacity - 1))))
        return "--variant=bare needs --capacity=0 (a bare rendezvous) or a power of two >= 2 (a bare ring)";
    if (c->variant == CHAN_BARE && !c->k.capacity && c->k.payload > (int64_t)sizeof(((bare_rdv *)0)->data))
        return "--variant=bare --capacity=0 needs --payload <= 56 (the item shares the turn word's cache line)";
    return c->rate > 0 && c->k.payload < 24 ? "--rate needs --payload >= 24 (tag, intended and actual send time)"
                                            : NULL;
}

WL_DEFINE(chan) = {
    .name = "chan",
    .group = "flows",
    .desc = "P producers -> one channel -> C consumers (Go's ChanProdCons)",
    .op = "item received",
    .latency = "send start -> receive end",
    .defaults = { .threads = WL_UNUSED, .producers = 1, .consumers = 1, .capacity = 1024,
                  .payload = 16, .work_ns = 0, .items = 2000000 },
    .params = (const wl_param[]){ { NULL, 0, NULL } },
    .run = chan_run,
    .check = chan_check,
    .open_loop = 1,
    .variants = (const char *const[]){ "default", "bare", NULL },
};
