/*
 * cpbench compare BASE.csv NEW.csv: the regression gate.
 *
 * Rows (one per repetition, docs/csv.md) are grouped per configuration: the
 * pattern, impl, dispatch and every parameter column. Each configuration
 * present on both sides is compared per metric with a two-sided Mann-Whitney
 * U test over the units of replication (invocations or interleaved rounds:
 * repetitions that shared one process count once, as their median); the
 * p-values of all the tests are corrected together (Holm); a difference is
 * reported only when it is both significant and large. Files measured on
 * different machines are refused. Exit: 0 no significant regression, 1 at
 * least one "slower" or a broken NEW (missing configurations, FAIL rows,
 * a metric without values), 2 bad input.
 */
#include "harness/harness.h"
#include "harness/csvio.h"
#include "harness/stats.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define KEY_COL(ID, field, ...) #field,
#define KEY_SHORT(ID, field, flag, metavar, lo, hi, draw, label, ...) label,
static const char *const key_cols[] = {
    "pattern", "impl", "dispatch", WL_KNOB_LIST(KEY_COL) "duration_s", "params", "lat_sample",
};
enum { NKEY = sizeof key_cols / sizeof key_cols[0], MAX_METRICS = 16 };
/* how the params column shows a key column (index into key_cols, from 3) */
static const char *const key_short[NKEY] = {
    NULL, NULL, NULL, WL_KNOB_LIST(KEY_SHORT) "dur", "", "lat_sample",
};
#undef KEY_COL
#undef KEY_SHORT

__attribute__((noreturn, format(printf, 1, 2))) static void cmp_bad(const char *fmt, ...)
{
    va_list ap;
    fputs("cpbench compare: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (hw_bad_input_hook) hw_bad_input_hook();   /* the fuzz targets: longjmp, no exit */
    exit(2);
}

/* ---- one configuration's repetitions ---- */
typedef struct group {
    char *key;                  /* key columns joined by \x1f */
    char *pattern, *impl, *label;
    double *v[MAX_METRICS];
    size_t n[MAX_METRICS], cap[MAX_METRICS];
    char *far[MAX_METRICS];     /* per value: its repetition ran in the far placement */
    size_t *unit[MAX_METRICS];  /* per value: the index of its unit of replication in units */
    char **units;               /* the distinct units (docs/csv.md: unit) of this configuration */
    size_t nunits, capunits;
    size_t not_ok;              /* rows with status != OK */
    int paired;
} group;

/* The machine a file was measured on: these columns must agree on every row
 * of a side, and between the sides unless --allow-other-machine. */
static const char *const machine_cols[] = { "cpu_model", "cpus", "kernel", "compiler", "allocator" };
enum { NMACHINE = sizeof machine_cols / sizeof machine_cols[0] };

typedef struct side {
    const char *path;
    group *g;
    size_t ng, capg;
    size_t rows, not_ok, placement_dropped;
    char *machine[NMACHINE];    /* NULL: the file lacks the column */
    const char *unit_col;       /* "unit", or "timestamp" for files written before it existed */
} side;

static void push(group *g, int m, double x, char far, size_t unit)
{
    if (g->n[m] == g->cap[m]) {
        g->cap[m] = g->cap[m] ? 2 * g->cap[m] : 8;
        g->v[m] = realloc(g->v[m], g->cap[m] * sizeof(double));
        g->far[m] = realloc(g->far[m], g->cap[m]);
        g->unit[m] = realloc(g->unit[m], g->cap[m] * sizeof(size_t));
        if (!g->v[m] || !g->far[m] || !g->unit[m]) cmp_bad("out of memory");
    }
    g->far[m][g->n[m]] = far;
    g->unit[m][g->n[m]] = unit;
    g->v[m][g->n[m]++] = x;
}

static size_t unit_index(group *g, const char *u)
{
    for (size_t i = 0; i < g->nunits; i++)
        if (!strcmp(g->units[i], u)) return i;
    if (g->nunits == g->capunits) {
        g->capunits = g->capunits ? 2 * g->capunits : 16;
        g->units = realloc(g->units, g->capunits * sizeof *g->units);
        if (!g->units) cmp_bad("out of memory");
    }
    g->units[g->nunits] = strdup(u);
    if (!g->units[g->nunits]) cmp_bad("out of memory");
    return g->nunits++;
}

/* The unit of replication is the invocation (or an interleaved round), not
 * the repetition: repetitions that shared one process share its vCPU
 * placement and drift, so each unit contributes one value, the median of
 * its repetitions. */
static void collapse_units(side *s)
{
    for (size_t i = 0; i < s->ng; i++) {
        group *g = &s->g[i];
        for (int m = 0; m < MAX_METRICS; m++) {
            if (!g->n[m]) continue;
            double *tmp = malloc(g->n[m] * sizeof *tmp), *med = malloc(g->nunits * sizeof *med);
            if (!tmp || !med) cmp_bad("out of memory");
            size_t k = 0;
            for (size_t u = 0; u < g->nunits; u++) {
                size_t c = 0;
                for (size_t j = 0; j < g->n[m]; j++)
                    if (g->unit[m][j] == u) tmp[c++] = g->v[m][j];
                if (c) med[k++] = st_median(tmp, c);
            }
            memcpy(g->v[m], med, k * sizeof *med);
            g->n[m] = k;
            free(tmp);
            free(med);
        }
    }
}

/* --placement=strict, second half: within each configuration keep only the
 * repetitions that ran in the majority placement (near or far). */
static void keep_majority_placement(side *s)
{
    for (size_t i = 0; i < s->ng; i++)
        for (int m = 0; m < MAX_METRICS; m++) {
            group *g = &s->g[i];
            size_t nfar = 0, k = 0;
            for (size_t j = 0; j < g->n[m]; j++) nfar += g->far[m][j];
            char keep_far = 2 * nfar > g->n[m];
            for (size_t j = 0; j < g->n[m]; j++)
                if (g->far[m][j] == keep_far) g->unit[m][k] = g->unit[m][j], g->v[m][k++] = g->v[m][j];
            if (m == 0) s->placement_dropped += g->n[m] - k;
            g->n[m] = k;
        }
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) cmp_bad("out of memory");
    return d;
}

