/*
 * cpbench ab BIN_A BIN_B [ab options] [run options]: an interleaved A/B of
 * two cpbench builds (or one build twice: an A/A), the regression gate for a
 * noisy machine.
 *
 * Why: on these VMs the host moves the vCPUs between placements every few
 * seconds, so repetitions inside one invocation are correlated, and two
 * invocations of one build minutes apart differ by more than a real 5%
 * regression. A test that treats repetitions as independent cries wolf
 * (Kalibera and Jones, "Rigorous benchmarking in reasonable time", 2013:
 * the unit of replication is the invocation).
 *
 * How: the run options are enumerated into configurations exactly as a
 * normal run would (hw_configs_build). Each round visits every configuration
 * in a seeded random order and runs it once on each side, back to back, as
 * two fresh processes (`BIN --pattern=.. --impl=.. <knobs> --repeat=1`), in
 * a random order within the pair. A round's pair therefore shares the
 * machine's state of that moment (placement, load, frequency), and the
 * random order makes A and B exchangeable under "no difference": the sign
 * of log(B/A) is then a fair coin, whatever the drift, so the Wilcoxon
 * signed-rank test on the per-round log ratios is exact (stats.h). The
 * p-values of every (configuration, metric) are Holm-corrected together and
 * a change is a verdict only when significant and at least --threshold
 * large, as in compare. Separate processes rather than one scheduler: the
 * two sides may be different revisions, and only their command line is
 * common to both; a fresh process per run costs about 30 ms here.
 *
 * Outputs: the table on stdout; DIR/a.csv and DIR/b.csv hold every row of
 * each side (rep = the round; each row its own invocation and unit), which
 * plot.py and compare read. Exit: 0 no significant regression, 1 a
 * regression or a failed run (FAIL, watchdog), 2 bad input; a signal stops
 * after the current pair and analyses the complete rounds (128 + signal).
 */
#define _GNU_SOURCE
#include "harness/csvio.h"
#include "harness/harness.h"
#include "harness/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define AB_MAX_METRICS 8
#define AB_MAX_ARGS 96

__attribute__((noreturn, format(printf, 1, 2))) static void ab_bad(const char *fmt, ...)
{
    va_list ap;
    fputs("cpbench ab: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void usage(FILE *f)
{
    fputs("usage: cpbench ab BIN_A BIN_B [--rounds=N] [--alpha=A] [--threshold=PCT] [--metric=M,...]\n"
          "       cpbench ab --analyze=DIR [--alpha=A] [--threshold=PCT] [--metric=M,...]\n"
          "                 [--out=DIR] [run options: --suite=quick | --pattern=... knobs, --set, --impl, ...]\n"
          "  runs two cpbench binaries (or one twice: an A/A) alternately: each round runs every\n"
          "  configuration once per side, back to back as fresh processes, in a seeded random order\n"
          "  (configurations shuffled, A/B order within each pair a coin flip), then tests the paired\n"
          "  per-round log ratios B/A with the Wilcoxon signed-rank test, Holm-corrected over every\n"
          "  configuration x metric.\n"
          "  --rounds      rounds (default 24; a verdict needs 2/2^rounds x tests < alpha, and power\n"
          "                to see a 10% regression through this VM's noise needs about 24)\n"
          "  --alpha       family-wise significance level (default 0.05)\n"
          "  --threshold   smallest change of the median ratio, in percent, worth a verdict (default 5)\n"
          "  --metric      CSV columns or pattern metrics to test (default ops_per_sec,p99_ns);\n"
          "                ops_per_sec, ops, ops_per_cpu_s, fair_min_ops: higher is better, others lower\n"
          "  --out         directory for a.csv and b.csv, every row of each side (default: a new\n"
          "                ./cpbench-ab.XXXXXX); existing files there are never replaced\n"
          "  --seed        the schedule's seed, also passed to every run (default 1)\n"
          "  --analyze=DIR the tests again over DIR/a.csv and DIR/b.csv of an earlier run (rows paired\n"
          "                by configuration and round), e.g. with another --metric or --threshold\n"
          "  --warmup      warm-up runs inside each process (default 0: the pairing cancels what\n"
          "                a cold start costs both sides)\n"
          "  not accepted: --repeat (use --rounds), --interleave, --csv, --json, --hgrm\n"
          "exit status: 0 no significant regression, 1 a regression or a failed run, 2 bad input\n",
          f);
}

/* A number in [lo, hi) (lo_open: (lo, hi)). */
static double parse_num(const char *flag, const char *s, double lo, double hi, int lo_open)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(lo_open ? v > lo : v >= lo) || !(v < hi))
        ab_bad("--%s: '%s' is not a number in %s%g, %g)", flag, s, lo_open ? "(" : "[", lo, hi);
    return v;
}

static volatile sig_atomic_t ab_signal;
static volatile pid_t ab_child;
static void on_signal(int sig)
{
    if (!ab_signal) ab_signal = sig;
    pid_t c = ab_child;
    if (c > 0) kill(c, SIGTERM);    /* a signal sent to ab alone ends the run it waits for */
}

