/*
 * --json=FILE: Google Benchmark's JSON output format (json_schema_version 1),
 * so that Google Benchmark's tools/compare.py can compare two cpbench runs.
 *
 * One "iteration" entry per measured repetition, named
 *   <pattern>/impl:<impl>/<knob>:<value>/...      (run_name == name)
 * then, per configuration with at least two passing repetitions, the
 * aggregates <name>_mean, _median, _stddev (sample) and _cv (stddev / mean)
 * over the passing repetitions, as Google Benchmark computes them.
 * family_index numbers the patterns, per_family_instance_index the
 * configurations within a pattern (compare.py sorts on both).
 * The file is streamed to a temporary and renamed at the end (outfile.c).
 */
#define _GNU_SOURCE
#include "harness/runner.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { C_REAL, C_CPU, C_IPS, C_P50, C_P90, C_P99, C_P999, C_MAX, C_ITER, C_N };
static const char *const counter_name[C_N] = { "real_time", "cpu_time", "items_per_second", "p50_ns", "p90_ns",
                                               "p99_ns", "p999_ns", "max_ns", "iterations" };

struct hw_json {
    FILE *f;
    const hw_opts *o;
    int nentries;
    /* the configuration being measured */
    char name[768];
    int family, instance, threads, have_cfg;
    char last_pattern[64];
    int n, nlat;                    /* passing repetitions; those with latencies */
    double *v[C_N];                 /* per passing repetition */
};

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* JSON has no NaN or infinity. */
static void json_num(FILE *f, double v)
{
    fprintf(f, "%.10g", isfinite(v) ? v : 0.0);
}

static void read_first_line(const char *path, char *buf, size_t n)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(buf, (int)n, f)) buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

static double cpu_mhz(void)
{
    /* the first "cpu MHz" of /proc/cpuinfo, else the cpufreq maximum, else 0 */
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    double mhz = 0;
    if (f) {
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "cpu MHz", 7)) {
                const char *c = strchr(line, ':');
                if (c) mhz = atof(c + 1);
                break;
            }
        fclose(f);
    }
    if (mhz <= 0) {
        read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", line, sizeof line);
        mhz = atof(line) / 1000.0;
    }
    return mhz > 0 ? mhz : 0;
}

static void write_context(FILE *f, const hw_opts *o, const hw_meta *m)
{
    char host[256] = "", exe[PATH_MAX] = "", date[64] = "", gov[64];
    gethostname(host, sizeof host - 1);
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = 0;
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", &tm);
    size_t dl = strlen(date);   /* +0100 -> +01:00, as Google Benchmark writes it */
    if (dl >= 5 && dl + 1 < sizeof date) {
        memmove(date + dl - 1, date + dl - 2, 3);
        date[dl - 2] = ':';
    }
    /* Google Benchmark: scaling is "enabled" when a cpufreq governor other
     * than performance is active */
    read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", gov, sizeof gov);
    double load[3] = { 0, 0, 0 };
    if (getloadavg(load, 3) < 0) load[0] = load[1] = load[2] = 0;

    fputs("{\n  \"context\": {\n    \"date\": ", f);
    json_str(f, date);
    fputs(",\n    \"host_name\": ", f);
    json_str(f, host);
    fputs(",\n    \"executable\": ", f);
    json_str(f, exe);
    fprintf(f, ",\n    \"num_cpus\": %d,\n    \"mhz_per_cpu\": %.0f,\n    \"cpu_scaling_enabled\": %s,\n", m->cpus,
            cpu_mhz(), gov[0] && strcmp(gov, "performance") ? "true" : "false");
    fprintf(f, "    \"caches\": [],\n    \"load_avg\": [%.2f, %.2f, %.2f],\n", load[0], load[1], load[2]);
#ifdef NDEBUG
    fputs("    \"library_build_type\": \"release\",\n", f);
#else
    fputs("    \"library_build_type\": \"debug\",\n", f);
#endif
    fputs("    \"json_schema_version\": 1,\n    \"kernel\": ", f);
    json_str(f, m->kernel);
    fputs(",\n    \"compiler\": ", f);
    json_str(f, m->compiler);
    fputs(",\n    \"allocator\": ", f);
    json_str(f, m->allocator);
    fputs(",\n    \"git_rev\": ", f);
    json_str(f, m->git_rev);
    fputs(",\n    \"timestamp\": ", f);
    json_str(f, m->timestamp);
    fputs(",\n    \"clock\": ", f);
    json_str(f, m->clock);
    fprintf(f, ",\n    \"clock_ns\": %.1f,\n    \"dispatch\": \"%s\",\n    \"lat_sample\": %lld,\n", m->clock_ns,
            hw_run_dispatch_name(o), (long long)o->lat_sample);
    for (size_t i = 0; i < cp_backend_count(); i++) {  /* how each backend runs on this kernel (futex_waitv) */
        fprintf(f, "    \"impl_%s\": ", cp_backend_name(cp_backend_at(i)));
        json_str(f, cp_backend_describe(cp_backend_at(i)));
        fputs(",\n", f);
    }
    if (hw_go_version()[0]) {     /* the Go reference ran (or was checked) in this sweep */
        fputs("    \"go_version\": ", f);
        json_str(f, hw_go_version());
        fprintf(f, ",\n    \"gomaxprocs\": %d,\n", hw_go_maxprocs());
    }
    fprintf(f, "    \"warmup\": %lld,\n    \"seed\": %llu\n  },\n  \"benchmarks\": [", (long long)o->warmup,
            (unsigned long long)o->seed);
}

