/*
 * cpbench stress: many short randomized runs of each pattern on each backend,
 * every invariant checked each time. Iteration i's configuration (pattern,
 * backend, thread counts, capacity in {0, 1, small, 1024}, items, payload,
 * pattern parameters such as a random cancellation point) is a pure function
 * of (--seed, i), and so are the chaos decisions of each thread of the run
 * (core/chaos.h), so a failure prints one command that replays it:
 *
 *   cpbench stress --pattern=P --impl=I --seed=S --iteration=K
 *
 * The OS scheduler is not replayed: a replay reruns the same configuration
 * and the same per-thread chaos streams, which reproduces a failure often,
 * not always (run it with --until-fail).
 */
#include "harness/harness.h"
#include "core/hooks.h"      /* the chaos points: on/off, hits */

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

char hw_replay_line[512];

static uint64_t mix(uint64_t x) { return wl_mix(x); }

/* A draw from [0, m) of the stream r. */
static int64_t draw(uint64_t *r, int64_t m) { return (int64_t)((*r = mix(*r)) % (uint64_t)m); }

/* The knobs' draws, named by runtime/knobs.def's `draw`; maxt: the most
 * threads of one role. */
static int64_t draw_count(uint64_t *r, int maxt) { return 1 + draw(r, maxt); }
static int64_t draw_capacity(uint64_t *r, int maxt)
{
    (void)maxt;
    int64_t caps[4] = { 0, 1, 2 + draw(r, 14), 1024 };
    return caps[draw(r, 4)];
}
static int64_t draw_payload(uint64_t *r, int maxt)
{
    (void)maxt;
    static const int64_t p[4] = { 8, 16, 24, 64 };
    return p[draw(r, 4)];
}
static int64_t draw_work(uint64_t *r, int maxt) { return (void)maxt, draw(r, 4) == 0 ? 500 : 0; }
static int64_t draw_items(uint64_t *r, int maxt)
{
    (void)maxt;
    int64_t span = draw(r, 2) ? 2000 : 20000;
    return 1 + draw(r, span);
}

typedef struct stress_opts {
    hw_opts sel;            /* patterns and impls */
    int64_t iterations, iteration;   /* iteration >= 0: replay just that one */
    double duration, timeout;
    uint64_t seed;
    int until_fail, chaos, quiet;
    const char *pattern_arg, *impl_arg;
} stress_opts;

/* Iteration i's configuration: the builder's (configs.c) at the pattern's
 * defaults, then each knob and parameter it uses drawn. */
static const wl_workload *derive(const stress_opts *o, int64_t i, int attempt, wl_cfg *cfg, char *label,
                                 size_t n)
{
    size_t np = o->sel.npatterns, ni = o->sel.nimpls;
    const hw_entry *e = o->sel.patterns[(size_t)i % np];
    const cp_backend *b = o->sel.impls[((size_t)i / np) % ni];
    hw_config c;
    hw_config_init(&c, &o->sel, e, b);      /* direct dispatch: sel has none given */
    const wl_workload *w = c.w;
    *cfg = c.cfg;
    uint64_t r = mix(o->seed ^ mix((uint64_t)i) ^ (uint64_t)attempt);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int maxt = 4 * (ncpu > 0 ? ncpu : 1);
    if (maxt > 16) maxt = 16;
    wl_knobs *k = &cfg->k;
    /* each knob the pattern uses, in the list's order (a replay depends on it) */
#define DRAW_KNOB(ID, field, flag, metavar, lo, hi, how, ...) \
    if (k->field != WL_UNUSED) k->field = draw_##how(&r, maxt);
    WL_KNOB_LIST(DRAW_KNOB)
#undef DRAW_KNOB
    if (k->items != WL_UNUSED && k->producers != WL_UNUSED && k->items < k->producers) k->items = k->producers;
    int j = 0;
    for (const wl_param *p = w->params; p->key; p++, j++)
        cfg->set[j] = p->stress_max > 0 ? draw(&r, p->stress_max + 1) : p->def;
    cfg->seed = o->seed ^ (uint64_t)i;
    cfg->lat_sample = 8;
    size_t m = (size_t)snprintf(label, n, "%s impl=%s", w->name, hw_impl_name(b));
    for (int q = 0; q < K_NKNOBS && m < n; q++)
        if (wl_knob_get(k, q) != WL_UNUSED)
            m += (size_t)snprintf(label + m, n - m, " %s=%lld", hw_knob_flag[q], (long long)wl_knob_get(k, q));
    j = 0;
    for (const wl_param *p = w->params; p->key && m < n; p++, j++)
        m += (size_t)snprintf(label + m, n - m, " %s=%lld", p->key, (long long)cfg->set[j]);
    return w;
}

