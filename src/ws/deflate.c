/* deflate.c — owns the per-worker zlib streams of permessage-deflate and
 * the counters of what they did (see deflate.h). A thread's streams live
 * in a thread-specific slot: made on first use (only a node whose clients
 * negotiated the extension has any), reset per message, freed when the
 * thread ends. zlib allocates through ws_z_alloc, so zlibBytes is exact. */
#include "ws/deflate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/node.h"
#include "ws/frame.h"

#define WS_Z_WINDOW 15              /* raw DEFLATE, the full 32 KiB window */
#define WS_Z_MEMLEVEL 8
#define WS_Z_KEEP (64 * 1024)       /* a larger compression buffer is not kept */
#define WS_Z_OUT_MIN 256            /* first size of an inflate output buffer */

static const uint8_t ws_z_tail[4] = { 0x00, 0x00, 0xff, 0xff };

typedef struct ws_z {
    z_stream def, inf;
    int def_ready, inf_ready;
    uint8_t *buf;                   /* compression output, kept up to WS_Z_KEEP */
    size_t cap;
} ws_z;

static pthread_key_t ws_z_key;
static pthread_once_t ws_z_once = PTHREAD_ONCE_INIT;
static int ws_z_key_ok;

static atomic_long ws_z_conns, ws_z_compressed, ws_z_skipped, ws_z_cin, ws_z_cout;
static atomic_long ws_z_inflated, ws_z_iin, ws_z_iout, ws_z_ierr, ws_z_bytes;

/* ---------- memory ---------- */

typedef union ws_z_head {
    size_t n;
    max_align_t align;
} ws_z_head;

static voidpf ws_z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    size_t n = (size_t)items * size;
    ws_z_head *h = malloc(sizeof(*h) + n);
    if (!h)
        return Z_NULL;
    h->n = n;
    atomic_fetch_add_explicit(&ws_z_bytes, (long)n, memory_order_relaxed);
    return h + 1;
}

static void ws_z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    if (!p)
        return;
    ws_z_head *h = (ws_z_head *)p - 1;
    atomic_fetch_sub_explicit(&ws_z_bytes, (long)h->n, memory_order_relaxed);
    free(h);
}

static void ws_z_buf_drop(ws_z *z)
{
    atomic_fetch_sub_explicit(&ws_z_bytes, (long)z->cap, memory_order_relaxed);
    free(z->buf);
    z->buf = NULL;
    z->cap = 0;
}

/* The compression buffer, at least n bytes. Returns 0 or -1. */
static int ws_z_buf(ws_z *z, size_t n)
{
    if (n <= z->cap)
        return 0;
    ws_z_buf_drop(z);
    z->buf = malloc(n);
    if (!z->buf)
        return -1;
    z->cap = n;
    atomic_fetch_add_explicit(&ws_z_bytes, (long)n, memory_order_relaxed);
    return 0;
}

/* ---------- the thread's streams ---------- */

static void ws_z_destroy(void *p)
{
    ws_z *z = p;
    if (!z)
        return;
    if (z->def_ready)
        deflateEnd(&z->def);
    if (z->inf_ready)
        inflateEnd(&z->inf);
    ws_z_buf_drop(z);
    free(z);
}

static void ws_z_key_make(void)
{
    ws_z_key_ok = pthread_key_create(&ws_z_key, ws_z_destroy) == 0;
}

/* The calling thread's streams (not yet initialised), or NULL. */
static ws_z *ws_z_get(void)
{
    pthread_once(&ws_z_once, ws_z_key_make);
    if (!ws_z_key_ok)
        return NULL;
    ws_z *z = pthread_getspecific(ws_z_key);
    if (z)
        return z;
    z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    if (pthread_setspecific(ws_z_key, z) != 0) {
        free(z);
        return NULL;
    }
    return z;
}

void ws_deflate_thread_free(void)
{
    pthread_once(&ws_z_once, ws_z_key_make);
    if (!ws_z_key_ok)
        return;
    ws_z_destroy(pthread_getspecific(ws_z_key));
    (void)pthread_setspecific(ws_z_key, NULL);
}

static void ws_z_hooks(z_stream *s)
{
    s->zalloc = ws_z_alloc;
    s->zfree = ws_z_free;
    s->opaque = Z_NULL;
}

