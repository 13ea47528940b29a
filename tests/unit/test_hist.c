/* cp_hist: accuracy, percentiles, merge/reset/clamp, .hgrm format.
 * Standalone: returns 0 on success, prints failures to stderr. */
#define _GNU_SOURCE
#include "runtime/hist.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fails, checks;

#define CHECK(c)                                                                   \
    do {                                                                           \
        checks++;                                                                  \
        if (!(c)) {                                                                \
            fails++;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
        }                                                                          \
    } while (0)

/* Like CHECK but at most `lim` messages per call site, for loops. */
#define CHECK_LOOP(c, ...)                                                         \
    do {                                                                           \
        static int shown_;                                                         \
        checks++;                                                                  \
        if (!(c)) {                                                                \
            fails++;                                                               \
            if (shown_++ < 5) {                                                    \
                fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,   \
                        #c);                                                       \
                fprintf(stderr, __VA_ARGS__);                                      \
                fputc('\n', stderr);                                               \
            }                                                                      \
        }                                                                          \
    } while (0)

#define HOUR_NS 3600000000000ull

static int within(double got, double want, double rel)
{
    if (want == 0)
        return got == 0;
    return fabs(got - want) <= rel * fabs(want);
}

static void t_layout(void)
{
    CHECK(cp_hist_new(0, 1000) == NULL);
    CHECK(cp_hist_new(6, 1000) == NULL);
    CHECK(cp_hist_new(3, 1) == NULL);
    cp_hist *h = cp_hist_new(3, HOUR_NS);
    CHECK(h != NULL);
    if (!h)
        return;
    CHECK(h->sub_bucket_count == 2048);
    /* highest trackable value is inside the array */
    CHECK(cp_hist_highest_equivalent(h, HOUR_NS) >= HOUR_NS);
    cp_hist_free(h);
    static const int32_t want[] = {0, 32, 256, 2048, 32768, 262144};
    for (int d = 1; d <= 5; d++) {
        h = cp_hist_new(d, UINT64_MAX);
        CHECK_LOOP(h != NULL && h->sub_bucket_count == want[d], "digits %d", d);
        if (h) {
            /* the extremes index inside the array */
            cp_hist_record(h, UINT64_MAX);
            cp_hist_record(h, 0);
            CHECK_LOOP(cp_hist_percentile(h, 100) == UINT64_MAX, "digits %d", d);
            CHECK_LOOP(cp_hist_highest_equivalent(h, UINT64_MAX) == UINT64_MAX, "d %d", d);
            cp_hist_free(h);
        }
    }
}

static void t_exact_small(void)
{
    cp_hist *h = cp_hist_new(3, HOUR_NS);
    for (uint64_t v = 1; v <= 2047; v++) {
        cp_hist_record(h, v);
        CHECK_LOOP(cp_hist_lowest_equivalent(h, v) == v && cp_hist_highest_equivalent(h, v) == v,
                   "v=%" PRIu64, v);
    }
    CHECK(cp_hist_count(h) == 2047);
    CHECK(cp_hist_min(h) == 1);
    CHECK(cp_hist_max(h) == 2047);
    for (uint64_t k = 1; k <= 2047; k++) {
        double pct = 100.0 * (double)k / 2047.0;
        uint64_t got = cp_hist_percentile(h, pct);
        CHECK_LOOP(got == k, "p%.10f -> %" PRIu64 " want %" PRIu64, pct, got, k);
        /* just below the exact rank stays on it, just above goes to the next */
        got = cp_hist_percentile(h, 100.0 * ((double)k - 0.5) / 2047.0);
        CHECK_LOOP(got == k, "rank %" PRIu64 "-0.5 -> %" PRIu64, k, got);
    }
    CHECK(cp_hist_percentile(h, 0) == 1);
    CHECK(cp_hist_percentile(h, 50) == 1024);
    CHECK(cp_hist_percentile(h, 100) == 2047);
    CHECK(cp_hist_percentile(h, 150) == 2047);
    CHECK(within(cp_hist_mean(h), 1024.0, 1e-12));
    /* population stddev of 1..n = sqrt((n^2-1)/12) */
    CHECK(within(cp_hist_stddev(h), sqrt((2047.0 * 2047.0 - 1) / 12.0), 1e-12));
    cp_hist_free(h);
}

