/* Channel semantics, the same body on every backend (Go's chan semantics). */
#include "../test.h"

#include <errno.h>
#include <stdint.h>

#define MS 1000000ull

static void t_buffered(const cp_backend *b)
{
    cp_chan *ch = cp_chan_new(b, sizeof(int), 3);
    CHECK(ch != NULL);
    CHECK_EQ(cp_chan_cap(ch), 3);
    CHECK_EQ(cp_chan_len(ch), 0);
    int v;
    CHECK_ST(cp_chan_try_recv(ch, &v), CP_WOULDBLOCK);
    for (int i = 1; i <= 3; i++) CHECK_ST(cp_chan_send(ch, &i, NULL), CP_OK);
    CHECK_EQ(cp_chan_len(ch), 3);
    int x = 99;
    CHECK_ST(cp_chan_try_send(ch, &x), CP_WOULDBLOCK);
    for (int i = 1; i <= 3; i++) {
        v = 0;
        CHECK_ST(cp_chan_recv(ch, &v, NULL), CP_OK);
        CHECK_EQ(v, i); /* FIFO */
    }
    CHECK_EQ(cp_chan_len(ch), 0);
    /* wrap around many times, interleaved */
    for (int i = 0; i < 1000; i++) {
        CHECK_ST(cp_chan_try_send(ch, &i), CP_OK);
        if (i % 2) {
            CHECK_ST(cp_chan_try_recv(ch, &v), CP_OK);
            CHECK_ST(cp_chan_try_recv(ch, &v), CP_OK);
            CHECK_EQ(v, i);
        }
    }
    cp_chan_free(ch);

    /* capacity 1 and odd element sizes */
    struct big { char s[37]; } in = { "hello" }, out;
    ch = cp_chan_new(b, sizeof in, 1);
    CHECK_ST(cp_chan_try_send(ch, &in), CP_OK);
    CHECK_ST(cp_chan_try_send(ch, &in), CP_WOULDBLOCK);
    CHECK_EQ(cp_chan_len(ch), 1);
    CHECK_ST(cp_chan_try_recv(ch, &out), CP_OK);
    CHECK(!memcmp(&in, &out, sizeof in));
    cp_chan_free(ch);
}

static void t_close_drain(const cp_backend *b)
{
    cp_chan *ch = cp_chan_new(b, sizeof(int), 4);
    int v = 7;
    CHECK_ST(cp_chan_send(ch, &v, NULL), CP_OK);
    v = 8;
    CHECK_ST(cp_chan_send(ch, &v, NULL), CP_OK);
    CHECK_ST(cp_chan_close(ch), CP_OK);
    CHECK_ST(cp_chan_close(ch), CP_CLOSED);
    CHECK_ST(cp_chan_send(ch, &v, NULL), CP_CLOSED);
    CHECK_ST(cp_chan_try_send(ch, &v), CP_CLOSED);
    CHECK_ST(cp_chan_recv(ch, &v, NULL), CP_OK);
    CHECK_EQ(v, 7);
    CHECK_ST(cp_chan_try_recv(ch, &v), CP_OK);
    CHECK_EQ(v, 8);
    CHECK_ST(cp_chan_recv(ch, &v, NULL), CP_CLOSED);
    CHECK_ST(cp_chan_try_recv(ch, &v), CP_CLOSED);
    cp_chan_free(ch);

    ch = cp_chan_new(b, sizeof(int), 0);
    CHECK_ST(cp_chan_close(ch), CP_OK);
    CHECK_ST(cp_chan_recv(ch, &v, NULL), CP_CLOSED);
    CHECK_ST(cp_chan_send(ch, &v, NULL), CP_CLOSED);
    CHECK_ST(cp_chan_close(ch), CP_CLOSED);
    cp_chan_free(ch);
}

