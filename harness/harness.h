/* cpbench internals: options, the catalogue, the runner and its outputs. */
#ifndef CP_HARNESS_H
#define CP_HARNESS_H

#include "runtime/workload.h"

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

#define HW_MAX_VALUES 256

/* the catalogue: each workload compiled per family + once generic */
typedef struct hw_entry {
    const wl_workload *generic;
    const wl_workload *fam[CP_FAMILY_COUNT];    /* direct calls, in cp_backend_at() order */
} hw_entry;
extern const hw_entry hw_catalogue[];
extern const size_t hw_catalogue_len;
/* The entry b runs: its family's direct one, or the generic one under
 * --dispatch=table and for a backend that is not a family (the negative
 * controls); hw_dispatch_name tells which ("direct" / "table"). */
const wl_workload *hw_pick(const hw_entry *e, const cp_backend *b, int table_dispatch);
const char *hw_dispatch_name(const cp_backend *b, int table_dispatch);
struct hw_opts;
const char *hw_run_dispatch_name(const struct hw_opts *o);

/* a knob's swept values */
typedef struct hw_list {
    int given;                      /* set on the command line */
    size_t n;
    int64_t v[HW_MAX_VALUES];
} hw_list;

/* the common knobs, from runtime/knobs.def (what each field means: there) */
#define HW__K_ENUM(ID, ...) K_##ID,
enum { WL_KNOB_LIST(HW__K_ENUM) K_NKNOBS };
#undef HW__K_ENUM
_Static_assert((int)K_NKNOBS == (int)WL_NKNOBS, "one knob list");
typedef struct hw_knob {
    const char *field;              /* the wl_knobs member and the CSV column */
    const char *flag, *metavar;     /* --flag=METAVAR */
    int64_t lo, hi;
    const char *label;              /* the table's short name */
    int show;                       /* WL_KS_* */
    const char *unit, *note, *doc;
} hw_knob;
extern const hw_knob hw_knobs[K_NKNOBS];   /* cli.c */
extern const char *const hw_knob_flag[K_NKNOBS];

/* a fixed configuration of a suite (--suite=NAME): a pattern and its knobs;
 * HW_DEF: the pattern's default */
#define HW_DEF INT64_MIN
typedef struct hw_suite_cfg {
    const char *pattern;
    wl_knobs k;
} hw_suite_cfg;

typedef struct hw_opts {
    const hw_entry *patterns[64];
    size_t npatterns;
    const cp_backend *impls[8];     /* NULL: go (hw_impl_name) */
    size_t nimpls;
    int go_from_all;                /* go came from --impl=all: a pattern it cannot run is skipped, not refused */
    hw_list knob[K_NKNOBS];
    struct { char key[64]; hw_list vals; } set[WL_MAX_SET * 4];
    size_t nset;
    double duration, rate;
    int64_t repeat, warmup, lat_sample;
    uint64_t seed;
    double timeout;
    const char *csv;
    const char *json;               /* --json=FILE (docs/outputs.md) */
    const char *hgrm_dir;           /* --hgrm=DIR */
    int table_dispatch;
    int quiet;
    int interleave;                 /* --interleave: shuffle (configuration, repetition) runs */
    double placement_split;         /* ns; 0: no placement probe */
    char pin[128];                  /* --pin as given: none, compact, spread or a CPU list */
    int pin_cpus[256], npin;
    char variant[8][32];            /* --variant=NAME[,NAME]: names swept; none given: each pattern's default */
    size_t nvariant;
    const char *suite_name;         /* --suite: run these configurations instead of a sweep */
    const hw_suite_cfg *suite;
    size_t nsuite;
    char dup_note[512];             /* duplicates dropped from the lists, "" if none (printed by the runner) */
} hw_opts;

/* A sweep may have at most this many configurations (patterns x impls x the
 * values of every knob and parameter a pattern uses): a larger one is bad
 * input, refused from the count before anything is enumerated. */
#define HW_MAX_CONFIGS 100000

/* cli.c */
void hw_usage(FILE *f);
int  hw_parse(int argc, char **argv, hw_opts *o, int *want_list, int *want_help);
const char *hw_variant_name(const wl_workload *w, int v);    /* "default" for a pattern without variants */
int hw_variant_index(const wl_workload *w, const char *name);  /* -1: w has no such variant */
/* "name=value;name=value" of the metrics reported (the CSV's metrics column;
 * not those with a column of their own, own_column: the fairness) */
