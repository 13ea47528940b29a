/* harness/stats.c: summaries, the median CI, Mann-Whitney U, Wilcoxon signed-rank,
 * Holm, verdicts.
 * Standalone: returns 0 on success, prints failures to stderr. */
#include "harness/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int fails, checks;

#define CHECK(c)                                                                   \
    do {                                                                           \
        checks++;                                                                  \
        if (!(c)) {                                                                \
            fails++;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
        }                                                                          \
    } while (0)

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

/* deterministic noise in [-1, 1] */
static double noise(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return ((double)((*s >> 8) & 0xffff) / 65535.0) * 2 - 1;
}

static void test_summary(void)
{
    double x[] = { 9, 4, 2, 5, 4, 7, 4, 5 };
    CHECK(NEAR(st_mean(x, 8), 5, 1e-12));
    CHECK(NEAR(st_stddev(x, 8), sqrt(32.0 / 7), 1e-12));
    CHECK(NEAR(st_median(x, 8), 4.5, 1e-12));
    CHECK(NEAR(st_median(x, 7), 4, 1e-12));      /* 9 4 2 5 4 7 4 -> 4 */
    CHECK(st_stddev(x, 1) == 0);
    CHECK(x[0] == 9);                           /* st_median does not reorder */

    st_summary s;
    st_summarize(x, 8, &s);
    CHECK(s.n == 8 && s.min == 2 && s.max == 9 && NEAR(s.median, 4.5, 1e-12));
    CHECK(NEAR(s.cv, sqrt(32.0 / 7) / 5, 1e-12));
    CHECK(s.has_ci);                            /* n = 8: k = 1, coverage 1 - 2/256 */
    CHECK(s.ci_lo == 2 && s.ci_hi == 9 && NEAR(s.ci_level, 1 - 2.0 / 256, 1e-12));

    /* n < 6: no 95% CI exists (min..max covers 1 - 2/2^n < 95%) */
    st_summarize(x, 5, &s);
    CHECK(!s.has_ci && s.ci_lo == 2 && s.ci_hi == 9);
    size_t lo, hi;
    double cov;
    CHECK(!st_median_ci_ranks(5, 0.95, &lo, &hi, &cov));
    CHECK(st_median_ci_ranks(6, 0.95, &lo, &hi, &cov) && lo == 1 && hi == 6 && NEAR(cov, 1 - 2.0 / 64, 1e-12));
    /* n = 10: P(B <= 1) = 11/1024 -> k = 2 (97.85%); k = 3 would be 89.1% */
    CHECK(st_median_ci_ranks(10, 0.95, &lo, &hi, &cov) && lo == 2 && hi == 9 &&
          NEAR(cov, 1 - 22.0 / 1024, 1e-12));
    /* n = 20: P(B <= 5) = 21700/2^20 -> k = 6 (95.86%) */
    CHECK(st_median_ci_ranks(20, 0.95, &lo, &hi, &cov) && lo == 6 && hi == 15 &&
          NEAR(cov, 1 - 2 * 21700.0 / 1048576, 1e-12));
    double y[10] = { 10, 1, 9, 2, 8, 3, 7, 4, 6, 5 };
    st_summarize(y, 10, &s);
    CHECK(s.has_ci && s.ci_lo == 2 && s.ci_hi == 9 && s.median == 5.5);
}

