/*
 * A bounded lock-free MPMC ring with per-slot stamps (Vyukov's bounded queue,
 * in the form with laps and a mark bit that supports any capacity >= 1 and
 * closing), shared by the lockfree and futex families' buffered channels.
 * The families differ only in how a caller waits when try_push/try_pop
 * would block.
 *
 * Positions (head, tail) are {lap, mark, index}: index < cap in the low bits,
 * then the mark bit (set in tail only, by close), then the lap counter.
 *
 * Invariants:
 *   - slot i holds an item for position p iff its stamp == p + 1; it is free
 *     for position p iff its stamp == p (p's lap, index i);
 *   - tail - head (as positions) is the number of claimed slots, <= cap;
 *   - once the mark bit is set in tail, no push claims a slot, so the items
 *     the channel will ever hold are exactly those below the marked tail, and
 *     a pop that finds head == tail (without the mark) and the mark set knows
 *     the channel is closed and drained.
 *
 * Memory ordering: a pusher claims a position with a CAS on tail (relaxed:
 * the slot's stamp, not tail, carries the data), writes the item, then
 * publishes it with a release store of the stamp; a popper acquires the stamp,
 * reads, and releases the slot with stamp = p + one_lap, which the next lap's
 * pusher acquires before overwriting. The seq_cst fences before reading the
 * other end's index make "full"/"empty"/"closed" decisions see the latest
 * claims (as crossbeam's ArrayQueue does).
 *
 * A pop prefetches the slot CP_RING_PREFETCH bytes ahead of the one it is
 * about to read, before it loads that slot's stamp: a hint, with no
 * ordering and no effect on the invariants. When the consumer is the slower
 * side, the ring runs nearly full and every pop's stamp load is a miss on a
 * line the producer wrote long ago; the prefetch overlaps the next misses
 * with this one (`cpbench ab`, 10 rounds, chan 1P1C cap 1024, 8-byte
 * items: lockfree 31.6M -> 57.4M items/s, futex 33.0M -> 59.8M). It must
 * come before the stamp load: issued after the claim it bought nothing.
 * Rings shorter than twice that distance do not prefetch (ahead 0), and
 * the longer ones have the distance allocated as padding after the last
 * slot, so that the hint never touches a line that is not the ring's.
 *
 * CP_RING_CLAIM_ORDER is the claim CAS's order on success: relaxed unless
 * the family that includes this file defines it first. The futex family
 * makes it seq_cst, so that the claim is the signaller's half of its event
 * count's Dekker pair (futex.h, cp_ecq_signal_claimed); on x86 both orders
 * are the same instruction.
 */
#ifndef CP_IMPL_RING_H
#define CP_IMPL_RING_H

#include "../core/chaos.h"
#include "../core/internal.h"

#include <string.h>

#ifndef CP_RING_CLAIM_ORDER
#define CP_RING_CLAIM_ORDER memory_order_relaxed
#endif

typedef struct cp_ring_slot {
    _Atomic uint64_t stamp;
    unsigned char data[];
} cp_ring_slot;

typedef struct cp_ring {
    CP_ALIGNED _Atomic uint64_t head;
    CP_ALIGNED _Atomic uint64_t tail;
    /* read-only after init, on a line of their own */
    CP_ALIGNED uint64_t cap, one_lap, mark_bit;
    uint64_t ahead;         /* bytes from a pop's slot to the one it prefetches */
    size_t elem_size, stride;
    unsigned char *slots;
} cp_ring;

#define CP_RING_PREFETCH 1024

static inline uint64_t cp__next_pow2(uint64_t x)
{
    uint64_t p = 1;
    while (p < x) p <<= 1;
    return p;
}

/* A slot: its stamp, then the item, rounded up to 8 bytes. Only for an
 * elem_size that cp_ring_bytes accepted (a larger one would wrap). */
static inline size_t cp_ring_stride(size_t elem_size)
{
    return (sizeof(cp_ring_slot) + elem_size + 7) & ~(size_t)7;
}
/* How far ahead a pop prefetches in a ring of cap slots of this stride:
 * CP_RING_PREFETCH bytes, or 0 (no prefetch) below twice that. */
static inline size_t cp_ring_ahead(size_t cap, size_t stride)
{
    return cap * stride >= 2 * CP_RING_PREFETCH ? CP_RING_PREFETCH : 0;
}
/* *bytes = hdr + cap slots + the prefetch distance as padding (what
 * cp_ring_init's slots need after a header of hdr bytes), or false if that
 * does not fit (cp__obj_size): an elem_size above CP_OBJ_MAX is refused
 * before the stride is computed, so it cannot wrap (to 0 for SIZE_MAX - 7,
 * which was a division by zero). */
