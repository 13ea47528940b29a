/*
 * cp_fd_wait: wait until an fd is ready, or the ctx ends.
 *
 * The thread sleeps in ppoll(2) on two fds: the caller's, and an eventfd of
 * its own registered on the ctx's done list; the ctx's cancel (a wake-list
 * callback, run under the list's lock) writes the eventfd, so a cancel wakes
 * the poll at once, and a deadline is ppoll's timeout. No timer thread, and
 * the same for every family: fd readiness is the kernel's, so even the
 * lockfree family, which never parks in the kernel for its own objects,
 * parks here. An eventfd per blocking call costs two syscalls (about 1 us),
 * small beside the I/O it waits for.
 *
 * Before it sleeps, a wait polls without sleeping for up to CP_YIELD_NS,
 * as a channel waiter spins before it parks: a loopback peer answers in a
 * few us, and a ppoll sleeper's wake-up costs 25-50 us on these VMs (a
 * halted vCPU). With a spinner slot only (cp_spin_begin), and skipped by a
 * thread whose recent fd spins ran out (cp_spin_skip), so that threads
 * that outnumber the cores do not burn the CPU their peers need.
 * contextio_net, `cpbench ab`, 10 rounds: T=1 4.7-5.5x round trips/s (and
 * 3.1-3.6x per CPU-second) on every family; T=4 0.90-1.02x ~.
 *
 * Invariant: the wake node is on the ctx's list only between
 * cp_wlist_add and cp_wlist_del, both on this thread's stack frame, so the
 * callback never writes an eventfd that has been closed.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* This thread's fd spins in a row that ran out (cp_spin_skip). */
static _Thread_local unsigned fd_misses;

static void wake_fd(cp_wnode *n)
{
    uint64_t one = 1;
    /* a full counter (never here: one write per wait) would only mean "already woken" */
    ssize_t r = write((int)(intptr_t)n->arg, &one, sizeof one);
    (void)r;
}

static short poll_events(int events)
{
    return (short)((events & CP_FD_READ ? POLLIN : 0) | (events & CP_FD_WRITE ? POLLOUT : 0));
}

cp_status cp_fd_wait(int fd, int events, cp_ctx *ctx)
{
    if (fd < 0 || !events || (events & ~(CP_FD_READ | CP_FD_WRITE))) return CP_EINVAL;
    struct pollfd p[2] = { { .fd = fd, .events = poll_events(events) }, { .fd = -1 } };
    /* Ready already (the common case for a busy socket), or soon: unless
     * this thread's recent fd spins ran out (cp_spin_skip), and while a
     * spinner slot is free, poll without sleeping for up to CP_YIELD_NS,
     * watching the ctx. */
    bool spin = false;
    uint64_t t0 = 0;
    cp_status st = CP_OK;
    for (unsigned n = 0;; n++) {
        int k = poll(p, 1, 0);
        if (k > 0) {
            st = p[0].revents & POLLNVAL ? CP_EINVAL : CP_OK;
            break;
        }
        if (k < 0 && errno != EINTR) cp_die("poll: %s", strerror(errno));
        if (k < 0) continue;
        if (n == 0) {
            if (cp_spin_skip(&fd_misses) || !(spin = cp_spin_begin())) break;
            t0 = cp_now_ns();
        } else if (cp_now_ns() - t0 >= CP_YIELD_NS) {
            break;
        }
        if ((st = cp_ctx_err(ctx))) break;
    }
    if (spin) {
        cp_spin_end();
        fd_misses = p[0].revents ? 0 : fd_misses + 1;
    }
    if (st || p[0].revents) return st;
    if ((st = cp_ctx_err(ctx))) return st;

    int efd = -1;
    cp_wnode node = { .fn = wake_fd };
    if (ctx) {
        efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0) cp_die("eventfd: %s", strerror(errno));
        node.arg = (void *)(intptr_t)efd;
        if (!cp_wlist_add(&ctx->done.wl, &node)) {     /* cancelled in between */
            close(efd);
            return cp__ctx_reason(ctx);
        }
        p[1] = (struct pollfd){ .fd = efd, .events = POLLIN };
    }
    uint64_t dl = cp_ctx_deadline(ctx);
    for (;;) {
        struct timespec ts, *tp = NULL;
        if (dl) {
            uint64_t now = cp_now_ns();
            if (now >= dl) {
                st = cp_ctx_err(ctx);       /* CP_DEADLINE: never reported early */
                break;
            }
            ts = cp__ts(dl - now);
            tp = &ts;
        }
        int k = ppoll(p, ctx ? 2 : 1, tp, NULL);
        if (k < 0) {
            if (errno == EINTR) continue;
            cp_die("ppoll: %s", strerror(errno));
        }
        if (k > 0 && p[0].revents) {
            st = p[0].revents & POLLNVAL ? CP_EINVAL : CP_OK;
            break;
        }
        if (k > 0 && p[1].revents) {
            st = cp__ctx_reason(ctx);
            break;
        }
        /* k == 0: the timeout; the loop re-reads the clock */
    }
    if (ctx) {
        cp_wlist_del(&node);
        close(efd);
    }
    return st;
}
