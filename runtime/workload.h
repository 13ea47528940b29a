/*
 * The contract between a workload (one pattern of the catalogue) and the
 * runtime below it (runtime/: threads and their start gate, the clock,
 * histograms, failure reports). A workload is written only against
 * <cp/cp.h> and this file; it is compiled once per family (-DCP_FAMILY=...,
 * direct calls) and once generic (calls through the backend table), and the
 * harness, above the runtime, picks the (workload, family) entry once per
 * run and drives it (runtime/driver.h).
 *
 * A run function: spawns its threads with wl_spawn (they wait at a start
 * gate), opens the gate with wl_start (and wl_wait_duration), joins them
 * with wl_join, checks its invariants (wl_fail on any violation), and sets
 * r->ops. Latency is recorded by each thread into its own histogram
 * (t->hist), allocation-free.
 */
#ifndef CP_WORKLOAD_H
#define CP_WORKLOAD_H

#include <cp/cp.h>

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/hist.h"

#define WL_MAX_SET 8
#define WL_MAX_THREADS 1024
#define WL_UNUSED (-1)

/* Common knobs (the list: runtime/knobs.def): a pattern's default for each,
 * or WL_UNUSED if it has none. Named fields (k.threads); by index (the
 * list's order), wl_knob_at. */
#include "runtime/knobs.def"
#define WL__KNOB_FIELD(ID, field, ...) int64_t field;
typedef struct wl_knobs {
    WL_KNOB_LIST(WL__KNOB_FIELD)
} wl_knobs;
#undef WL__KNOB_FIELD
#define WL__KNOB_COUNT(...) +1
enum { WL_NKNOBS = 0 WL_KNOB_LIST(WL__KNOB_COUNT) };
#undef WL__KNOB_COUNT

/* Knob i (0 .. WL_NKNOBS - 1, the list's order) of k; NULL out of range. */
static inline int64_t *wl_knob_at(wl_knobs *k, int i)
{
    int n = 0;
#define WL__KNOB_AT(ID, field, ...) if (i == n++) return &k->field;
    WL_KNOB_LIST(WL__KNOB_AT)
#undef WL__KNOB_AT
    return 0;
}
static inline int64_t wl_knob_get(const wl_knobs *k, int i)
{
    return *wl_knob_at((wl_knobs *)k, i);
}

typedef struct wl_param {
    const char *key;
    int64_t def;
    const char *help;
    int64_t stress_max;     /* cpbench stress draws it from [0, stress_max]; 0: keeps def */
} wl_param;

typedef struct wl_cfg {
    const cp_backend *b;
    int variant;            /* index into the workload's variants; 0 = the correct one */
    wl_knobs k;             /* values for this run (WL_UNUSED where unused) */
    double duration;        /* seconds; 0: run until k.items are done */
    uint64_t seed;
    int64_t lat_sample;     /* timestamp 1 op in lat_sample; 0: no latency */
    double rate;            /* open loop: ops/s over all the pattern's sources; 0: closed loop */
    int64_t set[WL_MAX_SET];/* pattern parameters, in the order of params */
} wl_cfg;

typedef struct wl_thread {
    cp_hist *hist;                  /* this thread's latency histogram (open loop: from the
                                     * intended start, coordinated-omission corrected) */
    cp_hist *hist_u;                /* open loop: from the actual start (uncorrected) */
    uint64_t ops;                   /* this thread's ops, published at its end */
    _Atomic(const char *) phase;    /* what it is doing, for the watchdog */
    char name[24];
    int rank;                       /* its index among the threads one wl_spawn_n started */
    void *(*fn)(struct wl_thread *self, void *arg);
    void *arg;
    struct wl_run *run;
    uint64_t ended;
    bool joined;                    /* by wl_join_thread already */
    uint64_t alloc_bytes;           /* bytes this thread allocated (the driver's hook: jemalloc) */
} __attribute__((aligned(64))) wl_thread;