typedef struct opts {
    double alpha, threshold;
    const char *metric[MAX_METRICS];
    int nmetric;
    int strict;
    int allow_other_machine, allow_missing;
} opts;

static group *find_group(side *s, const char *key)
{
    for (size_t i = 0; i < s->ng; i++)
        if (!strcmp(s->g[i].key, key)) return &s->g[i];
    return NULL;
}

static void read_side(side *s, const char *path, const opts *o, int slot)
{
    hw_csv r;
    hw_csv_rec hdr = { 0 }, rec = { 0 };
    memset(s, 0, sizeof *s);
    s->path = path;
    hw_csv_load(&r, path, slot, "cpbench compare");
    if (!hw_csv_next(&r, &hdr)) cmp_bad("%s: empty file (expected a cpbench CSV header)", path);
    int kc[NKEY], mc[MAX_METRICS];
    for (int i = 0; i < NKEY; i++)
        if ((kc[i] = hw_csv_col(&hdr, key_cols[i])) < 0)
            cmp_bad("%s: header lacks column '%s' (not a cpbench CSV? see docs/csv.md)", path, key_cols[i]);
    int sc = hw_csv_col(&hdr, "status");
    if (sc < 0) cmp_bad("%s: header lacks column 'status' (not a cpbench CSV? see docs/csv.md)", path);
    /* a metric is a column, or a name in the metrics column (a pattern's own figure) */
    int xc = hw_csv_col(&hdr, "metrics"), vc = hw_csv_col(&hdr, "variant");
    for (int m = 0; m < o->nmetric; m++)
        if ((mc[m] = hw_csv_col(&hdr, o->metric[m])) < 0 && xc < 0)
            cmp_bad("%s: header lacks the metric column '%s'", path, o->metric[m]);
    int pc = hw_csv_col(&hdr, "placement_changed");
    int pl = hw_csv_col(&hdr, "placement");
    int uc = hw_csv_col(&hdr, "unit");
    s->unit_col = "unit";
    if (uc < 0) uc = hw_csv_col(&hdr, "timestamp"), s->unit_col = "timestamp";
    int mcol[NMACHINE];
    for (int i = 0; i < NMACHINE; i++) mcol[i] = hw_csv_col(&hdr, machine_cols[i]);

    while (hw_csv_next(&r, &rec)) {
        if (rec.n != hdr.n)
            cmp_bad("%s:%ld: malformed row: %zu fields, the header has %zu", path, r.line, rec.n, hdr.n);
        s->rows++;
        for (int i = 0; i < NMACHINE; i++) {
            if (mcol[i] < 0) continue;
            const char *v = rec.f[mcol[i]];
            if (!s->machine[i]) s->machine[i] = xstrdup(v);
            else if (strcmp(s->machine[i], v))
                cmp_bad("%s:%ld: rows from two machines in one file (%s '%s', earlier '%s')", path, r.line,
                        machine_cols[i], v, s->machine[i]);
        }
        char key[2048];
        size_t kn = 0;
        for (int i = 0; i < NKEY; i++)
            kn += (size_t)snprintf(key + kn, kn < sizeof key ? sizeof key - kn : 0, "%s\x1f", rec.f[kc[i]]);
        const char *variant = vc >= 0 && *rec.f[vc] ? rec.f[vc] : "default";
        if (kn < sizeof key) kn += (size_t)snprintf(key + kn, sizeof key - kn, "%s\x1f", variant);
        if (kn >= sizeof key) cmp_bad("%s:%ld: malformed row: configuration columns too long", path, r.line);
        double val[MAX_METRICS];
        int has[MAX_METRICS];
        for (int m = 0; m < o->nmetric; m++) {
            if (mc[m] < 0) {    /* from the metrics column */
                int k = hw_csv_metric(rec.f[xc], o->metric[m], &val[m]);
                if (k < 0) cmp_bad("%s:%ld: malformed row: metric %s in '%s' is not a number", path, r.line,
                                   o->metric[m], rec.f[xc]);
                has[m] = k == 0;
                continue;
            }
            const char *t = rec.f[mc[m]];
            has[m] = *t != 0;
            if (has[m] && hw_csv_number(t, &val[m]))
                cmp_bad("%s:%ld: malformed row: %s '%s' is not a number", path, r.line, o->metric[m], t);
        }
        group *g = find_group(s, key);
        if (!g) {
            if (s->ng == s->capg) {
                s->capg = s->capg ? 2 * s->capg : 32;
                s->g = realloc(s->g, s->capg * sizeof *s->g);
                if (!s->g) cmp_bad("out of memory");
            }
            g = &s->g[s->ng++];
            memset(g, 0, sizeof *g);
            g->key = xstrdup(key);
            g->pattern = xstrdup(rec.f[kc[0]]);
            g->impl = xstrdup(rec.f[kc[1]]);
            char label[512];
            size_t ln = 0;
            label[0] = 0;
            for (int i = 3; i < NKEY; i++) {
                const char *v = rec.f[kc[i]];
                if (!*v || ln >= sizeof label) continue;
                if (i == 12 && !strcmp(v, "64")) continue;      /* the default latency sampling */
                if (i == 8 && !strcmp(v, "0")) continue;        /* no busy work */
                char si[16];
                if (i == 9) v = hw_si(strtod(v, NULL), si, sizeof si);
                ln += (size_t)snprintf(label + ln, sizeof label - ln, "%s%s%s%s", ln ? " " : "", key_short[i],
                                       *key_short[i] ? "=" : "", v);
            }
            if (strcmp(rec.f[kc[2]], "direct") && ln < sizeof label)
                ln += (size_t)snprintf(label + ln, sizeof label - ln, "%sdispatch=%s", ln ? " " : "", rec.f[kc[2]]);
            if (strcmp(variant, "default") && ln < sizeof label)
                snprintf(label + ln, sizeof label - ln, "%svariant=%s", ln ? " " : "", variant);
            g->label = xstrdup(label);
        }
        if (strcmp(rec.f[sc], "OK")) {
            s->not_ok++;
            g->not_ok++;
            continue;
        }
        if (o->strict && pc >= 0 && !strcmp(rec.f[pc], "1")) {
            s->placement_dropped++;
            continue;
        }
        char rowid[32];
        snprintf(rowid, sizeof rowid, "row %zu", s->rows);
        size_t u = unit_index(g, uc >= 0 ? rec.f[uc] : rowid);
        for (int m = 0; m < o->nmetric; m++)
            if (has[m]) push(g, m, val[m], pl >= 0 && !strcmp(rec.f[pl], "far"), u);
    }
    hw_csv_rec_free(&hdr);
    hw_csv_rec_free(&rec);
    if (o->strict) keep_majority_placement(s);
    collapse_units(s);
}

