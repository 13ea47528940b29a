/*
 * lockfree family: weighted semaphore (x/sync/semaphore.Weighted), semq.h under
 * a spin lock (pause, then yield), waiters spin on their own state word
 * (cp_lockfree_w_park: pause, then sched_yield; never sleep in the kernel).
 *
 * Invariants: those of semq.h. Uncontended acquire and release are one CAS
 * on the word (cur << 1 | waiters); the lock is taken only when a request
 * does not fit or somebody waits.
 */
#include "../../core/internal.h"
#include "waiter.h"

#define SQ_LOCK_T cp_spin
#define SQ_LOCK_INIT(l) atomic_init(&(l)->v, 0)
#define SQ_LOCK_FINI(l) ((void)(l))
#define SQ_LOCK cp_spin_lock
#define SQ_UNLOCK cp_spin_unlock
#define SQ_W_INIT cp_lockfree_w_init
#define SQ_W_FINI cp_lockfree_w_fini
#define SQ_W_CLAIM cp_lockfree_w_claim
#define SQ_W_FINISH cp_lockfree_w_finish
#define SQ_W_PARK cp_lockfree_w_park
#include "../semq.h"

SQ_DEFINE_FAMILY(lockfree, 1)
