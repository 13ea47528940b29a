/*
 * bounded_parallelism: process a batch of items with at most P in flight
 * (--threads=P), the first error cancelling the rest. Seed 003's
 * "Bounded Parallelism" (processItems: a channel of P tokens, a goroutine per
 * item, an error channel of capacity 1); seed 000 has no key for it.
 *
 * A caller runs rounds: each is one call of processItems over --set batch=B
 * items (count mode: until --items items were handed to it; time mode: until
 * the run stops). processItems takes a token (--set sem=0: a channel of P
 * tokens, as the seed; sem=1: a cp_sem of P permits) and starts a goroutine
 * per item; a goroutine is a task handed to one of 2P carrier threads through
 * a channel of --capacity (the `go` statement: tokens bound the tasks alive
 * to P, so a carrier is always free soon). A task is --work-ns of work and
 * then the downstream's answer. Every --set fail_every=K-th round the item
 * in the middle of the batch fails (once a sibling is in flight, so that the
 * error always meets running work) and the downstream stops answering the
 * calls in flight (an outage) until the caller ends it after processItems has
 * returned; --set cancel_after_ms=T cancels the caller's ctx mid-run.
 *
 * The default variant is correct: a failing task records the first error
 * (errgroup's rule: the first error wins, later ones, including the
 * siblings' cancellations, are dropped) and then cancels the round's ctx;
 * the dispatcher stops at a cancelled ctx (it checks the ctx after taking a
 * token: a select with a token and Done both ready picks at random); tasks
 * not yet started skip their item, tasks waiting on the downstream give up
 * on the ctx; processItems waits for every task before it returns the first
 * error (or the ctx's), and cancels the round's ctx even on success.
 * --variant=seed is the seed's code: the dispatcher returns at once on an
 * error (or on ctx.Done) from the token select, without wg.Wait, and
 * process(item) takes no ctx: the goroutines in flight outlive the call
 * (leaked: the run fails naming how many), waiting on the downstream until
 * the caller ends the outage; they are counted, then released and joined.
 *
 * One op: an item processed (its task ran to success). Latency: an item's
 * time from the dispatcher asking for its token to its task's end.
 *
 * Metrics (each repetition): in_flight_max, the most tasks seen running at
 * once; cancel_ns, the median over failing rounds of first error ->
 * processItems returned; leaked, the goroutines still alive when
 * processItems returned, summed over rounds; rounds.
 *
 * Invariants, checked on every run:
 *   - never more than P in flight (each task's start counts the tasks
 *     running; tasks end before giving back their token);
 *   - no leak: when processItems returns, no task of its round is alive
 *     (the seed variant fails here: "leaked N goroutines");
 *   - first error wins: a failing round returns the injected error, not a
 *     sibling's cancellation; a round without an error returns OK (or the
 *     caller's cancellation);
 *   - every item has exactly one outcome (done, failed, cancelled, or never
 *     dispatched), none twice: done + failed + cancelled + not dispatched ==
 *     batch; a round without error or cancel has every item done; a failing
 *     round has exactly its injected failure (unless cancelled before);
 *   - every token given back after each round (none leaked or doubled);
 *   - the first error stops the round within 1 s (first error ->
 *     processItems returned), and a cancel of the caller's ctx stops every
 *     thread within 1 s;
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_BATCH, P_FAIL_EVERY, P_SEM, P_CANCEL_AFTER_MS, P_COUNT };
enum { V_DEFAULT, V_SEED };
enum { O_NONE, O_DONE, O_FAILED, O_CANCELLED };
static const wl_param bounded_parallelism_params[] = {
    [P_BATCH] = { "batch", 100, "items per processItems call (a round)", 64 },
    [P_FAIL_EVERY] = { "fail_every", 4, "every K-th round's middle item fails (and the downstream hangs); 0: never", 4 },
    [P_SEM] = { "sem", 0, "the P tokens: 0 a channel of tokens (the seed's), 1 a cp_sem (default variant only)", 1 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the caller's ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(bounded_parallelism_params, P_COUNT);

#define E_INJECTED 1000         /* the failing item's error code (not a cp_status) */

struct round;
struct task { struct round *rd; uint32_t idx; uint64_t t_asked; };

/* One processItems call. Reused round after round: the caller touches it
 * only once every task of the previous round has finished. */
