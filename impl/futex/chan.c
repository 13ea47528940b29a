/*
 * futex family: the same lock-free ring as lockfree for buffered channels,
 * but a waiter spins briefly, yields, then sleeps on an event count (one
 * per side: receivers wait on recv_ec for items, senders on send_ec for
 * space).
 * Every successful operation signals the other side's event count (a
 * counted one, cp_ecq in futex.h), which costs two loads unless someone
 * sleeps there (the ring's claim CAS is the signal's half of the Dekker
 * pair, so there is no fence: cp_ecq_signal_claimed); only then is there a
 * FUTEX_WAKE, of one blocked sender or receiver per item or slot (of all,
 * when a select sleeps there too). A blocked call registers with its ctx's
 * done list a callback that wakes its event count's sleepers, so a cancel
 * wakes it at once; a deadline is a futex timeout. A blocked call that ends without its item or
 * slot passes on the wake it may have taken.
 *
 * Rendezvous channels are gochan.h under a futex mutex: a blocked op first
 * waits a moment in the channel's hand-off slot (gochan.h), then as a waiter
 * parked on its own state word (PARKED bit set by the sleeper, so a finisher
 * calls FUTEX_WAKE only when somebody sleeps; the waiter's invariant:
 * adapter.h).
 */
#include "adapter.h"
#include "../../core/chaos.h"
/* The ring's claim is the signal's half of the Dekker pair (futex.h,
 * cp_ecq_signal_claimed). */
#define CP_RING_CLAIM_ORDER memory_order_seq_cst
#include "../ring.h"

#include "../gochan.h"

#include <sched.h>

struct cp_chan {
    const cp_backend *b;
    size_t cap;
    CP_ALIGNED cp_ecq recv_ec;  /* receivers sleep here, waiting for items */
    CP_ALIGNED cp_ecq send_ec;  /* senders sleep here, waiting for space */
    union {
        cp_ring ring;
        gochan gc;
    };
};

#define OWN(ch, ctx) ((ctx) == NULL || (ctx)->b == (ch)->b)

cp_chan *cp_futex_chan_new(const cp_backend *b, size_t elem_size, size_t cap)
{
    if (b != &cp_backend_futex) { errno = EINVAL; return NULL; }
    size_t hdr = (sizeof(cp_chan) + CP_CACHELINE - 1) & ~(size_t)(CP_CACHELINE - 1), bytes;
    /* Sizes that do not fit are ENOMEM, for capacity 0 too (an element that
     * large cannot exist); see cp__obj_size. */
    if (!cp_ring_bytes(hdr, cap, elem_size, &bytes)) { errno = ENOMEM; return NULL; }
    cp_chan *ch = cp__zalloc(bytes);
    if (!ch) return NULL;
    ch->b = b;
    ch->cap = cap;
    atomic_init(&ch->recv_ec.ec.w, 0);
    atomic_init(&ch->recv_ec.sleepers, 0);
    atomic_init(&ch->send_ec.ec.w, 0);
    atomic_init(&ch->send_ec.sleepers, 0);
    if (cap) cp_ring_init(&ch->ring, cap, elem_size, (unsigned char *)ch + hdr);
    else gc_init(&ch->gc, elem_size, 0, NULL);
    return ch;
}

void cp_futex_chan_free(cp_chan *ch) { free(ch); }

static void kick_ec(cp_wnode *n) { cp_ecq_broadcast(n->arg); }

/* Wait on q until op (push or pop) stops saying WOULDBLOCK or ctx ends:
 * FX_SPIN tries with a pause (while a spinner slot is free), then
 * FX_PARK_YIELDS tries (no time floor: a wait at the buffer's edge, see
 * cp_yield_due) each after a sched_yield (when threads outnumber
 * CPUs, the thread that would fill or drain the ring is often runnable
 * without a CPU: the yield gives it ours, and is cheaper than a futex sleep
 * and wake-up; any number of waiters yield, as hand-off waiters do in
 * cp_w_spin: with at most as many yielders as CPUs, chan 4P8C, 8P4C and
 * 8P8C measured 0.73-0.89x, and 0.75-0.90x per CPU-second), then the sleep
 * on the event count. op(exact) is cp_ring_push_/pop_: the spin tries
 * without the exact full/empty test but on cp_ring_exact_round's rounds (as
 * lockfree's do: a spinning side then polls only its slot and its own
 * index); the tries after a yield and the decision to sleep are exact, the
 * latter the waiter's half of the event count's Dekker pair. */
