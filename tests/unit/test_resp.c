/* test_resp.c — RESP request formatting (cluster/resp.c): byte for byte
 * what hiredis's own formatter writes, for empty, binary and long
 * arguments and counts of one and more digits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster/resp.h"

/* resp_size and resp_put against redisFormatCommandArgv. */
static void check(int argc, const char **argv, const size_t *lens)
{
    char *want;
    int wlen = redisFormatCommandArgv(&want, argc, argv, lens);
    assert_true(wlen > 0);
    size_t n = resp_size(argc, argv, lens);
    assert_int_equal(n, (size_t)wlen);
    char *got = malloc(n + 1);
    assert_non_null(got);
    got[n] = 0x5a;                               /* nothing written past the end */
    assert_ptr_equal(resp_put(got, argc, argv, lens), got + n);
    assert_memory_equal(got, want, n);
    assert_int_equal(got[n], 0x5a);
    free(got);
    redisFreeCommand(want);
}

static void test_plain(void **state)
{
    (void)state;
    const char *get[] = { "GET", "acc:user:online:101_u1" };
    check(2, get, NULL);
    const char *one[] = { "EXEC" };
    check(1, one, NULL);
    const char *empty[] = { "SET", "k", "" };
    check(3, empty, NULL);
}

static void test_binary_and_long(void **state)
{
    (void)state;
    static char big[100000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);                  /* NULs, CR and LF among them */
    const size_t sizes[] = { 0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 99999, 100000 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        const char *argv[] = { "SET", "key", big, "EX", "3600" };
        const size_t lens[] = { 3, 3, sizes[i], 2, 4 };
        check(5, argv, lens);
    }
}

static void test_many_args(void **state)
{
    (void)state;
    const char *argv[120];
    char names[120][8];
    for (int i = 0; i < 120; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        argv[i] = names[i];
    }
    argv[0] = "HMGET";
    for (int argc = 1; argc <= 120; argc++)
        check(argc, argv, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_binary_and_long),
        cmocka_unit_test(test_many_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
