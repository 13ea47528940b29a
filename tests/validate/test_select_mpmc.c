/*
 * select under contention, every backend, capacities 0, 1 and 7: K
 * producers each send (producer, seq) items on their own channel; C
 * consumers each select over all K channels plus the done event of a ctx.
 * The last producer to finish cancels the ctx; consumers then drain with
 * try_select until it would block. Checked: nothing lost, nothing
 * duplicated, per-producer order as each consumer sees it, every channel
 * served. CP_TEST_SCALE (default 1) multiplies the item count.
 * Mixed (cap 7 with the last channel unbuffered): the select has ring cases
 * and a rendezvous case, so a producer can claim a consumer's waiter while a
 * ring also looks ready, before the consumer first parks (the futex select
 * once parked then with futex_waitv entries it had not filled: EINVAL, a
 * crash).
 */
#include "../test.h"

enum { K = 4, C = 2 };

struct shared {
    cp_chan *ch[K];
    cp_ctx *ctx;
    int per_producer;
    atomic_int live_producers;
    atomic_uchar *seen;
    atomic_long received, dups, order_errors, bad;
};
struct prod { struct shared *s; int id; };

static void *producer(void *p)
{
    struct prod *a = p;
    struct shared *s = a->s;
    for (int i = 0; i < s->per_producer; i++) {
        uint64_t item = (uint64_t)a->id << 32 | (uint32_t)i;
        if (cp_chan_send(s->ch[a->id], &item, NULL) != CP_OK) atomic_fetch_add(&s->bad, 1);
    }
    if (atomic_fetch_sub(&s->live_producers, 1) == 1) cp_ctx_cancel(s->ctx);
    return NULL;
}

static void take(struct shared *s, uint64_t item, int64_t *last)
{
    uint32_t pid = (uint32_t)(item >> 32), seq = (uint32_t)item;
    if (pid >= K || seq >= (uint32_t)s->per_producer) { atomic_fetch_add(&s->bad, 1); return; }
    if ((int64_t)seq <= last[pid]) atomic_fetch_add(&s->order_errors, 1);
    last[pid] = seq;
    if (atomic_exchange(&s->seen[pid * (size_t)s->per_producer + seq], 1)) atomic_fetch_add(&s->dups, 1);
    atomic_fetch_add(&s->received, 1);
}

static void *consumer(void *p)
{
    struct shared *s = p;
    int64_t last[K];
    uint64_t item;
    cp_case cs[K + 1];
    for (int i = 0; i < K; i++) {
        last[i] = -1;
        cs[i] = (cp_case){ .op = CP_RECV, .ch = s->ch[i], .elem = &item };
    }
    cs[K] = (cp_case){ .op = CP_WAIT, .ev = cp_ctx_done(s->ctx) };
    for (;;) {
        cp_status st;
        int i = cp_select(cs, K + 1, NULL, &st);
        if (i == K) break;
        if (i < 0 || st != CP_OK) { atomic_fetch_add(&s->bad, 1); break; }
        take(s, item, last);
    }
    /* producers are done: drain what is left */
    cp_status st;
    while (cp_try_select(cs, K, &st) >= 0) {
        if (st != CP_OK) { atomic_fetch_add(&s->bad, 1); break; }
        take(s, item, last);
    }
    return NULL;
}

static void run(const cp_backend *b, size_t cap, int per_producer, int mixed)
{
    struct shared s = { .per_producer = per_producer };
    for (int i = 0; i < K; i++) s.ch[i] = cp_chan_new(b, sizeof(uint64_t), mixed && i == K - 1 ? 0 : cap);
    s.ctx = cp_ctx_with_cancel(b, NULL);
    atomic_init(&s.live_producers, K);
    s.seen = calloc((size_t)K * (size_t)per_producer, 1);
    pthread_t pt[K], ct[C];
    struct prod pa[K];
    for (int i = 0; i < C; i++) ct[i] = t_spawn(consumer, &s);
    for (int i = 0; i < K; i++) {
        pa[i] = (struct prod){ &s, i };
        pt[i] = t_spawn(producer, &pa[i]);
    }
    for (int i = 0; i < K; i++) t_join(pt[i], 60000, "producer");
    for (int i = 0; i < C; i++) t_join(ct[i], 60000, "consumer");
    CHECK_EQ(atomic_load(&s.received), (long)K * per_producer);
    CHECK_EQ(atomic_load(&s.dups), 0);
    CHECK_EQ(atomic_load(&s.order_errors), 0);
    CHECK_EQ(atomic_load(&s.bad), 0);
    for (size_t i = 0; i < (size_t)K * (size_t)per_producer; i++)
        if (!s.seen[i]) { CHECK(!"item lost"); break; }
    free(s.seen);
    cp_ctx_free(s.ctx);
    for (int i = 0; i < K; i++) cp_chan_free(s.ch[i]);
}

int main(void)
{
    const char *sc = getenv("CP_TEST_SCALE");
    double f = sc ? atof(sc) : 1.0;
    int n = (int)(20000 * (f > 0 ? f : 1.0));
    if (n < 100) n = 100;
    FOR_EACH_BACKEND(b)
    {
        size_t caps[] = { 0, 1, 7 };
        for (int i = 0; i < 3; i++) run(b, caps[i], caps[i] ? n : n / 4, 0);
        run(b, 7, n / 2, 1);
    }
    return t_finish("test_select_mpmc");
}
