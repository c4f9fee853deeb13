/* url.c — parsing of the ws:// and http:// addresses, loopback only. */
#include "url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int url_fail(char *err, size_t errlen, const char *why, const char *s)
{
    snprintf(err, errlen, "%s: '%s'", why, s);
    return -1;
}

static int url_host(const char *h, struct in_addr *a)
{
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    if (inet_pton(AF_INET, h, a) != 1)
        return -1;
    return (ntohl(a->s_addr) >> 24) == 127 ? 0 : -1;
}

int url_parse(const char *s, const char *scheme, url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    size_t sl = strlen(scheme);
    if (strncmp(s, scheme, sl) != 0 || strncmp(s + sl, "://", 3) != 0)
        return url_fail(err, errlen, "expected a URL starting with the scheme", s);
    const char *p = s + sl + 3;
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    if (hostport == 0 || hostport >= sizeof(u->host))
        return url_fail(err, errlen, "bad host", s);
    memcpy(u->host, p, hostport);
    char *colon = strrchr(u->host, ':');
    long port = 80;
    if (colon) {
        char *end;
        port = strtol(colon + 1, &end, 10);
        if (*end || port <= 0 || port > 65535)
            return url_fail(err, errlen, "bad port", s);
    }
    char hostonly[64];
    size_t hl = colon ? (size_t)(colon - u->host) : strlen(u->host);
    memcpy(hostonly, u->host, hl);
    hostonly[hl] = 0;
    u->addr.sin_family = AF_INET;
    u->addr.sin_port = htons((uint16_t)port);
    if (url_host(hostonly, &u->addr.sin_addr) != 0)
        return url_fail(err, errlen, "host must be an IPv4 address in 127.0.0.0/8", s);
    const char *path = slash ? slash : "";
    if (strlen(path) >= sizeof(u->path))
        return url_fail(err, errlen, "path too long", s);
    strcpy(u->path, path);
    if (strcmp(scheme, "ws") == 0 && !u->path[0])
        strcpy(u->path, "/");
    size_t pl = strlen(u->path);              /* http prefix: no trailing '/' */
    if (strcmp(scheme, "http") == 0 && pl && u->path[pl - 1] == '/')
        u->path[pl - 1] = 0;
    return 0;
}
