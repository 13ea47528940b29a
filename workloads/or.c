/*
 * or: combine K done events into one that fires as soon as any of them
 * fires. The or-channel of the seed catalogue (flows_or; the playbook's
 * `func or(channels ...<-chan struct{}) <-chan struct{}`):
 *
 *   recursive (--set impl=0, the seed's): or(c0..cn-1) returns c0 itself
 *     for n = 1; otherwise it makes orDone and starts one helper goroutine,
 *     which for n = 2 selects on c0, c1 and for n >= 3 selects on c0, c1, c2
 *     and on or(c3..cn-1, orDone), then closes orDone. Passing orDone down is
 *     what lets the deeper helpers exit once the combined event has fired:
 *     floor(K/2) helpers for K >= 2, each fire of a deep source climbing one
 *     helper per level;
 *   flat (--set impl=1): one helper selecting over all K sources.
 *
 * A helper goroutine is a thread per level of the recursion, spawned once
 * and woken for each round by a send on its own channel ("go helper()").
 * One op: a round: K fresh sources, or() of them (all helpers armed), one
 * source fired, the combined event seen fired. Sources fire in turn
 * (round r fires source r mod K), so every depth of the tree is measured.
 * Latency: the source's fire -> the caller's wait on the combined event
 * returns. --items rounds, or --duration.
 *
 * Parameters: --set sources=K (default 8), --set impl=0 recursive | 1 flat.
 * Metrics: helpers (helper threads one combined event takes: floor(K/2)
 * recursive, 1 flat), exit_mean_ns / exit_max_ns (the combined fire -> the
 * last helper of the round exited).
 *
 * Variants: default; seed: the recursive or without orDone in the
 * recursive call (`or(channels[3:]...)`), so a helper below the level that
 * fired waits for sources that never fire. The run counts the helpers still
 * blocked 1 s after the combined fire and fails ("leaked N helper
 * threads"), then releases them (an internal ctx that only the harness
 * cancels) so that they can be joined. Needs sources >= 5 to leak.
 *
 * Invariants, checked every round of every run:
 *   - the combined event fires exactly once (one helper fires it) and never
 *     before a source fires: not fired when the tree is armed, and every
 *     helper that fires finds a source fired before it (the fire
 *     happens-before the select that saw it);
 *   - the input a helper's select returned has fired;
 *   - the combined event fires within 1 s of the source (else FAIL);
 *   - every helper of the round exits within 1 s of the combined fire
 *     (else FAIL naming how many leaked), and as many helpers ran as the
 *     recursion needs (checked when the next round starts: the helpers
 *     leave while the caller makes its sources, so it seldom sleeps);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_SOURCES, P_IMPL, P_COUNT };
enum { M_HELPERS, M_EXIT_MEAN, M_EXIT_MAX };
static const wl_param or_params[] = {
    [P_SOURCES] = { "sources", 8, "K: done events combined into one", 6 },
    [P_IMPL] = { "impl", 0, "0: recursive (the seed's or-channel, floor(K/2) helpers); 1: flat (one select over all K)", 1 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(or_params, P_COUNT);


struct level {                  /* one helper goroutine of the recursion */
    cp_chan *spawn;             /* "go helper()": a round number, capacity 1 */
    cp_event **in;              /* its inputs, written by the parent before the spawn */
    size_t n;
    cp_event *done;             /* its orDone, made by the parent (as or() does) */
    cp_event **rest;            /* scratch: the inputs of the or() one level down */
    cp_case *cases;
};

struct or_state {
    wl_run *r;
    const cp_backend *b;
    int k, flat, seed, nlevels;
    struct level *lv;
    cp_ctx *reap;               /* never cancelled by the pattern: releases leaked helpers */
    cp_wg *armed, *exited;
    _Atomic int live;           /* helpers of this round that have not exited */
    _Atomic int spawned;
    _Atomic int source_fired;   /* set (release) before the round's source fires */
    _Atomic int combined_fires;
    _Atomic uint64_t last_exit;     /* the round's last helper exit (wl_now) */
    wl_errors err;                  /* a: the level */
};

/* Helpers one or() of n inputs starts: recursive floor(n/2) for n >= 2
 * (each level passes n-3 inputs plus its orDone down), the seed's
 * 1 + helpers(n-3) (no orDone passed down), flat 1. */
static int helpers_for(int n, int flat, int seed)
{
    if (n < 2) return 0;
    if (flat || n == 2) return 1;
    return 1 + helpers_for(seed ? n - 3 : n - 2, 0, seed);
}

/* or() at recursion level L: the combined event of in[0..n), NULL if it can
 * never fire (no inputs, as Go's nil channel). */