#define FX_WAIT_LOOP(ch, q, op, more, ctx)                                    \
    do {                                                                      \
        cp_status r_ = cp__ctx_err_fast(ctx);                                 \
        if (r_ == CP_OK && cp_spin_begin()) {                                 \
            cp_status got_ = CP_WOULDBLOCK;                                   \
            for (int i_ = 0; i_ < FX_SPIN && got_ == CP_WOULDBLOCK; i_++) {   \
                cp_cpu_relax();                                               \
                got_ = op(cp_ring_exact_round((unsigned)i_));                 \
            }                                                                 \
            cp_spin_end();                                                    \
            if (got_ != CP_WOULDBLOCK) return got_; /* done: never redo op */ \
        }                                                                     \
        if (r_) return r_;                                                    \
        for (int y_ = 0; y_ < FX_PARK_YIELDS; y_++) {                         \
            sched_yield(); /* to a runnable partner without a CPU */          \
            cp_status got_ = op(true);                                        \
            if (got_ != CP_WOULDBLOCK) return got_;                           \
            if ((r_ = cp__ctx_err_fast(ctx))) return r_; /* a yield can be long */ \
        }                                                                     \
        cp_wnode cn_ = { .fn = kick_ec, .arg = (q) };                         \
        if ((ctx) && !cp_wlist_add(&(ctx)->done.wl, &cn_)) return cp_ctx_err(ctx); \
        uint64_t dl_ = cp_ctx_deadline(ctx);                                  \
        bool cleared_ = false;                                                \
        do {                                                                  \
            uint32_t v_ = cp_ecq_unwake(q, cp_ecq_prepare(q), &cleared_);     \
            if ((r_ = op(true)) == CP_WOULDBLOCK &&                           \
                (r_ = cp__ctx_err_fast(ctx)) == CP_OK) {                      \
                CP_CHAOS_POINT(); /* announced, re-checked, not yet asleep */ \
                cp_futex_wait(&(q)->ec.w, v_, dl_);                           \
                r_ = CP_WOULDBLOCK;                                           \
            }                                                                 \
            cp_ecq_done(q);                                                   \
        } while (r_ == CP_WOULDBLOCK);                                        \
        if (ctx) cp_wlist_del(&cn_);                                          \
        /* Pass the wake on: to the next sleeper if there is more for it, or  \
         * if we leave without ours (it may have been the item's wake). */    \
        if (r_ != CP_OK || (cleared_ && more)) cp_ecq_signal(q);              \
        return r_;                                                            \
    } while (0)

__attribute__((noinline)) static cp_status send_wait(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
#define PUSH(exact) cp_ring_push_(&ch->ring, elem, exact)
    FX_WAIT_LOOP(ch, &ch->send_ec, PUSH, cp_ring_can_push(&ch->ring), ctx);
#undef PUSH
}

__attribute__((noinline)) static cp_status recv_wait(cp_chan *ch, void *elem, cp_ctx *ctx)
{
#define POP(exact) cp_ring_pop_(&ch->ring, elem, exact)
    FX_WAIT_LOOP(ch, &ch->recv_ec, POP, cp_ring_can_pop(&ch->ring), ctx);
#undef POP
}

cp_status cp_futex_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    if (cp_unlikely(!ch->cap)) return gc_send(&ch->gc, elem, ctx, true);
    cp_status st = cp_ring_push_(&ch->ring, elem, false);
    if (cp_unlikely(st == CP_WOULDBLOCK)) st = send_wait(ch, elem, ctx);
    if (st == CP_OK) cp_ecq_signal_claimed(&ch->recv_ec);
    return st;
}

cp_status cp_futex_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    if (cp_unlikely(!ch->cap)) return gc_recv(&ch->gc, elem, ctx, true);
    cp_status st = cp_ring_pop_(&ch->ring, elem, false);
    if (cp_unlikely(st == CP_WOULDBLOCK)) st = recv_wait(ch, elem, ctx);
    if (st == CP_OK) cp_ecq_signal_claimed(&ch->send_ec);
    return st;
}

cp_status cp_futex_chan_try_send(cp_chan *ch, const void *elem)
{
    if (!ch->cap) return gc_send(&ch->gc, elem, NULL, false);
    cp_status st = cp_ring_try_push(&ch->ring, elem);
    if (st == CP_OK) cp_ecq_signal_claimed(&ch->recv_ec);
    return st;
}

cp_status cp_futex_chan_try_recv(cp_chan *ch, void *elem)
{
    if (!ch->cap) return gc_recv(&ch->gc, elem, NULL, false);
    cp_status st = cp_ring_try_pop(&ch->ring, elem);
    if (st == CP_OK) cp_ecq_signal_claimed(&ch->send_ec);
    return st;
}

