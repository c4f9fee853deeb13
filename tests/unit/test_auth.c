/* test_auth.c — unit tests of im/auth: HS256 JWT login tokens (made here
 * with OpenSSL HMAC and a base64url encoder of the test's own), the API key
 * check and the Origin allow-list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "im/auth.h"

#define SECRET "s3cret-key"
#define NOW 1700000000L
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* ---------- token factory ---------- */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Appends the unpadded base64url encoding of p[0..n) to out. */
static void b64url_append(char *out, const unsigned char *p, size_t n)
{
    size_t o = strlen(out);

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t k = n - i >= 3 ? 3 : n - i;

        if (k > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (k > 2)
            v |= p[i + 2];
        out[o++] = b64url_chars[(v >> 18) & 63];
        out[o++] = b64url_chars[(v >> 12) & 63];
        if (k > 1)
            out[o++] = b64url_chars[(v >> 6) & 63];
        if (k > 2)
            out[o++] = b64url_chars[v & 63];
    }
    out[o] = '\0';
}

/* "b64(header).b64(payload).b64(HMAC-SHA256)" under secret; free() it. */
static char *make_token(const char *header, const char *payload, const char *secret)
{
    size_t cap = (strlen(header) + strlen(payload)) * 2 + 128;
    char *t = calloc(1, cap);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    assert_non_null(t);
    b64url_append(t, (const unsigned char *)header, strlen(header));
    strcat(t, ".");
    b64url_append(t, (const unsigned char *)payload, strlen(payload));
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)t,
                         strlen(t), md, &mdlen));
    assert_int_equal(mdlen, 32);
    strcat(t, ".");
    b64url_append(t, md, mdlen);
    return t;
}

/* A payload {"sub":sub,"exp":exp} as text in buf. */
static const char *claims(char *buf, size_t cap, const char *sub, long exp)
{
    snprintf(buf, cap, "{\"sub\":\"%s\",\"exp\":%ld}", sub, exp);
    return buf;
}

/* Checks token t for subject sub at NOW under SECRET; expects want_why
 * (NULL = valid). */
static void expect(const char *t, const char *sub, const char *want_why)
{
    const char *why = "unset";
    int rc = auth_jwt_check(t, t ? strlen(t) : 0, SECRET, sub, strlen(sub), NOW, &why);

    if (!want_why) {
        if (rc != 0)
            fail_msg("token rejected: %s", why);
        assert_null(why);
        return;
    }
    assert_int_equal(rc, -1);
    assert_non_null(why);
    assert_string_equal(why, want_why);
}

/* Makes a token from header/payload under SECRET and expects want_why. */
static void expect_made(const char *header, const char *payload, const char *want_why)
{
    char *t = make_token(header, payload, SECRET);

    expect(t, "alice", want_why);
    free(t);
}

/* ---------- valid tokens ---------- */

static void test_valid(void **state)
{
    char p[256];

    (void)state;
    expect_made(HS256, claims(p, sizeof p, "alice", NOW + 60), NULL);
    expect_made("{\"alg\":\"HS256\"}", claims(p, sizeof p, "alice", NOW + 1), NULL);
    expect_made("{\"typ\":\"jwt\",\"alg\":\"HS256\",\"kid\":\"k1\"}",
                claims(p, sizeof p, "alice", NOW + 60), NULL);
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":1700000010.5,\"nbf\":1699999999,"
                       "\"iat\":1699999999,\"extra\":[1,{\"x\":null}]}", NULL);
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":1800000000,\"nbf\":1700000000}", NULL);
}

static void test_valid_odd_lengths(void **state)
{
    char p[256], sub[32];

    (void)state;
    /* payload lengths that end on each of the three base64 remainders */
    for (int i = 1; i <= 6; i++) {
        char *t;

        snprintf(sub, sizeof sub, "%.*s", i, "abcdef");
        t = make_token(HS256, claims(p, sizeof p, sub, NOW + 60), SECRET);
        expect(t, sub, NULL);
        free(t);
    }
}

