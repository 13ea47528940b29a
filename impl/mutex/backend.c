/* The mutex family's backend table: how generic code reaches it. */
#include "adapter.h"

const cp_backend cp_backend_mutex = {
    .name = "mutex",
    .describe = "pthread mutex + per-waiter condition variables (CLOCK_MONOTONIC), a brief spin first; Go's hchan under one lock",
    CP_WAITER_OPS(mutex)
    CP_FAMILY_OPS(mutex),
};
