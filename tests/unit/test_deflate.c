/* test_deflate.c — unit tests of permessage-deflate (RFC 7692): the
 * Sec-WebSocket-Extensions parser and answer (ws/pmd), the 101 with the
 * extension, RSV1 in the frame header, compressed messages through the
 * reader (the RFC's own examples, split at every byte, fragmented, with
 * control frames between the fragments, empty, a 0-length final fragment,
 * too big once inflated, bad data) and the per-worker compression
 * (ws/deflate: round trips, no gain, the push twin, the counters). Client
 * messages are compressed here with zlib directly, as a client would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "core/node.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/handshake.h"
#include "ws/pmd.h"
#include "ws/reader.h"

#define MAX_MSG (64u * 1024u)
#define PMD_BASE "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

/* ---------- negotiation ---------- */

static void expect_offer(const char *header, int want, const char *answer)
{
    char out[WS_PMD_ANSWER_MAX];
    const char *why = "unset";
    int rc = ws_pmd_negotiate(header, out, sizeof(out), &why);
    if (rc != want)
        fail_msg("'%s': got %d, want %d (%s)", header, rc, want, why ? why : "-");
    if (want == WS_PMD_ACCEPTED) {
        assert_string_equal(out, answer);
        assert_null(why);
    } else {
        assert_non_null(why);
    }
}

static void test_pmd_accepts(void **state)
{
    (void)state;
    expect_offer("permessage-deflate", WS_PMD_ACCEPTED, PMD_BASE);
    /* what Chromium and npm ws offer, and what python3-websockets offers */
    expect_offer("permessage-deflate; client_max_window_bits", WS_PMD_ACCEPTED, PMD_BASE);
    expect_offer("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                 WS_PMD_ACCEPTED, PMD_BASE);
    expect_offer("permessage-deflate; client_max_window_bits=10", WS_PMD_ACCEPTED,
                 PMD_BASE "; client_max_window_bits=10");
    expect_offer("permessage-deflate; client_max_window_bits=8", WS_PMD_ACCEPTED,
                 PMD_BASE "; client_max_window_bits=8");
    expect_offer("permessage-deflate; server_max_window_bits=15", WS_PMD_ACCEPTED,
                 PMD_BASE "; server_max_window_bits=15");
    expect_offer("permessage-deflate;server_max_window_bits=15;client_max_window_bits=15",
                 WS_PMD_ACCEPTED, PMD_BASE "; server_max_window_bits=15; client_max_window_bits=15");
    /* quoted values unescape to tokens */
    expect_offer("permessage-deflate; client_max_window_bits=\"12\"", WS_PMD_ACCEPTED,
                 PMD_BASE "; client_max_window_bits=12");
    expect_offer("permessage-deflate; server_max_window_bits=\"1\\5\"", WS_PMD_ACCEPTED,
                 PMD_BASE "; server_max_window_bits=15");
    /* optional whitespace, empty list elements, header lines joined */
    expect_offer(" \t, ,permessage-deflate \t;\t client_max_window_bits \t= 9 ,", WS_PMD_ACCEPTED,
                 PMD_BASE "; client_max_window_bits=9");
    /* other extensions are skipped; the first acceptable offer wins */
    expect_offer("x-webkit-deflate-frame; no_context_takeover, permessage-deflate; "
                 "client_max_window_bits=11, permessage-deflate", WS_PMD_ACCEPTED,
                 PMD_BASE "; client_max_window_bits=11");
}

static void test_pmd_declines(void **state)
{
    (void)state;
    static const char *const declined[] = {
        "", " ,, ", "x-webkit-deflate-frame", "Permessage-Deflate", "permessage-deflate-x",
        "permessage-deflate; foo", "permessage-deflate; foo=1",
        "permessage-deflate; Server_No_Context_Takeover",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"x\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=14",
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=08",
        "permessage-deflate; client_max_window_bits=1a",
        "permessage-deflate; client_max_window_bits=100000000000000000009",
        "permessage-deflate; server_max_window_bits=10, x-foo",
    };
    for (size_t i = 0; i < sizeof(declined) / sizeof(declined[0]); i++)
        expect_offer(declined[i], WS_PMD_DECLINED, NULL);
    /* a declined offer followed by one that can be taken */
    expect_offer("permessage-deflate; server_max_window_bits=10, permessage-deflate; "
                 "client_max_window_bits", WS_PMD_ACCEPTED, PMD_BASE);
    expect_offer("permessage-deflate; bogus, permessage-deflate", WS_PMD_ACCEPTED, PMD_BASE);
    /* NULL header: nothing offered */
    char out[WS_PMD_ANSWER_MAX];
    assert_int_equal(ws_pmd_negotiate(NULL, out, sizeof(out), NULL), WS_PMD_DECLINED);
    /* an answer that does not fit is no answer */
    assert_int_equal(ws_pmd_negotiate("permessage-deflate", out, 20, NULL), WS_PMD_DECLINED);
}

static void test_pmd_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "permessage-deflate;", "permessage-deflate; ;client_max_window_bits",
        "permessage-deflate; =1", "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; client_max_window_bits=\"\"",
        "permessage-deflate; client_max_window_bits=\"10", "permessage-deflate; a=\"two words\"",
        "permessage-deflate; a=\"x\\", "permessage-deflate x", "permessage-deflate; a=b c",
        "permessage-deflate; a=b=c", "@", "permessage-deflate, ;", "permessage-deflate; a=\"\x01\"",
        "permessage-deflate; a=(b)", "\"permessage-deflate\"",
        /* a good offer first does not save a malformed header */
        "permessage-deflate, permessage-deflate;",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_offer(bad[i], WS_PMD_MALFORMED, NULL);
}