static void test_null_why_allowed(void **state)
{
    char p[256];
    char *t = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);

    (void)state;
    assert_int_equal(auth_jwt_check(t, strlen(t), SECRET, "alice", 5, NOW, NULL), 0);
    assert_int_equal(auth_jwt_check(t, strlen(t), SECRET, "bob", 3, NOW, NULL), -1);
    free(t);
}

/* ---------- time claims ---------- */

static void test_expired(void **state)
{
    char p[256];

    (void)state;
    expect_made(HS256, claims(p, sizeof p, "alice", NOW - 1), "expired");
    expect_made(HS256, claims(p, sizeof p, "alice", NOW), "expired");
    expect_made(HS256, claims(p, sizeof p, "alice", 0), "expired");
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":-5}", "expired");
}

static void test_nbf(void **state)
{
    (void)state;
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":1800000000,\"nbf\":1700000001}", "not yet valid");
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":1800000000,\"nbf\":\"0\"}", "nbf not a number");
}

static void test_missing_or_bad_exp(void **state)
{
    (void)state;
    expect_made(HS256, "{\"sub\":\"alice\"}", "missing exp");
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":\"1800000000\"}", "exp not a number");
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":null}", "exp not a number");
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":true}", "exp not a number");
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":[1800000000]}", "exp not a number");
}

/* ---------- signature and secret ---------- */

static void test_wrong_signature(void **state)
{
    char p[256];
    char *t = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);
    size_t n = strlen(t);

    (void)state;
    t[n - 2] = t[n - 2] == 'A' ? 'B' : 'A';       /* a changed signature byte */
    expect(t, "alice", "bad signature");
    free(t);
}

static void test_wrong_secret(void **state)
{
    char p[256];
    char *t = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), "other-secret");

    (void)state;
    expect(t, "alice", "bad signature");
    free(t);
    t = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET "x");
    expect(t, "alice", "bad signature");
    free(t);
}

static void test_tampered_payload(void **state)
{
    char p[256];
    char *good = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);
    char *evil = make_token(HS256, claims(p, sizeof p, "mallory", NOW + 60), "guess");
    char *dot1 = strchr(good, '.'), *dot2 = strrchr(good, '.');
    char *edot1 = strchr(evil, '.'), *edot2 = strrchr(evil, '.');
    char mixed[512];

    (void)state;
    /* mallory's claims with alice's signature */
    snprintf(mixed, sizeof mixed, "%.*s%.*s%s", (int)(dot1 - good), good,
             (int)(edot2 - edot1), edot1, dot2);
    expect(mixed, "mallory", "bad signature");
    free(good);
    free(evil);
}

static void test_signature_length(void **state)
{
    char p[256], t[512];
    char *good = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);
    char *sig = strrchr(good, '.') + 1;

    (void)state;
    snprintf(t, sizeof t, "%.*sAAAA", (int)(sig - good), good);   /* 3 bytes */
    expect(t, "alice", "bad signature");
    snprintf(t, sizeof t, "%sAAAA", good);                         /* 35 bytes */
    expect(t, "alice", "bad signature");
    free(good);
}

/* ---------- subject ---------- */

static void test_wrong_subject(void **state)
{
    char p[256];
    char *t = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);

    (void)state;
    expect(t, "bob", "subject mismatch");
    expect(t, "alic", "subject mismatch");
    expect(t, "alicee", "subject mismatch");
    expect(t, "Alice", "subject mismatch");
    assert_int_equal(auth_jwt_check(t, strlen(t), SECRET, "", 0, NOW, NULL), -1);
    free(t);
    expect_made(HS256, "{\"exp\":1800000000}", "missing sub");
    expect_made(HS256, "{\"sub\":7,\"exp\":1800000000}", "missing sub");
    expect_made(HS256, "{\"sub\":null,\"exp\":1800000000}", "missing sub");
}

