/* fuzz_reader.c — fuzz target for the WebSocket client-stream reader
 * (ws_reader_feed) and the frame primitives it rests on
 * (ws_frame_parse_header, ws_close_payload_check, ws_frame_build_close,
 * ws_frame_header_encode).
 *
 * Input: control bytes, then the client byte stream.
 *   [0]  max_message: an index into fuzz_max_message[]
 *   [1]  callback policy (FUZZ_STOP_* below)
 *   [2]  k = [2] % 8 piece lengths follow, each one byte (length = byte + 1)
 *
 * The stream is fed twice. First whole, with callbacks that never stop.
 * Then in pieces (cycling through the k lengths; each piece in its own
 * exactly sized heap buffer, so ASan sees any read past it), with callbacks
 * that return non-zero on a policy-chosen schedule — freeing the reader
 * first when the policy says so, which the reader contract allows — after
 * which the remaining pieces are still fed when the policy says so, as a
 * closing session keeps reading. If the second run never stopped, both runs
 * must have seen exactly the same events and the same outcome: how the
 * stream is cut into reads must not matter. Every callback checks what it
 * is handed and overwrites message data (the reader must not read it again). */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "ws/frame.h"
#include "ws/reader.h"
#include "ws/utf8.h"

#define FUZZ_STOP_MESSAGE 0x01   /* on_message may stop */
#define FUZZ_STOP_PING 0x02
#define FUZZ_STOP_PONG 0x04
#define FUZZ_STOP_CLOSE 0x08
#define FUZZ_STOP_PERIOD(b) (1u + (((b) >> 4) & 3u))   /* every Nth call stops */
#define FUZZ_STOP_FREE 0x40      /* free the reader before stopping */
#define FUZZ_STOP_GO_ON 0x80     /* keep feeding after a stop */

static const uint64_t fuzz_max_message[16] = {
    1, 2, 3, 125, 126, 127, 128, 200, 256, 1000, 4096, 65535, 65536, 65537,
    1u << 20, 1u << 30,
};

typedef struct fuzz_run {
    ws_reader **rd;
    uint64_t max_message;
    uint8_t policy;          /* 0: never stop */
    unsigned calls;
    unsigned stops;
    unsigned events;
    uint64_t hash;           /* FNV-1a over every event */
} fuzz_run;

static void fuzz_hash(fuzz_run *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        r->hash ^= b[i];
        r->hash *= 0x100000001b3ull;
    }
}

static void fuzz_event(fuzz_run *r, int kind, unsigned code, const uint8_t *p, size_t n)
{
    uint64_t len = n;
    r->events++;
    fuzz_hash(r, &kind, sizeof(kind));
    fuzz_hash(r, &code, sizeof(code));
    fuzz_hash(r, &len, sizeof(len));
    fuzz_hash(r, p, n);
}

/* Whether this callback returns non-zero; frees the reader if so asked. */
static int fuzz_stop(fuzz_run *r, uint8_t which)
{
    unsigned call = r->calls++;
    if (!(r->policy & which) || call % FUZZ_STOP_PERIOD(r->policy) != 0)
        return 0;
    r->stops++;
    if (r->policy & FUZZ_STOP_FREE)
        ws_reader_free(r->rd);
    return 1;
}

static int fuzz_on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    fuzz_run *r = ud;
    FUZZ_CHECK(opcode == WS_OP_TEXT || opcode == WS_OP_BINARY);
    FUZZ_CHECK(data != NULL);
    FUZZ_CHECK(len <= r->max_message);
    if (opcode == WS_OP_TEXT)
        FUZZ_CHECK(utf8_validate(UTF8_ACCEPT, data, len) == UTF8_ACCEPT);
    fuzz_event(r, 1, (unsigned)opcode, data, len);
    memset(data, 0xA5, len);          /* the buffer is the callee's now */
    return fuzz_stop(r, FUZZ_STOP_MESSAGE);
}

static int fuzz_on_ping(void *ud, const uint8_t *data, size_t len)
{
    fuzz_run *r = ud;
    FUZZ_CHECK(len <= 125 && (data != NULL || len == 0));
    fuzz_event(r, 2, 0, data, len);
    return fuzz_stop(r, FUZZ_STOP_PING);
}

static int fuzz_on_pong(void *ud, const uint8_t *data, size_t len)
{
    fuzz_run *r = ud;
    FUZZ_CHECK(len <= 125 && (data != NULL || len == 0));
    fuzz_event(r, 3, 0, data, len);
    return fuzz_stop(r, FUZZ_STOP_PONG);
}

