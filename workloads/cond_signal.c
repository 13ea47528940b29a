/*
 * cond_signal: a signaller hands out tickets one at a time to T waiters
 * through a cp_cond: it bumps the ticket count under the mutex and signals
 * one waiter, then waits (on a second cond) until the ticket is taken. The
 * shape of Go's BenchmarkCond1/2 ping-pong (sync/cond_test.go) with T
 * waiters.
 *
 * One op: one ticket consumed. Latency: signal -> the taker holds the
 * ticket (woken and re-locked the mutex), sampled 1 in --lat-sample.
 *
 * Invariants, checked on every run:
 *   - every ticket is consumed exactly once (count and sum of ticket
 *     numbers), and in count mode exactly --items are;
 *   - one signal wakes at most one waiter: the number of cp_cond_wait
 *     returns with CP_OK (before the closing broadcast) is at most the
 *     number of signals (a woken waiter may find the ticket already taken
 *     by a thread that never slept: that is allowed, as in sync.Cond);
 *   - no waiter sleeps forever: all join after the closing broadcast.
 */
#include "runtime/workload.h"

enum { M_FAIR };     /* M_FAIR, M_FAIR + 1: WL_METRICS_FAIRNESS */

struct cs_state {
    wl_run *r;
    cp_mutex *m;
    cp_cond *ready;             /* waiters: a ticket is available */
    cp_cond *taken;             /* signaller: the ticket was consumed */
    /* under m: */
    uint64_t avail;             /* tickets issued and not yet taken: 0 or 1 */
    uint64_t next_ticket;       /* number of the available ticket */
    uint64_t issued, signals, wakes_before_close;
    uint64_t signal_ts;         /* when the current ticket was signalled, 0: not sampled */
    int closed;
    uint64_t consumed, consumed_sum;
};

static void *cs_waiter(wl_thread *self, void *arg)
{
    struct cs_state *s = arg;
    uint64_t done = 0;
    cp_mutex_lock(s->m);
    for (;;) {
        wl_phase(self, "wait");
        while (!s->avail && !s->closed) {
            cp_status st = cp_cond_wait(s->ready, s->m, NULL);
            if (st != CP_OK) { wl_fail(s->r, "cond wait returned %s", cp_status_str(st)); break; }
            if (!s->closed) s->wakes_before_close++;
        }
        if (!s->avail) break;   /* closed, nothing left */
        s->avail--;
        s->consumed++;
        s->consumed_sum += s->next_ticket;
        if (s->signal_ts) cp_hist_record(self->hist, wl_since(s->signal_ts));
        done++;
        cp_cond_signal(s->taken);
    }
    cp_mutex_unlock(s->m);
    self->ops = done;
    wl_phase(self, "done");
    return NULL;
}

static void *cs_signaller(wl_thread *self, void *arg)
{
    struct cs_state *s = arg;
    wl_run *r = s->r;
    const int64_t sample = r->cfg->lat_sample, work = r->cfg->k.work_ns;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    int64_t until_sample = 0;
    uint64_t i = 0;
    cp_mutex_lock(s->m);
    for (; wl_more(r, i, n); i++) {
        wl_phase(self, "wait taken");
        while (s->avail) cp_cond_wait(s->taken, s->m, NULL);
        wl_phase(self, "signal");
        s->avail = 1;
        s->next_ticket = i + 1;
        s->issued++;
        s->signal_ts = 0;
        if (wl_sample(sample, &until_sample)) {
            s->signal_ts = wl_now();
        }
        cp_cond_signal(s->ready);
        s->signals++;
        if (work) {     /* --work-ns between tickets, outside the lock */
            cp_mutex_unlock(s->m);
            wl_work(work);
            cp_mutex_lock(s->m);
        }
    }
    while (s->avail) cp_cond_wait(s->taken, s->m, NULL);
    s->closed = 1;
    cp_cond_broadcast(s->ready);
    cp_mutex_unlock(s->m);
    wl_phase(self, "done");
    return NULL;
}

static int cond_signal_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct cs_state s = { .r = r };
    s.m = cp_mutex_new(c->b);
    s.ready = cp_cond_new(c->b);
    s.taken = cp_cond_new(c->b);
    if (!s.m || !s.ready || !s.taken) return -1;
    wl_spawn_n(r, c->k.threads, "waiter", cs_waiter, &s);
    wl_spawn(r, "signaller", cs_signaller, &s);
    wl_start_and_join(r);

    uint64_t want_sum = s.issued * (s.issued + 1) / 2;
    if (s.consumed != s.issued || s.consumed_sum != want_sum)
        wl_fail(r, "tickets: issued %llu, consumed %llu (sum %llu, want %llu)",
                (unsigned long long)s.issued, (unsigned long long)s.consumed,
                (unsigned long long)s.consumed_sum, (unsigned long long)want_sum);
    if (s.wakes_before_close > s.signals)
        wl_fail(r, "%llu wake-ups from %llu signals: a signal woke more than one waiter",
                (unsigned long long)s.wakes_before_close, (unsigned long long)s.signals);
    wl_check_items(r, s.issued, "issued %llu tickets, asked for --items=%lld");
    wl_fairness(r, 0, r->nthr - 1, M_FAIR);     /* the waiters */
    r->ops = s.consumed;
    cp_cond_free(s.ready);
    cp_cond_free(s.taken);
    cp_mutex_free(s.m);
    return 0;
}

WL_DEFINE(cond_signal) = {
    .name = "cond_signal",
    .seed_key = "primitives_signal",
    .group = "primitives",
    .desc = "a signaller hands tickets one at a time to T waiters via cond signal",
    .op = "ticket consumed",
    .latency = "signal -> waiter holds the ticket",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED,
                  .capacity = WL_UNUSED, .payload = WL_UNUSED, .work_ns = 0, .items = 20000 },
    .params = (const wl_param[]){ { NULL, 0, NULL } },
    .run = cond_signal_run,
    .metrics = (const wl_metric_def[]){ WL_METRICS_FAIRNESS, { NULL } },
};
