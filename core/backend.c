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

/* Crowd waiters (a semaphore's) in cp_w_spin's yield phase: a heuristic
 * bound, not a synchronisation (relaxed: a momentary miscount only yields
 * once too often or too few). Without it, the mutex semaphore (8 threads,
 * 4 permits) measured 0.70x. With it for every waiter, as before
 * 2026-12-02, the mutex worker pool measured 0.61x and cond_signal 0.19x
 * (most waiters were left to sleep, and every sleep costs its waker a
 * wake-up). */
static _Atomic int yielders;

/* This thread's spins in a row that ran out without DONE (cp_spin_skip). */
static _Thread_local unsigned spin_misses;

/* A spinner slot (cp_spin_begin), waited for a moment: in a hand-off
 * between two running threads on two CPUs, the one slot is mostly held by
 * the partner, who has just been handed its item and is about to see it.
 * False if none came (or *s reached DONE, which the caller checks). */
#define SLOT_TRIES 4
static bool w_spin_slot(cp_waiter *w, uint32_t *s)
{
    for (int t = 0;; t++) {
        if (cp_spin_begin()) return true;
        if (t == SLOT_TRIES) return false;
        for (int k = 0; k < 8; k++) cp_cpu_relax();
        *s = atomic_load_explicit(&w->state, memory_order_acquire) & CP_W_STATE;
        if (*s >= CP_W_DONE) return false;
    }
}

uint32_t cp_w_spin(cp_waiter *w, uint64_t deadline, int spins, int yields)
{
    uint32_t s = CP_W_WAITING;
    if (!w->spun && !cp_spin_skip(&spin_misses)) {
        int i = 0;
        for (; i < CP_FREE_SPINS && i < spins && s < CP_W_DONE; i++) {
            cp_cpu_relax();
            s = atomic_load_explicit(&w->state, memory_order_acquire) & CP_W_STATE;
        }
        if (s < CP_W_DONE && w_spin_slot(w, &s)) {
            for (; i < spins && s < CP_W_DONE; i++) {
                cp_cpu_relax();
                s = atomic_load_explicit(&w->state, memory_order_acquire) & CP_W_STATE;
            }
            cp_spin_end();
        }
        if (s >= CP_W_DONE) {
            spin_misses = 0;
            return s;
        }
        spin_misses++;
    }
    if (s >= CP_W_DONE) return s;
    bool bounded = w->crowd;
    if (bounded && atomic_fetch_add_explicit(&yielders, 1, memory_order_relaxed) > cp__spin_limit)
        yields = 0;
    bool timed = !bounded && !w->buffered;
    uint64_t t0 = timed ? cp_now_ns() : 0;
    for (int i = 0; (timed ? cp_yield_due(i, yields, t0) : i < yields) && s < CP_W_DONE &&
                    !(deadline && cp_now_ns() >= deadline);
         i++) {
        sched_yield();
        s = atomic_load_explicit(&w->state, memory_order_acquire) & CP_W_STATE;
    }
    if (bounded) atomic_fetch_sub_explicit(&yielders, 1, memory_order_relaxed);
    return s;
}

/* the families of cp/families.h, in its order */
#define CP__BACKEND_REF(f) &cp_backend_##f,
static const cp_backend *const backends[] = { CP_FAMILY_LIST(CP__BACKEND_REF) };
#undef CP__BACKEND_REF

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
    return b->ops.select(cases, n, ctx, st);
}
int cp_try_select(cp_case *cases, size_t n, cp_status *st)
{
    const cp_backend *b;
    if (select_backend(cases, n, NULL, &b)) { *st = CP_EINVAL; return -1; }
    if (!b) { *st = CP_WOULDBLOCK; return -1; }   /* only nil cases: nothing can ever proceed */
    return b->ops.try_select(cases, n, st);
}

/* ---- every other operation of cp/ops.h through the table, by its kind ----
 * cp.h's prototypes are in scope: an entry of ops.h whose types differ from
 * cp.h's is a conflicting-types error here, and one that cp.h does not
 * declare is a missing-prototype error (made an error for these lines). */
#define OBJ_FIRST_(x, ...) x
#define OBJ_FIRST(...) OBJ_FIRST_(__VA_ARGS__, _)
#define OBJ(args) OBJ_FIRST args          /* the object: the first argument */
#define GEN_NEW(ret, name, params, args)                                     \
    ret cp_##name params                                                     \
    {                                                                        \
        if (!b) { errno = EINVAL; return NULL; }                             \
        return b->ops.name args;                                             \
    }
#define GEN_FREE(ret, name, params, args) \
    ret cp_##name params { if (OBJ(args)) CP_OBJ_B(OBJ(args))->ops.name args; }
#define GEN_CALL(ret, name, params, args) \
    ret cp_##name params { return CP_OBJ_B(OBJ(args))->ops.name args; }
#define GEN_VOID(ret, name, params, args) \
    ret cp_##name params { CP_OBJ_B(OBJ(args))->ops.name args; }
#define GEN_SELECT(ret, name, params, args)   /* written out above */
#define GEN(_, kind, ret, name, params, args) GEN_##kind(ret, name, params, args)
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wmissing-prototypes"
CP_OPS(GEN, _)
#pragma GCC diagnostic pop