/* Makes the thread's deflate stream if it has none. Returns 0 or -1. */
static int ws_z_deflate_init(ws_z *z)
{
    if (z->def_ready)
        return 0;
    ws_z_hooks(&z->def);
    if (deflateInit2(&z->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -WS_Z_WINDOW, WS_Z_MEMLEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    z->def_ready = 1;
    return 0;
}

/* The thread's deflate stream, reset for a new message; NULL if none. */
static z_stream *ws_z_deflater(void)
{
    ws_z *z = ws_z_get();
    if (!z)
        return NULL;
    int fresh = !z->def_ready;
    if (ws_z_deflate_init(z) != 0 || (!fresh && deflateReset(&z->def) != Z_OK))
        return NULL;
    return &z->def;
}

void ws_deflate_prepare(void)
{
    ws_z *z = ws_z_get();
    if (z)
        (void)ws_z_deflate_init(z);           /* a failure shows again at first use */
}

static z_stream *ws_z_inflater(void)
{
    ws_z *z = ws_z_get();
    if (!z)
        return NULL;
    if (!z->inf_ready) {
        ws_z_hooks(&z->inf);
        if (inflateInit2(&z->inf, -WS_Z_WINDOW) != Z_OK)
            return NULL;
        z->inf_ready = 1;
    } else if (inflateReset(&z->inf) != Z_OK) {
        return NULL;
    }
    return &z->inf;
}

/* ---------- compression ---------- */

/* Compresses p[0..n) into the thread's buffer: *zlen bytes without the
 * sync-flush tail. Returns the buffer, or NULL on failure. */
static uint8_t *ws_deflate_raw(const uint8_t *p, size_t n, size_t *zlen)
{
    z_stream *s = ws_z_deflater();
    ws_z *z = ws_z_get();
    if (!s || n > UINT32_MAX / 2)
        return NULL;
    size_t cap = deflateBound(s, (uLong)n) + 16;     /* + the empty stored block */
    if (ws_z_buf(z, cap) != 0)
        return NULL;
    s->next_in = (Bytef *)p;
    s->avail_in = (uInt)n;
    s->next_out = z->buf;
    s->avail_out = (uInt)cap;
    int rc = deflate(s, Z_SYNC_FLUSH);
    size_t out = cap - s->avail_out;
    if (rc != Z_OK || s->avail_in != 0 || s->avail_out == 0 || out < sizeof(ws_z_tail) ||
        memcmp(z->buf + out - sizeof(ws_z_tail), ws_z_tail, sizeof(ws_z_tail)) != 0)
        return NULL;
    *zlen = out - sizeof(ws_z_tail);
    return z->buf;
}

/* Gives back a compression buffer grown past what is kept. */
static void ws_deflate_trim(void)
{
    ws_z *z = ws_z_get();
    if (z && z->cap > WS_Z_KEEP)
        ws_z_buf_drop(z);
}

static sbuf *ws_deflate_wrap(int opcode, const uint8_t *zp, size_t zlen)
{
    uint8_t hdr[10];
    size_t hl = ws_frame_header_encode(hdr, opcode, 1, zlen);
    hdr[0] |= WS_DEFLATE_RSV1;
    sbuf *b = sbuf_new(hl + zlen);
    if (!b)
        return NULL;
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, zp, zlen);
    return b;
}

sbuf *ws_deflate_frame(int opcode, const uint8_t *p, size_t n)
{
    size_t zlen = 0;
    uint8_t *zp = ws_deflate_raw(p, n, &zlen);
    sbuf *b = NULL;
    if (zp && zlen < n)
        b = ws_deflate_wrap(opcode, zp, zlen);
    ws_deflate_trim();
    if (zp) {
        atomic_fetch_add_explicit(b ? &ws_z_compressed : &ws_z_skipped, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&ws_z_cin, (long)n, memory_order_relaxed);
        atomic_fetch_add_explicit(&ws_z_cout, (long)(b ? zlen : n), memory_order_relaxed);
    }
    return b;
}

/* The payload offset of a whole server frame (unmasked), 0 if malformed. */
static size_t ws_deflate_payload_at(const sbuf *f)
{
    if (f->len < 2 || (f->data[1] & 0x80))
        return 0;
    uint8_t len7 = f->data[1] & 0x7F;
    size_t off = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
    return f->len >= off ? off : 0;
}

sbuf *ws_deflate_push(const sbuf *frame)
{
    size_t off = ws_deflate_payload_at(frame);
    uint8_t b0 = off ? frame->data[0] : 0;
    int opcode = b0 & 0x0F;
    if (b0 != (0x80 | opcode) || (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY))
        return NULL;                          /* not a whole, plain data frame */
    size_t n = frame->len - off;
    if (n < g_node.cfg.deflateMinSize)
        return NULL;
    return ws_deflate_frame(opcode, frame->data + off, n);
}

/* ---------- inflation ---------- */

/* One message's output buffer, grown up to max + 1 bytes (one past the
 * cap shows that the message is too big). */
typedef struct ws_inflate_out {
    uint8_t *p;
    size_t cap, max;
} ws_inflate_out;

/* Gives the stream more room to write into. Returns 0, 1009 or 1011. */
static int ws_inflate_grow(z_stream *s, ws_inflate_out *o)
{
    size_t used = o->cap - s->avail_out;
    if (o->cap > o->max)
        return WS_CLOSE_TOO_BIG;
    size_t cap = o->cap * 2 > o->max + 1 ? o->max + 1 : o->cap * 2;
    if (cap - used > UINT32_MAX)
        cap = used + UINT32_MAX;
    uint8_t *np = realloc(o->p, cap);
    if (!np)
        return WS_CLOSE_INTERNAL;
    o->p = np;
    o->cap = cap;
    s->next_out = np + used;
    s->avail_out = (uInt)(cap - used);
    return 0;
}

/* Runs the stream over in[0..n). Returns 0 (input consumed), 1 (the DEFLATE
 * stream ended: anything after it is ignored) or a close code. */
static int ws_inflate_feed(z_stream *s, ws_inflate_out *o, const uint8_t *in, size_t n)
{
    s->next_in = (Bytef *)in;
    s->avail_in = (uInt)n;
    for (;;) {
        if (s->avail_out == 0) {
            int rc = ws_inflate_grow(s, o);
            if (rc)
                return rc;
        }
        int rc = inflate(s, Z_SYNC_FLUSH);
        if (rc == Z_STREAM_END)
            return 1;
        if (rc == Z_MEM_ERROR)
            return WS_CLOSE_INTERNAL;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return WS_CLOSE_BAD_DATA;
        if (s->avail_out == 0)
            continue;                         /* full: more may be pending */
        if (s->avail_in == 0 || rc == Z_BUF_ERROR)
            return 0;
    }
}

static int ws_inflate_run(z_stream *s, ws_inflate_out *o, const uint8_t *in, size_t n)
{
    int rc = ws_inflate_feed(s, o, in, n);
    if (rc == 0)
        rc = ws_inflate_feed(s, o, ws_z_tail, sizeof(ws_z_tail));
    if (rc > 1)
        return rc;
    if (o->cap - s->avail_out > o->max)
        return WS_CLOSE_TOO_BIG;
    /* Without a final block the data must end on a block boundary (the
     * empty stored block of the sync flush): else it was cut short. */
    if (rc == 0 && !(s->data_type & 128))
        return WS_CLOSE_BAD_DATA;
    return 0;
}

static void ws_inflate_count(size_t n, size_t out, int rc)
{
    if (rc) {
        atomic_fetch_add_explicit(&ws_z_ierr, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&ws_z_inflated, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ws_z_iin, (long)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&ws_z_iout, (long)out, memory_order_relaxed);
}

int ws_inflate_message(const uint8_t *in, size_t n, size_t max, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    z_stream *s = ws_z_inflater();
    if (!s || n > UINT32_MAX)
        return WS_CLOSE_INTERNAL;
    size_t want = n > SIZE_MAX / 4 ? SIZE_MAX : 4 * n;
    ws_inflate_out o = { NULL, 0, max };
    o.cap = want < WS_Z_OUT_MIN ? WS_Z_OUT_MIN : want;
    if (o.cap > max + 1)
        o.cap = max + 1;
    if (o.cap > UINT32_MAX)
        o.cap = UINT32_MAX;
    o.p = malloc(o.cap);
    if (!o.p)
        return WS_CLOSE_INTERNAL;
    s->next_out = o.p;
    s->avail_out = (uInt)o.cap;
    int rc = ws_inflate_run(s, &o, in, n);
    size_t len = o.cap - s->avail_out;
    ws_inflate_count(n, len, rc);
    if (rc) {
        free(o.p);
        return rc;
    }
    *out = o.p;
    *outlen = len;
    return 0;
}

/* ---------- counters ---------- */

void ws_deflate_conn(int delta)
{
    atomic_fetch_add_explicit(&ws_z_conns, delta, memory_order_relaxed);
}

void ws_deflate_stats_get(ws_deflate_stats *s)
{
    s->connections = atomic_load_explicit(&ws_z_conns, memory_order_relaxed);
    s->compressed = atomic_load_explicit(&ws_z_compressed, memory_order_relaxed);
    s->compress_skipped = atomic_load_explicit(&ws_z_skipped, memory_order_relaxed);
    s->compress_in = atomic_load_explicit(&ws_z_cin, memory_order_relaxed);
    s->compress_out = atomic_load_explicit(&ws_z_cout, memory_order_relaxed);
    s->inflated = atomic_load_explicit(&ws_z_inflated, memory_order_relaxed);
    s->inflate_in = atomic_load_explicit(&ws_z_iin, memory_order_relaxed);
    s->inflate_out = atomic_load_explicit(&ws_z_iout, memory_order_relaxed);
    s->inflate_errors = atomic_load_explicit(&ws_z_ierr, memory_order_relaxed);
    s->zlib_bytes = atomic_load_explicit(&ws_z_bytes, memory_order_relaxed);
}