static void t_log_sweep(void)
{
    cp_hist *h = cp_hist_new(3, HOUR_NS);
    uint64_t n = 0;
    for (double x = 1; x <= (double)HOUR_NS; x *= 1.0007, n++) {
        uint64_t v = (uint64_t)x;
        cp_hist_record(h, v);
        uint64_t lo = cp_hist_lowest_equivalent(h, v), hi = cp_hist_highest_equivalent(h, v);
        CHECK_LOOP(lo <= v && v <= hi, "v=%" PRIu64 " [%" PRIu64 ",%" PRIu64 "]", v, lo, hi);
        CHECK_LOOP((double)(hi - lo) <= 0.001 * (double)v,
                   "v=%" PRIu64 " [%" PRIu64 ",%" PRIu64 "]", v, lo, hi);
        /* v+1 past the slot is in the next one */
        CHECK_LOOP(cp_hist_lowest_equivalent(h, hi + 1) == hi + 1, "v=%" PRIu64, v);
    }
    CHECK(cp_hist_count(h) == n);
    CHECK(h->clamped == 0);
    CHECK(cp_hist_max(h) <= HOUR_NS && cp_hist_max(h) > HOUR_NS / 1.001);
    /* every slot's value range respects the precision, checked exhaustively */
    for (uint64_t v = 2048; v < HOUR_NS;) {
        uint64_t lo = cp_hist_lowest_equivalent(h, v), hi = cp_hist_highest_equivalent(h, v);
        CHECK_LOOP(lo == v && (double)(hi - lo) <= 0.001 * (double)lo, "slot %" PRIu64, v);
        v = hi + 1;
    }
    cp_hist_free(h);
}

static void t_uniform(void)
{
    const uint64_t N = 1000000;
    cp_hist *h = cp_hist_new(3, HOUR_NS);
    double sum = 0, sq = 0;
    for (uint64_t v = 1; v <= N; v++) {
        cp_hist_record(h, v);
        sum += (double)v;
    }
    double mean = sum / (double)N;
    for (uint64_t v = 1; v <= N; v++)
        sq += ((double)v - mean) * ((double)v - mean);
    double sd = sqrt(sq / (double)N);

    static const double ps[] = {50, 90, 99, 99.9, 99.99, 99.999, 25, 75, 1, 0.01};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        uint64_t exact = (uint64_t)ceil(ps[i] / 100.0 * (double)N - 1e-9);
        uint64_t got = cp_hist_percentile(h, ps[i]);
        CHECK_LOOP(got >= exact && within((double)got, (double)exact, 0.001),
                   "p%g -> %" PRIu64 " want %" PRIu64, ps[i], got, exact);
    }
    CHECK(cp_hist_percentile(h, 100) == N);
    CHECK(cp_hist_min(h) == 1 && cp_hist_max(h) == N);
    CHECK(within(cp_hist_mean(h), mean, 0.001));
    CHECK(within(cp_hist_stddev(h), sd, 0.001));
    cp_hist_free(h);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void t_merge_reset_clamp(void)
{
    cp_hist *a = cp_hist_new(3, HOUR_NS), *b = cp_hist_new(3, HOUR_NS);
    cp_hist *all = cp_hist_new(3, HOUR_NS);
    for (int i = 0; i < 200000; i++) {
        uint64_t v = rng() >> (rng() % 64); /* log-ish spread */
        if (v > HOUR_NS)
            v %= HOUR_NS;
        cp_hist_record(i % 3 ? a : b, v);
        cp_hist_record(all, v);
    }
    cp_hist_record_n(a, 12345, 7);
    cp_hist_record_n(all, 12345, 7);
    cp_hist_record_n(b, 99, 0); /* no-op */
    CHECK(cp_hist_merge(a, b) == 0);
    CHECK(cp_hist_count(a) == cp_hist_count(all));
    CHECK(cp_hist_min(a) == cp_hist_min(all) && cp_hist_max(a) == cp_hist_max(all));
    CHECK(memcmp(a->counts, all->counts, (size_t)a->counts_len * sizeof(uint64_t)) == 0);
    for (double p = 0; p <= 100; p += 0.37)
        CHECK_LOOP(cp_hist_percentile(a, p) == cp_hist_percentile(all, p), "p%g", p);
    CHECK(cp_hist_mean(a) == cp_hist_mean(all));
    CHECK(cp_hist_stddev(a) == cp_hist_stddev(all));

    /* merge of an empty one changes nothing; layouts must match */
    cp_hist *e = cp_hist_new(3, HOUR_NS);
    CHECK(cp_hist_merge(a, e) == 0);
    CHECK(cp_hist_min(a) == cp_hist_min(all) && cp_hist_count(a) == cp_hist_count(all));
    cp_hist *other = cp_hist_new(2, HOUR_NS), *small = cp_hist_new(3, 1000000);
    CHECK(cp_hist_merge(a, other) == -1);
    CHECK(cp_hist_merge(a, small) == -1);

    /* reset empties */
    cp_hist_reset(a);
    CHECK(cp_hist_count(a) == 0 && cp_hist_min(a) == 0 && cp_hist_max(a) == 0);
    CHECK(cp_hist_percentile(a, 50) == 0 && cp_hist_percentile(a, 100) == 0);
    CHECK(cp_hist_mean(a) == 0 && cp_hist_stddev(a) == 0);
    int nz = 0;
    for (int32_t i = 0; i < a->counts_len; i++)
        nz += a->counts[i] != 0;
    CHECK(nz == 0);
    CHECK(memcmp(a->counts, e->counts, (size_t)a->counts_len * sizeof(uint64_t)) == 0);
    cp_hist_record(a, 0); /* 0 is recorded as 0 */
    CHECK(cp_hist_count(a) == 1 && cp_hist_min(a) == 0 && cp_hist_max(a) == 0);
    CHECK(cp_hist_percentile(a, 50) == 0 && a->counts[0] == 1);

    /* clamping */
    cp_hist *c = cp_hist_new(3, 1000000);
    cp_hist_record(c, 500);
    cp_hist_record(c, 5000000);
    cp_hist_record_n(c, UINT64_MAX, 2);
    CHECK(c->clamped == 3);
    CHECK(cp_hist_count(c) == 4);
    CHECK(cp_hist_max(c) == 1000000);
    CHECK(cp_hist_percentile(c, 100) == 1000000);
    CHECK(cp_hist_percentile(c, 99) == 1000000);
    CHECK(cp_hist_percentile(c, 25) == 500);
    CHECK(c->counts[cp_hist__index(c, 1000000)] == 3);
    cp_hist_reset(c);
    CHECK(c->clamped == 0);

    cp_hist_free(a);
    cp_hist_free(b);
    cp_hist_free(all);
    cp_hist_free(e);
    cp_hist_free(other);
    cp_hist_free(small);
    cp_hist_free(c);
}

