/* fuzz_rpc.c — fuzz target for the gRPC server's request decoding
 * (cluster/rpc_req.h): rpc_req_decode over a method path, a size cap and
 * payload bytes from the input, then rpc_req_free.
 *
 * Input: [0] the path (an index into fuzz_paths[]; the NULL entry means
 * "the next line of the input is the path"), [1] the size cap (an index
 * into fuzz_caps[]), then the payload (the rest), copied to an exactly
 * sized heap buffer so ASan sees a read past its end.
 *
 * Checked: the result is one of the four statuses and equals out.status;
 * UNIMPLEMENTED exactly for an unknown path, RESOURCE_EXHAUSTED exactly for
 * a payload over the cap; a failed decode holds no message; an accepted
 * one has a retCode of 0, 1001 or 1002 with a reason; a request accepted
 * with retCode 0 has NUL-free valid UTF-8 strings of the stated lengths, a
 * SendMsg or KickUser userID of 1..19 bytes, an exclusion length that fits presence,
 * and cms never empty; re-encoding the decoded message (its known fields)
 * with protobuf-c and decoding that again gives the same request. */
#include <stdint.h>
#include <string.h>

#include "acc.pb-c.h"
#include "cluster/rpc_req.h"
#include "fuzz.h"
#include "im/codes.h"
#include "im/presence.h"
#include "ws/utf8.h"

static const char *const fuzz_paths[] = {
    RPC_PATH_PREFIX "QueryUsersOnline", RPC_PATH_PREFIX "SendMsg", RPC_PATH_PREFIX "SendMsgAll",
    RPC_PATH_PREFIX "GetUserList", RPC_PATH_PREFIX "Nope", NULL,
    RPC_PATH_PREFIX "KickUser",          /* after NULL: the seeds' indexes keep their paths */
};
#define FUZZ_NPATHS (sizeof(fuzz_paths) / sizeof(fuzz_paths[0]))

static const size_t fuzz_caps[8] = { 0, 1, 8, 32, 128, 1024, 1 << 20, (size_t)-1 };

static void fuzz_text(const char *s, size_t n)
{
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(strlen(s) == n);
    FUZZ_CHECK(utf8_validate(UTF8_ACCEPT, (const uint8_t *)s, n) == UTF8_ACCEPT);
}

/* The properties of a request accepted with retCode 0. */
static void fuzz_accepted(const rpc_req *r)
{
    switch (r->method) {
    case RPC_M_QUERY_ONLINE:
        fuzz_text(r->uid, r->uidlen);
        break;
    case RPC_M_SEND_MSG:
    case RPC_M_SEND_MSG_ALL:
        fuzz_text(r->seq, r->seqlen);
        fuzz_text(r->uid, r->uidlen);
        fuzz_text(r->cms, r->cmslen);
        fuzz_text(r->msg, r->msglen);
        FUZZ_CHECK(r->cmslen > 0);
        if (r->method == RPC_M_SEND_MSG)
            FUZZ_CHECK(r->uidlen >= 1 && r->uidlen < PRESENCE_MAX_ID);
        else
            FUZZ_CHECK(r->except_len < PRESENCE_MAX_ID &&
                       (r->except_len == 0 || r->except_len == r->uidlen));
        break;
    case RPC_M_GET_USER_LIST:
        break;
    case RPC_M_KICK_USER:
        fuzz_text(r->uid, r->uidlen);
        fuzz_text(r->msg, r->msglen);             /* the reason */
        FUZZ_CHECK(r->uidlen >= 1 && r->uidlen < PRESENCE_MAX_ID);
        break;
    default:
        FUZZ_CHECK(0);
    }
}

static int fuzz_same_str(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Packs the decoded message again (without the unknown fields, which the
 * server ignores: protobuf-c keeps e.g. an overlong-encoded field number 0
 * and then writes it back as a plain 0, which nothing decodes) and decodes
 * that: the same request. */
static void fuzz_round_trip(const char *path, const rpc_req *r)
{
    unsigned unknown = r->pb->n_unknown_fields;
    r->pb->n_unknown_fields = 0;
    size_t n = protobuf_c_message_get_packed_size(r->pb);
    uint8_t *buf = malloc(n ? n : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(protobuf_c_message_pack(r->pb, buf) == n);
    r->pb->n_unknown_fields = unknown;
    rpc_req again;
    FUZZ_CHECK(rpc_req_decode(path, strlen(path), buf, n, (size_t)-1, &again) == RPC_ST_OK);
    FUZZ_CHECK(again.method == r->method && again.code == r->code && again.appid == r->appid);
    FUZZ_CHECK(fuzz_same_str(again.seq, again.seqlen, r->seq, r->seqlen));
    FUZZ_CHECK(fuzz_same_str(again.uid, again.uidlen, r->uid, r->uidlen));
    FUZZ_CHECK(fuzz_same_str(again.cms, again.cmslen, r->cms, r->cmslen));
    FUZZ_CHECK(fuzz_same_str(again.msg, again.msglen, r->msg, r->msglen));
    FUZZ_CHECK(again.except_len == r->except_len);
    rpc_req_free(&again);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    const char *path = fuzz_paths[fuzz_u8(&in) % FUZZ_NPATHS];
    size_t cap = fuzz_caps[fuzz_u8(&in) % 8];
    char *own_path = NULL;
    if (!path) {
        size_t pl;
        const uint8_t *p = fuzz_line(&in, &pl);
        path = own_path = fuzz_strdup(p, pl);
    }
    uint8_t *payload = fuzz_memdup(in.p, in.n);

    rpc_req r;
    int st = rpc_req_decode(path, strlen(path), payload, in.n, cap, &r);
    FUZZ_CHECK(st == r.status);
    FUZZ_CHECK(st == RPC_ST_OK || st == RPC_ST_INVALID_ARGUMENT || st == RPC_ST_RESOURCE_EXHAUSTED ||
               st == RPC_ST_UNIMPLEMENTED);
    FUZZ_CHECK((st == RPC_ST_UNIMPLEMENTED) == (rpc_req_method(path, strlen(path)) == RPC_M_UNKNOWN));
    if (st != RPC_ST_UNIMPLEMENTED)
        FUZZ_CHECK((st == RPC_ST_RESOURCE_EXHAUSTED) == (in.n > cap));
    if (st != RPC_ST_OK) {
        FUZZ_CHECK(r.pb == NULL && r.why != NULL);
    } else {
        FUZZ_CHECK(r.pb != NULL);
        FUZZ_CHECK(r.code == 0 || r.code == IM_PARAM_ILLEGAL || r.code == IM_USER_ID_ILLEGAL);
        FUZZ_CHECK(r.code == 0 || r.why != NULL);
        if (r.code == 0) {
            fuzz_accepted(&r);
            fuzz_round_trip(path, &r);
        }
    }
    rpc_req_free(&r);
    FUZZ_CHECK(r.pb == NULL);

    free(payload);
    free(own_path);
    return 0;
}
