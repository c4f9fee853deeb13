/* rpc_req.c — the gRPC server's request decoding and validation (see
 * rpc_req.h): method paths, protobuf-c unpacking, and the rules a request
 * must meet before its strings may go into WebSocket text frames. */
#include "cluster/rpc_req.h"

#include <string.h>

#include "acc.pb-c.h"
#include "im/codes.h"
#include "im/presence.h"
#include "ws/utf8.h"

static const struct {
    const char *path;
    const ProtobufCMessageDescriptor *desc;
} rpc_methods[RPC_M_COUNT] = {
    [RPC_M_QUERY_ONLINE] = { RPC_PATH_PREFIX "QueryUsersOnline",
                             &protobuf__query_users_online_req__descriptor },
    [RPC_M_SEND_MSG] = { RPC_PATH_PREFIX "SendMsg", &protobuf__send_msg_req__descriptor },
    [RPC_M_SEND_MSG_ALL] = { RPC_PATH_PREFIX "SendMsgAll", &protobuf__send_msg_all_req__descriptor },
    [RPC_M_GET_USER_LIST] = { RPC_PATH_PREFIX "GetUserList",
                              &protobuf__get_user_list_req__descriptor },
    [RPC_M_KICK_USER] = { RPC_PATH_PREFIX "KickUser", &protobuf__kick_user_req__descriptor },
};

rpc_method rpc_req_method(const char *path, size_t len)
{
    for (int m = 0; m < RPC_M_COUNT; m++) {
        const char *p = rpc_methods[m].path;
        if (strlen(p) == len && memcmp(p, path, len) == 0)
            return (rpc_method)m;
    }
    return RPC_M_UNKNOWN;
}

const char *rpc_req_path(rpc_method m)
{
    return m >= 0 && m < RPC_M_COUNT ? rpc_methods[m].path : NULL;
}

/* Reads one varint from *p (before end); -1 if it is cut off or too long. */
static int rpc_req_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p == end)
            return -1;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Whether one of desc's string fields holds a NUL byte (protobuf-c would
 * silently cut the string there). Walks the top-level fields of bytes that
 * protobuf-c has already accepted; anything unexpected ends the walk. */
static int rpc_req_has_nul(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t key, n;
        if (rpc_req_varint(&p, end, &key) != 0)
            return 0;
        switch (key & 7) {
        case 0:
            if (rpc_req_varint(&p, end, &n) != 0)
                return 0;
            break;
        case 1:
        case 5:
            n = (key & 7) == 1 ? 8 : 4;
            if (n > (uint64_t)(end - p))
                return 0;
            p += n;
            break;
        case 2: {
            if (rpc_req_varint(&p, end, &n) != 0 || n > (uint64_t)(end - p))
                return 0;
            const ProtobufCFieldDescriptor *f = key >> 3 > 0xffffffffu ? NULL
                : protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
            if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)n))
                return 1;
            p += n;
            break;
        }
        default:
            return 0;
        }
    }
    return 0;
}

/* Whether every string field of the unpacked message is valid UTF-8. */
static int rpc_req_strings_utf8(const ProtobufCMessage *pb)
{
    const ProtobufCMessageDescriptor *d = pb->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        const char *s = *(char *const *)((const char *)pb + f->offset);
        if (s && utf8_validate(UTF8_ACCEPT, (const uint8_t *)s, strlen(s)) != UTF8_ACCEPT)
            return 0;
    }
    return 1;
}

static void rpc_req_view(const char **s, size_t *n, const char *v)
{
    *s = v ? v : "";
    *n = strlen(*s);
}

/* Fills the views of a SendMsg / SendMsgAll (same field layout). */
static void rpc_req_fill_send(rpc_req *r, const char *seq, uint32_t appid, const char *uid,
                              const char *cms, const char *msg, const char *id)
{
    r->appid = appid;
    if (id && *id) {                             /* an imgate peer's logged message */
        r->has_id = 1;
        r->id_ok = dlog_id_parse(id, strlen(id), &r->id) == 0;
    }
    rpc_req_view(&r->seq, &r->seqlen, seq);
    rpc_req_view(&r->uid, &r->uidlen, uid);
    rpc_req_view(&r->cms, &r->cmslen, cms);
    rpc_req_view(&r->msg, &r->msglen, msg);
    if (r->cmslen == 0)
        rpc_req_view(&r->cms, &r->cmslen, "msg");
}