static void free_side(side *s)
{
    for (size_t i = 0; i < s->ng; i++) {
        group *g = &s->g[i];
        free(g->key), free(g->pattern), free(g->impl), free(g->label);
        for (int m = 0; m < MAX_METRICS; m++) free(g->v[m]), free(g->far[m]), free(g->unit[m]);
        for (size_t u = 0; u < g->nunits; u++) free(g->units[u]);
        free(g->units);
    }
    free(s->g);
    for (int i = 0; i < NMACHINE; i++) free(s->machine[i]);
}


static const char *fmt_value(const char *metric, double v, char *buf, size_t n)
{
    size_t l = strlen(metric);
    if (l > 3 && !strcmp(metric + l - 3, "_ns")) return hw_ns(v, buf, n);
    if (!strcmp(metric, "seconds")) return hw_ns(v * 1e9, buf, n);
    return hw_si(v, buf, n);
}

static void usage(FILE *f)
{
    fputs("usage: cpbench compare BASE.csv NEW.csv [--alpha=0.05] [--threshold=5]\n"
          "                       [--metric=ops_per_sec,p99_ns] [--placement=all|strict]\n"
          "                       [--allow-missing] [--allow-other-machine]\n"
          "  pairs the configurations of two cpbench CSV files (docs/csv.md) and tests each\n"
          "  metric with a two-sided Mann-Whitney U test, Holm-corrected across all tests.\n"
          "  --alpha       family-wise significance level (default 0.05)\n"
          "  --threshold   smallest change of medians, in percent, worth a verdict (default 5)\n"
          "  --metric      CSV columns to compare, or a pattern's metrics by name (the CSV's metrics\n"
          "                column); ops_per_sec, ops, ops_per_cpu_s, fair_min_ops: higher is better,\n"
          "                any other (latencies, ns_per_op, seconds, metrics): lower is better\n"
          "  --placement   strict: drop rows whose placement_changed column is 1 and rows that\n"
          "                ran in the minority placement (near/far) of their configuration (when the\n"
          "                CSV has that column); all (default): keep every row\n"
          "  --allow-missing        configurations of BASE missing in NEW do not fail the gate\n"
          "  --allow-other-machine  compare files measured on different machines (cpu_model, cpus,\n"
          "                kernel, compiler or allocator differ); refused by default: use cpbench ab\n"
          "  The unit of replication is the invocation (column unit; timestamp in older files), or a\n"
          "  round of an --interleave run: repetitions that shared one process count once.\n"
          "exit status: 0 no significant regression, 1 at least one 'slower', a configuration of BASE\n"
          "  missing in NEW, FAIL rows in NEW or a compared metric without values; 2 bad input\n",
          f);
}

