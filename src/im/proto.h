/* proto.h — the IM protocol over WebSocket (SPEC §2): one JSON object per
 * text frame {"seq","cmd","data"}, answered with {"seq","cmd","response":
 * {"code","codeMsg","data"}}. Commands: login, heartbeat, ping, logout. */
#ifndef IMGATE_PROTO_H
#define IMGATE_PROTO_H

#include <stddef.h>
#include <stdint.h>

struct conn;

/* Handles one text message from c. */
void proto_handle(struct conn *c, const char *msg, size_t len);
/* Answers a binary message (the protocol is text only). */
void proto_reject_binary(struct conn *c);

/* Parses an appID given as a JSON-ish text value: digits only, fits in
 * uint32. Returns 0 or -1. Shared with the HTTP API. */
int proto_parse_appid(const char *s, size_t n, uint32_t *out);

#endif
