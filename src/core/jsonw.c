/* jsonw.c — JSON text builder (see jsonw.h). Strings are escaped per
 * RFC 8259: quote, backslash and control characters; other bytes (valid
 * UTF-8 is the caller's duty) pass through. "</" is written as "<\/" so a
 * JSON answer is safe to embed in a page. */
#include "core/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(jsonw *w, size_t reserve)
{
    memset(w, 0, sizeof(*w));
    w->reserve = reserve;
    w->len = reserve;
}

static int jsonw_grow(jsonw *w, size_t need)
{
    if (w->err)
        return -1;
    if (w->len + need <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + need)
        cap *= 2;
    char *nb = realloc(w->buf, cap);
    if (!nb) {
        w->err = 1;
        return -1;
    }
    w->buf = nb;
    w->cap = cap;
    return 0;
}

void jsonw_raw(jsonw *w, const char *s, size_t n)
{
    if (jsonw_grow(w, n) == 0) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    }
}

void jsonw_lit(jsonw *w, const char *s) { jsonw_raw(w, s, strlen(s)); }

void jsonw_str(jsonw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (jsonw_grow(w, n * 6 + 2) != 0)   /* worst case: every byte \u00XX */
        return;
    char *o = w->buf + w->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '/':
            if (i > 0 && s[i - 1] == '<')
                *o++ = '\\';
            *o++ = '/';
            break;
        default:
            if (c < 0x20) {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 15];
                o += 6;
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    w->len = (size_t)(o - w->buf);
}

void jsonw_cstr(jsonw *w, const char *s) { jsonw_str(w, s, strlen(s)); }

void jsonw_int(jsonw *w, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", v);
    jsonw_raw(w, tmp, (size_t)n);
}

void jsonw_uint(jsonw *w, unsigned long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", v);
    jsonw_raw(w, tmp, (size_t)n);
}

void jsonw_key(jsonw *w, const char *key)
{
    jsonw_cstr(w, key);
    jsonw_raw(w, ":", 1);
}

const char *jsonw_text(jsonw *w, size_t *len)
{
    if (w->err || jsonw_grow(w, 1) != 0)
        return NULL;
    w->buf[w->len] = '\0';
    *len = w->len - w->reserve;
    return w->buf + w->reserve;
}

void jsonw_free(jsonw *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}
