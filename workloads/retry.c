/*
 * retry: T clients call a flaky downstream through retry(ctx, fn): up to
 * max_attempts attempts, with an exponential backoff between them
 * (min(cap, base x 2^attempt)) and jitter, each backoff a ctx-aware sleep
 * (cp_sleep: a cancel ends it at once), and no attempt once the ctx has
 * ended. The "Retry with backoff" of seed 003, written as it should be.
 *
 * Jitter (--set jitter): 0 none (the seed's), 1 full (uniform in [0, d]),
 * 2 equal (d/2 + uniform in [0, d/2]); d is the exponential backoff.
 * The downstream: an attempt fails with probability fail_pct %, and every
 * attempt fails during an outage of the first outage_ms of the run.
 *
 * One op: one call finished (success, attempts exhausted, or cancelled).
 * Latency: the call, from its first attempt to its return (the time to
 * success for the calls that succeed).
 * Parameters: fail_pct, max_attempts, base_us, cap_us, jitter, outage_ms,
 * cancel_after_ms; --threads clients, --items calls, --work-ns per attempt.
 *
 * Invariants, checked on every run:
 *   - every call ends once: calls = successes + exhausted + cancelled
 *     (count-based without a cancel: --items calls, none cancelled);
 *   - no attempt lost or counted twice: the downstream's count of attempts
 *     = the clients' count; a call makes at most max_attempts, succeeds on
 *     its last one, and is exhausted only after max_attempts failures;
 *   - the backoff policy: every backoff is within [lo, hi] for its attempt
 *     (none: exactly min(cap, base x 2^a); full: [0, that]; equal: [half,
 *     that]), and a sleep that returned OK lasted at least its backoff;
 *   - no sleep after the last attempt: a finished call slept attempts - 1
 *     times (a cancelled one at most attempts times);
 *   - cancellation: every client has returned within 1 s of the cancel,
 *     whatever backoff it was in (else the run fails naming the time);
 *   - every thread joined.
 *
 * Metrics: attempts_per_success, success_p50_ns / success_p99_ns (time to
 * success), exhausted, sleeps, wasted_sleep_ns (time slept after a final
 * attempt), cancel_ns (cancel -> every client returned).
 *
 * Variants: default; seed: the playbook's loop (`for attempt := 0; attempt
 * < maxAttempts; attempt++ { err = fn(); if err == nil {...}; backoff :=
 * ...; select { case <-time.After(backoff): case <-ctx.Done(): } }`): no
 * jitter (every client retries in step) and, after the last attempt has
 * failed, one more full backoff before the error is returned. The run fails
 * naming the calls that slept after their final attempt and the time lost.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_FAIL_PCT, P_MAX_ATTEMPTS, P_BASE_US, P_CAP_US, P_JITTER, P_OUTAGE_MS, P_CANCEL_AFTER_MS, P_COUNT };
enum { J_NONE, J_FULL, J_EQUAL };
enum { M_ATTEMPTS_PER_SUCCESS, M_SUCCESS_P50, M_SUCCESS_P99, M_EXHAUSTED, M_SLEEPS, M_WASTED, M_CANCEL_NS };
enum { R_OK, R_EXHAUSTED, R_CANCELED };
static const wl_param retry_params[] = {
    [P_FAIL_PCT] = { "fail_pct", 30, "each attempt fails with this probability, %", 80 },
    [P_MAX_ATTEMPTS] = { "max_attempts", 5, "attempts per call at most", 6 },
    [P_BASE_US] = { "base_us", 50, "the first backoff; doubled after each failed attempt", 100 },
    [P_CAP_US] = { "cap_us", 5000, "the backoff's cap", 0 },
    [P_JITTER] = { "jitter", J_FULL, "0 none, 1 full (uniform in [0, d]), 2 equal (d/2 + uniform in [0, d/2])", 2 },
    [P_OUTAGE_MS] = { "outage_ms", 0, "every attempt fails during the first T ms of the run", 5 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the clients' ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(retry_params, P_COUNT);


struct retry_state {
    wl_run *r;
    int seed;
    int jitter;
    uint64_t fail_pct, max_attempts, base, cap, outage_end;
    cp_ctx *ctx;
    cp_event *workers_done;
    wl_group live;
    _Atomic uint64_t tickets, downstream_attempts, last_exit;
    _Atomic uint64_t calls, ok, exhausted, cancelled, attempts, ok_attempts, sleeps, wasted_calls, wasted_ns;
    _Atomic uint64_t bad_policy, early_sleep, bad_sleeps, bad_attempts;
    _Atomic uint64_t bp_a, bp_d;        /* first policy violation: attempt, backoff */
};

struct client { struct retry_state *s; int index; cp_hist *success; };

static inline uint64_t rnd(uint64_t *x) { return *x = wl_mix(*x); }