/* NULL if this configuration can run (the pattern's own check, and for go
 * that its Go twin exists and honours it), else why not */
static const char *cant_run(const wl_workload *w, const wl_cfg *cfg)
{
    const char *why = w->check ? w->check(cfg) : NULL;
    return why || cfg->b ? why : hw_go_check(w, cfg, NULL, 0);
}

static void usage(void)
{
    fputs("usage: cpbench stress [--pattern=P[,P..]|all] [--impl=I[,I..]|all] [--iterations=N | --duration=T]\n"
          "                      [--seed=S] [--iteration=K] [--until-fail] [--timeout=S] [--chaos|--no-chaos] [--quiet]\n"
          "Many short randomized runs, every invariant checked; a failure prints the command that replays it.\n"
          "Chaos points are compiled into the debug, tsan and asan builds (on by default there).\n"
          "exit status: 0 no failure, 1 a run failed or hung, 2 bad input\n",
          stdout);
}

int hw_stress_main(int argc, char **argv)
{
    static stress_opts o;
    o.iterations = 200;
    o.iteration = -1;
    o.timeout = 20;
    o.seed = (uint64_t)time(NULL);
    o.chaos = cp_chaos_available();
    o.pattern_arg = "all";
    o.impl_arg = "all";
    hw_go_use_race(1);      /* --impl=go: the twins built with -race (the seed catalogue's `go run -race`) */
    int seed_given = 0, iters_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        char name[32] = "";
        if (strncmp(a, "--", 2) || (size_t)((eq ? (size_t)(eq - a) : strlen(a)) - 2) >= sizeof name)
            hw_bad_input("stress: unexpected argument '%s' (see cpbench stress --help)", a);
        memcpy(name, a + 2, (eq ? (size_t)(eq - a) : strlen(a)) - 2);
        const char *v = eq ? eq + 1 : NULL;
        int boolean = !strcmp(name, "until-fail") || !strcmp(name, "chaos") || !strcmp(name, "no-chaos") ||
                      !strcmp(name, "quiet") || !strcmp(name, "help");
        if (!boolean && !v) {
            if (i + 1 >= argc) hw_bad_input("--%s: missing value", name);
            v = argv[++i];
        }
        if (boolean && v) hw_bad_input("--%s takes no value", name);
        if (!strcmp(name, "help")) { usage(); return 0; }
        else if (!strcmp(name, "pattern")) o.pattern_arg = v;
        else if (!strcmp(name, "impl")) o.impl_arg = v;
        else if (!strcmp(name, "iterations")) o.iterations = hw_parse_one(name, v, 1, INT64_MAX / 2), iters_given = 1;
        else if (!strcmp(name, "iteration")) o.iteration = hw_parse_one(name, v, 0, INT64_MAX / 2);
        else if (!strcmp(name, "duration")) o.duration = hw_parse_seconds(name, v);
        else if (!strcmp(name, "timeout")) o.timeout = hw_parse_seconds(name, v);
        else if (!strcmp(name, "seed")) o.seed = (uint64_t)hw_parse_one(name, v, 0, INT64_MAX), seed_given = 1;
        else if (!strcmp(name, "until-fail")) o.until_fail = 1;
        else if (!strcmp(name, "chaos")) {
            if (!cp_chaos_available())
                hw_bad_input("--chaos: this build has no chaos points (use the debug, tsan or asan preset)");
            o.chaos = 1;
        } else if (!strcmp(name, "no-chaos")) o.chaos = 0;
        else if (!strcmp(name, "quiet")) o.quiet = 1;
        else hw_bad_input("stress: unknown flag '--%s' (see cpbench stress --help)", name);
    }
    if (o.duration > 0 && iters_given) hw_bad_input("--duration and --iterations: give one of them");
    hw_parse_patterns(o.pattern_arg, &o.sel);
    hw_parse_impls(o.impl_arg, &o.sel);
    hw_calibrate();
    cp_chaos_enable(o.chaos);

    static cp_hist *h;
    h = cp_hist_new(3, 3600ull * 1000000000ull);
    static wl_run run;
    int64_t first = o.iteration >= 0 ? o.iteration : 0;
    int64_t last = o.iteration >= 0 ? o.iteration + 1 : (o.until_fail || o.duration > 0) ? INT64_MAX : o.iterations;
    uint64_t t0 = cp_now_ns(), deadline = o.duration > 0 ? t0 + (uint64_t)(o.duration * 1e9) : 0;
    if (!o.quiet)
        printf("stress: seed %llu%s, %zu pattern(s) x %zu backend(s), chaos %s\n", (unsigned long long)o.seed,
               seed_given ? "" : " (from the clock)", o.sel.npatterns, o.sel.nimpls,
               o.chaos ? "on" : cp_chaos_available() ? "off" : "not built in");
    fflush(stdout);     /* before any failure report on stderr */
    hw_signals_install();
    int64_t done = 0, failures = 0, skipped = 0;
    for (int64_t i = first; i < last; i++) {
        if (deadline && cp_now_ns() >= deadline) break;
        wl_cfg cfg;
        char label[512];
        const wl_workload *w = derive(&o, i, 0, &cfg, label, sizeof label);
        for (int a = 1; a < 64 && cant_run(w, &cfg); a++)   /* a configuration it can run */
            w = derive(&o, i, a, &cfg, label, sizeof label);
        const char *why = cant_run(w, &cfg);
        if (why) {      /* a pattern without a Go twin, say: not a verdict, but said */
            skipped++;
            if (!o.quiet) fprintf(stderr, "stress: skipped iteration %lld: %s: %s\n", (long long)i, label, why);
            continue;
        }
        snprintf(hw_replay_line, sizeof hw_replay_line,
                 "replay: cpbench stress --pattern=%s --impl=%s --seed=%llu --iteration=%lld%s", w->name,
                 hw_impl_name(cfg.b), (unsigned long long)o.seed, (long long)i, o.chaos ? "" : " --no-chaos");
        int rc = hw_run_one(w, &cfg, o.timeout, &run, h, NULL);
        if (hw_interrupted) break;      /* cut short: not a verdict */
        done++;
        if (rc || run.nfail) {
            failures++;
            fprintf(stderr, "stress: FAIL iteration %lld: %s: %s\n%s\n", (long long)i, label,
                    rc ? "could not run" : run.fail, hw_replay_line);
            if (o.until_fail) break;
        }
    }
    double secs = (double)(cp_now_ns() - t0) / 1e9;
    if (!o.quiet)
        printf("stress: %lld iterations, %lld failed, %lld skipped, %.1f s, %.1f iterations/s, chaos %s (%llu chaos "
               "decisions; C backends only)\n", (long long)done, (long long)failures, (long long)skipped, secs,
               secs > 0 ? (double)done / secs : 0.0, o.chaos ? "on" : "off", (unsigned long long)cp_chaos_points_hit());
    cp_hist_free(h);
    if (hw_interrupted) {
        if (!o.quiet) printf("stress: interrupted by signal %d\n", (int)hw_interrupted);
        return 128 + hw_interrupted;
    }
    return failures ? 1 : 0;
}
