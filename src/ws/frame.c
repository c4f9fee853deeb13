/* frame.c — owns the RFC 6455 frame primitives: client header parsing with
 * its protocol checks, in-place unmasking, server header encoding and the
 * close payload rules. Pure functions; no allocation, no state. */
#include "ws/frame.h"

#include <string.h>

#include "ws/utf8.h"

#define WS_MAX_CONTROL 125

static int ws_opcode_known(uint8_t op)
{
    return op == WS_OP_CONT || op == WS_OP_TEXT || op == WS_OP_BINARY ||
           op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG;
}

/* Checks everything the first two bytes decide; returns 0 or -1002. */
static int ws_frame_check_start(const ws_frame_hdr *h, uint8_t len7, uint8_t rsv_ok)
{
    if ((h->rsv & ~rsv_ok) || !ws_opcode_known(h->opcode) || !h->masked) return -WS_CLOSE_PROTOCOL;
    if ((h->opcode & 0x8) && (h->rsv || !h->fin || len7 > WS_MAX_CONTROL)) return -WS_CLOSE_PROTOCOL;
    return 0;
}

static uint64_t ws_be_read(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

int ws_frame_parse_header(const uint8_t *p, size_t n, uint64_t max_payload, ws_frame_hdr *h)
{
    return ws_frame_parse_header_ext(p, n, max_payload, 0, h);
}

int ws_frame_parse_header_ext(const uint8_t *p, size_t n, uint64_t max_payload,
                              uint8_t rsv_ok, ws_frame_hdr *h)
{
    if (n < 2) return 0;
    h->fin = p[0] >> 7;
    h->rsv = (p[0] >> 4) & 7;
    h->opcode = p[0] & 0x0F;
    h->masked = p[1] >> 7;
    uint8_t len7 = p[1] & 0x7F;
    int rc = ws_frame_check_start(h, len7, rsv_ok);
    if (rc) return rc;

    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t hdr_len = 2 + ext + 4;
    if (n < hdr_len) return 0;
    h->len = ext ? ws_be_read(p + 2, ext) : len7;
    if (h->len >> 63) return -WS_CLOSE_PROTOCOL;
    if (h->len > max_payload) return -WS_CLOSE_TOO_BIG;
    memcpy(h->mask, p + 2 + ext, 4);
    h->hdr_len = (uint8_t)hdr_len;
    return (int)hdr_len;
}

void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    uint8_t key[8];
    size_t i = 0;

    for (size_t k = 0; k < 8; k++) key[k] = mask[(offset + k) & 3];
    if (n >= 8) {
        uint64_t kw, w;
        memcpy(&kw, key, 8);
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, p + i, 8);
            w ^= kw;
            memcpy(p + i, &w, 8);
        }
    }
    for (; i < n; i++) p[i] ^= key[i & 7];
}

size_t ws_frame_header_encode(uint8_t *out, int opcode, int fin, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    size_t ext = len <= 0xFFFF ? 2 : 8;
    out[1] = ext == 2 ? 126 : 127;
    for (size_t i = 0; i < ext; i++) out[2 + i] = (uint8_t)(len >> (8 * (ext - 1 - i)));
    return 2 + ext;
}

/* A code a peer may legitimately send (RFC 6455 §7.4, IANA registry). */
static int ws_close_code_valid(uint16_t code)
{
    if (code < 1000 || code >= 5000) return 0;
    if (code >= 1004 && code <= 1006) return 0;
    if (code >= 1015 && code <= 2999) return 0;
    return 1;
}

int ws_close_payload_check(const uint8_t *p, size_t n, uint16_t *code)
{
    *code = WS_CLOSE_NO_STATUS;
    if (n == 0) return 0;
    if (n == 1 || n > WS_MAX_CONTROL) return WS_CLOSE_PROTOCOL;
    *code = (uint16_t)((p[0] << 8) | p[1]);
    if (!ws_close_code_valid(*code)) return WS_CLOSE_PROTOCOL;
    if (utf8_validate(UTF8_ACCEPT, p + 2, n - 2) != UTF8_ACCEPT) return WS_CLOSE_BAD_DATA;
    return 0;
}

/* Longest prefix of s[0..n) that does not end inside a UTF-8 sequence. */
static size_t ws_utf8_cut(const char *s, size_t n)
{
    size_t cut = n;
    while (cut > 0 && ((uint8_t)s[cut - 1] & 0xC0) == 0x80) cut--;
    if (cut == 0) return n;                 /* not UTF-8 at all: keep bytes */
    uint8_t lead = (uint8_t)s[cut - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return n - (cut - 1) >= want ? n : cut - 1;
}

size_t ws_frame_build_close(uint8_t *out, uint16_t code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > WS_MAX_CONTROL - 2) rlen = ws_utf8_cut(reason, WS_MAX_CONTROL - 2);
    size_t h = ws_frame_header_encode(out, WS_OP_CLOSE, 1, 2 + rlen);
    out[h] = (uint8_t)(code >> 8);
    out[h + 1] = (uint8_t)code;
    if (rlen) memcpy(out + h + 2, reason, rlen);
    return h + 2 + rlen;
}
