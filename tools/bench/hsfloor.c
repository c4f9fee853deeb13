/* hsfloor.c — the raw-handshake floor (see hsfloor.h): per process one
 * libuv loop, one listener, and per connection the request or frame bytes
 * not yet complete. Nothing is kept after the login reply but the socket.
 * With --redis, a login's reply waits for its Redis reads (hsredis.c). */
#include "hsfloor.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "hsredis.h"
#include "jscan.h"
#include "wsc.h"

#define HS_BUF 1024
#define HS_MAX_PROCS 256

typedef struct hs_conn {
    uv_tcp_t tcp;
    uint16_t len;              /* bytes in buf */
    uint8_t upgraded;
    uint8_t waiting;           /* --redis: a login's reads are due (c lives until then) */
    uint8_t closed;            /* closed while waiting */
    uint8_t seql;
    char seq[64];              /* the waiting login's seq */
    char buf[HS_BUF];
} hs_conn;

static int hs_redis;           /* --redis given */

static void hs_on_close(uv_handle_t *h)
{
    hs_conn *c = (hs_conn *)h;
    if (c->waiting)
        c->closed = 1;         /* freed when its reads are answered */
    else
        free(c);
}

static void hs_close(hs_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, hs_on_close);
}

/* Small answers to an idle socket: taken whole, or the connection goes. */
static void hs_write(hs_conn *c, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != (int)n)
        hs_close(c);
}

static void hs_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    hs_conn *c = (hs_conn *)h;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(HS_BUF - c->len));
}

/* The upgrade request is complete at `end`: answer 101. -1: not a request. */
static int hs_upgrade(hs_conn *c, const char *end)
{
    const char *k = NULL;
    for (const char *p = c->buf; p + 19 < end; p++)
        if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "Sec-WebSocket-Key:", 18) == 0) {
            k = p + 18;
            break;
        }
    if (!k)
        return -1;
    while (*k == ' ')
        k++;
    const char *ke = k;
    while (ke < end && *ke != '\r')
        ke++;
    char key[WSC_KEY_LEN + 1], acc[WSC_ACCEPT_LEN + 1], out[256];
    int kl = (int)(ke - k);
    if (kl <= 0 || kl > WSC_KEY_LEN)
        return -1;
    memcpy(key, k, (size_t)kl);
    key[kl] = 0;
    if (wsc_accept(key, acc) != 0)
        return -1;
    int n = snprintf(out, sizeof(out), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
    hs_write(c, out, (size_t)n);
    return 0;
}

/* The reply to a login or heartbeat (seq echoed, at most 64 bytes). */
static void hs_reply(hs_conn *c, const char *seq, int sl, int login)
{
    char text[200];
    int tl = snprintf(text, sizeof(text),
                      "{\"seq\":\"%.*s\",\"cmd\":\"%s\",\"response\":{\"code\":200,"
                      "\"codeMsg\":\"Success\",\"data\":null}}", sl > 64 ? 64 : sl, sl ? seq : "",
                      login ? "login" : "heartbeat");
    if (tl < 0 || (size_t)tl >= sizeof(text))
        return;
    char frame[4 + sizeof(text)];
    size_t hl = 2;
    frame[0] = (char)0x81;
    if (tl < 126) {
        frame[1] = (char)tl;
    } else {                                   /* a long seq: the 16-bit length form */
        frame[1] = 126;
        frame[2] = (char)(tl >> 8);
        frame[3] = (char)(tl & 0xff);
        hl = 4;
    }
    memcpy(frame + hl, text, (size_t)tl);
    hs_write(c, frame, (size_t)tl + hl);
}

/* --redis: the login's reads are answered. */
static void hs_on_redis(void *ud, int ok)
{
    hs_conn *c = ud;
    c->waiting = 0;
    if (c->closed)
        free(c);
    else if (ok)
        hs_reply(c, c->seq, c->seql, 1);
    else
        hs_close(c);
}

/* Answers a login or heartbeat text message (seq echoed); with --redis a
 * login after its Redis reads (a second login while one waits is answered
 * at once: the floor's clients log in once). */
static void hs_message(hs_conn *c, const char *p, size_t n)
{
    size_t cl = 0, sql = 0, ul = 0;
    const char *cmd = NULL, *seq = NULL, *uid = NULL;
    long appid = 0;
    if (jscan_str(p, n, "cmd", &cmd, &cl) != 0)
        return;
    int login = cmd && cl == 5 && memcmp(cmd, "login", 5) == 0;
    int hb = cmd && cl == 9 && memcmp(cmd, "heartbeat", 9) == 0;
    if (!login && !hb)
        return;
    if (jscan_str(p, n, "seq", &seq, &sql) != 0)
        seq = NULL;
    int sl = seq ? (int)(sql > 64 ? 64 : sql) : 0;
    if (!login || !hs_redis || c->waiting) {
        hs_reply(c, seq, sl, login);
        return;
    }
    if (jscan_str(p, n, "userID", &uid, &ul) != 0 || jscan_int(p, n, "appID", &appid) != 0) {
        hs_close(c);
        return;
    }
    memcpy(c->seq, seq ? seq : "", (size_t)sl);
    c->seql = (uint8_t)sl;
    c->waiting = 1;
    if (hsr_login((uint32_t)appid, uid, ul, hs_on_redis, c) != 0) {
        c->waiting = 0;
        hs_close(c);
    }
}

