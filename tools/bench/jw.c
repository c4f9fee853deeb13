/* jw.c — streaming JSON writer. */
#include "jw.h"

#include <math.h>
#include <string.h>

void jw_init(jw *w, FILE *f)
{
    memset(w, 0, sizeof(*w));
    w->f = f;
    w->inline_from = JW_DEPTH + 1;
}

static void jw_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* Comma, newline and indentation before a member, then its key. */
static void jw_member(jw *w, const char *key)
{
    if (w->depth > 0 && w->count[w->depth]++)
        fputc(',', w->f);
    if (w->depth > 0 && w->depth < w->inline_from) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    } else if (w->depth > 0 && w->count[w->depth] > 1) {
        fputc(' ', w->f);
    }
    if (key) {
        jw_escape(w->f, key);
        fputs(w->depth >= w->inline_from ? ":" : ": ", w->f);
    }
}

static void jw_open(jw *w, const char *key, char c)
{
    jw_member(w, key);
    fputc(c, w->f);
    if (w->depth + 1 < JW_DEPTH)
        w->depth++;
    w->count[w->depth] = 0;
}

void jw_obj(jw *w, const char *key) { jw_open(w, key, '{'); }
void jw_arr(jw *w, const char *key) { jw_open(w, key, '['); }

void jw_obj_inline(jw *w, const char *key)
{
    jw_open(w, key, '{');
    if (w->inline_from > w->depth)
        w->inline_from = w->depth;
}

void jw_end(jw *w, char close)
{
    int had = w->count[w->depth] > 0;
    int was_inline = w->depth >= w->inline_from;
    if (w->depth == w->inline_from)
        w->inline_from = JW_DEPTH + 1;
    w->depth--;
    if (had && !was_inline) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    fputc(close, w->f);
    if (w->depth == 0)
        fputc('\n', w->f);
}

void jw_num(jw *w, const char *key, double v)
{
    jw_member(w, key);
    if (!isfinite(v))
        fputs("null", w->f);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(w->f, "%.0f", v);
    else
        fprintf(w->f, "%.6g", v);
}

void jw_int(jw *w, const char *key, long long v)
{
    jw_member(w, key);
    fprintf(w->f, "%lld", v);
}

void jw_str(jw *w, const char *key, const char *s)
{
    jw_member(w, key);
    if (s)
        jw_escape(w->f, s);
    else
        fputs("null", w->f);
}

void jw_bool(jw *w, const char *key, int v)
{
    jw_member(w, key);
    fputs(v ? "true" : "false", w->f);
}