static void test_handshake_answer(void **state)
{
    (void)state;
    static const char want[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Extensions: " PMD_BASE "\r\n\r\n";
    char out[512];
    size_t n = ws_handshake_response_ext(out, sizeof(out), "dGhlIHNhbXBsZSBub25jZQ==", PMD_BASE);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
    assert_int_equal(ws_handshake_response_ext(out, sizeof(want) - 1, "dGhlIHNhbXBsZSBub25jZQ==",
                                               PMD_BASE), 0);
    n = ws_handshake_response_ext(out, sizeof(out), "dGhlIHNhbXBsZSBub25jZQ==", NULL);
    assert_null(strstr(out, "Extensions"));
    assert_int_equal(n, ws_handshake_response(out, sizeof(out), "dGhlIHNhbXBsZSBub25jZQ=="));
}

/* ---------- frames ---------- */

static void test_frame_rsv1(void **state)
{
    (void)state;
    ws_frame_hdr h;
    uint8_t f[6] = { 0xC1, 0x80, 1, 2, 3, 4 };          /* FIN RSV1 text, masked, empty */
    assert_int_equal(ws_frame_parse_header(f, sizeof(f), 100, &h), -1002);
    assert_int_equal(ws_frame_parse_header_ext(f, sizeof(f), 100, WS_RSV1, &h), 6);
    assert_int_equal(h.rsv, WS_RSV1);
    f[0] = 0x41;                                          /* RSV1 on a first fragment */
    assert_int_equal(ws_frame_parse_header_ext(f, sizeof(f), 100, WS_RSV1, &h), 6);
    f[0] = 0xA1;                                          /* RSV2 */
    assert_int_equal(ws_frame_parse_header_ext(f, sizeof(f), 100, WS_RSV1, &h), -1002);
    f[0] = 0x91;                                          /* RSV3 */
    assert_int_equal(ws_frame_parse_header_ext(f, sizeof(f), 100, WS_RSV1, &h), -1002);
    f[0] = 0xC9;                                          /* RSV1 on a ping */
    assert_int_equal(ws_frame_parse_header_ext(f, sizeof(f), 100, WS_RSV1, &h), -1002);
    f[0] = 0xC8;                                          /* ... on a close */
    assert_int_equal(ws_frame_parse_header_ext(f, sizeof(f), 100, WS_RSV1, &h), -1002);
}

/* ---------- a client stream ---------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void buf_put(buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Appends a masked frame with first byte b0. */
static void put_raw(buf *s, uint8_t b0, const void *payload, size_t n)
{
    static uint32_t seed = 7;
    uint8_t h[WS_MAX_HEADER], mask[4];
    size_t hl = ws_frame_header_encode(h, b0 & 0x0F, b0 >> 7, n);
    h[0] = b0;
    h[1] |= 0x80;
    seed = seed * 1103515245u + 12345u;
    memcpy(mask, &seed, 4);
    memcpy(h + hl, mask, 4);
    buf_put(s, h, hl + 4);
    size_t at = s->len;
    buf_put(s, payload, n);
    for (size_t i = 0; i < n; i++) s->p[at + i] ^= mask[i & 3];
}

/* The payload of a compressed message as RFC 7692 §7.2.1 makes it. */
static void zcompress(const void *p, size_t n, int level, buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, n) + 16;
    uint8_t *tmp = malloc(cap);
    assert_non_null(tmp);
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = tmp;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    size_t len = cap - z.avail_out;
    assert_true(len >= 4 && memcmp(tmp + len - 4, "\x00\x00\xff\xff", 4) == 0);
    buf_put(out, tmp, len - 4);
    free(tmp);
    deflateEnd(&z);
}

