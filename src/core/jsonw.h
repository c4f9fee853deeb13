/* jsonw.h — a small append-only JSON text builder used for replies, pushes
 * and API answers. Output is compact and in the order written (the original
 * system's field order). On allocation failure the builder goes into an
 * error state; jsonw_finish then returns NULL. */
#ifndef IMGATE_JSONW_H
#define IMGATE_JSONW_H

#include <stddef.h>
#include <stdint.h>

typedef struct jsonw {
    char *buf;
    size_t len, cap;
    size_t reserve;   /* bytes kept free at the front (e.g. a frame header) */
    int err;
} jsonw;

/* Starts a builder; `reserve` bytes are left free before the text. */
void jsonw_init(jsonw *w, size_t reserve);
void jsonw_raw(jsonw *w, const char *s, size_t n);
void jsonw_lit(jsonw *w, const char *s);           /* raw NUL-terminated text */
void jsonw_str(jsonw *w, const char *s, size_t n); /* a quoted, escaped string */
void jsonw_cstr(jsonw *w, const char *s);
void jsonw_int(jsonw *w, long long v);
void jsonw_uint(jsonw *w, unsigned long long v);
void jsonw_key(jsonw *w, const char *key);         /* "key": (comma is the caller's) */
/* The text (after the reserve), its length in *len; NULL if any step failed.
 * The buffer is owned by w until jsonw_free. */
const char *jsonw_text(jsonw *w, size_t *len);
void jsonw_free(jsonw *w);

#endif
