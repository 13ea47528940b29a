/*
 * Statistics for repeated measurements: summary (mean, stddev, CV, min, max,
 * median), a distribution-free confidence interval of the median (order
 * statistics), the two-sided Mann-Whitney U test, and Holm-Bonferroni
 * correction. Pure functions, no global state; depends only on libm.
 */
#ifndef CP_HARNESS_STATS_H
#define CP_HARNESS_STATS_H

#include <stddef.h>

typedef struct st_summary {
    size_t n;
    double mean, stddev, cv;        /* stddev: sample (n-1); cv = stddev / mean (0 if mean == 0) */
    double min, max, median;
    /* 95% CI of the median from order statistics (as benchstat): [ci_lo, ci_hi]
     * = [x(k), x(n+1-k)], k the largest rank whose binomial(n, 1/2) coverage
     * is still >= 95%. has_ci = 0 when n < 6: even [min, max] covers less
     * than 95% (1 - 2/2^n), so ci_lo/ci_hi are then min/max. */
    int has_ci;
    double ci_lo, ci_hi, ci_level;  /* ci_level: the exact coverage achieved */
} st_summary;

double st_mean(const double *x, size_t n);
double st_stddev(const double *x, size_t n);           /* sample stddev; 0 if n < 2 */
double st_median(const double *x, size_t n);           /* x need not be sorted */
void   st_sort(double *x, size_t n);
/* Ranks (1-based) of the order statistics bounding a `level` CI of the median
 * of n values; 0 if none reaches the level. *coverage: the exact coverage. */
int    st_median_ci_ranks(size_t n, double level, size_t *lo, size_t *hi, double *coverage);
void   st_summarize(const double *x, size_t n, st_summary *s);

/* Mann-Whitney U test, two-sided. U is the statistic of sample a:
 * #{(i,j): a_i > b_j} + #{ties}/2. */
typedef struct st_mwu {
    double u;           /* U of sample a */
    double p;           /* two-sided p-value */
    int exact;          /* 1: exact null distribution (no ties, small n); 0: normal approx. */
    int ties;           /* any ties across the pooled sample */
} st_mwu;

#define ST_MWU_EXACT_MAX 25     /* exact distribution when no ties and both n <= this */

void   st_mann_whitney(const double *a, size_t na, const double *b, size_t nb, st_mwu *r);
/* Exact two-sided p of U for sample sizes n1, n2 (no ties). */
double st_mwu_exact_p(size_t n1, size_t n2, double u);
/* Normal approximation with continuity correction; tie_term = sum(t^3 - t)
 * over groups of tied values (0 without ties). */
double st_mwu_normal_p(size_t n1, size_t n2, double u, double tie_term);
/* Smallest two-sided p any n1 vs n2 comparison can reach (complete separation). */
double st_mwu_min_p(size_t n1, size_t n2);

/* Wilcoxon signed-rank test, two-sided, for paired differences d (e.g. the
 * log ratio of B to A in one interleaved round). Zeros are dropped (as
 * Wilcoxon); tied |d| get mid-ranks. The p-value is exact for any n up to
 * ST_WSR_EXACT_MAX and any ties: the null distribution of W+ (each rank's
 * sign flipped with probability 1/2, which holds when A and B of a pair ran
 * in random order) is computed by dynamic programming over doubled ranks;
 * above that, the normal approximation with tie and continuity correction. */
typedef struct st_wsr {
    size_t n;           /* non-zero differences used */
    double w_plus;      /* sum of the ranks of the positive differences */
    double p;           /* two-sided p-value (1 when n == 0) */
    double var;         /* variance of W+ under the null, ties included (sum of rank^2 / 4):
                         * with n(n+1)/4 as its mean, the pieces of a stratified test that
                         * sums W+ over independent strata (van Elteren) */
    int exact;
} st_wsr;
#define ST_WSR_EXACT_MAX 200
void   st_wilcoxon_signed_rank(const double *d, size_t n, st_wsr *r);
/* Smallest two-sided p that n pairs can reach (all differences of one sign): 2/2^n. */
double st_wsr_min_p(size_t n);

/* Holm-Bonferroni step-down adjustment of m p-values: adj[i] for p[i]. */
void   st_holm(const double *p, size_t m, double *adj);

/* The regression verdict for one (configuration, metric): INCONCLUSIVE when a
 * side has fewer than ST_MIN_REPS values; FASTER/SLOWER only when the
 * (corrected) p < alpha AND the change of medians is at least threshold_pct
 * percent in magnitude; SAME ("~") otherwise. higher_better: 1 for
 * throughput, 0 for latency/time. */
#define ST_MIN_REPS 5
enum { ST_SAME, ST_FASTER, ST_SLOWER, ST_INCONCLUSIVE };
double st_change_pct(double base_median, double new_median);   /* (new/base - 1) * 100 */
int    st_verdict(size_t n_base, size_t n_new, double base_median, double new_median, double p,
                  int higher_better, double alpha, double threshold_pct);
const char *st_verdict_str(int v);     /* "~", "faster", "slower", "inconclusive" */

#endif
