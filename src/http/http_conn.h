/* http_conn.h — HTTP/1.1 on a connection, before any upgrade: request
 * parsing (http-parser) with size limits, keep-alive, answers with CORS
 * headers, and the hand-off of an upgrade request on the WebSocket port.
 * The request state lives in conn.tcp.data while the connection speaks
 * HTTP; it is freed at upgrade or close. */
#ifndef IMGATE_HTTP_CONN_H
#define IMGATE_HTTP_CONN_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

#define HTTP_MAX_HEADER_BYTES (16 * 1024)   /* defaults of app.maxHeaderBytes */
#define HTTP_MAX_BODY (1024 * 1024)          /* and app.maxBodyBytes */

enum http_hdr {
    HTTP_H_HOST, HTTP_H_UPGRADE, HTTP_H_CONNECTION, HTTP_H_WS_KEY, HTTP_H_WS_VERSION,
    HTTP_H_ORIGIN, HTTP_H_CONTENT_TYPE, HTTP_H_AUTHORIZATION, HTTP_H_WS_EXTENSIONS, HTTP_H_COUNT
};

typedef struct http_req {
    http_parser parser;
    struct conn *c;
    char *url;
    size_t url_len;
    char *hv[HTTP_H_COUNT];        /* captured header values, NUL-terminated */
    size_t hv_len[HTTP_H_COUNT];
    char field[40];                /* header name being read (truncated) */
    size_t field_len;
    int cur;                       /* captured header being read, or -1 */
    int in_value;
    size_t header_bytes;
    char *body;
    size_t body_len, body_cap;
    int complete;
    int keep_alive;
    int too_big;                   /* 413/414/431 to answer */
    uint8_t *pending;              /* bytes received while an answer was pending */
    size_t pending_len;
    uint64_t started_ms;           /* for the request log */
} http_req;

/* Registers the HTTP layer with net/ (start-up). */
void http_conn_init(void);
/* Parses bytes received on c (state CONN_HTTP). */
void http_conn_feed(struct conn *c, uint8_t *p, size_t n);
/* Frees the request state of c, if any. */
void http_conn_free(struct conn *c);
/* Answers status with a short reason and closes (used before reading). */
void http_conn_reject(struct conn *c, int status, const char *reason);

/* Marks the current request as answered later (see http_conn_finish). */
void http_conn_defer(struct conn *c);
/* Sends the answer of the current request; resumes reading on keep-alive.
 * Works for deferred answers too, even if the client went away meanwhile. */
void http_conn_respond(struct conn *c, int status, const char *ctype,
                       const char *body, size_t len);
/* The same with extra header lines, each ending in "\r\n" (NULL = none). */
void http_conn_respond_ex(struct conn *c, int status, const char *ctype,
                          const char *extra_headers, const char *body, size_t len);
/* The request being answered on c. */
http_req *http_conn_req(struct conn *c);

const char *http_status_text(int status);

/* Runs the request parser and imgate's rules (sizes, header names, no
 * chunked bodies) over one buffer without a connection. Returns 0 for a
 * complete request, 1 for an incomplete one, else the HTTP error status.
 * For fuzzing and tests. */
int http_request_check(const uint8_t *p, size_t n);

#endif
