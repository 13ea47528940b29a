/*
 * What the runner's parts share (private to them): runner.c measures the
 * repetitions, sink_csv.c writes them as CSV rows.
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

/* One repetition as the outputs see it: a CSV row, a JSON entry. */
typedef struct hw_row {
    const hw_opts *o;
    const hw_meta *m;
    const hw_config *c;
    int rep;
    int round_units;                    /* --interleave over several configurations: a unit per round */
    const wl_run *run;                  /* nthr, fail, fair_min/max, metrics */
    const cp_hist *hist, *hist_u;       /* its latencies; open loop: from the actual start (else NULL) */
    const hw_rep_result *res;
    const struct rusage *ru0, *ru1;     /* around it (go: zero and the child's) */
} hw_row;

/* near/far of a cross-core round trip (--placement-split); "" when not probed */
const char *hw_placement_of(double rt, double split);

/* sink_csv.c: the CSV's columns, one list (docs/csv.md) */
void hw_csv_header(FILE *f);
void hw_csv_row(FILE *f, const hw_row *r);

#endif
