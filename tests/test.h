/*
 * A minimal table-driven test kit: every test body runs once per backend;
 * CHECK failures are counted and printed with the backend's name; threads are
 * joined with a bound so that a lost wake-up fails the test instead of
 * hanging it.
 */
#ifndef CP_TESTS_TEST_H
#define CP_TESTS_TEST_H

#define _GNU_SOURCE
#include <cp/cp.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int t_fail, t_checks;
static const char *t_where = "";

#define CHECK(c)                                                                   \
    do {                                                                           \
        t_checks++;                                                                \
        if (!(c)) {                                                                \
            fprintf(stderr, "%s:%d: [%s] check failed: %s\n", __FILE__, __LINE__,  \
                    t_where, #c);                                                  \
            t_fail++;                                                              \
        }                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                             \
    do {                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        t_checks++;                                                                \
        if (a_ != b_) {                                                            \
            fprintf(stderr, "%s:%d: [%s] %s == %s failed: %lld != %lld\n",         \
                    __FILE__, __LINE__, t_where, #a, #b, a_, b_);                  \
            t_fail++;                                                              \
        }                                                                          \
    } while (0)

#define CHECK_ST(expr, want)                                                       \
    do {                                                                           \
        cp_status s_ = (expr);                                                     \
        t_checks++;                                                                \
        if (s_ != (want)) {                                                        \
            fprintf(stderr, "%s:%d: [%s] %s returned %s, want %s\n", __FILE__,     \
                    __LINE__, t_where, #expr, cp_status_str(s_),                   \
                    cp_status_str(want));                                          \
            t_fail++;                                                              \
        }                                                                          \
    } while (0)

static inline void t_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Join or die: a thread that does not finish within limit_ms is a lost
 * wake-up or a deadlock; report it and exit rather than hang ctest. */
static inline void t_join(pthread_t t, unsigned limit_ms, const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += limit_ms / 1000;
    ts.tv_nsec += (long)(limit_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    if (pthread_timedjoin_np(t, NULL, &ts)) {
        fprintf(stderr, "[%s] %s: thread still blocked after %u ms (lost wake-up?)\n",
                t_where, what, limit_ms);
        exit(1);
    }
}

static inline pthread_t t_spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg)) { perror("pthread_create"); exit(1); }
    return t;
}

#define FOR_EACH_BACKEND(b)                                                        \
    for (size_t bi_ = 0; bi_ < cp_backend_count(); bi_++)                          \
        for (const cp_backend *b = cp_backend_at(bi_); b; b = NULL)                \
            for (int once_ = (t_where = cp_backend_name(b), 1); once_; once_ = 0)

static inline size_t bi_of(const cp_backend *b)
{
    for (size_t i = 0; i < cp_backend_count(); i++)
        if (cp_backend_at(i) == b) return i;
    return 0;
}

static inline int t_finish(const char *name)
{
    if (t_fail) {
        fprintf(stderr, "%s: %d of %d checks failed\n", name, t_fail, t_checks);
        return 1;
    }
    printf("%s: %d checks passed\n", name, t_checks);
    return 0;
}

#endif
