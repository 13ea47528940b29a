/*
 * What the harness gives a workload: threads behind a start gate, the clock,
 * calibrated busy work, invariant reporting; and the watchdog that turns a
 * stuck run into a report and exit 1 instead of a hang.
 */
#define _GNU_SOURCE
#include "harness/harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/chaos.h"
#include "core/internal.h"   /* cp_likely */

/* ---- clock ----
 * The invariant TSC when the CPU has one and the kernel trusts it (it is the
 * system clocksource, so it is synchronised across CPUs), calibrated against
 * CLOCK_MONOTONIC at start-up: about 10 ns a read here against 24 ns for
 * clock_gettime. Otherwise, or with CPBENCH_CLOCK=monotonic, clock_gettime. */
static int use_tsc;
static uint64_t tsc_base, mono_base, tsc_mult;    /* ns = (tsc - base) * mult >> 32 */
static char clock_desc[96] = "clock_gettime(CLOCK_MONOTONIC)";

#if defined(__x86_64__)
#include <x86intrin.h>
static int tsc_trusted(void)
{
    const char *force = getenv("CPBENCH_CLOCK");
    if (force && !strcmp(force, "monotonic")) return 0;
    char buf[64] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f) return 0;
    int ok = fgets(buf, sizeof buf, f) && !strncmp(buf, "tsc", 3);
    fclose(f);
    if (!ok) return 0;
    /* constant_tsc and nonstop_tsc: the rate does not change with P/C-states */
    f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[4096];
    int flags = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            flags = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
            break;
        }
    fclose(f);
    return flags;
}

static void tsc_calibrate(void)
{
    if (!tsc_trusted()) return;
    uint64_t m0 = cp_now_ns(), t0 = __rdtsc();
    wl_sleep_ns(20000000);
    uint64_t m1 = cp_now_ns(), t1 = __rdtsc();
    if (t1 <= t0 || m1 <= m0) return;
    tsc_mult = (uint64_t)(((unsigned __int128)(m1 - m0) << 32) / (t1 - t0));
    tsc_base = t1;
    mono_base = m1;
    use_tsc = 1;
    snprintf(clock_desc, sizeof clock_desc, "invariant TSC at %.3f GHz (calibrated against CLOCK_MONOTONIC)",
             (double)(t1 - t0) / (double)(m1 - m0));
}

uint64_t wl_now(void)
{
    if (cp_likely(use_tsc))
        return mono_base + (uint64_t)(((unsigned __int128)(__rdtsc() - tsc_base) * tsc_mult) >> 32);
    return cp_now_ns();
}
#else
static void tsc_calibrate(void) {}
uint64_t wl_now(void) { return cp_now_ns(); }
#endif

const char *hw_clock_desc(void) { return clock_desc; }

