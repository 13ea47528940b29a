/*
 * Output files that appear whole or not at all: written under
 * "<final>.tmp.<pid>" in the same directory and renamed over the final name
 * once complete (rename(2) is atomic within a file system). A run that is
 * interrupted (SIGINT, SIGTERM, SIGHUP), stopped by the watchdog or ended by
 * exit() (bad input found late) unlinks
 * its live temporaries, so neither a partial file under the final name nor a
 * stray temporary is left behind.
 *
 * Also: the configuration slug shared by the JSON names and .hgrm file names.
 */
#define _GNU_SOURCE
#include "harness/harness.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One slot per kind of output; a slot's path is complete before `live` is
 * set and `live` is cleared before the path changes, so the signal handler
 * only ever unlinks a whole path. */
static char tmp_path[2][PATH_MAX + 32];
static volatile sig_atomic_t tmp_live[2];
static int handlers_installed;

void hw_tmp_abandon(void)
{
    for (int i = 0; i < 2; i++)
        if (tmp_live[i]) {
            tmp_live[i] = 0;
            unlink(tmp_path[i]);
        }
}

/* SIGINT/SIGTERM/SIGHUP: the first one stops the sweep gracefully (the
 * current run is told to stop, its unfinished repetition is discarded, every
 * completed row and the summary are kept, exit 128 + signal); a second one
 * kills at once, removing live temporaries first. */
volatile sig_atomic_t hw_interrupted;

static void on_signal(int sig)
{
    if (!hw_interrupted) {
        hw_interrupted = sig;
        hw_stop_current_run();      /* one atomic store: async-signal-safe */
        return;
    }
    hw_tmp_abandon();
    signal(sig, SIG_DFL);
    raise(sig);
}

void hw_signals_install(void)
{
    if (!handlers_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            struct sigaction old;
            /* a signal ignored on entry (nohup, a background job) stays ignored */
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
        }
        atexit(hw_tmp_abandon);   /* exit(2) on a bad configuration, found after opening */
        handlers_installed = 1;
    }
}

FILE *hw_tmp_open(const char *final, int slot)
{
    hw_signals_install();
    tmp_live[slot] = 0;
    snprintf(tmp_path[slot], sizeof tmp_path[slot], "%s.tmp.%ld", final, (long)getpid());
    FILE *f = fopen(tmp_path[slot], "w");
    if (f) tmp_live[slot] = 1;
    return f;
}

int hw_tmp_commit(FILE *f, const char *final, int slot)
{
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (!bad) bad = rename(tmp_path[slot], final) != 0;
    if (bad) unlink(tmp_path[slot]);
    tmp_live[slot] = 0;
    return bad ? -1 : 0;
}

void hw_cfg_slug(const hw_opts *o, const wl_workload *w, const wl_cfg *cfg, char kv, char sep, char *buf,
                 size_t n)
{
    /* What tells configurations of one pattern apart: the knobs it uses
     * (work_ns only when non-zero; items only when swept, since the run's
     * length is not its configuration) and parameters off their default. */
    const int64_t *k = &cfg->k.threads;
    size_t m = 0;
    buf[0] = 0;
    for (int i = 0; i < K_NKNOBS && m < n; i++) {
        if (k[i] == WL_UNUSED) continue;
        if (i == K_WORK_NS && k[i] == 0) continue;
        if (i == K_ITEMS && (cfg->duration > 0 || o->knob[K_ITEMS].n < 2)) continue;
        m += (size_t)snprintf(buf + m, n - m, "%s%s%c%lld", m ? (char[]){ sep, 0 } : "", hw_knob_flag[i], kv,
                              (long long)k[i]);
    }
    int j = 0;
    for (const wl_param *p = w->params; p->key && m < n; p++, j++)
        if (cfg->set[j] != p->def)
            m += (size_t)snprintf(buf + m, n - m, "%s%s%c%lld", m ? (char[]){ sep, 0 } : "", p->key, kv,
                                  (long long)cfg->set[j]);
    if (!buf[0]) snprintf(buf, n, "default");
}
