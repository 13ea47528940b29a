/*
 * circuitbreaker: N callers run a protected call through one circuit breaker
 * with the semantics of sony/gobreaker (seeds 002 and 003 sketch it; seed
 * key: none, the catalogue of seed 000 has no breaker). The downstream fails
 * with a configurable pattern: every call fails with probability fail_pct %,
 * and during an outage window (outage_at_ms .. + outage_ms after the start)
 * every call fails.
 *
 * gobreaker's semantics, as read from its documentation and source
 * (gobreaker.go: Settings, Counts, beforeRequest / afterRequest,
 * currentState, setState, toNewGeneration), followed here:
 *   - three states: closed, open, half-open; each state change starts a new
 *     generation, which clears the counts (requests, total successes and
 *     failures, consecutive successes and failures);
 *   - closed: every call is admitted; ReadyToTrip(counts) is checked after
 *     each failure and trips to open (here: consecutive failures >= K,
 *     --set trip_after=K); with Interval > 0 the closed state also starts a
 *     new generation every Interval (the counts are cleared, the state
 *     stays closed);
 *   - open: every call is rejected (ErrOpenState) until Timeout has passed
 *     (--set open_us=T); the next call after that finds the breaker half-open
 *     (the transition is lazy, made by currentState on a request);
 *   - half-open: at most MaxRequests calls are admitted (--set probes=M),
 *     later ones are rejected (ErrTooManyRequests); M consecutive successes
 *     close the breaker; any failure reopens it;
 *   - a result is counted only in the generation that admitted its call: a
 *     call admitted before a state change reports into a generation that no
 *     longer exists, and is ignored;
 *   - the breaker's lock is held only inside beforeRequest and afterRequest,
 *     never across the protected call.
 *
 * One op: a call decided: admitted and run through the downstream (which
 * busy-works --work-ns), or rejected. Latency: the whole Execute (admit +
 * call + record, or the rejection). A rejected caller waits reject_us before
 * its next call (as a client would; 0: retries at once).
 *
 * Invariants, checked on every run:
 *   - every call decided once: attempts = admitted + rejected (open) +
 *     rejected (too many), and the downstream ran exactly the admitted calls;
 *   - the breaker's per-generation request counts, summed by state, equal
 *     the calls the downstream saw admitted in that state; none in open;
 *   - each generation counted no more results than it admitted (an old
 *     generation's results are ignored);
 *   - a half-open generation admitted at most M calls;
 *   - only the four edges closed->open, open->half-open, half-open->closed
 *     and half-open->open; closed->open with >= K consecutive failures;
 *     half-open->closed with >= M consecutive successes; half-open->open on a
 *     failure; open->half-open no sooner than open_us after the trip;
 *   - the breaker lets calls overlap: with >= 2 callers, the first calls of
 *     callers 0 and 1 must be in the downstream at the same time (a
 *     rendezvous with a 1 s bound; the other callers start after it);
 *   - every thread joined.
 *
 * Variants: `seed` holds the breaker's lock across the protected call, as
 * the CircuitBreaker of seed 002 does (mu.Lock(); defer mu.Unlock(); fn()).
 * Every call is then serialised: max_inflight is 1 whatever the callers, and
 * the rendezvous invariant fails the run.
 *
 * Metrics: calls_per_s (downstream calls per second), rejected, trips,
 * max_inflight, recovery_ns (outage end -> breaker closed again; reported
 * only when the breaker tripped during the outage and closed after it).
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_TRIP, P_OPEN_US, P_PROBES, P_INTERVAL_MS, P_FAIL_PCT, P_OUTAGE_AT_MS, P_OUTAGE_MS, P_REJECT_US, P_COUNT };
enum { M_CALLS_PER_S, M_REJECTED, M_TRIPS, M_MAX_INFLIGHT, M_RECOVERY_NS };
enum { ST_CLOSED, ST_HALF, ST_OPEN };
static const wl_param circuitbreaker_params[] = {
    [P_TRIP] = { "trip_after", 5, "trip to open after K consecutive failures (ReadyToTrip)", 8 },
    [P_OPEN_US] = { "open_us", 2000, "stay open T us, then half-open (Timeout)", 3000 },
    [P_PROBES] = { "probes", 3, "half-open admits M calls; M consecutive successes close (MaxRequests)", 4 },
    [P_INTERVAL_MS] = { "interval_ms", 0, "closed: clear the counts every I ms (Interval); 0: never", 5 },
    [P_FAIL_PCT] = { "fail_pct", 2, "each downstream call fails with probability P %", 100 },
    [P_OUTAGE_AT_MS] = { "outage_at_ms", 5, "the outage starts this many ms after the start", 10 },
    [P_OUTAGE_MS] = { "outage_ms", 20, "the downstream fails every call for T ms; 0: no outage", 20 },
    [P_REJECT_US] = { "reject_us", 20, "a rejected caller waits this long before its next call", 100 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(circuitbreaker_params, P_COUNT);

static const char *const st_name[] = { "closed", "half-open", "open" };

enum { DEC_RUN_OK, DEC_RUN_FAILED, DEC_REJECT_OPEN, DEC_REJECT_MANY };

struct counts { uint64_t requests, total_succ, total_fail, consec_succ, consec_fail; };

/* The breaker. Everything below mu is under mu. */
struct breaker {
    cp_mutex *mu;
    int seed;                           /* variant 1: the lock is held across the call */
    uint64_t trip_after, max_req, timeout_ns, interval_ns;
    int state;
    uint64_t gen, expiry;               /* expiry 0: none */
    struct counts c;
    /* the observer (gobreaker's OnStateChange, plus the end of each generation) */
    uint64_t opened_at, trips, admitted_in[3];
    uint64_t outage_start, outage_end, tripped_in_outage, closed_after_outage;
    uint64_t bad;                       /* violations seen at a transition */
    char bad_what[160];
};

