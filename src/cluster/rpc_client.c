/* rpc_client.c — calls to peer nodes' protobuf.AccServer (see rpc.h): one
 * channel per peer "ip:port", made on first use and kept until rpc_stop,
 * each peer's health (calls, failures, skipping with back-off), and the
 * unary calls themselves. A call is one batch on the shared completion
 * queue; its rpc_ccall is owned by the queue thread from the moment the
 * batch is started until done has run. Peers and in-flight calls are kept
 * under g_rpc.mu (calls are rare next to messages). */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acc.pb-c.h"
#include "cluster/rpc_int.h"
#include "cluster/rpc_req.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/node.h"

#define RPC_PEER_NAME 128            /* longest "ip:port" + 1 */
#define RPC_SKIP_AFTER 2             /* consecutive failures before skipping */
#define RPC_BACKOFF_FIRST_MS 1000
#define RPC_FORCED_MAX 64            /* must-calls in flight to a skipped peer, at most */
#define RPC_RECONNECT_FIRST_MS 200   /* channel reconnect back-off: 200 ms .. 1 s */
#define RPC_RECONNECT_MAX_MS 1000
#define RPC_CONNECT_MIN_MS 1000      /* shortest time a connection attempt is given */
#define RPC_CONNECT_MAX_MS 20000
#define RPC_MAX_ANSWER (64 << 20)    /* a GetUserList answer may be large */
#define RPC_ERR_MAX 160

typedef struct rpc_peer {
    struct rpc_peer *next;
    grpc_channel *ch;
    long calls, failures;
    int consecutive;                 /* failures since the last success */
    int backoff_ms;                  /* current skip period; 0 = not skipping */
    uint64_t skip_until;             /* rpc_now_ms() */
    int trial;                       /* the one call allowed after a skip is in flight */
    int forced;                      /* must-calls made while skipped, in flight */
    char last_error[RPC_ERR_MAX];
    char name[RPC_PEER_NAME];
} rpc_peer;

typedef struct rpc_ccall {
    rpc_tag tag;
    grpc_call *call;
    rpc_peer *peer;
    rpc_method method;
    int trial;
    int forced;                      /* made while its peer was skipped (rpc_peer.forced) */
    rpc_done_fn done;
    void *ud;
    grpc_byte_buffer *out, *in;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    struct rpc_ccall *prev, *next;   /* in flight */
} rpc_ccall;

static struct {
    rpc_peer *peers;
    rpc_ccall *calls;
} rpc_cli;

static const char *const rpc_status_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
};

/* ---------- peers (under g_rpc.mu) ---------- */

/* A channel whose reconnect back-off stays short (a restarted peer is
 * found again within about a second). gRPC also uses the "min reconnect
 * back-off" as the time a connection attempt is given, so that one is
 * cluster.rpcTimeout (1..20 s) rather than 200 ms. */
static grpc_channel *rpc_cli_channel(const char *target)
{
    int connect_ms = g_node.cfg.rpcTimeout;
    if (connect_ms < RPC_CONNECT_MIN_MS)
        connect_ms = RPC_CONNECT_MIN_MS;
    if (connect_ms > RPC_CONNECT_MAX_MS)
        connect_ms = RPC_CONNECT_MAX_MS;
    grpc_arg args[4];
    memset(args, 0, sizeof(args));
    const char *keys[4] = { GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                            GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH };
    const int vals[4] = { RPC_RECONNECT_FIRST_MS, connect_ms, RPC_RECONNECT_MAX_MS, RPC_MAX_ANSWER };
    for (int i = 0; i < 4; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)keys[i];
        args[i].value.integer = vals[i];
    }
    grpc_channel_args ca = { 4, args };
    grpc_channel_credentials *creds = rpc_sec_channel_creds();   /* plaintext or mutual TLS */
    grpc_channel *ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

