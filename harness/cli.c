/*
 * The command line. Every bad flag or value ends in one line naming the flag
 * and what was expected, and exit status 2.
 */
#include "harness/harness.h"
#include "core/hooks.h"      /* cp__backend_find_broken: the negative controls */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the common knobs (runtime/knobs.def); bounds: a sane maximum, and what fits in memory */
#define KNOB_ROW(ID, field, flag, metavar, lo, hi, draw, label, show, unit, note, doc) \
    { #field, flag, metavar, lo, hi, label, show, unit, note, doc },
const hw_knob hw_knobs[K_NKNOBS] = { WL_KNOB_LIST(KNOB_ROW) };
#undef KNOB_ROW
#define KNOB_FLAG(ID, field, flag, ...) flag,
const char *const hw_knob_flag[K_NKNOBS] = { WL_KNOB_LIST(KNOB_FLAG) };
#undef KNOB_FLAG

void (*hw_bad_input_hook)(void);

void hw_bad_input(const char *fmt, ...)
{
    va_list ap;
    fputs("cpbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (hw_bad_input_hook) hw_bad_input_hook();   /* the fuzz targets: longjmp, no exit */
    exit(2);
}

/* An integer with an optional k/M/G (x1000) suffix; -1 on error. */
static int parse_int(const char *s, int64_t *out)
{
    if (!*s) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno) return -1;
    int64_t mul = 1;
    if (*end == 'k' || *end == 'K') mul = 1000, end++;
    else if (*end == 'M') mul = 1000000, end++;
    else if (*end == 'G') mul = 1000000000, end++;
    if (*end) return -1;
    if (v > LLONG_MAX / mul || v < LLONG_MIN / mul) return -1;
    *out = (int64_t)v * mul;
    return 0;
}

/* "1,2,4", "0:1024:x4", "8:64:+8", "1:4" and mixes: "1,8:32:x2". */
static void parse_list(const char *flag, const char *arg, int64_t lo, int64_t hi, hw_list *l)
{
    char buf[1024];
    if (!*arg) hw_bad_input("--%s: empty value (expected an integer, list or range like 1,2,4 or 1:8:x2)", flag);
    if (strlen(arg) >= sizeof buf) hw_bad_input("--%s: value too long", flag);
    strcpy(buf, arg);
    l->n = 0;
    l->given = 1;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *p1 = strchr(tok, ':');
        int64_t a, b, step = 1;
        int mul = 0;
        if (!p1) {
            if (parse_int(tok, &a)) hw_bad_input("--%s: '%s' is not an integer", flag, tok);
            b = a;
        } else {
            *p1 = 0;
            char *p2 = strchr(p1 + 1, ':');
            if (p2) *p2 = 0;
            if (parse_int(tok, &a) || parse_int(p1 + 1, &b))
                hw_bad_input("--%s: bad range '%s:%s' (expected START:END[:+STEP|:xFACTOR])", flag, tok, p1 + 1);
            if (p2) {
                const char *st = p2 + 1;
                if (*st == 'x' || *st == '*') mul = 1, st++;
                else if (*st == '+') st++;
                if (parse_int(st, &step) || step < 1 + mul)
                    hw_bad_input("--%s: bad range step '%s' (expected +N with N >= 1 or xN with N >= 2)", flag, p2 + 1);
            }
            if (b < a) hw_bad_input("--%s: range %lld:%lld ends before it starts", flag, (long long)a, (long long)b);
        }
        for (int64_t v = a; v <= b;) {
            if (v < lo || v > hi)
                hw_bad_input("--%s: %lld is out of range (expected %lld..%lld)", flag, (long long)v,
                             (long long)lo, (long long)hi);
            if (l->n >= HW_MAX_VALUES) hw_bad_input("--%s: more than %d values", flag, HW_MAX_VALUES);
            l->v[l->n++] = v;
            if (v == b) break;
            int64_t next;
            if (mul ? __builtin_mul_overflow(v ? v : 1, step, &next) : __builtin_add_overflow(v, step, &next))
                break;
            if (next > b && v < b) next = b + 1;  /* the range's end need not be on the step */
            v = next;
        }
    }
}