struct round {
    struct bp *bp;
    cp_ctx *ctx;                /* default: the round's ctx (errgroup.WithContext); seed: the caller's */
    uint32_t size, fail_idx;    /* fail_idx == size: no failure this round */
    _Atomic int first_err;      /* 0 until the first error */
    int with_outage;            /* the failure takes the downstream down with it */
    _Atomic int outage;         /* the downstream stopped answering */
    _Atomic int hanging;        /* tasks that found it down */
    _Atomic int dispatch_done;
    _Atomic int returned;       /* processItems has returned */
    _Atomic uint64_t done_late; /* items done after processItems returned */
    _Atomic uint64_t t_err;     /* when the first error was recorded */
    cp_event *outage_over;      /* fired by the caller after processItems returned */
    _Atomic uint8_t *outcome;   /* per item */
};

/* What the caller saw, round after round (caller-only until the join). */
struct caller_out {
    uint64_t rounds, failing_rounds, leaked, leaky_rounds, done, failed, cancelled, undispatched;
    uint64_t done_late, bad_outcome, bad_err, bad_count, slow_cancel_ns, drain_timeout;
    int bad_err_got, bad_err_want;
    char count_msg[160];
    cp_hist *cancel_ns;
};

struct bp {
    wl_run *r;
    int variant, use_sem;
    int64_t P;
    cp_chan *go, *tokens, *errch;
    cp_sem *sem;
    cp_wg *wg;                  /* the round's tasks */
    cp_ctx *ctx;                /* the caller's ctx: NULL unless cancel_after_ms */
    _Atomic int64_t in_flight, in_flight_max;
    _Atomic uint64_t alive;     /* tasks dispatched and not yet finished */
    _Atomic uint64_t over_p, bad_token;
    struct caller_out out;
};

/* ---- the tokens: a channel of P (the seed's `sem <- struct{}{}`) or a cp_sem ---- */
static cp_status token_take(struct bp *b, cp_ctx *ctx)
{
    static const uint8_t tok = 1;
    return b->use_sem ? cp_sem_acquire(b->sem, 1, ctx) : cp_chan_send(b->tokens, &tok, ctx);
}

static void token_give(struct bp *b)
{
    uint8_t tok;
    if (b->use_sem) cp_sem_release(b->sem, 1);
    else if (cp_chan_try_recv(b->tokens, &tok) != CP_OK) atomic_fetch_add(&b->bad_token, 1);
}

/* ---- a task (the goroutine's body), on a carrier thread ---- */
static void record_err(struct round *rd, int err)
{
    int none = 0;
    atomic_compare_exchange_strong(&rd->first_err, &none, err);    /* the first error wins */
}

