/*
 * lockfree family: weighted semaphore (x/sync/semaphore.Weighted), semq.h under
 * a spin lock (pause, then yield), waiters spin on their own state word
 * (cp_lockfree_w_park: pause, then sched_yield; never sleep in the kernel).
 *
 * Invariants: those of semq.h. Uncontended acquire and release are one CAS
 * on the word (cur << 1 | waiters); the lock is taken only when a request
 * does not fit or somebody waits.
 */
#include "adapter.h"
#include "../semq.h"
