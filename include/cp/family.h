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

#ifdef __cplusplus
extern "C" {
#endif

#define CP__DECLARE_FAMILY(f)                                                      \
    cp_chan  *cp_##f##_chan_new(const cp_backend *b, size_t elem_size, size_t cap); \
    void      cp_##f##_chan_free(cp_chan *ch);                                     \
    cp_status cp_##f##_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx);      \
    cp_status cp_##f##_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx);            \
    cp_status cp_##f##_chan_try_send(cp_chan *ch, const void *elem);               \
    cp_status cp_##f##_chan_try_recv(cp_chan *ch, void *elem);                     \
    cp_status cp_##f##_chan_close(cp_chan *ch);                                    \
    size_t    cp_##f##_chan_len(cp_chan *ch);                                      \
    size_t    cp_##f##_chan_cap(cp_chan *ch);

CP__DECLARE_FAMILY(mutex)
CP__DECLARE_FAMILY(lockfree)
CP__DECLARE_FAMILY(futex)

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
#define cp_chan_new      CP__F(chan_new)
#define cp_chan_free     CP__F(chan_free)
#define cp_chan_send     CP__F(chan_send)
#define cp_chan_recv     CP__F(chan_recv)
#define cp_chan_try_send CP__F(chan_try_send)
#define cp_chan_try_recv CP__F(chan_try_recv)
#define cp_chan_close    CP__F(chan_close)
#define cp_chan_len      CP__F(chan_len)
#define cp_chan_cap      CP__F(chan_cap)
#endif
