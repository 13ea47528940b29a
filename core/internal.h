/*
 * libcp internals shared by core/ and the impl/ families: the backend table, the object
 * header, the blocked-waiter record and wake lists. Not installed.
 *
 * The waiting mechanism (DESIGN.md, "Select and cancellation use one
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

/* ---- test-and-test-and-set spin lock with pause, then yield ----
 * Used for short internal critical sections (wake lists, the ctx tree, the
 * lockfree family's rendezvous queues). It never sleeps in the kernel beyond
 * sched_yield. Acquire on lock, release on unlock: the usual. */
typedef struct cp_spin { _Atomic uint32_t v; } cp_spin;
#define CP_SPIN_INIT { 0 }
static inline void cp_spin_lock(cp_spin *l)
{
    unsigned n = 0;
    for (;;) {
        if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire)) return;
        while (atomic_load_explicit(&l->v, memory_order_relaxed)) {
            if (++n < 128) cp_cpu_relax();
            else sched_yield();
        }
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
    int32_t index;          /* which case fired (select, event waits) */
    int32_t ok;             /* set by the claimer before DONE: op succeeded? */
    const struct cp_backend *b;
    pthread_mutex_t mu;     /* mutex family only: guards the sleep on cv */
    pthread_cond_t cv;
} cp_waiter;

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
enum {
    CP_BF_SPINS = 1u << 0,      /* waits spin/yield and never sleep in the kernel */
    CP_BF_FUTEX_WAITV = 1u << 1,/* select parks with futex_waitv(2) */
};

struct cp_backend {
    const char *name;
    const char *describe;
    unsigned flags;

    /* waiter parking (see the state machine above) */
    void (*w_init)(cp_waiter *w);
    void (*w_fini)(cp_waiter *w);
    bool (*w_claim)(cp_waiter *w);              /* WAITING -> CLAIMED */
    void (*w_finish)(cp_waiter *w);             /* CLAIMED -> DONE, wake */
    bool (*w_cancel)(cp_waiter *w);             /* WAITING -> CANCELED, wake */
    uint32_t (*w_park)(cp_waiter *w, uint64_t deadline); /* -> DONE/CANCELED/TIMEDOUT */

    /* channels */
    cp_chan *(*chan_new)(const cp_backend *b, size_t elem_size, size_t cap);
    void (*chan_free)(cp_chan *ch);
    cp_status (*chan_send)(cp_chan *ch, const void *elem, cp_ctx *ctx);
    cp_status (*chan_recv)(cp_chan *ch, void *elem, cp_ctx *ctx);
    cp_status (*chan_try_send)(cp_chan *ch, const void *elem);
    cp_status (*chan_try_recv)(cp_chan *ch, void *elem);
    cp_status (*chan_close)(cp_chan *ch);
    size_t (*chan_len)(cp_chan *ch);
    size_t (*chan_cap)(cp_chan *ch);

    /* select (all channels, events and the ctx of one backend) */
    int (*select)(cp_case *cases, size_t n, cp_ctx *ctx, cp_status *st);
    int (*try_select)(cp_case *cases, size_t n, cp_status *st);

    /* weighted semaphore */
    cp_sem *(*sem_new)(const cp_backend *b, int64_t permits);
    void (*sem_free)(cp_sem *s);
    cp_status (*sem_acquire)(cp_sem *s, int64_t n, cp_ctx *ctx);
    cp_status (*sem_try_acquire)(cp_sem *s, int64_t n);
    void (*sem_release)(cp_sem *s, int64_t n);

    /* mutex, rwlock, cond */
    cp_mutex *(*mutex_new)(const cp_backend *b);
    void (*mutex_free)(cp_mutex *m);
    void (*mutex_lock)(cp_mutex *m);
    bool (*mutex_trylock)(cp_mutex *m);
    void (*mutex_unlock)(cp_mutex *m);
    cp_rwlock *(*rwlock_new)(const cp_backend *b);
    void (*rwlock_free)(cp_rwlock *l);
    void (*rwlock_rlock)(cp_rwlock *l);
    void (*rwlock_runlock)(cp_rwlock *l);
    void (*rwlock_wlock)(cp_rwlock *l);
    void (*rwlock_wunlock)(cp_rwlock *l);
    cp_cond *(*cond_new)(const cp_backend *b);
    void (*cond_free)(cp_cond *c);
    cp_status (*cond_wait)(cp_cond *c, cp_mutex *m, cp_ctx *ctx);
    void (*cond_signal)(cp_cond *c);
    void (*cond_broadcast)(cp_cond *c);