void wl_sleep_ns(uint64_t ns)
{
    uint64_t until = cp_now_ns() + ns;
    struct timespec ts = { (time_t)(until / 1000000000u), (long)(until % 1000000000u) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

double hw_clock_cost_ns(void)
{
    enum { N = 200000 };
    uint64_t best = ~0ull;
    for (int k = 0; k < 5; k++) {
        uint64_t t0 = cp_now_ns(), x = 0;
        for (int i = 0; i < N; i++) x += wl_now();
        uint64_t dt = cp_now_ns() - t0;
        __asm__ __volatile__("" ::"r"(x));
        if (dt < best) best = dt;
    }
    return (double)best / N;
}

/* ---- calibrated busy work: a dependent loop the compiler cannot remove ---- */
static double loops_per_ns = 1.0;

static __attribute__((noinline)) void spin_loops(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) __asm__ __volatile__("" ::: "memory");
}

void hw_calibrate(void)
{
    tsc_calibrate();
    uint64_t n = 1000000, best = ~0ull;
    for (int k = 0; k < 5; k++) {
        uint64_t t0 = cp_now_ns();
        spin_loops(n);
        uint64_t dt = cp_now_ns() - t0;
        if (dt < best) best = dt;
    }
    loops_per_ns = best ? (double)n / (double)best : 1.0;
}

void wl_work(int64_t ns)
{
    if (ns > 0) spin_loops((uint64_t)((double)ns * loops_per_ns));
}

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

/* ---- threads ---- */
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

static void *trampoline(void *p)
{
    wl_thread *t = p;
    /* chaos: this thread's decision stream depends on (seed, its index) only */
    cp_chaos_thread(t->run->cfg->seed, (uint64_t)(t - t->run->thr));
    pin_thread((int)(t - t->run->thr));
    wl_phase(t, "start gate");
    for (unsigned n = 0; !atomic_load_explicit(&t->run->go, memory_order_acquire); n++) {
        if (n < 256) cp_now_ns();   /* a short, pause-free spin */
        else sched_yield();
    }
    uint64_t a0 = thread_allocated();
    t->fn(t, t->arg);
    t->ended = wl_now();
    t->alloc_bytes = thread_allocated() - a0;
    return NULL;
}

static cp_hist *hist_pool[WL_MAX_THREADS], *hist_u_pool[WL_MAX_THREADS];

int wl_spawn(wl_run *r, const char *name, void *(*fn)(wl_thread *, void *), void *arg)
{
    if (r->nthr >= WL_MAX_THREADS) {
        fprintf(stderr, "cpbench: too many threads (max %d)\n", WL_MAX_THREADS);
        exit(2);
    }
    int i = r->nthr;
    wl_thread *t = &r->thr[i];
    if (!hist_pool[i] && !(hist_pool[i] = cp_hist_new(3, 3600ull * 1000000000ull))) {
        fprintf(stderr, "cpbench: out of memory for latency histograms\n");
        exit(1);
    }
    cp_hist_reset(hist_pool[i]);
    if (r->cfg->rate > 0) {
        if (!hist_u_pool[i] && !(hist_u_pool[i] = cp_hist_new(3, 3600ull * 1000000000ull))) {
            fprintf(stderr, "cpbench: out of memory for latency histograms\n");
            exit(1);
        }
        cp_hist_reset(hist_u_pool[i]);
    }
    memset(t, 0, sizeof *t);
    t->hist = hist_pool[i];
    t->hist_u = r->cfg->rate > 0 ? hist_u_pool[i] : NULL;
    t->fn = fn;
    t->arg = arg;
    t->run = r;
    snprintf(t->name, sizeof t->name, "%s", name);
    atomic_init(&t->phase, "created");
    int rc = pthread_create(&((pthread_t *)r->pthreads)[i], NULL, trampoline, t);
    if (rc) {
        fprintf(stderr, "cpbench: pthread_create: %s\n", strerror(rc));
        exit(1);
    }
    /* release: the watchdog reads slots below nthr (name, phase) */
    __atomic_store_n(&r->nthr, i + 1, __ATOMIC_RELEASE);
    return i;
}

void wl_start(wl_run *r)
{
    r->t_start = wl_now();
    atomic_store_explicit(&r->go, 1, memory_order_release);
}

void wl_wait_duration(wl_run *r)
{
    if (r->cfg->duration <= 0) return;
    uint64_t until = r->t_start + (uint64_t)(r->cfg->duration * 1e9);
    uint64_t now = wl_now();
    if (until > now) wl_sleep_ns(until - now);
    atomic_store(&r->stop, 1);
}

void wl_join(wl_run *r)
{
    uint64_t end = r->t_start;
    for (int i = 0; i < r->nthr; i++) {
        pthread_join(((pthread_t *)r->pthreads)[i], NULL);
        if (r->thr[i].ended > end) end = r->thr[i].ended;
    }
#ifdef CP_AB_SLOWDOWN_PCT
    /* The power experiment of `cpbench ab` only (results/baseline/README.md):
     * a build that is CP_AB_SLOWDOWN_PCT percent slower in ops/s, for real:
     * the measured interval is stretched by busy work of d * p / (100 - p). */
    uint64_t extra = (end - r->t_start) * (uint64_t)CP_AB_SLOWDOWN_PCT / (100 - (uint64_t)CP_AB_SLOWDOWN_PCT);
    while (wl_now() < end + extra) __builtin_ia32_pause();
    end = wl_now();
#endif
    r->t_end = end;
}

void wl_fail(wl_run *r, const char *fmt, ...)
{
    if (r->nfail++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->fail, sizeof r->fail, fmt, ap);
        va_end(ap);
    }
}

void wl_watch(wl_run *r, const char *name, cp_chan *ch)
{
    if (r->nwatch < (int)(sizeof r->watch / sizeof r->watch[0])) {
        r->watch[r->nwatch].name = name;
        r->watch[r->nwatch].ch = ch;
        __atomic_store_n(&r->nwatch, r->nwatch + 1, __ATOMIC_RELEASE);   /* for the watchdog */
    }
}

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
    int nwatch = __atomic_load_n(&r->nwatch, __ATOMIC_ACQUIRE);
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
        fprintf(stderr, "  channel %-8s len %zu cap %zu\n", r->watch[i].name,
                cp_chan_len(r->watch[i].ch), cp_chan_cap(r->watch[i].ch));
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

static wl_thread thread_slots[WL_MAX_THREADS];
static pthread_t pthread_slots[WL_MAX_THREADS];

int hw_run_one(const wl_workload *w, const wl_cfg *cfg, double timeout_s, wl_run *r, cp_hist *merged,
               cp_hist *merged_u)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->thr = thread_slots;
    r->pthreads = pthread_slots;
    atomic_init(&r->go, 0);
    atomic_init(&r->stop, 0);
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