static void rpc_req_fill(rpc_req *r)
{
    switch (r->method) {
    case RPC_M_QUERY_ONLINE: {
        const Protobuf__QueryUsersOnlineReq *q = (const void *)r->pb;
        r->appid = q->appid;
        rpc_req_view(&r->uid, &r->uidlen, q->userid);
        break;
    }
    case RPC_M_SEND_MSG: {
        const Protobuf__SendMsgReq *q = (const void *)r->pb;
        rpc_req_fill_send(r, q->seq, q->appid, q->userid, q->cms, q->msg, q->id);
        break;
    }
    case RPC_M_SEND_MSG_ALL: {
        const Protobuf__SendMsgAllReq *q = (const void *)r->pb;
        rpc_req_fill_send(r, q->seq, q->appid, q->userid, q->cms, q->msg, q->id);
        r->except_len = r->uidlen < PRESENCE_MAX_ID ? r->uidlen : 0;
        break;
    }
    case RPC_M_GET_USER_LIST:
        r->appid = ((const Protobuf__GetUserListReq *)(const void *)r->pb)->appid;
        break;
    case RPC_M_KICK_USER: {
        const Protobuf__KickUserReq *q = (const void *)r->pb;
        r->appid = q->appid;
        rpc_req_view(&r->uid, &r->uidlen, q->userid);
        rpc_req_view(&r->msg, &r->msglen, q->reason);
        break;
    }
    default:
        break;
    }
}

static int rpc_req_fail(rpc_req *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    return status;
}

static void rpc_req_refuse(rpc_req *r, uint32_t code, const char *why)
{
    r->code = code;
    r->why = why;
}

int rpc_req_decode(const char *path, size_t pathlen, const uint8_t *data, size_t len,
                   size_t maxlen, rpc_req *out)
{
    memset(out, 0, sizeof(*out));
    out->method = rpc_req_method(path, pathlen);
    if (out->method == RPC_M_UNKNOWN)
        return rpc_req_fail(out, RPC_ST_UNIMPLEMENTED, "unknown method");
    if (len > maxlen)
        return rpc_req_fail(out, RPC_ST_RESOURCE_EXHAUSTED, "request larger than app.maxBodyBytes");
    const ProtobufCMessageDescriptor *desc = rpc_methods[out->method].desc;
    out->pb = protobuf_c_message_unpack(desc, NULL, len, data);
    if (!out->pb)
        return rpc_req_fail(out, RPC_ST_INVALID_ARGUMENT, "request is not a valid protobuf encoding");
    rpc_req_fill(out);
    int one_user = out->method == RPC_M_SEND_MSG || out->method == RPC_M_KICK_USER;
    if (one_user && (out->uidlen == 0 || out->uidlen >= PRESENCE_MAX_ID))
        rpc_req_refuse(out, IM_USER_ID_ILLEGAL, "userID must be 1 to 19 bytes");
    else if (out->has_id && !out->id_ok)
        rpc_req_refuse(out, IM_PARAM_ILLEGAL, "id must be an entry id such as 1733300000000-0");
    else if (rpc_req_has_nul(desc, data, len))
        rpc_req_refuse(out, IM_PARAM_ILLEGAL, "strings must not contain NUL bytes");
    else if (!rpc_req_strings_utf8(out->pb))
        rpc_req_refuse(out, IM_PARAM_ILLEGAL, "strings must be valid UTF-8");
    return RPC_ST_OK;
}

void rpc_req_free(rpc_req *r)
{
    if (r->pb)
        protobuf_c_message_free_unpacked(r->pb, NULL);
    r->pb = NULL;
}
