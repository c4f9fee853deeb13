/* test_reader.c — unit tests of the incremental reader (ws/reader): the same
 * stream fed whole, split at every byte, byte by byte and in random chunks
 * must give the same callbacks; protocol errors give their close codes;
 * the state exists only while something is incomplete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ws/frame.h"
#include "ws/reader.h"

#define MAX_MSG (64u * 1024u)

/* ---- growable byte buffer (test helper) ---- */

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
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- client frame builder ---- */

static unsigned mask_seed = 1;

/* Appends a frame with first byte b0 (FIN, RSV, opcode as given). */
static void put_raw(buf *s, uint8_t b0, int masked, const void *payload, size_t n)
{
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header_encode(h, b0 & 0x0F, b0 >> 7, n);
    uint8_t mask[4];
    h[0] = b0;
    mask_seed = mask_seed * 1103515245u + 12345u;
    for (int i = 0; i < 4; i++) mask[i] = (uint8_t)(mask_seed >> (8 * i));
    if (mask_seed % 5 == 0) mask[1] = 0;
    if (masked) {
        h[1] |= 0x80;
        memcpy(h + hl, mask, 4);
        hl += 4;
    }
    buf_put(s, h, hl);
    size_t at = s->len;
    buf_put(s, payload, n);
    if (masked)
        for (size_t i = 0; i < n; i++) s->p[at + i] ^= mask[i & 3];
}

static void put(buf *s, int opcode, int fin, const void *payload, size_t n)
{
    put_raw(s, (uint8_t)((fin ? 0x80 : 0) | opcode), 1, payload, n);
}

static void put_str(buf *s, int opcode, int fin, const char *str)
{
    put(s, opcode, fin, str, strlen(str));
}

static void put_close(buf *s, uint16_t code, const char *reason)
{
    uint8_t p[200];
    size_t n = strlen(reason);
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, n);
    put(s, WS_OP_CLOSE, 1, p, n + 2);
}

/* ---- callback recorder ---- */

typedef struct rec {
    buf log;
    int events;
    int stop_at;                 /* return non-zero at this event (1-based) */
    int free_on_stop;            /* ...after freeing the reader itself */
    ws_reader **rd;
    uintptr_t in_lo, in_hi;      /* the chunk being fed */
    int in_place;                /* callbacks whose data pointed into it */
} rec;

static int rec_event(rec *r, char kind, unsigned num, const uint8_t *p, size_t n)
{
    uint8_t h[1 + sizeof(num) + sizeof(n)];
    h[0] = (uint8_t)kind;
    memcpy(h + 1, &num, sizeof(num));
    memcpy(h + 1 + sizeof(num), &n, sizeof(n));
    buf_put(&r->log, h, sizeof(h));
    buf_put(&r->log, p, n);
    r->events++;
    uintptr_t a = (uintptr_t)p;
    if (n && a >= r->in_lo && a + n <= r->in_hi) r->in_place++;
    if (!r->stop_at || r->events < r->stop_at) return 0;
    if (r->free_on_stop) ws_reader_free(r->rd);
    return 1;
}

static int cb_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    assert_non_null(data);
    return rec_event(ud, 'M', (unsigned)opcode, data, len);
}

static int cb_ping(void *ud, const uint8_t *data, size_t len)
{
    return rec_event(ud, 'I', 0, data, len);
}

static int cb_pong(void *ud, const uint8_t *data, size_t len)
{
    return rec_event(ud, 'O', 0, data, len);
}

static int cb_close(void *ud, uint16_t code, const uint8_t *reason, size_t len)
{
    return rec_event(ud, 'C', code, reason, len);
}

static const ws_reader_cb cbs = { cb_message, cb_ping, cb_pong, cb_close };

static void expect_ev(rec *r, char kind, unsigned num, const void *p, size_t n)
{
    (void)rec_event(r, kind, num, p, n);
}

static void expect_str(rec *r, char kind, unsigned num, const char *s)
{
    expect_ev(r, kind, num, s, strlen(s));
}

