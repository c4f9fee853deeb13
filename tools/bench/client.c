/* client.c — one WebSocket client connection of a worker: TCP connect from
 * a loopback source address, upgrade, login, then heartbeats, pongs and the
 * timing of every push. Reads go into one buffer shared by the worker; only
 * an incomplete frame (or handshake answer) is copied into a per-connection
 * heap buffer, freed as soon as it is complete. With --deflate's second pass
 * the clients offer permessage-deflate, fail the set-up if it is not
 * granted with no context takeover, and inflate compressed messages with
 * one zlib stream per worker process, reset per message (no state per
 * connection). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "clock.h"
#include "jscan.h"
#include "worker.h"
#include "wsc.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

struct client_rx {
    uint8_t *raw;            /* unparsed bytes */
    size_t raw_len, raw_cap;
    uint8_t *frag;           /* payload of a fragmented message so far */
    size_t frag_len, frag_wire;  /* its payload bytes; its frames' bytes on the wire */
    int frag_op;             /* 0: no fragmented message in progress */
    int frag_z;              /* ... and it is compressed */
};

typedef struct client_wreq {
    uv_write_t req;
    uint8_t data[];
} client_wreq;

enum { FR_CONNECT, FR_STATUS, FR_ACCEPT, FR_LOGIN, FR_TO_CONNECT, FR_TO_HANDSHAKE,
       FR_TO_LOGIN, FR_CLOSED, FR_PROTOCOL, FR_EXT };
enum { DR_EOF, DR_ERROR, DR_CLOSE, DR_PROTOCOL };

static uint8_t g_client_rbuf[65536];      /* reads of every connection land here */

static long client_index(const worker *w, const bench_conn *c)
{
    return w->first + (long)(c - w->conns);
}

static uint32_t client_rand(worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return (uint32_t)(x >> 16);
}

int client_in_setup(const bench_conn *c)
{
    return c->state >= CS_CONNECTING && c->state <= CS_LOGIN;
}

static void client_rx_free(bench_conn *c)
{
    if (!c->rx)
        return;
    free(c->rx->raw);
    free(c->rx->frag);
    free(c->rx);
    c->rx = NULL;
}

static void client_closed_cb(uv_handle_t *h)
{
    client_rx_free((bench_conn *)h);
}

static void client_close(bench_conn *c, uint8_t state)
{
    c->state = state;
    if (c->ringed) {                         /* its receive ends with -ECANCELED, ignored */
        worker *w = c->tcp.data;
        uv_os_fd_t fd = -1;
        c->ringed = 0;
        (void)uv_fileno((uv_handle_t *)&c->tcp, &fd);
        if (rxring_cancel(w->ring, fd, (uint32_t)(c - w->conns)) != 0)
            fprintf(stderr, "imgate-bench: a closed connection's receive could not be cancelled: "
                    "its socket is read (and ignored) until the run ends\n");
    }
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, client_closed_cb);
}

static void client_fail(worker *w, bench_conn *c, int reason, int32_t detail)
{
    counters *k = &w->st.c;
    k->failed++;
    switch (reason) {
    case FR_CONNECT: k->f_connect++; kv_add(k->connect_errs, detail, 1); break;
    case FR_STATUS: k->f_status++; kv_add(k->statuses, detail, 1); break;
    case FR_ACCEPT: k->f_accept++; break;
    case FR_LOGIN: k->f_login++; kv_add(k->login_codes, detail, 1); break;
    case FR_TO_CONNECT: k->f_to_connect++; break;
    case FR_TO_HANDSHAKE: k->f_to_handshake++; break;
    case FR_TO_LOGIN: k->f_to_login++; break;
    case FR_CLOSED: k->f_closed++; break;
    case FR_EXT: k->f_ext++; break;
    default: k->f_protocol++; break;
    }
    w->inflight--;
    client_close(c, CS_FAILED);
}

static void client_drop(worker *w, bench_conn *c, int reason, int32_t detail)
{
    counters *k = &w->st.c;
    k->dropped++;
    k->alive--;
    switch (reason) {
    case DR_EOF: k->d_eof++; break;
    case DR_ERROR: k->d_error++; break;
    case DR_CLOSE: k->d_close++; kv_add(k->close_codes, detail, 1); break;
    default: k->d_protocol++; break;
    }
    client_close(c, CS_DROPPED);
}