struct op {
    cp_chan *ch;
    cp_ctx *ctx;
    int val;
    cp_status st;
    uint64_t ended;
    atomic_int started;     /* set just before the op's call */
};
static void *do_recv(void *p)
{
    struct op *o = p;
    atomic_store(&o->started, 1);
    o->st = cp_chan_recv(o->ch, &o->val, o->ctx);
    o->ended = cp_now_ns();
    return NULL;
}
static void *do_send(void *p)
{
    struct op *o = p;
    atomic_store(&o->started, 1);
    o->st = cp_chan_send(o->ch, &o->val, o->ctx);
    o->ended = cp_now_ns();
    return NULL;
}

static void t_rendezvous(const cp_backend *b)
{
    cp_chan *ch = cp_chan_new(b, sizeof(int), 0);
    CHECK_EQ(cp_chan_cap(ch), 0);
    int v = 5;
    CHECK_ST(cp_chan_try_send(ch, &v), CP_WOULDBLOCK); /* no receiver */
    CHECK_ST(cp_chan_try_recv(ch, &v), CP_WOULDBLOCK); /* no sender */

    /* send blocks until a receiver takes the item */
    struct op s = { .ch = ch, .val = 42 };
    pthread_t t = t_spawn(do_send, &s);
    t_sleep_ms(20);
    int got = 0;
    CHECK_ST(cp_chan_recv(ch, &got, NULL), CP_OK);
    CHECK_EQ(got, 42);
    t_join(t, 5000, "rendezvous send");
    CHECK_ST(s.st, CP_OK);

    /* try_send succeeds once a receiver is blocked (API.md note) */
    struct op r = { .ch = ch };
    t = t_spawn(do_recv, &r);
    v = 77;
    uint64_t until = cp_now_ns() + 5000 * MS;
    cp_status st;
    while ((st = cp_chan_try_send(ch, &v)) == CP_WOULDBLOCK && cp_now_ns() < until) sched_yield();
    CHECK_ST(st, CP_OK);
    t_join(t, 5000, "rendezvous recv");
    CHECK_ST(r.st, CP_OK);
    CHECK_EQ(r.val, 77);
    cp_chan_free(ch);
}

/* A blocked sender's or receiver's item of any size arrives whole and
 * alone: gochan.h keeps an item of up to GC_INLINE (16) bytes in the
 * waiter's own line and copies it in or out; larger ones stay in place.
 * Sizes on both sides of that limit, rendezvous and a full buffer of one. */
