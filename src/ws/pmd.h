/* pmd.h — negotiation of permessage-deflate (RFC 7692) in the opening
 * handshake: a strict parser of the client's Sec-WebSocket-Extensions
 * header and the server's answer. Pure functions, no allocation.
 *
 * The server always answers server_no_context_takeover and
 * client_no_context_takeover, so no connection keeps compression state
 * between messages (ws/deflate.h: one zlib stream per worker). It accepts
 * the first offer of permessage-deflate that it can honour; an offer is
 * declined when it holds an unknown, repeated or malformed parameter, or a
 * server_max_window_bits below 15 (a push is compressed once, with the
 * full window, for every recipient). */
#ifndef IMGATE_WS_PMD_H
#define IMGATE_WS_PMD_H

#include <stddef.h>

#define WS_PMD_ANSWER_MAX 160   /* room for the longest answer, with its NUL */

/* What one offer asked for (the parameters of RFC 7692 §7.1). */
typedef struct ws_pmd_offer {
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits;    /* 0 = absent, else 8..15 */
    int client_max_window_bits;    /* 0 = absent, -1 = without a value, else 8..15 */
} ws_pmd_offer;

/* Results of ws_pmd_negotiate. */
enum { WS_PMD_DECLINED = 0, WS_PMD_ACCEPTED = 1, WS_PMD_MALFORMED = -1 };

/* Reads the Sec-WebSocket-Extensions value `header` (several header lines
 * already joined with ','). WS_PMD_ACCEPTED: an offer was accepted and
 * answer (cap bytes, at least WS_PMD_ANSWER_MAX) holds the value of the
 * answer's Sec-WebSocket-Extensions; WS_PMD_DECLINED: no offer of
 * permessage-deflate the server can take; WS_PMD_MALFORMED: the header does
 * not follow RFC 6455 §9.1 (then nothing is accepted either). *why (may be
 * NULL) gets a short English reason for a decline or malformed header. */
int ws_pmd_negotiate(const char *header, char *answer, size_t cap, const char **why);

/* The answer to an accepted offer into out (cap bytes); returns its length,
 * 0 if cap is too small. */
size_t ws_pmd_answer(const ws_pmd_offer *o, char *out, size_t cap);

#endif
