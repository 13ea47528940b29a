/*
 * waitgroup: rounds of fork/join, sync.WaitGroup in the seed catalogue
 * (primitives_waitgroup): the coordinator adds N, N workers each do
 * --work-ns and Done, the coordinator Waits; then the next round.
 *
 * Parameters: --threads N workers (default 4), --items rounds, --work-ns.
 * Workers are started once and handed a token per round through a channel
 * (creating threads per round would measure pthread_create).
 * One op: one round. Latency: from the last Done (its timestamp, taken just
 * before it) to Wait returning in the coordinator.
 *
 * Invariants, checked on every run:
 *   - Wait returns only after all N Dones of its round: a counter bumped
 *     before each Done equals N * rounds when each Wait returns;
 *   - Wait returns CP_OK; every round completes; every thread joined.
 */
#include "runtime/workload.h"

struct wg_state {
    wl_run *r;
    cp_wg *wg;
    cp_chan *tokens;
    int n;
    _Atomic uint64_t dones, last_done, errors, rounds;
};

static void *worker(wl_thread *self, void *arg)
{
    struct wg_state *s = arg;
    const int64_t work = s->r->cfg->k.work_ns;
    uint64_t tok, n = 0;
    wl_phase(self, "token");
    while (cp_chan_recv(s->tokens, &tok, NULL) == CP_OK) {
        if (work) wl_work(work);
        atomic_fetch_add_explicit(&s->dones, 1, memory_order_relaxed);
        wl_max_store(&s->last_done, wl_now());
        cp_wg_done(s->wg);
        n++;
    }
    self->ops = n;
    wl_phase(self, "done");
    return NULL;
}

static void *coordinator(wl_thread *self, void *arg)
{
    struct wg_state *s = arg;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample;
    int64_t until_sample = 0;
    uint64_t round = 0;
    for (; wl_more(r, round, (uint64_t)r->cfg->k.items); round++) {
        wl_phase(self, "fork");
        cp_wg_add(s->wg, s->n);
        for (int i = 0; i < s->n; i++)
            if (cp_chan_send(s->tokens, &round, NULL) != CP_OK) atomic_fetch_add(&s->errors, 1);
        wl_phase(self, "wait");
        if (cp_wg_wait(s->wg, NULL) != CP_OK) atomic_fetch_add(&s->errors, 1);
        uint64_t end = wl_now();
        /* the Dones' counter: relaxed, but each bump precedes its Done, and
         * Done happens before Wait returns */
        if (atomic_load_explicit(&s->dones, memory_order_relaxed) != (round + 1) * (uint64_t)s->n)
            atomic_fetch_add(&s->errors, 1);
        if (wl_sample(sample, &until_sample)) {
            uint64_t last = atomic_load_explicit(&s->last_done, memory_order_relaxed);
            cp_hist_record(self->hist, end > last ? end - last : 0);
        }
    }
    cp_chan_close(s->tokens);
    atomic_store(&s->rounds, round);
    self->ops = round;
    wl_phase(self, "done");
    return NULL;
}

static int waitgroup_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct wg_state s = { .r = r, .n = (int)c->k.threads };
    if (s.n < 1) { wl_fail(r, "--threads must be >= 1"); return 0; }
    s.wg = cp_wg_new(c->b);
    s.tokens = cp_chan_new(c->b, sizeof(uint64_t), (size_t)s.n);
    if (!s.wg || !s.tokens) { cp_wg_free(s.wg); cp_chan_free(s.tokens); return -1; }
    wl_watch(r, "tokens", s.tokens);
    wl_spawn_n(r, s.n, "worker", worker, &s);
    wl_spawn(r, "coordinator", coordinator, &s);
    wl_start_and_join(r);

    uint64_t rounds = atomic_load(&s.rounds);
    if (atomic_load(&s.errors))
        wl_fail(r, "%llu rounds where Wait returned before all Dones (or failed)",
                (unsigned long long)atomic_load(&s.errors));
    wl_check_items(r, rounds, "ran %llu rounds, asked for %lld");
    if (atomic_load(&s.dones) != rounds * (uint64_t)s.n)
        wl_fail(r, "%llu Dones for %llu rounds of %d", (unsigned long long)atomic_load(&s.dones),
                (unsigned long long)rounds, s.n);
    r->ops = rounds;
    cp_chan_free(s.tokens);
    cp_wg_free(s.wg);
    return 0;
}

WL_DEFINE(waitgroup) = {
    .name = "waitgroup",
    .seed_key = "primitives_waitgroup",
    .group = "primitives",
    .desc = "rounds of fork N / join: Add(N), N workers Done, Wait (sync.WaitGroup)",
    .op = "round",
    .latency = "last Done -> Wait returns",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = 1000, .items = 5000 },
    .params = (const wl_param[]){ { NULL, 0, NULL } },
    .run = waitgroup_run,
};