static void cb_bad(struct breaker *b, const char *what, uint64_t a, uint64_t x)
{
    if (!b->bad++)
        snprintf(b->bad_what, sizeof b->bad_what, "%s (%llu, %llu)", what, (unsigned long long)a,
                 (unsigned long long)x);
}

/* The current generation ends: account what it admitted, check its counts. */
static void gen_end(struct breaker *b)
{
    b->admitted_in[b->state] += b->c.requests;
    if (b->c.total_succ + b->c.total_fail > b->c.requests)
        cb_bad(b, "a generation counted more results than it admitted (results, requests)",
               b->c.total_succ + b->c.total_fail, b->c.requests);
    if (b->state == ST_HALF && b->c.requests > b->max_req)
        cb_bad(b, "half-open admitted more than probes calls (requests, probes)", b->c.requests, b->max_req);
    if (b->state == ST_OPEN && b->c.requests)
        cb_bad(b, "the open state admitted calls (requests)", b->c.requests, 0);
}

/* toNewGeneration: a new generation of the current state. */
static void start_generation(struct breaker *b, uint64_t now)
{
    b->gen++;
    memset(&b->c, 0, sizeof b->c);
    switch (b->state) {
    case ST_CLOSED: b->expiry = b->interval_ns ? now + b->interval_ns : 0; break;
    case ST_OPEN: b->expiry = now + b->timeout_ns; break;
    default: b->expiry = 0; break;
    }
}

static void set_state(struct breaker *b, int to, uint64_t now)
{
    int from = b->state;
    if (from == to) return;
    /* the observer: the edge and the rule that allows it */
    if (from == ST_CLOSED && to == ST_OPEN) {
        if (b->c.consec_fail < b->trip_after)
            cb_bad(b, "tripped with fewer than trip_after consecutive failures (failures, K)", b->c.consec_fail,
                   b->trip_after);
        b->trips++;
        b->opened_at = now;
        if (now >= b->outage_start && now < b->outage_end) b->tripped_in_outage = 1;
    } else if (from == ST_OPEN && to == ST_HALF) {
        if (now - b->opened_at < b->timeout_ns)
            cb_bad(b, "half-open before the open timeout (ns open, timeout ns)", now - b->opened_at, b->timeout_ns);
    } else if (from == ST_HALF && to == ST_CLOSED) {
        if (b->c.consec_succ < b->max_req)
            cb_bad(b, "closed with fewer than probes consecutive successes (successes, M)", b->c.consec_succ,
                   b->max_req);
        if (b->tripped_in_outage && !b->closed_after_outage && now >= b->outage_end) b->closed_after_outage = now;
    } else if (from == ST_HALF && to == ST_OPEN) {
        if (!b->c.consec_fail) cb_bad(b, "reopened without a failure", 0, 0);
        b->opened_at = now;
    } else {
        cb_bad(b, "illegal state change (from, to)", (uint64_t)from, (uint64_t)to);
    }
    gen_end(b);
    b->state = to;
    start_generation(b, now);
}

