/*
 * Channels under contention, every backend, capacities 0, 1, 7 and 1024:
 * P producers send (producer, seq) items, the last one to finish closes the
 * channel, C consumers receive until CP_CLOSED. Checked: nothing lost
 * (every item seen), nothing duplicated (each seen once), per-producer order
 * kept as each consumer sees it (one channel is FIFO), and the count.
 * CP_TEST_SCALE (default 1) multiplies the item count.
 */
#include "../test.h"

struct shared {
    cp_chan *ch;
    int producers, per_producer;
    atomic_int live_producers;
    atomic_uchar *seen;       /* [producer * per_producer + seq] */
    atomic_long received, dups, order_errors;
};
struct prod { struct shared *s; int id; };

static void *producer(void *p)
{
    struct prod *a = p;
    struct shared *s = a->s;
    for (int i = 0; i < s->per_producer; i++) {
        uint64_t item = (uint64_t)a->id << 32 | (uint32_t)i;
        if (cp_chan_send(s->ch, &item, NULL) != CP_OK) {
            fprintf(stderr, "[%s] send failed\n", t_where);
            exit(1);
        }
    }
    if (atomic_fetch_sub(&s->live_producers, 1) == 1) cp_chan_close(s->ch);
    return NULL;
}

static void *consumer(void *p)
{
    struct shared *s = p;
    int64_t last[64];
    for (int i = 0; i < 64; i++) last[i] = -1;
    long n = 0;
    uint64_t item;
    cp_status st;
    while ((st = cp_chan_recv(s->ch, &item, NULL)) == CP_OK) {
        int pid = (int)(item >> 32), seq = (int)(uint32_t)item;
        if (pid >= s->producers || seq >= s->per_producer) {
            atomic_fetch_add(&s->order_errors, 1);
            continue;
        }
        if (seq <= last[pid]) atomic_fetch_add(&s->order_errors, 1);
        last[pid] = seq;
        if (atomic_exchange(&s->seen[(size_t)pid * s->per_producer + seq], 1))
            atomic_fetch_add(&s->dups, 1);
        n++;
    }
    if (st != CP_CLOSED) atomic_fetch_add(&s->order_errors, 1);
    atomic_fetch_add(&s->received, n);
    return NULL;
}

static void run(const cp_backend *b, size_t cap, int P, int C, int per)
{
    struct shared s = { .ch = cp_chan_new(b, sizeof(uint64_t), cap), .producers = P,
                        .per_producer = per };
    atomic_init(&s.live_producers, P);
    s.seen = calloc((size_t)P * per, 1);
    pthread_t pt[64], ct[64];
    struct prod pa[64];
    for (int i = 0; i < C; i++) ct[i] = t_spawn(consumer, &s);
    for (int i = 0; i < P; i++) {
        pa[i] = (struct prod){ &s, i };
        pt[i] = t_spawn(producer, &pa[i]);
    }
    for (int i = 0; i < P; i++) t_join(pt[i], 120000, "producer");
    for (int i = 0; i < C; i++) t_join(ct[i], 120000, "consumer");
    long missing = 0;
    for (size_t i = 0; i < (size_t)P * per; i++) missing += !s.seen[i];
    if (s.received != (long)P * per || s.dups || s.order_errors || missing)
        fprintf(stderr, "[%s] cap=%zu P=%d C=%d: received %ld of %ld, dups %ld, order errors %ld, missing %ld\n",
                t_where, cap, P, C, (long)s.received, (long)P * per, (long)s.dups,
                (long)s.order_errors, missing);
    CHECK_EQ(s.received, (long)P * per);
    CHECK_EQ(s.dups, 0);
    CHECK_EQ(s.order_errors, 0);
    CHECK_EQ(missing, 0);
    free(s.seen);
    cp_chan_free(s.ch);
}

int main(void)
{
    const char *sc = getenv("CP_TEST_SCALE");
    double scale = sc ? atof(sc) : 1.0;
    size_t caps[] = { 0, 1, 7, 1024 };
    int shapes[][2] = { { 1, 1 }, { 4, 4 }, { 3, 1 }, { 1, 3 }, { 8, 2 } };
    FOR_EACH_BACKEND(b)
    {
        for (size_t c = 0; c < 4; c++)
            for (size_t k = 0; k < 5; k++) {
                int per = (int)((caps[c] == 0 ? 3000 : 20000) * scale);
                if (per < 10) per = 10;
                run(b, caps[c], shapes[k][0], shapes[k][1], per);
            }
    }
    return t_finish("test_chan_mpmc");
}
