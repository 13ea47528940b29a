/*
 * A Go-style channel under one lock (runtime/chan.go's hchan), written once
 * and instantiated by each family with its own lock and waiter:
 *
 *   mutex family:          every capacity (pthread mutex, condvar parking)
 *   lockfree/futex family: capacity 0 (rendezvous) only; their buffered
 *                          channels use the lock-free ring of ring.h
 *
 * Instantiated as every template of impl/: the family's chan.c includes its
 * adapter.h (FAM_LOCK*, FAM_W_*) and then this file. The channel entry
 * points stay in chan.c (a ring or a gochan, by capacity, is the family's
 * choice); select is select.h, over gochans and the family's rings.
 *
 * Invariants (under the lock), as chan.go states them:
 *   - at least one of sendq and recvq is empty, except for waiters that
 *     have already been claimed or cancelled and are about to be dropped;
 *   - for a buffered channel: count > 0 implies recvq holds no live waiter,
 *     count < cap implies sendq holds no live waiter;
 *   - sendq and recvq are FIFOs of wq.h (see its invariants).
 * A waiter is claimed by exactly one party (CAS on its state, see
 * core/internal.h). The claimer copies the data under the lock, sets w->ok,
 * and after unlocking finishes the waiter (DONE + wake-up). Close claims every
 * queued waiter under the lock and wakes them after unlocking.
 *
 * The hand-off slot (families that define FAM_GC_SLOT: futex, lockfree): a
 * blocked send or receive with an item of at most GC_INLINE bytes first
 * waits in the channel's own cache line, spinning on `slot` beside the lock
 * and the queues, and becomes a queued waiter only if nobody comes within
 * FAM_GC_SLOT_SPINS pauses. Its claimer takes no lock, and the hand-off
 * moves that one line between the cores. The slot word holds a state
 * (GC_ST) and a turn (GC_TURN, counting the times the slot was taken), and
 * under the same invariants:
 *   - it is taken, FREE -> SEND (the item in slot_item) or FREE -> RECV of
 *     the next turn, only under the lock, by an op whose own queue is
 *     empty: its waiter is the oldest of its side, so every claimer looks
 *     at the slot before the queue, and a slot waiter that gives up goes to
 *     the head of its queue;
 *   - a turn is claimed by one CAS on the word, with the lock or without:
 *     SEND -> FREE (under the lock, which keeps slot_item until it is
 *     unlocked), SEND -> CLAIMED -> FREE (without: the claimer copies the
 *     item out in between, then frees the slot), RECV -> CLAIMED -> FILLED
 *     (the claimer copies its item in between); SEND/RECV -> CLOSED (close)
 *     and SEND/RECV -> FREE (the waiter gives up) happen under the lock; a
 *     waiter whose give-up CAS fails waits for the claimer's end;
 *   - a SEND waiter is done once the word is neither its turn's SEND nor
 *     its CLAIMED (the slot may already be in a later turn); the waiter of
 *     a FILLED or CLOSED turn frees it, without the lock, once done with
 *     slot_item;
 *   - slot_item is written by the slot's taker before its release store of
 *     SEND, or by the claimer of a RECV turn before its release store of
 *     FILLED; it is read by the claimer of a SEND turn after its acquire
 *     CAS, or by the waiter after its acquire load of FILLED; every release
 *     store of FREE follows its thread's last read of it, and the next
 *     taker's acquire load of FREE pairs with that.
 * Only a taker under the lock makes a turn claimable, so a select that
 * finds no case ready under its locks still finds none at its last look:
 * try_select stays linearizable. A claim without the lock never reads
 * `closed`: after close's CAS no turn is SEND or RECV, and a claim that won
 * the CAS before it was a hand-off before the close. The turn has 29 bits:
 * a SEND waiter would misread its word only if the slot were taken 2^29
 * times (over two minutes of hand-offs here) between two of its loads.
 * The slot never sleeps: a waiter that would sleep has left it. A blocking
 * receive polls the slot for CP_FREE_SPINS pauses before it takes the
 * lock, so that between running threads senders wait in the slot and
 * receivers outside it, as in a one-line rendezvous, and neither waits on
 * the lock.
 */
#ifndef CP_IMPL_GOCHAN_H
#define CP_IMPL_GOCHAN_H

#ifndef FAM_NAME
#error "include the family's adapter.h before impl/gochan.h"
#endif

#include "../core/chaos.h"
#include "../core/internal.h"
#include "ring.h"   /* cp_ring_copy */
#include "wq.h"

#include <stddef.h>
#include <string.h>