/* The command line of one run of configuration c on either side. */
typedef struct argv_buf {
    char *v[AB_MAX_ARGS + 1];
    char store[8192];
    size_t n, used;
} argv_buf;

static void add_arg(argv_buf *a, const char *fmt, ...)
{
    if (a->n >= AB_MAX_ARGS) ab_bad("too many arguments for one run");
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(a->store + a->used, sizeof a->store - a->used, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof a->store - a->used) ab_bad("a run's command line is too long");
    a->v[a->n++] = a->store + a->used;
    a->used += (size_t)k + 1;
    a->v[a->n] = NULL;
}

static void run_args(argv_buf *a, const char *bin, const hw_opts *o, const hw_config *c, const char *csv)
{
    a->n = a->used = 0;
    add_arg(a, "%s", bin);
    add_arg(a, "--pattern=%s", c->w->name);
    add_arg(a, "--impl=%s", hw_impl_name(c->cfg.b));
    for (int i = 0; i < K_NKNOBS; i++) {
        int64_t k = wl_knob_get(&c->cfg.k, i);
        if (k == WL_UNUSED || (hw_knobs[i].show == WL_KS_COUNT && c->cfg.duration > 0)) continue;
        add_arg(a, "--%s=%lld", hw_knob_flag[i], (long long)k);
    }
    int j = 0;
    for (const wl_param *p = c->w->params; p->key; p++, j++)
        add_arg(a, "--set=%s=%lld", p->key, (long long)c->cfg.set[j]);
    if (c->cfg.variant) add_arg(a, "--variant=%s", hw_variant_name(c->w, c->cfg.variant));
    if (c->cfg.duration > 0) add_arg(a, "--duration=%.9g", c->cfg.duration);
    if (c->cfg.rate > 0) add_arg(a, "--rate=%.0f", c->cfg.rate);
    add_arg(a, "--lat-sample=%lld", (long long)o->lat_sample);
    add_arg(a, "--seed=%llu", (unsigned long long)o->seed);
    add_arg(a, "--timeout=%.9g", o->timeout);
    add_arg(a, "--pin=%s", o->pin);
    add_arg(a, "--placement-split=%.0f", o->placement_split);
    if (o->table_dispatch) add_arg(a, "--dispatch=table");
    add_arg(a, "--repeat=1");
    add_arg(a, "--warmup=%lld", (long long)o->warmup);
    add_arg(a, "--quiet");
    add_arg(a, "--csv=%s", csv);
}

/* Runs one process; its stdout is dropped (--quiet prints nothing there but
 * notes), its stderr goes to errpath. Returns the exit status, or 128 + the
 * signal that ended it. */
static int run_child(char *const *argv, const char *errpath)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "cpbench ab: fork: %s\n", strerror(errno));
        exit(1);
    }
    if (!pid) {
        int null = open("/dev/null", O_WRONLY), err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (null < 0 || err < 0 || dup2(null, 1) < 0 || dup2(err, 2) < 0) _exit(127);
        execv(argv[0], argv);
        fprintf(stderr, "cpbench ab: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    ab_child = pid;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "cpbench ab: waitpid: %s\n", strerror(errno));
            exit(1);
        }
    ab_child = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void show_file(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) fprintf(stderr, "%s%s", prefix, line);
    fclose(f);
}

/* One side: its binary, its CSV, and what its runs measured. */
typedef struct ab_side {
    const char *bin;
    char name;              /* 'A' or 'B' */
    FILE *csv;
    char *header;           /* the first run's CSV header line (all runs of a side must agree) */
    int mcol[AB_MAX_METRICS];   /* -1: the metric is a name in the metrics column */
    int xcol;                   /* the metrics column, -1 if none */
    char git_rev[64];
    int shown_notes;        /* its first run's stderr was shown */
    int header_written;     /* with the first complete pair */
} ab_side;


/* Reads the one row a run wrote; returns its fields with rep set to round.
 * Values: NAN where the metric column is empty. */
