/*
 * The futex family's adapter, defined once and included by every file of the
 * family: its internal lock, its waiter and its park/unpark, under the FAM_*
 * names that the shared templates of impl/ (wq.h, gochan.h, select.h, condq.h,
 * semq.h, pool.h, rwword.h) are written against. The raw futex helpers (wait/wake,
 * the futex mutex, the event count) are futex.h.
 *
 *   lock:     cp_flock (below: spin briefly, then FUTEX_WAIT; an unlock without a
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

/* ---- the family's internal lock (FAM_LOCK: channels, select, cond,
 * semaphores, pools), an asymmetric Dekker pair ----
 * Invariant: v is 0 free, 1 held; sleepers counts the lockers between
 * their announcement and the end of their futex sleep on v. A locker that
 * spun in vain adds itself to sleepers (seq_cst), makes every running
 * thread of the process pass a full barrier (membarrier(2),
 * PRIVATE_EXPEDITED: cp__fx_barrier), then tries v once more and sleeps
 * only while v reads 1. The unlock is a release store of 0, a compiler
 * barrier, and a load of sleepers. During the membarrier the unlocker
 * passes a full barrier: if its store of 0 came before that point, the
 * locker's try sees it; if after, its load of sleepers (later in program
 * order) sees the locker's count, and it wakes one sleeper. So the unlock
 * needs no atomic read-modify-write and no fence: cp_fmutex's exchange
 * waits for the lock's cache line whenever a spinning waiter has just read
 * it (the futex rendezvous: 1.9M items/s with cp_fmutex here, 2.8-3.3M
 * with a plain spin lock). Without membarrier (probed at start-up, backend.c)
 * the unlock fences instead (seq_cst), the ordinary Dekker pair. */
typedef struct cp_flock { _Atomic uint32_t v, sleepers; } cp_flock;
extern int cp__fx_membarrier;       /* 1: registered (backend.c); read only after main starts */
void cp__fx_flock_slow(cp_flock *l);
static inline void cp_flock_lock(cp_flock *l)
{
    if (cp_likely(!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))) return;
    cp__fx_flock_slow(l);
}
static inline void cp_flock_unlock(cp_flock *l)
{
    atomic_store_explicit(&l->v, 0, memory_order_release);
    if (cp_likely(cp__fx_membarrier)) atomic_signal_fence(memory_order_seq_cst);
    else atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&l->sleepers, memory_order_relaxed)) cp_futex_wake(&l->v, 1);
}

#define FAM_LOCK_T cp_flock
#define FAM_LOCK_STATIC_INIT { 0, 0 }
#define FAM_LOCK_INIT(l) (atomic_init(&(l)->v, 0), atomic_init(&(l)->sleepers, 0))
#define FAM_LOCK_FINI(l) ((void)(l))
#define FAM_LOCK cp_flock_lock
#define FAM_UNLOCK cp_flock_unlock

/* gochan.h's hand-off slot: a blocked rendezvous op waits in the channel's
 * line, pausing up to FAM_GC_SLOT_SPINS times (48 and 128 measured alike),
 * then queues a waiter, which yields and sleeps. (The mutex family
 * measured it too: rendezvous 1.36x, but tee 0.73x and the suite of flows
 * 0.94x; it has none.) */
#define FAM_GC_SLOT 1
#define FAM_GC_SLOT_SPINS 48

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