static void run_task(wl_thread *self, struct task *t)
{
    struct round *rd = t->rd;
    struct bp *b = rd->bp;
    const int seed = b->variant == V_SEED;
    int64_t n = atomic_fetch_add(&b->in_flight, 1) + 1;
    if (n > b->P) atomic_fetch_add(&b->over_p, 1);
    wl_max_store_i(&b->in_flight_max, n);

    uint8_t out;
    if (!seed && cp_ctx_err(rd->ctx)) {
        out = O_CANCELLED;                                  /* started after the cancel: skip */
        record_err(rd, cp_ctx_err(rd->ctx));
    } else {
        wl_phase(self, "work");
        if (b->r->cfg->k.work_ns) wl_work(b->r->cfg->k.work_ns);
        if (t->idx == rd->fail_idx) {
            out = O_FAILED;
            if (rd->with_outage) {
                /* the downstream goes down with this call, whose error comes
                 * once a sibling hangs on it (or none can come any more): the
                 * error always meets work in flight */
                atomic_store(&rd->outage, 1);
                wl_phase(self, "fail: wait for a sibling to hang");
                while (!atomic_load(&rd->hanging) && !atomic_load(&rd->dispatch_done) && !cp_ctx_err(rd->ctx))
                    cp_sleep(20000, NULL);
            }
            atomic_store(&rd->t_err, wl_now());
            if (seed) {
                static const int e = E_INJECTED;
                cp_chan_try_send(b->errch, &e);             /* select { case errCh <- err: default: } */
            } else {
                record_err(rd, E_INJECTED);                 /* first, then cancel: the first error wins */
                cp_ctx_cancel(rd->ctx);
            }
        } else if (atomic_load(&rd->outage)) {
            /* the downstream hangs: the default gives up on the round's ctx,
             * the seed's process(item) has no ctx and waits for the caller */
            wl_phase(self, "downstream outage");
            atomic_fetch_add(&rd->hanging, 1);
            /* a late answer after 2 s at most, so that nothing can hang */
            cp_ctx *w = cp_ctx_with_timeout(b->r->cfg->b, seed ? NULL : rd->ctx, 2000000000ull);
            cp_status st = w ? cp_event_wait(rd->outage_over, w) : CP_OK;
            if (st == CP_DEADLINE) st = CP_OK;              /* the downstream's late answer */
            cp_ctx_free(w);
            out = st == CP_OK ? O_DONE : O_CANCELLED;
            if (st != CP_OK) record_err(rd, st);
        } else {
            out = O_DONE;
        }
    }
    if (t->t_asked) cp_hist_record(self->hist, wl_since(t->t_asked));
    uint8_t none = O_NONE;
    if (!atomic_compare_exchange_strong(&rd->outcome[t->idx], &none, out))
        atomic_store(&rd->outcome[t->idx], 0xff);          /* a second outcome: caught by the caller */
    if (out == O_DONE) {
        self->ops++;
        if (atomic_load(&rd->returned)) atomic_fetch_add(&rd->done_late, 1);
    }
    atomic_fetch_sub(&b->in_flight, 1);                     /* before the token: in flight <= tokens held */
    token_give(b);
    atomic_fetch_sub(&b->alive, 1);
    cp_wg_done(b->wg);
}

static void *carrier(wl_thread *self, void *arg)
{
    struct bp *b = arg;
    struct task t;
    wl_phase(self, "idle");
    while (cp_chan_recv(b->go, &t, NULL) == CP_OK) {      /* closed by the caller at the end */
        run_task(self, &t);
        wl_phase(self, "idle");
    }
    wl_phase(self, "done");
    return NULL;
}

/* ---- processItems ---- */
static void go(struct bp *b, struct round *rd, uint32_t i, uint64_t t_asked)
{
    struct task t = { rd, i, t_asked };
    cp_wg_add(b->wg, 1);
    atomic_fetch_add(&b->alive, 1);
    cp_chan_send(b->go, &t, NULL);      /* a carrier is always coming: tasks alive <= P < 2P carriers */
}

/* The correct version: returns the first error, or the ctx's, or 0. */
static int process_items(wl_thread *self, struct bp *b, struct round *rd, uint32_t *dispatched)
{
    const int64_t sample = b->r->cfg->lat_sample;
    uint32_t i = 0;
    for (; i < rd->size; i++) {
        uint64_t asked = sample && i % (uint64_t)sample == 0 ? wl_now() : 0;
        wl_phase(self, "take token");
        if (token_take(b, rd->ctx) != CP_OK) break;
        if (cp_ctx_err(rd->ctx)) {      /* both were ready and the token won: stop anyway */
            token_give(b);
            break;
        }
        go(b, rd, i, asked);
    }
    *dispatched = i;
    atomic_store(&rd->dispatch_done, 1);
    wl_phase(self, "wg wait");
    cp_wg_wait(b->wg, NULL);
    int err = atomic_load(&rd->first_err);
    if (!err) err = cp_ctx_err(rd->ctx);
    return err;
}

/* The seed's version (seed 003, processItems): an early return from the
 * token select on an error or on ctx.Done, without waiting. */
static int process_items_seed(wl_thread *self, struct bp *b, struct round *rd, uint32_t *dispatched)
{
    const int64_t sample = b->r->cfg->lat_sample;
    uint8_t tok = 1;
    int err = 0;
    cp_case cs[2] = { { .op = CP_SEND, .ch = b->tokens, .elem = &tok },
                      { .op = CP_RECV, .ch = b->errch, .elem = &err } };
    cp_status st;
    for (uint32_t i = 0; i < rd->size; i++) {
        uint64_t asked = sample && i % (uint64_t)sample == 0 ? wl_now() : 0;
        wl_phase(self, "select token/err");
        int c = cp_select(cs, 2, rd->ctx, &st);
        if (c != 0) {
            *dispatched = i;
            atomic_store(&rd->dispatch_done, 1);
            return c < 0 ? (int)st : err;       /* return ctx.Err() / return err: no wg.Wait */
        }
        go(b, rd, i, asked);
    }
    *dispatched = rd->size;
    atomic_store(&rd->dispatch_done, 1);
    wl_phase(self, "wg wait");
    cp_wg_wait(b->wg, NULL);
    return cp_chan_try_recv(b->errch, &err) == CP_OK ? err : 0;
}

