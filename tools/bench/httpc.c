/* httpc.c — blocking HTTP/1.1 client for the API calls. */
#include "httpc.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clock.h"

#define HTTPC_MAX (4u << 20)

void httpc_init(httpc *h, const url *u)
{
    memset(h, 0, sizeof(*h));
    h->u = u;
    h->fd = -1;
}

static void httpc_disconnect(httpc *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

void httpc_free(httpc *h)
{
    httpc_disconnect(h);
    free(h->buf);
    h->buf = NULL;
}

static int httpc_connect(httpc *h, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&h->u->addr, sizeof(h->u->addr)) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    h->fd = fd;
    h->connects++;
    return 0;
}

static int httpc_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EPIPE;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Waits until h->fd is readable or the deadline passes, calling on_wait
 * between short polls. Returns 0 or a negative errno (-ECANCELED when
 * on_wait asked to stop). */
static int httpc_wait(httpc *h, uint64_t deadline)
{
    for (;;) {
        uint64_t now = clock_ns();
        if (now > deadline)
            return -ETIMEDOUT;
        uint64_t left_ms = (deadline - now) / 1000000ull + 1;
        struct pollfd pf = { .fd = h->fd, .events = POLLIN };
        int r = poll(&pf, 1, left_ms < HTTPC_WAIT_MS ? (int)left_ms : HTTPC_WAIT_MS);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (h->on_wait && h->on_wait(h->wait_ud) != 0)
            return -ECANCELED;
    }
}

/* Reads more into h->buf. Returns bytes read, 0 at EOF, negative errno. */
static long httpc_more(httpc *h, uint64_t deadline)
{
    if (h->len + 65536 > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 131072;
        if (cap > HTTPC_MAX + 65536)
            return -EMSGSIZE;
        char *nb = realloc(h->buf, cap);
        if (!nb)
            return -ENOMEM;
        h->buf = nb;
        h->cap = cap;
    }
    for (;;) {
        int w = httpc_wait(h, deadline);
        if (w != 0)
            return w;
        ssize_t r = recv(h->fd, h->buf + h->len, h->cap - h->len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        h->len += (size_t)r;
        h->buf[h->len] = 0;
        return r;
    }
}

static const char *httpc_header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, nl) == 0 && l[2 + nl] == ':')
            return l + 3 + nl;
    }
    return NULL;
}

/* Decodes a chunked body in place from h->buf + off; reads more as needed.
 * Returns the decoded length or a negative errno. */
static long httpc_chunked(httpc *h, size_t off, uint64_t deadline)
{
    size_t out = off, in = off;
    for (int guard = 0; guard < 100000; guard++) {
        char *eol = memmem(h->buf + in, h->len - in, "\r\n", 2);
        if (!eol) {
            long r = httpc_more(h, deadline);
            if (r <= 0)
                return r < 0 ? r : -EPROTO;
            continue;
        }
        size_t sz = strtoul(h->buf + in, NULL, 16);
        size_t data = (size_t)(eol - h->buf) + 2;
        if (sz > HTTPC_MAX)
            return -EMSGSIZE;
        while (h->len < data + sz + 2) {
            long r = httpc_more(h, deadline);
            if (r <= 0)
                return r < 0 ? r : -EPROTO;
        }
        if (sz == 0)
            return (long)(out - off);
        memmove(h->buf + out, h->buf + data, sz);
        out += sz;
        in = data + sz + 2;
    }
    return -EPROTO;
}

/* Reads one answer. Returns 0 with status/body, negative errno; *got says
 * whether any byte arrived (a retry is only safe when none did). */
static int httpc_answer(httpc *h, uint64_t deadline, int *status, const char **body,
                        size_t *blen, int *got)
{
    h->len = 0;
    if (h->buf)
        h->buf[0] = 0;
    char *end;
    while (!(h->buf && (end = strstr(h->buf, "\r\n\r\n")))) {
        long r = httpc_more(h, deadline);
        if (r <= 0)
            return r < 0 ? (int)r : -ECONNRESET;
        *got = 1;
    }
    size_t off = (size_t)(end - h->buf) + 4;
    if (sscanf(h->buf, "HTTP/1.%*d %d", status) != 1)
        return -EPROTO;
    *end = 0;                                   /* headers are a C string now */
    const char *cl = httpc_header(h->buf, "Content-Length");
    const char *te = httpc_header(h->buf, "Transfer-Encoding");
    const char *conn = httpc_header(h->buf, "Connection");
    int close_after = conn && strcasestr(conn, "close") != NULL;
    long n;
    if (te && strcasestr(te, "chunked")) {
        n = httpc_chunked(h, off, deadline);
    } else if (cl) {
        n = strtol(cl, NULL, 10);
        if (n < 0 || n > (long)HTTPC_MAX)
            return -EMSGSIZE;
        while (h->len < off + (size_t)n) {
            long r = httpc_more(h, deadline);
            if (r <= 0)
                return r < 0 ? (int)r : -ECONNRESET;
        }
    } else {
        long r;
        while ((r = httpc_more(h, deadline)) > 0) {}
        n = r < 0 ? r : (long)(h->len - off);
        close_after = 1;
    }
    if (n < 0)
        return (int)n;
    h->buf[off + (size_t)n] = 0;
    *body = h->buf + off;
    *blen = (size_t)n;
    if (close_after)
        httpc_disconnect(h);
    return 0;
}

static int httpc_once(httpc *h, const char *req, size_t rl, uint64_t deadline, int timeout_ms,
                      int *status, const char **resp, size_t *resp_len, int *got)
{
    int r = 0;
    if (h->fd < 0 && (r = httpc_connect(h, timeout_ms)) != 0)
        return r;
    r = httpc_send_all(h->fd, req, rl);
    if (r == 0)
        r = httpc_answer(h, deadline, status, resp, resp_len, got);
    if (r != 0)
        httpc_disconnect(h);
    return r;
}

int httpc_post(httpc *h, const char *path, const char *body, size_t n, int timeout_ms,
               int *status, const char **resp, size_t *resp_len)
{
    size_t cap = n + 512 + strlen(h->u->path) + strlen(path);
    char *req = malloc(cap);
    if (!req)
        return -ENOMEM;
    int hl = snprintf(req, cap,
                      "POST %s%s HTTP/1.1\r\nHost: %s\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n"
                      "Content-Length: %zu\r\n\r\n", h->u->path, path, h->u->host, n);
    memcpy(req + hl, body, n);
    uint64_t deadline = clock_ns() + (uint64_t)timeout_ms * 1000000ull;
    int reused = h->fd >= 0, got = 0;
    int r = httpc_once(h, req, (size_t)hl + n, deadline, timeout_ms, status, resp, resp_len, &got);
    if (r != 0 && reused && !got && r != -ETIMEDOUT && r != -ECANCELED)
        r = httpc_once(h, req, (size_t)hl + n, deadline, timeout_ms, status, resp, resp_len, &got);
    free(req);
    return r;
}
