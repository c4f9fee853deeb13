/* hsredis.c — the handshake floor's Redis connection (see hsredis.h): one
 * TCP connection per process, an output buffer written once per loop turn
 * (a uv_prepare, just before the loop polls), and a FIFO of the logins
 * whose replies are still due (Redis answers in order). A lost connection
 * ends the process: a floor without its Redis would measure nothing. */
#include "hsredis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HSR_REPLIES 5                /* per login: GET, XINFO, HSET, EXPIRE, SET */
#define HSR_READS 2                  /* the first two: the login waits for them */
#define HSR_TTL "86400"

typedef struct hsr_wait {
    hsr_done_fn fn;
    void *ud;
    int left;                        /* replies still due */
} hsr_wait;

static struct {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_prepare_t flush;
    char self[64];
    char *out;                       /* commands of this turn */
    size_t olen, ocap;
    char *in;                        /* replies not yet whole */
    size_t ilen, icap;
    hsr_wait *q;                     /* ring of logins awaiting replies */
    size_t qcap, qhead, qn;
} g_hsr;

static void hsr_fail(const char *what, int err)
{
    fprintf(stderr, "handshake-server: redis %s: %s\n", what, err ? uv_strerror(err) : "protocol error");
    exit(1);
}

/* ---------- output ---------- */

static void hsr_need(size_t n)
{
    if (g_hsr.ocap - g_hsr.olen >= n)
        return;
    size_t cap = g_hsr.ocap ? g_hsr.ocap : 4096;
    while (cap - g_hsr.olen < n)
        cap *= 2;
    char *o = realloc(g_hsr.out, cap);
    if (!o)
        hsr_fail("buffer", UV_ENOMEM);
    g_hsr.out = o;
    g_hsr.ocap = cap;
}

static void hsr_head(char mark, size_t v)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    hsr_need((size_t)n + 3);
    char *o = g_hsr.out + g_hsr.olen;
    *o++ = mark;
    while (n)
        *o++ = d[--n];
    *o++ = '\r';
    *o++ = '\n';
    g_hsr.olen = (size_t)(o - g_hsr.out);
}

/* Appends one command (RESP array of bulk strings). */
static void hsr_cmd(int argc, const char **argv, const size_t *lens)
{
    hsr_head('*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        hsr_head('$', lens[i]);
        hsr_need(lens[i] + 2);
        memcpy(g_hsr.out + g_hsr.olen, argv[i], lens[i]);
        g_hsr.olen += lens[i];
        memcpy(g_hsr.out + g_hsr.olen, "\r\n", 2);
        g_hsr.olen += 2;
    }
}

static void hsr_on_written(uv_write_t *req, int status)
{
    if (status != 0)
        hsr_fail("write", status);
    free(req);                                  /* the bytes follow the request */
}

/* Once per loop turn: the turn's commands in one write; what the socket
 * does not take now goes out queued (libuv keeps the order). */
static void hsr_on_flush(uv_prepare_t *h)
{
    (void)uv_prepare_stop(h);
    size_t off = 0;
    uv_buf_t b = uv_buf_init(g_hsr.out, (unsigned)g_hsr.olen);
    int n = uv_try_write((uv_stream_t *)&g_hsr.tcp, &b, 1);
    if (n > 0)
        off = (size_t)n;
    else if (n != UV_EAGAIN)
        hsr_fail("write", n);
    if (off < g_hsr.olen) {
        size_t rest = g_hsr.olen - off;
        uv_write_t *req = malloc(sizeof(*req) + rest);
        if (!req)
            hsr_fail("write", UV_ENOMEM);
        memcpy(req + 1, g_hsr.out + off, rest);
        uv_buf_t rb = uv_buf_init((char *)(req + 1), (unsigned)rest);
        int rc = uv_write(req, (uv_stream_t *)&g_hsr.tcp, &rb, 1, hsr_on_written);
        if (rc != 0)
            hsr_fail("write", rc);
    }
    g_hsr.olen = 0;
}

/* ---------- replies ---------- */

/* Bytes of the one whole reply at p, 0 if it is not whole yet, -1 if bad. */
static long hsr_reply_len(const char *p, size_t n)
{
    const char *nl = n ? memchr(p, '\n', n) : NULL;
    if (!nl)
        return 0;
    size_t line = (size_t)(nl - p) + 1;
    long v = strtol(p + 1, NULL, 10);
    switch (p[0]) {
    case '+': case '-': case ':':
        return (long)line;
    case '$':
        if (v < 0)
            return (long)line;
        return line + (size_t)v + 2 <= n ? (long)(line + (size_t)v + 2) : 0;
    case '*': {
        size_t off = line;
        for (long i = 0; i < v; i++) {
            long e = hsr_reply_len(p + off, n - off);
            if (e <= 0)
                return e;
            off += (size_t)e;
        }
        return (long)off;
    }
    default:
        return -1;
    }
}

static void hsr_on_reply(void)
{
    if (g_hsr.qn == 0)
        hsr_fail("reply", 0);                   /* a reply nobody asked for */
    hsr_wait *w = &g_hsr.q[g_hsr.qhead];
    hsr_done_fn fn = w->fn;                      /* fn may queue a login: the ring may move */
    void *ud = w->ud;
    int left = --w->left;
    if (left == 0) {
        g_hsr.qhead = (g_hsr.qhead + 1) % g_hsr.qcap;
        g_hsr.qn--;
    }
    if (left == HSR_REPLIES - HSR_READS)
        fn(ud, 1);
}