/* The connection ended (EOF or an error) in whatever state it was. */
static void client_lost(worker *w, bench_conn *c, int err)
{
    if (c->state == CS_READY)
        client_drop(w, c, err == UV_EOF ? DR_EOF : DR_ERROR, 0);
    else if (client_in_setup(c))
        client_fail(w, c, FR_CLOSED, err);
}

/* A protocol violation by the server. */
static void client_violation(worker *w, bench_conn *c)
{
    if (c->state == CS_READY)
        client_drop(w, c, DR_PROTOCOL, 0);
    else if (client_in_setup(c))
        client_fail(w, c, FR_PROTOCOL, 0);
}

/* ---------- writing ---------- */

static void client_write_cb(uv_write_t *req, int status)
{
    worker *w = req->handle->data;
    if (status < 0 && status != UV_ECANCELED)
        w->st.c.write_err++;
    free(req);
}

/* Writes n bytes now if the socket takes them (the usual case: no
 * allocation), else queues a copy of the rest. */
static int client_write(bench_conn *c, const void *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == (int)n)
        return 0;
    if (r < 0 && r != UV_EAGAIN)
        return r;
    size_t done = r > 0 ? (size_t)r : 0;
    client_wreq *q = malloc(sizeof(*q) + n - done);
    if (!q)
        return UV_ENOMEM;
    memcpy(q->data, (const uint8_t *)p + done, n - done);
    b = uv_buf_init((char *)q->data, (unsigned)(n - done));
    r = uv_write(&q->req, (uv_stream_t *)&c->tcp, &b, 1, client_write_cb);
    if (r < 0)
        free(q);
    return r;
}

static int client_send(worker *w, bench_conn *c, unsigned op, const void *p, size_t n)
{
    uint8_t frame[512];
    size_t fl = wsc_encode(frame, sizeof(frame), op, p, n, client_rand(w));
    if (fl == 0)
        return UV_E2BIG;
    int r = client_write(c, frame, fl);
    if (r < 0)
        w->st.c.write_err++;
    return r;
}

void client_heartbeat(worker *w, bench_conn *c)
{
    if (c->state != CS_READY)
        return;
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "{\"seq\":\"h%llu\",\"cmd\":\"heartbeat\",\"data\":{}}",
                     (unsigned long long)clock_ns());
    if (client_send(w, c, WSC_TEXT, msg, (size_t)n) == 0)
        w->st.c.hb_sent++;
}

/* ---------- set-up ---------- */

static void client_key(const worker *w, const bench_conn *c, char key[WSC_KEY_LEN + 1])
{
    wsc_key(w->key_seed ^ ((uint64_t)client_index(w, c) * 0x9E3779B97F4A7C15ull), key);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void client_ring_arm(worker *w, bench_conn *c);

static void client_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init((char *)g_client_rbuf, sizeof(g_client_rbuf));
}

static void client_connect_cb(uv_connect_t *req, int status)
{
    bench_conn *c = req->data;
    free(req);
    if (status == UV_ECANCELED || c->state != CS_CONNECTING)
        return;
    worker *w = c->tcp.data;
    if (status < 0) {
        client_fail(w, c, FR_CONNECT, status);
        return;
    }
    w->st.c.tcp_ok++;
    char key[WSC_KEY_LEN + 1], head[600];
    client_key(w, c, key);
    const url *u = opts_ws_for(w->o, client_index(w, c));
    size_t n = wsc_request(head, sizeof(head), u->host, u->path, key,
                           w->o->offer_deflate ? WSC_DEFLATE_OFFER : NULL);
    int r = uv_read_start((uv_stream_t *)&c->tcp, client_alloc_cb, client_read_cb);
    if (r == 0)
        r = client_write(c, head, n);
    if (r < 0) {
        client_fail(w, c, FR_CONNECT, r);
        return;
    }
    c->state = CS_HANDSHAKE;
}