static void read_run(ab_side *s, const char *path, int round, const char *const *metric, int nmetric,
                     double *val, char *row, size_t rowcap)
{
    hw_csv r;
    hw_csv_rec hdr = { 0 }, rec = { 0 };
    hw_csv_load(&r, path, 2 + (s->name == 'B'), "cpbench ab");
    if (!hw_csv_next(&r, &hdr) || !hw_csv_next(&r, &rec))
        ab_bad("%s (side %c) wrote no row to %s", s->bin, s->name, path);
    if (rec.n != hdr.n) ab_bad("%s (side %c): malformed row in %s", s->bin, s->name, path);
    /* the header line, as the run wrote it */
    size_t hl = strcspn(r.buf, "\r\n");
    if (!s->header) {
        s->header = strndup(r.buf, hl);
        if (!s->header) ab_bad("out of memory");
        s->xcol = hw_csv_col(&hdr, "metrics");
        for (int m = 0; m < nmetric; m++)
            if ((s->mcol[m] = hw_csv_col(&hdr, metric[m])) < 0 && s->xcol < 0)
                ab_bad("%s (side %c) writes no column '%s'", s->bin, s->name, metric[m]);
        int gc = hw_csv_col(&hdr, "git_rev");
        if (gc >= 0) snprintf(s->git_rev, sizeof s->git_rev, "%s", rec.f[gc]);
    } else if (strlen(s->header) != hl || strncmp(s->header, r.buf, hl)) {
        ab_bad("%s (side %c): its runs wrote different CSV headers", s->bin, s->name);
    }
    for (int m = 0; m < nmetric; m++) {
        if (s->mcol[m] < 0) {
            if (hw_csv_metric(rec.f[s->xcol], metric[m], &val[m])) val[m] = NAN;
            continue;
        }
        const char *t = rec.f[s->mcol[m]];
        if (!*t) val[m] = NAN;
        else if (hw_csv_number(t, &val[m])) ab_bad("%s (side %c): %s '%s' is not a number", s->bin, s->name, metric[m], t);
    }
    /* the row again, rep replaced by the round */
    int rc = hw_csv_col(&hdr, "rep");
    FILE *mem = fmemopen(row, rowcap, "w");
    if (!mem) ab_bad("out of memory");
    for (size_t i = 0; i < rec.n; i++) {
        if (i) fputc(',', mem);
        if ((int)i == rc) fprintf(mem, "%d", round);
        else hw_csv_field(mem, rec.f[i]);
    }
    fputc('\n', mem);
    if (fclose(mem) || strlen(row) + 1 >= rowcap) ab_bad("%s (side %c): a row too long", s->bin, s->name);
    hw_csv_rec_free(&hdr);
    hw_csv_rec_free(&rec);
}

static FILE *create_new(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        if (errno == EEXIST) ab_bad("--out: %s exists (never replaced; choose another --out)", path);
        ab_bad("--out: cannot create %s (%s)", path, strerror(errno));
    }
    FILE *f = fdopen(fd, "w");
    if (!f) ab_bad("--out: cannot open %s", path);
    return f;
}

/* What the rounds measured: values[((round * ncfg + ci) * 2 + side) * nmetric
 * + m] (NAN: no value), done[round * ncfg + ci]: the pair is complete. */
typedef struct ab_data {
    size_t ncfg;
    long rounds;
    int nmetric;
    const char *const *metric;
    const char **pattern, **impl, **label;     /* per configuration */
    double *values;
    int *done;
} ab_data;

typedef struct abt {
    size_t ci;              /* the configuration; ncfg: the suite test */
    int m, verdict;
    size_t n;
    double med_a, med_b, ratio, lo, hi, p, p_adj;
    int has_ci;
} abt;

/* The tests and the table. Per (configuration, metric): the exact Wilcoxon
 * signed-rank test of the per-round log ratios. Per metric, over the whole
 * suite: the stratified signed-rank test (van Elteren): the sum over the
 * configurations of W+ minus its null mean, over the root of the summed
 * null variances, is normal under the null (every pair's sign an
 * independent fair coin, as the random A/B order makes it), and it sees a
 * regression that moves every configuration a little, which no single
 * configuration shows through this VM's noise; its ratio is the geometric
 * mean of the configurations' median ratios. All p-values are Holm-corrected
 * together. Prints the table and footer; *slower: verdicts "slower";
 * *nodata: (configuration, metric) without values. */
