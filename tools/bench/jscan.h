/* jscan.h — finds one member of a JSON text without parsing it all: the
 * first `"key"` followed by ':' (so a string value equal to the key does not
 * match). Enough for the replies and pushes of SPEC §2, whatever spacing a
 * server uses; string values are returned raw (escapes not decoded). */
#ifndef BENCH_JSCAN_H
#define BENCH_JSCAN_H

#include <stddef.h>

/* String member: 0 with *v and *vn set, -1 if absent or not a string. */
int jscan_str(const char *p, size_t n, const char *key, const char **v, size_t *vn);

/* The same for the last `"key":` in the text, searched from its end: for a
 * key that occurs once (a push's data.msg), fewer bytes looked at. */
int jscan_str_last(const char *p, size_t n, const char *key, const char **v, size_t *vn);

/* Integer member (a number, or a numeric string): 0 with *v set, else -1. */
int jscan_int(const char *p, size_t n, const char *key, long *v);

/* Boolean member: 0 with *v = 0/1, else -1. */
int jscan_bool(const char *p, size_t n, const char *key, int *v);

#endif
