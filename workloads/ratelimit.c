/*
 * ratelimit: T threads take tokens from one token-bucket limiter with
 * golang.org/x/time/rate's semantics (the seed's scale_ratelimit, whose
 * playbook uses rate.NewLimiter(r, b) with Wait, Allow and Reserve).
 *
 * Readings of x/time/rate (rate.go and its documentation) relied on:
 *   - "a token bucket of size b, initially full and refilled at rate r
 *     tokens per second"; every method takes n tokens (1 for Allow, Wait,
 *     Reserve); tokens may go negative: a reservation books future tokens;
 *   - AllowN(now, n) succeeds only if n tokens are there now (it books
 *     nothing otherwise); ReserveN(now, n) always books unless n > burst
 *     (OK() false) and says how long to wait (Delay);
 *   - WaitN(ctx, n): an error at once if n > burst; the ctx's error at once
 *     if it is already done; an error at once, booking nothing, if the wait
 *     would end after the ctx's deadline ("would exceed context deadline");
 *     otherwise it books, sleeps for the delay, and if the ctx ends first it
 *     cancels the reservation and returns the ctx's error;
 *   - Reservation.Cancel gives back the tokens it booked, less those booked
 *     after it (lastEvent - timeToAct), capped at burst, and nothing if its
 *     time to act has passed;
 *   - a zero burst allows nothing (refused here by the parameter check, as is
 *     n > burst for the run's own calls: every call would fail).
 *
 * Two strategies, one per family where it matters (--set strategy=0 picks
 * by backend; the metric `strategy` says which ran):
 *   locked (1; the mutex family): rate.Limiter's own algorithm, float tokens,
 *     last and lastEvent under a cp_mutex;
 *   cas (2; the lockfree and futex families): the same bucket as one 64-bit
 *     word updated by compare-and-swap: the time at which the bucket would be
 *     full again ("theoretical arrival time", GCRA), in 1/1024 ns since the
 *     limiter was made. tokens(now) = burst - max(0, tat - now) / interval,
 *     so taking n tokens is tat' = max(tat, now) + n * interval and the wait
 *     is tat' - burst * interval - now: the token bucket exactly, with its
 *     tokens and last packed into one number. A refused call writes nothing.
 *
 * One op: one admitted call (n tokens granted and used). Latency: the call
 * (Wait, Reserve then its sleep, or Allow retried) -> admitted.
 * Parameters: limit (tokens/s), burst, n (tokens per call), op (0 Wait,
 * 1 Allow, 2 Reserve + sleep, 3 all three in turn), strategy, deadline_us
 * (each Wait under a ctx with that timeout: a wait that would pass it is
 * refused at once and retried after deadline_us), cancel_after_ms.
 * Waits sleep with cp_sleep under the run's ctx (a timed wait in the
 * family's own way); a time-based run cancels that ctx when it ends.
 *
 * Invariants, checked on every run:
 *   - never more than burst + limit x elapsed: at every admission, the
 *     tokens admitted so far (counted after each admission) <= burst +
 *     limit x (now - the limiter's creation) (+ 0.01 for float rounding);
 *   - count-based: exactly --items calls admitted (without a cancel), and
 *     calls begun = admitted + abandoned on the cancel;
 *   - a Reserve of n <= burst is always OK; a Wait without a deadline is
 *     only ended by the ctx;
 *   - x/time/rate's semantics, on a private limiter of the same strategy
 *     (0.1 token/s, burst 2, so no refill can interfere): starts full (2
 *     Allows), then refuses; WaitN(3) fails at once (n > burst); WaitN under
 *     a 1 s deadline fails at once without booking (the next Allow still
 *     fails, the next Reserve's delay is unchanged); a Wait on a cancelled
 *     ctx fails at once; Reserve -> Cancel gives the token back (a second
 *     Reserve waits as long as the first did, not twice as long);
 *     ReserveN(3) is not OK;
 *   - cancellation: every thread has stopped within 1 s of the cancel (the
 *     sleeps honour the ctx), else the run fails naming the time;
 *   - every thread joined.
 *
 * Metrics: achieved_rate ((tokens admitted - burst) / time since creation,
 * tokens/s: within 1% of limit over 1 s at 10k/s on an idle machine),
 * rate_error_pct, wait_p50_ns / wait_p99_ns (every call's time to admission),
 * late_p99_ns (how long after its booked time a waiter woke), rejected
 * (Allow false or Wait refused for the deadline), strategy, seed_ticks_lost.
 *
 * Variants: default; seed: the playbook's ticker-channel limiter
 * (rateLimiter(rate, burst) <-chan time.Time: a ticker goroutine forwards
 * each tick into a channel of capacity burst, dropping it when full; Wait
 * is a receive, Allow a non-blocking one, Reserve is a Wait). Its bucket
 * starts empty, ticks that the forwarder takes late are dropped by the
 * ticker (tokens lost: achieved below configured; seed_ticks_lost counts the
 * ticker periods that put no token in the bucket), and the forwarder has no
 * way to stop: the run finds it still running after the last caller left
 * and fails ("leaked 1 thread"), then releases it (an internal ctx) so that
 * it can be joined.
 */
