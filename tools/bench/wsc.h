/* wsc.h — WebSocket client codec (RFC 6455, client side): the opening
 * request, checking the server's answer (status, Sec-WebSocket-Accept),
 * masked frame encoding and unmasked frame parsing. Pure functions; the key
 * of a connection is derived from a seed, so a connection stores nothing to
 * check the answer later. */
#ifndef BENCH_WSC_H
#define BENCH_WSC_H

#include <stddef.h>
#include <stdint.h>

enum { WSC_CONT = 0x0, WSC_TEXT = 0x1, WSC_BINARY = 0x2,
       WSC_CLOSE = 0x8, WSC_PING = 0x9, WSC_PONG = 0xA };

#define WSC_KEY_LEN 24
#define WSC_ACCEPT_LEN 28
#define WSC_MAX_HEAD 8192        /* longest handshake answer accepted */
#define WSC_MAX_PAYLOAD (16u << 20)

/* The Sec-WebSocket-Key (24 chars + NUL) for a seed. */
void wsc_key(uint64_t seed, char out[WSC_KEY_LEN + 1]);

/* The Sec-WebSocket-Accept (28 chars + NUL) a server must answer for key.
 * Returns 0, -1 if the digest failed. */
int wsc_accept(const char *key, char out[WSC_ACCEPT_LEN + 1]);

/* What a client offers for permessage-deflate (RFC 7692), as browsers do. */
#define WSC_DEFLATE_OFFER "permessage-deflate; client_max_window_bits"

/* Writes the upgrade request, with a Sec-WebSocket-Extensions line holding
 * extensions unless it is NULL. Returns its length, 0 if cap is too small. */
size_t wsc_request(char *out, size_t cap, const char *host, const char *path, const char *key,
                   const char *extensions);

enum { WSC_HS_NEED = 0, WSC_HS_DONE = 1, WSC_HS_BAD = -1 };

/* Looks at the first n bytes the server sent. WSC_HS_NEED: the head is not
 * complete yet; WSC_HS_BAD: no valid HTTP head within WSC_MAX_HEAD bytes;
 * WSC_HS_DONE: *status is the HTTP status, *accept_ok whether the accept
 * value matches key (only meaningful for 101), *head_len the bytes of the
 * head including the blank line (frames may follow). */
int wsc_response(const char *p, size_t n, const char *key, int *status, int *accept_ok,
                 size_t *head_len);
/* Whether the answer head p[0..n) accepted permessage-deflate with no
 * context takeover for either side (what a client that keeps no state
 * between messages needs: the server must then compress each message
 * alone). */
int wsc_deflate_accepted(const char *p, size_t n);

/* One masked frame (fin set) of payload into out. Returns the frame length,
 * 0 if cap is too small. */
size_t wsc_encode(uint8_t *out, size_t cap, unsigned opcode, const void *payload, size_t n,
                  uint32_t mask);

typedef struct wsc_frame {
    unsigned fin, opcode;
    unsigned rsv1;           /* a compressed message (permessage-deflate) */
    size_t head;             /* header bytes */
    size_t len;              /* payload bytes */
} wsc_frame;

enum { WSC_F_NEED = 0, WSC_F_OK = 1, WSC_F_BAD = -1 };

/* Parses one server frame from p[0..n). WSC_F_OK: the whole frame is there
 * (payload at p + f->head); WSC_F_NEED: more bytes needed; WSC_F_BAD: a
 * protocol violation (masked, RSV bits, unknown opcode, bad control frame,
 * longer than WSC_MAX_PAYLOAD). With deflate (permessage-deflate
 * negotiated) RSV1 is let through on data frames (f->rsv1); which of them
 * may carry it is the caller's rule. */
int wsc_parse(const uint8_t *p, size_t n, int deflate, wsc_frame *f);

#endif
