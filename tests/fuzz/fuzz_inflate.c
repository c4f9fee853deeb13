/* fuzz_inflate.c — fuzz target for the inflate path of permessage-deflate:
 * ws_inflate_message (the per-worker stream, the size cap, the checks on the
 * DEFLATE data) and compressed messages through the reader
 * (ws_reader_feed_ext with WS_READER_DEFLATE: RSV1, fragments, control
 * frames between them, reads cut anywhere).
 *
 * Input: control bytes, then the compressed payload of one message.
 *   [0]  max_message: an index into fuzz_max[]
 *   [1]  bit 0: binary (else text); bits 1-3: the payload goes in that many
 *        frames plus one; bit 4: a ping between the frames; bit 5: RSV1 also
 *        on the second frame (must be 1002)
 *   [2]  where the client stream is cut into two reads (scaled)
 *
 * Properties: inflating answers 0, 1007 or 1009, and 0 means at most
 * max_message bytes; a message that inflates to L bytes inflates again with
 * a cap of L and is too big for L - 1; what inflated compresses and
 * inflates back to the same bytes; the reader reaches the same verdict
 * (plus UTF-8 for text) whole and cut, and hands out exactly those bytes;
 * the workers' zlib memory stays bounded. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/reader.h"
#include "ws/utf8.h"

static const uint64_t fuzz_max[8] = { 0, 1, 16, 125, 1000, 4096, 65536, 1u << 20 };

typedef struct fuzz_got {
    int messages, pings;
    uint8_t *data;
    size_t len;
} fuzz_got;

static int fuzz_on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    fuzz_got *g = ud;
    FUZZ_CHECK(opcode == WS_OP_TEXT || opcode == WS_OP_BINARY);
    FUZZ_CHECK(g->messages == 0);
    g->messages++;
    g->data = fuzz_memdup(data, len);
    g->len = len;
    memset(data, 0xA5, len);
    return 0;
}

static int fuzz_on_ping(void *ud, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    ((fuzz_got *)ud)->pings++;
    return 0;
}

static const ws_reader_cb fuzz_cb = { .on_message = fuzz_on_message, .on_ping = fuzz_on_ping };

/* Appends a masked client frame (first byte b0) to out at *at. */
static void fuzz_frame(uint8_t *out, size_t *at, uint8_t b0, const uint8_t *p, size_t n)
{
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header_encode(h, b0 & 0x0F, b0 >> 7, n);
    static const uint8_t mask[4] = { 0x37, 0x00, 0xC2, 0x5E };
    h[0] = b0;
    h[1] |= 0x80;
    memcpy(h + hl, mask, 4);
    memcpy(out + *at, h, hl + 4);
    *at += hl + 4;
    for (size_t i = 0; i < n; i++)
        out[*at + i] = p[i] ^ mask[i & 3];
    *at += n;
}

/* The client stream of the message: payload in frames + 1 frames. */
static uint8_t *fuzz_stream(const uint8_t *p, size_t n, uint8_t flags, size_t *len)
{
    int op = (flags & 1) ? WS_OP_BINARY : WS_OP_TEXT;
    size_t frames = 1 + ((flags >> 1) & 7);
    uint8_t *s = malloc(n + frames * (WS_MAX_HEADER + 2 + 4 + 1) + 16);
    FUZZ_CHECK(s != NULL);
    size_t at = 0, pos = 0;
    for (size_t i = 0; i < frames; i++) {
        size_t end = i + 1 == frames ? n : n * (i + 1) / frames;
        uint8_t b0 = (uint8_t)((i + 1 == frames ? 0x80 : 0) | (i == 0 ? op : WS_OP_CONT));
        if (i == 0 || (i == 1 && (flags & 0x20)))
            b0 |= WS_DEFLATE_RSV1;
        fuzz_frame(s, &at, b0, p + pos, end - pos);
        pos = end;
        if ((flags & 0x10) && i + 1 < frames)
            fuzz_frame(s, &at, 0x89, (const uint8_t *)"p", 1);
    }
    *len = at;
    return s;
}

/* One run of the reader over the stream, in two reads cut at `cut`. */
static int fuzz_read(const uint8_t *s, size_t n, size_t cut, uint64_t max, fuzz_got *g)
{
    ws_reader *rd = NULL;
    int rc = 0;
    size_t parts[2] = { cut, n - cut };
    size_t pos = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        uint8_t *chunk = fuzz_memdup(s + pos, parts[i]);
        rc = ws_reader_feed_ext(&rd, chunk, parts[i], max, WS_READER_DEFLATE, &fuzz_cb, g);
        free(chunk);
        pos += parts[i];
        FUZZ_CHECK(ws_reader_held(rd) <= 1024 + WS_DEFLATE_WIRE_CAP(max));
    }
    if (rc == 0)
        FUZZ_CHECK(rd == NULL);
    ws_reader_free(&rd);
    return rc;
}