hw_json *hw_json_open(const hw_opts *o, const hw_meta *m)
{
    if (!o->json) return NULL;
    FILE *f = hw_tmp_open(o->json, HW_SLOT_JSON);   /* first: nothing to free on bad input */
    if (!f) hw_bad_input("--json: cannot write '%s': %s", o->json, strerror(errno));
    hw_json *j = calloc(1, sizeof *j);
    for (int c = 0; j && c < C_N; c++)
        if (!(j->v[c] = calloc((size_t)o->repeat, sizeof(double)))) j = NULL;
    if (!j) {
        fprintf(stderr, "cpbench: out of memory\n");
        exit(1);
    }
    j->o = o;
    j->family = -1;
    j->f = f;
    setvbuf(f, NULL, _IOFBF, 1 << 16);   /* no flush but ours (hw_json_check): a failed one keeps its errno */
    write_context(j->f, o, m);
    return j;
}

/* The fields every entry has, up to and including "threads". */
static void entry_head(hw_json *j, const char *suffix, const char *run_type)
{
    FILE *f = j->f;
    fputs(j->nentries++ ? ",\n    {\n" : "\n    {\n", f);
    fputs("      \"name\": ", f);
    char name[800];
    snprintf(name, sizeof name, "%s%s", j->name, suffix);
    json_str(f, name);
    fprintf(f, ",\n      \"family_index\": %d,\n      \"per_family_instance_index\": %d,\n      \"run_name\": ",
            j->family, j->instance);
    json_str(f, j->name);
    fprintf(f, ",\n      \"run_type\": \"%s\",\n      \"repetitions\": %lld,\n", run_type,
            (long long)j->o->repeat);
}

