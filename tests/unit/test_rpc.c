/* test_rpc.c — the gRPC server's request decoding and validation
 * (cluster/rpc_req.h): method paths, valid requests of each method,
 * truncated and mistyped encodings, the size cap, UTF-8 and NUL rules, the
 * userID length rules. Payloads are packed with protobuf-c or written by
 * hand in the protobuf wire format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acc.pb-c.h"
#include "cluster/rpc_req.h"
#include "im/codes.h"

#define MAXLEN 4096
#define P(m) RPC_PATH_PREFIX m

/* A hand-written payload. */
typedef struct wire {
    uint8_t b[512];
    size_t n;
} wire;

static void w_byte(wire *w, uint8_t v)
{
    assert_true(w->n < sizeof(w->b));
    w->b[w->n++] = v;
}

static void w_varint(wire *w, uint64_t v)
{
    while (v >= 0x80) {
        w_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    w_byte(w, (uint8_t)v);
}

static void w_bytes(wire *w, unsigned field, const void *p, size_t n)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_str(wire *w, unsigned field, const char *s) { w_bytes(w, field, s, strlen(s)); }

static void w_uint(wire *w, unsigned field, uint64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, v);
}

/* A SendMsg / SendMsgAll payload (fields 1..6 are the same). */
static wire send_wire(const char *seq, uint32_t appid, const char *uid, const char *cms,
                      const char *msg)
{
    wire w = { .n = 0 };
    w_str(&w, 1, seq);
    w_uint(&w, 2, appid);
    w_str(&w, 3, uid);
    if (cms)
        w_str(&w, 4, cms);
    w_str(&w, 5, "text");
    w_str(&w, 6, msg);
    return w;
}

static int decode(const char *path, const wire *w, rpc_req *r)
{
    return rpc_req_decode(path, strlen(path), w->b, w->n, MAXLEN, r);
}

static void test_methods(void **state)
{
    (void)state;
    const char *paths[RPC_M_COUNT] = { P("QueryUsersOnline"), P("SendMsg"), P("SendMsgAll"),
                                       P("GetUserList"), P("KickUser") };
    for (int m = 0; m < RPC_M_COUNT; m++) {
        assert_int_equal(rpc_req_method(paths[m], strlen(paths[m])), m);
        assert_string_equal(rpc_req_path((rpc_method)m), paths[m]);
    }
    const char *bad[] = { P("Nope"), P("sendmsg"), P("SendMsgAllX"), P(""), "", "/SendMsg",
                          "/protobuf.AccServer.SendMsg", "/other.AccServer/SendMsg" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rpc_req_method(bad[i], strlen(bad[i])), RPC_M_UNKNOWN);
    /* Only the given length counts: a prefix of a path is not the path. */
    assert_int_equal(rpc_req_method(P("SendMsgAll"), strlen(P("SendMsg"))), RPC_M_SEND_MSG);
    assert_null(rpc_req_path(RPC_M_UNKNOWN));
}

static void test_unknown_method(void **state)
{
    (void)state;
    wire w = send_wire("s", 101, "u1", "msg", "hi");
    rpc_req r;
    assert_int_equal(decode(P("Nope"), &w, &r), RPC_ST_UNIMPLEMENTED);
    assert_int_equal(r.status, RPC_ST_UNIMPLEMENTED);
    assert_int_equal(r.method, RPC_M_UNKNOWN);
    assert_null(r.pb);
    assert_non_null(r.why);
    rpc_req_free(&r);
}

