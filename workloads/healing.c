/*
 * healing: a steward supervises one ward that works through a stream of
 * work units and emits heartbeats; when a heartbeat deadline passes, the
 * steward cancels the ward, waits until it has exited, and starts a new one
 * that first redoes the unit the old one left unfinished. The seed's
 * scale_healing ("healing goroutines: context-driven supervisor that
 * respawns a ward on missed heartbeats", the steward/ward of Concurrency in
 * Go), with the work made explicit so that a restart can be checked.
 *
 * Threads: a producer (units 0, 1, ... into a channel of --capacity, closed
 * at the end), the ward of the moment (a new thread per restart), and the
 * steward, which is the run's own thread (it alone spawns wards). The ward
 * selects over its cp_ticker (period pulse_us: a non-blocking heartbeat
 * send, as the seed's `select { case heartbeat <- struct{}{}: default: }`)
 * and the units channel, under its own ctx (a child of the run's). The
 * steward selects over the heartbeats, its deadline timer (cp_timer, reset
 * to timeout_us by every beat), and the run's cancel; beats carry the ward's
 * generation, so a beat left by a ward already replaced is ignored.
 * Faults (--set fault=1 hang | 2 die, --set fault_every=K): every K-th unit
 * taken, up to max_faults per run, the ward either hangs (stops beating and
 * blocks until its ctx is cancelled: a stuck call that a cancel can abort)
 * or dies (its thread returns at once, the unit unfinished). The steward
 * learns of either only through the missed deadline. A restart on a missed
 * deadline with no fault is counted as spurious (a descheduled ward), and is
 * handled the same way.
 *
 * One op: one work unit done. Latency: a unit's time from its send by the
 * producer to its commit (redone units included, so restarts show).
 * Parameters: fault, fault_every, max_faults, pulse_us, timeout_us,
 * cancel_after_ms; --capacity (the units channel), --work-ns (per unit).
 *
 * Invariants, checked on every run:
 *   - no unit lost or done twice across restarts: each unit's commit sets
 *     its bit once (a second set is a duplicate), a ward that is cancelled
 *     or dies with a unit in hand leaves it to the next ward, and produced =
 *     done + left in the channel + the one abandoned by a run cancel;
 *     count-based without a cancel: every one of --items done;
 *   - at most one live ward at a time (a ward that starts while another
 *     lives fails the run);
 *   - every ward exits within 1 s of its cancel (else the run fails, naming
 *     the ward and the time, and stops supervising);
 *   - every fault injected is detected by a restart (faults = restarts that
 *     found a fault);
 *   - cancellation: the steward, the ward and the producer stop within 1 s
 *     of the cancel;
 *   - every thread joined: the steward waits for each ward's exit before it
 *     starts the next, and every ward thread is joined at the end.
 *
 * Metrics: detect_p50_ns / detect_max_ns (fault -> the steward notices),
 * recover_p50_ns / recover_max_ns (fault -> first beat of the new ward),
 * restarts, faults, spurious (restarts with no fault).
 * A run restarts at most 256 times (thread slots); past that the steward
 * only watches, and no fault is injected once fewer than 2 restarts remain.
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_FAULT, P_FAULT_EVERY, P_MAX_FAULTS, P_PULSE_US, P_TIMEOUT_US, P_CANCEL_AFTER_MS, P_COUNT };
enum { F_NONE, F_HANG, F_DIE };
enum { M_DETECT_P50, M_DETECT_MAX, M_RECOVER_P50, M_RECOVER_MAX, M_RESTARTS, M_FAULTS, M_SPURIOUS };
static const wl_param healing_params[] = {
    [P_FAULT] = { "fault", F_HANG, "0 none, 1 hang (stop beating until cancelled), 2 die (the ward's thread returns)", 2 },
    [P_FAULT_EVERY] = { "fault_every", 1000, "every K-th unit taken faults (up to max_faults); 0: never", 2000 },
    [P_MAX_FAULTS] = { "max_faults", 16, "faults per run at most", 0 },
    [P_PULSE_US] = { "pulse_us", 1000, "the ward's heartbeat period (its cp_ticker)", 0 },
    [P_TIMEOUT_US] = { "timeout_us", 10000, "the steward's deadline between beats", 0 },
    [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the run's ctx"),
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(healing_params, P_COUNT);

#define BUDGET 256              /* restarts per run */
#define NONE UINT64_MAX
#define CHUNK_BITS 20
#define MAX_CHUNKS 4096         /* 2^32 units */

