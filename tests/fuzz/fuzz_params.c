/* fuzz_params.c — fuzz target for the HTTP API parameters: params_init over
 * a URL, a Content-Type and a body, params_get of the names the API reads,
 * and params_decode against a reference percent-decoder written here.
 *
 * Input: [0] the output capacity for params_get (an index into
 * fuzz_caps[]), then the URL line, the Content-Type line (a line "-" means
 * no Content-Type), one more parameter name line, and the body (the rest).
 * Every string and output buffer is exactly sized on the heap, so ASan sees
 * a read or write past its end.
 *
 * Checked: params_get answers 1 (with a NUL-terminated value shorter than
 * the capacity), 0 or -1; a parameter found in the query string or a form
 * body decodes to what the reference gives; params_decode equals the
 * reference and fails exactly when the result does not fit. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "http/params.h"

static const size_t fuzz_caps[8] = { 1, 2, 8, 20, 24, 32, 256, 4096 };

static const char *const fuzz_names[] = {
    "appID", "userID", "msgID", "message", "offset", "limit", "isDebug", "",
};

static int ref_hex(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* application/x-www-form-urlencoded decoding: '+' is a space, "%XY" with
 * two hex digits a byte, anything else (a lone '%' too) itself. out holds n. */
static size_t ref_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && ref_hex(s[i + 1]) >= 0 && ref_hex(s[i + 2]) >= 0) {
            out[o++] = (uint8_t)(ref_hex(s[i + 1]) * 16 + ref_hex(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

/* params_decode against ref_decode with every interesting capacity. */
static void fuzz_decode(const uint8_t *s, size_t n)
{
    uint8_t *want = malloc(n ? n : 1);
    FUZZ_CHECK(want != NULL);
    size_t wl = ref_decode(s, n, want);
    size_t caps[4] = { 1, wl, wl + 1, n + 1 };
    for (int i = 0; i < 4; i++) {
        if (caps[i] == 0)
            continue;
        char *out = malloc(caps[i]);
        FUZZ_CHECK(out != NULL);
        long got = params_decode((const char *)s, n, out, caps[i]);
        if (wl < caps[i]) {
            FUZZ_CHECK(got == (long)wl);
            FUZZ_CHECK(memcmp(out, want, wl) == 0 && out[wl] == '\0');
        } else {
            FUZZ_CHECK(got == -1);
        }
        free(out);
    }
    free(want);
}

/* Equality of n bytes, ASCII letters compared case-insensitively. */
static int ref_ieq(const uint8_t *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t x = a[i], y = (uint8_t)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (uint8_t)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (uint8_t)(y + 32);
        if (x != y)
            return 0;
    }
    return 1;
}

/* The raw value of name in an urlencoded list (first match, name decoded
 * and compared case-insensitively, as params.h says), or NULL. */
static const uint8_t *ref_find(const uint8_t *s, size_t n, const char *name, size_t *vn)
{
    size_t nl = strlen(name);
    const uint8_t *end = s + n;
    while (s < end) {
        const uint8_t *amp = memchr(s, '&', (size_t)(end - s));
        const uint8_t *pe = amp ? amp : end;
        const uint8_t *eq = memchr(s, '=', (size_t)(pe - s));
        const uint8_t *ke = eq ? eq : pe;
        uint8_t key[64];
        if ((size_t)(ke - s) < 3 * sizeof(key)) {
            uint8_t tmp[3 * 64];
            size_t kl = ref_decode(s, (size_t)(ke - s), tmp);
            if (kl < sizeof(key) && kl == nl) {
                memcpy(key, tmp, kl);
                if (ref_ieq(key, name, kl)) {
                    const uint8_t *v = eq ? eq + 1 : pe;
                    *vn = (size_t)(pe - v);
                    return v;
                }
            }
        }
        s = pe + 1;
    }
    return NULL;
}

static void fuzz_get(const params *p, const char *name, size_t cap)
{
    char *out = malloc(cap);
    FUZZ_CHECK(out != NULL);
    size_t len = (size_t)-1;
    int rc = params_get(p, name, out, cap, &len);
    FUZZ_CHECK(rc == 1 || rc == 0 || rc == -1);
    if (rc == 1)
        FUZZ_CHECK(len < cap && out[len] == '\0');

    /* From the query string, or else a form body: the decoded raw value. */
    size_t vn = 0;
    const uint8_t *v = NULL;
    if (p->query)
        v = ref_find((const uint8_t *)p->query, p->qlen, name, &vn);
    if (!v && p->form)
        v = ref_find((const uint8_t *)p->form, p->flen, name, &vn);
    if (v) {
        uint8_t *want = malloc(vn ? vn : 1);
        FUZZ_CHECK(want != NULL);
        size_t wl = ref_decode(v, vn, want);
        FUZZ_CHECK(rc == (wl < cap ? 1 : -1));
        if (rc == 1)
            FUZZ_CHECK(len == wl && memcmp(out, want, wl) == 0);
        free(want);
    } else if (!p->json) {
        FUZZ_CHECK(rc == 0);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    size_t cap = fuzz_caps[fuzz_u8(&in) % 8];
    size_t ul, cl, nl;
    const uint8_t *u = fuzz_line(&in, &ul);
    const uint8_t *c = fuzz_line(&in, &cl);
    const uint8_t *nm = fuzz_line(&in, &nl);
    char *url = (char *)fuzz_memdup(u, ul);
    char *ctype = cl == 1 && c[0] == '-' ? NULL : fuzz_strdup(c, cl);
    char *name = fuzz_strdup(nm, nl);
    char *body = (char *)fuzz_memdup(in.p, in.n);

    params p;
    params_init(&p, url, ul, ctype, body, in.n);
    FUZZ_CHECK(!(p.json && p.json_bad));
    for (size_t i = 0; i < sizeof(fuzz_names) / sizeof(fuzz_names[0]); i++)
        fuzz_get(&p, fuzz_names[i], cap);
    fuzz_get(&p, name, cap);
    fuzz_get(&p, "appid", 32);
    params_free(&p);
    FUZZ_CHECK(p.json == NULL);

    fuzz_decode(u, ul);
    fuzz_decode(in.p, in.n);

    free(url);
    free(ctype);
    free(name);
    free(body);
    return 0;
}