    /* waitgroup, once, pool */
    cp_wg *(*wg_new)(const cp_backend *b);
    void (*wg_free)(cp_wg *wg);
    void (*wg_add)(cp_wg *wg, int64_t delta);
    void (*wg_done)(cp_wg *wg);
    cp_status (*wg_wait)(cp_wg *wg, cp_ctx *ctx);
    cp_once *(*once_new)(const cp_backend *b);
    void (*once_free)(cp_once *o);
    void (*once_do)(cp_once *o, void (*fn)(void *), void *arg);
    cp_pool *(*pool_new)(const cp_backend *b, size_t obj_size);
    void (*pool_free)(cp_pool *p);
    void *(*pool_get)(cp_pool *p);
    void (*pool_put)(cp_pool *p, void *obj);
};

extern const cp_backend cp_backend_mutex, cp_backend_lockfree, cp_backend_futex;

/* A family's table entries: its waiter ops, then every primitive op, by the
 * naming convention cp_<family>_<op>. */
#define CP_WAITER_OPS(f)                                                      \
    .w_init = cp_##f##_w_init, .w_fini = cp_##f##_w_fini, .w_claim = cp_##f##_w_claim,  \
    .w_finish = cp_##f##_w_finish, .w_cancel = cp_##f##_w_cancel, .w_park = cp_##f##_w_park
#define CP_FAMILY_OPS(f) \
    .chan_new = cp_##f##_chan_new, \
    .chan_free = cp_##f##_chan_free, \
    .chan_send = cp_##f##_chan_send, \
    .chan_recv = cp_##f##_chan_recv, \
    .chan_try_send = cp_##f##_chan_try_send, \
    .chan_try_recv = cp_##f##_chan_try_recv, \
    .chan_close = cp_##f##_chan_close, \
    .chan_len = cp_##f##_chan_len, \
    .chan_cap = cp_##f##_chan_cap, \
    .select = cp_##f##_select, \
    .try_select = cp_##f##_try_select, \
    .sem_new = cp_##f##_sem_new, \
    .sem_free = cp_##f##_sem_free, \
    .sem_acquire = cp_##f##_sem_acquire, \
    .sem_try_acquire = cp_##f##_sem_try_acquire, \
    .sem_release = cp_##f##_sem_release, \
    .mutex_new = cp_##f##_mutex_new, \
    .mutex_free = cp_##f##_mutex_free, \
    .mutex_lock = cp_##f##_mutex_lock, \
    .mutex_trylock = cp_##f##_mutex_trylock, \
    .mutex_unlock = cp_##f##_mutex_unlock, \
    .rwlock_new = cp_##f##_rwlock_new, \
    .rwlock_free = cp_##f##_rwlock_free, \
    .rwlock_rlock = cp_##f##_rwlock_rlock, \
    .rwlock_runlock = cp_##f##_rwlock_runlock, \
    .rwlock_wlock = cp_##f##_rwlock_wlock, \
    .rwlock_wunlock = cp_##f##_rwlock_wunlock, \
    .cond_new = cp_##f##_cond_new, \
    .cond_free = cp_##f##_cond_free, \
    .cond_wait = cp_##f##_cond_wait, \
    .cond_signal = cp_##f##_cond_signal, \
    .cond_broadcast = cp_##f##_cond_broadcast, \
    .wg_new = cp_##f##_wg_new, \
    .wg_free = cp_##f##_wg_free, \
    .wg_add = cp_##f##_wg_add, \
    .wg_done = cp_##f##_wg_done, \
    .wg_wait = cp_##f##_wg_wait, \
    .once_new = cp_##f##_once_new, \
    .once_free = cp_##f##_once_free, \
    .once_do = cp_##f##_once_do, \
    .pool_new = cp_##f##_pool_new, \
    .pool_free = cp_##f##_pool_free, \
    .pool_get = cp_##f##_pool_get, \
    .pool_put = cp_##f##_pool_put


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
 * then returns NULL with errno ENOMEM (API.md: sizes never wrap). */
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