struct bop {
    cp_chan *ch;
    unsigned char buf[64];
    cp_status st;
};
static void *do_recv_buf(void *p)
{
    struct bop *o = p;
    o->st = cp_chan_recv(o->ch, o->buf, NULL);
    return NULL;
}
static void *do_send_buf(void *p)
{
    struct bop *o = p;
    o->st = cp_chan_send(o->ch, o->buf, NULL);
    return NULL;
}
static void t_item_sizes(const cp_backend *b)
{
    const size_t sizes[] = { 1, 8, 15, 16, 17, 40 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        for (size_t cap = 0; cap <= 1; cap++) {
            cp_chan *ch = cp_chan_new(b, n, cap);
            unsigned char first[64], got[64];
            memset(first, 0x11, sizeof first);
            if (cap) CHECK_ST(cp_chan_try_send(ch, first), CP_OK);   /* full: the next sender waits */

            /* a blocked sender (by then queued: the receive below finds it) */
            struct bop s = { .ch = ch };
            for (size_t i = 0; i < n; i++) s.buf[i] = (unsigned char)(0x40 + i);
            pthread_t t = t_spawn(do_send_buf, &s);
            t_sleep_ms(10);
            if (cap) {
                memset(got, 0, sizeof got);
                CHECK_ST(cp_chan_recv(ch, got, NULL), CP_OK);
                CHECK(!memcmp(got, first, n));
            }
            memset(got, 0xee, sizeof got);
            CHECK_ST(cp_chan_recv(ch, got, NULL), CP_OK);
            t_join(t, 5000, "sized send");
            CHECK_ST(s.st, CP_OK);
            if (memcmp(got, s.buf, n) || got[n] != 0xee)
                fprintf(stderr, "[%s] elem %zu cap %zu: a blocked sender's item arrived wrong\n",
                        t_where, n, cap), t_fail++;

            /* a blocked receiver: the item, and nothing past it, lands in its buffer */
            struct bop r = { .ch = ch };
            memset(r.buf, 0xee, sizeof r.buf);
            t = t_spawn(do_recv_buf, &r);
            unsigned char item[64];
            for (size_t i = 0; i < n; i++) item[i] = (unsigned char)(0x80 + i);
            uint64_t until = cp_now_ns() + 5000 * MS;
            cp_status st;
            while ((st = cp_chan_try_send(ch, item)) == CP_WOULDBLOCK && cp_now_ns() < until) sched_yield();
            CHECK_ST(st, CP_OK);
            t_join(t, 5000, "sized recv");
            CHECK_ST(r.st, CP_OK);
            if (memcmp(r.buf, item, n) || r.buf[n] != 0xee)
                fprintf(stderr, "[%s] elem %zu cap %zu: a blocked receiver's item arrived wrong\n",
                        t_where, n, cap), t_fail++;

            /* a blocked receiver woken by close: CP_CLOSED, its buffer untouched */
            memset(r.buf, 0xee, sizeof r.buf);
            t = t_spawn(do_recv_buf, &r);
            t_sleep_ms(10);
            CHECK_ST(cp_chan_close(ch), CP_OK);
            t_join(t, 5000, "sized recv at close");
            CHECK_ST(r.st, CP_CLOSED);
            for (size_t i = 0; i < sizeof r.buf; i++)
                if (r.buf[i] != 0xee) {
                    fprintf(stderr, "[%s] elem %zu cap %zu: close wrote into a receiver's buffer\n",
                            t_where, n, cap);
                    t_fail++;
                    break;
                }
            cp_chan_free(ch);
        }
    }
}

/* close wakes every blocked receiver and sender */
static void t_close_wakes(const cp_backend *b, size_t cap)
{
    enum { N = 4 };
    cp_chan *ch = cp_chan_new(b, sizeof(int), cap);
    struct op rs[N];
    pthread_t ts[N];
    for (int i = 0; i < N; i++) {
        rs[i] = (struct op){ .ch = ch };
        ts[i] = t_spawn(do_recv, &rs[i]);
    }
    t_sleep_ms(20);
    uint64_t t0 = cp_now_ns(), last = t0;
    CHECK_ST(cp_chan_close(ch), CP_OK);
    for (int i = 0; i < N; i++) {
        t_join(ts[i], 5000, "receiver blocked across close");
        CHECK_ST(rs[i].st, CP_CLOSED);
        if (rs[i].ended > last) last = rs[i].ended;
    }
    printf("[%s] cap=%zu: %d blocked receivers all returned %.1f us after close (informational)\n", t_where,
           cap, N, (double)(last - t0) / 1e3);
    cp_chan_free(ch);

    /* senders blocked on a full (or rendezvous) channel */
    ch = cp_chan_new(b, sizeof(int), cap);
    int v = 1;
    for (size_t i = 0; i < cap; i++) CHECK_ST(cp_chan_send(ch, &v, NULL), CP_OK);
    for (int i = 0; i < N; i++) {
        rs[i] = (struct op){ .ch = ch, .val = 100 + i };
        ts[i] = t_spawn(do_send, &rs[i]);
    }
    t_sleep_ms(20);
    CHECK_ST(cp_chan_close(ch), CP_OK);
    for (int i = 0; i < N; i++) {
        t_join(ts[i], 5000, "sender blocked across close");
        CHECK_ST(rs[i].st, CP_CLOSED);
    }
    /* the buffered items are still delivered, the woken senders' are not */
    for (size_t i = 0; i < cap; i++) {
        CHECK_ST(cp_chan_recv(ch, &v, NULL), CP_OK);
        CHECK_EQ(v, 1);
    }
    CHECK_ST(cp_chan_recv(ch, &v, NULL), CP_CLOSED);
    cp_chan_free(ch);
}