struct unit { uint64_t id, sent; };

struct heal;

struct ward {
    struct heal *h;
    uint64_t gen;
    cp_ctx *ctx;
    cp_event *exited;
    struct unit redo;           /* the unit its predecessor left (id NONE: none) */
    struct unit inflight;       /* read by the steward after `exited` */
    _Atomic uint64_t t_fault;   /* when it hung or died, 0 if it did not */
};

struct heal {
    wl_run *r;
    cp_chan *units, *beats;
    cp_ctx *ctx;                /* the run's: cancel_after_ms */
    cp_event *finished;         /* a ward saw the units channel closed and drained */
    int fault;
    uint64_t fault_every, max_faults, pulse;
    _Atomic uint64_t taken, faults, restarts, done, dup, first_dup, produced, bad;
    _Atomic int live;           /* live wards */
    _Atomic int two_live;       /* a ward started while another lived */
    _Atomic uint8_t *_Atomic chunk[MAX_CHUNKS];
};

/* Mark unit id done; 1 if it already was. */
static int commit(struct heal *h, uint64_t id)
{
    size_t c = (size_t)(id >> CHUNK_BITS);
    if (c >= MAX_CHUNKS) return -1;
    _Atomic uint8_t *p = atomic_load(&h->chunk[c]);
    if (!p) {
        _Atomic uint8_t *n = calloc((1u << CHUNK_BITS) / 8, 1), *none = NULL;
        if (!n) return -1;
        if (atomic_compare_exchange_strong(&h->chunk[c], &none, n)) p = n;
        else {
            free((void *)n);
            p = none;
        }
    }
    uint64_t bit = id & ((1u << CHUNK_BITS) - 1);
    uint8_t m = (uint8_t)(1u << (bit & 7));
    return (atomic_fetch_or(&p[bit >> 3], m) & m) != 0;
}

static int is_done(struct heal *h, uint64_t id)
{
    _Atomic uint8_t *p = atomic_load(&h->chunk[id >> CHUNK_BITS]);
    uint64_t bit = id & ((1u << CHUNK_BITS) - 1);
    return p && (atomic_load(&p[bit >> 3]) >> (bit & 7) & 1);
}

static void *producer(wl_thread *self, void *arg)
{
    struct heal *h = arg;
    wl_run *r = h->r;
    const uint64_t n = (uint64_t)r->cfg->k.items;
    const uint64_t end = r->cfg->duration > 0 ? r->t_start + (uint64_t)(r->cfg->duration * 1e9) : 0;
    uint64_t id = 0;
    wl_phase(self, "send unit");
    for (; wl_more(r, id, n) && (!end || wl_now() < end); id++) {
        struct unit u = { id, wl_now() };
        if (cp_chan_send(h->units, &u, h->ctx) != CP_OK) break;    /* the run's cancel */
    }
    atomic_store(&h->produced, id);
    self->ops = id;
    cp_chan_close(h->units);
    wl_phase(self, "done");
    return NULL;
}

/* Claim one of the run's faults for the unit just taken. */
static int fault_now(struct heal *h)
{
    if (h->fault == F_NONE || !h->fault_every) return 0;
    if (atomic_fetch_add(&h->taken, 1) % h->fault_every != h->fault_every - 1) return 0;
    if (atomic_load(&h->restarts) + 2 > BUDGET) return 0;      /* keep a restart to handle it */
    uint64_t f = atomic_load(&h->faults);
    do {
        if (f >= h->max_faults) return 0;
    } while (!atomic_compare_exchange_weak(&h->faults, &f, f + 1));
    return 1;
}

static void beat(struct ward *w)
{
    cp_chan_try_send(w->h->beats, &w->gen);     /* dropped if the steward has one pending */
}

/* 0: go on; 1: the ward stops here (hung then cancelled, or died) */
static int work(wl_thread *self, struct ward *w, struct unit u)
{
    struct heal *h = w->h;
    w->inflight = u;
    if (fault_now(h)) {
        atomic_store(&w->t_fault, cp_now_ns());
        if (h->fault == F_HANG) {
            wl_phase(self, "hung (until cancelled)");
            cp_event_wait(cp_ctx_done(w->ctx), NULL);
        }
        return 1;       /* died, or hung and cancelled: the unit stays in flight */
    }
    if (h->r->cfg->k.work_ns) wl_work(h->r->cfg->k.work_ns);
    int was = commit(h, u.id);
    if (was < 0) atomic_fetch_add(&h->bad, 1);
    else if (was && !atomic_fetch_add(&h->dup, 1)) atomic_store(&h->first_dup, u.id);
    atomic_fetch_add(&h->done, 1);
    w->inflight.id = NONE;
    int64_t sample = h->r->cfg->lat_sample;
    if (sample && u.id % (uint64_t)sample == 0) cp_hist_record(self->hist, wl_since(u.sent));
    self->ops++;
    return 0;
}

