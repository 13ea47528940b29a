/*
 * futex family: the same lock-free ring as lockfree for buffered channels,
 * but a waiter spins briefly and then sleeps on an event count (one per
 * side: receivers wait on recv_ec for items, senders on send_ec for space).
 * Every successful operation signals the other side's event count, which
 * costs a fence and a load unless someone sleeps there; only then is there
 * a FUTEX_WAKE. A blocked call registers with its ctx's done list a callback
 * that kicks its event count, so a cancel wakes it at once; a deadline is a
 * futex timeout.
 *
 * Rendezvous channels are gochan.h under a futex mutex, with waiters parked
 * on their own state word (PARKED bit set by the sleeper, so a finisher calls
 * FUTEX_WAKE only when somebody sleeps).
 *
 * Note: the finisher's FUTEX_WAKE may reach a waiter's stack word after the
 * waiter has seen DONE and returned; a futex wake touches no user memory,
 * and every futex wait in libcp re-checks its condition, so the worst case
 * is one spurious wake-up of whatever sleeps there later.
 */
#include "futex.h"
#include "waiter.h"
#include "../ring.h"

#define GC_LOCK_T cp_fmutex
#define GC_LOCK_INIT(l) atomic_init(&(l)->v, 0)
#define GC_LOCK_FINI(l) ((void)(l))
#define GC_LOCK cp_fmutex_lock
#define GC_UNLOCK cp_fmutex_unlock
#define GC_W_INIT cp_futex_w_init
#define GC_W_FINI cp_futex_w_fini
#define GC_W_CLAIM cp_futex_w_claim
#define GC_W_FINISH cp_futex_w_finish
#define GC_W_PARK cp_futex_w_park
#include "../gochan.h"

struct cp_chan {
    const cp_backend *b;
    size_t cap;
    CP_ALIGNED cp_ec recv_ec;   /* receivers sleep here, waiting for items */
    CP_ALIGNED cp_ec send_ec;   /* senders sleep here, waiting for space */
    union {
        cp_ring ring;
        gochan gc;
    };
};

#define OWN(ch, ctx) ((ctx) == NULL || (ctx)->b == (ch)->b)

cp_chan *cp_futex_chan_new(const cp_backend *b, size_t elem_size, size_t cap)
{
    if (b != &cp_backend_futex) { errno = EINVAL; return NULL; }
    size_t stride = cp_ring_stride(elem_size);
    if (cap > (SIZE_MAX / 2) / stride) { errno = ENOMEM; return NULL; }
    size_t hdr = (sizeof(cp_chan) + CP_CACHELINE - 1) & ~(size_t)(CP_CACHELINE - 1);
    cp_chan *ch = cp__zalloc(hdr + cp_ring_bytes(cap, elem_size));
    if (!ch) return NULL;
    ch->b = b;
    ch->cap = cap;
    atomic_init(&ch->recv_ec.w, 0);
    atomic_init(&ch->send_ec.w, 0);
    if (cap) cp_ring_init(&ch->ring, cap, elem_size, (unsigned char *)ch + hdr);
    else gc_init(&ch->gc, elem_size, 0, NULL);
    return ch;
}

void cp_futex_chan_free(cp_chan *ch) { free(ch); }

static void kick_ec(cp_wnode *n) { cp_ec_signal(n->arg); }

/* Wait on ec until op (push or pop) stops saying WOULDBLOCK or ctx ends. */
#define FX_WAIT_LOOP(ch, ec, op, ctx)                                         \
    do {                                                                      \
        cp_status r_ = cp__ctx_err_fast(ctx);                                 \
        if (r_ == CP_OK && cp_spin_begin()) {                                 \
            cp_status got_ = CP_WOULDBLOCK;                                   \
            for (int i_ = 0; i_ < FX_SPIN && got_ == CP_WOULDBLOCK; i_++) {   \
                cp_cpu_relax();                                               \
                got_ = (op);                                                  \
            }                                                                 \
            cp_spin_end();                                                    \
            if (got_ != CP_WOULDBLOCK) return got_; /* done: never redo op */ \
        }                                                                     \
        if (r_) return r_;                                                    \
        cp_wnode cn_ = { .fn = kick_ec, .arg = (ec) };                        \
        if ((ctx) && !cp_wlist_add(&(ctx)->done.wl, &cn_)) return cp_ctx_err(ctx); \
        uint64_t dl_ = cp_ctx_deadline(ctx);                                  \
        for (;;) {                                                            \
            uint32_t v_ = cp_ec_prepare(ec);                                  \
            if ((r_ = (op)) != CP_WOULDBLOCK) break;                          \
            if ((r_ = cp__ctx_err_fast(ctx)) != CP_OK) break;                 \
            cp_futex_wait(&(ec)->w, v_, dl_);                                 \
        }                                                                     \
        if (ctx) cp_wlist_del(&cn_);                                          \
        return r_;                                                            \
    } while (0)

__attribute__((noinline)) static cp_status send_wait(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    FX_WAIT_LOOP(ch, &ch->send_ec, cp_ring_try_push(&ch->ring, elem), ctx);
}

__attribute__((noinline)) static cp_status recv_wait(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    FX_WAIT_LOOP(ch, &ch->recv_ec, cp_ring_try_pop(&ch->ring, elem), ctx);
}

cp_status cp_futex_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    if (cp_unlikely(!ch->cap)) return gc_send(&ch->gc, elem, ctx, true);
    cp_status st = cp_ring_try_push(&ch->ring, elem);
    if (cp_unlikely(st == CP_WOULDBLOCK)) st = send_wait(ch, elem, ctx);
    if (st == CP_OK) cp_ec_signal(&ch->recv_ec);
    return st;
}

cp_status cp_futex_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    if (cp_unlikely(!ch->cap)) return gc_recv(&ch->gc, elem, ctx, true);
    cp_status st = cp_ring_try_pop(&ch->ring, elem);
    if (cp_unlikely(st == CP_WOULDBLOCK)) st = recv_wait(ch, elem, ctx);
    if (st == CP_OK) cp_ec_signal(&ch->send_ec);
    return st;
}

cp_status cp_futex_chan_try_send(cp_chan *ch, const void *elem)
{
    if (!ch->cap) return gc_send(&ch->gc, elem, NULL, false);
    cp_status st = cp_ring_try_push(&ch->ring, elem);
    if (st == CP_OK) cp_ec_signal(&ch->recv_ec);
    return st;
}

cp_status cp_futex_chan_try_recv(cp_chan *ch, void *elem)
{
    if (!ch->cap) return gc_recv(&ch->gc, elem, NULL, false);
    cp_status st = cp_ring_try_pop(&ch->ring, elem);
    if (st == CP_OK) cp_ec_signal(&ch->send_ec);
    return st;
}

cp_status cp_futex_chan_close(cp_chan *ch)
{
    if (!ch->cap) return gc_close(&ch->gc);
    if (!cp_ring_close(&ch->ring)) return CP_CLOSED;
    cp_ec_signal(&ch->recv_ec);
    cp_ec_signal(&ch->send_ec);
    return CP_OK;
}

size_t cp_futex_chan_len(cp_chan *ch) { return ch->cap ? cp_ring_len(&ch->ring) : 0; }
size_t cp_futex_chan_cap(cp_chan *ch) { return ch->cap; }
