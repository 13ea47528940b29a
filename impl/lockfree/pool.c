/*
 * lockfree family: cp_pool is impl/pool.h with a cp_spin (test-and-test-
 * and-set, pause then sched_yield; never sleeps in the kernel) guarding each
 * pool's shared stack and the registry of thread caches.
 *
 * Why not a lock-free Treiber stack for the shared stack: a pop reads
 * top->next and CASes top from `top` to `next`; between the read and the CAS
 * another thread can pop `top`, pop `next`, push `top` back (ABA), and the
 * CAS then installs `next`, an object that is now in use. The cure is a
 * 128-bit CAS on (pointer, tag) (cmpxchg16b: -mcx16 and libatomic, whose
 * 16-byte atomics are not guaranteed lock-free either) or hazard pointers.
 * It is not worth it here: the shared stack is touched once per PL_BATCH
 * (16) operations of a thread, moving a whole batch per critical section,
 * so the lock is short and rarely contended; the per-thread caches are
 * where the pool is fast, and they use no atomic read-modify-write at all.
 *
 * Invariant (see impl/pool.h): an object is held by one caller, or cached in
 * one thread's slot, or on its pool's shared stack, never two of these; the
 * shared stack changes only under the pool's spin lock (acquire on lock,
 * release on unlock, which also orders the objects' contents).
 */
#include "adapter.h"
#include "../pool.h"
