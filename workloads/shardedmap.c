/*
 * shardedmap: T threads run a mix of get / put / delete on one concurrent
 * map, written three ways (--set impl=N):
 *   0 locked:     one table under one rwlock;
 *   1 sharded:    N tables (--set shards=N), each under its own rwlock, the
 *                 shard chosen by a hash of the key's string (FNV-1a, taken
 *                 unsigned modulo N);
 *   2 readmostly: in the spirit of sync.Map: reads and updates of a key
 *                 already present take no lock (atomic loads and stores on
 *                 the key's entry, as sync.Map's entry.p), inserting a new
 *                 key takes one mutex; a delete leaves the entry in place
 *                 with no value (as sync.Map's expunged entries). The index
 *                 is sized for the key space up front (2 x keys slots, keys
 *                 never move), so no read-only snapshot is ever replaced and
 *                 none has to be reclaimed.
 * The concurrent map of seed 001 (Cache over sync.Map, and ShardedMap with
 * one RWMutex per shard); the seed catalogue 000 has no key for it.
 *
 * Keys are the strings "user:%010u" of ids 0..keys-1. Each op is a read with
 * probability read_pct %, else a write of a key this thread owns (id % T ==
 * thread: one writer per key, so the final state is a function of each
 * thread's own sequence), a delete with probability del_pct % of writes,
 * else a put of (id << 40 | the thread's op number). Each thread's ops are a
 * pure function of (--seed, thread, op number): that is the operation log,
 * regenerated for the replay.
 *
 * One op: one get, put or delete. Latency: that call (sampled).
 *
 * Invariants, checked on every run:
 *   - integrity: every value read belongs to the key read (id << 40);
 *   - monotonic reads: a thread never reads an older value of a key after
 *     a newer one (each key has one writer, whose numbers increase);
 *   - read your writes: a thread reading a key it owns gets exactly its
 *     last write (or nothing after its delete);
 *   - the final sweep matches a single-threaded replay of every thread's
 *     operation log: same value for every key, and the map holds exactly
 *     as many entries as the replay;
 *   - sharded: every shard index is within the shard array (counted at each
 *     access), and nothing lives outside it;
 *   - every thread joined.
 *
 * Variants: `seed` computes the shard index as seed 001's getShard does,
 * h = 31*h + c over the key's bytes in a signed (Go int, 64-bit, wrapping)
 * hash, then h % N: for about half the keys h is negative and so is the
 * index. Go panics (index out of range); C reads and writes memory before
 * the shard array. Here that memory is a guard array of real shards inside
 * the map (so a release build does not corrupt its heap): the run continues
 * and fails with the count of negative indexes and of keys stored outside
 * the array. In the asan preset UBSan's bounds check stops the program at
 * the first negative index (runtime error: index -k out of bounds). The
 * seed variant applies to impl=1 (sharded).
 */
#include "runtime/workload.h"

#include <stdlib.h>
#include <string.h>

