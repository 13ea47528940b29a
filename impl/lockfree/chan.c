/*
 * lockfree family: buffered channels are the lock-free ring of ring.h;
 * a thread that must wait spins with pause, then yields, re-trying its
 * operation and checking its ctx and deadline as it goes. It never sleeps in
 * the kernel (sched_yield is the most it does), so it shines while threads
 * <= cores and pays for it when oversubscribed.
 *
 * Rendezvous (capacity 0) channels are gochan.h under a spin lock: a direct
 * hand-off needs the partner's identity, which a ring cannot give. A
 * blocked op waits a moment in the channel's hand-off slot (gochan.h),
 * then as a queued waiter spinning on its own state word.
 * (The waiter's invariant: adapter.h.)
 */
#include "adapter.h"
#include "../ring.h"

#include <errno.h>


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
    size_t hdr = (sizeof(cp_chan) + CP_CACHELINE - 1) & ~(size_t)(CP_CACHELINE - 1), bytes;
    /* Sizes that do not fit are ENOMEM, for capacity 0 too (an element that
     * large cannot exist); see cp__obj_size. */
    if (!cp_ring_bytes(hdr, cap, elem_size, &bytes)) { errno = ENOMEM; return NULL; }
    cp_chan *ch = cp__zalloc(bytes);
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

/* While they spin, the slow paths try without the exact full/empty test
 * (cp_ring_push_'s exact), so that a waiting side polls only the slot it
 * wants and its own index; on cp_ring_exact_round's rounds, and on every
 * round once they yield (a system call dwarfs the fence), they ask exactly,
 * which is how a receiver learns that the channel is closed and drained. */
#define LF_EXACT(n, spin) (!(spin) || (n) >= LF_SPIN || cp_ring_exact_round(n))

__attribute__((noinline)) static cp_status send_slow(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    bool spin = cp_spin_begin();
    cp_status st = cp__ctx_err_fast(ctx);
    for (unsigned n = 0; st == CP_OK; st = lf_pause(&n, spin, ctx)) {
        cp_status r = cp_ring_push_(&ch->ring, elem, LF_EXACT(n, spin));
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
        cp_status r = cp_ring_pop_(&ch->ring, elem, LF_EXACT(n, spin));
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
    cp_status st = cp_ring_push_(&ch->ring, elem, false);
    if (cp_likely(st != CP_WOULDBLOCK)) return st;
    return send_slow(ch, elem, ctx);
}

cp_status cp_lockfree_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    if (cp_unlikely(!ch->cap)) return gc_recv(&ch->gc, elem, ctx, true);
    cp_status st = cp_ring_pop_(&ch->ring, elem, false);
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

/* ---- select ----
 * Rings have no waiter queue, so a select polls. Every round it locks the
 * gochans of its cases (address order), polls all cases in random order
 * (ring try ops, gochan ops under the locks, events), and if none is ready
 * it enqueues one sudog per gochan case for one waiter (needed: two selects
 * that only polled a rendezvous channel from both sides would never meet),
 * unlocks, and waits as every lockfree waiter does: spin with an exponential
 * pause (while cp_spin_begin allows), then sched_yield, never sleeping in
 * the kernel. While it waits it watches its waiter's state (a gochan partner
 * claimed it), the rings (cp_ring_can_pop/push), the events' fired flags,
 * and, every 16 rounds, the ctx and the deadline. Events and the ctx are
 * polled rather than registered: the loop has to poll the rings anyway. When
 * something looks ready it cancels its own waiter (the same CAS a partner's
 * claim races with: exactly one wins), removes its sudogs and polls again;
 * if the partner won, it waits for DONE and returns that case. */
struct sel_park {
    int spin;               /* cp_spin_begin's answer, asked at the first wait */
    unsigned pauses;        /* across rounds: a busy select backs off too */
};
#include "../select.h"

static gochan *sel_gc_of(cp_chan *ch) { return ch->cap ? NULL : &ch->gc; }

static cp_status sel_ring_try(cp_case *c, gc_selslot *sl)
{
    cp_ring *r = &c->ch->ring;
    cp_ring_version(r, &sl->vh, &sl->vt);
    return c->op == CP_SEND ? cp_ring_try_push(r, c->elem) : cp_ring_try_pop(r, c->elem);
}

/* Does a ring or event case look ready? (Stale either way; re-polled.) */
static bool lf_sel_peek(gc_sel *s)
{
    for (size_t i = 0; i < s->n; i++) {
        cp_case *c = &s->cases[i];
        if (s->slot[i].ring) {
            if (c->op == CP_SEND ? cp_ring_can_push(&c->ch->ring) : cp_ring_can_pop(&c->ch->ring))
                return true;
        } else if (c->op == CP_WAIT && c->ev && cp_event_fired(c->ev)) {
            return true;
        }
    }
    return false;
}

static cp_status sel_park_begin(gc_sel *s, struct sel_park *p)
{
    (void)s;
    p->spin = -1;
    p->pauses = 0;
    return CP_OK;
}

static void sel_park_end(gc_sel *s, struct sel_park *p)
{
    (void)s;
    if (p->spin > 0) cp_spin_end();
}

/* Events and the ctx are polled, not registered (see above). */
static uint32_t sel_park(gc_sel *s, cp_waiter *w, cp_ctx *ctx, struct sel_park *p)
{
    if (p->spin < 0) p->spin = cp_spin_begin();
    uint32_t r;
    for (unsigned k = 0;; k++) {
        r = atomic_load_explicit(&w->state, memory_order_acquire);
        if (r >= CP_W_DONE) break;
        if (r == CP_W_WAITING) {
            bool look = lf_sel_peek(s);
            if (!look && (k & 15) == 15) {
                uint64_t now = s->deadline ? cp_now_ns() : 0;
                look = cp__ctx_err_fast(ctx) || (s->deadline && now >= s->deadline);
            }
            if (look && cp_lockfree_w_cancel(w)) {
                r = CP_W_CANCELED;
                break;
            }
        }
        unsigned q = p->pauses++;
        if (p->spin && q < LF_SPIN) {
            for (unsigned m = 1u << (q < 6 ? q : 6); m; m--) cp_cpu_relax();
        } else {
            sched_yield();
        }
    }
    return r;
}