static int client_bind_source(worker *w, bench_conn *c)
{
    uv_os_fd_t fd;
    int one = 1, r = uv_fileno((uv_handle_t *)&c->tcp, &fd);
    if (r < 0)
        return r;
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) != 0)
        return -errno;
    struct sockaddr_in src = { .sin_family = AF_INET };
    src.sin_addr.s_addr = htonl(0x7F000000u | (uint32_t)(2 + client_index(w, c) % 253));
    return uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
}

void client_start(worker *w, bench_conn *c)
{
    counters *k = &w->st.c;
    uint64_t now = clock_ns();
    k->attempted++;
    w->inflight++;
    c->t0 = now;
    if (now < k->t_first)
        k->t_first = now;
    int r = uv_tcp_init_ex(&w->loop, &c->tcp, AF_INET);
    if (r < 0) {                      /* no handle to close: account only */
        k->failed++;
        k->f_connect++;
        kv_add(k->connect_errs, r, 1);
        w->inflight--;
        c->state = CS_FAILED;
        return;
    }
    c->tcp.data = w;
    c->state = CS_CONNECTING;
    if (w->o->bind_sources && (r = client_bind_source(w, c)) < 0) {
        client_fail(w, c, FR_CONNECT, r);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_connect_t *req = malloc(sizeof(*req));
    if (!req) {
        client_fail(w, c, FR_CONNECT, UV_ENOMEM);
        return;
    }
    req->data = c;
    const url *u = opts_ws_for(w->o, client_index(w, c));
    r = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&u->addr, client_connect_cb);
    if (r < 0) {
        free(req);
        client_fail(w, c, FR_CONNECT, r);
    }
}

void client_check_timeout(worker *w, bench_conn *c, uint64_t now)
{
    if (!client_in_setup(c) || now - c->t0 < w->timeout_ns)
        return;
    client_fail(w, c, c->state == CS_CONNECTING ? FR_TO_CONNECT :
                      c->state == CS_HANDSHAKE ? FR_TO_HANDSHAKE : FR_TO_LOGIN, 0);
}

/* The upgrade answer. Returns the bytes it used, 0 if it needs more, or
 * (size_t)-1 if the connection failed. */
static size_t client_handshake(worker *w, bench_conn *c, const uint8_t *p, size_t n,
                               uint64_t now)
{
    char key[WSC_KEY_LEN + 1];
    client_key(w, c, key);
    int status = 0, ok = 0;
    size_t hl = 0;
    int r = wsc_response((const char *)p, n, key, &status, &ok, &hl);
    if (r == WSC_HS_NEED)
        return 0;
    if (r == WSC_HS_BAD || status != 101 || !ok) {
        if (r == WSC_HS_BAD)
            client_fail(w, c, FR_PROTOCOL, 0);
        else if (status != 101)
            client_fail(w, c, FR_STATUS, status);
        else
            client_fail(w, c, FR_ACCEPT, 0);
        return (size_t)-1;
    }
    if (w->o->offer_deflate && !wsc_deflate_accepted((const char *)p, hl)) {
        client_fail(w, c, FR_EXT, 0);
        return (size_t)-1;
    }
    w->st.c.upgraded++;
    hist_add(&w->st.hs, now - c->t0);
    char uid[32], msg[200];
    opts_user_id(w->o, client_index(w, c), uid, sizeof(uid));
    int ml = snprintf(msg, sizeof(msg),
                      "{\"seq\":\"l\",\"cmd\":\"login\",\"data\":{\"serviceToken\":\"\","
                      "\"appID\":%d,\"userID\":\"%s\"}}", w->o->app_id, uid);
    c->t0 = clock_ns();
    c->state = CS_LOGIN;
    if (client_send(w, c, WSC_TEXT, msg, (size_t)ml) < 0) {
        client_fail(w, c, FR_CLOSED, 0);
        return (size_t)-1;
    }
    return hl;
}

/* ---------- messages ---------- */

static int client_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (s < end && *s >= '0' && *s <= '9' && s - *p < 20)
        x = x * 10 + (uint64_t)(*s++ - '0');
    if (s == *p)
        return -1;
    *v = x;
    *p = s;
    return 0;
}

