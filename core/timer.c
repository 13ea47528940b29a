/*
 * Timers and tickers (Go's time.Timer / time.Ticker, Go 1.23+ semantics) and
 * cp_sleep, the same for every family.
 *
 * Semantics read from the Go 1.23 documentation of package time:
 *   - a timer's channel receives the fire time once, d after NewTimer/Reset;
 *   - "any receive from t.C after Stop has returned is guaranteed to block
 *     rather than receive a stale time value from before the Stop"; the same
 *     for Reset: no value from before the call is received after it returns;
 *   - Stop does not close the channel; a stopped timer can be Reset;
 *   - Stop/Reset report whether the call stopped (prevented) a pending fire;
 *     in Go 1.23 a tick that was sent but not yet received counts as pending
 *     (the channel is synchronous), so here draining it counts too;
 *   - a ticker "adjusts the intervals or drops ticks to make up for slow
 *     receivers": it holds at most one pending tick, later ones are dropped,
 *     never queued; the next tick stays on the period grid of its start;
 *   - ticks are never early.
 *
 * How ticks are produced: one process-wide timer service thread, started on
 * the first timer, holds every armed timer in a binary min-heap ordered by
 * its next fire time, under one mutex, and sleeps on a condition variable
 * (CLOCK_MONOTONIC) until the earliest one is due or the earliest changes.
 * A due timer's tick is delivered by cp_chan_try_send on its capacity-1
 * channel while the service holds the mutex: a full channel (a slow ticker
 * receiver) drops the tick. Cost: one thread per process whatever the number
 * of timers (never a thread per blocking call), O(log n) per arm, stop or
 * fire, one condvar signal when the earliest deadline moves. Precision: the
 * condvar's timed wait, measured by tests/unit/test_timer (tick lateness
 * p50/p99 at a 1 ms period, printed) and the ticker workload.
 *
 * Invariant (under svc.mu): a timer is in the heap iff it is armed, and
 * t->slot is its index there (-1 when not). Stop and Reset remove the timer
 * and drain its channel under svc.mu, and the service only sends under
 * svc.mu, so no tick from before the call can be received after it returns.
 * Receivers never take svc.mu: they wait on the channel in their family's
 * way (spin, futex, condvar), and a select may mix timer channels with any
 * other channel of the family.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <string.h>

struct cp_timer {
    const cp_backend *b;
    cp_chan *ch;            /* capacity 1, uint64_t fire times */
    uint64_t when;          /* next fire, cp_now_ns() time */
    uint64_t period;        /* 0: a one-shot timer */
    ptrdiff_t slot;         /* index in the heap, -1 when not armed */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_once_t once;
    cp_timer **heap;
    size_t n, cap;
} svc = { .mu = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT };

/* ---- the heap (svc.mu held) ---- */
static void heap_set(size_t i, cp_timer *t)
{
    svc.heap[i] = t;
    t->slot = (ptrdiff_t)i;
}

static void sift_up(size_t i)
{
    cp_timer *t = svc.heap[i];
    while (i > 0 && svc.heap[(i - 1) / 2]->when > t->when) {
        heap_set(i, svc.heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, t);
}

static void sift_down(size_t i)
{
    cp_timer *t = svc.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= svc.n) break;
        if (c + 1 < svc.n && svc.heap[c + 1]->when < svc.heap[c]->when) c++;
        if (svc.heap[c]->when >= t->when) break;
        heap_set(i, svc.heap[c]);
        i = c;
    }
    heap_set(i, t);
}

static void heap_push(cp_timer *t)
{
    if (svc.n == svc.cap) {
        size_t cap = svc.cap ? 2 * svc.cap : 64;
        cp_timer **h = realloc(svc.heap, cap * sizeof *h);
        if (!h) cp_die("timer heap: out of memory");
        svc.heap = h;
        svc.cap = cap;
    }
    heap_set(svc.n++, t);
    sift_up((size_t)t->slot);
}

static void heap_remove(cp_timer *t)
{
    size_t i = (size_t)t->slot;
    cp_timer *last = svc.heap[--svc.n];
    t->slot = -1;
    if (i == svc.n) return;
    heap_set(i, last);
    sift_up(i);
    sift_down((size_t)last->slot);
}

