/*
 * The mutex family's adapter, defined once and included by every file of the
 * family: its internal lock, its waiter and its park/unpark, under the FAM_*
 * names that the shared templates of impl/ (wq.h, gochan.h, select.h, condq.h,
 * semq.h, pool.h) are written against.
 *
 *   lock:     a glibc adaptive pthread mutex (spins briefly, then sleeps)
 *   waiter:   spins and yields briefly, then sleeps on its own pthread
 *             condvar, CLOCK_MONOTONIC (waiter.c)
 *   cp_mutex: a plain pthread mutex (mutex.c), the mutex of cp_cond
 *
 * Waiter invariant: the state word is CP_W_* in its low byte, plus
 * MX_SLEEPING once the waiter, holding w->mu, is about to cond-wait; every
 * move out of WAITING is a CAS that keeps MX_SLEEPING. The move that ends a
 * wait (finish, cancel) is made without w->mu while MX_SLEEPING is clear,
 * and under w->mu, with a signal, once it is set. The sleeper re-reads the
 * state under w->mu before every cond wait, so no wake-up is lost, and a
 * waiter that sees the end of its wait is touched by nobody afterwards.
 * Before it sleeps, a waiter spins and yields briefly (cp_w_spin).
 */
#ifndef CP_IMPL_MUTEX_ADAPTER_H
#define CP_IMPL_MUTEX_ADAPTER_H

#include "../../core/internal.h"
#include <cp/family.h>

#define FAM_NAME mutex
CP_WAITER_DECLARE(mutex)
/* An internal lock: a glibc adaptive pthread mutex (waiter.c). */
void cp_mutex__lock_init(pthread_mutex_t *l);

#define FAM_LOCK_T pthread_mutex_t
#define FAM_LOCK_STATIC_INIT PTHREAD_MUTEX_INITIALIZER
#define FAM_LOCK_INIT(l) cp_mutex__lock_init(l)
#define FAM_LOCK_FINI(l) cp_check(pthread_mutex_destroy(l) == 0)
#define FAM_LOCK(l) cp_check(pthread_mutex_lock(l) == 0)
#define FAM_UNLOCK(l) cp_check(pthread_mutex_unlock(l) == 0)

/* The waiter's "someone sleeps on w->cv" bit, above CP_W_STATE. */
#define MX_SLEEPING 0x100u
/* cp_w_spin's budget before the cond wait (waiter.c): the yields of a
 * crowd waiter (a semaphore's), and of every other. */
#define MX_SPIN 300
#define MX_CROWD_YIELDS 1
#define MX_HANDOFF_YIELDS 4

#define FAM_W_INIT cp_mutex_w_init
#define FAM_W_FINI cp_mutex_w_fini
#define FAM_W_CLAIM cp_mutex_w_claim
#define FAM_W_FINISH cp_mutex_w_finish
#define FAM_W_CANCEL cp_mutex_w_cancel
#define FAM_W_PARK cp_mutex_w_park

#define FAM_M_LOCK cp_mutex_mutex_lock
#define FAM_M_UNLOCK cp_mutex_mutex_unlock

/* semq.h: every semaphore operation under the lock, as Weighted (no
 * one-word fast paths). */
#define FAM_SEM_FAST 0

#endif /* CP_IMPL_MUTEX_ADAPTER_H */
