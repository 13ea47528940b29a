/*
 * A C program using libcp on its own: a producer sends numbers through a
 * channel, a consumer sums them, and a ctx with a timeout bounds the run.
 *
 *   cmake --install build/release --prefix /tmp/cp
 *   cc -O2 examples/pipeline.c $(PKG_CONFIG_PATH=/tmp/cp/lib/pkgconfig pkg-config --cflags --libs cp)
 *   ./a.out futex
 */
#include <cp/cp.h>

#include <pthread.h>
#include <stdio.h>

struct job { cp_chan *ch; cp_ctx *ctx; };

static void *producer(void *arg)
{
    struct job *j = arg;
    for (long i = 1; i <= 100000; i++)
        if (cp_chan_send(j->ch, &i, j->ctx) != CP_OK) break;
    cp_chan_close(j->ch);       /* the receiver drains what is buffered */
    return NULL;
}

int main(int argc, char **argv)
{
    const cp_backend *b = cp_backend_find(argc > 1 ? argv[1] : "futex");
    if (!b) {
        fprintf(stderr, "unknown backend (try");
        for (size_t i = 0; i < cp_backend_count(); i++)
            fprintf(stderr, "%s %s", i ? "," : "", cp_backend_name(cp_backend_at(i)));
        fprintf(stderr, ")\n");
        return 2;
    }
    struct job j = {
        .ch = cp_chan_new(b, sizeof(long), 64),
        .ctx = cp_ctx_with_timeout(b, NULL, 5ull * 1000000000u),
    };
    if (!j.ch || !j.ctx) return 1;

    pthread_t t;
    pthread_create(&t, NULL, producer, &j);
    long v, sum = 0;
    cp_status st;
    while ((st = cp_chan_recv(j.ch, &v, j.ctx)) == CP_OK) sum += v;
    pthread_join(t, NULL);

    printf("%s: sum=%ld (%s), expected %ld\n", cp_backend_name(b), sum, cp_status_str(st),
           100000L * 100001L / 2);
    cp_ctx_free(j.ctx);
    cp_chan_free(j.ch);
    return st == CP_CLOSED && sum == 100000L * 100001L / 2 ? 0 : 1;
}
