/* The lockfree family's backend table: how generic code reaches it. */
#include "adapter.h"

const cp_backend cp_backend_lockfree = {
    .name = "lockfree",
    .describe = "lock-free per-slot-stamp ring; waiters spin (pause) then yield, never sleep in the kernel",
    CP_WAITER_OPS(lockfree)
    CP_FAMILY_OPS(lockfree),
};
