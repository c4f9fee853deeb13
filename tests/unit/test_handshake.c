/* test_handshake.c — unit tests of the opening handshake (ws/handshake):
 * validation with its status codes and reasons, the accept key, the 101. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ws/handshake.h"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
/* RFC 6455 §1.3 (checked independently with Python hashlib). */
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static ws_upgrade_req good_req(void)
{
    ws_upgrade_req r = {
        .method = "GET", .http_major = 1, .http_minor = 1,
        .host = "server.example.com", .upgrade = "websocket", .connection = "Upgrade",
        .key = RFC_KEY, .version = "13",
    };
    return r;
}

/* Validation fails with status, and the reason mentions `about`. */
static void expect_reject(const ws_upgrade_req *r, int status, const char *about)
{
    const char *reason = NULL;
    int got = ws_handshake_validate(r, &reason);
    assert_int_equal(got, status);
    assert_non_null(reason);
    assert_true(strlen(reason) > 0);
    if (!strstr(reason, about)) fail_msg("reason \"%s\" does not mention \"%s\"", reason, about);
}

static void expect_accept(const ws_upgrade_req *r)
{
    const char *reason = NULL;
    int got = ws_handshake_validate(r, &reason);
    if (got != 0) fail_msg("rejected with %d: %s", got, reason ? reason : "(null)");
}

static void test_rfc_accept_key(void **state)
{
    (void)state;
    char out[29];
    ws_accept_key(RFC_KEY, out);
    assert_string_equal(out, RFC_ACCEPT);
    ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_response(void **state)
{
    (void)state;
    static const char want[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n";
    char out[256];
    size_t n = ws_handshake_response(out, sizeof(out), RFC_KEY);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
    assert_int_equal(out[n], '\0');
    assert_int_equal(ws_handshake_response(out, sizeof(want), RFC_KEY), sizeof(want) - 1);
    assert_int_equal(ws_handshake_response(out, sizeof(want) - 1, RFC_KEY), 0);
    assert_int_equal(ws_handshake_response(out, 10, RFC_KEY), 0);
}

static void test_valid_request(void **state)
{
    (void)state;
    ws_upgrade_req r = good_req();
    expect_accept(&r);
    r.http_minor = 2;
    expect_accept(&r);
    r.http_major = 2;
    r.http_minor = 0;
    expect_accept(&r);
}

static void test_method_and_version(void **state)
{
    (void)state;
    ws_upgrade_req r = good_req();
    r.method = "POST";
    expect_reject(&r, 400, "GET");
    r.method = "get";
    expect_reject(&r, 400, "GET");
    r.method = NULL;
    expect_reject(&r, 400, "GET");

    r = good_req();
    r.http_minor = 0;
    expect_reject(&r, 400, "HTTP/1.1");
    r.http_major = 0;
    r.http_minor = 9;
    expect_reject(&r, 400, "HTTP/1.1");
}

static void test_missing_headers(void **state)
{
    (void)state;
    ws_upgrade_req r = good_req();
    r.host = NULL;
    expect_reject(&r, 400, "Host");
    r.host = "";
    expect_reject(&r, 400, "Host");

    r = good_req();
    r.upgrade = NULL;
    expect_reject(&r, 400, "Upgrade");
    r = good_req();
    r.connection = NULL;
    expect_reject(&r, 400, "Connection");
    r = good_req();
    r.key = NULL;
    expect_reject(&r, 400, "Sec-WebSocket-Key");
    r = good_req();
    r.version = NULL;
    expect_reject(&r, 400, "Sec-WebSocket-Version");
}

static void test_bad_headers(void **state)
{
    (void)state;
    ws_upgrade_req r = good_req();
    r.upgrade = "h2c";
    expect_reject(&r, 400, "websocket");
    r.upgrade = "websockets";
    expect_reject(&r, 400, "websocket");
    r.upgrade = "";
    expect_reject(&r, 400, "websocket");

    r = good_req();
    r.connection = "keep-alive";
    expect_reject(&r, 400, "upgrade");
    r.connection = "upgraded, close";
    expect_reject(&r, 400, "upgrade");
    r.connection = "";
    expect_reject(&r, 400, "upgrade");
}

static void test_bad_keys(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ",              /* padding missing */
        "dGhlIHNhbXBsZSBub25jZQ=",
        "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25j",                 /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZS4=",             /* 17 bytes */
        "dGhlIHNhbXBsZSBub25jZSEhISE=",         /* 20 bytes */
        "dGhlIHNhbXBsZSBub25jZ!==",             /* bad alphabet */
        "dGhlIHNhbXBsZSBu b25jZQ==",
        "dGhlIHNhbXBsZSBub25jZQ=A",
        "not a key at all",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ws_upgrade_req r = good_req();
        r.key = bad[i];
        expect_reject(&r, 400, "Sec-WebSocket-Key");
    }
    ws_upgrade_req r = good_req();
    r.key = "AAAAAAAAAAAAAAAAAAAAAA==";
    expect_accept(&r);
    r.key = "+/+/+/+/+/+/+/+/+/+/+w==";
    expect_accept(&r);
}

static void test_websocket_version(void **state)
{
    (void)state;
    ws_upgrade_req r = good_req();
    static const char *const other[] = { "8", "7", "12", "14", "130", "1 3", "", "abc" };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        r.version = other[i];
        expect_reject(&r, 426, "13");
    }
    r.version = " 13 ";
    expect_accept(&r);
}

static void test_token_lists(void **state)
{
    (void)state;
    static const char *const conn_ok[] = {
        "Upgrade", "upgrade", "UPGRADE", "keep-alive, Upgrade", "Upgrade, keep-alive",
        "keep-alive,upgrade", "  upgrade  ,  x", "close,\tUpGrAdE", ",upgrade,",
    };
    for (size_t i = 0; i < sizeof(conn_ok) / sizeof(conn_ok[0]); i++) {
        ws_upgrade_req r = good_req();
        r.connection = conn_ok[i];
        expect_accept(&r);
    }
    static const char *const up_ok[] = { "websocket", "WebSocket", "h2c, websocket", "websocket ,foo/1" };
    for (size_t i = 0; i < sizeof(up_ok) / sizeof(up_ok[0]); i++) {
        ws_upgrade_req r = good_req();
        r.upgrade = up_ok[i];
        expect_accept(&r);
    }
    static const char *const conn_bad[] = { "keep-alive", "up grade", "upgrade2", "x-upgrade", ",," };
    for (size_t i = 0; i < sizeof(conn_bad) / sizeof(conn_bad[0]); i++) {
        ws_upgrade_req r = good_req();
        r.connection = conn_bad[i];
        expect_reject(&r, 400, "Connection");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_accept_key),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_valid_request),
        cmocka_unit_test(test_method_and_version),
        cmocka_unit_test(test_missing_headers),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_websocket_version),
        cmocka_unit_test(test_token_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
