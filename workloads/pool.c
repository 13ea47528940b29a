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

enum { P_ALLOC, P_HOLD };

#define TAG_SHIFT 40

struct pool_state {
    wl_run *r;
    cp_pool *p;
    int alloc;
    size_t size;                    /* bytes written per object, >= 8 */
    size_t hold;                    /* objects a thread holds at once */
    uint64_t per_thread, extra;     /* count-based: pairs each, first `extra` one more */
    _Atomic uint64_t ops, errors;
    _Atomic(const char *) first_error;
    _Atomic uint64_t err_a, err_b;
};

struct pool_arg { struct pool_state *s; int id; };

static void note_error(struct pool_state *s, const char *what, uint64_t a, uint64_t b)
{
    const char *none = NULL;
    if (atomic_compare_exchange_strong(&s->first_error, &none, what)) {
        atomic_store(&s->err_a, a);
        atomic_store(&s->err_b, b);
    }
    atomic_fetch_add(&s->errors, 1);
}

static void *pool_thread(wl_thread *self, void *arg)
{
    struct pool_arg *a = arg;
    struct pool_state *s = a->s;
    wl_run *r = s->r;
    cp_pool *p = s->p;
    const int alloc = s->alloc;
    const size_t size = s->size, hold = s->hold;
    const int64_t sample = r->cfg->lat_sample, work = r->cfg->k.work_ns;
    const uint64_t n = s->per_thread + ((uint64_t)a->id < s->extra);
    const unsigned char fill = (unsigned char)(a->id * 2 + 1);
    unsigned char **held = malloc(hold * sizeof *held);
    uint64_t *t_get = malloc(hold * sizeof *t_get);  /* get's duration, 0: not timed */
    int64_t until_sample = 0;
    uint64_t seq = 0;

    if (!held || !t_get) { note_error(s, "out of memory (thread, hold)", (uint64_t)a->id, hold); goto out; }
    wl_phase(self, "get/put");
    while (wl_more(r, seq, n)) {
        size_t h = r->cfg->duration > 0 || n - seq > hold ? hold : (size_t)(n - seq);
        for (size_t j = 0; j < h; j++) {    /* get h objects and tag them */
            const int timed = sample && --until_sample <= 0;
            uint64_t t0 = 0;
            if (timed) { until_sample = sample; t0 = wl_now(); }
            unsigned char *o = alloc ? malloc(size) : cp_pool_get(p);
            t_get[j] = timed ? wl_now() - t0 + 1 : 0;
            if (!o) { note_error(s, "get returned NULL (thread, seq)", (uint64_t)a->id, seq); goto out; }
            uint64_t tag = (uint64_t)a->id << TAG_SHIFT | (seq + j);
            memcpy(o, &tag, 8);
            memset(o + 8, fill, size - 8);
            held[j] = o;
        }
        if (work) wl_work(work);
        for (size_t j = 0; j < h; j++) {    /* still ours? then put them back */
            unsigned char *o = held[j];
            uint64_t tag = (uint64_t)a->id << TAG_SHIFT | (seq + j), got;
            memcpy(&got, o, 8);
            if (got != tag || (size > 8 && o[size - 1] != fill))
                note_error(s, "object written by another thread while held (tag, found)", tag, got);
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
    s.per_thread = (uint64_t)c->k.items / (uint64_t)threads;
    s.extra = (uint64_t)c->k.items % (uint64_t)threads;
    if (!s.alloc && !(s.p = cp_pool_new(c->b, s.size))) return -1;
    struct pool_arg *pa = calloc((size_t)threads, sizeof *pa);
    if (!pa) { cp_pool_free(s.p); return -1; }
    for (int i = 0; i < threads; i++) {
        pa[i] = (struct pool_arg){ &s, i };
        wl_spawn(r, "getput", pool_thread, &pa[i]);
    }
    wl_start(r);
    wl_wait_duration(r);
    wl_join(r);

    uint64_t ops = atomic_load(&s.ops);
    if (atomic_load(&s.errors))
        wl_fail(r, "%s: %llx, %llx (%llu errors)", atomic_load(&s.first_error),
                (unsigned long long)atomic_load(&s.err_a), (unsigned long long)atomic_load(&s.err_b),
                (unsigned long long)atomic_load(&s.errors));
    if (c->duration <= 0 && ops != (uint64_t)c->k.items)
        wl_fail(r, "count: %llu get/put pairs done, asked for %lld", (unsigned long long)ops,
                (long long)c->k.items);
    r->ops = ops;
    free(pa);
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
    .params = (const wl_param[]){
        { "alloc", 0, "0: cp_pool get/put; 1: plain malloc/free (the allocator it is compared with)" },
        { "hold", 1, "objects a thread gets before it puts them back (> 32 overflows its cache)" },
        { NULL, 0, NULL },
    },
    .run = pool_run,
};