/* A burst wakes every sleeper it is for: N receivers (senders) asleep on an
 * empty (full) channel, then N items (slots) made at once with try ops. The
 * futex family wakes one sleeper at a time and holds the next signals back
 * until the woken one runs, which must then pass the wake on while there is
 * more: without that, all but one would sleep on beside their items. */
static void t_wake_burst(const cp_backend *b)
{
    enum { N = 4 };
    struct op rs[N];
    pthread_t ts[N];
    for (int round = 0; round < 20; round++) {
        cp_chan *ch = cp_chan_new(b, sizeof(int), N);
        for (int i = 0; i < N; i++) {
            rs[i] = (struct op){ .ch = ch };
            ts[i] = t_spawn(do_recv, &rs[i]);
        }
        t_sleep_ms(round < 2 ? 20 : 2);     /* asleep, past any spin */
        for (int i = 0; i < N; i++) CHECK_ST(cp_chan_try_send(ch, &i), CP_OK);
        int seen = 0;
        for (int i = 0; i < N; i++) {
            t_join(ts[i], 5000, "receiver asleep beside an item of a burst");
            CHECK_ST(rs[i].st, CP_OK);
            seen |= 1 << rs[i].val;
        }
        CHECK_EQ(seen, (1 << N) - 1);

        /* senders asleep on a full channel, then N slots at once */
        int v = -1;
        for (int i = 0; i < N; i++) CHECK_ST(cp_chan_try_send(ch, &v), CP_OK);
        for (int i = 0; i < N; i++) {
            rs[i] = (struct op){ .ch = ch, .val = i };
            ts[i] = t_spawn(do_send, &rs[i]);
        }
        t_sleep_ms(round < 2 ? 20 : 2);
        for (int i = 0; i < N; i++) CHECK_ST(cp_chan_try_recv(ch, &v), CP_OK);
        for (int i = 0; i < N; i++) {
            t_join(ts[i], 5000, "sender asleep beside a slot of a burst");
            CHECK_ST(rs[i].st, CP_OK);
        }
        CHECK_EQ(cp_chan_len(ch), N);
        cp_chan_free(ch);
    }
}

/* A rendezvous op that has only just blocked (the futex family's
 * hand-off slot, gochan.h: it waits a microsecond or so in the channel's
 * line before it queues) meets close, cancel or its partner at every
 * moment of that wait: each round starts the op, lets a random 0-4 us pass
 * from its call, then closes the channel, cancels the op's ctx, or races a
 * partner and a close. Whatever the moment, the op ends (t_join's limit catches one left
 * behind), with CP_CLOSED or CP_CANCELED when nobody took part, and a sent
 * item is received exactly when its send succeeded. */
static void spin_ns(uint64_t ns)
{
    uint64_t until = cp_now_ns() + ns;
    while (cp_now_ns() < until) {}
}
static void t_rendezvous_races(const cp_backend *b)
{
    unsigned seed = 12345;
    int rounds = 400, took = 0;
    for (int r = 0; r < rounds; r++) {
        int kind = r % 4;   /* 0 close a sender, 1 close a receiver, 2 cancel, 3 partner + close */
        cp_chan *ch = cp_chan_new(b, sizeof(int), 0);
        cp_ctx *ctx = kind == 2 ? cp_ctx_with_cancel(b, NULL) : NULL;
        struct op o = { .ch = ch, .ctx = ctx, .val = 1000 + r };
        bool send = kind != 1 && (kind != 2 || r % 8 < 4);
        pthread_t t = t_spawn(send ? do_send : do_recv, &o);
        while (!atomic_load(&o.started)) {}
        seed = seed * 1103515245u + 12345u;
        spin_ns((seed >> 8) % 4000);
        if (kind == 3) {
            int got = -1;
            cp_status rs = cp_chan_try_recv(ch, &got);
            CHECK_ST(cp_chan_close(ch), CP_OK);
            t_join(t, 5000, "sender racing a receiver and close");
            if (rs == CP_OK) {
                took++;
                CHECK_ST(o.st, CP_OK);
                CHECK_EQ(got, 1000 + r);
            } else {
                CHECK_ST(rs, CP_WOULDBLOCK);
                CHECK_ST(o.st, CP_CLOSED);
            }
        } else if (kind == 2) {
            cp_ctx_cancel(ctx);
            t_join(t, 5000, "op racing a cancel");
            CHECK_ST(o.st, CP_CANCELED);
        } else {
            CHECK_ST(cp_chan_close(ch), CP_OK);
            t_join(t, 5000, "op racing close");
            CHECK_ST(o.st, CP_CLOSED);
        }
        cp_ctx_free(ctx);
        cp_chan_free(ch);
    }
    printf("[%s] rendezvous races: %d rounds, %d sends taken by a racing receiver (informational)\n",
           t_where, rounds, took);
}

