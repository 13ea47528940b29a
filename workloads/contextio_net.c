/*
 * contextio_net: TCP echo over loopback with context-aware Read and Write,
 * the way a net.Conn honours deadlines: every socket is non-blocking, and a
 * read or write that would block waits in cp_fd_wait(fd, CP_FD_READ or
 * CP_FD_WRITE, ctx), which returns when the fd is ready, the ctx is
 * cancelled, or its deadline passes. The seeds' orchestration_contextio_net
 * ("Minimal TCP echo with context-aware Read/Write via deadlines; shows
 * success then a timed-out read").
 *
 * A listener on 127.0.0.1, port 0 (an ephemeral port; real sockets, no
 * mocks); --threads clients, each with its own connection and an echo
 * handler thread on the server side. Phase 1: each client sends --payload
 * byte messages and reads each echo back (count mode: --items round trips
 * over all clients; time mode: until --duration ends), each round trip under
 * a ctx with a 5 s deadline. Phase 2: each client reads once more, under a ctx
 * whose deadline is --set deadline_ms=D away, from the peer that has nothing
 * to send: the read must end with CP_DEADLINE. Then the clients close their
 * connections, the handlers see EOF, the last client cancels the server's
 * ctx (which also wakes a handler still waiting in accept), and the listener
 * is closed.
 *
 * One op: one round trip. Latency: its RTT (write start -> echo fully read,
 * sampled 1 in --lat-sample).
 *
 * Invariants, checked on every run:
 *   - every echo is byte for byte the message sent; count mode: exactly
 *     --items round trips;
 *   - no read or write fails or times out in phase 1;
 *   - phase 2: the read returns CP_DEADLINE (not data, EOF or a cancel),
 *     never before the deadline, and at most 1 s after it (the overshoot is
 *     a metric);
 *   - every socket opened (listener, clients, accepted) is closed on every
 *     exit path, error paths included: the count of open sockets is 0 at the
 *     end, so the port is released;
 *   - every loop is bounded: by a ctx deadline or by the server's cancel
 *     (plus the ctx checked on every pass, should poll and recv disagree);
 *   - every thread joined.
 * Metrics: deadline_overshoot_ns (the worst client's phase-2 return time
 * minus its deadline).
 * There is no seed variant: the seed catalogue hold no code for this example to
 * reproduce, and the playbooks have no networking snippet.
 */
#define _GNU_SOURCE     /* accept4 */
#include "runtime/workload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { P_DEADLINE_MS, P_COUNT };
enum { M_OVERSHOOT };
static const wl_param contextio_net_params[] = {
    [P_DEADLINE_MS] = { "deadline_ms", 20, "phase 2: the read's deadline, in ms (the peer never answers)", 5 },
    { NULL, 0, NULL },
};
WL_PARAMS_CHECK(contextio_net_params, P_COUNT);

#define OP_BOUND_NS 5000000000ull
#define OVERSHOOT_BOUND_NS 1000000000ull

struct net_state {
    wl_run *r;
    int lfd;
    struct sockaddr_in addr;
    cp_ctx *srv;                    /* the server's ctx: cancelled when the last client is done */
    int clients;
    size_t payload;
    uint64_t deadline_ns;
    wl_group live_clients;
    _Atomic int64_t open_fds;
    _Atomic uint64_t round_trips, worst_overshoot;
    _Atomic int nfail;
    char fail[400];                 /* written by the first to fail only */
};

static void note(struct net_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct net_state *s, const char *fmt, ...)
{
    if (atomic_fetch_add(&s->nfail, 1)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail, sizeof s->fail, fmt, ap);
    va_end(ap);
}

/* ---- sockets, counted so that a leak shows ---- */
static int net_socket(struct net_state *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) atomic_fetch_add(&s->open_fds, 1);
    return fd;
}

static void net_close(struct net_state *s, int *fd)
{
    if (*fd < 0) return;
    close(*fd);
    *fd = -1;
    atomic_fetch_sub(&s->open_fds, 1);
}

