/*
 * futex family: cp_cond is condq.h (a FIFO of waiters, see its invariants)
 * under a futex mutex; each waiter spins briefly, then FUTEX_WAITs on its
 * own state word (cp_futex_w_park), so a signal wakes exactly the thread it
 * claimed, and a ctx cancel or a deadline (futex timeout) ends the sleep.
 */
#include "adapter.h"
#include "../condq.h"
