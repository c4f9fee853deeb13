/* conn.c — connection life-cycle: accept, reads into the worker's shared
 * buffer, the outbound queue (direct write first, queue only the rest),
 * back-pressure, closing and freeing. What the bytes mean, and every output
 * policy, belong to the layer registered for the connection's state
 * (conn_handler: http/ before the upgrade, ws/ after). A TLS connection
 * (CONN_F_TLS) differs in one branch per direction: reads go through
 * tls_on_read, sends through tls_send, which come back here with plaintext
 * (conn_feed) and ciphertext (conn_send_wire).
 *
 * Coalescing (conn_batch, conn.h): an open WebSocket connection with an
 * empty queue does not write at once; its frames of the loop turn are held
 * by the worker (shared buffers by reference, small unshared bytes copied
 * into the batch's arena) and written at the end of the turn with one
 * write per connection: all of the turn's connections in one io_uring_enter
 * when the worker has a ring (net/uring.h; conn_batch_ahead), else one
 * uv_try_write each. TLS connections keep the direct path: the records are
 * made per send by tls_send. */
#include "net/conn.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/node.h"
#include "net/tls.h"
#include "net/uring.h"
#include "net/worker.h"

/* Under AddressSanitizer every connection is calloc'ed and freed (no
 * pool): its quarantine and redzones catch a use after free or an
 * overflow that a reused pooled struct would hide. */
#if defined(__SANITIZE_ADDRESS__)
#define CONN_POOLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONN_POOLED 0
#endif
#endif
#ifndef CONN_POOLED
#define CONN_POOLED 1
#endif

#define CONN_WRITE_BATCH 64       /* buffers per uv_write */

/* A run the ring never took is written the usual way (conn_batch_run). */
_Static_assert(CONN_BATCH_UNSENT == URING_NOT_TAKEN, "an untaken write must read as unsent");

/* The memory budget: an idle logged-in connection is this struct only. */
_Static_assert(sizeof(conn) <= sizeof(uv_tcp_t) + 48, "struct conn grew past its budget");

struct out_item {
    sbuf *b;
    uint32_t off;
};

typedef struct conn_out {
    uv_write_t req;
    uv_shutdown_t sreq;
    struct out_item *items;       /* ring */
    uint32_t head, count, cap;
    uint32_t inflight;            /* items [head, head+inflight) are being written */
    size_t bytes;                 /* bytes not yet written */
    int writing;
} conn_out;


static void conn_on_closed(uv_handle_t *h);
static void conn_write_next(conn *c);
static void conn_shutdown(conn *c);
static void conn_batch_flush(conn_batch *q);
static void conn_batch_run(conn_batch *q, uint32_t i);

/* ---------- layers ---------- */

static const conn_handler *conn_handlers[CONN_LAYER_COUNT];

void conn_set_handler(enum conn_layer layer, const conn_handler *h) { conn_handlers[layer] = h; }

/* The layer that owns c now, or NULL once it is closed. */
static const conn_handler *conn_layer_of(const conn *c)
{
    switch (c->state) {
    case CONN_HTTP: return conn_handlers[CONN_LAYER_HTTP];
    case CONN_WS_OPEN:
    case CONN_WS_CLOSING: return conn_handlers[CONN_LAYER_WS];
    default: return NULL;
    }
}

/* The per-worker counter of queued bytes that c's port is accounted to. */
static atomic_long *conn_out_counter(const conn *c)
{
    worker *w = conn_worker(c);
    return c->kind == CONN_KIND_HTTP ? &w->stats.http_out_bytes : &w->stats.out_bytes;
}

/* ---------- accept and read ---------- */

int conn_is_conn(const uv_handle_t *h)
{
    const worker *w = h->loop->data;
    return h->type == UV_TCP && h != (const uv_handle_t *)&w->ws_listener &&
           h != (const uv_handle_t *)&w->http_listener;
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    worker *w = h->loop->data;
    *buf = uv_buf_init((char *)w->rbuf, sizeof(w->rbuf));
}

void conn_feed(conn *c, uint8_t *p, size_t n)
{
    const conn_handler *h = conn_layer_of(c);
    if (h)
        h->feed(c, p, n);
}

/* The peer sent FIN: its layer may still answer what it read. */
static void conn_on_eof(conn *c)
{
    const conn_handler *h = conn_layer_of(c);
    c->flags |= CONN_F_EOF;
    conn_pause(c);
    if (h && h->eof)
        h->eof(c);
    else
        conn_close(c);
}