static void test_mwu_exact(void)
{
    st_mwu r;
    double a[] = { 1, 2, 3, 4, 5 }, b[] = { 6, 7, 8, 9, 10 };
    st_mann_whitney(a, 5, b, 5, &r);
    CHECK(r.exact && !r.ties && r.u == 0 && NEAR(r.p, 2.0 / 252, 1e-12));
    st_mann_whitney(b, 5, a, 5, &r);
    CHECK(r.u == 25 && NEAR(r.p, 2.0 / 252, 1e-12));
    CHECK(NEAR(st_mwu_min_p(5, 5), 2.0 / 252, 1e-12));
    CHECK(NEAR(st_mwu_min_p(10, 10), 2.0 / 184756, 1e-15));
    /* 3 vs 3: U distribution 1,1,2,3,3,3,3,2,1,1 (/20); U = 1 -> p = 2 * 2/20 */
    double c[] = { 1, 2, 4 }, d[] = { 3, 5, 6 };
    st_mann_whitney(c, 3, d, 3, &r);
    CHECK(r.exact && r.u == 1 && NEAR(r.p, 0.2, 1e-12));
    CHECK(NEAR(st_mwu_exact_p(3, 3, 4), 2 * 10.0 / 20, 1e-12));  /* P(U <= 4) = 10/20 */
    CHECK(st_mwu_exact_p(3, 3, 4.5) == 1);                      /* the centre */
    /* unequal sizes: 2 vs 4 separated -> 2 / C(6,2) */
    double e[] = { 10, 11 }, f[] = { 1, 2, 3, 4 };
    st_mann_whitney(e, 2, f, 4, &r);
    CHECK(r.u == 8 && NEAR(r.p, 2.0 / 15, 1e-12));
}

static void test_mwu_normal(void)
{
    /* n = 10 per side, no ties: the normal approximation (continuity-corrected)
     * agrees with the exact p across shifts */
    unsigned seed = 7;
    for (int shift = 0; shift <= 12; shift += 2) {
        double a[10], b[10];
        for (int i = 0; i < 10; i++) {
            a[i] = 100 + i * 3 + noise(&seed) * 0.1;
            b[i] = 100 + i * 3 + shift + 0.05 + noise(&seed) * 0.1;
        }
        st_mwu r;
        st_mann_whitney(a, 10, b, 10, &r);
        double pn = st_mwu_normal_p(10, 10, r.u, 0);
        CHECK(r.exact);
        if (!(NEAR(pn, r.p, 0.01) || (r.p < 0.01 && pn < 0.01)))
            fprintf(stderr, "shift %d: U %.1f exact %.5f normal %.5f\n", shift, r.u, r.p, pn);
        CHECK(NEAR(pn, r.p, 0.01) || (r.p < 0.01 && pn < 0.01));
    }
    /* ties force the approximation; all tied -> p = 1 */
    double t1[] = { 5, 5, 5, 5, 5 }, t2[] = { 5, 5, 5, 5, 5 };
    st_mwu r;
    st_mann_whitney(t1, 5, t2, 5, &r);
    CHECK(r.ties && !r.exact && r.p == 1);
    /* tie correction: with ties the variance shrinks, so p is smaller than without */
    double g[] = { 1, 2, 2, 3, 3, 3, 4, 4, 5, 6 }, h[] = { 3, 4, 4, 5, 5, 6, 6, 7, 7, 8 };
    st_mann_whitney(g, 10, h, 10, &r);
    CHECK(r.ties && !r.exact && r.p < 0.05 && r.p > 0.001);
    /* large samples use the approximation too */
    double big_a[40], big_b[40];
    for (int i = 0; i < 40; i++) big_a[i] = i, big_b[i] = i + 0.5;
    st_mann_whitney(big_a, 40, big_b, 40, &r);
    CHECK(!r.exact && r.p > 0.5);
}

