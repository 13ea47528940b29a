/*
 * The runner: for each pattern, backend and configuration of the cross
 * product of the swept knobs, warm-up runs and then --repeat measured
 * repetitions; each repetition is a CSV row (written and flushed as it
 * completes), each configuration a line of the table.
 */
#define _GNU_SOURCE
#include "harness/harness.h"
#include "harness/csvio.h"
#include "harness/stats.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

const char *hw_si(double v, char *buf, size_t n)
{
    const char *u = "";
    if (v >= 1e9) v /= 1e9, u = "G";
    else if (v >= 1e6) v /= 1e6, u = "M";
    else if (v >= 1e3) v /= 1e3, u = "k";
    snprintf(buf, n, "%.*f%s", v >= 100 ? 0 : v >= 10 ? 1 : 2, v, u);
    return buf;
}

const char *hw_ns(double ns, char *buf, size_t n)
{
    if (ns <= 0) snprintf(buf, n, "-");
    else if (ns < 1e3) snprintf(buf, n, "%.0fns", ns);
    else if (ns < 1e6) snprintf(buf, n, "%.1fus", ns / 1e3);
    else if (ns < 1e9) snprintf(buf, n, "%.1fms", ns / 1e6);
    else snprintf(buf, n, "%.2fs", ns / 1e9);
    return buf;
}

/* Seconds with every significant digit the user gave (--timeout=0.001 is
 * "1 ms", not "0.0 s"): up to 3 decimals of the largest unit that is >= 1. */
const char *hw_secs(double s, char *buf, size_t n)
{
    const char *unit = "s";
    if (s < 1e-3) s *= 1e6, unit = "us";
    else if (s < 1) s *= 1e3, unit = "ms";
    int len = snprintf(buf, n, "%.3f", s);
    while (len > 0 && (size_t)len < n && buf[len - 1] == '0') buf[--len] = 0;
    if (len > 0 && (size_t)len < n && buf[len - 1] == '.') buf[--len] = 0;
    snprintf(buf + len, n - (size_t)len, " %s", unit);
    return buf;
}

/* Open loop: arrival k of n is scheduled at k / rate from the start gate, so
 * the first is at 0 and n arrivals take n - 1 intervals; a run that keeps up
 * with --rate=1 --items=3 ends just after 2 s, and ops / seconds would say
 * 1.5 ops/s. Each arrival owns one interval of the schedule, so the achieved
 * rate is ops / (seconds + 1 / rate): the rate asked for when the run keeps
 * up (never more: the last arrival is not before its time), less when it
 * falls behind. Closed loop: the wall time. */
double hw_rate_seconds(const wl_cfg *cfg, double seconds)
{
    return cfg->rate > 0 ? seconds + 1.0 / cfg->rate : seconds;
}

static const char csv_header[] =
    "pattern,impl,dispatch,rep,threads,producers,consumers,capacity,payload,work_ns,items,duration_s,"
    "params,lat_sample,seconds,ops,ops_per_sec,ns_per_op,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,mean_ns,"
    "lat_count,status,error,seed,run_threads,cpu_user_s,cpu_sys_s,vol_ctxsw,invol_ctxsw,maxrss_kb,"
    "cpus,kernel,compiler,allocator,git_rev,timestamp,clock,clock_ns,"
    "xcore_rt_ns_before,xcore_rt_ns_after,placement,placement_changed,loadavg,governor,pin,"
    "rate,u_p50_ns,u_p90_ns,u_p99_ns,u_p999_ns,u_max_ns,allocs,alloc_bytes,allocs_per_op,"
    "fair_min_ops,fair_max_ops,cpu_model,invocation,unit,variant,metrics,go_version,gomaxprocs,ops_per_cpu_s\n";

/* Placement (near/far) of a cross-core round trip: these VMs' two vCPUs show
 * about 57 ns near and 335 ns far; 150 ns splits them (--placement-split). */
static const char *placement_of(double rt, double split)
{
    return rt <= 0 ? "" : rt < split ? "near" : "far";
}

#define csv_str hw_csv_field

static void csv_knob(FILE *f, int64_t v)
{
    if (v != WL_UNUSED) fprintf(f, "%lld", (long long)v);
    fputc(',', f);
}

typedef struct rep_result {
    double seconds, ops_per_sec;
    double cpu_s;                       /* user + system CPU seconds of the repetition */
    double ops_per_cpu_s;               /* ops / cpu_s; 0: no CPU time */
    double fairness;                    /* lock patterns: fewest / most ops of one thread; -1: n/a */
    double xcore_before, xcore_after;   /* cross-core round trip around the run, ns */
    int64_t allocs;                     /* allocations during the run (jemalloc; go: the Go heap's), -1: unknown */
    uint64_t alloc_bytes;
    uint64_t ops;
    int failed;
    double metric[WL_MAX_METRICS];      /* the pattern's metrics (wl_run) */
    unsigned metric_set;
} rep_result;

typedef hw_config config;

