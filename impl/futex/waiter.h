/* The futex family's waiter operations (see core/internal.h), shared by its
 * primitives' files. */
#ifndef CP_IMPL_FUTEX_WAITER_H
#define CP_IMPL_FUTEX_WAITER_H

#include "../../core/internal.h"

void cp_futex_w_init(cp_waiter *w);
void cp_futex_w_fini(cp_waiter *w);
bool cp_futex_w_claim(cp_waiter *w);
void cp_futex_w_finish(cp_waiter *w);
bool cp_futex_w_cancel(cp_waiter *w);
uint32_t cp_futex_w_park(cp_waiter *w, uint64_t deadline);

#endif
