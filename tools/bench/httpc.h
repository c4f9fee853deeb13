/* httpc.h — a small blocking HTTP/1.1 client for the API: form POSTs over
 * one keep-alive connection, Content-Length or chunked answers, a timeout
 * on every request, one reconnect-and-retry when a kept-alive connection
 * turns out closed. */
#ifndef BENCH_HTTPC_H
#define BENCH_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "url.h"

typedef struct httpc {
    const url *u;
    int fd;
    char *buf;
    size_t cap, len;
    uint64_t connects;
} httpc;

void httpc_init(httpc *h, const url *u);
void httpc_free(httpc *h);

/* POSTs an application/x-www-form-urlencoded body to u->path + path.
 * Returns 0 with *status and the answer body (valid until the next call),
 * or a negative errno. */
int httpc_post(httpc *h, const char *path, const char *body, size_t n, int timeout_ms,
               int *status, const char **resp, size_t *resp_len);

#endif
