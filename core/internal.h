/*
 * libcp internals shared by core/ and the impl/ families: the backend table, the object
 * header, the blocked-waiter record and wake lists. Not installed.
 *
 * The waiting mechanism ("select and cancellation use one
 * mechanism"): a thread that must block owns a cp_waiter (Go's sudog/g pair)
 * on its stack. It registers the waiter with every object it waits on (a
 * channel queue, an event's or ctx's wake list). Whichever fires first
 * claims the waiter with one CAS on waiter.state (WAITING -> CLAIMED or
 * WAITING -> CANCELED); every other registration then loses its CAS and is
 * skipped. The thread unregisters everywhere before it returns, so a waiter
 * never outlives its stack frame while reachable.
 *
 * How the thread parks is the backend's business (pthread condvar, spin/yield,
 * futex), behind the w_* operations of cp_backend.
 */
#ifndef CP_CORE_INTERNAL_H
#define CP_CORE_INTERNAL_H

#include <cp/cp.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- failures that cannot happen: die loudly with file and line ---- */
#define cp_die(...)                                                         \
    do {                                                                    \
        fprintf(stderr, "libcp: fatal at %s:%d: ", __FILE__, __LINE__);     \
        fprintf(stderr, __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                \
        abort();                                                            \
    } while (0)
#define cp_check(expr)                                                      \
    do {                                                                    \
        if (__builtin_expect(!(expr), 0)) cp_die("check failed: %s", #expr); \
    } while (0)

#define CP_CACHELINE 64
#define CP_ALIGNED __attribute__((aligned(CP_CACHELINE)))
#define cp_likely(x) __builtin_expect(!!(x), 1)
#define cp_unlikely(x) __builtin_expect(!!(x), 0)

#include "hooks.h"     /* cp_cpu_relax; cp__backend_find_broken (the negative controls) */

/* ---- how many threads may spin at once ----
 * Spinning pays only while the thread we wait for has a core to run on. As
 * Go's scheduler limits spinning Ms, a waiter spins only if fewer than
 * (online CPUs - 1) other waiters spin; otherwise it yields (lockfree) or
 * parks (futex) at once. The counter is touched only on wait paths. */
extern _Atomic int cp__spinners;
/* The first CP_FREE_SPINS pauses of a wait (about 0.4 us here: a pause is
 * 26 ns on this VM's EPYC) spin without a slot. The counter is one cache
 * line that every waiter changes twice, so in a hand-off between two
 * running threads it crossed between their cores on every wait: the futex
 * rendezvous measured 1.26x without it (an experiment without any slot),
 * and most hand-off waits end within these first pauses. */
#ifndef CP_FREE_SPINS
#define CP_FREE_SPINS 16
#endif
extern int cp__spin_limit;          /* online CPUs - 1, at least 1 */
static inline bool cp_spin_begin(void)
{
    if (atomic_fetch_add_explicit(&cp__spinners, 1, memory_order_relaxed) < cp__spin_limit) return true;
    atomic_fetch_sub_explicit(&cp__spinners, 1, memory_order_relaxed);
    return false;
}
static inline void cp_spin_end(void)
{
    atomic_fetch_sub_explicit(&cp__spinners, 1, memory_order_relaxed);
}

/* Whether a wait skips its spin: *misses counts this thread's spins in a
 * row (of one kind of wait) that ran out without the wait ending, and the
 * caller zeroes it when a spin succeeds and increments it when one runs
 * out. After CP_SPIN_TRUST misses the thread spins only on every
 * CP_SPIN_PROBE-th wait (a probe: one that succeeds restores spinning), a
 * skipped wait counting towards the probe. So a waiter whose partner is
 * running (a hand-off) spins, and one that waits for a thread without a
 * core (more runnable threads than CPUs) soon stops burning the CPU that
 * thread needs. (Counting only the waits that also had to sleep measured
 * 0.61x on the futex cond_signal pattern.) */
#define CP_SPIN_TRUST 4
#define CP_SPIN_PROBE 8
static inline bool cp_spin_skip(unsigned *misses)
{
    if (*misses < CP_SPIN_TRUST || *misses % CP_SPIN_PROBE == 0) return false;
    ++*misses;
    return true;
}

/* ---- test-and-test-and-set spin lock with pause, then yield ----
 * Used for short internal critical sections (wake lists, the ctx tree, the
 * lockfree family's rendezvous queues). It never sleeps in the kernel beyond
 * sched_yield. Acquire on lock, release on unlock: the usual. */
typedef struct cp_spin { _Atomic uint32_t v; } cp_spin;
#define CP_SPIN_INIT { 0 }
/* One step of a wait for another thread's short critical section (a lock
 * holder, a slot's claimer): a pause for the first 127 steps of *n, then a
 * yield, since that thread may have lost its CPU in the middle. */
static inline void cp_wait_step(unsigned *n)
{
    if (++*n < 128) cp_cpu_relax();
    else sched_yield();
}
static inline void cp_spin_lock(cp_spin *l)
{
    unsigned n = 0;
    for (;;) {
        if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire)) return;
        while (atomic_load_explicit(&l->v, memory_order_relaxed)) cp_wait_step(&n);
    }
}
static inline void cp_spin_unlock(cp_spin *l)
{
    atomic_store_explicit(&l->v, 0, memory_order_release);
}