static inline bool cp_ring_bytes(size_t hdr, size_t cap, size_t elem_size, size_t *bytes)
{
    if (elem_size > CP_OBJ_MAX) return false;
    size_t stride = cp_ring_stride(elem_size);
    if (!cp__obj_size(hdr, cap, stride, bytes)) return false;
    return cp__obj_size(*bytes, 1, cp_ring_ahead(cap, stride), bytes);
}

static inline void cp_ring_init(cp_ring *r, size_t cap, size_t elem_size, unsigned char *slots)
{
    r->cap = cap;
    r->mark_bit = cp__next_pow2(cap + 1);
    r->one_lap = r->mark_bit * 2;
    r->elem_size = elem_size;
    r->stride = cp_ring_stride(elem_size);
    r->ahead = cp_ring_ahead(cap, r->stride);
    r->slots = slots;
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&((cp_ring_slot *)(slots + i * r->stride))->stamp, i);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
}

static inline cp_ring_slot *cp_ring_slot_at(cp_ring *r, uint64_t index)
{
    return (cp_ring_slot *)(r->slots + index * r->stride);
}

/* A short exponential backoff while another thread is mid-operation on the
 * slot we want: pause, and yield once it has gone on for a while (on an
 * oversubscribed machine that thread may be preempted). */
static inline void cp_ring_backoff(unsigned *step)
{
    if (*step < 6) {
        for (unsigned i = 0; i < (1u << *step); i++) cp_cpu_relax();
        (*step)++;
    } else {
        sched_yield();
    }
}

/* Item copy: the common sizes as constant-size copies the compiler inlines
 * (a call to memcpy with a run-time size costs as much as the rest of the
 * operation for an 8-byte item). */
static inline void cp_ring_copy(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 8: memcpy(dst, src, 8); break;
    case 16: memcpy(dst, src, 16); break;
    default: memcpy(dst, src, n); break;
    }
}

/* CP_OK, CP_WOULDBLOCK (full) or CP_CLOSED. With exact false (a blocking
 * send's spin, which retries anyway), CP_WOULDBLOCK as soon as the slot
 * still holds last lap's item, without the fence and the read of head that
 * tell "full" from "a pop is still reading it": a waiting producer then
 * does not pull the consumers' line to itself on every try. */
static inline __attribute__((always_inline)) cp_status cp_ring_push_(cp_ring *r, const void *elem, const bool exact)
{
    unsigned step = 0;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        if (tail & r->mark_bit) return CP_CLOSED;
        uint64_t index = tail & (r->mark_bit - 1);
        uint64_t lap = tail & ~(r->one_lap - 1);
        uint64_t next = index + 1 < r->cap ? tail + 1 : lap + r->one_lap;
        cp_ring_slot *s = cp_ring_slot_at(r, index);
        uint64_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (tail == stamp) {
            if (atomic_compare_exchange_weak_explicit(&r->tail, &tail, next,
                                                      CP_RING_CLAIM_ORDER,
                                                      memory_order_relaxed)) {
#ifndef CP_RING_BROKEN_PUBLISH
                CP_CHAOS_POINT();   /* slot claimed, not written */
                cp_ring_copy(s->data, elem, r->elem_size);
                CP_CHAOS_POINT();   /* written, not published */
                atomic_store_explicit(&s->stamp, tail + 1, memory_order_release);
#else
                /* Negative control, compiled only into tests: publish the
                 * slot before writing it (and linger, so that readers get in). */
                atomic_store_explicit(&s->stamp, tail + 1, memory_order_release);
                CP_RING_BROKEN_PUBLISH;
                cp_ring_copy(s->data, elem, r->elem_size);
#endif
                return CP_OK;
            }
        } else if (stamp + r->one_lap == tail + 1) {
            /* The slot still holds last lap's item: full, unless a pop has
             * claimed it and is still reading. */
            if (!exact) return CP_WOULDBLOCK;
            atomic_thread_fence(memory_order_seq_cst);
            uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
            if (head + r->one_lap == tail) return CP_WOULDBLOCK;
            cp_ring_backoff(&step);
            tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        } else {
            cp_ring_backoff(&step);
            tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
    }
}

/* CP_OK, CP_WOULDBLOCK (empty) or CP_CLOSED (closed and drained). With
 * exact false, CP_WOULDBLOCK as soon as the head slot holds nothing, which
 * may also be "a push still writing it" or "closed and drained": no fence,
 * no read of tail, the producers' line (see cp_ring_push_). A blocking
 * receive's spin uses it and asks the exact question now and then. */
