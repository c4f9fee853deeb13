/* session.h — a connection after the WebSocket upgrade: feeds the bytes to
 * the frame reader, answers pings, runs the close handshake and hands each
 * text message to the IM protocol (or echoes it on app.echoPath). */
#ifndef IMGATE_WS_SESSION_H
#define IMGATE_WS_SESSION_H

#include <stddef.h>
#include <stdint.h>

struct conn;

/* Switches c to WebSocket after the 101 answer was queued; `rest` holds
 * bytes the client sent after its upgrade request (may be empty). */
void ws_session_start(struct conn *c, int echo, uint8_t *rest, size_t n);
void ws_session_feed(struct conn *c, uint8_t *p, size_t n);
void ws_session_ping(struct conn *c);
/* c is entering CLOSING: free the reader, unbind the user. */
void ws_session_closing(struct conn *c);
/* c is being closed: release everything the session holds. */
void ws_session_end(struct conn *c);

/* Sends one text message (framed here) to c. */
int ws_session_send_text(struct conn *c, const char *p, size_t n);

#endif