/* ---------- a recorder of what the reader hands out ---------- */

typedef struct rec {
    buf log;
    int events;
} rec;

static int rec_event(rec *r, char kind, unsigned num, const void *p, size_t n)
{
    uint8_t h[1 + sizeof(num) + sizeof(n)];
    h[0] = (uint8_t)kind;
    memcpy(h + 1, &num, sizeof(num));
    memcpy(h + 1 + sizeof(num), &n, sizeof(n));
    buf_put(&r->log, h, sizeof(h));
    buf_put(&r->log, p, n);
    r->events++;
    return 0;
}

static int cb_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    assert_non_null(data);
    int rc = rec_event(ud, 'M', (unsigned)opcode, data, len);
    memset(data, 0x5A, len);              /* the callee's to scribble on */
    return rc;
}

static int cb_ping(void *ud, const uint8_t *data, size_t len) { return rec_event(ud, 'I', 0, data, len); }
static int cb_pong(void *ud, const uint8_t *data, size_t len) { return rec_event(ud, 'O', 0, data, len); }
static int cb_close(void *ud, uint16_t code, const uint8_t *reason, size_t len)
{
    return rec_event(ud, 'C', code, reason, len);
}

static const ws_reader_cb cbs = { cb_message, cb_ping, cb_pong, cb_close };

static void rec_free(rec *r)
{
    buf_free(&r->log);
    r->events = 0;
}

/* Feeds s with cuts at cuts[0..ncuts) to a reader with `ext`; returns the
 * first non-zero result. The reader must be gone when all was consumed. */
static int feed_cuts(const buf *s, const size_t *cuts, size_t ncuts, uint64_t max, unsigned ext,
                     rec *r)
{
    ws_reader *rd = NULL;
    size_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : s->len;
        uint8_t *chunk = malloc(end - pos ? end - pos : 1);
        assert_non_null(chunk);
        memcpy(chunk, s->p + pos, end - pos);
        rc = ws_reader_feed_ext(&rd, chunk, end - pos, max, ext, &cbs, r);
        free(chunk);
        pos = end;
    }
    if (rc == 0) assert_null(rd);
    ws_reader_free(&rd);
    return rc;
}

static void assert_same(const rec *a, const rec *b)
{
    assert_int_equal(a->events, b->events);
    assert_int_equal(a->log.len, b->log.len);
    if (a->log.len) assert_memory_equal(a->log.p, b->log.p, a->log.len);
}

/* The stream whole, cut at every byte once, and byte by byte: each gives
 * want_rc and exactly the events of want. */