/* HdrHistogram_c hdr_percentiles_print(CLASSIC) layout */
static const char HDR[] = "       Value   Percentile   TotalCount 1/(1-Percentile)\n";

/* Checks the .hgrm text of h; returns number of data rows. */
static int check_hgrm(const cp_hist *h, int ticks, double div, int print)
{
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f)
        return 0;
    CHECK(cp_hist_write_hgrm(h, f, ticks, div) == 0);
    rewind(f);
    char line[512], last_row[512] = "";
    char *lines[4096];
    int nl = 0;
    while (fgets(line, sizeof line, f) && nl < 4096)
        lines[nl++] = strdup(line);
    fclose(f);
    if (print)
        for (int i = 0; i < nl; i++)
            fputs(lines[i], stdout);

    CHECK(nl >= 6);
    if (nl < 6)
        return 0;
    CHECK(strcmp(lines[0], HDR) == 0);
    CHECK(strcmp(lines[1], "\n") == 0);
    CHECK(strncmp(lines[nl - 3], "#[Mean    = ", 12) == 0);
    CHECK(strncmp(lines[nl - 2], "#[Max     = ", 12) == 0);
    CHECK(strncmp(lines[nl - 1], "#[Buckets = ", 12) == 0);
    char want[128];
    snprintf(want, sizeof want, "#[Buckets = %12d, SubBuckets     = %12d]\n", h->bucket_count,
             h->sub_bucket_count);
    CHECK(strcmp(lines[nl - 1], want) == 0);
    snprintf(want, sizeof want, ", Total count    = %12" PRIu64 "]\n", cp_hist_count(h));
    CHECK(strstr(lines[nl - 2], want) != NULL);

    uint64_t prev_cum = 0;
    double prev_val = -1, prev_p = -1;
    int rows = 0;
    for (int i = 2; i < nl - 3; i++, rows++) {
        double val, p, inv;
        uint64_t cum;
        int n = sscanf(lines[i], "%lf %lf %" SCNu64 " %lf", &val, &p, &cum, &inv);
        int is_last = i == nl - 4;
        CHECK_LOOP(n == 4, "row %d: %s", i, lines[i]);
        CHECK_LOOP(strlen(lines[i]) == 52u, "row %d: '%s'", i, lines[i]);
        if (is_last)
            CHECK_LOOP(isinf(inv), "row %d: %s", i, lines[i]);
        CHECK_LOOP(cum >= prev_cum, "row %d: %s", i, lines[i]);
        CHECK_LOOP(val >= prev_val, "row %d: %s", i, lines[i]);
        CHECK_LOOP(p > prev_p, "row %d: %s", i, lines[i]);
        CHECK_LOOP(cum <= cp_hist_count(h), "row %d: %s", i, lines[i]);
        if (!is_last)
            /* p is printed with 6 decimals: allow for its rounding (d inv/dp = inv^2) */
            CHECK_LOOP(fabs(inv - 1.0 / (1.0 - p)) <= 0.01 + 6e-7 * inv * inv, "row %d: %s", i,
                       lines[i]);
        prev_cum = cum;
        prev_val = val;
        prev_p = p;
        snprintf(last_row, sizeof last_row, "%s", lines[i]);
    }
    CHECK(strstr(last_row, "     1.000000 ") != NULL);
    CHECK(prev_cum == cp_hist_count(h));
    for (int i = 0; i < nl; i++)
        free(lines[i]);
    return rows;
}

