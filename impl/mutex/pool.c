/*
 * mutex family: cp_pool is impl/pool.h with a pthread mutex (glibc adaptive)
 * guarding each pool's shared stack and the registry of thread caches.
 *
 * Invariant (see impl/pool.h): an object is held by one caller, or cached in
 * one thread's slot, or on its pool's shared stack, never two of these; the
 * shared stack changes only under the pool's mutex.
 */
#include "../../core/internal.h"
#include "waiter.h"

#define PL_FAM mutex
#define PL_LOCK_T pthread_mutex_t
#define PL_LOCK_STATIC_INIT PTHREAD_MUTEX_INITIALIZER
#define PL_LOCK_INIT(l) cp_mutex__lock_init(l)
#define PL_LOCK_FINI(l) cp_check(pthread_mutex_destroy(l) == 0)
#define PL_LOCK(l) cp_check(pthread_mutex_lock(l) == 0)
#define PL_UNLOCK(l) cp_check(pthread_mutex_unlock(l) == 0)
#include "../pool.h"
