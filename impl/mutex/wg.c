/*
 * mutex family: WaitGroup (sync.WaitGroup). The counter and a list of
 * blocked waiters under a pthread mutex; each waiter sleeps on its own
 * condition variable (the family's cp_waiter), registered with its ctx as
 * every blocking call is.
 *
 * Invariants (under the mutex):
 *   - count >= 0 after every add (a negative count aborts, as Go panics);
 *   - the waiter list is empty whenever count == 0: the add that brings
 *     count to 0 claims every waiter on it (a claim that fails is a waiter
 *     its ctx cancelled; it is dropped) and finishes them after unlocking;
 *   - the list is a FIFO of wq.h (see its invariants).
 * Reuse: waiters are released by the 0 they waited for, whatever Add comes
 * after (as Go's semaphore release does).
 */
#include "adapter.h"
#include "../wq.h"

#include <errno.h>

typedef struct wg_node {
    cp_waiter *w;
    struct wg_node *next, *prev;
    bool queued;
} wg_node;

struct cp_wg {
    const cp_backend *b;
    pthread_mutex_t mu;
    int64_t count;
    wg_node *first, *last;
};

cp_wg *cp_mutex_wg_new(const cp_backend *b)
{
    if (b != &cp_backend_mutex) { errno = EINVAL; return NULL; }
    cp_wg *wg = cp__zalloc(sizeof *wg);
    if (!wg) return NULL;
    wg->b = b;
    cp_mutex__lock_init(&wg->mu);
    return wg;
}

void cp_mutex_wg_free(cp_wg *wg)
{
    if (!wg) return;
    cp_check(pthread_mutex_destroy(&wg->mu) == 0);
    free(wg);
}

CP_WQ_DEFINE(wg, wg_node, cp_wg, CP_WQ_NO_HOOK)

__attribute__((noreturn, cold)) static void wg_negative(void)
{
    fputs("libcp: negative WaitGroup counter\n", stderr);
    abort();
}

void cp_mutex_wg_add(cp_wg *wg, int64_t delta)
{
    cp_check(pthread_mutex_lock(&wg->mu) == 0);
    wg->count += delta;
    if (cp_unlikely(wg->count < 0)) wg_negative();
    wg_node *wake = NULL, *nd;
    if (wg->count == 0) {
        while ((nd = wg->first)) {
            wg_remove(wg, nd);
            if (!cp_mutex_w_claim(nd->w)) continue;
            nd->next = wake;
            wake = nd;
        }
    }
    cp_check(pthread_mutex_unlock(&wg->mu) == 0);
    wg_finish_all(wake);
}

void cp_mutex_wg_done(cp_wg *wg) { cp_mutex_wg_add(wg, -1); }

cp_status cp_mutex_wg_wait(cp_wg *wg, cp_ctx *ctx)
{
    if (ctx && ctx->b != wg->b) return CP_EINVAL;
    cp_check(pthread_mutex_lock(&wg->mu) == 0);
    if (wg->count == 0) {
        cp_check(pthread_mutex_unlock(&wg->mu) == 0);
        return CP_OK;
    }
    cp_waiter w;
    cp_wnode cn;
    wg_node me = { .w = &w };
    cp_mutex_w_init(&w);
    /* Lock order: wg mutex -> ctx wake list -> waiter. */
    cp_status st = cp__ctx_watch(ctx, &w, &cn);
    if (st) {
        cp_check(pthread_mutex_unlock(&wg->mu) == 0);
        cp_mutex_w_fini(&w);
        return st;
    }
    wg_enqueue(wg, &me);
    cp_check(pthread_mutex_unlock(&wg->mu) == 0);

    uint32_t s = cp_mutex_w_park(&w, cp_ctx_deadline(ctx));
    cp_wlist_del(&cn);
    if (s != CP_W_DONE) {
        cp_check(pthread_mutex_lock(&wg->mu) == 0);
        if (me.queued) wg_remove(wg, &me);
        cp_check(pthread_mutex_unlock(&wg->mu) == 0);
        st = cp__ctx_reason(ctx);
    }
    cp_mutex_w_fini(&w);
    return st;
}
