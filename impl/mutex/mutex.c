/*
 * mutex family: cp_mutex is a plain pthread mutex of the default type (the
 * textbook lock, what a C programmer reaches for first; the channels' own
 * lock is the adaptive kind, see cp_mutex__lock_init). Not recursive, as
 * sync.Mutex. Unlike sync.Mutex, unlock must come from the locking thread
 * (POSIX leaves unlock by another thread undefined).
 *
 * Invariant: at most one thread holds mu; pthread provides acquire on lock
 * and release on unlock.
 */
#include "adapter.h"

#include <errno.h>

struct cp_mutex {
    const cp_backend *b;
    pthread_mutex_t mu;
};

cp_mutex *cp_mutex_mutex_new(const cp_backend *b)
{
    if (b != &cp_backend_mutex) { errno = EINVAL; return NULL; }
    cp_mutex *m = cp__zalloc(sizeof *m);
    if (!m) return NULL;
    m->b = b;
    cp_check(pthread_mutex_init(&m->mu, NULL) == 0);
    return m;
}

void cp_mutex_mutex_free(cp_mutex *m)
{
    if (!m) return;
    cp_check(pthread_mutex_destroy(&m->mu) == 0);
    free(m);
}

void cp_mutex_mutex_lock(cp_mutex *m) { cp_check(pthread_mutex_lock(&m->mu) == 0); }

bool cp_mutex_mutex_trylock(cp_mutex *m)
{
    int rc = pthread_mutex_trylock(&m->mu);
    if (rc == EBUSY) return false;
    if (rc) cp_die("pthread_mutex_trylock: %d", rc);
    return true;
}

void cp_mutex_mutex_unlock(cp_mutex *m) { cp_check(pthread_mutex_unlock(&m->mu) == 0); }
