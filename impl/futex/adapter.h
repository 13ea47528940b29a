/*
 * The futex family's adapter, defined once and included by every file of the
 * family: its internal lock, its waiter and its park/unpark, under the FAM_*
 * names that the shared templates of impl/ (wq.h, gochan.h, select.h, condq.h,
 * semq.h, pool.h, rwword.h) are written against. The raw futex helpers (wait/wake,
 * the futex mutex, the event count) are futex.h.
 *
 *   lock:     cp_flock (futex.h: spin briefly, then FUTEX_WAIT; an unlock without a
 *             read-modify-write)
 *   waiter:   spins briefly, yields a few times, then FUTEX_WAITs on its own
 *             state word with FX_PARKED set (waiter.c)
 *   cp_mutex: cp_fmutex (mutex.c)
 *
 * Waiter invariant: the state word is CP_W_* in its low byte, plus FX_PARKED
 * once the sleeper is about to FUTEX_WAIT on it; every move out of WAITING
 * is a CAS that keeps FX_PARKED, and the mover that ends a wait (finish,
 * cancel) FUTEX_WAKEs iff the word it replaced had FX_PARKED, so a finisher
 * calls into the kernel only when somebody sleeps.
 *
 * Note: the finisher's FUTEX_WAKE may reach a waiter's stack word after the
 * waiter has seen DONE and returned; a futex wake touches no user memory,
 * and every futex wait in libcp re-checks its condition, so the worst case
 * is one spurious wake-up of whatever sleeps there later.
 */
#ifndef CP_IMPL_FUTEX_ADAPTER_H
#define CP_IMPL_FUTEX_ADAPTER_H

#include "../../core/internal.h"
#include "futex.h"
#include <cp/family.h>

#define FAM_NAME futex
CP_WAITER_DECLARE(futex)

/* The waiter's "someone sleeps on this word" bit, above CP_W_STATE. */
#define FX_PARKED 0x100u

/* futex_waitv(2) (Linux 5.16+), probed once at start-up (backend.c): 1 if
 * the kernel has it. Written before main, only read afterwards. */
extern int cp__futex_waitv;

#define FAM_LOCK_T cp_flock
#define FAM_LOCK_STATIC_INIT { 0, 0 }
#define FAM_LOCK_INIT(l) (atomic_init(&(l)->v, 0), atomic_init(&(l)->sleepers, 0))
#define FAM_LOCK_FINI(l) ((void)(l))
#define FAM_LOCK cp_flock_lock
#define FAM_UNLOCK cp_flock_unlock

#define FAM_W_INIT cp_futex_w_init
/* Nothing to tear down (cp_futex_w_fini is empty: it exists for the table). */
#define FAM_W_FINI(w) ((void)(w))
#define FAM_W_CLAIM cp_futex_w_claim
#define FAM_W_FINISH cp_futex_w_finish
#define FAM_W_CANCEL cp_futex_w_cancel
#define FAM_W_PARK cp_futex_w_park

#define FAM_M_LOCK cp_futex_mutex_lock
#define FAM_M_UNLOCK cp_futex_mutex_unlock

/* semq.h: uncontended acquire and release are one CAS on the word. */
#define FAM_SEM_FAST 1

#endif /* CP_IMPL_FUTEX_ADAPTER_H */
