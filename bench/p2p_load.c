/* bench/p2p_load.c — the closed-loop /user/sendMessage load of
 * bench/delivery_p2p.py (compiled by that script; not part of the build).
 *
 * One thread, one epoll loop, loopback only:
 *   - K WebSocket clients log in as <tag>u0 .. <tag>u<K-1> (app 101) and
 *     read every push, answering pings;
 *   - C keep-alive HTTP connections each POST /user/sendMessage to a random
 *     one of those users, the next request as soon as the answer is read
 *     (closed loop: the node sets the pace), for warm-up + T seconds.
 * Each message's text is "P<seq>.<user>.<send ns>" (CLOCK_MONOTONIC), so a
 * push is checked against its addressee and timed in one subtraction.
 * Every send answered {"sendResults":true} must arrive exactly once on its
 * addressee's connection; the requests sent within the measured window
 * (after the warm-up) give the throughput and the API latency, their pushes
 * the push latency. With --pid (repeatable) the CPU time (user + system) of
 * those processes over the window is read from /proc/PID/stat, and the
 * busy time of the whole machine (all cores) from /proc/stat.
 * Prints one JSON object on stdout; exit status 0 only when everything
 * accepted arrived once and nothing failed.
 *
 *   p2p_load --http-port P --ws-port W [--users 100] [--conns 16]
 *            [--duration 4] [--warmup 0.5] [--drain 5] [--tag T] [--pid PID]...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXPID 8

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "p2p_load: %s (%s)\n", what, errno ? strerror(errno) : "-");
    exit(2);
}

/* ---- growable arrays ---- */
typedef struct {
    uint64_t *v;
    size_t n, cap;
} vec;

static void vec_push(vec *a, uint64_t x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 65536;
        a->v = realloc(a->v, a->cap * sizeof(uint64_t));
        if (!a->v)
            die("out of memory");
    }
    a->v[a->n++] = x;
}

/* per message (index = seq): bit 0 accepted, bit 1 in window, bits 2.. times received */
static uint8_t *msg;
static size_t msg_cap;

static void msg_reserve(size_t seq)
{
    if (seq < msg_cap)
        return;
    size_t cap = msg_cap ? msg_cap : 1 << 16;
    while (cap <= seq)
        cap *= 2;
    msg = realloc(msg, cap);
    if (!msg)
        die("out of memory");
    memset(msg + msg_cap, 0, cap - msg_cap);
    msg_cap = cap;
}

/* ---- connections ---- */
typedef struct {
    int fd, idx, dead;
    char *buf;
    size_t len, cap;
} wsc;

typedef struct {
    int fd;
    uint64_t t_send;
    long seq;
    int busy;
    char rbuf[4096];
    size_t rlen;
} httpc;

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* a masked client frame (mask key 0: the payload goes as it is) */
static void ws_send(int fd, int op, const char *p, size_t n)
{
    char f[512];
    if (n > 400)
        die("frame too long");
    size_t h = 0;
    f[h++] = (char)(0x80 | op);
    if (n < 126) {
        f[h++] = (char)(0x80 | n);
    } else {
        f[h++] = (char)(0x80 | 126);
        f[h++] = (char)(n >> 8);
        f[h++] = (char)(n & 0xff);
    }
    memset(f + h, 0, 4);
    h += 4;
    memcpy(f + h, p, n);
    write_all(fd, f, h + n);
}

static void ws_append(wsc *c, const char *p, size_t n)
{
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2 + 4096;
        c->buf = realloc(c->buf, c->cap);
        if (!c->buf)
            die("out of memory");
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
}

/* the next whole frame in c->buf: 1 and (op, payload, length), 0 if incomplete */
static int ws_frame(wsc *c, size_t *off, int *op, const char **pl, size_t *pn)
{
    size_t o = *off;
    if (c->len - o < 2)
        return 0;
    const unsigned char *b = (const unsigned char *)c->buf + o;
    size_t n = b[1] & 0x7f, h = 2;
    if (n == 126) {
        if (c->len - o < 4)
            return 0;
        n = ((size_t)b[2] << 8) | b[3];
        h = 4;
    } else if (n == 127) {
        if (c->len - o < 10)
            return 0;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | b[2 + i];
        h = 10;
    }
    if (c->len - o < h + n)
        return 0;
    *op = b[0] & 0x0f;
    *pl = (const char *)b + h;
    *pn = n;
    *off = o + h + n;
    return 1;
}

static const char *ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";   /* RFC 6455's example key */