typedef struct wl_run {
    const wl_cfg *cfg;
    wl_thread *thr;                 /* WL_MAX_THREADS slots */
    int nthr;
    _Atomic int go;                 /* start gate */
    _Atomic int stop;               /* time-based runs: set at the end of duration */
    uint64_t t_start, t_end;
    uint64_t ops;                   /* set by the workload: what it counts as done */
    char fail[512];                 /* first failed invariant, empty if none */
    int nfail;
    struct wl_rt *rt;               /* runtime-owned (runtime/driver.h): the OS threads, watched channels */
    double metric[8];               /* the pattern's own figures (wl_metric), by index */
    unsigned metric_set;            /* bit i: metric[i] was reported this repetition */
} wl_run;

/* A figure of the pattern's own beyond ops/s and latency (a cancel-to-exit
 * time, a helper count, drops): declared once in the workload's metrics
 * table, reported per repetition with wl_metric(r, index, value). They go to
 * the table, the CSV's metrics column, JSON counters and compare --metric. */
#define WL_MAX_METRICS 8
typedef struct wl_metric_def {
    const char *name;       /* [a-z0-9_]+, unique within the pattern */
    const char *unit;       /* "ns", "count", "ops/s", "%", ... */
    const char *help;
    int own_column;         /* 1: a CSV column of its own (docs/csv.md), not an entry of metrics */
} wl_metric_def;
static inline void wl_metric(wl_run *r, int i, double v)
{
    r->metric[i] = v;
    r->metric_set |= 1u << i;
}
struct wl_workload;
/* The index of the metric called name in w's table, -1 if it has none. */
int wl_metric_index(const struct wl_workload *w, const char *name);

/* A lock pattern's fairness: the fewest and the most ops one thread did, two
 * metrics its table declares with WL_METRICS_FAIRNESS (at index i, i + 1) and
 * wl_fairness reports. They keep their own CSV columns (fair_min_ops,
 * fair_max_ops) and the table shows their ratio under the pattern's row. */
#define WL_FAIR_MIN "fair_min_ops"
#define WL_FAIR_MAX "fair_max_ops"
#define WL_METRICS_FAIRNESS                                                             \
    { WL_FAIR_MIN, "count", "fewest ops of one thread (CSV column fair_min_ops)", 1 },  \
    { WL_FAIR_MAX, "count", "most ops of one thread (CSV column fair_max_ops)", 1 }
/* From the ops of threads first .. first + n - 1 (after wl_join): reports
 * the fairness metrics at index i, i + 1 (not when no thread did an op) and
 * returns the threads' total, fewest and most ops. */
typedef struct wl_spread { uint64_t sum, min, max; } wl_spread;
wl_spread wl_fairness(wl_run *r, int first, int n, int i);
/* The fairness a run reported (w: its pattern): 1 and *min, *max; 0 if none. */
int wl_fairness_of(const struct wl_workload *w, const double *metric, unsigned set, uint64_t *min, uint64_t *max);

typedef struct wl_workload {
    const char *name, *group, *desc;
    const char *op;                 /* what one op is */
    const char *latency;            /* what the latency measures */
    wl_knobs defaults;
    const wl_param *params;         /* pattern-specific --set keys, NULL-key terminated */
    int (*run)(wl_run *r);          /* 0, or -1 if it could not run (ENOMEM...) */
    /* Optional: NULL if cfg is a configuration this pattern can run, else
     * what is wrong with it (the CLI reports it as bad input, exit 2; stress
     * draws another configuration). */
    const char *(*check)(const wl_cfg *cfg);
    int open_loop;                  /* honours cfg->rate (wl_pace and hist_u) */
    const char *seed_key;           /* the key of seed 000 (`flows_pipeline`), NULL if none */
    /* --variant names, NULL-terminated; [0] is the correct pattern (the
     * default), the others reproduce a seed's pitfall (`seed`) so that the
     * harness can show it (a leak count, the watchdog). NULL: no variants. */
    const char *const *variants;
    const wl_metric_def *metrics;   /* NULL-name terminated; NULL: none */
} wl_workload;

/* A .check for patterns whose --capacity is a semaphore's permits. */
static inline const char *wl_check_permits(const wl_cfg *c)
{
    return c->k.capacity < 1 ? "--capacity (the semaphore's permits) must be >= 1" : NULL;
}

/* After the join: 1 if all n permits of sem are free (taken and given
 * back), 0 if some leaked. */