static void check_stream(const buf *s, uint64_t max, int want_rc, const rec *want)
{
    rec got = { 0 };
    assert_int_equal(feed_cuts(s, NULL, 0, max, WS_READER_DEFLATE, &got), want_rc);
    assert_same(&got, want);
    rec_free(&got);
    for (size_t cut = 1; cut < s->len; cut++) {
        assert_int_equal(feed_cuts(s, &cut, 1, max, WS_READER_DEFLATE, &got), want_rc);
        assert_same(&got, want);
        rec_free(&got);
    }
    size_t *cuts = malloc(s->len * sizeof(*cuts) + 1);
    assert_non_null(cuts);
    for (size_t i = 1; i < s->len; i++) cuts[i - 1] = i;
    assert_int_equal(feed_cuts(s, cuts, s->len ? s->len - 1 : 0, max, WS_READER_DEFLATE, &got),
                     want_rc);
    assert_same(&got, want);
    rec_free(&got);
    free(cuts);
}

static void want_msg(rec *want, int opcode, const void *p, size_t n)
{
    rec_event(want, 'M', (unsigned)opcode, p, n);
}

/* RFC 7692 §7.2.3.1 to 7.2.3.4: "Hello" four ways, and §7.2.3.6 empty. */
static void test_rfc_examples(void **state)
{
    (void)state;
    static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
    static const uint8_t stored[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c,
                                      0x6f, 0x00 };
    static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 };
    static const uint8_t frag1[] = { 0xf2, 0x48, 0xcd }, frag2[] = { 0xc9, 0xc9, 0x07, 0x00 };
    static const uint8_t empty[] = { 0x00 };
    buf s = { 0 };
    rec want = { 0 };
    put_raw(&s, 0xC1, hello, sizeof(hello));
    want_msg(&want, WS_OP_TEXT, "Hello", 5);
    put_raw(&s, 0xC1, stored, sizeof(stored));
    want_msg(&want, WS_OP_TEXT, "Hello", 5);
    put_raw(&s, 0xC2, bfinal, sizeof(bfinal));
    want_msg(&want, WS_OP_BINARY, "Hello", 5);
    put_raw(&s, 0x41, frag1, sizeof(frag1));              /* RSV1 on the first fragment only */
    put_raw(&s, 0x89, "p", 1);                            /* a ping between the fragments */
    rec_event(&want, 'I', 0, "p", 1);
    put_raw(&s, 0x80, frag2, sizeof(frag2));
    want_msg(&want, WS_OP_TEXT, "Hello", 5);
    put_raw(&s, 0xC1, empty, sizeof(empty));             /* an empty message */
    want_msg(&want, WS_OP_TEXT, "", 0);
    put_raw(&s, 0x41, hello, sizeof(hello));              /* all data, then a 0-length final */
    put_raw(&s, 0x8A, "", 0);
    rec_event(&want, 'O', 0, "", 0);
    put_raw(&s, 0x80, "", 0);
    want_msg(&want, WS_OP_TEXT, "Hello", 5);
    put_raw(&s, 0x81, "plain", 5);                        /* uncompressed messages still work */
    want_msg(&want, WS_OP_TEXT, "plain", 5);
    check_stream(&s, MAX_MSG, 0, &want);
    buf_free(&s);
    rec_free(&want);
}

static void make_text(char *p, size_t n)
{
    static const char *const words[] = { "hello ", "world ", "push ", "room ", "message ",
                                         "é ", "日本 ", "order-42 " };
    size_t at = 0;
    uint32_t x = 12345;
    while (at < n) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 8];
        size_t k = strlen(w);
        if (at + k > n) k = n - at;
        memcpy(p + at, w, k);
        at += k;
    }
    while (at > 0 && ((uint8_t)p[n - 1] & 0x80)) p[--n] = ' ';   /* no cut character */
}

