/*
 * mutex family: cp_cond is condq.h (a FIFO of waiters, see its invariants)
 * under an adaptive pthread mutex; each waiter sleeps on its own pthread
 * condvar (CLOCK_MONOTONIC, so the ctx deadline is a timed wait), and a
 * cancel from its ctx signals that condvar. Why not one pthread_cond_t for
 * the cond: pthread condvars allow spurious wake-ups and cannot be woken by
 * a ctx; per-waiter records give exactly-one-per-signal and cancellation.
 */
#include "adapter.h"
#include "../condq.h"