static void nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- context-aware I/O: the ctx bounds every wait ---- */
/* Read up to len bytes (at least 1): CP_OK with *got > 0, CP_CLOSED at EOF,
 * the ctx's reason, or CP_EINVAL on a socket error (errno kept). */
static cp_status ctx_read(int fd, void *buf, size_t len, size_t *got, cp_ctx *ctx)
{
    for (;;) {
        cp_status st = cp_ctx_err(ctx);
        if (st != CP_OK) return st;
        ssize_t n = recv(fd, buf, len, 0);
        if (n > 0) { *got = (size_t)n; return CP_OK; }
        if (n == 0) return CP_CLOSED;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return CP_EINVAL;
        if ((st = cp_fd_wait(fd, CP_FD_READ, ctx)) != CP_OK) return st;
    }
}

static cp_status ctx_read_full(int fd, unsigned char *buf, size_t len, cp_ctx *ctx)
{
    for (size_t off = 0, got; off < len; off += got) {
        cp_status st = ctx_read(fd, buf + off, len - off, &got, ctx);
        if (st != CP_OK) return st;
    }
    return CP_OK;
}

static cp_status ctx_write_all(int fd, const unsigned char *buf, size_t len, cp_ctx *ctx)
{
    size_t off = 0;
    while (off < len) {
        cp_status st = cp_ctx_err(ctx);
        if (st != CP_OK) return st;
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) { off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return CP_EINVAL;
        if ((st = cp_fd_wait(fd, CP_FD_WRITE, ctx)) != CP_OK) return st;
    }
    return CP_OK;
}

static const char *why(cp_status st, int err)
{
    return st == CP_EINVAL ? strerror(err) : cp_status_str(st);
}

/* ---- the server side: one echo handler per connection ---- */
static void *handler(wl_thread *self, void *arg)
{
    struct net_state *s = arg;
    int fd = -1;
    unsigned char buf[4096];
    wl_phase(self, "accept");
    for (;;) {
        fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) { atomic_fetch_add(&s->open_fds, 1); break; }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            note(s, "accept: %s", strerror(errno));
            break;
        }
        /* another handler may take it: wait again; the server's cancel ends this */
        if (cp_fd_wait(s->lfd, CP_FD_READ, s->srv) != CP_OK) break;
    }
    if (fd >= 0) {
        nodelay(fd);
        wl_phase(self, "echo");
        for (;;) {
            size_t got;
            cp_status st = ctx_read(fd, buf, sizeof buf, &got, s->srv);
            if (st == CP_CLOSED || st == CP_CANCELED) break;     /* the client is done */
            if (st != CP_OK) {
                note(s, "echo handler: read: %s", why(st, errno));
                break;
            }
            if ((st = ctx_write_all(fd, buf, got, s->srv)) != CP_OK) {
                if (st != CP_CANCELED) note(s, "echo handler: write: %s", why(st, errno));
                break;
            }
        }
    }
    net_close(s, &fd);
    wl_phase(self, "done");
    return NULL;
}

/* ---- a client ---- */
struct client_arg { struct net_state *s; int id; uint64_t share; };

static cp_status ctx_connect(struct net_state *s, int fd, cp_ctx *ctx)
{
    if (connect(fd, (const struct sockaddr *)&s->addr, sizeof s->addr) == 0) return CP_OK;
    if (errno != EINPROGRESS && errno != EINTR) return CP_EINVAL;
    cp_status st = cp_fd_wait(fd, CP_FD_WRITE, ctx);
    if (st != CP_OK) return st;
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
        errno = err ? err : errno;
        return CP_EINVAL;
    }
    return CP_OK;
}

static void fill_msg(unsigned char *m, size_t len, int id, uint64_t seq)
{
    uint64_t tag = (uint64_t)id << 40 | seq, x = wl_mix(tag);
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) x = wl_mix(x + i);
        m[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
}

