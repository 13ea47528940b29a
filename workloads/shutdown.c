/*
 * shutdown: graceful shutdown in phases. P producers (--producers) submit
 * jobs to a bounded queue (--capacity) while its intake is open; W workers
 * (--threads) process them (--work-ns each, in slices of at most 1 us that
 * check the hard ctx). Then the server shuts down:
 *   1. stop intake: a "closed" event wakes every producer out of its
 *      select { send job; intake closed }; when all have left, the queue is
 *      closed (a sender closes, as in Go);
 *   2. soft drain: the workers finish what the queue holds; the server waits
 *      for them with a deadline of --set drain_ms=T;
 *   3. hard cancel, if the deadline passed: the workers' ctx is cancelled, a
 *      job interrupted mid-way is reported cancelled, and the jobs still
 *      queued are reported cancelled by the server.
 * The seeds' orchestration_shutdown ("stop intake, soft drain, hard cancel")
 * and the playbooks' graceful shutdowns (001 pattern 4, 002, 003).
 * Shutdown begins once --items jobs have been accepted (count mode; a few
 * more may be accepted while intake closes) or when --duration ends.
 *
 * One op: a job completed. Latency: a job's submission -> its completion
 * (sampled 1 in --lat-sample jobs).
 *
 * Invariants, checked on every run:
 *   - nothing accepted is lost, none resolved twice: accepted == completed +
 *     cancelled, in count and in a checksum of the job ids (a duplicate and a
 *     loss do not cancel out);
 *   - a soft drain that ends before its deadline leaves nothing cancelled;
 *   - stop intake ends within 1 s; the soft drain ends by its deadline (+1 s
 *     of slack); the hard cancel stops every worker within 1 s (else the run
 *     fails, naming the time);
 *   - count mode: at least --items jobs were accepted;
 *   - every thread joined.
 * Metrics (each repetition): stop_intake_ns, drain_ns, hard_cancel_ns (0 when
 * the soft drain finished in time), cancelled (jobs reported cancelled).
 *
 * --variant=seed: the shutdown of the playbooks (001 pattern 4's
 * Server.Shutdown(timeout) and 003's last phase): wait for the workers with a
 * timeout and, when it passes, "forcing exit": return without cancelling the
 * workers or accounting for the jobs they hold and the queue still holds.
 * What it leaves is counted when it returns: the worker threads still running
 * (leaked) and the accepted jobs neither completed nor reported cancelled
 * (lost). Run it with a drain that cannot finish in time, e.g. --set
 * drain_ms=0 --work-ns=1000000. After counting, the workers are released
 * (their ctx is cancelled) and joined.
 */
#include "runtime/workload.h"

#include <stdarg.h>
#include <stdio.h>