static void rec_free(rec *r)
{
    buf_free(&r->log);
    memset(r, 0, sizeof(*r));
}

/* ---- runners ---- */

static int feed_chunk(ws_reader **rd, const uint8_t *p, size_t n, uint64_t max, rec *r)
{
    uint8_t *chunk = malloc(n ? n : 1);   /* exact size: ASan sees overreads */
    assert_non_null(chunk);
    memcpy(chunk, p, n);
    r->in_lo = (uintptr_t)chunk;
    r->in_hi = (uintptr_t)chunk + n;
    r->rd = rd;
    int rc = ws_reader_feed(rd, chunk, n, max, &cbs, r);
    free(chunk);
    return rc;
}

/* Feeds s in chunks ending at cuts[0..ncuts), then the rest. Returns the
 * first non-zero result (or 0); *idle tells whether *rd ended NULL. */
static int run_chunks(const buf *s, const size_t *cuts, size_t ncuts, uint64_t max, rec *r,
                      int *idle)
{
    ws_reader *rd = NULL;
    size_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : s->len;
        rc = feed_chunk(&rd, s->p + pos, end - pos, max, r);
        if (rc == 0) assert_int_equal(ws_reader_held(rd) != 0, rd != NULL);
        pos = end;
    }
    if (idle) *idle = rd == NULL;
    ws_reader_free(&rd);
    return rc;
}

static void assert_same_log(const rec *a, const rec *b)
{
    assert_int_equal(a->events, b->events);
    assert_int_equal(a->log.len, b->log.len);
    if (a->log.len) assert_memory_equal(a->log.p, b->log.p, a->log.len);
}

static void check_cuts(const buf *s, const size_t *cuts, size_t ncuts, uint64_t max, int want_rc,
                       const rec *want)
{
    rec got = { 0 };
    int idle = 0;
    int rc = run_chunks(s, cuts, ncuts, max, &got, &idle);
    assert_int_equal(rc, want_rc);
    assert_same_log(&got, want);
    rec_free(&got);
}

/* The stream whole, split at every position, and byte by byte, must return
 * want_rc and produce exactly the callbacks recorded in want. */
static void check_stream(const buf *s, uint64_t max, int want_rc, const rec *want)
{
    check_cuts(s, NULL, 0, max, want_rc, want);
    for (size_t cut = 1; cut < s->len; cut++) check_cuts(s, &cut, 1, max, want_rc, want);
    size_t *cuts = malloc(s->len * sizeof(*cuts) + 1);
    assert_non_null(cuts);
    for (size_t i = 1; i < s->len; i++) cuts[i - 1] = i;
    check_cuts(s, cuts, s->len ? s->len - 1 : 0, max, want_rc, want);
    free(cuts);
}

/* ---- tests ---- */

static void test_split_everywhere(void **state)
{
    (void)state;
    buf s = { 0 };
    rec want = { 0 };
    uint8_t bin[300], ping[125];
    for (size_t i = 0; i < sizeof(bin); i++) bin[i] = (uint8_t)(i * 13);
    memset(ping, 'p', sizeof(ping));

    put_str(&s, WS_OP_TEXT, 1, "Hello");
    expect_str(&want, 'M', WS_OP_TEXT, "Hello");
    put(&s, WS_OP_BINARY, 1, bin, 126);
    expect_ev(&want, 'M', WS_OP_BINARY, bin, 126);
    put_str(&s, WS_OP_TEXT, 0, "Hel");
    put_str(&s, WS_OP_PING, 1, "p1");
    put_str(&s, WS_OP_CONT, 0, "lo \xce");           /* κ split across fragments */
    put_str(&s, WS_OP_PONG, 1, "");
    put_str(&s, WS_OP_CONT, 1, "\xba world \xf0\x9f\x98\x80");
    expect_str(&want, 'I', 0, "p1");
    expect_str(&want, 'O', 0, "");
    expect_str(&want, 'M', WS_OP_TEXT, "Hello \xce\xba world \xf0\x9f\x98\x80");
    put_str(&s, WS_OP_TEXT, 1, "");
    expect_str(&want, 'M', WS_OP_TEXT, "");
    put_str(&s, WS_OP_BINARY, 0, "");
    put_str(&s, WS_OP_CONT, 1, "");
    expect_str(&want, 'M', WS_OP_BINARY, "");
    put(&s, WS_OP_PING, 1, ping, sizeof(ping));
    expect_ev(&want, 'I', 0, ping, sizeof(ping));
    put(&s, WS_OP_BINARY, 0, bin, 200);
    put(&s, WS_OP_CONT, 1, bin + 200, 100);
    expect_ev(&want, 'M', WS_OP_BINARY, bin, 300);
    put_close(&s, 1000, "bye");
    expect_str(&want, 'C', 1000, "bye");

    check_stream(&s, MAX_MSG, 0, &want);
    buf_free(&s);
    rec_free(&want);
}

