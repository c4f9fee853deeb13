/* params.c — HTTP API parameters (see params.h). */
#include "http/params.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int params_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long params_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%' && i + 2 < n && params_hex(s[i + 1]) >= 0 &&
                   params_hex(s[i + 2]) >= 0) {
            ch = (char)(params_hex(s[i + 1]) * 16 + params_hex(s[i + 2]));
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return (long)o;
}

void params_init(params *p, const char *url, size_t url_len, const char *ctype,
                 const char *body, size_t body_len)
{
    memset(p, 0, sizeof(*p));
    const char *q = url ? memchr(url, '?', url_len) : NULL;
    if (q) {
        p->query = q + 1;
        p->qlen = url_len - (size_t)(q + 1 - url);
        const char *hash = memchr(p->query, '#', p->qlen);
        if (hash)
            p->qlen = (size_t)(hash - p->query);
    }
    if (!body || body_len == 0)
        return;
    if (ctype && strncasecmp(ctype, "application/json", 16) == 0) {
        json_error_t err;
        json_t *j = json_loadb(body, body_len, 0, &err);
        if (json_is_object(j))
            p->json = j;
        else {
            json_decref(j);
            p->json_bad = 1;
        }
    } else {
        p->form = body;                     /* urlencoded, also when untyped */
        p->flen = body_len;
    }
}

void params_free(params *p)
{
    json_decref(p->json);
    p->json = NULL;
}

/* Finds name in an urlencoded list; the value's raw span in *v, *vn. */
static int params_find_encoded(const char *s, size_t n, const char *name, const char **v, size_t *vn)
{
    size_t nlen = strlen(name);
    char key[64];
    const char *end = s + n;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        const char *ke = eq ? eq : pe;
        long kl = params_decode(s, (size_t)(ke - s), key, sizeof(key));
        if (kl == (long)nlen && strncasecmp(key, name, nlen) == 0) {
            *v = eq ? eq + 1 : pe;
            *vn = (size_t)(pe - *v);
            return 1;
        }
        s = pe + 1;
    }
    return 0;
}

static int params_from_json(json_t *obj, const char *name, char *out, size_t cap, size_t *len)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        if (strcasecmp(key, name) != 0)
            continue;
        int n;
        if (json_is_string(val)) {
            if (json_string_length(val) >= cap)
                return -1;
            n = (int)json_string_length(val);
            memcpy(out, json_string_value(val), (size_t)n);
            out[n] = '\0';
        } else if (json_is_integer(val)) {
            n = snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(val));
        } else if (json_is_real(val)) {
            n = snprintf(out, cap, "%.17g", json_real_value(val));
        } else if (json_is_boolean(val)) {
            n = snprintf(out, cap, "%s", json_is_true(val) ? "true" : "false");
        } else if (json_is_null(val)) {
            return 0;
        } else {
            return -1;
        }
        if (n < 0 || (size_t)n >= cap)
            return -1;
        *len = (size_t)n;
        return 1;
    }
    return 0;
}

int params_get(const params *p, const char *name, char *out, size_t cap, size_t *len)
{
    const char *v;
    size_t vn;
    if ((p->query && params_find_encoded(p->query, p->qlen, name, &v, &vn)) ||
        (p->form && params_find_encoded(p->form, p->flen, name, &v, &vn))) {
        long n = params_decode(v, vn, out, cap);
        if (n < 0)
            return -1;
        *len = (size_t)n;
        return 1;
    }
    if (p->json)
        return params_from_json(p->json, name, out, cap, len);
    return 0;
}
