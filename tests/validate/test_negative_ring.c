/*
 * Negative control: the gates must be able to fail. This builds the ring of
 * impl/ring.h with CP_RING_BROKEN_PUBLISH, a bug planted on purpose (a push
 * publishes its slot before writing the item), and runs the same kind of
 * 1-producer/1-consumer check the chan workload makes: every item carries
 * its sequence number twice; the consumer expects seq 0, 1, 2, ... intact.
 *
 * Release build: the test passes only if the invariant check CATCHES the
 * bug (a stale or torn item) within a bounded number of items; if the broken
 * ring ever looked correct, the check would be proven blind and the test
 * fails. Under TSan, tests/validate/negative_tsan.sh runs this binary and
 * requires a data-race report (TSan sees the item read race the late write).
 * The real ring, same check: tests/validate/test_chan_mpmc.c.
 */
#include "../test.h"

#define CP_RING_BROKEN_PUBLISH for (int i_ = 0; i_ < 64; i_++) cp_cpu_relax()
#include "impl/ring.h"

struct item { uint64_t seq, check; };

static cp_ring ring;
static const uint64_t N = 200000;

static void *producer(void *unused)
{
    (void)unused;
    for (uint64_t i = 0; i < N; i++) {
        struct item it = { i, ~i };
        while (cp_ring_try_push(&ring, &it) == CP_WOULDBLOCK) cp_cpu_relax();
    }
    return NULL;
}

int main(void)
{
    t_where = "broken-publish ring";
    size_t cap = 64;
    size_t bytes = 0;
    if (!cp_ring_bytes(0, cap, sizeof(struct item), &bytes)) return 1;
    unsigned char *slots = calloc(1, bytes);
    cp_ring_init(&ring, cap, sizeof(struct item), slots);
    pthread_t t = t_spawn(producer, NULL);
    uint64_t bad = 0, first_bad = 0, got = 0;
    struct item it;
    while (got < N) {
        if (cp_ring_try_pop(&ring, &it) != CP_OK) {
            cp_cpu_relax();
            continue;
        }
        if (it.seq != got || it.check != ~got) {
            if (!bad++) first_bad = got;
        }
        got++;
    }
    t_join(t, 60000, "producer");
    printf("broken-publish ring: %llu of %llu items stale or torn (first at item %llu)\n",
           (unsigned long long)bad, (unsigned long long)N, (unsigned long long)first_bad);
    CHECK(bad > 0);   /* the check must see the planted bug */
    free(slots);
    return t_finish("test_negative_ring");
}
