/* The mutex family's waiter operations (see core/internal.h), shared by its
 * primitives' files. */
#ifndef CP_IMPL_MUTEX_WAITER_H
#define CP_IMPL_MUTEX_WAITER_H

#include "../../core/internal.h"

void cp_mutex_w_init(cp_waiter *w);
void cp_mutex_w_fini(cp_waiter *w);
bool cp_mutex_w_claim(cp_waiter *w);
void cp_mutex_w_finish(cp_waiter *w);
bool cp_mutex_w_cancel(cp_waiter *w);
/* An internal lock: a glibc adaptive pthread mutex (spins briefly, then sleeps). */
void cp_mutex__lock_init(pthread_mutex_t *l);
uint32_t cp_mutex_w_park(cp_waiter *w, uint64_t deadline);

#endif