static void test_send_msg_valid(void **state)
{
    (void)state;
    Protobuf__SendMsgReq q = PROTOBUF__SEND_MSG_REQ__INIT;
    q.seq = (char *)"m1";
    q.appid = 101;
    q.userid = (char *)"u1";
    q.cms = (char *)"enter";
    q.type = (char *)"text";
    q.msg = (char *)"h\xc3\xa9llo \xf0\x9f\x98\x80";
    q.islocal = 1;
    uint8_t buf[256];
    size_t n = protobuf__send_msg_req__pack(&q, buf);
    rpc_req r;
    assert_int_equal(rpc_req_decode(P("SendMsg"), strlen(P("SendMsg")), buf, n, MAXLEN, &r),
                     RPC_ST_OK);
    assert_int_equal(r.method, RPC_M_SEND_MSG);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.appid, 101);
    assert_int_equal(r.seqlen, 2);
    assert_string_equal(r.seq, "m1");
    assert_int_equal(r.uidlen, 2);
    assert_string_equal(r.uid, "u1");
    assert_int_equal(r.cmslen, 5);
    assert_string_equal(r.cms, "enter");
    assert_int_equal(r.msglen, strlen(q.msg));
    assert_string_equal(r.msg, q.msg);
    assert_non_null(r.pb);
    rpc_req_free(&r);
    assert_null(r.pb);
    rpc_req_free(&r);                        /* twice is harmless */
}

static void test_send_msg_defaults(void **state)
{
    (void)state;
    wire w = send_wire("", 0, "u1", NULL, "");   /* no cms: "msg" */
    rpc_req r;
    assert_int_equal(decode(P("SendMsg"), &w, &r), RPC_ST_OK);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.cms, "msg");
    assert_int_equal(r.cmslen, 3);
    assert_int_equal(r.seqlen, 0);
    assert_int_equal(r.msglen, 0);
    rpc_req_free(&r);

    /* An empty payload is a request with every field at its default. */
    wire empty = { .n = 0 };
    assert_int_equal(decode(P("SendMsg"), &empty, &r), RPC_ST_OK);
    assert_int_equal(r.code, IM_USER_ID_ILLEGAL);   /* no userID */
    rpc_req_free(&r);
    assert_int_equal(rpc_req_decode(P("GetUserList"), strlen(P("GetUserList")), NULL, 0, MAXLEN, &r),
                     RPC_ST_OK);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.appid, 0);
    rpc_req_free(&r);
}

static void test_other_methods(void **state)
{
    (void)state;
    rpc_req r;
    wire q = { .n = 0 };
    w_uint(&q, 1, 102);
    w_str(&q, 2, "alice");
    assert_int_equal(decode(P("QueryUsersOnline"), &q, &r), RPC_ST_OK);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.appid, 102);
    assert_string_equal(r.uid, "alice");
    assert_int_equal(r.uidlen, 5);
    rpc_req_free(&r);

    wire l = { .n = 0 };
    w_uint(&l, 1, 104);
    assert_int_equal(decode(P("GetUserList"), &l, &r), RPC_ST_OK);
    assert_int_equal(r.appid, 104);
    rpc_req_free(&r);

    wire a = send_wire("s9", 101, "bob", "msg", "to all");
    assert_int_equal(decode(P("SendMsgAll"), &a, &r), RPC_ST_OK);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.except_len, 3);
    assert_string_equal(r.msg, "to all");
    rpc_req_free(&r);
}

/* KickUser (imgate only): appID, userID (1..19 bytes, else 1002) and the
 * reason (valid UTF-8 without NUL, else 1001). */