/* ---- the service thread ---- */
static void *service(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&svc.mu);
    for (;;) {
        if (!svc.n) {
            pthread_cond_wait(&svc.cv, &svc.mu);
            continue;
        }
        cp_timer *t = svc.heap[0];
        uint64_t now = cp_now_ns();
        if (now < t->when) {
            struct timespec ts = cp__ts(t->when);
            pthread_cond_timedwait(&svc.cv, &svc.mu, &ts);
            continue;
        }
        /* due: deliver (a full channel drops the tick), then re-arm a ticker
         * on its grid, past now, or disarm a timer */
        cp_status st = cp_chan_try_send(t->ch, &now);
        (void)st;   /* CP_WOULDBLOCK: one tick pending already, this one is dropped */
        if (t->period) {
            uint64_t late = now - t->when;
            t->when += (late / t->period + 1) * t->period;
            sift_down(0);
        } else {
            heap_remove(t);
        }
    }
    return NULL;
}

static void start_service(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (pthread_cond_init(&svc.cv, &a)) cp_die("timer service: pthread_cond_init");
    pthread_condattr_destroy(&a);
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int rc = pthread_create(&th, &ta, service, NULL);
    if (rc) cp_die("timer service: pthread_create: %s", strerror(rc));
    pthread_attr_destroy(&ta);
}

/* svc.mu held: arm t to fire at `when`; wake the service if t is now first */
static void arm(cp_timer *t, uint64_t when)
{
    t->when = when;
    heap_push(t);
    if (t->slot == 0) pthread_cond_signal(&svc.cv);
}

/* svc.mu held: disarm and drain; true if a fire was pending (armed, or a
 * tick delivered but not yet received) */
static bool disarm(cp_timer *t)
{
    bool pending = t->slot >= 0;
    if (pending) heap_remove(t);
    uint64_t stale;
    if (cp_chan_try_recv(t->ch, &stale) == CP_OK) pending = true;
    return pending;
}

static uint64_t after(uint64_t ns)
{
    uint64_t now = cp_now_ns();
    return ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
}

static cp_timer *timer_new(const cp_backend *b, uint64_t ns, uint64_t period)
{
    if (!b) {
        errno = EINVAL;
        return NULL;
    }
    pthread_once(&svc.once, start_service);
    cp_timer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->b = b;
    t->period = period;
    t->slot = -1;
    if (!(t->ch = cp_chan_new(b, sizeof(uint64_t), 1))) {
        free(t);
        return NULL;
    }
    pthread_mutex_lock(&svc.mu);
    arm(t, after(ns));
    pthread_mutex_unlock(&svc.mu);
    return t;
}

cp_timer *cp_timer_new(const cp_backend *b, uint64_t after_ns) { return timer_new(b, after_ns, 0); }

cp_timer *cp_ticker_new(const cp_backend *b, uint64_t period_ns)
{
    if (!period_ns) {
        errno = EINVAL;
        return NULL;
    }
    return timer_new(b, period_ns, period_ns);
}

cp_chan *cp_timer_chan(cp_timer *t) { return t ? t->ch : NULL; }

bool cp_timer_stop(cp_timer *t)
{
    if (!t) return false;
    pthread_mutex_lock(&svc.mu);
    bool was = disarm(t);
    pthread_mutex_unlock(&svc.mu);
    return was;
}

bool cp_timer_reset(cp_timer *t, uint64_t ns)
{
    if (!t) return false;
    pthread_mutex_lock(&svc.mu);
    bool was = disarm(t);
    if (t->period) {
        if (!ns) ns = t->period;    /* a ticker's period is never 0 */
        t->period = ns;
    }
    arm(t, after(ns));
    pthread_mutex_unlock(&svc.mu);
    return was;
}

void cp_timer_free(cp_timer *t)
{
    if (!t) return;
    cp_timer_stop(t);
    cp_chan_free(t->ch);
    free(t);
}

/* Sleep in the ctx's family: wait on the done event of a child ctx whose
 * deadline is now + ns, so that a cancel of ctx (which cancels the child)
 * ends it at once and the deadline is the family's own timed wait. */
cp_status cp_sleep(uint64_t ns, cp_ctx *ctx)
{
    cp_status st = cp_ctx_err(ctx);
    if (st) return st;
    if (!ns) return CP_OK;
    if (!ctx) {
        struct timespec ts = cp__ts(after(ns));
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        return CP_OK;
    }
    cp_ctx *c = cp_ctx_with_timeout(ctx->b, ctx, ns);
    if (!c) return CP_ENOMEM;
    cp_event_wait(cp_ctx_done(c), NULL);
    cp_ctx_free(c);
    /* the child ended by its own deadline (OK) or by ctx (ctx's reason) */
    st = cp_ctx_err(ctx);
    return st;
}
