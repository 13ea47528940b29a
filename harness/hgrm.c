/*
 * --hgrm=DIR: each configuration's latency histogram, merged over its
 * measured repetitions, as DIR/<pattern>_<impl>_<config-slug>.hgrm in
 * HdrHistogram's classic percentile format (values in ns, unit divisor 1,
 * 5 ticks per half distance), written whole or not at all (outfile.c).
 */
#define _GNU_SOURCE
#include "harness/runner.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void hw_hgrm_prepare(const hw_opts *o)
{
    if (!o->hgrm_dir) return;
    if (mkdir(o->hgrm_dir, 0777) && errno != EEXIST)
        hw_bad_input("--hgrm: cannot create directory '%s': %s", o->hgrm_dir, strerror(errno));
    struct stat st;
    if (stat(o->hgrm_dir, &st) || !S_ISDIR(st.st_mode) || access(o->hgrm_dir, W_OK | X_OK))
        hw_bad_input("--hgrm: '%s' is not a writable directory", o->hgrm_dir);
}

/* DIR/<pattern>_<impl>_<slug>.hgrm; -1 if it does not fit */
int hw_hgrm_path(const hw_opts *o, const wl_workload *w, const wl_cfg *cfg, char *path, size_t n)
{
    char slug[512];
    hw_cfg_slug(o, w, cfg, '-', '_', slug, sizeof slug);
    return (size_t)snprintf(path, n, "%s/%s_%s_%s.hgrm", o->hgrm_dir, w->name, hw_impl_name(cfg->b), slug) >= n
               ? -1 : 0;
}

int hw_hgrm_write(const hw_opts *o, const wl_workload *w, const wl_cfg *cfg, const cp_hist *h)
{
    if (!o->hgrm_dir || cp_hist_count(h) == 0) return 0;
    char path[PATH_MAX];
    if (hw_hgrm_path(o, w, cfg, path, sizeof path)) {   /* sinks.c checked this before any run */
        fprintf(stderr, "cpbench: --hgrm: path too long for %s\n", w->name);
        return -1;
    }
    FILE *f = hw_tmp_open(path, HW_SLOT_HGRM);
    if (!f) {
        fprintf(stderr, "cpbench: --hgrm: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (cp_hist_write_hgrm(h, f, 5, 1.0)) {
        int err = errno;
        hw_tmp_close(f, HW_SLOT_HGRM);
        fprintf(stderr, "cpbench: write error on %s: %s\n", path, strerror(err ? err : EIO));
        return -1;
    }
    return hw_tmp_commit(f, HW_SLOT_HGRM);   /* a write error is reported there */
}

/* ---- the sink: a configuration's file once it has all its repetitions ---- */
static void hgrm_sink_open(hw_run_env *env) { hw_hgrm_prepare(env->o); }

static int hgrm_sink_config_end(hw_run_env *env, size_t ci)
{
    const hw_config *c = &env->cfgs[ci];
    return hw_hgrm_write(env->o, c->w, &c->cfg, env->cs[ci].hist);
}

const hw_sink hw_sink_hgrm = { .open = hgrm_sink_open, .config_end = hgrm_sink_config_end };
