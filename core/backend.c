/*
 * The backend registry and the generic entry points of cp.h: each call goes
 * through the object's backend table (one indirect call). Code that wants
 * direct calls compiles with -DCP_FAMILY=<name> (see cp/family.h).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic int cp__spinners;
int cp__spin_limit = 1;

__attribute__((constructor)) static void spin_limit_init(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cp__spin_limit = n > 2 ? (int)n - 1 : 1;
    const char *env = getenv("CP_SPIN_LIMIT");   /* for experiments; see docs */
    if (env && atoi(env) > 0) cp__spin_limit = atoi(env);
}

static const cp_backend *const backends[] = {
    &cp_backend_mutex,
    &cp_backend_lockfree,
    &cp_backend_futex,
};

size_t cp_backend_count(void) { return sizeof backends / sizeof backends[0]; }

const cp_backend *cp_backend_at(size_t i)
{
    return i < cp_backend_count() ? backends[i] : NULL;
}

const cp_backend *cp_backend_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < cp_backend_count(); i++)
        if (!strcmp(backends[i]->name, name)) return backends[i];
    return NULL;
}

#ifdef CP_CHAOS
extern const cp_backend cp_backend_broken_publish, cp_backend_broken_lostwake;
#endif

const cp_backend *cp__backend_find_broken(const char *name)
{
#ifdef CP_CHAOS
    static const cp_backend *const broken[] = { &cp_backend_broken_publish, &cp_backend_broken_lostwake };
    for (size_t i = 0; name && i < sizeof broken / sizeof broken[0]; i++)
        if (!strcmp(broken[i]->name, name)) return broken[i];
#else
    (void)name;
#endif
    return NULL;
}

const char *cp_backend_name(const cp_backend *b) { return b ? b->name : "(null)"; }
const char *cp_backend_describe(const cp_backend *b) { return b ? b->describe : ""; }

const char *cp_status_str(cp_status s)
{
    switch (s) {
    case CP_OK: return "ok";
    case CP_CLOSED: return "closed";
    case CP_CANCELED: return "canceled";
    case CP_DEADLINE: return "deadline exceeded";
    case CP_WOULDBLOCK: return "would block";
    case CP_EINVAL: return "invalid argument";
    case CP_ENOMEM: return "out of memory";
    }
    return "unknown status";
}

uint64_t cp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *cp__zalloc(size_t size)
{
    if (size > CP_OBJ_MAX) {    /* the round-up below would wrap */
        errno = ENOMEM;
        return NULL;
    }
    size = (size + CP_CACHELINE - 1) & ~(size_t)(CP_CACHELINE - 1);
    void *p = aligned_alloc(CP_CACHELINE, size);
    if (p) memset(p, 0, size);
    else errno = ENOMEM;
    return p;
}

/* ---- channels through the table ---- */
cp_chan *cp_chan_new(const cp_backend *b, size_t elem_size, size_t capacity)
{
    if (!b) { errno = EINVAL; return NULL; }
    return b->chan_new(b, elem_size, capacity);
}
void cp_chan_free(cp_chan *ch) { if (ch) CP_OBJ_B(ch)->chan_free(ch); }
cp_status cp_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    return CP_OBJ_B(ch)->chan_send(ch, elem, ctx);
}
cp_status cp_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    return CP_OBJ_B(ch)->chan_recv(ch, elem, ctx);
}
cp_status cp_chan_try_send(cp_chan *ch, const void *elem)
{
    return CP_OBJ_B(ch)->chan_try_send(ch, elem);
}
cp_status cp_chan_try_recv(cp_chan *ch, void *elem)
{
    return CP_OBJ_B(ch)->chan_try_recv(ch, elem);
}
cp_status cp_chan_close(cp_chan *ch) { return CP_OBJ_B(ch)->chan_close(ch); }
size_t cp_chan_len(cp_chan *ch) { return CP_OBJ_B(ch)->chan_len(ch); }
size_t cp_chan_cap(cp_chan *ch) { return CP_OBJ_B(ch)->chan_cap(ch); }

/* ---- select: the backend is that of the first case's object (or the ctx).
 * Every case is checked first: an unknown op (0, 42, ...) is CP_EINVAL
 * wherever it sits and whatever its object, never "not ready" (the family's
 * gc_sel_init says the same; here it must be said before a select with no
 * object to take a backend from falls back to "nothing can proceed"). */
