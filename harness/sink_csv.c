/*
 * --csv=FILE: the CSV sink. The columns (docs/csv.md) are one list: each
 * is a name and how its value is written from a row record (hw_row); the
 * header and every row are that list, in order. Columns are only ever
 * appended. An empty value means "not applicable". A row is written and
 * flushed as its repetition completes (an interrupted run keeps them all).
 */
#include "harness/runner.h"
#include "harness/csvio.h"

#include <errno.h>
#include <string.h>

typedef struct csv_col {
    const char *name;
    void (*put)(FILE *f, const hw_row *r, int arg);
    int arg;
} csv_col;

#define COL(name) static void put_##name(FILE *f, const hw_row *R, int a)
#define U(v) fprintf(f, "%llu", (unsigned long long)(v))

static double secs_of(const struct timeval *t1, const struct timeval *t0)
{
    return (double)(t1->tv_sec - t0->tv_sec) + (double)(t1->tv_usec - t0->tv_usec) / 1e6;
}

/* the latency columns of a histogram (a: 50, 90, 99, 999 for 99.9, 0: max, -1: mean); empty when none */
static void lat_value(FILE *f, const cp_hist *h, int a)
{
    if (!h || !cp_hist_count(h)) return;
    if (a == -1) fprintf(f, "%.1f", cp_hist_mean(h));
    else if (a == 0) U(cp_hist_max(h));
    else U(cp_hist_percentile(h, a == 999 ? 99.9 : a));
}

COL(pattern) { (void)a, fputs(R->c->w->name, f); }
COL(impl) { (void)a, fputs(hw_impl_name(R->c->cfg.b), f); }
COL(dispatch) { (void)a, fputs(hw_dispatch_name(R->c->cfg.b, R->env->o->table_dispatch), f); }
COL(rep) { (void)a, fprintf(f, "%d", R->rep); }
COL(knob)   /* a: the knob's index; empty where the pattern has no use for it */
{
    const wl_cfg *g = &R->c->cfg;
    int64_t v = hw_knobs[a].show == WL_KS_COUNT && g->duration > 0 ? WL_UNUSED : wl_knob_get(&g->k, a);
    if (v != WL_UNUSED) fprintf(f, "%lld", (long long)v);
}
COL(duration_s) { (void)a; if (R->c->cfg.duration > 0) fprintf(f, "%.3f", R->c->cfg.duration); }
COL(params) { (void)a, hw_csv_field(f, R->c->params); }
COL(lat_sample) { (void)a, fprintf(f, "%lld", (long long)R->c->cfg.lat_sample); }
COL(seconds) { (void)a, fprintf(f, "%.6f", R->res->seconds); }
COL(ops) { (void)a, U(R->res->ops); }
COL(ops_per_sec) { (void)a, fprintf(f, "%.1f", R->res->ops_per_sec); }
COL(ns_per_op) { (void)a, fprintf(f, "%.3f", R->res->ops_per_sec > 0 ? 1e9 / R->res->ops_per_sec : 0.0); }
COL(lat) { lat_value(f, R->hist, a); }
COL(lat_count) { (void)a, U(cp_hist_count(R->hist)); }
COL(status) { (void)a, fputs(R->res->failed ? "FAIL" : "OK", f); }
COL(error) { (void)a, hw_csv_field(f, R->run->fail); }
COL(seed) { (void)a, U(R->c->cfg.seed); }
COL(run_threads) { (void)a, fprintf(f, "%d", R->run->nthr); }
COL(cpu_user_s) { (void)a, fprintf(f, "%.4f", secs_of(&R->ru1->ru_utime, &R->ru0->ru_utime)); }
COL(cpu_sys_s) { (void)a, fprintf(f, "%.4f", secs_of(&R->ru1->ru_stime, &R->ru0->ru_stime)); }
COL(vol_ctxsw) { (void)a, fprintf(f, "%ld", R->ru1->ru_nvcsw - R->ru0->ru_nvcsw); }
COL(invol_ctxsw) { (void)a, fprintf(f, "%ld", R->ru1->ru_nivcsw - R->ru0->ru_nivcsw); }
COL(maxrss_kb) { (void)a, fprintf(f, "%ld", R->ru1->ru_maxrss); }
COL(cpus) { (void)a, fprintf(f, "%d", R->env->m->cpus); }
COL(kernel) { (void)a, hw_csv_field(f, R->env->m->kernel); }
COL(compiler) { (void)a, hw_csv_field(f, R->env->m->compiler); }
COL(allocator) { (void)a, hw_csv_field(f, R->env->m->allocator); }
COL(git_rev) { (void)a, fputs(R->env->m->git_rev, f); }
COL(timestamp) { (void)a, fputs(R->env->m->timestamp, f); }
COL(clock) { (void)a, hw_csv_field(f, R->env->m->clock); }
COL(clock_ns) { (void)a, fprintf(f, "%.1f", R->env->m->clock_ns); }
COL(xcore) { if (R->res->xcore_before > 0) fprintf(f, "%.1f", a ? R->res->xcore_after : R->res->xcore_before); }
COL(placement)      /* a: 0 the placement, 1 whether it changed */
{
    if (R->res->xcore_before <= 0) return;
    const char *pb = hw_placement_of(R->res->xcore_before, R->env->o->placement_split);
    const char *pa = hw_placement_of(R->res->xcore_after, R->env->o->placement_split);
    if (a) fprintf(f, "%d", strcmp(pb, pa) != 0);
    else fputs(strcmp(pb, pa) ? "mixed" : pb, f);
}
COL(loadavg) { (void)a, fprintf(f, "%.2f", R->env->m->loadavg); }
COL(governor) { (void)a, fputs(R->env->m->governor, f); }
COL(pin) { (void)a, hw_csv_field(f, R->env->o->pin); }
COL(rate) { (void)a; if (R->c->cfg.rate > 0) fprintf(f, "%.0f", R->c->cfg.rate); }
COL(u_lat) { lat_value(f, R->hist_u, a); }
COL(allocs) { (void)a; if (R->res->allocs >= 0) fprintf(f, "%lld", (long long)R->res->allocs); }
COL(alloc_bytes) { (void)a; if (R->res->allocs >= 0) U(R->res->alloc_bytes); }
COL(allocs_per_op)
{
    (void)a;
    if (R->res->allocs >= 0) fprintf(f, "%.4f", R->res->ops ? (double)R->res->allocs / (double)R->res->ops : 0.0);
}
COL(fair)           /* a: 0 the fewest, 1 the most ops of one thread */
{
    uint64_t fmin, fmax;    /* the fairness metrics (runtime/workload.h), in their own columns */
    if (wl_fairness_of(R->c->w, R->run->metric, R->run->metric_set, &fmin, &fmax)) U(a ? fmax : fmin);
}
COL(cpu_model) { (void)a, hw_csv_field(f, R->env->m->cpu_model); }
COL(invocation) { (void)a, fputs(R->env->m->invocation, f); }
/* the unit of replication (docs/csv.md): the invocation, or with
 * --interleave over several configurations each round of it */
