/*
 * mutex family: state under a pthread mutex, blocked threads sleep on a
 * pthread condition variable (CLOCK_MONOTONIC) owned by their waiter.
 *
 * Waiter invariant: state moves only while w->mu is held by the mover when
 * the move can end a sleep (finish, cancel, timeout), and the sleeper reads
 * state under w->mu before every cond wait, so no wake-up is lost. The claim
 * (WAITING -> CLAIMED) needs no mutex: it does not end the sleep.
 */
#define _GNU_SOURCE  /* PTHREAD_MUTEX_ADAPTIVE_NP */
#include "../../core/internal.h"

#include <errno.h>

static pthread_condattr_t mono_attr;
static pthread_once_t mono_once = PTHREAD_ONCE_INIT;
static void mono_attr_init(void)
{
    cp_check(pthread_condattr_init(&mono_attr) == 0);
    cp_check(pthread_condattr_setclock(&mono_attr, CLOCK_MONOTONIC) == 0);
}

/* The channel lock: glibc's adaptive mutex spins briefly before it sleeps,
 * which is what pthread offers against a lock held for a few nanoseconds. */
static pthread_mutexattr_t adaptive_attr;
static pthread_once_t adaptive_once = PTHREAD_ONCE_INIT;
static void adaptive_attr_init(void)
{
    cp_check(pthread_mutexattr_init(&adaptive_attr) == 0);
    cp_check(pthread_mutexattr_settype(&adaptive_attr, PTHREAD_MUTEX_ADAPTIVE_NP) == 0);
}

static void mw_init(cp_waiter *w)
{
    pthread_once(&mono_once, mono_attr_init);
    atomic_init(&w->state, CP_W_WAITING);
    w->ok = 0;
    w->index = -1;
    w->b = &cp_backend_mutex;
    cp_check(pthread_mutex_init(&w->mu, NULL) == 0);
    cp_check(pthread_cond_init(&w->cv, &mono_attr) == 0);
}

static void mw_fini(cp_waiter *w)
{
    cp_check(pthread_cond_destroy(&w->cv) == 0);
    cp_check(pthread_mutex_destroy(&w->mu) == 0);
}