/* ---------- header ---------- */

static void test_alg_none(void **state)
{
    char p[256], t[640], h[128] = "", pl[384] = "";
    const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";

    (void)state;
    claims(p, sizeof p, "alice", NOW + 60);
    b64url_append(h, (const unsigned char *)none, strlen(none));
    b64url_append(pl, (const unsigned char *)p, strlen(p));
    snprintf(t, sizeof t, "%s.%s.", h, pl);                   /* unsigned: empty signature */
    expect(t, "alice", "malformed token");
    expect_made(none, p, "unsupported alg");                  /* even with a valid HMAC */
    expect_made("{\"alg\":\"None\"}", p, "unsupported alg");
}

static void test_other_algs(void **state)
{
    char p[256];

    (void)state;
    claims(p, sizeof p, "alice", NOW + 60);
    expect_made("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", p, "unsupported alg");
    expect_made("{\"alg\":\"HS384\"}", p, "unsupported alg");
    expect_made("{\"alg\":\"RS256\"}", p, "unsupported alg");
    expect_made("{\"alg\":\"hs256\"}", p, "unsupported alg");
    expect_made("{\"alg\":\"HS256 \"}", p, "unsupported alg");
    expect_made("{\"typ\":\"JWT\"}", p, "missing alg");
    expect_made("{\"alg\":256}", p, "missing alg");
    expect_made("{\"alg\":\"HS256\",\"typ\":1}", p, "malformed header");
    expect_made("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", p, "unsupported crit header");
}

static void test_header_not_json(void **state)
{
    char p[256];

    (void)state;
    claims(p, sizeof p, "alice", NOW + 60);
    expect_made("not json", p, "malformed header");
    expect_made("", p, "malformed token");                    /* empty first part */
    expect_made("[\"HS256\"]", p, "malformed header");
    expect_made("\"HS256\"", p, "malformed header");
    expect_made("{\"alg\":\"HS256\"", p, "malformed header");
    expect_made("{\"alg\":\"HS256\"} x", p, "malformed header");
    expect_made("{\"alg\":\"HS256\",\"alg\":\"none\"}", p, "malformed header");
    expect_made("{\"alg\":\"HS\\u0000256\"}", p, "malformed header");
}

static void test_payload_not_json(void **state)
{
    (void)state;
    expect_made(HS256, "not json", "malformed payload");
    expect_made(HS256, "[1,2]", "malformed payload");
    expect_made(HS256, "1800000000", "malformed payload");
    expect_made(HS256, "{\"sub\":\"mallory\",\"sub\":\"alice\",\"exp\":1800000000}",
                "malformed payload");
    expect_made(HS256, "{\"sub\":\"alice\",\"exp\":1e999}", "malformed payload");
}

/* ---------- structure and encoding ---------- */

static void test_part_count(void **state)
{
    char p[256], t[1024];
    char *good = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);

    (void)state;
    snprintf(t, sizeof t, "%.*s", (int)(strrchr(good, '.') - good), good);
    expect(t, "alice", "malformed token");                    /* 2 parts */
    snprintf(t, sizeof t, "%s.%s", good, strrchr(good, '.') + 1);
    expect(t, "alice", "malformed token");                    /* 4 parts */
    snprintf(t, sizeof t, "%s.", good);
    expect(t, "alice", "malformed token");                    /* empty 4th */
    snprintf(t, sizeof t, ".%s", good);
    expect(t, "alice", "malformed token");
    expect("abc", "alice", "malformed token");
    expect("..", "alice", "malformed token");
    expect("a..b", "alice", "malformed token");
    free(good);
}

static void test_padding(void **state)
{
    char p[256], t[1024];
    char *good = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);
    char *dot1 = strchr(good, '.');

    (void)state;
    snprintf(t, sizeof t, "%s=", good);                       /* signature: 43 chars + '=' */
    expect(t, "alice", "bad base64");
    snprintf(t, sizeof t, "%.*s==%s", (int)(dot1 - good), good, dot1);
    expect(t, "alice", "bad base64");
    free(good);
}