static void analyze(const ab_data *D, double alpha, double threshold, int any_round, size_t *slower, size_t *nodata)
{
    size_t ncfg = D->ncfg, nmetric = (size_t)D->nmetric, R = (size_t)D->rounds;
    abt *t = calloc(ncfg * nmetric + nmetric + 1, sizeof *t);
    double *d = malloc((R + 1) * sizeof *d), *va = malloc((R + 1) * sizeof *va), *vb = malloc((R + 1) * sizeof *vb);
    if (!t || !d || !va || !vb) ab_bad("out of memory");
    size_t nt = 0;
    *nodata = 0;
    for (size_t m = 0; m < nmetric; m++) {
        double S = 0, V = 0, logsum = 0;
        size_t npairs = 0, ncfgs = 0;
        for (size_t ci = 0; ci < ncfg; ci++) {
            size_t n = 0;
            for (size_t r = 0; r < R; r++) {
                if (!D->done[r * ncfg + ci]) continue;
                double a = D->values[((r * ncfg + ci) * 2) * nmetric + m];
                double b = D->values[((r * ncfg + ci) * 2 + 1) * nmetric + m];
                if (!(a > 0) || !(b > 0)) continue;     /* empty (NAN) or zero: no ratio */
                va[n] = a, vb[n] = b, d[n++] = log(b / a);
            }
            if (!n) {
                *nodata += any_round;
                continue;
            }
            abt *x = &t[nt++];
            x->ci = ci, x->m = (int)m, x->n = n;
            x->med_a = st_median(va, n), x->med_b = st_median(vb, n);
            x->ratio = exp(st_median(d, n));
            st_sort(d, n);
            size_t lo, hi;
            if ((x->has_ci = st_median_ci_ranks(n, 0.95, &lo, &hi, NULL)))
                x->lo = exp(d[lo - 1]), x->hi = exp(d[hi - 1]);
            st_wsr w;
            st_wilcoxon_signed_rank(d, n, &w);
            x->p = w.p;
            S += w.w_plus - (double)w.n * (double)(w.n + 1) / 4;
            V += w.var;
            npairs += n, ncfgs++, logsum += log(x->ratio);
        }
        if (ncfgs > 1) {    /* the suite test of this metric */
            abt *x = &t[nt++];
            x->ci = ncfg, x->m = (int)m, x->n = npairs;
            x->ratio = exp(logsum / (double)ncfgs);
            double z = V > 0 ? (fabs(S) - 0.5 > 0 ? fabs(S) - 0.5 : 0) / sqrt(V) : 0;
            x->p = V > 0 ? erfc(z / M_SQRT2) : 1;
        }
    }
    double *ps = malloc((nt + 1) * sizeof *ps), *adj = malloc((nt + 1) * sizeof *adj);
    if (!ps || !adj) ab_bad("out of memory");
    for (size_t i = 0; i < nt; i++) ps[i] = t[i].p;
    st_holm(ps, nt, adj);
    size_t cnt[4] = { 0 };
    for (size_t i = 0; i < nt; i++) {
        abt *x = &t[i];
        x->p_adj = adj[i];
        double ch = (x->ratio - 1) * 100;
        int hb = hw_csv_higher_is_better(D->metric[x->m]);
        if (x->ci < ncfg ? st_wsr_min_p(x->n) * (double)nt >= alpha : x->n < 6) x->verdict = ST_INCONCLUSIVE;
        else if (x->p_adj < alpha && fabs(ch) >= threshold && ch != 0)
            x->verdict = (ch > 0) == hb ? ST_FASTER : ST_SLOWER;
        else x->verdict = ST_SAME;
        cnt[x->verdict]++;
    }
    printf("%-11s %-9s %-44s %-12s %9s %9s %4s %8s %-17s %8s %8s  %s\n", "pattern", "impl", "config", "metric", "A",
           "B", "n", "B/A", " [95% CI]", "p", "p(holm)", "verdict");
    for (size_t i = 0; i < nt; i++) {
        abt *x = &t[i];
        const char *mt = D->metric[x->m];
        char a[16] = "-", b[16] = "-", ci[40] = " -";
        size_t l = strlen(mt);
        int is_ns = l > 3 && !strcmp(mt + l - 3, "_ns");
        if (x->ci < ncfg) {
            if (is_ns) hw_ns(x->med_a, a, sizeof a), hw_ns(x->med_b, b, sizeof b);
            else hw_si(x->med_a, a, sizeof a), hw_si(x->med_b, b, sizeof b);
        }
        if (x->has_ci) snprintf(ci, sizeof ci, " [%.3f .. %.3f]", x->lo, x->hi);
        char all[64];
        snprintf(all, sizeof all, "all %zu configurations (stratified)", ncfg);
        printf("%-11s %-9s %-44.44s %-12s %9s %9s %4zu %8.3f %-17s %8.3g %8.3g  %s\n",
               x->ci < ncfg ? D->pattern[x->ci] : "(suite)", x->ci < ncfg ? D->impl[x->ci] : "-",
               x->ci < ncfg ? D->label[x->ci] : all, mt, a, b, x->n, x->ratio, ci, x->p, x->p_adj,
               st_verdict_str(x->verdict));
    }
    size_t need = 2;
    while (need < 64 && st_wsr_min_p(need) * (double)(nt ? nt : 1) >= alpha) need++;
    printf("\nverdict: faster/slower only when the Holm-adjusted p < %g (over %zu tests) and the ratio B/A is\n"
           "  at least %g%% away from 1; ~ otherwise; inconclusive when n rounds cannot reach it (n pairs\n"
           "  reach at best p = 2/2^n: with %zu tests a configuration's verdict needs >= %zu rounds).\n"
           "  B/A: median over the rounds of B's value / A's value, with the 95%% CI of that median (order\n"
           "  statistics); p: two-sided Wilcoxon signed-rank test of the per-round log ratios, exact.\n"
           "  (suite): every configuration's signed ranks summed (stratified, normal approximation; B/A the\n"
           "  geometric mean of the configurations' median ratios): a change spread over the suite.\n",
           alpha, nt, threshold, nt, need);
    printf("\nab: %zu tests: %zu slower, %zu faster, %zu ~, %zu inconclusive\n", nt, cnt[ST_SLOWER], cnt[ST_FASTER],
           cnt[ST_SAME], cnt[ST_INCONCLUSIVE]);
    if (*nodata) printf("ab: %zu (configuration, metric) without values (empty column on a side)\n", *nodata);
    *slower = cnt[ST_SLOWER];
    free(t), free(d), free(va), free(vb), free(ps), free(adj);
}

/* --analyze=DIR: the tests again over DIR/a.csv and DIR/b.csv of an earlier
 * run (another --metric, --alpha or --threshold, or a run that was cut
 * short), pairing the rows of the two files by configuration and round. */
