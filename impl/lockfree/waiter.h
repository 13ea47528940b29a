/* The lockfree family's waiter operations (see core/internal.h), shared by its
 * primitives' files. */
#ifndef CP_IMPL_LOCKFREE_WAITER_H
#define CP_IMPL_LOCKFREE_WAITER_H

#include "../../core/internal.h"

/* Retry rounds before a waiter starts yielding: with the exponential pause
 * of lf_pause, about 1200 pauses (25 ns each on this AMD EPYC), some 30 us:
 * about what a futex sleep and wake-up would cost. */
#define LF_SPIN 24

void cp_lockfree_w_init(cp_waiter *w);
void cp_lockfree_w_fini(cp_waiter *w);
bool cp_lockfree_w_claim(cp_waiter *w);
void cp_lockfree_w_finish(cp_waiter *w);
bool cp_lockfree_w_cancel(cp_waiter *w);
uint32_t cp_lockfree_w_park(cp_waiter *w, uint64_t deadline);

#endif