/* ---- the caller: rounds, and the checks of each ---- */

static void *caller(wl_thread *self, void *arg)
{
    struct bp *b = arg;
    wl_run *r = b->r;
    struct caller_out *o = &b->out;
    const uint64_t batch = (uint64_t)r->cfg->set[P_BATCH], fail_every = (uint64_t)r->cfg->set[P_FAIL_EVERY];
    const uint64_t n = (uint64_t)r->cfg->k.items;
    struct round rd = { .bp = b };
    rd.outcome = calloc(batch, sizeof *rd.outcome);
    if (!rd.outcome) { snprintf(o->count_msg, sizeof o->count_msg, "out of memory"); return NULL; }
    uint64_t offered = 0;
    while (wl_more(r, offered, n) && !cp_ctx_err(b->ctx)) {
        uint64_t size = batch;
        if (r->cfg->duration <= 0 && n - offered < size) size = n - offered;
        offered += size;
        o->rounds++;
        int failing = fail_every && o->rounds % fail_every == 0;
        rd.size = (uint32_t)size;
        rd.fail_idx = failing ? (uint32_t)(size / 2) : (uint32_t)size;
        atomic_store(&rd.first_err, 0);
        atomic_store(&rd.outage, 0);
        atomic_store(&rd.hanging, 0);
        /* an outage only where the dispatcher cannot finish the batch with
         * the tokens the hanging tasks leave (>= 2P + 1 items after the
         * failing one): the seed's select then always meets the error */
        rd.with_outage = failing && b->P > 1 && size - rd.fail_idx - 1 >= 2 * (uint64_t)b->P + 1;
        atomic_store(&rd.dispatch_done, 0);
        atomic_store(&rd.t_err, 0);
        atomic_store(&rd.returned, 0);
        atomic_store(&rd.done_late, 0);
        for (uint64_t i = 0; i < size; i++) atomic_store_explicit(&rd.outcome[i], O_NONE, memory_order_relaxed);
        rd.outage_over = cp_event_new(r->cfg->b);
        rd.ctx = b->variant == V_SEED ? b->ctx : cp_ctx_with_cancel(r->cfg->b, b->ctx);
        if (!rd.outage_over || (!rd.ctx && b->variant != V_SEED)) {
            snprintf(o->count_msg, sizeof o->count_msg, "out of memory");
            cp_event_free(rd.outage_over);
            if (rd.ctx != b->ctx) cp_ctx_free(rd.ctx);
            break;
        }

        uint32_t dispatched = 0;
        int err = b->variant == V_SEED ? process_items_seed(self, b, &rd, &dispatched)
                                       : process_items(self, b, &rd, &dispatched);
        uint64_t returned = wl_now();
        atomic_store(&rd.returned, 1);
        uint64_t alive = atomic_load(&b->alive);    /* goroutines that outlived the call */
        if (b->variant != V_SEED) cp_ctx_cancel(rd.ctx);    /* errgroup: Wait cancels even on success */

        /* release whatever the round left behind, then let it finish */
        wl_phase(self, "end outage, drain");
        cp_event_fire(rd.outage_over);
        cp_ctx *bound = cp_ctx_with_timeout(r->cfg->b, NULL, 5000000000ull);
        if (cp_wg_wait(b->wg, bound) != CP_OK) o->drain_timeout++;
        cp_ctx_free(bound);
        o->leaked += alive;
        o->leaky_rounds += alive > 0;
        o->done_late += atomic_load(&rd.done_late);
        uint64_t t_err = atomic_load(&rd.t_err);
        if (t_err && !alive) {
            uint64_t d = wl_diff(returned, t_err);
            cp_hist_record(o->cancel_ns, d);
            if (d > 1000000000ull && d > o->slow_cancel_ns) o->slow_cancel_ns = d;
        }

        /* one outcome per item; the counts add up */
        uint64_t cnt[4] = { 0 };
        for (uint64_t i = 0; i < size; i++) {
            uint8_t v = atomic_load(&rd.outcome[i]);
            if (v > O_CANCELLED) o->bad_outcome++;
            else if (v == O_NONE && i < dispatched) o->bad_outcome++;     /* dispatched, never finished */
            else if (v != O_NONE && i >= dispatched) o->bad_outcome++;    /* ran without being dispatched */
            else cnt[v]++;
        }
        o->done += cnt[O_DONE], o->failed += cnt[O_FAILED], o->cancelled += cnt[O_CANCELLED];
        o->undispatched += size - dispatched;
        int cancelled_outside = cp_ctx_err(b->ctx) != CP_OK;
        const char *bad = NULL;
        if (cnt[O_NONE] != size - dispatched) bad = "outcomes + not dispatched != batch";
        else if (!failing && !cancelled_outside && cnt[O_DONE] != size) bad = "a round without error left items not done";
        else if (failing && cnt[O_FAILED] != 1 && !(cancelled_outside && cnt[O_FAILED] == 0))
            bad = "a failing round did not fail exactly its one item";
        else if (!failing && cnt[O_FAILED]) bad = "an item failed in a round without error";
        if (bad && !o->bad_count++)
            snprintf(o->count_msg, sizeof o->count_msg,
                     "%s (round %llu: batch %llu, dispatched %u, done %llu, failed %llu, cancelled %llu)", bad,
                     (unsigned long long)o->rounds, (unsigned long long)size, dispatched,
                     (unsigned long long)cnt[O_DONE], (unsigned long long)cnt[O_FAILED],
                     (unsigned long long)cnt[O_CANCELLED]);
        /* the first error wins */
        int want = cnt[O_FAILED] ? E_INJECTED : 0;
        int ok = err == want || (cancelled_outside && (err == CP_CANCELED || err == 0 || err == E_INJECTED));
        if (!ok && !o->bad_err++) o->bad_err_got = err, o->bad_err_want = want;
        o->failing_rounds += failing;

        /* every token back */
        if (b->use_sem) {
            if (!wl_sem_all_free(b->sem, b->P)) atomic_fetch_add(&b->bad_token, 1);
        } else if (cp_chan_len(b->tokens) != 0) {
            atomic_fetch_add(&b->bad_token, 1);
            wl_drain(b->tokens, &(uint8_t){ 0 });
        }
        wl_drain(b->errch, &(int){ 0 });
        if (rd.ctx != b->ctx) cp_ctx_free(rd.ctx);
        cp_event_free(rd.outage_over);
        if (o->drain_timeout) break;
    }
    free(rd.outcome);
    wl_phase(self, "close go");
    cp_chan_close(b->go);
    wl_phase(self, "done");
    return NULL;
}

