/* Chaos points: see chaos.h. */
#include "chaos.h"

#include <sched.h>
#include <time.h>

#include "internal.h"

#ifdef CP_CHAOS
_Atomic int cp__chaos_on;
static _Atomic uint64_t hits;
static __thread uint64_t rng;   /* xorshift64*; 0 = not seeded yet */

static inline uint64_t next(void)
{
    if (!rng) rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&rng;
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

void cp__chaos_point(void)
{
    uint64_t r = next();
    switch (r & 7) {
    case 0: case 1: case 2: case 3:
        return;                                     /* half the time: nothing */
    case 4: case 5:
        for (unsigned i = (unsigned)(r >> 8) & 127; i; i--) cp_cpu_relax();
        break;
    case 6:
        sched_yield();
        break;
    case 7: {
        struct timespec ts = { 0, (long)(1000 + ((r >> 8) % 20000)) };  /* 1-21 us */
        nanosleep(&ts, NULL);
        break;
    }
    }
    atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed);
}

bool cp_chaos_available(void) { return true; }
void cp_chaos_enable(bool on) { atomic_store(&cp__chaos_on, on); }
void cp_chaos_thread(uint64_t seed, uint64_t idx)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + idx * 0xbf58476d1ce4e5b9ull + 1;
    x ^= x >> 31;
    rng = x ? x : 1;
}
uint64_t cp_chaos_points_hit(void) { return atomic_load(&hits); }
#else
bool cp_chaos_available(void) { return false; }
void cp_chaos_enable(bool on) { (void)on; }
void cp_chaos_thread(uint64_t seed, uint64_t idx) { (void)seed; (void)idx; }
uint64_t cp_chaos_points_hit(void) { return 0; }
#endif
