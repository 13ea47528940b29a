/*
 * futex family: cp_pool is impl/pool.h with the family's lock (cp_flock:
 * spin briefly, then FUTEX_WAIT) guarding each pool's shared stack and the
 * registry of thread caches. No pthread synchronisation object: the only
 * pthread facility used is a thread-specific-data key, for its destructor at
 * thread exit (created once under the registry's futex mutex).
 *
 * Invariant (see impl/pool.h): an object is held by one caller, or cached in
 * one thread's slot, or on its pool's shared stack, never two of these; the
 * shared stack changes only under the pool's futex mutex, whose acquire
 * (lock) and release (unlock) atomics also order the objects' contents
 * between the thread that put them and the one that gets them.
 */
#include "adapter.h"
#include "../pool.h"
