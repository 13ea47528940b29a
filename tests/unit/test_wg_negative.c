/* Death tests: a negative WaitGroup counter aborts (Go panics with
 * "sync: negative WaitGroup counter"), and so does releasing more
 * semaphore permits than are held (Weighted panics). Each case runs in a
 * fork()ed child; the parent checks that it died by SIGABRT and, for the
 * WaitGroup, that it said why. */
#include "../test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

enum { WG_NEG, WG_DONE_TWICE, SEM_OVER, SEM_OVER_QUEUED };

static void child(const cp_backend *b, int what)
{
    switch (what) {
    case WG_NEG: {
        cp_wg *wg = cp_wg_new(b);
        cp_wg_add(wg, -1);
        break;
    }
    case WG_DONE_TWICE: {
        cp_wg *wg = cp_wg_new(b);
        cp_wg_add(wg, 1);
        cp_wg_done(wg);
        cp_wg_done(wg);
        break;
    }
    case SEM_OVER: {
        cp_sem *s = cp_sem_new(b, 4);
        cp_sem_try_acquire(s, 1);
        cp_sem_release(s, 2);
        break;
    }
    case SEM_OVER_QUEUED: {     /* the locked path too */
        cp_sem *s = cp_sem_new(b, 4);
        cp_sem_release(s, 1);
        break;
    }
    }
    _exit(0);   /* survived: the parent reports it */
}

static void expect_abort(const cp_backend *b, int what, const char *msg)
{
    int fds[2];
    if (pipe(fds)) { perror("pipe"); exit(1); }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        child(b, what);
    }
    close(fds[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(fds[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    if (msg) CHECK(strstr(buf, msg) != NULL);
}

int main(void)
{
    FOR_EACH_BACKEND(b) {
        expect_abort(b, WG_NEG, "libcp: negative WaitGroup counter");
        expect_abort(b, WG_DONE_TWICE, "libcp: negative WaitGroup counter");
        expect_abort(b, SEM_OVER, "released more than held");
        expect_abort(b, SEM_OVER_QUEUED, "released more than held");
    }
    return t_finish("test_wg_negative");
}
