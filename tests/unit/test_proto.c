/* test_proto.c — the IM protocol's pure parts: envelope parsing, routing,
 * login argument rules (SPEC §2 order: userID, then appID), reply encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>

#include "core/node.h"
#include "im/codes.h"
#include "im/jarena.h"
#include "im/proto.h"

static int setup(void **state)
{
    (void)state;
    config_defaults(&g_node.cfg);     /* appIDs 101..104 */
    jarena_install();                 /* as proto_init does: every test parses into the arena */
    return 0;
}

static void parse_ok(const char *msg, const char *seq, const char *cmd)
{
    proto_msg m;
    const char *why = NULL;
    assert_int_equal(proto_parse(msg, strlen(msg), &m, &why), 0);
    assert_int_equal(m.seqlen, strlen(seq));
    assert_memory_equal(m.seq, seq, m.seqlen);
    assert_int_equal(m.cmdlen, strlen(cmd));
    assert_memory_equal(m.cmd, cmd, m.cmdlen);
    proto_msg_free(&m);
}

static void parse_bad(const char *msg, size_t len, const char *reason)
{
    proto_msg m;
    const char *why = NULL;
    assert_int_equal(proto_parse(msg, len, &m, &why), -1);
    assert_non_null(why);
    assert_string_equal(why, reason);
}

static void test_parse_envelope(void **state)
{
    (void)state;
    parse_ok("{\"seq\":\"1\",\"cmd\":\"login\",\"data\":{}}", "1", "login");
    parse_ok("{\"SEQ\":\"x\",\"Cmd\":\"ping\"}", "x", "ping");       /* case-insensitive names */
    parse_ok("{\"cmd\":\"ping\"}", "", "ping");                      /* seq absent */
    parse_ok("{\"seq\":null,\"cmd\":\"ping\"}", "", "ping");
    parse_ok("{\"seq\":\"\\u00e9\",\"cmd\":\"\"}", "\xc3\xa9", "");
    parse_bad("not json", 8, "not JSON");
    parse_bad("[1,2]", 5, "not a JSON object");
    parse_bad("42", 2, "not a JSON object");
    parse_bad("{}", 2, "cmd must be a string");
    parse_bad("{\"cmd\":7}", 9, "cmd must be a string");
    parse_bad("{\"cmd\":null}", 12, "cmd must be a string");
    parse_bad("{\"cmd\":\"ping\",\"seq\":5}", 22, "seq must be a string");
    parse_bad("{\"cmd\":\"a\",\"cmd\":\"b\"}", 21, "not JSON");     /* duplicate keys */
}

static void test_route(void **state)
{
    (void)state;
    assert_true(proto_route("login", 5) >= 0);
    assert_true(proto_route("heartbeat", 9) >= 0);
    assert_true(proto_route("ping", 4) >= 0);
    assert_true(proto_route("logout", 6) >= 0);
    assert_int_equal(proto_route("Login", 5), -1);          /* commands are exact */
    assert_int_equal(proto_route("log", 3), -1);
    assert_int_equal(proto_route("login\0x", 7), -1);       /* NUL cannot shorten a cmd */
    assert_int_equal(proto_route("", 0), -1);
}

static int login_code(const char *data_json)
{
    json_error_t err;
    json_t *d = json_loads(data_json, JSON_ALLOW_NUL, &err);
    uint32_t appid = 0;
    const char *uid = NULL;
    size_t len = 0;
    int code = proto_login_args(d, &appid, &uid, &len);
    json_decref(d);
    return code;
}