static void test_compressed_messages(void **state)
{
    (void)state;
    size_t n = 3000;
    char *text = malloc(n);
    assert_non_null(text);
    make_text(text, n);
    buf s = { 0 }, z = { 0 };
    rec want = { 0 };
    /* one compressed text message in one frame, then fragmented in three
     * with a pong between, then a compressed binary one */
    zcompress(text, n, 6, &z);
    assert_true(z.len < n / 2);
    put_raw(&s, 0xC1, z.p, z.len);
    want_msg(&want, WS_OP_TEXT, text, n);
    put_raw(&s, 0x41, z.p, 10);
    put_raw(&s, 0x00, z.p + 10, z.len - 20);
    put_raw(&s, 0x8A, "x", 1);
    rec_event(&want, 'O', 0, "x", 1);
    put_raw(&s, 0x80, z.p + z.len - 10, 10);
    want_msg(&want, WS_OP_TEXT, text, n);
    buf_free(&z);
    zcompress(text, 100, 0, &z);                          /* level 0: stored blocks */
    put_raw(&s, 0xC2, z.p, z.len);
    want_msg(&want, WS_OP_BINARY, text, 100);
    check_stream(&s, MAX_MSG, 0, &want);
    buf_free(&s);
    buf_free(&z);
    rec_free(&want);
    free(text);
}

/* A stream of one compressed frame of payload p[0..n) (first byte b0). */
static int one_frame(uint8_t b0, const void *p, size_t n, uint64_t max, unsigned ext)
{
    buf s = { 0 };
    rec r = { 0 };
    put_raw(&s, b0, p, n);
    int rc = feed_cuts(&s, NULL, 0, max, ext, &r);
    if (rc == 0) assert_int_equal(r.events, 1);
    buf_free(&s);
    rec_free(&r);
    return rc;
}

static void test_rsv1_rules(void **state)
{
    (void)state;
    static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
    assert_int_equal(one_frame(0xC1, hello, sizeof(hello), MAX_MSG, WS_READER_DEFLATE), 0);
    /* not negotiated: RSV1 is a protocol error */
    assert_int_equal(one_frame(0xC1, hello, sizeof(hello), MAX_MSG, 0), 1002);
    /* RSV1 on a control frame, RSV2, RSV3 */
    assert_int_equal(one_frame(0xC9, "", 0, MAX_MSG, WS_READER_DEFLATE), 1002);
    assert_int_equal(one_frame(0xA1, hello, sizeof(hello), MAX_MSG, WS_READER_DEFLATE), 1002);
    assert_int_equal(one_frame(0x91, hello, sizeof(hello), MAX_MSG, WS_READER_DEFLATE), 1002);
    /* RSV1 on a continuation frame */
    buf s = { 0 };
    rec r = { 0 };
    put_raw(&s, 0x41, hello, 3);
    put_raw(&s, 0xC0, hello + 3, sizeof(hello) - 3);
    assert_int_equal(feed_cuts(&s, NULL, 0, MAX_MSG, WS_READER_DEFLATE, &r), 1002);
    buf_free(&s);
    put_raw(&s, 0x01, "ab", 2);                           /* plain first, RSV1 later */
    put_raw(&s, 0xC0, hello, sizeof(hello));
    assert_int_equal(feed_cuts(&s, NULL, 0, MAX_MSG, WS_READER_DEFLATE, &r), 1002);
    assert_int_equal(r.events, 0);
    buf_free(&s);
    rec_free(&r);
}

static void test_bad_data(void **state)
{
    (void)state;
    static const uint8_t reserved[] = { 0xff, 0xff, 0xff };       /* BTYPE 11 */
    static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
    static const uint8_t badlen[] = { 0x00, 0x05, 0x00, 0x00, 0x00, 'a' };  /* LEN != ~NLEN */
    assert_int_equal(one_frame(0xC1, reserved, sizeof(reserved), MAX_MSG, WS_READER_DEFLATE), 1007);
    assert_int_equal(one_frame(0xC2, badlen, sizeof(badlen), MAX_MSG, WS_READER_DEFLATE), 1007);
    /* cut short: the data does not end on a block boundary */
    assert_int_equal(one_frame(0xC1, hello, 3, MAX_MSG, WS_READER_DEFLATE), 1007);
    /* an empty payload is not DEFLATE data (an empty message is 0x00) */
    assert_int_equal(one_frame(0xC1, "", 0, MAX_MSG, WS_READER_DEFLATE), 1007);
    /* valid DEFLATE, invalid UTF-8: 1007 for text, fine for binary */
    buf z = { 0 };
    zcompress("ok \xff\xfe", 5, 6, &z);
    assert_int_equal(one_frame(0xC1, z.p, z.len, MAX_MSG, WS_READER_DEFLATE), 1007);
    assert_int_equal(one_frame(0xC2, z.p, z.len, MAX_MSG, WS_READER_DEFLATE), 0);
    buf_free(&z);
    zcompress("\xe6\x97", 2, 6, &z);                      /* a character cut in two */
    assert_int_equal(one_frame(0xC1, z.p, z.len, MAX_MSG, WS_READER_DEFLATE), 1007);
    buf_free(&z);
}