static inline int wl_sem_all_free(cp_sem *sem, int64_t n)
{
    if (cp_sem_try_acquire(sem, n) != CP_OK) return 0;
    cp_sem_release(sem, n);
    return 1;
}

/* ---- provided by the runtime (runtime/threads.c, runtime/clock.c) ---- */
int  wl_spawn(wl_run *r, const char *name, void *(*fn)(wl_thread *self, void *arg), void *arg);
void wl_start(wl_run *r);           /* stamps t_start, opens the gate */
void wl_wait_duration(wl_run *r);   /* time-based run: sleep until t_start +
                                     * duration, then set stop; else no-op */
void wl_join(wl_run *r);            /* joins every thread; t_end = last thread's end */
/* Joins thread i (a wl_spawn index) early, asleep in the kernel; wl_join
 * skips it. A coordinator that waits for the end of a run this way takes no
 * CPU and no spinner slot (core/internal.h) from it on any backend, where
 * a wait on the backend's own event or select spins and yields on
 * lockfree: beside that waiter the generator's pair took a yield per item
 * (3.15x once the coordinator joined the consumer instead). */
void wl_join_thread(wl_run *r, int i);
void wl_fail(wl_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wl_watch(wl_run *r, const char *name, cp_chan *ch);
void wl_work(int64_t ns);           /* calibrated busy work */
uint64_t wl_now(void);              /* the runtime's clock, ns */
void wl_sleep_ns(uint64_t ns);

/* ---- the shape every run function shares ----
 * Set-up and tear-down only: nothing here sits in a per-op loop. */

/* n threads of fn(self, arg), ranks 0 .. n-1 (self->rank); returns the slot
 * of the first (r->thr[first .. first + n - 1]). */
int  wl_spawn_n(wl_run *r, int n, const char *name, void *(*fn)(wl_thread *self, void *arg), void *arg);
/* wl_start, wl_wait_duration, wl_join: the run from its gate to its end. */
void wl_start_and_join(wl_run *r);

/* Thread i's share of total split over n threads: the first total % n get
 * one more. */
static inline uint64_t wl_share(uint64_t total, int n, int i)
{
    return total / (uint64_t)n + ((uint64_t)i < total % (uint64_t)n);
}

/* Count-based runs: what the pattern counts must be --items; else wl_fail
 * with fmt, which takes got (%llu) then --items (%lld). */
#define wl_check_items(r, got, fmt)                                                       \
    do {                                                                                  \
        if ((r)->cfg->duration <= 0 && (uint64_t)(got) != (uint64_t)(r)->cfg->k.items)     \
            wl_fail((r), fmt, (unsigned long long)(got), (long long)(r)->cfg->k.items);   \
    } while (0)

/* Errors seen by the workload's threads, for wl_fail after wl_join: the
 * first one's description (a string literal) and two figures, and a count.
 * The first to claim `first` (CAS) writes a and b; they are read after the
 * join, which orders them. */
typedef struct wl_errors {
    _Atomic(const char *) first;
    _Atomic uint64_t a, b, n;
} wl_errors;
void wl_note(wl_errors *e, const char *what, uint64_t a, uint64_t b);
/* After wl_join: wl_fail "<first>: <a>, <b> (<n> errors)" if any; returns n. */
uint64_t wl_errors_fail(wl_run *r, wl_errors *e);

/* A group of n threads whose last one to leave does something (closes the
 * channel they feed, fires an event): Go's deferred close after a
 * WaitGroup. A stage: n threads between channel in and out, the last of
 * them closes out. */
typedef struct wl_group { _Atomic int live; } wl_group;
static inline void wl_group_init(wl_group *g, int n) { atomic_init(&g->live, n); }
static inline int wl_group_leave(wl_group *g)      /* 1: the caller was the last */
{
    return atomic_fetch_sub(&g->live, 1) == 1;
}
static inline int wl_group_live(wl_group *g) { return atomic_load(&g->live); }  /* still in it */
typedef struct wl_stage { cp_chan *in, *out; wl_group g; } wl_stage;
static inline void wl_stage_init(wl_stage *st, cp_chan *in, cp_chan *out, int n)
{
    st->in = in;
    st->out = out;
    wl_group_init(&st->g, n);
}
static inline void wl_stage_leave(wl_stage *st)
{
    if (wl_group_leave(&st->g)) cp_chan_close(st->out);
}

/* Takes what ch holds now (try_recv into elem, room for one element) and
 * returns how many: what a run left in a channel, after the join. */
uint64_t wl_drain(cp_chan *ch, void *elem);

/* Raises *x to v if v is larger (a "latest time" several threads stamp). */
static inline void wl_max_store(_Atomic uint64_t *x, uint64_t v)
{
    uint64_t prev = atomic_load_explicit(x, memory_order_relaxed);
    while (prev < v && !atomic_compare_exchange_weak(x, &prev, v)) {}
}

/* The same for a signed figure (a concurrency count). */
static inline void wl_max_store_i(_Atomic int64_t *x, int64_t v)
{
    int64_t prev = atomic_load_explicit(x, memory_order_relaxed);
    while (prev < v && !atomic_compare_exchange_weak(x, &prev, v)) {}
}

/* Time-based runs: sleeps until the end of --duration, or until done fires
 * (every worker stopped: a cancel ended them, the rest would be idle); then
 * as wl_wait_duration. Count-based: returns at once. */
void wl_wait_duration_or(wl_run *r, cp_event *done);

/* A cancellation test: wl_start; when cancel_ms > 0, cancels ctx that many
 * ms after the start; wl_wait_duration; wl_join. Returns when it cancelled
 * (wl_now), 0 if it did not. */
uint64_t wl_start_cancel_join(wl_run *r, cp_ctx *ctx, int64_t cancel_ms);
/* After it: fails if the threads took over a second (WL_BOUND_NS) from the
 * cancel to stop. */
void wl_check_cancel_stop(wl_run *r, uint64_t cancelled_at);
/* The bound on the way of a cancel, a close or a fire to every thread it
 * must reach (or to their exit): 1 s. */
#define WL_BOUND_NS 1000000000ull
/* The pattern parameter of a cancellation test (wl_start_cancel_join):
 * [P_CANCEL_AFTER_MS] = WL_PARAM_CANCEL_AFTER_MS("the workers' ctx"). */
#define WL_PARAM_CANCEL_AFTER_MS(whom) { "cancel_after_ms", 0, "cancel " whom " after T ms; 0: never", 5 }
/* A cancellation test whose workers fire done when the last of them stops
 * (the caller joins later): wl_start; when cancel_ms > 0, waits that long or
 * until done fires, and cancels ctx unless done fired; time-based, then
 * wl_wait_duration_or(done) and, with end_cancels, cancels ctx at the end of
 * --duration unless done fired or ctx is cancelled already (it wakes the
 * sleepers: the run is over); last, waits for done. Returns when it
 * cancelled (wl_now), 0 if it did not. */
uint64_t wl_start_cancel_wait(wl_run *r, cp_ctx *ctx, int64_t cancel_ms, cp_event *done, int end_cancels);

/* Count-based runs of n tasks, each counting its runs in runs[task]: wl_fail
 * "task <i> ran <k> times" for the first that did not run once; returns 1 if
 * every one did, else 0. */
int wl_check_ran_once(wl_run *r, const _Atomic uint8_t *runs, uint64_t n);

/* A set of ids (job ids, item tags below 2^40), for "no id counted twice":
 * a bitmap grown by chunks of 2^20 ids. Single-threaded. */
#define WL_IDSET_CHUNK_BITS 20
typedef struct wl_idset { uint8_t **chunk; size_t nchunks; } wl_idset;
int wl_idset_grow(wl_idset *s, size_t c);      /* 0, or -1: out of memory */
/* 1 if id was in the set already, else 0 (and now it is); -1: out of memory */
static inline int wl_idset_mark(wl_idset *s, uint64_t id)
{
    size_t c = (size_t)(id >> WL_IDSET_CHUNK_BITS);
    if ((c >= s->nchunks || !s->chunk[c]) && wl_idset_grow(s, c)) return -1;
    uint64_t bit = id & ((1u << WL_IDSET_CHUNK_BITS) - 1);
    uint8_t m = (uint8_t)(1u << (bit & 7));
    int was = (s->chunk[c][bit >> 3] & m) != 0;
    s->chunk[c][bit >> 3] |= m;
    return was;
}
void wl_idset_free(wl_idset *s);

/* A pattern's .params bound to its enum by designated initializers
 * ([P_X] = { ... }, then the { NULL } terminator), and checked at compile
 * time to hold one entry per parameter: WL_PARAMS_CHECK(array, P_COUNT). */
#define WL_NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define WL_PARAMS_CHECK(arr, count) \
    _Static_assert(WL_NELEMS(arr) == (size_t)(count) + 1, #arr ": one entry per parameter enum value, then the terminator")

/* Time since t0, for a latency that crosses threads: the TSCs of two vCPUs
 * may differ by more than a hand-off takes, so a difference that comes out
 * negative is clamped to 0 instead of wrapping to 2^64 (an hour, clamped). */
static inline uint64_t wl_since(uint64_t t0)
{
    uint64_t now = wl_now();
    return now > t0 ? now - t0 : 0;
}
static inline uint64_t wl_diff(uint64_t later, uint64_t earlier)
{
    return later > earlier ? later - earlier : 0;
}

static inline void wl_phase(wl_thread *t, const char *p)
{
    atomic_store_explicit(&t->phase, p, memory_order_relaxed);
}
static inline int wl_stopped(wl_run *r)
{
    return atomic_load_explicit(&r->stop, memory_order_relaxed);
}
/* Count-based: n items; time-based: until stopped. Either way, stop also
 * ends the run early when cpbench is interrupted (the harness then discards
 * that repetition). */
static inline int wl_more(wl_run *r, uint64_t done, uint64_t n)
{
    if (wl_stopped(r)) return 0;
    return r->cfg->duration > 0 || done < n;
}

/* Latency sampling (--lat-sample): 1 for one op in every `every`, counting
 * down the caller's *countdown (a local, start 0: the first op is timed);
 * always 0 when every is 0. Inline: it sits in the per-op loops. */
static inline int wl_sample(int64_t every, int64_t *countdown)
{
    if (!every || --*countdown > 0) return 0;
    *countdown = every;
    return 1;
}

/* Open loop (--rate): the intended start of a source's k-th op, on a fixed
 * schedule from the run's start (interval = sources / rate; phase spreads the
 * sources evenly); waits until then and returns it. Latency measured from
 * this time, not from when the op really started, does not hide the stalls
 * that delay the sender (coordinated omission, as wrk2 corrects it).
 * Returns 0 if the run is stopped while waiting (the end of --duration, an
 * interruption): the source ends there instead of sleeping out an interval
 * that may be longer than the watchdog's --timeout. */
static inline uint64_t wl_pace(wl_run *r, uint64_t k, uint64_t interval_ns, uint64_t phase_ns)
{
    uint64_t t = r->t_start + phase_ns + k * interval_ns, now;
    while ((now = wl_now()) < t) {
        if (wl_stopped(r)) return 0;
        if (t - now > 100000) {
            uint64_t nap = t - now - 50000;
            wl_sleep_ns(nap < 10000000 ? nap : 10000000);   /* 10 ms at most: see stop soon */
        } else {
            __asm__ __volatile__("" ::: "memory");
        }
    }
    return t;
}

/* An item's tag: its source's id (a producer's rank) from bit 40 up, its
 * seq (below 2^40) under it; one tag per item of a run. */
#define WL_TAG_SHIFT 40
static inline uint64_t wl_tag(uint64_t src, uint64_t seq) { return src << WL_TAG_SHIFT | seq; }
static inline uint64_t wl_tag_src(uint64_t tag) { return tag >> WL_TAG_SHIFT; }
static inline uint64_t wl_tag_seq(uint64_t tag) { return tag & ((1ull << WL_TAG_SHIFT) - 1); }

/* A cheap, strong per-item hash for checksums (splitmix64's finaliser). */
static inline uint64_t wl_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- registration: one symbol per (workload, family) ---- */
#define WL__CAT2(a, b, c) a##b##c
#define WL__CAT(a, b, c) WL__CAT2(a, b, c)
#define WL_DEFINE(name) const wl_workload WL__CAT(wl_##name, __, CP_WL_FAMILY)

#endif /* CP_WORKLOAD_H */
