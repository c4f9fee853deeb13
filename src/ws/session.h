/* session.h — a connection after the WebSocket upgrade: feeds the bytes to
 * the frame reader, answers pings, runs the close handshake, keeps the
 * WebSocket output policy (per-connection and node-wide caps decided per
 * whole frame, slow consumers closed on a frame boundary), times
 * connections out, and hands each message to the layer above
 * (ws_session_set_app: the IM protocol) or echoes it on app.echoPath. */
#ifndef IMGATE_WS_SESSION_H
#define IMGATE_WS_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/sbuf.h"

struct conn;

/* What the layer above a WebSocket connection is told. */
typedef struct ws_session_app {
    /* A complete text (or binary) message of a non-echo connection. */
    void (*on_text)(struct conn *c, const char *p, size_t n);
    void (*on_binary)(struct conn *c);
    /* c stops being open (closing or closed): forget it (unbind the user). */
    void (*on_end)(struct conn *c);
} ws_session_app;

/* Registers the WebSocket layer with net/ and the app above it (start-up). */
void ws_session_init(const ws_session_app *app);

/* Switches c to WebSocket after the 101 answer was queued; `rest` holds
 * bytes the client sent after its upgrade request (may be empty). opts:
 * WS_SESSION_ECHO (upgraded on app.echoPath), WS_SESSION_DEFLATE (the 101
 * accepted permessage-deflate: compressed messages are read, and sent when
 * they reach app.deflateMinSize and shrink). */
enum { WS_SESSION_ECHO = 1, WS_SESSION_DEFLATE = 2 };
void ws_session_start(struct conn *c, unsigned opts, uint8_t *rest, size_t n);

/* Sends a close frame with code and reason, then FIN once everything before
 * it is written; the connection is dropped when the peer closes or after a
 * grace period. No-op unless c is open. */
void ws_session_close(struct conn *c, uint16_t code, const char *reason);

/* Results of ws_session_send_frame. */
enum { WS_SEND_OK = 0, WS_SEND_CLOSED = -1, WS_SEND_TOO_BIG = -2 };
/* Sends one whole frame (shared, not copied) to an open connection. The
 * caps are decided before its first byte is written: a frame larger than
 * app.maxOutboundBytes is refused (WS_SEND_TOO_BIG; c is untouched); a
 * connection whose queue (or the node's, app.maxOutboundBytesTotal) would
 * pass its cap is closed with 1008 after the frames it has already started,
 * without this one (WS_SEND_CLOSED). */
int ws_session_send_frame(struct conn *c, sbuf *frame);
/* Can a frame of n bytes ever be sent (n <= app.maxOutboundBytes)? */
int ws_session_frame_fits(size_t n);

/* One push for many connections (a hub job's share on one worker): the
 * plain frame, and its permessage-deflate twin, made on the first
 * recipient that negotiated the extension (so at most once per push per
 * worker, and never without such a recipient) and shared like the plain
 * one. Zero-initialise with .plain set; ws_push_release when done. */
typedef struct ws_push {
    sbuf *plain;                    /* borrowed */
    sbuf *deflated;                 /* owned; NULL: not made, or no gain */
    int tried;
} ws_push;
/* ws_session_send_frame of the frame that fits c: the compressed twin for
 * a connection that negotiated permessage-deflate (when the push reaches
 * app.deflateMinSize and shrinks), else the plain frame. */
int ws_session_send_push(struct conn *c, ws_push *p);
void ws_push_release(ws_push *p);

/* Sends one text message (framed here) to c. */
int ws_session_send_text(struct conn *c, const char *p, size_t n);

#endif