typedef struct gc_sudog {
    cp_waiter *w;
    void *elem;             /* sender: the item; receiver: where it goes */
    struct gc_sudog *next, *prev;
    int idx;                /* select: the case this sudog stands for */
    bool queued;
} gc_sudog;

typedef struct gc_waitq { gc_sudog *first, *last; } gc_waitq;

/* Items up to this size are copied through the hand-off slot and a
 * blocked op's gc_wait, larger ones stay where the caller has them. */
#define GC_INLINE 16

#ifndef FAM_GC_SLOT
#define FAM_GC_SLOT 0
#endif
enum { GC_SLOT_FREE, GC_SLOT_SEND, GC_SLOT_RECV, GC_SLOT_CLAIMED, GC_SLOT_FILLED, GC_SLOT_CLOSED };

/* What every operation touches (the lock, closed, the slot, the two queues)
 * comes first, in the first cache line when the family's lock is small (the
 * spin lock and the futex lock): a hand-off through the slot then moves that
 * line alone between the cores, one through a queued waiter that line and
 * the waiter's. What a rendezvous only reads (the sizes) and the buffer's
 * indices (the mutex family's buffered channels only) follow. */
typedef struct gochan {
    FAM_LOCK_T lock;
    int closed;
#if FAM_GC_SLOT
    _Atomic uint32_t slot;                  /* GC_SLOT_*: see the top */
    unsigned char slot_item[GC_INLINE];
#endif
    gc_waitq sendq, recvq;
    size_t count, elem_size, cap;
    size_t recvx, sendx;
    unsigned char *buf;     /* cap * elem_size bytes, NULL for cap 0 */
}
#if FAM_GC_SLOT
__attribute__((aligned(CP_CACHELINE)))
#endif
gochan;
#if FAM_GC_SLOT
_Static_assert(offsetof(gochan, recvq) + sizeof(gc_waitq) <= CP_CACHELINE,
               "gochan: the lock, closed, the slot and the queues in one line");
#endif

/* The claimer tells a select which case fired (written before the finish's
 * release, read after the waiter sees DONE). */
#define GC_ON_CLAIM(sg)                                                       \
    do {                                                                      \
        CP_CHAOS_POINT();   /* between the claim CAS and its follow-up */     \
        if ((sg)->idx >= 0) (sg)->w->index = (sg)->idx;                       \
    } while (0)
CP_WQ_DEFINE(gc, gc_sudog, gc_waitq, GC_ON_CLAIM)

static inline unsigned char *gc_slot(gochan *c, size_t i) { return c->buf + i * c->elem_size; }

static inline int gc_init(gochan *c, size_t elem_size, size_t cap, unsigned char *buf)
{
    memset(c, 0, sizeof *c);
    FAM_LOCK_INIT(&c->lock);
    c->elem_size = elem_size;
    c->cap = cap;
    c->buf = buf;
    return 0;
}

static inline void gc_fini(gochan *c) { FAM_LOCK_FINI(&c->lock); }

/* A blocked send or receive (gc_block): its item, its sudog and its
 * waiter's state and ok, in one cache line, so that a claimer moves one
 * line between the cores, not also the one of the caller's frame that
 * holds the item (a sender's item is copied in before it queues, a
 * receiver's copied out after DONE). Measured with `cpbench ab`, chan cap 0
 * 1P1C, 24 rounds: futex 1.28x, mutex 1.19x items/s. Items above GC_INLINE
 * bytes stay where the caller has them. */
typedef struct gc_wait {
    unsigned char buf[GC_INLINE];
    gc_sudog sg;
    cp_waiter w;
} __attribute__((aligned(CP_CACHELINE))) gc_wait;
_Static_assert(offsetof(gc_wait, w) + offsetof(cp_waiter, ok) + sizeof(int32_t) <= CP_CACHELINE,
               "gc_wait: the item, the sudog, the waiter's state and ok in one line");

#if FAM_GC_SLOT
/* This thread's slot waits in a row that it left (cp_spin_skip): a thread
 * whose partners are not running skips the slot. */
static _Thread_local unsigned gc_slot_misses;

/* The slot word: the state in its low 3 bits, above them the number of
 * times the slot was taken (a waiter tells its own turn from a later one:
 * a SEND slot's claimer frees it, and it may be taken again before the
 * waiter looks). */
#define GC_ST(w) ((w) & 7u)
#define GC_TURN(w) ((w) & ~7u)