void hw_metrics_str(const wl_workload *w, const double *metric, unsigned set, char *buf, size_t n);
void hw_list_catalogue(FILE *f);
void hw_pattern_help(FILE *f, const hw_entry *e);
__attribute__((noreturn, format(printf, 1, 2))) void hw_bad_input(const char *fmt, ...);
/* Fuzz targets only: called instead of exit(2) on bad input; must not return. */
extern void (*hw_bad_input_hook)(void);
int64_t hw_parse_one(const char *flag, const char *s, int64_t lo, int64_t hi);
double hw_parse_seconds(const char *flag, const char *s);
void hw_parse_patterns(const char *arg, hw_opts *o);
void hw_parse_impls(const char *arg, hw_opts *o);

/* stress.c: `cpbench stress ...` */
int hw_stress_main(int argc, char **argv);
extern char hw_replay_line[512];    /* printed by the watchdog when set */

/* support.c */
void hw_calibrate(void);
double hw_clock_cost_ns(void);
const char *hw_clock_desc(void);     /* after hw_calibrate */
double hw_xcore_rt_ns(uint64_t iters); /* cross-core cache-line round trip, ns */
void hw_pin_set(const int *cpus, int n);
int  hw_alloc_count(uint64_t *count);   /* allocations so far (jemalloc); -1 without it */  /* thread i runs on cpus[i % n]; n = 0: unpinned */
int  hw_run_one(const wl_workload *w, const wl_cfg *cfg, double timeout_s, wl_run *out_run,
                cp_hist *merged, cp_hist *merged_u /* open loop only, may be NULL */);
void hw_run_release(wl_run *r);

/* goref.c: --impl=go, the Go reference (docs/go.md). In the harness an
 * impl is a cp_backend, or NULL for go. */
const char *hw_impl_name(const cp_backend *b);      /* "go" for NULL */
void hw_go_use_race(int race);      /* before anything else: stress uses the -race build */
int  hw_go_available(void);         /* the Go program is built */
const char *hw_go_missing_hint(void);   /* what to install when it is not */
/* NULL if the Go twin can run cfg, else why not (starts the Go program) */
const char *hw_go_check(const wl_workload *w, const wl_cfg *cfg, const int *pin, int npin);
int  hw_go_run(const wl_workload *w, const wl_cfg *cfg, double timeout_s, wl_run *r, cp_hist *merged,
               cp_hist *merged_u);  /* one repetition in the Go program (hw_run_one calls it) */
/* the last go repetition's own resource use (the child's, for the columns) */
void hw_go_usage(struct rusage *ru, int64_t *allocs, uint64_t *alloc_bytes);
const char *hw_go_version(void);    /* "go1.19.8"; "" before the Go program started */
int  hw_go_maxprocs(void);
void hw_go_dump(void);              /* watchdog: the goroutines' stacks to stderr */
void hw_go_stop(void);              /* interrupted: stop the current run (async-signal-safe) */

/* meta.c */
typedef struct hw_meta {
    int cpus;
    char kernel[256], compiler[128], allocator[64], git_rev[48], timestamp[32], clock[96];
    double clock_ns;
    double loadavg;                 /* 1-minute load average at start */
    char governor[32];              /* cpufreq governor of cpu0, "" if unreadable */
    char cpu_model[128];            /* /proc/cpuinfo "model name" of the first CPU, "" if none */
    char invocation[24];            /* unique id of this cpbench process (the unit of replication) */
} hw_meta;
void hw_meta_collect(hw_meta *m);

/* cli.c: the suites (--suite=NAME) */
const hw_suite_cfg *hw_suite_find(const char *name, size_t *n);

/* configs.c (enumeration) and runner.c (scheduling; its parts: runner.h) */
/* Everything about one configuration except its repetitions. */
typedef struct hw_config {
    const hw_entry *e;
    const wl_workload *w;
    wl_cfg cfg;
    char params[256];       /* "fail_every=0;cancel_after_ms=0" */
    char label[256];        /* table: "P=1 C=1 cap=1024 payload=16" */
} hw_config;
hw_config *hw_configs_build(const hw_opts *o, size_t *n);   /* validated; exits 2 on bad input */
/* e on b at the pattern's defaults, --seed, --lat-sample and --dispatch of o */
void hw_config_init(hw_config *c, const hw_opts *o, const hw_entry *e, const cp_backend *b);
void hw_config_describe(hw_config *c);  /* label and params from cfg */
int hw_run_all(const hw_opts *o);

