/*
 * Chaos points (race hunting): places in the backends' fast and slow paths
 * (before/after publishing a slot, before parking, after waking, between a
 * CAS and its follow-up) where, when chaos is on, a thread randomly yields,
 * spins or sleeps a few microseconds, to widen race windows.
 *
 * The decisions come from a per-thread PRNG seeded with (seed, thread index)
 * by cp_chaos_thread(), so a run's configuration and every thread's decision
 * stream replay exactly from the seed; the OS scheduler's interleaving does
 * not, so a replay reproduces a failure with high probability, not always.
 *
 * Built only with -DCP_CHAOS (debug, tsan and asan presets); in release
 * builds CP_CHAOS_POINT compiles to nothing.
 */
#ifndef CP_CORE_CHAOS_H
#define CP_CORE_CHAOS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The driver's side (on/off, per-thread seeding): core/hooks.h. */
#include "hooks.h"

#ifdef CP_CHAOS
extern _Atomic int cp__chaos_on;
void cp__chaos_point(void);
#define CP_CHAOS_POINT()                                                        \
    do {                                                                        \
        if (atomic_load_explicit(&cp__chaos_on, memory_order_relaxed)) cp__chaos_point(); \
    } while (0)
#else
#define CP_CHAOS_POINT() ((void)0)
#endif

#endif
