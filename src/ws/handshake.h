/* handshake.h — validation of a WebSocket upgrade request (RFC 6455 §4.2)
 * and the 101 response with Sec-WebSocket-Accept. */
#ifndef IMGATE_WS_HANDSHAKE_H
#define IMGATE_WS_HANDSHAKE_H

#include <stddef.h>

typedef struct ws_upgrade_req {
    const char *method;        /* "GET" */
    int http_major, http_minor;
    const char *host;          /* header values, NULL when absent */
    const char *upgrade;
    const char *connection;
    const char *key;           /* Sec-WebSocket-Key */
    const char *version;       /* Sec-WebSocket-Version */
} ws_upgrade_req;

/* Returns 0 when the request is a valid upgrade; otherwise the HTTP status to
 * answer (400, or 426 for a version other than 13 — the answer then carries
 * "Sec-WebSocket-Version: 13") and *reason, a short English explanation
 * ("missing Sec-WebSocket-Key", "Connection header lacks 'upgrade'", ...).
 * Rules: method GET; HTTP/1.1 or later; Host present; Upgrade contains the
 * token "websocket" and Connection the token "upgrade" (case-insensitive,
 * comma-separated lists); key = base64 of exactly 16 bytes; version "13". */
int ws_handshake_validate(const ws_upgrade_req *r, const char **reason);

/* Computes Sec-WebSocket-Accept for key into out (29 bytes incl. NUL). */
void ws_accept_key(const char *key, char out[29]);

/* Writes the complete "101 Switching Protocols" response (ending with the
 * blank line) into out. Returns its length, or 0 if cap is too small. */
size_t ws_handshake_response(char *out, size_t cap, const char *key);
/* The same with a Sec-WebSocket-Extensions line holding extensions (the
 * accepted ones, ws/pmd.h), or without one when it is NULL. */
size_t ws_handshake_response_ext(char *out, size_t cap, const char *key, const char *extensions);

#endif