/* ab.c: `cpbench ab BIN_A BIN_B ...` (argv from "ab") */
int hw_ab_main(int argc, char **argv);

/* compare.c: `cpbench compare BASE.csv NEW.csv ...` (argv after "compare") */
int hw_compare(int argc, char **argv);

/* Machine-readable outputs (docs/outputs.md): Google Benchmark JSON (json.c),
 * HdrHistogram .hgrm per configuration (hgrm.c), both written under a
 * temporary name and renamed into place (outfile.c). */
typedef struct hw_rep_out {
    int rep, run_threads;
    uint64_t ops;
    double seconds, cpu_s;          /* wall time; user + system CPU time */
    double rate_seconds;            /* what ops/s divides by (hw_rate_seconds) */
    const char *error;              /* NULL when the repetition passed */
    const cp_hist *hist;            /* its latencies */
    const double *metric;           /* the pattern's metrics (wl_run.metric), bit i of metric_set: reported */
    unsigned metric_set;
} hw_rep_out;
/* "producers:1/consumers:1/capacity:1024" (sep ':' '/') or
 * "producers-1_consumers-1_capacity-1024" (sep '-' '_') */
void hw_cfg_slug(const hw_opts *o, const wl_workload *w, const wl_cfg *cfg, char kv, char sep, char *buf,
                 size_t n);
/* outfile.c: output files (slots: one file of each kind open at a time) */
enum { HW_SLOT_JSON, HW_SLOT_HGRM, HW_SLOT_CSV, HW_NSLOTS };
FILE *hw_tmp_open(const char *final, int slot);   /* a temporary beside final's target; NULL + errno
                                                   * (EISDIR: a directory) */
int  hw_tmp_commit(FILE *f, int slot);  /* close + rename; -1 (reported: "write error on ...") */
void hw_tmp_close(FILE *f, int slot);   /* close and remove the temporary (no message) */
void hw_tmp_abandon(void);          /* unlink live temporaries (async-signal-safe) */
FILE *hw_direct_open(const char *path, int slot);   /* written in place, not truncated yet; NULL + errno */
int  hw_direct_start(FILE *f, int slot);            /* truncate now; -1 + errno */
int  hw_out_is_dir(const char *path);               /* path (symlinks followed) is a directory */
int  hw_out_same(const char *a, const char *b);     /* one file ("-": stdout) */
int  hw_out_check(FILE *f, const char *name, int *reported);   /* flush; -1 on a lost write (reported once) */
void hw_signals_install(void);      /* graceful SIGINT/SIGTERM/SIGHUP/SIGPIPE (outfile.c) */
extern volatile sig_atomic_t hw_interrupted;   /* the first such signal, 0 if none */
void hw_stop_current_run(void);     /* async-signal-safe (support.c) */
typedef struct hw_json hw_json;
hw_json *hw_json_open(const hw_opts *o, const hw_meta *m);   /* NULL without --json */
void hw_json_rep(hw_json *j, const wl_workload *w, const wl_cfg *cfg, const hw_rep_out *r);
void hw_json_config_end(hw_json *j);
int  hw_json_close(hw_json *j);
void hw_json_abandon(hw_json *j);   /* interrupted or failed: remove the temporary, free */
int  hw_json_check(hw_json *j, int *reported);   /* -1 once a write to it failed (reported) */
void hw_hgrm_prepare(const hw_opts *o);
int  hw_hgrm_write(const hw_opts *o, const wl_workload *w, const wl_cfg *cfg, const cp_hist *h);
int  hw_hgrm_path(const hw_opts *o, const wl_workload *w, const wl_cfg *cfg, char *path, size_t n);

/* fmt.c: format helpers */
const char *hw_si(double v, char *buf, size_t n);     /* 12.3M */
const char *hw_ns(double ns, char *buf, size_t n);    /* 1.23us */
const char *hw_secs(double s, char *buf, size_t n);   /* 1.5 s, 300 ms, 1 ms: no significant digit lost */
/* what a run's ops/s divides by: its wall time, and in open loop one arrival
 * interval more (n arrivals on a fixed schedule span n intervals) */
double hw_rate_seconds(const wl_cfg *cfg, double seconds);

#endif
