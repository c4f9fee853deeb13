/* reader.c — owns the incremental client-stream reader: frame sequencing,
 * fragment reassembly, interleaved control frames, UTF-8 of text messages and
 * the message size cap.
 *
 * The ws_reader object exists only while something is incomplete: a partial
 * header (hbuf), a partial frame payload (in_frame), or an open fragmented
 * message (msg_op). It is freed as soon as a feed leaves it idle. A frame
 * found whole in the input is unmasked in place; an unfragmented data frame
 * or a control frame is then handed to the callback straight from the input.
 * Only bytes of incomplete frames and fragmented messages are copied: data
 * payload into buf (owned by the reader), control payload into ctl.
 *
 * A compressed message (permessage-deflate) takes the same paths with its
 * compressed bytes and is inflated when its last frame is in: straight from
 * the input when it came whole in one frame, else from buf. The inflated
 * bytes live in a buffer of their own until the callback returns.
 *
 * Callbacks may free the reader (ws_reader_free on the same pointer) only if
 * they return non-zero; the reader then returns -1 without touching it. */
#include "ws/reader.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/utf8.h"

#define WS_MAX_CONTROL 125
#define WS_BUF_MIN 256
#define WS_STOP (-1)

struct ws_reader {
    ws_frame_hdr fh;                /* header of the frame in progress */
    uint64_t fgot;                  /* its payload bytes received so far */
    uint8_t in_frame;               /* fh is valid, payload incomplete */
    uint8_t hlen;                   /* bytes of a partial header in hbuf */
    uint8_t msg_op;                 /* open message: TEXT/BINARY, 0 = none */
    uint8_t msg_z;                  /* ... and it is compressed (RSV1) */
    uint8_t hbuf[WS_MAX_HEADER];
    uint32_t utf8;                  /* validator state of an open text message */
    uint8_t *buf;                   /* open message payload (owned) */
    size_t len, cap;
    uint8_t ctl[WS_MAX_CONTROL];    /* payload of a partial control frame */
};

/* One ws_reader_feed call. */
typedef struct ws_feed {
    ws_reader **rd;
    const ws_reader_cb *cb;
    void *ud;
    uint64_t max_message;
    uint64_t max_wire;              /* cap of a compressed message's bytes */
    unsigned ext;                   /* WS_READER_* */
} ws_feed;

static int ws_is_control(uint8_t opcode)
{
    return (opcode & 0x8) != 0;
}

/* Returns the state, allocating it if needed; NULL when out of memory. */
static ws_reader *ws_reader_state(ws_feed *f)
{
    if (!*f->rd) *f->rd = mem_zalloc(sizeof(ws_reader));
    return *f->rd;
}

static int ws_reader_idle(const ws_reader *r)
{
    return !r->in_frame && r->hlen == 0 && r->msg_op == 0;
}

static void ws_reader_release_if_idle(ws_reader **rd)
{
    if (*rd && ws_reader_idle(*rd)) ws_reader_free(rd);
}

/* Grows buf geometrically to hold need bytes, never beyond what the message
 * cap allows. Returns 0 or 1011. */
static int ws_reader_reserve(ws_reader *r, size_t need, uint64_t max_message)
{
    if (need <= r->cap) return 0;
    size_t cap = r->cap ? r->cap : WS_BUF_MIN;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > max_message) cap = (size_t)max_message;
    if (cap < need) cap = need;
    uint8_t *nb = realloc(r->buf, cap);
    if (!nb) return WS_CLOSE_INTERNAL;
    r->buf = nb;
    r->cap = cap;
    return 0;
}

static void ws_reader_end_message(ws_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
    r->msg_op = 0;
    r->msg_z = 0;
}