#define KEY_COL(ID, field, ...) #field,
static const char *const key_cols[] = { "pattern", "impl", "dispatch", WL_KNOB_LIST(KEY_COL) "duration_s", "params",
                                        "lat_sample", "variant" };
#undef KEY_COL
enum { NKEY = sizeof key_cols / sizeof key_cols[0] };

static int analyze_dir(const char *dir, const char *const *metric, int nmetric, double alpha, double threshold)
{
    static char path[2][4200];
    ab_data D = { .nmetric = nmetric, .metric = metric };
    char **keys = NULL;
    size_t cap = 0, nrows[2] = { 0, 0 };
    long rounds = 0;
    /* two passes: the configurations and rounds, then the values */
    for (int pass = 0; pass < 2; pass++)
        for (int sd = 0; sd < 2; sd++) {
            snprintf(path[sd], sizeof path[sd], "%s/%c.csv", dir, sd ? 'b' : 'a');
            hw_csv r;
            hw_csv_rec hdr = { 0 }, rec = { 0 };
            hw_csv_load(&r, path[sd], 2 + sd, "cpbench ab");
            if (!hw_csv_next(&r, &hdr)) ab_bad("%s: empty (expected the CSV of an ab run)", path[sd]);
            int kc[NKEY], mc[AB_MAX_METRICS], rc = hw_csv_col(&hdr, "rep"), sc = hw_csv_col(&hdr, "status");
            int xc = hw_csv_col(&hdr, "metrics");
            for (int i = 0; i < NKEY; i++)
                if ((kc[i] = hw_csv_col(&hdr, key_cols[i])) < 0 && i < NKEY - 1)
                    ab_bad("%s: no column '%s' (not a cpbench CSV?)", path[sd], key_cols[i]);
            if (rc < 0 || sc < 0) ab_bad("%s: no rep or status column", path[sd]);
            for (int m = 0; m < nmetric; m++)
                if ((mc[m] = hw_csv_col(&hdr, metric[m])) < 0 && xc < 0)
                    ab_bad("%s: no column '%s'", path[sd], metric[m]);
            while (hw_csv_next(&r, &rec)) {
                if (rec.n != hdr.n) ab_bad("%s:%ld: malformed row", path[sd], r.line);
                char key[2048];
                size_t kn = 0;
                for (int i = 0; i < NKEY; i++)
                    kn += (size_t)snprintf(key + kn, kn < sizeof key ? sizeof key - kn : 0, "%s\x1f",
                                           kc[i] >= 0 ? rec.f[kc[i]] : "default");
                if (kn >= sizeof key) ab_bad("%s:%ld: configuration columns too long", path[sd], r.line);
                double rv;
                if (hw_csv_number(rec.f[rc], &rv) || rv < 0 || rv > 100000)
                    ab_bad("%s:%ld: rep '%s' is not a round", path[sd], r.line, rec.f[rc]);
                long round = (long)rv;
                size_t ci = 0;
                while (ci < D.ncfg && strcmp(keys[ci], key)) ci++;
                if (pass == 0) {
                    if (strcmp(rec.f[sc], "OK")) {
                        printf("ab: %s:%ld: a run with status %s: %s\n", path[sd], r.line, rec.f[sc], key);
                        return 1;
                    }
                    nrows[sd]++;
                    if (round + 1 > rounds) rounds = round + 1;
                    if (ci < D.ncfg || sd) continue;    /* B's configurations must be A's */
                    if (D.ncfg == cap) {
                        cap = cap ? 2 * cap : 32;
                        keys = realloc(keys, cap * sizeof *keys);
                        D.pattern = realloc(D.pattern, cap * sizeof *D.pattern);
                        D.impl = realloc(D.impl, cap * sizeof *D.impl);
                        D.label = realloc(D.label, cap * sizeof *D.label);
                        if (!keys || !D.pattern || !D.impl || !D.label) ab_bad("out of memory");
                    }
                    char lbl[600];
                    size_t ln = 0;
                    static const char *const shortn[NKEY] = { 0, 0, 0, "T", "P", "C", "cap", "payload", "work",
                                                              "items", "dur", "", "lat_sample", "variant" };
                    for (int i = 3; i < NKEY && ln < sizeof lbl; i++)
                        if (kc[i] >= 0 && *rec.f[kc[i]] && !(i == 8 && !strcmp(rec.f[kc[i]], "0")) &&
                            !(i == 13 && !strcmp(rec.f[kc[i]], "default")))
                            ln += (size_t)snprintf(lbl + ln, sizeof lbl - ln, "%s%s%s%s", ln ? " " : "", shortn[i],
                                                   *shortn[i] ? "=" : "", rec.f[kc[i]]);
                    keys[D.ncfg] = strdup(key);
                    D.pattern[D.ncfg] = strdup(rec.f[kc[0]]);
                    D.impl[D.ncfg] = strdup(rec.f[kc[1]]);
                    D.label[D.ncfg] = strdup(ln ? lbl : "");
                    D.ncfg++;
                    continue;
                }
                if (ci == D.ncfg) continue;     /* only in B: no pair */
                for (int m = 0; m < nmetric; m++) {
                    double v = NAN;
                    if (mc[m] >= 0 ? *rec.f[mc[m]] && hw_csv_number(rec.f[mc[m]], &v) : hw_csv_metric(rec.f[xc], metric[m], &v) < 0)
                        ab_bad("%s:%ld: %s is not a number", path[sd], r.line, metric[m]);
                    D.values[(((size_t)round * D.ncfg + ci) * 2 + (size_t)sd) * (size_t)nmetric + (size_t)m] = v;
                }
                D.done[(size_t)round * D.ncfg + ci] |= 1 << sd;
            }
            hw_csv_rec_free(&hdr);
            hw_csv_rec_free(&rec);
            if (pass == 0 && sd == 1) {
                if (!D.ncfg) ab_bad("%s: no rows", path[0]);
                D.rounds = rounds;
                size_t nv = (size_t)rounds * D.ncfg * 2 * (size_t)nmetric;
                D.values = malloc(nv * sizeof *D.values);
                D.done = calloc((size_t)rounds * D.ncfg, sizeof *D.done);
                if (!D.values || !D.done) ab_bad("out of memory");
                for (size_t i = 0; i < nv; i++) D.values[i] = NAN;
            }
        }
    size_t complete = 0;
    for (size_t i = 0; i < (size_t)rounds * D.ncfg; i++) {
        D.done[i] = D.done[i] == 3;     /* both sides */
        complete += (size_t)D.done[i];
    }
    printf("cpbench ab --analyze=%s: %zu + %zu rows, %zu configurations, %ld rounds, %zu complete pairs\n\n", dir,
           nrows[0], nrows[1], D.ncfg, rounds, complete);
    size_t slower = 0, nodata = 0;
    analyze(&D, alpha, threshold, 1, &slower, &nodata);
    for (size_t ci = 0; ci < D.ncfg; ci++)
        free(keys[ci]), free((char *)D.pattern[ci]), free((char *)D.impl[ci]), free((char *)D.label[ci]);
    free(keys), free(D.pattern), free(D.impl), free(D.label), free(D.values), free(D.done);
    return slower || nodata ? 1 : 0;
}