/* Claim a RECV slot, with or without the lock: copy the item in, FILLED. */
static inline bool gc_slot_fill(gochan *c, const void *elem)
{
    uint32_t w = atomic_load_explicit(&c->slot, memory_order_relaxed);
    /* acquire: the write of slot_item follows the last reader's (its
     * release of FREE, then the taker's release of RECV) */
    if (GC_ST(w) != GC_SLOT_RECV ||
        !atomic_compare_exchange_strong_explicit(&c->slot, &w, GC_TURN(w) | GC_SLOT_CLAIMED,
                                                 memory_order_acquire, memory_order_relaxed))
        return false;
    CP_CHAOS_POINT();   /* claimed, the item not yet in */
    cp_ring_copy(c->slot_item, elem, c->elem_size);
    atomic_store_explicit(&c->slot, GC_TURN(w) | GC_SLOT_FILLED, memory_order_release);
    return true;
}

/* Claim a SEND slot, with or without the lock: copy the item out and free
 * the slot. locked: the caller holds the lock, so nobody takes the slot
 * again (and writes slot_item) before it unlocks, and the claim frees it
 * at once. */
static inline bool gc_slot_take(gochan *c, void *elem, bool locked)
{
    uint32_t w = atomic_load_explicit(&c->slot, memory_order_relaxed);
    /* acquire: slot_item as the taker wrote it before its release of SEND */
    if (GC_ST(w) != GC_SLOT_SEND ||
        !atomic_compare_exchange_strong_explicit(&c->slot, &w,
                                                 GC_TURN(w) | (locked ? GC_SLOT_FREE : GC_SLOT_CLAIMED),
                                                 memory_order_acquire, memory_order_relaxed))
        return false;
    if (!locked) CP_CHAOS_POINT();  /* claimed, the item not yet out */
    cp_ring_copy(elem, c->slot_item, c->elem_size);
    /* release: the next taker writes slot_item after this read */
    if (!locked) atomic_store_explicit(&c->slot, GC_TURN(w) | GC_SLOT_FREE, memory_order_release);
    return true;
}

/* The slot's turn w (taken as SEND or RECV) still waits for its claimer. */
static inline bool gc_slot_pending(uint32_t s, uint32_t w)
{
    return s == w || s == (GC_TURN(w) | GC_SLOT_CLAIMED);
}

/* Wait in the free slot; called with the lock held. The wait spins as
 * cp_w_spin does (CP_FREE_SPINS pauses, then more only with a spinner
 * slot, up to FAM_GC_SLOT_SPINS), never yields or sleeps there. Returns the
 * op's status with the lock released, or CP_WOULDBLOCK with it held again
 * and the slot given back (nobody came, or the ctx ended): the op goes on
 * as a queued waiter, the oldest of its side, whose park yields and
 * sleeps as the family's do. */
static cp_status gc_slot_wait(gochan *c, bool send, void *elem, cp_ctx *ctx)
{
    if (send) cp_ring_copy(c->slot_item, elem, c->elem_size);
    /* The next turn. release: a claimer without the lock reads slot_item
     * after its CAS */
    const uint32_t w = GC_TURN(atomic_load_explicit(&c->slot, memory_order_relaxed) + 8) |
                       (send ? GC_SLOT_SEND : GC_SLOT_RECV);
    atomic_store_explicit(&c->slot, w, memory_order_release);
    FAM_UNLOCK(&c->lock);
    CP_CHAOS_POINT();   /* in the slot, not yet spinning */
    bool spin = false, leave = false;
    uint32_t s;
    for (int i = 0;; i++) {
        s = atomic_load_explicit(&c->slot, memory_order_acquire);
        if (!gc_slot_pending(s, w)) break;
        if (i == CP_FREE_SPINS) spin = cp_spin_begin();
        if ((i >= CP_FREE_SPINS && (!spin || i == FAM_GC_SLOT_SPINS)) ||
            ((i & 15) == 15 && cp__ctx_err_fast(ctx))) {
            leave = true;
            break;
        }
        cp_cpu_relax();
    }
    if (spin) cp_spin_end();
    gc_slot_misses = leave ? gc_slot_misses + 1 : 0;
    if (leave) {
        CP_CHAOS_POINT();   /* leaving: a partner or close may come first */
        FAM_LOCK(&c->lock);
        s = w;
        /* relaxed: the slot goes back to lock holders only */
        if (atomic_compare_exchange_strong_explicit(&c->slot, &s, GC_TURN(w) | GC_SLOT_FREE,
                                                    memory_order_relaxed, memory_order_relaxed))
            return CP_WOULDBLOCK;
        FAM_UNLOCK(&c->lock);
        /* Claimed, closed, or being claimed: a claimer without the lock
         * copies one item between its CAS and its store, but may be
         * preempted there. */
        for (unsigned n = 0; gc_slot_pending(s = atomic_load_explicit(&c->slot, memory_order_acquire), w);)
            cp_wait_step(&n);
    }
    /* A SEND turn that is over was claimed and freed by its claimer, or
     * closed; a RECV turn is FILLED or closed, and ours to free. */
    if (s == (GC_TURN(w) | GC_SLOT_CLOSED)) {
        atomic_store_explicit(&c->slot, GC_TURN(w) | GC_SLOT_FREE, memory_order_release);
        return CP_CLOSED;
    }
    if (!send) {
        cp_ring_copy(elem, c->slot_item, c->elem_size);
        /* release: the next taker writes slot_item after this read */
        atomic_store_explicit(&c->slot, GC_TURN(w) | GC_SLOT_FREE, memory_order_release);
    }
    return CP_OK;
}
#endif