#include "runtime/workload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { P_LIMIT, P_BURST, P_N, P_OP, P_STRATEGY, P_DEADLINE_US, P_CANCEL_AFTER_MS, P_COUNT };
enum { OP_WAIT, OP_ALLOW, OP_RESERVE, OP_MIX };
enum { S_AUTO, S_LOCKED, S_CAS, S_TICKER };
enum { M_ACHIEVED, M_ERROR_PCT, M_WAIT_P50, M_WAIT_P99, M_LATE_P99, M_REJECTED, M_STRATEGY, M_TICKS_LOST };
static const wl_param ratelimit_params[] = {
    [P_LIMIT] = { "limit", 10000, "the rate, tokens/s", 1000000 },
    [P_BURST] = { "burst", 10, "the bucket's size (it starts full)", 100 },
    [P_N] = { "n", 1, "tokens per call (WaitN / AllowN / ReserveN), 1..burst", 3 },
    [P_OP] = { "op", OP_WAIT, "0 Wait, 1 Allow (retried after a token's interval), 2 Reserve + sleep, 3 all in turn", 3 },
    [P_STRATEGY] = { "strategy", S_AUTO, "0 by backend (mutex: locked, others: cas), 1 locked bucket, 2 lock-free CAS", 2 },
    [P_DEADLINE_US] = { "deadline_us", 0, "each Wait under a ctx with this timeout (refused at once if it would pass it); 0: none", 2000 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the callers' ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(ratelimit_params, P_COUNT);

#define FP 1024u                    /* cas state: units of 1/1024 ns */
#define NEVER UINT64_MAX

/* ---- the limiter ---- */

/* What WaitN returns: x/time/rate's errors, by cause. */
typedef enum { RL_OK, RL_BURST, RL_WOULD_EXCEED, RL_CTX } rl_status;

typedef struct rl_resv {
    int ok;
    int64_t n;
    uint64_t act;           /* time to act (cp_now_ns) */
    uint64_t act_fp;        /* cas: the same, in state units */
} rl_resv;

typedef struct limiter {
    int strategy;
    double limit;           /* tokens per second */
    int64_t burst;
    uint64_t created;       /* cp_now_ns at creation: the bucket was full then */
    /* locked: rate.Limiter's fields, under mu */
    cp_mutex *mu;
    double tokens;
    uint64_t last, last_event;
    /* cas */
    _Atomic uint64_t tat;   /* state units since created */
    uint64_t inc, tau;      /* one token's interval, burst x inc (state units) */
    /* ticker (the seed) */
    cp_timer *ticker;
    cp_chan *bucket;
    cp_ctx *reap;           /* ends the forwarder: only the run cancels it */
    uint64_t period;
    _Atomic int forwarder_alive;
    _Atomic uint64_t ticks_in, ticks_full, fwd_first, fwd_last;
} limiter;

/* x/time/rate's unit conversions (durationFromTokens truncates to ns;
 * tokensFromDuration splits seconds from nanoseconds to limit rounding). */
static int64_t dur_from_tokens(const limiter *l, double tokens)
{
    return (int64_t)(1e9 * (tokens / l->limit));
}
static double tokens_from_dur(const limiter *l, int64_t d)
{
    return (double)(d / 1000000000) * l->limit + (double)(d % 1000000000) * l->limit / 1e9;
}

/* advance: the tokens at now (lim.advance; l->mu held). */
static void lk_advance(const limiter *l, uint64_t now, uint64_t *new_now, uint64_t *new_last, double *new_tokens)
{
    uint64_t last = l->last;
    if (now < last) {
        *new_now = *new_last = last;
        *new_tokens = l->tokens;
        return;
    }
    int64_t max_elapsed = dur_from_tokens(l, (double)l->burst - l->tokens);
    int64_t elapsed = (int64_t)(now - last);
    if (elapsed > max_elapsed) elapsed = max_elapsed;
    double tokens = l->tokens + tokens_from_dur(l, elapsed);
    if (tokens > (double)l->burst) tokens = (double)l->burst;
    *new_now = now;
    *new_last = last;
    *new_tokens = tokens;
}

static rl_resv lk_reserve(limiter *l, uint64_t now, int64_t n, uint64_t max_wait)
{
    rl_resv r = { 0 };
    cp_mutex_lock(l->mu);
    uint64_t last;
    double tokens;
    lk_advance(l, now, &now, &last, &tokens);
    tokens -= (double)n;
    uint64_t wait = tokens < 0 ? (uint64_t)dur_from_tokens(l, -tokens) : 0;
    r.ok = n <= l->burst && wait <= max_wait;
    if (r.ok) {
        r.n = n;
        r.act = now + wait;
        l->last = now;
        l->tokens = tokens;
        l->last_event = r.act;
    } else {
        l->last = last;
    }
    cp_mutex_unlock(l->mu);
    return r;
}

static void lk_cancel(limiter *l, const rl_resv *r, uint64_t now)
{
    cp_mutex_lock(l->mu);
    if (r->n && r->act >= now) {
        /* the tokens booked after r are not given back */
        double restore = (double)r->n - tokens_from_dur(l, (int64_t)(l->last_event - r->act));
        if (restore > (double)r->n) restore = (double)r->n;    /* a last_event before r (only after
                                                                 * another cancel): give back r's own */
        if (restore > 0) {
            uint64_t last;
            double tokens;
            lk_advance(l, now, &now, &last, &tokens);
            tokens += restore;
            if (tokens > (double)l->burst) tokens = (double)l->burst;
            l->last = now;
            l->tokens = tokens;
            if (r->act == l->last_event) {
                uint64_t prev = r->act - (uint64_t)dur_from_tokens(l, (double)r->n);
                if (prev >= now) l->last_event = prev;
            }
        }
    }
    cp_mutex_unlock(l->mu);
}

static uint64_t cas_now(const limiter *l, uint64_t now)
{
    return now > l->created ? (now - l->created) * FP : 0;
}

static rl_resv cas_reserve(limiter *l, uint64_t now, int64_t n, uint64_t max_wait)
{
    rl_resv r = { 0 };
    if (n > l->burst) return r;
    uint64_t nf = cas_now(l, now), need = (uint64_t)n * l->inc;
    /* relaxed: the CAS alone orders the bucket; no other memory hangs off it */
    uint64_t s = atomic_load_explicit(&l->tat, memory_order_relaxed), s2, act;
    do {
        s2 = (s > nf ? s : nf) + need;
        act = s2 > l->tau ? s2 - l->tau : 0;
        uint64_t wait_fp = act > nf ? act - nf : 0;
        uint64_t wait = (wait_fp + FP - 1) / FP;    /* round up: never early */
        if (wait > max_wait) return r;              /* refused: nothing booked */
        r.act = now + wait;
    } while (!atomic_compare_exchange_weak_explicit(&l->tat, &s, s2, memory_order_relaxed, memory_order_relaxed));
    r.ok = 1;
    r.n = n;
    r.act_fp = act;
    return r;
}

static void cas_cancel(limiter *l, const rl_resv *r, uint64_t now)
{
    if (!r->n || r->act < now) return;
    uint64_t nf = cas_now(l, now), give = (uint64_t)r->n * l->inc;
    uint64_t s = atomic_load_explicit(&l->tat, memory_order_relaxed), s2;
    do {
        /* booked after r: the latest time to act (tat - tau) beyond r's */
        uint64_t latest = s > l->tau ? s - l->tau : 0;
        uint64_t later = latest > r->act_fp ? latest - r->act_fp : 0;
        if (later >= give) return;
        s2 = s - (give - later);
        if (s2 < nf) s2 = nf;       /* capped at burst: full from now */
        if (s2 >= s) return;
    } while (!atomic_compare_exchange_weak_explicit(&l->tat, &s, s2, memory_order_relaxed, memory_order_relaxed));
}

/* ReserveN(now, n) with a maximum wait (0: AllowN; NEVER: ReserveN). */
static rl_resv rl_reserve(limiter *l, int64_t n, uint64_t max_wait)
{
    uint64_t now = cp_now_ns();
    return l->strategy == S_LOCKED ? lk_reserve(l, now, n, max_wait) : cas_reserve(l, now, n, max_wait);
}

static void rl_cancel(limiter *l, const rl_resv *r)
{
    if (!r->ok) return;
    if (l->strategy == S_LOCKED) lk_cancel(l, r, cp_now_ns());
    else cas_cancel(l, r, cp_now_ns());
}

static int rl_allow(limiter *l, int64_t n)
{
    if (l->strategy == S_TICKER) {
        int64_t got = 0;
        uint64_t t;
        while (got < n && cp_chan_try_recv(l->bucket, &t) == CP_OK) got++;
        return got == n;        /* the seed's: a partial take is lost */
    }
    return rl_reserve(l, n, 0).ok;
}

/* WaitN(ctx, n). *act: the booked time to act (0 if it did not wait). */
static rl_status rl_wait(limiter *l, int64_t n, cp_ctx *ctx, uint64_t *act, cp_status *why)
{
    *act = 0;
    if (l->strategy == S_TICKER) {
        uint64_t t;
        for (int64_t i = 0; i < n; i++)
            if ((*why = cp_chan_recv(l->bucket, &t, ctx)) != CP_OK) return RL_CTX;
        return RL_OK;
    }
    if (n > l->burst) return RL_BURST;
    if ((*why = cp_ctx_err(ctx)) != CP_OK) return RL_CTX;
    uint64_t now = cp_now_ns(), max_wait = NEVER, dl = cp_ctx_deadline(ctx);
    if (dl) max_wait = dl > now ? dl - now : 0;
    rl_resv r = l->strategy == S_LOCKED ? lk_reserve(l, now, n, max_wait) : cas_reserve(l, now, n, max_wait);
    if (!r.ok) return RL_WOULD_EXCEED;
    if (r.act <= now) return RL_OK;
    *act = r.act;
    if ((*why = cp_sleep(r.act - now, ctx)) != CP_OK) {
        rl_cancel(l, &r);   /* may let others go sooner */
        return RL_CTX;
    }
    return RL_OK;
}

/* The seed's forwarder: `for t := range ticker.C { select { case tokens <- t: default: } }`.
 * Nothing in the seed ends it; l->reap is the run's way to release it. */
static void *forwarder(wl_thread *self, void *arg)
{
    limiter *l = arg;
    uint64_t t, in = 0, full = 0, first = 0, last = 0;
    wl_phase(self, "range ticker.C");
    while (l->ticker && l->bucket && l->reap && cp_chan_recv(cp_timer_chan(l->ticker), &t, l->reap) == CP_OK) {
        if (!first) first = t;
        last = t;
        if (cp_chan_try_send(l->bucket, &t) == CP_OK) in++;
        else full++;
        atomic_store_explicit(&l->ticks_in, in, memory_order_relaxed);
        atomic_store_explicit(&l->ticks_full, full, memory_order_relaxed);
    }
    atomic_store(&l->fwd_first, first);
    atomic_store(&l->fwd_last, last);
    atomic_store(&l->forwarder_alive, 0);
    wl_phase(self, "done");
    return NULL;
}

static int limiter_init(limiter *l, const cp_backend *b, int strategy, double limit, int64_t burst)
{
    memset(l, 0, sizeof *l);
    l->strategy = strategy;
    l->limit = limit;
    l->burst = burst;
    l->created = cp_now_ns();
    switch (strategy) {
    case S_LOCKED:
        l->tokens = (double)burst;      /* initially full */
        l->last = l->created;
        return (l->mu = cp_mutex_new(b)) ? 0 : -1;
    case S_CAS:
        /* rounded up: the packed bucket never runs faster than limit */
        l->inc = (uint64_t)ceil((double)FP * 1e9 / limit);
        if (!l->inc) l->inc = 1;
        l->tau = (uint64_t)burst * l->inc;
        atomic_init(&l->tat, 0);        /* full at creation */
        return 0;
    default:                            /* S_TICKER, the seed */
        l->period = (uint64_t)(1e9 / limit);
        if (!l->period) l->period = 1;
        l->bucket = cp_chan_new(b, sizeof(uint64_t), (size_t)burst);
        l->reap = cp_ctx_with_cancel(b, NULL);
        l->ticker = cp_ticker_new(b, l->period);
        atomic_init(&l->forwarder_alive, 1);
        return l->bucket && l->reap && l->ticker ? 0 : -1;
    }
}

static void limiter_destroy(limiter *l)
{
    if (l->mu) cp_mutex_free(l->mu);
    cp_timer_free(l->ticker);       /* before its forwarder's bucket: the forwarder is joined */
    if (l->bucket) cp_chan_free(l->bucket);
    cp_ctx_free(l->reap);
}

/* ---- x/time/rate's semantics on a private limiter (every run) ---- */
static void check_semantics(wl_run *r, int strategy)
{
    limiter l;
    const char *s = strategy == S_LOCKED ? "locked" : "cas";
    if (limiter_init(&l, r->cfg->b, strategy, 0.1, 2)) {
        wl_fail(r, "semantics check: out of memory");
        return;
    }
    cp_ctx *cancelled = cp_ctx_with_cancel(r->cfg->b, NULL);
    cp_ctx *soon = cp_ctx_with_timeout(r->cfg->b, NULL, 1000000000ull);
    cp_status why = CP_OK;
    uint64_t act;
    if (!cancelled || !soon) {
        wl_fail(r, "semantics check: out of memory");
        goto out;
    }
    cp_ctx_cancel(cancelled);
    if (!rl_allow(&l, 1) || !rl_allow(&l, 1))
        wl_fail(r, "%s limiter: a new limiter (burst 2) refused one of its first 2 Allows: the bucket must start full", s);
    /* 10 s per token: nothing refills within this check unless it stalls 5 s */
    int fresh = cp_now_ns() - l.created < 5000000000ull;
    if (fresh && rl_allow(&l, 1)) wl_fail(r, "%s limiter: Allow succeeded on an empty bucket", s);
    if (rl_wait(&l, 3, NULL, &act, &why) != RL_BURST)
        wl_fail(r, "%s limiter: WaitN(3) with burst 2 did not fail at once", s);
    rl_status st = rl_wait(&l, 1, soon, &act, &why);
    if (st != RL_WOULD_EXCEED)
        wl_fail(r, "%s limiter: WaitN needing ~10 s under a 1 s deadline returned %d (%s), not \"would exceed "
                "context deadline\" at once", s, (int)st, cp_status_str(why));
    if (fresh && rl_allow(&l, 1)) wl_fail(r, "%s limiter: a refused WaitN booked nothing, yet Allow then succeeded", s);
    if ((st = rl_wait(&l, 1, cancelled, &act, &why)) != RL_CTX || why != CP_CANCELED)
        wl_fail(r, "%s limiter: Wait on a cancelled ctx returned %d (%s), not CP_CANCELED", s, (int)st,
                cp_status_str(why));
    rl_resv a = rl_reserve(&l, 1, NEVER);
    uint64_t t1 = cp_now_ns();
    uint64_t d1 = a.act > t1 ? a.act - t1 : 0;
    rl_cancel(&l, &a);
    rl_resv b = rl_reserve(&l, 1, NEVER);
    uint64_t t2 = cp_now_ns();
    uint64_t d2 = b.act > t2 ? b.act - t2 : 0;
    if (!a.ok || !b.ok)
        wl_fail(r, "%s limiter: Reserve of 1 token (burst 2) not OK", s);
    else if (fresh && (d1 < 5000000000ull || d2 > d1 + 2000000000ull))
        wl_fail(r, "%s limiter: Reserve, Cancel, Reserve: delays %.3f s then %.3f s (Cancel must give the token "
                "back: ~10 s both times)", s, (double)d1 / 1e9, (double)d2 / 1e9);
    rl_cancel(&l, &b);
    if (rl_reserve(&l, 3, NEVER).ok) wl_fail(r, "%s limiter: ReserveN(3) with burst 2 was OK", s);
out:
    cp_ctx_free(cancelled);
    cp_ctx_free(soon);
    limiter_destroy(&l);
}

/* ---- the run ---- */
struct rl_state {
    wl_run *r;
    limiter lim;
    cp_ctx *ctx;            /* the run's: cancelled at cancel_after_ms or at the end of --duration */
    int64_t n, op, deadline_us;
    uint64_t items;
    _Atomic uint64_t tickets, admitted_calls, admitted_tokens, abandoned, rejected;
    _Atomic uint64_t over, over_k, over_dt, last_admit;
    wl_errors err;          /* what went wrong; no figures (wl_note's a, b: 0) */
    wl_group live_workers;
    _Atomic uint64_t last_exit;
    cp_event *workers_done;
};

struct worker_arg { struct rl_state *s; cp_hist *wait, *late; };

/* At every admission: tokens admitted so far <= burst + limit x elapsed. The
 * count includes this admission and every one counted before it, all of
 * which happened before now. */
static void admitted(struct rl_state *s, int64_t n)
{
    uint64_t k = atomic_fetch_add(&s->admitted_tokens, (uint64_t)n) + (uint64_t)n;
    uint64_t now = cp_now_ns(), dt = now - s->lim.created;
    double bound = (double)s->lim.burst + (double)dt * s->lim.limit / 1e9 + 0.01;
    if ((double)k > bound && !atomic_fetch_add(&s->over, 1)) {
        atomic_store(&s->over_k, k);
        atomic_store(&s->over_dt, dt);
    }
    wl_max_store(&s->last_admit, now);
}

static void *worker(wl_thread *self, void *arg)
{
    struct worker_arg *a = arg;
    struct rl_state *s = a->s;
    wl_run *r = s->r;
    limiter *l = &s->lim;
    const int64_t n = s->n, sample = r->cfg->lat_sample;
    const uint64_t interval = (uint64_t)(1e9 * (double)n / l->limit) + 1;
    uint64_t ops = 0, rejected = 0, abandoned = 0, k = 0;
    int64_t until_sample = 0;
    const cp_backend *b = r->cfg->b;

    while (!wl_stopped(r) && cp_ctx_err(s->ctx) == CP_OK) {
        if (r->cfg->duration <= 0) {
            k = atomic_fetch_add(&s->tickets, 1);
            if (k >= s->items) break;
        } else {
            k++;
        }
        int op = s->op == OP_MIX ? (int)(k % 3) : (int)s->op;
        uint64_t t0 = wl_now(), act = 0;
        int ok = 0;
        while (!ok) {
            cp_status why = CP_OK;
            if (op == OP_WAIT) {
                wl_phase(self, "Wait");
                cp_ctx *c = s->deadline_us ? cp_ctx_with_timeout(b, s->ctx, (uint64_t)s->deadline_us * 1000u) : s->ctx;
                if (!c) { wl_note(&s->err, "out of memory", 0, 0); break; }
                rl_status st = rl_wait(l, n, c, &act, &why);
                if (c != s->ctx) cp_ctx_free(c);
                if (st == RL_OK) ok = 1;
                else if (st == RL_BURST) { wl_note(&s->err, "WaitN failed for n > burst with n <= burst", 0, 0); break; }
                else if (cp_ctx_err(s->ctx) != CP_OK) break;    /* the run's cancel */
                else if (st == RL_CTX && !s->deadline_us) {
                    wl_note(&s->err, "Wait ended by its ctx, which nobody cancelled", 0, 0);
                    break;
                } else {        /* refused for its deadline: try again later */
                    rejected++;
                    if (cp_sleep((uint64_t)s->deadline_us * 1000u, s->ctx) != CP_OK) break;
                }
            } else if (op == OP_ALLOW) {
                wl_phase(self, "Allow");
                if (rl_allow(l, n)) ok = 1;
                else {
                    rejected++;
                    if (cp_sleep(interval, s->ctx) != CP_OK) break;
                }
            } else if (l->strategy == S_TICKER) {       /* the seed has no Reserve */
                wl_phase(self, "Wait (seed Reserve)");
                if (rl_wait(l, n, s->ctx, &act, &why) == RL_OK) ok = 1;
                else break;
            } else {
                wl_phase(self, "Reserve");
                rl_resv rv = rl_reserve(l, n, NEVER);
                if (!rv.ok) { wl_note(&s->err, "Reserve of n <= burst was not OK", 0, 0); break; }
                uint64_t now = cp_now_ns();
                if (rv.act > now) {
                    act = rv.act;
                    if (cp_sleep(rv.act - now, s->ctx) != CP_OK) {
                        rl_cancel(l, &rv);
                        break;
                    }
                }
                ok = 1;
            }
        }
        if (!ok) {              /* cancelled (or an error noted) with a call begun */
            abandoned++;
            break;
        }
        admitted(s, n);
        uint64_t now = wl_now(), wait = wl_diff(now, t0);
        cp_hist_record(a->wait, wait);
        if (act) {
            uint64_t cnow = cp_now_ns();
            cp_hist_record(a->late, cnow > act ? cnow - act : 0);
        }
        if (wl_sample(sample, &until_sample)) {
            cp_hist_record(self->hist, wait);
        }
        ops++;
    }
    atomic_fetch_add(&s->admitted_calls, ops);
    atomic_fetch_add(&s->rejected, rejected);
    atomic_fetch_add(&s->abandoned, abandoned);
    self->ops = ops;
    wl_max_store(&s->last_exit, wl_now());
    if (wl_group_leave(&s->live_workers)) cp_event_fire(s->workers_done);
    wl_phase(self, "done");
    return NULL;
}

static int pick_strategy(const wl_cfg *c)
{
    if (c->variant == 1) return S_TICKER;
    if (c->set[P_STRATEGY] != S_AUTO) return (int)c->set[P_STRATEGY];
    return strcmp(cp_backend_name(c->b), "mutex") ? S_CAS : S_LOCKED;
}

static int ratelimit_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    const int threads = (int)c->k.threads, strategy = pick_strategy(c);
    const double limit = (double)c->set[P_LIMIT];
    const int64_t burst = c->set[P_BURST], cancel_ms = c->set[P_CANCEL_AFTER_MS];
    const uint64_t hmax = 3600ull * 1000000000ull;
    struct rl_state *s = calloc(1, sizeof *s);
    struct worker_arg *wa = calloc((size_t)threads, sizeof *wa);
    cp_hist *wait = cp_hist_new(2, hmax), *late = cp_hist_new(2, hmax);
    int rc = -1, lim_ok = 0;
    if (!s || !wa || !wait || !late) goto out;
    if (strategy != S_TICKER) check_semantics(r, strategy);

    s->r = r;
    s->n = c->set[P_N];
    s->op = c->set[P_OP];
    s->deadline_us = c->set[P_DEADLINE_US];
    s->items = (uint64_t)c->k.items;
    wl_group_init(&s->live_workers, threads);
    s->ctx = cp_ctx_with_cancel(c->b, NULL);
    s->workers_done = cp_event_new(c->b);
    if (!s->ctx || !s->workers_done) goto out;
    for (int i = 0; i < threads; i++) {
        wa[i].s = s;
        if (!(wa[i].wait = cp_hist_new(2, hmax)) || !(wa[i].late = cp_hist_new(2, hmax))) goto out;
    }
    if (strategy == S_TICKER) wl_spawn(r, "ticker forwarder", forwarder, &s->lim);
    for (int i = 0; i < threads; i++) wl_spawn(r, "worker", worker, &wa[i]);
    /* made last, just before the gate opens (which publishes it to the
     * threads): refill while nobody can call yet would be lost to the cap */
    lim_ok = 1;     /* limiter_init leaves what it made for limiter_destroy */
    if (limiter_init(&s->lim, c->b, strategy, limit, burst)) {
        cp_ctx_cancel(s->ctx);      /* every thread leaves at once: the run could not start */
        wl_start(r);
        wl_join(r);
        goto out;
    }

    /* at the end of --duration, the cancel wakes the sleepers */
    uint64_t cancelled_at = wl_start_cancel_wait(r, s->ctx, cancel_ms, s->workers_done, 1);
    uint64_t workers_end = cp_now_ns();
    uint64_t ticks_in = atomic_load(&s->lim.ticks_in);

    /* the seed's forwarder: nothing stops it; count it, then release it */
    if (strategy == S_TICKER) {
        uint64_t t0 = wl_now();
        while (atomic_load(&s->lim.forwarder_alive) && wl_since(t0) < 50000000u) wl_sleep_ns(1000000);
        if (atomic_load(&s->lim.forwarder_alive))
            wl_fail(r, "leaked 1 thread: the seed limiter's ticker forwarder still runs %.0f ms after the last "
                    "caller left (rateLimiter() returns only its channel: nothing can stop it); achieved %.0f "
                    "tokens/s of %.0f configured", (double)wl_since(t0) / 1e6,
                    (double)atomic_load(&s->admitted_tokens) * 1e9 / (double)(workers_end - s->lim.created), limit);
        cp_ctx_cancel(s->lim.reap);
    }
    wl_join(r);

    uint64_t calls = atomic_load(&s->admitted_calls), tokens = atomic_load(&s->admitted_tokens);
    uint64_t abandoned = atomic_load(&s->abandoned);
    if (atomic_load(&s->err.n))
        wl_fail(r, "%s (%llu times)", atomic_load(&s->err.first), (unsigned long long)atomic_load(&s->err.n));
    if (atomic_load(&s->over))
        wl_fail(r, "limiter admitted %llu tokens %.6f s after its creation: more than burst %lld + limit %.0f/s x "
                "elapsed = %.2f (%llu admissions over the bound)", (unsigned long long)atomic_load(&s->over_k),
                (double)atomic_load(&s->over_dt) / 1e9, (long long)burst, limit,
                (double)burst + (double)atomic_load(&s->over_dt) * limit / 1e9,
                (unsigned long long)atomic_load(&s->over));
    if (tokens != calls * (uint64_t)s->n)
        wl_fail(r, "tokens admitted %llu != calls admitted %llu x n %lld", (unsigned long long)tokens,
                (unsigned long long)calls, (long long)s->n);
    if (c->duration <= 0) {
        uint64_t begun = atomic_load(&s->tickets);
        if (begun > s->items) begun = s->items;
        if (begun != calls + abandoned)
            wl_fail(r, "calls lost: %llu begun != %llu admitted + %llu abandoned on the cancel",
                    (unsigned long long)begun, (unsigned long long)calls, (unsigned long long)abandoned);
        if (!cancelled_at && calls != s->items)
            wl_fail(r, "admitted %llu calls, expected --items %llu", (unsigned long long)calls,
                    (unsigned long long)s->items);
    }
    if (!cancelled_at && abandoned)
        wl_fail(r, "%llu calls abandoned without a cancel", (unsigned long long)abandoned);
    uint64_t last_exit = atomic_load(&s->last_exit);
    if (cancelled_at && last_exit > cancelled_at && last_exit - cancelled_at > WL_BOUND_NS)
        wl_fail(r, "cancellation took %.3f s to stop every caller (bound 1 s): a sleep did not honour the ctx",
                (double)(last_exit - cancelled_at) / 1e9);

    for (int i = 0; i < threads; i++) {
        cp_hist_merge(wait, wa[i].wait);
        cp_hist_merge(late, wa[i].late);
    }
    uint64_t last_admit = atomic_load(&s->last_admit);
    double secs = last_admit > s->lim.created ? (double)(last_admit - s->lim.created) / 1e9 : 0;
    double achieved = secs > 0 && tokens > (uint64_t)burst ? (double)(tokens - (uint64_t)burst) / secs : 0;
    wl_metric(r, M_ACHIEVED, achieved);
    wl_metric(r, M_ERROR_PCT, 100.0 * (achieved - limit) / limit);
    wl_metric(r, M_WAIT_P50, (double)cp_hist_percentile(wait, 50));
    wl_metric(r, M_WAIT_P99, (double)cp_hist_percentile(wait, 99));
    wl_metric(r, M_LATE_P99, (double)cp_hist_percentile(late, 99));
    wl_metric(r, M_REJECTED, (double)atomic_load(&s->rejected));
    wl_metric(r, M_STRATEGY, strategy);
    if (strategy == S_TICKER) {
        uint64_t periods = (workers_end - s->lim.created) / s->lim.period;
        wl_metric(r, M_TICKS_LOST, periods > ticks_in ? (double)(periods - ticks_in) : 0);
    }
    r->ops = calls;
    rc = 0;
out:
    if (lim_ok) limiter_destroy(&s->lim);
    if (s) {
        cp_event_free(s->workers_done);
        cp_ctx_free(s->ctx);
    }
    for (int i = 0; wa && i < threads; i++) {
        cp_hist_free(wa[i].wait);
        cp_hist_free(wa[i].late);
    }
    cp_hist_free(wait);
    cp_hist_free(late);
    free(wa);
    free(s);
    return rc;
}

static const char *ratelimit_check(const wl_cfg *c)
{
    if (c->set[P_LIMIT] < 1) return "--set limit: the rate must be >= 1 token/s";
    if (c->set[P_BURST] < 1 || c->set[P_BURST] > 1000000)
        return "--set burst: must be 1..1000000 (a zero burst allows nothing)";
    if (c->set[P_N] < 1 || c->set[P_N] > c->set[P_BURST])
        return "--set n: must be 1..burst (WaitN of n > burst always fails, as in x/time/rate)";
    if (c->set[P_OP] > OP_MIX) return "--set op: 0 Wait, 1 Allow, 2 Reserve, 3 mix";
    if (c->set[P_STRATEGY] > S_CAS) return "--set strategy: 0 by backend, 1 locked, 2 cas";
    if (c->variant == 1 && c->set[P_STRATEGY] != S_AUTO) return "--variant=seed is the ticker limiter: no --set strategy";
    if (c->variant == 1 && c->set[P_DEADLINE_US]) return "--variant=seed has no deadline-aware WaitN: no --set deadline_us";
    if (c->duration <= 0 && (double)c->k.items * (double)c->set[P_N] / (double)c->set[P_LIMIT] > 10.0)
        return "--items x n / limit: a count-based run of more than 10 s (use --duration for long runs)";
    return NULL;
}

WL_DEFINE(ratelimit) = {
    .name = "ratelimit",
    .seed_key = "scale_ratelimit",
    .group = "scale",
    .desc = "T callers share one token bucket with x/time/rate's semantics (Wait, Allow, Reserve)",
    .op = "call admitted",
    .latency = "call -> admitted (Wait, Reserve + sleep, or Allow retried)",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = WL_UNUSED, .items = 2000 },
    .params = ratelimit_params,
    .run = ratelimit_run,
    .check = ratelimit_check,
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "achieved_rate", "ops/s", "(tokens admitted - burst) / time since the limiter's creation" },
        { "rate_error_pct", "%", "achieved_rate vs limit" },
        { "wait_p50_ns", "ns", "time to admission of every call, median" },
        { "wait_p99_ns", "ns", "time to admission of every call, p99" },
        { "late_p99_ns", "ns", "a waiter's wake-up after its booked time, p99" },
        { "rejected", "count", "Allow false, or Wait refused for its deadline" },
        { "strategy", "id", "1 locked, 2 cas, 3 the seed's ticker" },
        { "seed_ticks_lost", "count", "seed: ticker periods that put no token in the bucket" },
        { NULL, NULL, NULL },
    },
};