static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = (conn *)s;
    if (n == 0)
        return;
    if (n == UV_EOF) {
        conn_on_eof(c);
        return;
    }
    if (n < 0) {
        conn_close(c);
        return;
    }
    /* last_active is not refreshed here: a byte-by-byte trickle must not
     * keep a connection alive. The HTTP layer refreshes it per answered
     * request, the WebSocket session per complete frame. */
    if (c->flags & CONN_F_DISCARD)
        return;
    if (c->flags & CONN_F_TLS)
        tls_on_read(c, (const uint8_t *)buf->base, (size_t)n);
    else
        conn_feed(c, (uint8_t *)buf->base, (size_t)n);
}

/* Each port has its own cap, so idle API clients cannot lock WebSocket
 * clients out (app.maxConnections) nor the reverse (app.maxHttpConnections). */
static int conn_over_limit(uint8_t kind)
{
    long cap = kind == CONN_KIND_HTTP ? g_node.cfg.maxHttpConnections : g_node.max_conns;
    if (cap <= 0)
        return 0;
    long total = 0;
    for (int i = 0; i < workers_count(); i++) {
        const worker_stats *s = &worker_at(i)->stats;
        total += atomic_load_explicit(kind == CONN_KIND_HTTP ? &s->http_conns : &s->ws_port_conns,
                                      memory_order_relaxed);
    }
    return total > cap;                      /* total includes the new one */
}

static void conn_count(conn *c, int delta)
{
    worker *w = conn_worker(c);
    atomic_fetch_add_explicit(&w->stats.conns, delta, memory_order_relaxed);
    atomic_fetch_add_explicit(c->kind == CONN_KIND_HTTP ? &w->stats.http_conns : &w->stats.ws_port_conns,
                              delta, memory_order_relaxed);
}

/* ---------- the worker's pool of connections ----------
 *
 * A plain connection's memory comes from its worker's pool: blocks of
 * CONN_POOL_BLOCK structs, one malloc each, kept until the worker ends; a
 * freed connection goes on the worker's free list. No allocation per
 * accept (that calloc was a quarter of a node's time in malloc during a
 * login storm: a block that is never freed soon always misses the thread
 * cache) and no allocator header per connection. The pool is touched only
 * by its worker's thread, or by workers_stop's drain once no loop runs. A
 * TLS connection (a larger tls_conn) is calloc'ed and freed as before, and
 * so is every connection of a sanitizer build (CONN_POOLED). */
struct conn_block {
    struct conn_block *next;
    conn c[CONN_POOL_BLOCK];
};

static void conn_pool_put(conn_pool *p, conn *c)
{
    c->tcp.data = p->free;                   /* the struct is dead: its handle's data links it */
    p->free = c;
}

static int conn_pool_grow(conn_pool *p)
{
    struct conn_block *b = malloc(sizeof(*b));
    if (!b)
        return -1;
    b->next = p->blocks;
    p->blocks = b;
    for (int i = CONN_POOL_BLOCK - 1; i >= 0; i--)   /* handed out in address order */
        conn_pool_put(p, &b->c[i]);
    return 0;
}

void conn_pool_end(worker *w)
{
    for (struct conn_block *b = w->pool.blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    w->pool.blocks = NULL;
    w->pool.free = NULL;
}

/* A new zeroed connection for w: a tls_conn when TLS is on. */
static conn *conn_new(worker *w)
{
    if (tls_enabled())
        return tls_conn_new();
    if (!CONN_POOLED)
        return calloc(1, sizeof(conn));
    conn_pool *p = &w->pool;
    if (!p->free && conn_pool_grow(p) != 0)
        return NULL;
    conn *c = p->free;
    p->free = c->tcp.data;
    memset(c, 0, sizeof(*c));
    return c;
}

/* The one place a connection's memory is given back: from its close
 * callback, from the release of the hold that outlived it (conn_unhold), or
 * for one that never reached the loop (conn_discard), always on its
 * worker's thread. Its queue and TLS state are gone by then. */
static void conn_free_to(worker *w, conn *c)
{
    if (!c)
        return;
    if (!CONN_POOLED || (c->flags & CONN_F_TLS))
        free(c);                                 /* calloc'ed: conn_new, tls_conn_new */
    else
        conn_pool_put(&w->pool, c);
}

static void conn_free(conn *c)
{
    conn_free_to(conn_worker(c), c);
}

/* Frees a connection that never reached the loop (no close callback). */
static void conn_discard(worker *w, conn *c)
{
    if (c && (c->flags & CONN_F_TLS))
        tls_conn_end(c);
    conn_free_to(w, c);
}

/* Over the connection cap: a plain client is told 503 (the answer is
 * written here: the HTTP layer has not seen the connection); a TLS client,
 * which cannot read an answer before its handshake, is dropped at once. */
static void conn_refuse(conn *c)
{
    static const char answer[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 43\r\n"
        "Connection: close\r\n"
        "\r\n"
        "503 Service Unavailable: connection limit.\n";
    _Static_assert(sizeof("503 Service Unavailable: connection limit.\n") - 1 == 43, "Content-Length");
    if (c->flags & CONN_F_TLS) {
        log_debug("connection limit reached: closing a new TLS connection");
        conn_close(c);
        return;
    }
    c->flags |= CONN_F_DISCARD;                      /* reads until EOF */
    if (conn_send_bytes(c, answer, sizeof(answer) - 1) == 0)
        conn_end_after_flush(c);
}

static void conn_on_accept(uv_stream_t *server, int status, uint8_t kind)
{
    worker *w = server->loop->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    conn *c = conn_new(w);
    if (!c || uv_tcp_init(&w->loop, &c->tcp) != 0) {
        conn_discard(w, c);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, conn_on_closed);
        return;
    }
    c->kind = kind;
    conn_count(c, 1);
    c->state = CONN_HTTP;
    c->last_active = worker_now(w);
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)c, conn_alloc, conn_on_read) != 0) {
        conn_close(c);
        return;
    }
    if (conn_over_limit(kind))
        conn_refuse(c);
}

