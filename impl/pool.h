/*
 * cp_pool (Go's sync.Pool) written once and instantiated as every template
 * of impl/: the family's pool.c includes its adapter.h (FAM_LOCK_T, its
 * static initialiser FAM_LOCK_STATIC_INIT, FAM_LOCK_INIT/FINI, FAM_LOCK,
 * FAM_UNLOCK) and then this file, which defines cp_<family>_pool_*.
 *
 * Design. Each thread owns a private cache per pool: a slot of up to
 * PL_CACHE objects in a thread cache (pl_tcache, PL_SLOTS slots, one per pool
 * the thread uses). get pops from the slot, put pushes to it: no atomic
 * read-modify-write and no shared cache line in the common case (the slot
 * look-up is PL_SLOTS relaxed loads of the thread's own memory). A slot that
 * runs empty pulls up to PL_BATCH objects from the pool's shared stack; one
 * that overflows pushes PL_BATCH to it. The shared stack is an array of
 * pointers under the pool's lock (the family's lock; see the family files for
 * why not a Treiber stack). An empty pool mallocs a fresh object, as
 * sync.Pool calls New. Objects are not zeroed; they are malloc'd, so aligned
 * for any type (max_align_t). A thread cache is about 2.2 KiB per thread and
 * family; a thread using more than PL_SLOTS pools evicts slots round-robin
 * (the evicted objects go back to their pool). If a thread cache cannot be
 * allocated, that thread works uncached, straight on the shared stack (a
 * path only out-of-memory reaches; the tests do not exercise it).
 *
 * Every thread cache is on a registry (a list under pl_reg_lock), so that
 *   - cp_pool_free(p) walks every live thread's cache and frees the objects
 *     its slot for p holds: nothing leaks (LSan stays clean), and no slot
 *     ever names a freed pool;
 *   - a thread that exits (pthread key destructor) gives its cached objects
 *     back to their pools' shared stacks, under the registry lock, so it
 *     cannot race with cp_pool_free of those pools.
 * The contract, as for every free in libcp: no thread uses p during or
 * after cp_pool_free(p), and its last uses happen before the free (join,
 * channel, ...). That happens-before edge is what makes the free's reads of
 * another thread's slot (n, obj[]) race-free.
 *
 * Invariants:
 *   - an object is in at most one place: held by one caller, in one slot
 *     of one thread cache, or in its pool's shared stack;
 *   - slot.pool is written only under pl_reg_lock (bind, evict, free, thread
 *     exit); slot.n and slot.obj[] are written by the owning thread while
 *     slot.pool names a live pool, and by cp_pool_free / the exit destructor
 *     under pl_reg_lock;
 *   - a non-NULL slot.pool names a live pool (cp_pool_free clears it
 *     before the pool's memory is released).
 * Lock order: pl_reg_lock -> pool lock.
 *
 * Why no generation number in a slot: a slot is keyed by the pool's
 * address, and a recycled address cannot meet a stale slot, because
 * cp_pool_free cleared every slot naming it (a store that happens before the
 * new pool is even created, hence before any thread can look it up).
 */
#ifndef FAM_NAME
#error "include the family's adapter.h before impl/pool.h"
#endif

#include "../core/internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

enum { PL_CACHE = 32, PL_BATCH = 16, PL_SLOTS = 8 };

struct cp_pool {
    const cp_backend *b;
    size_t obj_size;
    FAM_LOCK_T lock;         /* guards stack, n, cap */
    void **stack;           /* shared stack of free objects */
    size_t n, cap;
};

typedef struct pl_slot {
    _Atomic(cp_pool *) pool;    /* NULL: free slot */
    uint32_t n;                 /* objects in obj[0..n) */
    void *obj[PL_CACHE];
} pl_slot;

typedef struct pl_link { struct pl_link *prev, *next; } pl_link;

typedef struct pl_tcache {
    pl_link link;           /* on the registry, under pl_reg_lock */
    unsigned victim;        /* next slot to evict when all are bound (owner only) */
    pl_slot s[PL_SLOTS];
} pl_tcache;

