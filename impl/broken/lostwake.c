/*
 * broken-lostwake: the futex family whose waiters do not set the event
 * count's waiter flag before sleeping (cp_ec_prepare under
 * CP_BROKEN_LOSTWAKE), so a signaller can miss them: a lost wake-up.
 * Expected: a run that hangs until the watchdog reports it (or a ctx
 * deadline ends it).
 */
#ifdef CP_CHAOS
#define CP_BROKEN_LOSTWAKE 1
#define cp_backend_futex cp_backend_broken_lostwake
#define cp_futex_chan_new cp_broken_lostwake_chan_new
#define cp_futex_chan_free cp_broken_lostwake_chan_free
#define cp_futex_chan_send cp_broken_lostwake_chan_send
#define cp_futex_chan_recv cp_broken_lostwake_chan_recv
#define cp_futex_chan_try_send cp_broken_lostwake_chan_try_send
#define cp_futex_chan_try_recv cp_broken_lostwake_chan_try_recv
#define cp_futex_chan_close cp_broken_lostwake_chan_close
#define cp_futex_chan_len cp_broken_lostwake_chan_len
#define cp_futex_chan_cap cp_broken_lostwake_chan_cap
#define cp_futex_select cp_broken_lostwake_select
#define cp_futex_try_select cp_broken_lostwake_try_select
#include "../futex/chan.c"

/* cp_backend_futex is renamed above: this defines cp_backend_broken_lostwake, with
 * the broken channel ops and the base family's everything else. */
const cp_backend cp_backend_futex = {
    .name = "broken-lostwake",
    .describe = "NEGATIVE CONTROL: futex whose waiters do not announce themselves (lost wake-ups)",
    CP_WAITER_OPS(futex)
    CP_FAMILY_OPS(futex),
};
#endif