static void client_login_reply(worker *w, bench_conn *c, const char *p, size_t n, uint64_t now)
{
    long code = -1;
    jscan_int(p, n, "code", &code);
    if (code != 200) {
        client_fail(w, c, FR_LOGIN, (int32_t)code);
        return;
    }
    counters *k = &w->st.c;
    hist_add(&w->st.login, now - c->t0);
    k->logged_in++;
    k->alive++;
    if (now > k->t_last_login)
        k->t_last_login = now;
    w->inflight--;
    c->state = CS_READY;
}

static void client_hb_reply(worker *w, const char *p, size_t n, uint64_t now)
{
    long code = -1;
    const char *seq;
    size_t sl;
    jscan_int(p, n, "code", &code);
    if (code != 200) {
        w->st.c.hb_err++;
        return;
    }
    w->st.c.hb_ok++;
    uint64_t ts;
    if (jscan_str(p, n, "seq", &seq, &sl) == 0 && sl > 1 && seq[0] == 'h') {
        const char *s = seq + 1;
        if (client_u64(&s, seq + sl, &ts) == 0 && ts <= now)
            hist_add(&w->st.hb, now - ts);
    }
}

/* Whether broadcast seq s is new to this connection: one bit per message
 * and connection for the whole run, in the worker's shared bitmap; a
 * connection's bits side by side (bit i * nb + seq), so the several pushes
 * one read brings share a cache line. */
static int client_bc_new(worker *w, const bench_conn *c, uint32_t s)
{
    size_t bit = (size_t)(c - w->conns) * (size_t)w->nb + s;
    uint8_t mask = (uint8_t)(1u << (bit % 8));
    if (w->bc_seen[bit / 8] & mask)
        return 0;
    w->bc_seen[bit / 8] |= mask;
    return 1;
}

/* The wire size of a broadcast push frame, for the floor's like-for-like
 * payload. */
static void client_bc_frame(worker *w)
{
    counters *k = &w->st.c;
    if (!k->bc_frame_min || w->rx_frame < k->bc_frame_min)
        k->bc_frame_min = w->rx_frame;
    if (w->rx_frame > k->bc_frame_max)
        k->bc_frame_max = w->rx_frame;
}

static void client_bc(worker *w, bench_conn *c, uint64_t seq, uint64_t ts, uint64_t now)
{
    if (seq >= w->nb) {
        w->st.c.msg_bad++;
        return;
    }
    if (!client_bc_new(w, c, (uint32_t)seq)) {
        w->st.c.bc_dup++;
        return;
    }
    w->st.c.bc_rx++;
    w->st.c.bc_z += w->rx_z;
    client_bc_frame(w);
    w->bc_cnt[seq]++;
    if (!w->bc_first[seq] || now < w->bc_first[seq])
        w->bc_first[seq] = now;
    if (now > w->bc_last[seq])
        w->bc_last[seq] = now;
    hist_add(&w->st.bc, now > ts ? now - ts : 0);
}

static void client_p2p(worker *w, bench_conn *c, uint64_t seq, uint64_t ts, uint64_t idx,
                       uint64_t now)
{
    if (seq >= w->np) {
        w->st.c.msg_bad++;
        return;
    }
    if ((long)idx != client_index(w, c)) {
        w->st.c.p2p_wrong++;
        return;
    }
    if (w->p2p_cnt[seq] < 255)
        w->p2p_cnt[seq]++;
    if (w->p2p_cnt[seq] > 1) {
        w->st.c.p2p_dup++;
        return;
    }
    w->st.c.p2p_rx++;
    hist_add(&w->st.p2p, now > ts ? now - ts : 0);
}

