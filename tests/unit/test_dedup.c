/* test_dedup.c — msgID de-duplication: reserve / in flight / commit /
 * release, empty msgIDs, expiry after the TTL and the memory bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "im/dedup.h"

#define ID(s) (s), strlen(s)

static int setup(void **state)
{
    (void)state;
    return dedup_init(100, 3);          /* TTL 100 s, at most 3 entries */
}

static int teardown(void **state)
{
    (void)state;
    dedup_free();
    return 0;
}

static void test_states(void **state)
{
    (void)state;
    assert_int_equal(dedup_reserve(ID("m1"), 1000), 1);     /* new: in flight */
    assert_int_equal(dedup_reserve(ID("m1"), 1000), 2);     /* a retry while in flight */
    dedup_commit(ID("m1"));
    assert_int_equal(dedup_reserve(ID("m1"), 1001), 0);     /* accepted: duplicate */
    assert_int_equal(dedup_reserve(ID("m2"), 1001), 1);
    dedup_release(ID("m2"));                                 /* not accepted */
    assert_int_equal(dedup_reserve(ID("m2"), 1002), 1);     /* the retry goes out */
    assert_int_equal(dedup_count(), 2);
}

static void test_empty_never_duplicate(void **state)
{
    (void)state;
    assert_int_equal(dedup_reserve("", 0, 1000), 1);
    dedup_commit("", 0);
    assert_int_equal(dedup_reserve("", 0, 1000), 1);
    assert_int_equal(dedup_count(), 0);
}

static void test_expiry(void **state)
{
    (void)state;
    assert_int_equal(dedup_reserve(ID("old"), 1000), 1);
    dedup_commit(ID("old"));
    assert_int_equal(dedup_reserve(ID("old"), 1099), 0);    /* still inside the TTL */
    assert_int_equal(dedup_reserve(ID("old"), 1100), 1);    /* TTL over: new again */
}

static void test_bounded(void **state)
{
    (void)state;
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "k%d", i);
        assert_int_equal(dedup_reserve(id, strlen(id), 1000), 1);
        dedup_commit(id, strlen(id));
    }
    assert_int_equal(dedup_count(), 3);                      /* the oldest were forgotten */
    assert_int_equal(dedup_reserve(ID("k9"), 1000), 0);
    assert_int_equal(dedup_reserve(ID("k0"), 1000), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_never_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