static void conn_on_accept_ws(uv_stream_t *s, int st) { conn_on_accept(s, st, CONN_KIND_WS); }
static void conn_on_accept_http(uv_stream_t *s, int st) { conn_on_accept(s, st, CONN_KIND_HTTP); }

/* w's ring for the end-of-turn writes, where the kernel allows it
 * (app.ioUring); without one each connection is written on its own. */
static void conn_batch_ring_open(worker *w)
{
    if (!g_node.cfg.ioUring)
        return;
    w->batch.ring = uring_open(CONN_BATCH_RING, CONN_BATCH_MAX);
    atomic_store_explicit(&w->stats.ring_on, w->batch.ring != NULL, memory_order_relaxed);
    if (!w->batch.ring && w->id == 0)
        log_warn("io_uring unavailable (%s): one write system call per connection "
                 "(app.ioUring: false says so without trying)", strerror(errno));
}

void conn_batch_end(worker *w)
{
    uring_close(w->batch.ring);
    w->batch.ring = NULL;
}

static void conn_on_check(uv_check_t *h) { conn_batch_flush(h->data); }
static void conn_on_prepare(uv_prepare_t *h) { conn_batch_flush(h->data); }

int conn_listen(worker *w)
{
    int r;
    w->batch.check.data = &w->batch;
    w->batch.prepare.data = &w->batch;
    if ((r = uv_check_init(&w->loop, &w->batch.check)) != 0 ||
        (r = uv_check_start(&w->batch.check, conn_on_check)) != 0 ||
        (r = uv_prepare_init(&w->loop, &w->batch.prepare)) != 0 ||
        (r = uv_prepare_start(&w->batch.prepare, conn_on_prepare)) != 0) {
        log_error("worker %d: batch handles: %s", w->id, uv_strerror(r));
        return -1;
    }
    uv_unref((uv_handle_t *)&w->batch.check);     /* they never keep the loop alive */
    uv_unref((uv_handle_t *)&w->batch.prepare);
    conn_batch_ring_open(w);
    if ((r = uv_tcp_init(&w->loop, &w->ws_listener)) != 0 ||
        (r = uv_tcp_open(&w->ws_listener, w->ws_fd)) != 0 ||
        (r = uv_listen((uv_stream_t *)&w->ws_listener, 4096, conn_on_accept_ws)) != 0 ||
        (r = uv_tcp_init(&w->loop, &w->http_listener)) != 0 ||
        (r = uv_tcp_open(&w->http_listener, w->http_fd)) != 0 ||
        (r = uv_listen((uv_stream_t *)&w->http_listener, 4096, conn_on_accept_http)) != 0) {
        log_error("worker %d: listen: %s", w->id, uv_strerror(r));
        return -1;
    }
    return 0;
}

/* ---------- outbound queue ---------- */

size_t conn_queued(const conn *c) { return c->out ? c->out->bytes : 0; }

static conn_out *conn_out_get(conn *c)
{
    if (c->out)
        return c->out;
    conn_out *o = mem_zalloc(sizeof(*o));
    if (!o)
        return NULL;
    o->req.data = c;
    c->out = o;
    atomic_fetch_add_explicit(&conn_worker(c)->stats.out_queues, 1, memory_order_relaxed);
    return o;
}

