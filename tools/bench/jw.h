/* jw.h — a streaming JSON writer to a FILE: objects, arrays, numbers
 * (NaN/inf become null), strings (escaped), with indentation. */
#ifndef BENCH_JW_H
#define BENCH_JW_H

#include <stdio.h>

#define JW_DEPTH 32

typedef struct jw {
    FILE *f;
    int depth;
    int count[JW_DEPTH];     /* members written at each level */
    int inline_from;         /* levels at or below this one stay on one line */
} jw;

void jw_init(jw *w, FILE *f);
/* key is NULL inside arrays (and for the top-level value). */
void jw_obj(jw *w, const char *key);
void jw_arr(jw *w, const char *key);
/* Like jw_obj/jw_arr, but the container is written on one line. */
void jw_obj_inline(jw *w, const char *key);
void jw_end(jw *w, char close);           /* '}' or ']' */
void jw_num(jw *w, const char *key, double v);
void jw_int(jw *w, const char *key, long long v);
void jw_str(jw *w, const char *key, const char *s);
void jw_bool(jw *w, const char *key, int v);

#endif
