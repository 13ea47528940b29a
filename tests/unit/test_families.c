/*
 * Every family of CP_FAMILY_LIST (cp/families.h) in one program: their prefixed symbols coexist (as
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
        const cp_backend *other = cp_backend_at((family_no(#fam) + 1) % cp_backend_count()); \
        if (other != b) CHECK(cp_##fam##_chan_new(other, 8, 1) == NULL);       \
        n_exercised++;                                                         \
    } while (0);

/* the family's place in cp_backend_at() order */
static size_t family_no(const char *name)
{
    for (size_t i = 0; i < cp_backend_count(); i++)
        if (!strcmp(cp_backend_name(cp_backend_at(i)), name)) return i;
    return 0;
}

int main(void)
{
    static const char *const names[] = {
#define NAME(f) #f,
        CP_FAMILY_LIST(NAME)
#undef NAME
    };
    size_t n_exercised = 0;
    CHECK_EQ(cp_backend_count(), CP_FAMILY_COUNT);
    CHECK(cp_backend_find("nope") == NULL);
    CHECK(cp_backend_find(NULL) == NULL);
    CHECK(cp_backend_at(CP_FAMILY_COUNT) == NULL);
    /* the registry is the list, in its order */
    for (size_t i = 0; i < CP_FAMILY_COUNT; i++) {
        t_where = names[i];
        CHECK(cp_backend_at(i) != NULL && !strcmp(cp_backend_name(cp_backend_at(i)), names[i]));
        CHECK(cp_backend_find(names[i]) == cp_backend_at(i));
    }
    /* distinct functions, all linked */
    void *const sends[] = {
#define SEND(f) (void *)cp_##f##_chan_send,
        CP_FAMILY_LIST(SEND)
#undef SEND
    };
    for (size_t i = 0; i < CP_FAMILY_COUNT; i++)
        for (size_t j = 0; j < i; j++) CHECK(sends[i] != sends[j]);
    CP_FAMILY_LIST(EXERCISE)
    CHECK_EQ(n_exercised, CP_FAMILY_COUNT);
    return t_finish("test_families");
}