static FAM_LOCK_T pl_reg_lock = FAM_LOCK_STATIC_INIT;
static pl_link pl_reg = { &pl_reg, &pl_reg };
static _Atomic int pl_key_ready;        /* pl_key created (under pl_reg_lock) */
static pthread_key_t pl_key;
static __thread pl_tcache *pl_tls;

/* Push k objects onto p's shared stack. If the stack cannot grow, the
 * objects are freed instead: a pool may always drop what it holds. */
static void pl_push(cp_pool *p, void **objs, size_t k)
{
    FAM_LOCK(&p->lock);
    if (p->n + k > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        while (cap < p->n + k) cap *= 2;
        void **st = realloc(p->stack, cap * sizeof *st);
        if (!st) {
            FAM_UNLOCK(&p->lock);
            for (size_t i = 0; i < k; i++) free(objs[i]);
            return;
        }
        p->stack = st;
        p->cap = cap;
    }
    memcpy(&p->stack[p->n], objs, k * sizeof *objs);
    p->n += k;
    FAM_UNLOCK(&p->lock);
}

/* Thread exit: give every cached object back to its pool's shared stack. */
static void pl_tcache_exit(void *arg)
{
    pl_tcache *tc = arg;
    FAM_LOCK(&pl_reg_lock);
    for (int i = 0; i < PL_SLOTS; i++) {
        pl_slot *s = &tc->s[i];
        cp_pool *p = atomic_load_explicit(&s->pool, memory_order_relaxed);
        if (!p) continue;
        if (s->n) pl_push(p, s->obj, s->n);   /* p is live: see the invariants */
        s->n = 0;
        atomic_store_explicit(&s->pool, NULL, memory_order_relaxed);
    }
    tc->link.prev->next = tc->link.next;
    tc->link.next->prev = tc->link.prev;
    FAM_UNLOCK(&pl_reg_lock);
    if (pl_tls == tc) pl_tls = NULL;
    free(tc);
}

/* The calling thread's cache, created on first use; NULL if out of memory
 * (the pool then works uncached, through the shared stack). A thread that
 * uses a pool again from another key's destructor after ours has run gets
 * a new cache; if that happens after the last destructor round, the cache
 * stays on the registry (reachable, and still cleared by cp_pool_free). */
static pl_tcache *pl_tcache_create(void)
{
    if (!atomic_load_explicit(&pl_key_ready, memory_order_acquire)) {
        FAM_LOCK(&pl_reg_lock);
        if (!atomic_load_explicit(&pl_key_ready, memory_order_relaxed)) {
            cp_check(pthread_key_create(&pl_key, pl_tcache_exit) == 0);
            atomic_store_explicit(&pl_key_ready, 1, memory_order_release);
        }
        FAM_UNLOCK(&pl_reg_lock);
    }
    pl_tcache *tc = calloc(1, sizeof *tc);
    if (!tc) return NULL;
    for (int i = 0; i < PL_SLOTS; i++) atomic_init(&tc->s[i].pool, NULL);
    if (pthread_setspecific(pl_key, tc) != 0) { free(tc); return NULL; }
    FAM_LOCK(&pl_reg_lock);
    tc->link.next = pl_reg.next;
    tc->link.prev = &pl_reg;
    pl_reg.next->prev = &tc->link;
    pl_reg.next = &tc->link;
    FAM_UNLOCK(&pl_reg_lock);
    pl_tls = tc;
    return tc;
}

/* The calling thread's slot for p, or NULL. Relaxed: slot.pool changes
 * under our feet only when cp_pool_free clears a slot of another pool (we
 * are not using that one), and a slot cleared for p before p's address was
 * reused is seen cleared: the clear happens before p was handed to us. */
static inline pl_slot *pl_find(cp_pool *p)
{
    pl_tcache *tc = pl_tls;
    if (cp_unlikely(!tc)) return NULL;
    for (int i = 0; i < PL_SLOTS; i++)
        if (atomic_load_explicit(&tc->s[i].pool, memory_order_relaxed) == p) return &tc->s[i];
    return NULL;
}

/* Bind a slot of the calling thread's cache to p: a free slot, else an
 * empty one, else evict one round-robin (its objects go back to its pool). */
