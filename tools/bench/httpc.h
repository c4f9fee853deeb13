/* httpc.h — a small blocking HTTP/1.1 client for the API: form POSTs over
 * one keep-alive connection, Content-Length or chunked answers, a timeout
 * on every request, one reconnect-and-retry when a kept-alive connection
 * turns out closed. While it waits for an answer it calls on_wait (if set)
 * every HTTPC_WAIT_MS, so the caller can go on with other work; a non-zero
 * return of on_wait abandons the request (-ECANCELED). */
#ifndef BENCH_HTTPC_H
#define BENCH_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "url.h"

#define HTTPC_WAIT_MS 50

typedef struct httpc {
    const url *u;
    int fd;
    char *buf;
    size_t cap, len;
    uint64_t connects;
    int (*on_wait)(void *ud);        /* called while an answer is awaited */
    void *wait_ud;
} httpc;

void httpc_init(httpc *h, const url *u);
void httpc_free(httpc *h);

/* POSTs an application/x-www-form-urlencoded body to u->path + path.
 * Returns 0 with *status and the answer body (valid until the next call),
 * or a negative errno. */
int httpc_post(httpc *h, const char *path, const char *body, size_t n, int timeout_ms,
               int *status, const char **resp, size_t *resp_len);

#endif