enum { P_IMPL, P_READ_PCT, P_DEL_PCT, P_KEYS, P_SHARDS, P_COUNT };
enum { IMPL_LOCKED, IMPL_SHARDED, IMPL_READMOSTLY };
enum { M_HIT_PCT, M_ENTRIES };
static const wl_param shardedmap_params[] = {
    [P_IMPL] = { "impl", 1, "0 locked (one rwlock), 1 sharded (N rwlocks), 2 readmostly (sync.Map-like)", 2 },
    [P_READ_PCT] = { "read_pct", 90, "percent of ops that are gets (99, 90, 50 ...)", 100 },
    [P_DEL_PCT] = { "del_pct", 20, "percent of writes that are deletes", 100 },
    [P_KEYS] = { "keys", 4096, "distinct keys (\"user:%010u\")", 8192 },
    [P_SHARDS] = { "shards", 16, "impl=1: shards, each with its own rwlock (1..256)", 64 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(shardedmap_params, P_COUNT);

#define MAX_SHARDS 256
#define MAX_KEYS (1 << 22)
#define KEY_LEN 15                      /* "user:" + 10 digits */
#define VER_BITS 40

/* ---- one table: open addressing, linear probing, backward-shift delete ---- */
struct table { uint32_t *ids; uint64_t *vals; uint32_t cap, count; };   /* ids: id + 1, 0 = empty */

static int tbl_init(struct table *t, uint32_t cap)
{
    t->cap = cap;
    t->count = 0;
    t->ids = calloc(cap, sizeof *t->ids);
    t->vals = calloc(cap, sizeof *t->vals);
    return t->ids && t->vals ? 0 : -1;
}

static void tbl_free(struct table *t)
{
    free(t->ids);
    free(t->vals);
}

static inline uint32_t tbl_home(const struct table *t, uint32_t id) { return (uint32_t)wl_mix(id) & (t->cap - 1); }

static int64_t tbl_find(const struct table *t, uint32_t id)
{
    for (uint32_t i = tbl_home(t, id);; i = (i + 1) & (t->cap - 1)) {
        if (t->ids[i] == id + 1) return i;
        if (!t->ids[i]) return -1;
    }
}

static int tbl_put(struct table *t, uint32_t id, uint64_t v)
{
    int64_t f = tbl_find(t, id);
    if (f >= 0) {
        t->vals[f] = v;
        return 0;
    }
    if ((t->count + 1) * 2 > t->cap) {  /* grow: load factor stays <= 1/2 */
        struct table n;
        if (tbl_init(&n, t->cap * 2)) { tbl_free(&n); return -1; }
        for (uint32_t i = 0; i < t->cap; i++)
            if (t->ids[i]) {
                uint32_t j = tbl_home(&n, t->ids[i] - 1);
                while (n.ids[j]) j = (j + 1) & (n.cap - 1);
                n.ids[j] = t->ids[i];
                n.vals[j] = t->vals[i];
            }
        n.count = t->count;
        tbl_free(t);
        *t = n;
    }
    uint32_t i = tbl_home(t, id);
    while (t->ids[i]) i = (i + 1) & (t->cap - 1);
    t->ids[i] = id + 1;
    t->vals[i] = v;
    t->count++;
    return 0;
}

static void tbl_del(struct table *t, uint32_t id)
{
    int64_t f = tbl_find(t, id);
    if (f < 0) return;
    uint32_t hole = (uint32_t)f, m = t->cap - 1;
    /* backward shift: move later members of the cluster into the hole when
     * their home is not between the hole and them */
    for (uint32_t j = (hole + 1) & m; t->ids[j]; j = (j + 1) & m) {
        uint32_t home = tbl_home(t, t->ids[j] - 1);
        if (((j - home) & m) >= ((j - hole) & m)) {
            t->ids[hole] = t->ids[j];
            t->vals[hole] = t->vals[j];
            hole = j;
        }
    }
    t->ids[hole] = 0;
    t->vals[hole] = 0;
    t->count--;
}

/* ---- the map ---- */
struct shard { cp_rwlock *lk; struct table t; } __attribute__((aligned(64)));

struct rm_slot { _Atomic uint32_t id; _Atomic uint64_t val; };    /* readmostly: val 0 = no value */

struct smap {
    int impl, seed, nshards;
    /* What a negative index reaches in the seed variant: real shards, so
     * that the release build survives to count them. Must stay right before
     * shard[] (and shard[] must not be the last member, or compilers treat
     * it as a flexible array and UBSan's bounds check is off). */
    struct shard under[MAX_SHARDS];
    struct shard shard[MAX_SHARDS];
    /* readmostly */
    cp_mutex *ins;
    struct rm_slot *rm;
    uint32_t rm_cap;
    char (*key)[KEY_LEN + 1];           /* the key strings */
    _Atomic uint64_t neg_index, oom;
};

/* The shard of a key: FNV-1a over its string, unsigned, modulo N. */
static inline int shard_index(const struct smap *m, uint32_t id)
{
    const char *k = m->key[id];
    if (!m->seed) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (int i = 0; i < KEY_LEN; i++) h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
        return (int)(h % (uint64_t)m->nshards);
    }
    /* seed 001's getShard: Go's int wraps (computed unsigned here, so that
     * the wrap itself is not C's undefined signed overflow), % keeps the
     * sign of the dividend */
    int64_t h = 0;
    for (int i = 0; i < KEY_LEN; i++) h = (int64_t)((uint64_t)h * 31u + (uint64_t)(unsigned char)k[i]);
    return (int)(h % (int64_t)m->nshards);
}

static inline struct shard *shard_of(struct smap *m, uint32_t id)
{
    int i = shard_index(m, id);
    if (i < 0 || i >= m->nshards) atomic_fetch_add_explicit(&m->neg_index, 1, memory_order_relaxed);
    return &m->shard[i];                /* the seed's access, as it is (UBSan flags i < 0 here) */
}

static inline uint32_t rm_home(const struct smap *m, uint32_t id) { return (uint32_t)wl_mix(id) & (m->rm_cap - 1); }

/* readmostly: the slot of id, or NULL if it was never inserted */
static struct rm_slot *rm_find(struct smap *m, uint32_t id)
{
    for (uint32_t i = rm_home(m, id);; i = (i + 1) & (m->rm_cap - 1)) {
        /* acquire: pairs with the inserter's release store of id, after it
         * stored the slot's first value */
        uint32_t s = atomic_load_explicit(&m->rm[i].id, memory_order_acquire);
        if (s == id + 1) return &m->rm[i];
        if (!s) return NULL;
    }
}

static int map_get(struct smap *m, uint32_t id, uint64_t *v)
{
    switch (m->impl) {
    case IMPL_READMOSTLY: {
        struct rm_slot *s = rm_find(m, id);
        *v = s ? atomic_load_explicit(&s->val, memory_order_acquire) : 0;
        return *v != 0;
    }
    default: {
        struct shard *sh = m->impl == IMPL_LOCKED ? &m->shard[0] : shard_of(m, id);
        cp_rwlock_rlock(sh->lk);
        int64_t f = tbl_find(&sh->t, id);
        *v = f >= 0 ? sh->t.vals[f] : 0;
        cp_rwlock_runlock(sh->lk);
        return f >= 0;
    }
    }
}

static void map_put(struct smap *m, uint32_t id, uint64_t v)
{
    switch (m->impl) {
    case IMPL_READMOSTLY: {
        struct rm_slot *s = rm_find(m, id);
        if (!s) {
            cp_mutex_lock(m->ins);
            uint32_t i = rm_home(m, id);
            for (;; i = (i + 1) & (m->rm_cap - 1)) {
                uint32_t cur = atomic_load_explicit(&m->rm[i].id, memory_order_relaxed);
                if (!cur || cur == id + 1) break;
            }
            s = &m->rm[i];
            atomic_store_explicit(&s->val, v, memory_order_relaxed);
            atomic_store_explicit(&s->id, id + 1, memory_order_release);   /* publish */
            cp_mutex_unlock(m->ins);
            return;
        }
        atomic_store_explicit(&s->val, v, memory_order_release);
        return;
    }
    default: {
        struct shard *sh = m->impl == IMPL_LOCKED ? &m->shard[0] : shard_of(m, id);
        cp_rwlock_wlock(sh->lk);
        if (tbl_put(&sh->t, id, v)) atomic_fetch_add(&m->oom, 1);
        cp_rwlock_wunlock(sh->lk);
    }
    }
}

static void map_del(struct smap *m, uint32_t id)
{
    switch (m->impl) {
    case IMPL_READMOSTLY: {
        struct rm_slot *s = rm_find(m, id);
        if (s) atomic_store_explicit(&s->val, 0, memory_order_release);
        return;
    }
    default: {
        struct shard *sh = m->impl == IMPL_LOCKED ? &m->shard[0] : shard_of(m, id);
        cp_rwlock_wlock(sh->lk);
        tbl_del(&sh->t, id);
        cp_rwlock_wunlock(sh->lk);
    }
    }
}

/* ---- the operation log ---- */
struct gen { uint64_t x; int t, T; uint32_t keys, owned; int read_pct, del_pct; };
enum { OP_GET, OP_PUT, OP_DEL };

static void gen_init(struct gen *g, uint64_t seed, int t, int T, uint32_t keys, int read_pct, int del_pct)
{
    *g = (struct gen){ .x = wl_mix(seed ^ wl_mix((uint64_t)t + 1)) | 1, .t = t, .T = T, .keys = keys,
                       .read_pct = read_pct, .del_pct = del_pct };
    g->owned = (uint32_t)t < keys ? (keys - (uint32_t)t + (uint32_t)T - 1) / (uint32_t)T : 0;
}

static inline uint64_t gen_next(struct gen *g)
{
    g->x ^= g->x << 13;
    g->x ^= g->x >> 7;
    g->x ^= g->x << 17;
    return g->x;
}

static inline int gen_op(struct gen *g, uint32_t *id)
{
    uint64_t r = gen_next(g);
    if ((int)(r % 100) < g->read_pct || !g->owned) {
        *id = (uint32_t)((r >> 8) % g->keys);
        return OP_GET;
    }
    *id = (uint32_t)g->t + (uint32_t)g->T * (uint32_t)((r >> 8) % g->owned);
    return (int)((r >> 40) % 100) < g->del_pct ? OP_DEL : OP_PUT;
}

struct sm_state {
    wl_run *r;
    struct smap *m;
    int T;
    uint32_t keys;
    uint64_t per_thread, extra;
    uint64_t *ops;                      /* per thread, for the replay */
    _Atomic uint64_t errors, reads, hits;
    _Atomic(const char *) first_error;
    _Atomic uint64_t err_a, err_b;
};

static void note_error(struct sm_state *s, const char *what, uint64_t a, uint64_t b)
{
    const char *none = NULL;
    if (atomic_compare_exchange_strong(&s->first_error, &none, what)) {
        atomic_store(&s->err_a, a);
        atomic_store(&s->err_b, b);
    }
    atomic_fetch_add(&s->errors, 1);
}

struct worker_arg { struct sm_state *s; int id; };

static void *worker(wl_thread *self, void *arg)
{
    struct worker_arg *a = arg;
    struct sm_state *s = a->s;
    wl_run *r = s->r;
    const wl_cfg *c = r->cfg;
    const uint64_t n = s->per_thread + ((uint64_t)a->id < s->extra);
    const int64_t sample = c->lat_sample;
    const uint64_t vmask = (1ull << VER_BITS) - 1;
    int64_t until_sample = 0;
    struct gen g;
    gen_init(&g, c->seed, a->id, s->T, s->keys, (int)c->set[P_READ_PCT], (int)c->set[P_DEL_PCT]);
    uint64_t *seen = calloc(s->keys, sizeof *seen);            /* newest version read, per key */
    uint64_t *mine = calloc(g.owned ? g.owned : 1, sizeof *mine);   /* my last write, 0: none */
    uint64_t i = 0, reads = 0, hits = 0;
    if (!seen || !mine) {
        note_error(s, "out of memory (thread, keys)", (uint64_t)a->id, s->keys);
        free(seen);
        free(mine);
        return NULL;
    }
    wl_phase(self, "ops");
    for (; wl_more(r, i, n); i++) {
        uint32_t id;
        int op = gen_op(&g, &id);
        uint64_t t = 0, v;
        if (wl_sample(sample, &until_sample)) {
            t = wl_now();
        }
        if (op == OP_GET) {
            int found = map_get(s->m, id, &v);
            if (t) cp_hist_record(self->hist, wl_since(t));
            reads++;
            if (found) {
                hits++;
                if (v >> VER_BITS != id) note_error(s, "a value read belongs to another key (key, value)", id, v);
                else if ((v & vmask) < seen[id])
                    note_error(s, "read went backwards (key, version)", id, v & vmask);
                else seen[id] = v & vmask;
            }
            if (id % (uint32_t)s->T == (uint32_t)a->id) {
                uint64_t want = mine[id / (uint32_t)s->T];
                if ((found ? v : 0) != want) note_error(s, "read of my own key is not my last write (key, value)", id, v);
            }
        } else if (op == OP_PUT) {
            v = (uint64_t)id << VER_BITS | ((i + 1) & vmask);
            map_put(s->m, id, v);
            if (t) cp_hist_record(self->hist, wl_since(t));
            mine[id / (uint32_t)s->T] = v;
        } else {
            map_del(s->m, id);
            if (t) cp_hist_record(self->hist, wl_since(t));
            mine[id / (uint32_t)s->T] = 0;
        }
    }
    free(seen);
    free(mine);
    s->ops[a->id] = i;
    atomic_fetch_add(&s->reads, reads);
    atomic_fetch_add(&s->hits, hits);
    self->ops = i;
    wl_phase(self, "done");
    return NULL;
}

static int smap_new(struct smap **out, const wl_cfg *c, uint32_t keys)
{
    struct smap *m = calloc(1, sizeof *m);
    if (!m) return -1;
    *out = m;
    m->impl = (int)c->set[P_IMPL];
    m->seed = c->variant == 1;
    m->nshards = m->impl == IMPL_SHARDED ? (int)c->set[P_SHARDS] : 1;
    if (!(m->key = malloc((size_t)keys * sizeof *m->key))) return -1;
    for (uint32_t i = 0; i < keys; i++) snprintf(m->key[i], sizeof m->key[i], "user:%010u", i);
    if (m->impl == IMPL_READMOSTLY) {
        m->rm_cap = 16;
        while (m->rm_cap < 2 * keys) m->rm_cap *= 2;
        m->rm = calloc(m->rm_cap, sizeof *m->rm);
        m->ins = cp_mutex_new(c->b);
        return m->rm && m->ins ? 0 : -1;
    }
    uint32_t per = 16;
    while (per < 2 * keys / (uint32_t)m->nshards) per *= 2;
    for (int i = 0; i < m->nshards; i++) {
        if (!(m->shard[i].lk = cp_rwlock_new(c->b)) || tbl_init(&m->shard[i].t, per)) return -1;
        if (m->seed && i > 0 && (!(m->under[MAX_SHARDS - i].lk = cp_rwlock_new(c->b)) ||
                                 tbl_init(&m->under[MAX_SHARDS - i].t, 16)))
            return -1;
    }
    return 0;
}

static void smap_free(struct smap *m)
{
    if (!m) return;
    for (int i = 0; i < MAX_SHARDS; i++) {
        cp_rwlock_free(m->shard[i].lk);
        tbl_free(&m->shard[i].t);
        cp_rwlock_free(m->under[i].lk);
        tbl_free(&m->under[i].t);
    }
    free(m->rm);
    cp_mutex_free(m->ins);
    free(m->key);
    free(m);
}

static int shardedmap_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct sm_state s = { .r = r, .T = (int)c->k.threads, .keys = (uint32_t)c->set[P_KEYS] };
    s.per_thread = (uint64_t)c->k.items / (uint64_t)s.T;
    s.extra = (uint64_t)c->k.items % (uint64_t)s.T;
    s.ops = calloc((size_t)s.T, sizeof *s.ops);
    struct worker_arg *wa = calloc((size_t)s.T, sizeof *wa);
    uint64_t *replay = calloc(s.keys, sizeof *replay);
    if (!s.ops || !wa || !replay || smap_new(&s.m, c, s.keys)) {
        smap_free(s.m);
        free(s.ops);
        free(wa);
        free(replay);
        return -1;
    }
    for (int i = 0; i < s.T; i++) {
        wa[i] = (struct worker_arg){ &s, i };
        wl_spawn(r, "worker", worker, &wa[i]);
    }
    wl_start_and_join(r);

    /* the single-threaded replay of every thread's log */
    uint64_t total = 0, want_entries = 0;
    const uint64_t vmask = (1ull << VER_BITS) - 1;
    for (int t = 0; t < s.T; t++) {
        struct gen g;
        gen_init(&g, c->seed, t, s.T, s.keys, (int)c->set[P_READ_PCT], (int)c->set[P_DEL_PCT]);
        for (uint64_t i = 0; i < s.ops[t]; i++) {
            uint32_t id;
            int op = gen_op(&g, &id);
            if (op == OP_PUT) replay[id] = (uint64_t)id << VER_BITS | ((i + 1) & vmask);
            else if (op == OP_DEL) replay[id] = 0;
        }
        total += s.ops[t];
    }
    uint64_t mismatch = 0, first = 0, got_first = 0, want_first = 0;
    for (uint32_t id = 0; id < s.keys; id++) {
        uint64_t v;
        if (!map_get(s.m, id, &v)) v = 0;
        want_entries += replay[id] != 0;
        if (v != replay[id] && !mismatch++) {
            first = id;
            got_first = v;
            want_first = replay[id];
        }
    }
    uint64_t entries = 0, outside = 0;
    if (s.m->impl == IMPL_READMOSTLY) {
        for (uint32_t i = 0; i < s.m->rm_cap; i++) entries += atomic_load(&s.m->rm[i].val) != 0;
    } else {
        for (int i = 0; i < s.m->nshards; i++) entries += s.m->shard[i].t.count;
        for (int i = 0; i < MAX_SHARDS; i++) outside += s.m->under[i].t.count;
    }

    if (atomic_load(&s.errors))
        wl_fail(r, "%s: %llu, %llu (%llu errors)", atomic_load(&s.first_error),
                (unsigned long long)atomic_load(&s.err_a), (unsigned long long)atomic_load(&s.err_b),
                (unsigned long long)atomic_load(&s.errors));
    if (atomic_load(&s.m->neg_index) || outside)
        wl_fail(r, "shard index out of range in %llu accesses; %llu keys stored outside the shard array "
                   "(a negative index from the signed hash; Go panics: index out of range)",
                (unsigned long long)atomic_load(&s.m->neg_index), (unsigned long long)outside);
    if (atomic_load(&s.m->oom)) wl_fail(r, "%llu puts failed: out of memory", (unsigned long long)atomic_load(&s.m->oom));
    if (mismatch)
        wl_fail(r, "final sweep differs from the replay of the operation log at %llu keys (first: key %llu holds "
                   "%016llx, replay %016llx)",
                (unsigned long long)mismatch, (unsigned long long)first, (unsigned long long)got_first,
                (unsigned long long)want_first);
    if (entries != want_entries)
        wl_fail(r, "the map holds %llu entries, the replay %llu", (unsigned long long)entries,
                (unsigned long long)want_entries);
    wl_check_items(r, total, "ran %llu ops, asked for %lld");
    uint64_t reads = atomic_load(&s.reads);
    wl_metric(r, M_HIT_PCT, reads ? 100.0 * (double)atomic_load(&s.hits) / (double)reads : 0);
    wl_metric(r, M_ENTRIES, (double)want_entries);
    r->ops = total;
    smap_free(s.m);
    free(s.ops);
    free(wa);
    free(replay);
    return 0;
}

