/*
 * once: rounds of T threads racing on a fresh cp_once to initialise a
 * value, sync.Once in the seed catalogue (primitives_once).
 *
 * Parameters: --threads T (default 4), --items rounds, --work-ns inside the
 * initialiser (so that late callers must wait for it).
 * Each round the coordinator makes a fresh Once and hands a token to each
 * racer through a channel; racers call cp_once_do, read the value, and Done
 * a WaitGroup the coordinator waits on.
 * One op: one cp_once_do call. Latency: time in cp_once_do.
 *
 * Invariants, checked on every run:
 *   - fn ran exactly once per round (a per-round counter);
 *   - every caller saw the initialised value after cp_once_do returned
 *     (a plain field: the Once must publish it);
 *   - every thread joined.
 */
#include "runtime/workload.h"

struct round {
    cp_once *o;
    _Atomic int runs;
    uint64_t value;             /* plain: published by the Once */
    uint64_t want;
};

struct once_state {
    wl_run *r;
    cp_chan *tokens;
    cp_wg *wg;
    int n;
    _Atomic uint64_t errors, rounds;
};

static void init_value(void *p)
{
    struct round *rd = p;
    atomic_fetch_add_explicit(&rd->runs, 1, memory_order_relaxed);
    rd->value = rd->want;
}

struct init_arg { struct round *rd; int64_t work; };
static void init_with_work(void *p)
{
    struct init_arg *a = p;
    if (a->work) wl_work(a->work);
    init_value(a->rd);
}

static void *racer(wl_thread *self, void *arg)
{
    struct once_state *s = arg;
    const int64_t sample = s->r->cfg->lat_sample;
    int64_t until_sample = 0;
    struct init_arg *a;
    uint64_t n = 0;
    wl_phase(self, "token");
    while (cp_chan_recv(s->tokens, &a, NULL) == CP_OK) {
        uint64_t t0 = 0;
        if (wl_sample(sample, &until_sample)) t0 = wl_now();
        cp_once_do(a->rd->o, init_with_work, a);
        if (t0) cp_hist_record(self->hist, wl_since(t0));
        if (a->rd->value != a->rd->want) atomic_fetch_add(&s->errors, 1);
        n++;
        cp_wg_done(s->wg);
    }
    self->ops = n;
    wl_phase(self, "done");
    return NULL;
}

static void *coordinator(wl_thread *self, void *arg)
{
    struct once_state *s = arg;
    wl_run *r = s->r;
    uint64_t round = 0;
    for (; wl_more(r, round, (uint64_t)r->cfg->k.items); round++) {
        struct round rd = { .o = cp_once_new(r->cfg->b), .want = wl_mix(round) | 1 };
        struct init_arg a = { &rd, r->cfg->k.work_ns };
        struct init_arg *ap = &a;
        if (!rd.o) { atomic_fetch_add(&s->errors, 1); break; }
        wl_phase(self, "race");
        cp_wg_add(s->wg, s->n);
        for (int i = 0; i < s->n; i++)
            if (cp_chan_send(s->tokens, &ap, NULL) != CP_OK) atomic_fetch_add(&s->errors, 1);
        if (cp_wg_wait(s->wg, NULL) != CP_OK) atomic_fetch_add(&s->errors, 1);
        if (atomic_load(&rd.runs) != 1) atomic_fetch_add(&s->errors, 1);
        cp_once_free(rd.o);
    }
    cp_chan_close(s->tokens);
    atomic_store(&s->rounds, round);
    self->ops = 0;
    wl_phase(self, "done");
    return NULL;
}

static int once_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct once_state s = { .r = r, .n = (int)c->k.threads };
    if (s.n < 1) { wl_fail(r, "--threads must be >= 1"); return 0; }
    s.wg = cp_wg_new(c->b);
    s.tokens = cp_chan_new(c->b, sizeof(struct init_arg *), (size_t)s.n);
    if (!s.wg || !s.tokens) { cp_wg_free(s.wg); cp_chan_free(s.tokens); return -1; }
    wl_watch(r, "tokens", s.tokens);
    wl_spawn_n(r, s.n, "racer", racer, &s);
    wl_spawn(r, "coordinator", coordinator, &s);
    wl_start_and_join(r);

    uint64_t rounds = atomic_load(&s.rounds);
    if (atomic_load(&s.errors))
        wl_fail(r, "%llu violations: fn ran other than once, or a caller saw no value",
                (unsigned long long)atomic_load(&s.errors));
    wl_check_items(r, rounds, "ran %llu rounds, asked for %lld");
    r->ops = rounds * (uint64_t)s.n;
    cp_chan_free(s.tokens);
    cp_wg_free(s.wg);
    return 0;
}

WL_DEFINE(once) = {
    .name = "once",
    .seed_key = "primitives_once",
    .group = "primitives",
    .desc = "rounds of T threads racing on a fresh Once to initialise a value (sync.Once)",
    .op = "cp_once_do call",
    .latency = "time in cp_once_do",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = 1000, .items = 20000 },
    .params = (const wl_param[]){ { NULL, 0, NULL } },
    .run = once_run,
};
