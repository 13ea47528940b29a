/*
 * The runtime's side for whoever drives a workload (the harness): the state
 * of a run that only the runtime and its driver touch (the OS threads, the
 * channels a workload asked to be watched), a run's set-up, the hooks the
 * driver plugs into every workload thread, and the clock's calibration.
 * Workloads do not include this file: they see runtime/workload.h only.
 */
#ifndef CP_RUNTIME_DRIVER_H
#define CP_RUNTIME_DRIVER_H

#include "runtime/workload.h"

#include <pthread.h>

#define WL_MAX_WATCH 8

/* Runtime-owned, behind wl_run.rt. The watchdog reads watch[] below nwatch
 * (release-stored by wl_watch) from another thread. */
struct wl_rt {
    pthread_t pthreads[WL_MAX_THREADS];
    struct { const char *name; cp_chan *ch; } watch[WL_MAX_WATCH];
    int nwatch;
};

/* What the driver adds to every workload thread; any hook may be NULL. */
typedef struct wl_rt_hooks {
    /* in the new thread, before the start gate: index = its slot in r->thr
     * (the harness pins it and seeds its chaos stream) */
    void (*thread_start)(const wl_run *r, int index);
    /* bytes the calling thread has allocated so far (wl_thread.alloc_bytes) */
    uint64_t (*thread_allocated)(void);
} wl_rt_hooks;
void wl_rt_set_hooks(const wl_rt_hooks *h);     /* copied; before any run */

/* Zeroes *r and gives it the runtime's thread slots (reused run to run). */
void wl_run_init(wl_run *r, const wl_cfg *cfg);

/* The clock (an invariant TSC when trusted, else CLOCK_MONOTONIC) and the
 * busy-work loop, calibrated once before any run. */
void wl_rt_calibrate(void);
const char *wl_clock_desc(void);    /* after wl_rt_calibrate */
double wl_clock_cost_ns(void);      /* ns per wl_now() */

#endif /* CP_RUNTIME_DRIVER_H */
