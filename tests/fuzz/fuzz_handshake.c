/* fuzz_handshake.c — fuzz target for the WebSocket upgrade check
 * (ws_handshake_validate) and the 101 answer (ws_handshake_response,
 * ws_accept_key).
 *
 * Input: [0] a mask of header fields to leave absent (NULL), [1] [2] the
 * HTTP major and minor version, then the fields one per line: method, Host,
 * Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version, and the
 * output capacity for the answer (a decimal number, default 256). Each field
 * is an exactly sized heap string, so ASan sees a read past its end.
 *
 * Checked: the verdict is 0, 400 or 426 with a reason exactly when it is
 * not 0; a request is accepted only if it meets the rules of handshake.h as
 * re-checked here in a simpler way; the answer fits its capacity or is 0, is
 * a complete 101 response and carries the accept key, which ignores blanks
 * around the key. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "ws/handshake.h"

enum { F_METHOD, F_HOST, F_UPGRADE, F_CONNECTION, F_KEY, F_VERSION, F_COUNT };

/* Whether the comma-separated list holds token, case-insensitively, with
 * blanks around items ignored (the reference for the checks below). */
static int ref_list_has(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t a = 0, b = n;
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
            b--;
        if (b - a == tl && strncasecmp(p + a, token, tl) == 0)
            return 1;
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

/* The value without blanks around it, as a new string. */
static char *ref_trim(const char *s)
{
    size_t a = 0, b = strlen(s);
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    return fuzz_strdup((const uint8_t *)s + a, b - a);
}

/* 22 base64 symbols then "==" (16 bytes), blanks around ignored. */
static int ref_key_ok(const char *key)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *k = ref_trim(key);
    int ok = strlen(k) == 24 && k[22] == '=' && k[23] == '=';
    for (size_t i = 0; ok && i < 22; i++)
        ok = k[i] != '\0' && strchr(b64, k[i]) != NULL;
    free(k);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    uint8_t absent = fuzz_u8(&in);
    int major = fuzz_u8(&in), minor = fuzz_u8(&in);
    char *f[F_COUNT];
    for (int i = 0; i < F_COUNT; i++) {
        size_t n;
        const uint8_t *s = fuzz_line(&in, &n);
        f[i] = fuzz_strdup(s, n);
    }
    size_t cap = 256;
    if (in.n) {
        size_t n;
        const uint8_t *s = fuzz_line(&in, &n);
        cap = 0;
        for (size_t i = 0; i < n && i < 4 && isdigit(s[i]); i++)
            cap = cap * 10 + (size_t)(s[i] - '0');
    }

    ws_upgrade_req req = {
        .method = (absent & 1) ? NULL : f[F_METHOD],
        .http_major = major,
        .http_minor = minor,
        .host = (absent & 2) ? NULL : f[F_HOST],
        .upgrade = (absent & 4) ? NULL : f[F_UPGRADE],
        .connection = (absent & 8) ? NULL : f[F_CONNECTION],
        .key = (absent & 16) ? NULL : f[F_KEY],
        .version = (absent & 32) ? NULL : f[F_VERSION],
    };
    const char *reason = "unset";
    int status = ws_handshake_validate(&req, &reason);
    FUZZ_CHECK(status == 0 || status == 400 || status == 426);
    if (status) {
        FUZZ_CHECK(reason != NULL && reason[0] != '\0');
    } else {
        FUZZ_CHECK(reason == NULL);
        FUZZ_CHECK(req.method && strcmp(req.method, "GET") == 0);
        FUZZ_CHECK(major > 1 || (major == 1 && minor >= 1));
        FUZZ_CHECK(req.host && req.host[0]);
        FUZZ_CHECK(req.upgrade && ref_list_has(req.upgrade, "websocket"));
        FUZZ_CHECK(req.connection && ref_list_has(req.connection, "upgrade"));
        FUZZ_CHECK(req.key && ref_key_ok(req.key));
        char *v = req.version ? ref_trim(req.version) : NULL;
        FUZZ_CHECK(v && strcmp(v, "13") == 0);
        free(v);
    }
    if (status == 426) {
        char *v = req.version ? ref_trim(req.version) : NULL;
        FUZZ_CHECK(v && strcmp(v, "13") != 0);
        free(v);
    }

    /* The answer, for any key (the server only builds it for valid ones). */
    char accept[29], accept2[29];
    ws_accept_key(f[F_KEY], accept);
    FUZZ_CHECK(strlen(accept) == 28);
    char *trimmed = ref_trim(f[F_KEY]);
    ws_accept_key(trimmed, accept2);
    FUZZ_CHECK(strcmp(accept, accept2) == 0);
    free(trimmed);

    char *out = malloc(cap ? cap : 1);
    FUZZ_CHECK(out != NULL);
    size_t len = ws_handshake_response(out, cap, f[F_KEY]);
    FUZZ_CHECK(len == 0 || len < cap);
    if (len) {
        static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n";
        FUZZ_CHECK(strlen(out) == len);
        FUZZ_CHECK(strncmp(out, head, sizeof(head) - 1) == 0);
        FUZZ_CHECK(len >= 4 && memcmp(out + len - 4, "\r\n\r\n", 4) == 0);
        FUZZ_CHECK(strstr(out, accept) != NULL);
    } else {
        FUZZ_CHECK(cap < 130);          /* the answer is 129 bytes + NUL */
    }
    free(out);

    for (int i = 0; i < F_COUNT; i++)
        free(f[i]);
    return 0;
}
