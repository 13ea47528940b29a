/* Machine metadata that goes with every figure. */
#define _GNU_SOURCE
#include "harness/harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifdef CP_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "gitrev.h"   /* generated at build time: cmake/gitrev.cmake */

void hw_meta_collect(hw_meta *m)
{
    memset(m, 0, sizeof *m);
    m->cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    if (!uname(&u)) snprintf(m->kernel, sizeof m->kernel, "%.60s %.100s %.30s", u.sysname, u.release, u.machine);
#if defined(__clang__)
    snprintf(m->compiler, sizeof m->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(m->compiler, sizeof m->compiler, "gcc %s", __VERSION__);
#endif
#ifdef CP_HAVE_JEMALLOC
    const char *v = "?";
    size_t sz = sizeof v;
    mallctl("version", &v, &sz, NULL, 0);
    snprintf(m->allocator, sizeof m->allocator, "jemalloc %.40s", v);
#else
    snprintf(m->allocator, sizeof m->allocator, "glibc malloc");
#endif
    snprintf(m->git_rev, sizeof m->git_rev, "%s", CP_GIT_REV);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(m->timestamp, sizeof m->timestamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(m->clock, sizeof m->clock, "%s", hw_clock_desc());
    m->clock_ns = hw_clock_cost_ns();
    double la[1];
    m->loadavg = getloadavg(la, 1) == 1 ? la[0] : -1;
    FILE *g = fopen("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "r");
    if (g) {
        if (fgets(m->governor, sizeof m->governor, g)) m->governor[strcspn(m->governor, "\n")] = 0;
        fclose(g);
    }
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof line, ci)) {
            const char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) || !colon) continue;
            colon++;
            while (*colon == ' ' || *colon == '\t') colon++;
            snprintf(m->cpu_model, sizeof m->cpu_model, "%s", colon);
            m->cpu_model[strcspn(m->cpu_model, "\n")] = 0;
            break;
        }
        fclose(ci);
    }
    /* An id no other invocation shares: pid, wall and monotonic clocks mixed
     * (rows with one id shared one process, so they are not independent). */
    struct timespec rt, mt;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mt);
    uint64_t h = wl_mix((uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)rt.tv_sec * 1000000000ull ^
                        (uint64_t)rt.tv_nsec);
    h = wl_mix(h ^ ((uint64_t)mt.tv_sec * 1000000000ull + (uint64_t)mt.tv_nsec));
    snprintf(m->invocation, sizeof m->invocation, "%016llx", (unsigned long long)h);
}