static void conn_out_free(conn *c)
{
    conn_out *o = c->out;
    if (!o)
        return;
    for (uint32_t i = 0; i < o->count; i++)
        sbuf_unref(o->items[(o->head + i) % o->cap].b);
    worker *w = conn_worker(c);
    atomic_fetch_sub_explicit(conn_out_counter(c), (long)o->bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&w->stats.out_queues, 1, memory_order_relaxed);
    free(o->items);
    free(o);
    c->out = NULL;
}

static int conn_out_push(conn_out *o, sbuf *b, uint32_t off)
{
    if (o->count == o->cap) {
        uint32_t ncap = o->cap ? o->cap * 2 : 8;
        struct out_item *ni = malloc(ncap * sizeof(*ni));
        if (!ni)
            return -1;
        for (uint32_t i = 0; i < o->count; i++)
            ni[i] = o->items[(o->head + i) % o->cap];
        free(o->items);
        o->items = ni;
        o->head = 0;
        o->cap = ncap;
    }
    o->items[(o->head + o->count) % o->cap] = (struct out_item){ sbuf_ref(b), off };
    o->count++;
    o->bytes += b->len - off;
    return 0;
}

size_t conn_drop_unstarted(conn *c)
{
    conn_out *o = c->out;
    if (!o)
        return 0;
    size_t before = o->bytes;
    /* From the tail; the head may be a buffer partly written by a direct
     * write (off > 0) or in flight: those stay, so the stream keeps whole
     * messages. */
    while (o->count > o->inflight) {
        struct out_item *it = &o->items[(o->head + o->count - 1) % o->cap];
        if (it->off != 0 || o->count == 1)
            break;
        o->bytes -= it->b->len;
        sbuf_unref(it->b);
        o->count--;
    }
    atomic_fetch_sub_explicit(conn_out_counter(c), (long)(before - o->bytes), memory_order_relaxed);
    return before - o->bytes;
}

long conn_ws_queued_total(void)
{
    long total = 0;
    for (int i = 0; i < workers_count(); i++)
        total += atomic_load_explicit(&worker_at(i)->stats.out_bytes, memory_order_relaxed);
    return total;
}

/* Counts a write of n bytes to c (WebSocket port only). */
static void conn_count_write(conn *c, size_t n, int calls)
{
    if (c->kind != CONN_KIND_WS)
        return;
    worker *w = conn_worker(c);
    atomic_fetch_add_explicit(&w->stats.ws_writes, calls, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stats.ws_write_bytes, (long)n, memory_order_relaxed);
}

static void conn_on_write(uv_write_t *req, int status)
{
    conn *c = req->data;
    conn_out *o = c->out;
    worker *w = conn_worker(c);
    size_t done = 0;
    for (uint32_t i = 0; i < o->inflight; i++) {
        struct out_item *it = &o->items[o->head];
        done += it->b->len - it->off;
        sbuf_unref(it->b);
        o->head = (o->head + 1) % o->cap;
        o->count--;
    }
    o->inflight = 0;
    o->writing = 0;
    o->bytes -= done;
    (void)w;
    if (status >= 0)
        conn_count_write(c, done, 0);
    atomic_fetch_sub_explicit(conn_out_counter(c), (long)done, memory_order_relaxed);
    if (c->state == CONN_CLOSED)
        return;                      /* conn_on_closed frees the rest */
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_write_next(c);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (c->state == CONN_CLOSED)
        return;
    /* Both directions are done once the peer's FIN came too; otherwise its
     * EOF (or the sweep) ends the connection. */
    if (status < 0 || (c->flags & CONN_F_EOF))
        conn_close(c);
}

static void conn_shutdown(conn *c)
{
    if (c->flags & CONN_F_SHUTDOWN)
        return;
    c->flags |= CONN_F_SHUTDOWN;
    conn_out *o = conn_out_get(c);
    if (!o) {
        conn_close(c);
        return;
    }
    o->sreq.data = c;
    if (uv_shutdown(&o->sreq, (uv_stream_t *)c, conn_on_shutdown) != 0)
        conn_close(c);
}

static void conn_write_next(conn *c)
{
    conn_out *o = c->out;
    if (o->count == 0) {
        if (c->flags & CONN_F_CLOSE_AFTER_FLUSH) {
            conn_shutdown(c);       /* keeps o alive for the shutdown request */
            return;
        }
        if (!(c->flags & CONN_F_SHUTDOWN))
            conn_out_free(c);
        const conn_handler *h = conn_layer_of(c);
        if (h && h->drained)
            h->drained(c);
        return;
    }
    uv_buf_t bufs[CONN_WRITE_BATCH];
    uint32_t n = o->count < CONN_WRITE_BATCH ? o->count : CONN_WRITE_BATCH;
    for (uint32_t i = 0; i < n; i++) {
        struct out_item *it = &o->items[(o->head + i) % o->cap];
        bufs[i] = uv_buf_init((char *)it->b->data + it->off, it->b->len - it->off);
    }
    o->inflight = n;
    o->writing = 1;
    conn_count_write(c, 0, 1);
    if (uv_write(&o->req, (uv_stream_t *)c, bufs, n, conn_on_write) != 0) {
        o->inflight = 0;
        o->writing = 0;
        conn_close(c);
    }
}