static int fuzz_on_close(void *ud, uint16_t code, const uint8_t *reason, size_t len)
{
    fuzz_run *r = ud;
    FUZZ_CHECK(len <= 123 && (reason != NULL || len == 0));
    FUZZ_CHECK(code == WS_CLOSE_NO_STATUS ? len == 0 : code >= 1000 && code < 5000);
    FUZZ_CHECK(utf8_validate(UTF8_ACCEPT, reason, len) == UTF8_ACCEPT);
    fuzz_event(r, 4, code, reason, len);
    return fuzz_stop(r, FUZZ_STOP_CLOSE);
}

static const ws_reader_cb fuzz_cb = {
    .on_message = fuzz_on_message,
    .on_ping = fuzz_on_ping,
    .on_pong = fuzz_on_pong,
    .on_close = fuzz_on_close,
};

/* One ws_reader_feed of a private copy of p[0..n); checks the result. */
static int fuzz_feed(fuzz_run *r, const uint8_t *p, size_t n)
{
    uint8_t *buf = fuzz_memdup(p, n);
    int rc = ws_reader_feed(r->rd, buf, n, r->max_message, &fuzz_cb, r);
    free(buf);
    FUZZ_CHECK(rc == 0 || rc == -1 || rc == WS_CLOSE_PROTOCOL || rc == WS_CLOSE_BAD_DATA ||
               rc == WS_CLOSE_TOO_BIG || rc == WS_CLOSE_INTERNAL);
    /* What a connection holds is bounded by the message cap. */
    FUZZ_CHECK(ws_reader_held(*r->rd) <= 1024 + r->max_message);
    return rc;
}

static void fuzz_reader_runs(const uint8_t *s, size_t n, uint64_t max_message, uint8_t policy,
                             const uint8_t *lens, size_t k)
{
    ws_reader *rd1 = NULL, *rd2 = NULL;
    fuzz_run whole = { .rd = &rd1, .max_message = max_message, .hash = 0xcbf29ce484222325ull };
    fuzz_run cut = whole;
    cut.rd = &rd2;
    cut.policy = policy;

    int rc1 = fuzz_feed(&whole, s, n);
    FUZZ_CHECK(rc1 != -1);
    ws_reader_free(&rd1);
    FUZZ_CHECK(rd1 == NULL);

    int rc2 = 0;
    size_t pos = 0;
    for (size_t i = 0; pos < n || (n == 0 && i == 0); i++) {
        size_t len = k ? (size_t)lens[i % k] + 1 : n;
        if (len > n - pos)
            len = n - pos;
        rc2 = fuzz_feed(&cut, s + pos, len);
        pos += len;
        if (rc2 > 0)
            break;
        if (rc2 == -1 && !(policy & FUZZ_STOP_GO_ON))
            break;
    }
    if (cut.stops == 0) {
        FUZZ_CHECK(rc2 == rc1);
        FUZZ_CHECK(cut.events == whole.events);
        FUZZ_CHECK(cut.hash == whole.hash);
    }
    ws_reader_free(&rd2);
    FUZZ_CHECK(rd2 == NULL);
}

/* ws_frame_parse_header over growing prefixes: once it answers, more bytes
 * do not change the answer, and a parsed header obeys the rules. */
static void fuzz_frame_header(const uint8_t *s, size_t n, uint64_t max_payload)
{
    int first = 0;
    ws_frame_hdr h0;
    memset(&h0, 0, sizeof(h0));
    for (size_t m = 0; m <= n && m <= WS_MAX_HEADER + 2; m++) {
        ws_frame_hdr h;
        memset(&h, 0, sizeof(h));
        uint8_t *p = fuzz_memdup(s, m);
        int k = ws_frame_parse_header(p, m, max_payload, &h);
        free(p);
        FUZZ_CHECK(k == 0 || k == -WS_CLOSE_PROTOCOL || k == -WS_CLOSE_TOO_BIG ||
                   (k > 0 && (size_t)k <= m));
        if (m < 2)
            FUZZ_CHECK(k == 0);
        if (first != 0) {
            FUZZ_CHECK(k == first);
            if (k > 0)
                FUZZ_CHECK(memcmp(&h, &h0, sizeof(h)) == 0);
            continue;
        }
        if (k == 0) {
            FUZZ_CHECK(m < WS_MAX_HEADER);
            continue;
        }
        first = k;
        h0 = h;
        if (k < 0)
            continue;
        FUZZ_CHECK(k == 6 || k == 8 || k == 14);
        FUZZ_CHECK(h.hdr_len == k && h.masked == 1 && h.rsv == 0);
        FUZZ_CHECK(h.len <= max_payload && (h.len >> 63) == 0);
        FUZZ_CHECK(h.opcode <= WS_OP_BINARY || (h.opcode >= WS_OP_CLOSE && h.opcode <= WS_OP_PONG));
        if (h.opcode & 0x8)
            FUZZ_CHECK(h.fin && h.len <= 125);
        FUZZ_CHECK(memcmp(h.mask, s + k - 4, 4) == 0);
    }
}