static void describe(config *c)
{
    static const char *const short_name[K_NKNOBS] = { "T", "P", "C", "cap", "payload", "work", "items" };
    const int64_t *k = &c->cfg.k.threads;
    size_t n = 0;
    c->label[0] = 0;
    for (int i = 0; i < K_NKNOBS; i++) {
        if (k[i] == WL_UNUSED || (i == K_ITEMS && c->cfg.duration > 0)) continue;
        if (i == K_WORK_NS && k[i] == 0) continue;
        char v[32];
        if (i == K_ITEMS) hw_si((double)k[i], v, sizeof v);
        else snprintf(v, sizeof v, "%lld", (long long)k[i]);
        n += (size_t)snprintf(c->label + n, sizeof c->label - n, "%s%s=%s", n ? " " : "", short_name[i], v);
    }
    size_t m = 0;
    c->params[0] = 0;
    int j = 0;
    for (const wl_param *p = c->w->params; p->key; p++, j++) {
        m += (size_t)snprintf(c->params + m, sizeof c->params - m, "%s%s=%lld", m ? ";" : "", p->key,
                              (long long)c->cfg.set[j]);
        if (c->cfg.set[j] != p->def && n < sizeof c->label)
            n += (size_t)snprintf(c->label + n, sizeof c->label - n, " %s=%lld", p->key, (long long)c->cfg.set[j]);
    }
    if (c->cfg.variant && n < sizeof c->label)
        snprintf(c->label + n, sizeof c->label - n, " variant=%s", hw_variant_name(c->w, c->cfg.variant));
}

/* set by hw_run_all: --interleave over more than one configuration, so that
 * consecutive repetitions of a configuration did not run back to back */
static int round_units;

static void write_row(FILE *f, const hw_opts *o, const hw_meta *m, const config *c, int rep,
                      const wl_run *r, const cp_hist *h, const cp_hist *hu, const rep_result *res, const char *status,
                      const struct rusage *ru0, const struct rusage *ru1)
{
    const wl_cfg *g = &c->cfg;
    fprintf(f, "%s,%s,%s,%d,", c->w->name, hw_impl_name(g->b), o->table_dispatch ? "table" : "direct", rep);
    const int64_t *k = &g->k.threads;
    for (int i = 0; i < K_NKNOBS; i++) csv_knob(f, i == K_ITEMS && g->duration > 0 ? WL_UNUSED : k[i]);
    if (g->duration > 0) fprintf(f, "%.3f", g->duration);
    fputc(',', f);
    csv_str(f, c->params);
    fprintf(f, ",%lld,%.6f,%llu,%.1f,%.3f,", (long long)g->lat_sample, res->seconds,
            (unsigned long long)res->ops, res->ops_per_sec, res->ops_per_sec > 0 ? 1e9 / res->ops_per_sec : 0.0);
    if (cp_hist_count(h))
        fprintf(f, "%llu,%llu,%llu,%llu,%llu,%.1f,", (unsigned long long)cp_hist_percentile(h, 50),
                (unsigned long long)cp_hist_percentile(h, 90), (unsigned long long)cp_hist_percentile(h, 99),
                (unsigned long long)cp_hist_percentile(h, 99.9), (unsigned long long)cp_hist_max(h),
                cp_hist_mean(h));
    else
        fputs(",,,,,,", f);
    fprintf(f, "%llu,%s,", (unsigned long long)cp_hist_count(h), status);
    csv_str(f, r->fail);
    double ut = (double)(ru1->ru_utime.tv_sec - ru0->ru_utime.tv_sec) +
                (double)(ru1->ru_utime.tv_usec - ru0->ru_utime.tv_usec) / 1e6;
    double st = (double)(ru1->ru_stime.tv_sec - ru0->ru_stime.tv_sec) +
                (double)(ru1->ru_stime.tv_usec - ru0->ru_stime.tv_usec) / 1e6;
    fprintf(f, ",%llu,%d,%.4f,%.4f,%ld,%ld,%ld,", (unsigned long long)g->seed, r->nthr, ut, st,
            ru1->ru_nvcsw - ru0->ru_nvcsw, ru1->ru_nivcsw - ru0->ru_nivcsw, ru1->ru_maxrss);
    fprintf(f, "%d,", m->cpus);
    csv_str(f, m->kernel);
    fputc(',', f);
    csv_str(f, m->compiler);
    fputc(',', f);
    csv_str(f, m->allocator);
    fprintf(f, ",%s,%s,", m->git_rev, m->timestamp);
    csv_str(f, m->clock);
    fprintf(f, ",%.1f,", m->clock_ns);
    const char *pb = placement_of(res->xcore_before, o->placement_split);
    const char *pa = placement_of(res->xcore_after, o->placement_split);
    if (res->xcore_before > 0)
        fprintf(f, "%.1f,%.1f,%s,%d,", res->xcore_before, res->xcore_after, strcmp(pb, pa) ? "mixed" : pb,
                strcmp(pb, pa) != 0);
    else
        fputs(",,,,", f);
    fprintf(f, "%.2f,%s,", m->loadavg, m->governor);
    csv_str(f, o->pin);
    if (g->rate > 0) fprintf(f, ",%.0f", g->rate);
    else fputc(',', f);
    if (hu && cp_hist_count(hu))
        fprintf(f, ",%llu,%llu,%llu,%llu,%llu", (unsigned long long)cp_hist_percentile(hu, 50),
                (unsigned long long)cp_hist_percentile(hu, 90), (unsigned long long)cp_hist_percentile(hu, 99),
                (unsigned long long)cp_hist_percentile(hu, 99.9), (unsigned long long)cp_hist_max(hu));
    else
        fputs(",,,,,", f);
    if (res->allocs >= 0) {
        fprintf(f, ",%lld,%llu,%.4f", (long long)res->allocs, (unsigned long long)res->alloc_bytes,
                res->ops ? (double)res->allocs / (double)res->ops : 0.0);
    } else {
        fputs(",,,", f);
    }
    uint64_t fmin, fmax;    /* the fairness metrics (runtime/workload.h), in their own columns */
    if (wl_fairness_of(c->w, r->metric, r->metric_set, &fmin, &fmax))
        fprintf(f, ",%llu,%llu,", (unsigned long long)fmin, (unsigned long long)fmax);
    else fputs(",,,", f);
    csv_str(f, m->cpu_model);
    /* the unit of replication (docs/csv.md): the invocation, or with
     * --interleave over several configurations each round of it */
    if (round_units) fprintf(f, ",%s,%s/r%d,", m->invocation, m->invocation, rep);
    else fprintf(f, ",%s,%s,", m->invocation, m->invocation);
    csv_str(f, hw_variant_name(c->w, g->variant));
    char mbuf[512];
    hw_metrics_str(c->w, r->metric, r->metric_set, mbuf, sizeof mbuf);
    fputc(',', f);
    csv_str(f, mbuf);
    if (!g->b) fprintf(f, ",%s,%d,", hw_go_version(), hw_go_maxprocs());
    else fputs(",,,", f);
    if (res->ops_per_cpu_s > 0) fprintf(f, "%.1f", res->ops_per_cpu_s);
    fputc('\n', f);
}

