/* params.h — request parameters of the HTTP API, from the query string, an
 * application/x-www-form-urlencoded body or a JSON object body, looked up
 * by case-insensitive name (appID = appId = appid). Query values win over
 * body values. */
#ifndef IMGATE_PARAMS_H
#define IMGATE_PARAMS_H

#include <stddef.h>

typedef struct params {
    const char *query;          /* after '?', not decoded */
    size_t qlen;
    const char *form;           /* urlencoded body */
    size_t flen;
    void *json;                 /* json_t * object from a JSON body, or NULL */
    int json_bad;               /* body claimed JSON but did not parse */
} params;

/* Prepares p from a URL and a body with its Content-Type (may be NULL). */
void params_init(params *p, const char *url, size_t url_len, const char *ctype,
                 const char *body, size_t body_len);
void params_free(params *p);

/* Looks up name. Returns 1 and the decoded value (NUL-terminated, at most
 * cap-1 bytes) in out with its length in *len; 0 if absent; -1 if the value
 * does not fit in cap-1 bytes or is not valid (a JSON array/object). */
int params_get(const params *p, const char *name, char *out, size_t cap, size_t *len);

/* Percent-decodes s (and '+' as space) into out; returns the length or -1
 * if it does not fit. */
long params_decode(const char *s, size_t n, char *out, size_t cap);

#endif