static rpc_peer *rpc_cli_find(const char *name)
{
    for (rpc_peer *p = rpc_cli.peers; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static rpc_peer *rpc_cli_peer(const char *name)
{
    rpc_peer *p = rpc_cli_find(name);
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->ch = rpc_cli_channel(name);
    if (!p->ch) {
        free(p);
        return NULL;
    }
    p->next = rpc_cli.peers;
    rpc_cli.peers = p;
    return p;
}

static int rpc_cli_skipping(const rpc_peer *p, uint64_t now)
{
    return p->consecutive >= RPC_SKIP_AFTER && (p->trial || now < p->skip_until);
}

/* Whether a call to p may go out now; marks it as the trial call when p's
 * back-off has just run out. */
static int rpc_cli_admit(rpc_peer *p, rpc_ccall *c)
{
    if (p->consecutive < RPC_SKIP_AFTER)
        return 1;
    if (rpc_cli_skipping(p, rpc_now_ms()))
        return 0;
    p->trial = c->trial = 1;
    return 1;
}

/* rpc_cli_admit, or for a must-call (force) to a skipped peer: made while
 * fewer than RPC_FORCED_MAX such calls are in flight (a peer that hangs
 * holds each until its deadline: they must not pile up without bound). */
static int rpc_cli_admit_f(rpc_peer *p, rpc_ccall *c, int force)
{
    if (rpc_cli_admit(p, c))
        return 1;
    if (!force || p->forced >= RPC_FORCED_MAX)
        return 0;
    c->forced = 1;
    return 1;
}

/* The outcome of a call for its peer's health. */
static void rpc_cli_account(rpc_ccall *c, int ok, const char *err)
{
    rpc_peer *p = c->peer;
    if (c->trial)
        p->trial = 0;
    if (!ok && g_rpc.stopping)
        return;                                  /* cancelled by rpc_stop: no verdict */
    if (ok) {
        p->consecutive = 0;
        p->backoff_ms = 0;
        p->skip_until = 0;
        return;
    }
    p->failures++;
    p->consecutive++;
    snprintf(p->last_error, sizeof(p->last_error), "%s", err);
    if (p->consecutive < RPC_SKIP_AFTER || (!c->trial && p->backoff_ms))
        return;                                  /* not (newly) skipping */
    int max = g_node.cfg.peerBackoff > 1 ? g_node.cfg.peerBackoff * 1000 : RPC_BACKOFF_FIRST_MS;
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : RPC_BACKOFF_FIRST_MS;
    if (p->backoff_ms > max)
        p->backoff_ms = max;
    p->skip_until = rpc_now_ms() + (uint64_t)p->backoff_ms;
    log_warn("rpc: peer %s failed %d times in a row (%s): skipped for %d ms", p->name,
             p->consecutive, err, p->backoff_ms);
}

/* ---------- calls ---------- */

static void rpc_cli_free(rpc_ccall *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    if (c->out)
        grpc_byte_buffer_destroy(c->out);
    if (c->in)
        grpc_byte_buffer_destroy(c->in);
    grpc_metadata_array_destroy(&c->init_md);
    grpc_metadata_array_destroy(&c->trail_md);
    grpc_slice_unref(c->details);
    free(c);
}

static void rpc_cli_unlink(rpc_ccall *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        rpc_cli.calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* "STATUS: details", printable ASCII only (it ends up in JSON and logs). */
static void rpc_cli_status_text(const rpc_ccall *c, char *out, size_t cap)
{
    const char *name = (unsigned)c->status < sizeof(rpc_status_names) / sizeof(rpc_status_names[0])
        ? rpc_status_names[c->status] : "STATUS";
    size_t dl = GRPC_SLICE_LENGTH(c->details);
    const char *d = (const char *)GRPC_SLICE_START_PTR(c->details);
    int n = snprintf(out, cap, dl ? "%s: %.*s" : "%s", name, (int)(dl > 120 ? 120 : dl), d);
    for (int i = 0; n > 0 && i < n && (size_t)i < cap - 1; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            out[i] = '?';
}

/* res from an unpacked answer; the userIDs' lengths go to a new *lens. */
static int rpc_cli_fill(rpc_method method, const ProtobufCMessage *m, rpc_result *res,
                        size_t **lens)
{
    if (method == RPC_M_QUERY_ONLINE) {
        const Protobuf__QueryUsersOnlineRsp *q = (const void *)m;
        res->ret_code = q->retcode;
        res->err = q->errmsg;
        res->online = q->online;
    } else if (method == RPC_M_SEND_MSG) {
        const Protobuf__SendMsgRsp *r = (const void *)m;
        res->ret_code = r->retcode;
        res->err = r->errmsg;
    } else if (method == RPC_M_SEND_MSG_ALL) {
        const Protobuf__SendMsgAllRsp *r = (const void *)m;
        res->ret_code = r->retcode;
        res->err = r->errmsg;
    } else if (method == RPC_M_KICK_USER) {
        const Protobuf__KickUserRsp *k = (const void *)m;
        res->ret_code = k->retcode;
        res->err = k->errmsg;
        res->kicked = k->kicked;
    } else {
        const Protobuf__GetUserListRsp *u = (const void *)m;
        res->ret_code = u->retcode;
        res->err = u->errmsg;
        *lens = u->n_userid ? malloc(u->n_userid * sizeof(size_t)) : NULL;
        if (u->n_userid && !*lens)
            return -1;
        for (size_t i = 0; i < u->n_userid; i++)
            (*lens)[i] = strlen(u->userid[i]);
        res->nusers = u->n_userid;
        res->users = (const char *const *)u->userid;
        res->user_lens = *lens;
    }
    return 0;
}

/* Fills res from the peer's answer message; returns the unpacked message
 * (to free after done) or NULL when it cannot be decoded. */
static ProtobufCMessage *rpc_cli_decode(rpc_ccall *c, rpc_result *res, size_t **lens)
{
    static const ProtobufCMessageDescriptor *const descs[RPC_M_COUNT] = {
        [RPC_M_QUERY_ONLINE] = &protobuf__query_users_online_rsp__descriptor,
        [RPC_M_SEND_MSG] = &protobuf__send_msg_rsp__descriptor,
        [RPC_M_SEND_MSG_ALL] = &protobuf__send_msg_all_rsp__descriptor,
        [RPC_M_GET_USER_LIST] = &protobuf__get_user_list_rsp__descriptor,
        [RPC_M_KICK_USER] = &protobuf__kick_user_rsp__descriptor,
    };
    grpc_byte_buffer_reader r;
    if (!c->in || !grpc_byte_buffer_reader_init(&r, c->in))
        return NULL;
    grpc_slice body = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *m = protobuf_c_message_unpack(descs[c->method], NULL, GRPC_SLICE_LENGTH(body),
                                                    GRPC_SLICE_START_PTR(body));
    grpc_slice_unref(body);
    if (!m)
        return NULL;
    if (rpc_cli_fill(c->method, m, res, lens) != 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    res->ok = 1;
    return m;
}

/* The call's batch is complete (on the queue thread): health, then done. */
static void rpc_cli_on_done(rpc_tag *t, int ok)
{
    rpc_ccall *c = (rpc_ccall *)t;
    rpc_result res;
    memset(&res, 0, sizeof(res));
    char err[RPC_ERR_MAX] = "";
    size_t *lens = NULL;
    ProtobufCMessage *m = NULL;
    if (!ok)
        snprintf(err, sizeof(err), "the call could not be made");
    else if (c->status != GRPC_STATUS_OK)
        rpc_cli_status_text(c, err, sizeof(err));
    else if (!(m = rpc_cli_decode(c, &res, &lens)))
        snprintf(err, sizeof(err), "undecodable answer");
    if (!res.ok)
        res.err = err;
    /* a peer without an (imgate-only) method answered: it is healthy */
    int answered = res.ok || (ok && c->status == GRPC_STATUS_UNIMPLEMENTED);
    pthread_mutex_lock(&g_rpc.mu);
    rpc_cli_unlink(c);
    if (c->forced)
        c->peer->forced--;
    rpc_cli_account(c, answered, err);
    pthread_mutex_unlock(&g_rpc.mu);
    c->done(c->ud, &res);
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    free(lens);
    rpc_cli_free(c);
}

/* Creates the call and starts its one batch (under g_rpc.mu). */
static int rpc_cli_start(rpc_ccall *c)
{
    int ms = g_node.cfg.rpcTimeout > 0 ? g_node.cfg.rpcTimeout : 1;
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(ms, GPR_TIMESPAN));
    grpc_slice path = grpc_slice_from_static_string(rpc_req_path(c->method));
    c->call = grpc_channel_create_call(c->peer->ch, NULL, GRPC_PROPAGATE_DEFAULTS, g_rpc.cq, path,
                                       NULL, deadline, NULL);
    if (!c->call)
        return -1;
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;           /* cluster.rpcToken, if set */
    ops[0].data.send_initial_metadata.metadata =
        (grpc_metadata *)rpc_sec_call_md(&ops[0].data.send_initial_metadata.count);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->out;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->in;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->trail_md;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    c->tag.fn = rpc_cli_on_done;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, 6, &c->tag, NULL);
    if (e != GRPC_CALL_OK) {
        log_error("rpc: cannot call %s: %s", c->peer->name, grpc_call_error_to_string(e));
        return -1;
    }
    g_rpc.ops++;
    c->peer->calls++;
    c->peer->forced += c->forced;
    c->next = rpc_cli.calls;
    if (c->next)
        c->next->prev = c;
    rpc_cli.calls = c;
    return 0;
}

/* Sends the packed request `out` (owned from here on) to peer. */
/* force: made even while the peer is skipped (its outcome still counts). */
static int rpc_cli_call_f(const char *peer, rpc_method method, grpc_byte_buffer *out,
                          rpc_done_fn done, void *ud, int force)
{
    rpc_ccall *c = out && peer && done && strlen(peer) < RPC_PEER_NAME ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        if (out)
            grpc_byte_buffer_destroy(out);
        return -1;
    }
    c->out = out;
    c->method = method;
    c->done = done;
    c->ud = ud;
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->init_md);
    grpc_metadata_array_init(&c->trail_md);
    int rc = -1;
    pthread_mutex_lock(&g_rpc.mu);
    if (g_rpc.running && !g_rpc.stopping && (c->peer = rpc_cli_peer(peer)) &&
        rpc_cli_admit_f(c->peer, c, force)) {
        rc = rpc_cli_start(c);
        if (rc != 0 && c->trial)
            c->peer->trial = 0;
    }
    pthread_mutex_unlock(&g_rpc.mu);
    if (rc != 0)
        rpc_cli_free(c);
    return rc;
}

static int rpc_cli_call(const char *peer, rpc_method method, grpc_byte_buffer *out,
                        rpc_done_fn done, void *ud)
{
    return rpc_cli_call_f(peer, method, out, done, ud, 0);
}

/* ---------- requests ---------- */

static grpc_byte_buffer *rpc_cli_pack(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    grpc_slice body = grpc_slice_malloc(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(body));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    return bb;
}

/* A NUL-terminated copy of s[0..n) (s may be NULL when n is 0), or NULL. */
static char *rpc_cli_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* SendMsg and SendMsgAll share their first six fields. */
static int rpc_cli_send(const char *peer, rpc_method method, const rpc_msg *m, rpc_done_fn done,
                        void *ud)
{
    if (!m)
        return -1;
    char *seq = rpc_cli_dup(m->seq, m->seqlen);
    char *uid = rpc_cli_dup(m->uid, m->uidlen);
    char *msg = rpc_cli_dup(m->msg, m->msglen);
    char *cms = rpc_cli_dup(m->cms, m->cms ? strlen(m->cms) : 0);
    char id[DLOG_ID_MAX] = "";                   /* "" = not logged (what a Go node sends) */
    if (m->id)
        dlog_id_format(*m->id, id);
    grpc_byte_buffer *out = NULL;
    if (seq && uid && msg && cms && method == RPC_M_SEND_MSG) {
        Protobuf__SendMsgReq r = PROTOBUF__SEND_MSG_REQ__INIT;
        r.seq = seq, r.appid = m->appid, r.userid = uid, r.cms = cms, r.msg = msg, r.id = id;
        r.type = (char *)"text";
        out = rpc_cli_pack(&r.base);
    } else if (seq && uid && msg && cms) {
        Protobuf__SendMsgAllReq r = PROTOBUF__SEND_MSG_ALL_REQ__INIT;
        r.seq = seq, r.appid = m->appid, r.userid = uid, r.cms = cms, r.msg = msg, r.id = id;
        r.type = (char *)"text";
        out = rpc_cli_pack(&r.base);
    }
    free(seq);
    free(uid);
    free(msg);
    free(cms);
    return rpc_cli_call_f(peer, method, out, done, ud, m->must);
}

int rpc_send_msg(const char *peer, const rpc_msg *m, rpc_done_fn done, void *ud)
{
    return rpc_cli_send(peer, RPC_M_SEND_MSG, m, done, ud);
}

int rpc_send_msg_all(const char *peer, const rpc_msg *m, rpc_done_fn done, void *ud)
{
    return rpc_cli_send(peer, RPC_M_SEND_MSG_ALL, m, done, ud);
}

int rpc_get_user_list(const char *peer, uint32_t appid, rpc_done_fn done, void *ud)
{
    Protobuf__GetUserListReq r = PROTOBUF__GET_USER_LIST_REQ__INIT;
    r.appid = appid;
    return rpc_cli_call(peer, RPC_M_GET_USER_LIST, rpc_cli_pack(&r.base), done, ud);
}

int rpc_query_online(const char *peer, uint32_t appid, const char *uid, size_t uidlen,
                     rpc_done_fn done, void *ud)
{
    char *id = rpc_cli_dup(uid, uidlen);
    if (!id)
        return -1;
    Protobuf__QueryUsersOnlineReq r = PROTOBUF__QUERY_USERS_ONLINE_REQ__INIT;
    r.appid = appid;
    r.userid = id;
    grpc_byte_buffer *out = rpc_cli_pack(&r.base);
    free(id);
    return rpc_cli_call(peer, RPC_M_QUERY_ONLINE, out, done, ud);
}

int rpc_kick_user(const char *peer, uint32_t appid, const char *uid, size_t uidlen,
                  const char *reason, rpc_done_fn done, void *ud)
{
    char *id = rpc_cli_dup(uid, uidlen);
    char *why = rpc_cli_dup(reason, reason ? strlen(reason) : 0);
    grpc_byte_buffer *out = NULL;
    if (id && why) {
        Protobuf__KickUserReq r = PROTOBUF__KICK_USER_REQ__INIT;
        r.appid = appid;
        r.userid = id;
        r.reason = why;
        out = rpc_cli_pack(&r.base);
    }
    free(id);
    free(why);
    return out ? rpc_cli_call(peer, RPC_M_KICK_USER, out, done, ud) : -1;
}

/* ---------- health ---------- */

int rpc_peer_skipped(const char *peer)
{
    pthread_mutex_lock(&g_rpc.mu);
    const rpc_peer *p = peer ? rpc_cli_find(peer) : NULL;
    int skipped = p && rpc_cli_skipping(p, rpc_now_ms());
    pthread_mutex_unlock(&g_rpc.mu);
    return skipped;
}

void rpc_peers_json(struct jsonw *w)
{
    jsonw_lit(w, "[");
    pthread_mutex_lock(&g_rpc.mu);
    uint64_t now = rpc_now_ms();
    for (const rpc_peer *p = rpc_cli.peers; p; p = p->next) {
        jsonw_lit(w, p == rpc_cli.peers ? "{\"peer\":" : ",{\"peer\":");
        jsonw_cstr(w, p->name);
        jsonw_lit(w, p->consecutive < RPC_SKIP_AFTER ? ",\"healthy\":true" : ",\"healthy\":false");
        jsonw_lit(w, ",\"calls\":");
        jsonw_int(w, p->calls);
        jsonw_lit(w, ",\"failures\":");
        jsonw_int(w, p->failures);
        jsonw_lit(w, ",\"consecutiveFailures\":");
        jsonw_int(w, p->consecutive);
        jsonw_lit(w, ",\"skippedForMs\":");             /* calls that may be skipped are, this long */
        jsonw_int(w, rpc_cli_skipping(p, now) && p->skip_until > now ? (long)(p->skip_until - now) : 0);
        jsonw_lit(w, ",\"lastError\":");
        jsonw_cstr(w, p->last_error);
        jsonw_lit(w, "}");
    }
    pthread_mutex_unlock(&g_rpc.mu);
    jsonw_lit(w, "]");
}

/* ---------- stop ---------- */

void rpc_client_cancel_all(void)
{
    pthread_mutex_lock(&g_rpc.mu);
    for (rpc_ccall *c = rpc_cli.calls; c; c = c->next)
        grpc_call_cancel(c->call, NULL);         /* done runs with ok = 0 */
    pthread_mutex_unlock(&g_rpc.mu);
}

void rpc_client_destroy(void)
{
    pthread_mutex_lock(&g_rpc.mu);
    while (rpc_cli.peers) {
        rpc_peer *p = rpc_cli.peers;
        rpc_cli.peers = p->next;
        grpc_channel_destroy(p->ch);
        free(p);
    }
    pthread_mutex_unlock(&g_rpc.mu);
}