static void test_verdicts(void)
{
    unsigned seed = 42;
    double base[10], same[10], slow[10], tiny[10];
    for (int i = 0; i < 10; i++) {
        base[i] = 1e6 * (1 + 0.02 * noise(&seed));
        same[i] = base[i];
        slow[i] = 0.7e6 * (1 + 0.02 * noise(&seed));
        tiny[i] = 0.99e6 * (1 + 0.001 * noise(&seed));
    }
    st_mwu r;
    /* identical samples never regress */
    st_mann_whitney(base, 10, same, 10, &r);
    CHECK(r.p > 0.5);
    CHECK(st_verdict(10, 10, st_median(base, 10), st_median(same, 10), r.p, 1, 0.05, 5) == ST_SAME);
    CHECK(st_verdict(10, 10, 5, 5, 0, 1, 0.05, 0) == ST_SAME);   /* even at p = 0, no change is ~ */
    /* a 30% throughput drop with 10 reps per side is detected */
    st_mann_whitney(base, 10, slow, 10, &r);
    CHECK(r.p < 1e-4);
    double ch = st_change_pct(st_median(base, 10), st_median(slow, 10));
    CHECK(ch < -25 && ch > -35);
    CHECK(st_verdict(10, 10, st_median(base, 10), st_median(slow, 10), r.p, 1, 0.05, 5) == ST_SLOWER);
    /* the same drop in a latency metric (lower is better) is an improvement */
    CHECK(st_verdict(10, 10, st_median(base, 10), st_median(slow, 10), r.p, 0, 0.05, 5) == ST_FASTER);
    /* ... and a rise in a latency metric is a regression */
    CHECK(st_verdict(10, 10, st_median(slow, 10), st_median(base, 10), r.p, 0, 0.05, 5) == ST_SLOWER);
    /* a 1% shift: significant (tight noise) but under the 5% threshold -> ~ */
    double tb[10];
    for (int i = 0; i < 10; i++) tb[i] = 1e6 * (1 + 0.001 * noise(&seed));
    st_mann_whitney(tb, 10, tiny, 10, &r);
    CHECK(r.p < 0.001);
    CHECK(st_verdict(10, 10, st_median(tb, 10), st_median(tiny, 10), r.p, 1, 0.05, 5) == ST_SAME);
    CHECK(st_verdict(10, 10, st_median(tb, 10), st_median(tiny, 10), r.p, 1, 0.05, 0.5) == ST_SLOWER);
    /* fewer than 5 reps on a side: inconclusive whatever p says */
    CHECK(st_verdict(4, 10, 1e6, 0.5e6, 0.001, 1, 0.05, 5) == ST_INCONCLUSIVE);
    CHECK(st_verdict(10, 4, 1e6, 0.5e6, 0.001, 1, 0.05, 5) == ST_INCONCLUSIVE);
    CHECK(st_verdict(5, 5, 1e6, 0.5e6, 2.0 / 252, 1, 0.05, 5) == ST_SLOWER);
}

static void test_holm(void)
{
    double p[] = { 0.04, 0.02, 0.03 }, adj[3];
    st_holm(p, 3, adj);
    for (int i = 0; i < 3; i++) {
        CHECK(NEAR(adj[i], 0.06, 1e-12));
        /* unadjusted: each a regression; Holm: none */
        CHECK(st_verdict(10, 10, 100, 50, p[i], 1, 0.05, 5) == ST_SLOWER);
        CHECK(st_verdict(10, 10, 100, 50, adj[i], 1, 0.05, 5) == ST_SAME);
    }
    /* step-down: the smallest is multiplied by m, the next by m-1, monotone, capped at 1 */
    double q[] = { 0.01, 0.5, 0.011, 0.9 }, qa[4];
    st_holm(q, 4, qa);
    CHECK(NEAR(qa[0], 0.04, 1e-12) && NEAR(qa[2], 0.04, 1e-12) /* 3 x 0.011 = 0.033, raised to 0.04 */ && NEAR(qa[1], 1.0, 1e-12) &&
          NEAR(qa[3], 1.0, 1e-12));
    double one[] = { 0.03 }, oa[1];
    st_holm(one, 1, oa);
    CHECK(oa[0] == 0.03);
}