enum { P_DRAIN_MS, P_COUNT };
enum { M_INTAKE_NS, M_DRAIN_NS, M_HARD_NS, M_CANCELLED };
enum { V_DEFAULT, V_SEED };
static const wl_param shutdown_params[] = {
    [P_DRAIN_MS] = { "drain_ms", 5, "soft drain deadline in ms; past it, the workers are cancelled", 5 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(shutdown_params, P_COUNT);

#define SLICE_NS 1000

struct job { uint64_t id, submitted; };

struct sd_state {
    wl_run *r;
    int seed;
    uint64_t drain_ns;
    cp_chan *queue;
    cp_event *intake_closed;    /* phase 1: producers leave */
    cp_event *quota;            /* time to shut down */
    cp_ctx *hard;               /* phase 3: the workers' ctx */
    cp_wg *producers, *workers;
    _Atomic uint64_t next_id, accepted;
    _Atomic uint64_t accepted_sum, completed, completed_sum, cancelled, cancelled_sum;
    _Atomic int live_workers;
    /* the server's findings and phase times, read after the join */
    uint64_t t_intake, t_drain, t_hard;
    char fail[400];
    int nfail;
};

static void note(struct sd_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct sd_state *s, const char *fmt, ...)
{
    if (s->nfail++) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail, sizeof s->fail, fmt, ap);
    va_end(ap);
}

static void *producer(wl_thread *self, void *arg)
{
    struct sd_state *s = arg;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample;
    const uint64_t items = (uint64_t)r->cfg->k.items;
    const int count_mode = r->cfg->duration <= 0;
    int64_t until_sample = 0;
    uint64_t n = 0, sum = 0;
    wl_phase(self, "submit");
    for (;;) {
        struct job j = { .id = atomic_fetch_add(&s->next_id, 1) };
        if (wl_sample(sample, &until_sample)) j.submitted = wl_now();
        cp_case cs[2] = { { .op = CP_SEND, .ch = s->queue, .elem = &j }, { .op = CP_WAIT, .ev = s->intake_closed } };
        cp_status st;
        int k = cp_select(cs, 2, NULL, &st);
        if (k != 0 || st != CP_OK) break;       /* intake closed: this job was not accepted */
        n++;
        sum += wl_mix(j.id);
        if (atomic_fetch_add(&s->accepted, 1) + 1 == items && count_mode) cp_event_fire(s->quota);
    }
    atomic_fetch_add(&s->accepted_sum, sum);
    self->ops = n;
    wl_phase(self, "done");
    cp_wg_done(s->producers);
    return NULL;
}

/* Process one job: busy work in slices, each after a look at the hard ctx.
 * Returns 1 if completed, 0 if the hard cancel interrupted it. */
static int process(struct sd_state *s, int64_t work)
{
    for (int64_t done = 0; done < work; done += SLICE_NS) {
        if (cp_ctx_err(s->hard) != CP_OK) return 0;
        int64_t left = work - done;
        wl_work(left < SLICE_NS ? left : SLICE_NS);
    }
    return 1;
}

static void *worker(wl_thread *self, void *arg)
{
    struct sd_state *s = arg;
    const int64_t work = s->r->cfg->k.work_ns;
    uint64_t n = 0;
    struct job j;
    wl_phase(self, "recv job");
    while (cp_ctx_err(s->hard) == CP_OK && cp_chan_recv(s->queue, &j, s->hard) == CP_OK) {
        wl_phase(self, "job");
        if (process(s, work)) {
            if (j.submitted) cp_hist_record(self->hist, wl_since(j.submitted));
            /* published per job: the seed variant counts what is unresolved when it gives up */
            atomic_fetch_add(&s->completed_sum, wl_mix(j.id));
            atomic_fetch_add(&s->completed, 1);
            n++;
        } else {
            atomic_fetch_add(&s->cancelled_sum, wl_mix(j.id));
            atomic_fetch_add(&s->cancelled, 1);
            break;
        }
        wl_phase(self, "recv job");
    }
    self->ops = n;
    wl_phase(self, "done");
    atomic_fetch_sub(&s->live_workers, 1);
    cp_wg_done(s->workers);
    return NULL;
}

/* Wait for wg within bound_ns; CP_DEADLINE if it did not finish in time. */
static cp_status wait_within(struct sd_state *s, cp_wg *wg, uint64_t bound_ns)
{
    cp_ctx *c = cp_ctx_with_timeout(s->r->cfg->b, NULL, bound_ns);
    if (!c) return cp_wg_wait(wg, NULL);
    cp_status st = cp_wg_wait(wg, c);
    cp_ctx_free(c);
    return st;
}

static void *server(wl_thread *self, void *arg)
{
    struct sd_state *s = arg;
    wl_run *r = s->r;
    wl_phase(self, "serving");
    while (!cp_event_fired(s->quota) && !wl_stopped(r)) {
        cp_ctx *tick = cp_ctx_with_timeout(r->cfg->b, NULL, 10000000);
        if (!tick) { note(s, "out of memory"); break; }
        cp_event_wait(s->quota, tick);
        cp_ctx_free(tick);
    }

    /* phase 1: stop intake */
    wl_phase(self, "stop intake");
    uint64_t t0 = cp_now_ns();
    cp_event_fire(s->intake_closed);
    if (wait_within(s, s->producers, WL_BOUND_NS) != CP_OK) {
        note(s, "stop intake: producers still submitting %.3f s after intake closed (bound 1 s)",
             (double)(cp_now_ns() - t0) / 1e9);
        cp_wg_wait(s->producers, NULL);
    }
    cp_chan_close(s->queue);
    uint64_t t1 = cp_now_ns();
    s->t_intake = t1 - t0;

    /* phase 2: soft drain, with a deadline */
    wl_phase(self, "soft drain");
    cp_status st = wait_within(s, s->workers, s->drain_ns);
    uint64_t t2 = cp_now_ns();
    s->t_drain = t2 - t1;
    if (st == CP_OK && s->t_drain > s->drain_ns + WL_BOUND_NS)
        note(s, "soft drain: took %.3f s, its deadline was %.3f s", (double)s->t_drain / 1e9, (double)s->drain_ns / 1e9);

    if (st != CP_OK && s->seed) {
        /* the seed: "Shutdown timed out, forcing exit" -- it returns here */
        int leaked = atomic_load(&s->live_workers);
        uint64_t acc = atomic_load(&s->accepted);
        uint64_t resolved = atomic_load(&s->completed) + atomic_load(&s->cancelled);
        if (leaked || acc != resolved)
            note(s, "seed shutdown: gave up at the drain deadline and returned with %d worker threads still "
                    "running (leaked) and %llu accepted jobs neither completed nor reported cancelled (lost)",
                 leaked, (unsigned long long)(acc > resolved ? acc - resolved : 0));
        /* release what it left, after counting: cancel, wait, account */
        wl_phase(self, "seed: release leaked workers");
        cp_ctx_cancel(s->hard);
        cp_wg_wait(s->workers, NULL);
    } else if (st != CP_OK) {
        /* phase 3: hard cancel */
        wl_phase(self, "hard cancel");
        cp_ctx_cancel(s->hard);
        if (wait_within(s, s->workers, WL_BOUND_NS) != CP_OK) {
            note(s, "hard cancel: workers still running %.3f s after the cancel (bound 1 s)",
                 (double)(cp_now_ns() - t2) / 1e9);
            cp_wg_wait(s->workers, NULL);
        }
        s->t_hard = cp_now_ns() - t2;
    }
    cp_ctx_cancel(s->hard);

    /* what the queue still holds is reported cancelled */
    wl_phase(self, "report queued");
    struct job j;
    uint64_t left = 0, left_sum = 0;
    while (cp_chan_try_recv(s->queue, &j) == CP_OK) {
        left++;
        left_sum += wl_mix(j.id);
    }
    atomic_fetch_add(&s->cancelled, left);
    atomic_fetch_add(&s->cancelled_sum, left_sum);
    if (st == CP_OK && (atomic_load(&s->cancelled) || left))
        note(s, "the soft drain finished in time, yet %llu jobs were cancelled",
             (unsigned long long)atomic_load(&s->cancelled));
    wl_phase(self, "done");
    return NULL;
}

static int shutdown_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct sd_state st = { .r = r }, *s = &st;
    s->seed = c->variant == V_SEED;
    s->drain_ns = (uint64_t)c->set[P_DRAIN_MS] * 1000000u;
    int producers = (int)c->k.producers, workers = (int)c->k.threads;
    atomic_init(&s->live_workers, workers);
    s->queue = cp_chan_new(c->b, sizeof(struct job), (size_t)c->k.capacity);
    s->intake_closed = cp_event_new(c->b);
    s->quota = cp_event_new(c->b);
    s->hard = cp_ctx_with_cancel(c->b, NULL);
    s->producers = cp_wg_new(c->b);
    s->workers = cp_wg_new(c->b);
    if (!s->queue || !s->intake_closed || !s->quota || !s->hard || !s->producers || !s->workers) {
        if (s->queue) cp_chan_free(s->queue);
        if (s->intake_closed) cp_event_free(s->intake_closed);
        if (s->quota) cp_event_free(s->quota);
        cp_ctx_free(s->hard);
        if (s->producers) cp_wg_free(s->producers);
        if (s->workers) cp_wg_free(s->workers);
        return -1;
    }
    wl_watch(r, "queue", s->queue);
    cp_wg_add(s->producers, producers);
    cp_wg_add(s->workers, workers);
    wl_spawn_n(r, workers, "worker", worker, s);
    wl_spawn_n(r, producers, "producer", producer, s);
    wl_spawn(r, "server", server, s);
    wl_start(r);
    wl_wait_duration(r);
    if (c->duration > 0) cp_event_fire(s->quota);
    wl_join(r);

    uint64_t acc = atomic_load(&s->accepted), acc_sum = atomic_load(&s->accepted_sum);
    uint64_t done = atomic_load(&s->completed), cancelled = atomic_load(&s->cancelled);
    uint64_t res_sum = atomic_load(&s->completed_sum) + atomic_load(&s->cancelled_sum);
    if (s->nfail) wl_fail(r, "%s", s->fail);
    if (done + cancelled != acc)
        wl_fail(r, "accepted %llu jobs, resolved %llu (%llu completed + %llu cancelled): %s",
                (unsigned long long)acc, (unsigned long long)(done + cancelled), (unsigned long long)done,
                (unsigned long long)cancelled, done + cancelled < acc ? "jobs lost" : "jobs resolved twice");
    else if (res_sum != acc_sum)
        wl_fail(r, "checksum of resolved jobs %016llx != accepted %016llx: a job resolved twice and another lost",
                (unsigned long long)res_sum, (unsigned long long)acc_sum);
    if (c->duration <= 0 && !wl_stopped(r) && acc < (uint64_t)c->k.items)
        wl_fail(r, "accepted %llu jobs before shutting down, expected at least %lld", (unsigned long long)acc,
                (long long)c->k.items);
    wl_metric(r, M_INTAKE_NS, (double)s->t_intake);
    wl_metric(r, M_DRAIN_NS, (double)s->t_drain);
    wl_metric(r, M_HARD_NS, (double)s->t_hard);
    wl_metric(r, M_CANCELLED, (double)cancelled);
    r->ops = done;

    cp_chan_free(s->queue);
    cp_event_free(s->intake_closed);
    cp_event_free(s->quota);
    cp_ctx_free(s->hard);
    cp_wg_free(s->producers);
    cp_wg_free(s->workers);
    return 0;
}

WL_DEFINE(shutdown) = {
    .name = "shutdown",
    .group = "orchestration",
    .desc = "graceful shutdown: stop intake, soft drain with a deadline, then hard cancel",
    .op = "job completed",
    .latency = "job submitted -> completed",
    .defaults = { .threads = 4, .producers = 2, .consumers = WL_UNUSED, .capacity = 128,
                  .payload = WL_UNUSED, .work_ns = 10000, .items = 50000 },
    .params = shutdown_params,
    .run = shutdown_run,
    .seed_key = "orchestration_shutdown",
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "stop_intake_ns", "ns", "phase 1: intake closed -> every producer out, queue closed" },
        { "drain_ns", "ns", "phase 2: soft drain (all done, or its deadline)" },
        { "hard_cancel_ns", "ns", "phase 3: hard cancel -> every worker out (0: not needed)" },
        { "cancelled", "count", "accepted jobs reported cancelled" },
        { NULL, NULL, NULL },
    },
};
