/* wsc.c — WebSocket client codec. */
#include "wsc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char WSC_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const char WSC_B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t wsc_base64(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = WSC_B64[(v >> 18) & 63];
        out[o++] = WSC_B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? WSC_B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? WSC_B64[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

static uint64_t wsc_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void wsc_key(uint64_t seed, char out[WSC_KEY_LEN + 1])
{
    uint8_t raw[16];
    uint64_t a = wsc_mix(seed), b = wsc_mix(a);
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    wsc_base64(raw, sizeof(raw), out);
}

int wsc_accept(const char *key, char out[WSC_ACCEPT_LEN + 1])
{
    char in[WSC_KEY_LEN + sizeof(WSC_GUID)];
    size_t kl = strnlen(key, WSC_KEY_LEN);
    memcpy(in, key, kl);
    memcpy(in + kl, WSC_GUID, sizeof(WSC_GUID) - 1);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(in, kl + sizeof(WSC_GUID) - 1, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return -1;
    wsc_base64(md, 20, out);
    return 0;
}

size_t wsc_request(char *out, size_t cap, const char *host, const char *path, const char *key,
                   const char *extensions)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n", path, host, key,
                     extensions ? "Sec-WebSocket-Extensions: " : "",
                     extensions ? extensions : "", extensions ? "\r\n" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* The value of header `name` in head[0..n), trimmed; NULL if absent. */
static const char *wsc_header(const char *head, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *end = head + n;
    const char *line = memchr(head, '\n', n);
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

int wsc_response(const char *p, size_t n, const char *key, int *status, int *accept_ok,
                 size_t *head_len)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return n > WSC_MAX_HEAD ? WSC_HS_BAD : WSC_HS_NEED;
    size_t hl = (size_t)(end - p) + 4;
    if (hl > WSC_MAX_HEAD || n < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return WSC_HS_BAD;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return WSC_HS_BAD;
        st = st * 10 + (p[i] - '0');
    }
    *status = st;
    *head_len = hl;
    *accept_ok = 0;
    size_t vl;
    const char *v = wsc_header(p, hl, "Sec-WebSocket-Accept", &vl);
    char want[WSC_ACCEPT_LEN + 1];
    if (v && vl == WSC_ACCEPT_LEN && wsc_accept(key, want) == 0)
        *accept_ok = memcmp(v, want, WSC_ACCEPT_LEN) == 0;
    return WSC_HS_DONE;
}

/* Whether the ';'-separated list v[0..n) holds the element `want`. */
static int wsc_has_param(const char *v, size_t n, const char *want)
{
    size_t wl = strlen(want);
    const char *end = v + n;
    while (v < end) {
        const char *semi = memchr(v, ';', (size_t)(end - v));
        const char *e = semi ? semi : end;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        const char *t = e;
        while (t > v && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - v) == wl && memcmp(v, want, wl) == 0)
            return 1;
        v = semi ? semi + 1 : end;
    }
    return 0;
}

int wsc_deflate_accepted(const char *p, size_t n)
{
    size_t vl;
    const char *v = wsc_header(p, n, "Sec-WebSocket-Extensions", &vl);
    return v && vl >= 18 && memcmp(v, "permessage-deflate", 18) == 0 &&
           wsc_has_param(v, vl, "server_no_context_takeover") &&
           wsc_has_param(v, vl, "client_no_context_takeover");
}

size_t wsc_encode(uint8_t *out, size_t cap, unsigned opcode, const void *payload, size_t n,
                  uint32_t mask)
{
    size_t h = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
    if (cap < h + 4 + n)
        return 0;
    out[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (n < 126) {
        out[1] = (uint8_t)(0x80 | n);
    } else if (n <= 0xFFFF) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    uint8_t m[4];
    memcpy(m, &mask, 4);
    memcpy(out + h, m, 4);
    const uint8_t *src = payload;
    uint8_t *dst = out + h + 4;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] ^ m[i & 3];
    return h + 4 + n;
}

static int wsc_opcode_ok(unsigned op)
{
    return op <= WSC_BINARY || (op >= WSC_CLOSE && op <= WSC_PONG);
}

int wsc_parse(const uint8_t *p, size_t n, int deflate, wsc_frame *f)
{
    if (n < 2)
        return WSC_F_NEED;
    f->fin = p[0] >> 7;
    f->opcode = p[0] & 0x0F;
    f->rsv1 = (p[0] >> 6) & 1;
    uint8_t rsv = p[0] & (deflate && f->opcode < WSC_CLOSE ? 0x30 : 0x70);
    if (rsv || (p[1] & 0x80) || !wsc_opcode_ok(f->opcode))
        return WSC_F_BAD;
    uint64_t len = p[1] & 0x7F;
    size_t head = 2;
    if (len == 126) {
        if (n < 4)
            return WSC_F_NEED;
        len = ((uint64_t)p[2] << 8) | p[3];
        head = 4;
    } else if (len == 127) {
        if (n < 10)
            return WSC_F_NEED;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        head = 10;
    }
    if (f->opcode >= WSC_CLOSE && (!f->fin || len > 125))
        return WSC_F_BAD;
    if (len > WSC_MAX_PAYLOAD)
        return WSC_F_BAD;
    f->head = head;
    f->len = (size_t)len;
    return n - head >= len ? WSC_F_OK : WSC_F_NEED;
}
