/* resp.c — RESP request formatting (see resp.h). */
#include "cluster/resp.h"

#include <string.h>

static size_t resp_digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* '<mark><v>\r\n' at out; returns the end. */
static char *resp_head(char *out, char mark, size_t v)
{
    size_t n = resp_digits(v);
    *out++ = mark;
    for (size_t i = n; i > 0; i--) {
        out[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    out += n;
    *out++ = '\r';
    *out++ = '\n';
    return out;
}

static size_t resp_arg_len(const char **argv, const size_t *lens, int i)
{
    return lens ? lens[i] : strlen(argv[i]);
}

size_t resp_size(int argc, const char **argv, const size_t *lens)
{
    size_t n = 3 + resp_digits((size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = resp_arg_len(argv, lens, i);
        n += 3 + resp_digits(len) + len + 2;
    }
    return n;
}

char *resp_put(char *out, int argc, const char **argv, const size_t *lens)
{
    out = resp_head(out, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = resp_arg_len(argv, lens, i);
        out = resp_head(out, '$', len);
        if (len)
            memcpy(out, argv[i], len);
        out += len;
        *out++ = '\r';
        *out++ = '\n';
    }
    return out;
}
