/* test_jscan.c — unit tests of imgate-bench's single-member JSON look-up
 * (tools/bench/jscan): the forward and the from-the-end search must find the
 * same member of the pushes and replies the bench client reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jscan.h"

static const char PUSH[] =
    "{\"seq\":\"\",\"cmd\":\"msg\",\"response\":{\"code\":200,\"codeMsg\":\"Ok\","
    "\"data\":{\"target\":\"\",\"type\":\"text\",\"msg\":\"3f1e.B.12.1733\",\"from\":\"\"}}}";

typedef int (*str_fn)(const char *, size_t, const char *, const char **, size_t *);

static void expect_str(str_fn fn, const char *json, const char *key, const char *want)
{
    const char *v = NULL;
    size_t vn = 0;
    int rc = fn(json, strlen(json), key, &v, &vn);
    if (!want) {
        assert_int_equal(rc, -1);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(vn, strlen(want));
    assert_memory_equal(v, want, vn);
}

static void both(const char *json, const char *key, const char *want)
{
    expect_str(jscan_str, json, key, want);
    expect_str(jscan_str_last, json, key, want);
}

static void test_push_members(void **state)
{
    (void)state;
    both(PUSH, "cmd", "msg");
    both(PUSH, "msg", "3f1e.B.12.1733");     /* the value "msg" of cmd is not the key */
    both(PUSH, "seq", "");
    both(PUSH, "from", "");
    both(PUSH, "codeMsg", "Ok");
    both(PUSH, "absent", NULL);
    both(PUSH, "code", NULL);                /* a number, not a string */
}

static void test_spacing_and_edges(void **state)
{
    (void)state;
    both("{ \"msg\" :\t\"a b\" , \"x\":\"y\" }", "msg", "a b");
    both("\"msg\":\"first\"", "msg", "first");  /* the key at the very start */
    both("{\"msg\":\"a\\\"b\"}", "msg", "a\\\"b");   /* escapes kept raw */
    both("{\"m\":\"msg\"}", "msg", NULL);        /* only as a value */
    both("{\"msg\":\"unterminated}", "msg", NULL);
    both("\"", "msg", NULL);
    both("", "msg", NULL);
    both("sg\":\"x\"", "msg", NULL);             /* no opening quote before the key */
}

static void test_first_and_last(void **state)
{
    (void)state;
    const char *two = "{\"k\":\"one\",\"o\":{\"k\":\"two\"}}";
    expect_str(jscan_str, two, "k", "one");
    expect_str(jscan_str_last, two, "k", "two");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_members),
        cmocka_unit_test(test_spacing_and_edges),
        cmocka_unit_test(test_first_and_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