static void ws_open(wsc *c, int port, const char *tag, int idx)
{
    char req[512], login[256];
    c->fd = tcp_connect(port);
    c->idx = idx;
    int n = snprintf(req, sizeof(req),
                     "GET /acc HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", port);
    write_all(c->fd, req, (size_t)n);
    char tmp[4096];
    char *end = NULL;
    while (!end) {
        ssize_t r = read(c->fd, tmp, sizeof(tmp));
        if (r <= 0)
            die("handshake read");
        ws_append(c, tmp, (size_t)r);
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    }
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 101", 12) != 0 || !memmem(c->buf, (size_t)(end - c->buf), ACCEPT, strlen(ACCEPT)))
        die("handshake not accepted");
    size_t head = (size_t)(end - c->buf) + 4;
    memmove(c->buf, c->buf + head, c->len - head);
    c->len -= head;
    n = snprintf(login, sizeof(login),
                 "{\"seq\":\"L\",\"cmd\":\"login\",\"data\":{\"serviceToken\":\"\",\"appID\":101,"
                 "\"userID\":\"%su%d\"}}", tag, idx);
    ws_send(c->fd, 1, login, (size_t)n);
}

static void ws_wait_login(wsc *c)
{
    char tmp[4096];
    for (;;) {
        size_t off = 0;
        int op;
        const char *pl;
        size_t pn;
        while (ws_frame(c, &off, &op, &pl, &pn)) {
            if (op == 1 && memmem(pl, pn, "\"cmd\":\"login\"", 13)) {
                if (!memmem(pl, pn, "\"code\":200", 10))
                    die("login refused");
                memmove(c->buf, c->buf + off, c->len - off);
                c->len -= off;
                return;
            }
        }
        ssize_t r = read(c->fd, tmp, sizeof(tmp));
        if (r <= 0)
            die("login read");
        ws_append(c, tmp, (size_t)r);
    }
}

/* ---- state ---- */
static wsc *ws;
static httpc *hc;
static int K, C, http_port, ws_port, npid, pids[MAXPID];
static double dur = 4, warm = 0.5, drain_s = 5;
static char tag[32] = "x";
static uint64_t t_warm, t_end, rng = 88172645463325252ull;
static long seq_next;
static long sent, answered, accepted, refused, http_err, w_answered;
static long delivered, duplicated, misdelivered, other, ws_drops, pings;
static vec api_lat, push_lat;

static void http_send(httpc *h)
{
    char body[256], req[512];
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    int user = (int)(rng % (uint64_t)K);
    long seq = seq_next++;
    uint64_t t = now_ns();
    int bn = snprintf(body, sizeof(body), "appID=101&userID=%su%d&msgID=%s-%ld&message=P%ld.%d.%llu",
                      tag, user, tag, seq, seq, user, (unsigned long long)t);
    int n = snprintf(req, sizeof(req),
                     "POST /user/sendMessage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
                     bn, body);
    msg_reserve((size_t)seq);
    h->seq = seq;
    h->t_send = t;
    h->busy = 1;
    h->rlen = 0;
    sent++;
    write_all(h->fd, req, (size_t)n);
}

/* a whole answer in h->rbuf? then account it; returns 1 when done */
static int http_answer(httpc *h)
{
    char *end = memmem(h->rbuf, h->rlen, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - h->rbuf) + 4;
    char *cl = memmem(h->rbuf, head, "ontent-Length:", 14);
    if (!cl)
        cl = memmem(h->rbuf, head, "ontent-length:", 14);
    if (!cl)
        die("answer without Content-Length");
    size_t blen = strtoul(cl + 14, NULL, 10);
    if (h->rlen < head + blen)
        return 0;
    uint64_t t = now_ns();
    answered++;
    int ok = memcmp(h->rbuf, "HTTP/1.1 200", 12) == 0 &&
             memmem(h->rbuf + head, blen, "\"sendResults\":true", 18) != NULL;
    if (ok) {
        accepted++;
        msg[h->seq] |= 1;
    } else if (memcmp(h->rbuf, "HTTP/1.1 200", 12) == 0) {
        refused++;
        if (refused <= 3)
            fprintf(stderr, "p2p_load: refused: %.*s\n", (int)blen, h->rbuf + head);
    } else {
        http_err++;
        if (http_err <= 3)
            fprintf(stderr, "p2p_load: HTTP error: %.*s\n", (int)(h->rlen > 200 ? 200 : h->rlen), h->rbuf);
    }
    if (h->t_send >= t_warm && t <= t_end) {
        w_answered++;
        vec_push(&api_lat, t - h->t_send);
        msg[h->seq] |= 2;
    }
    if (h->rlen > head + blen)
        die("bytes after an answer (pipelining?)");
    h->rlen = 0;
    h->busy = 0;
    return 1;
}

