/*
 * errgroup: golang.org/x/sync/errgroup in C. An owner starts a group of
 * --set tasks=N tasks with Go(), then Wait()s; --set fail_at=K makes the K-th
 * task (1-based) return an error, and --set limit=L bounds the tasks running
 * at once as SetLimit(L) does. The seeds' orchestration_errgroup (and the
 * playbooks' fetchAll / fetchWithLimit, 001 pattern 5 and 003 "errgroup").
 *
 * The readings of x/sync/errgroup (errgroup.go and its pkg.go.dev docs) this
 * follows exactly:
 *   - WithContext: "The derived Context is canceled the first time a function
 *     passed to Go returns a non-nil error or the first time Wait returns,
 *     whichever occurs first." So Wait cancels the ctx even on success.
 *   - Go: "The first call to return a non-nil error cancels the group's
 *     context ... The error will be returned by Wait." errOnce keeps the
 *     first error: a task that returns ctx.Err() after that cancel does not
 *     replace it. Go still runs every function passed to it after an error
 *     (the doc fix for golang/go#54045); the functions see the
 *     cancelled ctx if they watch it.
 *   - Go with a limit: "It blocks until the new goroutine can be added
 *     without the number of active goroutines in the group exceeding the
 *     configured limit": a buffered channel of L tokens (g.sem), sent before
 *     wg.Add(1), received in done() after f returns and before wg.Done().
 *   - Wait: "blocks until all function calls from the Go method have
 *     returned, then returns the first non-nil error (if any) from them."
 *   - SetLimit(n): n < 0 is no limit; 0 lets no Go() ever proceed. Here
 *     limit=0 means no SetLimit call (no limit), since --set takes no
 *     negative values and Go's 0 would only block the owner forever.
 * C has no goroutines: a Go() hands the task to one of --threads runner
 * threads through a queue that holds every task of the group, so Go() itself
 * waits only for the limit, as in Go; tasks never wait on each other, so a
 * pool of runners cannot deadlock where goroutines would not.
 *
 * A task: returns its error at once if it is the K-th, else does --work-ns
 * of busy work in slices of at most 1 us, checking the group's ctx before
 * each slice; a task that finds the ctx ended returns its reason (it "saw
 * the cancel"), else it completes and returns nil.
 *
 * One op: one task run through the group. Latency: its Go() call (which
 * blocks while L tasks run) -> the task returned (sampled 1 in --lat-sample
 * tasks). Count mode: --items tasks, in groups of N (the last one smaller);
 * time mode: groups until --duration ends.
 *
 * Invariants, checked on every group (the owner checks, the run reports):
 *   - Wait returns the first error: fail_at=K (K <= N) -> task K's error,
 *     never a cancelled task's ctx error; no failing task -> nil;
 *   - Wait returns only after every task returned (returned == started when
 *     it returns);
 *   - never more than L tasks running at once (the max is tracked);
 *   - every task either completed or saw the cancel: completed + cancelled +
 *     failed == N, failed == (K <= N), and nothing saw a cancel in a group
 *     without an error;
 *   - the ctx is cancelled when Wait returns, also on success;
 *   - no token left in the limit's channel after Wait (none leaked);
 *   - cancellation is observed promptly: a task running when the first
 *     error cancels the ctx (or starting after it) sees it and returns within
 *     1 s (else the run fails, naming the time);
 *   - every thread joined.
 * Metrics: cancel_seen_ns (that time, the repetition's worst),
 * cancel_to_wait_ns (the worst cancel -> Wait return: Go() still starts the
 * group's remaining tasks, each of which returns at once; 0 when no task
 * fails), max_active (most tasks running at once),
 * cancelled (tasks that saw the cancel).
 *
 * --variant=seed: the hand-rolled bounded group of playbook 003 ("Bounded
 * Parallelism": a channel semaphore, errCh of capacity 1 written with a
 * select-default; the launch loop selects on the semaphore, ctx.Done() and
 * errCh, and returns the first error from inside the loop, before wg.Wait()
 * and without cancelling anything; 001's RateLimitedWorker.Do returns the same
 * way on an Acquire error). The tasks still running when it returns are
 * counted as leaked threads (run it with fail_at and --work-ns long enough
 * that a task is in flight, e.g. --set tasks=4 limit=2 fail_at=2
 * --work-ns=2000000000); after counting, they are released by cancelling the
 * group's ctx, and joined. Only the seed's own promises are checked there
 * (the first error, no leak): it has no ctx of its own to cancel on Wait.
 */