static void table_header(const hw_meta *m, const hw_opts *o)
{
    printf("cpbench %s | %d cpus | %s | %s | %s\n", m->git_rev, m->cpus, m->kernel, m->compiler, m->allocator);
    printf("clock %s, %.1f ns/read | %lld measured repetitions after %lld warm-up | latency: 1 op in %lld timed | "
           "%s dispatch\n",
           m->clock, m->clock_ns, (long long)o->repeat, (long long)o->warmup, (long long)o->lat_sample,
           o->table_dispatch ? "table" : "direct");
    printf("ops/s: median of the repetitions, %s; CV: stddev/mean, '!' above 5%%\n",
           o->repeat >= 6 ? "[95% CI of the median] (order statistics)"
                          : "[min .. max] (fewer than 6 repetitions: no 95% CI of the median exists)");
    if (hw_go_version()[0])
        printf("go: %s, GOMAXPROCS=%d: each pattern's Go twin (go/) in one cpbench-go child process\n",
               hw_go_version(), hw_go_maxprocs());
    if (o->rate > 0)
        printf("open loop at %.0f ops/s: latency from each op's intended start (coordinated-omission corrected);\n"
               "the CSV's u_* columns measure from the actual start\n", o->rate);
    printf("ops/cpu-s: median of ops per CPU-second (user + system) of the repetitions: what the throughput costs\n");
    printf("\n%-11s %-9s %-40s %10s %-19s %-8s %9s %8s %8s %8s %8s %8s  %s\n", "pattern", "impl", "config", "ops/s",
           o->repeat >= 6 ? " [95% CI]" : " [min .. max]", "CV", "ops/cpu-s", "p50", "p90", "p99", "p99.9", "max",
           "status");
}

/* The median ops/s of the repetitions; range: " [lo .. hi]", the 95% CI of
 * the median (n >= 6) or min..max; cv: "CV 3%", "CV 12%!" above 5%. */
static double ops_summary(const rep_result *reps, int n, char *range, size_t rn, char *cv, size_t cn)
{
    double v[1000];
    for (int i = 0; i < n; i++) v[i] = reps[i].ops_per_sec;
    st_summary s;
    st_summarize(v, (size_t)n, &s);
    char lo[16], hi[16];
    snprintf(range, rn, " [%s .. %s]", hw_si(s.ci_lo, lo, sizeof lo), hw_si(s.ci_hi, hi, sizeof hi));
    if (n < 2) snprintf(cv, cn, "-");
    else snprintf(cv, cn, "CV %.0f%%%s", s.cv * 100, s.cv > 0.05 ? "!" : "");
    return s.median;
}

