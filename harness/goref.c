/*
 * --impl=go: the Go reference. For each pattern, go/p_<name>.go is the Go
 * twin of workloads/<name>.c; cpbench starts the Go program (cpbench-go,
 * built beside cpbench when a Go toolchain was found) once per invocation as
 * a child process and sends it one "run" request per repetition over a pipe,
 * in the line protocol of docs/go.md. The child runs the repetition, checks
 * the pattern's invariants (and that every goroutine ended) and answers with
 * ops, its clock's start and end, its own CPU time and context switches,
 * allocations, the latency histogram (slot for slot the layout of hist.c)
 * and the pattern's metrics; this file turns that answer into the same
 * wl_run and histograms a C run leaves, so that the runner writes go rows
 * with exactly the columns' meaning for C rows.
 *
 * In the harness an impl is a cp_backend, or NULL for go (hw_impl_name).
 *
 * The child: GOMAXPROCS = the CPUs of the run's set (--pin's CPUs, else the
 * affinity mask cpbench has), its affinity that set; it dies with cpbench
 * (PR_SET_PDEATHSIG); SIGUSR1 stops its current run (cpbench interrupted);
 * SIGQUIT makes the Go runtime dump every goroutine's stack (the watchdog).
 * `cpbench stress` uses cpbench-go-race, the same program built with -race.
 */
#define _GNU_SOURCE
#include "harness/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define GO_MAX_PATTERNS 128

typedef struct go_pattern {
    char name[48];
    int open_loop;
    char params[512], variants[512], metrics[512], payloads[512];   /* ",a,b," (lookups with ",key,") */
} go_pattern;

static struct {
    int race;                       /* use cpbench-go-race (stress) */
    int tried, ok;                  /* started (once per invocation) */
    pid_t pid;
    FILE *to;
    int from;                       /* read with rd_line: a signal (EINTR) loses nothing */
    char rbuf[1 << 16];
    size_t rlen, roff;
    char bin[PATH_MAX];
    char version[64];
    int maxprocs, is_race;
    go_pattern pat[GO_MAX_PATTERNS];
    int npat;
    int pin[256], npin;
    /* the last run's own resource use, for the runner's columns */
    struct rusage ru;
    int64_t allocs;
    uint64_t alloc_bytes;
} G;

/* The child's pid for the signal handler (hw_go_stop) and the watchdog
 * thread (hw_go_dump): atomic (lock-free, so async-signal-safe); 0: none. */
static _Atomic int go_child_pid;

const char *hw_impl_name(const cp_backend *b) { return b ? cp_backend_name(b) : "go"; }

void hw_go_use_race(int race) { G.race = race; }

/* cpbench-go beside this executable (CPBENCH_GO overrides) */
static const char *go_binary(void)
{
    if (G.bin[0]) return G.bin;
    const char *env = getenv(G.race ? "CPBENCH_GO_RACE" : "CPBENCH_GO");
    if (env && *env) {
        snprintf(G.bin, sizeof G.bin, "%s", env);
        return G.bin;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return NULL;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return NULL;
    *slash = 0;
    if ((size_t)snprintf(G.bin, sizeof G.bin, "%s/%s", self, G.race ? "cpbench-go-race" : "cpbench-go") >=
        sizeof G.bin)
        G.bin[0] = 0;
    return G.bin[0] ? G.bin : NULL;
}

int hw_go_available(void)
{
    const char *b = go_binary();
    return b && access(b, X_OK) == 0;
}

const char *hw_go_missing_hint(void)
{
    return G.race ? "the Go reference's -race build (cpbench-go-race) is not built: install golang-go "
                    "golang-golang-x-sync-dev golang-golang-x-time-dev (scripts/deps.sh does) and rebuild"
                  : "the Go reference (cpbench-go) is not built: install golang-go golang-golang-x-sync-dev "
                    "golang-golang-x-time-dev (scripts/deps.sh does) and rebuild";
}

static __attribute__((noreturn, format(printf, 1, 2))) void go_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cpbench: go reference: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* the CPUs the child may use: --pin's, else ours */
static int child_cpus(const int *pin, int npin, cpu_set_t *set)
{
    CPU_ZERO(set);
    if (npin > 0) {
        for (int i = 0; i < npin; i++)
            if (pin[i] >= 0 && pin[i] < CPU_SETSIZE) CPU_SET(pin[i], set);
    } else if (sched_getaffinity(0, sizeof *set, set)) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (long i = 0; i < n && i < CPU_SETSIZE; i++) CPU_SET((int)i, set);
    }
    return CPU_COUNT(set);
}

