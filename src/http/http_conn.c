/* http_conn.c — HTTP/1.1 requests on a connection (see http_conn.h), and
 * the HTTP layer's connection policy: one request answered at a time,
 * reading stopped while an answer is pending or while unsent answers pass
 * HTTP_OUT_HIGH (resumed when they are written), everything read answered
 * before a half-closed connection is closed, idle and handshake timeouts. */
#include "http/http_conn.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/node.h"
#include "http/api.h"
#include "im/auth.h"
#include "net/conn.h"
#include "net/worker.h"
#include "ws/handshake.h"
#include "ws/pmd.h"
#include "ws/session.h"

/* Unsent answer bytes over which a client is not read until they drain. */
#define HTTP_OUT_HIGH (256 * 1024)

static const char *const http_hdr_names[HTTP_H_COUNT] = {
    "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
    "origin", "content-type", "authorization", "sec-websocket-extensions",
};

const char *http_status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* ---------- limits ---------- */

/* app.maxHeaderBytes / app.maxBodyBytes, with the defaults when the node's
 * configuration is not loaded (fuzzing, tests). */
static size_t http_max_header(void)
{
    return g_node.cfg.maxHeaderBytes ? g_node.cfg.maxHeaderBytes : HTTP_MAX_HEADER_BYTES;
}

static size_t http_max_body(void)
{
    return g_node.cfg.maxBodyBytes ? g_node.cfg.maxBodyBytes : HTTP_MAX_BODY;
}

/* ---------- request state ---------- */

static http_req *http_req_of(struct conn *c) { return c->tcp.data; }
http_req *http_conn_req(struct conn *c) { return http_req_of(c); }

static void http_req_reset(http_req *r)
{
    free(r->url);
    r->url = NULL;
    r->url_len = 0;
    for (int i = 0; i < HTTP_H_COUNT; i++) {
        free(r->hv[i]);
        r->hv[i] = NULL;
        r->hv_len[i] = 0;
    }
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    r->field_len = 0;
    r->cur = -1;
    r->in_value = 0;
    r->header_bytes = 0;
    r->complete = 0;
    r->too_big = 0;
}

static void http_conn_release(struct conn *c);
static void http_conn_eof(struct conn *c);
static void http_conn_sweep(struct conn *c, uint32_t idle);
static void http_conn_drained(struct conn *c);
static void http_conn_stop(struct conn *c);

static const conn_handler http_conn_handler = {
    .feed = http_conn_feed,
    .eof = http_conn_eof,
    .release = http_conn_release,
    .sweep = http_conn_sweep,
    .drained = http_conn_drained,
    .stop = http_conn_stop,
};

void http_conn_init(void) { conn_set_handler(CONN_LAYER_HTTP, &http_conn_handler); }

void http_conn_free(struct conn *c)
{
    http_req *r = http_req_of(c);
    if (!r)
        return;
    http_req_reset(r);
    free(r->pending);
    r->pending = NULL;
    free(r);
    c->tcp.data = NULL;
}

/* Appends n bytes to a growing heap string (NUL-terminated). */
static int http_append(char **s, size_t *len, const char *p, size_t n)
{
    char *ns = realloc(*s, *len + n + 1);
    if (!ns)
        return -1;
    memcpy(ns + *len, p, n);
    *len += n;
    ns[*len] = '\0';
    *s = ns;
    return 0;
}

static int http_on_url(http_parser *p, const char *at, size_t n)
{
    http_req *r = p->data;
    if (r->url_len + n > http_max_header()) {
        r->too_big = 414;
        return -1;
    }
    return http_append(&r->url, &r->url_len, at, n);
}

static int http_header_bytes(http_req *r, size_t n)
{
    r->header_bytes += n;
    if (r->header_bytes > http_max_header()) {
        r->too_big = 431;
        return -1;
    }
    return 0;
}

