/* session.c — WebSocket connections after the upgrade (see session.h). */
#include "ws/session.h"

#include <string.h>

#include "core/log.h"
#include "core/node.h"
#include "core/sbuf.h"
#include "net/conn.h"
#include "net/worker.h"
#include "ws/deflate.h"
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

#define WS_CLOSE_GRACE 5          /* seconds a closing connection may linger */

static const ws_session_app *ws_app;

static ws_reader **ws_session_reader(struct conn *c) { return (ws_reader **)&c->tcp.data; }

static void ws_session_feed(struct conn *c, uint8_t *p, size_t n);
static void ws_session_release(struct conn *c);
static void ws_session_sweep(struct conn *c, uint32_t idle);
static void ws_session_stop(struct conn *c);

static const conn_handler ws_session_handler = {
    .feed = ws_session_feed,
    .eof = NULL,                  /* a WebSocket client that sends FIN is gone */
    .release = ws_session_release,
    .sweep = ws_session_sweep,
    .drained = NULL,
    .stop = ws_session_stop,
};

void ws_session_init(const ws_session_app *app)
{
    ws_app = app;
    conn_set_handler(CONN_LAYER_WS, &ws_session_handler);
}

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

void ws_session_start(struct conn *c, unsigned opts, uint8_t *rest, size_t n)
{
    worker *w = conn_worker(c);
    c->tcp.data = NULL;
    c->state = CONN_WS_OPEN;
    c->last_active = worker_now(w);           /* connectionTimeout counts from here */
    if (opts & WS_SESSION_ECHO)
        c->flags |= CONN_F_ECHO;
    if (opts & WS_SESSION_DEFLATE) {
        c->flags |= CONN_F_DEFLATE;
        ws_deflate_conn(1);
        ws_deflate_prepare();
    }
    atomic_fetch_add_explicit(&w->stats.ws_conns, 1, memory_order_relaxed);
    if (n)
        ws_session_feed(c, rest, n);
}

/* ---------- output policy ---------- */

int ws_session_frame_fits(size_t n) { return n <= g_node.cfg.maxOutboundBytes; }

/* Would n more bytes pass c's cap or the node's? Only a connection that
 * already has a queue can add to the node's total: a frame to an empty
 * queue goes to the socket (at most its tail, under maxOutboundBytes, is
 * queued), so a client that reads is never closed for one that does not,
 * and the fast path reads no other worker's counters. */
static int ws_session_over_cap(const struct conn *c, size_t n)
{
    size_t queued = conn_queued(c), total_cap = g_node.cfg.maxOutboundBytesTotal;
    if (queued + n > g_node.cfg.maxOutboundBytes)
        return 1;
    return queued && total_cap && (size_t)conn_ws_queued_total() + n > total_cap;
}

/* A client that does not read: drop the frames it was not sent any byte
 * of, queue a 1008 close frame after the one being written, stop reading.
 * With TLS nothing can be dropped (records carry sequence numbers): the
 * close frame goes after the whole queue, which is already bounded. */
static void ws_session_slow_consumer(struct conn *c)
{
    worker *w = conn_worker(c);
    log_info("closing slow consumer (%zu bytes queued)", conn_queued(c));
    atomic_fetch_add_explicit(&w->stats.slow_closed, 1, memory_order_relaxed);
    if (!(c->flags & CONN_F_TLS))
        (void)conn_drop_unstarted(c);
    c->flags |= CONN_F_DISCARD;
    ws_session_close(c, WS_CLOSE_POLICY, "outbound queue full");
}

/* May a frame of n bytes go to c now? WS_SEND_OK, or why not (a slow
 * consumer is closed here). */
static int ws_session_admit(struct conn *c, size_t n)
{
    if (c->state != CONN_WS_OPEN)
        return WS_SEND_CLOSED;
    if (!ws_session_frame_fits(n))
        return WS_SEND_TOO_BIG;
    if (ws_session_over_cap(c, n)) {
        ws_session_slow_consumer(c);
        return WS_SEND_CLOSED;
    }
    return WS_SEND_OK;
}

int ws_session_send_frame(struct conn *c, sbuf *frame)
{
    int r = ws_session_admit(c, frame->len);
    if (r != WS_SEND_OK)
        return r;
    return conn_send_shared(c, frame) == 0 ? WS_SEND_OK : WS_SEND_CLOSED;
}

int ws_session_send_push(struct conn *c, ws_push *p)
{
    if (!(c->flags & CONN_F_DEFLATE))
        return ws_session_send_frame(c, p->plain);
    if (!p->tried && c->state == CONN_WS_OPEN) {
        p->tried = 1;
        p->deflated = ws_deflate_push(p->plain);
    }
    return ws_session_send_frame(c, p->deflated ? p->deflated : p->plain);
}

void ws_push_release(ws_push *p)
{
    sbuf_unref(p->deflated);
    p->deflated = NULL;
}

/* Whether a data message of n bytes goes compressed to c (if it shrinks). */
static int ws_session_deflates(const struct conn *c, int opcode, size_t n)
{
    return (c->flags & CONN_F_DEFLATE) && (opcode == WS_OP_TEXT || opcode == WS_OP_BINARY) &&
           n >= g_node.cfg.deflateMinSize && c->state == CONN_WS_OPEN;
}

/* Sends a compressed frame made for c alone. */
static int ws_session_send_own(struct conn *c, sbuf *b)
{
    int r = ws_session_send_frame(c, b);
    sbuf_unref(b);
    return r;
}