/* Whole client frames at the front of buf: unmask, answer. Returns the
 * bytes used, or -1 to close. */
static long hs_frames(hs_conn *c)
{
    uint8_t *b = (uint8_t *)c->buf;
    size_t off = 0;
    while (c->len - off >= 6) {
        uint8_t *f = b + off;
        int op = f[0] & 0x0f;
        size_t pl = f[1] & 0x7f, hl = 2;
        if (!(f[1] & 0x80))
            return -1;                         /* clients mask */
        if (pl == 126) {
            if (c->len - off < 8)
                break;
            pl = (size_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (pl == 127) {
            return -1;                         /* nothing that large here */
        }
        if (c->len - off < hl + 4 + pl)
            break;
        uint8_t *mask = f + hl, *p = f + hl + 4;
        for (size_t i = 0; i < pl; i++)
            p[i] ^= mask[i & 3];
        if (op == 8)
            return -1;
        if (op == 1)
            hs_message(c, (const char *)p, pl);
        off += hl + 4 + pl;
    }
    return (long)off;
}

static void hs_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    hs_conn *c = (hs_conn *)s;
    if (nread < 0) {
        hs_close(c);
        return;
    }
    c->len += (uint16_t)nread;
    if (!c->upgraded) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) {
            if (c->len == HS_BUF)
                hs_close(c);
            return;
        }
        end += 4;
        if (hs_upgrade(c, end) != 0) {
            hs_close(c);
            return;
        }
        c->upgraded = 1;
        c->len = (uint16_t)(c->buf + c->len - end);
        memmove(c->buf, end, c->len);
    }
    long used = hs_frames(c);
    if (used < 0 || (used == 0 && c->len == HS_BUF)) {
        hs_close(c);
        return;
    }
    c->len = (uint16_t)(c->len - used);
    memmove(c->buf, c->buf + used, c->len);
}

static void hs_accept(uv_stream_t *l, int status)
{
    if (status != 0)
        return;
    hs_conn *c = calloc(1, sizeof(*c));
    if (!c || uv_tcp_init(l->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, hs_alloc, hs_read) != 0)
        hs_close(c);
}

static int hs_serve(const char *bind, const char *redis)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t l;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int gl = sizeof(got);
    if (uv_ip4_addr(bind, 0, &a) != 0 || uv_tcp_init(loop, &l) != 0 ||
        uv_tcp_bind(&l, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&l, 4096, hs_accept) != 0 ||
        uv_tcp_getsockname(&l, (struct sockaddr *)&got, &gl) != 0) {
        fprintf(stderr, "handshake-server: cannot listen on %s\n", bind);
        return 1;
    }
    char self[64];
    snprintf(self, sizeof(self), "%s:%d", bind, ntohs(((struct sockaddr_in *)&got)->sin_port));
    hs_redis = redis != NULL;
    if (redis && hsr_open(loop, redis, self) != 0) {
        fprintf(stderr, "handshake-server: cannot connect to redis at %s\n", redis);
        return 1;
    }
    printf("ws listening on %s:%d\n", bind, ntohs(((struct sockaddr_in *)&got)->sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}

static volatile sig_atomic_t hs_stop;
static void hs_on_signal(int sig) { (void)sig; hs_stop = 1; }

int hsfloor_main(int argc, char **argv)
{
    int procs = 1;
    const char *bind = "127.0.0.1", *redis = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--procs") == 0 && i + 1 < argc)
            procs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
            bind = argv[++i];
        else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc)
            redis = argv[++i];
        else {
            fprintf(stderr, "usage: imgate-bench handshake-server [--procs M] [--bind ADDR] "
                            "[--redis HOST:PORT]\n");
            return 2;
        }
    }
    if (procs < 1 || procs > HS_MAX_PROCS) {
        fprintf(stderr, "handshake-server: --procs must be 1..%d\n", HS_MAX_PROCS);
        return 2;
    }
    static pid_t kids[HS_MAX_PROCS];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = hs_on_signal;            /* no SA_RESTART: waitpid returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    fflush(stdout);
    int nk = 0;                              /* children started: only they are stopped */
    while (nk < procs && !hs_stop) {
        pid_t p = fork();
        if (p == 0) {
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            _exit(hs_serve(bind, redis));
        }
        if (p < 0) {
            perror("handshake-server: fork");
            hs_stop = 1;
            break;
        }
        kids[nk++] = p;
    }
    while (!hs_stop) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p > 0) {
            fprintf(stderr, "handshake-server: process %d ended\n", (int)p);
            hs_stop = 1;
        }
    }
    for (int i = 0; i < nk; i++)
        kill(kids[i], SIGTERM);
    for (int i = 0; i < nk; i++)
        waitpid(kids[i], NULL, 0);
    return nk == procs ? 0 : 1;
}
