/*
 * libcp: Go's concurrency primitives in C, with interchangeable backends.
 *
 * This header is the normative public API; each declaration's comment states
 * its semantics. Every object is created for one backend; passing objects of two
 * backends to one call returns CP_EINVAL. A NULL cp_ctx * means "never
 * cancelled, no deadline". Times are CLOCK_MONOTONIC nanoseconds.
 */
#ifndef CP_CP_H
#define CP_CP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cp_status {
    CP_OK = 0,
    CP_CLOSED,      /* channel closed (and drained, for receives) */
    CP_CANCELED,    /* the ctx was cancelled */
    CP_DEADLINE,    /* the ctx's deadline passed */
    CP_WOULDBLOCK,  /* a try_ call that would have had to wait */
    CP_EINVAL,
    CP_ENOMEM,
} cp_status;
const char *cp_status_str(cp_status s);

uint64_t cp_now_ns(void);

typedef struct cp_ctx cp_ctx;

/* backends, one per family, by name ("futex"); cp_backend_at(0 .. count - 1)
 * lists them all (cpbench --list shows them) */
typedef struct cp_backend cp_backend;
const cp_backend *cp_backend_find(const char *name);   /* NULL if unknown */
size_t            cp_backend_count(void);
const cp_backend *cp_backend_at(size_t i);
const char       *cp_backend_name(const cp_backend *b);
/* Addition: a one-line description of how the backend waits. */
const char       *cp_backend_describe(const cp_backend *b);

/* event: one-shot broadcast, like close(done) */
typedef struct cp_event cp_event;
cp_event *cp_event_new(const cp_backend *b);
void      cp_event_free(cp_event *e);
void      cp_event_fire(cp_event *e);                   /* idempotent */
bool      cp_event_fired(cp_event *e);
cp_status cp_event_wait(cp_event *e, cp_ctx *ctx);      /* CP_OK once fired */

/* context: cancellation tree with deadlines, like context.Context.
 * cp_ctx_done() fires on cancel, and at the deadline: a ctx with a deadline
 * fires its done event when any call observes the deadline passed, and a
 * thread blocked in cp_event_wait() on that done event wakes at the deadline
 * by itself (a timed wait), so no timer thread is needed.
 * A child created from a parent whose cp_ctx_err() is already non-OK is born
 * ended: its first cp_ctx_err() is the parent's reason, its done event has
 * fired, and every blocking call on it returns that reason at once.
 * cp_ctx_with_timeout(): now + timeout saturates, so a timeout too large to
 * add means "never" (deadline UINT64_MAX), not a sum that wraps and expires. */
cp_ctx   *cp_ctx_with_cancel(const cp_backend *b, cp_ctx *parent);
cp_ctx   *cp_ctx_with_deadline(const cp_backend *b, cp_ctx *parent, uint64_t deadline_ns);
cp_ctx   *cp_ctx_with_timeout(const cp_backend *b, cp_ctx *parent, uint64_t timeout_ns);
void      cp_ctx_cancel(cp_ctx *c);                     /* cancels all descendants */
cp_status cp_ctx_err(cp_ctx *c);                        /* CP_OK, CP_CANCELED or CP_DEADLINE */
cp_event *cp_ctx_done(cp_ctx *c);                       /* fired on cancel (and deadline, see above) */
void      cp_ctx_free(cp_ctx *c);                       /* cancels, detaches from parent */
/* Addition: the effective deadline (the earliest of its own and its
 * ancestors'), 0 if none. */
uint64_t  cp_ctx_deadline(cp_ctx *c);

/* channel, like chan T; capacity 0 is a rendezvous (unbuffered) channel.
 * cp_chan_new: NULL with errno EINVAL for a NULL backend, ENOMEM when out of
 * memory or when the sizes do not fit: elem_size x capacity (plus the
 * backend's per-slot overhead) never wraps, and an elem_size above
 * PTRDIFF_MAX (no such object exists) is refused for capacity 0 too. */
typedef struct cp_chan cp_chan;
cp_chan  *cp_chan_new(const cp_backend *b, size_t elem_size, size_t capacity);
void      cp_chan_free(cp_chan *ch);
cp_status cp_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx);
cp_status cp_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx);
cp_status cp_chan_try_send(cp_chan *ch, const void *elem);
cp_status cp_chan_try_recv(cp_chan *ch, void *elem);
cp_status cp_chan_close(cp_chan *ch);                   /* CP_CLOSED if already closed */
size_t    cp_chan_len(cp_chan *ch);
size_t    cp_chan_cap(cp_chan *ch);

/* select over channel operations and events */
enum { CP_SEND = 1, CP_RECV = 2, CP_WAIT = 3 };        /* CP_WAIT: wait for ev to fire */
typedef struct cp_case {
    int       op;
    cp_chan  *ch;      /* CP_SEND / CP_RECV */
    void     *elem;    /* what to send / where to receive */
    cp_event *ev;      /* CP_WAIT */
} cp_case;
/* Blocks until one case can proceed, performs it, returns its index and sets
 * *st to CP_OK (or CP_CLOSED for a receive from / send to a closed channel).
 * When the ctx ends first: -1 with *st = CP_CANCELED or CP_DEADLINE. When
 * several cases are ready, one is chosen uniformly at random. A case whose
 * ch / ev is NULL is never ready (Go's nil channel). cp_try_select returns
 * -1 with *st = CP_WOULDBLOCK when none is ready.
 * Invalid arguments: -1 with *st = CP_EINVAL, before any case is tried, on
 * both calls: a case whose op is not CP_SEND, CP_RECV or CP_WAIT (0, 42,
 * ...: never taken for "not ready"), objects of two backends, and, for
 * cp_select, nothing to wait for (no non-NULL case and no ctx). */
