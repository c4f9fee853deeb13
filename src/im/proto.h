/* proto.h — the IM protocol over WebSocket (SPEC §2): one JSON object per
 * text frame {"seq","cmd","data"}, answered with {"seq","cmd","response":
 * {"code","codeMsg","data"}}. Commands: login, heartbeat, ping, logout. */
#ifndef IMGATE_PROTO_H
#define IMGATE_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

/* A parsed client message; strings point into root (owned). */
typedef struct proto_msg {
    json_t *root;
    const char *seq;
    size_t seqlen;
    const char *cmd;
    size_t cmdlen;
    json_t *data;                  /* the "data" field (any type), or NULL */
    int in_arena;                  /* parsed into the thread's arena (im/jarena.h) */
} proto_msg;

/* Parses the envelope: a JSON object with a string cmd and a string (or
 * absent/null) seq; field names case-insensitive. Returns 0 (free with
 * proto_msg_free), or -1 with a short English reason in *why. */
int proto_parse(const char *msg, size_t len, proto_msg *m, const char **why);
void proto_msg_free(proto_msg *m);
/* Index of the command in the routing table, or -1 (answered 1010). */
int proto_route(const char *cmd, size_t len);
/* A field of a JSON object by case-insensitive name (NULL if absent). */
json_t *proto_field(json_t *obj, const char *name);
/* Checks login's data: IM_OK with the appID and userID (pointing into data),
 * or IM_USER_ID_ILLEGAL (1002) / IM_UNAUTHORIZED (1003). */
int proto_login_args(json_t *data, uint32_t *appid, const char **uid, size_t *uidlen);
/* Encodes a reply {"seq","cmd","response":{"code","codeMsg","data"}};
 * data_json is raw JSON. Returns a malloc'd string (free()) or NULL. */
char *proto_reply_encode(const char *seq, size_t seqlen, const char *cmd, size_t cmdlen,
                         int code, const char *data_json, size_t *len);

/* Sends c a reply (see proto_reply_encode). */
void proto_reply_raw(struct conn *c, const char *seq, size_t seqlen, const char *cmd,
                     size_t cmdlen, int code, const char *data_json);

/* Handles one text message from c. */
void proto_handle(struct conn *c, const char *msg, size_t len);
/* Answers a binary message (the protocol is text only). */
void proto_reject_binary(struct conn *c);
/* Makes this protocol the application of every (non-echo) WebSocket
 * connection (ws_session_init); call once at start-up. */
void proto_init(void);

/* Parses an appID given as a JSON-ish text value: digits only, fits in
 * uint32. Returns 0 or -1. Shared with the HTTP API. */
int proto_parse_appid(const char *s, size_t n, uint32_t *out);

#endif