void hw_json_rep(hw_json *j, const wl_workload *w, const wl_cfg *cfg, const hw_rep_out *r)
{
    if (!j) return;
    if (!j->have_cfg) {
        /* first repetition of a configuration: its name and indices */
        if (j->family < 0 || strcmp(j->last_pattern, w->name)) {
            j->family++;
            j->instance = 0;
            snprintf(j->last_pattern, sizeof j->last_pattern, "%s", w->name);
        } else {
            j->instance++;
        }
        char slug[512];
        hw_cfg_slug(j->o, w, cfg, ':', '/', slug, sizeof slug);
        snprintf(j->name, sizeof j->name, "%s/impl:%s/%s", w->name, hw_impl_name(cfg->b), slug);
        j->n = j->nlat = 0;
        j->have_cfg = 1;
    }
    j->threads = r->run_threads;
    double v[C_N] = { 0 };
    /* per op and per second over the run's rate window (open loop: one
     * arrival interval longer than the run, docs/csv.md) */
    v[C_REAL] = r->ops ? r->rate_seconds * 1e9 / (double)r->ops : 0;
    v[C_CPU] = r->ops ? r->cpu_s * 1e9 / (double)r->ops : 0;
    v[C_IPS] = r->rate_seconds > 0 ? (double)r->ops / r->rate_seconds : 0;
    v[C_ITER] = (double)r->ops;
    int lat = cp_hist_count(r->hist) > 0;
    if (lat) {
        v[C_P50] = (double)cp_hist_percentile(r->hist, 50);
        v[C_P90] = (double)cp_hist_percentile(r->hist, 90);
        v[C_P99] = (double)cp_hist_percentile(r->hist, 99);
        v[C_P999] = (double)cp_hist_percentile(r->hist, 99.9);
        v[C_MAX] = (double)cp_hist_max(r->hist);
    }

    FILE *f = j->f;
    entry_head(j, "", "iteration");
    fprintf(f, "      \"repetition_index\": %d,\n      \"threads\": %d,\n      \"iterations\": %llu,\n", r->rep,
            r->run_threads, (unsigned long long)r->ops);
    for (int c = C_REAL; c <= C_CPU; c++) {
        fprintf(f, "      \"%s\": ", counter_name[c]);
        json_num(f, v[c]);
        fputs(",\n", f);
    }
    fputs("      \"time_unit\": \"ns\",\n      \"items_per_second\": ", f);
    json_num(f, v[C_IPS]);
    if (lat)
        for (int c = C_P50; c <= C_MAX; c++) {
            fprintf(f, ",\n      \"%s\": ", counter_name[c]);
            json_num(f, v[c]);
        }
    /* the pattern's metrics, as Google Benchmark user counters (per repetition) */
    for (int i = 0; w->metrics && w->metrics[i].name && i < WL_MAX_METRICS; i++)
        if (r->metric && r->metric_set >> i & 1) {
            fprintf(f, ",\n      ");
            json_str(f, w->metrics[i].name);
            fputs(": ", f);
            json_num(f, r->metric[i]);
        }
    if (r->error) {
        fputs(",\n      \"error_occurred\": true,\n      \"error_message\": ", f);
        json_str(f, r->error);
    }
    fputs("\n    }", f);

    if (r->error) return;   /* as in Google Benchmark, failed runs stay out of the aggregates */
    for (int c = 0; c < C_N; c++) j->v[c][j->n] = v[c];
    j->n++;
    j->nlat += lat;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double stat_of(int which, double *x, int n)
{
    double mean = 0, ss = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
    double sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
    switch (which) {
    case 0: return mean;
    case 1: {
        double s[1000];
        memcpy(s, x, (size_t)n * sizeof *x);
        qsort(s, (size_t)n, sizeof *s, cmp_double);
        return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
    case 2: return sd;
    default: return mean != 0 ? sd / mean : 0;
    }
}

void hw_json_config_end(hw_json *j)
{
    if (!j || !j->have_cfg) return;
    j->have_cfg = 0;
    if (j->n < 2) return;   /* Google Benchmark reports aggregates from 2 repetitions on */
    static const char *const agg[4] = { "mean", "median", "stddev", "cv" };
    FILE *f = j->f;
    for (int a = 0; a < 4; a++) {
        char suffix[16];
        snprintf(suffix, sizeof suffix, "_%s", agg[a]);
        entry_head(j, suffix, "aggregate");
        fprintf(f, "      \"threads\": %d,\n      \"aggregate_name\": \"%s\",\n      \"aggregate_unit\": \"%s\",\n",
                j->threads, agg[a], a == 3 ? "percentage" : "time");
        /* like Google Benchmark: an aggregate's iterations are the
         * repetitions' iteration count (their mean when they differ) */
        fprintf(f, "      \"iterations\": %.0f,\n", stat_of(0, j->v[C_ITER], j->n));
        for (int c = C_REAL; c <= C_CPU; c++) {
            fprintf(f, "      \"%s\": ", counter_name[c]);
            json_num(f, stat_of(a, j->v[c], j->n));
            fputs(",\n", f);
        }
        fputs("      \"time_unit\": \"ns\",\n      \"items_per_second\": ", f);
        json_num(f, stat_of(a, j->v[C_IPS], j->n));
        if (j->nlat == j->n)
            for (int c = C_P50; c <= C_MAX; c++) {
                fprintf(f, ",\n      \"%s\": ", counter_name[c]);
                json_num(f, stat_of(a, j->v[c], j->n));
            }
        fputs("\n    }", f);
    }
}

/* An interrupted or failed sweep: no JSON under the final name, nothing left over. */
void hw_json_abandon(hw_json *j)
{
    if (!j) return;
    hw_tmp_close(j->f, HW_SLOT_JSON);
    for (int c = 0; c < C_N; c++) free(j->v[c]);
    free(j);
}

/* After each repetition: flushed, so that a lost write is seen (with its
 * errno) when it happens, not at the end of a long sweep. */
int hw_json_check(hw_json *j, int *reported)
{
    return j ? hw_out_check(j->f, j->o->json, reported) : 0;
}

int hw_json_close(hw_json *j)
{
    if (!j) return 0;
    hw_json_config_end(j);
    fputs(j->nentries ? "\n  ]\n}\n" : "]\n}\n", j->f);
    int rc = hw_tmp_commit(j->f, HW_SLOT_JSON);   /* a write error is reported there */
    for (int c = 0; c < C_N; c++) free(j->v[c]);
    free(j);
    return rc;
}

/* ---- the sink ---- */
static hw_json *sink_j;
static int sink_reported;

static void json_sink_open(hw_run_env *env) { sink_j = hw_json_open(env->o, env->m); }

static int json_sink_rep(hw_run_env *env, const hw_row *row)
{
    (void)env;
    const hw_rep_result *res = row->res;
    hw_rep_out out = { .rep = row->rep, .run_threads = row->run->nthr, .ops = res->ops, .seconds = res->seconds,
                       .cpu_s = res->cpu_s, .rate_seconds = hw_rate_seconds(&row->c->cfg, res->seconds),
                       .error = res->failed ? row->run->fail : NULL, .hist = row->hist,
                       .metric = row->run->metric, .metric_set = row->run->metric_set };
    hw_json_rep(sink_j, row->c->w, &row->c->cfg, &out);
    return hw_json_check(sink_j, &sink_reported);
}

static int json_sink_config_end(hw_run_env *env, size_t ci)
{
    (void)env, (void)ci;
    hw_json_config_end(sink_j);
    return 0;
}

/* JSON describes whole runs: an interrupted or failed one is removed */
static int json_sink_finish(hw_run_env *env)
{
    if (env->interrupted || env->lost_write) {
        hw_json_abandon(sink_j);
        return 0;
    }
    return hw_json_close(sink_j) ? -1 : 0;
}

const hw_sink hw_sink_json = { .open = json_sink_open, .rep = json_sink_rep, .config_end = json_sink_config_end,
                               .finish = json_sink_finish };
