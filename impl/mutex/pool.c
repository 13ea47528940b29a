/*
 * mutex family: cp_pool is impl/pool.h with a pthread mutex (glibc adaptive)
 * guarding each pool's shared stack and the registry of thread caches.
 *
 * Invariant (see impl/pool.h): an object is held by one caller, or cached in
 * one thread's slot, or on its pool's shared stack, never two of these; the
 * shared stack changes only under the pool's mutex.
 */
#include "adapter.h"
#include "../pool.h"
