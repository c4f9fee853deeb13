/* session.c — WebSocket connections after the upgrade (see session.h). */
#include "ws/session.h"

#include <string.h>

#include "core/log.h"
#include "core/node.h"
#include "core/sbuf.h"
#include "im/hub.h"
#include "im/proto.h"
#include "net/conn.h"
#include "net/worker.h"
#include "ws/frame.h"
#include "ws/reader.h"

static int ws_session_on_message(void *ud, int opcode, uint8_t *data, size_t len);
static int ws_session_on_ping(void *ud, const uint8_t *data, size_t len);
static int ws_session_on_pong(void *ud, const uint8_t *data, size_t len);
static int ws_session_on_close(void *ud, uint16_t code, const uint8_t *reason, size_t len);

static const ws_reader_cb ws_session_cb = {
    .on_message = ws_session_on_message,
    .on_ping = ws_session_on_ping,
    .on_pong = ws_session_on_pong,
    .on_close = ws_session_on_close,
};

static ws_reader **ws_session_reader(struct conn *c) { return (ws_reader **)&c->tcp.data; }

/* A complete frame arrived: the connection is alive. Also starts a new
 * rate-limit second when the clock moved on. */
static void ws_session_touch(struct conn *c)
{
    uint32_t now = worker_now(conn_worker(c));
    if (now != c->last_active) {
        c->msgs = 0;
        c->last_active = now;
    }
}

void ws_session_start(struct conn *c, int echo, uint8_t *rest, size_t n)
{
    worker *w = conn_worker(c);
    c->tcp.data = NULL;
    c->state = CONN_WS_OPEN;
    c->last_active = worker_now(w);           /* connectionTimeout counts from here */
    if (echo)
        c->flags |= CONN_F_ECHO;
    atomic_fetch_add_explicit(&w->stats.ws_conns, 1, memory_order_relaxed);
    if (n)
        ws_session_feed(c, rest, n);
}

/* Frames and sends a small control or data payload. */
static int ws_session_send(struct conn *c, int opcode, const void *p, size_t n)
{
    uint8_t stackbuf[10 + 256];
    uint8_t hdr[10];
    size_t hl = ws_frame_header_encode(hdr, opcode, 1, n);
    if (hl + n <= sizeof(stackbuf)) {
        memcpy(stackbuf, hdr, hl);
        if (n)
            memcpy(stackbuf + hl, p, n);
        return conn_send_bytes(c, stackbuf, hl + n);
    }
    sbuf *b = sbuf_new(hl + n);
    if (!b)
        return -1;
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, p, n);
    int r = conn_send_shared(c, b);
    sbuf_unref(b);
    return r;
}

int ws_session_send_text(struct conn *c, const char *p, size_t n)
{
    return ws_session_send(c, WS_OP_TEXT, p, n);
}

void ws_session_feed(struct conn *c, uint8_t *p, size_t n)
{
    worker *w = conn_worker(c);
    int r = ws_reader_feed(ws_session_reader(c), p, n, g_node.cfg.maxMessageSize,
                           &ws_session_cb, c);
    (void)w;
    if (r > 0) {
        log_debug("ws: protocol error, closing with %d", r);
        ws_reader_free(ws_session_reader(c));
        c->flags |= CONN_F_DISCARD;
        conn_close_ws(c, (uint16_t)r, r == WS_CLOSE_TOO_BIG ? "message too big"
                                      : r == WS_CLOSE_BAD_DATA ? "invalid UTF-8"
                                                               : "protocol error");
    }
}

void ws_session_ping(struct conn *c)
{
    (void)ws_session_send(c, WS_OP_PING, NULL, 0);
}

static int ws_session_on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    struct conn *c = ud;
    worker *w = conn_worker(c);
    if (c->state != CONN_WS_OPEN)
        return 0;                              /* closing: ignore data */
    ws_session_touch(c);
    atomic_fetch_add_explicit(&w->stats.msgs_in, 1, memory_order_relaxed);
    int max = g_node.cfg.maxMessagesPerSecond;
    if (max > 0 && ++c->msgs > (unsigned)max) {
        atomic_fetch_add_explicit(&w->stats.rate_closed, 1, memory_order_relaxed);
        log_info("closing a connection sending over %d messages/s", max);
        conn_close_ws(c, WS_CLOSE_POLICY, "message rate limit exceeded");
        return 1;
    }
    if (c->flags & CONN_F_ECHO)
        (void)ws_session_send(c, opcode, data, len);
    else if (opcode == WS_OP_TEXT)
        proto_handle(c, (const char *)data, len);
    else
        proto_reject_binary(c);
    return c->state == CONN_CLOSED ? 1 : 0;
}

static int ws_session_on_ping(void *ud, const uint8_t *data, size_t len)
{
    struct conn *c = ud;
    if (c->state == CONN_WS_OPEN) {
        ws_session_touch(c);
        (void)ws_session_send(c, WS_OP_PONG, data, len);
    }
    return c->state == CONN_CLOSED ? 1 : 0;
}

static int ws_session_on_pong(void *ud, const uint8_t *data, size_t len)
{
    struct conn *c = ud;
    (void)data; (void)len;
    if (c->state == CONN_WS_OPEN)
        ws_session_touch(c);                   /* the answer to our ping */
    return 0;
}

static int ws_session_on_close(void *ud, uint16_t code, const uint8_t *reason, size_t len)
{
    struct conn *c = ud;
    (void)reason; (void)len;
    if (c->state == CONN_WS_OPEN) {
        /* The client closes: echo its code (1005 means none: answer 1000). */
        conn_close_ws(c, code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : code, "");
    } else if (c->state == CONN_WS_CLOSING) {
        /* The answer to our close: done once our bytes are out. */
        if (!conn_queued(c))
            conn_close(c);
    }
    return 1;
}

void ws_session_closing(struct conn *c)
{
    hub_detach(c);
}

void ws_session_end(struct conn *c)
{
    hub_detach(c);
    ws_reader_free(ws_session_reader(c));
}
