/*
 * semaphore: N tasks, at most K running at once. The counting semaphore of
 * the seed catalogue (pools_semaphore): a buffered channel of K tokens in Go, here
 * cp_sem with K permits, each task taking 1.
 *
 * Parameters: --items N tasks, --capacity K (default 4), --threads workers
 * (default 8) that claim tasks and acquire 1 permit per task, --work-ns
 * inside the permit.
 * One op: one task run. Latency: the wait in cp_sem_acquire (sampled 1 in
 * --lat-sample tasks).
 *
 * Invariants, checked on every run:
 *   - concurrency: an atomic counter, incremented after acquire and
 *     decremented before release, never exceeds K (its max is tracked);
 *   - exactly once: every task id was run once (count mode: a per-task
 *     counter; both modes: tasks run == tasks claimed);
 *   - afterwards try_acquire(K) succeeds: no permit leaked;
 *   - every thread joined.
 */
#include "runtime/workload.h"

#include <stdlib.h>

struct sem_state {
    wl_run *r;
    cp_sem *s;
    int64_t cap;
    uint64_t items;             /* count mode */
    _Atomic uint64_t next, ran;
    _Atomic int64_t running, max_running;
    _Atomic uint8_t *runs;      /* count mode: times each task ran */
    _Atomic uint64_t errors;    /* failed acquires (wl_fail is for the main thread) */
};

static void *worker(wl_thread *self, void *arg)
{
    struct sem_state *s = arg;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample, work = r->cfg->k.work_ns;
    int64_t until_sample = 0;
    uint64_t n = 0;
    wl_phase(self, "acquire");
    for (;;) {
        uint64_t id = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
        if (!wl_more(r, id, s->items)) break;
        uint64_t t0 = 0;
        if (wl_sample(sample, &until_sample)) t0 = wl_now();
        if (cp_sem_acquire(s->s, 1, NULL) != CP_OK) { atomic_fetch_add(&s->errors, 1); break; }
        if (t0) cp_hist_record(self->hist, wl_since(t0));
        wl_max_store_i(&s->max_running, atomic_fetch_add_explicit(&s->running, 1, memory_order_relaxed) + 1);
        if (s->runs) atomic_fetch_add_explicit(&s->runs[id], 1, memory_order_relaxed);
        if (work) wl_work(work);
        atomic_fetch_sub_explicit(&s->running, 1, memory_order_relaxed);
        cp_sem_release(s->s, 1);
        n++;
    }
    atomic_fetch_add(&s->ran, n);
    self->ops = n;
    wl_phase(self, "done");
    return NULL;
}

static int semaphore_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct sem_state s = { .r = r, .cap = c->k.capacity, .items = (uint64_t)c->k.items };
    s.s = cp_sem_new(c->b, s.cap);
    if (!s.s) return -1;
    if (c->duration <= 0 && !(s.runs = calloc(s.items ? s.items : 1, 1))) { cp_sem_free(s.s); return -1; }
    wl_spawn_n(r, c->k.threads, "worker", worker, &s);
    wl_start_and_join(r);

    uint64_t ran = atomic_load(&s.ran);
    if (atomic_load(&s.errors)) wl_fail(r, "%llu acquires failed", (unsigned long long)atomic_load(&s.errors));
    if (atomic_load(&s.max_running) > s.cap)
        wl_fail(r, "concurrency %lld exceeded capacity %lld", (long long)atomic_load(&s.max_running),
                (long long)s.cap);
    if (s.runs) {
        wl_check_ran_once(r, s.runs, s.items);
        if (ran != s.items) wl_fail(r, "ran %llu tasks, asked for %llu", (unsigned long long)ran,
                                    (unsigned long long)s.items);
    }
    if (!wl_sem_all_free(s.s, s.cap)) wl_fail(r, "permits leaked: try_acquire(capacity) failed");
    r->ops = ran;
    free((void *)s.runs);
    cp_sem_free(s.s);
    return 0;
}

WL_DEFINE(semaphore) = {
    .name = "semaphore",
    .seed_key = "pools_semaphore",
    .group = "pools",
    .desc = "N tasks, at most K at once: 1 permit per task (counting semaphore)",
    .op = "task run",
    .latency = "acquire wait",
    .defaults = { .threads = 8, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 4,
                  .payload = WL_UNUSED, .work_ns = 1000, .items = 200000 },
    .params = (const wl_param[]){ { NULL, 0, NULL } },
    .run = semaphore_run,
    .check = wl_check_permits,
};