/* RFC 7230 token characters; the lenient parser lets spaces through. */
static int http_is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int http_on_field(http_parser *p, const char *at, size_t n)
{
    http_req *r = p->data;
    if (http_header_bytes(r, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!http_is_tchar((unsigned char)at[i])) {
            r->too_big = 400;              /* "X-A : b": a bad header name */
            return -1;
        }
    }
    if (r->in_value) {
        r->in_value = 0;
        r->field_len = 0;
    }
    size_t room = sizeof(r->field) - 1 - r->field_len;
    size_t k = n < room ? n : room;
    memcpy(r->field + r->field_len, at, k);
    r->field_len += k;
    r->field[r->field_len] = '\0';
    return 0;
}

static int http_on_value(http_parser *p, const char *at, size_t n)
{
    http_req *r = p->data;
    if (http_header_bytes(r, n) != 0)
        return -1;
    if (!r->in_value) {
        r->in_value = 1;
        r->cur = -1;
        for (int i = 0; i < HTTP_H_COUNT; i++)
            if (strcasecmp(r->field, http_hdr_names[i]) == 0)
                r->cur = i;
        if (r->cur >= 0 && r->hv[r->cur]) /* a repeated header: join as a list */
            if (http_append(&r->hv[r->cur], &r->hv_len[r->cur], ",", 1) != 0)
                return -1;
    }
    if (r->cur < 0)
        return 0;
    return http_append(&r->hv[r->cur], &r->hv_len[r->cur], at, n);
}

static int http_on_body(http_parser *p, const char *at, size_t n)
{
    http_req *r = p->data;
    if (r->body_len + n > http_max_body()) {
        r->too_big = 413;
        return -1;
    }
    return http_append(&r->body, &r->body_len, at, n);
}

static int http_on_headers_complete(http_parser *p)
{
    http_req *r = p->data;
    /* The system http-parser is the lenient build: it would accept any two
     * bytes after chunk data. Bodies must come with Content-Length. */
    if (p->flags & F_CHUNKED) {
        r->too_big = 411;
        return -1;
    }
    if (p->content_length != ULLONG_MAX && p->content_length > http_max_body()) {
        r->too_big = 413;
        return -1;
    }
    return 0;
}

static int http_on_message_complete(http_parser *p)
{
    http_req *r = p->data;
    r->complete = 1;
    r->keep_alive = http_should_keep_alive(p);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings http_settings = {
    .on_url = http_on_url,
    .on_header_field = http_on_field,
    .on_header_value = http_on_value,
    .on_headers_complete = http_on_headers_complete,
    .on_body = http_on_body,
    .on_message_complete = http_on_message_complete,
};

static http_req *http_req_get(struct conn *c)
{
    http_req *r = http_req_of(c);
    if (r)
        return r;
    r = mem_zalloc(sizeof(*r));
    if (!r)
        return NULL;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->c = c;
    r->cur = -1;
    c->tcp.data = r;
    return r;
}

/* ---------- answers ---------- */

static void http_send(struct conn *c, int status, const char *ctype, const char *extra,
                      const char *body, size_t len, int keep_alive)
{
    char head[768], clen[48] = "";
    if (status != 204)                        /* a 204 carries no Content-Length */
        snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", len);
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\n"
                      "Server: imgate/" IMGATE_VERSION "\r\n"
                      "Content-Type: %s\r\n"
                      "%s"
                      "Connection: %s\r\n"
                      "Access-Control-Allow-Origin: *\r\n"
                      "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                      "Access-Control-Allow-Headers: Content-Type, Authorization, X-Requested-With\r\n"
                      "%s\r\n",
                      status, http_status_text(status), ctype, clen,
                      keep_alive ? "keep-alive" : "close", extra ? extra : "");
    if (hl < 0 || (size_t)hl >= sizeof(head)) {     /* extra headers too long: a bug */
        log_error("http: response header does not fit");
        conn_close(c);
        return;
    }
    sbuf *b = sbuf_new((size_t)hl + len);
    if (!b) {
        conn_close(c);
        return;
    }
    memcpy(b->data, head, (size_t)hl);
    if (len)
        memcpy(b->data + hl, body, len);
    (void)conn_send_shared(c, b);
    sbuf_unref(b);
}

