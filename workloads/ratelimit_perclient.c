/*
 * ratelimit_perclient: one token bucket per client, kept in a map keyed by
 * client id; T threads serve requests whose client ids follow a Zipf law
 * over C clients, and the population drifts (new ids arrive, old ones go
 * quiet), as real traffic does. The playbook's ClientLimiter of seed 003
 * ("Per-client rate limiting": a map[string]*rate.Limiter under one mutex,
 * GetLimiter creates a limiter on first sight, Allow(clientID) is
 * GetLimiter(id).Allow()).
 *
 * The default map: S shards, each a chained hash table under its own
 * cp_mutex; a client's bucket lives in its entry and Allow runs under the
 * shard's lock (lookup, insert and the bucket's update in one critical
 * section, so an eviction can never race with a use). The bucket is
 * x/time/rate's (starts full, burst, limit tokens/s) kept as one number:
 * the time at which it is full again (GCRA: allowed iff max(tat, now) +
 * interval - burst x interval <= now). A janitor thread on a cp_ticker
 * (period max(1 ms, idle_ms / 2)) evicts every entry idle for idle_ms whose
 * bucket is full again: a full bucket is exactly a new one, so eviction
 * never gives a client more than its rate.
 *
 * One op: one Allow(client) (admitted or refused). Latency: the call.
 * Parameters: clients C, skew (Zipf exponent x 100; 0: uniform), churn
 * (new ids per 1000 requests of a thread: the id is (rank + slide) mod 4C,
 * slide growing by churn per 1000), limit and burst (per client), idle_ms,
 * shards, cancel_after_ms.
 *
 * Invariants, checked on every run:
 *   - per client, never more than its rate: at every admission, admitted(id)
 *     <= burst + limit x (now - the id's first request) (+ 0.01), across
 *     evictions (an eviction of a bucket that was not full breaks it);
 *   - every call counted once: admitted + refused = calls (count-based:
 *     --items), and the per-client admissions add up to the admissions;
 *   - one entry per client: the final sweep finds no key twice, and the
 *     map's size counter matches its entries;
 *   - idle clients go: once every client has been idle for idle_ms, no
 *     entry that has been evictable (idle and full) for two janitor periods
 *     may remain within 1 s (else "leaked N map entries");
 *   - cancellation: every thread has stopped within 1 s of the cancel;
 *   - every thread joined.
 *
 * Metrics: allow_ns (mean time of one Allow, over the calls timed for the
 * latency, 1 in --lat-sample),
 * map_size_max (largest size seen by an insert), map_size_end (after the
 * last request), evicted, admitted_pct, clients_seen.
 *
 * Variants: default; seed: the playbook's map under one mutex that creates
 * a limiter (with its own mutex, as rate.Limiter) on first sight and never
 * removes one: the map grows with every client ever seen (map_size_end),
 * and the idle check fails with the count of leaked entries.
 */
