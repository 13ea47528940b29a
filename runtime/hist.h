/*
 * cp_hist: an HdrHistogram-style log-linear latency histogram (values in ns,
 * lowest discernible value 1, i.e. unit magnitude 0).  See hist.c for the
 * layout.  The struct is public only so that cp_hist_record() can be inlined;
 * treat its fields as read-only outside hist.c (h->clamped may be read).
 *
 * Not thread-safe: use one histogram per thread and cp_hist_merge() them.
 */
#ifndef CP_RUNTIME_HIST_H
#define CP_RUNTIME_HIST_H

#include <stdint.h>
#include <stdio.h>

#if !defined(__GNUC__) && !defined(__clang__)
#error "cp_hist needs __builtin_clzll (gcc or clang)"
#endif

typedef struct cp_hist cp_hist;

struct cp_hist {
    uint64_t total;           /* number of recorded values (incl. clamped) */
    uint64_t min;             /* exact min recorded; UINT64_MAX when empty */
    uint64_t max;             /* exact max recorded (after clamping); 0 when empty */
    uint64_t clamped;         /* values recorded above `highest`, stored as `highest` */
    uint64_t highest;         /* highest trackable value */
    uint64_t sub_bucket_mask; /* sub_bucket_count - 1 */
    int32_t sig_digits;
    int32_t sub_bucket_count;      /* power of two >= 2 * 10^sig_digits */
    int32_t sub_bucket_half_count; /* sub_bucket_count / 2 */
    int32_t sub_bucket_half_count_magnitude; /* log2(sub_bucket_half_count) */
    int32_t bucket_count;
    int32_t counts_len;            /* (bucket_count + 1) * sub_bucket_half_count */
    uint64_t counts[];             /* counts_len slots */
};

cp_hist *cp_hist_new(int sig_digits, uint64_t highest_trackable);
void cp_hist_free(cp_hist *h);
void cp_hist_reset(cp_hist *h);
void cp_hist_record_n(cp_hist *h, uint64_t v, uint64_t n);
int cp_hist_merge(cp_hist *dst, const cp_hist *src);
uint64_t cp_hist_count(const cp_hist *h);
uint64_t cp_hist_min(const cp_hist *h);
uint64_t cp_hist_max(const cp_hist *h);
double cp_hist_mean(const cp_hist *h);
double cp_hist_stddev(const cp_hist *h);
uint64_t cp_hist_percentile(const cp_hist *h, double pct);
uint64_t cp_hist_lowest_equivalent(const cp_hist *h, uint64_t v);
uint64_t cp_hist_highest_equivalent(const cp_hist *h, uint64_t v);
int cp_hist_write_hgrm(const cp_hist *h, FILE *f, int ticks_per_half_distance,
                       double unit_divisor);

/* Bucket index of v: 0 for v < sub_bucket_count, else k such that
 * v in [sub_bucket_count << (k-1), sub_bucket_count << k). */
static inline int32_t cp_hist__bucket_index(const cp_hist *h, uint64_t v)
{
    int32_t pow2ceiling = 64 - __builtin_clzll(v | h->sub_bucket_mask);
    return pow2ceiling - (h->sub_bucket_half_count_magnitude + 1);
}

/* Slot of v in counts[]; v must be <= h->highest. */
static inline int32_t cp_hist__index(const cp_hist *h, uint64_t v)
{
    int32_t b = cp_hist__bucket_index(h, v);
    int32_t sub = (int32_t)(v >> b); /* in [half_count, sub_bucket_count) if b > 0 */
    return ((b + 1) << h->sub_bucket_half_count_magnitude) + sub - h->sub_bucket_half_count;
}

static inline void cp_hist_record(cp_hist *h, uint64_t v)
{
    if (__builtin_expect(v > h->highest, 0)) {
        v = h->highest;
        h->clamped++;
    }
    h->counts[cp_hist__index(h, v)]++;
    h->total++;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

#endif /* CP_RUNTIME_HIST_H */