static void hsr_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    if (g_hsr.icap - g_hsr.ilen < 16384) {
        size_t cap = g_hsr.icap ? g_hsr.icap * 2 : 65536;
        char *in = realloc(g_hsr.in, cap);
        if (!in)
            hsr_fail("buffer", UV_ENOMEM);
        g_hsr.in = in;
        g_hsr.icap = cap;
    }
    *b = uv_buf_init(g_hsr.in + g_hsr.ilen, (unsigned)(g_hsr.icap - g_hsr.ilen));
}

static void hsr_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)s;
    (void)buf;
    if (nread < 0)
        hsr_fail("read", (int)nread);
    g_hsr.ilen += (size_t)nread;
    size_t off = 0;
    for (;;) {
        long n = hsr_reply_len(g_hsr.in + off, g_hsr.ilen - off);
        if (n < 0)
            hsr_fail("reply", 0);
        if (n == 0)
            break;
        off += (size_t)n;
        hsr_on_reply();
    }
    memmove(g_hsr.in, g_hsr.in + off, g_hsr.ilen - off);
    g_hsr.ilen -= off;
}

/* ---------- the API ---------- */

int hsr_open(uv_loop_t *loop, const char *hostport, const char *self)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    struct sockaddr_in a;
    if (!colon || (size_t)(colon - hostport) >= sizeof(host))
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    g_hsr.loop = loop;
    snprintf(g_hsr.self, sizeof(g_hsr.self), "%s", self);
    if (uv_tcp_init(loop, &g_hsr.tcp) != 0 || uv_tcp_open(&g_hsr.tcp, fd) != 0 ||
        uv_tcp_nodelay(&g_hsr.tcp, 1) != 0 || uv_prepare_init(loop, &g_hsr.flush) != 0 ||
        uv_read_start((uv_stream_t *)&g_hsr.tcp, hsr_alloc, hsr_on_read) != 0)
        return -1;
    return 0;
}

static void hsr_push(hsr_done_fn fn, void *ud)
{
    if (g_hsr.qn == g_hsr.qcap) {               /* grow: unroll the ring */
        size_t cap = g_hsr.qcap ? g_hsr.qcap * 2 : 1024;
        hsr_wait *q = malloc(cap * sizeof(*q));
        if (!q)
            hsr_fail("queue", UV_ENOMEM);
        for (size_t i = 0; i < g_hsr.qn; i++)
            q[i] = g_hsr.q[(g_hsr.qhead + i) % g_hsr.qcap];
        free(g_hsr.q);
        g_hsr.q = q;
        g_hsr.qcap = cap;
        g_hsr.qhead = 0;
    }
    g_hsr.q[(g_hsr.qhead + g_hsr.qn++) % g_hsr.qcap] = (hsr_wait){ fn, ud, HSR_REPLIES };
}

int hsr_login(uint32_t appid, const char *uid, size_t uidlen, hsr_done_fn fn, void *ud)
{
    char cursor[160], inbox[160], nodes[160], rec[160], json[512];
    int u = (int)(uidlen > 64 ? 64 : uidlen);
    const char *colon = strrchr(g_hsr.self, ':');
    int iplen = colon ? (int)(colon - g_hsr.self) : 0;
    long long now = (long long)time(NULL);
    size_t cl = (size_t)snprintf(cursor, sizeof(cursor), "acc:user:cursor:%u_%.*s", appid, u, uid);
    size_t il = (size_t)snprintf(inbox, sizeof(inbox), "acc:user:inbox:%u_%.*s", appid, u, uid);
    size_t nl = (size_t)snprintf(nodes, sizeof(nodes), "acc:user:nodes:%u_%.*s", appid, u, uid);
    size_t rl = (size_t)snprintf(rec, sizeof(rec), "acc:user:online:%u_%.*s", appid, u, uid);
    size_t jl = (size_t)snprintf(json, sizeof(json),
                                 "{\"accIp\":\"%.*s\",\"accPort\":\"%s\",\"appID\":%u,\"userID\":\"%.*s\","
                                 "\"clientIp\":\"127.0.0.1:40000\",\"clientPort\":\"\",\"loginTime\":%lld,"
                                 "\"heartbeatTime\":%lld,\"logOutTime\":0,\"qua\":\"\",\"deviceInfo\":\"\","
                                 "\"isLogoff\":false}", iplen, g_hsr.self, colon ? colon + 1 : "", appid, u,
                                 uid, now, now);
    size_t sl = strlen(g_hsr.self);
    const char *get[] = { "GET", cursor };
    const size_t getl[] = { 3, cl };
    const char *xinfo[] = { "XINFO", "STREAM", inbox };
    const size_t xinfol[] = { 5, 6, il };
    const char *hset[] = { "HSET", nodes, g_hsr.self, "1" };
    const size_t hsetl[] = { 4, nl, sl, 1 };
    const char *expire[] = { "EXPIRE", nodes, HSR_TTL };
    const size_t expirel[] = { 6, nl, sizeof(HSR_TTL) - 1 };
    const char *set[] = { "SET", rec, json, "EX", HSR_TTL };
    const size_t setl[] = { 3, rl, jl, 2, sizeof(HSR_TTL) - 1 };
    hsr_cmd(2, get, getl);
    hsr_cmd(3, xinfo, xinfol);
    hsr_cmd(4, hset, hsetl);
    hsr_cmd(3, expire, expirel);
    hsr_cmd(5, set, setl);
    hsr_push(fn, ud);
    if (!uv_is_active((uv_handle_t *)&g_hsr.flush))
        (void)uv_prepare_start(&g_hsr.flush, hsr_on_flush);
    return 0;
}
