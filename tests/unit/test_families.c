/*
 * All three families in one program: their prefixed symbols coexist (as
 * liburcu's multi-flavour test), and each family's direct symbols agree with
 * the generic, table-dispatched names on the same object.
 */
#include "../test.h"

#define EXERCISE(fam)                                                          \
    do {                                                                       \
        t_where = #fam;                                                        \
        const cp_backend *b = cp_backend_find(#fam);                           \
        CHECK(b != NULL);                                                      \
        cp_chan *ch = cp_##fam##_chan_new(b, sizeof(long), 4);                 \
        CHECK(ch != NULL);                                                     \
        long v = 41;                                                           \
        CHECK_ST(cp_##fam##_chan_send(ch, &v, NULL), CP_OK);                   \
        v = 42;                                                                \
        CHECK_ST(cp_chan_send(ch, &v, NULL), CP_OK); /* generic on same obj */ \
        CHECK_EQ(cp_##fam##_chan_len(ch), 2);                                  \
        CHECK_EQ(cp_chan_cap(ch), 4);                                          \
        CHECK_ST(cp_chan_recv(ch, &v, NULL), CP_OK);                           \
        CHECK_EQ(v, 41);                                                       \
        CHECK_ST(cp_##fam##_chan_try_recv(ch, &v), CP_OK);                     \
        CHECK_EQ(v, 42);                                                       \
        CHECK_ST(cp_##fam##_chan_close(ch), CP_OK);                            \
        CHECK_ST(cp_chan_close(ch), CP_CLOSED);                                \
        cp_##fam##_chan_free(ch);                                              \
        /* a family refuses another family's backend */                        \
        CHECK(cp_##fam##_chan_new(cp_backend_find(strcmp(#fam, "mutex") ? "mutex" : "futex"), 8, 1) == NULL); \
    } while (0)

int main(void)
{
    CHECK_EQ(cp_backend_count(), 3);
    CHECK(cp_backend_find("nope") == NULL);
    CHECK(cp_backend_find(NULL) == NULL);
    CHECK(cp_backend_at(3) == NULL);
    /* distinct functions, all linked */
    CHECK((void *)cp_mutex_chan_send != (void *)cp_lockfree_chan_send);
    CHECK((void *)cp_lockfree_chan_send != (void *)cp_futex_chan_send);
    EXERCISE(mutex);
    EXERCISE(lockfree);
    EXERCISE(futex);
    return t_finish("test_families");
}