/* Duplicates in a list would run one configuration twice (two rep=0 rows
 * for it): the first occurrence stays, later ones are dropped and named in
 * one note, printed by the runner once the sweep has passed its checks. */
static void note_dup(hw_opts *o, const char *flag, const char *val)
{
    size_t m = strlen(o->dup_note);
    if (m + 4 >= sizeof o->dup_note) return;
    if ((size_t)snprintf(o->dup_note + m, sizeof o->dup_note - m, "%s--%s=%s", m ? ", " : "", flag, val) >=
        sizeof o->dup_note - m)
        snprintf(o->dup_note + sizeof o->dup_note - 4, 4, "...");
}

static void dedup_list(hw_opts *o, const char *flag, hw_list *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        size_t j = 0;
        while (j < n && l->v[j] != l->v[i]) j++;
        if (j == n) {
            l->v[n++] = l->v[i];
        } else {
            char v[24];
            snprintf(v, sizeof v, "%lld", (long long)l->v[i]);
            note_dup(o, flag, v);
        }
    }
    l->n = n;
}

static double parse_seconds(const char *flag, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v != v) hw_bad_input("--%s: '%s' is not a duration (e.g. 2, 2s, 500ms)", flag, s);
    if (!strcmp(end, "ms")) v /= 1e3;
    else if (!strcmp(end, "us")) v /= 1e6;
    else if (*end && strcmp(end, "s")) hw_bad_input("--%s: '%s' is not a duration (e.g. 2, 2s, 500ms)", flag, s);
    if (v <= 0 || v > 86400) hw_bad_input("--%s: %s is out of range (expected > 0 and <= 1 day)", flag, s);
    return v;
}

static int64_t parse_one(const char *flag, const char *s, int64_t lo, int64_t hi)
{
    int64_t v;
    if (parse_int(s, &v)) hw_bad_input("--%s: '%s' is not an integer", flag, s);
    if (v < lo || v > hi)
        hw_bad_input("--%s: %lld is out of range (expected %lld..%lld)", flag, (long long)v, (long long)lo,
                     (long long)hi);
    return v;
}

/* --pin=none|compact|spread|CPU,CPU,...: compact fills CPUs in numbering
 * order; spread alternates between the two halves of the numbering (where
 * Linux usually puts SMT siblings n/2 apart), so consecutive threads land on
 * different cores. */
static void parse_pin(const char *val, hw_opts *o)
{
    int n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 256) n = 256;
    snprintf(o->pin, sizeof o->pin, "%s", val);
    o->npin = 0;
    if (!strcmp(val, "none")) return;
    if (!strcmp(val, "compact")) {
        for (int i = 0; i < n; i++) o->pin_cpus[o->npin++] = i;
    } else if (!strcmp(val, "spread")) {
        for (int i = 0; i < (n + 1) / 2; i++) {
            o->pin_cpus[o->npin++] = i;
            if (i + (n + 1) / 2 < n) o->pin_cpus[o->npin++] = i + (n + 1) / 2;
        }
    } else {
        hw_list l;
        parse_list("pin", val, 0, n - 1, &l);
        for (size_t i = 0; i < l.n && o->npin < 256; i++) o->pin_cpus[o->npin++] = (int)l.v[i];
    }
}

/* A pattern by its name or its seed-000 key (`flows_pipeline` = `pipeline`). */
static const hw_entry *find_pattern(const char *name)
{
    for (size_t i = 0; i < hw_catalogue_len; i++) {
        const wl_workload *w = hw_catalogue[i].generic;
        if (!strcmp(w->name, name) || (w->seed_key && !strcmp(w->seed_key, name))) return &hw_catalogue[i];
    }
    return NULL;
}

const char *hw_variant_name(const wl_workload *w, int v)
{
    return w->variants ? w->variants[v] : "default";
}