/* A "msg" push: data.msg is "<tag>.B.<seq>.<ts>" or "<tag>.P.<seq>.<ts>.<idx>". */
static void client_push(worker *w, bench_conn *c, const char *p, size_t n, uint64_t now)
{
    const char *m;
    size_t ml;
    if (jscan_str_last(p, n, "msg", &m, &ml) != 0 || ml < w->prefix_len + 2 ||
        memcmp(m, w->prefix, w->prefix_len) != 0) {
        w->st.c.other_rx++;
        return;
    }
    const char *s = m + w->prefix_len, *end = m + ml;
    char kind = *s;
    uint64_t seq, ts, idx = 0;
    s += 2;
    if (client_u64(&s, end, &seq) != 0 || s >= end || *s++ != '.' ||
        client_u64(&s, end, &ts) != 0) {
        w->st.c.msg_bad++;
        return;
    }
    if (kind == 'B') {
        client_bc(w, c, seq, ts, now);
    } else if (kind == 'P' && s < end && *s++ == '.' && client_u64(&s, end, &idx) == 0) {
        client_p2p(w, c, seq, ts, idx, now);
    } else {
        w->st.c.msg_bad++;
    }
}

static int client_is(const char *v, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(v, lit, n) == 0;
}

static void client_message(worker *w, bench_conn *c, const uint8_t *pp, size_t n, uint64_t now)
{
    const char *p = (const char *)pp, *cmd;
    size_t cl;
    if (jscan_str(p, n, "cmd", &cmd, &cl) != 0) {
        w->st.c.msg_bad++;
        return;
    }
    if (client_is(cmd, cl, "msg"))
        client_push(w, c, p, n, now);
    else if (client_is(cmd, cl, "login") && c->state == CS_LOGIN)
        client_login_reply(w, c, p, n, now);
    else if (client_is(cmd, cl, "heartbeat"))
        client_hb_reply(w, p, n, now);
    else if (client_is(cmd, cl, "enter"))
        w->st.c.enter_rx++;
    else if (client_is(cmd, cl, "exit"))
        w->st.c.exit_rx++;
    else
        w->st.c.other_rx++;
}

/* ---------- permessage-deflate ---------- */

static z_stream g_client_inf;             /* one per worker process */
static int g_client_inf_ready;
static uint8_t *g_client_zout;            /* inflated message, kept for the next one */
static size_t g_client_zcap;

static int client_zgrow(void)
{
    size_t cap = g_client_zcap ? g_client_zcap * 2 : 4096;
    if (cap > WSC_MAX_PAYLOAD)
        return -1;
    uint8_t *nb = realloc(g_client_zout, cap);
    if (!nb)
        return -1;
    g_client_zout = nb;
    g_client_zcap = cap;
    return 0;
}

/* Runs the stream over in[0..n) into g_client_zout from *out on. Returns
 * 0, 1 (the DEFLATE stream ended) or -1 (bad data, too big). */
static int client_zfeed(const uint8_t *in, size_t n, size_t *out)
{
    g_client_inf.next_in = (Bytef *)in;
    g_client_inf.avail_in = (uInt)n;
    for (;;) {
        if (*out == g_client_zcap && client_zgrow() != 0)
            return -1;
        g_client_inf.next_out = g_client_zout + *out;
        g_client_inf.avail_out = (uInt)(g_client_zcap - *out);
        int rc = inflate(&g_client_inf, Z_SYNC_FLUSH);
        *out = g_client_zcap - g_client_inf.avail_out;
        if (rc == Z_STREAM_END)
            return 1;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return -1;
        if (g_client_inf.avail_out != 0)
            return 0;                     /* the input is used up */
    }
}

/* A compressed message's payload inflated from a fresh state (RFC 7692:
 * the 00 00 ff ff tail appended); NULL if it is not valid. */
static const uint8_t *client_inflate(const uint8_t *p, size_t n, size_t *len)
{
    static const uint8_t tail[4] = { 0x00, 0x00, 0xff, 0xff };
    int ok = g_client_inf_ready ? inflateReset(&g_client_inf) == Z_OK
                                : inflateInit2(&g_client_inf, -15) == Z_OK;
    if (!ok || n > UINT32_MAX)
        return NULL;
    g_client_inf_ready = 1;
    size_t out = 0;
    int rc = client_zfeed(p, n, &out);
    if (rc == 0)
        rc = client_zfeed(tail, sizeof(tail), &out);
    if (rc < 0)
        return NULL;
    *len = out;
    return g_client_zout;
}