static void test_login_args(void **state)
{
    (void)state;
    json_error_t err;
    json_t *d = json_loads("{\"appId\":\"102\",\"USERID\":\"alice\"}", 0, &err);
    uint32_t appid = 0;
    const char *uid = NULL;
    size_t len = 0;
    assert_int_equal(proto_login_args(d, &appid, &uid, &len), IM_OK);
    assert_int_equal(appid, 102);
    assert_int_equal(len, 5);
    assert_memory_equal(uid, "alice", 5);
    json_decref(d);

    assert_int_equal(login_code("{\"appID\":101,\"userID\":\"u\"}"), IM_OK);
    assert_int_equal(login_code("{\"appid\":104,\"userid\":\"1234567890123456789\"}"), IM_OK); /* 19 */
    assert_int_equal(login_code("{\"appID\":101,\"userID\":\"12345678901234567890\"}"), IM_USER_ID_ILLEGAL);
    assert_int_equal(login_code("{\"appID\":101,\"userID\":\"\"}"), IM_USER_ID_ILLEGAL);
    assert_int_equal(login_code("{\"appID\":101}"), IM_USER_ID_ILLEGAL);
    assert_int_equal(login_code("{\"appID\":101,\"userID\":7}"), IM_USER_ID_ILLEGAL);
    assert_int_equal(login_code("{\"appID\":101,\"userID\":\"a\\u0000b\"}"), IM_USER_ID_ILLEGAL);
    /* userID is checked before appID */
    assert_int_equal(login_code("{\"appID\":999,\"userID\":\"\"}"), IM_USER_ID_ILLEGAL);
    assert_int_equal(login_code("{\"appID\":999,\"userID\":\"u\"}"), IM_UNAUTHORIZED);
    assert_int_equal(login_code("{\"userID\":\"u\"}"), IM_UNAUTHORIZED);
    assert_int_equal(login_code("{\"appID\":-101,\"userID\":\"u\"}"), IM_UNAUTHORIZED);
    assert_int_equal(login_code("{\"appID\":101.5,\"userID\":\"u\"}"), IM_UNAUTHORIZED);
    assert_int_equal(login_code("{\"appID\":101.0,\"userID\":\"u\"}"), IM_OK);
    assert_int_equal(login_code("{\"appID\":\"10x\",\"userID\":\"u\"}"), IM_UNAUTHORIZED);
    assert_int_equal(login_code("{\"appID\":1e20,\"userID\":\"u\"}"), IM_UNAUTHORIZED);
    assert_int_equal(proto_login_args(NULL, &appid, &uid, &len), IM_USER_ID_ILLEGAL);
}

static void test_reply_encode(void **state)
{
    (void)state;
    size_t len;
    char *s = proto_reply_encode("1", 1, "login", 5, IM_OK, "null", &len);
    const char *want = "{\"seq\":\"1\",\"cmd\":\"login\",\"response\":{\"code\":200,"
                       "\"codeMsg\":\"Success\",\"data\":null}}";
    assert_string_equal(s, want);
    assert_int_equal(len, strlen(want));
    free(s);
    s = proto_reply_encode("a\"b\n", 4, "ping", 4, IM_OK, "\"pong\"", &len);
    assert_string_equal(s, "{\"seq\":\"a\\\"b\\n\",\"cmd\":\"ping\",\"response\":{\"code\":200,"
                           "\"codeMsg\":\"Success\",\"data\":\"pong\"}}");
    free(s);
    s = proto_reply_encode("", 0, "x", 1, IM_ROUTING_NOT_EXIST, "null", &len);
    assert_non_null(strstr(s, "\"code\":1010,\"codeMsg\":\"Route does not exist\""));
    free(s);
}

