/* test_prec.c — the cluster presence record (SPEC §5): key, JSON byte for
 * byte, parsing our own records and the original Go node's (appId/userId). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/prec.h"
#include "core/jsonw.h"

static void test_key(void **state)
{
    (void)state;
    char key[64];
    assert_int_equal(prec_key(key, sizeof(key), 101, "u1", 2), (int)strlen("acc:user:online:101_u1"));
    assert_string_equal(key, "acc:user:online:101_u1");
    assert_int_equal(prec_key(key, 10, 101, "u1", 2), -1);
}

static prec sample(void)
{
    prec r;
    memset(&r, 0, sizeof(r));
    strcpy(r.acc_ip, "10.0.0.5");
    strcpy(r.acc_port, "9001");
    r.appid = 101;
    strcpy(r.uid, "u1");
    r.uidlen = 2;
    strcpy(r.client_ip, "1.2.3.4:5555");
    r.login_time = 1700000000;
    r.hb_time = 1700000000;
    return r;
}

static void test_encode_spec_bytes(void **state)
{
    (void)state;
    prec r = sample();
    jsonw w;
    jsonw_init(&w, 0);
    prec_encode(&w, &r);
    size_t len;
    const char *s = jsonw_text(&w, &len);
    assert_string_equal(s, "{\"accIp\":\"10.0.0.5\",\"accPort\":\"9001\",\"appID\":101,\"userID\":\"u1\","
                           "\"clientIp\":\"1.2.3.4:5555\",\"clientPort\":\"\",\"loginTime\":1700000000,"
                           "\"heartbeatTime\":1700000000,\"logOutTime\":0,\"qua\":\"\",\"deviceInfo\":\"\","
                           "\"isLogoff\":false}");
    jsonw_free(&w);
}

static void test_roundtrip_and_online(void **state)
{
    (void)state;
    prec r = sample(), back;
    r.is_logoff = 1;
    r.logout_time = 1700000100;
    jsonw w;
    jsonw_init(&w, 0);
    prec_encode(&w, &r);
    size_t len;
    const char *s = jsonw_text(&w, &len);
    assert_int_equal(prec_parse(s, len, &back), 0);
    jsonw_free(&w);
    assert_string_equal(back.acc_ip, "10.0.0.5");
    assert_string_equal(back.uid, "u1");
    assert_int_equal(back.logout_time, 1700000100);
    assert_true(back.is_logoff);
    assert_false(prec_online(&back, 1700000001));
    back.is_logoff = 0;
    assert_true(prec_online(&back, 1700000179));
    assert_false(prec_online(&back, 1700000180));       /* 180 s old: offline */
    char node[64];
    assert_true(prec_node(&back, node, sizeof(node)) > 0);
    assert_string_equal(node, "10.0.0.5:9001");
}

static void test_parse_go_record(void **state)
{
    (void)state;
    const char *go = "{\"accIp\":\"10.0.0.6\",\"accPort\":\"9002\",\"appId\":102,\"userId\":\"bob\","
                     "\"clientIp\":\"\",\"clientPort\":\"\",\"loginTime\":5,\"heartbeatTime\":6,"
                     "\"logOutTime\":0,\"qua\":\"\",\"deviceInfo\":\"\",\"isLogoff\":false}";
    prec r;
    assert_int_equal(prec_parse(go, strlen(go), &r), 0);
    assert_int_equal(r.appid, 102);
    assert_string_equal(r.uid, "bob");
    assert_int_equal(r.hb_time, 6);
    assert_int_equal(prec_parse("[1]", 3, &r), -1);
    assert_int_equal(prec_parse("nope", 4, &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_encode_spec_bytes),
        cmocka_unit_test(test_roundtrip_and_online),
        cmocka_unit_test(test_parse_go_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
