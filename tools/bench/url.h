/* url.h — the two addresses the tool is given: "ws://HOST:PORT/PATH" and
 * "http://HOST:PORT[/PREFIX]". HOST must be an IPv4 address in 127.0.0.0/8
 * (or "localhost"): the tool only ever talks to this machine. */
#ifndef BENCH_URL_H
#define BENCH_URL_H

#include <netinet/in.h>

typedef struct url {
    struct sockaddr_in addr;
    char host[64];          /* as written, for the Host header */
    char path[256];         /* ws: the upgrade path; http: a prefix, maybe "" */
} url;

/* Parses s with the given scheme ("ws" or "http"). Returns 0, or -1 with a
 * reason in err. */
int url_parse(const char *s, const char *scheme, url *u, char *err, size_t errlen);

#endif
