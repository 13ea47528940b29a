/*
 * mutex family: weighted semaphore (x/sync/semaphore.Weighted), semq.h under
 * a pthread mutex; every operation takes the mutex (as Weighted does), and a
 * waiter sleeps on its own condition variable (cp_mutex_w_park).
 *
 * Invariants: those of semq.h; here the word only ever changes under the
 * mutex, so its CASes never fail.
 */
#include "adapter.h"
#include "../semq.h"