static cp_event *or_make(struct or_state *s, int L, cp_event *const *in, size_t n, uint64_t round)
{
    if (n == 0) return NULL;
    if (n == 1) return in[0];
    struct level *lv = &s->lv[L];
    lv->done = cp_event_new(s->b);
    if (!lv->done) {
        /* levels L.. will not run: account for them so that no wait hangs */
        wl_note(&s->err, "out of memory for an orDone event at level", (uint64_t)L, 0);
        for (int j = L; j < s->nlevels; j++) {
            atomic_fetch_sub(&s->live, 1);
            cp_wg_done(s->armed);
            cp_wg_done(s->exited);
        }
        return NULL;
    }
    memcpy(lv->in, in, n * sizeof *in);
    lv->n = n;
    atomic_fetch_add(&s->spawned, 1);
    cp_chan_send(lv->spawn, &round, NULL);  /* capacity 1, drained every round: never blocks long */
    return lv->done;
}

struct helper_arg { struct or_state *s; int level; };

static void *helper(wl_thread *self, void *arg)
{
    struct helper_arg *a = arg;
    struct or_state *s = a->s;
    const int L = a->level;
    struct level *lv = &s->lv[L];
    uint64_t round, n = 0;
    wl_phase(self, "spawn");
    while (cp_chan_recv(lv->spawn, &round, NULL) == CP_OK) {
        size_t m = 0;
        if (s->flat || lv->n == 2) {
            for (size_t i = 0; i < lv->n; i++) lv->cases[m++] = (cp_case){ .op = CP_WAIT, .ev = lv->in[i] };
        } else {
            for (size_t i = 0; i < 3; i++) lv->cases[m++] = (cp_case){ .op = CP_WAIT, .ev = lv->in[i] };
            size_t nr = lv->n - 3;
            memcpy(lv->rest, lv->in + 3, nr * sizeof *lv->rest);
            if (!s->seed) lv->rest[nr++] = lv->done;   /* the seed forgets this */
            cp_event *below = or_make(s, L + 1, lv->rest, nr, round);
            if (below) lv->cases[m++] = (cp_case){ .op = CP_WAIT, .ev = below };
        }
        wl_phase(self, "select");
        cp_wg_done(s->armed);
        cp_status st;
        int i = cp_select(lv->cases, m, s->reap, &st);
        if (i >= 0) {
            if (!cp_event_fired(lv->cases[i].ev)) wl_note(&s->err, "select returned an input that has not fired, level", (uint64_t)L, 0);
            if (!atomic_load_explicit(&s->source_fired, memory_order_acquire))
                wl_note(&s->err, "a helper fired before any source fired, level", (uint64_t)L, 0);
            if (L == 0) atomic_fetch_add(&s->combined_fires, 1);
            cp_event_fire(lv->done);    /* defer close(orDone) */
            n++;
        } else if (st != CP_CANCELED) {
            wl_note(&s->err, "helper's select failed, level", (uint64_t)L, 0);
        }
        wl_max_store(&s->last_exit, wl_now());
        atomic_fetch_sub(&s->live, 1);
        cp_wg_done(s->exited);          /* last touch of the round's events */
        wl_phase(self, "spawn");
    }
    self->ops = n;
    wl_phase(self, "done");
    return NULL;
}

/* Release the helpers a leak (or a lost fire) left blocked, and wait for them. */
static void reap_round(struct or_state *s)
{
    cp_ctx_cancel(s->reap);
    cp_wg_wait(s->armed, NULL);
    cp_wg_wait(s->exited, NULL);
}

/* A round whose helpers may still be on their way out: the caller checks
 * them at the start of the next round (by then they are usually gone, so
 * it seldom has to sleep), and only then frees the round's events. */
struct pending { cp_event **src; uint64_t round, t_comb; int fire; };

/* Every helper of the round exited within 1 s (else the leak is counted and
 * they are released), the combined event was fired once and the recursion
 * ran all its helpers; then the round's events are freed. 0 if it failed. */
