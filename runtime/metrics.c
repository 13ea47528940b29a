/*
 * The metrics' lookups by name and the lock patterns' fairness (see
 * runtime/workload.h). Called after wl_join, from the thread that ran it.
 */
#include "runtime/workload.h"

#include <string.h>

int wl_metric_index(const wl_workload *w, const char *name)
{
    for (int i = 0; w->metrics && w->metrics[i].name && i < WL_MAX_METRICS; i++)
        if (!strcmp(w->metrics[i].name, name)) return i;
    return -1;
}

wl_spread wl_fairness(wl_run *r, int first, int n, int i)
{
    uint64_t sum = 0, mn = UINT64_MAX, mx = 0;
    for (int k = first; k < first + n; k++) {
        uint64_t o = r->thr[k].ops;
        sum += o;
        if (o < mn) mn = o;
        if (o > mx) mx = o;
    }
    if (mx) {   /* else n/a: no thread, or none did an op */
        wl_metric(r, i, (double)mn);
        wl_metric(r, i + 1, (double)mx);
    }
    return (wl_spread){ sum, mn, mx };
}

int wl_fairness_of(const wl_workload *w, const double *metric, unsigned set, uint64_t *min, uint64_t *max)
{
    int lo = wl_metric_index(w, WL_FAIR_MIN), hi = wl_metric_index(w, WL_FAIR_MAX);
    if (lo < 0 || hi < 0 || !(set >> lo & 1) || !(set >> hi & 1)) return 0;
    *min = (uint64_t)metric[lo];
    *max = (uint64_t)metric[hi];
    return 1;
}
