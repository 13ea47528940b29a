/*
 * The runner's scheduling: the configurations (configs.c) are run in order
 * or, with --interleave, round by round in a seeded random order; each gets
 * --warmup checked but unrecorded runs and then --repeat measured
 * repetitions, and each measured repetition goes to every sink (sinks.c),
 * as does each configuration once it is complete. A signal stops the run
 * gracefully: the repetition it cut short is discarded, the sinks keep what
 * was complete (the CSV's rows, the table's partial lines) or remove what
 * describes whole runs (JSON, .hgrm temporaries).
 */
#define _GNU_SOURCE
#include "harness/runner.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

/* Placement (near/far) of a cross-core round trip: these VMs' two vCPUs show
 * about 57 ns near and 335 ns far; 150 ns splits them (--placement-split). */
const char *hw_placement_of(double rt, double split)
{
    return rt <= 0 ? "" : rt < split ? "near" : "far";
}

typedef struct slot {
    size_t ci;
    int rep;                    /* < 0: a warm-up */
} slot;

/* The order of the (configuration, repetition) runs. Without --interleave
 * one configuration after the other; with it, the warm-ups first in order,
 * then round by round shuffled (seeded by --seed), as Google Benchmark's
 * random interleaving, so that drift of the machine spreads evenly. */
static slot *schedule(const hw_opts *o, size_t ncfg, size_t *nsched)
{
    *nsched = ncfg * (size_t)(o->warmup + o->repeat);
    slot *sched = calloc(*nsched ? *nsched : 1, sizeof *sched);
    if (!sched) return NULL;
    size_t ns = 0;
    if (!o->interleave) {
        for (size_t ci = 0; ci < ncfg; ci++)
            for (int rep = -(int)o->warmup; rep < (int)o->repeat; rep++) sched[ns++] = (slot){ ci, rep };
        return sched;
    }
    uint64_t rng = o->seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t ci = 0; ci < ncfg; ci++)
        for (int rep = -(int)o->warmup; rep < 0; rep++) sched[ns++] = (slot){ ci, rep };
    for (int rep = 0; rep < (int)o->repeat; rep++) {
        size_t first = ns;
        for (size_t ci = 0; ci < ncfg; ci++) sched[ns++] = (slot){ ci, rep };
        for (size_t k = ns - first; k > 1; k--) {   /* Fisher-Yates over this round */
            rng = wl_mix(rng);
            size_t j = first + (size_t)(rng % k), i = first + k - 1;
            size_t t = sched[i].ci;
            sched[i].ci = sched[j].ci;
            sched[j].ci = t;
        }
    }
    return sched;
}

/* The histograms one repetition records into. */
typedef struct hists {
    cp_hist *rep, *rep_u;       /* rep_u: open loop only (the uncorrected latency) */
} hists;

/* One run of c and its figures; -1 if a signal cut it short (neither
 * checked nor recorded). */
static int measure(const hw_opts *o, const hw_config *c, int rep, wl_run *run, const hists *H, hw_rep_result *res,
                   struct rusage *ru0, struct rusage *ru1)
{
    /* placement probe around measured repetitions (a few ms) */
    double xb = rep >= 0 && o->placement_split > 0 ? hw_xcore_rt_ns(10000) : 0;
    getrusage(RUSAGE_SELF, ru0);
    uint64_t al0 = 0, al1 = 0;
    int have_al = hw_alloc_count(&al0) == 0;
    int rc = hw_run_one(c->w, &c->cfg, o->timeout, run, H->rep, o->rate > 0 ? H->rep_u : NULL);
    getrusage(RUSAGE_SELF, ru1);
    if (hw_interrupted) return -1;
    if (rc) wl_fail(run, "the run could not start (out of memory?)");
    *res = (hw_rep_result){ .xcore_before = xb };
    if (xb > 0) res->xcore_after = hw_xcore_rt_ns(10000);
    res->allocs = have_al && hw_alloc_count(&al1) == 0 ? (int64_t)(al1 - al0) : -1;
    for (int i = 0; i < run->nthr && c->cfg.b; i++) res->alloc_bytes += run->thr[i].alloc_bytes;
    if (!c->cfg.b) {    /* go: the child's own figures for the repetition */
        memset(ru0, 0, sizeof *ru0);
        hw_go_usage(ru1, &res->allocs, &res->alloc_bytes);
    }
    res->cpu_s = (double)(ru1->ru_utime.tv_sec - ru0->ru_utime.tv_sec + ru1->ru_stime.tv_sec - ru0->ru_stime.tv_sec) +
                 (double)(ru1->ru_utime.tv_usec - ru0->ru_utime.tv_usec + ru1->ru_stime.tv_usec -
                          ru0->ru_stime.tv_usec) / 1e6;
    res->ops_per_cpu_s = res->cpu_s > 0 ? (double)run->ops / res->cpu_s : 0;
    res->seconds = (double)(run->t_end - run->t_start) / 1e9;
    res->ops = run->ops;
    double rs = hw_rate_seconds(&c->cfg, res->seconds);
    res->ops_per_sec = rs > 0 ? (double)run->ops / rs : 0;
    res->failed = run->nfail > 0;
    memcpy(res->metric, run->metric, sizeof res->metric);
    res->metric_set = run->metric_set;
    uint64_t fmin, fmax;    /* the fairness metrics (runtime/workload.h) */
    res->fairness = wl_fairness_of(c->w, run->metric, run->metric_set, &fmin, &fmax) ? (double)fmin / (double)fmax : -1;
    return 0;
}