static void test_kick_user(void **state)
{
    (void)state;
    rpc_req r;
    wire k = { .n = 0 };
    w_uint(&k, 1, 101);
    w_str(&k, 2, "kim");
    w_str(&k, 3, "suspended");
    assert_int_equal(decode(P("KickUser"), &k, &r), RPC_ST_OK);
    assert_int_equal(r.method, RPC_M_KICK_USER);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.appid, 101);
    assert_string_equal(r.uid, "kim");
    assert_string_equal(r.msg, "suspended");
    assert_int_equal(r.msglen, 9);
    rpc_req_free(&r);

    wire any = { .n = 0 };                   /* appID 0, no reason */
    w_str(&any, 2, "kim");
    assert_int_equal(decode(P("KickUser"), &any, &r), RPC_ST_OK);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.appid, 0);
    assert_string_equal(r.msg, "");
    rpc_req_free(&r);

    const char *bad_uid[] = { "", "12345678901234567890" };
    for (size_t i = 0; i < 2; i++) {
        wire b = { .n = 0 };
        w_uint(&b, 1, 101);
        w_str(&b, 2, bad_uid[i]);
        assert_int_equal(decode(P("KickUser"), &b, &r), RPC_ST_OK);
        assert_int_equal(r.code, IM_USER_ID_ILLEGAL);
        rpc_req_free(&r);
    }
    wire u = { .n = 0 };
    w_str(&u, 2, "kim");
    w_bytes(&u, 3, "\xff", 1);
    assert_int_equal(decode(P("KickUser"), &u, &r), RPC_ST_OK);
    assert_int_equal(r.code, IM_PARAM_ILLEGAL);
    rpc_req_free(&r);
    wire z = { .n = 0 };
    w_str(&z, 2, "kim");
    w_bytes(&z, 3, "a\0b", 3);
    assert_int_equal(decode(P("KickUser"), &z, &r), RPC_ST_OK);
    assert_int_equal(r.code, IM_PARAM_ILLEGAL);
    rpc_req_free(&r);
}

/* Unknown fields are skipped; a repeated scalar field keeps its last value. */
static void test_unknown_and_repeated_fields(void **state)
{
    (void)state;
    wire w = send_wire("s", 101, "u1", "msg", "hi");
    w_uint(&w, 99, 7);
    w_bytes(&w, 100, "x\0y", 3);             /* a NUL outside the known strings */
    w_uint(&w, 2, 103);
    rpc_req r;
    assert_int_equal(decode(P("SendMsg"), &w, &r), RPC_ST_OK);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.appid, 103);
    rpc_req_free(&r);
}

static void test_truncated(void **state)
{
    (void)state;
    wire w = send_wire("seq-1", 101, "u1", "msg", "hello");
    rpc_req r;
    for (size_t cut = 1; cut < w.n; cut++) {
        wire t = w;
        t.n = cut;
        int st = decode(P("SendMsg"), &t, &r);
        /* A cut at a field boundary is a shorter valid request. */
        assert_true(st == RPC_ST_OK || st == RPC_ST_INVALID_ARGUMENT);
        if (st != RPC_ST_OK) {
            assert_null(r.pb);
            assert_non_null(r.why);
        }
        rpc_req_free(&r);
    }
    wire t = w;
    t.n = 3;                                  /* inside seq */
    assert_int_equal(decode(P("SendMsg"), &t, &r), RPC_ST_INVALID_ARGUMENT);
    rpc_req_free(&r);
    wire v = { .n = 0 };
    w_byte(&v, 0x10);                         /* appID key, then a varint that never ends */
    w_byte(&v, 0xff);
    assert_int_equal(decode(P("GetUserList"), &v, &r), RPC_ST_INVALID_ARGUMENT);
    rpc_req_free(&r);
}

static void test_wrong_wire_type(void **state)
{
    (void)state;
    rpc_req r;
    wire a = { .n = 0 };
    w_uint(&a, 1, 5);                         /* seq (string) as a varint */
    assert_int_equal(decode(P("SendMsg"), &a, &r), RPC_ST_INVALID_ARGUMENT);
    rpc_req_free(&r);
    wire b = { .n = 0 };
    w_str(&b, 1, "101");                      /* appID (uint32) as bytes */
    assert_int_equal(decode(P("GetUserList"), &b, &r), RPC_ST_INVALID_ARGUMENT);
    rpc_req_free(&r);
    wire c = { .n = 0 };
    w_byte(&c, 0x0b);                         /* field 1, start group */
    assert_int_equal(decode(P("QueryUsersOnline"), &c, &r), RPC_ST_INVALID_ARGUMENT);
    rpc_req_free(&r);
    wire d = { .n = 0 };
    w_byte(&d, 0x00);                         /* field number 0 */
    w_byte(&d, 0x01);
    assert_int_equal(decode(P("GetUserList"), &d, &r), RPC_ST_INVALID_ARGUMENT);
    rpc_req_free(&r);
}