static int finish_round(struct or_state *s, const struct pending *p, uint64_t *exits, uint64_t *exit_sum,
                        uint64_t *exit_max)
{
    wl_run *r = s->r;
    const int H = s->nlevels;
    int ok = 1;
    if (H) {
        cp_ctx *bound = cp_ctx_with_timeout(s->b, NULL, WL_BOUND_NS);
        cp_status st = bound ? cp_wg_wait(s->exited, bound) : CP_ENOMEM;
        cp_ctx_free(bound);
        if (st != CP_OK) {
            int leaked = atomic_load(&s->live);
            wl_fail(r, "leaked %d of %d helper threads: still blocked %.3f s after the combined fire "
                       "(round %llu, source %d of %d fired)",
                    leaked, H, (double)wl_since(p->t_comb) / 1e9, (unsigned long long)p->round, p->fire, s->k);
            reap_round(s);
            ok = 0;
        } else {
            /* a round whose combined fire was never seen (t_comb 0: it
             * failed already) has no fire-to-exit time: not counted, else
             * exit_max would read hours */
            if (p->t_comb) {
                uint64_t dt = wl_diff(atomic_load(&s->last_exit), p->t_comb);
                (*exits)++;
                *exit_sum += dt;
                if (dt > *exit_max) *exit_max = dt;
            }
            if (atomic_load(&s->combined_fires) != 1)
                wl_fail(r, "round %llu: the combined event was fired %d times", (unsigned long long)p->round,
                        atomic_load(&s->combined_fires));
            if (atomic_load(&s->spawned) != H)
                wl_fail(r, "round %llu: %d helpers ran, the recursion needs %d", (unsigned long long)p->round,
                        atomic_load(&s->spawned), H);
        }
    }
    for (int L = 0; L < H; L++) {
        cp_event_free(s->lv[L].done);
        s->lv[L].done = NULL;
    }
    for (int i = 0; i < s->k; i++) cp_event_free(p->src[i]);
    return ok && !r->nfail;
}

static void *caller(wl_thread *self, void *arg)
{
    struct or_state *s = arg;
    wl_run *r = s->r;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    const int64_t sample = r->cfg->lat_sample;
    const int k = s->k, H = s->nlevels;
    int64_t until_sample = 0;
    uint64_t round = 0, exits = 0, exit_sum = 0, exit_max = 0;
    cp_event **buf[2] = { calloc((size_t)k, sizeof **buf), calloc((size_t)k, sizeof **buf) };
    struct pending prev;
    int have_prev = 0, cur = 0;
    if (!buf[0] || !buf[1]) { wl_fail(r, "out of memory"); goto out; }

    for (; wl_more(r, round, n); round++) {
        cp_event **src = buf[cur];
        int made = 0;
        for (; made < k; made++)
            if (!(src[made] = cp_event_new(s->b))) break;
        if (made < k) {
            wl_fail(r, "out of memory in round %llu", (unsigned long long)round);
            for (int i = 0; i < made; i++) cp_event_free(src[i]);
            break;
        }
        wl_phase(self, "wait helpers");
        if (have_prev && (have_prev = 0, !finish_round(s, &prev, &exits, &exit_sum, &exit_max))) {
            for (int i = 0; i < k; i++) cp_event_free(src[i]);
            break;
        }
        atomic_store(&s->source_fired, 0);
        atomic_store(&s->combined_fires, 0);
        atomic_store(&s->spawned, 0);
        atomic_store(&s->last_exit, 0);
        atomic_store(&s->live, H);
        if (H) {
            cp_wg_add(s->armed, H);
            cp_wg_add(s->exited, H);
        }

        wl_phase(self, "or()");
        cp_ctx *bound = cp_ctx_with_timeout(s->b, NULL, WL_BOUND_NS);
        cp_event *comb = or_make(s, 0, src, (size_t)k, round);
        int ok = 1, fire = (int)(round % (uint64_t)k);
        if (!bound || cp_wg_wait(s->armed, bound) != CP_OK) {
            wl_fail(r, "round %llu: %d helpers not started within 1 s", (unsigned long long)round, H);
            ok = 0;
        } else if (!comb) {
            wl_fail(r, "round %llu: or() of %d sources returned no event", (unsigned long long)round, k);
            ok = 0;
        } else if (cp_event_fired(comb)) {
            wl_fail(r, "round %llu: the combined event fired before any source", (unsigned long long)round);
            ok = 0;
        }
        uint64_t t_comb = 0;
        if (ok) {
            wl_phase(self, "wait combined");
            atomic_store_explicit(&s->source_fired, 1, memory_order_release);
            uint64_t t0 = wl_now();
            cp_event_fire(src[fire]);
            cp_status st = cp_event_wait(comb, bound);
            t_comb = wl_now();
            if (st != CP_OK) {
                wl_fail(r, "round %llu: the combined event did not fire within 1 s of source %d (%s)",
                        (unsigned long long)round, fire, cp_status_str(st));
                ok = 0;
            } else if (wl_sample(sample, &until_sample)) {
                cp_hist_record(self->hist, wl_diff(t_comb, t0));
            }
        }
        cp_ctx_free(bound);
        prev = (struct pending){ src, round, t_comb, fire };
        have_prev = 1;
        cur ^= 1;
        if (!ok) {
            reap_round(s);
            break;
        }
        if (atomic_load(&s->err.n)) break;
    }
    wl_phase(self, "wait helpers");
    if (have_prev && finish_round(s, &prev, &exits, &exit_sum, &exit_max) && !atomic_load(&s->err.n) &&
        r->cfg->duration <= 0 && round != n)
        wl_fail(r, "ran %llu rounds, asked for %llu", (unsigned long long)round, (unsigned long long)n);
out:
    for (int L = 0; L < H; L++) cp_chan_close(s->lv[L].spawn);
    free(buf[0]);
    free(buf[1]);
    self->ops = round;
    r->ops = round;
    if (exits) {
        wl_metric(r, M_EXIT_MEAN, (double)exit_sum / (double)exits);
        wl_metric(r, M_EXIT_MAX, (double)exit_max);
    }
    wl_phase(self, "done");
    return NULL;
}

