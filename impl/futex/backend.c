/* The futex family's backend table: how generic code reaches it. */
#include "adapter.h"

const cp_backend cp_backend_futex = {
    .name = "futex",
    .describe = "lock-free ring; waiters spin briefly, then FUTEX_WAIT on an event count (wake only if parked)",
    CP_WAITER_OPS(futex)
    CP_FAMILY_OPS(futex),
};
