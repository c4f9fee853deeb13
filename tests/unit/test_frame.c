/* test_frame.c — unit tests of the frame primitives (ws/frame): header
 * parse/encode round trips, protocol checks, unmasking, close payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ws/frame.h"

#define NO_LIMIT UINT64_MAX

static const uint8_t test_mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Turns a server header (from ws_frame_header_encode) into a client one:
 * sets the mask bit and appends the key. Returns the client header length. */
static size_t client_header(uint8_t *out, int opcode, int fin, uint64_t len)
{
    size_t h = ws_frame_header_encode(out, opcode, fin, len);
    out[1] |= 0x80;
    memcpy(out + h, test_mask, 4);
    return h + 4;
}

static void check_round_trip(int opcode, int fin, size_t len)
{
    uint8_t *frame = malloc(WS_MAX_HEADER + len + 1);
    uint8_t *payload = malloc(len + 1);
    assert_non_null(frame);
    assert_non_null(payload);
    for (size_t i = 0; i < len; i++) payload[i] = (uint8_t)(i * 7 + 3);

    size_t h = client_header(frame, opcode, fin, len);
    memcpy(frame + h, payload, len);
    for (size_t i = 0; i < len; i++) frame[h + i] ^= test_mask[i & 3];

    ws_frame_hdr hdr;
    int k = ws_frame_parse_header(frame, h + len, NO_LIMIT, &hdr);
    assert_int_equal(k, (int)h);
    assert_int_equal(hdr.hdr_len, h);
    assert_int_equal(hdr.fin, fin);
    assert_int_equal(hdr.rsv, 0);
    assert_int_equal(hdr.opcode, opcode);
    assert_int_equal(hdr.masked, 1);
    assert_memory_equal(hdr.mask, test_mask, 4);
    assert_true(hdr.len == len);
    /* Every shorter prefix of the header asks for more bytes. */
    for (size_t cut = 0; cut < h; cut++)
        assert_int_equal(ws_frame_parse_header(frame, cut, NO_LIMIT, &hdr), 0);

    ws_unmask(frame + h, len, hdr.mask, 0);
    if (len) assert_memory_equal(frame + h, payload, len);
    free(frame);
    free(payload);
}

static void test_round_trip_all_opcodes(void **state)
{
    (void)state;
    static const size_t data_lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 100000 };
    static const int data_ops[] = { WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY };
    static const int ctl_ops[] = { WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };
    for (size_t o = 0; o < 3; o++)
        for (size_t l = 0; l < sizeof(data_lens) / sizeof(data_lens[0]); l++) {
            check_round_trip(data_ops[o], 1, data_lens[l]);
            check_round_trip(data_ops[o], 0, data_lens[l]);
        }
    for (size_t o = 0; o < 3; o++) {
        check_round_trip(ctl_ops[o], 1, 0);
        check_round_trip(ctl_ops[o], 1, 2);
        check_round_trip(ctl_ops[o], 1, 125);
    }
}

static void test_header_encode(void **state)
{
    (void)state;
    uint8_t out[10];
    assert_int_equal(ws_frame_header_encode(out, WS_OP_TEXT, 1, 0), 2);
    assert_int_equal(out[0], 0x81);
    assert_int_equal(out[1], 0);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_BINARY, 0, 125), 2);
    assert_int_equal(out[0], 0x02);
    assert_int_equal(out[1], 125);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_BINARY, 1, 126), 4);
    assert_int_equal(out[1], 126);
    assert_int_equal(out[2], 0);
    assert_int_equal(out[3], 126);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_TEXT, 1, 65535), 4);
    assert_int_equal(out[2], 0xff);
    assert_int_equal(out[3], 0xff);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_TEXT, 1, 65536), 10);
    assert_int_equal(out[1], 127);
    static const uint8_t want[8] = { 0, 0, 0, 0, 0, 1, 0, 0 };
    assert_memory_equal(out + 2, want, 8);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_PING, 1, 5), 2);
    assert_int_equal(out[0], 0x89);
    /* The server never masks. */
    assert_int_equal(out[1] & 0x80, 0);
}

static int parse2(uint8_t b0, uint8_t b1)
{
    uint8_t f[6] = { b0, b1, 1, 2, 3, 4 };
    ws_frame_hdr h;
    return ws_frame_parse_header(f, sizeof(f), NO_LIMIT, &h);
}