static int or_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct or_state s = {
        .r = r,
        .b = c->b,
        .k = (int)c->set[P_SOURCES],
        .flat = c->set[P_IMPL] == 1,
        .seed = c->variant == 1,
    };
    int ret = -1;
    s.nlevels = helpers_for(s.k, s.flat, s.seed);
    s.lv = calloc((size_t)s.nlevels + 1, sizeof *s.lv);
    struct helper_arg *ha = calloc((size_t)s.nlevels + 1, sizeof *ha);
    s.reap = cp_ctx_with_cancel(c->b, NULL);
    s.armed = cp_wg_new(c->b);
    s.exited = cp_wg_new(c->b);
    if (!s.lv || !ha || !s.reap || !s.armed || !s.exited) goto out;
    size_t ncases = s.flat ? (size_t)s.k : 4;
    for (int L = 0; L < s.nlevels; L++) {
        struct level *lv = &s.lv[L];
        lv->spawn = cp_chan_new(c->b, sizeof(uint64_t), 1);
        lv->in = calloc((size_t)s.k + 1, sizeof *lv->in);
        lv->rest = calloc((size_t)s.k + 1, sizeof *lv->rest);
        lv->cases = calloc(ncases, sizeof *lv->cases);
        if (!lv->spawn || !lv->in || !lv->rest || !lv->cases) goto out;
        if (L < 8) wl_watch(r, "spawn", lv->spawn);
    }

    for (int L = 0; L < s.nlevels; L++) {
        ha[L] = (struct helper_arg){ &s, L };
        wl_spawn(r, "helper", helper, &ha[L]);
    }
    wl_spawn(r, "caller", caller, &s);
    wl_start_and_join(r);

    if (atomic_load(&s.err.n))
        wl_fail(r, "%s %d (%llu errors)", atomic_load(&s.err.first), (int)atomic_load(&s.err.a),
                (unsigned long long)atomic_load(&s.err.n));
    wl_metric(r, M_HELPERS, s.nlevels);
    ret = 0;
out:
    if (s.lv)
        for (int L = 0; L < s.nlevels; L++) {
            cp_chan_free(s.lv[L].spawn);
            free(s.lv[L].in);
            free(s.lv[L].rest);
            free(s.lv[L].cases);
        }
    free(s.lv);
    free(ha);
    cp_ctx_free(s.reap);
    cp_wg_free(s.armed);
    cp_wg_free(s.exited);
    return ret;
}

static const char *or_check(const wl_cfg *c)
{
    if (c->set[P_SOURCES] < 1) return "--set sources must be >= 1 (or() of no channels is nil: it never fires)";
    if (c->set[P_SOURCES] > 256) return "--set sources must be <= 256";
    if (c->set[P_IMPL] > 1) return "--set impl must be 0 (recursive) or 1 (flat)";
    if (c->variant == 1 && c->set[P_IMPL] == 1) return "--variant=seed is the recursive or's leak: needs --set impl=0";
    return NULL;
}

WL_DEFINE(or) = {
    .name = "or",
    .group = "flows",
    .desc = "K done events combined into one that fires when any fires (recursive or-channel | flat select)",
    .op = "combined fire",
    .latency = "first source fired -> combined event seen fired",
    .defaults = { .threads = WL_UNUSED, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = WL_UNUSED, .items = 2000 },
    .params = or_params,
    .run = or_run,
    .check = or_check,
    .seed_key = "flows_or",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "helpers", "count", "helper threads one combined event takes (recursive: floor(K/2); flat: 1)" },
        { "exit_mean_ns", "ns", "combined fire -> the round's last helper exited, mean" },
        { "exit_max_ns", "ns", "combined fire -> the round's last helper exited, max" },
        { NULL, NULL, NULL },
    },
};