static double parse_double(const char *flag, const char *s, double lo, double hi, int lo_open)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(lo_open ? v > lo : v >= lo) || !(v < hi))
        cmp_bad("--%s: '%s' is not a number in %s%g, %g)", flag, s, lo_open ? "(" : "[", lo, hi);
    return v;
}

typedef struct test {
    size_t gb, gn;      /* group index in base, new */
    int m;
    double med_b, med_n, change, p, p_adj;
    size_t nb, nn;
    int tested, verdict;
} test;

int hw_compare(int argc, char **argv)
{
    static char metric_buf[1024];
    opts o = { .alpha = 0.05, .threshold = 5, .nmetric = 0, .strict = 0 };
    const char *metric_arg = "ops_per_sec,p99_ns";
    const char *files[2];
    int nfiles = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) || !a[2]) {
            if (nfiles == 2) cmp_bad("unexpected argument '%s' (expected BASE.csv NEW.csv; see --help)", a);
            files[nfiles++] = a;
            continue;
        }
        if (!strcmp(a, "--allow-other-machine")) {
            o.allow_other_machine = 1;
            continue;
        }
        if (!strcmp(a, "--allow-missing")) {
            o.allow_missing = 1;
            continue;
        }
        char name[32];
        const char *eq = strchr(a + 2, '='), *val;
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) cmp_bad("unknown flag '%s' (see --help)", a);
        memcpy(name, a + 2, len);
        name[len] = 0;
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else cmp_bad("--%s: missing value", name);
        if (!strcmp(name, "alpha")) o.alpha = parse_double(name, val, 0, 1, 1);
        else if (!strcmp(name, "threshold")) o.threshold = parse_double(name, val, 0, 1e6, 0);
        else if (!strcmp(name, "metric")) metric_arg = val;
        else if (!strcmp(name, "placement")) {
            if (!strcmp(val, "strict")) o.strict = 1;
            else if (!strcmp(val, "all")) o.strict = 0;
            else cmp_bad("--placement: expected all or strict, got '%s'", val);
        } else cmp_bad("unknown flag '--%s' (see --help)", name);
    }
    if (nfiles != 2) cmp_bad("expected two files: BASE.csv NEW.csv (see --help)");
    if (!*metric_arg) cmp_bad("--metric: empty (expected CSV columns like ops_per_sec,p99_ns)");
    if (strlen(metric_arg) >= sizeof metric_buf) cmp_bad("--metric: too long");
    strcpy(metric_buf, metric_arg);
    for (char *save, *t = strtok_r(metric_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o.nmetric == MAX_METRICS) cmp_bad("--metric: more than %d metrics", MAX_METRICS);
        for (int k = 0; k < o.nmetric; k++)
            if (!strcmp(o.metric[k], t)) cmp_bad("--metric: '%s' given twice", t);
        o.metric[o.nmetric++] = t;
    }
    if (!o.nmetric) cmp_bad("--metric: empty (expected CSV columns like ops_per_sec,p99_ns)");

    static side base, cur;
    read_side(&base, files[0], &o, 0);
    read_side(&cur, files[1], &o, 1);
    /* A file measured elsewhere compares machines, not code. */
    for (int i = 0; i < NMACHINE && !o.allow_other_machine; i++)
        if (base.machine[i] && cur.machine[i] && strcmp(base.machine[i], cur.machine[i]))
            cmp_bad("%s and %s were measured on different machines (%s '%s' vs '%s'): compare two builds on one "
                    "machine with cpbench ab, or pass --allow-other-machine", files[0], files[1], machine_cols[i],
                    base.machine[i], cur.machine[i]);

    /* pairs x metrics: the tests */
    size_t npairs = 0, only_base = 0, nt = 0, ntested = 0, no_data = 0;
    test *t = calloc(base.ng * (size_t)o.nmetric + 1, sizeof *t);
    if (!t) cmp_bad("out of memory");
    /* what makes the gate fail besides a regression (docs: results/baseline/README.md) */
    char gate[4096] = "";
    size_t gn = 0, ngate = 0;
