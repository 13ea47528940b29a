/*
 * mutex family: cp_rwlock is a pthread rwlock of glibc's writer-preferring
 * kind (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP): once a writer waits,
 * new readers queue behind it, as in sync.RWMutex, so a stream of readers
 * cannot starve writers. (The default kind prefers readers.) Non-recursive:
 * a reader that read-locks again while a writer waits deadlocks, as in Go.
 *
 * Invariant: either one writer or any number of readers hold rw; pthread
 * provides acquire on every lock and release on every unlock.
 */
#define _GNU_SOURCE
#include "adapter.h"

#include <errno.h>

struct cp_rwlock {
    const cp_backend *b;
    pthread_rwlock_t rw;
};

static pthread_rwlockattr_t wpref_attr;
static pthread_once_t wpref_once = PTHREAD_ONCE_INIT;
static void wpref_attr_init(void)
{
    cp_check(pthread_rwlockattr_init(&wpref_attr) == 0);
    cp_check(pthread_rwlockattr_setkind_np(&wpref_attr,
                                           PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) == 0);
}

cp_rwlock *cp_mutex_rwlock_new(const cp_backend *b)
{
    if (b != &cp_backend_mutex) { errno = EINVAL; return NULL; }
    cp_rwlock *l = cp__zalloc(sizeof *l);
    if (!l) return NULL;
    pthread_once(&wpref_once, wpref_attr_init);
    l->b = b;
    cp_check(pthread_rwlock_init(&l->rw, &wpref_attr) == 0);
    return l;
}

void cp_mutex_rwlock_free(cp_rwlock *l)
{
    if (!l) return;
    cp_check(pthread_rwlock_destroy(&l->rw) == 0);
    free(l);
}

void cp_mutex_rwlock_rlock(cp_rwlock *l) { cp_check(pthread_rwlock_rdlock(&l->rw) == 0); }
void cp_mutex_rwlock_runlock(cp_rwlock *l) { cp_check(pthread_rwlock_unlock(&l->rw) == 0); }
void cp_mutex_rwlock_wlock(cp_rwlock *l) { cp_check(pthread_rwlock_wrlock(&l->rw) == 0); }
void cp_mutex_rwlock_wunlock(cp_rwlock *l) { cp_check(pthread_rwlock_unlock(&l->rw) == 0); }
