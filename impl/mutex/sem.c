/*
 * mutex family: weighted semaphore (x/sync/semaphore.Weighted), semq.h under
 * a pthread mutex; every operation takes the mutex (as Weighted does), and a
 * waiter sleeps on its own condition variable (cp_mutex_w_park).
 *
 * Invariants: those of semq.h; here the word only ever changes under the
 * mutex, so its CASes never fail.
 */
#include "../../core/internal.h"
#include "waiter.h"

#define SQ_LOCK_T pthread_mutex_t
#define SQ_LOCK_INIT(l) cp_mutex__lock_init(l)
#define SQ_LOCK_FINI(l) cp_check(pthread_mutex_destroy(l) == 0)
#define SQ_LOCK(l) cp_check(pthread_mutex_lock(l) == 0)
#define SQ_UNLOCK(l) cp_check(pthread_mutex_unlock(l) == 0)
#define SQ_W_INIT cp_mutex_w_init
#define SQ_W_FINI cp_mutex_w_fini
#define SQ_W_CLAIM cp_mutex_w_claim
#define SQ_W_FINISH cp_mutex_w_finish
#define SQ_W_PARK cp_mutex_w_park
#include "../semq.h"

SQ_DEFINE_FAMILY(mutex, 0)
