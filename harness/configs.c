/*
 * Configuration enumeration: every configuration a run will measure, built
 * and validated before anything runs or any output is opened (a mistake
 * found late must not have truncated an existing CSV). One builder, the
 * odometer over a pattern's dimensions (a list of values per knob and
 * parameter), serves the sweep (the lists given on the command line),
 * --suite (one value each: the suite entry's, else the pattern's default)
 * and `cpbench ab` (hw_configs_build); `cpbench stress` starts its drawn
 * configurations from hw_config_init.
 */
#include "harness/harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef hw_config config;

void hw_config_init(hw_config *c, const hw_opts *o, const hw_entry *e, const cp_backend *b)
{
    memset(c, 0, sizeof *c);
    c->e = e;
    c->w = hw_pick(e, b, o->table_dispatch);
    c->cfg.b = b;
    c->cfg.k = c->w->defaults;
    c->cfg.seed = o->seed;
    c->cfg.lat_sample = o->lat_sample;
}

/* The table's label ("P=1 C=1 cap=1024 payload=16") and the CSV's params. */
void hw_config_describe(hw_config *c)
{
    size_t n = 0;
    c->label[0] = 0;
    for (int i = 0; i < K_NKNOBS; i++) {
        int64_t k = wl_knob_get(&c->cfg.k, i);
        int show = hw_knobs[i].show;
        if (k == WL_UNUSED || (show == WL_KS_COUNT && c->cfg.duration > 0)) continue;
        if (show == WL_KS_NONZERO && k == 0) continue;
        char v[32];
        if (show == WL_KS_COUNT) hw_si((double)k, v, sizeof v);
        else snprintf(v, sizeof v, "%lld", (long long)k);
        n += (size_t)snprintf(c->label + n, sizeof c->label - n, "%s%s=%s", n ? " " : "", hw_knobs[i].label, v);
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

/* A pattern's dimensions: per knob and parameter, the list of its values
 * (swept, or a one-value list in `one`). */
typedef struct dims {
    const hw_list *d[K_NKNOBS + WL_MAX_SET];
    hw_list one[K_NKNOBS + WL_MAX_SET];
    int n, nparams;
} dims;

/* One value for dimension D->n (and the next one). */
static void dim_one(dims *D, int64_t v)
{
    D->one[D->n] = (hw_list){ .n = 1, .v = { v } };
    D->d[D->n] = &D->one[D->n];
    D->n++;
}

/* The sweep: the swept list of a knob the pattern uses, else its default;
 * a parameter's --set list, else its default. */
static void sweep_dims(const hw_opts *o, const hw_entry *e, dims *D)
{
    const wl_workload *gw = e->generic;
    D->n = D->nparams = 0;
    for (int k = 0; k < K_NKNOBS; k++) {
        int64_t d = wl_knob_get(&gw->defaults, k);
        dim_one(D, d);
        if (d != WL_UNUSED && o->knob[k].given) D->d[k] = &o->knob[k];
    }
    for (const wl_param *p = gw->params; p->key; p++, D->nparams++) {
        dim_one(D, p->def);
        for (size_t s = 0; s < o->nset; s++)
            if (!strcmp(o->set[s].key, p->key)) D->d[D->n - 1] = &o->set[s].vals;
    }
}

/* A suite entry: its knobs (HW_DEF, or a knob the pattern does not use: the
 * pattern's default) and the pattern's parameter defaults. */
static void suite_dims(const hw_entry *e, const hw_suite_cfg *s, dims *D)
{
    D->n = D->nparams = 0;
    for (int k = 0; k < K_NKNOBS; k++) {
        int64_t d = wl_knob_get(&e->generic->defaults, k), sk = wl_knob_get(&s->k, k);
        dim_one(D, sk == HW_DEF || d == WL_UNUSED ? d : sk);
    }
    for (const wl_param *p = e->generic->params; p->key; p++, D->nparams++) dim_one(D, p->def);
}

static const hw_entry *suite_entry(const hw_opts *o, const hw_suite_cfg *s)
{
    for (size_t i = 0; i < hw_catalogue_len; i++)
        if (!strcmp(hw_catalogue[i].generic->name, s->pattern)) return &hw_catalogue[i];
    hw_bad_input("--suite=%s: unknown pattern '%s'", o->suite_name, s->pattern);
}

/* How many configurations the run has, from the list lengths alone
 * (saturating: a product of fifteen lists of 256 values overflows). */
static size_t count_configs(const hw_opts *o)
{
    if (o->nsuite) return o->nsuite * o->nimpls;
    static dims D;
    size_t total = 0;
    for (size_t pi = 0; pi < o->npatterns; pi++) {
        sweep_dims(o, o->patterns[pi], &D);
        size_t n = o->nimpls * (o->nvariant ? o->nvariant : 1);
        for (int i = 0; i < D.n; i++)
            if (__builtin_mul_overflow(n, D.d[i]->n, &n)) return SIZE_MAX;
        if (__builtin_add_overflow(total, n, &total)) return SIZE_MAX;
    }
    return total;
}

/* The builder: appends pattern e's configurations on impl b over D, the
 * last dimension turning fastest, each validated (a go one the Go twin
 * cannot run, from --impl=all, is left out). */
static void build(const hw_opts *o, const hw_entry *e, const cp_backend *b, const dims *D, int variant,
                  double duration, double rate, config *cfgs, size_t *ncfg)
{
    size_t idx[K_NKNOBS + WL_MAX_SET] = { 0 };
    for (;;) {
        config *c = &cfgs[(*ncfg)++];
        hw_config_init(c, o, e, b);
        for (int k = 0; k < K_NKNOBS; k++) *wl_knob_at(&c->cfg.k, k) = D->d[k]->v[idx[k]];
        for (int p = 0; p < D->nparams; p++) c->cfg.set[p] = D->d[K_NKNOBS + p]->v[idx[K_NKNOBS + p]];
        c->cfg.duration = duration;
        c->cfg.rate = rate;
        c->cfg.variant = variant;
        hw_config_describe(c);
        if (!check_config(o, c)) (*ncfg)--;
        int dd = D->n - 1;
        while (dd >= 0 && ++idx[dd] == D->d[dd]->n) idx[dd--] = 0;
        if (dd < 0) break;
    }
}

/* Every configuration of the run: per pattern (or suite entry), impl and
 * --variant, the builder over its dimensions. Used by the runner and by
 * `cpbench ab`, which runs each configuration as its own process. */
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
    static dims D;
    for (size_t si = 0; si < o->nsuite; si++) {     /* a suite's entries: no --duration, no --rate */
        const hw_entry *e = suite_entry(o, &o->suite[si]);
        suite_dims(e, &o->suite[si], &D);
        for (size_t ii = 0; ii < o->nimpls; ii++) build(o, e, o->impls[ii], &D, 0, 0, 0, cfgs, ncfg);
    }
    for (size_t pi = 0; pi < o->npatterns && !o->nsuite; pi++) {
        const hw_entry *e = o->patterns[pi];
        sweep_dims(o, e, &D);
        int vars[8] = { 0 }, nvars = o->nvariant ? (int)o->nvariant : 1;
        for (int v = 0; v < (int)o->nvariant; v++) vars[v] = hw_variant_index(e->generic, o->variant[v]);
        for (size_t ii = 0; ii < o->nimpls; ii++)
            for (int vi = 0; vi < nvars; vi++) build(o, e, o->impls[ii], &D, vars[vi], o->duration, o->rate, cfgs, ncfg);
    }
    return cfgs;
}