/* A complete text message, compressed or not. Returns 0 or -1. */
static int client_text(worker *w, bench_conn *c, const uint8_t *p, size_t n, int z,
                       uint64_t now)
{
    if (!z) {
        client_message(w, c, p, n, now);
        return 0;
    }
    size_t len = 0;
    const uint8_t *m = client_inflate(p, n, &len);
    if (!m)
        return -1;
    w->st.c.z_rx++;
    w->rx_z = 1;
    client_message(w, c, m, len, now);
    w->rx_z = 0;
    return 0;
}

/* ---------- frames ---------- */

static client_rx *client_rx_get(bench_conn *c)
{
    if (!c->rx)
        c->rx = calloc(1, sizeof(*c->rx));
    return c->rx;
}

static int client_frag(worker *w, bench_conn *c, const wsc_frame *f, const uint8_t *pl,
                       uint64_t now)
{
    client_rx *rx = client_rx_get(c);
    if (!rx)
        return -1;
    if ((f->opcode == WSC_CONT) != (rx->frag_op != 0))
        return -1;                         /* continuation of nothing, or a new start */
    if (f->opcode == WSC_CONT && f->rsv1)
        return -1;                         /* RSV1 only on a message's first frame */
    if (rx->frag_len + f->len > WSC_MAX_PAYLOAD)
        return -1;
    uint8_t *nb = realloc(rx->frag, rx->frag_len + f->len + 1);
    if (!nb)
        return -1;
    rx->frag = nb;
    memcpy(rx->frag + rx->frag_len, pl, f->len);
    rx->frag_len += f->len;
    rx->frag_wire += f->head + f->len;
    if (f->opcode != WSC_CONT) {
        rx->frag_op = (int)f->opcode;
        rx->frag_z = (int)f->rsv1;
    }
    if (!f->fin)
        return 0;
    w->rx_frame = (uint32_t)rx->frag_wire;
    int rc = rx->frag_op == WSC_TEXT ? client_text(w, c, rx->frag, rx->frag_len, rx->frag_z, now)
                                     : 0;
    free(rx->frag);
    rx->frag = NULL;
    rx->frag_len = rx->frag_wire = 0;
    rx->frag_op = rx->frag_z = 0;
    return rc;
}

static void client_close_frame(worker *w, bench_conn *c, const uint8_t *pl, size_t n)
{
    int code = n >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
    uint8_t reply[2] = { (uint8_t)(code >> 8), (uint8_t)code };
    client_send(w, c, WSC_CLOSE, reply, code == 1005 ? 0 : 2);
    if (c->state == CS_READY)
        client_drop(w, c, DR_CLOSE, code);
    else
        client_fail(w, c, FR_CLOSED, code);
}

/* One complete frame. Returns 0, -1 on a protocol violation. */
static int client_frame(worker *w, bench_conn *c, const wsc_frame *f, const uint8_t *pl,
                        uint64_t now)
{
    int in_frag = c->rx && c->rx->frag_op;
    switch (f->opcode) {
    case WSC_PING:
        w->st.c.ping_rx++;
        client_send(w, c, WSC_PONG, pl, f->len);
        return 0;
    case WSC_PONG:
        return 0;
    case WSC_CLOSE:
        client_close_frame(w, c, pl, f->len);
        return 0;
    default:
        break;
    }
    if (f->fin && f->opcode != WSC_CONT && !in_frag) {
        w->rx_frame = (uint32_t)(f->head + f->len);
        if (f->opcode == WSC_TEXT)
            return client_text(w, c, pl, f->len, (int)f->rsv1, now);
        w->st.c.other_rx++;
        return 0;
    }
    return client_frag(w, c, f, pl, now);
}

/* Parses frames in p[0..n); returns the bytes used. */
static size_t client_frames(worker *w, bench_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    size_t off = 0;
    while (off < n && (c->state == CS_LOGIN || c->state == CS_READY)) {
        wsc_frame f;
        int r = wsc_parse(p + off, n - off, w->o->offer_deflate, &f);
        if (r == WSC_F_NEED)
            break;
        if (r == WSC_F_BAD || client_frame(w, c, &f, p + off + f.head, now) != 0) {
            client_violation(w, c);
            return n;
        }
        off += f.head + f.len;
    }
    return off;
}

