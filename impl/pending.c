/*
 * DEVELOPMENT SCAFFOLD, deleted before any release: weak definitions of the
 * family entry points whose primitives are being written in parallel, so
 * that the tree links meanwhile. A real definition overrides each one.
 */
#include "../core/internal.h"

#define PENDING(ret, name, args) \
    __attribute__((weak)) ret name args { cp_die("%s is not implemented yet", #name); }
#define FAM(f)                                                                          \
    PENDING(int, cp_##f##_select, (cp_case *c, size_t n, cp_ctx *x, cp_status *s))      \
    PENDING(int, cp_##f##_try_select, (cp_case *c, size_t n, cp_status *s))             \
    PENDING(cp_sem *, cp_##f##_sem_new, (const cp_backend *b, int64_t p))               \
    PENDING(void, cp_##f##_sem_free, (cp_sem *s))                                       \
    PENDING(cp_status, cp_##f##_sem_acquire, (cp_sem *s, int64_t n, cp_ctx *x))         \
    PENDING(cp_status, cp_##f##_sem_try_acquire, (cp_sem *s, int64_t n))                \
    PENDING(void, cp_##f##_sem_release, (cp_sem *s, int64_t n))                         \
    PENDING(cp_wg *, cp_##f##_wg_new, (const cp_backend *b))                            \
    PENDING(void, cp_##f##_wg_free, (cp_wg *w))                                         \
    PENDING(void, cp_##f##_wg_add, (cp_wg *w, int64_t d))                               \
    PENDING(void, cp_##f##_wg_done, (cp_wg *w))                                         \
    PENDING(cp_status, cp_##f##_wg_wait, (cp_wg *w, cp_ctx *x))                         \
    PENDING(cp_once *, cp_##f##_once_new, (const cp_backend *b))                        \
    PENDING(void, cp_##f##_once_free, (cp_once *o))                                     \
    PENDING(void, cp_##f##_once_do, (cp_once *o, void (*fn)(void *), void *a))          \
    PENDING(cp_pool *, cp_##f##_pool_new, (const cp_backend *b, size_t n))              \
    PENDING(void, cp_##f##_pool_free, (cp_pool *p))                                     \
    PENDING(void *, cp_##f##_pool_get, (cp_pool *p))                                    \
    PENDING(void, cp_##f##_pool_put, (cp_pool *p, void *o))

FAM(mutex)
FAM(lockfree)
FAM(futex)