static pl_slot *pl_bind(cp_pool *p)
{
    pl_tcache *tc = pl_tls;
    if (!tc && !(tc = pl_tcache_create())) return NULL;
    pl_slot *s = NULL;
    FAM_LOCK(&pl_reg_lock);
    for (int i = 0; i < PL_SLOTS && !s; i++)
        if (!atomic_load_explicit(&tc->s[i].pool, memory_order_relaxed)) s = &tc->s[i];
    for (int i = 0; i < PL_SLOTS && !s; i++)
        if (tc->s[i].n == 0) s = &tc->s[i];
    if (!s) {
        s = &tc->s[tc->victim++ % PL_SLOTS];
        pl_push(atomic_load_explicit(&s->pool, memory_order_relaxed), s->obj, s->n);
    }
    s->n = 0;
    atomic_store_explicit(&s->pool, p, memory_order_relaxed);
    FAM_UNLOCK(&pl_reg_lock);
    return s;
}

cp_pool *FAM_FN(pool_new)(const cp_backend *b, size_t obj_size)
{
    if (b != &FAM_BACKEND || obj_size == 0 || obj_size > PTRDIFF_MAX) { errno = EINVAL; return NULL; }
    cp_pool *p = cp__zalloc(sizeof *p);
    if (!p) return NULL;
    p->b = b;
    p->obj_size = obj_size;
    FAM_LOCK_INIT(&p->lock);
    return p;
}

void FAM_FN(pool_free)(cp_pool *p)
{
    if (!p) return;
    FAM_LOCK(&pl_reg_lock);
    for (pl_link *l = pl_reg.next; l != &pl_reg; l = l->next) {
        pl_tcache *tc = (pl_tcache *)l;
        for (int i = 0; i < PL_SLOTS; i++) {
            pl_slot *s = &tc->s[i];
            if (atomic_load_explicit(&s->pool, memory_order_relaxed) != p) continue;
            for (uint32_t k = 0; k < s->n; k++) free(s->obj[k]);
            s->n = 0;
            atomic_store_explicit(&s->pool, NULL, memory_order_relaxed);
        }
    }
    FAM_UNLOCK(&pl_reg_lock);
    /* No thread can reach p any more: its slots are gone, and by contract
     * nobody calls get/put on it. */
    for (size_t k = 0; k < p->n; k++) free(p->stack[k]);
    free(p->stack);
    FAM_LOCK_FINI(&p->lock);
    free(p);
}

static void *pl_get_slow(cp_pool *p, pl_slot *s)
{
    if (!s) s = pl_bind(p);
    void *o = NULL;
    FAM_LOCK(&p->lock);
    if (p->n) {
        if (s) {    /* refill the slot with a batch; hand out its top */
            size_t k = p->n < PL_BATCH ? p->n : PL_BATCH;
            p->n -= k;
            memcpy(s->obj, &p->stack[p->n], k * sizeof *s->obj);
            s->n = (uint32_t)k - 1;
            o = s->obj[k - 1];
        } else {
            o = p->stack[--p->n];
        }
    }
    FAM_UNLOCK(&p->lock);
    return o ? o : malloc(p->obj_size);
}

void *FAM_FN(pool_get)(cp_pool *p)
{
    pl_slot *s = pl_find(p);
    if (cp_likely(s && s->n)) return s->obj[--s->n];
    return pl_get_slow(p, s);
}

static void pl_put_slow(cp_pool *p, pl_slot *s, void *o)
{
    if (!s) s = pl_bind(p);
    if (!s) { pl_push(p, &o, 1); return; }
    if (s->n == PL_CACHE) {     /* full: move the top batch to the shared stack */
        s->n -= PL_BATCH;
        pl_push(p, &s->obj[s->n], PL_BATCH);
    }
    s->obj[s->n++] = o;
}

void FAM_FN(pool_put)(cp_pool *p, void *o)
{
    if (!o) return;
    pl_slot *s = pl_find(p);
    if (cp_likely(s && s->n < PL_CACHE)) { s->obj[s->n++] = o; return; }
    pl_put_slow(p, s, o);
}
