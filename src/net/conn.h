/* conn.h — one TCP connection owned by one worker: its life-cycle, its reads
 * (into the worker's shared buffer), its outbound queue and back-pressure.
 *
 * Transport only: what the bytes mean is decided by the protocol layer that
 * owns the connection's current state (http/ before the upgrade, ws/ after),
 * through the conn_handler it registered. Output here has no policy: the
 * layers decide what to send and when a client is too slow (ws/session.c
 * closes slow consumers on a frame boundary; http/http_conn.c stops reading
 * a client whose answers pile up). A connection is freed in one place
 * (conn_free, from the close callback or from the last hold's release).
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

#include "core/config.h"
#include "core/sbuf.h"

struct pres_entry;
struct conn_out;
struct worker;

enum conn_kind { CONN_KIND_HTTP = 1, CONN_KIND_WS = 2 };

#define CONN_MSGS_BITS 11           /* width of conn.msgs */

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
    CONN_F_BUSY = 1 << 4,          /* held (conn_hold): an answer is on its way back */
    CONN_F_FREE_LATER = 1 << 5,    /* closed while held: freed by conn_unhold */
    CONN_F_TLS = 1 << 6,           /* a tls_conn (net/tls.h): bytes on the wire are TLS */
    CONN_F_PAUSED = 1 << 7,        /* reading stopped (conn_pause) */
    CONN_F_EOF = 1 << 8,           /* the peer sent FIN */
    CONN_F_DEFLATE = 1 << 9,       /* permessage-deflate negotiated (ws/deflate.h) */
    CONN_F_BATCHED = 1 << 10,      /* has frames in its worker's conn_batch */
};

typedef struct conn {
    uv_tcp_t tcp;                   /* first member: (conn *) == (uv_tcp_t *);
                                       tcp.data holds the inbound state */
    struct pres_entry *pres;        /* the logged-in user, NULL before login */
    struct conn *unext;             /* next in the worker's user hash chain */
    struct conn *rprev, *rnext;     /* its room on this worker, in walk order (im/fanout.h) */
    struct conn_out *out;           /* outbound queue, NULL while empty */
    uint32_t last_active;           /* worker_now() of the last frame/request */
    uint32_t kind : 2;              /* enum conn_kind */
    uint32_t state : 2;             /* enum conn_state */
    uint32_t room : 6;              /* room index (position in app.appIDs, < 64) */
    uint32_t flags : 11;            /* enum conn_flags */
    uint32_t msgs : CONN_MSGS_BITS; /* messages received in the current second */
} conn;

/* msgs counts up to app.maxMessagesPerSecond + 1, so the key's maximum
 * (CONFIG_MAX_RATE, core/config.h) must fit its bits. */
#define CONN_MAX_RATE CONFIG_MAX_RATE
_Static_assert(CONN_MAX_RATE + 1 < (1 << CONN_MSGS_BITS), "app.maxMessagesPerSecond outgrew conn.msgs");

/* Coalescing: what is sent to an open WebSocket connection with an empty
 * queue during one loop turn is held here (a reference to the shared frame,
 * or a copy of small bytes in the arena; nothing per connection) and
 * written at the end of the turn (uv_check; uv_prepare catches what a
 * close callback sent after it) with one write of all the connection's
 * frames, at most CONN_BATCH_IOV of them: the rest is queued as before.
 * Where the kernel offers io_uring (and app.ioUring is on) the writes of
 * all those connections go to the kernel in one system call (net/uring.h),
 * else one uv_try_write each. A lone message is written at the end of the same turn, with no
 * timer. A full batch is written at once. One per worker (net/worker.h). */
#define CONN_BATCH_MAX 1024             /* frames held per worker */
#define CONN_BATCH_BYTES (256 * 1024)   /* bytes held per worker */
#define CONN_BATCH_ARENA (16 * 1024)    /* copies of small unshared sends */
#define CONN_BATCH_IOV 64               /* buffers per connection per write */

typedef struct conn_batch_item {
    struct conn *c;
    sbuf *b;                 /* the shared frame, or NULL: bytes in the arena */
    uint32_t off, len;       /* arena offset (b == NULL); the length */
    uint32_t seq;            /* order of arrival (stable grouping) */
    int32_t res;             /* first item of a run written ahead through the
                              * worker's ring: the write's result (bytes or
                              * -errno); CONN_BATCH_UNSENT otherwise */
} conn_batch_item;

#define CONN_BATCH_UNSENT INT32_MIN              /* = URING_NOT_TAKEN (net/uring.h) */
#define CONN_BATCH_UNKNOWN (INT32_MIN + 1)   /* queued in a ring that failed */
#define CONN_BATCH_RING 256             /* sends per io_uring_enter (net/uring.h) */

/* The worker's plain (not TLS) connections come from blocks of
 * CONN_POOL_BLOCK structs (net/conn.c, conn_new). */