int hw_variant_index(const wl_workload *w, const char *name)
{
    if (!w->variants) return strcmp(name, "default") ? -1 : 0;
    for (int i = 0; w->variants[i]; i++)
        if (!strcmp(w->variants[i], name)) return i;
    return -1;
}

void hw_metrics_str(const wl_workload *w, const double *metric, unsigned set, char *buf, size_t n)
{
    size_t m = 0;
    buf[0] = 0;
    for (int i = 0; w->metrics && w->metrics[i].name && i < WL_MAX_METRICS; i++)
        if (set >> i & 1 && m < n && !w->metrics[i].own_column)
            m += (size_t)snprintf(buf + m, n - m, "%s%s=%.6f", m ? ";" : "", w->metrics[i].name, metric[i]);
}

static void parse_patterns(const char *arg, hw_opts *o)
{
    char buf[1024];
    if (!*arg) hw_bad_input("--pattern: empty value (see cpbench --list)");
    snprintf(buf, sizeof buf, "%s", arg);
    o->npatterns = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int all = !strcmp(tok, "all");
        const hw_entry *e = all ? NULL : find_pattern(tok);
        if (!all && !e) hw_bad_input("--pattern: unknown pattern '%s' (see cpbench --list)", tok);
        for (size_t i = 0; i < (all ? hw_catalogue_len : 1); i++) {
            const hw_entry *x = all ? &hw_catalogue[i] : e;
            size_t j = 0;
            while (j < o->npatterns && o->patterns[j] != x) j++;
            if (j < o->npatterns) note_dup(o, "pattern", x->generic->name);
            else if (o->npatterns < 64) o->patterns[o->npatterns++] = x;
        }
    }
    /* "," or ",,": no name at all (found by the fuzz target) */
    if (!o->npatterns) hw_bad_input("--pattern: no pattern named in '%s' (see cpbench --list)", arg);
}

/* What --impl takes, from libcp's registry, in its order: "<b0>, <b1>, ...,
 * go or all" (bar 0) or "<b0>|<b1>|...|go|all" (bar 1). */
static const char *impl_choices(int bar)
{
    static char buf[2][512];
    char *s = buf[bar ? 1 : 0];
    size_t n = 0;
    for (size_t i = 0; i < cp_backend_count() && n < sizeof buf[0]; i++)
        n += (size_t)snprintf(s + n, sizeof buf[0] - n, "%s%s", cp_backend_name(cp_backend_at(i)), bar ? "|" : ", ");
    if (n < sizeof buf[0]) snprintf(s + n, sizeof buf[0] - n, "%s", bar ? "go|all" : "go or all");
    return s;
}

/* --impl: backends by name, go (the Go reference), or all: every backend,
 * and go when it is built (else a one-line note). */
static void parse_impls(const char *arg, hw_opts *o)
{
    char buf[256];
    if (!*arg) hw_bad_input("--impl: empty value (expected %s)", impl_choices(0));
    snprintf(buf, sizeof buf, "%s", arg);
    o->nimpls = 0;
    o->go_from_all = 0;
    int go_named = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int all = !strcmp(tok, "all"), go = !strcmp(tok, "go");
        const cp_backend *b = all || go ? NULL : cp_backend_find(tok);
        if (!all && !go && !b) b = cp__backend_find_broken(tok);   /* negative controls, chaos builds only */
        if (!all && !go && !b)
            hw_bad_input("--impl: unknown backend '%s' (expected %s)", tok, impl_choices(0));
        if (go && !hw_go_available()) hw_bad_input("--impl=go: %s", hw_go_missing_hint());
        go_named |= go;
        size_t n = all ? cp_backend_count() + 1 : 1;
        for (size_t i = 0; i < n; i++) {
            const cp_backend *x = all ? (i < cp_backend_count() ? cp_backend_at(i) : NULL) : b;
            if (all && !x && !hw_go_available()) {
                fprintf(stderr, "cpbench: note: --impl=all runs the C backends only: %s\n", hw_go_missing_hint());
                continue;
            }
            size_t j = 0;
            while (j < o->nimpls && o->impls[j] != x) j++;
            if (j < o->nimpls) note_dup(o, "impl", hw_impl_name(x));
            else if (o->nimpls < 8) o->impls[o->nimpls++] = x;
            if (all && !x) o->go_from_all = 1;
        }
    }
    if (go_named) o->go_from_all = 0;
    if (!o->nimpls) hw_bad_input("--impl: no backend named in '%s' (expected %s)", arg, impl_choices(0));
}