/* cancel and deadline wake a blocked send/recv promptly */
static void t_cancel_deadline(const cp_backend *b, size_t cap)
{
    cp_chan *ch = cp_chan_new(b, sizeof(int), cap);
    int v = 1;
    for (size_t i = 0; i < cap; i++) CHECK_ST(cp_chan_send(ch, &v, NULL), CP_OK); /* full */

    for (int side = 0; side < 2; side++) {
        cp_chan *empty = cp_chan_new(b, sizeof(int), cap);
        cp_ctx *ctx = cp_ctx_with_cancel(b, NULL);
        struct op o = { .ch = side ? ch : empty, .ctx = ctx };
        pthread_t t = t_spawn(side ? do_send : do_recv, &o);
        t_sleep_ms(20);
        uint64_t t0 = cp_now_ns();
        cp_ctx_cancel(ctx);
        t_join(t, 5000, side ? "send across cancel" : "recv across cancel");
        CHECK_ST(o.st, CP_CANCELED);
        /* "promptly": a generous bound that only a lost wake-up misses */
        CHECK(o.ended - t0 < 1000 * MS);
        printf("[%s] cap=%zu: blocked %s returned %.1f us after cancel (informational)\n", t_where, cap,
               side ? "send" : "recv", (double)(o.ended - t0) / 1e3);
        cp_ctx_free(ctx);

        /* deadline: never early, and not much late */
        ctx = cp_ctx_with_timeout(b, NULL, 30 * MS);
        uint64_t dl = cp_ctx_deadline(ctx);
        o = (struct op){ .ch = side ? ch : empty, .ctx = ctx };
        t = t_spawn(side ? do_send : do_recv, &o);
        t_join(t, 5000, "op across deadline");
        CHECK_ST(o.st, CP_DEADLINE);
        CHECK(o.ended >= dl);
        CHECK(o.ended - dl < 1000 * MS);
        CHECK_ST(cp_ctx_err(ctx), CP_DEADLINE);
        cp_ctx_free(ctx);

        /* an already-cancelled ctx fails a blocking op at once, but not a ready one */
        ctx = cp_ctx_with_cancel(b, NULL);
        cp_ctx_cancel(ctx);
        if (side) CHECK_ST(cp_chan_send(ch, &v, ctx), CP_CANCELED);
        else CHECK_ST(cp_chan_recv(empty, &v, ctx), CP_CANCELED);
        cp_ctx_free(ctx);
        cp_chan_free(empty);
    }
    cp_chan_free(ch);
}

static void t_mismatch(const cp_backend *b)
{
    const cp_backend *other = cp_backend_at((size_t)(bi_of(b) + 1) % cp_backend_count());
    cp_chan *ch = cp_chan_new(b, sizeof(int), 2);
    cp_ctx *ctx = cp_ctx_with_cancel(other, NULL);
    int v = 0;
    CHECK_ST(cp_chan_send(ch, &v, ctx), CP_EINVAL);
    CHECK_ST(cp_chan_recv(ch, &v, ctx), CP_EINVAL);
    CHECK(cp_ctx_with_cancel(b, ctx) == NULL);
    cp_ctx_free(ctx);
    cp_chan_free(ch);
}

