/*
 * futex family: weighted semaphore (x/sync/semaphore.Weighted), semq.h under
 * a futex mutex, waiters parked on their own state word (cp_futex_w_park:
 * brief spin, then FUTEX_WAIT with the ctx's deadline).
 *
 * Invariants: those of semq.h. Uncontended acquire and release are one CAS
 * on the word (cur << 1 | waiters); the lock is taken only when a request
 * does not fit or somebody waits.
 */
#include "adapter.h"
#include "../semq.h"