static void client_phases(struct client_arg *a, wl_thread *self, int fd, unsigned char *msg, unsigned char *echo)
{
    struct net_state *s = a->s;
    wl_run *r = s->r;
    const cp_backend *b = r->cfg->b;
    const int64_t sample = r->cfg->lat_sample;
    int64_t until_sample = 0;
    uint64_t seq;

    cp_ctx *op = cp_ctx_with_timeout(b, NULL, OP_BOUND_NS);
    if (!op) { note(s, "client %d: out of memory", a->id); return; }
    wl_phase(self, "connect");
    cp_status st = ctx_connect(s, fd, op);
    int e = errno;
    cp_ctx_free(op);
    if (st != CP_OK) { note(s, "client %d: connect: %s", a->id, why(st, e)); return; }
    nodelay(fd);

    /* phase 1: echo round trips */
    for (seq = 0; wl_more(r, seq, a->share); seq++) {
        fill_msg(msg, s->payload, a->id, seq);
        if (!(op = cp_ctx_with_timeout(b, NULL, OP_BOUND_NS))) { note(s, "client %d: out of memory", a->id); break; }
        uint64_t t0 = wl_now();
        wl_phase(self, "write");
        st = ctx_write_all(fd, msg, s->payload, op);
        if (st != CP_OK) {
            e = errno;
            note(s, "client %d: round trip %llu: write: %s", a->id, (unsigned long long)seq, why(st, e));
            cp_ctx_free(op);
            break;
        }
        wl_phase(self, "read echo");
        st = ctx_read_full(fd, echo, s->payload, op);
        e = errno;
        cp_ctx_free(op);
        if (st != CP_OK) {
            note(s, "client %d: round trip %llu: read: %s", a->id, (unsigned long long)seq, why(st, e));
            break;
        }
        if (wl_sample(sample, &until_sample)) cp_hist_record(self->hist, wl_since(t0));
        if (memcmp(msg, echo, s->payload)) {
            note(s, "client %d: round trip %llu: the echo differs from the message", a->id, (unsigned long long)seq);
            break;
        }
    }
    self->ops = seq;
    atomic_fetch_add(&s->round_trips, seq);
    if (atomic_load(&s->nfail)) return;

    /* phase 2: a read with a deadline from a peer that has nothing to say */
    wl_phase(self, "read with deadline");
    uint64_t dl = cp_now_ns() + s->deadline_ns;
    cp_ctx *dctx = cp_ctx_with_deadline(b, NULL, dl);
    if (!dctx) { note(s, "client %d: out of memory", a->id); return; }
    size_t got = 0;
    st = ctx_read(fd, echo, s->payload, &got, dctx);
    uint64_t t = cp_now_ns();
    e = errno;
    cp_ctx_free(dctx);
    if (st != CP_DEADLINE) {
        note(s, "client %d: the read with a %.3f ms deadline returned %s%s", a->id, (double)s->deadline_ns / 1e6,
             why(st, e), st == CP_OK ? " (data from a peer that had nothing to send)" : ", not DEADLINE");
    } else if (t < dl) {
        note(s, "client %d: the read returned DEADLINE %.3f us before the deadline", a->id, (double)(dl - t) / 1e3);
    } else {
        uint64_t over = t - dl, w = atomic_load(&s->worst_overshoot);
        while (over > w && !atomic_compare_exchange_weak(&s->worst_overshoot, &w, over)) {}
        if (over > OVERSHOOT_BOUND_NS)
            note(s, "client %d: the read returned %.3f s after its deadline (bound 1 s)", a->id, (double)over / 1e9);
    }
}

static void *client(wl_thread *self, void *arg)
{
    struct client_arg *a = arg;
    struct net_state *s = a->s;
    unsigned char *msg = malloc(s->payload), *echo = malloc(s->payload);
    int fd = -1;
    if (!msg || !echo) note(s, "client %d: out of memory", a->id);
    else if ((fd = net_socket(s)) < 0) note(s, "client %d: socket: %s", a->id, strerror(errno));
    else client_phases(a, self, fd, msg, echo);
    wl_phase(self, "close");
    net_close(s, &fd);      /* the handler sees EOF */
    free(msg);
    free(echo);
    if (wl_group_leave(&s->live_clients)) cp_ctx_cancel(s->srv);
    wl_phase(self, "done");
    return NULL;
}