static int bp_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct bp s = { 0 }, *b = &s;
    struct caller_out *o = &b->out;
    b->r = r;
    b->variant = c->variant;
    b->use_sem = c->variant == V_DEFAULT && c->set[P_SEM] != 0;
    b->P = c->k.threads;
    int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    b->go = cp_chan_new(c->b, sizeof(struct task), (size_t)c->k.capacity);
    b->tokens = cp_chan_new(c->b, 1, (size_t)b->P);
    b->errch = cp_chan_new(c->b, sizeof(int), 1);
    b->sem = cp_sem_new(c->b, b->P);
    b->wg = cp_wg_new(c->b);
    o->cancel_ns = cp_hist_new(3, 3600ull * 1000000000ull);
    if (cancel_ms > 0) b->ctx = cp_ctx_with_cancel(c->b, NULL);
    int rc = 0;
    if (!b->go || !b->tokens || !b->errch || !b->sem || !b->wg || !o->cancel_ns || (cancel_ms > 0 && !b->ctx)) {
        rc = -1;
        goto out;
    }
    wl_watch(r, "go", b->go);
    wl_watch(r, "tokens", b->tokens);

    for (int64_t i = 0; i < 2 * b->P; i++) wl_spawn(r, "carrier", carrier, b);
    wl_spawn(r, "caller", caller, b);

    uint64_t cancelled_at = wl_start_cancel_join(r, b->ctx, cancel_ms);

    if (o->leaked)
        wl_fail(r, "processItems returned with goroutines still running: leaked %llu goroutines in %llu of %llu "
                "rounds (%llu of their items done after it returned)",
                (unsigned long long)o->leaked, (unsigned long long)o->leaky_rounds, (unsigned long long)o->rounds,
                (unsigned long long)o->done_late);
    if (atomic_load(&b->over_p))
        wl_fail(r, "more than P=%lld tasks in flight (%llu times, at most %lld)", (long long)b->P,
                (unsigned long long)atomic_load(&b->over_p), (long long)atomic_load(&b->in_flight_max));
    if (o->bad_outcome)
        wl_fail(r, "%llu items with no outcome, two outcomes, or run without dispatch",
                (unsigned long long)o->bad_outcome);
    if (o->bad_count) wl_fail(r, "%s (%llu rounds)", o->count_msg, (unsigned long long)o->bad_count);
    else if (o->count_msg[0]) wl_fail(r, "caller: %s", o->count_msg);
    if (o->bad_err)
        wl_fail(r, "first error does not win: a round returned %d, expected %d (%d: the injected error, %d: "
                "CP_CANCELED; %llu rounds)", o->bad_err_got, o->bad_err_want, E_INJECTED, (int)CP_CANCELED,
                (unsigned long long)o->bad_err);
    if (atomic_load(&b->bad_token))
        wl_fail(r, "tokens not all given back after a round (%llu times)", (unsigned long long)atomic_load(&b->bad_token));
    if (o->drain_timeout) wl_fail(r, "a round's tasks did not finish within 5 s of the outage's end");
    if (o->slow_cancel_ns)
        wl_fail(r, "the first error took %.3f s to stop its round (bound 1 s)", (double)o->slow_cancel_ns / 1e9);
    wl_check_cancel_stop(r, cancelled_at);
    if (!b->ctx && c->duration <= 0 && o->done + o->failed + o->cancelled + o->undispatched != (uint64_t)c->k.items)
        wl_fail(r, "items: done %llu + failed %llu + cancelled %llu + not dispatched %llu != --items %lld",
                (unsigned long long)o->done, (unsigned long long)o->failed, (unsigned long long)o->cancelled,
                (unsigned long long)o->undispatched, (long long)c->k.items);

    wl_metric(r, 0, (double)atomic_load(&b->in_flight_max));
    if (cp_hist_count(o->cancel_ns)) wl_metric(r, 1, (double)cp_hist_percentile(o->cancel_ns, 50));
    wl_metric(r, 2, (double)o->leaked);
    wl_metric(r, 3, (double)o->rounds);
    r->ops = o->done;
