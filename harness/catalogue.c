#include "harness/harness.h"

#include <stdlib.h>
#include <string.h>

/* Each workload of workloads/list.h, compiled once per family of
 * CP_FAMILY_LIST (cp/families.h) and once generic (CMakeLists.txt): a family
 * without its direct entry is an undefined symbol at link time. */
#define WL_FAM_EXTERN(f, n) extern const wl_workload wl_##n##__##f;
#define WL(n) CP_FAMILY_LIST_ARG(WL_FAM_EXTERN, n) extern const wl_workload wl_##n##__generic;
#include "workloads/list.h"
#undef WL

#define WL_FAM_REF(f, n) &wl_##n##__##f,
const hw_entry hw_catalogue[] = {
#define WL(n) { &wl_##n##__generic, { CP_FAMILY_LIST_ARG(WL_FAM_REF, n) } },
#include "workloads/list.h"
#undef WL
};
const size_t hw_catalogue_len = sizeof hw_catalogue / sizeof hw_catalogue[0];

/* fam[i] is the family cp_backend_at(i): both come from CP_FAMILY_LIST, in
 * its order. A backend that is not a family (a negative control of
 * impl/broken/) runs the generic, table-dispatched entry, and
 * hw_dispatch_name says so. */
static int family_index(const cp_backend *b)
{
    for (size_t i = 0; b && i < cp_backend_count() && i < CP_FAMILY_COUNT; i++)
        if (cp_backend_at(i) == b) return (int)i;
    return -1;
}

const wl_workload *hw_pick(const hw_entry *e, const cp_backend *b, int table_dispatch)
{
    int i = family_index(b);
    return table_dispatch || i < 0 ? e->generic : e->fam[i];
}

const char *hw_dispatch_name(const cp_backend *b, int table_dispatch)
{
    return table_dispatch || (b && family_index(b) < 0) ? "table" : "direct";
}

/* The run's dispatch for the table header and the JSON context: "direct",
 * "table", or "direct+table" when a negative control runs beside a family
 * (each CSV row then says which it ran). go rows do not count. */
const char *hw_run_dispatch_name(const struct hw_opts *o)
{
    int direct = 0, table = 0;
    for (size_t i = 0; i < o->nimpls; i++)
        if (o->impls[i]) *(strcmp(hw_dispatch_name(o->impls[i], o->table_dispatch), "table") ? &direct : &table) = 1;
    return direct && table ? "direct+table" : table ? "table" : "direct";
}

/* At start-up (before main): libcp's registry and the catalogue agree on the
 * families, and every family has its direct entry, so that hw_pick never
 * falls back to the table for a family (a failed invariant: exit 1). */
__attribute__((constructor)) static void catalogue_check(void)
{
    if (cp_backend_count() != CP_FAMILY_COUNT) {
        fprintf(stderr, "cpbench: libcp has %zu backends, the catalogue %d families\n", cp_backend_count(),
                CP_FAMILY_COUNT);
        exit(1);
    }
    for (size_t p = 0; p < hw_catalogue_len; p++)
        for (size_t i = 0; i < CP_FAMILY_COUNT; i++)
            if (!hw_catalogue[p].fam[i]) {
                fprintf(stderr, "cpbench: %s has no direct entry for the family %s\n",
                        hw_catalogue[p].generic->name, cp_backend_name(cp_backend_at(i)));
                exit(1);
            }
}
