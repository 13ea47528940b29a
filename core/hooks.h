/*
 * libcp's testing interface: what a test driver (cpbench stress, the
 * harness's threads, tests/) may reach inside the library beyond the public
 * API, and nothing else of core's private headers.
 *   - the chaos points (core/chaos.h): turn them on, seed a thread's
 *     decision stream, count the decisions taken (no-ops without -DCP_CHAOS);
 *   - the negative-control backends (impl/broken/): deliberately wrong
 *     backends that the invariant checks must catch, found by name, never
 *     listed by cp_backend_count();
 *   - cp_cpu_relax, the pause of the library's spin loops, for a driver's
 *     own (the harness's placement probe spins as the backends do).
 */
#ifndef CP_CORE_HOOKS_H
#define CP_CORE_HOOKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cp/cp.h>

/* chaos: global on/off and per-thread seeding (no-ops without chaos) */
bool cp_chaos_available(void);
void cp_chaos_enable(bool on);
void cp_chaos_thread(uint64_t seed, uint64_t thread_index);
uint64_t cp_chaos_points_hit(void);     /* chaos decisions taken, all threads */

/* Negative controls (impl/broken/, chaos builds only): NULL if not built in
 * or unknown. */
const cp_backend *cp__backend_find_broken(const char *name);

/* One pause of a spin-wait loop. */
static inline void cp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

#endif /* CP_CORE_HOOKS_H */