/* No more requests on c: free the request state, send what is queued, then
 * FIN; input is read and dropped until the peer closes. */
static void http_conn_finish(struct conn *c)
{
    http_conn_free(c);
    c->flags |= CONN_F_DISCARD;
    conn_end_after_flush(c);
    if (c->state != CONN_CLOSED && !(c->flags & CONN_F_EOF))
        conn_resume(c);
}

void http_conn_reject(struct conn *c, int status, const char *reason)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_text(status), reason);
    const char *extra = status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL;
    http_send(c, status, "text/plain; charset=utf-8", extra, body, (size_t)n, 0);
    if (c->state == CONN_HTTP)
        http_conn_finish(c);
}

static void http_log(struct conn *c, http_req *r, int status, size_t len)
{
    char peer[64];
    if (!log_requests_on())                   /* no getpeername(2) per request for nothing */
        return;
    conn_peer(c, peer, sizeof(peer));
    uint64_t ms = uv_now(c->tcp.loop) - r->started_ms;
    log_request("%s %s %.*s %d %zu %llums", peer, http_method_str(r->parser.method),
                (int)(r->url_len > 200 ? 200 : r->url_len), r->url ? r->url : "",
                status, len, (unsigned long long)ms);
}

static void http_conn_resume(struct conn *c, http_req *r);

void http_conn_respond(struct conn *c, int status, const char *ctype,
                       const char *body, size_t len)
{
    http_conn_respond_ex(c, status, ctype, NULL, body, len);
}

void http_conn_respond_ex(struct conn *c, int status, const char *ctype,
                          const char *extra_headers, const char *body, size_t len)
{
    http_req *r = http_req_of(c);
    int was_busy = c->flags & CONN_F_BUSY;
    if (was_busy && conn_unhold(c))
        return;                               /* the client left meanwhile: c is gone */
    if (c->state != CONN_HTTP || !r)
        return;
    http_log(c, r, status, len);
    int keep_alive = r->keep_alive && !conn_worker(c)->stopping;   /* shutting down: close */
    http_send(c, status, ctype, extra_headers, body, len, keep_alive);
    /* A failed write (peer reset) closes c and frees r right there. */
    if (c->state != CONN_HTTP || http_req_of(c) != r)
        return;
    if (!keep_alive) {
        http_conn_finish(c);
        return;
    }
    http_req_reset(r);
    c->last_active = worker_now(conn_worker(c));   /* keep-alive idle starts now */
    if (was_busy)
        http_conn_resume(c, r);
}

void http_conn_defer(struct conn *c) { conn_hold(c); }

/* ---------- upgrade ---------- */

/* permessage-deflate (app.perMessageDeflate): whether the client's offers
 * hold one to accept; *answer gets the Sec-WebSocket-Extensions value. */
static int http_upgrade_deflate(const http_req *r, char *answer, size_t cap)
{
    const char *offers = r->hv[HTTP_H_WS_EXTENSIONS], *why = NULL;
    if (!g_node.cfg.perMessageDeflate || !offers)
        return 0;
    int rc = ws_pmd_negotiate(offers, answer, cap, &why);
    if (rc != WS_PMD_ACCEPTED)
        log_debug("ws: permessage-deflate %s: %s", rc == WS_PMD_MALFORMED ? "header malformed"
                                                                          : "declined", why);
    return rc == WS_PMD_ACCEPTED;
}