/* Every pair of cut points (three chunks) on a shorter stream. */
static void test_split_in_three(void **state)
{
    (void)state;
    buf s = { 0 };
    rec want = { 0 };
    put_str(&s, WS_OP_TEXT, 0, "ab\xe2");
    put_str(&s, WS_OP_PING, 1, "x");
    put_str(&s, WS_OP_CONT, 1, "\x82\xac");
    put_str(&s, WS_OP_BINARY, 1, "zz");
    expect_str(&want, 'I', 0, "x");
    expect_str(&want, 'M', WS_OP_TEXT, "ab\xe2\x82\xac");
    expect_str(&want, 'M', WS_OP_BINARY, "zz");
    for (size_t i = 0; i <= s.len; i++)
        for (size_t j = i; j <= s.len; j++) {
            size_t cuts[2] = { i, j };
            check_cuts(&s, cuts, 2, MAX_MSG, 0, &want);
        }
    buf_free(&s);
    rec_free(&want);
}

static void test_big_messages_random_chunks(void **state)
{
    (void)state;
    buf s = { 0 };
    rec want = { 0 };
    size_t n = 70000;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) big[i] = (uint8_t)('a' + i % 26);

    put(&s, WS_OP_TEXT, 1, big, 65536);                  /* 64-bit length */
    expect_ev(&want, 'M', WS_OP_TEXT, big, 65536);
    put(&s, WS_OP_BINARY, 0, big, 30000);
    put_str(&s, WS_OP_PING, 1, "mid");
    put(&s, WS_OP_CONT, 0, big + 30000, 35535);
    put(&s, WS_OP_CONT, 1, big + 65535, n - 65535);
    expect_str(&want, 'I', 0, "mid");
    expect_ev(&want, 'M', WS_OP_BINARY, big, n);
    put(&s, WS_OP_BINARY, 1, big, 65535);                /* 16-bit length */
    expect_ev(&want, 'M', WS_OP_BINARY, big, 65535);

    check_cuts(&s, NULL, 0, 1u << 20, 0, &want);
    unsigned seed = 7;
    size_t cuts[4096];
    for (int iter = 0; iter < 40; iter++) {
        size_t nc = 0, pos = 0;
        size_t span = iter < 10 ? 16 : iter < 20 ? 700 : 20000;
        while (nc < 4096) {
            seed = seed * 1103515245u + 12345u;
            pos += 1 + (seed >> 8) % span;
            if (pos >= s.len) break;
            cuts[nc++] = pos;
        }
        if (nc == 4096) continue;
        check_cuts(&s, cuts, nc, 1u << 20, 0, &want);
    }
    free(big);
    buf_free(&s);
    rec_free(&want);
}