/* ---- the blocked waiter ---- */
enum {
    CP_W_WAITING = 0,   /* registered, nobody has claimed it */
    CP_W_CLAIMED = 1,   /* a partner won the CAS and is completing the op */
    CP_W_DONE = 2,      /* the partner finished: result and data are in place */
    CP_W_CANCELED = 3,  /* woken by its ctx (or an event it waited for) */
    CP_W_TIMEDOUT = 4,  /* its own deadline passed first */
    CP_W_STATE = 0xff,  /* mask of the state; the bits above belong to the backend */
};

typedef struct cp_waiter {
    _Atomic uint32_t state;
    int32_t ok;             /* set by the claimer before DONE: op succeeded?
                             * (beside state: gochan.h's gc_wait keeps both in
                             * its sudog's cache line) */
    int32_t index;          /* which case fired (select, event waits) */
    bool crowd;             /* a semaphore's waiter (semq.h sets it after
                             * FAM_W_INIT): see cp_w_spin */
    bool buffered;          /* at a channel buffer's full or empty edge
                             * (gochan.h sets it): see cp_yield_due */
    bool spun;              /* it has spun already (in gochan.h's hand-off
                             * slot): cp_w_spin goes straight to its yields */
    const struct cp_backend *b;
    pthread_mutex_t mu;     /* mutex family only: guards the sleep on cv */
    pthread_cond_t cv;
} cp_waiter;

/* WAITING (with whatever bits of `keep` the word has) -> to, keeping those
 * bits: the claim and cancel CAS of a waiter whose word also carries a
 * backend's "asleep" bit. Returns the old word, or ~0u if it was not
 * WAITING. */
static inline uint32_t cp_w_cas_from_waiting(cp_waiter *w, uint32_t to, uint32_t keep)
{
    uint32_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    for (;;) {
        if ((s & CP_W_STATE) != CP_W_WAITING) return ~0u;
        if (atomic_compare_exchange_weak_explicit(&w->state, &s, to | (s & keep),
                                                  memory_order_acq_rel, memory_order_relaxed))
            return s;
    }
}

/* The wait of a parking waiter before it sleeps (futex and mutex families)
 * or yields on (lockfree):
 * up to `spins` pauses, all but the first CP_FREE_SPINS of them while
 * cp_spin_begin grants a slot (a partner that has a core finishes soon),
 * then sched_yields (a partner that is runnable but has no core gets
 * ours): `yields` of them and, for any but a crowd or buffered waiter, at
 * least CP_YIELD_NS of them (cp_yield_due), stopping at DONE or later or
 * at the deadline. Most waits end by a hand-off (a channel, select,
 * cond, wait group, once or event waiter): the partner is a thread that is
 * runnable and ends the wait once it has a core, so any waiter's yield can
 * be that core, and every such waiter yields. A semaphore's waiters
 * (w->crowd) wait for holders that are running their work, and a crowd of
 * them yielding to each other takes those holders' CPU: at most as many of
 * them as CPUs yield at a time. A thread whose recent spins all ran out
 * skips most spins, so does a waiter that has spun already (w->spun), and
 * a waiter that finds no slot waits a moment for one (core/backend.c).
 * Returns the
 * state it saw last (CP_W_STATE bits); below CP_W_DONE, the caller sleeps.
 * Reads w's flags (crowd, buffered, spun) first, then nothing but w->state
 * (acquire loads), so a waiter that it returns DONE for may free w at once. */
uint32_t cp_w_spin(cp_waiter *w, uint64_t deadline, int spins, int yields);