static int fuzz_close_code_ok(uint16_t c)
{
    return c >= 1000 && c < 5000 && !(c >= 1004 && c <= 1006) && !(c >= 1015 && c <= 2999);
}

/* ws_close_payload_check against the rules of frame.h, and
 * ws_frame_build_close read back with it. */
static void fuzz_close(const uint8_t *s, size_t n)
{
    size_t m = n < 130 ? n : 130;
    uint8_t *p = fuzz_memdup(s, m);
    uint16_t code = 0;
    int rc = ws_close_payload_check(p, m, &code);
    if (m == 0)
        FUZZ_CHECK(rc == 0 && code == WS_CLOSE_NO_STATUS);
    else if (m == 1 || m > 125)
        FUZZ_CHECK(rc == WS_CLOSE_PROTOCOL);
    else if (!fuzz_close_code_ok((uint16_t)(p[0] << 8 | p[1])))
        FUZZ_CHECK(rc == WS_CLOSE_PROTOCOL);
    else
        FUZZ_CHECK(rc == (utf8_validate(UTF8_ACCEPT, p + 2, m - 2) == UTF8_ACCEPT ? 0
                                                                           : WS_CLOSE_BAD_DATA));
    free(p);

    /* The close frame the server builds: an unmasked FIN close frame whose
     * reason is a prefix of the one given and, if that was UTF-8, still is. */
    uint16_t want = n >= 2 ? (uint16_t)(s[0] << 8 | s[1]) : 1000;
    char *reason = fuzz_strdup(n > 2 ? s + 2 : s, n > 2 ? n - 2 : 0);
    size_t rlen = strlen(reason);
    uint8_t out[2 + 125];
    size_t len = ws_frame_build_close(out, want, reason);
    FUZZ_CHECK(len >= 4 && len <= sizeof(out));
    FUZZ_CHECK(out[0] == 0x88 && out[1] == len - 2);
    FUZZ_CHECK((uint16_t)(out[2] << 8 | out[3]) == want);
    size_t kept = len - 4;
    FUZZ_CHECK(kept <= 123 && kept <= rlen && memcmp(out + 4, reason, kept) == 0);
    if (rlen <= 123)
        FUZZ_CHECK(kept == rlen);
    if (utf8_validate(UTF8_ACCEPT, (const uint8_t *)reason, rlen) == UTF8_ACCEPT) {
        FUZZ_CHECK(kept + 3 >= (rlen < 123 ? rlen : 123));
        if (fuzz_close_code_ok(want))
            FUZZ_CHECK(ws_close_payload_check(out + 2, len - 2, &code) == 0 && code == want);
    }
    free(reason);
}

/* ws_frame_header_encode, decoded back by hand. */
static void fuzz_encode(const uint8_t *s, size_t n)
{
    uint64_t len = 0;
    for (size_t i = 0; i < 8 && i < n; i++)
        len = len << 8 | s[i];
    len >>= n ? s[0] & 63 : 0;
    int opcode = n > 8 ? s[8] & 0x0F : WS_OP_TEXT;
    int fin = n > 8 ? s[8] >> 7 : 1;
    uint8_t out[10];
    size_t h = ws_frame_header_encode(out, opcode, fin, len);
    FUZZ_CHECK(out[0] == (uint8_t)((fin ? 0x80 : 0) | opcode));
    FUZZ_CHECK((out[1] & 0x80) == 0);
    uint64_t got = out[1];
    if (h == 2) {
        FUZZ_CHECK(got < 126);
    } else {
        FUZZ_CHECK((h == 4 && got == 126) || (h == 10 && got == 127));
        got = 0;
        for (size_t i = 2; i < h; i++)
            got = got << 8 | out[i];
        FUZZ_CHECK(h == 4 ? got >= 126 : got > 0xFFFF);
    }
    FUZZ_CHECK(got == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    uint64_t max_message = fuzz_max_message[fuzz_u8(&in) % 16];
    uint8_t policy = fuzz_u8(&in);
    size_t k = fuzz_u8(&in) % 8;
    const uint8_t *lens = in.p;
    if (k > in.n)
        k = in.n;
    in.p += k;
    in.n -= k;

    fuzz_reader_runs(in.p, in.n, max_message, policy, lens, k);
    fuzz_frame_header(in.p, in.n, max_message > 125 ? max_message : 125);
    fuzz_close(in.p, in.n);
    fuzz_encode(in.p, in.n);
    return 0;
}