/* Brute force: every one of the 2^n sign assignments of the mid-ranks. */
static double wsr_brute_p(const double *d, size_t n)
{
    double v[16], rank[16];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i] != 0) v[m++] = d[i];
    for (size_t i = 0; i < m; i++) {
        double below = 0, eq = 0;
        for (size_t j = 0; j < m; j++) {
            below += fabs(v[j]) < fabs(v[i]);
            eq += fabs(v[j]) == fabs(v[i]);
        }
        rank[i] = below + (eq + 1) / 2;
    }
    double w = 0;
    for (size_t i = 0; i < m; i++)
        if (v[i] > 0) w += rank[i];
    double le = 0, ge = 0, tot = 0;
    for (unsigned mask = 0; mask < (1u << m); mask++) {
        double s = 0;
        for (size_t i = 0; i < m; i++)
            if (mask >> i & 1) s += rank[i];
        tot++;
        le += s <= w + 1e-9;
        ge += s >= w - 1e-9;
    }
    double p = 2 * (le < ge ? le : ge) / tot;
    return p > 1 ? 1 : p;
}

static void test_wilcoxon(void)
{
    st_wsr r;
    double a[] = { -1, 2, 3, 4, 5 };     /* W+ = 14 of 15: P(W+ >= 14) = 2/32 */
    st_wilcoxon_signed_rank(a, 5, &r);
    CHECK(r.exact && r.n == 5 && NEAR(r.w_plus, 14, 1e-12) && NEAR(r.p, 4.0 / 32, 1e-12));
    CHECK(NEAR(r.var, 5.0 * 6 * 11 / 24, 1e-12));     /* n(n+1)(2n+1)/24 without ties */
    double tied[] = { 1, -1, 2 };                       /* mid-ranks 1.5, 1.5, 3: (2.25 + 2.25 + 9) / 4 */
    st_wilcoxon_signed_rank(tied, 3, &r);
    CHECK(NEAR(r.var, 13.5 / 4, 1e-12));
    double pos[10];
    for (int i = 0; i < 10; i++) pos[i] = 0.01 * (i + 1);
    st_wilcoxon_signed_rank(pos, 10, &r);
    CHECK(NEAR(r.p, 2.0 / 1024, 1e-12) && NEAR(st_wsr_min_p(10), 2.0 / 1024, 1e-15));
    double z[] = { 0, 0, 0 };            /* zeros carry no sign: no evidence */
    st_wilcoxon_signed_rank(z, 3, &r);
    CHECK(r.n == 0 && r.p == 1);
    /* symmetric: flipping every sign gives the same p */
    double b[] = { 0.3, -0.1, 0.2, 0.5, -0.4, 0.6, 0.7 }, nb[7];
    for (int i = 0; i < 7; i++) nb[i] = -b[i];
    st_wsr r2;
    st_wilcoxon_signed_rank(b, 7, &r);
    st_wilcoxon_signed_rank(nb, 7, &r2);
    CHECK(NEAR(r.p, r2.p, 1e-12));
    /* the DP against brute force, with ties and zeros (values from a small set) */
    unsigned seed = 7;
    int agree = 1;
    for (int t = 0; t < 300; t++) {
        size_t n = 1 + (size_t)(t % 12);
        double d[16];
        for (size_t i = 0; i < n; i++) d[i] = (double)((int)(noise(&seed) * 4.5));
        st_wilcoxon_signed_rank(d, n, &r);
        if (!NEAR(r.p, wsr_brute_p(d, n), 1e-9)) agree = 0;
    }
    CHECK(agree);
    /* normal approximation beyond the exact range: a clear shift is tiny, none is not */
    double big[400];
    for (int i = 0; i < 400; i++) big[i] = 0.05 + 0.1 * noise(&seed);
    st_wilcoxon_signed_rank(big, 400, &r);
    CHECK(!r.exact && r.p < 1e-6);
    for (int i = 0; i < 400; i++) big[i] = (i % 2 ? 1 : -1) * (1 + i / 2);
    st_wilcoxon_signed_rank(big, 400, &r);
    CHECK(!r.exact && r.p > 0.5);
}

int main(void)
{
    test_summary();
    test_mwu_exact();
    test_mwu_normal();
    test_verdicts();
    test_holm();
    test_wilcoxon();
    printf("test_stats: %d checks, %d failed\n", checks, fails);
    return fails != 0;
}