static cp_hist *new_hist(void) { return cp_hist_new(3, 3600ull * 1000000000ull); }

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "cpbench: out of memory\n");
        exit(1);
    }
    return p;
}

/* The environment guard: what makes these numbers less trustworthy. */
static void warn_environment(const hw_meta *m)
{
    if (m->loadavg > 0.5 * m->cpus)
        fprintf(stderr, "cpbench: warning: load average %.2f on %d cpus at start: results will be noisy\n",
                m->loadavg, m->cpus);
    if (m->governor[0] && strcmp(m->governor, "performance"))
        fprintf(stderr, "cpbench: warning: cpufreq governor is '%s', not 'performance'\n", m->governor);
}

/* A run in progress: its outputs, histograms and counts. */
typedef struct runner {
    hw_run_env env;
    const hw_sink *sinks[4];
    size_t nsinks;
    hists H;
    cp_hist *shared;            /* without --interleave the configurations take turns with one histogram */
    hw_cfg_state *cs;
    slot *sched;
    size_t nsched, written;
    int progress, lost;
    uint64_t t_begin;
} runner;

/* Each sink's hook of one phase, in order, until one loses a write. */
#define EACH_SINK(R, from, to, hook, ...)                                                                        \
    for (size_t s_ = (from); s_ < (to) && !(R)->lost; s_++)                                                      \
        if ((R)->sinks[s_]->hook && (R)->sinks[s_]->hook(__VA_ARGS__)) (R)->lost = 1;

/* Every configuration's state; every output opened (bad input exits 2 and
 * removes what was created), nothing written yet. */
static void prepare(runner *R)
{
    const hw_opts *o = R->env.o;
    for (size_t i = 0; i < R->nsinks; i++)
        if (R->sinks[i]->open) R->sinks[i]->open(&R->env);
    R->H = (hists){ must(new_hist()), must(new_hist()) };
    R->shared = must(new_hist());
    R->cs = must(calloc(R->env.ncfg ? R->env.ncfg : 1, sizeof *R->cs));
    for (size_t ci = 0; ci < R->env.ncfg; ci++) {
        R->cs[ci].reps = must(calloc((size_t)o->repeat, sizeof *R->cs[ci].reps));
        R->cs[ci].hist = o->interleave ? must(new_hist()) : R->shared;
    }
    R->env.cs = R->cs;
    R->sched = must(schedule(o, R->env.ncfg, &R->nsched));
}

/* The headers: the files' (the CSV is truncated only now), the
 * environment's warnings (stderr, whatever became of the files), then the
 * table's (last in the list). */
static void begin(runner *R)
{
    size_t t = 0;
    while (t < R->nsinks && R->sinks[t] != &hw_sink_table) t++;
    EACH_SINK(R, 0, t, begin, &R->env)
    warn_environment(R->env.m);
    EACH_SINK(R, t, R->nsinks, begin, &R->env)
}

/* Schedule slot si: one run, checked; a measured one recorded and written.
 * -1: a signal cut it short. */
