/*
 * Statistics for repeated measurements (see stats.h). Benchmark repetitions
 * are few and rarely normal (long right tails, bimodal scheduling effects),
 * so everything that decides is distribution-free: the median, its CI from
 * order statistics, the Mann-Whitney U rank test (independent samples) and
 * the Wilcoxon signed-rank test (paired rounds of `cpbench ab`).
 */
#include "harness/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void st_sort(double *x, size_t n) { qsort(x, n, sizeof *x, cmp_double); }

double st_mean(const double *x, size_t n)
{
    if (!n) return 0;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

double st_stddev(const double *x, size_t n)
{
    if (n < 2) return 0;
    double m = st_mean(x, n), s = 0;
    for (size_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (double)(n - 1));
}

static double sorted_median(const double *v, size_t n)
{
    if (!n) return 0;
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double st_median(const double *x, size_t n)
{
    if (!n) return 0;
    double *v = malloc(n * sizeof *v);
    if (!v) abort();
    memcpy(v, x, n * sizeof *v);
    st_sort(v, n);
    double m = sorted_median(v, n);
    free(v);
    return m;
}

/* P(B <= k) for B ~ Binomial(n, 1/2), in log space (n may be large). */
static double binom_half_cdf(size_t n, size_t k)
{
    double s = 0;
    for (size_t i = 0; i <= k && i <= n; i++)
        s += exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - (double)n * M_LN2);
    return s > 1 ? 1 : s;
}

/* [x(k), x(n+1-k)] covers the median with probability P(k <= B <= n-k)
 * = 1 - 2 P(B <= k-1): the median lies between the k-th smallest and the
 * k-th largest unless at least n-k+1 values fall on one side of it. */
int st_median_ci_ranks(size_t n, double level, size_t *lo, size_t *hi, double *coverage)
{
    size_t best = 0;
    double cov = 0;
    for (size_t k = 1; 2 * k <= n + 1; k++) {
        double c = 1 - 2 * binom_half_cdf(n, k - 1);
        if (c + 1e-12 < level) break;
        best = k, cov = c;
    }
    if (!best) return 0;
    *lo = best;
    *hi = n + 1 - best;
    if (coverage) *coverage = cov;
    return 1;
}

void st_summarize(const double *x, size_t n, st_summary *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    if (!n) return;
    double *v = malloc(n * sizeof *v);
    if (!v) abort();
    memcpy(v, x, n * sizeof *v);
    st_sort(v, n);
    s->mean = st_mean(v, n);
    s->stddev = st_stddev(v, n);
    s->cv = s->mean != 0 ? s->stddev / fabs(s->mean) : 0;
    s->min = v[0];
    s->max = v[n - 1];
    s->median = sorted_median(v, n);
    size_t lo, hi;
    s->has_ci = st_median_ci_ranks(n, 0.95, &lo, &hi, &s->ci_level);
    s->ci_lo = s->has_ci ? v[lo - 1] : s->min;
    s->ci_hi = s->has_ci ? v[hi - 1] : s->max;
    free(v);
}

/* ---- Mann-Whitney U ---- */

/* Number of n1-subsets of ranks {1..n1+n2} for each U = ranksum - n1(n1+1)/2,
 * i.e. the null distribution of U times C(n1+n2, n1). cnt has n1*n2+1 slots.
 * DP over ranks: c[k][s] = k-subsets of the ranks seen so far with sum s
 * (doubles: C(50,25) ~ 1.3e14 is still exact). */
static void mwu_counts(size_t n1, size_t n2, double *cnt)
{
    size_t N = n1 + n2, maxs = n1 * N;
    double *c = calloc((n1 + 1) * (maxs + 1), sizeof *c);
    if (!c) abort();
#define C(k, s) c[(k) * (maxs + 1) + (s)]
    C(0, 0) = 1;
    for (size_t r = 1; r <= N; r++)
        for (size_t k = (r < n1 ? r : n1); k >= 1; k--)
            for (size_t s = maxs; s >= r; s--) C(k, s) += C(k - 1, s - r);
    size_t base = n1 * (n1 + 1) / 2;
    for (size_t u = 0; u <= n1 * n2; u++) cnt[u] = C(n1, base + u);
#undef C
    free(c);
}

double st_mwu_exact_p(size_t n1, size_t n2, double u)
{
    if (!n1 || !n2) return 1;
    size_t m = n1 * n2;
    double *cnt = malloc((m + 1) * sizeof *cnt);
    if (!cnt) abort();
    mwu_counts(n1, n2, cnt);
    double total = 0, le = 0, ge = 0;
    for (size_t k = 0; k <= m; k++) {
        total += cnt[k];
        if ((double)k <= u + 1e-9) le += cnt[k];
        if ((double)k >= u - 1e-9) ge += cnt[k];
    }
    free(cnt);
    double p = 2 * (le < ge ? le : ge) / total;
    return p > 1 ? 1 : p;
}

double st_mwu_normal_p(size_t n1, size_t n2, double u, double tie_term)
{
    double N = (double)(n1 + n2), mu = (double)n1 * (double)n2 / 2;
    double var = (double)n1 * (double)n2 / 12 * ((N + 1) - (N > 1 ? tie_term / (N * (N - 1)) : 0));
    if (var <= 0) return 1;     /* every value tied: no evidence either way */
    double d = fabs(u - mu) - 0.5;
    if (d <= 0) return 1;
    return erfc(d / sqrt(var) / M_SQRT2);
}

double st_mwu_min_p(size_t n1, size_t n2)
{
    if (!n1 || !n2) return 1;
    /* complete separation: U = 0, one arrangement of C(n1+n2, n1) per tail */
    double c = exp(lgamma((double)(n1 + n2) + 1) - lgamma((double)n1 + 1) - lgamma((double)n2 + 1));
    double p = 2 / c;
    return p > 1 ? 1 : p;
}

typedef struct tagged { double v; int from_a; } tagged;

static int cmp_tagged(const void *a, const void *b)
{
    return cmp_double(&((const tagged *)a)->v, &((const tagged *)b)->v);
}

void st_mann_whitney(const double *a, size_t na, const double *b, size_t nb, st_mwu *r)
{
    memset(r, 0, sizeof *r);
    r->p = 1;
    if (!na || !nb) return;
    size_t N = na + nb;
    tagged *t = malloc(N * sizeof *t);
    if (!t) abort();
    for (size_t i = 0; i < na; i++) t[i] = (tagged){ a[i], 1 };
    for (size_t i = 0; i < nb; i++) t[na + i] = (tagged){ b[i], 0 };
    qsort(t, N, sizeof *t, cmp_tagged);
    /* midranks; ranks of a summed */
    double ra = 0, tie_term = 0;
    for (size_t i = 0; i < N;) {
        size_t j = i;
        while (j + 1 < N && t[j + 1].v == t[i].v) j++;
        double rank = ((double)i + 1 + (double)j + 1) / 2, tl = (double)(j - i + 1);
        if (tl > 1) r->ties = 1, tie_term += tl * tl * tl - tl;
        for (size_t k = i; k <= j; k++)
            if (t[k].from_a) ra += rank;
        i = j + 1;
    }
    free(t);
    r->u = ra - (double)na * (double)(na + 1) / 2;
    if (!r->ties && na <= ST_MWU_EXACT_MAX && nb <= ST_MWU_EXACT_MAX) {
        r->exact = 1;
        r->p = st_mwu_exact_p(na, nb, r->u);
    } else {
        r->p = st_mwu_normal_p(na, nb, r->u, tie_term);
    }
}

/* Wilcoxon signed-rank. Ranks are kept doubled (2 x the mid-rank is the sum
 * of the two 1-based positions a tie spans, an integer), so the exact null
 * distribution of W+ under random sign flips is a DP over integer sums, ties
 * or not: P(sum = s) after rank i = (P_(i-1)(s) + P_(i-1)(s - r_i)) / 2. */
static int cmp_abs(const void *a, const void *b)
{
    double x = fabs(*(const double *)a), y = fabs(*(const double *)b);
    return (x > y) - (x < y);
}

void st_wilcoxon_signed_rank(const double *d, size_t n, st_wsr *r)
{
    memset(r, 0, sizeof *r);
    r->p = 1;
    double *v = malloc((n + 1) * sizeof *v);
    size_t *r2 = malloc((n + 1) * sizeof *r2);
    if (!v || !r2) abort();
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i] != 0 && d[i] == d[i]) v[m++] = d[i];
    r->n = m;
    if (!m) goto out;
    qsort(v, m, sizeof *v, cmp_abs);
    size_t w2 = 0, total2 = 0;
    double tie_term = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j + 1 < m && fabs(v[j + 1]) == fabs(v[i])) j++;
        size_t rr = (i + 1) + (j + 1);      /* doubled mid-rank */
        double t = (double)(j - i + 1);
        tie_term += t * t * t - t;
        for (size_t k = i; k <= j; k++) {
            r2[k] = rr;
            total2 += rr;
            r->var += (double)rr * (double)rr / 16;     /* (rr / 2)^2 / 4 */
            if (v[k] > 0) w2 += rr;
        }
        i = j + 1;
    }
    r->w_plus = (double)w2 / 2;
    if (m <= ST_WSR_EXACT_MAX) {
        double *dist = calloc(total2 + 1, sizeof *dist);
        if (!dist) abort();
        dist[0] = 1;
        size_t hi = 0;
        for (size_t k = 0; k < m; k++) {
            for (size_t s = hi + r2[k]; s >= r2[k]; s--) dist[s] = (dist[s] + dist[s - r2[k]]) / 2;
            for (size_t s = r2[k] - 1 < hi + 1 ? r2[k] - 1 : hi; s != (size_t)-1; s--) dist[s] /= 2;
            hi += r2[k];
        }
        double le = 0, ge = 0;
        for (size_t s = 0; s <= total2; s++) {
            if (s <= w2) le += dist[s];
            if (s >= w2) ge += dist[s];
        }
        free(dist);
        r->exact = 1;
        r->p = 2 * (le < ge ? le : ge);
    } else {
        double N = (double)m, mu = N * (N + 1) / 4;
        double var = N * (N + 1) * (2 * N + 1) / 24 - tie_term / 48;
        double z = fabs(r->w_plus - mu) - 0.5;
        r->p = var > 0 && z > 0 ? erfc(z / sqrt(var) / M_SQRT2) : 1;
    }
    if (r->p > 1) r->p = 1;
