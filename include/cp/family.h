/*
 * Family-prefixed entry points and the CP_FAMILY mapping.
 *
 * Every backend ("family") exports its own symbols, cp_<family>_<object>_<verb>
 * (cp_futex_chan_send), so all families link into one program. The generic
 * names of cp.h (cp_chan_send) dispatch at run time through the object's
 * backend table: one indirect call.
 *
 * Code compiled with -DCP_FAMILY=futex sees the generic names mapped onto the
 * futex family's symbols instead: the call is direct (and inlinable under LTO).
 * Workloads are written once against the generic names and compiled once per
 * family this way; objects must then come from that family's backend.
 */
#ifndef CP_FAMILY_H
#define CP_FAMILY_H

#include <cp/cp.h>
#include <cp/families.h>
#include <cp/ops.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cp_<family>_<name> for every operation of cp/ops.h and every family of
 * cp/families.h (a family lacking one is a link error wherever it is used,
 * and its backend table, CP_FAMILY_OPS in core/internal.h, uses them all). */
#define CP__DECLARE_OP(f, kind, ret, name, params, args) ret cp_##f##_##name params;
#define CP__DECLARE_FAMILY(f) CP_OPS(CP__DECLARE_OP, f)
CP_FAMILY_LIST(CP__DECLARE_FAMILY)

#ifdef __cplusplus
}
#endif

#endif /* CP_FAMILY_H */

/* The mapping is outside the include guard's reach on purpose: it is applied
 * only when CP_FAMILY is defined, after all declarations above exist. */
#if defined(CP_FAMILY) && !defined(CP__FAMILY_MAPPED)
#define CP__FAMILY_MAPPED 1
#define CP__FCAT2(a, b, c) a##b##c
#define CP__FCAT(a, b, c) CP__FCAT2(a, b, c)
#define CP__F(x) CP__FCAT(cp_, CP_FAMILY, _##x)
#include <cp/family_map.h>   /* cp_<name> -> CP__F(<name>) for each op of cp/ops.h (generated) */
#endif
