/*
 * The runner's parts and what they share (private to them):
 *   configs.c     configuration enumeration (harness.h: hw_configs_build)
 *   runner.c      scheduling: order, --interleave, warm-ups and --repeat,
 *                 the measurement of a repetition, the interrupted path
 *   sinks.c       the outputs of a run: which, checked together, in order
 *   sink_table.c, sink_csv.c, and the JSON (json.c) and .hgrm (hgrm.c)
 *                 sinks: the outputs, each behind struct hw_sink
 */
#ifndef CP_HARNESS_RUNNER_H
#define CP_HARNESS_RUNNER_H

#include "harness/harness.h"

#include <sys/resource.h>

/* One measured repetition's figures. */
typedef struct hw_rep_result {
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
} hw_rep_result;

/* A configuration's measured repetitions so far. */
typedef struct hw_cfg_state {
    hw_rep_result *reps;                /* --repeat slots */
    int nreps, failed, nthr;            /* nthr: the threads its last repetition started */
    cp_hist *hist;                      /* their latencies, merged */
} hw_cfg_state;

/* What every sink sees of the run. */
typedef struct hw_run_env {
    const hw_opts *o;
    const hw_meta *m;
    const hw_config *cfgs;
    const hw_cfg_state *cs;             /* per configuration */
    size_t ncfg;
    int round_units;                    /* --interleave over several configurations: a unit per round */
    int quiet;                          /* no table (--quiet, or --csv=-) */
    int stdout_reported;                /* a lost write to stdout was reported (the table and --csv=- share it) */
    /* at the end (finish) */
    int interrupted, lost_write, any_failed;
} hw_run_env;

/* One repetition as the outputs see it: a CSV row, a JSON entry. */
typedef struct hw_row {
    const hw_run_env *env;
    const hw_config *c;
    int rep;
    const wl_run *run;                  /* nthr, fail, metrics */
    const cp_hist *hist, *hist_u;       /* its latencies; open loop: from the actual start (else NULL) */
    const hw_rep_result *res;
    const struct rusage *ru0, *ru1;     /* around it (go: zero and the child's) */
} hw_row;

/* An output. Any hook may be NULL. The int hooks return -1 when the output
 * lost a write (reported once, on stderr): the run stops there (exit 1). */
typedef struct hw_sink hw_sink;
struct hw_sink {
    void (*open)(hw_run_env *env);      /* before anything is written: bad input exits 2, creates
                                         * nothing that stays */
    int  (*begin)(hw_run_env *env);     /* headers */
    int  (*rep)(hw_run_env *env, const hw_row *row);   /* a measured repetition */
    int  (*config_end)(hw_run_env *env, size_t ci);    /* configuration ci has all its repetitions */
    int  (*finish)(hw_run_env *env);    /* the end: commit, or (interrupted, lost_write) abandon */
};
extern const hw_sink hw_sink_csv, hw_sink_json, hw_sink_hgrm, hw_sink_table;

/* sinks.c: the run's sinks in order (CSV, JSON, .hgrm, table), their
 * outputs checked together first (bad input exits 2); returns how many. */
size_t hw_sinks_select(const hw_run_env *env, const hw_sink **list);

/* near/far of a cross-core round trip (--placement-split); "" when not probed */
const char *hw_placement_of(double rt, double split);
/* flush stdout; -1 on a lost write (reported once, env->stdout_reported) */
int hw_stdout_check(hw_run_env *env);

/* sink_csv.c: the CSV's columns, one list (docs/csv.md) */
void hw_csv_header(FILE *f);
void hw_csv_row(FILE *f, const hw_row *r);

#endif
