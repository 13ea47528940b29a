/*
 * mutex family: state under a pthread mutex, blocked threads sleep on a
 * pthread condition variable (CLOCK_MONOTONIC) owned by their waiter.
 *
 * Waiter invariant: state moves only while w->mu is held by the mover when
 * the move can end a sleep (finish, cancel, timeout), and the sleeper reads
 * state under w->mu before every cond wait, so no wake-up is lost. The claim
 * (WAITING -> CLAIMED) needs no mutex: it does not end the sleep.
 */
#include "../../core/internal.h"
#include "waiter.h"

#include <errno.h>

/* ---- the channel: gochan.h under a pthread mutex ---- */
#define GC_LOCK_T pthread_mutex_t
#define GC_LOCK_INIT(l) cp_mutex__lock_init(l)
#define GC_LOCK_FINI(l) cp_check(pthread_mutex_destroy(l) == 0)
#define GC_LOCK(l) cp_check(pthread_mutex_lock(l) == 0)
#define GC_UNLOCK(l) cp_check(pthread_mutex_unlock(l) == 0)
#define GC_W_INIT cp_mutex_w_init
#define GC_W_FINI cp_mutex_w_fini
#define GC_W_CLAIM cp_mutex_w_claim
#define GC_W_FINISH cp_mutex_w_finish
#define GC_W_PARK cp_mutex_w_park
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