#define GATE(...)                                                                                     \
    do {                                                                                              \
        ngate++;                                                                                      \
        if (gn < sizeof gate) gn += (size_t)snprintf(gate + gn, sizeof gate - gn, __VA_ARGS__);      \
    } while (0)
    for (size_t i = 0; i < base.ng; i++) {
        group *b = &base.g[i], *n = find_group(&cur, b->key);
        if (!n) {
            only_base++;
            if (!o.allow_missing) GATE("  missing in new: %s %s %s\n", b->pattern, b->impl, b->label);
            continue;
        }
        n->paired = 1;
        npairs++;
        for (int m = 0; m < o.nmetric; m++) {
            if (!b->n[m] || !n->n[m]) {     /* e.g. latency off on a side */
                no_data++;
                GATE("  no %s values in %s: %s %s %s\n", o.metric[m], !n->n[m] ? "new" : "base", b->pattern,
                     b->impl, b->label);
                continue;
            }
            test *x = &t[nt++];
            x->gb = i, x->gn = (size_t)(n - cur.g), x->m = m;
            x->nb = b->n[m], x->nn = n->n[m];
            x->med_b = st_median(b->v[m], x->nb);
            x->med_n = st_median(n->v[m], x->nn);
            x->change = st_change_pct(x->med_b, x->med_n);
            st_mwu r;
            st_mann_whitney(b->v[m], x->nb, n->v[m], x->nn, &r);
            x->p = r.p;
            x->tested = x->nb >= ST_MIN_REPS && x->nn >= ST_MIN_REPS;
            ntested += (size_t)x->tested;
        }
    }
    size_t only_new = 0;
    for (size_t i = 0; i < cur.ng; i++) {
        only_new += !cur.g[i].paired;
        if (cur.g[i].not_ok)
            GATE("  FAIL rows in new: %s %s %s (%zu)\n", cur.g[i].pattern, cur.g[i].impl, cur.g[i].label,
                 cur.g[i].not_ok);
    }
