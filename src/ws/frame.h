/* frame.h — RFC 6455 frame primitives: header parse (client frames) and
 * encode (server frames), unmasking, close-payload checks. Pure functions,
 * no allocation. */
#ifndef IMGATE_WS_FRAME_H
#define IMGATE_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONT = 0x0, WS_OP_TEXT = 0x1, WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8, WS_OP_PING = 0x9, WS_OP_PONG = 0xA
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000, WS_CLOSE_GOING_AWAY = 1001, WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003, WS_CLOSE_NO_STATUS = 1005, WS_CLOSE_ABNORMAL = 1006,
    WS_CLOSE_BAD_DATA = 1007, WS_CLOSE_POLICY = 1008, WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011
};

#define WS_MAX_HEADER 14   /* 2 + 8 (length) + 4 (mask) */

typedef struct ws_frame_hdr {
    uint8_t fin;
    uint8_t rsv;          /* the three RSV bits, (b0 >> 4) & 7 */
    uint8_t opcode;
    uint8_t masked;
    uint8_t mask[4];
    uint8_t hdr_len;      /* bytes of header including the mask key */
    uint64_t len;         /* payload length */
} ws_frame_hdr;

/* Parses one client frame header.
 * Returns >0: header complete (the header length), *h filled;
 *          0: need more bytes;
 *         <0: protocol violation, the negated close code to send:
 *             -1002 (RSV bits set, unknown opcode, fragmented or >125-byte
 *             control frame, unmasked frame, 64-bit length with MSB set),
 *             -1009 (payload longer than max_payload). */
int ws_frame_parse_header(const uint8_t *p, size_t n, uint64_t max_payload, ws_frame_hdr *h);

/* The rsv value of RSV1 (permessage-deflate: a compressed message). */
#define WS_RSV1 4
/* The same, also letting the RSV bits in rsv_ok through on data frames (a
 * negotiated extension: WS_RSV1 for permessage-deflate). A control frame
 * with any RSV bit is still -1002; which data frames may carry the bit is
 * the reader's rule. */
int ws_frame_parse_header_ext(const uint8_t *p, size_t n, uint64_t max_payload,
                              uint8_t rsv_ok, ws_frame_hdr *h);

/* XORs n bytes with the mask key; `offset` is the payload offset of p[0]
 * (so a payload can be unmasked in pieces). */
void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* Writes an unmasked server frame header for a payload of len bytes into
 * out (at least 10 bytes). Returns the header length (2, 4 or 10). */
size_t ws_frame_header_encode(uint8_t *out, int opcode, int fin, uint64_t len);

/* Checks a received close payload: empty is fine (1005 = no status);
 * 1 byte → 1002; a code that must not be sent (<1000, 1004-1006, 1015,
 * 1016-2999 unassigned, >= 5000) → 1002; invalid UTF-8 reason → 1007.
 * Returns 0 if valid, else the close code to answer with. *code gets the
 * received code (or 1005). */
int ws_close_payload_check(const uint8_t *p, size_t n, uint16_t *code);

/* Builds a complete close frame (header + 2-byte code + reason truncated to
 * fit 123 bytes) into out (at least 2 + 125 bytes). Returns its length. */
size_t ws_frame_build_close(uint8_t *out, uint16_t code, const char *reason);

#endif