static void test_too_big(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    uint8_t *zeros = calloc(1, n + 1);
    assert_non_null(zeros);
    buf z = { 0 };
    /* a bomb: ~1 KiB that inflates to 1 MiB, cap 64 KiB */
    zcompress(zeros, n, 9, &z);
    assert_true(z.len < 2048);
    assert_int_equal(one_frame(0xC2, z.p, z.len, MAX_MSG, WS_READER_DEFLATE), 1009);
    buf_free(&z);
    /* exactly the cap is fine, one byte more is not */
    zcompress(zeros, MAX_MSG, 9, &z);
    assert_int_equal(one_frame(0xC2, z.p, z.len, MAX_MSG, WS_READER_DEFLATE), 0);
    buf_free(&z);
    zcompress(zeros, MAX_MSG + 1, 9, &z);
    assert_int_equal(one_frame(0xC2, z.p, z.len, MAX_MSG, WS_READER_DEFLATE), 1009);
    /* ... also when it comes fragmented */
    buf s = { 0 };
    rec r = { 0 };
    put_raw(&s, 0x42, z.p, z.len / 2);
    put_raw(&s, 0x80, z.p + z.len / 2, z.len - z.len / 2);
    assert_int_equal(feed_cuts(&s, NULL, 0, MAX_MSG, WS_READER_DEFLATE, &r), 1009);
    buf_free(&s);
    buf_free(&z);
    /* compressed bytes past the wire cap are refused from the header */
    uint64_t small = 1000;
    size_t wire = WS_DEFLATE_WIRE_CAP(small);
    uint8_t *junk = calloc(1, wire + 1);
    assert_non_null(junk);
    assert_int_equal(one_frame(0xC2, junk, wire + 1, small, WS_READER_DEFLATE), 1009);
    /* an uncompressed message keeps the plain cap on such a connection */
    assert_int_equal(one_frame(0x82, junk, small + 1, small, WS_READER_DEFLATE), 1009);
    assert_int_equal(one_frame(0x82, junk, small, small, WS_READER_DEFLATE), 0);
    free(junk);
    free(zeros);
    rec_free(&r);
}

/* ---------- compression by the server ---------- */

/* Inflates a server frame built by ws_deflate_frame; checks its header. */
static void check_server_frame(const sbuf *b, int opcode, const void *p, size_t n)
{
    assert_int_equal(b->data[0], 0x80 | WS_DEFLATE_RSV1 | opcode);
    size_t len7 = b->data[1] & 0x7F, off = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
    assert_int_equal(b->data[1] & 0x80, 0);
    uint8_t *out = NULL;
    size_t outlen = 0;
    assert_int_equal(ws_inflate_message(b->data + off, b->len - off, n, &out, &outlen), 0);
    assert_int_equal(outlen, n);
    assert_memory_equal(out, p, n);
    free(out);
    assert_true(b->len - off < n);
}