#undef GATE
    if (!npairs) {
        free(t);
        cmp_bad("no configuration in common between %s (%zu) and %s (%zu)", files[0], base.ng, files[1], cur.ng);
    }

    /* Holm over the tests that can decide (both sides >= ST_MIN_REPS) */
    double *ps = malloc((ntested + 1) * sizeof *ps), *adj = malloc((ntested + 1) * sizeof *adj);
    if (!ps || !adj) cmp_bad("out of memory");
    for (size_t i = 0, k = 0; i < nt; i++)
        if (t[i].tested) ps[k++] = t[i].p;
    st_holm(ps, ntested, adj);
    size_t cnt[4] = { 0 };
    for (size_t i = 0, k = 0; i < nt; i++) {
        test *x = &t[i];
        x->p_adj = x->tested ? adj[k++] : 1;
        x->verdict = st_verdict(x->nb, x->nn, x->med_b, x->med_n, x->p_adj, hw_csv_higher_is_better(o.metric[x->m]),
                                o.alpha, o.threshold);
        cnt[x->verdict]++;
    }

    printf("base: %s (%zu rows)   new: %s (%zu rows)\n\n", files[0], base.rows, files[1], cur.rows);
    printf("%-11s %-9s %-48s %-12s %9s %9s %6s %8s %8s %8s  %s\n", "pattern", "impl", "params", "metric", "base",
           "new", "n", "change", "p", "p(holm)", "verdict");
    for (size_t i = 0; i < nt; i++) {
        test *x = &t[i];
        const group *b = &base.g[x->gb];
        char vb[16], vn[16], nn[16], ch[16], pa[16];
        snprintf(nn, sizeof nn, "%zu/%zu", x->nb, x->nn);
        snprintf(ch, sizeof ch, "%+.1f%%", x->change);
        if (x->tested) snprintf(pa, sizeof pa, "%.3g", x->p_adj);
        else snprintf(pa, sizeof pa, "-");
        printf("%-11s %-9s %-48s %-12s %9s %9s %6s %8s %8.3g %8s  %s\n", b->pattern, b->impl, b->label,
               o.metric[x->m], fmt_value(o.metric[x->m], x->med_b, vb, sizeof vb),
               fmt_value(o.metric[x->m], x->med_n, vn, sizeof vn), nn, ch, x->p, pa, st_verdict_str(x->verdict));
    }

    /* footer: the rule, and what the sample sizes can show */
    printf("\nverdict: faster/slower only when the Holm-adjusted p < %g (over %zu tests) and |change| >= %g%%;\n"
           "  ~ otherwise; inconclusive when a side has fewer than %d units (not tested).\n"
           "  n: units of replication per side (column %s/%s): invocations, or rounds of an interleaved run;\n"
           "  the repetitions of one unit shared a process and count once (their median).\n"
           "  change: median(new) / median(base) - 1; p: two-sided Mann-Whitney U over the units (exact without ties).\n",
           o.alpha, ntested, o.threshold, ST_MIN_REPS, base.unit_col, cur.unit_col);
    if (ntested) {
        size_t need = ST_MIN_REPS;
        while (need < 1000 && st_mwu_min_p(need, need) * (double)ntested >= o.alpha) need++;
        printf("  with %zu tests at alpha %g, a verdict needs >= %zu units per side (n vs n can reach\n"
               "  at best p = 2/C(2n,n): 5 vs 5 -> %.4f, x %zu tests = %.3g).\n",
               ntested, o.alpha, need, st_mwu_min_p(5, 5), ntested, st_mwu_min_p(5, 5) * (double)ntested);
    }
    printf("\ncompare: %zu configurations paired, %zu tests: %zu slower, %zu faster, %zu ~, %zu inconclusive",
           npairs, nt, cnt[ST_SLOWER], cnt[ST_FASTER], cnt[ST_SAME], cnt[ST_INCONCLUSIVE]);
    if (no_data) printf("; %zu metric(s) without data", no_data);
    if (only_base || only_new) printf("; %zu configuration(s) only in base, %zu only in new", only_base, only_new);
    if (base.not_ok || cur.not_ok)
        printf("; excluded rows with status != OK: %zu base, %zu new", base.not_ok, cur.not_ok);
    if (base.placement_dropped || cur.placement_dropped)
        printf("; --placement=strict dropped %zu base, %zu new", base.placement_dropped, cur.placement_dropped);
    printf("\n");
    if (cnt[ST_INCONCLUSIVE] == nt && nt)
        printf("compare: every test is inconclusive: each side holds fewer than %d invocations; run each side as\n"
               "  several invocations (or --interleave over several configurations), or compare two builds\n"
               "  with `cpbench ab BIN_A BIN_B` (interleaved, paired rounds)\n", ST_MIN_REPS);
    if (ngate)
        printf("compare: the gate fails on %zu problem(s) besides speed%s:\n%s", ngate,
               o.allow_missing ? "" : " (--allow-missing accepts configurations missing in new)", gate);

    int rc = cnt[ST_SLOWER] || ngate ? 1 : 0;
    free(ps);
    free(adj);
    free(t);
    free_side(&base);
    free_side(&cur);
    return rc;
}