static const char *shardedmap_check(const wl_cfg *c)
{
    if (c->set[P_IMPL] > 2) return "--set impl must be 0 (locked), 1 (sharded) or 2 (readmostly)";
    if (c->set[P_READ_PCT] > 100) return "--set read_pct must be 0..100";
    if (c->set[P_DEL_PCT] > 100) return "--set del_pct must be 0..100";
    if (c->set[P_KEYS] < 1 || c->set[P_KEYS] > MAX_KEYS) return "--set keys must be 1..4194304";
    if (c->set[P_SHARDS] < 1 || c->set[P_SHARDS] > MAX_SHARDS) return "--set shards must be 1..256";
    if (c->variant == 1 && c->set[P_IMPL] != IMPL_SHARDED)
        return "--variant=seed is the sharded map's shard index: it needs --set impl=1";
    return NULL;
}

WL_DEFINE(shardedmap) = {
    .name = "shardedmap",
    .group = "resilience",
    .desc = "T threads get/put/delete on one map: one rwlock, N sharded rwlocks, or read-mostly (sync.Map-like)",
    .op = "get, put or delete",
    .latency = "the map call",
    .defaults = { .threads = 2, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = WL_UNUSED, .work_ns = WL_UNUSED, .items = 1000000 },
    .params = shardedmap_params,
    .run = shardedmap_run,
    .check = shardedmap_check,
    .variants = (const char *const[]){ "default", "seed", NULL },
    .metrics = (const wl_metric_def[]){
        { "hit_pct", "%", "gets that found a value" },
        { "entries", "count", "keys in the map at the end" },
        { NULL, NULL, NULL },
    },
};