static void on_push(wsc *c, const char *pl, size_t pn)
{
    const char *m = memmem(pl, pn, "\"msg\":\"P", 8);
    if (!m || !memmem(pl, pn, "\"cmd\":\"msg\"", 11)) {
        other++;
        return;
    }
    uint64_t t = now_ns();
    char *e;
    long seq = strtol(m + 8, &e, 10);
    int user = (int)strtol(e + 1, &e, 10);
    uint64_t ts = strtoull(e + 1, NULL, 10);
    if (seq < 0 || (size_t)seq >= msg_cap || seq >= seq_next) {
        other++;
        return;
    }
    if (user != c->idx)
        misdelivered++;
    unsigned times = msg[seq] >> 2;
    if (times)
        duplicated++;
    else
        delivered++;
    if (times < 63)
        msg[seq] = (uint8_t)((msg[seq] & 3) | ((times + 1) << 2));
    if (!times && ts >= t_warm && ts < t_end)
        vec_push(&push_lat, t - ts);
}

static void ws_read(wsc *c)
{
    char tmp[65536];
    for (;;) {
        ssize_t r = read(c->fd, tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0) {
            c->dead = 1;
            ws_drops++;
            close(c->fd);
            return;
        }
        ws_append(c, tmp, (size_t)r);
        if ((size_t)r < sizeof(tmp))
            break;
    }
    size_t off = 0;
    int op;
    const char *pl;
    size_t pn;
    while (ws_frame(c, &off, &op, &pl, &pn)) {
        if (op == 1)
            on_push(c, pl, pn);
        else if (op == 9) {
            pings++;
            ws_send(c->fd, 10, pl, pn);
        } else if (op == 8) {
            c->dead = 1;
            ws_drops++;
        }
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static double cpu_of(int pid)
{
    char path[64], b[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(b, 1, sizeof(b) - 1, f);
    fclose(f);
    b[n] = 0;
    char *p = strrchr(b, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ")": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* seconds of busy CPU of the whole machine, all cores (/proc/stat: all but idle and iowait) */
static double machine_cpu(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[10] = { 0 };
    if (!f)
        return -1;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8)
        return -1;
    /* user nice system idle iowait irq softirq steal (guest is inside user) */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_lat(const char *name, vec *a)
{
    printf("\"%s\":{\"count\":%zu", name, a->n);
    if (a->n) {
        qsort(a->v, a->n, sizeof(uint64_t), cmp_u64);
        double sum = 0;
        for (size_t i = 0; i < a->n; i++)
            sum += (double)a->v[i];
        static const double q[] = { 50, 90, 99, 99.9 };
        static const char *qn[] = { "p50", "p90", "p99", "p999" };
        printf(",\"min\":%.4f,\"mean\":%.4f", a->v[0] / 1e6, sum / a->n / 1e6);
        for (int i = 0; i < 4; i++) {
            size_t k = (size_t)(q[i] / 100.0 * (double)a->n + 0.5);
            k = k ? k - 1 : 0;
            if (k >= a->n)
                k = a->n - 1;
            printf(",\"%s\":%.4f", qn[i], a->v[k] / 1e6);
        }
        printf(",\"max\":%.4f", a->v[a->n - 1] / 1e6);
    }
    printf("}");
}

int main(int argc, char **argv)
{
    K = 100;
    C = 16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("option without a value");
        if (!strcmp(a, "--http-port"))
            http_port = atoi(v);
        else if (!strcmp(a, "--ws-port"))
            ws_port = atoi(v);
        else if (!strcmp(a, "--users"))
            K = atoi(v);
        else if (!strcmp(a, "--conns"))
            C = atoi(v);
        else if (!strcmp(a, "--duration"))
            dur = atof(v);
        else if (!strcmp(a, "--warmup"))
            warm = atof(v);
        else if (!strcmp(a, "--drain"))
            drain_s = atof(v);
        else if (!strcmp(a, "--tag"))
            snprintf(tag, sizeof(tag), "%s", v);
        else if (!strcmp(a, "--pid") && npid < MAXPID)
            pids[npid++] = atoi(v);
        else
            die("unknown option");
        i++;
    }
    if (!http_port || !ws_port || K < 1 || C < 1 || dur <= 0)
        die("usage: p2p_load --http-port P --ws-port W [--users K] [--conns C] [--duration S] ...");

    ws = calloc((size_t)K, sizeof(wsc));
    hc = calloc((size_t)C, sizeof(httpc));
    uint64_t t_setup = now_ns();
    for (int i = 0; i < K; i++)
        ws_open(&ws[i], ws_port, tag, i);
    for (int i = 0; i < K; i++)
        ws_wait_login(&ws[i]);
    double setup_ms = (now_ns() - t_setup) / 1e6;

    int ep = epoll_create1(0);
    for (int i = 0; i < K; i++) {
        fcntl(ws[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, ws[i].fd, &e);
    }
    for (int i = 0; i < C; i++) {
        hc[i].fd = tcp_connect(http_port);
        fcntl(hc[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)(K + i) };
        epoll_ctl(ep, EPOLL_CTL_ADD, hc[i].fd, &e);
    }

    uint64_t t0 = now_ns();
    t_warm = t0 + (uint64_t)(warm * 1e9);
    t_end = t_warm + (uint64_t)(dur * 1e9);
    double cpu0[MAXPID], cpu1[MAXPID], self0 = 0, self1 = 0, mach0 = 0, mach1 = 0;
    int warm_marked = 0, end_marked = 0;
    for (int i = 0; i < C; i++)
        http_send(&hc[i]);

    uint64_t answers_deadline = t_end + 10ull * 1000000000ull, drain_deadline = 0;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_ns();
        if (!warm_marked && t >= t_warm) {
            for (int i = 0; i < npid; i++)
                cpu0[i] = cpu_of(pids[i]);
            self0 = self_cpu();
            mach0 = machine_cpu();
            warm_marked = 1;
        }
        if (!end_marked && t >= t_end) {
            for (int i = 0; i < npid; i++)
                cpu1[i] = cpu_of(pids[i]);
            self1 = self_cpu();
            mach1 = machine_cpu();
            end_marked = 1;
        }
        int busy = 0;
        for (int i = 0; i < C; i++)
            busy += hc[i].busy;
        if (end_marked && !busy) {
            if (!drain_deadline)
                drain_deadline = t + (uint64_t)(drain_s * 1e9);
            if (delivered >= accepted || t >= drain_deadline)
                break;
        }
        if (end_marked && busy && t >= answers_deadline) {
            fprintf(stderr, "p2p_load: %d answers still pending 10 s after the end\n", busy);
            http_err += busy;
            break;
        }
        int timeout = 1;
        int n = epoll_wait(ep, evs, 256, timeout);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int k = 0; k < n; k++) {
            uint64_t id = evs[k].data.u64;
            if (id < (uint64_t)K) {
                wsc *c = &ws[id];
                if (!c->dead)
                    ws_read(c);
                if (c->dead)
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            httpc *h = &hc[id - (uint64_t)K];
            for (;;) {
                ssize_t r = read(h->fd, h->rbuf + h->rlen, sizeof(h->rbuf) - h->rlen);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && errno == EAGAIN)
                    break;
                if (r <= 0)
                    die("HTTP connection closed by the node");
                h->rlen += (size_t)r;
                if (h->rlen == sizeof(h->rbuf))
                    die("answer too long");
            }
            if (h->busy && http_answer(h) && now_ns() < t_end)
                http_send(h);
        }
    }
    uint64_t t_stop = now_ns();

    long lost = 0, w_accepted = 0;
    for (long s = 0; s < seq_next; s++) {
        if ((msg[s] & 1) && !(msg[s] >> 2))
            lost++;
        if ((msg[s] & 3) == 3)
            w_accepted++;
    }
    printf("{\"users\":%d,\"conns\":%d,\"tag\":\"%s\",\"setup_ms\":%.1f,\"warmup_s\":%g,\"duration_s\":%g,",
           K, C, tag, setup_ms, warm, dur);
    printf("\"sent\":%ld,\"answered\":%ld,\"accepted\":%ld,\"refused\":%ld,\"http_errors\":%ld,",
           sent, answered, accepted, refused, http_err);
    printf("\"delivered\":%ld,\"lost\":%ld,\"duplicated\":%ld,\"misdelivered\":%ld,\"other_frames\":%ld,"
           "\"ws_drops\":%ld,\"pings\":%ld,\"drain_ms\":%.1f,",
           delivered, lost, duplicated, misdelivered, other, ws_drops, pings,
           t_stop > t_end ? (t_stop - t_end) / 1e6 : 0.0);
    printf("\"window\":{\"answered\":%ld,\"accepted\":%ld,\"rate_per_s\":%.1f,", w_answered, w_accepted,
           w_answered / dur);
    print_lat("api_ms", &api_lat);
    printf(",");
    print_lat("push_ms", &push_lat);
    printf(",\"cpu_s\":{");
    for (int i = 0; i < npid; i++)
        printf("%s\"%d\":%.3f", i ? "," : "", pids[i], cpu1[i] - cpu0[i]);
    printf("},\"client_cpu_s\":%.3f,\"machine_cpu_s\":%.3f}}\n", self1 - self0, mach1 - mach0);
    for (int i = 0; i < K; i++)
        if (!ws[i].dead)
            close(ws[i].fd);
    for (int i = 0; i < C; i++)
        close(hc[i].fd);
    int bad = lost || duplicated || misdelivered || refused || http_err || ws_drops;
    return bad ? 1 : 0;
}
