/* handshake.c — owns the server side of the WebSocket opening handshake
 * (RFC 6455 §4.2): request validation, Sec-WebSocket-Accept, the 101 reply. */
#include "ws/handshake.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_CHARS 24     /* base64 of 16 bytes: 22 symbols + "==" */
#define WS_KEY_BYTES 16

static int ws_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char ws_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive equality of s[0..n) and the NUL-terminated token. */
static int ws_token_eq(const char *s, size_t n, const char *token)
{
    size_t i = 0;
    for (; i < n && token[i]; i++)
        if (ws_lower(s[i]) != ws_lower(token[i])) return 0;
    return i == n && token[i] == '\0';
}

/* Whether the comma-separated list holds token (case-insensitive). */
static int ws_list_has(const char *list, const char *token)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && ws_is_ows(*a)) a++;
        while (b > a && ws_is_ows(b[-1])) b--;
        if (ws_token_eq(a, (size_t)(b - a), token)) return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* The value without surrounding spaces: *n gets its length. */
static const char *ws_trim(const char *s, size_t *n)
{
    while (ws_is_ows(*s)) s++;
    size_t len = strlen(s);
    while (len > 0 && ws_is_ows(s[len - 1])) len--;
    *n = len;
    return s;
}

static int ws_is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Whether key is the base64 encoding of exactly 16 bytes. */
static int ws_key_valid(const char *key)
{
    size_t n;
    const char *k = ws_trim(key, &n);
    unsigned char raw[WS_KEY_CHARS / 4 * 3];

    if (n != WS_KEY_CHARS || k[22] != '=' || k[23] != '=') return 0;
    for (size_t i = 0; i < 22; i++)
        if (!ws_is_b64(k[i])) return 0;
    /* EVP_DecodeBlock ignores padding in its count: 24 chars -> 18. */
    return EVP_DecodeBlock(raw, (const unsigned char *)k, WS_KEY_CHARS) ==
           (int)sizeof(raw);
}

static int ws_fail(const char **reason, int status, const char *why)
{
    *reason = why;
    return status;
}

/* The request line and the Host/Upgrade/Connection headers. */
static int ws_check_request(const ws_upgrade_req *r, const char **reason)
{
    if (!r->method || strcmp(r->method, "GET") != 0)
        return ws_fail(reason, 400, "method must be GET");
    if (r->http_major < 1 || (r->http_major == 1 && r->http_minor < 1))
        return ws_fail(reason, 400, "HTTP/1.1 or later required");
    if (!r->host || !*r->host) return ws_fail(reason, 400, "missing Host header");
    if (!r->upgrade) return ws_fail(reason, 400, "missing Upgrade header");
    if (!ws_list_has(r->upgrade, "websocket"))
        return ws_fail(reason, 400, "Upgrade header lacks 'websocket'");
    if (!r->connection) return ws_fail(reason, 400, "missing Connection header");
    if (!ws_list_has(r->connection, "upgrade"))
        return ws_fail(reason, 400, "Connection header lacks 'upgrade'");
    return 0;
}

int ws_handshake_validate(const ws_upgrade_req *r, const char **reason)
{
    int status = ws_check_request(r, reason);
    if (status) return status;
    if (!r->key) return ws_fail(reason, 400, "missing Sec-WebSocket-Key");
    if (!ws_key_valid(r->key))
        return ws_fail(reason, 400, "Sec-WebSocket-Key is not base64 of 16 bytes");
    if (!r->version) return ws_fail(reason, 400, "missing Sec-WebSocket-Version");
    size_t n;
    const char *v = ws_trim(r->version, &n);
    if (n != 2 || strncmp(v, "13", 2) != 0)
        return ws_fail(reason, 426, "unsupported Sec-WebSocket-Version (13 required)");
    *reason = NULL;
    return 0;
}

void ws_accept_key(const char *key, char out[29])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int mdlen = 0;
    size_t n;
    const char *k = ws_trim(key, &n);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, k, n) &&
             EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1) &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == sizeof(md);

    EVP_MD_CTX_free(ctx);
    out[0] = '\0';
    if (ok) EVP_EncodeBlock((unsigned char *)out, md, (int)sizeof(md));
}

size_t ws_handshake_response(char *out, size_t cap, const char *key)
{
    return ws_handshake_response_ext(out, cap, key, NULL);
}

size_t ws_handshake_response_ext(char *out, size_t cap, const char *key, const char *extensions)
{
    char accept[29];
    ws_accept_key(key, accept);
    if (!accept[0]) return 0;
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "%s%s%s\r\n", accept,
                     extensions ? "Sec-WebSocket-Extensions: " : "",
                     extensions ? extensions : "", extensions ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap) return 0;
    return (size_t)n;
}
