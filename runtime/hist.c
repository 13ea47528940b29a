/*
 * cp_hist: log-linear latency histogram, HdrHistogram layout with unit
 * magnitude 0 (lowest discernible value 1 ns).  Original code; follows the
 * design (not the source) of HdrHistogram / HdrHistogram_c.
 *
 * Layout invariant
 * ----------------
 *   S  = sub_bucket_count = smallest power of two >= 2 * 10^sig_digits
 *   H  = S / 2 (sub_bucket_half_count), m = log2(H)
 *   Bucket 0 covers [0, S) with resolution 1.
 *   Bucket k >= 1 covers [S << (k-1), S << k) with resolution 2^k; only its
 *   upper half sub-buckets (sub index H..S-1) exist, since its lower half
 *   would duplicate bucket k-1.
 *   For a value v:  k   = bucket_index(v) = (64 - clz(v | (S-1))) - (m + 1)
 *                   sub = v >> k                      (H <= sub < S for k >= 1)
 *                   idx = ((k + 1) << m) + sub - H    (= (k+1)*H + sub - H)
 *   So counts[0 .. S-1] are bucket 0 (v == idx), and bucket k >= 1 occupies
 *   counts[(k+1)*H .. (k+2)*H - 1].  The value range of a slot is
 *   [sub << k, (sub + 1) << k), i.e. relative width <= 1/H < 10^-sig_digits.
 *   bucket_count = bucket_index(highest) + 1, counts_len = (bucket_count+1)*H.
 *   Values above `highest` are recorded as `highest` (and counted in clamped),
 *   so every recorded value maps to idx < counts_len.
 */
#include "runtime/hist.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cp_hist *cp_hist_new(int sig_digits, uint64_t highest_trackable)
{
    if (sig_digits < 1 || sig_digits > 5 || highest_trackable < 2)
        return NULL;

    int64_t want = 2;
    for (int i = 0; i < sig_digits; i++)
        want *= 10;
    int32_t S = 1, mag = 0;
    while (S < want) {
        S <<= 1;
        mag++;
    }

    cp_hist probe; /* just enough fields for cp_hist__bucket_index */
    memset(&probe, 0, sizeof probe);
    probe.sub_bucket_mask = (uint64_t)S - 1;
    probe.sub_bucket_half_count_magnitude = mag - 1;
    int32_t bucket_count = cp_hist__bucket_index(&probe, highest_trackable) + 1;
    int32_t counts_len = (bucket_count + 1) * (S / 2);

    size_t bytes = sizeof(cp_hist) + (size_t)counts_len * sizeof(uint64_t);
    cp_hist *h = calloc(1, bytes);
    if (!h)
        return NULL;
    h->highest = highest_trackable;
    h->sub_bucket_mask = (uint64_t)S - 1;
    h->sig_digits = sig_digits;
    h->sub_bucket_count = S;
    h->sub_bucket_half_count = S / 2;
    h->sub_bucket_half_count_magnitude = mag - 1;
    h->bucket_count = bucket_count;
    h->counts_len = counts_len;
    h->min = UINT64_MAX;
    return h;
}

void cp_hist_free(cp_hist *h)
{
    free(h);
}

void cp_hist_reset(cp_hist *h)
{
    memset(h->counts, 0, (size_t)h->counts_len * sizeof(uint64_t));
    h->total = 0;
    h->clamped = 0;
    h->min = UINT64_MAX;
    h->max = 0;
}