static void t_hgrm(void)
{
    cp_hist *h = cp_hist_new(3, HOUR_NS);
    /* empty: just the 100% row and the footer */
    CHECK(check_hgrm(h, 5, 1.0, 0) == 1);
    for (uint64_t v = 1; v <= 10000; v++)
        cp_hist_record(h, v * 1000); /* 1us .. 10ms in ns */
    int rows = check_hgrm(h, 5, 1000.0, 0);
    /* 0,10,..,50 then 5 ticks per halving: well over 50 rows for 10000 values */
    CHECK(rows > 50);

    /* known small case: values 1..10 each once, 1 tick per half distance.
     * Targets 0,50,75,87.5,...; rows at slots 1(10%),5(50%),8(80%),9(90%),
     * 10(100%), then the final 100% row. */
    cp_hist *s = cp_hist_new(3, 1000);
    for (uint64_t v = 1; v <= 10; v++)
        cp_hist_record(s, v);
    FILE *f = tmpfile();
    CHECK(cp_hist_write_hgrm(s, f, 1, 1.0) == 0);
    rewind(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    const char *want =
        "       Value   Percentile   TotalCount 1/(1-Percentile)\n"
        "\n"
        "       1.000     0.000000            1         1.00\n"
        "       5.000     0.500000            5         2.00\n"
        "       8.000     0.750000            8         4.00\n"
        "       9.000     0.875000            9         8.00\n"
        "      10.000     0.937500           10        16.00\n"
        "      10.000     1.000000           10          inf\n"
        "#[Mean    =        5.500, StdDeviation   =        2.872]\n"
        "#[Max     =       10.000, Total count    =           10]\n"
        "#[Buckets =            1, SubBuckets     =         2048]\n";
    CHECK(strcmp(buf, want) == 0);
    if (strcmp(buf, want) != 0)
        fprintf(stderr, "got:\n%swant:\n%s", buf, want);
    check_hgrm(s, 1, 1.0, 0);
    check_hgrm(s, 0, 1.0, 0); /* ticks < 1 treated as 1 */
    CHECK(cp_hist_write_hgrm(s, stdout, 5, 0.0) == -1);
    cp_hist_free(s);
    cp_hist_free(h);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void bench_record(void)
{
    enum { NV = 1 << 16, CALLS = 10000000 };
    static uint64_t vals[NV];
    for (int i = 0; i < NV; i++)
        vals[i] = 100 + (rng() % 1000000); /* 100ns .. 1ms */
    cp_hist *h = cp_hist_new(3, HOUR_NS);
    double t0 = now_ns();
    for (int i = 0; i < CALLS; i++)
        cp_hist_record(h, vals[i & (NV - 1)]);
    double t1 = now_ns();
    CHECK(cp_hist_count(h) == CALLS);
    printf("cp_hist_record: %.2f ns/record (%d calls, informational)\n",
           (t1 - t0) / CALLS, CALLS);
    printf("histogram size (3 digits, highest 3.6e12): %zu bytes\n",
           sizeof(cp_hist) + (size_t)h->counts_len * sizeof(uint64_t));
    cp_hist_free(h);
}

int main(void)
{
    t_layout();
    t_exact_small();
    t_log_sweep();
    t_uniform();
    t_merge_reset_clamp();
    t_hgrm();
    bench_record();
    if (fails) {
        fprintf(stderr, "test_hist: %d of %d checks FAILED\n", fails, checks);
        return 1;
    }
    printf("test_hist: all %d checks passed\n", checks);
    return 0;
}
