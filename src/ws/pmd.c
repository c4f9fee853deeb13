/* pmd.c — owns the permessage-deflate negotiation (see pmd.h): the
 * Sec-WebSocket-Extensions grammar of RFC 6455 §9.1 (a comma list of
 * extensions, each a token with ';'-separated parameters whose values are
 * tokens or quoted strings that unescape to tokens; optional whitespace
 * around the separators; empty list elements allowed as in RFC 7230 §7), the
 * parameter rules of RFC 7692 §7.1 and the answer. */
#include "ws/pmd.h"

#include <stdio.h>
#include <string.h>

#define WS_PMD_NAME "permessage-deflate"
#define WS_PMD_VALUE_MAX 8        /* longer values are invalid for every parameter */

enum { WS_PMD_SNCT, WS_PMD_CNCT, WS_PMD_SMWB, WS_PMD_CMWB, WS_PMD_NPARAMS };

static const char *const ws_pmd_params[WS_PMD_NPARAMS] = {
    "server_no_context_takeover", "client_no_context_takeover",
    "server_max_window_bits", "client_max_window_bits",
};

/* A parse of the header: the cursor and the first reason to note. */
typedef struct ws_pmd_cur {
    const char *p;
    const char *why;
} ws_pmd_cur;

/* One extension of the list being read. */
typedef struct ws_pmd_ext {
    int is_pmd;                   /* named permessage-deflate */
    int usable;                   /* ... and every parameter acceptable so far */
    unsigned seen;                /* parameters met (bit per WS_PMD_*) */
    ws_pmd_offer offer;
} ws_pmd_ext;

/* A parameter value, unescaped. */
typedef struct ws_pmd_value {
    int present;
    size_t len;                   /* > WS_PMD_VALUE_MAX: too long (text cut) */
    char text[WS_PMD_VALUE_MAX + 1];
} ws_pmd_value;

static int ws_pmd_is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void ws_pmd_ows(ws_pmd_cur *c)
{
    while (*c->p == ' ' || *c->p == '\t')
        c->p++;
}

/* A token at the cursor: its length (0 if there is none). */
static size_t ws_pmd_token(ws_pmd_cur *c, const char **start)
{
    *start = c->p;
    while (ws_pmd_is_tchar((unsigned char)*c->p))
        c->p++;
    return (size_t)(c->p - *start);
}

static int ws_pmd_fail(ws_pmd_cur *c, const char *why)
{
    if (!c->why)
        c->why = why;
    return -1;
}

static void ws_pmd_value_add(ws_pmd_value *v, char ch)
{
    if (v->len < WS_PMD_VALUE_MAX)
        v->text[v->len] = ch;
    v->len++;
}

/* A quoted-string (the opening quote is at the cursor), unescaped into v.
 * Returns 0 or -1 (malformed). */
static int ws_pmd_quoted(ws_pmd_cur *c, ws_pmd_value *v)
{
    c->p++;
    for (;;) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            return 0;
        }
        if (ch == '\\') {
            ch = (unsigned char)*++c->p;
            if (!ch || (ch < 0x20 && ch != '\t') || ch == 0x7F)
                return ws_pmd_fail(c, "bad escape in a quoted parameter value");
        } else if (!ch || (ch < 0x20 && ch != '\t') || ch == 0x7F) {
            return ws_pmd_fail(c, "unterminated quoted parameter value");
        }
        /* RFC 6455 §9.1: the unescaped value must be a token */
        if (!ws_pmd_is_tchar(ch))
            return ws_pmd_fail(c, "a quoted parameter value is not a token");
        ws_pmd_value_add(v, (char)ch);
        c->p++;
    }
}

/* "= value" after a parameter name, if there is one. Returns 0 or -1. */
static int ws_pmd_value_read(ws_pmd_cur *c, ws_pmd_value *v)
{
    memset(v, 0, sizeof(*v));
    ws_pmd_ows(c);
    if (*c->p != '=')
        return 0;
    c->p++;
    ws_pmd_ows(c);
    v->present = 1;
    if (*c->p == '"') {
        if (ws_pmd_quoted(c, v) != 0)
            return -1;
    } else {
        const char *s;
        size_t n = ws_pmd_token(c, &s);
        for (size_t i = 0; i < n; i++)
            ws_pmd_value_add(v, s[i]);
    }
    if (v->len == 0)
        return ws_pmd_fail(c, "empty parameter value");
    return 0;
}

/* A window size value "8".."15" (no leading zero); 0 if it is not one. */
static int ws_pmd_bits(const ws_pmd_value *v)
{
    if (v->len == 1 && v->text[0] >= '8' && v->text[0] <= '9')
        return v->text[0] - '0';
    if (v->len == 2 && v->text[0] == '1' && v->text[1] >= '0' && v->text[1] <= '5')
        return 10 + v->text[1] - '0';
    return 0;
}

static int ws_pmd_decline(ws_pmd_cur *c, ws_pmd_ext *e, const char *why)
{
    if (e->usable && !c->why)
        c->why = why;
    e->usable = 0;
    return 0;
}