/* --suite=quick: small configurations, each sized to take about a second per
 * repetition on a 2-core machine (items), so that the whole suite (3 impls,
 * --repeat 5 after 1 warm-up: 72 runs) stays under two minutes. Changing a
 * configuration (items included) unpairs it from results/baseline/quick.csv:
 * regenerate the baseline in the same commit. */
#define D HW_DEF
static const hw_suite_cfg suite_quick[] = {
    { "chan", { .threads = D, .producers = 1, .consumers = 1, .capacity = 1024, .payload = 16, .work_ns = 0, .items = 8000000 } },
    { "chan", { .threads = D, .producers = 1, .consumers = 1, .capacity = 0, .payload = 16, .work_ns = 0, .items = 100000 } },
    { "chan", { .threads = D, .producers = 4, .consumers = 4, .capacity = 64, .payload = 16, .work_ns = 0, .items = 2000000 } },
    { "workerpool", { .threads = 4, .producers = D, .consumers = D, .capacity = D, .payload = D, .work_ns = 0, .items = 400000 } },
};
/* --suite=reference: the C backends beside Go (docs/go.md), the cases of
 * the Go-reference and performance issues: chan 1P1C with a buffer and
 * unbuffered, chan 4P4C, the worker pool, select, mutex at 1 and 4
 * threads, semaphore, each at its defaults except where a count is set so
 * that the slowest backend's repetition stays near a second here (the
 * rendezvous: 1M items, about 0.5 s on mutex; with 100k, set when mutex
 * moved 0.1M items/s, a repetition lasted 7-80 ms, and a spell of both
 * threads on one vCPU, 35 ms in one perf sched trace, decided it). */
static const hw_suite_cfg suite_reference[] = {
    { "chan", { .threads = D, .producers = 1, .consumers = 1, .capacity = 1024, .payload = 16, .work_ns = 0, .items = 4000000 } },
    { "chan", { .threads = D, .producers = 1, .consumers = 1, .capacity = 0, .payload = 16, .work_ns = 0, .items = 1000000 } },
    { "chan", { .threads = D, .producers = 4, .consumers = 4, .capacity = 1024, .payload = 16, .work_ns = 0, .items = 2000000 } },
    { "workerpool", { .threads = 4, .producers = D, .consumers = D, .capacity = 100, .payload = D, .work_ns = 0, .items = 1000000 } },
    { "select", { .threads = D, .producers = D, .consumers = D, .capacity = D, .payload = D, .work_ns = D, .items = D } },
    { "mutex", { .threads = 1, .producers = D, .consumers = D, .capacity = D, .payload = D, .work_ns = D, .items = D } },
    { "mutex", { .threads = 4, .producers = D, .consumers = D, .capacity = D, .payload = D, .work_ns = D, .items = 200000 } },
    { "semaphore", { .threads = D, .producers = D, .consumers = D, .capacity = D, .payload = D, .work_ns = D, .items = D } },
};
#undef D

const hw_suite_cfg *hw_suite_find(const char *name, size_t *n)
{
    if (!strcmp(name, "quick")) {
        *n = sizeof suite_quick / sizeof suite_quick[0];
        return suite_quick;
    }
    if (!strcmp(name, "reference")) {
        *n = sizeof suite_reference / sizeof suite_reference[0];
        return suite_reference;
    }
    return NULL;
}

#define HW_STR(x) #x
#define HW_XSTR(x) HW_STR(x)