static void test_msb_length_rejected(void **state)
{
    (void)state;
    uint8_t f[14] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4 };
    ws_frame_hdr h;
    assert_int_equal(ws_frame_parse_header(f, sizeof(f), NO_LIMIT, &h), -1002);
    f[2] = 0x7f;
    assert_int_equal(ws_frame_parse_header(f, sizeof(f), NO_LIMIT, &h), 14);
    assert_true(h.len == 0x7f00000000000001ull);
}

static void test_reserved_opcodes(void **state)
{
    (void)state;
    for (int op = 3; op <= 7; op++) assert_int_equal(parse2((uint8_t)(0x80 | op), 0x80), -1002);
    for (int op = 0xB; op <= 0xF; op++) assert_int_equal(parse2((uint8_t)(0x80 | op), 0x80), -1002);
    static const int ok[] = { 0, 1, 2, 8, 9, 10 };
    for (size_t i = 0; i < 6; i++) assert_int_equal(parse2((uint8_t)(0x80 | ok[i]), 0x80), 6);
}

static void test_rsv_bits(void **state)
{
    (void)state;
    for (int rsv = 1; rsv < 8; rsv++) {
        assert_int_equal(parse2((uint8_t)(0x81 | (rsv << 4)), 0x80), -1002);
        /* Detected from the first two bytes alone. */
        uint8_t f[2] = { (uint8_t)(0x82 | (rsv << 4)), 0xfe };
        ws_frame_hdr h;
        assert_int_equal(ws_frame_parse_header(f, 2, NO_LIMIT, &h), -1002);
    }
}

static void test_control_rules(void **state)
{
    (void)state;
    static const uint8_t ops[] = { WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(parse2(ops[i], 0x80), -1002);              /* FIN = 0 */
        assert_int_equal(parse2((uint8_t)(0x80 | ops[i]), 0x80 | 126), -1002);
        assert_int_equal(parse2((uint8_t)(0x80 | ops[i]), 0x80 | 127), -1002);
        assert_int_equal(parse2((uint8_t)(0x80 | ops[i]), 0x80 | 125), 6);
    }
}

static void test_unmasked(void **state)
{
    (void)state;
    for (int op = 0; op <= 2; op++) assert_int_equal(parse2((uint8_t)(0x80 | op), 5), -1002);
    assert_int_equal(parse2(0x89, 0), -1002);
    assert_int_equal(parse2(0x88, 0), -1002);
}

static void test_max_payload(void **state)
{
    (void)state;
    uint8_t f[WS_MAX_HEADER];
    ws_frame_hdr h;
    size_t n = client_header(f, WS_OP_BINARY, 1, 1000);
    assert_int_equal(ws_frame_parse_header(f, n, 1000, &h), (int)n);
    n = client_header(f, WS_OP_BINARY, 1, 1001);
    assert_int_equal(ws_frame_parse_header(f, n, 1000, &h), -1009);
    n = client_header(f, WS_OP_TEXT, 0, 70000);
    assert_int_equal(ws_frame_parse_header(f, n, 65536, &h), -1009);
    n = client_header(f, WS_OP_TEXT, 1, 10);
    assert_int_equal(ws_frame_parse_header(f, n, 0, &h), -1009);
    n = client_header(f, WS_OP_TEXT, 1, 0);
    assert_int_equal(ws_frame_parse_header(f, n, 0, &h), (int)n);
}

static void test_unmask_in_pieces(void **state)
{
    (void)state;
    uint8_t whole[200], pieces[200];
    for (size_t i = 0; i < sizeof(whole); i++) whole[i] = (uint8_t)(i * 31 + 1);
    memcpy(pieces, whole, sizeof(whole));
    ws_unmask(whole, sizeof(whole), test_mask, 0);
    for (size_t i = 0; i < sizeof(whole); i++)
        assert_int_equal(whole[i], (uint8_t)((i * 31 + 1) ^ test_mask[i & 3]));
    for (size_t step = 1; step <= 19; step++) {
        uint8_t copy[200];
        memcpy(copy, pieces, sizeof(copy));
        for (size_t off = 0; off < sizeof(copy); off += step) {
            size_t n = sizeof(copy) - off < step ? sizeof(copy) - off : step;
            ws_unmask(copy + off, n, test_mask, off);
        }
        assert_memory_equal(copy, whole, sizeof(whole));
    }
    ws_unmask(pieces, 0, test_mask, 3);
}

