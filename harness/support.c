/*
 * The harness's driver of one run: the runtime's hooks (pinning, chaos
 * seeding, allocation counts), the watchdog that turns a stuck run into a
 * report and exit 1 instead of a hang, and the placement probe. The threads,
 * the clock and busy work are the runtime's (runtime/).
 */
#define _GNU_SOURCE
#include "harness/harness.h"
#include "runtime/driver.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/hooks.h"      /* cp_chaos_thread, cp_cpu_relax */

/* ---- pinning (--pin): thread i of a run -> a CPU ---- */
static int pin_cpus[WL_MAX_THREADS], npin;     /* npin == 0: no pinning */

void hw_pin_set(const int *cpus, int n)
{
    npin = n < WL_MAX_THREADS ? n : WL_MAX_THREADS;
    for (int i = 0; i < npin; i++) pin_cpus[i] = cpus[i];
}

static void pin_thread(int index)
{
    if (!npin) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(pin_cpus[index % npin], &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* ---- allocation statistics (jemalloc's mallctl, when linked) ---- */
#ifdef CP_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
static uint64_t thread_allocated(void)
{
    uint64_t v = 0;
    size_t sz = sizeof v;
    return mallctl("thread.allocated", &v, &sz, NULL, 0) == 0 ? v : 0;
}

int hw_alloc_count(uint64_t *count)
{
    /* nrequests counts every request, the thread caches' too (merged when a
     * thread exits, as the run's threads have by the time this is read) */
    uint64_t epoch = 1, small = 0, large = 0;
    size_t sz = sizeof epoch;
    if (mallctl("epoch", &epoch, &sz, &epoch, sz)) return -1;
    sz = sizeof small;
    if (mallctl("stats.arenas.4096.small.nrequests", &small, &sz, NULL, 0)) return -1;   /* 4096: all arenas */
    sz = sizeof large;
    if (mallctl("stats.arenas.4096.large.nrequests", &large, &sz, NULL, 0)) return -1;
    *count = small + large;
    return 0;
}
#else
static uint64_t thread_allocated(void) { return 0; }
int hw_alloc_count(uint64_t *count) { (void)count; return -1; }
#endif

/* Every workload thread, before its start gate (runtime hook): chaos's
 * decision stream depends on (seed, its index) only; --pin places it. */
static void thread_start(const wl_run *r, int index)
{
    cp_chaos_thread(r->cfg->seed, (uint64_t)index);
    pin_thread(index);
}

/* The clock and the busy-work loop are the runtime's (runtime/clock.c). */
void hw_calibrate(void)
{
    wl_rt_calibrate();
    static const wl_rt_hooks h = { .thread_start = thread_start, .thread_allocated = thread_allocated };
    wl_rt_set_hooks(&h);
}

const char *hw_clock_desc(void) { return wl_clock_desc(); }
double hw_clock_cost_ns(void) { return wl_clock_cost_ns(); }

/* ---- watchdog ---- */
static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv;
static wl_run *wd_run;
static const wl_workload *wd_wl;
static uint64_t wd_deadline, wd_armed;
static double wd_timeout, wd_duration;   /* s: the limits the deadline is made of */
static int wd_started;

static void wd_report(void)
{
    wl_run *r = wd_run;
    const wl_cfg *c = r->cfg;
    /* Only what the run published for us: slots below nthr, watches below
     * nwatch (release-stored), phases (atomic), channel state (thread-safe). */
    int nthr = __atomic_load_n(&r->nthr, __ATOMIC_ACQUIRE);
    int nwatch = __atomic_load_n(&r->rt->nwatch, __ATOMIC_ACQUIRE);
    /* which limit was hit, in the user's own precision; not a guess at why
     * (a hang, a lost wake-up, or a run that is merely longer than the
     * limit: the phases below tell) */
    char t[32], d[32], el[32];
    hw_secs(wd_timeout, t, sizeof t);
    hw_secs((double)(cp_now_ns() - wd_armed) / 1e9, el, sizeof el);
    if (wd_duration > 0)
        fprintf(stderr, "cpbench: watchdog: %s on %s exceeded --timeout=%s after its --duration=%s (%s since it "
                "started); threads:\n", wd_wl->name, hw_impl_name(c->b), t, hw_secs(wd_duration, d, sizeof d), el);
    else
        fprintf(stderr, "cpbench: watchdog: %s on %s exceeded --timeout=%s (%s since it started); threads:\n",
                wd_wl->name, hw_impl_name(c->b), t, el);
    if (!c->b) hw_go_dump();
    for (int i = 0; i < nthr; i++)
        fprintf(stderr, "  #%-3d %-10s %s\n", i, r->thr[i].name,
                atomic_load_explicit(&r->thr[i].phase, memory_order_relaxed));
    for (int i = 0; i < nwatch; i++)
        fprintf(stderr, "  channel %-8s len %zu cap %zu\n", r->rt->watch[i].name,
                cp_chan_len(r->rt->watch[i].ch), cp_chan_cap(r->rt->watch[i].ch));
    if (hw_replay_line[0]) fprintf(stderr, "%s\n", hw_replay_line);
    fprintf(stderr, "cpbench: watchdog: the run did not finish within its limit; exiting with status 1\n");
}

static void *watchdog(void *unused)
{
    pthread_mutex_lock(&wd_mu);
    for (;;) {
        if (!wd_run) {
            pthread_cond_wait(&wd_cv, &wd_mu);
            continue;
        }
        struct timespec ts = { (time_t)(wd_deadline / 1000000000u), (long)(wd_deadline % 1000000000u) };
        int rc = pthread_cond_timedwait(&wd_cv, &wd_mu, &ts);
        if (rc == ETIMEDOUT && wd_run && cp_now_ns() >= wd_deadline) {
            wd_report();
            fflush(NULL);   /* completed CSV rows are already flushed; keep them */
            hw_tmp_abandon();   /* no partial --json / --hgrm file */
            _exit(1);
        }
    }
    return NULL;
}

/* The deadline: --timeout after the run's requested duration (time-based
 * runs), or after its start (count-based ones). It counts from here, before
 * the threads are spawned, so spawning is inside the budget. */
static void wd_arm(wl_run *r, const wl_workload *w, double timeout_s)
{
    pthread_mutex_lock(&wd_mu);
    if (!wd_started) {
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&wd_cv, &a);
        pthread_t t;
        if (pthread_create(&t, NULL, watchdog, NULL) == 0) pthread_detach(t);
        wd_started = 1;
    }
    wd_run = r;
    wd_wl = w;
    wd_armed = cp_now_ns();
    wd_timeout = timeout_s;
    wd_duration = r->cfg->duration > 0 ? r->cfg->duration : 0;
    wd_deadline = wd_armed + (uint64_t)((wd_duration + timeout_s) * 1e9);
    pthread_cond_signal(&wd_cv);
    pthread_mutex_unlock(&wd_mu);
}

static void wd_disarm(void)
{
    pthread_mutex_lock(&wd_mu);
    wd_run = NULL;
    pthread_cond_signal(&wd_cv);
    pthread_mutex_unlock(&wd_mu);
}

/* ---- one run ---- */
static wl_run *_Atomic current_run;

void hw_stop_current_run(void)
{
    wl_run *r = atomic_load(&current_run);
    if (r) atomic_store(&r->stop, 1);
    hw_go_stop();
}

int hw_run_one(const wl_workload *w, const wl_cfg *cfg, double timeout_s, wl_run *r, cp_hist *merged,
               cp_hist *merged_u)
{
    wl_run_init(r, cfg);
    wd_arm(r, w, timeout_s);
    atomic_store(&current_run, r);
    if (hw_interrupted) atomic_store(&r->stop, 1);
    if (!cfg->b) {  /* impl=go: the repetition runs in the Go program */
        int rc = hw_go_run(w, cfg, timeout_s, r, merged, merged_u);
        atomic_store(&current_run, NULL);
        wd_disarm();
        return rc;
    }
    int rc = w->run(r);
    atomic_store(&current_run, NULL);
    wd_disarm();
    cp_hist_reset(merged);
    for (int i = 0; i < r->nthr; i++) cp_hist_merge(merged, r->thr[i].hist);
    if (merged_u) {
        cp_hist_reset(merged_u);
        for (int i = 0; i < r->nthr; i++)
            if (r->thr[i].hist_u) cp_hist_merge(merged_u, r->thr[i].hist_u);
    }
    return rc;
}

/* ---- placement probe ----
 * The two vCPUs of these machines move between a near placement (cache-line
 * round trip ~57 ns) and a far one (~335 ns) every few seconds, which changes
 * a cross-core result by up to 3x. This measures the current round trip: two
 * threads pinned to CPUs 0 and 1 bounce one cache line `iters` times. */
struct pingpong { _Atomic uint64_t v __attribute__((aligned(64))); uint64_t iters; int cpu; };

static int pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *pong(void *p)
{
    struct pingpong *pp = p;
    pin_self(pp->cpu);
    for (uint64_t i = 0; i < pp->iters; i++) {
        while (atomic_load_explicit(&pp->v, memory_order_acquire) != 2 * i + 1) cp_cpu_relax();
        atomic_store_explicit(&pp->v, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

double hw_xcore_rt_ns(uint64_t iters)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || !iters) return 0;
    /* Both CPUs must be ours (not so under taskset -c 0, say): else the two
     * sides would spin on one CPU, taking turns a time slice at a time. */
    cpu_set_t mine;
    if (pthread_getaffinity_np(pthread_self(), sizeof mine, &mine) || !CPU_ISSET(0, &mine) || !CPU_ISSET(1, &mine))
        return 0;
    static struct pingpong pp;
    atomic_store(&pp.v, 0);
    pp.iters = iters;
    pp.cpu = 1;
    cpu_set_t old;
    pthread_getaffinity_np(pthread_self(), sizeof old, &old);
    pthread_t t;
    if (pthread_create(&t, NULL, pong, &pp)) return 0;
    pin_self(0);
    uint64_t t0 = cp_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        atomic_store_explicit(&pp.v, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&pp.v, memory_order_acquire) != 2 * i + 2) cp_cpu_relax();
    }
    uint64_t dt = cp_now_ns() - t0;
    pthread_join(t, NULL);
    pthread_setaffinity_np(pthread_self(), sizeof old, &old);
    return (double)dt / (double)iters;
}