out:
    free(v);
    free(r2);
}

double st_wsr_min_p(size_t n)
{
    double p = 2 * pow(0.5, (double)n);
    return p > 1 ? 1 : p;
}

/* Holm: sort ascending; adj_(i) = max_{j <= i} min(1, (m - j) p_(j)) (0-based),
 * which controls the family-wise error rate at alpha for any dependence. */
typedef struct pidx { double p; size_t i; } pidx;

static int cmp_pidx(const void *a, const void *b)
{
    const pidx *x = a, *y = b;
    if (x->p != y->p) return (x->p > y->p) - (x->p < y->p);
    return (x->i > y->i) - (x->i < y->i);
}

void st_holm(const double *p, size_t m, double *adj)
{
    if (!m) return;
    pidx *s = malloc(m * sizeof *s);
    if (!s) abort();
    for (size_t i = 0; i < m; i++) s[i] = (pidx){ p[i], i };
    qsort(s, m, sizeof *s, cmp_pidx);
    double run = 0;
    for (size_t j = 0; j < m; j++) {
        double v = (double)(m - j) * s[j].p;
        if (v > 1) v = 1;
        if (v > run) run = v;   /* step-down: adjusted p never decreases */
        adj[s[j].i] = run;
    }
    free(s);
}

double st_change_pct(double base_median, double new_median)
{
    if (base_median == 0) return new_median == 0 ? 0 : (new_median > 0 ? INFINITY : -INFINITY);
    return (new_median / base_median - 1) * 100;
}

int st_verdict(size_t n_base, size_t n_new, double base_median, double new_median, double p,
               int higher_better, double alpha, double threshold_pct)
{
    if (n_base < ST_MIN_REPS || n_new < ST_MIN_REPS) return ST_INCONCLUSIVE;
    double ch = st_change_pct(base_median, new_median);
    if (!(p < alpha) || !(fabs(ch) >= threshold_pct) || ch == 0) return ST_SAME;
    return (ch > 0) == (higher_better != 0) ? ST_FASTER : ST_SLOWER;
}

const char *st_verdict_str(int v)
{
    switch (v) {
    case ST_FASTER: return "faster";
    case ST_SLOWER: return "slower";
    case ST_INCONCLUSIVE: return "inconclusive";
    default: return "~";
    }
}