/* gobreaker's currentState: the lazy transitions that time makes. */
static int current_state(struct breaker *b, uint64_t now)
{
    if (b->state == ST_CLOSED && b->expiry && b->expiry <= now) {
        gen_end(b);
        start_generation(b, now);
    }
    else if (b->state == ST_OPEN && b->expiry <= now) set_state(b, ST_HALF, now);
    return b->state;
}

/* beforeRequest: DEC_RUN_OK (admitted; *gen and *st set) or a rejection. */
static int before_request(struct breaker *b, uint64_t *gen, int *st)
{
    int s = current_state(b, cp_now_ns());
    if (s == ST_OPEN) return DEC_REJECT_OPEN;
    if (s == ST_HALF && b->c.requests >= b->max_req) return DEC_REJECT_MANY;
    b->c.requests++;
    *gen = b->gen;
    *st = s;
    return DEC_RUN_OK;
}

static void after_request(struct breaker *b, uint64_t gen, int ok)
{
    uint64_t now = cp_now_ns();
    int s = current_state(b, now);
    if (gen != b->gen) return;          /* a result of an older generation */
    if (ok) {
        b->c.total_succ++;
        b->c.consec_succ++;
        b->c.consec_fail = 0;
        if (s == ST_HALF && b->c.consec_succ >= b->max_req) set_state(b, ST_CLOSED, now);
    } else {
        b->c.total_fail++;
        b->c.consec_fail++;
        b->c.consec_succ = 0;
        if (s == ST_CLOSED && b->c.consec_fail >= b->trip_after) set_state(b, ST_OPEN, now);
        else if (s == ST_HALF) set_state(b, ST_OPEN, now);
    }
}

struct cb_state {
    wl_run *r;
    struct breaker br;
    int threads;
    uint64_t fail_pct, reject_ns;
    _Atomic uint64_t t0;                /* cp_now_ns at the start gate */
    /* the downstream's own accounting */
    _Atomic uint64_t calls_in[3], inflight, max_inflight;
    /* the rendezvous of callers 0 and 1 (when both have calls to make) */
    int rdv;
    _Atomic int rdv_in, rdv_resolved;
    _Atomic uint64_t rdv_waited_ns;     /* a participant that gave up: how long it waited */
    cp_event *rdv_done;
    /* callers' totals */
    _Atomic uint64_t attempts, admitted, rej_open, rej_many;
};

struct caller { struct cb_state *s; int id; uint64_t rng; };

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Callers 0 and 1 meet in the downstream with their first calls: each waits
 * (1 s at most) until the other is in the downstream too. */
static void rendezvous(struct cb_state *s)
{
    atomic_fetch_add(&s->rdv_in, 1);
    uint64_t t0 = cp_now_ns();
    while (atomic_load(&s->rdv_in) < 2 && !wl_stopped(s->r)) {
        uint64_t waited = cp_now_ns() - t0;
        if (waited > 1000000000ull) {
            atomic_store(&s->rdv_waited_ns, waited);
            return;
        }
        wl_sleep_ns(20000);
    }
}

static void rdv_resolve(struct cb_state *s)
{
    if (atomic_fetch_add(&s->rdv_resolved, 1) == 1) cp_event_fire(s->rdv_done);
}

/* The protected call: busy work, then success or failure by the pattern. */
static int downstream(struct caller *a, int admitted_in, int rdv)
{
    struct cb_state *s = a->s;
    wl_max_store(&s->max_inflight, atomic_fetch_add(&s->inflight, 1) + 1);
    atomic_fetch_add(&s->calls_in[admitted_in], 1);
    if (rdv) rendezvous(s);
    wl_work(s->r->cfg->k.work_ns);
    uint64_t now = cp_now_ns();
    int ok = !(now >= s->br.outage_start && now < s->br.outage_end) &&
             !(s->fail_pct && next_rand(&a->rng) % 100 < s->fail_pct);
    atomic_fetch_sub(&s->inflight, 1);
    return ok;
}

