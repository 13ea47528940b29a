/*
 * A run's threads: spawned behind a start gate (wl_spawn, wl_spawn_n),
 * released together (wl_start), stopped at the end of --duration
 * (wl_wait_duration) and joined (wl_join); the run's failure report
 * (wl_fail, wl_note's first error), its watched channels, and the set-up and
 * checking helpers of runtime/workload.h (cancellation, id sets).
 *
 * Invariant: r->nthr slots of r->thr are initialised before nthr is
 * published (release), so the watchdog reads slots below nthr only; the
 * gate (r->go, release/acquire) orders everything the spawner wrote before
 * wl_start before each thread's fn.
 */
#define _GNU_SOURCE
#include "runtime/driver.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wl_rt_hooks hooks;

void wl_rt_set_hooks(const wl_rt_hooks *h) { hooks = *h; }

static wl_thread thread_slots[WL_MAX_THREADS];
static struct wl_rt rt_slot;

void wl_run_init(wl_run *r, const wl_cfg *cfg)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->thr = thread_slots;
    memset(rt_slot.watch, 0, sizeof rt_slot.watch);
    rt_slot.nwatch = 0;
    r->rt = &rt_slot;
    atomic_init(&r->go, 0);
    atomic_init(&r->stop, 0);
}

static void *trampoline(void *p)
{
    wl_thread *t = p;
    int index = (int)(t - t->run->thr);
    if (hooks.thread_start) hooks.thread_start(t->run, index);
    wl_phase(t, "start gate");
    for (unsigned n = 0; !atomic_load_explicit(&t->run->go, memory_order_acquire); n++) {
        if (n < 256) cp_now_ns();   /* a short, pause-free spin */
        else sched_yield();
    }
    uint64_t a0 = hooks.thread_allocated ? hooks.thread_allocated() : 0;
    t->fn(t, t->arg);
    t->ended = wl_now();
    t->alloc_bytes = hooks.thread_allocated ? hooks.thread_allocated() - a0 : 0;
    return NULL;
}

static cp_hist *hist_pool[WL_MAX_THREADS], *hist_u_pool[WL_MAX_THREADS];

static cp_hist *pooled_hist(cp_hist **slot)
{
    if (!*slot && !(*slot = cp_hist_new(3, 3600ull * 1000000000ull))) {
        fprintf(stderr, "cpbench: out of memory for latency histograms\n");
        exit(1);
    }
    cp_hist_reset(*slot);
    return *slot;
}

static int spawn(wl_run *r, const char *name, void *(*fn)(wl_thread *, void *), void *arg, int rank)
{
    if (r->nthr >= WL_MAX_THREADS) {
        fprintf(stderr, "cpbench: too many threads (max %d)\n", WL_MAX_THREADS);
        exit(2);
    }
    int i = r->nthr;
    wl_thread *t = &r->thr[i];
    cp_hist *h = pooled_hist(&hist_pool[i]);
    cp_hist *hu = r->cfg->rate > 0 ? pooled_hist(&hist_u_pool[i]) : NULL;
    memset(t, 0, sizeof *t);
    t->hist = h;
    t->hist_u = hu;
    t->fn = fn;
    t->arg = arg;
    t->run = r;
    t->rank = rank;
    snprintf(t->name, sizeof t->name, "%s", name);
    atomic_init(&t->phase, "created");
    int rc = pthread_create(&r->rt->pthreads[i], NULL, trampoline, t);
    if (rc) {
        fprintf(stderr, "cpbench: pthread_create: %s\n", strerror(rc));
        exit(1);
    }
    /* release: the watchdog reads slots below nthr (name, phase) */
    __atomic_store_n(&r->nthr, i + 1, __ATOMIC_RELEASE);
    return i;
}

void wl_start(wl_run *r)
{
    r->t_start = wl_now();
    atomic_store_explicit(&r->go, 1, memory_order_release);
}

int wl_spawn(wl_run *r, const char *name, void *(*fn)(wl_thread *, void *), void *arg)
{
    return spawn(r, name, fn, arg, 0);
}

int wl_spawn_n(wl_run *r, int n, const char *name, void *(*fn)(wl_thread *, void *), void *arg)
{
    int first = r->nthr;
    for (int i = 0; i < n; i++) spawn(r, name, fn, arg, i);
    return first;
}

void wl_start_and_join(wl_run *r)
{
    wl_start(r);
    wl_wait_duration(r);
    wl_join(r);
}

void wl_wait_duration(wl_run *r)
{
    if (r->cfg->duration <= 0) return;
    uint64_t until = r->t_start + (uint64_t)(r->cfg->duration * 1e9);
    uint64_t now = wl_now();
    if (until > now) wl_sleep_ns(until - now);
    atomic_store(&r->stop, 1);
}

void wl_wait_duration_or(wl_run *r, cp_event *done)
{
    if (r->cfg->duration <= 0) return;
    uint64_t end = r->t_start + (uint64_t)(r->cfg->duration * 1e9), now = wl_now();
    if (end > now) {
        cp_ctx *t = cp_ctx_with_timeout(r->cfg->b, NULL, end - now);
        if (t) cp_event_wait(done, t);
        cp_ctx_free(t);
    }
    if (!cp_event_fired(done)) wl_wait_duration(r);
}

void wl_join_thread(wl_run *r, int i)
{
    if (r->thr[i].joined) return;
    pthread_join(r->rt->pthreads[i], NULL);
    r->thr[i].joined = true;
}