static void test_codes(void **state)
{
    (void)state;
    static const struct { int code; const char *msg; } want[] = {
        {200, "Success"}, {1000, "Not logged in"}, {1001, "Illegal parameter"},
        {1002, "Illegal user ID"}, {1003, "Unauthorized"}, {1004, "Server error"},
        {1005, "No data"}, {1006, "Add failed"}, {1007, "Delete failed"},
        {1008, "Store failed"}, {1009, "Operation failed"}, {1010, "Route does not exist"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(im_code_msg(want[i].code), want[i].msg);
}

static void test_appid_text(void **state)
{
    (void)state;
    uint32_t v;
    assert_int_equal(proto_parse_appid("101", 3, &v), 0);
    assert_int_equal(v, 101);
    assert_int_equal(proto_parse_appid("4294967295", 10, &v), 0);
    assert_int_equal(v, 4294967295u);
    assert_int_equal(proto_parse_appid("4294967296", 10, &v), -1);
    assert_int_equal(proto_parse_appid("", 0, &v), -1);
    assert_int_equal(proto_parse_appid("-1", 2, &v), -1);
    assert_int_equal(proto_parse_appid("1 ", 2, &v), -1);
}

/* A message parsed into the thread's arena; a second one parsed while the
 * first is alive goes to the heap; after the first is freed the arena
 * serves the next parse again (the sanitizer build checks that no arena
 * block reaches free(), that no heap block is leaked, and, the arena
 * being poisoned outside its live blocks, that nothing is read after its
 * message was freed). */
static void test_arena_nested(void **state)
{
    (void)state;
    proto_msg a, b, c;
    const char *why = NULL;
    const char *m1 = "{\"seq\":\"1\",\"cmd\":\"login\",\"data\":{\"userID\":\"u1\",\"appID\":101}}";
    const char *m2 = "{\"seq\":\"2\",\"cmd\":\"heartbeat\",\"data\":{\"userID\":\"u2\"}}";
    assert_int_equal(proto_parse(m1, strlen(m1), &a, &why), 0);
    assert_int_equal(a.in_arena, 1);
    assert_int_equal(proto_parse(m2, strlen(m2), &b, &why), 0);
    assert_int_equal(b.in_arena, 0);
    assert_string_equal(json_string_value(json_object_get(a.data, "userID")), "u1");
    assert_string_equal(json_string_value(json_object_get(b.data, "userID")), "u2");
    assert_memory_equal(a.cmd, "login", 5);
    assert_memory_equal(b.cmd, "heartbeat", 9);
    proto_msg_free(&b);
    assert_string_equal(json_string_value(json_object_get(a.data, "userID")), "u1");
    proto_msg_free(&a);
    assert_int_equal(proto_parse(m2, strlen(m2), &c, &why), 0);
    assert_int_equal(c.in_arena, 1);
    proto_msg_free(&c);
    /* a parse that fails leaves the arena free for the next one */
    assert_int_equal(proto_parse("{\"cmd\":7}", 9, &a, &why), -1);
    assert_int_equal(proto_parse(m1, strlen(m1), &a, &why), 0);
    assert_int_equal(a.in_arena, 1);
    proto_msg_free(&a);
}

/* A message larger than the arena: what does not fit comes from the heap,
 * values added after the parse too, and all of it reads back and frees. */
static void test_arena_overflow(void **state)
{
    (void)state;
    size_t cap = 64 * 1024;
    char *msg = malloc(cap), *big = malloc(8001);
    assert_non_null(msg);
    assert_non_null(big);
    memset(big, 'x', 8000);
    big[8000] = '\0';
    size_t n = (size_t)snprintf(msg, cap, "{\"cmd\":\"sendMsg\",\"seq\":\"s\",\"data\":{\"msg\":\"%s\"", big);
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(msg + n, cap - n, ",\"k%d\":[%d,\"v%d\",{\"n\":null}]", i, i, i);
    n += (size_t)snprintf(msg + n, cap - n, "}}");
    proto_msg m;
    const char *why = NULL;
    assert_int_equal(proto_parse(msg, n, &m, &why), 0);
    assert_int_equal(m.in_arena, 1);
    assert_int_equal(json_object_size(m.data), 301);
    assert_string_equal(json_string_value(json_object_get(m.data, "msg")), big);
    json_t *k = json_object_get(m.data, "k299");
    assert_int_equal(json_integer_value(json_array_get(k, 0)), 299);
    assert_string_equal(json_string_value(json_array_get(k, 1)), "v299");
    assert_int_equal(json_object_set_new(m.data, "added", json_string("after the parse")), 0);
    assert_int_equal(json_object_del(m.data, "k0"), 0);
    assert_string_equal(json_string_value(json_object_get(m.data, "added")), "after the parse");
    proto_msg_free(&m);
    free(msg);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_parse_envelope, setup),
        cmocka_unit_test_setup(test_arena_nested, setup),
        cmocka_unit_test_setup(test_arena_overflow, setup),
        cmocka_unit_test_setup(test_route, setup),
        cmocka_unit_test_setup(test_login_args, setup),
        cmocka_unit_test_setup(test_reply_encode, setup),
        cmocka_unit_test_setup(test_codes, setup),
        cmocka_unit_test_setup(test_appid_text, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
