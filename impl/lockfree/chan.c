/*
 * lockfree family: buffered channels are the lock-free ring of ring.h;
 * a thread that must wait spins with pause, then yields, re-trying its
 * operation and checking its ctx and deadline as it goes. It never sleeps in
 * the kernel (sched_yield is the most it does), so it shines while threads
 * <= cores and pays for it when oversubscribed.
 *
 * Rendezvous (capacity 0) channels are gochan.h under a spin lock: a direct
 * hand-off needs the partner's identity, which a ring cannot give. Their
 * waiters spin on their own state word.
 *
 * Waiter invariant: state moves by CAS (claim, cancel, timeout) or by the
 * claimer's release store of DONE; the waiter only spins on it, so nobody
 * touches a waiter after the store that ends its wait.
 */
#include "../../core/internal.h"
#include "waiter.h"
#include "../ring.h"

#include <errno.h>


#define GC_LOCK_T cp_spin
#define GC_LOCK_INIT(l) atomic_init(&(l)->v, 0)
#define GC_LOCK_FINI(l) ((void)(l))
#define GC_LOCK cp_spin_lock
#define GC_UNLOCK cp_spin_unlock
#define GC_W_INIT cp_lockfree_w_init
#define GC_W_FINI cp_lockfree_w_fini
#define GC_W_CLAIM cp_lockfree_w_claim
#define GC_W_FINISH cp_lockfree_w_finish
#define GC_W_PARK cp_lockfree_w_park
#include "../gochan.h"

struct cp_chan {
    const cp_backend *b;
    size_t cap;
    union {
        cp_ring ring;   /* cap > 0 */
        gochan gc;      /* cap == 0 */
    };
};

#define OWN(ch, ctx) ((ctx) == NULL || (ctx)->b == (ch)->b)

cp_chan *cp_lockfree_chan_new(const cp_backend *b, size_t elem_size, size_t cap)
{
    if (b != &cp_backend_lockfree) { errno = EINVAL; return NULL; }
    size_t stride = cp_ring_stride(elem_size);
    if (cap > (SIZE_MAX / 2) / stride) { errno = ENOMEM; return NULL; }
    size_t hdr = (sizeof(cp_chan) + CP_CACHELINE - 1) & ~(size_t)(CP_CACHELINE - 1);
    cp_chan *ch = cp__zalloc(hdr + cp_ring_bytes(cap, elem_size));
    if (!ch) return NULL;
    ch->b = b;
    ch->cap = cap;
    if (cap) cp_ring_init(&ch->ring, cap, elem_size, (unsigned char *)ch + hdr);
    else gc_init(&ch->gc, elem_size, 0, NULL);
    return ch;
}

void cp_lockfree_chan_free(cp_chan *ch) { free(ch); }

/* Wait between retries: exponential pause (1, 2, 4 ... 64 pauses), so that
 * a full or empty ring is not hammered on the very cache line the other side
 * is about to write; after LF_SPIN rounds, yield. Every 16 rounds look at the
 * ctx (its clock read costs as much as a ring operation). */
static inline cp_status lf_pause(unsigned *n, bool spin, cp_ctx *ctx)
{
    unsigned i = (*n)++;
    if ((i & 15) == 15) {
        cp_status st = cp__ctx_err_fast(ctx);
        if (st) return st;
    }
    if (spin && i < LF_SPIN) {
        for (unsigned k = 1u << (i < 6 ? i : 6); k; k--) cp_cpu_relax();
    } else {
        sched_yield();
    }
    return CP_OK;
}

__attribute__((noinline)) static cp_status send_slow(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    bool spin = cp_spin_begin();
    cp_status st = cp__ctx_err_fast(ctx);
    for (unsigned n = 0; st == CP_OK; st = lf_pause(&n, spin, ctx)) {
        cp_status r = cp_ring_try_push(&ch->ring, elem);
        if (r != CP_WOULDBLOCK) {
            st = r;
            break;
        }
    }
    if (spin) cp_spin_end();
    return st;
}

__attribute__((noinline)) static cp_status recv_slow(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    bool spin = cp_spin_begin();
    cp_status st = cp__ctx_err_fast(ctx);
    for (unsigned n = 0; st == CP_OK; st = lf_pause(&n, spin, ctx)) {
        cp_status r = cp_ring_try_pop(&ch->ring, elem);
        if (r != CP_WOULDBLOCK) {
            st = r;
            break;
        }
    }
    if (spin) cp_spin_end();
    return st;
}

cp_status cp_lockfree_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    if (cp_unlikely(!ch->cap)) return gc_send(&ch->gc, elem, ctx, true);
    cp_status st = cp_ring_try_push(&ch->ring, elem);
    if (cp_likely(st != CP_WOULDBLOCK)) return st;
    return send_slow(ch, elem, ctx);
}

cp_status cp_lockfree_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    if (cp_unlikely(!ch->cap)) return gc_recv(&ch->gc, elem, ctx, true);
    cp_status st = cp_ring_try_pop(&ch->ring, elem);
    if (cp_likely(st != CP_WOULDBLOCK)) return st;
    return recv_slow(ch, elem, ctx);
}

cp_status cp_lockfree_chan_try_send(cp_chan *ch, const void *elem)
{
    if (!ch->cap) return gc_send(&ch->gc, elem, NULL, false);
    return cp_ring_try_push(&ch->ring, elem);
}

cp_status cp_lockfree_chan_try_recv(cp_chan *ch, void *elem)
{
    if (!ch->cap) return gc_recv(&ch->gc, elem, NULL, false);
    return cp_ring_try_pop(&ch->ring, elem);
}

cp_status cp_lockfree_chan_close(cp_chan *ch)
{
    if (!ch->cap) return gc_close(&ch->gc);
    /* Spinning waiters see the mark on their next try. */
    return cp_ring_close(&ch->ring) ? CP_OK : CP_CLOSED;
}

size_t cp_lockfree_chan_len(cp_chan *ch) { return ch->cap ? cp_ring_len(&ch->ring) : 0; }
size_t cp_lockfree_chan_cap(cp_chan *ch) { return ch->cap; }