static int listen_loopback(struct net_state *s)
{
    s->lfd = net_socket(s);
    if (s->lfd < 0) return -1;
    s->addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof s->addr;
    if (bind(s->lfd, (struct sockaddr *)&s->addr, sizeof s->addr) ||
        getsockname(s->lfd, (struct sockaddr *)&s->addr, &l) || listen(s->lfd, s->clients + 8)) {
        fprintf(stderr, "contextio_net: listen on 127.0.0.1: %s\n", strerror(errno));
        net_close(s, &s->lfd);
        return -1;
    }
    return 0;
}

static int contextio_net_run(wl_run *r)
{
    const wl_cfg *c = r->cfg;
    struct net_state st = { .r = r, .lfd = -1 }, *s = &st;
    s->clients = (int)c->k.threads;
    s->payload = (size_t)c->k.payload;
    s->deadline_ns = (uint64_t)c->set[P_DEADLINE_MS] * 1000000u;
    wl_group_init(&s->live_clients, s->clients);
    struct client_arg *ca = calloc((size_t)s->clients, sizeof *ca);
    s->srv = cp_ctx_with_cancel(c->b, NULL);
    if (!ca || !s->srv || listen_loopback(s)) {
        free(ca);
        cp_ctx_free(s->srv);
        return -1;
    }
    uint64_t items = (uint64_t)c->k.items;
    for (int i = 0; i < s->clients; i++) {
        ca[i] = (struct client_arg){ s, i, wl_share(items, s->clients, i) };
        wl_spawn(r, "handler", handler, s);
    }
    for (int i = 0; i < s->clients; i++) wl_spawn(r, "client", client, &ca[i]);
    wl_start_and_join(r);
    net_close(s, &s->lfd);      /* the port is released */

    if (atomic_load(&s->nfail))
        wl_fail(r, "%s%s", s->fail, atomic_load(&s->nfail) > 1 ? " (and more)" : "");
    int64_t open = atomic_load(&s->open_fds);
    if (open) wl_fail(r, "%lld sockets left open after the run", (long long)open);
    uint64_t rt = atomic_load(&s->round_trips);
    if (c->duration <= 0 && !wl_stopped(r) && !atomic_load(&s->nfail) && rt != items)
        wl_fail(r, "%llu round trips, expected %llu", (unsigned long long)rt, (unsigned long long)items);
    wl_metric(r, M_OVERSHOOT, (double)atomic_load(&s->worst_overshoot));
    r->ops = rt;
    cp_ctx_free(s->srv);
    free(ca);
    return 0;
}

static const char *contextio_net_check(const wl_cfg *c)
{
    if (c->set[P_DEADLINE_MS] > 60000) return "--set deadline_ms: at most 60000";
    return NULL;
}

WL_DEFINE(contextio_net) = {
    .name = "contextio_net",
    .group = "orchestration",
    .desc = "TCP echo on 127.0.0.1 with ctx-aware reads/writes (cp_fd_wait), then a read that must time out",
    .op = "round trip",
    .latency = "RTT: write start -> echo fully read",
    .defaults = { .threads = 1, .producers = WL_UNUSED, .consumers = WL_UNUSED, .capacity = WL_UNUSED,
                  .payload = 64, .work_ns = WL_UNUSED, .items = 5000 },
    .params = contextio_net_params,
    .run = contextio_net_run,
    .check = contextio_net_check,
    .seed_key = "orchestration_contextio_net",
    .metrics = (const wl_metric_def[]){
        { "deadline_overshoot_ns", "ns", "worst phase-2 read return minus its deadline" },
        { NULL, NULL, NULL },
    },
};
