/* rpc_req.h — decoding and validation of the requests the gRPC server
 * receives (protobuf.AccServer, SPEC §6): method path + payload bytes to a
 * decoded request, a gRPC status or a retCode. Pure: no gRPC, no workers,
 * no global state (the libFuzzer target tests/fuzz/fuzz_rpc.c drives it). */
#ifndef IMGATE_RPC_REQ_H
#define IMGATE_RPC_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "im/dlog.h"

struct ProtobufCMessage;

#define RPC_PATH_PREFIX "/protobuf.AccServer/"

typedef enum rpc_method {
    RPC_M_UNKNOWN = -1,
    RPC_M_QUERY_ONLINE = 0,      /* QueryUsersOnline */
    RPC_M_SEND_MSG,              /* SendMsg */
    RPC_M_SEND_MSG_ALL,          /* SendMsgAll */
    RPC_M_GET_USER_LIST,         /* GetUserList */
    RPC_M_KICK_USER,             /* KickUser (imgate only) */
    RPC_M_COUNT
} rpc_method;

/* gRPC status codes: the values are the wire contract (grpc_status_code). */
enum rpc_status {
    RPC_ST_OK = 0,
    RPC_ST_INVALID_ARGUMENT = 3,
    RPC_ST_RESOURCE_EXHAUSTED = 8,
    RPC_ST_UNIMPLEMENTED = 12,
};

/* A decoded request. The string views are NUL-terminated and owned by pb
 * (the unpacked message) until rpc_req_free. */
typedef struct rpc_req {
    rpc_method method;
    int status;                  /* enum rpc_status; not OK: answer with it */
    uint32_t code;               /* status OK: 0 = act on it, else the retCode to answer */
    const char *why;             /* static text for a non-OK status or code */
    uint32_t appid;
    const char *seq; size_t seqlen;
    const char *uid; size_t uidlen;   /* the userID as sent */
    size_t except_len;           /* SendMsgAll: bytes of uid to exclude (0 = nobody) */
    const char *cms; size_t cmslen;   /* "msg" when the request left it empty */
    const char *msg; size_t msglen;   /* KickUser: the reason */
    int has_id, id_ok;           /* SendMsg/SendMsgAll of an imgate peer: the entry id */
    dlog_id id;                  /* (inbox or room history) of a logged message */
    struct ProtobufCMessage *pb;
} rpc_req;

/* The method named by a path "/protobuf.AccServer/<Method>" (not
 * NUL-terminated), or RPC_M_UNKNOWN. */
rpc_method rpc_req_method(const char *path, size_t len);
/* The path of m (NULL for RPC_M_UNKNOWN). */
const char *rpc_req_path(rpc_method m);

/* Decodes and validates the payload of a call to path. Returns out->status:
 * UNIMPLEMENTED (unknown method), RESOURCE_EXHAUSTED (len > maxlen),
 * INVALID_ARGUMENT (not a valid encoding of the request), or OK; with OK,
 * out->code is 0 or the retCode to answer without acting (1001 invalid
 * UTF-8, a NUL in a string, or an id that is not "<ms>-<seq>"; 1002 a SendMsg or KickUser userID that is
 * empty or not shorter than PRESENCE_MAX_ID bytes). out must be freed with rpc_req_free
 * whatever the result. */
int rpc_req_decode(const char *path, size_t pathlen, const uint8_t *data, size_t len,
                   size_t maxlen, rpc_req *out);
void rpc_req_free(rpc_req *r);

#endif
