/*
 * The lockfree family's adapter, defined once and included by every file of
 * the family: its internal lock, its waiter and its park/unpark, under the
 * FAM_* names that the shared templates of impl/ (wq.h, gochan.h, select.h,
 * condq.h, semq.h, pool.h, rwword.h) are written against.
 *
 *   lock:     cp_spin (test-and-test-and-set, pause then sched_yield)
 *   waiter:   spins with a pause, then yields, on its own state word
 *             (waiter.c); it never sleeps in the kernel
 *   cp_mutex: a TTAS lock with exponential backoff (mutex.c)
 *
 * Waiter invariant: state moves by CAS (claim, cancel, timeout) or by the
 * claimer's release store of DONE; the waiter only spins on it, so nobody
 * touches a waiter after the store that ends its wait.
 */
#ifndef CP_IMPL_LOCKFREE_ADAPTER_H
#define CP_IMPL_LOCKFREE_ADAPTER_H

#include "../../core/internal.h"
#include <cp/family.h>

#define FAM_NAME lockfree
CP_WAITER_DECLARE(lockfree)

/* Retry rounds before a waiter starts yielding: with the exponential pause
 * of lf_pause, 63 pauses, about 1.8 us on the AMD EPYC VM (28 ns each),
 * the cost of some three sched_yields there. A waiter of this family never
 * sleeps, so what its spin must beat is a yield, not a futex wake-up: at
 * 24 rounds (1215 pauses, 30 us) a spinner held its CPU, and the one
 * spinner slot, while the partner it waited for had no core (`cpbench ab`
 * 24 -> 6 with the queued waiter's spin by cp_w_spin, 10 rounds: 14 flows
 * 1.68x, tee 3.4x, or 2.6x, ordone 2.3x; the reference suite 1.10x, no
 * case slower). */
#define LF_SPIN 6

#define FAM_LOCK_T cp_spin
#define FAM_LOCK_STATIC_INIT CP_SPIN_INIT
#define FAM_LOCK_INIT(l) atomic_init(&(l)->v, 0)
#define FAM_LOCK_FINI(l) ((void)(l))
#define FAM_LOCK cp_spin_lock
#define FAM_UNLOCK cp_spin_unlock

#define FAM_W_INIT cp_lockfree_w_init
/* Nothing to tear down (cp_lockfree_w_fini is empty: it exists for the table). */
#define FAM_W_FINI(w) ((void)(w))
#define FAM_W_CLAIM cp_lockfree_w_claim
#define FAM_W_FINISH cp_lockfree_w_finish
#define FAM_W_CANCEL cp_lockfree_w_cancel
#define FAM_W_PARK cp_lockfree_w_park

#define FAM_M_LOCK cp_lockfree_mutex_lock
#define FAM_M_UNLOCK cp_lockfree_mutex_unlock

/* semq.h: uncontended acquire and release are one CAS on the word. */
#define FAM_SEM_FAST 1

/* gochan.h's hand-off slot, as the futex family's (its adapter.h): a
 * blocked rendezvous op waits in the channel's line up to
 * FAM_GC_SLOT_SPINS pauses, then queues a waiter, which spins and yields
 * on its own word. With the lock-free claim (since aff0505) the
 * rendezvous measured 2.86x items/s and 0.33x p99 (`cpbench ab`, 12
 * rounds), 14 flows at their defaults even (0.99x, 16 rounds); the locked
 * slot before it had cost the or-done chain 0.80-0.85x. */
#define FAM_GC_SLOT 1
#define FAM_GC_SLOT_SPINS 48

#endif /* CP_IMPL_LOCKFREE_ADAPTER_H */
