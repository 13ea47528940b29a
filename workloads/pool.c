/*
 * pool: T threads each loop get -> write --payload bytes -> (--work-ns) ->
 * put on one cp_pool, as Go's BenchmarkPool (sync/pool_test.go) does with
 * Get/Put; --set hold=K gets K objects before putting them back, as
 * BenchmarkPoolOverflow does, so that objects overflow the thread's cache to
 * the shared stack and come back, possibly to another thread (hold=1 never
 * leaves the thread's cache: each thread reuses one object). Seed: primitives_pool. --set alloc=1 runs the same loop on plain
 * malloc/free instead (jemalloc in release builds of cpbench, glibc malloc
 * otherwise; the run metadata names the allocator), so the pool is compared
 * with the allocator under one harness.
 *
 * One op: one get+put pair. Latency: the time spent in get plus the time
 * spent in put (not the payload write or --work-ns), sampled 1 in
 * --lat-sample pairs. Allocations per op: not counted here (workloads do
 * not see the allocator); where the harness links jemalloc it reports the
 * bytes allocated per run.
 *
 * Invariants, checked on every run:
 *   - no object is handed to two threads at once: after get a thread writes
 *     its tag (thread << 40 | seq) at the start of the object and its fill
 *     byte at the end, and checks both before put (after --work-ns);
 *   - get never returns NULL (the pool mallocs when empty);
 *   - count: pairs done == --items in count mode (all ops counted);
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_ALLOC, P_HOLD, P_COUNT };
static const wl_param pool_params[] = {
    [P_ALLOC] = { "alloc", 0, "0: cp_pool get/put; 1: plain malloc/free (the allocator it is compared with)" },
    [P_HOLD] = { "hold", 1, "objects a thread gets before it puts them back (> 32 overflows its cache)" },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(pool_params, P_COUNT);


struct pool_state {
    wl_run *r;
    cp_pool *p;
    int alloc;
    size_t size;                    /* bytes written per object, >= 8 */
    size_t hold;                    /* objects a thread holds at once */
    _Atomic uint64_t ops;
    wl_errors err;
};

static void *pool_thread(wl_thread *self, void *arg)
{
    struct pool_state *s = arg;
    const int id = self->rank;
    wl_run *r = s->r;
    cp_pool *p = s->p;
    const int alloc = s->alloc;
    const size_t size = s->size, hold = s->hold;
    const int64_t sample = r->cfg->lat_sample, work = r->cfg->k.work_ns;
    const uint64_t n = wl_share((uint64_t)r->cfg->k.items, (int)r->cfg->k.threads, id);
    const unsigned char fill = (unsigned char)(id * 2 + 1);
    unsigned char **held = malloc(hold * sizeof *held);
    uint64_t *t_get = malloc(hold * sizeof *t_get);  /* get's duration, 0: not timed */
    int64_t until_sample = 0;
    uint64_t seq = 0;

    if (!held || !t_get) { wl_note(&s->err, "out of memory (thread, hold)", (uint64_t)id, hold); goto out; }
    wl_phase(self, "get/put");
    while (wl_more(r, seq, n)) {
        size_t h = r->cfg->duration > 0 || n - seq > hold ? hold : (size_t)(n - seq);
        for (size_t j = 0; j < h; j++) {    /* get h objects and tag them */
            const int timed = wl_sample(sample, &until_sample);
            uint64_t t0 = 0;
            if (timed) t0 = wl_now();
            unsigned char *o = alloc ? malloc(size) : cp_pool_get(p);
            t_get[j] = timed ? wl_now() - t0 + 1 : 0;
            if (!o) { wl_note(&s->err, "get returned NULL (thread, seq)", (uint64_t)id, seq); goto out; }
            uint64_t tag = wl_tag((uint64_t)id, seq + j);
            memcpy(o, &tag, 8);
            memset(o + 8, fill, size - 8);
            held[j] = o;
        }
        if (work) wl_work(work);
        for (size_t j = 0; j < h; j++) {    /* still ours? then put them back */
            unsigned char *o = held[j];
            uint64_t tag = wl_tag((uint64_t)id, seq + j), got;
            memcpy(&got, o, 8);
            if (got != tag || (size > 8 && o[size - 1] != fill))
                wl_note(&s->err, "object written by another thread while held (tag, found)", tag, got);
            uint64_t t0 = t_get[j] ? wl_now() : 0;
            if (alloc) free(o);
            else cp_pool_put(p, o);
            if (t0) cp_hist_record(self->hist, t_get[j] - 1 + (wl_now() - t0));
        }
        seq += h;
    }
out:
    free(held);
    free(t_get);
    atomic_fetch_add(&s->ops, seq);
    self->ops = seq;
    wl_phase(self, "done");
    return NULL;
}

static int pool_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    int threads = (int)c->k.threads;
    struct pool_state s = {
        .r = r,
        .alloc = c->set[P_ALLOC] != 0,
        .size = c->k.payload < 8 ? 8 : (size_t)c->k.payload,
        .hold = (size_t)c->set[P_HOLD],
    };
    if (s.hold < 1 || s.hold > 65536) {
        wl_fail(r, "--set hold=%zu: expected 1..65536", s.hold);
        return 0;
    }
    if (!s.alloc && !(s.p = cp_pool_new(c->b, s.size))) return -1;
    wl_spawn_n(r, threads, "getput", pool_thread, &s);
    wl_start_and_join(r);

    uint64_t ops = atomic_load(&s.ops);
    if (atomic_load(&s.err.n))
        wl_fail(r, "%s: %llx, %llx (%llu errors)", atomic_load(&s.err.first),
                (unsigned long long)atomic_load(&s.err.a), (unsigned long long)atomic_load(&s.err.b),
                (unsigned long long)atomic_load(&s.err.n));
    wl_check_items(r, ops, "count: %llu get/put pairs done, asked for %lld");
    r->ops = ops;
    cp_pool_free(s.p);      /* frees what the pool holds; the threads have exited */
    return 0;
}

WL_DEFINE(pool) = {
    .name = "pool",
    .seed_key = "primitives_pool",
    .group = "primitives",
    .desc = "T threads get -> write payload -> put on one pool (sync.Pool); alloc=1: malloc/free",
    .op = "get+put pair",
    .latency = "time in get + time in put",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = 256, .work_ns = 0, .items = 4000000 },
    .params = pool_params,
    .run = pool_run,
};
