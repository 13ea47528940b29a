/*
 * The harness's number formats (12.3M, 1.23us, "1 ms") and what a run's
 * ops/s divides by: leaf helpers of every output, depending on nothing else
 * of the harness.
 */
#include "harness/harness.h"

#include <stdio.h>

const char *hw_si(double v, char *buf, size_t n)
{
    const char *u = "";
    if (v >= 1e9) v /= 1e9, u = "G";
    else if (v >= 1e6) v /= 1e6, u = "M";
    else if (v >= 1e3) v /= 1e3, u = "k";
    snprintf(buf, n, "%.*f%s", v >= 100 ? 0 : v >= 10 ? 1 : 2, v, u);
    return buf;
}

const char *hw_ns(double ns, char *buf, size_t n)
{
    if (ns <= 0) snprintf(buf, n, "-");
    else if (ns < 1e3) snprintf(buf, n, "%.0fns", ns);
    else if (ns < 1e6) snprintf(buf, n, "%.1fus", ns / 1e3);
    else if (ns < 1e9) snprintf(buf, n, "%.1fms", ns / 1e6);
    else snprintf(buf, n, "%.2fs", ns / 1e9);
    return buf;
}

/* Seconds with every significant digit the user gave (--timeout=0.001 is
 * "1 ms", not "0.0 s"): up to 3 decimals of the largest unit that is >= 1. */
const char *hw_secs(double s, char *buf, size_t n)
{
    const char *unit = "s";
    if (s < 1e-3) s *= 1e6, unit = "us";
    else if (s < 1) s *= 1e3, unit = "ms";
    int len = snprintf(buf, n, "%.3f", s);
    while (len > 0 && (size_t)len < n && buf[len - 1] == '0') buf[--len] = 0;
    if (len > 0 && (size_t)len < n && buf[len - 1] == '.') buf[--len] = 0;
    snprintf(buf + len, n - (size_t)len, " %s", unit);
    return buf;
}

/* Open loop: arrival k of n is scheduled at k / rate from the start gate, so
 * the first is at 0 and n arrivals take n - 1 intervals; a run that keeps up
 * with --rate=1 --items=3 ends just after 2 s, and ops / seconds would say
 * 1.5 ops/s. Each arrival owns one interval of the schedule, so the achieved
 * rate is ops / (seconds + 1 / rate): the rate asked for when the run keeps
 * up (never more: the last arrival is not before its time), less when it
 * falls behind. Closed loop: the wall time. */
double hw_rate_seconds(const wl_cfg *cfg, double seconds)
{
    return cfg->rate > 0 ? seconds + 1.0 / cfg->rate : seconds;
}