/* The downstream: one attempt. */
static int downstream(struct retry_state *s, uint64_t *rng)
{
    atomic_fetch_add_explicit(&s->downstream_attempts, 1, memory_order_relaxed);
    if (s->r->cfg->k.work_ns) wl_work(s->r->cfg->k.work_ns);
    if (s->outage_end && wl_now() < s->outage_end) return 0;
    return rnd(rng) % 100 >= s->fail_pct;
}

/* The backoff before attempt a + 1 (a counts from 0), and its bounds. */
static uint64_t backoff(const struct retry_state *s, uint64_t a, uint64_t *rng, uint64_t *lo, uint64_t *hi)
{
    uint64_t d = a >= 40 ? s->cap : s->base << a;
    if (d > s->cap) d = s->cap;
    *hi = d;
    switch (s->jitter) {
    case J_FULL: *lo = 0; return d ? rnd(rng) % (d + 1) : 0;
    case J_EQUAL: *lo = d / 2; return d / 2 + (d - d / 2 ? rnd(rng) % (d - d / 2 + 1) : 0);
    default: *lo = d; return d;
    }
}

struct outcome { int how; uint64_t attempts, sleeps, wasted_ns; };

static struct outcome retry(struct retry_state *s, uint64_t *rng)
{
    struct outcome o = { R_EXHAUSTED, 0, 0, 0 };
    for (uint64_t a = 0; a < s->max_attempts; a++) {
        if (!s->seed && cp_ctx_err(s->ctx) != CP_OK) {      /* no attempt once the ctx has ended */
            o.how = R_CANCELED;
            return o;
        }
        o.attempts++;
        if (downstream(s, rng)) {
            o.how = R_OK;
            return o;
        }
        if (!s->seed && a + 1 == s->max_attempts) break;   /* no backoff after the last attempt */
        uint64_t lo, hi, d = backoff(s, a, rng, &lo, &hi);
        if (d < lo || d > hi) {
            if (!atomic_fetch_add(&s->bad_policy, 1)) {
                atomic_store(&s->bp_a, a);
                atomic_store(&s->bp_d, d);
            }
        }
        o.sleeps++;
        uint64_t t0 = cp_now_ns();
        cp_status st = cp_sleep(d, s->ctx);
        uint64_t slept = cp_now_ns() - t0;
        if (st != CP_OK) {
            o.how = R_CANCELED;
            return o;
        }
        if (slept < d) atomic_fetch_add(&s->early_sleep, 1);
        if (a + 1 == s->max_attempts) o.wasted_ns += slept;     /* the seed's sleep after the last one */
    }
    return o;
}

static void *client(wl_thread *self, void *arg)
{
    struct client *c = arg;
    struct retry_state *s = c->s;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t items = (uint64_t)r->cfg->k.items;
    uint64_t rng = wl_mix(r->cfg->seed * 131 + (uint64_t)c->index);
    uint64_t calls = 0, ok = 0, exhausted = 0, cancelled = 0, attempts = 0, ok_attempts = 0, sleeps = 0;
    uint64_t wasted_calls = 0, wasted_ns = 0, bad_sleeps = 0, bad_attempts = 0;
    int64_t until_sample = 0;
    wl_phase(self, "retry");
    while (!wl_stopped(r) && cp_ctx_err(s->ctx) == CP_OK) {
        if (r->cfg->duration <= 0 && atomic_fetch_add(&s->tickets, 1) >= items) break;
        uint64_t t0 = wl_now();
        struct outcome o = retry(s, &rng);
        uint64_t dt = wl_since(t0);
        calls++;
        attempts += o.attempts;
        sleeps += o.sleeps;
        if (o.attempts > s->max_attempts) bad_attempts++;
        if (o.how == R_OK) {
            ok++;
            ok_attempts += o.attempts;
            cp_hist_record(c->success, dt);
        } else if (o.how == R_EXHAUSTED) {
            exhausted++;
            if (o.attempts != s->max_attempts) bad_attempts++;
        } else {
            cancelled++;
        }
        /* finished calls slept between attempts only; a cancelled one was cut in one of them */
        if (o.how != R_CANCELED ? o.sleeps != o.attempts - 1 : o.sleeps > o.attempts) {
            bad_sleeps++;
            if (o.wasted_ns) {
                wasted_calls++;
                wasted_ns += o.wasted_ns;
            }
        }
        if (wl_sample(sample, &until_sample)) {
            cp_hist_record(self->hist, dt);
        }
    }
    atomic_fetch_add(&s->calls, calls);
    atomic_fetch_add(&s->ok, ok);
    atomic_fetch_add(&s->exhausted, exhausted);
    atomic_fetch_add(&s->cancelled, cancelled);
    atomic_fetch_add(&s->attempts, attempts);
    atomic_fetch_add(&s->ok_attempts, ok_attempts);
    atomic_fetch_add(&s->sleeps, sleeps);
    atomic_fetch_add(&s->wasted_calls, wasted_calls);
    atomic_fetch_add(&s->wasted_ns, wasted_ns);
    atomic_fetch_add(&s->bad_sleeps, bad_sleeps);
    atomic_fetch_add(&s->bad_attempts, bad_attempts);
    self->ops = calls;
    wl_max_store(&s->last_exit, wl_now());
    if (wl_group_leave(&s->live)) cp_event_fire(s->workers_done);
    wl_phase(self, "done");
    return NULL;
}