static bool mw_claim(cp_waiter *w)
{
    uint32_t exp = CP_W_WAITING;
    return atomic_compare_exchange_strong_explicit(&w->state, &exp, CP_W_CLAIMED,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

static void mw_finish(cp_waiter *w)
{
    cp_check(pthread_mutex_lock(&w->mu) == 0);
    atomic_store_explicit(&w->state, CP_W_DONE, memory_order_release);
    cp_check(pthread_cond_signal(&w->cv) == 0);
    cp_check(pthread_mutex_unlock(&w->mu) == 0);
}

static bool mw_cancel(cp_waiter *w)
{
    cp_check(pthread_mutex_lock(&w->mu) == 0);
    uint32_t exp = CP_W_WAITING;
    bool won = atomic_compare_exchange_strong_explicit(&w->state, &exp, CP_W_CANCELED,
                                                       memory_order_acq_rel, memory_order_relaxed);
    if (won) cp_check(pthread_cond_signal(&w->cv) == 0);
    cp_check(pthread_mutex_unlock(&w->mu) == 0);
    return won;
}

static uint32_t mw_park(cp_waiter *w, uint64_t deadline)
{
    struct timespec ts = cp__ts(deadline);
    uint32_t s;
    cp_check(pthread_mutex_lock(&w->mu) == 0);
    for (;;) {
        s = atomic_load_explicit(&w->state, memory_order_acquire);
        if (s >= CP_W_DONE) break;
        if (s == CP_W_WAITING && deadline && cp_now_ns() >= deadline) {
            uint32_t exp = CP_W_WAITING;
            atomic_compare_exchange_strong_explicit(&w->state, &exp, CP_W_TIMEDOUT,
                                                    memory_order_acq_rel, memory_order_relaxed);
            continue;
        }
        int rc = (s == CP_W_WAITING && deadline)
                     ? pthread_cond_timedwait(&w->cv, &w->mu, &ts)
                     : pthread_cond_wait(&w->cv, &w->mu);
        if (rc && rc != ETIMEDOUT) cp_die("pthread_cond_wait: %d", rc);
    }
    cp_check(pthread_mutex_unlock(&w->mu) == 0);
    return s;
}

/* ---- the channel: gochan.h under a pthread mutex ---- */
#define GC_LOCK_T pthread_mutex_t
#define GC_LOCK_INIT(l) cp_check(pthread_mutex_init((l), &adaptive_attr) == 0)
#define GC_LOCK_FINI(l) cp_check(pthread_mutex_destroy(l) == 0)
#define GC_LOCK(l) cp_check(pthread_mutex_lock(l) == 0)
#define GC_UNLOCK(l) cp_check(pthread_mutex_unlock(l) == 0)
#define GC_W_INIT mw_init
#define GC_W_FINI mw_fini
#define GC_W_CLAIM mw_claim
#define GC_W_FINISH mw_finish
#define GC_W_PARK mw_park
#include "../gochan.h"

struct cp_chan {
    const cp_backend *b;
    gochan gc;
};

#define OWN(ch, ctx) ((ctx) == NULL || (ctx)->b == (ch)->b)

cp_chan *cp_mutex_chan_new(const cp_backend *b, size_t elem_size, size_t cap)
{
    if (b != &cp_backend_mutex) { errno = EINVAL; return NULL; }
    if (cap && elem_size > (SIZE_MAX - sizeof(cp_chan)) / cap) { errno = ENOMEM; return NULL; }
    size_t hdr = (sizeof(cp_chan) + 15) & ~(size_t)15;
    cp_chan *ch = cp__zalloc(hdr + cap * elem_size);
    if (!ch) return NULL;
    pthread_once(&adaptive_once, adaptive_attr_init);
    ch->b = b;
    gc_init(&ch->gc, elem_size, cap, cap ? (unsigned char *)ch + hdr : NULL);
    return ch;
}

void cp_mutex_chan_free(cp_chan *ch)
{
    if (!ch) return;
    gc_fini(&ch->gc);
    free(ch);
}

cp_status cp_mutex_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    return gc_send(&ch->gc, elem, ctx, true);
}
cp_status cp_mutex_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    if (cp_unlikely(!OWN(ch, ctx))) return CP_EINVAL;
    return gc_recv(&ch->gc, elem, ctx, true);
}
cp_status cp_mutex_chan_try_send(cp_chan *ch, const void *elem) { return gc_send(&ch->gc, elem, NULL, false); }
cp_status cp_mutex_chan_try_recv(cp_chan *ch, void *elem) { return gc_recv(&ch->gc, elem, NULL, false); }
cp_status cp_mutex_chan_close(cp_chan *ch) { return gc_close(&ch->gc); }
size_t cp_mutex_chan_len(cp_chan *ch) { return gc_len(&ch->gc); }
size_t cp_mutex_chan_cap(cp_chan *ch) { return ch->gc.cap; }

const cp_backend cp_backend_mutex = {
    .name = "mutex",
    .describe = "pthread mutex + per-waiter condition variables (CLOCK_MONOTONIC); Go's hchan under one lock",
    .flags = 0,
    .w_init = mw_init,
    .w_fini = mw_fini,
    .w_claim = mw_claim,
    .w_finish = mw_finish,
    .w_cancel = mw_cancel,
    .w_park = mw_park,
    .chan_new = cp_mutex_chan_new,
    .chan_free = cp_mutex_chan_free,
    .chan_send = cp_mutex_chan_send,
    .chan_recv = cp_mutex_chan_recv,
    .chan_try_send = cp_mutex_chan_try_send,
    .chan_try_recv = cp_mutex_chan_try_recv,
    .chan_close = cp_mutex_chan_close,
    .chan_len = cp_mutex_chan_len,
    .chan_cap = cp_mutex_chan_cap,
};