void hw_usage(FILE *f)
{
    fprintf(f, "usage: cpbench --pattern=NAME[,NAME...|all] [--impl=%s] [options]\n", impl_choices(1));
    fputs("       cpbench --list                  the catalogue, by group\n"
          "       cpbench --pattern=NAME --help   the pattern's parameters and defaults\n"
          "       cpbench --suite=quick|reference [--impl=...] [run control] [output]\n"
          "                               fixed small configurations (the CI baseline)\n"
          "       cpbench compare BASE.csv NEW.csv [...]  compare two CSV files (compare --help)\n"
          "       cpbench ab BIN_A BIN_B [--rounds=N] [run options]  interleaved A/B of two builds:\n"
          "                               the regression gate (ab --help)\n"
          "\n"
          "knobs (each takes a value, a list 1,2,4 or a range 1:8:x2 / 8:64:+8; the runner\n"
          "sweeps the cross product, at most " HW_XSTR(HW_MAX_CONFIGS) " configurations; a pattern ignores\n"
          "knobs it has no use for; a value given twice runs once, with a note on stderr):\n",
          f);
    /* the knobs, as many to a line as fit in 80 columns */
    char line[160] = "";
    for (int k = 0; k < K_NKNOBS; k++) {
        char one[96];
        snprintf(one, sizeof one, "--%s=%s%s%s", hw_knobs[k].flag, hw_knobs[k].metavar, *hw_knobs[k].note ? " " : "",
                 hw_knobs[k].note);
        if (line[0] && strlen(line) + 1 + strlen(one) > 80) fprintf(f, "%s\n", line), line[0] = 0;
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, "%s%s", line[0] ? " " : "  ", one);
    }
    fprintf(f, "%s\n", line);
    fputs("  --set KEY=VALUE        a pattern parameter (lists and ranges too)\n"
          "  --variant=NAME[,NAME]  a pattern's variant (default: the correct pattern; `seed`:\n"
          "                         the seed's pitfall, where the pattern has one)\n"
          "run control:\n"
          "  --duration=SECONDS     time-based runs instead of --items (not with --items)\n"
          "  --rate=OPS             open loop: arrivals on a fixed schedule, latency from the\n"
          "                         intended start (corrected) and the actual one (u_* columns)\n"
          "  --repeat=N (default 5) --warmup=N (default 1) --seed=S\n"
          "  --interleave           run the (configuration, repetition) pairs round by round in a\n"
          "                         seeded random order, so machine drift spreads evenly\n"
          "  --timeout=SECONDS      watchdog (default 60): a run going this long past its\n"
          "                         start (past D with --duration=D) is reported with every\n"
          "                         thread's phase, and cpbench exits 1\n"
          "  --lat-sample=N         timestamp 1 op in N (default 64; 0: no latency)\n"
          "  --dispatch=direct|table  direct family calls (default) or the backend table\n"
          "  --pin=none|compact|spread|CPU,CPU,...  pin thread i of a run (default none)\n"
          "  --placement-split=NS   cross-core round trip that separates a near from a far vCPU\n"
          "                         placement (default 150; 0: no probe around repetitions)\n"
          "output:\n"
          "  --csv=FILE|-           one row per repetition (schema: docs/csv.md)\n"
          "  --json=FILE            Google Benchmark JSON: one entry per repetition plus\n"
          "                         mean/median/stddev/cv per configuration; Google\n"
          "                         Benchmark's tools/compare.py reads it (docs/outputs.md)\n"
          "  --hgrm=DIR             per configuration, its latencies over all measured\n"
          "                         repetitions as DIR/<pattern>_<impl>_<config>.hgrm\n"
          "                         (HdrHistogram percentile format, values in ns)\n"
          "  (JSON and .hgrm files appear only when complete, renamed over their target: a\n"
          "  symlink is followed, a file keeps its mode, a device or FIFO is written\n"
          "  directly; no two outputs may name one file; scripts/plot.py draws the CSV and\n"
          "  .hgrm files)\n"
          "  --quiet                no table on stdout\n"
          "exit status: 0 ok, 1 a run failed its invariants or timed out, or an output\n"
          "could not be written, 2 bad input (found before any output is touched)\n",
          f);
}