static int retry_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    const int threads = (int)c->k.threads;
    const int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    struct retry_state *s = calloc(1, sizeof *s);
    struct client *cl = calloc((size_t)threads, sizeof *cl);
    cp_hist *success = cp_hist_new(2, 3600ull * 1000000000ull);
    int rc = -1;
    if (!s || !cl || !success) goto out;
    s->r = r;
    s->seed = c->variant == 1;
    s->jitter = s->seed ? J_NONE : (int)c->set[P_JITTER];
    s->fail_pct = (uint64_t)c->set[P_FAIL_PCT];
    s->max_attempts = (uint64_t)c->set[P_MAX_ATTEMPTS];
    s->base = (uint64_t)c->set[P_BASE_US] * 1000u;
    s->cap = (uint64_t)c->set[P_CAP_US] * 1000u;
    wl_group_init(&s->live, threads);
    s->ctx = cp_ctx_with_cancel(c->b, NULL);
    s->workers_done = cp_event_new(c->b);
    if (!s->ctx || !s->workers_done) goto out;
    for (int i = 0; i < threads; i++) {
        cl[i] = (struct client){ s, i, cp_hist_new(2, 3600ull * 1000000000ull) };
        if (!cl[i].success) goto out;
        wl_spawn(r, "client", client, &cl[i]);
    }

    /* the outage starts with the run (published to the clients by the gate) */
    if (c->set[P_OUTAGE_MS] > 0) s->outage_end = wl_now() + (uint64_t)c->set[P_OUTAGE_MS] * 1000000u;
    /* at the end of --duration, the cancel ends the backoffs in progress */
    uint64_t cancelled_at = wl_start_cancel_wait(r, s->ctx, cancel_ms, s->workers_done, 1);
    wl_join(r);

    uint64_t calls = atomic_load(&s->calls), ok = atomic_load(&s->ok), exhausted = atomic_load(&s->exhausted);
    uint64_t cancelled = atomic_load(&s->cancelled), attempts = atomic_load(&s->attempts);
    if (s->seed && atomic_load(&s->wasted_calls))
        wl_fail(r, "%llu calls slept after their final attempt: %.3f ms of backoff wasted before returning the "
                "error (the seed's loop backs off once more after attempt %llu of %llu)",
                (unsigned long long)atomic_load(&s->wasted_calls), (double)atomic_load(&s->wasted_ns) / 1e6,
                (unsigned long long)s->max_attempts, (unsigned long long)s->max_attempts);
    if (atomic_load(&s->bad_sleeps))
        wl_fail(r, "%llu calls slept a wrong number of times (a finished call sleeps attempts - 1 times)",
                (unsigned long long)atomic_load(&s->bad_sleeps));
    if (calls != ok + exhausted + cancelled)
        wl_fail(r, "calls %llu != successes %llu + exhausted %llu + cancelled %llu", (unsigned long long)calls,
                (unsigned long long)ok, (unsigned long long)exhausted, (unsigned long long)cancelled);
    if (c->duration <= 0 && !cancelled_at && (calls != (uint64_t)c->k.items || cancelled))
        wl_fail(r, "%llu calls finished (%llu cancelled), expected --items %lld with no cancel",
                (unsigned long long)calls, (unsigned long long)cancelled, (long long)c->k.items);
    if (!cancelled_at && cancelled)
        wl_fail(r, "%llu calls cancelled, but nobody cancelled", (unsigned long long)cancelled);
    if (attempts != atomic_load(&s->downstream_attempts))
        wl_fail(r, "attempts lost or counted twice: the clients made %llu, the downstream saw %llu",
                (unsigned long long)attempts, (unsigned long long)atomic_load(&s->downstream_attempts));
    if (atomic_load(&s->bad_attempts))
        wl_fail(r, "%llu calls made more than max_attempts %llu, or gave up before it",
                (unsigned long long)atomic_load(&s->bad_attempts), (unsigned long long)s->max_attempts);
    if (atomic_load(&s->bad_policy))
        wl_fail(r, "%llu backoffs outside the policy (first: %llu ns before attempt %llu)",
                (unsigned long long)atomic_load(&s->bad_policy), (unsigned long long)atomic_load(&s->bp_d),
                (unsigned long long)atomic_load(&s->bp_a) + 2);
    if (atomic_load(&s->early_sleep))
        wl_fail(r, "%llu backoff sleeps returned OK before their time", (unsigned long long)atomic_load(&s->early_sleep));
    uint64_t last_exit = atomic_load(&s->last_exit);
    uint64_t cancel_ns = cancelled_at && last_exit > cancelled_at ? last_exit - cancelled_at : 0;
    if (cancel_ns > WL_BOUND_NS)
        wl_fail(r, "cancellation took %.3f s to stop every client (bound 1 s): a backoff did not honour the ctx",
                (double)cancel_ns / 1e9);

    for (int i = 0; i < threads; i++) cp_hist_merge(success, cl[i].success);
    if (ok) {
        wl_metric(r, M_ATTEMPTS_PER_SUCCESS, (double)atomic_load(&s->ok_attempts) / (double)ok);
        wl_metric(r, M_SUCCESS_P50, (double)cp_hist_percentile(success, 50));
        wl_metric(r, M_SUCCESS_P99, (double)cp_hist_percentile(success, 99));
    }
    wl_metric(r, M_EXHAUSTED, (double)exhausted);
    wl_metric(r, M_SLEEPS, (double)atomic_load(&s->sleeps));
    wl_metric(r, M_WASTED, (double)atomic_load(&s->wasted_ns));
    if (cancelled_at) wl_metric(r, M_CANCEL_NS, (double)cancel_ns);
    r->ops = calls;
    rc = 0;