/* What the reader must answer for a message of n compressed bytes whose
 * inflation gave r: the frames' headers are checked first, in order. */
static int fuzz_expect(size_t n, uint64_t max, uint8_t flags, int r, const uint8_t *out,
                       size_t len)
{
    size_t frames = 1 + ((flags >> 1) & 7), cum = 0;
    uint64_t wire = WS_DEFLATE_WIRE_CAP(max), per_frame = wire > 125 ? wire : 125;
    for (size_t i = 0; i < frames; i++) {
        size_t end = i + 1 == frames ? n : n * (i + 1) / frames, k = end - cum;
        if (k > per_frame)
            return WS_CLOSE_TOO_BIG;            /* the frame header */
        if (i == 1 && (flags & 0x20))
            return WS_CLOSE_PROTOCOL;           /* RSV1 on a continuation */
        if (k > wire - cum)
            return WS_CLOSE_TOO_BIG;            /* the message so far */
        cum = end;
    }
    if (r == 0 && !(flags & 1) && utf8_validate(UTF8_ACCEPT, out, len) != UTF8_ACCEPT)
        return WS_CLOSE_BAD_DATA;
    return r;
}

static void fuzz_reader(const uint8_t *p, size_t n, uint64_t max, uint8_t flags, uint8_t cutb,
                        int r, const uint8_t *out, size_t len)
{
    size_t slen;
    uint8_t *s = fuzz_stream(p, n, flags, &slen);
    int want = fuzz_expect(n, max, flags, r, out, len);
    for (int pass = 0; pass < 2; pass++) {
        fuzz_got g = { 0 };
        size_t cut = pass == 0 ? slen : slen * cutb / 255;
        int rc = fuzz_read(s, slen, cut, max, &g);
        FUZZ_CHECK(rc == want);
        FUZZ_CHECK(g.messages == (want == 0));
        if (want == 0)
            FUZZ_CHECK(g.len == len && (len == 0 || memcmp(g.data, out, len) == 0));
        free(g.data);
    }
    free(s);
}

/* Compressing what inflated gives it back (or is refused as no gain). */
static void fuzz_round_trip(const uint8_t *out, size_t len)
{
    sbuf *z = ws_deflate_frame(WS_OP_BINARY, out, len);
    if (!z)
        return;
    size_t len7 = z->data[1] & 0x7F, off = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
    FUZZ_CHECK(z->data[0] == (0x80 | WS_DEFLATE_RSV1 | WS_OP_BINARY));
    FUZZ_CHECK(z->len - off < len);
    uint8_t *back = NULL;
    size_t blen = 0;
    FUZZ_CHECK(ws_inflate_message(z->data + off, z->len - off, len, &back, &blen) == 0);
    FUZZ_CHECK(blen == len && memcmp(back, out, len) == 0);
    free(back);
    sbuf_unref(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    uint64_t max = fuzz_max[fuzz_u8(&in) % 8];
    uint8_t flags = fuzz_u8(&in), cutb = fuzz_u8(&in);
    uint8_t *p = fuzz_memdup(in.p, in.n);
    size_t n = in.n;

    uint8_t *out = NULL;
    size_t len = 0;
    int r = ws_inflate_message(p, n, (size_t)max, &out, &len);
    FUZZ_CHECK(r == 0 || r == WS_CLOSE_BAD_DATA || r == WS_CLOSE_TOO_BIG);
    FUZZ_CHECK(r == 0 ? out != NULL && len <= max : out == NULL);
    if (r == 0) {
        uint8_t *again = NULL;
        size_t alen = 0;
        FUZZ_CHECK(ws_inflate_message(p, n, len, &again, &alen) == 0);
        FUZZ_CHECK(alen == len && memcmp(again, out, len) == 0);
        free(again);
        if (len > 0)
            FUZZ_CHECK(ws_inflate_message(p, n, len - 1, &again, &alen) == WS_CLOSE_TOO_BIG);
        fuzz_round_trip(out, len);
    }
    fuzz_reader(p, n, max, flags, cutb, r, out, len);
    ws_deflate_stats st;
    ws_deflate_stats_get(&st);
    FUZZ_CHECK(st.zlib_bytes < (2 << 20));
    free(out);
    free(p);
    return 0;
}
