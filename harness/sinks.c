/*
 * The outputs of a run: which sinks it has, in the order each phase calls
 * them (CSV, JSON, .hgrm, table), after checking their files together.
 */
#include "harness/runner.h"

#include <limits.h>
#include <string.h>

/* The outputs, checked before any is opened: no two on one file (the later
 * would silently replace the earlier), none a directory, every .hgrm name
 * fits. `table`: the table goes to stdout. */
static void check_outputs(const hw_opts *o, const hw_config *cfgs, size_t ncfg, int table)
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

size_t hw_sinks_select(const hw_run_env *env, const hw_sink **list)
{
    const hw_opts *o = env->o;
    check_outputs(o, env->cfgs, env->ncfg, !env->quiet);
    size_t n = 0;
    if (o->csv) list[n++] = &hw_sink_csv;
    if (o->json) list[n++] = &hw_sink_json;
    if (o->hgrm_dir) list[n++] = &hw_sink_hgrm;
    if (!env->quiet) list[n++] = &hw_sink_table;
    return n;
}

int hw_stdout_check(hw_run_env *env)
{
    return hw_out_check(stdout, "standard output", &env->stdout_reported);
}
