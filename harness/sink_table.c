/*
 * The table on stdout (not with --quiet or --csv=-): a header, then a line
 * per configuration once it has all its repetitions (median ops/s with its
 * range, CV, ops/cpu-s, latency percentiles of the merged histogram, status)
 * and, under it, the pattern's own figures; an interrupted run adds what the
 * unfinished configurations got to.
 */
#include "harness/runner.h"
#include "harness/stats.h"

#include <string.h>

static void table_header(const hw_meta *m, const hw_opts *o)
{
    printf("cpbench %s | %d cpus | %s | %s | %s\n", m->git_rev, m->cpus, m->kernel, m->compiler, m->allocator);
    printf("clock %s, %.1f ns/read | %lld measured repetitions after %lld warm-up | latency: 1 op in %lld timed | "
           "%s dispatch\n",
           m->clock, m->clock_ns, (long long)o->repeat, (long long)o->warmup, (long long)o->lat_sample,
           hw_run_dispatch_name(o));
    for (size_t i = 0; i < cp_backend_count(); i++)    /* each backend as this kernel runs it (futex_waitv) */
        printf("impl %s: %s\n", cp_backend_name(cp_backend_at(i)), cp_backend_describe(cp_backend_at(i)));
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
static double ops_summary(const hw_rep_result *reps, int n, char *range, size_t rn, char *cv, size_t cn)
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

static void table_row(const hw_meta *m, const hw_opts *o, const hw_config *c, const hw_rep_result *reps, int n,
                      const cp_hist *h, int run_threads, int failed)
{
    char a[16], p[5][16], range[40], cv[16], place[96] = "";
    int nfar = 0, moved = 0, probed = 0;
    for (int i = 0; i < n; i++) {
        if (reps[i].xcore_before <= 0) continue;
        const char *pb = hw_placement_of(reps[i].xcore_before, o->placement_split);
        const char *pa = hw_placement_of(reps[i].xcore_after, o->placement_split);
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

static int table_begin(hw_run_env *env)
{
    table_header(env->m, env->o);
    return hw_stdout_check(env);
}

static int table_config_end(hw_run_env *env, size_t ci)
{
    const hw_cfg_state *S = &env->cs[ci];
    table_row(env->m, env->o, &env->cfgs[ci], S->reps, (int)env->o->repeat, S->hist, S->nthr, S->failed);
    return hw_stdout_check(env);
}

static int table_finish(hw_run_env *env)
{
    if (env->interrupted)   /* what the unfinished configurations got to */
        for (size_t ci = 0; ci < env->ncfg; ci++) {
            const hw_cfg_state *S = &env->cs[ci];
            if (S->nreps > 0 && S->nreps < (int)env->o->repeat)
                table_row(env->m, env->o, &env->cfgs[ci], S->reps, S->nreps, S->hist, S->nthr, S->failed);
        }
    if (env->any_failed) printf("\nat least one run FAILED its invariants (see stderr)\n");
    return 0;
}

const hw_sink hw_sink_table = { .begin = table_begin, .config_end = table_config_end, .finish = table_finish };
