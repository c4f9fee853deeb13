/* conn.h — one TCP connection (HTTP API client or WebSocket client) owned by
 * one worker: its life-cycle, its reads (into the worker's shared buffer)
 * and its outbound queue.
 *
 * Memory: an idle logged-in WebSocket connection is this struct only
 * (uv_tcp_t + 48 bytes). The inbound state (tcp.data: ws_reader or
 * http_req) and the outbound queue exist only while they hold bytes. With
 * TLS on, connections are the larger struct tls_conn (net/tls.c) that begins
 * with this one and are flagged CONN_F_TLS; plain ones do not grow. */
#ifndef IMGATE_CONN_H
#define IMGATE_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/sbuf.h"

struct pres_entry;
struct conn_out;
struct worker;

enum conn_kind { CONN_KIND_HTTP = 1, CONN_KIND_WS = 2 };

enum conn_state {
    CONN_HTTP = 0,       /* reading HTTP requests (API, or the upgrade request) */
    CONN_WS_OPEN,        /* WebSocket open */
    CONN_WS_CLOSING,     /* close frame sent or being sent; waiting to drop */
    CONN_CLOSED          /* uv_close called */
};

enum conn_flags {
    CONN_F_ECHO = 1 << 0,          /* upgraded on app.echoPath */
    CONN_F_CLOSE_AFTER_FLUSH = 1 << 1,
    CONN_F_SHUTDOWN = 1 << 2,      /* FIN sent */
    CONN_F_DISCARD = 1 << 3,       /* ignore further input */
    CONN_F_BUSY = 1 << 4,          /* an HTTP request is being answered */
    CONN_F_FREE_LATER = 1 << 5,    /* closed while busy: free when done */
    CONN_F_TLS = 1 << 6,           /* a tls_conn (net/tls.h): bytes on the wire are TLS */
};

typedef struct conn {
    uv_tcp_t tcp;                   /* first member: (conn *) == (uv_tcp_t *);
                                       tcp.data holds the inbound state */
    struct pres_entry *pres;        /* the logged-in user, NULL before login */
    struct conn *unext;             /* next in the worker's user hash chain */
    struct conn *rprev, *rnext;     /* the worker's room list */
    struct conn_out *out;           /* outbound queue, NULL while empty */
    uint32_t last_active;           /* worker_now() of the last frame/request */
    uint32_t kind : 2;              /* enum conn_kind */
    uint32_t state : 3;             /* enum conn_state */
    uint32_t room : 7;              /* room index (position in app.appIDs) */
    uint32_t flags : 8;             /* enum conn_flags */
    uint32_t msgs : 12;             /* messages received in the current second */
} conn;

#define CONN_MAX_RATE 4000          /* msgs counts up to this (12 bits) */

/* Starts listening on w's listeners; accepted connections begin reading. */
int conn_listen(struct worker *w);

/* The worker owning c. */
static inline struct worker *conn_worker(const conn *c) { return (struct worker *)c->tcp.loop->data; }

/* Sends b (whole) on c. Tries a direct write first: an idle socket takes a
 * small frame without any allocation. Bytes that do not fit are queued with
 * a reference to b. Over app.maxOutboundBytes the connection is closed with
 * 1008. Returns 0, or -1 if c is closed or closing. */
int conn_send_shared(conn *c, sbuf *b);
/* The same for bytes the caller owns (copied only if they must be queued). */
int conn_send_bytes(conn *c, const void *p, size_t n);
/* Bytes waiting in c's queue. */
size_t conn_queued(const conn *c);

/* For net/tls.c. Plaintext of a read, to the layer c's state calls for
 * (HTTP before the upgrade, the WebSocket session after). */
void conn_feed(conn *c, uint8_t *p, size_t n);
/* Sends bytes as they are, bypassing TLS (ciphertext), with the queue logic
 * of conn_send_bytes; also while closing. Returns 0 or -1 (c closed). */
int conn_send_wire(conn *c, const void *p, size_t n);

/* Closes the TCP connection now (no close frame): unbinds the user. */
void conn_close(conn *c);
/* Sends a close frame (for a WebSocket), then FIN once it is written, then
 * drops the connection when the peer closes or after a grace period. */
void conn_close_ws(conn *c, uint16_t code, const char *reason);
/* After the queue drains: shut down writing (FIN) and drop on EOF. */
void conn_end_after_flush(conn *c);

/* Called by the sweep for each connection of the worker. */
void conn_sweep_one(conn *c, uint32_t now);

/* Peer address "ip:port" into out. */
void conn_peer(const conn *c, char *out, size_t len);

/* Is this handle a client connection (as opposed to a listener/timer)? */
int conn_is_conn(const uv_handle_t *h);

/* Bytes in /system/state: queue memory of this process. */
#endif
