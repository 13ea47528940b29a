/*
 * lockfree family: cp_cond is condq.h (a FIFO of waiters, see its invariants)
 * under a cp_spin lock (TTAS, pause then yield); each waiter spins with a
 * pause, then yields, polling its own state word (cp_lockfree_w_park): it
 * never sleeps in the kernel. A ctx cancel flips the state word; the deadline
 * is checked as it polls.
 */
#include "adapter.h"
#include "../condq.h"