#include "runtime/workload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { P_CLIENTS, P_SKEW, P_CHURN, P_LIMIT, P_BURST, P_IDLE_MS, P_SHARDS, P_CANCEL_AFTER_MS, P_COUNT };
enum { M_ALLOW_NS, M_SIZE_MAX, M_SIZE_END, M_EVICTED, M_ADMITTED_PCT, M_CLIENTS_SEEN };
static const wl_param ratelimit_perclient_params[] = {
    [P_CLIENTS] = { "clients", 1000, "C clients (Zipf ranks)", 5000 },
    [P_SKEW] = { "skew", 110, "Zipf exponent x 100 (110: s = 1.1; 0: uniform)", 200 },
    [P_CHURN] = { "churn", 50, "new client ids per 1000 requests of a thread (0: a fixed population)", 500 },
    [P_LIMIT] = { "limit", 1000, "tokens/s per client", 10000 },
    [P_BURST] = { "burst", 5, "bucket size per client (it starts full)", 20 },
    [P_IDLE_MS] = { "idle_ms", 5, "evict a client idle this long whose bucket is full again", 20 },
    [P_SHARDS] = { "shards", 16, "map shards, each under its own cp_mutex (the seed: one)", 64 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the workers' ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(ratelimit_perclient_params, P_COUNT);


struct entry {
    uint64_t key;
    uint64_t tat;           /* the time (cp_now_ns) at which the bucket is full again */
    uint64_t last;          /* last request */
    cp_mutex *mu;           /* seed: the limiter's own lock */
    struct entry *next;
};

struct shard {
    cp_mutex *mu;
    struct entry **tab;
    size_t mask, n;
    struct entry *free;
} __attribute__((aligned(64)));

struct pc_state {
    wl_run *r;
    int seed;               /* the seed's map: one shard, no eviction, a mutex per limiter */
    struct shard *sh;
    size_t nshards;
    uint64_t inc, tau, idle_ns, period;
    double limit;
    int64_t burst;
    /* the workload's own accounting, per id, under the lock that guards the
     * id's bucket (its shard's; the seed: its limiter's) */
    uint64_t space;         /* ids are < space */
    uint64_t *adm, *first;
    double *cdf;            /* Zipf over ranks 0..C-1 */
    uint64_t clients, churn;
    cp_ctx *ctx;            /* the workers': cancel_after_ms */
    cp_ctx *janitor_ctx;    /* the janitor's: ended after the idle check */
    cp_event *workers_done;
    wl_group live_workers;
    _Atomic uint64_t size, size_max, size_end, evicted, over, over_id, over_k, over_dt, last_use, last_exit;
    _Atomic uint64_t calls, admitted, allow_ns_sum, allow_ns_n, errors;
    _Atomic(const char *) error;
};

static void note_error(struct pc_state *s, const char *what)
{
    const char *none = NULL;
    atomic_compare_exchange_strong(&s->error, &none, what);
    atomic_fetch_add(&s->errors, 1);
}

static void atomic_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t prev = atomic_load_explicit(a, memory_order_relaxed);
    while (prev < v && !atomic_compare_exchange_weak(a, &prev, v)) {}
}

static inline uint64_t hash_of(uint64_t key) { return wl_mix(key ^ 0x5bd1e995u); }

static struct shard *shard_of(struct pc_state *s, uint64_t h)
{
    return &s->sh[(h >> 48) % s->nshards];
}

/* shard->mu held */
static int grow(struct shard *sh)
{
    size_t m = sh->mask ? 2 * (sh->mask + 1) : 16;
    struct entry **t = calloc(m, sizeof *t);
    if (!t) return -1;
    for (size_t i = 0; sh->tab && i <= sh->mask; i++)
        for (struct entry *e = sh->tab[i], *nx; e; e = nx) {
            nx = e->next;
            size_t j = hash_of(e->key) & (m - 1);
            e->next = t[j];
            t[j] = e;
        }
    free(sh->tab);
    sh->tab = t;
    sh->mask = m - 1;
    return 0;
}

/* Find or create id's entry (shard->mu held). A new bucket is full. */
static struct entry *lookup(struct pc_state *s, struct shard *sh, uint64_t key, uint64_t h, uint64_t now)
{
    if (sh->tab)
        for (struct entry *e = sh->tab[h & sh->mask]; e; e = e->next)
            if (e->key == key) return e;
    if ((!sh->tab || sh->n > sh->mask) && grow(sh)) return NULL;
    struct entry *e = sh->free;
    if (e) sh->free = e->next;
    else if (!(e = calloc(1, sizeof *e))) return NULL;
    e->key = key;
    e->tat = now;
    e->last = now;
    if (s->seed && !e->mu && !(e->mu = cp_mutex_new(s->r->cfg->b))) {
        e->next = sh->free;
        sh->free = e;
        return NULL;
    }
    e->next = sh->tab[h & sh->mask];
    sh->tab[h & sh->mask] = e;
    sh->n++;
    atomic_max(&s->size_max, atomic_fetch_add(&s->size, 1) + 1);
    return e;
}

/* The bucket (its lock held): x/time/rate's AllowN(now, 1) on a GCRA state. */
static int bucket_allow(struct pc_state *s, struct entry *e, uint64_t now)
{
    uint64_t t = (e->tat > now ? e->tat : now) + s->inc;
    if (t > now + s->tau) return 0;     /* the time to act t - tau is still to come */
    e->tat = t;
    return 1;
}

/* Accounting of one admission (the id's lock held). */
static void account(struct pc_state *s, uint64_t id, uint64_t now)
{
    uint64_t k = ++s->adm[id];
    uint64_t dt = now - s->first[id];
    if ((double)k > (double)s->burst + (double)dt * s->limit / 1e9 + 0.01 && !atomic_fetch_add(&s->over, 1)) {
        atomic_store(&s->over_id, id);
        atomic_store(&s->over_k, k);
        atomic_store(&s->over_dt, dt);
    }
}

static int allow(struct pc_state *s, uint64_t id)
{
    uint64_t h = hash_of(id);
    struct shard *sh = shard_of(s, h);
    int ok;
    cp_mutex_lock(sh->mu);
    uint64_t now = cp_now_ns();
    struct entry *e = lookup(s, sh, id, h, now);
    if (!e) {
        cp_mutex_unlock(sh->mu);
        note_error(s, "out of memory in the map");
        return 0;
    }
    if (!s->seed) {
        if (!s->first[id]) s->first[id] = now;
        e->last = now;
        if ((ok = bucket_allow(s, e, now))) account(s, id, now);
        cp_mutex_unlock(sh->mu);
        return ok;
    }
    /* the seed: GetLimiter under the map's lock, then Allow under the limiter's */
    cp_mutex_unlock(sh->mu);
    cp_mutex_lock(e->mu);
    now = cp_now_ns();
    if (!s->first[id]) s->first[id] = now;
    e->last = now;
    if ((ok = bucket_allow(s, e, now))) account(s, id, now);
    cp_mutex_unlock(e->mu);
    return ok;
}

/* Evictable at now: idle for idle_ns and full again. How long it has been. */
static int evictable_for(const struct pc_state *s, const struct entry *e, uint64_t now, uint64_t *since)
{
    uint64_t t = e->last + s->idle_ns;
    if (e->tat > t) t = e->tat;
    if (now < t) return 0;
    *since = now - t;
    return 1;
}

static void sweep(struct pc_state *s)
{
    for (size_t i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->sh[i];
        cp_mutex_lock(sh->mu);
        uint64_t now = cp_now_ns(), since = 0, gone = 0;
        for (size_t j = 0; sh->tab && j <= sh->mask; j++)
            for (struct entry **pp = &sh->tab[j], *e; (e = *pp);) {
                if (evictable_for(s, e, now, &since)) {
                    *pp = e->next;
                    e->next = sh->free;
                    sh->free = e;
                    sh->n--;
                    gone++;
                } else {
                    pp = &e->next;
                }
            }
        cp_mutex_unlock(sh->mu);
        if (gone) {
            atomic_fetch_sub(&s->size, gone);
            atomic_fetch_add(&s->evicted, gone);
        }
    }
}

static void *janitor(wl_thread *self, void *arg)
{
    struct pc_state *s = arg;
    cp_timer *tk = cp_ticker_new(s->r->cfg->b, s->period);
    if (!tk) {
        note_error(s, "out of memory for the janitor's ticker");
        return NULL;
    }
    uint64_t t;
    wl_phase(self, "tick");
    while (cp_chan_recv(cp_timer_chan(tk), &t, s->janitor_ctx) == CP_OK) {
        wl_phase(self, "sweep");
        sweep(s);
        wl_phase(self, "tick");
    }
    cp_timer_free(tk);
    wl_phase(self, "done");
    return NULL;
}

struct worker_arg { struct pc_state *s; int index; uint64_t quota; };

static uint64_t zipf_rank(const struct pc_state *s, uint64_t *rng)
{
    uint64_t x = *rng = wl_mix(*rng);
    double u = (double)(x >> 11) * 0x1p-53;
    size_t lo = 0, hi = (size_t)s->clients - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static void *worker(wl_thread *self, void *arg)
{
    struct worker_arg *a = arg;
    struct pc_state *s = a->s;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample;
    uint64_t rng = wl_mix(r->cfg->seed * 31 + (uint64_t)a->index), i = 0, ok = 0, tsum = 0, tn = 0;
    int64_t until_sample = 0;
    wl_phase(self, "Allow");
    for (; wl_more(r, i, a->quota) && cp_ctx_err(s->ctx) == CP_OK; i++) {
        uint64_t id = (zipf_rank(s, &rng) + i * s->churn / 1000) % s->space;
        if (wl_sample(sample, &until_sample)) {
            uint64_t c0 = wl_now();
            ok += (uint64_t)allow(s, id);
            uint64_t d = wl_since(c0);
            cp_hist_record(self->hist, d);
            tsum += d;
            tn++;
        } else {
            ok += (uint64_t)allow(s, id);
        }
    }
    uint64_t t1 = wl_now();
    atomic_fetch_add(&s->calls, i);
    atomic_fetch_add(&s->admitted, ok);
    atomic_fetch_add(&s->allow_ns_sum, tsum);
    atomic_fetch_add(&s->allow_ns_n, tn);
    atomic_max(&s->last_use, cp_now_ns());
    atomic_max(&s->last_exit, t1);
    self->ops = i;
    if (wl_group_leave(&s->live_workers)) {
        atomic_store(&s->size_end, atomic_load(&s->size));     /* after the last request */
        cp_event_fire(s->workers_done);
    }
    wl_phase(self, "done");
    return NULL;
}

/* Entries evictable for at least `age` (every shard locked in turn). */
static uint64_t count_stale(struct pc_state *s, uint64_t age)
{
    uint64_t n = 0, since = 0;
    for (size_t i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->sh[i];
        cp_mutex_lock(sh->mu);
        uint64_t now = cp_now_ns();
        for (size_t j = 0; sh->tab && j <= sh->mask; j++)
            for (struct entry *e = sh->tab[j]; e; e = e->next)
                n += evictable_for(s, e, now, &since) && since >= age;
        cp_mutex_unlock(sh->mu);
    }
    return n;
}

static void free_entries(struct entry *e)
{
    for (struct entry *nx; e; e = nx) {
        nx = e->next;
        if (e->mu) cp_mutex_free(e->mu);
        free(e);
    }
}

static int perclient_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    const int threads = (int)c->k.threads;
    const int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    struct pc_state *s = calloc(1, sizeof *s);
    struct worker_arg *wa = calloc((size_t)threads, sizeof *wa);
    uint8_t *seen = NULL;
    int rc = -1;
    if (!s || !wa) goto out;
    s->r = r;
    s->seed = c->variant == 1;
    s->clients = (uint64_t)c->set[P_CLIENTS];
    s->churn = (uint64_t)c->set[P_CHURN];
    s->space = s->churn ? 4 * s->clients : s->clients;
    s->limit = (double)c->set[P_LIMIT];
    s->burst = c->set[P_BURST];
    s->inc = (uint64_t)ceil(1e9 / s->limit);     /* rounded up: never faster than limit */
    s->tau = (uint64_t)s->burst * s->inc;
    s->idle_ns = (uint64_t)c->set[P_IDLE_MS] * 1000000u;
    s->period = s->idle_ns / 2 > 1000000u ? s->idle_ns / 2 : 1000000u;
    s->nshards = s->seed ? 1 : (size_t)c->set[P_SHARDS];
    wl_group_init(&s->live_workers, threads);
    /* one cache line per shard: aligned_alloc, as calloc only aligns to 16 */
    if ((s->sh = aligned_alloc(64, s->nshards * sizeof *s->sh))) memset(s->sh, 0, s->nshards * sizeof *s->sh);
    s->adm = calloc(s->space, sizeof *s->adm);
    s->first = calloc(s->space, sizeof *s->first);
    s->cdf = malloc(s->clients * sizeof *s->cdf);
    s->ctx = cp_ctx_with_cancel(c->b, NULL);
    s->janitor_ctx = cp_ctx_with_cancel(c->b, NULL);
    s->workers_done = cp_event_new(c->b);
    if (!s->sh || !s->adm || !s->first || !s->cdf || !s->ctx || !s->janitor_ctx || !s->workers_done) goto out;
    for (size_t i = 0; i < s->nshards; i++)
        if (!(s->sh[i].mu = cp_mutex_new(c->b))) goto out;
    /* Zipf: P(rank k) ~ 1 / (k + 1)^skew */
    double sum = 0, e = (double)c->set[P_SKEW] / 100.0;
    for (uint64_t k = 0; k < s->clients; k++) sum += s->cdf[k] = pow((double)(k + 1), -e);
    double acc = 0;
    for (uint64_t k = 0; k < s->clients; k++) s->cdf[k] = (acc += s->cdf[k]) / sum;
    s->cdf[s->clients - 1] = 2.0;   /* u < 1 always lands */

    if (!s->seed) wl_spawn(r, "janitor", janitor, s);
    for (int i = 0; i < threads; i++) {
        wa[i] = (struct worker_arg){ s, i, wl_share((uint64_t)c->k.items, threads, i) };
        wl_spawn(r, "worker", worker, &wa[i]);
    }

    uint64_t cancelled_at = wl_start_cancel_wait(r, s->ctx, cancel_ms, s->workers_done, 0);
    uint64_t size_end = atomic_load(&s->size_end), per_client = 0, clients_seen = 0;
    for (uint64_t id = 0; id < s->space; id++) {    /* the workers are done: stable */
        per_client += s->adm[id];
        clients_seen += s->first[id] != 0;
    }

    /* Idle clients go: once every client has been idle for idle_ms (plus two
     * janitor periods), an entry evictable for two periods is a leak unless
     * the janitor removes it within 1 s. */
    uint64_t quiet = atomic_load(&s->last_use) + s->idle_ns + 2 * s->period, now = cp_now_ns();
    if (quiet > now) wl_sleep_ns(quiet - now);
    uint64_t t0 = wl_now(), stale;
    while ((stale = count_stale(s, 2 * s->period)) && wl_since(t0) < WL_BOUND_NS) wl_sleep_ns(1000000);
    if (stale)
        wl_fail(r, "leaked %llu map entries: clients idle for %lld ms with a full bucket still in the map %.3f s "
                "later (map size %llu, %llu clients seen)%s", (unsigned long long)stale,
                (long long)c->set[P_IDLE_MS], (double)wl_since(t0) / 1e9,
                (unsigned long long)atomic_load(&s->size), (unsigned long long)clients_seen,
                s->seed ? ": the seed's map never removes a limiter" : "");
    cp_ctx_cancel(s->janitor_ctx);
    wl_join(r);
    /* the op rate is the workers': the idle check above is not part of it */
    r->t_end = atomic_load(&s->last_exit) > r->t_start ? atomic_load(&s->last_exit) : r->t_end;

    uint64_t calls = atomic_load(&s->calls), admitted = atomic_load(&s->admitted);
    if (atomic_load(&s->errors))
        wl_fail(r, "%s (%llu times)", atomic_load(&s->error), (unsigned long long)atomic_load(&s->errors));
    if (atomic_load(&s->over))
        wl_fail(r, "client %llu was admitted %llu times %.6f s after its first request: more than burst %lld + "
                "limit %.0f/s x elapsed = %.2f (%llu admissions over the bound)",
                (unsigned long long)atomic_load(&s->over_id), (unsigned long long)atomic_load(&s->over_k),
                (double)atomic_load(&s->over_dt) / 1e9, (long long)s->burst, s->limit,
                (double)s->burst + (double)atomic_load(&s->over_dt) * s->limit / 1e9,
                (unsigned long long)atomic_load(&s->over));
    if (c->duration <= 0 && !cancelled_at && calls != (uint64_t)c->k.items)
        wl_fail(r, "%llu Allow calls made, expected --items %lld", (unsigned long long)calls, (long long)c->k.items);
    if (per_client != admitted)
        wl_fail(r, "per-client admissions add up to %llu, the workers counted %llu", (unsigned long long)per_client,
                (unsigned long long)admitted);
    /* one entry per client, and the size counter matches */
    if (!(seen = calloc(s->space, 1))) goto out;
    uint64_t entries = 0, dup = 0;
    for (size_t i = 0; i < s->nshards; i++)
        for (size_t j = 0; s->sh[i].tab && j <= s->sh[i].mask; j++)
            for (struct entry *en = s->sh[i].tab[j]; en; en = en->next, entries++)
                dup += en->key >= s->space || seen[en->key]++;
    if (dup) wl_fail(r, "%llu map entries duplicate a client (or carry a bad key)", (unsigned long long)dup);
    if (entries != atomic_load(&s->size))
        wl_fail(r, "the map holds %llu entries, its size counter says %llu", (unsigned long long)entries,
                (unsigned long long)atomic_load(&s->size));
    uint64_t last_exit = atomic_load(&s->last_exit);
    if (cancelled_at && last_exit > cancelled_at && last_exit - cancelled_at > WL_BOUND_NS)
        wl_fail(r, "cancellation took %.3f s to stop every worker (bound 1 s)", (double)(last_exit - cancelled_at) / 1e9);

    if (atomic_load(&s->allow_ns_n))
        wl_metric(r, M_ALLOW_NS, (double)atomic_load(&s->allow_ns_sum) / (double)atomic_load(&s->allow_ns_n));
    wl_metric(r, M_SIZE_MAX, (double)atomic_load(&s->size_max));
    wl_metric(r, M_SIZE_END, (double)size_end);
    wl_metric(r, M_EVICTED, (double)atomic_load(&s->evicted));
    wl_metric(r, M_ADMITTED_PCT, calls ? 100.0 * (double)admitted / (double)calls : 0);
    wl_metric(r, M_CLIENTS_SEEN, (double)clients_seen);
    r->ops = calls;
    rc = 0;
out:
    if (s) {
        for (size_t i = 0; s->sh && i < s->nshards; i++) {
            struct shard *sh = &s->sh[i];
            for (size_t j = 0; sh->tab && j <= sh->mask; j++) free_entries(sh->tab[j]);
            free_entries(sh->free);
            free(sh->tab);
            if (sh->mu) cp_mutex_free(sh->mu);
        }
        free(s->sh);
        free(s->adm);
        free(s->first);
        free(s->cdf);
        cp_ctx_free(s->ctx);
        cp_ctx_free(s->janitor_ctx);
        if (s->workers_done) cp_event_free(s->workers_done);
    }
    free(seen);
    free(wa);
    free(s);
    return rc;
}

static const char *perclient_check(const wl_cfg *c)
{
    if (c->set[P_CLIENTS] < 1 || c->set[P_CLIENTS] > 1000000) return "--set clients: 1..1000000";
    if (c->set[P_LIMIT] < 1 || c->set[P_LIMIT] > 1000000000) return "--set limit: 1..1e9 tokens/s per client";
    if (c->set[P_BURST] < 1 || c->set[P_BURST] > 1000000) return "--set burst: 1..1000000 (a zero burst allows nothing)";
    if (c->set[P_SHARDS] < 1 || c->set[P_SHARDS] > 4096) return "--set shards: 1..4096";
    if (c->set[P_IDLE_MS] > 60000) return "--set idle_ms: at most 60000";
    if (c->set[P_SKEW] > 1000) return "--set skew: the Zipf exponent x 100, at most 1000";
    return NULL;
}

WL_DEFINE(ratelimit_perclient) = {
    .name = "ratelimit_perclient",
    .group = "scale",
    .desc = "a limiter per client in a sharded map, Zipf-skewed drifting clients, idle clients evicted",
    .op = "Allow(client) call",
    .latency = "one Allow(client): lookup or insert + bucket",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = WL_UNUSED, .items = 200000 },
    .params = ratelimit_perclient_params,
    .run = perclient_run,
    .check = perclient_check,
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "allow_ns", "ns", "mean time of one Allow(client), over the timed calls (--lat-sample)" },
        { "map_size_max", "count", "the map's largest size" },
        { "map_size_end", "count", "the map's size after the last request" },
        { "evicted", "count", "idle clients evicted by the janitor" },
        { "admitted_pct", "%", "Allow calls admitted" },
        { "clients_seen", "count", "distinct client ids requested" },
        { NULL, NULL, NULL },
    },
};