#include "runtime/workload.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { P_TASKS, P_LIMIT, P_FAIL_AT, P_COUNT };
enum { M_SEEN_NS, M_WAIT_NS, M_MAX_ACTIVE, M_CANCELLED };
enum { V_DEFAULT, V_SEED };
static const wl_param errgroup_params[] = {
    [P_TASKS] = { "tasks", 8, "tasks per group (Go() calls before Wait)", 16 },
    [P_LIMIT] = { "limit", 0, "SetLimit(L): at most L tasks at once, Go() blocks; 0: no limit", 8 },
    [P_FAIL_AT] = { "fail_at", 0, "the K-th task (1-based) returns an error; 0: none fails", 10 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(errgroup_params, P_COUNT);

#define MAX_TASKS 4096
#define SLICE_NS 1000
#define CANCEL_BOUND_NS 1000000000ull

/* error values: 0 is nil */
#define ERR_TASK(i) ((int64_t)1 << 32 | (int64_t)(i))   /* task i's own error */
#define ERR_CTX(st) ((int64_t)(st))                      /* ctx.Err(): CP_CANCELED, CP_DEADLINE */

struct task { uint32_t index, group; uint64_t t_go; };

struct eg_state {
    wl_run *r;
    int seed;
    int64_t tasks, limit, fail_at, work_ns;
    int64_t size;               /* this group's tasks: N, or what count mode has left */
    cp_chan *runq;              /* Go() -> runners */
    cp_chan *sem;               /* SetLimit: L tokens; NULL: no limit */
    cp_chan *errch;             /* seed variant: errCh, capacity 1 */
    cp_wg *wg;
    /* this group (the owner resets them between groups, when no task runs) */
    cp_ctx *ctx;                /* WithContext's derived ctx */
    _Atomic int64_t err;        /* errOnce + err: the first error wins (CAS from 0) */
    _Atomic uint64_t t_cancel;  /* when the first error cancelled the ctx */
    _Atomic uint32_t group;
    _Atomic int64_t started, returned, completed, cancelled, failed, stale;
    /* the whole run */
    _Atomic int64_t active, max_active;
    _Atomic uint64_t worst_seen_ns;     /* cancel (or the task's start, if later) -> the task saw it */
    /* the owner's findings, read by the run after the join */
    char fail[400];
    uint64_t nfail, ran, cancelled_total;
    uint64_t worst_wait_ns;
};

static void note(struct eg_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct eg_state *s, const char *fmt, ...)
{
    if (s->nfail++) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail, sizeof s->fail, fmt, ap);
    va_end(ap);
}

/* ---- the task ---- */
static int64_t task_fn(struct eg_state *s, uint32_t index)
{
    if ((int64_t)index == s->fail_at) {
        atomic_fetch_add(&s->failed, 1);
        return ERR_TASK(index);
    }
    uint64_t start = cp_now_ns();
    for (int64_t done = 0;; done += SLICE_NS) {
        cp_status st = cp_ctx_err(s->ctx);
        if (st != CP_OK) {
            /* how long the cancel took to reach this task (stored before the cancel) */
            uint64_t now = cp_now_ns(), tc = atomic_load(&s->t_cancel), from = tc > start ? tc : start;
            uint64_t d = tc && now > from ? now - from : 0, w = atomic_load(&s->worst_seen_ns);
            while (d > w && !atomic_compare_exchange_weak(&s->worst_seen_ns, &w, d)) {}
            atomic_fetch_add(&s->cancelled, 1);
            return ERR_CTX(st);
        }
        if (done >= s->work_ns) break;
        int64_t left = s->work_ns - done;
        wl_work(left < SLICE_NS ? left : SLICE_NS);
    }
    atomic_fetch_add(&s->completed, 1);
    return 0;
}

/* ---- a runner: the goroutine that Go() starts ---- */
static void *runner(wl_thread *self, void *arg)
{
    struct eg_state *s = arg;
    struct task t;
    uint64_t ran = 0;
    uint8_t tok;
    wl_phase(self, "wait task");
    while (cp_chan_recv(s->runq, &t, NULL) == CP_OK) {
        wl_phase(self, "task");
        if (t.group != atomic_load(&s->group)) atomic_fetch_add(&s->stale, 1);
        wl_max_store_i(&s->max_active, atomic_fetch_add(&s->active, 1) + 1);
        int64_t err = task_fn(s, t.index);
        atomic_fetch_sub(&s->active, 1);
        if (t.t_go) cp_hist_record(self->hist, wl_since(t.t_go));
        if (err) {
            if (!s->seed) {
                /* errOnce.Do: store the error and cancel the group's ctx */
                int64_t nil = 0;
                if (atomic_compare_exchange_strong(&s->err, &nil, err)) {
                    atomic_store(&s->t_cancel, cp_now_ns());
                    cp_ctx_cancel(s->ctx);
                }
            } else {
                /* the seed: select { case errCh <- err: default: } */
                (void)cp_chan_try_send(s->errch, &err);
            }
        }
        atomic_fetch_add(&s->returned, 1);
        /* done(): release the limit's token, then wg.Done() */
        wl_phase(self, "done");
        if (s->sem && cp_chan_recv(s->sem, &tok, NULL) != CP_OK) atomic_fetch_add(&s->stale, 1);
        cp_wg_done(s->wg);
        ran++;
        wl_phase(self, "wait task");
    }
    self->ops = ran;
    wl_phase(self, "exit");
    return NULL;
}

/* ---- the group's API, as errgroup.go ---- */
static void eg_go(struct eg_state *s, wl_thread *self, uint32_t index, uint64_t t_go)
{
    uint8_t tok = 1;
    if (s->sem) {
        wl_phase(self, "Go: limit");
        cp_chan_send(s->sem, &tok, NULL);   /* blocks while L tasks are active */
    }
    cp_wg_add(s->wg, 1);
    atomic_fetch_add(&s->started, 1);
    struct task t = { index, atomic_load(&s->group), t_go };
    wl_phase(self, "Go: start");
    cp_chan_send(s->runq, &t, NULL);        /* never blocks: room for the whole group */
}

static int64_t eg_wait(struct eg_state *s, wl_thread *self)
{
    wl_phase(self, "Wait");
    cp_wg_wait(s->wg, NULL);
    cp_ctx_cancel(s->ctx);                  /* "or the first time Wait returns" */
    return atomic_load(&s->err);
}

/* The seed's bounded group (playbook 003, processItems): returns the first
 * error from the launch loop, without waiting for the tasks in flight. */
static int64_t seed_group(struct eg_state *s, wl_thread *self, int *early)
{
    uint8_t tok = 1;
    int64_t err = 0;
    for (int64_t i = 1; i <= s->size; i++) {
        cp_case cs[2] = { { .op = CP_SEND, .ch = s->sem, .elem = &tok },
                          { .op = CP_RECV, .ch = s->errch, .elem = &err } };
        cp_status st;
        wl_phase(self, "seed: select");
        int k = cp_select(cs, 2, s->ctx, &st);
        if (k < 0) { *early = 1; return ERR_CTX(st); }     /* case <-ctx.Done(): return ctx.Err() */
        if (k == 1) { *early = 1; return err; }            /* case err := <-errCh: return err */
        cp_wg_add(s->wg, 1);
        atomic_fetch_add(&s->started, 1);
        struct task t = { (uint32_t)i, atomic_load(&s->group), 0 };
        cp_chan_send(s->runq, &t, NULL);
    }
    wl_phase(self, "seed: wg.Wait");
    cp_wg_wait(s->wg, NULL);
    if (cp_chan_try_recv(s->errch, &err) != CP_OK) err = 0;
    return err;
}

static void describe(char *buf, size_t n, int64_t err)
{
    if (!err) snprintf(buf, n, "nil");
    else if (err >> 32) snprintf(buf, n, "task %lld's error", (long long)(err & 0xffffffff));
    else snprintf(buf, n, "ctx error (%s)", cp_status_str((cp_status)err));
}

static void *owner(wl_thread *self, void *arg)
{
    struct eg_state *s = arg;
    wl_run *r = s->r;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    const int64_t sample = r->cfg->lat_sample;
    int64_t until_sample = 0;
    uint64_t g, offered = 0;
    char got[64], want[64];
    for (g = 0; wl_more(r, offered, n) && s->nfail == 0; g++) {
        s->size = r->cfg->duration > 0 || n - offered > (uint64_t)s->tasks ? s->tasks : (int64_t)(n - offered);
        offered += (uint64_t)s->size;
        const int fails = s->fail_at >= 1 && s->fail_at <= s->size;
        wl_phase(self, "new group");
        s->ctx = cp_ctx_with_cancel(r->cfg->b, NULL);
        if (!s->ctx) { note(s, "out of memory for the group's ctx"); break; }
        atomic_store(&s->err, 0);
        atomic_store(&s->t_cancel, 0);
        atomic_store(&s->group, (uint32_t)g);
        atomic_store(&s->started, 0);
        atomic_store(&s->returned, 0);
        atomic_store(&s->completed, 0);
        atomic_store(&s->cancelled, 0);
        atomic_store(&s->failed, 0);

        int64_t err;
        int early = 0;
        if (!s->seed) {
            for (int64_t i = 1; i <= s->size; i++) {
                uint64_t t_go = 0;
                if (wl_sample(sample, &until_sample)) t_go = wl_now();
                eg_go(s, self, (uint32_t)i, t_go);
            }
            err = eg_wait(s, self);
        } else {
            err = seed_group(s, self, &early);
        }
        uint64_t t1 = cp_now_ns();
        int64_t started = atomic_load(&s->started), returned = atomic_load(&s->returned);

        /* Wait returns only after every task returned */
        if (returned != started) {
            if (s->seed)
                note(s, "group %llu: Wait returned while %lld of %lld started tasks were still running: "
                        "leaked %lld threads (the seed returns the first error without waiting)",
                     (unsigned long long)g, (long long)(started - returned), (long long)started,
                     (long long)(started - returned));
            else
                note(s, "group %llu: Wait returned with %lld of %lld tasks still running",
                     (unsigned long long)g, (long long)(started - returned), (long long)started);
        }
        /* the first error */
        int64_t want_err = fails ? ERR_TASK(s->fail_at) : 0;
        if (err != want_err) {
            describe(got, sizeof got, err);
            describe(want, sizeof want, want_err);
            note(s, "group %llu: Wait returned %s, the first error was %s", (unsigned long long)g, got, want);
        }
        if (!s->seed) {
            int64_t completed = atomic_load(&s->completed), cancelled = atomic_load(&s->cancelled);
            int64_t failed = atomic_load(&s->failed);
            if (started != s->size)
                note(s, "group %llu: %lld tasks started, Go() was called %lld times", (unsigned long long)g,
                     (long long)started, (long long)s->size);
            if (completed + cancelled + failed != s->size || failed != fails)
                note(s, "group %llu: %lld tasks: %lld completed + %lld saw the cancel + %lld failed (want %d)",
                     (unsigned long long)g, (long long)s->size, (long long)completed, (long long)cancelled,
                     (long long)failed, fails);
            if (!fails && cancelled)
                note(s, "group %llu: %lld tasks saw a cancel, yet no task failed", (unsigned long long)g,
                     (long long)cancelled);
            if (cp_ctx_err(s->ctx) != CP_CANCELED)
                note(s, "group %llu: the ctx is not cancelled after Wait returned (%s)", (unsigned long long)g,
                     cp_status_str(cp_ctx_err(s->ctx)));
            uint64_t tc = atomic_load(&s->t_cancel);
            if (fails && tc) {
                uint64_t d = t1 > tc ? t1 - tc : 0;
                if (d > s->worst_wait_ns) s->worst_wait_ns = d;
            }
            uint64_t seen = atomic_load(&s->worst_seen_ns);
            if (seen > CANCEL_BOUND_NS)
                note(s, "group %llu: a running task saw the cancel %.3f s after it (bound 1 s)", (unsigned long long)g,
                     (double)seen / 1e9);
            s->cancelled_total += (uint64_t)cancelled;
        }
        if (s->seed && early) {
            /* release what the seed left running: they watch the ctx */
            wl_phase(self, "seed: release leaked tasks");
            cp_ctx_cancel(s->ctx);
            cp_wg_wait(s->wg, NULL);
            int64_t stale;
            (void)cp_chan_try_recv(s->errch, &stale);
        }
        s->ran += (uint64_t)atomic_load(&s->returned);
        if (s->sem && cp_chan_len(s->sem) != 0)
            note(s, "group %llu: %zu tokens of the limit still held after Wait", (unsigned long long)g,
                 cp_chan_len(s->sem));
        if (atomic_load(&s->stale))
            note(s, "group %llu: %lld tasks of another group or tokens out of order", (unsigned long long)g,
                 (long long)atomic_load(&s->stale));
        cp_ctx_free(s->ctx);
        s->ctx = NULL;
    }
    self->ops = s->ran;
    wl_phase(self, "close runq");
    cp_chan_close(s->runq);
    wl_phase(self, "done");
    return NULL;
}

static int errgroup_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct eg_state st = { .r = r }, *s = &st;
    s->seed = c->variant == V_SEED;
    s->tasks = c->set[P_TASKS];
    s->limit = c->set[P_LIMIT];
    s->fail_at = c->set[P_FAIL_AT];
    s->work_ns = c->k.work_ns;
    int runners = (int)c->k.threads;
    /* the seed needs a semaphore channel: with no limit it is as wide as the group */
    int64_t sem_cap = s->limit > 0 ? s->limit : s->seed ? (s->tasks > 0 ? s->tasks : 1) : 0;

    s->runq = cp_chan_new(c->b, sizeof(struct task), (size_t)(s->tasks > 0 ? s->tasks : 1));
    s->wg = cp_wg_new(c->b);
    if (sem_cap) s->sem = cp_chan_new(c->b, 1, (size_t)sem_cap);
    if (s->seed) s->errch = cp_chan_new(c->b, sizeof(int64_t), 1);
    if (!s->runq || !s->wg || (sem_cap && !s->sem) || (s->seed && !s->errch)) {
        if (s->runq) cp_chan_free(s->runq);
        if (s->wg) cp_wg_free(s->wg);
        if (s->sem) cp_chan_free(s->sem);
        if (s->errch) cp_chan_free(s->errch);
        return -1;
    }
    wl_watch(r, "runq", s->runq);
    if (s->sem) wl_watch(r, "limit", s->sem);

    wl_spawn_n(r, runners, "runner", runner, s);
    wl_spawn(r, "owner", owner, s);
    wl_start_and_join(r);

    if (s->nfail) wl_fail(r, "%s%s", s->fail, s->nfail > 1 ? " (and more)" : "");
    int64_t max_active = atomic_load(&s->max_active);
    if (s->limit > 0 && max_active > s->limit)
        wl_fail(r, "%lld tasks ran at once, the limit is %lld", (long long)max_active, (long long)s->limit);
    wl_metric(r, M_MAX_ACTIVE, (double)max_active);
    wl_metric(r, M_CANCELLED, (double)s->cancelled_total);
    wl_metric(r, M_SEEN_NS, (double)atomic_load(&s->worst_seen_ns));
    wl_metric(r, M_WAIT_NS, (double)s->worst_wait_ns);
    r->ops = s->ran;
    if (c->duration <= 0 && !wl_stopped(r) && !s->nfail && s->ran != (uint64_t)c->k.items)
        wl_fail(r, "%llu tasks ran, expected %lld", (unsigned long long)s->ran, (long long)c->k.items);

    cp_chan_free(s->runq);
    cp_wg_free(s->wg);
    if (s->sem) cp_chan_free(s->sem);
    if (s->errch) cp_chan_free(s->errch);
    return 0;
}

static const char *errgroup_check(const wl_cfg *c)
{
    if (c->set[P_TASKS] < 1 || c->set[P_TASKS] > MAX_TASKS) return "--set tasks: 1 to 4096 tasks per group";
    if (c->set[P_LIMIT] > MAX_TASKS) return "--set limit: at most 4096";
    return NULL;
}

WL_DEFINE(errgroup) = {
    .name = "errgroup",
    .group = "orchestration",
    .desc = "x/sync/errgroup: Go() N tasks on runner threads, first error cancels the ctx, Wait",
    .op = "task run through the group",
    .latency = "Go() call -> the task returned",
    .defaults = { .threads = 4, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = 2000, .items = 50000 },
    .params = errgroup_params,
    .run = errgroup_run,
    .check = errgroup_check,
    .seed_key = "orchestration_errgroup",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "cancel_seen_ns", "ns", "worst cancel -> a running task saw it and returned" },
        { "cancel_to_wait_ns", "ns", "worst first error's cancel -> Wait returned (Go() still starts the rest)" },
        { "max_active", "count", "most tasks running at once" },
        { "cancelled", "count", "tasks that saw the group's cancel" },
        { NULL, NULL, NULL },
    },
};