int cp_select(cp_case *cases, size_t n, cp_ctx *ctx, cp_status *st);
int cp_try_select(cp_case *cases, size_t n, cp_status *st);

/* weighted semaphore, like x/sync/semaphore.Weighted (FIFO waiters).
 * cp_sem_new: NULL with errno EINVAL for permits < 0 or > INT64_MAX / 4.
 * cp_sem_acquire(s, n, ctx): CP_EINVAL at once for n < 0 or n > permits;
 * otherwise a ctx that has already ended wins (its reason), even with
 * permits free, as in Weighted. n == 0 returns CP_OK at once (unless the
 * ctx has ended), as Weighted.Acquire(ctx, 0): it takes nothing, so it
 * never waits, not even behind queued waiters (where Weighted would queue).
 * cp_sem_try_acquire(s, 0) is CP_OK likewise; release(s, 0) does nothing. */
typedef struct cp_sem cp_sem;
cp_sem   *cp_sem_new(const cp_backend *b, int64_t permits);
void      cp_sem_free(cp_sem *s);
cp_status cp_sem_acquire(cp_sem *s, int64_t n, cp_ctx *ctx);
cp_status cp_sem_try_acquire(cp_sem *s, int64_t n);
void      cp_sem_release(cp_sem *s, int64_t n);

/* mutex, rwlock, cond: like sync.Mutex, sync.RWMutex, sync.Cond */
typedef struct cp_mutex cp_mutex;
cp_mutex *cp_mutex_new(const cp_backend *b);
void      cp_mutex_free(cp_mutex *m);
void      cp_mutex_lock(cp_mutex *m);
bool      cp_mutex_trylock(cp_mutex *m);
void      cp_mutex_unlock(cp_mutex *m);

typedef struct cp_rwlock cp_rwlock;
cp_rwlock *cp_rwlock_new(const cp_backend *b);
void       cp_rwlock_free(cp_rwlock *l);
void       cp_rwlock_rlock(cp_rwlock *l);
void       cp_rwlock_runlock(cp_rwlock *l);
void       cp_rwlock_wlock(cp_rwlock *l);
void       cp_rwlock_wunlock(cp_rwlock *l);

typedef struct cp_cond cp_cond;
cp_cond  *cp_cond_new(const cp_backend *b);
void      cp_cond_free(cp_cond *c);
cp_status cp_cond_wait(cp_cond *c, cp_mutex *m, cp_ctx *ctx);
void      cp_cond_signal(cp_cond *c);
void      cp_cond_broadcast(cp_cond *c);

/* waitgroup and once: like sync.WaitGroup, sync.Once */
typedef struct cp_wg cp_wg;
cp_wg    *cp_wg_new(const cp_backend *b);
void      cp_wg_free(cp_wg *wg);
void      cp_wg_add(cp_wg *wg, int64_t delta);
void      cp_wg_done(cp_wg *wg);
cp_status cp_wg_wait(cp_wg *wg, cp_ctx *ctx);

typedef struct cp_once cp_once;
cp_once  *cp_once_new(const cp_backend *b);
void      cp_once_free(cp_once *o);
void      cp_once_do(cp_once *o, void (*fn)(void *), void *arg);

/* object pool, like sync.Pool */
typedef struct cp_pool cp_pool;
cp_pool  *cp_pool_new(const cp_backend *b, size_t obj_size);
void      cp_pool_free(cp_pool *p);
void     *cp_pool_get(cp_pool *p);
void      cp_pool_put(cp_pool *p, void *obj);

/* timers and tickers, like time.Timer / time.Ticker with Go 1.23's semantics:
 * the channel (capacity 1, owned by the timer, never closed) receives the
 * fire time (cp_now_ns) as a uint64_t; it is selectable as a CP_RECV case.
 * After cp_timer_stop or cp_timer_reset returns, no receive gets a tick from
 * before the call; a slow ticker receiver holds at most one pending tick and
 * later ones are dropped; ticks are never early. stop and reset return true
 * if they prevented a pending fire (armed, or delivered and not received).
 * One process-wide service thread produces the ticks (core/timer.c). */
typedef struct cp_timer cp_timer;
cp_timer *cp_timer_new(const cp_backend *b, uint64_t after_ns);    /* fires once, after_ns from now */
cp_timer *cp_ticker_new(const cp_backend *b, uint64_t period_ns);  /* every period_ns; 0: NULL, EINVAL */
cp_chan  *cp_timer_chan(cp_timer *t);
bool      cp_timer_stop(cp_timer *t);
bool      cp_timer_reset(cp_timer *t, uint64_t ns);   /* re-arm: after ns (timer) / new period (ticker) */
void      cp_timer_free(cp_timer *t);
/* CP_OK after ns, or the ctx's reason as soon as it ends (its deadline
 * included); waits in the ctx's family, NULL: clock_nanosleep. */
cp_status cp_sleep(uint64_t ns, cp_ctx *ctx);

/* cancellable fd wait, the building block of context-aware I/O (as net.Conn
 * deadlines): blocks until fd is ready for events (CP_FD_READ, CP_FD_WRITE or
 * both; ready includes an error or hang-up, which the next read/write
 * reports), or the ctx is cancelled (CP_CANCELED) or its deadline passes
 * (CP_DEADLINE). A cancel wakes it at once. CP_EINVAL for a negative or
 * closed fd or events outside the two bits. Every family waits the same way,
 * in poll(2): readiness of an fd lives in the kernel. */
enum { CP_FD_READ = 1, CP_FD_WRITE = 2 };
cp_status cp_fd_wait(int fd, int events, cp_ctx *ctx);

#ifdef __cplusplus
}
#endif

#include <cp/family.h>

#endif /* CP_CP_H */