static void test_server_compression(void **state)
{
    (void)state;
    ws_deflate_stats a, b;
    ws_deflate_stats_get(&a);
    size_t n = 70000;
    char *text = malloc(n);
    assert_non_null(text);
    make_text(text, n);
    static const size_t sizes[] = { 200, 1000, 65535, 65536, 70000 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t k = sizes[i];
        sbuf *f = ws_deflate_frame(WS_OP_TEXT, (const uint8_t *)text, k);
        assert_non_null(f);
        check_server_frame(f, WS_OP_TEXT, text, k);
        sbuf_unref(f);
    }
    /* what does not shrink goes plain */
    uint8_t noise[300];
    uint32_t x = 99;
    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (uint8_t)(x >> 16);
    }
    assert_null(ws_deflate_frame(WS_OP_BINARY, noise, sizeof(noise)));
    assert_null(ws_deflate_frame(WS_OP_TEXT, (const uint8_t *)"", 0));
    ws_deflate_stats_get(&b);
    assert_true(b.compressed - a.compressed >= 3);
    assert_int_equal(b.compress_skipped - a.compress_skipped, 2);
    assert_true(b.compress_out - a.compress_out < b.compress_in - a.compress_in);
    assert_true(b.zlib_bytes > 0);
    free(text);
}

static sbuf *plain_frame(int opcode, const char *p, size_t n)
{
    uint8_t h[10];
    size_t hl = ws_frame_header_encode(h, opcode, 1, n);
    sbuf *b = sbuf_new(hl + n);
    assert_non_null(b);
    memcpy(b->data, h, hl);
    memcpy(b->data + hl, p, n);
    return b;
}

static void test_push_twin(void **state)
{
    (void)state;
    char text[400];
    make_text(text, sizeof(text));
    g_node.cfg.deflateMinSize = 128;
    sbuf *small = plain_frame(WS_OP_TEXT, text, 127), *big = plain_frame(WS_OP_TEXT, text, 400);
    sbuf *ping = plain_frame(WS_OP_PING, text, 125);
    assert_null(ws_deflate_push(small));                 /* under app.deflateMinSize */
    assert_null(ws_deflate_push(ping));                  /* never a control frame */
    sbuf *z = ws_deflate_push(big);
    assert_non_null(z);
    check_server_frame(z, WS_OP_TEXT, text, 400);
    sbuf_unref(z);
    g_node.cfg.deflateMinSize = 0;
    z = ws_deflate_push(small);
    assert_non_null(z);
    check_server_frame(z, WS_OP_TEXT, text, 127);
    sbuf_unref(z);
    sbuf_unref(small);
    sbuf_unref(big);
    sbuf_unref(ping);
}

static void test_inflate_limits(void **state)
{
    (void)state;
    char text[5000];
    make_text(text, sizeof(text));
    buf z = { 0 };
    zcompress(text, sizeof(text), 6, &z);
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(ws_inflate_message(z.p, z.len, sizeof(text), &out, &len), 0);
    assert_int_equal(len, sizeof(text));
    assert_memory_equal(out, text, len);
    free(out);
    assert_int_equal(ws_inflate_message(z.p, z.len, sizeof(text) - 1, &out, &len), 1009);
    assert_null(out);
    assert_int_equal(ws_inflate_message(z.p, z.len, 0, &out, &len), 1009);
    /* the stream is reset: the same message inflates again after a failure */
    assert_int_equal(ws_inflate_message((const uint8_t *)"\xff\xff", 2, 100, &out, &len), 1007);
    assert_int_equal(ws_inflate_message(z.p, z.len, sizeof(text), &out, &len), 0);
    free(out);
    buf_free(&z);
}

static int teardown(void **state)
{
    (void)state;
    ws_deflate_thread_free();
    ws_deflate_stats s;
    ws_deflate_stats_get(&s);
    assert_int_equal(s.zlib_bytes, 0);                    /* every byte was counted back */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pmd_accepts),
        cmocka_unit_test(test_pmd_declines),
        cmocka_unit_test(test_pmd_malformed),
        cmocka_unit_test(test_handshake_answer),
        cmocka_unit_test(test_frame_rsv1),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_compressed_messages),
        cmocka_unit_test(test_rsv1_rules),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_server_compression),
        cmocka_unit_test(test_push_twin),
        cmocka_unit_test(test_inflate_limits),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