/* A hand-off waiter's yield phase lasts `yields` yields and at least
 * CP_YIELD_NS: a count alone is a time that depends on the machine (a
 * sched_yield with nothing else runnable took 0.18 us on the Xeon VM of
 * 2026-12-02, so 16 of them were 3 us), and a futex or condvar sleeper's
 * wake-up across vCPUs takes 12-30 us there. A waiter that sleeps sooner
 * than its partner could wake puts the pair into a state that sustains
 * itself: each waits for the other's wake-up, gives up and sleeps, and
 * every item costs a wake-up (the futex rendezvous: 0.3M items/s; with the
 * floor 2.0M). A waiter at a channel buffer's edge (w->buffered) has no
 * floor: its partner has the buffer to work on meanwhile, and a sleep lets
 * it run through a batch (with the floor, the mutex chan 1P1C cap 1024
 * measured 0.73x: the pair ran in lock-step, one wake per item).
 * cp_yield_due(i, yields, t0) says whether the i-th yield of a phase that
 * began at t0 is still due. */
#ifndef CP_YIELD_NS
#define CP_YIELD_NS 20000
#endif
static inline bool cp_yield_due(int i, int yields, uint64_t t0)
{
    return i < yields || cp_now_ns() - t0 < CP_YIELD_NS;
}

/* Inside impl/<family>/, after its adapter.h has defined FAM_NAME: the
 * family's own symbol cp_<family>_x and its backend table. The shared
 * templates of impl/ name the entry points they define this way. */
#define CP__CAT3_(a, b, c) a##b##c
#define CP__CAT3(a, b, c) CP__CAT3_(a, b, c)
#define FAM_FN(x) CP__CAT3(cp_, FAM_NAME, _##x)
#define FAM_BACKEND CP__CAT3(cp_backend_, FAM_NAME, )

/* ---- wake lists: what an event (and so a ctx) calls when it fires ----
 * A node is a callback plus its list; fire() runs every callback once, under
 * the list's lock, so that after cp_wlist_del() returns the callback is not
 * running and the node (on some thread's stack) can go away. Callbacks must
 * be short and must not take a wake-list lock that a waiter holds while it
 * takes this one (the only nesting is parent ctx -> child ctx, downwards). */
typedef struct cp_wnode {
    void (*fn)(struct cp_wnode *n);
    void *arg;
    struct cp_wnode *prev, *next;
    struct cp_wlist *list;  /* NULL once removed or fired */
} cp_wnode;

typedef struct cp_wlist {
    cp_spin lock;
    int fired;
    cp_wnode head;          /* circular, sentinel */
} cp_wlist;

void cp_wlist_init(cp_wlist *l);
bool cp_wlist_add(cp_wlist *l, cp_wnode *n);   /* false: already fired, not added */
/* As cp_wlist_add, but also refused (false) while *gate != 0, read under the
 * list's lock; *seen gets the gate's value. A ctx's child registers this way
 * with gate = the parent's err, so that "err set, done not yet fired" cannot
 * let it in (Go's propagateCancel checks p.err under p.mu). */
bool cp_wlist_add_unless(cp_wlist *l, cp_wnode *n, _Atomic uint32_t *gate, uint32_t *seen);
void cp_wlist_del(cp_wnode *n);                /* no-op if not on a list */
void cp_wlist_fire(cp_wlist *l);

/* ---- objects: every object starts with its backend ---- */
typedef struct cp_obj { const struct cp_backend *b; } cp_obj;
#define CP_OBJ_B(p) (((const cp_obj *)(p))->b)

/* ---- backend table ---- */
struct cp_backend {
    const char *name;
    const char *describe;

    /* waiter parking (see the state machine above) */
    void (*w_init)(cp_waiter *w);
    void (*w_fini)(cp_waiter *w);
    bool (*w_claim)(cp_waiter *w);              /* WAITING -> CLAIMED */
    void (*w_finish)(cp_waiter *w);             /* CLAIMED -> DONE, wake */
    bool (*w_cancel)(cp_waiter *w);             /* WAITING -> CANCELED, wake */
    uint32_t (*w_park)(cp_waiter *w, uint64_t deadline); /* -> DONE/CANCELED/TIMEDOUT */

    /* every operation of cp/ops.h, by its name: b->ops.chan_send */
    struct cp_backend_ops {
#define CP__OP_MEMBER(_, kind, ret, name, params, args) ret (*name) params;
        CP_OPS(CP__OP_MEMBER, _)
#undef CP__OP_MEMBER
    } ops;
};

/* one table per family of cp/families.h (impl/<family>/backend.c) */
#define CP__BACKEND_EXTERN(f) extern const cp_backend cp_backend_##f;
CP_FAMILY_LIST(CP__BACKEND_EXTERN)
#undef CP__BACKEND_EXTERN