/* Applies one parameter of a permessage-deflate offer. */
static int ws_pmd_param(ws_pmd_cur *c, ws_pmd_ext *e, int k, const ws_pmd_value *v)
{
    if (k < 0)
        return ws_pmd_decline(c, e, "unknown permessage-deflate parameter");
    if (e->seen & (1u << k))
        return ws_pmd_decline(c, e, "repeated permessage-deflate parameter");
    e->seen |= 1u << k;
    int bits = ws_pmd_bits(v);
    switch (k) {
    case WS_PMD_SNCT:
    case WS_PMD_CNCT:
        if (v->present)
            return ws_pmd_decline(c, e, "a no_context_takeover parameter with a value");
        *(k == WS_PMD_SNCT ? &e->offer.server_no_context_takeover
                           : &e->offer.client_no_context_takeover) = 1;
        return 0;
    case WS_PMD_SMWB:
        if (!bits)
            return ws_pmd_decline(c, e, "server_max_window_bits needs a value from 8 to 15");
        if (bits < 15)
            return ws_pmd_decline(c, e, "server_max_window_bits below 15 (pushes are "
                                        "compressed once with the full window)");
        e->offer.server_max_window_bits = bits;
        return 0;
    default:
        if (v->present && !bits)
            return ws_pmd_decline(c, e, "client_max_window_bits takes a value from 8 to 15");
        e->offer.client_max_window_bits = v->present ? bits : -1;
        return 0;
    }
}

static int ws_pmd_param_index(const char *s, size_t n)
{
    for (int k = 0; k < WS_PMD_NPARAMS; k++)
        if (strlen(ws_pmd_params[k]) == n && memcmp(ws_pmd_params[k], s, n) == 0)
            return k;
    return -1;
}

/* The parameters of one extension (";" name ["=" value], repeated). */
static int ws_pmd_ext_params(ws_pmd_cur *c, ws_pmd_ext *e)
{
    for (;;) {
        ws_pmd_ows(c);
        if (*c->p != ';')
            return 0;
        c->p++;
        ws_pmd_ows(c);
        const char *name;
        size_t n = ws_pmd_token(c, &name);
        if (n == 0)
            return ws_pmd_fail(c, "missing extension parameter name");
        ws_pmd_value v;
        if (ws_pmd_value_read(c, &v) != 0)
            return -1;
        if (e->is_pmd)
            (void)ws_pmd_param(c, e, ws_pmd_param_index(name, n), &v);
    }
}

/* One element of the list; *out gets the first usable offer. */
static int ws_pmd_element(ws_pmd_cur *c, ws_pmd_offer *out, int *found)
{
    const char *name;
    size_t n = ws_pmd_token(c, &name);
    if (n == 0)
        return ws_pmd_fail(c, "an extension name is not a token");
    ws_pmd_ext e;
    memset(&e, 0, sizeof(e));
    e.is_pmd = n == sizeof(WS_PMD_NAME) - 1 && memcmp(name, WS_PMD_NAME, n) == 0;
    e.usable = e.is_pmd;
    if (ws_pmd_ext_params(c, &e) != 0)
        return -1;
    ws_pmd_ows(c);
    if (*c->p != ',' && *c->p != '\0')
        return ws_pmd_fail(c, "unexpected character after an extension");
    if (e.usable && !*found) {
        *out = e.offer;
        *found = 1;
    }
    return 0;
}

static int ws_pmd_parse(ws_pmd_cur *c, ws_pmd_offer *out, int *found)
{
    for (;;) {
        ws_pmd_ows(c);
        if (*c->p == ',') {                   /* an empty element */
            c->p++;
            continue;
        }
        if (*c->p == '\0')
            return 0;
        if (ws_pmd_element(c, out, found) != 0)
            return -1;
    }
}

size_t ws_pmd_answer(const ws_pmd_offer *o, char *out, size_t cap)
{
    char smwb[40] = "", cmwb[40] = "";
    if (o->server_max_window_bits)
        snprintf(smwb, sizeof(smwb), "; server_max_window_bits=%d", o->server_max_window_bits);
    if (o->client_max_window_bits > 0)
        snprintf(cmwb, sizeof(cmwb), "; client_max_window_bits=%d", o->client_max_window_bits);
    int n = snprintf(out, cap, WS_PMD_NAME "; server_no_context_takeover; "
                     "client_no_context_takeover%s%s", smwb, cmwb);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int ws_pmd_negotiate(const char *header, char *answer, size_t cap, const char **why)
{
    ws_pmd_cur c = { header ? header : "", NULL };
    ws_pmd_offer offer;
    int found = 0;
    memset(&offer, 0, sizeof(offer));
    int bad = ws_pmd_parse(&c, &offer, &found) != 0;
    if (why)
        *why = bad ? c.why : found ? NULL : c.why ? c.why : "no permessage-deflate offer";
    if (bad)
        return WS_PMD_MALFORMED;
    if (!found)
        return WS_PMD_DECLINED;
    if (ws_pmd_answer(&offer, answer, cap))
        return WS_PMD_ACCEPTED;
    if (why)
        *why = "no room for the answer";
    return WS_PMD_DECLINED;
}