/* Park on q after the fast checks failed; called with the lock held, returns
 * with it released. elem: the item (q is sendq) or where it goes. */
static cp_status gc_block(gochan *c, gc_waitq *q, void *elem, cp_ctx *ctx)
{
    gc_wait me;
    cp_wnode cn;
    const bool inl = c->elem_size <= GC_INLINE, send = q == &c->sendq;
    bool oldest = false;    /* left the slot: first of its side */
#if FAM_GC_SLOT
    /* Rendezvous only: a sender in the slot of a full buffer would be
     * taken before the buffered items (the per-producer FIFO broke when
     * the mutex family's buffered channels had the slot). */
    if (inl && c->cap == 0 && !q->first &&
        GC_ST(atomic_load_explicit(&c->slot, memory_order_acquire)) == GC_SLOT_FREE &&
        !cp__ctx_err_fast(ctx) && !cp_spin_skip(&gc_slot_misses)) {
        cp_status st = gc_slot_wait(c, send, elem, ctx);
        if (st != CP_WOULDBLOCK) return st;
        oldest = true;
    }
#endif
    FAM_W_INIT(&me.w);
    me.w.buffered = c->cap > 0;   /* no yield floor (cp_yield_due) */
    me.w.spun = oldest;
    me.sg.w = &me.w;
    me.sg.idx = -1;         /* not a select's: GC_ON_CLAIM leaves w.index */
    me.sg.elem = inl ? me.buf : elem;
    if (inl && send) cp_ring_copy(me.buf, elem, c->elem_size);
    /* Lock order: channel lock -> ctx wake list -> waiter. The ctx callback
     * only touches the waiter, never the channel. */
    cp_status st = cp__ctx_watch(ctx, &me.w, &cn);
    if (st) {
        FAM_UNLOCK(&c->lock);
        FAM_W_FINI(&me.w);
        return st;
    }
    if (oldest) gc_push_front(q, &me.sg);
    else gc_enqueue(q, &me.sg);
    FAM_UNLOCK(&c->lock);

    uint32_t s = FAM_W_PARK(&me.w, cp_ctx_deadline(ctx));
    cp_wlist_del(&cn);
    if (s != CP_W_DONE) {
        FAM_LOCK(&c->lock);
        if (me.sg.queued) gc_remove(q, &me.sg);
        FAM_UNLOCK(&c->lock);
        FAM_W_FINI(&me.w);
        return cp__ctx_reason(ctx);
    }
    int ok = me.w.ok;
    if (ok && inl && !send) cp_ring_copy(elem, me.buf, c->elem_size);
    FAM_W_FINI(&me.w);
    return ok ? CP_OK : CP_CLOSED;
}

/* Under the lock: complete a send now if it can be (CP_OK, CP_CLOSED) or
 * say CP_WOULDBLOCK. *fin: a claimed partner to finish after unlocking. */
static inline __attribute__((always_inline)) cp_status
gc_send_locked(gochan *c, const void *elem, cp_waiter **fin)
{
    if (c->closed) return CP_CLOSED;
#if FAM_GC_SLOT
    if (gc_slot_fill(c, elem)) return CP_OK;
#endif
    gc_sudog *sg = gc_pop_claimed(&c->recvq);
    if (sg) {   /* a receiver is waiting: hand over directly */
        cp_ring_copy(sg->elem, elem, c->elem_size);
        sg->w->ok = 1;
        *fin = sg->w;
        return CP_OK;
    }
    if (c->count < c->cap) {
        cp_ring_copy(gc_slot(c, c->sendx), elem, c->elem_size);
        if (++c->sendx == c->cap) c->sendx = 0;
        c->count++;
        return CP_OK;
    }
    return CP_WOULDBLOCK;
}