static cp_status select_backend(cp_case *cases, size_t n, cp_ctx *ctx, const cp_backend **b)
{
    *b = NULL;
    if (n && !cases) return CP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int op = cases[i].op;
        if (op != CP_SEND && op != CP_RECV && op != CP_WAIT) return CP_EINVAL;
        if (*b) continue;
        if (op != CP_WAIT && cases[i].ch) *b = CP_OBJ_B(cases[i].ch);
        else if (op == CP_WAIT && cases[i].ev) *b = cases[i].ev->b;
    }
    if (!*b && ctx) *b = ctx->b;
    return CP_OK;
}
int cp_select(cp_case *cases, size_t n, cp_ctx *ctx, cp_status *st)
{
    const cp_backend *b;
    if (select_backend(cases, n, ctx, &b) || !b) { *st = CP_EINVAL; return -1; }  /* !b: would block forever */
    return b->select(cases, n, ctx, st);
}
int cp_try_select(cp_case *cases, size_t n, cp_status *st)
{
    const cp_backend *b;
    if (select_backend(cases, n, NULL, &b)) { *st = CP_EINVAL; return -1; }
    if (!b) { *st = CP_WOULDBLOCK; return -1; }   /* only nil cases: nothing can ever proceed */
    return b->try_select(cases, n, st);
}

/* ---- the other primitives through the table ---- */
#define NEW(obj, ...) if (!b) { errno = EINVAL; return NULL; } return b->obj##_new(b, ##__VA_ARGS__)
cp_sem *cp_sem_new(const cp_backend *b, int64_t permits) { NEW(sem, permits); }
void cp_sem_free(cp_sem *s) { if (s) CP_OBJ_B(s)->sem_free(s); }
cp_status cp_sem_acquire(cp_sem *s, int64_t n, cp_ctx *ctx) { return CP_OBJ_B(s)->sem_acquire(s, n, ctx); }
cp_status cp_sem_try_acquire(cp_sem *s, int64_t n) { return CP_OBJ_B(s)->sem_try_acquire(s, n); }
void cp_sem_release(cp_sem *s, int64_t n) { CP_OBJ_B(s)->sem_release(s, n); }

cp_mutex *cp_mutex_new(const cp_backend *b) { NEW(mutex); }
void cp_mutex_free(cp_mutex *m) { if (m) CP_OBJ_B(m)->mutex_free(m); }
void cp_mutex_lock(cp_mutex *m) { CP_OBJ_B(m)->mutex_lock(m); }
bool cp_mutex_trylock(cp_mutex *m) { return CP_OBJ_B(m)->mutex_trylock(m); }
void cp_mutex_unlock(cp_mutex *m) { CP_OBJ_B(m)->mutex_unlock(m); }

cp_rwlock *cp_rwlock_new(const cp_backend *b) { NEW(rwlock); }
void cp_rwlock_free(cp_rwlock *l) { if (l) CP_OBJ_B(l)->rwlock_free(l); }
void cp_rwlock_rlock(cp_rwlock *l) { CP_OBJ_B(l)->rwlock_rlock(l); }
void cp_rwlock_runlock(cp_rwlock *l) { CP_OBJ_B(l)->rwlock_runlock(l); }
void cp_rwlock_wlock(cp_rwlock *l) { CP_OBJ_B(l)->rwlock_wlock(l); }
void cp_rwlock_wunlock(cp_rwlock *l) { CP_OBJ_B(l)->rwlock_wunlock(l); }

cp_cond *cp_cond_new(const cp_backend *b) { NEW(cond); }
void cp_cond_free(cp_cond *c) { if (c) CP_OBJ_B(c)->cond_free(c); }
cp_status cp_cond_wait(cp_cond *c, cp_mutex *m, cp_ctx *ctx) { return CP_OBJ_B(c)->cond_wait(c, m, ctx); }
void cp_cond_signal(cp_cond *c) { CP_OBJ_B(c)->cond_signal(c); }
void cp_cond_broadcast(cp_cond *c) { CP_OBJ_B(c)->cond_broadcast(c); }

cp_wg *cp_wg_new(const cp_backend *b) { NEW(wg); }
void cp_wg_free(cp_wg *wg) { if (wg) CP_OBJ_B(wg)->wg_free(wg); }
void cp_wg_add(cp_wg *wg, int64_t delta) { CP_OBJ_B(wg)->wg_add(wg, delta); }
void cp_wg_done(cp_wg *wg) { CP_OBJ_B(wg)->wg_done(wg); }
cp_status cp_wg_wait(cp_wg *wg, cp_ctx *ctx) { return CP_OBJ_B(wg)->wg_wait(wg, ctx); }

cp_once *cp_once_new(const cp_backend *b) { NEW(once); }
void cp_once_free(cp_once *o) { if (o) CP_OBJ_B(o)->once_free(o); }
void cp_once_do(cp_once *o, void (*fn)(void *), void *arg) { CP_OBJ_B(o)->once_do(o, fn, arg); }

cp_pool *cp_pool_new(const cp_backend *b, size_t obj_size) { NEW(pool, obj_size); }
void cp_pool_free(cp_pool *p) { if (p) CP_OBJ_B(p)->pool_free(p); }
void *cp_pool_get(cp_pool *p) { return CP_OBJ_B(p)->pool_get(p); }
void cp_pool_put(cp_pool *p, void *obj) { CP_OBJ_B(p)->pool_put(p, obj); }
