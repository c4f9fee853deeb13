/* jscan.c — single-member JSON look-up. */
#include "jscan.h"

#include <stdlib.h>
#include <string.h>

static const char *jscan_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* The first byte of the value of `"key":`, or NULL. */
static const char *jscan_value(const char *p, size_t n, const char *key)
{
    size_t kl = strlen(key);
    const char *end = p + n, *s = p;
    while (s < end) {
        const char *q = memchr(s, '"', (size_t)(end - s));
        if (!q || (size_t)(end - q) < kl + 2)
            return NULL;
        if (q[1] == key[0] && memcmp(q + 1, key, kl) == 0 && q[kl + 1] == '"') {   /* cheap test first */
            const char *v = jscan_skip_ws(q + kl + 2, end);
            if (v < end && *v == ':')
                return jscan_skip_ws(v + 1, end);
        }
        s = q + 1;
    }
    return NULL;
}

/* Like jscan_value, but the last `"key":` in the text: found from the end,
 * quote by quote. A push's data.msg is a few quotes from its end, some 20
 * from its start; for a key that occurs once both give the same member. */
static const char *jscan_value_last(const char *p, size_t n, const char *key)
{
    size_t kl = strlen(key);
    const char *end = p + n, *e = end;
    while (e > p) {
        const char *q = memrchr(p, '"', (size_t)(e - p));   /* a candidate closing quote */
        if (!q)
            return NULL;
        if ((size_t)(q - p) >= kl + 1 && q[-(long)kl - 1] == '"' &&
            memcmp(q - kl, key, kl) == 0) {
            const char *v = jscan_skip_ws(q + 1, end);
            if (v < end && *v == ':')
                return jscan_skip_ws(v + 1, end);
        }
        e = q;
    }
    return NULL;
}

/* The end (closing quote) of the string starting after the quote at p. */
static const char *jscan_str_end(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p;
    }
    return NULL;
}

static int jscan_str_at(const char *s, const char *end, const char **v, size_t *vn)
{
    if (!s || s >= end || *s != '"')
        return -1;
    const char *e = jscan_str_end(s + 1, end);
    if (!e)
        return -1;
    *v = s + 1;
    *vn = (size_t)(e - s - 1);
    return 0;
}

int jscan_str(const char *p, size_t n, const char *key, const char **v, size_t *vn)
{
    return jscan_str_at(jscan_value(p, n, key), p + n, v, vn);
}

int jscan_str_last(const char *p, size_t n, const char *key, const char **v, size_t *vn)
{
    return jscan_str_at(jscan_value_last(p, n, key), p + n, v, vn);
}

int jscan_int(const char *p, size_t n, const char *key, long *v)
{
    const char *end = p + n, *s = jscan_value(p, n, key);
    if (!s || s >= end)
        return -1;
    if (*s == '"')
        s++;
    char buf[24];
    size_t i = 0;
    while (s < end && i < sizeof(buf) - 1 && (*s == '-' || (*s >= '0' && *s <= '9')))
        buf[i++] = *s++;
    if (i == 0 || (i == 1 && buf[0] == '-'))
        return -1;
    buf[i] = 0;
    *v = strtol(buf, NULL, 10);
    return 0;
}

int jscan_bool(const char *p, size_t n, const char *key, int *v)
{
    const char *end = p + n, *s = jscan_value(p, n, key);
    if (!s)
        return -1;
    if ((size_t)(end - s) >= 4 && memcmp(s, "true", 4) == 0)
        *v = 1;
    else if ((size_t)(end - s) >= 5 && memcmp(s, "false", 5) == 0)
        *v = 0;
    else
        return -1;
    return 0;
}
