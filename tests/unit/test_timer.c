/* Timers, tickers and cp_sleep on every backend (core/timer.c): never early,
 * Stop/Reset leave no stale tick (Go 1.23), a slow ticker receiver holds one
 * pending tick and later ones are dropped, a timer is a select case, and a
 * sleep ends at once on a cancel. Tick lateness at a 1 ms period is printed
 * (a figure, not a check). */
#include "../test.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

struct canceller { cp_ctx *c; unsigned ms; uint64_t at; };
static void *cancel_later(void *arg)
{
    struct canceller *k = arg;
    t_sleep_ms(k->ms);
    k->at = cp_now_ns();
    cp_ctx_cancel(k->c);
    return NULL;
}

static void t_timer(const cp_backend *b)
{
    uint64_t v, t0 = cp_now_ns();
    cp_ctx *guard = cp_ctx_with_timeout(b, NULL, 5000000000ull);   /* bounds a lost tick */

    /* fires once, never early, with its fire time */
    cp_timer *t = cp_timer_new(b, 5000000);
    CHECK(t && cp_timer_chan(t) && cp_chan_cap(cp_timer_chan(t)) == 1);
    CHECK_ST(cp_chan_recv(cp_timer_chan(t), &v, guard), CP_OK);
    CHECK(v >= t0 + 5000000 && cp_now_ns() >= t0 + 5000000);
    t_sleep_ms(10);
    CHECK_ST(cp_chan_try_recv(cp_timer_chan(t), &v), CP_WOULDBLOCK);   /* once */
    CHECK(!cp_timer_stop(t));                                           /* nothing pending */

    /* stop before the fire: true, and nothing ever arrives */
    CHECK(!cp_timer_reset(t, 3000000));
    CHECK(cp_timer_stop(t));
    t_sleep_ms(8);
    CHECK_ST(cp_chan_try_recv(cp_timer_chan(t), &v), CP_WOULDBLOCK);
    /* fired but not received: stop drains it (no stale tick) and says true */
    CHECK(!cp_timer_reset(t, 1000000));
    t_sleep_ms(10);
    CHECK(cp_timer_stop(t));
    CHECK_ST(cp_chan_try_recv(cp_timer_chan(t), &v), CP_WOULDBLOCK);
    /* reset of a delivered tick: the old one is gone, the new one comes later */
    CHECK(!cp_timer_reset(t, 1000000));
    t_sleep_ms(10);
    uint64_t r0 = cp_now_ns();
    CHECK(cp_timer_reset(t, 5000000));
    CHECK_ST(cp_chan_recv(cp_timer_chan(t), &v, guard), CP_OK);
    CHECK(v >= r0 + 5000000);
    cp_timer_free(t);

    /* a timer as a select case: the timeout wins over a silent channel */
    cp_chan *quiet = cp_chan_new(b, sizeof(uint64_t), 0);
    t = cp_timer_new(b, 3000000);
    uint64_t x;
    cp_case cs[2] = { { .op = CP_RECV, .ch = quiet, .elem = &x }, { .op = CP_RECV, .ch = cp_timer_chan(t), .elem = &v } };
    cp_status st;
    CHECK_EQ(cp_select(cs, 2, guard, &st), 1);
    CHECK_ST(st, CP_OK);
    cp_timer_free(t);
    cp_chan_free(quiet);
    CHECK(cp_ticker_new(b, 0) == NULL);
    cp_timer_free(NULL);
    CHECK(!cp_timer_stop(NULL));

    /* ticker: on its grid, never early; lateness at 1 ms printed */
    enum { N = 200 };
    uint64_t late[N];
    uint64_t s0 = cp_now_ns();
    cp_timer *tk = cp_ticker_new(b, 1000000);
    uint64_t prev = 0;
    int early = 0, backwards = 0;
    for (int i = 0; i < N; i++) {
        CHECK_ST(cp_chan_recv(cp_timer_chan(tk), &v, guard), CP_OK);
        early += v < s0 + 1000000;
        backwards += v <= prev;
        prev = v;
        uint64_t k = (v - s0) / 1000000;    /* the grid point it fired for */
        late[i] = v - s0 - k * 1000000;
    }
    CHECK_EQ(early, 0);
    CHECK_EQ(backwards, 0);
    qsort(late, N, sizeof late[0], cmp_u64);
    printf("  [%s] ticker 1 ms: lateness p50 %.1f us, p99 %.1f us, max %.1f us (%d ticks)\n", cp_backend_name(b),
           (double)late[N / 2] / 1e3, (double)late[N * 99 / 100] / 1e3, (double)late[N - 1] / 1e3, N);
    /* a slow receiver: after 20 periods one tick is pending, the first one
     * that found the channel empty; the later ones were dropped, not queued:
     * whatever comes next is a fresh tick, not the backlog */
    uint64_t slept = cp_now_ns();
    t_sleep_ms(20);
    uint64_t woke = cp_now_ns();
    CHECK_ST(cp_chan_try_recv(cp_timer_chan(tk), &v), CP_OK);
    CHECK(v < slept + 3000000);
    uint64_t v2 = 0;
    cp_status st2 = cp_chan_try_recv(cp_timer_chan(tk), &v2);
    CHECK(st2 == CP_WOULDBLOCK || v2 + 2000000 >= woke);
    /* stop: no tick after it returns; reset restarts it with a new period */
    cp_timer_stop(tk);
    t_sleep_ms(5);
    CHECK_ST(cp_chan_try_recv(cp_timer_chan(tk), &v), CP_WOULDBLOCK);
    uint64_t q0 = cp_now_ns();
    CHECK(!cp_timer_reset(tk, 2000000));
    CHECK_ST(cp_chan_recv(cp_timer_chan(tk), &v, guard), CP_OK);
    CHECK(v >= q0 + 2000000);
    CHECK_ST(cp_chan_recv(cp_timer_chan(tk), &v, guard), CP_OK);
    CHECK(v >= q0 + 4000000);
    cp_timer_free(tk);

    /* many timers at once (the heap): each fires once, never before its
     * own deadline, and a timer whose deadline is later by more than the
     * time it took to create them all fires no earlier */
    cp_timer *many[16];
    uint64_t due[16], fired[16];
    for (int i = 0; i < 16; i++) {
        due[i] = cp_now_ns() + (uint64_t)(16 - i) * 1000000;
        many[i] = cp_timer_new(b, (uint64_t)(16 - i) * 1000000);
    }
    uint64_t spread = cp_now_ns() + 16000000 - due[0];
    for (int i = 0; i < 16; i++) CHECK_ST(cp_chan_recv(cp_timer_chan(many[i]), &fired[i], guard), CP_OK);
    int soon = 0, order = 1;
    for (int i = 0; i < 16; i++) {
        soon += fired[i] < due[i];
        for (int j = 0; j < 16; j++)
            if (due[j] > due[i] + spread && fired[j] < fired[i]) order = 0;
    }
    CHECK_EQ(soon, 0);
    CHECK(order);
    for (int i = 0; i < 16; i++) cp_timer_free(many[i]);

    /* cp_sleep: the time, a ctx's deadline, an ended ctx, a cancel mid-sleep */
    uint64_t a = cp_now_ns();
    CHECK_ST(cp_sleep(3000000, NULL), CP_OK);
    CHECK(cp_now_ns() - a >= 3000000);
    a = cp_now_ns();
    CHECK_ST(cp_sleep(3000000, guard), CP_OK);
    CHECK(cp_now_ns() - a >= 3000000);
    cp_ctx *dl = cp_ctx_with_timeout(b, NULL, 2000000);
    CHECK_ST(cp_sleep(1000000000, dl), CP_DEADLINE);
    CHECK_ST(cp_sleep(1, dl), CP_DEADLINE);
    cp_ctx_free(dl);
    cp_ctx *c = cp_ctx_with_cancel(b, guard);
    struct canceller k = { .c = c, .ms = 10 };
    pthread_t th = t_spawn(cancel_later, &k);
    CHECK_ST(cp_sleep(3000000000ull, c), CP_CANCELED);
    uint64_t lat = cp_now_ns() - k.at;
    t_join(th, 5000, "canceller");
    CHECK(lat < 100000000);
    printf("  [%s] cancel -> cp_sleep returned in %.1f us\n", cp_backend_name(b), (double)lat / 1e3);
    cp_ctx_free(c);
    cp_ctx_free(guard);
}

int main(void)
{
    FOR_EACH_BACKEND(b) t_timer(b);
    return t_finish("test_timer");
}