static void test_oversized(void **state)
{
    (void)state;
    wire w = send_wire("s", 101, "u1", "msg", "0123456789");
    rpc_req r;
    assert_int_equal(rpc_req_decode(P("SendMsg"), strlen(P("SendMsg")), w.b, w.n, w.n, &r),
                     RPC_ST_OK);
    rpc_req_free(&r);
    assert_int_equal(rpc_req_decode(P("SendMsg"), strlen(P("SendMsg")), w.b, w.n, w.n - 1, &r),
                     RPC_ST_RESOURCE_EXHAUSTED);
    assert_null(r.pb);
    rpc_req_free(&r);
}

static void expect_code(const char *path, const wire *w, uint32_t code)
{
    rpc_req r;
    assert_int_equal(decode(path, w, &r), RPC_ST_OK);
    assert_int_equal(r.code, code);
    if (code)
        assert_non_null(r.why);
    rpc_req_free(&r);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    const char *bad[] = { "h\xc3\x28", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
                          "\xff" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wire m = send_wire("s", 101, "u1", "msg", bad[i]);
        expect_code(P("SendMsg"), &m, IM_PARAM_ILLEGAL);
        expect_code(P("SendMsgAll"), &m, IM_PARAM_ILLEGAL);
        wire s = send_wire(bad[i], 101, "u1", "msg", "ok");
        expect_code(P("SendMsg"), &s, IM_PARAM_ILLEGAL);
        wire u = send_wire("s", 101, bad[i], "msg", "ok");
        expect_code(P("SendMsg"), &u, IM_PARAM_ILLEGAL);
        wire c = send_wire("s", 101, "u1", bad[i], "ok");
        expect_code(P("SendMsg"), &c, IM_PARAM_ILLEGAL);
        wire q = { .n = 0 };
        w_uint(&q, 1, 101);
        w_str(&q, 2, bad[i]);
        expect_code(P("QueryUsersOnline"), &q, IM_PARAM_ILLEGAL);
    }
}

static void test_nul_in_strings(void **state)
{
    (void)state;
    wire w = { .n = 0 };
    w_str(&w, 1, "s");
    w_uint(&w, 2, 101);
    w_str(&w, 3, "u1");
    w_bytes(&w, 6, "a\0b", 3);
    expect_code(P("SendMsg"), &w, IM_PARAM_ILLEGAL);
    wire u = { .n = 0 };
    w_bytes(&u, 3, "u1\0x", 4);
    expect_code(P("SendMsgAll"), &u, IM_PARAM_ILLEGAL);
    wire q = { .n = 0 };
    w_bytes(&q, 2, "\0", 1);
    expect_code(P("QueryUsersOnline"), &q, IM_PARAM_ILLEGAL);
}

static void test_user_id_length(void **state)
{
    (void)state;
    char id[32];
    memset(id, 'x', sizeof(id));
    for (size_t len = 0; len <= 25; len++) {
        id[len] = '\0';
        wire w = send_wire("s", 101, id, "msg", "m");
        expect_code(P("SendMsg"), &w, len >= 1 && len <= 19 ? 0 : IM_USER_ID_ILLEGAL);
        rpc_req r;
        assert_int_equal(decode(P("SendMsgAll"), &w, &r), RPC_ST_OK);
        assert_int_equal(r.code, 0);                  /* any userID: it only excludes */
        assert_int_equal(r.except_len, len <= 19 ? len : 0);
        assert_int_equal(r.uidlen, len);
        rpc_req_free(&r);
        id[len] = 'x';
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_send_msg_valid),
        cmocka_unit_test(test_send_msg_defaults),
        cmocka_unit_test(test_other_methods),
        cmocka_unit_test(test_kick_user),
        cmocka_unit_test(test_unknown_and_repeated_fields),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_wire_type),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_nul_in_strings),
        cmocka_unit_test(test_user_id_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