/* Keeps the unused tail p[0..n) for the next read. Returns 0 or -1. */
static int client_keep(bench_conn *c, const uint8_t *p, size_t n)
{
    client_rx *rx = c->rx;
    if (n == 0) {
        if (rx)
            rx->raw_len = 0;
        if (rx && !rx->frag_op) {
            client_rx_free(c);
        }
        return 0;
    }
    if (!(rx = client_rx_get(c)))
        return -1;
    if (p != rx->raw) {
        if (n > rx->raw_cap) {
            uint8_t *nb = realloc(rx->raw, n);
            if (!nb)
                return -1;
            rx->raw = nb;
            rx->raw_cap = n;
        }
        memmove(rx->raw, p, n);
    }
    rx->raw_len = n;
    return 0;
}

/* Appends a read to the kept bytes; returns the buffer to parse. */
static uint8_t *client_join(bench_conn *c, const uint8_t *p, size_t n, size_t *len)
{
    client_rx *rx = c->rx;
    if (!rx || rx->raw_len == 0) {
        *len = n;
        return (uint8_t *)p;
    }
    if (rx->raw_len + n > rx->raw_cap) {
        size_t cap = rx->raw_cap * 2 > rx->raw_len + n ? rx->raw_cap * 2 : rx->raw_len + n;
        uint8_t *nb = realloc(rx->raw, cap);
        if (!nb)
            return NULL;
        rx->raw = nb;
        rx->raw_cap = cap;
    }
    memcpy(rx->raw + rx->raw_len, p, n);
    rx->raw_len += n;
    *len = rx->raw_len;
    return rx->raw;
}

static void client_input(worker *w, bench_conn *c, const uint8_t *in, size_t n, uint64_t now)
{
    size_t len, off = 0;
    uint8_t *p = client_join(c, in, n, &len);
    if (!p) {
        client_violation(w, c);
        return;
    }
    if (c->state == CS_HANDSHAKE) {
        off = client_handshake(w, c, p, len, now);
        if (off == (size_t)-1)
            return;
        if (off == 0) {
            if (client_keep(c, p, len) != 0)
                client_violation(w, c);
            return;
        }
    }
    off += client_frames(w, c, p + off, len - off, now);
    if (c->state != CS_LOGIN && c->state != CS_READY)
        return;
    if (client_keep(c, p + off, len - off) != 0)
        client_violation(w, c);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    bench_conn *c = (bench_conn *)s;
    worker *w = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        client_lost(w, c, (int)nread);
        return;
    }
    w->st.c.rx_bytes += (uint64_t)nread;
    client_input(w, c, (const uint8_t *)buf->base, (size_t)nread, clock_ns());
    if (w->ring && c->state == CS_READY && !c->ringed)
        client_ring_arm(w, c);
}

/* Logged in: from now on its reads come from the worker's ring. */
static void client_ring_arm(worker *w, bench_conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || uv_read_stop((uv_stream_t *)&c->tcp) != 0)
        return;
    int r = rxring_arm(w->ring, fd, (uint32_t)(c - w->conns));
    if (r != 0) {
        client_lost(w, c, r);
        return;
    }
    c->ringed = 1;
}

int client_ring_read(void *ud, uint32_t tag, const uint8_t *p, int n)
{
    worker *w = ud;
    if (tag >= w->count)
        return 0;
    bench_conn *c = &w->conns[tag];
    if (!c->ringed)
        return 0;                            /* cancelled: closed meanwhile */
    if (n > 0) {
        w->st.c.rx_bytes += (uint64_t)n;
        client_input(w, c, p, (size_t)n, clock_ns());
    }
    if (!c->ringed || c->state != CS_READY)
        return 0;                            /* closed by what it read */
    if (n == 0 || (n < 0 && n != -ENOBUFS)) {
        c->ringed = 0;
        client_lost(w, c, n == 0 ? UV_EOF : n);
        return 0;
    }
    return 1;
}