COL(unit)
{
    (void)a;
    if (R->env->round_units) fprintf(f, "%s/r%d", R->env->m->invocation, R->rep);
    else fputs(R->env->m->invocation, f);
}
COL(variant) { (void)a, hw_csv_field(f, hw_variant_name(R->c->w, R->c->cfg.variant)); }
COL(metrics)
{
    (void)a;
    char buf[512];
    hw_metrics_str(R->c->w, R->run->metric, R->run->metric_set, buf, sizeof buf);
    hw_csv_field(f, buf);
}
COL(go_version) { (void)a; if (!R->c->cfg.b) fputs(hw_go_version(), f); }
COL(gomaxprocs) { (void)a; if (!R->c->cfg.b) fprintf(f, "%d", hw_go_maxprocs()); }
COL(ops_per_cpu_s) { (void)a; if (R->res->ops_per_cpu_s > 0) fprintf(f, "%.1f", R->res->ops_per_cpu_s); }

#define C(name) { #name, put_##name, 0 }
/* The knobs up to items are the columns after rep; a knob added to the list
 * later is a column at the end (columns are only appended). A NULL name: no
 * column. */
#define KNOB_COL(ID, field, ...) { K_##ID <= K_ITEMS ? #field : NULL, put_knob, K_##ID },
#define KNOB_COL_LATER(ID, field, ...) { K_##ID > K_ITEMS ? #field : NULL, put_knob, K_##ID },
static const csv_col columns[] = {
    C(pattern), C(impl), C(dispatch), C(rep),
    WL_KNOB_LIST(KNOB_COL)
    C(duration_s), C(params), C(lat_sample), C(seconds), C(ops), C(ops_per_sec), C(ns_per_op),
    { "p50_ns", put_lat, 50 }, { "p90_ns", put_lat, 90 }, { "p99_ns", put_lat, 99 }, { "p999_ns", put_lat, 999 },
    { "max_ns", put_lat, 0 }, { "mean_ns", put_lat, -1 },
    C(lat_count), C(status), C(error), C(seed), C(run_threads), C(cpu_user_s), C(cpu_sys_s), C(vol_ctxsw),
    C(invol_ctxsw), C(maxrss_kb), C(cpus), C(kernel), C(compiler), C(allocator), C(git_rev), C(timestamp),
    C(clock), C(clock_ns),
    { "xcore_rt_ns_before", put_xcore, 0 }, { "xcore_rt_ns_after", put_xcore, 1 },
    { "placement", put_placement, 0 }, { "placement_changed", put_placement, 1 },
    C(loadavg), C(governor), C(pin), C(rate),
    { "u_p50_ns", put_u_lat, 50 }, { "u_p90_ns", put_u_lat, 90 }, { "u_p99_ns", put_u_lat, 99 },
    { "u_p999_ns", put_u_lat, 999 }, { "u_max_ns", put_u_lat, 0 },
    C(allocs), C(alloc_bytes), C(allocs_per_op),
    { "fair_min_ops", put_fair, 0 }, { "fair_max_ops", put_fair, 1 },
    C(cpu_model), C(invocation), C(unit), C(variant), C(metrics), C(go_version), C(gomaxprocs), C(ops_per_cpu_s),
    WL_KNOB_LIST(KNOB_COL_LATER)
};
#undef C
#undef KNOB_COL
#undef KNOB_COL_LATER
enum { NCOLS = sizeof columns / sizeof columns[0] };

