/*
 * The backend registry and the generic entry points of cp.h: each call goes
 * through the object's backend table (one indirect call). Code that wants
 * direct calls compiles with -DCP_FAMILY=<name> (see cp/family.h).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic int cp__spinners;
int cp__spin_limit = 1;

__attribute__((constructor)) static void spin_limit_init(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cp__spin_limit = n > 2 ? (int)n - 1 : 1;
    const char *env = getenv("CP_SPIN_LIMIT");   /* for experiments; see docs */
    if (env && atoi(env) > 0) cp__spin_limit = atoi(env);
}

static const cp_backend *const backends[] = {
    &cp_backend_mutex,
    &cp_backend_lockfree,
    &cp_backend_futex,
};

size_t cp_backend_count(void) { return sizeof backends / sizeof backends[0]; }

const cp_backend *cp_backend_at(size_t i)
{
    return i < cp_backend_count() ? backends[i] : NULL;
}

const cp_backend *cp_backend_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < cp_backend_count(); i++)
        if (!strcmp(backends[i]->name, name)) return backends[i];
    return NULL;
}

const char *cp_backend_name(const cp_backend *b) { return b ? b->name : "(null)"; }
const char *cp_backend_describe(const cp_backend *b) { return b ? b->describe : ""; }

const char *cp_status_str(cp_status s)
{
    switch (s) {
    case CP_OK: return "ok";
    case CP_CLOSED: return "closed";
    case CP_CANCELED: return "canceled";
    case CP_DEADLINE: return "deadline exceeded";
    case CP_WOULDBLOCK: return "would block";
    case CP_EINVAL: return "invalid argument";
    case CP_ENOMEM: return "out of memory";
    }
    return "unknown status";
}

uint64_t cp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *cp__zalloc(size_t size)
{
    size = (size + CP_CACHELINE - 1) & ~(size_t)(CP_CACHELINE - 1);
    void *p = aligned_alloc(CP_CACHELINE, size);
    if (p) memset(p, 0, size);
    else errno = ENOMEM;
    return p;
}

/* ---- channels through the table ---- */
cp_chan *cp_chan_new(const cp_backend *b, size_t elem_size, size_t capacity)
{
    if (!b) { errno = EINVAL; return NULL; }
    return b->chan_new(b, elem_size, capacity);
}
void cp_chan_free(cp_chan *ch) { if (ch) CP_OBJ_B(ch)->chan_free(ch); }
cp_status cp_chan_send(cp_chan *ch, const void *elem, cp_ctx *ctx)
{
    return CP_OBJ_B(ch)->chan_send(ch, elem, ctx);
}
cp_status cp_chan_recv(cp_chan *ch, void *elem, cp_ctx *ctx)
{
    return CP_OBJ_B(ch)->chan_recv(ch, elem, ctx);
}
cp_status cp_chan_try_send(cp_chan *ch, const void *elem)
{
    return CP_OBJ_B(ch)->chan_try_send(ch, elem);
}
cp_status cp_chan_try_recv(cp_chan *ch, void *elem)
{
    return CP_OBJ_B(ch)->chan_try_recv(ch, elem);
}
cp_status cp_chan_close(cp_chan *ch) { return CP_OBJ_B(ch)->chan_close(ch); }
size_t cp_chan_len(cp_chan *ch) { return CP_OBJ_B(ch)->chan_len(ch); }
size_t cp_chan_cap(cp_chan *ch) { return CP_OBJ_B(ch)->chan_cap(ch); }