out:
    for (int i = 0; cl && i < threads; i++) cp_hist_free(cl[i].success);
    if (s) {
        cp_ctx_free(s->ctx);
        if (s->workers_done) cp_event_free(s->workers_done);
    }
    cp_hist_free(success);
    free(cl);
    free(s);
    return rc;
}

/* The expected time of a count-based run (backoffs only), to refuse one
 * that would run for minutes: stress draws its knobs at random. */
static double expected_seconds(const wl_cfg *c)
{
    double p = (double)c->set[P_FAIL_PCT] / 100.0, q = 1, t = 0;
    double f = c->variant == 1 || c->set[P_JITTER] == J_NONE ? 1.0 : c->set[P_JITTER] == J_FULL ? 0.5 : 0.75;
    int64_t n = c->set[P_MAX_ATTEMPTS] - (c->variant == 1 ? 0 : 1);
    for (int64_t a = 0; a < n; a++) {
        q *= p;                 /* P(attempts 0..a all failed) */
        double d = a >= 40 ? 1e300 : (double)c->set[P_BASE_US] * (double)(1ull << a);
        if (d > (double)c->set[P_CAP_US]) d = (double)c->set[P_CAP_US];
        t += q * (d * f + 20.0) * 1e-6;     /* + a sleep's own cost, ~20 us */
    }
    return t * (double)c->k.items / (double)c->k.threads;
}

static const char *retry_check(const wl_cfg *c)
{
    if (c->set[P_FAIL_PCT] > 100) return "--set fail_pct: 0..100";
    if (c->set[P_MAX_ATTEMPTS] < 1 || c->set[P_MAX_ATTEMPTS] > 64) return "--set max_attempts: 1..64";
    if (c->set[P_CAP_US] < c->set[P_BASE_US]) return "--set cap_us: at least base_us";
    if (c->set[P_CAP_US] > 60000000) return "--set cap_us: at most 60 s";
    if (c->set[P_JITTER] > J_EQUAL) return "--set jitter: 0 none, 1 full, 2 equal";
    if (c->duration <= 0 && expected_seconds(c) > 10.0)
        return "--items with these backoffs: a count-based run of more than 10 s expected (use --duration)";
    return NULL;
}

WL_DEFINE(retry) = {
    .name = "retry",
    .group = "resilience",
    .desc = "T clients call a flaky downstream with exponential backoff + jitter, ctx-aware sleeps",
    .op = "call finished",
    .latency = "call -> return (time to success for the successes)",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = 0, .items = 2000 },
    .params = retry_params,
    .run = retry_run,
    .check = retry_check,
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "attempts_per_success", "count", "attempts of the calls that succeeded, mean" },
        { "success_p50_ns", "ns", "time to success, median" },
        { "success_p99_ns", "ns", "time to success, p99" },
        { "exhausted", "count", "calls that failed max_attempts times" },
        { "sleeps", "count", "backoff sleeps" },
        { "wasted_sleep_ns", "ns", "time slept after a final attempt (the seed's)" },
        { "cancel_ns", "ns", "cancel -> every client returned" },
        { NULL, NULL, NULL },
    },
};