void wl_join(wl_run *r)
{
    uint64_t end = r->t_start;
    for (int i = 0; i < r->nthr; i++) {
        wl_join_thread(r, i);
        if (r->thr[i].ended > end) end = r->thr[i].ended;
    }
#ifdef CP_AB_SLOWDOWN_PCT
    /* The power experiment of `cpbench ab` only (results/baseline/README.md):
     * a build that is CP_AB_SLOWDOWN_PCT percent slower in ops/s, for real:
     * the measured interval is stretched by busy work of d * p / (100 - p). */
    uint64_t extra = (end - r->t_start) * (uint64_t)CP_AB_SLOWDOWN_PCT / (100 - (uint64_t)CP_AB_SLOWDOWN_PCT);
    while (wl_now() < end + extra) __builtin_ia32_pause();
    end = wl_now();
#endif
    r->t_end = end;
}

void wl_fail(wl_run *r, const char *fmt, ...)
{
    if (r->nfail++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->fail, sizeof r->fail, fmt, ap);
        va_end(ap);
    }
}

void wl_watch(wl_run *r, const char *name, cp_chan *ch)
{
    struct wl_rt *rt = r->rt;
    if (rt->nwatch < WL_MAX_WATCH) {
        rt->watch[rt->nwatch].name = name;
        rt->watch[rt->nwatch].ch = ch;
        __atomic_store_n(&rt->nwatch, rt->nwatch + 1, __ATOMIC_RELEASE);   /* for the watchdog */
    }
}

void wl_note(wl_errors *e, const char *what, uint64_t a, uint64_t b)
{
    const char *none = NULL;
    if (atomic_compare_exchange_strong(&e->first, &none, what)) {
        atomic_store(&e->a, a);
        atomic_store(&e->b, b);
    }
    atomic_fetch_add(&e->n, 1);
}

uint64_t wl_errors_fail(wl_run *r, wl_errors *e)
{
    uint64_t n = atomic_load(&e->n);
    if (n)
        wl_fail(r, "%s: %llu, %llu (%llu errors)", atomic_load(&e->first), (unsigned long long)atomic_load(&e->a),
                (unsigned long long)atomic_load(&e->b), (unsigned long long)n);
    return n;
}

uint64_t wl_start_cancel_join(wl_run *r, cp_ctx *ctx, int64_t cancel_ms)
{
    uint64_t cancelled_at = 0;
    wl_start(r);
    if (cancel_ms > 0) {
        wl_sleep_ns((uint64_t)cancel_ms * 1000000u);
        cancelled_at = wl_now();
        cp_ctx_cancel(ctx);
    }
    wl_wait_duration(r);
    wl_join(r);
    return cancelled_at;
}

uint64_t wl_start_cancel_wait(wl_run *r, cp_ctx *ctx, int64_t cancel_ms, cp_event *done, int end_cancels)
{
    uint64_t cancelled_at = 0;
    wl_start(r);
    if (cancel_ms > 0) {
        /* cancel after cancel_ms, unless the run is over by then */
        cp_ctx *t = cp_ctx_with_timeout(r->cfg->b, NULL, (uint64_t)cancel_ms * 1000000u);
        if (t) cp_event_wait(done, t);
        else wl_sleep_ns((uint64_t)cancel_ms * 1000000u);
        cp_ctx_free(t);
        if (!cp_event_fired(done)) {
            cancelled_at = wl_now();
            cp_ctx_cancel(ctx);
        }
    }
    if (r->cfg->duration > 0) {
        wl_wait_duration_or(r, done);
        if (end_cancels && !cancelled_at && !cp_event_fired(done)) {
            cancelled_at = wl_now();
            cp_ctx_cancel(ctx);
        }
    }
    cp_event_wait(done, NULL);
    return cancelled_at;
}

uint64_t wl_drain(cp_chan *ch, void *elem)
{
    uint64_t n = 0;
    while (cp_chan_try_recv(ch, elem) == CP_OK) n++;
    return n;
}

int wl_check_ran_once(wl_run *r, const _Atomic uint8_t *runs, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (atomic_load(&runs[i]) != 1) {
            wl_fail(r, "task %llu ran %d times", (unsigned long long)i, (int)atomic_load(&runs[i]));
            return 0;
        }
    return 1;
}

void wl_check_cancel_stop(wl_run *r, uint64_t cancelled_at)
{
    if (cancelled_at && r->t_end > cancelled_at && r->t_end - cancelled_at > WL_BOUND_NS)
        wl_fail(r, "cancellation took %.3f s to stop every thread (bound 1 s)",
                (double)(r->t_end - cancelled_at) / 1e9);
}

int wl_idset_grow(wl_idset *s, size_t c)
{
    if (c >= s->nchunks) {
        size_t n = s->nchunks ? s->nchunks : 16;
        while (n <= c) n *= 2;
        uint8_t **k = realloc(s->chunk, n * sizeof *k);
        if (!k) return -1;
        memset(k + s->nchunks, 0, (n - s->nchunks) * sizeof *k);
        s->chunk = k;
        s->nchunks = n;
    }
    if (!s->chunk[c] && !(s->chunk[c] = calloc((1u << WL_IDSET_CHUNK_BITS) / 8, 1))) return -1;
    return 0;
}

void wl_idset_free(wl_idset *s)
{
    for (size_t i = 0; i < s->nchunks; i++) free(s->chunk[i]);
    free(s->chunk);
    s->chunk = NULL;
    s->nchunks = 0;
}