static inline __attribute__((always_inline)) cp_status cp_ring_pop_(cp_ring *r, void *elem, const bool exact)
{
    unsigned step = 0;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        uint64_t index = head & (r->mark_bit - 1);
        uint64_t lap = head & ~(r->one_lap - 1);
        cp_ring_slot *s = cp_ring_slot_at(r, index);
        __builtin_prefetch((const unsigned char *)s + r->ahead);
        uint64_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (head + 1 == stamp) {
            uint64_t next = index + 1 < r->cap ? head + 1 : lap + r->one_lap;
            if (atomic_compare_exchange_weak_explicit(&r->head, &head, next,
                                                      CP_RING_CLAIM_ORDER,
                                                      memory_order_relaxed)) {
                CP_CHAOS_POINT();   /* slot claimed, not read */
                cp_ring_copy(elem, s->data, r->elem_size);
                atomic_store_explicit(&s->stamp, head + r->one_lap, memory_order_release);
                return CP_OK;
            }
        } else if (stamp == head) {
            /* Nothing published here: empty, unless a push has claimed the
             * position and is still writing (then wait for it: returning
             * "empty" would let a later, completed push be missed). */
            if (!exact) return CP_WOULDBLOCK;
            atomic_thread_fence(memory_order_seq_cst);
            uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
            if ((tail & ~r->mark_bit) == head)
                return (tail & r->mark_bit) ? CP_CLOSED : CP_WOULDBLOCK;
            cp_ring_backoff(&step);
            head = atomic_load_explicit(&r->head, memory_order_relaxed);
        } else {
            cp_ring_backoff(&step);
            head = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
}

/* The n-th round (from 0) of a blocking call's spin on a ring: does it ask
 * the exact question (cp_ring_push_/pop_'s exact)? Every 8th, so that the
 * fence and the read of the other side's index cost an eighth of what they
 * did, while "closed" is still seen within a few microseconds. */
static inline bool cp_ring_exact_round(unsigned n) { return (n & 7) == 7; }

static inline cp_status cp_ring_try_push(cp_ring *r, const void *elem) { return cp_ring_push_(r, elem, true); }
static inline cp_status cp_ring_try_pop(cp_ring *r, void *elem) { return cp_ring_pop_(r, elem, true); }

/* Mark closed; false if it already was. seq_cst: see the fences above. */
static inline bool cp_ring_close(cp_ring *r)
{
    uint64_t old = atomic_fetch_or_explicit(&r->tail, r->mark_bit, memory_order_seq_cst);
    return !(old & r->mark_bit);
}

static inline bool cp_ring_closed(cp_ring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire) & r->mark_bit;
}

static inline size_t cp_ring_len(cp_ring *r)
{
    for (;;) {
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
        uint64_t head = atomic_load_explicit(&r->head, memory_order_seq_cst);
        if (atomic_load_explicit(&r->tail, memory_order_seq_cst) != tail) continue;
        uint64_t hix = head & (r->mark_bit - 1);
        uint64_t tix = tail & (r->mark_bit - 1);
        if (hix < tix) return tix - hix;
        if (hix > tix) return r->cap - hix + tix;
        return ((tail & ~r->mark_bit) == head) ? 0 : r->cap;
    }
}

/* Hints for a select that waits on several rings: would a pop (push) not
 * say WOULDBLOCK, i.e. is there an item (space), or is the ring closed?
 * Each reads the end that moves towards "ready" last, so "not ready" is
 * exact at that read; "ready" may be stale, and the caller re-checks with
 * try_pop/try_push. seq_cst: after cp_ec_prepare's fence these loads are the
 * waiter's half of the event count's Dekker pair. */
static inline bool cp_ring_can_pop(cp_ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_seq_cst);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
    return (tail & r->mark_bit) || (tail & ~r->mark_bit) != head;
}

static inline bool cp_ring_can_push(cp_ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
    if (tail & r->mark_bit) return true;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_seq_cst);
    return head + r->one_lap != tail;
}

/* (head, tail) as they are now: a select's try records them before a
 * try_pop/try_push, to prove "not ready" across two passes (gochan.h). */
static inline void cp_ring_version(cp_ring *r, uint64_t *head, uint64_t *tail)
{
    *head = atomic_load_explicit(&r->head, memory_order_seq_cst);
    *tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
}

#endif /* CP_IMPL_RING_H */