int hw_ab_main(int argc, char **argv)
{
    const char *bins[2] = { NULL, NULL }, *out = NULL, *metric_arg = "ops_per_sec,p99_ns", *analyze_arg = NULL;
    long rounds = 24;
    double alpha = 0.05, threshold = 5;
    int has_warmup = 0;
    static char *run_argv[512];
    int run_argc = 0;
    run_argv[run_argc++] = "cpbench";
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2)) {
            if (bins[1]) ab_bad("unexpected argument '%s' (expected BIN_A BIN_B, then flags; see --help)", a);
            bins[bins[0] ? 1 : 0] = a;
            continue;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, a + 2, len);
        name[len] = 0;
        static const char *const own[] = { "rounds", "alpha", "threshold", "metric", "out", "analyze" };
        static const char *const refused[] = { "repeat", "interleave", "csv", "json", "hgrm", "list" };
        for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++)
            if (!strcmp(name, refused[k]))
                ab_bad("--%s: not with ab (%s)", name,
                       k == 0 ? "use --rounds" : k == 1 ? "ab interleaves by itself" : k == 5 ? "see cpbench --list"
                                                                                    : "ab writes DIR/a.csv and DIR/b.csv: see --out");
        int is_own = 0;
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) is_own |= !strcmp(name, own[k]);
        if (!is_own) {
            if (!strcmp(name, "warmup")) has_warmup = 1;
            if (run_argc >= 500) ab_bad("too many arguments");
            run_argv[run_argc++] = a;
            /* a flag's value in the next argument travels with it */
            if (!eq && strcmp(name, "quiet") && i + 1 < argc && strncmp(argv[i + 1], "--", 2))
                run_argv[run_argc++] = argv[++i];
            continue;
        }
        const char *val = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!val) ab_bad("--%s: missing value", name);
        if (!strcmp(name, "rounds")) rounds = (long)hw_parse_one("rounds", val, 2, 10000);
        else if (!strcmp(name, "alpha")) alpha = parse_num(name, val, 0, 1, 1);
        else if (!strcmp(name, "threshold")) threshold = parse_num(name, val, 0, 1e6, 0);
        else if (!strcmp(name, "metric")) metric_arg = val;
        else if (!strcmp(name, "analyze")) {
            if (!*val) ab_bad("--analyze: empty directory name");
            analyze_arg = val;
        } else if (!strcmp(name, "out")) {
            if (!*val) ab_bad("--out: empty directory name");
            out = val;
        }
    }
    /* the metrics */
    static char mbuf[512];
    const char *metric[AB_MAX_METRICS];
    int nmetric = 0;
    if (!*metric_arg || strlen(metric_arg) >= sizeof mbuf) ab_bad("--metric: expected CSV columns like ops_per_sec,p99_ns");
    strcpy(mbuf, metric_arg);
    for (char *save, *t = strtok_r(mbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (nmetric == AB_MAX_METRICS) ab_bad("--metric: more than %d metrics", AB_MAX_METRICS);
        for (int k = 0; k < nmetric; k++)
            if (!strcmp(metric[k], t)) ab_bad("--metric: '%s' given twice", t);
        metric[nmetric++] = t;
    }
    if (!nmetric) ab_bad("--metric: expected CSV columns like ops_per_sec,p99_ns");

    if (analyze_arg) {
        if (bins[0] || run_argc > 1) ab_bad("--analyze: takes no binaries and no run options, only --metric, --alpha, --threshold");
        return analyze_dir(analyze_arg, metric, nmetric, alpha, threshold);
    }
    if (!bins[1]) ab_bad("expected two cpbench binaries: BIN_A BIN_B (see --help)");
    for (int s = 0; s < 2; s++)
        if (access(bins[s], X_OK)) ab_bad("%s: not an executable (%s)", bins[s], strerror(errno));
    if (!has_warmup) run_argv[run_argc++] = "--warmup=0";

    /* the configurations, exactly as a normal run enumerates them */
    static hw_opts o;
    int want_list = 0, want_help = 0;
    hw_parse(run_argc, run_argv, &o, &want_list, &want_help);
    if (want_help) {
        usage(stdout);
        return 0;
    }
    size_t ncfg;
    hw_config *cfgs = hw_configs_build(&o, &ncfg);
    if (!ncfg) ab_bad("no configuration to run");

    /* the output directory and files (never replacing anything) */
    static char dir[4096], path_a[4200], path_b[4200], tmp_csv[4200], tmp_err[4200];
    if (out) {
        snprintf(dir, sizeof dir, "%s", out);
        if (mkdir(dir, 0755) && errno != EEXIST) ab_bad("--out: cannot create %s (%s)", dir, strerror(errno));
        struct stat st;
        if (stat(dir, &st) || !S_ISDIR(st.st_mode)) ab_bad("--out: %s is not a directory", dir);
    } else {
        snprintf(dir, sizeof dir, "cpbench-ab.XXXXXX");
        if (!mkdtemp(dir)) ab_bad("cannot create a directory for the CSVs here (%s); pass --out", strerror(errno));
    }
    snprintf(path_a, sizeof path_a, "%s/a.csv", dir);
    snprintf(path_b, sizeof path_b, "%s/b.csv", dir);
    snprintf(tmp_csv, sizeof tmp_csv, "%s/.run.csv", dir);
    snprintf(tmp_err, sizeof tmp_err, "%s/.run.err", dir);
    ab_side side[2] = { { .bin = bins[0], .name = 'A' }, { .bin = bins[1], .name = 'B' } };
    side[0].csv = create_new(path_a);
    side[1].csv = create_new(path_b);

    /* values[((round * ncfg) + ci) * 2 + side][metric] */
    size_t nval = (size_t)rounds * ncfg * 2 * (size_t)nmetric;
    double *values = malloc(nval * sizeof *values);
    int *done = calloc((size_t)rounds * ncfg, sizeof *done);
    size_t *order = malloc(ncfg * sizeof *order);
    if (!values || !done || !order) ab_bad("out of memory");

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    double load;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (getloadavg(&load, 1) == 1 && load > 0.5 * (double)ncpu)
        fprintf(stderr, "cpbench ab: warning: load average %.2f on %ld cpus at start (the pairing absorbs drift,"
                        " but noise costs power)\n", load, ncpu);
    int progress = isatty(2);
    uint64_t rng = o.seed * 0x9e3779b97f4a7c15ull + 0xab;
    uint64_t t0 = cp_now_ns();
    int rc_fail = 0, rounds_done = 0;
    static char row[2][16384];
    argv_buf args;
    for (long r = 0; r < rounds && !ab_signal && !rc_fail; r++) {
        for (size_t i = 0; i < ncfg; i++) order[i] = i;
        for (size_t k = ncfg; k > 1; k--) {     /* Fisher-Yates over this round */
            rng = wl_mix(rng);
            size_t j = (size_t)(rng % k), t = order[k - 1];
            order[k - 1] = order[j];
            order[j] = t;
        }
        for (size_t oi = 0; oi < ncfg && !ab_signal && !rc_fail; oi++) {
            size_t ci = order[oi];
            const hw_config *c = &cfgs[ci];
            rng = wl_mix(rng);
            int first = (int)(rng >> 63);   /* which side runs first in this pair */
            double val[2][AB_MAX_METRICS];
            int ok = 1;
            for (int k = 0; k < 2 && ok; k++) {
                int sdx = k ? !first : first;
                ab_side *s = &side[sdx];
                if (progress) {
                    double el = (double)(cp_now_ns() - t0) / 1e9;
                    size_t steps = (size_t)r * ncfg + oi, total = (size_t)rounds * ncfg;
                    fprintf(stderr, "\r[round %ld/%ld, %zu/%zu] %c: %s %s %.40s  elapsed %.0f s, about %.0f s left\033[K",
                            r + 1, rounds, oi + 1, ncfg, s->name, c->w->name, hw_impl_name(c->cfg.b), c->label,
                            el, steps ? el / (double)steps * (double)(total - steps) : 0.0);
                }
                unlink(tmp_csv);
                run_args(&args, s->bin, &o, c, tmp_csv);
                int rc = run_child(args.v, tmp_err);
                if (ab_signal) {
                    ok = 0;
                    break;
                }
                if (progress) fputs("\r\033[K", stderr);
                if (rc == 2 || rc == 127) {
                    show_file(tmp_err, "  ");
                    fprintf(stderr, "cpbench ab: %s (side %c) refused the run:", s->bin, s->name);
                    for (size_t q = 1; q < args.n - 1; q++) fprintf(stderr, " %s", args.v[q]);
                    fputc('\n', stderr);
                    exit(2);
                }
                if (rc) {
                    show_file(tmp_err, "  ");
                    fprintf(stderr, "cpbench ab: %s (side %c) failed on %s %s %s in round %ld (exit %d)\n", s->bin,
                            s->name, c->w->name, hw_impl_name(c->cfg.b), c->label, r, rc);
                    rc_fail = 1;
                    if (access(tmp_csv, R_OK)) break;
                }
                if (!s->shown_notes) {      /* notes a build prints once (e.g. a missing syscall) */
                    show_file(tmp_err, "");
                    s->shown_notes = 1;
                }
                read_run(s, tmp_csv, (int)r, metric, nmetric, val[sdx], row[sdx], sizeof row[sdx]);
            }
            if (!ok) break;
            /* both rows of a pair are written together: the CSVs never hold half a pair */
            for (int sdx = 0; sdx < 2; sdx++)
                if (row[sdx][0]) {
                    if (!side[sdx].header_written++) fprintf(side[sdx].csv, "%s\n", side[sdx].header);
                    fputs(row[sdx], side[sdx].csv);
                    fflush(side[sdx].csv);
                    row[sdx][0] = 0;
                }
            if (rc_fail) break;
            for (int sdx = 0; sdx < 2; sdx++)
                memcpy(&values[(((size_t)r * ncfg + ci) * 2 + (size_t)sdx) * (size_t)nmetric], val[sdx],
                       (size_t)nmetric * sizeof(double));
            done[(size_t)r * ncfg + ci] = 1;
        }
        if (!ab_signal && !rc_fail) rounds_done++;
    }
    if (progress) fputs("\r\033[K", stderr);
    unlink(tmp_csv);
    unlink(tmp_err);
    int write_err = 0;
    for (int s = 0; s < 2; s++) write_err |= ferror(side[s].csv) | (fclose(side[s].csv) != 0);
    if (write_err) {
        fprintf(stderr, "cpbench ab: write error on %s/a.csv or b.csv\n", dir);
        return 1;
    }

    ab_data D = { .ncfg = ncfg, .rounds = rounds, .nmetric = nmetric, .metric = metric, .values = values,
                  .done = done };
    D.pattern = malloc(ncfg * sizeof *D.pattern);
    D.impl = malloc(ncfg * sizeof *D.impl);
    D.label = malloc(ncfg * sizeof *D.label);
    if (!D.pattern || !D.impl || !D.label) ab_bad("out of memory");
    for (size_t ci = 0; ci < ncfg; ci++) {
        D.pattern[ci] = cfgs[ci].w->name;
        D.impl[ci] = hw_impl_name(cfgs[ci].cfg.b);
        char *l = malloc(600);
        if (!l) ab_bad("out of memory");
        snprintf(l, 600, "%s%s%s", cfgs[ci].label, cfgs[ci].params[0] ? " " : "", cfgs[ci].params);
        D.label[ci] = l;
    }
    printf("cpbench ab: A = %s (%s)   B = %s (%s)\n", bins[0], side[0].git_rev[0] ? side[0].git_rev : "?", bins[1],
           side[1].git_rev[0] ? side[1].git_rev : "?");
    printf("%d of %ld rounds x %zu configurations, each a fresh process per side, A/B order random per pair;"
           " %.0f s\n\n", rounds_done, rounds, ncfg, (double)(cp_now_ns() - t0) / 1e9);
    size_t slower = 0, nodata = 0;
    analyze(&D, alpha, threshold, rounds_done > 0, &slower, &nodata);
    printf("ab: CSVs: %s and %s\n", path_a, path_b);
    fflush(stdout);
    for (size_t ci = 0; ci < ncfg; ci++) free((char *)D.label[ci]);
    free(D.pattern), free(D.impl), free(D.label);
    free(values), free(done), free(order), free(cfgs);
    free(side[0].header), free(side[1].header);
    if (ab_signal) {
        printf("ab: interrupted by signal %d after %d complete rounds (the CSVs hold every complete pair)\n",
               (int)ab_signal, rounds_done);
        return 128 + ab_signal;
    }
    if (rc_fail) return 1;
    return slower || nodata ? 1 : 0;
}