/* gobreaker's Execute. */
static int execute(struct caller *a, int rdv)
{
    struct breaker *b = &a->s->br;
    uint64_t gen = 0;
    int st = ST_CLOSED;
    cp_mutex_lock(b->mu);
    int d = before_request(b, &gen, &st);
    if (d != DEC_RUN_OK) {
        cp_mutex_unlock(b->mu);
        return d;
    }
    if (!b->seed) cp_mutex_unlock(b->mu);
    int ok = downstream(a, st, rdv);
    if (!b->seed) cp_mutex_lock(b->mu);
    after_request(b, gen, ok);
    cp_mutex_unlock(b->mu);
    return ok ? DEC_RUN_OK : DEC_RUN_FAILED;
}

static void *caller(wl_thread *self, void *arg)
{
    struct cb_state *s = arg;
    wl_run *r = s->r;
    /* this caller's own state, on its own stack */
    struct caller me = { s, self->rank, wl_mix(r->cfg->seed ^ (uint64_t)self->rank) | 1 }, *a = &me;
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, s->threads, a->id);
    const int64_t sample = r->cfg->lat_sample;
    int64_t until_sample = 0;
    uint64_t i = 0, admitted = 0, rej_open = 0, rej_many = 0;
    int rdv = s->rdv && a->id < 2;

    if (s->rdv && a->id >= 2) {
        wl_phase(self, "wait for the rendezvous");
        cp_event_wait(s->rdv_done, NULL);
    }
    wl_phase(self, "call");
    for (; wl_more(r, i, n); i++) {
        uint64_t t = 0;
        if (wl_sample(sample, &until_sample)) {
            t = wl_now();
        }
        int d = execute(a, rdv);
        if (t) cp_hist_record(self->hist, wl_since(t));
        if (rdv) {
            rdv = 0;
            rdv_resolve(s);             /* admitted or not, this caller's part is done */
        }
        if (d == DEC_RUN_OK || d == DEC_RUN_FAILED) {
            admitted++;
            continue;
        }
        if (d == DEC_REJECT_OPEN) rej_open++;
        else rej_many++;
        if (s->reject_ns) {
            wl_phase(self, "back off");
            cp_sleep(s->reject_ns, NULL);
            wl_phase(self, "call");
        }
    }
    if (rdv) rdv_resolve(s);            /* stopped before its first call */
    atomic_fetch_add(&s->attempts, i);
    atomic_fetch_add(&s->admitted, admitted);
    atomic_fetch_add(&s->rej_open, rej_open);
    atomic_fetch_add(&s->rej_many, rej_many);
    self->ops = i;
    wl_phase(self, "done");
    return NULL;
}