/* Writes what the socket takes now; returns bytes written or -1. */
static ssize_t conn_try(conn *c, const uint8_t *p, size_t n)
{
    if (c->out)
        return 0;
    uv_buf_t buf = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_try_write((uv_stream_t *)c, &buf, 1);
    conn_count_write(c, r > 0 ? (size_t)r : 0, 1);
    if (r >= 0)
        return r;
    return r == UV_EAGAIN ? 0 : -1;
}

static int conn_enqueue(conn *c, sbuf *b, size_t off)
{
    conn_out *o = conn_out_get(c);
    if (!o || conn_out_push(o, b, (uint32_t)off) != 0) {
        conn_close(c);
        return -1;
    }
    atomic_fetch_add_explicit(conn_out_counter(c), (long)(b->len - off), memory_order_relaxed);
    if (!o->writing && !(c->flags & CONN_F_SHUTDOWN))
        conn_write_next(c);
    return 0;
}

/* Queues a copy of p[0..n) (the caller's bytes the socket did not take). */
static int conn_enqueue_copy(conn *c, const uint8_t *p, size_t n)
{
    sbuf *b = sbuf_copy(p, n);
    if (!b) {
        conn_close(c);
        return -1;
    }
    int r = conn_enqueue(c, b, 0);
    sbuf_unref(b);
    return r;
}

/* Bytes are accepted until the connection is closed or its FIN is queued;
 * which bytes may still go out (e.g. only a close frame while a WebSocket
 * closes) is the owning layer's decision. */
static int conn_writable(const conn *c)
{
    return c->state != CONN_CLOSED && !(c->flags & (CONN_F_CLOSE_AFTER_FLUSH | CONN_F_SHUTDOWN));
}

/* ---------- coalescing (conn_batch, conn.h) ---------- */

/* Does c write at the end of the turn? Open plain WebSocket connections
 * with an empty queue (HTTP answers and TLS keep the direct path). */
static int conn_batches(const conn *c)
{
    return c->state != CONN_HTTP && !(c->flags & CONN_F_TLS) && !c->out;
}

