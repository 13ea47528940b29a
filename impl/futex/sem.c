/*
 * futex family: weighted semaphore (x/sync/semaphore.Weighted), semq.h under
 * a futex mutex, waiters parked on their own state word (cp_futex_w_park:
 * brief spin, then FUTEX_WAIT with the ctx's deadline).
 *
 * Invariants: those of semq.h. Uncontended acquire and release are one CAS
 * on the word (cur << 1 | waiters); the lock is taken only when a request
 * does not fit or somebody waits.
 */
#include "futex.h"
#include "waiter.h"

#define SQ_LOCK_T cp_fmutex
#define SQ_LOCK_INIT(l) atomic_init(&(l)->v, 0)
#define SQ_LOCK_FINI(l) ((void)(l))
#define SQ_LOCK cp_fmutex_lock
#define SQ_UNLOCK cp_fmutex_unlock
#define SQ_W_INIT cp_futex_w_init
#define SQ_W_FINI cp_futex_w_fini
#define SQ_W_CLAIM cp_futex_w_claim
#define SQ_W_FINISH cp_futex_w_finish
#define SQ_W_PARK cp_futex_w_park
#include "../semq.h"

SQ_DEFINE_FAMILY(futex, 1)
