/* deflate.h — the compression of permessage-deflate (RFC 7692) with no
 * per-connection state: every message is compressed or inflated from a
 * fresh zlib state (both sides agreed to no context takeover, ws/pmd.h), so
 * each worker thread has one deflate and one inflate stream, made on first
 * use and reset per message, that serve all its connections. A connection
 * that negotiated the extension costs one flag bit (CONN_F_DEFLATE).
 *
 * Memory: the streams (zlib documents ~262 KiB for deflate with the full
 * window, ~39 KiB for inflate) and a compression buffer per worker that
 * uses them, counted exactly through zlib's allocator hooks
 * (ws_deflate_stats: zlibBytes in /system/state). */
#ifndef IMGATE_WS_DEFLATE_H
#define IMGATE_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/sbuf.h"

/* RSV1 in the first byte of a frame: "this message is compressed". */
#define WS_DEFLATE_RSV1 0x40

/* Compressed bytes a message may take on the wire before it is refused
 * (1009): the inflated size is what app.maxMessageSize caps; this only
 * bounds what is buffered meanwhile, with room for a sender whose output
 * grew (deflate can add up to an eighth to data that does not compress). */
#define WS_DEFLATE_WIRE_CAP(max) ((max) + (max) / 8 + 64)

/* Compresses the payload p[0..n) of a data message (opcode TEXT or BINARY)
 * with the calling thread's stream into a new frame (header with RSV1 and
 * FIN, the compressed bytes without the 00 00 ff ff tail). Returns NULL
 * when the compressed form would not be smaller (send the message plain)
 * or on failure (out of memory). */
sbuf *ws_deflate_frame(int opcode, const uint8_t *p, size_t n);

/* The compressed twin of a whole unfragmented server data frame (as the
 * hub builds pushes), or NULL when it should go plain: not a data frame,
 * a payload under app.deflateMinSize, or no gain. */
sbuf *ws_deflate_push(const sbuf *frame);

/* Inflates the compressed payload in[0..n) of one message with the calling
 * thread's stream (the 00 00 ff ff tail is appended here). On success
 * returns 0 and *out (malloc'd, the caller frees it) holds *outlen <= max
 * bytes. Otherwise *out is NULL and the answer is a close code: 1009 (the
 * message would inflate past max: inflating stops there), 1007 (not valid
 * DEFLATE data, or cut short), 1011 (out of memory). */
int ws_inflate_message(const uint8_t *in, size_t n, size_t max, uint8_t **out, size_t *outlen);

/* Node-wide counters (any thread). */
typedef struct ws_deflate_stats {
    long connections;             /* open connections that negotiated the extension */
    long compressed;              /* messages compressed (a push: once per worker) */
    long compress_skipped;        /* compressed, no smaller: sent plain */
    long compress_in, compress_out;   /* their payload bytes, before and after */
    long inflated;                /* messages received compressed and inflated */
    long inflate_in, inflate_out;
    long inflate_errors;          /* refused: bad data (1007) or too big (1009) */
    long zlib_bytes;              /* memory of the workers' streams and buffers */
} ws_deflate_stats;
void ws_deflate_stats_get(ws_deflate_stats *s);

/* A connection negotiated the extension (+1) / closed (-1). */
void ws_deflate_conn(int delta);

/* Makes the calling thread's deflate stream now, if it has none: a worker
 * calls it when a client negotiates the extension, so that the stream's
 * set-up (its tables are cleared: ~256 KiB touched) is not paid by the
 * first push. */
void ws_deflate_prepare(void);

/* Frees the calling thread's streams now (worker threads free theirs when
 * they end; tests and fuzzers call this). */
void ws_deflate_thread_free(void);

#endif