void hw_csv_header(FILE *f)
{
    for (int i = 0, n = 0; i < NCOLS; i++)
        if (columns[i].name) fprintf(f, "%s%s", n++ ? "," : "", columns[i].name);
    fputc('\n', f);
}

void hw_csv_row(FILE *f, const hw_row *r)
{
    for (int i = 0, n = 0; i < NCOLS; i++) {
        if (!columns[i].name) continue;
        if (n++) fputc(',', f);
        columns[i].put(f, r, columns[i].arg);
    }
    fputc('\n', f);
}

/* ---- the sink ---- */
static struct {
    FILE *f;
    const char *name;
    int reported;
    int *reportedp;                 /* --csv=- shares stdout's */
} S;

static int csv_check(void) { return S.f ? hw_out_check(S.f, S.name, S.reportedp) : 0; }

/* Opened without truncating: a later bad input must not have emptied it. */
static void csv_open(hw_run_env *env)
{
    const char *csv = env->o->csv;
    S.reportedp = &S.reported;
    if (!strcmp(csv, "-")) {
        S.f = stdout;
        S.name = "standard output";
        S.reportedp = &env->stdout_reported;
        return;
    }
    S.f = hw_direct_open(csv, HW_SLOT_CSV);
    if (!S.f) hw_bad_input("--csv: cannot write '%s': %s", csv, strerror(errno));
    S.name = csv;
    setvbuf(S.f, NULL, _IOFBF, 1 << 16);
}

static int csv_begin(hw_run_env *env)
{
    if (S.f != stdout && hw_direct_start(S.f, HW_SLOT_CSV)) {
        fprintf(stderr, "cpbench: write error on %s: %s\n", env->o->csv, strerror(errno));
        S.reported = 1;
        return -1;
    }
    hw_csv_header(S.f);
    return csv_check();
}

static int csv_rep(hw_run_env *env, const hw_row *row)
{
    (void)env;
    hw_csv_row(S.f, row);
    return csv_check();
}

static int csv_finish(hw_run_env *env)
{
    (void)env;
    if (S.f == stdout) return 0;
    int rc = csv_check();
    if (fclose(S.f) && !S.reported) {
        fprintf(stderr, "cpbench: write error on %s: %s\n", S.name, strerror(errno));
        rc = -1;
    }
    return rc;
}

const hw_sink hw_sink_csv = { .open = csv_open, .begin = csv_begin, .rep = csv_rep, .finish = csv_finish };
