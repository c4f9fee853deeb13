/* auth.c — login token (HS256 JWT), API key and Origin checks (see auth.h).
 * Token parsing is strict: exactly three canonical base64url parts, JSON
 * objects without duplicate keys, only "alg":"HS256". The signature is
 * verified before any claim is read; secrets are compared in constant time
 * (CRYPTO_memcmp). */
#include "im/auth.h"

#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_SIG_LEN 32                /* HMAC-SHA256 output */

/* One dot-separated part of a token: its text and, once decoded, its bytes. */
typedef struct auth_part {
    const char *text;
    size_t len;
    const unsigned char *bin;
    size_t binlen;
} auth_part;

/* A token being checked, with what it is checked against. */
typedef struct auth_jwt {
    const char *token;
    size_t len;
    const char *secret;
    const char *sub;
    size_t sublen;
    long now;
    auth_part part[3];                 /* header, payload, signature */
} auth_jwt;

/* ---------- base64url ---------- */

static int auth_b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

/* Strict base64url without padding: only the 64 URL-safe characters, no
 * impossible length, and zero unused bits in the last character, so a byte
 * string has exactly one accepted encoding. out holds n * 3 / 4 bytes.
 * Returns 0 or -1. */
static int auth_b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = auth_b64_value((unsigned char)in[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    *outlen = o;
    return 0;
}

/* ---------- token structure ---------- */

/* Splits "a.b.c" into exactly three non-empty parts. Returns 0 or -1. */
static int auth_split(auth_jwt *j)
{
    size_t start = 0;
    int k = 0;

    for (size_t i = 0; i <= j->len; i++) {
        if (i < j->len && j->token[i] != '.')
            continue;
        if (k == 3 || i == start)
            return -1;
        j->part[k].text = j->token + start;
        j->part[k].len = i - start;
        k++;
        start = i + 1;
    }
    return k == 3 ? 0 : -1;
}

/* Decodes the three parts one after the other into buf (len bytes: the
 * decoded parts are shorter than the token). Returns 0 or -1. */
static int auth_decode(auth_jwt *j, unsigned char *buf)
{
    for (int i = 0; i < 3; i++) {
        auth_part *p = &j->part[i];

        if (auth_b64url_decode(p->text, p->len, buf, &p->binlen) < 0)
            return -1;
        p->bin = buf;
        buf += p->binlen;
    }
    return 0;
}

/* A JSON object (duplicate keys, NUL in strings and other roots refused),
 * or NULL. */
static json_t *auth_json_object(const auth_part *p)
{
    json_t *v = json_loadb((const char *)p->bin, p->binlen, JSON_REJECT_DUPLICATES, NULL);

    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* ---------- header and signature ---------- */

static const char *auth_header_why(json_t *hdr)
{
    json_t *alg = json_object_get(hdr, "alg");
    json_t *typ = json_object_get(hdr, "typ");

    if (!json_is_string(alg))
        return "missing alg";
    if (strcmp(json_string_value(alg), "HS256") != 0)
        return "unsupported alg";
    if (typ && !json_is_string(typ))
        return "malformed header";
    if (json_object_get(hdr, "crit"))
        return "unsupported crit header";
    return NULL;
}

static int auth_check_header(const auth_jwt *j, const char **why)
{
    json_t *hdr = auth_json_object(&j->part[0]);

    if (!hdr) {
        *why = "malformed header";
        return -1;
    }
    *why = auth_header_why(hdr);
    json_decref(hdr);
    return *why ? -1 : 0;
}

/* HMAC-SHA256 of "header.payload" under the secret, against the signature. */
static int auth_check_sig(const auth_jwt *j, const char **why)
{
    const auth_part *sig = &j->part[2];
    size_t signed_len = (size_t)(sig->text - 1 - j->token);
    size_t klen = strlen(j->secret);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (sig->binlen != AUTH_SIG_LEN || klen > INT_MAX) {
        *why = "bad signature";
        return -1;
    }
    if (!HMAC(EVP_sha256(), j->secret, (int)klen, (const unsigned char *)j->token, signed_len,
              md, &mdlen) || mdlen != AUTH_SIG_LEN) {
        *why = "cannot compute HMAC";
        return -1;
    }
    if (CRYPTO_memcmp(md, sig->bin, AUTH_SIG_LEN) != 0) {
        *why = "bad signature";
        return -1;
    }
    return 0;
}

/* ---------- claims ---------- */

/* A NumericDate claim: 1 with its value, 0 if absent, -1 if not a number. */
static int auth_claim_time(json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);

    if (!v)
        return 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 1;
}

static const char *auth_claims_why(json_t *claims, const auth_jwt *j)
{
    json_t *sub = json_object_get(claims, "sub");
    double exp = 0, nbf = 0;
    int has;

    if (!json_is_string(sub))
        return "missing sub";
    if (json_string_length(sub) != j->sublen ||
        (j->sublen && memcmp(json_string_value(sub), j->sub, j->sublen) != 0))
        return "subject mismatch";
    has = auth_claim_time(claims, "exp", &exp);
    if (has == 0)
        return "missing exp";
    if (has < 0)
        return "exp not a number";
    if (exp <= (double)j->now)
        return "expired";
    has = auth_claim_time(claims, "nbf", &nbf);
    if (has < 0)
        return "nbf not a number";
    if (has > 0 && nbf > (double)j->now)
        return "not yet valid";
    return NULL;
}

static int auth_check_claims(const auth_jwt *j, const char **why)
{
    json_t *claims = auth_json_object(&j->part[1]);

    if (!claims) {
        *why = "malformed payload";
        return -1;
    }
    *why = auth_claims_why(claims, j);
    json_decref(claims);
    return *why ? -1 : 0;
}

static int auth_verify(auth_jwt *j, unsigned char *buf, const char **why)
{
    if (auth_decode(j, buf) < 0) {
        *why = "bad base64";
        return -1;
    }
    if (auth_check_header(j, why) < 0 || auth_check_sig(j, why) < 0)
        return -1;
    return auth_check_claims(j, why);
}

int auth_jwt_check(const char *token, size_t len, const char *secret, const char *sub,
                   size_t sublen, long now, const char **why)
{
    auth_jwt j = {.token = token, .len = len, .secret = secret, .sub = sub,
                  .sublen = sublen, .now = now};
    const char *unused;
    unsigned char *buf;
    int rc;

    if (!why)
        why = &unused;
    *why = NULL;
    if (!secret || !*secret || (!sub && sublen)) {
        *why = "no secret or subject";
        return -1;
    }
    if (!token || len == 0) {
        *why = "missing token";
        return -1;
    }
    if (len > AUTH_TOKEN_MAX) {
        *why = "token too long";
        return -1;
    }
    if (auth_split(&j) < 0) {
        *why = "malformed token";
        return -1;
    }
    buf = malloc(len);
    if (!buf) {
        *why = "out of memory";
        return -1;
    }
    rc = auth_verify(&j, buf, why);
    free(buf);
    return rc;
}

/* ---------- API key ---------- */

static const char *auth_skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int auth_api_key_check(const char *authorization_header, const char *key)
{
    unsigned char got[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];
    const char *h;
    size_t n;

    if (!authorization_header || !key || !*key)
        return -1;
    h = auth_skip_blanks(authorization_header);
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return -1;
    h = auth_skip_blanks(h + 6);
    n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    /* Equal-length digests: the comparison time depends on neither value. */
    if (!SHA256((const unsigned char *)h, n, got) ||
        !SHA256((const unsigned char *)key, strlen(key), want))
        return -1;
    return CRYPTO_memcmp(got, want, sizeof got) == 0 ? 0 : -1;
}

/* ---------- Origin ---------- */

/* Does the list item item[0..n) (blanks around it ignored) allow origin? */
static int auth_origin_item(const char *item, size_t n, const char *origin)
{
    while (n && (*item == ' ' || *item == '\t')) {
        item++;
        n--;
    }
    while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
        n--;
    if (n == 1 && item[0] == '*')
        return 1;
    return n > 0 && strlen(origin) == n && strncasecmp(item, origin, n) == 0;
}

int auth_origin_allowed(const char *origin, const char *list)
{
    const char *p = list;

    if (!list || !*list || !origin)
        return 1;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);

        if (auth_origin_item(p, n, origin))
            return 1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}