cp_status cp_futex_chan_close(cp_chan *ch)
{
    if (!ch->cap) return gc_close(&ch->gc);
    if (!cp_ring_close(&ch->ring)) return CP_CLOSED;
    cp_ecq_broadcast(&ch->recv_ec);
    cp_ecq_broadcast(&ch->send_ec);
    return CP_OK;
}

size_t cp_futex_chan_len(cp_chan *ch) { return ch->cap ? cp_ring_len(&ch->ring) : 0; }
size_t cp_futex_chan_cap(cp_chan *ch) { return ch->cap; }

/* ---- select ----
 * A select polls (gochans locked in address order, all cases in random
 * order), and if nothing is ready it registers one waiter everywhere it can:
 * a sudog on every rendezvous (gochan) case, a wake-list node on every
 * CP_WAIT event and on the ctx; all of these end the wait through the
 * waiter's state word. Rings have no waiter queue, but each has event counts:
 * the select takes a value of recv_ec (RECV cases) or send_ec (SEND cases)
 * with cp_ec_prepare, re-checks the rings (cp_ring_can_pop/push), and then
 * sleeps on all those words and its state word at once with futex_waitv(2)
 * (Linux 5.16+), with the deadline (the ctx's, or a waited ctx done event's
 * owner's) as an absolute CLOCK_MONOTONIC timeout. Before sleeping it spins
 * briefly (FX_SPIN rounds, if cp_spin_begin allows) and yields
 * (FX_PARK_YIELDS), like every futex waiter. A ring that became ready, or
 * the deadline, makes the select cancel its own waiter (racing a partner's
 * claim by CAS: one wins), unregister and poll again; a partner's claim
 * ends it with that case.
 * Without futex_waitv (probed once at start-up: cp__futex_waitv, see
 * backend.c) or with more ring cases than it takes, the select sleeps on its
 * state word alone for at most FX_POLL_NS at a time and re-checks the rings
 * in between. */
#define FX_WAITV_MAX 128            /* the kernel's FUTEX_WAITV_MAX */
#define FX_POLL_NS 1000000ull       /* fallback: re-check rings every 1 ms */

struct cp_futex_waitv {             /* the kernel's struct futex_waitv */
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t __reserved;
};
#define FX_WAITV_FLAGS (0x02u /* FUTEX2_SIZE_U32 */ | 128u /* FUTEX2_PRIVATE */)

/* What the park keeps across rounds: the futex_waitv entries, one per ring
 * case plus the waiter's word (on the stack up to GC_SEL_SMALL rings). */
#define FX_WAITV_SMALL 9
struct sel_park {
    struct cp_futex_waitv small[FX_WAITV_SMALL], *wv;
};
#include "../select.h"
_Static_assert(FX_WAITV_SMALL == GC_SEL_SMALL + 1, "a small select's rings and its waiter's word");

static gochan *sel_gc_of(cp_chan *ch) { return ch->cap ? NULL : &ch->gc; }

static cp_status sel_ring_try(cp_case *c, gc_selslot *sl)
{
    cp_chan *ch = c->ch;
    cp_ring_version(&ch->ring, &sl->vh, &sl->vt);
    cp_status st;
    if (c->op == CP_SEND) {
        if ((st = cp_ring_try_push(&ch->ring, c->elem)) == CP_OK) cp_ecq_signal_claimed(&ch->recv_ec);
    } else {
        if ((st = cp_ring_try_pop(&ch->ring, c->elem)) == CP_OK) cp_ecq_signal_claimed(&ch->send_ec);
    }
    return st;
}

static bool fx_ring_ready(cp_case *c)
{
    return c->op == CP_SEND ? cp_ring_can_push(&c->ch->ring) : cp_ring_can_pop(&c->ch->ring);
}

/* Prepare every ring case's event count into wv (if given), then look at
 * the rings: true if one looks ready. With wv, every entry is filled even
 * when an early ring is ready: the caller may still park on all of them
 * (its waiter claimed by a partner meanwhile: it waits for DONE), and an
 * entry left unfilled made futex_waitv fail with EINVAL (a crash). */
static bool fx_sel_rings(gc_sel *s, struct cp_futex_waitv *wv)
{
    size_t k = 0;
    bool ready = false;
    for (size_t i = 0; i < s->n && (!ready || wv); i++) {
        cp_case *c = &s->cases[i];
        if (!s->slot[i].ring) continue;
        if (wv) {
            cp_ec *ec = c->op == CP_SEND ? &c->ch->send_ec.ec : &c->ch->recv_ec.ec;
            wv[k].val = cp_ec_prepare(ec);
            wv[k].uaddr = (uint64_t)(uintptr_t)&ec->w;
            wv[k].flags = FX_WAITV_FLAGS;
            wv[k].__reserved = 0;
            k++;
        }
        ready = ready || fx_ring_ready(c);
    }
    return ready;
}

