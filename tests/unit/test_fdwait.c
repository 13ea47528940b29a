/* cp_fd_wait on every backend: ready at once, data that arrives later, a
 * deadline (never early, also one shorter than the wait's spin), a cancel that must wake the waiter promptly, a
 * hang-up, and bad arguments. */
#include "../test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

struct later { int fd; cp_ctx *cancel; unsigned ms; uint64_t at; };

static void *write_later(void *arg)
{
    struct later *l = arg;
    t_sleep_ms(l->ms);
    l->at = cp_now_ns();
    if (l->cancel) cp_ctx_cancel(l->cancel);
    else if (write(l->fd, "x", 1) != 1) abort();
    return NULL;
}

static void t_fdwait(const cp_backend *b)
{
    int p[2];
    CHECK(pipe(p) == 0);
    /* a pipe's write end is writable, its read end not readable */
    CHECK_ST(cp_fd_wait(p[1], CP_FD_WRITE, NULL), CP_OK);
    cp_ctx *c = cp_ctx_with_timeout(b, NULL, 20000000);
    uint64_t t0 = cp_now_ns();
    CHECK_ST(cp_fd_wait(p[0], CP_FD_READ, c), CP_DEADLINE);
    CHECK(cp_now_ns() - t0 >= 20000000);       /* never early */
    cp_ctx_free(c);
    /* deadlines that end within the wait's poll-without-sleeping phase
     * (CP_YIELD_NS), and enough waits in a row that run out for the thread
     * to skip that phase and probe it again (cp_spin_skip): each one
     * CP_DEADLINE, never early */
    for (uint64_t ns = 1000; ns <= 40000; ns += 1000) {
        c = cp_ctx_with_timeout(b, NULL, ns);
        uint64_t dl = cp_ctx_deadline(c);
        CHECK_ST(cp_fd_wait(p[0], CP_FD_READ, c), CP_DEADLINE);
        CHECK(cp_now_ns() >= dl);
        cp_ctx_free(c);
    }

    /* data written by another thread wakes it (the 2 s deadline only bounds
     * the test if the wake-up were lost) */
    c = cp_ctx_with_timeout(b, NULL, 2000000000);
    struct later l = { .fd = p[1], .ms = 10 };
    pthread_t t = t_spawn(write_later, &l);
    CHECK_ST(cp_fd_wait(p[0], CP_FD_READ, c), CP_OK);
    t_join(t, 5000, "writer");
    char ch;
    CHECK(read(p[0], &ch, 1) == 1);

    /* a cancel wakes it at once (a bound of 100 ms here; the figure is printed) */
    struct later k = { .cancel = c, .ms = 10 };
    t = t_spawn(write_later, &k);
    CHECK_ST(cp_fd_wait(p[0], CP_FD_READ, c), CP_CANCELED);
    uint64_t lat = cp_now_ns() - k.at;
    t_join(t, 5000, "canceller");
    CHECK(lat < 100000000);
    printf("  [%s] cancel -> cp_fd_wait returned in %.1f us\n", cp_backend_name(b), (double)lat / 1e3);
    /* an ended ctx: at once, even on a ready fd's wait that would block */
    CHECK_ST(cp_fd_wait(p[0], CP_FD_READ, c), CP_CANCELED);
    cp_ctx_free(c);
    /* a deadline inherited from the parent */
    cp_ctx *par = cp_ctx_with_timeout(b, NULL, 5000000), *ch2 = cp_ctx_with_cancel(b, par);
    CHECK_ST(cp_fd_wait(p[0], CP_FD_READ, ch2), CP_DEADLINE);
    cp_ctx_free(ch2);
    cp_ctx_free(par);

    /* a hang-up is ready: the next read reports it (0 bytes) */
    int s[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
    close(s[1]);
    c = cp_ctx_with_timeout(b, NULL, 1000000000);
    CHECK_ST(cp_fd_wait(s[0], CP_FD_READ, c), CP_OK);
    CHECK(read(s[0], &ch, 1) == 0);
    cp_ctx_free(c);
    close(s[0]);

    /* bad arguments */
    CHECK_ST(cp_fd_wait(-1, CP_FD_READ, NULL), CP_EINVAL);
    CHECK_ST(cp_fd_wait(p[0], 0, NULL), CP_EINVAL);
    CHECK_ST(cp_fd_wait(p[0], 4, NULL), CP_EINVAL);
    int dead = dup(p[0]);
    close(dead);
    CHECK_ST(cp_fd_wait(dead, CP_FD_READ, NULL), CP_EINVAL);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    FOR_EACH_BACKEND(b) t_fdwait(b);
    return t_finish("test_fdwait");
}