static void test_bad_base64_chars(void **state)
{
    static const char bad[] = {'+', '/', ' ', '*', '\n', '\x80', '=', '\0'};
    char p[256];
    char *good = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);
    size_t n = strlen(good);
    size_t spots[] = {1, (size_t)(strchr(good, '.') - good) + 2, n - 3};

    (void)state;
    for (size_t b = 0; b < sizeof bad; b++) {
        for (size_t s = 0; s < 3; s++) {
            char *t = strdup(good);
            const char *why = NULL;

            assert_non_null(t);
            t[spots[s]] = bad[b];
            assert_int_equal(auth_jwt_check(t, n, SECRET, "alice", 5, NOW, &why), -1);
            assert_string_equal(why, "bad base64");
            free(t);
        }
    }
    free(good);
}

static void test_non_canonical_base64(void **state)
{
    char p[256], t[1024];
    char *good = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);
    size_t n = strlen(good);
    char last = good[n - 1];

    (void)state;
    /* 43 chars hold 32 bytes + 2 unused bits; setting them must be refused */
    snprintf(t, sizeof t, "%.*s%c", (int)(n - 1), good,
             b64url_chars[(strchr(b64url_chars, last) - b64url_chars) | 1]);
    expect(t, "alice", "bad base64");
    snprintf(t, sizeof t, "%sAA", good);                      /* 45 chars: impossible */
    expect(t, "alice", "bad base64");
    snprintf(t, sizeof t, "%sA", good);                       /* 44 chars: 33 bytes */
    expect(t, "alice", "bad signature");
    free(good);
}

static void test_sizes_and_nulls(void **state)
{
    char p[256];
    char *good = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), SECRET);
    size_t n = strlen(good);
    char *huge = malloc(AUTH_TOKEN_MAX + 2);
    const char *why = NULL;

    (void)state;
    assert_non_null(huge);
    memset(huge, 'A', AUTH_TOKEN_MAX + 1);
    huge[10] = huge[20] = '.';
    huge[AUTH_TOKEN_MAX + 1] = '\0';
    expect(huge, "alice", "token too long");
    free(huge);
    expect("", "alice", "missing token");
    assert_int_equal(auth_jwt_check(NULL, 0, SECRET, "alice", 5, NOW, &why), -1);
    assert_string_equal(why, "missing token");
    /* the length given counts, not a NUL: a token with a NUL inside */
    good[5] = '\0';
    assert_int_equal(auth_jwt_check(good, n, SECRET, "alice", 5, NOW, &why), -1);
    assert_string_equal(why, "bad base64");
    free(good);
    /* no secret configured: nothing is valid */
    good = make_token(HS256, claims(p, sizeof p, "alice", NOW + 60), "");
    assert_int_equal(auth_jwt_check(good, strlen(good), "", "alice", 5, NOW, NULL), -1);
    assert_int_equal(auth_jwt_check(good, strlen(good), NULL, "alice", 5, NOW, NULL), -1);
    free(good);
}

static void test_big_valid_token(void **state)
{
    char *payload = malloc(3000);
    char *t;

    (void)state;
    assert_non_null(payload);
    snprintf(payload, 3000, "{\"sub\":\"alice\",\"exp\":1800000000,\"pad\":\"%02500d\"}", 0);
    t = make_token(HS256, payload, SECRET);
    assert_true(strlen(t) < AUTH_TOKEN_MAX);
    expect(t, "alice", NULL);
    free(t);
    free(payload);
}

/* ---------- API key ---------- */