out:
    if (o->cancel_ns) cp_hist_free(o->cancel_ns);
    cp_ctx_free(b->ctx);
    cp_wg_free(b->wg);
    cp_sem_free(b->sem);
    cp_chan_free(b->errch);
    cp_chan_free(b->tokens);
    cp_chan_free(b->go);
    return rc;
}

static const char *bp_check(const wl_cfg *c)
{
    if (c->set[P_BATCH] < 1 || c->set[P_BATCH] > 1000000) return "--set batch (items per processItems call) must be 1..1000000";
    if (2 * c->k.threads + 1 > WL_MAX_THREADS) return "--threads: 2P carriers + the caller exceed the thread limit";
    return NULL;
}

WL_DEFINE(bounded_parallelism) = {
    .name = "bounded_parallelism",
    .seed_key = NULL,       /* seed 003 only: seed 000 has no key for it */
    .group = "pools",
    .desc = "rounds of processItems: B items, at most P in flight (tokens), the first error cancels the rest",
    .op = "item processed",
    .latency = "token asked -> task done",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 0,
                  .payload = WL_UNUSED, .work_ns = 1000, .items = 20000 },
    .params = bounded_parallelism_params,
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "in_flight_max", "count", "most tasks running at once (bound: P)" },
        { "cancel_ns", "ns", "first error -> processItems returned, median over failing rounds" },
        { "leaked", "count", "goroutines alive when processItems returned, over all rounds" },
        { "rounds", "count", "processItems calls" },
        { NULL, NULL, NULL },
    },
    .run = bp_run,
    .check = bp_check,
};