static void table_row(const hw_meta *m, const hw_opts *o, const config *c, rep_result *reps, int n,
                      const cp_hist *h, int run_threads, int failed)
{
    char a[16], p[5][16], range[40], cv[16], place[96] = "";
    int nfar = 0, moved = 0, probed = 0;
    for (int i = 0; i < n; i++) {
        if (reps[i].xcore_before <= 0) continue;
        const char *pb = placement_of(reps[i].xcore_before, o->placement_split);
        const char *pa = placement_of(reps[i].xcore_after, o->placement_split);
        probed++;
        nfar += !strcmp(pb, "far") && !strcmp(pa, "far");
        moved += strcmp(pb, pa) != 0;
    }
    if (probed && (moved || (nfar && nfar < probed - moved)))
        snprintf(place, sizeof place, " (placement: %d far, %d near, %d moved)", nfar, probed - moved - nfar, moved);
    double med = ops_summary(reps, n, range, sizeof range, cv, sizeof cv);
    double pc[1000];
    int npc = 0;
    for (int i = 0; i < n; i++)
        if (reps[i].ops_per_cpu_s > 0) pc[npc++] = reps[i].ops_per_cpu_s;
    char cpus[16] = "-";
    if (npc) {
        st_summary s;
        st_summarize(pc, (size_t)npc, &s);
        hw_si(s.median, cpus, sizeof cpus);
    }
    int has = cp_hist_count(h) > 0;
    printf("%-11s %-9s %-40.40s %10s %-19s %-8s %9s %8s %8s %8s %8s %8s  %s%s%s\n", c->w->name, hw_impl_name(c->cfg.b),
           c->label, hw_si(med, a, sizeof a), range, cv, cpus,
           has ? hw_ns((double)cp_hist_percentile(h, 50), p[0], 16) : "-",
           has ? hw_ns((double)cp_hist_percentile(h, 90), p[1], 16) : "-",
           has ? hw_ns((double)cp_hist_percentile(h, 99), p[2], 16) : "-",
           has ? hw_ns((double)cp_hist_percentile(h, 99.9), p[3], 16) : "-",
           has ? hw_ns((double)cp_hist_max(h), p[4], 16) : "-", failed ? "FAIL" : "ok",
           run_threads > m->cpus ? " (oversubscribed)" : "", place);
    /* the pattern's own metrics: median [min .. max] over the repetitions */
    char line[1024];
    size_t ln = 0;
    double fv[1000];
    int nf = 0;
    for (int j = 0; j < n; j++)
        if (reps[j].fairness >= 0) fv[nf++] = reps[j].fairness;
    if (nf && run_threads > 1) {   /* beside a lock's throughput: how evenly its threads got it */
        st_summary s;
        st_summarize(fv, (size_t)nf, &s);
        ln += (size_t)snprintf(line, sizeof line, "fairness (fewest / most ops of one thread) %.3f", s.median);
        if (nf > 1 && ln < sizeof line)
            ln += (size_t)snprintf(line + ln, sizeof line - ln, " [%.3f .. %.3f]", s.min, s.max);
    }
    for (int i = 0; c->w->metrics && c->w->metrics[i].name && i < WL_MAX_METRICS; i++) {
        double v[1000];
        int k = 0;
        for (int j = 0; j < n; j++)
            if (reps[j].metric_set >> i & 1) v[k++] = reps[j].metric[i];
        if (!k || ln >= sizeof line || c->w->metrics[i].own_column) continue;   /* fairness: the line above */
        st_summary s;
        st_summarize(v, (size_t)k, &s);
        const char *u = c->w->metrics[i].unit;
        char fm[3][24];
        for (int q = 0; q < 3; q++) {
            double x = q == 0 ? s.median : q == 1 ? s.min : s.max;
            if (!strcmp(u, "ns")) hw_ns(x, fm[q], sizeof fm[q]);
            else snprintf(fm[q], sizeof fm[q], "%.4g%s%s", x, *u ? " " : "", u);
        }
        ln += (size_t)snprintf(line + ln, sizeof line - ln, "%s%s %s", ln ? ", " : "", c->w->metrics[i].name, fm[0]);
        if (k > 1 && ln < sizeof line)
            ln += (size_t)snprintf(line + ln, sizeof line - ln, " [%s .. %s]", fm[1], fm[2]);
    }
    if (ln) printf("%-11s %-9s   %s\n", "", "", line);
}

/* One repetition for --json (json.c). */
static void json_rep(hw_json *j, const config *c, int rep, const wl_run *r, const cp_hist *h,
                     const rep_result *res)
{
    hw_rep_out out = { .rep = rep, .run_threads = r->nthr, .ops = res->ops, .seconds = res->seconds,
                       .cpu_s = res->cpu_s, .rate_seconds = hw_rate_seconds(&c->cfg, res->seconds),
                       .error = res->failed ? r->fail : NULL, .hist = h,
                       .metric = r->metric, .metric_set = r->metric_set };
    hw_json_rep(j, c->w, &c->cfg, &out);
}

/* Validate a configuration before anything runs: bad combinations exit 2.
 * Returns 0 for a go configuration the Go twin cannot run when go came from
 * --impl=all (skipped, with a note), 1 otherwise. */
static int check_config(const hw_opts *o, const config *c)
{
    if (c->cfg.rate > 0 && !c->w->open_loop)
        hw_bad_input("--rate: pattern %s has no open-loop mode (chan and workerpool have)", c->w->name);
    const char *why = c->w->check ? c->w->check(&c->cfg) : NULL;
    if (why) hw_bad_input("%s: %s", c->w->name, why);
    const wl_knobs *k = &c->cfg.k;
    if (k->capacity != WL_UNUSED && k->payload != WL_UNUSED && k->capacity * k->payload > (1LL << 30))
        hw_bad_input("--capacity=%lld x --payload=%lld needs more than 1 GiB per channel",
                     (long long)k->capacity, (long long)k->payload);
    if (c->cfg.duration <= 0 && k->items != WL_UNUSED && k->producers != WL_UNUSED && k->items < k->producers)
        hw_bad_input("--items=%lld is fewer than --producers=%lld", (long long)k->items, (long long)k->producers);
    if (c->cfg.b) return 1;
    const char *go = hw_go_check(c->w, &c->cfg, o->pin_cpus, o->npin);
    if (go && !o->go_from_all) hw_bad_input("--impl=go: %s", go);
    if (go) {
        static char said[4096];     /* each reason once */
        if (!strstr(said, go) && strlen(said) + strlen(go) + 2 < sizeof said) {
            fprintf(stderr, "cpbench: note: --impl=all skips go where %s\n", go);
            strcat(said, go);
            strcat(said, "\n");
        }
        return 0;
    }
    return 1;
}

