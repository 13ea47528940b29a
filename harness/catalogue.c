#include "harness/harness.h"

#include <string.h>

#define WL(n) extern const wl_workload wl_##n##__mutex, wl_##n##__lockfree, wl_##n##__futex, wl_##n##__generic;
#include "workloads/list.h"
#undef WL

const hw_entry hw_catalogue[] = {
#define WL(n) { &wl_##n##__generic, { &wl_##n##__mutex, &wl_##n##__lockfree, &wl_##n##__futex } },
#include "workloads/list.h"
#undef WL
};
const size_t hw_catalogue_len = sizeof hw_catalogue / sizeof hw_catalogue[0];

const wl_workload *hw_pick(const hw_entry *e, const cp_backend *b, int table_dispatch)
{
    static const char *const fams[3] = { "mutex", "lockfree", "futex" };
    if (table_dispatch) return e->generic;
    for (int i = 0; i < 3; i++)
        if (!strcmp(cp_backend_name(b), fams[i])) return e->fam[i];
    return e->generic;
}