static void test_api_key(void **state)
{
    (void)state;
    assert_int_equal(auth_api_key_check("Bearer k3y-1", "k3y-1"), 0);
    assert_int_equal(auth_api_key_check("bearer k3y-1", "k3y-1"), 0);
    assert_int_equal(auth_api_key_check("BEARER   k3y-1  ", "k3y-1"), 0);
    assert_int_equal(auth_api_key_check("Bearer\tk3y-1", "k3y-1"), 0);
    assert_int_equal(auth_api_key_check("Bearer k3y-2", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Bearer k3y-", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Bearer k3y-11", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Bearer K3Y-1", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Bearer k3y -1", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Basic k3y-1", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Bearerk3y-1", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("k3y-1", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Bearer ", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Bearer", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("", "k3y-1"), -1);
    assert_int_equal(auth_api_key_check(NULL, "k3y-1"), -1);
    assert_int_equal(auth_api_key_check("Bearer ", ""), -1);
    assert_int_equal(auth_api_key_check("Bearer x", ""), -1);
    assert_int_equal(auth_api_key_check("Bearer x", NULL), -1);
}

/* ---------- Origin ---------- */

static void test_origin(void **state)
{
    const char *list = "https://a.com, http://localhost:8080 ,https://b.example.org";

    (void)state;
    assert_int_equal(auth_origin_allowed("https://a.com", list), 1);
    assert_int_equal(auth_origin_allowed("HTTPS://A.COM", list), 1);
    assert_int_equal(auth_origin_allowed("http://localhost:8080", list), 1);
    assert_int_equal(auth_origin_allowed("https://b.example.org", list), 1);
    assert_int_equal(auth_origin_allowed("https://evil.com", list), 0);
    assert_int_equal(auth_origin_allowed("http://a.com", list), 0);
    assert_int_equal(auth_origin_allowed("https://a.co", list), 0);
    assert_int_equal(auth_origin_allowed("https://a.com.evil.com", list), 0);
    assert_int_equal(auth_origin_allowed("https://a.com:443", list), 0);
    assert_int_equal(auth_origin_allowed("http://localhost:8081", list), 0);
    assert_int_equal(auth_origin_allowed("http://localhost", list), 0);
    assert_int_equal(auth_origin_allowed("null", list), 0);
    assert_int_equal(auth_origin_allowed("", list), 0);
    assert_int_equal(auth_origin_allowed(" https://a.com", list), 0);
    assert_int_equal(auth_origin_allowed(NULL, list), 1);     /* no header: not a browser */
}

static void test_origin_lists(void **state)
{
    (void)state;
    assert_int_equal(auth_origin_allowed("https://x.com", ""), 1);
    assert_int_equal(auth_origin_allowed("https://x.com", NULL), 1);
    assert_int_equal(auth_origin_allowed("https://x.com", "*"), 1);
    assert_int_equal(auth_origin_allowed("https://x.com", "https://a.com, *"), 1);
    assert_int_equal(auth_origin_allowed("https://x.com", "https://x.com"), 1);
    assert_int_equal(auth_origin_allowed("https://x.com", "https://x.com,"), 1);
    assert_int_equal(auth_origin_allowed("https://y.com", "https://x.com,"), 0);
    assert_int_equal(auth_origin_allowed("", "https://x.com,,"), 0);
    assert_int_equal(auth_origin_allowed("null", "null"), 1);
    assert_int_equal(auth_origin_allowed("https://x.com", "*.x.com"), 0);
    assert_int_equal(auth_origin_allowed("https://x.com", "https://x.com/"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_valid_odd_lengths),
        cmocka_unit_test(test_null_why_allowed),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_nbf),
        cmocka_unit_test(test_missing_or_bad_exp),
        cmocka_unit_test(test_wrong_signature),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_signature_length),
        cmocka_unit_test(test_wrong_subject),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_other_algs),
        cmocka_unit_test(test_header_not_json),
        cmocka_unit_test(test_payload_not_json),
        cmocka_unit_test(test_part_count),
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_bad_base64_chars),
        cmocka_unit_test(test_non_canonical_base64),
        cmocka_unit_test(test_sizes_and_nulls),
        cmocka_unit_test(test_big_valid_token),
        cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_origin_lists),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