static void http_upgrade(struct conn *c, http_req *r, uint8_t *rest, size_t n)
{
    const config *cfg = &g_node.cfg;
    struct http_parser_url u;
    http_parser_url_init(&u);
    const char *path = r->url ? r->url : "/";
    size_t plen = r->url_len;
    if (r->url && http_parser_parse_url(r->url, r->url_len, 0, &u) == 0 &&
        (u.field_set & (1 << UF_PATH))) {
        path = r->url + u.field_data[UF_PATH].off;
        plen = u.field_data[UF_PATH].len;
    }
    int echo = cfg->echoPath[0] && plen == strlen(cfg->echoPath) &&
               memcmp(path, cfg->echoPath, plen) == 0;
    if (!echo && !(plen == 4 && memcmp(path, "/acc", 4) == 0)) {
        http_log(c, r, 404, 0);
        http_conn_reject(c, 404, "no WebSocket endpoint at this path (use /acc)");
        return;
    }
    ws_upgrade_req req = {
        .method = http_method_str(r->parser.method),
        .http_major = r->parser.http_major,
        .http_minor = r->parser.http_minor,
        .host = r->hv[HTTP_H_HOST],
        .upgrade = r->hv[HTTP_H_UPGRADE],
        .connection = r->hv[HTTP_H_CONNECTION],
        .key = r->hv[HTTP_H_WS_KEY],
        .version = r->hv[HTTP_H_WS_VERSION],
    };
    const char *reason = "bad request";
    int status = ws_handshake_validate(&req, &reason);
    if (status == 0 && !auth_origin_allowed(r->hv[HTTP_H_ORIGIN], cfg->allowedOrigins)) {
        status = 403;
        reason = "origin not allowed";
    }
    if (status != 0) {
        http_log(c, r, status, 0);
        http_conn_reject(c, status, reason);
        return;
    }
    char resp[256 + WS_PMD_ANSWER_MAX], ext[WS_PMD_ANSWER_MAX];
    int deflate = http_upgrade_deflate(r, ext, sizeof(ext));
    size_t rl = ws_handshake_response_ext(resp, sizeof(resp), req.key, deflate ? ext : NULL);
    http_log(c, r, 101, 0);
    http_conn_free(c);
    if (rl == 0 || conn_send_bytes(c, resp, rl) != 0)
        return;
    ws_session_start(c, (echo ? WS_SESSION_ECHO : 0) | (deflate ? WS_SESSION_DEFLATE : 0), rest, n);
}

/* ---------- parsing ---------- */

static void http_parse_error(struct conn *c, http_req *r)
{
    int status = r->too_big ? r->too_big : 400;
    const char *why = r->too_big == 400 ? "invalid character in a header name"
                    : r->too_big == 411 ? "chunked request bodies are not accepted: send Content-Length"
                    : r->too_big == 413 ? "request body too large"
                    : r->too_big == 414 ? "request URL too long"
                    : r->too_big == 431 ? "request headers too large"
                    : http_errno_description(HTTP_PARSER_ERRNO(&r->parser));
    log_debug("http: %d %s", status, why);
    http_conn_reject(c, status, why);
}

/* Keeps the n unparsed bytes at p for later (they may point into
 * r->pending itself) and stops reading c until they are parsed. */
static void http_conn_keep(struct conn *c, http_req *r, const uint8_t *p, size_t n)
{
    uint8_t *np = n ? malloc(n) : NULL;
    if (n && !np) {
        conn_close(c);
        return;
    }
    if (n)
        memcpy(np, p, n);
    free(r->pending);
    r->pending = np;
    r->pending_len = n;
    conn_pause(c);
}

/* Must the next request wait (an answer pending, or too much unsent)? */
static int http_conn_must_wait(const struct conn *c)
{
    return (c->flags & CONN_F_BUSY) || conn_queued(c) > HTTP_OUT_HIGH;
}

/* The peer finished sending and everything it sent is answered: end. */
static void http_conn_end_if_done(struct conn *c)
{
    http_req *r = http_req_of(c);
    if (c->state != CONN_HTTP || !(c->flags & CONN_F_EOF) || (c->flags & CONN_F_BUSY))
        return;
    if (r && r->pending_len && !(c->flags & CONN_F_DISCARD))
        return;                               /* still to be parsed */
    http_conn_finish(c);
}