static void field(const char *line, const char *key, char *out, size_t n)
{
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    const char *p = strstr(line, k);
    out[0] = 0;
    if (!p) return;
    p += strlen(k);
    size_t len = strcspn(p, " \n");
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), p);
}

static void list_field(const char *line, const char *key, char *out, size_t n)
{
    char v[500];
    field(line, key, v, sizeof v);
    snprintf(out, n, ",%s,", v);
}

/* The next line from the child (without its newline) into *line; -1 at
 * EOF or on an error. Own buffering, so that a read interrupted by a
 * signal (SIGINT: the child was just told to stop; its answer follows) is
 * retried without losing what was read (getline would drop a partial line). */
static ssize_t rd_line(char **line, size_t *cap)
{
    size_t n = 0;
    for (;;) {
        while (G.roff < G.rlen) {
            char c = G.rbuf[G.roff++];
            if (n + 2 > *cap) {
                size_t nc = *cap ? *cap * 2 : 256;
                char *p = realloc(*line, nc);
                if (!p) go_die("out of memory");
                *line = p;
                *cap = nc;
            }
            if (c == '\n') {
                (*line)[n] = 0;
                return (ssize_t)n;
            }
            (*line)[n++] = c;
        }
        ssize_t r = read(G.from, G.rbuf, sizeof G.rbuf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        G.rlen = (size_t)r;
        G.roff = 0;
    }
}

static int go_start(const int *pin, int npin)
{
    if (G.tried) return G.ok;
    G.tried = 1;
    G.npat = 0;
    G.npin = npin < 256 ? npin : 256;     /* kept for a restart */
    if (pin && pin != G.pin) memcpy(G.pin, pin, (size_t)G.npin * sizeof *pin);
    if (!hw_go_available()) return 0;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) go_die("pipe: %s", strerror(errno));
    cpu_set_t set;
    int ncpu = child_cpus(pin, npin, &set);
    char maxprocs[32];
    snprintf(maxprocs, sizeof maxprocs, "%d", ncpu > 0 ? ncpu : 1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) go_die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (ncpu > 0) sched_setaffinity(0, sizeof set, &set);
        setenv("GOMAXPROCS", maxprocs, 1);
        setenv("GORACE", "halt_on_error=1", 0);     /* -race build: a race ends the run, which fails */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl(G.bin, G.bin, "serve", (char *)NULL);
        fprintf(stderr, "cpbench: go reference: cannot run %s: %s\n", G.bin, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    G.pid = pid;
    atomic_store(&go_child_pid, pid);
    G.to = fdopen(in[1], "w");
    G.from = out[0];
    G.rlen = G.roff = 0;
    if (!G.to) go_die("fdopen: %s", strerror(errno));
    fputs("hello\n", G.to);
    fflush(G.to);
    char *line = NULL;
    size_t cap = 0;
    int proto = 0;
    if (rd_line(&line, &cap) < 0 || sscanf(line, "cpgo %d", &proto) != 1)
        go_die("%s did not answer the hello (is it cpbench's Go program?)", G.bin);
    if (proto != 1) go_die("%s speaks protocol %d, this cpbench 1: rebuild both", G.bin, proto);
    char v[32];
    field(line, "go_version", G.version, sizeof G.version);
    field(line, "gomaxprocs", v, sizeof v);
    G.maxprocs = atoi(v);
    field(line, "race", v, sizeof v);
    G.is_race = atoi(v);
    while (rd_line(&line, &cap) >= 0 && strcmp(line, "end")) {
        if (strncmp(line, "pattern ", 8) || G.npat == GO_MAX_PATTERNS) continue;
        go_pattern *p = &G.pat[G.npat++];
        sscanf(line + 8, "%47s", p->name);
        field(line, "open_loop", v, sizeof v);
        p->open_loop = atoi(v);
        list_field(line, "params", p->params, sizeof p->params);
        list_field(line, "variants", p->variants, sizeof p->variants);
        list_field(line, "metrics", p->metrics, sizeof p->metrics);
        list_field(line, "payloads", p->payloads, sizeof p->payloads);
    }
    free(line);
    G.ok = 1;
    return 1;
}

static int in_list(const char *list, const char *item)
{
    char k[80];
    snprintf(k, sizeof k, ",%s,", item);
    return strstr(list, k) != NULL;
}

static const go_pattern *go_find(const char *name)
{
    for (int i = 0; i < G.npat; i++)
        if (!strcmp(G.pat[i].name, name)) return &G.pat[i];
    return NULL;
}

const char *hw_go_version(void) { return G.ok ? G.version : ""; }
int hw_go_maxprocs(void) { return G.ok ? G.maxprocs : 0; }

/* NULL if the Go twin can run this configuration, else why not */
const char *hw_go_check(const wl_workload *w, const wl_cfg *cfg, const int *pin, int npin)
{
    static char why[256];
    if (!go_start(pin, npin)) return hw_go_missing_hint();
    const go_pattern *p = go_find(w->name);
    if (!p) {
        snprintf(why, sizeof why, "pattern %s has no Go version (go/p_%s.go)", w->name, w->name);
        return why;
    }
    const char *vn = hw_variant_name(w, cfg->variant);
    if (!in_list(p->variants, vn)) {
        snprintf(why, sizeof why, "--variant=%s: the Go version of %s has no such variant (it has %.*s)", vn,
                 w->name, (int)strlen(p->variants) - 2, p->variants + 1);
        return why;
    }
    int j = 0;
    for (const wl_param *q = w->params; q->key; q++, j++)
        if (cfg->set[j] != q->def && !in_list(p->params, q->key)) {
            snprintf(why, sizeof why, "--set %s: the Go version of %s does not honour it", q->key, w->name);
            return why;
        }
    if (cfg->rate > 0 && !p->open_loop) {
        snprintf(why, sizeof why, "--rate: the Go version of %s has no open-loop mode", w->name);
        return why;
    }
    if (cfg->k.payload != WL_UNUSED && strcmp(p->payloads, ",,")) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)cfg->k.payload);
        if (!in_list(p->payloads, v)) {
            snprintf(why, sizeof why, "--payload=%s: the Go version of %s has items of %.*s bytes only (a Go "
                     "channel's element type is static)", v, w->name, (int)strlen(p->payloads) - 2, p->payloads + 1);
            return why;
        }
    }
    return NULL;
}