static void *ward(wl_thread *self, void *arg)
{
    struct ward *w = arg;
    struct heal *h = w->h;
    if (atomic_fetch_add(&h->live, 1) != 0) atomic_store(&h->two_live, 1);
    cp_timer *tk = cp_ticker_new(h->r->cfg->b, h->pulse);
    w->inflight.id = NONE;
    if (!tk) {
        atomic_fetch_add(&h->bad, 1);
        goto out;
    }
    beat(w);                                /* alive */
    if (w->redo.id != NONE && work(self, w, w->redo)) goto out;
    for (;;) {
        uint64_t t;
        struct unit u;
        cp_case cs[2] = { { .op = CP_RECV, .ch = cp_timer_chan(tk), .elem = &t },
                          { .op = CP_RECV, .ch = h->units, .elem = &u } };
        cp_status st;
        wl_phase(self, "select");
        int i = cp_select(cs, 2, w->ctx, &st);
        if (i < 0) break;                   /* cancelled by the steward (or the run) */
        if (i == 0) {
            beat(w);
        } else if (st == CP_CLOSED) {
            cp_event_fire(h->finished);     /* all units taken and done */
            break;
        } else {
            wl_phase(self, "work");
            if (work(self, w, u)) break;
        }
    }
out:
    cp_timer_free(tk);
    atomic_fetch_sub(&h->live, 1);
    wl_phase(self, "exited");
    cp_event_fire(w->exited);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int healing_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    const uint64_t timeout = (uint64_t)c->set[P_TIMEOUT_US] * 1000u;
    const int64_t cancel_ms = c->set[P_CANCEL_AFTER_MS];
    struct heal *h = calloc(1, sizeof *h);
    struct ward *wards = calloc(BUDGET + 1, sizeof *wards);
    uint64_t detect[BUDGET + 1], recover[BUDGET + 1];
    int ndetect = 0, nrecover = 0, nwards = 0, rc = -1;
    cp_timer *deadline = NULL, *cancel_tm = NULL;
    if (!h || !wards) goto out;
    h->r = r;
    h->fault = (int)c->set[P_FAULT];
    h->fault_every = (uint64_t)c->set[P_FAULT_EVERY];
    h->max_faults = (uint64_t)c->set[P_MAX_FAULTS];
    h->pulse = (uint64_t)c->set[P_PULSE_US] * 1000u;
    h->units = cp_chan_new(c->b, sizeof(struct unit), (size_t)c->k.capacity);
    h->beats = cp_chan_new(c->b, sizeof(uint64_t), 1);
    h->ctx = cp_ctx_with_cancel(c->b, NULL);
    h->finished = cp_event_new(c->b);
    deadline = cp_timer_new(c->b, timeout);
    if (cancel_ms > 0) cancel_tm = cp_timer_new(c->b, (uint64_t)cancel_ms * 1000000u);
    if (!h->units || !h->beats || !h->ctx || !h->finished || !deadline || (cancel_ms > 0 && !cancel_tm)) goto out;
    cp_timer_stop(deadline);
    if (cancel_tm) cp_timer_stop(cancel_tm);
    wl_watch(r, "units", h->units);
    wl_watch(r, "beats", h->beats);
    wl_spawn(r, "producer", producer, h);

    /* the steward: this thread */
    uint64_t cancelled_at = 0, recovering_since = 0, spurious = 0, detected = 0;
    struct unit redo = { NONE, 0 };
    wl_start(r);
    if (cancel_tm) cp_timer_reset(cancel_tm, (uint64_t)cancel_ms * 1000000u);
    for (;;) {
        /* start a ward (nobody else is alive: the previous one has exited) */
        struct ward *w = &wards[nwards];
        w->h = h;
        w->gen = (uint64_t)nwards + 1;
        w->redo = redo;
        w->ctx = cp_ctx_with_cancel(c->b, h->ctx);
        w->exited = cp_event_new(c->b);
        if (!w->ctx || !w->exited) {
            wl_fail(r, "out of memory for a ward");
            cp_ctx_free(w->ctx);
            cp_event_free(w->exited);
            cp_ctx_cancel(h->ctx);
            break;
        }
        nwards++;
        wl_spawn(r, "ward", ward, w);
        cp_timer_reset(deadline, timeout);

        int restart = 0, stop = 0;
        while (!restart && !stop) {
            uint64_t gen, t;
            cp_case cs[4] = { { .op = CP_RECV, .ch = h->beats, .elem = &gen },
                              { .op = CP_RECV, .ch = cp_timer_chan(deadline), .elem = &t },
                              { .op = CP_WAIT, .ev = h->finished },
                              { .op = CP_RECV, .ch = cancel_tm ? cp_timer_chan(cancel_tm) : NULL, .elem = &t } };
            cp_status st;
            int i = cp_select(cs, 4, NULL, &st);
            uint64_t now = cp_now_ns();
            if (i == 0) {
                if (gen != w->gen) continue;            /* a beat of a ward already replaced */
                if (recovering_since) {
                    if (nrecover <= BUDGET) recover[nrecover++] = now - recovering_since;
                    recovering_since = 0;
                }
                cp_timer_reset(deadline, timeout);
            } else if (i == 1) {
                if (atomic_load(&h->restarts) >= BUDGET) continue;    /* only watching now */
                restart = 1;
            } else if (i == 2) {
                stop = 1;
            } else if (i == 3) {
                cancelled_at = wl_now();
                cp_ctx_cancel(h->ctx);
                stop = 1;
            } else {
                wl_fail(r, "steward's select failed: %s", cp_status_str(st));
                cp_ctx_cancel(h->ctx);
                stop = 1;
            }
        }
        if (restart) cp_ctx_cancel(w->ctx);
        /* every ward exits within 1 s of its cancel (or of the end) */
        cp_ctx *bound = cp_ctx_with_timeout(c->b, NULL, WL_BOUND_NS);
        uint64_t t0 = wl_now();
        cp_status st = cp_event_wait(w->exited, bound);
        cp_ctx_free(bound);
        if (st != CP_OK) {
            wl_fail(r, "ward %llu did not exit within %.3f s of its cancel", (unsigned long long)w->gen,
                    (double)wl_since(t0) / 1e9);
            cp_ctx_cancel(h->ctx);
            cp_event_wait(w->exited, NULL);     /* the watchdog bounds this */
            break;
        }
        if (stop) break;
        atomic_fetch_add(&h->restarts, 1);
        uint64_t tf = atomic_load(&w->t_fault), now = cp_now_ns();
        if (tf) {
            detected++;
            detect[ndetect++] = now > tf ? now - tf : 0;
            recovering_since = tf;
        } else {
            spurious++;
        }
        redo = w->inflight;
        if (redo.id != NONE && is_done(h, redo.id)) redo.id = NONE;
    }
    cp_ctx_cancel(h->ctx);      /* the producer, if a ward failed to exit */
    wl_join(r);

    /* the accounting */
    uint64_t left = 0, dup_left = 0;
    struct unit u;
    while (cp_chan_try_recv(h->units, &u) == CP_OK) {
        dup_left += is_done(h, u.id);
        left++;
    }
    struct ward *last = nwards ? &wards[nwards - 1] : NULL;
    uint64_t abandoned = last && last->inflight.id != NONE && !is_done(h, last->inflight.id);
    /* a fault in the ward that the cancel (not a restart) ended */
    uint64_t ended_by_cancel = cancelled_at && last && atomic_load(&last->t_fault);
    uint64_t produced = atomic_load(&h->produced), done = atomic_load(&h->done);
    uint64_t faults = atomic_load(&h->faults), restarts = atomic_load(&h->restarts);
    if (atomic_load(&h->two_live)) wl_fail(r, "two wards were alive at once");
    if (atomic_load(&h->dup))
        wl_fail(r, "units done twice: %llu (first: unit %llu)", (unsigned long long)atomic_load(&h->dup),
                (unsigned long long)atomic_load(&h->first_dup));
    if (atomic_load(&h->bad)) wl_fail(r, "%llu ward errors (out of memory, or a unit id out of range)",
                                      (unsigned long long)atomic_load(&h->bad));
    if (dup_left) wl_fail(r, "%llu units left in the channel were already done", (unsigned long long)dup_left);
    if (produced != done - atomic_load(&h->dup) + left + abandoned)
        wl_fail(r, "units lost: produced %llu != done %llu + left in the channel %llu + abandoned on the cancel %llu",
                (unsigned long long)produced, (unsigned long long)(done - atomic_load(&h->dup)),
                (unsigned long long)left, (unsigned long long)abandoned);
    if (!cancelled_at && (left || abandoned))
        wl_fail(r, "no cancel, yet %llu units left and %llu abandoned", (unsigned long long)left,
                (unsigned long long)abandoned);
    if (!cancelled_at && c->duration <= 0 && done != (uint64_t)c->k.items)
        wl_fail(r, "done %llu units, expected --items %lld", (unsigned long long)done, (long long)c->k.items);
    if (faults != detected + ended_by_cancel)
        wl_fail(r, "%llu faults injected, %llu detected by a restart (+ %llu ended by the cancel)",
                (unsigned long long)faults, (unsigned long long)detected, (unsigned long long)ended_by_cancel);
    if (cancelled_at && r->t_end > cancelled_at && r->t_end - cancelled_at > WL_BOUND_NS)
        wl_fail(r, "cancellation took %.3f s to stop the producer and the ward (bound 1 s)",
                (double)(r->t_end - cancelled_at) / 1e9);

    qsort(detect, (size_t)ndetect, sizeof detect[0], cmp_u64);
    qsort(recover, (size_t)nrecover, sizeof recover[0], cmp_u64);
    if (ndetect) {
        wl_metric(r, M_DETECT_P50, (double)detect[ndetect / 2]);
        wl_metric(r, M_DETECT_MAX, (double)detect[ndetect - 1]);
    }
    if (nrecover) {
        wl_metric(r, M_RECOVER_P50, (double)recover[nrecover / 2]);
        wl_metric(r, M_RECOVER_MAX, (double)recover[nrecover - 1]);
    }
    wl_metric(r, M_RESTARTS, (double)restarts);
    wl_metric(r, M_FAULTS, (double)faults);
    wl_metric(r, M_SPURIOUS, (double)spurious);
    r->ops = done;
    rc = 0;
out:
    for (int i = 0; i < nwards; i++) {
        cp_ctx_free(wards[i].ctx);
        cp_event_free(wards[i].exited);
    }
    if (h) {
        cp_timer_free(deadline);
        cp_timer_free(cancel_tm);
        if (h->units) cp_chan_free(h->units);
        if (h->beats) cp_chan_free(h->beats);
        cp_ctx_free(h->ctx);
        if (h->finished) cp_event_free(h->finished);
        for (size_t i = 0; i < MAX_CHUNKS; i++) free((void *)atomic_load(&h->chunk[i]));
    }
    free(wards);
    free(h);
    return rc;
}