void cp_hist_record_n(cp_hist *h, uint64_t v, uint64_t n)
{
    if (n == 0)
        return;
    if (v > h->highest) {
        v = h->highest;
        h->clamped += n;
    }
    h->counts[cp_hist__index(h, v)] += n;
    h->total += n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

int cp_hist_merge(cp_hist *dst, const cp_hist *src)
{
    if (!dst || !src || dst->sub_bucket_count != src->sub_bucket_count ||
        dst->bucket_count != src->bucket_count || dst->counts_len != src->counts_len)
        return -1;
    for (int32_t i = 0; i < src->counts_len; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->clamped += src->clamped;
    if (src->total) {
        if (src->min < dst->min)
            dst->min = src->min;
        if (src->max > dst->max)
            dst->max = src->max;
    }
    return 0;
}

uint64_t cp_hist_count(const cp_hist *h)
{
    return h->total;
}

uint64_t cp_hist_min(const cp_hist *h)
{
    return h->total ? h->min : 0;
}

uint64_t cp_hist_max(const cp_hist *h)
{
    return h->total ? h->max : 0;
}

/* ---- value <-> slot helpers ---- */

/* Lowest value of slot idx. */
static uint64_t cp_hist_value_at_index(const cp_hist *h, int32_t idx)
{
    int32_t b = (idx >> h->sub_bucket_half_count_magnitude) - 1;
    int32_t sub = (idx & (h->sub_bucket_half_count - 1)) + h->sub_bucket_half_count;
    if (b < 0) { /* lower half of bucket 0 */
        sub -= h->sub_bucket_half_count;
        b = 0;
    }
    return (uint64_t)sub << b;
}

/* Width of the slot holding v (a value reachable through the layout). */
static uint64_t cp_hist_range_size(const cp_hist *h, uint64_t v)
{
    return UINT64_C(1) << cp_hist__bucket_index(h, v);
}

uint64_t cp_hist_lowest_equivalent(const cp_hist *h, uint64_t v)
{
    int32_t b = cp_hist__bucket_index(h, v);
    return (v >> b) << b;
}

uint64_t cp_hist_highest_equivalent(const cp_hist *h, uint64_t v)
{
    /* lowest + size - 1; cannot overflow even for the top slot of uint64. */
    return cp_hist_lowest_equivalent(h, v) + (cp_hist_range_size(h, v) - 1);
}

static uint64_t cp_hist_median_equivalent(const cp_hist *h, uint64_t v)
{
    return cp_hist_lowest_equivalent(h, v) + (cp_hist_range_size(h, v) >> 1);
}

/* ---- statistics ---- */

double cp_hist_mean(const cp_hist *h)
{
    if (h->total == 0)
        return 0.0;
    long double sum = 0;
    for (int32_t i = 0; i < h->counts_len; i++) {
        uint64_t c = h->counts[i];
        if (c)
            sum += (long double)c *
                   (long double)cp_hist_median_equivalent(h, cp_hist_value_at_index(h, i));
    }
    return (double)(sum / (long double)h->total);
}

double cp_hist_stddev(const cp_hist *h)
{
    if (h->total == 0)
        return 0.0;
    long double mean = cp_hist_mean(h);
    long double acc = 0;
    for (int32_t i = 0; i < h->counts_len; i++) {
        uint64_t c = h->counts[i];
        if (c) {
            long double d =
                (long double)cp_hist_median_equivalent(h, cp_hist_value_at_index(h, i)) - mean;
            acc += d * d * (long double)c;
        }
    }
    return sqrt((double)(acc / (long double)h->total));
}

uint64_t cp_hist_percentile(const cp_hist *h, double pct)
{
    if (h->total == 0)
        return 0;
    if (!(pct < 100.0)) /* >= 100 (or NaN) */
        return h->max;
    if (pct < 0.0)
        pct = 0.0;
    /* rank = ceil(pct/100 * count), at least 1.  Shave a few ulps first (as
     * HdrHistogram-Java does with nextAfter) so that a percentile that lands
     * exactly on a count, e.g. 100.0*k/n, is not pushed to the next one by
     * rounding error. */
    double fc = (pct / 100.0) * (double)h->total;
    fc *= 1.0 - 4 * DBL_EPSILON;
    uint64_t rank = (uint64_t)ceil(fc);
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;

    uint64_t cum = 0;
    for (int32_t i = 0; i < h->counts_len; i++) {
        cum += h->counts[i];
        if (cum >= rank) {
            uint64_t v = cp_hist_highest_equivalent(h, cp_hist_value_at_index(h, i));
            return v < h->max ? v : h->max;
        }
    }
    return h->max; /* not reached while counts sum to total */
}

/* ---- .hgrm output ---- */

/* Reproduces HdrHistogram's percentile iterator: starting at 0%, each
 * reported row advances the target percentile by
 *   100 / (ticks_per_half_distance * 2^(floor(log2(100 / (100 - p))) + 1)),
 * a row is reported at the first non-empty slot whose cumulative percentile
 * reaches the target (several rows may share a slot), and after the last
 * count one more row at exactly 100% is reported with the last slot's value. */
int cp_hist_write_hgrm(const cp_hist *h, FILE *f, int ticks_per_half_distance,
                       double unit_divisor)
{
    if (!h || !f || !(unit_divisor > 0.0))
        return -1;
    if (ticks_per_half_distance < 1)
        ticks_per_half_distance = 1;

    /* HdrHistogram_c's hdr_percentiles_print(..., CLASSIC): header
     * "%12s %12s %12s %12s\n\n", rows "%12.<sig>f %12f %12d %12.2f\n"
     * (the 100% row too: its 1/(1-Percentile) prints as inf), then the
     * footer below. */
    char row_fmt[64];
    snprintf(row_fmt, sizeof row_fmt, "%%12.%df %%12f %%12" PRIu64 " %%12.2f\n", (int)h->sig_digits);
    if (fprintf(f, "%12s %12s %12s %12s\n\n", "Value", "Percentile", "TotalCount",
                "1/(1-Percentile)") < 0)
        return -1;

    const uint64_t total = h->total;
    uint64_t last_value = 0; /* highest-equivalent value of the current slot */
    uint64_t cum = 0;
    if (total > 0) {
        double target = 0.0;
        int32_t i = 0;
        cum = h->counts[0];
        last_value = cp_hist_highest_equivalent(h, cp_hist_value_at_index(h, 0));
        while (target < 100.0) {
            double cur = (100.0 * (double)cum) / (double)total;
            if (h->counts[i] != 0 && target <= cur) {
                double p = target / 100.0;
                if (fprintf(f, row_fmt, (double)last_value / unit_divisor, p, cum,
                            1.0 / (1.0 - p)) < 0)
                    return -1;
                if (cum >= total)
                    break; /* next row is the final 100% one */
                int64_t t = (int64_t)(log(100.0 / (100.0 - target)) / log(2.0)) + 1;
                double ticks = (double)ticks_per_half_distance * pow(2.0, (double)t);
                target += 100.0 / ticks;
                continue;
            }
            if (cum >= total || i + 1 >= h->counts_len)
                break;
            i++;
            cum += h->counts[i];
            last_value = cp_hist_highest_equivalent(h, cp_hist_value_at_index(h, i));
        }
    }
    /* The final row sits on the last non-empty slot, the one holding max. */
    if (total > 0)
        last_value = cp_hist_highest_equivalent(h, h->max);
    if (fprintf(f, row_fmt, (double)last_value / unit_divisor, 1.0, total, (double)INFINITY) < 0)
        return -1;

    /* Like hdr_max(): the footer Max is the highest-equivalent value of the
     * recorded max (it matches the 100% row). */
    double max = (double)last_value;
    if (fprintf(f,
                "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n"
                "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n"
                "#[Buckets = %12d, SubBuckets     = %12d]\n",
                cp_hist_mean(h) / unit_divisor, cp_hist_stddev(h) / unit_divisor,
                max / unit_divisor, total, h->bucket_count, h->sub_bucket_count) < 0)
        return -1;
    return ferror(f) ? -1 : 0;
}