/* Under the lock: complete a receive now (CP_OK, CP_CLOSED when closed and
 * drained) or say CP_WOULDBLOCK. *fin as above. */
static inline __attribute__((always_inline)) cp_status
gc_recv_locked(gochan *c, void *elem, cp_waiter **fin)
{
#if FAM_GC_SLOT
    if (gc_slot_take(c, elem, true)) return CP_OK;
#endif
    gc_sudog *sg = gc_pop_claimed(&c->sendq);
    if (sg) {
        if (c->cap == 0) {
            cp_ring_copy(elem, sg->elem, c->elem_size);
        } else {
            /* Buffer is full (a sender waits): take its head, put the
             * sender's item at the tail, which is the same slot. */
            unsigned char *slot = gc_slot(c, c->recvx);
            cp_ring_copy(elem, slot, c->elem_size);
            cp_ring_copy(slot, sg->elem, c->elem_size);
            if (++c->recvx == c->cap) c->recvx = 0;
            c->sendx = c->recvx;
        }
        sg->w->ok = 1;
        *fin = sg->w;
        return CP_OK;
    }
    if (c->count > 0) {
        cp_ring_copy(elem, gc_slot(c, c->recvx), c->elem_size);
        if (++c->recvx == c->cap) c->recvx = 0;
        c->count--;
        return CP_OK;
    }
    if (c->closed) return CP_CLOSED;
    return CP_WOULDBLOCK;
}

static cp_status gc_send(gochan *c, const void *elem, cp_ctx *ctx, bool block)
{
#if FAM_GC_SLOT
    if (gc_slot_fill(c, elem)) return CP_OK;   /* a receiver waits there: no lock */
#endif
    cp_waiter *fin = NULL;
    FAM_LOCK(&c->lock);
    cp_status st = gc_send_locked(c, elem, &fin);
    if (st != CP_WOULDBLOCK || !block) {
        FAM_UNLOCK(&c->lock);
        if (fin) FAM_W_FINISH(fin);
        return st;
    }
    return gc_block(c, &c->sendq, (void *)elem, ctx);
}

static cp_status gc_recv(gochan *c, void *elem, cp_ctx *ctx, bool block)
{
#if FAM_GC_SLOT
    /* A sender waits in the slot: no lock. A blocking receiver looks again
     * for a moment first (see the top). */
    if (gc_slot_take(c, elem, false)) return CP_OK;
    if (block && c->elem_size <= GC_INLINE)
        for (int i = 0; i < CP_FREE_SPINS; i++) {
            cp_cpu_relax();
            if (gc_slot_take(c, elem, false)) return CP_OK;
        }
#endif
    cp_waiter *fin = NULL;
    FAM_LOCK(&c->lock);
    cp_status st = gc_recv_locked(c, elem, &fin);
    if (st != CP_WOULDBLOCK || !block) {
        FAM_UNLOCK(&c->lock);
        if (fin) FAM_W_FINISH(fin);
        return st;
    }
    return gc_block(c, &c->recvq, elem, ctx);
}

static cp_status gc_close(gochan *c)
{
    FAM_LOCK(&c->lock);
    if (c->closed) {
        FAM_UNLOCK(&c->lock);
        return CP_CLOSED;
    }
    c->closed = 1;
#if FAM_GC_SLOT
    /* A claim without the lock may win the CAS: then it was a hand-off
     * before the close, and its turn ends as any claimed one. */
    uint32_t w = atomic_load_explicit(&c->slot, memory_order_relaxed);
    if (GC_ST(w) == GC_SLOT_SEND || GC_ST(w) == GC_SLOT_RECV)
        atomic_compare_exchange_strong_explicit(&c->slot, &w, GC_TURN(w) | GC_SLOT_CLOSED,
                                                memory_order_release, memory_order_relaxed);
#endif
    /* Claim every waiter under the lock, wake them after (chan.go's
     * closechan). A woken sender's item is not delivered. */
    gc_sudog *wake = NULL, *sg;
    while ((sg = gc_pop_claimed(&c->recvq)) || (sg = gc_pop_claimed(&c->sendq))) {
        sg->w->ok = 0;
        sg->next = wake;
        wake = sg;
    }
    FAM_UNLOCK(&c->lock);
    gc_finish_all(wake);
    return CP_OK;
}

static inline size_t gc_len(gochan *c)
{
    FAM_LOCK(&c->lock);
    size_t n = c->count;
    FAM_UNLOCK(&c->lock);
    return n;
}

#endif /* CP_IMPL_GOCHAN_H */