/* One look before the sleep: w's state, or CANCELED if a ring looked ready
 * and the select cancelled w itself. */
static uint32_t fx_sel_look(gc_sel *s, cp_waiter *w)
{
    uint32_t st = atomic_load_explicit(&w->state, memory_order_acquire) & CP_W_STATE;
    if (st == CP_W_WAITING && s->nrings && fx_sel_rings(s, NULL) && cp_futex_w_cancel(w))
        return CP_W_CANCELED;
    return st;
}

/* Wait until w is DONE (returned) or the select cancelled it itself because
 * a ring looked ready or the deadline passed (CP_W_CANCELED); a ctx cancel
 * or an event also ends it (CANCELED resp. DONE). */
static uint32_t fx_sel_park(gc_sel *s, cp_waiter *w, struct cp_futex_waitv *wv)
{
    uint32_t st = CP_W_WAITING;
    if (cp_spin_begin()) {
        for (int i = 0; i < FX_SPIN && st < CP_W_DONE; i++) {
            cp_cpu_relax();
            st = fx_sel_look(s, w);
        }
        cp_spin_end();
    }
    /* Then FX_PARK_YIELDS yields and at least CP_YIELD_NS of them, as every
     * hand-off wait (a partner that is runnable without a CPU gets ours),
     * until the deadline. */
    uint64_t t0 = cp_now_ns();
    for (int y = 0; cp_yield_due(y, FX_PARK_YIELDS, t0) && st < CP_W_DONE &&
                    !(s->deadline && cp_now_ns() >= s->deadline);
         y++) {
        sched_yield();
        st = fx_sel_look(s, w);
    }
    if (st >= CP_W_DONE) return st;
    for (;;) {
        bool use_waitv = s->nrings && s->nrings < FX_WAITV_MAX && cp__futex_waitv;
        /* Prepare the event counts first, then look (Dekker with the
         * signaller's claim CAS, cp_ecq_signal_claimed). */
        bool ring_ready = s->nrings && fx_sel_rings(s, use_waitv ? wv : NULL);
        uint32_t sw = atomic_load_explicit(&w->state, memory_order_acquire);
        st = sw & CP_W_STATE;
        if (st >= CP_W_DONE) return st;
        if (st == CP_W_WAITING &&
            (ring_ready || (s->deadline && cp_now_ns() >= s->deadline))) {
            if (cp_futex_w_cancel(w)) return CP_W_CANCELED;
            continue;   /* claimed meanwhile: DONE comes next */
        }
        if (!(sw & FX_PARKED)) {
            if (!atomic_compare_exchange_strong_explicit(&w->state, &sw, sw | FX_PARKED,
                                                         memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
            sw |= FX_PARKED;
        }
        uint64_t dl = st == CP_W_WAITING ? s->deadline : 0;
        if (use_waitv) {
            size_t k = s->nrings;
            wv[k].val = sw;
            wv[k].uaddr = (uint64_t)(uintptr_t)&w->state;
            wv[k].flags = FX_WAITV_FLAGS;
            wv[k].__reserved = 0;
            struct timespec ts = cp__ts(dl);
            long r = syscall(SYS_futex_waitv, wv, (unsigned)(k + 1), 0u, dl ? &ts : NULL,
                             CLOCK_MONOTONIC);
            if (r == -1 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
                cp_die("futex_waitv: errno %d", errno);
        } else {
            /* Rings to re-check without futex_waitv: bounded sleeps. */
            if (s->nrings) {
                uint64_t soon = cp_now_ns() + FX_POLL_NS;
                dl = dl && dl < soon ? dl : soon;
            }
            cp_futex_wait(&w->state, sw, dl);
        }
    }
}

static cp_status sel_park_begin(gc_sel *s, struct sel_park *p)
{
    p->wv = p->small;
    if (s->nrings > GC_SEL_SMALL && s->nrings < FX_WAITV_MAX &&
        !(p->wv = malloc((s->nrings + 1) * sizeof *p->wv)))
        return CP_ENOMEM;
    return CP_OK;
}

static void sel_park_end(gc_sel *s, struct sel_park *p)
{
    (void)s;
    if (p->wv != p->small) free(p->wv);
}

static uint32_t sel_park(gc_sel *s, cp_waiter *w, cp_ctx *ctx, struct sel_park *p)
{
    cp_wnode cn;
    gc_sel_watch(s, w, ctx, &cn);
    uint32_t r = fx_sel_park(s, w, p->wv);
    gc_sel_unwatch(s, &cn);
    return r;
}