/* Validates (text) and appends unmasked payload to the open message. */
static int ws_reader_append(ws_feed *f, const uint8_t *p, size_t n)
{
    ws_reader *r = *f->rd;
    if (n == 0) return 0;
    if (r->msg_op == WS_OP_TEXT && !r->msg_z) {
        r->utf8 = utf8_validate(r->utf8, p, n);
        if (r->utf8 == UTF8_REJECT) return WS_CLOSE_BAD_DATA;
    }
    int rc = ws_reader_reserve(r, r->len + n, r->msg_z ? f->max_wire : f->max_message);
    if (rc) return rc;
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

static int ws_reader_call_message(ws_feed *f, int opcode, uint8_t *p, size_t n)
{
    uint8_t empty = 0;
    if (!f->cb->on_message) return 0;
    return f->cb->on_message(f->ud, opcode, n ? p : &empty, n) ? WS_STOP : 0;
}

/* Inflates a complete compressed message p[0..n) and delivers it. */
static int ws_reader_deliver_z(ws_feed *f, int opcode, const uint8_t *p, size_t n)
{
    uint8_t *out;
    size_t len;
    int rc = ws_inflate_message(p, n, (size_t)f->max_message, &out, &len);
    if (rc) return rc;
    if (opcode == WS_OP_TEXT && utf8_validate(UTF8_ACCEPT, out, len) != UTF8_ACCEPT)
        rc = WS_CLOSE_BAD_DATA;
    else
        rc = ws_reader_call_message(f, opcode, out, len);
    free(out);
    return rc;
}

/* The final fragment arrived: delivers the accumulated message. */
static int ws_reader_finish_message(ws_feed *f)
{
    ws_reader *r = *f->rd;
    if (r->msg_op == WS_OP_TEXT && !r->msg_z && r->utf8 != UTF8_ACCEPT) return WS_CLOSE_BAD_DATA;
    /* The message is over whatever the callback answers: a callback that
     * stops the feed without freeing the reader must not leave it open
     * (its buffer is the callback's to scribble on). */
    uint8_t *buf = r->buf;
    size_t len = r->len;
    int op = r->msg_op, z = r->msg_z;
    r->buf = NULL;
    ws_reader_end_message(r);
    int rc = z ? ws_reader_deliver_z(f, op, buf, len) : ws_reader_call_message(f, op, buf, len);
    free(buf);
    return rc;
}

static int ws_reader_deliver_close(ws_feed *f, const uint8_t *p, size_t n)
{
    uint16_t code;
    int bad = ws_close_payload_check(p, n, &code);
    if (bad) return bad;
    if (!f->cb->on_close) return 0;
    const uint8_t *reason = n > 2 ? p + 2 : p;
    return f->cb->on_close(f->ud, code, reason, n > 2 ? n - 2 : 0) ? WS_STOP : 0;
}

static int ws_reader_deliver_control(ws_feed *f, uint8_t opcode, const uint8_t *p, size_t n)
{
    int (*fn)(void *, const uint8_t *, size_t) = NULL;
    if (opcode == WS_OP_CLOSE) return ws_reader_deliver_close(f, p, n);
    fn = opcode == WS_OP_PING ? f->cb->on_ping : f->cb->on_pong;
    if (!fn) return 0;
    return fn(f->ud, p, n) ? WS_STOP : 0;
}

/* Sequencing and size rules for a new frame header; returns 0 or a code. */
static int ws_reader_check_header(const ws_feed *f, const ws_frame_hdr *h)
{
    const ws_reader *r = *f->rd;
    int open = r && r->msg_op;
    if (ws_is_control(h->opcode)) return 0;
    if (h->opcode == WS_OP_CONT && !open) return WS_CLOSE_PROTOCOL;
    if (h->opcode != WS_OP_CONT && open) return WS_CLOSE_PROTOCOL;
    if (h->opcode == WS_OP_CONT && h->rsv) return WS_CLOSE_PROTOCOL;   /* RSV1: first frame only */
    int z = h->opcode == WS_OP_CONT ? r->msg_z : (h->rsv & WS_RSV1) != 0;
    uint64_t cap = z ? f->max_wire : f->max_message;
    uint64_t have = open ? r->len : 0;
    if (h->len > cap - have) return WS_CLOSE_TOO_BIG;
    return 0;
}

/* Opens a message for a first fragment (TEXT/BINARY); no-op for CONT. */
static int ws_reader_open_message(ws_feed *f, const ws_frame_hdr *h)
{
    if (h->opcode == WS_OP_CONT) return 0;
    ws_reader *r = ws_reader_state(f);
    if (!r) return WS_CLOSE_INTERNAL;
    r->msg_op = h->opcode;
    r->msg_z = (h->rsv & WS_RSV1) != 0;
    r->utf8 = UTF8_ACCEPT;
    return 0;
}

/* A frame whose payload p[0..n) is whole in the input, already unmasked. */
static int ws_reader_whole_frame(ws_feed *f, const ws_frame_hdr *h, uint8_t *p, size_t n)
{
    if (ws_is_control(h->opcode)) return ws_reader_deliver_control(f, h->opcode, p, n);
    if (h->fin && h->opcode != WS_OP_CONT) {     /* unfragmented: zero copy */
        if (h->rsv & WS_RSV1) return ws_reader_deliver_z(f, h->opcode, p, n);
        if (h->opcode == WS_OP_TEXT && utf8_validate(UTF8_ACCEPT, p, n) != UTF8_ACCEPT)
            return WS_CLOSE_BAD_DATA;
        return ws_reader_call_message(f, h->opcode, p, n);
    }
    int rc = ws_reader_open_message(f, h);
    if (!rc) rc = ws_reader_append(f, p, n);
    if (!rc && h->fin) rc = ws_reader_finish_message(f);
    return rc;
}

/* Keeps a frame whose payload is not all here yet. */
static int ws_reader_begin_partial(ws_feed *f, const ws_frame_hdr *h)
{
    int rc = ws_is_control(h->opcode) ? 0 : ws_reader_open_message(f, h);
    if (rc) return rc;
    ws_reader *r = ws_reader_state(f);
    if (!r) return WS_CLOSE_INTERNAL;
    r->fh = *h;
    r->fgot = 0;
    r->in_frame = 1;
    return 0;
}

/* Parses a header from the kept partial header plus p[0..n), or from p alone.
 * Returns >0 with *used = input bytes it took, 0 when all of p was kept,
 * or a negated close code. */
static int ws_reader_header(ws_feed *f, const uint8_t *p, size_t n, ws_frame_hdr *h, size_t *used)
{
    uint64_t lim = (f->ext & WS_READER_DEFLATE) ? f->max_wire : f->max_message;
    uint64_t max_payload = lim > WS_MAX_CONTROL ? lim : WS_MAX_CONTROL;
    uint8_t rsv_ok = (f->ext & WS_READER_DEFLATE) ? WS_RSV1 : 0;
    ws_reader *r = *f->rd;
    size_t old = r ? r->hlen : 0;
    int k;

    if (old == 0) {
        k = ws_frame_parse_header_ext(p, n, max_payload, rsv_ok, h);
        if (k > 0) *used = (size_t)k;
        if (k != 0) return k;
        if (!(r = ws_reader_state(f))) return -WS_CLOSE_INTERNAL;
        memcpy(r->hbuf, p, n);                   /* n < WS_MAX_HEADER here */
        r->hlen = (uint8_t)n;
        return 0;
    }
    size_t take = n < WS_MAX_HEADER - old ? n : WS_MAX_HEADER - old;
    memcpy(r->hbuf + old, p, take);
    k = ws_frame_parse_header_ext(r->hbuf, old + take, max_payload, rsv_ok, h);
    if (k == 0) r->hlen = (uint8_t)(old + take);
    if (k > 0) {
        *used = (size_t)k - old;
        r->hlen = 0;
    }
    return k;
}

/* Reads a frame starting at data[*pos]: delivers it if it is whole,
 * otherwise keeps what there is. */
static int ws_reader_take_frame(ws_feed *f, uint8_t *data, size_t len, size_t *pos)
{
    ws_frame_hdr h;
    size_t used = 0;
    int k = ws_reader_header(f, data + *pos, len - *pos, &h, &used);
    if (k < 0) return -k;
    if (k == 0) {
        *pos = len;
        return 0;
    }
    *pos += used;
    int rc = ws_reader_check_header(f, &h);
    if (rc) return rc;
    if (h.len > len - *pos) return ws_reader_begin_partial(f, &h);
    uint8_t *p = data + *pos;
    size_t n = (size_t)h.len;
    ws_unmask(p, n, h.mask, 0);
    *pos += n;
    return ws_reader_whole_frame(f, &h, p, n);
}

/* Continues the payload of the frame in progress with p[0..n). */
static int ws_reader_take_payload(ws_feed *f, uint8_t *p, size_t n, size_t *pos)
{
    ws_reader *r = *f->rd;
    uint64_t left = r->fh.len - r->fgot;
    size_t take = n < left ? n : (size_t)left;
    int control = ws_is_control(r->fh.opcode);
    int rc = 0;

    ws_unmask(p, take, r->fh.mask, r->fgot);
    if (control) memcpy(r->ctl + r->fgot, p, take);
    else rc = ws_reader_append(f, p, take);
    if (rc) return rc;
    r->fgot += take;
    *pos += take;
    if (r->fgot < r->fh.len) return 0;
    r->in_frame = 0;
    if (control) return ws_reader_deliver_control(f, r->fh.opcode, r->ctl, (size_t)r->fh.len);
    return r->fh.fin ? ws_reader_finish_message(f) : 0;
}

int ws_reader_feed(ws_reader **rd, uint8_t *data, size_t len, uint64_t max_message,
                   const ws_reader_cb *cb, void *ud)
{
    return ws_reader_feed_ext(rd, data, len, max_message, 0, cb, ud);
}

int ws_reader_feed_ext(ws_reader **rd, uint8_t *data, size_t len, uint64_t max_message,
                       unsigned ext, const ws_reader_cb *cb, void *ud)
{
    uint64_t wire = max_message > UINT64_MAX / 2 ? max_message : WS_DEFLATE_WIRE_CAP(max_message);
    ws_feed f = { rd, cb, ud, max_message, wire, ext };
    size_t pos = 0;
    int rc = 0;

    while (pos < len && rc == 0) {
        if (*rd && (*rd)->in_frame) rc = ws_reader_take_payload(&f, data + pos, len - pos, &pos);
        else rc = ws_reader_take_frame(&f, data, len, &pos);
    }
    if (rc == WS_STOP) return -1;
    if (rc) {
        ws_reader_free(rd);
        return rc;
    }
    ws_reader_release_if_idle(rd);
    return 0;
}

void ws_reader_free(ws_reader **rd)
{
    if (!*rd) return;
    free((*rd)->buf);
    free(*rd);
    *rd = NULL;
}

size_t ws_reader_held(const ws_reader *rd)
{
    return rd ? sizeof(*rd) + rd->cap : 0;
}
