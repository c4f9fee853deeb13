/* ipc.c — framed records over pipes. */
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ipc_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *s = p;
    int spins = 0;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN && spins++ < 60000) {   /* at most ~60 s */
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            poll(&pf, 1, 1000);
            continue;
        }
        return -1;
    }
    return 0;
}

int ipc_send(int fd, uint32_t type, const void *a, size_t an, const void *b, size_t bn)
{
    if (an + bn > UINT32_MAX)
        return -1;
    ipc_hdr h = { type, (uint32_t)(an + bn) };
    if (ipc_write_all(fd, &h, sizeof(h)) != 0)
        return -1;
    if (an && ipc_write_all(fd, a, an) != 0)
        return -1;
    if (bn && ipc_write_all(fd, b, bn) != 0)
        return -1;
    return 0;
}

static int ipc_reserve(ipc_reader *r, size_t more)
{
    if (r->off > 0 && r->off == r->len) {
        r->off = r->len = 0;
    } else if (r->off > (1u << 20)) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->len + more <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 65536;
    while (cap < r->len + more)
        cap *= 2;
    uint8_t *nb = realloc(r->buf, cap);
    if (!nb)
        return -1;
    r->buf = nb;
    r->cap = cap;
    return 0;
}

long ipc_fill(ipc_reader *r, int fd)
{
    long total = 0;
    for (int i = 0; i < 1024; i++) {           /* bounded: ~64 MiB per call */
        if (ipc_reserve(r, 65536) != 0) {
            r->eof = 1;
            return -1;
        }
        ssize_t got = read(fd, r->buf + r->len, r->cap - r->len);
        if (got > 0) {
            r->len += (size_t)got;
            total += got;
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            return total;
        r->eof = 1;
        return total ? total : -1;
    }
    return total;
}

int ipc_next(ipc_reader *r, uint32_t *type, const uint8_t **p, uint32_t *n)
{
    size_t avail = r->len - r->off;
    if (avail < sizeof(ipc_hdr))
        return 0;
    ipc_hdr h;
    memcpy(&h, r->buf + r->off, sizeof(h));
    if (avail < sizeof(h) + h.len)
        return 0;
    *type = h.type;
    *n = h.len;
    *p = r->buf + r->off + sizeof(h);
    r->off += sizeof(h) + h.len;
    return 1;
}

void ipc_reader_free(ipc_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

int ipc_wait_byte(int fd, int timeout_ms)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    int pr = poll(&pf, 1, timeout_ms);
    if (pr == 0)
        return 0;
    if (pr < 0)
        return errno == EINTR ? 0 : -1;
    uint8_t b;
    ssize_t got = read(fd, &b, 1);
    if (got == 1)
        return b ? b : 0;
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return -1;
}