/* ---- sizes that do not fit: NULL with errno ENOMEM, never a wrapped size ----
 * Each pair's bytes (elem_size x capacity, plus each family's per-slot stamp
 * and header) overflow size_t or exceed PTRDIFF_MAX, the largest object C
 * and malloc allow. An element larger than that cannot exist, so a
 * rendezvous channel of it is refused too, although it buffers nothing.
 * (Only sizes that overflow: a size that fits but is merely too large for
 * this machine reaches malloc, and ASan would abort on it.) */
static void t_size_overflow(const cp_backend *b)
{
    static const struct { size_t elem, cap; } bad[] = {
        { 0xffffffffffffff37u, 1 },     /* mutex: hdr + cap * elem wrapped */
        { SIZE_MAX - 7, 1 },            /* ring: the stride wrapped to 0 (SIGFPE) */
        { SIZE_MAX, 4 },                /* a channel came back; try_send copied -1 bytes */
        { SIZE_MAX, 1 },
        { SIZE_MAX - 64, 1 },
        { SIZE_MAX / 2 + 1, 2 },        /* the product wraps to 0 */
        { (size_t)1 << 62, 2 },         /* 2^63: fits size_t, not ptrdiff_t */
        { (size_t)PTRDIFF_MAX, 1 },
        { 8, SIZE_MAX },
        { 8, SIZE_MAX / 8 + 1 },        /* the product wraps to 8 */
        { 1, SIZE_MAX },
        { 1, (size_t)PTRDIFF_MAX },     /* plus the header: over PTRDIFF_MAX */
        { 24, SIZE_MAX / 3 },
        { SIZE_MAX, 0 },                /* capacity 0 with an element that cannot exist */
        { SIZE_MAX - 7, 0 },
        { (size_t)PTRDIFF_MAX + 1, 0 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        cp_chan *ch = cp_chan_new(b, bad[i].elem, bad[i].cap);
        if (ch) {
            fprintf(stderr, "[%s] cp_chan_new(%zu, %zu): a channel came back\n", t_where, bad[i].elem,
                    bad[i].cap);
            cp_chan_free(ch);
        }
        CHECK(ch == NULL);
        CHECK_EQ(errno, ENOMEM);
    }
    /* what fits still works: a large element, rendezvous and buffered */
    size_t big = (size_t)1 << 20;
    unsigned char *in = malloc(big), *out = malloc(big);
    memset(in, 0xa5, big);
    cp_chan *ch = cp_chan_new(b, big, 0);
    CHECK(ch != NULL);
    if (ch) CHECK_EQ(cp_chan_cap(ch), 0);
    cp_chan_free(ch);
    ch = cp_chan_new(b, big, 2);
    CHECK(ch != NULL);
    if (ch) {
        CHECK_ST(cp_chan_try_send(ch, in), CP_OK);
        memset(out, 0, big);
        CHECK_ST(cp_chan_try_recv(ch, out), CP_OK);
        CHECK(!memcmp(in, out, big));
    }
    cp_chan_free(ch);
    free(in);
    free(out);
    ch = cp_chan_new(b, 0, 4);  /* chan struct{} */
    CHECK(ch != NULL);
    if (ch) {
        char none = 0;
        CHECK_ST(cp_chan_try_send(ch, &none), CP_OK);
        CHECK_EQ(cp_chan_len(ch), 1);
    }
    cp_chan_free(ch);
}

int main(void)
{
    FOR_EACH_BACKEND(b)
    {
        t_buffered(b);
        t_close_drain(b);
        t_rendezvous(b);
        t_rendezvous_races(b);
        t_item_sizes(b);
        size_t caps[] = { 0, 1, 3 };
        for (size_t i = 0; i < 3; i++) {
            t_close_wakes(b, caps[i]);
            t_cancel_deadline(b, caps[i]);
        }
        t_wake_burst(b);
        t_mismatch(b);
        t_size_overflow(b);
    }
    return t_finish("test_chan");
}