void hw_list_catalogue(FILE *f)
{
    static const char *groups[] = { "flows", "orchestration", "pools", "primitives", "scale", "resilience" };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        int any = 0;
        for (size_t i = 0; i < hw_catalogue_len; i++) {
            const wl_workload *w = hw_catalogue[i].generic;
            if (strcmp(w->group, groups[g])) continue;
            if (!any++) fprintf(f, "%s:\n", groups[g]);
            fprintf(f, "  %-19s %s\n", w->name, w->desc);
            if (w->seed_key) fprintf(f, "  %-19s   (seed key: %s)\n", "", w->seed_key);
        }
    }
    fputs("backends:\n", f);
    for (size_t i = 0; i < cp_backend_count(); i++)
        fprintf(f, "  %-19s %s\n", cp_backend_name(cp_backend_at(i)), cp_backend_describe(cp_backend_at(i)));
    fprintf(f, "  %-19s %s\n", "go", hw_go_available() ? "the Go reference: each pattern's Go twin (go/), run by the Go runtime"
                                                         : "the Go reference: not built (install a Go toolchain: scripts/deps.sh)");
}

void hw_pattern_help(FILE *f, const hw_entry *e)
{
    const wl_workload *w = e->generic;
    fprintf(f, "%s (%s): %s\n  one op: %s\n  latency: %s\n  knobs (default):\n", w->name, w->group, w->desc,
            w->op, w->latency);
    for (int k = 0; k < K_NKNOBS; k++)
        if (wl_knob_get(&w->defaults, k) != WL_UNUSED)
            fprintf(f, "    --%-12s %lld\n", hw_knob_flag[k], (long long)wl_knob_get(&w->defaults, k));
    fputs("  parameters (--set KEY=VALUE):\n", f);
    int any = 0;
    for (const wl_param *p = w->params; p->key; p++, any++)
        fprintf(f, "    %-16s %-6lld %s\n", p->key, (long long)p->def, p->help);
    if (!any) fputs("    (none)\n", f);
    if (w->seed_key) fprintf(f, "  seed key: %s (--pattern=%s works too)\n", w->seed_key, w->seed_key);
    if (w->variants) {
        fputs("  variants (--variant=NAME):", f);
        for (int i = 0; w->variants[i]; i++) fprintf(f, " %s%s", w->variants[i], i ? "" : " (default)");
        fputs("\n", f);
    }
    if (w->metrics) {
        fputs("  metrics (CSV column metrics, compare --metric=NAME):\n", f);
        for (const wl_metric_def *m = w->metrics; m->name; m++)
            fprintf(f, "    %-16s %-6s %s\n", m->name, m->unit, m->help);
    }
}

static int pattern_has_param(const wl_workload *w, const char *key)
{
    for (const wl_param *p = w->params; p->key; p++)
        if (!strcmp(p->key, key)) return 1;
    return 0;
}

