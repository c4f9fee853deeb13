/* reader.h — incremental reader of the client side of a WebSocket: turns the
 * byte stream into messages and control frames, enforcing RFC 6455 strictly
 * (fragmentation rules, control frames between fragments, UTF-8 of text
 * messages also across fragments, message size cap).
 *
 * Memory: the state lives in a heap object that exists only while the
 * connection has an incomplete frame or message; *rd is NULL otherwise, so an
 * idle connection costs one pointer. Complete frames found whole in the input
 * are unmasked in place and handed out without a copy. */
#ifndef IMGATE_WS_READER_H
#define IMGATE_WS_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ws_reader ws_reader;

typedef struct ws_reader_cb {
    /* A complete text (WS_OP_TEXT, valid UTF-8) or binary message. */
    int (*on_message)(void *ud, int opcode, uint8_t *data, size_t len);
    int (*on_ping)(void *ud, const uint8_t *data, size_t len);
    int (*on_pong)(void *ud, const uint8_t *data, size_t len);
    /* A valid close frame; code is 1005 when it carried no status. */
    int (*on_close)(void *ud, uint16_t code, const uint8_t *reason, size_t len);
} ws_reader_cb;
/* Each callback returns 0 to go on, non-zero to stop reading at once
 * (e.g. the connection was closed): ws_reader_feed then returns -1. */

/* Feeds len bytes (which may be modified: unmasking happens in place).
 * Returns 0: all consumed (an incomplete tail is kept in *rd);
 *        -1: a callback asked to stop;
 *        1002/1007/1009: protocol error, the close code to send; the
 *        connection must not be fed again. */
int ws_reader_feed(ws_reader **rd, uint8_t *data, size_t len, uint64_t max_message,
                   const ws_reader_cb *cb, void *ud);

/* Extensions the connection negotiated, for ws_reader_feed_ext. */
#define WS_READER_DEFLATE 1u
/* ws_reader_feed for a connection with extensions. WS_READER_DEFLATE
 * (permessage-deflate, RFC 7692): RSV1 on the first frame of a data message
 * marks it compressed (on a continuation or control frame: 1002); its
 * compressed bytes may take WS_DEFLATE_WIRE_CAP(max_message) (ws/deflate.h,
 * else 1009); once complete it is inflated with the thread's stream and
 * handed on like any message: over max_message 1009 (inflating stops
 * there), bad DEFLATE data 1007, then UTF-8 of text (1007). Nothing about
 * compression outlives the message. */
int ws_reader_feed_ext(ws_reader **rd, uint8_t *data, size_t len, uint64_t max_message,
                       unsigned ext, const ws_reader_cb *cb, void *ud);

/* Frees the state (if any) and sets *rd to NULL. */
void ws_reader_free(ws_reader **rd);

/* Bytes held by the state (0 when *rd is NULL); for /system/state. */
size_t ws_reader_held(const ws_reader *rd);

#endif
