/*
 * broken-publish: the lockfree family whose ring publishes a slot before
 * writing the item into it (a release store too early), with a chaos point
 * in the window. Expected: stale/torn items (the chan workload's FIFO and
 * integrity checks), and TSan data-race reports.
 */
#ifdef CP_CHAOS
#include "../../core/chaos.h"
#define CP_RING_BROKEN_PUBLISH CP_CHAOS_POINT()
#define cp_backend_lockfree cp_backend_broken_publish
#define cp_lockfree_chan_new cp_broken_publish_chan_new
#define cp_lockfree_chan_free cp_broken_publish_chan_free
#define cp_lockfree_chan_send cp_broken_publish_chan_send
#define cp_lockfree_chan_recv cp_broken_publish_chan_recv
#define cp_lockfree_chan_try_send cp_broken_publish_chan_try_send
#define cp_lockfree_chan_try_recv cp_broken_publish_chan_try_recv
#define cp_lockfree_chan_close cp_broken_publish_chan_close
#define cp_lockfree_chan_len cp_broken_publish_chan_len
#define cp_lockfree_chan_cap cp_broken_publish_chan_cap
#define cp_lockfree_select cp_broken_publish_select
#define cp_lockfree_try_select cp_broken_publish_try_select
#include "../lockfree/chan.c"

/* cp_backend_lockfree is renamed above: this defines cp_backend_broken_publish, with
 * the broken channel ops and the base family's everything else. */
const cp_backend cp_backend_lockfree = {
    .name = "broken-publish",
    .describe = "NEGATIVE CONTROL: lockfree whose ring publishes a slot before writing it",
    CP_WAITER_OPS(lockfree)
    CP_FAMILY_OPS(lockfree),
};
#endif
