/*
 * The runtime's clock and calibrated busy work (wl_now, wl_sleep_ns,
 * wl_work). Calibrated once, before any thread runs (wl_rt_calibrate);
 * read-only afterwards, so the workload threads read these globals freely.
 */
#define _GNU_SOURCE
#include "runtime/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define rt_likely(x) __builtin_expect(!!(x), 1)

/* The invariant TSC when the CPU has one and the kernel trusts it (it is the
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
    if (rt_likely(use_tsc))
        return mono_base + (uint64_t)(((unsigned __int128)(__rdtsc() - tsc_base) * tsc_mult) >> 32);
    return cp_now_ns();
}
#else
static void tsc_calibrate(void) {}
uint64_t wl_now(void) { return cp_now_ns(); }
#endif

const char *wl_clock_desc(void) { return clock_desc; }

void wl_sleep_ns(uint64_t ns)
{
    uint64_t until = cp_now_ns() + ns;
    struct timespec ts = { (time_t)(until / 1000000000u), (long)(until % 1000000000u) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

double wl_clock_cost_ns(void)
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

void wl_rt_calibrate(void)
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