static int circuitbreaker_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct cb_state s = {
        .r = r,
        .threads = (int)c->k.threads,
        .fail_pct = (uint64_t)c->set[P_FAIL_PCT],
        .reject_ns = (uint64_t)c->set[P_REJECT_US] * 1000u,
    };
    struct breaker *b = &s.br;
    b->seed = c->variant == 1;
    b->trip_after = (uint64_t)c->set[P_TRIP];
    b->max_req = (uint64_t)c->set[P_PROBES];
    b->timeout_ns = (uint64_t)c->set[P_OPEN_US] * 1000u;
    b->interval_ns = (uint64_t)c->set[P_INTERVAL_MS] * 1000000u;
    b->state = ST_CLOSED;
    b->expiry = 0;
    s.rdv = s.threads >= 2 && (c->duration > 0 || c->k.items >= 2);
    b->mu = cp_mutex_new(c->b);
    s.rdv_done = cp_event_new(c->b);
    if (!b->mu || !s.rdv_done) {
        cp_mutex_free(b->mu);
        cp_event_free(s.rdv_done);
        return -1;
    }
    wl_spawn_n(r, s.threads, "caller", caller, &s);
    uint64_t t0 = cp_now_ns();
    b->outage_start = c->set[P_OUTAGE_MS] ? t0 + (uint64_t)c->set[P_OUTAGE_AT_MS] * 1000000u : 0;
    b->outage_end = b->outage_start + (uint64_t)c->set[P_OUTAGE_MS] * 1000000u;
    if (b->outage_end < b->outage_start) b->outage_end = b->outage_start;
    atomic_store(&s.t0, t0);
    if (b->interval_ns) b->expiry = t0 + b->interval_ns;
    wl_start_and_join(r);
    uint64_t t_end = cp_now_ns();

    gen_end(b);                         /* the last generation's admissions */
    uint64_t attempts = atomic_load(&s.attempts), admitted = atomic_load(&s.admitted);
    uint64_t rej_open = atomic_load(&s.rej_open), rej_many = atomic_load(&s.rej_many);
    uint64_t calls = 0;
    for (int i = 0; i < 3; i++) calls += atomic_load(&s.calls_in[i]);
    if (b->bad)
        wl_fail(r, "breaker broke gobreaker's rules: %s (%llu violations)", b->bad_what, (unsigned long long)b->bad);
    if (attempts != admitted + rej_open + rej_many)
        wl_fail(r, "calls undecided: attempts %llu != admitted %llu + rejected open %llu + rejected half-open %llu",
                (unsigned long long)attempts, (unsigned long long)admitted, (unsigned long long)rej_open,
                (unsigned long long)rej_many);
    if (calls != admitted)
        wl_fail(r, "downstream ran %llu calls, the breaker admitted %llu", (unsigned long long)calls,
                (unsigned long long)admitted);
    for (int i = 0; i < 3; i++)
        if (b->admitted_in[i] != atomic_load(&s.calls_in[i]))
            wl_fail(r, "%s generations counted %llu admitted calls, the downstream saw %llu admitted %s",
                    st_name[i], (unsigned long long)b->admitted_in[i], (unsigned long long)atomic_load(&s.calls_in[i]),
                    st_name[i]);
    if (atomic_load(&s.rdv_waited_ns))
        wl_fail(r, "calls serialised: the first calls of callers 0 and 1 never overlapped (one waited %.3f s, "
                   "bound 1 s; max in flight %llu with %d callers): the lock is held across the protected call",
                (double)atomic_load(&s.rdv_waited_ns) / 1e9, (unsigned long long)atomic_load(&s.max_inflight),
                s.threads);
    wl_check_items(r, attempts, "made %llu calls, asked for %lld");

    double secs = t_end > t0 ? (double)(t_end - t0) / 1e9 : 0;
    wl_metric(r, M_CALLS_PER_S, secs > 0 ? (double)calls / secs : 0);
    wl_metric(r, M_REJECTED, (double)(rej_open + rej_many));
    wl_metric(r, M_TRIPS, (double)b->trips);
    wl_metric(r, M_MAX_INFLIGHT, (double)atomic_load(&s.max_inflight));
    if (b->closed_after_outage) wl_metric(r, M_RECOVERY_NS, (double)(b->closed_after_outage - b->outage_end));
    r->ops = attempts;
    cp_event_free(s.rdv_done);
    cp_mutex_free(b->mu);
    return 0;
}

static const char *circuitbreaker_check(const wl_cfg *c)
{
    if (c->set[P_TRIP] < 1) return "--set trip_after must be >= 1";
    if (c->set[P_PROBES] < 1) return "--set probes must be >= 1";
    if (c->set[P_FAIL_PCT] > 100) return "--set fail_pct must be 0..100";
    return NULL;
}

WL_DEFINE(circuitbreaker) = {
    .name = "circuitbreaker",
    .group = "resilience",
    .desc = "N callers through one breaker (gobreaker: closed/open/half-open) to a failing downstream",
    .op = "call decided (run or rejected)",
    .latency = "Execute: admit + call + record, or the rejection",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = 1000, .items = 50000 },
    .params = circuitbreaker_params,
    .run = circuitbreaker_run,
    .check = circuitbreaker_check,
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "calls_per_s", "ops/s", "downstream calls (admitted) per second" },
        { "rejected", "count", "calls rejected (open, or half-open full)" },
        { "trips", "count", "closed -> open transitions" },
        { "max_inflight", "count", "most calls in the downstream at once" },
        { "recovery_ns", "ns", "outage end -> breaker closed (when it tripped in the outage)" },
        { NULL, NULL, NULL },
    },
};