static void http_conn_run(struct conn *c, http_req *r, uint8_t *p, size_t n)
{
    while (n > 0 && c->state == CONN_HTTP && !(c->flags & CONN_F_DISCARD)) {
        if (http_conn_must_wait(c)) {
            http_conn_keep(c, r, p, n);
            return;
        }
        if (!r->url && r->header_bytes == 0)
            r->started_ms = uv_now(c->tcp.loop);
        size_t used = http_parser_execute(&r->parser, &http_settings, (const char *)p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            http_parse_error(c, r);
            return;
        }
        p += used;
        n -= used;
        if (!r->complete)
            continue;
        http_parser_pause(&r->parser, 0);
        if (c->kind == CONN_KIND_WS) {
            http_upgrade(c, r, p, n);
            return;
        }
        r->complete = 0;
        api_handle(c, r);
        r = http_req_of(c);
        if (!r)
            return;
    }
    if (r && r->pending_len == 0 && c->state == CONN_HTTP && !http_conn_must_wait(c) &&
        !(c->flags & CONN_F_EOF))
        conn_resume(c);
}

/* An answer went out or the queue drained: parse what waited, read again. */
static void http_conn_resume(struct conn *c, http_req *r)
{
    if (http_conn_must_wait(c))
        return;
    uint8_t *p = r->pending;
    size_t n = r->pending_len;
    r->pending = NULL;
    r->pending_len = 0;
    http_conn_run(c, r, p, n);
    free(p);
    if (c->state == CONN_HTTP)
        http_conn_end_if_done(c);
}

void http_conn_feed(struct conn *c, uint8_t *p, size_t n)
{
    http_req *r = http_req_get(c);
    if (!r) {
        conn_close(c);
        return;
    }
    if (r->pending_len || http_conn_must_wait(c)) {
        /* Reading is paused; only the rest of one TLS read still comes. */
        if (r->pending_len + n > http_max_body() + http_max_header()) {
            conn_close(c);
            return;
        }
        uint8_t *np = realloc(r->pending, r->pending_len + n);
        if (!np) {
            conn_close(c);
            return;
        }
        memcpy(np + r->pending_len, p, n);
        r->pending = np;
        r->pending_len += n;
        conn_pause(c);
        return;
    }
    http_conn_run(c, r, p, n);
}

/* ---------- the connection's life as the HTTP layer sees it ---------- */

static void http_conn_release(struct conn *c) { http_conn_free(c); }

static void http_conn_eof(struct conn *c)
{
    if (c->flags & (CONN_F_CLOSE_AFTER_FLUSH | CONN_F_SHUTDOWN)) {
        if (!conn_queued(c))
            conn_close(c);                    /* our side was done already */
        return;
    }
    http_conn_end_if_done(c);                 /* else when the last answer is out */
}

static void http_conn_drained(struct conn *c)
{
    http_req *r = http_req_of(c);
    if (c->state != CONN_HTTP || (c->flags & CONN_F_BUSY))
        return;
    if (r && r->pending_len)
        http_conn_resume(c, r);
    else if (!(c->flags & CONN_F_EOF))
        conn_resume(c);
}

static void http_conn_sweep(struct conn *c, uint32_t idle)
{
    const config *cfg = &g_node.cfg;
    if (c->flags & CONN_F_BUSY)
        return;
    if (c->kind == CONN_KIND_WS && idle > (uint32_t)cfg->handshakeTimeout) {
        atomic_fetch_add_explicit(&conn_worker(c)->stats.handshake_timeouts, 1, memory_order_relaxed);
        conn_close(c);
    } else if (c->kind == CONN_KIND_HTTP && idle > (uint32_t)cfg->httpIdleTimeout) {
        conn_close(c);
    }
}

static void http_conn_stop(struct conn *c)
{
    if (!(c->flags & CONN_F_BUSY))
        conn_close(c);                        /* a pending answer still goes out */
}

/* ---------- connection-free check (fuzzing, tests) ---------- */

int http_request_check(const uint8_t *p, size_t n)
{
    http_req *r = calloc(1, sizeof(*r));
    if (!r)
        return 500;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->cur = -1;
    size_t used = http_parser_execute(&r->parser, &http_settings, (const char *)p, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    int status = r->too_big ? r->too_big
               : (e != HPE_OK && e != HPE_PAUSED) ? 400
               : r->complete ? 0 : 1;
    (void)used;
    http_req_reset(r);
    free(r->pending);
    free(r);
    return status;
}