int hw_parse(int argc, char **argv, hw_opts *o, int *want_list, int *want_help)
{
    memset(o, 0, sizeof *o);
    o->repeat = 5;
    o->warmup = 1;
    o->lat_sample = 64;
    o->seed = 1;
    o->timeout = 60;
    o->placement_split = 150;
    snprintf(o->pin, sizeof o->pin, "none");
    const char *pattern_arg = NULL, *impl_arg = "all", *variant_arg = NULL;
    const char *sets[64];
    size_t nsets = 0;

    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strncmp(a, "--", 2)) hw_bad_input("unexpected argument '%s' (flags start with --; see --help)", a);
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) hw_bad_input("unknown flag '%s' (see --help)", a);
        memcpy(name, a + 2, len);
        name[len] = 0;
        int is_bool = !strcmp(name, "list") || !strcmp(name, "help") || !strcmp(name, "quiet") ||
                      !strcmp(name, "interleave");
        if (eq) val = eq + 1;
        else if (!is_bool) {
            if (i + 1 >= argc) hw_bad_input("--%s: missing value", name);
            val = argv[++i];
        }
        if (is_bool && eq) hw_bad_input("--%s takes no value", name);

        int k;
        for (k = 0; k < K_NKNOBS; k++)
            if (!strcmp(name, hw_knob_flag[k])) break;
        if (k < K_NKNOBS) {
            parse_list(name, val, hw_knobs[k].lo, hw_knobs[k].hi, &o->knob[k]);
            dedup_list(o, name, &o->knob[k]);
        } else if (!strcmp(name, "list")) *want_list = 1;
        else if (!strcmp(name, "help")) *want_help = 1;
        else if (!strcmp(name, "quiet")) o->quiet = 1;
        else if (!strcmp(name, "interleave")) o->interleave = 1;
        else if (!strcmp(name, "pattern")) pattern_arg = val;
        else if (!strcmp(name, "suite")) {
            if (!(o->suite = hw_suite_find(val, &o->nsuite)))
                hw_bad_input("--suite: unknown suite '%s' (expected quick or reference)", val);
            o->suite_name = val;
        }
        else if (!strcmp(name, "impl")) impl_arg = val;
        else if (!strcmp(name, "variant")) variant_arg = val;
        else if (!strcmp(name, "duration")) o->duration = parse_seconds(name, val);
        else if (!strcmp(name, "rate")) o->rate = (double)parse_one(name, val, 1, 1000000000);
        else if (!strcmp(name, "timeout")) o->timeout = parse_seconds(name, val);
        else if (!strcmp(name, "repeat")) o->repeat = parse_one(name, val, 1, 1000);
        else if (!strcmp(name, "warmup")) o->warmup = parse_one(name, val, 0, 100);
        else if (!strcmp(name, "lat-sample")) o->lat_sample = parse_one(name, val, 0, 1 << 30);
        else if (!strcmp(name, "placement-split")) o->placement_split = (double)parse_one(name, val, 0, 100000);
        else if (!strcmp(name, "pin")) parse_pin(val, o);
        else if (!strcmp(name, "seed")) o->seed = (uint64_t)parse_one(name, val, 0, INT64_MAX);
        else if (!strcmp(name, "csv")) {
            if (!*val) hw_bad_input("--csv: empty file name (use - for stdout)");
            o->csv = val;
        } else if (!strcmp(name, "json")) {
            if (!*val) hw_bad_input("--json: empty file name");
            o->json = val;
        } else if (!strcmp(name, "hgrm")) {
            if (!*val) hw_bad_input("--hgrm: empty directory name");
            o->hgrm_dir = val;
        } else if (!strcmp(name, "dispatch")) {
            if (!strcmp(val, "direct")) o->table_dispatch = 0;
            else if (!strcmp(val, "table")) o->table_dispatch = 1;
            else hw_bad_input("--dispatch: expected direct or table, got '%s'", val);
        } else if (!strcmp(name, "set")) {
            if (nsets >= 64) hw_bad_input("--set: too many");
            sets[nsets++] = val;
        } else hw_bad_input("unknown flag '--%s' (see --help)", name);
    }

    if (*want_list) return 0;
    if (o->suite) {   /* a suite fixes its configurations: no sweep on top */
        if (pattern_arg) hw_bad_input("--suite: cannot be combined with --pattern");
        for (int k = 0; k < K_NKNOBS; k++)
            if (o->knob[k].given) hw_bad_input("--suite: cannot be combined with --%s", hw_knob_flag[k]);
        if (nsets) hw_bad_input("--suite: cannot be combined with --set");
        if (o->duration > 0) hw_bad_input("--suite: cannot be combined with --duration");
        if (variant_arg) hw_bad_input("--suite: cannot be combined with --variant");
        parse_impls(impl_arg, o);
        return 0;
    }
    if (!pattern_arg) {
        if (*want_help) return 0;
        hw_bad_input("--pattern: missing (see cpbench --list)");
    }
    parse_patterns(pattern_arg, o);
    parse_impls(impl_arg, o);
    /* a --duration run counts no items: --items would only multiply
     * configurations that differ in nothing that is run or written */
    if (o->duration > 0 && o->knob[K_ITEMS].given)
        hw_bad_input("--items and --duration: give one of them (a --duration run has no item count)");
    if (variant_arg) {     /* names every selected pattern must have */
        char vb[256];
        if (!*variant_arg || strlen(variant_arg) >= sizeof vb)
            hw_bad_input("--variant: expected a name or list of names (see --pattern=NAME --help)");
        strcpy(vb, variant_arg);
        for (char *save, *tok = strtok_r(vb, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (strlen(tok) >= sizeof o->variant[0] || o->nvariant >= sizeof o->variant / sizeof o->variant[0])
                hw_bad_input("--variant: '%s' too long or too many", tok);
            for (size_t p = 0; p < o->npatterns; p++)
                if (hw_variant_index(o->patterns[p]->generic, tok) < 0)
                    hw_bad_input("--variant: pattern %s has no variant '%s' (see cpbench --pattern=%s --help)",
                                 o->patterns[p]->generic->name, tok, o->patterns[p]->generic->name);
            int dup = 0;
            for (size_t v = 0; v < o->nvariant; v++) dup |= !strcmp(o->variant[v], tok);
            if (dup) note_dup(o, "variant", tok);
            else strcpy(o->variant[o->nvariant++], tok);
        }
        if (!o->nvariant) hw_bad_input("--variant: no name in '%s'", variant_arg);
    }
    if (o->interleave && o->json)
        hw_bad_input("--interleave: not with --json (its aggregates need each configuration's repetitions together)");

    for (size_t s = 0; s < nsets; s++) {
        const char *kv = sets[s], *eq = strchr(kv, '=');
        if (!eq || eq == kv) hw_bad_input("--set: expected KEY=VALUE, got '%s'", kv);
        size_t len = (size_t)(eq - kv);
        if (len >= sizeof o->set[0].key) hw_bad_input("--set: key too long in '%s'", kv);
        char key[64];
        memcpy(key, kv, len);
        key[len] = 0;
        int known = 0;
        for (size_t p = 0; p < o->npatterns; p++) known |= pattern_has_param(o->patterns[p]->generic, key);
        if (!known)
            hw_bad_input("--set: no selected pattern has a parameter '%s' (see cpbench --pattern=%s --help)",
                         key, o->patterns[0]->generic->name);
        char flag[80];
        snprintf(flag, sizeof flag, "set %s", key);
        /* --set k=1 --set k=2 is --set k=1,2 (not: the last one wins) */
        size_t si = 0;
        while (si < o->nset && strcmp(o->set[si].key, key)) si++;
        if (si == o->nset) {
            if (o->nset >= sizeof o->set / sizeof o->set[0]) hw_bad_input("--set: too many");
            snprintf(o->set[si].key, sizeof o->set[0].key, "%s", key);
            o->set[si].vals.n = 0;
            o->nset++;
        }
        hw_list more;
        parse_list(flag, eq + 1, 0, INT64_MAX / 2, &more);
        hw_list *l = &o->set[si].vals;
        for (size_t i = 0; i < more.n; i++) {
            if (l->n >= HW_MAX_VALUES) hw_bad_input("--%s: more than %d values", flag, HW_MAX_VALUES);
            l->v[l->n++] = more.v[i];
        }
        l->given = 1;
        dedup_list(o, flag, l);
    }
    return 0;
}

/* ---- for other subcommands (stress) ---- */
int64_t hw_parse_one(const char *flag, const char *s, int64_t lo, int64_t hi) { return parse_one(flag, s, lo, hi); }
double hw_parse_seconds(const char *flag, const char *s) { return parse_seconds(flag, s); }
void hw_parse_patterns(const char *arg, hw_opts *o) { parse_patterns(arg, o); }
void hw_parse_impls(const char *arg, hw_opts *o) { parse_impls(arg, o); }