/* The sweep's dimensions for one pattern: per knob and parameter, the swept
 * list, or a one-value list of the pattern's default (a knob the pattern
 * does not use, one not given, a parameter not --set). */
typedef struct dims {
    const hw_list *d[K_NKNOBS + WL_MAX_SET];
    hw_list defaults[K_NKNOBS + WL_MAX_SET];
    int n, nparams;
} dims;

static void pattern_dims(const hw_opts *o, const hw_entry *e, dims *D)
{
    const wl_workload *gw = e->generic;
    const int64_t *d = &gw->defaults.threads;
    D->n = D->nparams = 0;
    for (int k = 0; k < K_NKNOBS; k++, D->n++) {
        D->defaults[D->n] = (hw_list){ .n = 1, .v = { d[k] } };
        D->d[D->n] = (d[k] != WL_UNUSED && o->knob[k].given) ? &o->knob[k] : &D->defaults[D->n];
    }
    for (const wl_param *p = gw->params; p->key; p++, D->nparams++, D->n++) {
        D->defaults[D->n] = (hw_list){ .n = 1, .v = { p->def } };
        D->d[D->n] = &D->defaults[D->n];
        for (size_t s = 0; s < o->nset; s++)
            if (!strcmp(o->set[s].key, p->key)) D->d[D->n] = &o->set[s].vals;
    }
}

/* How many configurations the sweep has, from the list lengths alone
 * (saturating: a product of fifteen lists of 256 values overflows). */
static size_t count_configs(const hw_opts *o)
{
    if (o->nsuite) return o->nsuite * o->nimpls;
    static dims D;
    size_t total = 0;
    for (size_t pi = 0; pi < o->npatterns; pi++) {
        pattern_dims(o, o->patterns[pi], &D);
        size_t n = o->nimpls * (o->nvariant ? o->nvariant : 1);
        for (int i = 0; i < D.n; i++)
            if (__builtin_mul_overflow(n, D.d[i]->n, &n)) return SIZE_MAX;
        if (__builtin_add_overflow(total, n, &total)) return SIZE_MAX;
    }
    return total;
}

static void init_config(config *c, const hw_opts *o, const hw_entry *e, const cp_backend *b)
{
    memset(c, 0, sizeof *c);
    c->e = e;
    c->w = hw_pick(e, b, o->table_dispatch);
    c->cfg.b = b;
    c->cfg.seed = o->seed;
    c->cfg.lat_sample = o->lat_sample;
}

/* --suite: one configuration per (suite entry, impl); knobs the entry leaves
 * at HW_DEF and all pattern parameters take the pattern's defaults. */
static void suite_configs(const hw_opts *o, config *cfgs, size_t *ncfg)
{
    for (size_t si = 0; si < o->nsuite; si++) {
        const hw_suite_cfg *s = &o->suite[si];
        const hw_entry *e = NULL;
        for (size_t i = 0; i < hw_catalogue_len && !e; i++)
            if (!strcmp(hw_catalogue[i].generic->name, s->pattern)) e = &hw_catalogue[i];
        if (!e) hw_bad_input("--suite=%s: unknown pattern '%s'", o->suite_name, s->pattern);
        const int64_t *d = &e->generic->defaults.threads, *sk = &s->k.threads;
        for (size_t ii = 0; ii < o->nimpls; ii++) {
            config *c = &cfgs[(*ncfg)++];
            init_config(c, o, e, o->impls[ii]);
            int64_t *kv = &c->cfg.k.threads;
            for (int k = 0; k < K_NKNOBS; k++) kv[k] = (sk[k] == HW_DEF || d[k] == WL_UNUSED) ? d[k] : sk[k];
            int j = 0;
            for (const wl_param *p = e->generic->params; p->key; p++) c->cfg.set[j++] = p->def;
            describe(c);
            if (!check_config(o, c)) (*ncfg)--;
        }
    }
}

/* Every configuration of the sweep, each validated (bad input exits 2),
 * before any output is opened: a mistake found late must not have
 * truncated an existing CSV. Per pattern, the odometer over the knobs it
 * uses and its parameters, for each impl and --variant. Used by the runner
 * and by `cpbench ab`, which runs each configuration as its own process. */
