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
    size_t    cp_##f##_chan_cap(cp_chan *ch);                                      \
    int       cp_##f##_select(cp_case *cases, size_t n, cp_ctx *ctx, cp_status *st); \
    int       cp_##f##_try_select(cp_case *cases, size_t n, cp_status *st);        \
    cp_sem   *cp_##f##_sem_new(const cp_backend *b, int64_t permits);              \
    void      cp_##f##_sem_free(cp_sem *s);                                        \
    cp_status cp_##f##_sem_acquire(cp_sem *s, int64_t n, cp_ctx *ctx);             \
    cp_status cp_##f##_sem_try_acquire(cp_sem *s, int64_t n);                      \
    void      cp_##f##_sem_release(cp_sem *s, int64_t n);                          \
    cp_mutex *cp_##f##_mutex_new(const cp_backend *b);                             \
    void      cp_##f##_mutex_free(cp_mutex *m);                                    \
    void      cp_##f##_mutex_lock(cp_mutex *m);                                    \
    bool      cp_##f##_mutex_trylock(cp_mutex *m);                                 \
    void      cp_##f##_mutex_unlock(cp_mutex *m);                                  \
    cp_rwlock *cp_##f##_rwlock_new(const cp_backend *b);                           \
    void      cp_##f##_rwlock_free(cp_rwlock *l);                                  \
    void      cp_##f##_rwlock_rlock(cp_rwlock *l);                                 \
    void      cp_##f##_rwlock_runlock(cp_rwlock *l);                               \
    void      cp_##f##_rwlock_wlock(cp_rwlock *l);                                 \
    void      cp_##f##_rwlock_wunlock(cp_rwlock *l);                               \
    cp_cond  *cp_##f##_cond_new(const cp_backend *b);                              \
    void      cp_##f##_cond_free(cp_cond *c);                                      \
    cp_status cp_##f##_cond_wait(cp_cond *c, cp_mutex *m, cp_ctx *ctx);            \
    void      cp_##f##_cond_signal(cp_cond *c);                                    \
    void      cp_##f##_cond_broadcast(cp_cond *c);                                 \
    cp_wg    *cp_##f##_wg_new(const cp_backend *b);                                \
    void      cp_##f##_wg_free(cp_wg *wg);                                         \
    void      cp_##f##_wg_add(cp_wg *wg, int64_t delta);                           \
    void      cp_##f##_wg_done(cp_wg *wg);                                         \
    cp_status cp_##f##_wg_wait(cp_wg *wg, cp_ctx *ctx);                            \
    cp_once  *cp_##f##_once_new(const cp_backend *b);                              \
    void      cp_##f##_once_free(cp_once *o);                                      \
    void      cp_##f##_once_do(cp_once *o, void (*fn)(void *), void *arg);         \
    cp_pool  *cp_##f##_pool_new(const cp_backend *b, size_t obj_size);             \
    void      cp_##f##_pool_free(cp_pool *p);                                      \
    void     *cp_##f##_pool_get(cp_pool *p);                                       \
    void      cp_##f##_pool_put(cp_pool *p, void *obj);

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
#define cp_select           CP__F(select)
#define cp_try_select       CP__F(try_select)
#define cp_sem_new          CP__F(sem_new)
#define cp_sem_free         CP__F(sem_free)
#define cp_sem_acquire      CP__F(sem_acquire)
#define cp_sem_try_acquire  CP__F(sem_try_acquire)
#define cp_sem_release      CP__F(sem_release)
#define cp_mutex_new        CP__F(mutex_new)
#define cp_mutex_free       CP__F(mutex_free)
#define cp_mutex_lock       CP__F(mutex_lock)
#define cp_mutex_trylock    CP__F(mutex_trylock)
#define cp_mutex_unlock     CP__F(mutex_unlock)
#define cp_rwlock_new       CP__F(rwlock_new)
#define cp_rwlock_free      CP__F(rwlock_free)
#define cp_rwlock_rlock     CP__F(rwlock_rlock)
#define cp_rwlock_runlock   CP__F(rwlock_runlock)
#define cp_rwlock_wlock     CP__F(rwlock_wlock)
#define cp_rwlock_wunlock   CP__F(rwlock_wunlock)
#define cp_cond_new         CP__F(cond_new)
#define cp_cond_free        CP__F(cond_free)
#define cp_cond_wait        CP__F(cond_wait)
#define cp_cond_signal      CP__F(cond_signal)
#define cp_cond_broadcast   CP__F(cond_broadcast)
#define cp_wg_new           CP__F(wg_new)
#define cp_wg_free          CP__F(wg_free)
#define cp_wg_add           CP__F(wg_add)
#define cp_wg_done          CP__F(wg_done)
#define cp_wg_wait          CP__F(wg_wait)
#define cp_once_new         CP__F(once_new)
#define cp_once_free        CP__F(once_free)
#define cp_once_do          CP__F(once_do)
#define cp_pool_new         CP__F(pool_new)
#define cp_pool_free        CP__F(pool_free)
#define cp_pool_get         CP__F(pool_get)
#define cp_pool_put         CP__F(pool_put)
#endif