static int run_slot(runner *R, size_t si)
{
    static wl_run run;
    const hw_opts *o = R->env.o;
    size_t ci = R->sched[si].ci;
    int rep = R->sched[si].rep;
    const hw_config *c = &R->env.cfgs[ci];
    hw_cfg_state *S = &R->cs[ci];
    if (R->progress) {
        double el = (double)(cp_now_ns() - R->t_begin) / 1e9;
        fprintf(stderr, "\r[%zu/%zu] %s %s %.40s  elapsed %.0f s, about %.0f s left\033[K", si + 1, R->nsched,
                c->w->name, hw_impl_name(c->cfg.b), c->label, el,
                si ? el / (double)si * (double)(R->nsched - si) : 0.0);
        fflush(stderr);
    }
    if (!o->interleave && rep == -(int)o->warmup) cp_hist_reset(S->hist);
    hw_rep_result res;
    struct rusage ru0, ru1;
    if (measure(o, c, rep, &run, &R->H, &res, &ru0, &ru1)) return -1;
    if (res.failed) {
        S->failed = R->env.any_failed = 1;
        fprintf(stderr, "cpbench: FAIL %s impl=%s %s%s%s (rep %d): %s\n", c->w->name, hw_impl_name(c->cfg.b),
                c->label, c->params[0] ? " " : "", c->params, rep, run.fail);
    }
    if (rep < 0) return 0;   /* warm-up: checked, not recorded */
    S->reps[rep] = res;
    S->nreps = rep + 1;
    S->nthr = run.nthr;
    R->written++;
    cp_hist_merge(S->hist, R->H.rep);
    hw_row row = { .env = &R->env, .c = c, .rep = rep, .run = &run, .hist = R->H.rep,
                   .hist_u = o->rate > 0 ? R->H.rep_u : NULL, .res = &res, .ru0 = &ru0, .ru1 = &ru1 };
    /* A lost write ends the run (exit 1): what it would go on to measure
     * could not all be recorded. */
    EACH_SINK(R, 0, R->nsinks, rep, &R->env, &row)
    if (R->lost || S->nreps < (int)o->repeat) return 0;
    if (R->progress) fputs("\r\033[K", stderr);
    EACH_SINK(R, 0, R->nsinks, config_end, &R->env, ci)
    return 0;
}

/* The end: each sink commits, or abandons what describes whole runs. */
static void finish(runner *R)
{
    if (R->progress) fputs("\r\033[K", stderr);
    R->env.interrupted = hw_interrupted != 0;
    R->env.lost_write = R->lost;
    for (size_t i = 0; i < R->nsinks; i++)
        if (R->sinks[i]->finish && R->sinks[i]->finish(&R->env)) R->lost = 1;
    if (R->env.interrupted || R->env.lost_write) hw_tmp_abandon();
    if (R->env.interrupted)
        printf("\ninterrupted by signal %d: %zu completed repetitions kept%s\n", (int)hw_interrupted, R->written,
               R->env.o->csv ? " (CSV complete up to there)" : "");
    /* as coreutils' close_stdout: the table's last lines may only fail now */
    R->lost |= hw_stdout_check(&R->env) != 0;
    for (size_t ci = 0; ci < R->env.ncfg; ci++) {
        free(R->cs[ci].reps);
        if (R->env.o->interleave) cp_hist_free(R->cs[ci].hist);
    }
    free(R->cs), free(R->sched), free((void *)R->env.cfgs);
    cp_hist_free(R->H.rep), cp_hist_free(R->H.rep_u), cp_hist_free(R->shared);
}

int hw_run_all(const hw_opts *o)
{
    static runner R;
    static hw_meta m;
    R = (runner){ .env = { .o = o, .quiet = o->quiet || (o->csv && !strcmp(o->csv, "-")) } };
    R.env.cfgs = hw_configs_build(o, &R.env.ncfg);
    R.env.round_units = o->interleave && R.env.ncfg > 1;
    R.nsinks = hw_sinks_select(&R.env, R.sinks);    /* bad input exits 2 */
    if (o->dup_note[0])
        fprintf(stderr, "cpbench: note: duplicates dropped, each configuration runs once: %s\n", o->dup_note);
    /* stdout: a buffer that only our checks flush, so a failed flush keeps
     * its errno for the message (a terminal stays line-buffered) */
    if (!isatty(1)) setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    hw_calibrate();
    hw_meta_collect(&m);
    R.env.m = &m;
    prepare(&R);
    hw_signals_install();
    hw_pin_set(o->pin_cpus, o->npin);
    R.progress = !R.env.quiet && isatty(2);
    R.t_begin = cp_now_ns();
    begin(&R);
    for (size_t si = 0; si < R.nsched && !hw_interrupted && !R.lost; si++)
        if (run_slot(&R, si)) break;
    finish(&R);
    if (hw_interrupted) return 128 + hw_interrupted;
    return R.env.any_failed || R.lost ? 1 : 0;
}