/* the watchdog: make the Go runtime print every goroutine's stack, give it
 * a moment (its stderr is ours) */
void hw_go_dump(void)
{
    pid_t pid = atomic_load(&go_child_pid);
    if (!pid) return;
    fprintf(stderr, "cpbench: watchdog: the Go reference's goroutines (SIGQUIT):\n");
    fflush(stderr);
    kill(pid, SIGQUIT);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        usleep(10000);
    }
}

/* cpbench interrupted: async-signal-safe */
void hw_go_stop(void)
{
    pid_t pid = atomic_load(&go_child_pid);
    if (pid) kill(pid, SIGUSR1);
}

static void hist_line(const char *p, cp_hist *h)
{
    char *end;
    strtoull(p, &end, 10);  /* the total: implied by the pairs */
    p = end;
    while (*p == ' ') {
        uint64_t v = strtoull(p + 1, &end, 10);
        if (*end != ':') go_die("bad histogram pair near '%.20s'", p);
        uint64_t n = strtoull(end + 1, &end, 10);
        cp_hist_record_n(h, v, n);
        p = end;
    }
}

int hw_go_run(const wl_workload *w, const wl_cfg *c, double timeout_s, wl_run *r, cp_hist *merged,
              cp_hist *merged_u)
{
    if (!G.ok && !go_start(G.pin, G.npin)) go_die("cannot start %s", G.bin);
    char req[2048];
    size_t n = (size_t)snprintf(req, sizeof req, "run pattern=%s variant=%s", w->name, hw_variant_name(w, c->variant));
    for (int i = 0; i < K_NKNOBS; i++)     /* the knobs by their CSV names (go/ reads those) */
        n += (size_t)snprintf(req + n, sizeof req - n, " %s=%lld", hw_knobs[i].field,
                              (long long)wl_knob_get(&c->k, i));
    n += (size_t)snprintf(req + n, sizeof req - n, " duration=%.9g seed=%llu lat_sample=%lld rate=%.17g timeout=%.9g",
                          c->duration, (unsigned long long)c->seed, (long long)c->lat_sample, c->rate, timeout_s);
    int j = 0;
    for (const wl_param *q = w->params; q->key && n < sizeof req; q++, j++)
        n += (size_t)snprintf(req + n, sizeof req - n, " set.%s=%lld", q->key, (long long)c->set[j]);
    if (n >= sizeof req - 1) go_die("request too long");
    fprintf(G.to, "%s\n", req);
    if (fflush(G.to)) go_die("the Go program is gone (%s)", strerror(errno));
    cp_hist_reset(merged);
    if (merged_u) cp_hist_reset(merged_u);
    memset(&G.ru, 0, sizeof G.ru);
    G.allocs = -1;
    G.alloc_bytes = 0;
    char *line = NULL;
    size_t cap = 0;
    int got = 0;
    ssize_t len;
    while ((len = rd_line(&line, &cap)) >= 0) {
        if (!strcmp(line, "end")) break;
        if (!strncmp(line, "result ", 7)) {
            unsigned long long ops, t0, t1, ut, st, vc, ivc, rss, al, ab;
            int nthr;
            if (sscanf(line, "result ops=%llu t_start=%llu t_end=%llu nthr=%d utime_us=%llu stime_us=%llu "
                             "nvcsw=%llu nivcsw=%llu maxrss_kb=%llu allocs=%llu alloc_bytes=%llu",
                       &ops, &t0, &t1, &nthr, &ut, &st, &vc, &ivc, &rss, &al, &ab) != 11)
                go_die("bad result line: %s", line);
            r->ops = ops;
            r->t_start = t0;
            r->t_end = t1 > t0 ? t1 : t0;
            r->nthr = nthr;
            G.ru.ru_utime.tv_sec = (time_t)(ut / 1000000);
            G.ru.ru_utime.tv_usec = (suseconds_t)(ut % 1000000);
            G.ru.ru_stime.tv_sec = (time_t)(st / 1000000);
            G.ru.ru_stime.tv_usec = (suseconds_t)(st % 1000000);
            G.ru.ru_nvcsw = (long)vc;
            G.ru.ru_nivcsw = (long)ivc;
            G.ru.ru_maxrss = (long)rss;
            G.allocs = (int64_t)al;
            G.alloc_bytes = ab;
            got = 1;
        } else if (!strncmp(line, "hist ", 5)) {
            hist_line(line + 5, merged);
        } else if (!strncmp(line, "hist_u ", 7)) {
            if (merged_u) hist_line(line + 7, merged_u);
        } else if (!strncmp(line, "metric ", 7)) {
            char name[64];
            double v;
            if (sscanf(line + 7, "%63s %lg", name, &v) != 2) go_die("bad metric line: %s", line);
            int i = wl_metric_index(w, name);
            if (i < 0) go_die("%s reports a metric '%s' that the C pattern does not declare", w->name, name);
            wl_metric(r, i, v);
        } else if (!strncmp(line, "fair ", 5)) {
            unsigned long long lo, hi;
            if (sscanf(line + 5, "%llu %llu", &lo, &hi) != 2) go_die("bad fair line: %s", line);
            int lo_i = wl_metric_index(w, WL_FAIR_MIN), hi_i = wl_metric_index(w, WL_FAIR_MAX);
            if (lo_i < 0 || hi_i < 0) go_die("%s reports its fairness, which the C pattern does not declare", w->name);
            wl_metric(r, lo_i, (double)lo);
            wl_metric(r, hi_i, (double)hi);
        } else if (!strncmp(line, "fail ", 5)) {
            int nf = 0, off = 0;
            sscanf(line + 5, "%d %n", &nf, &off);
            wl_fail(r, "%s", line + 5 + off);
            r->nfail = nf > 0 ? nf : 1;
        } else if (!strcmp(line, "interrupted")) {
            got = 1;
        } else if (!strncmp(line, "error ", 6)) {
            go_die("%s", line + 6);
        }
    }
    free(line);
    if (len < 0) {      /* it died: a panic, a race report (-race), a kill */
        int st = 0;
        waitpid(G.pid, &st, 0);
        atomic_store(&go_child_pid, 0);
        fclose(G.to);
        close(G.from);
        G.tried = G.ok = 0;     /* the next run starts a new one */
        wl_fail(r, "the Go program ended during the run (%s %d; its report is above)",
                WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        return 0;
    }
    if (!got) go_die("no result for %s", w->name);
    return 0;
}

void hw_go_usage(struct rusage *ru, int64_t *allocs, uint64_t *alloc_bytes)
{
    *ru = G.ru;
    *allocs = G.allocs;
    *alloc_bytes = G.alloc_bytes;
}