static int conn_batch_cmp(const void *a, const void *b)
{
    const conn_batch_item *x = a, *y = b;
    uintptr_t cx = (uintptr_t)x->c, cy = (uintptr_t)y->c;
    if (cx != cy)
        return cx < cy ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const uint8_t *conn_batch_data(const conn_batch *q, const conn_batch_item *it)
{
    return it->b ? it->b->data : q->arena + it->off;
}

/* Gives up item it (written, or c closed). */
static void conn_batch_drop(conn_batch_item *it)
{
    sbuf_unref(it->b);
    it->b = NULL;
    it->c = NULL;
}

/* Queues the unwritten part of it (from byte off) after what c queued. */
static int conn_batch_queue(conn_batch *q, conn *c, conn_batch_item *it, size_t off)
{
    if (it->b)
        return conn_enqueue(c, it->b, off);
    return conn_enqueue_copy(c, q->arena + it->off + off, it->len - off);
}

/* The end of the run of items of one connection starting at i (all of
 * its items: they are consecutive once sorted, or there is one). */
static uint32_t conn_batch_run_end(const conn_batch *q, uint32_t i)
{
    uint32_t end = i;
    while (end < q->n && q->items[end].c == q->items[i].c)
        end++;
    return end;
}

/* One uv_try_write of at most CONN_BATCH_IOV of the run's buffers. */
static int conn_batch_try(conn_batch *q, conn *c, uint32_t i, uint32_t end)
{
    uv_buf_t bufs[CONN_BATCH_IOV];
    uint32_t nb = 0;
    for (uint32_t k = i; k < end && nb < CONN_BATCH_IOV; k++, nb++)
        bufs[nb] = uv_buf_init((char *)conn_batch_data(q, &q->items[k]), q->items[k].len);
    return uv_try_write((uv_stream_t *)c, bufs, nb);
}

/* The ring failed and its writes could not even be cancelled (a kernel
 * that both parks non-blocking sends and refuses a synchronous cancel): the
 * run [i, end)'s bytes may have gone out, or be read by the kernel still.
 * Its connection is closed (writing them again would corrupt the stream)
 * and its shared buffers stay referenced for ever, never reused under the
 * kernel; bytes copied into the batch's arena cannot be kept that way and
 * may be overwritten by the next turn's copies — only on a connection
 * being closed. Logged by conn_batch_submit. */
static void conn_batch_forget(conn_batch *q, uint32_t i, uint32_t end)
{
    for (uint32_t k = i; k < end; k++) {
        q->items[k].b = NULL;
        q->items[k].c = NULL;
    }
}

/* A kernel that refuses the ring's non-blocking sends (EOPNOTSUPP, as
 * kernels did for RWF_NOWAIT writes on sockets) refuses every ring write:
 * that run is written the usual way, and the ring is given up. Returns
 * CONN_BATCH_UNSENT. */
static int32_t conn_batch_ring_refused(conn_batch *q)
{
    if (q->ring) {
        worker *w = (worker *)q->check.loop->data;
        log_warn("worker %d: io_uring: the kernel refuses non-blocking sends (EOPNOTSUPP) on "
                 "sockets: one write system call per connection", w->id);
        uring_close(q->ring);
        q->ring = NULL;
        atomic_store_explicit(&w->stats.ring_on, 0, memory_order_relaxed);
    }
    return CONN_BATCH_UNSENT;
}

/* A ring write's result as uv_try_write would give it: what it treats as
 * "try again later" (nothing written) is UV_EAGAIN here too, and so is a
 * write the ring cancelled (uring_submit). */
static int conn_batch_ring_result(int32_t res)
{
    if (res == -EAGAIN || res == -ENOBUFS || res == -EINTR || res == -ECANCELED)
        return UV_EAGAIN;
    return res;
}

/* Finishes the run starting at i: its write (done ahead through the ring,
 * see conn_batch_ahead, or now), then what the socket did not take is
 * queued and the items are given up. */
static void conn_batch_run(conn_batch *q, uint32_t i)
{
    conn *c = q->items[i].c;
    uint32_t end = conn_batch_run_end(q, i);
    c->flags &= ~CONN_F_BATCHED;
    if (q->items[i].res == CONN_BATCH_UNKNOWN) {
        conn_batch_forget(q, i, end);
        conn_close(c);
        return;
    }
    size_t done = 0;
    if (c->state != CONN_CLOSED) {
        int32_t ahead = q->items[i].res;
        if (ahead == -EOPNOTSUPP)
            ahead = conn_batch_ring_refused(q);
        int r = ahead != CONN_BATCH_UNSENT ? conn_batch_ring_result(ahead) : conn_batch_try(q, c, i, end);
        conn_count_write(c, r > 0 ? (size_t)r : 0, 1);
        if (r < 0 && r != UV_EAGAIN) {
            for (uint32_t k = i; k < end; k++)
                conn_batch_drop(&q->items[k]);
            conn_close(c);
            return;
        }
        done = r > 0 ? (size_t)r : 0;
    }
    for (uint32_t k = i; k < end; k++) {
        conn_batch_item *it = &q->items[k];
        if (done >= it->len) {
            done -= it->len;
        } else if (c->state != CONN_CLOSED) {
            (void)conn_batch_queue(q, c, it, done);   /* closes c when it fails */
            done = 0;
        }
        conn_batch_drop(it);
    }
    if (c->state != CONN_CLOSED && !c->out && (c->flags & CONN_F_CLOSE_AFTER_FLUSH))
        conn_shutdown(c);
}

/* Hands the ring's queued writes to the kernel. A failed ring is given up
 * (logged): the runs not yet queued are written one by one, those whose
 * result did not come back stay CONN_BATCH_UNKNOWN (conn_batch_forget). */
static int conn_batch_submit(conn_batch *q)
{
    worker *w = (worker *)q->check.loop->data;
    if (uring_queued(q->ring) == 0)
        return 0;
    atomic_fetch_add_explicit(&w->stats.ring_writes, (long)uring_queued(q->ring), memory_order_relaxed);
    int r = uring_submit(q->ring);
    atomic_fetch_add_explicit(&w->stats.ring_submits, 1, memory_order_relaxed);
    if (r != 0) {
        log_error("worker %d: io_uring: %s: back to one write per connection; the "
                  "connections whose write did not answer are closed", w->id, strerror(-r));
        uring_close(q->ring);
        q->ring = NULL;
        atomic_store_explicit(&w->stats.ring_on, 0, memory_order_relaxed);
    }
    return r;
}

/* Writes every run through the ring, all in one system call per
 * CONN_BATCH_RING runs, and records each result on the run's first item;
 * conn_batch_run then only acts on it. Nothing is in flight afterwards. */
static void conn_batch_ahead(conn_batch *q)
{
    for (uint32_t i = 0, end; i < q->n; i = end) {
        end = conn_batch_run_end(q, i);
        conn *c = q->items[i].c;
        int fd;
        if (c->state == CONN_CLOSED || c->out || uv_fileno((uv_handle_t *)c, &fd) != 0)
            continue;                   /* conn_batch_run decides */
        struct iovec v[CONN_BATCH_IOV];
        uint32_t nb = 0;
        for (uint32_t k = i; k < end && nb < CONN_BATCH_IOV; k++, nb++)
            v[nb] = (struct iovec){ (void *)conn_batch_data(q, &q->items[k]), q->items[k].len };
        if (uring_write(q->ring, fd, v, nb, &q->items[i].res) != 0) {
            if (conn_batch_submit(q) != 0 || uring_write(q->ring, fd, v, nb, &q->items[i].res) != 0)
                return;
        }
        q->items[i].res = CONN_BATCH_UNKNOWN;   /* until its result comes back */
    }
    (void)conn_batch_submit(q);
}

/* Writes every held item. Sends made meanwhile (a close telling the hub,
 * which tells a room) go straight to their socket, after the held items of
 * their connection (conn_batch_now). */
static void conn_batch_flush(conn_batch *q)
{
    if (q->n == 0 || q->flushing)
        return;
    q->flushing = 1;
    if (q->dups)
        qsort(q->items, q->n, sizeof(q->items[0]), conn_batch_cmp);
    if (q->ring && q->n > 1)
        conn_batch_ahead(q);
    for (uint32_t i = 0; i < q->n; i++)
        if (q->items[i].c)
            conn_batch_run(q, i);
    q->n = 0;
    q->arena_used = 0;
    q->bytes = 0;
    q->dups = 0;
    q->flushing = 0;
}

/* c's held items go out now (a send to c while the batch is written). */
static void conn_batch_now(conn_batch *q, conn *c)
{
    for (uint32_t i = 0; i < q->n; i++)
        if (q->items[i].c == c) {
            conn_batch_run(q, i);
            return;
        }
}

/* The bytes a worker holds: at most app.maxOutboundBytes, so what one
 * connection's held frames leave in its queue never passes its cap (held
 * bytes are not in conn_queued: the WebSocket layer's cap check sees them
 * once they are queued). */
static size_t conn_batch_cap(void)
{
    size_t cap = g_node.cfg.maxOutboundBytes;
    return cap && cap < CONN_BATCH_BYTES ? cap : CONN_BATCH_BYTES;
}

/* Holds p[0..n) (b: the shared buffer, or NULL: copy into the arena) for
 * c until the end of the turn. Returns 1 if held, 0 if the caller must send
 * it the usual way (the batch is being written, or it is too large), -1 if
 * c was closed. */
static int conn_batch_add(conn *c, sbuf *b, const void *p, size_t n)
{
    conn_batch *q = &conn_worker(c)->batch;
    if (q->flushing) {
        if (c->flags & CONN_F_BATCHED)
            conn_batch_now(q, c);
        return c->state == CONN_CLOSED ? -1 : 0;
    }
    int copy = b == NULL;
    size_t cap = conn_batch_cap();
    if (n > cap / 4 || (copy && n > CONN_BATCH_ARENA / 4)) {
        if (c->flags & CONN_F_BATCHED)
            conn_batch_flush(q);        /* its held items first */
        return c->state == CONN_CLOSED ? -1 : 0;
    }
    if (q->n == CONN_BATCH_MAX || q->bytes + n > cap ||
        (copy && q->arena_used + n > CONN_BATCH_ARENA)) {
        conn_batch_flush(q);
        if (c->state == CONN_CLOSED)
            return -1;
        if (!conn_batches(c))
            return 0;                   /* now has a queue: after it */
    }
    conn_batch_item *it = &q->items[q->n];
    *it = (conn_batch_item){ c, NULL, 0, (uint32_t)n, q->n, CONN_BATCH_UNSENT };
    if (copy) {
        it->off = q->arena_used;
        memcpy(q->arena + q->arena_used, p, n);
        q->arena_used += (uint32_t)n;
    } else {
        it->b = sbuf_ref(b);
    }
    if ((c->flags & CONN_F_BATCHED) && q->items[q->n - 1].c != c)
        q->dups = 1;                    /* not next to its others: sort before writing */
    c->flags |= CONN_F_BATCHED;
    q->n++;
    q->bytes += n;
    return 1;
}

int conn_send_shared(conn *c, sbuf *b)
{
    if (!conn_writable(c))
        return -1;
    if (c->flags & CONN_F_TLS)
        return tls_send(c, b->data, b->len);   /* encrypted per recipient */
    if (conn_batches(c)) {
        int r = conn_batch_add(c, b, NULL, b->len);
        if (r != 0)
            return r > 0 ? 0 : -1;
    }
    ssize_t n = conn_try(c, b->data, b->len);
    if (n < 0) {
        conn_close(c);
        return -1;
    }
    if ((size_t)n == b->len)
        return 0;
    return conn_enqueue(c, b, (size_t)n);
}

int conn_send_wire(conn *c, const void *p, size_t len)
{
    ssize_t n = conn_try(c, p, len);
    if (n < 0) {
        conn_close(c);
        return -1;
    }
    if ((size_t)n == len)
        return 0;
    return conn_enqueue_copy(c, (const uint8_t *)p + n, len - (size_t)n);
}

int conn_send_bytes(conn *c, const void *p, size_t len)
{
    if (!conn_writable(c))
        return -1;
    if (c->flags & CONN_F_TLS)
        return tls_send(c, p, len);
    if (conn_batches(c)) {
        int r = conn_batch_add(c, NULL, p, len);
        if (r != 0)
            return r > 0 ? 0 : -1;
    }
    return conn_send_wire(c, p, len);
}

/* ---------- back-pressure ---------- */

void conn_pause(conn *c)
{
    if (c->state == CONN_CLOSED || (c->flags & CONN_F_PAUSED))
        return;
    c->flags |= CONN_F_PAUSED;
    (void)uv_read_stop((uv_stream_t *)c);
}

void conn_resume(conn *c)
{
    if (c->state == CONN_CLOSED || !(c->flags & CONN_F_PAUSED))
        return;
    c->flags &= ~CONN_F_PAUSED;
    if (uv_read_start((uv_stream_t *)c, conn_alloc, conn_on_read) != 0)
        conn_close(c);
}

/* ---------- holds ---------- */

void conn_hold(conn *c) { c->flags |= CONN_F_BUSY; }

int conn_unhold(conn *c)
{
    c->flags &= ~CONN_F_BUSY;
    if (c->flags & CONN_F_FREE_LATER) {      /* closed while held */
        conn_free(c);
        return 1;
    }
    return 0;
}

/* ---------- closing ---------- */

static void conn_on_closed(uv_handle_t *h)
{
    conn *c = (conn *)h;
    conn_out_free(c);
    if (c->flags & CONN_F_TLS)
        tls_conn_end(c);                 /* closed without conn_close */
    if (c->flags & CONN_F_BUSY) {
        c->flags |= CONN_F_FREE_LATER;   /* the holder frees it (conn_unhold) */
        return;
    }
    conn_free(c);
}

void conn_close(conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    const conn_handler *h = conn_layer_of(c);
    uint8_t was = c->state;
    c->state = CONN_CLOSED;
    if (c->flags & CONN_F_TLS)
        tls_conn_end(c);
    worker *w = conn_worker(c);
    conn_count(c, -1);
    if (was != CONN_HTTP)
        atomic_fetch_sub_explicit(&w->stats.ws_conns, 1, memory_order_relaxed);
    if (h)
        h->release(c);
    uv_close((uv_handle_t *)c, conn_on_closed);
}

void conn_stop(conn *c)
{
    const conn_handler *h = conn_layer_of(c);
    if (h && h->stop)
        h->stop(c);
    else
        conn_close(c);
}

void conn_end_after_flush(conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if ((c->flags & CONN_F_TLS) && !(c->flags & CONN_F_CLOSE_AFTER_FLUSH)) {
        tls_close_notify(c);             /* queued after the last answer */
        if (c->state == CONN_CLOSED)
            return;
    }
    c->flags |= CONN_F_CLOSE_AFTER_FLUSH;
    if (c->flags & CONN_F_BATCHED)
        return;                          /* after its held frames (conn_batch_run) */
    if (!c->out || (!c->out->writing && c->out->count == 0))
        conn_shutdown(c);
}


/* ---------- sweep ---------- */

void conn_sweep_one(conn *c, uint32_t now)
{
    const conn_handler *h = conn_layer_of(c);
    /* whole seconds: "idle > T" guarantees at least T seconds really passed */
    if (h && h->sweep)
        h->sweep(c, now - c->last_active);
}

void conn_peer(const conn *c, char *out, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    out[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) != 0)
        return;
    char ip[64] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
        uv_ip4_name(sa, ip, sizeof(ip));
        port = ntohs(sa->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(sa, ip, sizeof(ip));
        port = ntohs(sa->sin6_port);
    }
    snprintf(out, len, "%s:%d", ip, port);
}