/* The waiter ops, listed once: X(f, ret, op, params) for each. A family
 * declares its cp_<family>_w_* symbols with CP_WAITER_DECLARE(f) (in its
 * impl/<family>/adapter.h) and fills its table with CP_WAITER_OPS(f). */
#define CP_WAITER_OP_LIST(X, f)                                               \
    X(f, void, w_init, (cp_waiter *w))                                        \
    X(f, void, w_fini, (cp_waiter *w))                                        \
    X(f, bool, w_claim, (cp_waiter *w))                                       \
    X(f, void, w_finish, (cp_waiter *w))                                      \
    X(f, bool, w_cancel, (cp_waiter *w))                                      \
    X(f, uint32_t, w_park, (cp_waiter *w, uint64_t deadline))
#define CP__WAITER_DECL(f, ret, op, params) ret cp_##f##_##op params;
#define CP__WAITER_ENTRY(f, ret, op, params) .op = cp_##f##_##op,
#define CP_WAITER_DECLARE(f) CP_WAITER_OP_LIST(CP__WAITER_DECL, f)
/* A family's table entries: its waiter ops (this expands with a trailing
 * comma), then every primitive op, by the naming convention cp_<family>_<op>. */
#define CP_WAITER_OPS(f) CP_WAITER_OP_LIST(CP__WAITER_ENTRY, f)
#define CP__OP_ENTRY(f, kind, ret, name, params, args) .name = cp_##f##_##name,
#define CP_FAMILY_OPS(f) .ops = { CP_OPS(CP__OP_ENTRY, f) }

/* ---- event and ctx internals that backends use ---- */
struct cp_event {
    const cp_backend *b;
    _Atomic uint32_t fired;
    cp_ctx *owner;          /* the ctx whose done event this is, or NULL */
    cp_wlist wl;
};

struct cp_ctx {
    const cp_backend *b;
    struct cp_ctx *parent;
    uint64_t deadline;      /* effective: min(own, parent's), 0 = none */
    _Atomic uint32_t err;   /* 0 while live, then CP_CANCELED or CP_DEADLINE; first wins */
    cp_event done;
    cp_wnode in_parent;     /* our node on the parent's done list */
};

/* Fast check used inside wait loops: has this ctx ended? Reads the clock only
 * when the ctx has a deadline. */
static inline cp_status cp__ctx_err_fast(cp_ctx *c)
{
    if (!c) return CP_OK;
    uint32_t e = atomic_load_explicit(&c->err, memory_order_acquire);
    if (e) return (cp_status)e;
    if (c->deadline && cp_now_ns() >= c->deadline) return cp_ctx_err(c);
    return CP_OK;
}

/* Register w to be cancelled when ctx ends. Returns the ctx's error (and does
 * not register) if it has already ended. n lives on the caller's stack. */
cp_status cp__ctx_watch(cp_ctx *ctx, cp_waiter *w, cp_wnode *n);
/* The status for a waiter that ended CANCELED or TIMEDOUT on ctx. */
cp_status cp__ctx_reason(cp_ctx *ctx);

/* Deadline -> struct timespec (CLOCK_MONOTONIC). */
#include <time.h>
static inline struct timespec cp__ts(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    return ts;
}

/* allocation helpers: cache-line aligned, zeroed. cp__zalloc refuses (NULL,
 * errno ENOMEM) a size above CP_OBJ_MAX, so its round-up cannot wrap. */
void *cp__zalloc(size_t size);

/* ---- object sizes that cannot wrap ----
 * No C object is larger than PTRDIFF_MAX (malloc refuses more); less a cache
 * line, so that cp__zalloc's round-up stays below it. cp__obj_size computes
 * hdr + n * each, or says false when that, or one `each` alone (an element
 * that cannot exist, even where n is 0), is above CP_OBJ_MAX: the constructor
 * then returns NULL with errno ENOMEM (cp.h: sizes never wrap). */
#include <stddef.h>
#define CP_OBJ_MAX ((size_t)PTRDIFF_MAX - CP_CACHELINE)
static inline bool cp__obj_size(size_t hdr, size_t n, size_t each, size_t *bytes)
{
    size_t m;
    if (each > CP_OBJ_MAX || __builtin_mul_overflow(n, each, &m) ||
        __builtin_add_overflow(m, hdr, &m) || m > CP_OBJ_MAX)
        return false;
    *bytes = m;
    return true;
}

#endif /* CP_CORE_INTERNAL_H */