static void test_multiple_frames_one_feed_in_place(void **state)
{
    (void)state;
    buf s = { 0 };
    rec got = { 0 };
    uint8_t bin[1000];
    memset(bin, 0xAB, sizeof(bin));
    put_str(&s, WS_OP_TEXT, 1, "one");
    put(&s, WS_OP_BINARY, 1, bin, sizeof(bin));
    put_str(&s, WS_OP_PING, 1, "ping");
    put_str(&s, WS_OP_TEXT, 1, "two");
    int idle = 0;
    assert_int_equal(run_chunks(&s, NULL, 0, MAX_MSG, &got, &idle), 0);
    assert_int_equal(got.events, 4);
    assert_true(idle);
    /* Whole frames are handed out from the input buffer itself. */
    assert_int_equal(got.in_place, 4);
    buf_free(&s);
    rec_free(&got);
}

/* Runs s (with the events it must produce) split everywhere, then resets both. */
static void expect_run(buf *s, rec *want, uint64_t max, int rc)
{
    check_stream(s, max, rc, want);
    buf_free(s);
    rec_free(want);
}

static void test_bad_frames(void **state)
{
    (void)state;
    buf s = { 0 };
    rec w = { 0 };

    put_str(&s, WS_OP_TEXT, 1, "ok");
    expect_str(&w, 'M', WS_OP_TEXT, "ok");
    put_raw(&s, 0x81, 0, "unmasked", 8);
    expect_run(&s, &w, MAX_MSG, 1002);

    put_raw(&s, 0x81 | 0x40, 1, "rsv1", 4);
    expect_run(&s, &w, MAX_MSG, 1002);
    put_raw(&s, 0x82 | 0x10, 1, "rsv3", 4);
    expect_run(&s, &w, MAX_MSG, 1002);
    put_raw(&s, 0x83, 1, "op3", 3);
    expect_run(&s, &w, MAX_MSG, 1002);
    put_raw(&s, 0x8B, 1, "opB", 3);
    expect_run(&s, &w, MAX_MSG, 1002);
    put_raw(&s, 0x09, 1, "frag", 4);                  /* fragmented ping */
    expect_run(&s, &w, MAX_MSG, 1002);

    uint8_t big[126] = { 0 };
    put(&s, WS_OP_PING, 1, big, sizeof(big));         /* control > 125 */
    expect_run(&s, &w, MAX_MSG, 1002);

    uint8_t msb[14] = { 0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
    buf_put(&s, msb, sizeof(msb));
    expect_run(&s, &w, MAX_MSG, 1002);
}

static void test_fragmentation_errors(void **state)
{
    (void)state;
    buf s = { 0 };
    rec w = { 0 };

    put_str(&s, WS_OP_CONT, 1, "orphan");
    expect_run(&s, &w, MAX_MSG, 1002);

    put_str(&s, WS_OP_TEXT, 1, "done");
    put_str(&s, WS_OP_CONT, 0, "late");
    expect_str(&w, 'M', WS_OP_TEXT, "done");
    expect_run(&s, &w, MAX_MSG, 1002);

    put_str(&s, WS_OP_TEXT, 0, "a");
    put_str(&s, WS_OP_TEXT, 1, "b");
    expect_run(&s, &w, MAX_MSG, 1002);

    put_str(&s, WS_OP_BINARY, 0, "a");
    put_str(&s, WS_OP_PING, 1, "between");
    put_str(&s, WS_OP_BINARY, 0, "b");
    expect_str(&w, 'I', 0, "between");
    expect_run(&s, &w, MAX_MSG, 1002);
}

static void test_utf8_errors(void **state)
{
    (void)state;
    buf s = { 0 };
    rec w = { 0 };

    put_str(&s, WS_OP_TEXT, 1, "bad \xc0\xaf");
    expect_run(&s, &w, MAX_MSG, 1007);

    /* Fails fast in the middle of a message, without its final fragment. */
    put_str(&s, WS_OP_TEXT, 0, "ok");
    put_str(&s, WS_OP_CONT, 0, "x\xff");
    expect_run(&s, &w, MAX_MSG, 1007);

    /* ...and in the middle of a single frame whose end has not arrived. */
    put_str(&s, WS_OP_TEXT, 1, "0123456789\xed\xa0\x80 tail that never comes");
    s.len -= 10;
    expect_run(&s, &w, MAX_MSG, 1007);

    /* Surrogate split across fragments. */
    put_str(&s, WS_OP_TEXT, 0, "\xed");
    put_str(&s, WS_OP_CONT, 1, "\xa0\x80");
    expect_run(&s, &w, MAX_MSG, 1007);

    /* Message ends inside a character. */
    put_str(&s, WS_OP_TEXT, 0, "a\xe2\x82");
    put_str(&s, WS_OP_CONT, 1, "");
    expect_run(&s, &w, MAX_MSG, 1007);
    put_str(&s, WS_OP_TEXT, 1, "a\xe2\x82");
    expect_run(&s, &w, MAX_MSG, 1007);

    /* A 4-byte character spread over three fragments is fine. */
    put_str(&s, WS_OP_TEXT, 0, "\xf0\x9f");
    put_str(&s, WS_OP_CONT, 0, "\x98");
    put_str(&s, WS_OP_CONT, 1, "\x80");
    expect_str(&w, 'M', WS_OP_TEXT, "\xf0\x9f\x98\x80");
    expect_run(&s, &w, MAX_MSG, 0);

    /* Binary is not validated. */
    put_str(&s, WS_OP_BINARY, 1, "\xff\xc0\xaf");
    expect_str(&w, 'M', WS_OP_BINARY, "\xff\xc0\xaf");
    expect_run(&s, &w, MAX_MSG, 0);
}

static void test_max_message(void **state)
{
    (void)state;
    buf s = { 0 };
    rec w = { 0 };
    uint8_t p[200];
    memset(p, 'm', sizeof(p));

    put(&s, WS_OP_TEXT, 1, p, 64);
    expect_ev(&w, 'M', WS_OP_TEXT, p, 64);
    expect_run(&s, &w, 64, 0);
    put(&s, WS_OP_TEXT, 1, p, 65);
    expect_run(&s, &w, 64, 1009);

    put(&s, WS_OP_BINARY, 0, p, 40);
    put(&s, WS_OP_CONT, 1, p, 24);
    expect_ev(&w, 'M', WS_OP_BINARY, p, 64);
    expect_run(&s, &w, 64, 0);

    put(&s, WS_OP_BINARY, 0, p, 40);
    put(&s, WS_OP_CONT, 0, p, 20);
    put(&s, WS_OP_CONT, 1, p, 5);
    expect_run(&s, &w, 64, 1009);

    /* Detected from the header of the fragment that would exceed the cap,
     * before its payload arrives. */
    put(&s, WS_OP_TEXT, 0, p, 40);
    put(&s, WS_OP_CONT, 1, p, 25);
    s.len -= 25;
    expect_run(&s, &w, 64, 1009);

    /* Control frames do not count against the message cap. */
    put(&s, WS_OP_PING, 1, p, 100);
    expect_ev(&w, 'I', 0, p, 100);
    expect_run(&s, &w, 64, 0);

    /* A huge announced length fails at once. */
    uint8_t huge[14] = { 0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4 };
    buf_put(&s, huge, sizeof(huge));
    expect_run(&s, &w, MAX_MSG, 1009);

    /* Max 0: only empty messages. */
    put(&s, WS_OP_TEXT, 1, p, 0);
    expect_ev(&w, 'M', WS_OP_TEXT, p, 0);
    put(&s, WS_OP_TEXT, 1, p, 1);
    expect_run(&s, &w, 0, 1009);
}

static void test_close_frames(void **state)
{
    (void)state;
    buf s = { 0 };
    rec w = { 0 };

    put(&s, WS_OP_CLOSE, 1, "", 0);
    expect_ev(&w, 'C', 1005, "", 0);
    expect_run(&s, &w, MAX_MSG, 0);

    put_close(&s, 1000, "");
    put_close(&s, 1001, "going \xce\xba");
    put_close(&s, 3000, "x");
    put_close(&s, 4999, "y");
    expect_str(&w, 'C', 1000, "");
    expect_str(&w, 'C', 1001, "going \xce\xba");
    expect_str(&w, 'C', 3000, "x");
    expect_str(&w, 'C', 4999, "y");
    expect_run(&s, &w, MAX_MSG, 0);

    put(&s, WS_OP_CLOSE, 1, "\x03", 1);
    expect_run(&s, &w, MAX_MSG, 1002);

    static const uint16_t bad[] = { 0, 999, 1004, 1005, 1006, 1015, 2000, 5000 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put_close(&s, bad[i], "r");
        expect_run(&s, &w, MAX_MSG, 1002);
    }

    put_close(&s, 1000, "bad \xed\xa0\x80");
    expect_run(&s, &w, MAX_MSG, 1007);

    /* A close frame between fragments is delivered at once. */
    put_str(&s, WS_OP_TEXT, 0, "part");
    put_close(&s, 1000, "now");
    expect_str(&w, 'C', 1000, "now");
    check_stream(&s, MAX_MSG, 0, &w);
    rec got = { 0 };
    int idle = 1;
    assert_int_equal(run_chunks(&s, NULL, 0, MAX_MSG, &got, &idle), 0);
    assert_false(idle);                               /* the message is still open */
    rec_free(&got);
    buf_free(&s);
    rec_free(&w);
}

/* Stopping at event k: -1, exactly k events, whatever the split. */
static void check_stop(const buf *s, int k, int free_on_stop)
{
    size_t *cuts = malloc(s->len * sizeof(*cuts) + 1);
    assert_non_null(cuts);
    for (size_t i = 1; i < s->len; i++) cuts[i - 1] = i;
    for (size_t mode = 0; mode <= s->len; mode++) {
        rec r = { 0 };
        r.stop_at = k;
        r.free_on_stop = free_on_stop;
        int rc = mode == 0 ? run_chunks(s, cuts, s->len - 1, MAX_MSG, &r, NULL)
                           : run_chunks(s, &mode, mode < s->len, MAX_MSG, &r, NULL);
        assert_int_equal(rc, -1);
        assert_int_equal(r.events, k);
        rec_free(&r);
    }
    free(cuts);
}

static void test_callback_stop(void **state)
{
    (void)state;
    buf s = { 0 };
    put_str(&s, WS_OP_TEXT, 1, "one");
    put_str(&s, WS_OP_PING, 1, "ping");
    put_str(&s, WS_OP_PONG, 1, "pong");
    put_str(&s, WS_OP_BINARY, 0, "frag");
    put_str(&s, WS_OP_CONT, 1, "mented");
    put_close(&s, 1000, "");
    put_str(&s, WS_OP_TEXT, 1, "after");
    for (int k = 1; k <= 6; k++) {
        check_stop(&s, k, 0);
        check_stop(&s, k, 1);
    }

    /* The input after the stopping frame is left untouched (still masked). */
    uint8_t *copy = malloc(s.len);
    assert_non_null(copy);
    memcpy(copy, s.p, s.len);
    rec r = { 0 };
    ws_reader *rd = NULL;
    r.stop_at = 1;
    r.rd = &rd;
    assert_int_equal(ws_reader_feed(&rd, copy, s.len, MAX_MSG, &cbs, &r), -1);
    size_t first = 2 + 4 + 3;
    assert_memory_equal(copy + first, s.p + first, s.len - first);
    ws_reader_free(&rd);
    assert_null(rd);
    free(copy);
    rec_free(&r);
    buf_free(&s);
}

static void test_state_lifetime(void **state)
{
    (void)state;
    buf s = { 0 };
    rec r = { 0 };
    ws_reader *rd = NULL;
    put_str(&s, WS_OP_TEXT, 1, "hello");            /* 2 + 4 + 5 = 11 bytes */

    assert_int_equal(ws_reader_held(NULL), 0);
    assert_int_equal(feed_chunk(&rd, s.p, s.len, MAX_MSG, &r), 0);
    assert_null(rd);
    assert_int_equal(r.events, 1);

    assert_int_equal(feed_chunk(&rd, s.p, 1, MAX_MSG, &r), 0);   /* partial header */
    assert_non_null(rd);
    size_t base = ws_reader_held(rd);
    assert_true(base > 0 && base <= 512);
    assert_int_equal(feed_chunk(&rd, s.p + 1, 7, MAX_MSG, &r), 0); /* header + 2 */
    assert_non_null(rd);
    assert_int_equal(feed_chunk(&rd, s.p + 8, 3, MAX_MSG, &r), 0);
    assert_null(rd);
    assert_int_equal(r.events, 2);

    /* A complete frame plus one byte of the next keeps a state. */
    put_str(&s, WS_OP_TEXT, 1, "x");
    assert_int_equal(feed_chunk(&rd, s.p, 12, MAX_MSG, &r), 0);
    assert_int_equal(r.events, 3);
    assert_non_null(rd);
    assert_int_equal(feed_chunk(&rd, s.p + 12, s.len - 12, MAX_MSG, &r), 0);
    assert_null(rd);
    buf_free(&s);

    /* An open fragmented message keeps a state even at a frame boundary. */
    put_str(&s, WS_OP_TEXT, 0, "ab");
    size_t first = s.len;
    put_str(&s, WS_OP_CONT, 1, "cd");
    assert_int_equal(feed_chunk(&rd, s.p, first, MAX_MSG, &r), 0);
    assert_non_null(rd);
    assert_int_equal(feed_chunk(&rd, s.p + first, s.len - first, MAX_MSG, &r), 0);
    assert_null(rd);
    assert_int_equal(r.events, 5);

    /* Zero-length feeds change nothing. */
    assert_int_equal(feed_chunk(&rd, s.p, 0, MAX_MSG, &r), 0);
    assert_null(rd);
    assert_int_equal(feed_chunk(&rd, s.p, 3, MAX_MSG, &r), 0);
    assert_int_equal(feed_chunk(&rd, s.p, 0, MAX_MSG, &r), 0);
    assert_non_null(rd);
    ws_reader_free(&rd);
    assert_null(rd);
    ws_reader_free(&rd);
    buf_free(&s);
    rec_free(&r);
}

/* The message buffer grows geometrically as bytes arrive, within the cap. */
static void test_growth(void **state)
{
    (void)state;
    buf s = { 0 };
    rec r = { 0 };
    ws_reader *rd = NULL;
    size_t n = 60000;
    uint8_t *p = calloc(1, n);
    assert_non_null(p);
    put(&s, WS_OP_BINARY, 1, p, n);
    size_t hdr = s.len - n;

    assert_int_equal(feed_chunk(&rd, s.p, hdr, MAX_MSG, &r), 0);
    size_t base = ws_reader_held(rd);
    size_t last = base;
    int grows = 0;
    for (size_t pos = hdr; pos < s.len; pos += 100) {
        size_t k = s.len - pos < 100 ? s.len - pos : 100;
        assert_int_equal(feed_chunk(&rd, s.p + pos, k, MAX_MSG, &r), 0);
        if (!rd) break;
        size_t held = ws_reader_held(rd);
        size_t got = pos + k - hdr;
        assert_true(held - base >= got);
        assert_true(held - base <= MAX_MSG);
        assert_true(held - base <= 2 * got + 256);
        if (held != last) grows++;
        last = held;
    }
    assert_null(rd);
    assert_int_equal(r.events, 1);
    assert_true(grows <= 10);
    free(p);
    buf_free(&s);
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_split_in_three),
        cmocka_unit_test(test_big_messages_random_chunks),
        cmocka_unit_test(test_multiple_frames_one_feed_in_place),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_fragmentation_errors),
        cmocka_unit_test(test_utf8_errors),
        cmocka_unit_test(test_max_message),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_state_lifetime),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