/* Frames and sends a control or data payload (policy as above); small ones
 * are framed on the stack and copied only if the socket cannot take them. */
static int ws_session_send(struct conn *c, int opcode, const void *p, size_t n)
{
    uint8_t stackbuf[10 + 256];
    uint8_t hdr[10];
    sbuf *z = ws_session_deflates(c, opcode, n) ? ws_deflate_frame(opcode, p, n) : NULL;
    if (z)
        return ws_session_send_own(c, z);
    size_t hl = ws_frame_header_encode(hdr, opcode, 1, n);
    int r = ws_session_admit(c, hl + n);
    if (r != WS_SEND_OK)
        return r;
    if (hl + n <= sizeof(stackbuf)) {
        memcpy(stackbuf, hdr, hl);
        if (n)
            memcpy(stackbuf + hl, p, n);
        return conn_send_bytes(c, stackbuf, hl + n) == 0 ? WS_SEND_OK : WS_SEND_CLOSED;
    }
    sbuf *b = sbuf_new(hl + n);
    if (!b)
        return WS_SEND_CLOSED;
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, p, n);
    r = conn_send_shared(c, b) == 0 ? WS_SEND_OK : WS_SEND_CLOSED;
    sbuf_unref(b);
    return r;
}

int ws_session_send_text(struct conn *c, const char *p, size_t n)
{
    return ws_session_send(c, WS_OP_TEXT, p, n);
}

/* The reason sent with a reader's close code. */
static const char *ws_session_why(const struct conn *c, int code)
{
    if (code == WS_CLOSE_TOO_BIG)
        return "message too big";
    if (code == WS_CLOSE_BAD_DATA)
        return (c->flags & CONN_F_DEFLATE) ? "invalid UTF-8 or compressed data" : "invalid UTF-8";
    return code == WS_CLOSE_INTERNAL ? "internal error" : "protocol error";
}

static void ws_session_feed(struct conn *c, uint8_t *p, size_t n)
{
    unsigned ext = (c->flags & CONN_F_DEFLATE) ? WS_READER_DEFLATE : 0;
    int r = ws_reader_feed_ext(ws_session_reader(c), p, n, g_node.cfg.maxMessageSize, ext,
                               &ws_session_cb, c);
    if (r > 0) {
        log_debug("ws: protocol error, closing with %d", r);
        ws_reader_free(ws_session_reader(c));
        c->flags |= CONN_F_DISCARD;
        ws_session_close(c, (uint16_t)r, ws_session_why(c, r));
    }
}

/* ---------- closing ---------- */

/* c stops being open: free the reader, tell the app (unbind the user). */
static void ws_session_leave_open(struct conn *c)
{
    if (ws_app && ws_app->on_end)
        ws_app->on_end(c);
    ws_reader_free(ws_session_reader(c));
}

void ws_session_close(struct conn *c, uint16_t code, const char *reason)
{
    if (c->state != CONN_WS_OPEN)
        return;
    uint8_t frame[2 + 125];
    size_t n = ws_frame_build_close(frame, code, reason);
    c->state = CONN_WS_CLOSING;
    c->last_active = worker_now(conn_worker(c));
    ws_session_leave_open(c);
    /* The close frame goes after what is queued: every queued buffer is a
     * whole frame or the rest of one, so it lands on a frame boundary. */
    if (conn_send_bytes(c, frame, n) != 0)
        return;
    conn_end_after_flush(c);
}

static void ws_session_release(struct conn *c)
{
    if (c->flags & CONN_F_DEFLATE)
        ws_deflate_conn(-1);                  /* once: release runs once per connection */
    ws_session_leave_open(c);
}

static void ws_session_stop(struct conn *c)
{
    if (c->state == CONN_WS_OPEN)
        ws_session_close(c, WS_CLOSE_GOING_AWAY, "server shutting down");
}

static void ws_session_sweep(struct conn *c, uint32_t idle)
{
    const config *cfg = &g_node.cfg;
    if (c->state == CONN_WS_CLOSING) {
        if (idle > WS_CLOSE_GRACE)
            conn_close(c);
    } else if (idle > (uint32_t)cfg->connectionTimeout) {
        ws_session_close(c, WS_CLOSE_GOING_AWAY, "heartbeat timeout");
    } else if (cfg->pingInterval > 0 && idle >= (uint32_t)cfg->pingInterval) {
        (void)ws_session_send(c, WS_OP_PING, NULL, 0);
    }
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
        ws_session_close(c, WS_CLOSE_POLICY, "message rate limit exceeded");
        return 1;
    }
    if (c->flags & CONN_F_ECHO)
        (void)ws_session_send(c, opcode, data, len);
    else if (opcode == WS_OP_TEXT)
        ws_app->on_text(c, (const char *)data, len);
    else
        ws_app->on_binary(c);
    return c->state != CONN_WS_OPEN;          /* closing: the reader is freed, stop */
}

static int ws_session_on_ping(void *ud, const uint8_t *data, size_t len)
{
    struct conn *c = ud;
    if (c->state == CONN_WS_OPEN) {
        ws_session_touch(c);
        (void)ws_session_send(c, WS_OP_PONG, data, len);
    }
    return c->state != CONN_WS_OPEN;          /* closing: the reader is freed, stop */
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
        ws_session_close(c, code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : code, "");
    } else if (c->state == CONN_WS_CLOSING) {
        /* The answer to our close: done once our bytes are out. */
        if (!conn_queued(c))
            conn_close(c);
    }
    return 1;
}