static void put_code(uint8_t *p, uint16_t code)
{
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
}

static void test_close_payload_check(void **state)
{
    (void)state;
    uint8_t p[125] = { 0 };
    uint16_t code = 0;
    assert_int_equal(ws_close_payload_check(p, 0, &code), 0);
    assert_int_equal(code, 1005);
    p[0] = 0x03;
    assert_int_equal(ws_close_payload_check(p, 1, &code), 1002);

    static const uint16_t good[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                     1012, 1013, 1014, 3000, 3999, 4000, 4999 };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        put_code(p, good[i]);
        assert_int_equal(ws_close_payload_check(p, 2, &code), 0);
        assert_int_equal(code, good[i]);
    }
    static const uint16_t bad[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000,
                                    2999, 5000, 65535 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put_code(p, bad[i]);
        assert_int_equal(ws_close_payload_check(p, 2, &code), 1002);
        assert_int_equal(code, bad[i]);
    }

    put_code(p, 1000);
    memcpy(p + 2, "bye \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 15);
    assert_int_equal(ws_close_payload_check(p, 17, &code), 0);
    assert_int_equal(code, 1000);
    assert_int_equal(ws_close_payload_check(p, 16, &code), 1007);  /* cut character */
    memcpy(p + 2, "\xed\xa0\x80", 3);
    assert_int_equal(ws_close_payload_check(p, 5, &code), 1007);
    memcpy(p + 2, "\xc0\xaf", 2);
    assert_int_equal(ws_close_payload_check(p, 4, &code), 1007);
    memset(p + 2, 'r', 123);
    assert_int_equal(ws_close_payload_check(p, 125, &code), 0);
}

static void test_build_close(void **state)
{
    (void)state;
    uint8_t out[2 + 125];
    uint16_t code;
    size_t n = ws_frame_build_close(out, 1000, "bye");
    assert_int_equal(n, 7);
    static const uint8_t want[] = { 0x88, 5, 0x03, 0xe8, 'b', 'y', 'e' };
    assert_memory_equal(out, want, sizeof(want));

    n = ws_frame_build_close(out, 1001, NULL);
    assert_int_equal(n, 4);
    assert_int_equal(out[1], 2);
    assert_int_equal(ws_close_payload_check(out + 2, 2, &code), 0);
    assert_int_equal(code, 1001);

    n = ws_frame_build_close(out, 1009, "");
    assert_int_equal(n, 4);

    char longr[300];
    memset(longr, 'x', sizeof(longr) - 1);
    longr[sizeof(longr) - 1] = '\0';
    n = ws_frame_build_close(out, 1011, longr);
    assert_int_equal(n, 127);
    assert_int_equal(out[0], 0x88);
    assert_int_equal(out[1], 125);
    assert_int_equal(ws_close_payload_check(out + 2, 125, &code), 0);
    assert_int_equal(code, 1011);

    /* Truncation does not split a UTF-8 character ("é" = C3 A9). */
    memset(longr, 'x', 122);
    memcpy(longr + 122, "\xc3\xa9tail", 7);
    n = ws_frame_build_close(out, 1000, longr);
    assert_int_equal(n, 2 + 2 + 122);
    assert_int_equal(ws_close_payload_check(out + 2, n - 2, &code), 0);
    memset(longr, 'x', 121);
    memcpy(longr + 121, "\xc3\xa9tail", 7);
    n = ws_frame_build_close(out, 1000, longr);
    assert_int_equal(n, 2 + 2 + 123);
    assert_int_equal(ws_close_payload_check(out + 2, n - 2, &code), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_opcodes),
        cmocka_unit_test(test_header_encode),
        cmocka_unit_test(test_msb_length_rejected),
        cmocka_unit_test(test_reserved_opcodes),
        cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_control_rules),
        cmocka_unit_test(test_unmasked),
        cmocka_unit_test(test_max_payload),
        cmocka_unit_test(test_unmask_in_pieces),
        cmocka_unit_test(test_close_payload_check),
        cmocka_unit_test(test_build_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
