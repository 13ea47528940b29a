/*
 * DEVELOPMENT SCAFFOLD, deleted before any release: weak definitions of the
 * family entry points whose primitives are being written in parallel, so
 * that the tree links meanwhile. A real definition overrides each one.
 */
#include "../core/internal.h"

#define PENDING(ret, name, args) \
    __attribute__((weak)) ret name args { cp_die("%s is not implemented yet", #name); }
#define FAM(f)                                                                          \
    PENDING(cp_mutex *, cp_##f##_mutex_new, (const cp_backend *b))                      \
    PENDING(void, cp_##f##_mutex_free, (cp_mutex *m))                                   \
    PENDING(void, cp_##f##_mutex_lock, (cp_mutex *m))                                   \
    PENDING(bool, cp_##f##_mutex_trylock, (cp_mutex *m))                                \
    PENDING(void, cp_##f##_mutex_unlock, (cp_mutex *m))                                 \
    PENDING(cp_rwlock *, cp_##f##_rwlock_new, (const cp_backend *b))                    \
    PENDING(void, cp_##f##_rwlock_free, (cp_rwlock *l))                                 \
    PENDING(void, cp_##f##_rwlock_rlock, (cp_rwlock *l))                                \
    PENDING(void, cp_##f##_rwlock_runlock, (cp_rwlock *l))                              \
    PENDING(void, cp_##f##_rwlock_wlock, (cp_rwlock *l))                                \
    PENDING(void, cp_##f##_rwlock_wunlock, (cp_rwlock *l))                              \
    PENDING(cp_cond *, cp_##f##_cond_new, (const cp_backend *b))                        \
    PENDING(void, cp_##f##_cond_free, (cp_cond *c))                                     \
    PENDING(cp_status, cp_##f##_cond_wait, (cp_cond *c, cp_mutex *m, cp_ctx *x))        \
    PENDING(void, cp_##f##_cond_signal, (cp_cond *c))                                   \
    PENDING(void, cp_##f##_cond_broadcast, (cp_cond *c))                                \

FAM(mutex)
FAM(lockfree)
FAM(futex)
