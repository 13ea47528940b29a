/*
 * atomic: T threads increment a counter, the null reference for the
 * primitives group: what a bare atomic costs, shared or not, with no cp
 * primitive at all (the code is the same for every --impl; the backend is
 * not used). Seed: primitives_atomic. As Go's BenchmarkAtomicAdd (shared
 * counter) against per-P counters summed at the end:
 *   --set mode=0  one shared counter, atomic fetch_add (its cache line
 *                 bounces between the threads' cores);
 *   --set mode=1  one counter per thread, each on its own cache line,
 *                 atomic fetch_add (the cost of the locked instruction
 *                 alone), summed at the end;
 *   --set mode=2  as 1, but a relaxed load and store (one writer per
 *                 counter: no read-modify-write instruction at all).
 *
 * One op: one increment. Latency: one batch of 1000 increments, sampled
 * one batch in max(1, --lat-sample / 1000).
 *
 * Invariants, checked on every run:
 *   - exact total: the counter (mode 0) or the sum of the per-thread
 *     counters (modes 1, 2) == the increments the threads report, and ==
 *     --items in count mode;
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_MODE, P_COUNT };
enum { BATCH = 1000 };
static const wl_param atomic_params[] = {
    [P_MODE] = { "mode", 0, "0: shared counter, fetch_add; 1: per-thread padded counters, fetch_add; 2: per-thread, load+store" },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(atomic_params, P_COUNT);

struct padded { _Atomic uint64_t v; char pad[64 - sizeof(uint64_t)]; };

struct atomic_state {
    wl_run *r;
    int mode;
    struct padded shared;               /* mode 0 */
    struct padded *mine;                /* modes 1, 2: one per thread */
    _Atomic uint64_t ops;
} __attribute__((aligned(64)));

static void *atomic_thread(wl_thread *self, void *arg)
{
    struct atomic_state *s = arg;
    const int id = self->rank;
    wl_run *r = s->r;
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, (int)r->cfg->k.threads, id);
    const int64_t every = r->cfg->lat_sample ? (r->cfg->lat_sample + BATCH - 1) / BATCH : 0;
    _Atomic uint64_t *ctr = s->mode == 0 ? &s->shared.v : &s->mine[id].v;
    const int mode = s->mode;
    int64_t until_sample = 0;
    uint64_t done = 0;

    wl_phase(self, "increment");
    while (wl_more(r, done, n)) {
        uint64_t k = r->cfg->duration > 0 || n - done > BATCH ? BATCH : n - done;
        const int timed = wl_sample(every, &until_sample);
        uint64_t t0 = 0;
        if (timed) t0 = wl_now();
        if (mode == 2) {
            for (uint64_t i = 0; i < k; i++)
                atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1,
                                      memory_order_relaxed);
        } else {
            for (uint64_t i = 0; i < k; i++) atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
        }
        if (timed) cp_hist_record(self->hist, wl_since(t0));
        done += k;
    }
    atomic_fetch_add(&s->ops, done);
    self->ops = done;
    wl_phase(self, "done");
    return NULL;
}

static int atomic_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    int threads = (int)c->k.threads;
    struct atomic_state *s = aligned_alloc(64, sizeof *s);
    if (!s) return -1;
    memset(s, 0, sizeof *s);
    s->r = r;
    s->mode = (int)c->set[P_MODE];
    if (s->mode > 2) { wl_fail(r, "--set mode=%d: expected 0, 1 or 2", s->mode); free(s); return 0; }
    s->mine = aligned_alloc(64, (size_t)threads * sizeof *s->mine);
    if (!s->mine) { free(s); return -1; }
    memset(s->mine, 0, (size_t)threads * sizeof *s->mine);
    wl_spawn_n(r, threads, "incr", atomic_thread, s);
    wl_start_and_join(r);

    uint64_t ops = atomic_load(&s->ops), total = atomic_load(&s->shared.v);
    for (int i = 0; i < threads; i++) total += atomic_load(&s->mine[i].v);
    if (total != ops)
        wl_fail(r, "total: counters sum to %llu, threads did %llu increments", (unsigned long long)total,
                (unsigned long long)ops);
    wl_check_items(r, ops, "count: %llu increments done, asked for %lld");
    r->ops = ops;
    free(s->mine);
    free(s);
    return 0;
}

WL_DEFINE(atomic) = {
    .name = "atomic",
    .seed_key = "primitives_atomic",
    .group = "primitives",
    .desc = "null reference, no cp primitive (same for every impl): shared atomic add vs per-thread counters",
    .op = "increment",
    .latency = "one batch of 1000 increments",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = WL_UNUSED, .items = 100000000 },
    .params = atomic_params,
    .run = atomic_run,
};