config *hw_configs_build(const hw_opts *o, size_t *ncfg)
{
    size_t n = count_configs(o);
    if (n > HW_MAX_CONFIGS)
        hw_bad_input("the sweep has %s%zu configurations (patterns x impls x the values of each knob and parameter "
                     "a pattern uses); at most %d are allowed: narrow a list or range",
                     n == SIZE_MAX ? "more than " : "", n, HW_MAX_CONFIGS);
    config *cfgs = calloc(n ? n : 1, sizeof *cfgs);
    if (!cfgs) {
        fprintf(stderr, "cpbench: out of memory\n");
        exit(1);
    }
    *ncfg = 0;
    if (o->nsuite) {
        suite_configs(o, cfgs, ncfg);
        return cfgs;
    }
    static dims D;
    for (size_t pi = 0; pi < o->npatterns; pi++) {
        const hw_entry *e = o->patterns[pi];
        pattern_dims(o, e, &D);
        int vars[8] = { 0 }, nvars = o->nvariant ? (int)o->nvariant : 1;
        for (int v = 0; v < (int)o->nvariant; v++) vars[v] = hw_variant_index(e->generic, o->variant[v]);
        for (size_t ii = 0; ii < o->nimpls; ii++)
          for (int vi = 0; vi < nvars; vi++) {
            size_t idx[K_NKNOBS + WL_MAX_SET] = { 0 };
            for (;;) {
                config *c = &cfgs[(*ncfg)++];
                init_config(c, o, e, o->impls[ii]);
                int64_t *kv = &c->cfg.k.threads;
                for (int k = 0; k < K_NKNOBS; k++) kv[k] = D.d[k]->v[idx[k]];
                for (int p = 0; p < D.nparams; p++) c->cfg.set[p] = D.d[K_NKNOBS + p]->v[idx[K_NKNOBS + p]];
                c->cfg.duration = o->duration;
                c->cfg.rate = o->rate;
                c->cfg.variant = vars[vi];
                describe(c);
                if (!check_config(o, c)) (*ncfg)--;
                int dd = D.n - 1;     /* the last dimension turns fastest */
                while (dd >= 0 && ++idx[dd] == D.d[dd]->n) idx[dd--] = 0;
                if (dd < 0) break;
            }
        }
    }
    return cfgs;
}

/* The outputs, checked before any is opened: no two on one file (the later
 * would silently replace the earlier), none a directory, every .hgrm name
 * fits. `table`: the table goes to stdout. */
static void check_outputs(const hw_opts *o, const config *cfgs, size_t ncfg, int table)
{
    const char *path[3] = { o->csv, o->json, table ? "-" : NULL };
    const char *flag[3] = { "--csv", "--json", "the table" };
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (path[i] && path[j] && hw_out_same(path[i], path[j]))
                hw_bad_input(j == 2 ? "%s: '%s' is standard output, where %s goes (add --quiet or name another file)"
                                    : "%s=%s and %s name one file: give each output its own",
                             flag[i], path[i], flag[j]);
    if (o->csv && strcmp(o->csv, "-") && hw_out_is_dir(o->csv)) hw_bad_input("--csv: '%s' is a directory", o->csv);
    if (o->json && hw_out_is_dir(o->json)) hw_bad_input("--json: '%s' is a directory", o->json);
    if (!o->hgrm_dir) return;
    for (size_t ci = 0; ci < ncfg; ci++) {
        char p[PATH_MAX];
        if (hw_hgrm_path(o, cfgs[ci].w, &cfgs[ci].cfg, p, sizeof p))
            hw_bad_input("--hgrm: '%s' is too long a directory name for the file names of this sweep", o->hgrm_dir);
        if (hw_out_is_dir(p)) hw_bad_input("--hgrm: '%s' is a directory", p);
        const char *base = strrchr(p, '/') + 1;
        for (int i = 0; i < 2; i++) {   /* cheap first: the same file name */
            const char *b = path[i] ? strrchr(path[i], '/') : NULL;
            if (path[i] && !strcmp(b ? b + 1 : path[i], base) && hw_out_same(path[i], p))
                hw_bad_input("%s=%s and --hgrm name one file: give each output its own", flag[i], path[i]);
        }
    }
}

/* Flushes an output after a write; -1 (reported once) if it lost data. */
typedef struct out_state {
    FILE *csv;
    const char *csv_name;
    int csv_rep, stdout_rep;
    int *csv_repp;                  /* --csv=- shares stdout's "reported" */
    int json_rep;
} out_state;

static int check_stdout(out_state *s) { return hw_out_check(stdout, "standard output", &s->stdout_rep); }
static int check_csv(out_state *s) { return s->csv ? hw_out_check(s->csv, s->csv_name, s->csv_repp) : 0; }