#define CONN_POOL_BLOCK 64
typedef struct conn_pool {
    struct conn *free;       /* freed connections, linked through their handle's data field */
    struct conn_block *blocks;
} conn_pool;

typedef struct conn_batch {
    uv_check_t check;
    uv_prepare_t prepare;
    uint32_t n, arena_used;
    size_t bytes;
    int dups;                /* a connection's items are not all adjacent: sort first */
    int flushing;            /* being written: sends go straight to the socket */
    struct uring *ring;      /* NULL: one uv_try_write per connection */
    conn_batch_item items[CONN_BATCH_MAX];
    uint8_t arena[CONN_BATCH_ARENA];
} conn_batch;

/* The layer that owns a connection in a given state registers these
 * (http/ for CONN_HTTP, ws/ for CONN_WS_OPEN and CONN_WS_CLOSING). */
enum conn_layer { CONN_LAYER_HTTP, CONN_LAYER_WS, CONN_LAYER_COUNT };

typedef struct conn_handler {
    /* Plaintext bytes read (the worker's shared buffer: copy what you keep). */
    void (*feed)(conn *c, uint8_t *p, size_t n);
    /* The peer finished sending (FIN). NULL: close at once. */
    void (*eof)(conn *c);
    /* c is being closed: free the inbound state in c->tcp.data. */
    void (*release)(conn *c);
    /* Once per sweep; idle = seconds since c->last_active. */
    void (*sweep)(conn *c, uint32_t idle);
    /* The outbound queue was written out. May be NULL. */
    void (*drained)(conn *c);
    /* Node shutdown: end c politely (close frame, or close when not held). */
    void (*stop)(conn *c);
} conn_handler;

/* Registers the handler of a layer (at start-up, before any worker runs). */
void conn_set_handler(enum conn_layer layer, const conn_handler *h);

/* Starts listening on w's listeners (and w's end-of-turn batch writes);
 * accepted connections begin reading. */
int conn_listen(struct worker *w);

/* Gives up w's batch resources (its ring), after its loop has ended. */
void conn_batch_end(struct worker *w);
/* Gives the worker's connection blocks back (its loop has ended and every
 * connection of it is freed). */
void conn_pool_end(struct worker *w);

/* The worker owning c. */
static inline struct worker *conn_worker(const conn *c) { return (struct worker *)c->tcp.loop->data; }

/* Sends b (whole, in order after what is queued). To an open WebSocket
 * connection with an empty queue, b is held in the worker's batch until the
 * end of the loop turn and written with the connection's other frames of
 * that turn (see conn_batch); otherwise a direct write first: an idle
 * socket takes a small frame without any allocation. Bytes that do not fit
 * are queued with a reference to b. No cap here: the caller's layer
 * decides. Returns 0, or -1 if c is closed (or was closed because the
 * socket failed). */
int conn_send_shared(conn *c, sbuf *b);
/* The same for bytes the caller owns (copied only if they must be queued,
 * or held in the batch's arena). */
int conn_send_bytes(conn *c, const void *p, size_t n);
/* Bytes waiting in c's queue. */
size_t conn_queued(const conn *c);
/* Drops the queued buffers not one byte of which is on the wire yet (whole
 * messages never started); a buffer being written stays. Returns the bytes
 * dropped. For a layer closing a slow client on a message boundary. */
size_t conn_drop_unstarted(conn *c);
/* Bytes queued by the connections of the WebSocket port, node-wide. */
long conn_ws_queued_total(void);

/* Stops reading c (back-pressure) / starts again. Idempotent. */
void conn_pause(conn *c);
void conn_resume(conn *c);

/* Keeps c's memory alive across an asynchronous answer (one at a time): if
 * c closes meanwhile it is freed by conn_unhold instead. conn_unhold returns
 * 1 if c was closed (and is now freed: do not touch it), else 0. */
void conn_hold(conn *c);
int conn_unhold(conn *c);

/* For net/tls.c. Plaintext of a read, to the layer that owns c's state. */
void conn_feed(conn *c, uint8_t *p, size_t n);
/* Sends bytes as they are, bypassing TLS (ciphertext), with the queue logic
 * of conn_send_bytes; also while closing. Returns 0 or -1 (c closed). */
int conn_send_wire(conn *c, const void *p, size_t n);

/* Closes the TCP connection now (no close frame): the owning layer releases
 * its state, the queue is dropped. */
void conn_close(conn *c);
/* After the queue drains: shut down writing (FIN) and drop on EOF. */
void conn_end_after_flush(conn *c);
/* Node shutdown: asks the owning layer to end c (conn_handler.stop). */
void conn_stop(conn *c);
/* Called by the sweep for each connection of the worker. */
void conn_sweep_one(conn *c, uint32_t now);

/* Peer address "ip:port" into out. */
void conn_peer(const conn *c, char *out, size_t len);

/* Is this handle a client connection (as opposed to a listener/timer)? */
int conn_is_conn(const uv_handle_t *h);

#endif