static const char *healing_check(const wl_cfg *c)
{
    if (c->set[P_FAULT] > F_DIE) return "--set fault: 0 none, 1 hang, 2 die";
    if (c->set[P_MAX_FAULTS] > BUDGET - 2) return "--set max_faults: at most 254 (a run restarts at most 256 times)";
    if (c->set[P_PULSE_US] < 10) return "--set pulse_us: at least 10";
    if (c->set[P_TIMEOUT_US] < 2 * c->set[P_PULSE_US])
        return "--set timeout_us: at least twice pulse_us (a deadline shorter than the beat restarts a healthy ward)";
    if ((uint64_t)c->k.items >> CHUNK_BITS >= MAX_CHUNKS) return "--items: at most 2^32 units";
    return NULL;
}

WL_DEFINE(healing) = {
    .name = "healing",
    .seed_key = "scale_healing",
    .group = "scale",
    .desc = "a steward restarts a ward that misses its heartbeat deadline (fault injection: hang, die)",
    .op = "work unit done",
    .latency = "unit sent -> done (redone units included)",
    .defaults = { .threads = WL_UNUSED, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = 64,
                  .payload = WL_UNUSED, .work_ns = 2000, .items = 5000 },
    .params = healing_params,
    .run = healing_run,
    .check = healing_check,
    .metrics = (const wl_metric_def[]){
        { "detect_p50_ns", "ns", "fault -> the steward notices, median" },
        { "detect_max_ns", "ns", "fault -> the steward notices, max" },
        { "recover_p50_ns", "ns", "fault -> first beat of the new ward, median" },
        { "recover_max_ns", "ns", "fault -> first beat of the new ward, max" },
        { "restarts", "count", "wards restarted" },
        { "faults", "count", "faults injected" },
        { "spurious", "count", "restarts with no fault (a ward descheduled past the deadline)" },
        { NULL, NULL, NULL },
    },
};