int hw_run_all(const hw_opts *o)
{
    int quiet = o->quiet || (o->csv && !strcmp(o->csv, "-"));
    size_t ncfg = 0;
    config *cfgs = hw_configs_build(o, &ncfg);
    round_units = o->interleave && ncfg > 1;
    check_outputs(o, cfgs, ncfg, !quiet);
    if (o->dup_note[0])
        fprintf(stderr, "cpbench: note: duplicates dropped, each configuration runs once: %s\n", o->dup_note);

    /* stdout: a buffer that only our checks flush, so a failed flush keeps
     * its errno for the message (a terminal stays line-buffered) */
    if (!isatty(1)) setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    hw_meta m;
    hw_calibrate();
    hw_meta_collect(&m);
    /* Open the outputs: the CSV without truncating it, then the JSON
     * temporary and the .hgrm directory; bad input there exits 2 and
     * removes what was created. Only then is the CSV truncated. */
    out_state os = { .csv_name = NULL };
    os.csv_repp = &os.csv_rep;
    if (o->csv) {
        if (!strcmp(o->csv, "-")) {
            os.csv = stdout;
            os.csv_name = "standard output";
            os.csv_repp = &os.stdout_rep;
        } else {
            os.csv = hw_direct_open(o->csv, HW_SLOT_CSV);
            if (!os.csv) hw_bad_input("--csv: cannot write '%s': %s", o->csv, strerror(errno));
            os.csv_name = o->csv;
            setvbuf(os.csv, NULL, _IOFBF, 1 << 16);
        }
    }
    hw_json *json = hw_json_open(o, &m);
    hw_hgrm_prepare(o);
    int out_failed = 0;
    if (os.csv && os.csv != stdout && hw_direct_start(os.csv, HW_SLOT_CSV)) {
        fprintf(stderr, "cpbench: write error on %s: %s\n", o->csv, strerror(errno));
        os.csv_rep = out_failed = 1;
    }
    if (os.csv && !out_failed) {
        fputs(csv_header, os.csv);
        out_failed |= check_csv(&os) != 0;
    }
    cp_hist *rep_hist = cp_hist_new(3, 3600ull * 1000000000ull);
    cp_hist *cfg_hist = cp_hist_new(3, 3600ull * 1000000000ull);
    cp_hist *rep_hist_u = cp_hist_new(3, 3600ull * 1000000000ull);
    static wl_run run;
    if (!rep_hist || !cfg_hist || !rep_hist_u) {
        fprintf(stderr, "cpbench: out of memory\n");
        return 1;
    }

    hw_signals_install();
    hw_pin_set(o->pin_cpus, o->npin);
    int progress = !quiet && isatty(2);
    uint64_t t_begin = cp_now_ns();
    /* environment guard: say what makes these numbers less trustworthy */
    if (m.loadavg > 0.5 * m.cpus)
        fprintf(stderr, "cpbench: warning: load average %.2f on %d cpus at start: results will be noisy\n",
                m.loadavg, m.cpus);
    if (m.governor[0] && strcmp(m.governor, "performance"))
        fprintf(stderr, "cpbench: warning: cpufreq governor is '%s', not 'performance'\n", m.governor);
    if (!quiet && !out_failed) {
        table_header(&m, o);
        out_failed |= check_stdout(&os) != 0;
    }
    int any_failed = 0, written = 0;
    /* Per-configuration state. Without --interleave the configurations run
     * one after the other and share one histogram; with it, (configuration,
     * repetition) runs are shuffled round by round (seeded by --seed), as
     * Google Benchmark's random interleaving, so that drift of the machine
     * spreads evenly, and each configuration keeps its own histogram. */
    typedef struct cstate {
        rep_result *reps;
        int nreps, failed, nthr;
        cp_hist *hist;
    } cstate;
    cstate *cs = calloc(ncfg, sizeof *cs);
    size_t per = (size_t)(o->warmup + o->repeat), nsched = ncfg * per;
    struct { size_t ci; int rep; } *sched = calloc(nsched, sizeof *sched);
    if (!cs || !sched) { fprintf(stderr, "cpbench: out of memory\n"); return 1; }
    for (size_t ci = 0; ci < ncfg; ci++) {
        cs[ci].reps = calloc((size_t)o->repeat, sizeof *cs[ci].reps);
        cs[ci].hist = o->interleave ? cp_hist_new(3, 3600ull * 1000000000ull) : cfg_hist;
        if (!cs[ci].reps || !cs[ci].hist) { fprintf(stderr, "cpbench: out of memory\n"); return 1; }
    }
    size_t ns = 0;
    if (!o->interleave) {
        for (size_t ci = 0; ci < ncfg; ci++)
            for (int rep = -(int)o->warmup; rep < (int)o->repeat; rep++) sched[ns].ci = ci, sched[ns++].rep = rep;
    } else {
        uint64_t rng = o->seed * 0x9e3779b97f4a7c15ull + 1;
        for (size_t ci = 0; ci < ncfg; ci++)    /* warm-ups first, in order */
            for (int rep = -(int)o->warmup; rep < 0; rep++) sched[ns].ci = ci, sched[ns++].rep = rep;
        for (int rep = 0; rep < (int)o->repeat; rep++) {
            size_t first = ns;
            for (size_t ci = 0; ci < ncfg; ci++) sched[ns].ci = ci, sched[ns++].rep = rep;
            for (size_t k = ns - first; k > 1; k--) {   /* Fisher-Yates over this round */
                rng = wl_mix(rng);
                size_t j = first + (size_t)(rng % k), i = first + k - 1;
                size_t t = sched[i].ci;
                sched[i].ci = sched[j].ci;
                sched[j].ci = t;
            }
        }
    }
    for (size_t si = 0; si < nsched && !hw_interrupted && !out_failed; si++) {
        size_t ci = sched[si].ci;
        int rep = sched[si].rep;
        config *c = &cfgs[ci];
        cstate *S = &cs[ci];
        if (progress) {
            double el = (double)(cp_now_ns() - t_begin) / 1e9;
            fprintf(stderr, "\r[%zu/%zu] %s %s %.40s  elapsed %.0f s, about %.0f s left\033[K", si + 1, nsched,
                    c->w->name, hw_impl_name(c->cfg.b), c->label, el, si ? el / (double)si * (double)(nsched - si) : 0.0);
            fflush(stderr);
        }
        if (!o->interleave && rep == -(int)o->warmup) cp_hist_reset(S->hist);
        struct rusage ru0, ru1;
        /* placement probe around measured repetitions (a few ms) */
        double xb = rep >= 0 && o->placement_split > 0 ? hw_xcore_rt_ns(10000) : 0;
        getrusage(RUSAGE_SELF, &ru0);
        uint64_t al0 = 0, al1 = 0;
        int have_al = hw_alloc_count(&al0) == 0;
        int rc = hw_run_one(c->w, &c->cfg, o->timeout, &run, rep_hist, o->rate > 0 ? rep_hist_u : NULL);
        getrusage(RUSAGE_SELF, &ru1);
        if (hw_interrupted) break;  /* cut short: neither checked nor recorded */
        if (rc) wl_fail(&run, "the run could not start (out of memory?)");
        rep_result res = { .xcore_before = xb };
        if (xb > 0) res.xcore_after = hw_xcore_rt_ns(10000);
        res.allocs = have_al && hw_alloc_count(&al1) == 0 ? (int64_t)(al1 - al0) : -1;
        for (int i = 0; i < run.nthr && c->cfg.b; i++) res.alloc_bytes += run.thr[i].alloc_bytes;
        if (!c->cfg.b) {    /* go: the child's own figures for the repetition */
            memset(&ru0, 0, sizeof ru0);
            hw_go_usage(&ru1, &res.allocs, &res.alloc_bytes);
        }
        res.cpu_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                             ru0.ru_stime.tv_usec) / 1e6;
        res.ops_per_cpu_s = res.cpu_s > 0 ? (double)run.ops / res.cpu_s : 0;
        res.seconds = (double)(run.t_end - run.t_start) / 1e9;
        res.ops = run.ops;
        double rs = hw_rate_seconds(&c->cfg, res.seconds);
        res.ops_per_sec = rs > 0 ? (double)run.ops / rs : 0;
        res.failed = run.nfail > 0;
        memcpy(res.metric, run.metric, sizeof res.metric);
        res.metric_set = run.metric_set;
        uint64_t fmin, fmax;
        res.fairness = wl_fairness_of(c->w, run.metric, run.metric_set, &fmin, &fmax) ? (double)fmin / (double)fmax : -1;
        if (res.failed) {
            S->failed = any_failed = 1;
            fprintf(stderr, "cpbench: FAIL %s impl=%s %s%s%s (rep %d): %s\n", c->w->name,
                    hw_impl_name(c->cfg.b), c->label, c->params[0] ? " " : "", c->params, rep, run.fail);
        }
        if (rep < 0) continue;   /* warm-up: checked, not recorded */
        S->reps[rep] = res;
        S->nreps = rep + 1;
        S->nthr = run.nthr;
        written++;
        cp_hist_merge(S->hist, rep_hist);
        /* A lost write ends the sweep (exit 1): what it would go on to
         * measure could not all be recorded. */
        if (os.csv) {
            write_row(os.csv, o, &m, c, rep, &run, rep_hist, o->rate > 0 ? rep_hist_u : NULL, &res,
                      res.failed ? "FAIL" : "OK", &ru0, &ru1);
            if (check_csv(&os)) { out_failed = 1; break; }
        }
        if (json) {
            json_rep(json, c, rep, &run, rep_hist, &res);
            if (hw_json_check(json, &os.json_rep)) { out_failed = 1; break; }
        }
        if (S->nreps < (int)o->repeat) continue;
        /* the configuration is complete */
        hw_json_config_end(json);
        if (hw_hgrm_write(o, c->w, &c->cfg, S->hist)) { out_failed = 1; break; }
        if (progress) fputs("\r\033[K", stderr);
        if (!quiet) {
            table_row(&m, o, c, S->reps, (int)o->repeat, S->hist, S->nthr, S->failed);
            if (check_stdout(&os)) { out_failed = 1; break; }
        }
    }
    if (progress) fputs("\r\033[K", stderr);
    if (hw_interrupted && !quiet)   /* what the unfinished configurations got to */
        for (size_t ci = 0; ci < ncfg; ci++)
            if (cs[ci].nreps > 0 && cs[ci].nreps < (int)o->repeat)
                table_row(&m, o, &cfgs[ci], cs[ci].reps, cs[ci].nreps, cs[ci].hist, cs[ci].nthr, cs[ci].failed);
    for (size_t ci = 0; ci < ncfg; ci++) {
        free(cs[ci].reps);
        if (o->interleave) cp_hist_free(cs[ci].hist);
    }
    free(cs);
    free(sched);
    free(cfgs);
    cp_hist_free(rep_hist);
    cp_hist_free(cfg_hist);
    cp_hist_free(rep_hist_u);
    if (!quiet && any_failed) printf("\nat least one run FAILED its invariants (see stderr)\n");
    if (hw_interrupted || out_failed) {
        /* JSON and .hgrm describe whole runs: the unfinished ones are removed */
        hw_json_abandon(json);
        hw_tmp_abandon();
        if (hw_interrupted)
            printf("\ninterrupted by signal %d: %d completed repetitions kept%s\n", (int)hw_interrupted, written,
                   os.csv ? " (CSV complete up to there)" : "");
    } else if (hw_json_close(json)) {
        out_failed = 1;
    }
    if (os.csv && os.csv != stdout) {
        out_failed |= check_csv(&os) != 0;
        if (fclose(os.csv) && !os.csv_rep) {
            fprintf(stderr, "cpbench: write error on %s: %s\n", os.csv_name, strerror(errno));
            out_failed = 1;
        }
    }
    /* as coreutils' close_stdout: the table's last lines may only fail now */
    out_failed |= check_stdout(&os) != 0;
    if (hw_interrupted) return 128 + hw_interrupted;
    return any_failed || out_failed ? 1 : 0;
}
