/* rpc_server.c — the protobuf.AccServer server (SPEC §6, see rpc.h): one
 * grpc_server on app.rpcPort whose calls are accepted as generic calls and
 * dispatched on their method path. Each call is one rpc_scall, owned by
 * whoever holds its current step: the completion-queue thread while a batch
 * is in flight, the hub while a SendMsg/SendMsgAll delivery runs on the
 * workers (the call is then on the hub-pending list, so that rpc_stop can
 * wait for it or abandon it). */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acc.pb-c.h"
#include "cluster/rpc_int.h"
#include "cluster/rpc_req.h"
#include "core/log.h"
#include "core/node.h"
#include "im/codes.h"
#include "im/hub.h"
#include "im/presence.h"
#include "net/worker.h"

_Static_assert((int)RPC_ST_INVALID_ARGUMENT == (int)GRPC_STATUS_INVALID_ARGUMENT &&
               (int)RPC_ST_RESOURCE_EXHAUSTED == (int)GRPC_STATUS_RESOURCE_EXHAUSTED &&
               (int)RPC_ST_UNIMPLEMENTED == (int)GRPC_STATUS_UNIMPLEMENTED,
               "rpc_req.h status values are gRPC's");

typedef struct rpc_scall {
    rpc_tag tag;                 /* the batch in flight */
    grpc_call *call;
    grpc_call_details details;   /* method path */
    grpc_metadata_array md;      /* request metadata */
    grpc_byte_buffer *in;        /* request payload */
    grpc_byte_buffer *out;       /* reply payload */
    grpc_slice status_msg;
    int cancelled;
    rpc_req req;
    long delivered;              /* hub result */
    int abandoned;               /* rpc_stop gave up waiting for the hub */
    struct rpc_scall *prev, *next;   /* hub-pending list */
} rpc_scall;

static struct {
    grpc_server *server;
    rpc_tag shutdown_tag;
    rpc_scall *hub_head;         /* calls whose delivery runs on the workers */
    rpc_hub_counts counts;       /* test hook (rpc.h), under g_rpc.mu; pending unused */
} rpc_srv;

/* ---------- call lifetime ---------- */

/* Drops what belongs to gRPC (must happen before grpc_shutdown). */
static void rpc_srv_release_grpc(rpc_scall *s)
{
    if (s->call)
        grpc_call_unref(s->call);
    s->call = NULL;
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->md);
    if (s->in)
        grpc_byte_buffer_destroy(s->in);
    if (s->out)
        grpc_byte_buffer_destroy(s->out);
    s->in = s->out = NULL;
    grpc_slice_unref(s->status_msg);
    s->status_msg = grpc_empty_slice();
}

static void rpc_srv_free(rpc_scall *s)
{
    rpc_srv_release_grpc(s);
    rpc_req_free(&s->req);
    free(s);
}

/* Starts a batch on s; `counted`: its operation was already counted. On
 * failure s is freed. */
static void rpc_srv_batch(rpc_scall *s, const grpc_op *ops, size_t n,
                          void (*fn)(rpc_tag *, int), int counted)
{
    s->tag.fn = fn;
    if (!counted)
        rpc_op_begin();
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, &s->tag, NULL);
    if (e != GRPC_CALL_OK) {
        log_error("rpc: cannot answer a call: %s", grpc_call_error_to_string(e));
        rpc_op_end();
        rpc_srv_free(s);
    }
}

static void rpc_srv_on_finished(rpc_tag *t, int ok)
{
    (void)ok;
    rpc_srv_free((rpc_scall *)t);
}

/* ---------- replies (every one carries SEND_INITIAL_METADATA) ---------- */

static void rpc_srv_status(rpc_scall *s, grpc_status_code code, const char *msg, int counted)
{
    grpc_slice_unref(s->status_msg);
    s->status_msg = grpc_slice_from_copied_string(msg);
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = code;
    ops[1].data.send_status_from_server.status_details = &s->status_msg;
    ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[2].data.recv_close_on_server.cancelled = &s->cancelled;
    rpc_srv_batch(s, ops, 3, rpc_srv_on_finished, counted);
}

static void rpc_srv_reply(rpc_scall *s, const ProtobufCMessage *rsp, int counted)
{
    size_t n = protobuf_c_message_get_packed_size(rsp);
    grpc_slice body = grpc_slice_malloc(n);
    protobuf_c_message_pack(rsp, GRPC_SLICE_START_PTR(body));
    s->out = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->out;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = &s->cancelled;
    rpc_srv_batch(s, ops, 4, rpc_srv_on_finished, counted);
}

/* A reply of the call's own response type with retCode and errMsg only
 * (plus sendMsgID = seq for a successful send). */
static void rpc_srv_answer(rpc_scall *s, uint32_t code, const char *errmsg, int counted)
{
    char *em = (char *)errmsg;
    char *sent = code == IM_OK ? (char *)s->req.seq : (char *)"";
    switch (s->req.method) {
    case RPC_M_QUERY_ONLINE: {
        Protobuf__QueryUsersOnlineRsp r = PROTOBUF__QUERY_USERS_ONLINE_RSP__INIT;
        r.retcode = code;
        r.errmsg = em;
        rpc_srv_reply(s, &r.base, counted);
        break;
    }
    case RPC_M_SEND_MSG: {
        Protobuf__SendMsgRsp r = PROTOBUF__SEND_MSG_RSP__INIT;
        r.retcode = code;
        r.errmsg = em;
        r.sendmsgid = sent ? sent : (char *)"";
        rpc_srv_reply(s, &r.base, counted);
        break;
    }
    case RPC_M_SEND_MSG_ALL: {
        Protobuf__SendMsgAllRsp r = PROTOBUF__SEND_MSG_ALL_RSP__INIT;
        r.retcode = code;
        r.errmsg = em;
        r.sendmsgid = sent ? sent : (char *)"";
        rpc_srv_reply(s, &r.base, counted);
        break;
    }
    case RPC_M_KICK_USER: {
        Protobuf__KickUserRsp r = PROTOBUF__KICK_USER_RSP__INIT;
        r.retcode = code;
        r.errmsg = em;
        r.kicked = code == IM_OK && s->delivered > 0 ? (uint32_t)s->delivered : 0;
        rpc_srv_reply(s, &r.base, counted);
        break;
    }
    default: {
        Protobuf__GetUserListRsp r = PROTOBUF__GET_USER_LIST_RSP__INIT;
        r.retcode = code;
        r.errmsg = em;
        rpc_srv_reply(s, &r.base, counted);
        break;
    }
    }
}

/* ---------- QueryUsersOnline, GetUserList ---------- */

static void rpc_srv_query_online(rpc_scall *s)
{
    const rpc_req *r = &s->req;
    uint32_t now = (uint32_t)time(NULL);
    int on = 0;
    if (r->appid != 0)
        on = presence_online(r->appid, r->uid, r->uidlen, now);
    for (int i = 0; r->appid == 0 && !on && i < g_node.cfg.appIDCount; i++)   /* any platform */
        on = presence_online(g_node.cfg.appIDs[i], r->uid, r->uidlen, now);
    Protobuf__QueryUsersOnlineRsp rsp = PROTOBUF__QUERY_USERS_ONLINE_RSP__INIT;
    rsp.retcode = IM_OK;
    rsp.errmsg = (char *)im_code_msg(IM_OK);
    rsp.online = on;
    rpc_srv_reply(s, &rsp.base, 0);
}

/* userIDs gathered under presence's stripe locks: one text buffer of
 * NUL-terminated names and their offsets. */
typedef struct rpc_names {
    char *text;
    size_t len, cap;
    size_t *offs;
    size_t n, ncap;
    int oom;
} rpc_names;

static int rpc_names_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

static void rpc_names_add(const pres_entry *e, void *ud)
{
    rpc_names *l = ud;
    if (l->oom || rpc_names_grow((void **)&l->text, &l->cap, l->len + e->idlen + 1, 1) != 0 ||
        rpc_names_grow((void **)&l->offs, &l->ncap, l->n + 1, sizeof(size_t)) != 0) {
        l->oom = 1;
        return;
    }
    memcpy(l->text + l->len, e->id, e->idlen + 1u);
    l->offs[l->n++] = l->len;
    l->len += e->idlen + 1u;
}

static int rpc_names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names as an array of pointers into l->text; sorted and distinct when
 * `distinct` (all rooms: one user may be in several). NULL when empty/OOM. */
static char **rpc_names_list(rpc_names *l, int distinct, size_t *n)
{
    *n = 0;
    char **ids = l->n ? malloc(l->n * sizeof(char *)) : NULL;
    if (!ids)
        return NULL;
    for (size_t i = 0; i < l->n; i++)
        ids[i] = l->text + l->offs[i];
    size_t k = l->n;
    if (distinct && k > 1) {
        qsort(ids, k, sizeof(char *), rpc_names_cmp);
        k = 1;
        for (size_t i = 1; i < l->n; i++)
            if (strcmp(ids[i], ids[k - 1]) != 0)
                ids[k++] = ids[i];
    }
    *n = k;
    return ids;
}

static void rpc_srv_user_list(rpc_scall *s)
{
    rpc_names l = { 0 };
    presence_each(s->req.appid, rpc_names_add, &l);
    size_t n = 0;
    char **ids = l.oom ? NULL : rpc_names_list(&l, s->req.appid == 0, &n);
    if (l.oom || (l.n && !ids)) {
        rpc_srv_answer(s, IM_SERVER_ERROR, "out of memory", 0);
    } else {
        Protobuf__GetUserListRsp rsp = PROTOBUF__GET_USER_LIST_RSP__INIT;
        rsp.retcode = IM_OK;
        rsp.errmsg = (char *)im_code_msg(IM_OK);
        rsp.n_userid = n;
        rsp.userid = ids;
        rpc_srv_reply(s, &rsp.base, 0);
    }
    free(ids);
    free(l.text);
    free(l.offs);
}

/* ---------- SendMsg, SendMsgAll (through the hub) ---------- */

static void rpc_srv_answer_send(rpc_scall *s, int counted)
{
    if (s->req.method == RPC_M_KICK_USER)
        rpc_srv_answer(s, IM_OK, im_code_msg(IM_OK), counted);   /* kicked: s->delivered */
    else if (s->req.method == RPC_M_SEND_MSG && s->delivered <= 0)
        rpc_srv_answer(s, IM_NOT_LOGGED_IN, "user is not connected to this node", counted);
    else
        rpc_srv_answer(s, IM_OK, im_code_msg(IM_OK), counted);
}

/* Hub-pending list (under g_rpc.mu). */
static void rpc_srv_link(rpc_scall *s)
{
    s->prev = NULL;
    s->next = rpc_srv.hub_head;
    if (s->next)
        s->next->prev = s;
    rpc_srv.hub_head = s;
}

static void rpc_srv_unlink(rpc_scall *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        rpc_srv.hub_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

/* Takes s back from the hub (its reply's operation stays counted); 0 if
 * rpc_stop has abandoned it meanwhile, and then frees what is left. */
static int rpc_srv_take_back(rpc_scall *s)
{
    pthread_mutex_lock(&g_rpc.mu);
    int abandoned = s->abandoned;
    if (!abandoned)
        rpc_srv_unlink(s);
    else
        rpc_srv.counts.late++;
    pthread_mutex_unlock(&g_rpc.mu);
    if (abandoned) {
        rpc_req_free(&s->req);                   /* gRPC's parts are gone */
        free(s);
    }
    return !abandoned;
}

/* The hub's completion, on a worker loop thread. */
static void rpc_srv_hub_done(void *ud, long delivered)
{
    rpc_scall *s = ud;
    if (!rpc_srv_take_back(s))
        return;
    s->delivered = delivered;
    rpc_srv_answer_send(s, 1);
}

/* KickUser: answered with the count once every worker has closed the
 * user's connections (owned by the hub meanwhile, like SendMsg). */
static void rpc_srv_kick(rpc_scall *s)
{
    pthread_mutex_lock(&g_rpc.mu);
    rpc_srv_link(s);                             /* not in counts.handed: SendMsg's */
    g_rpc.ops++;
    pthread_mutex_unlock(&g_rpc.mu);
    if (hub_kick_user(s->req.appid, s->req.uid, s->req.uidlen, s->req.msg, rpc_srv_hub_done, s) == 0)
        return;                                  /* rpc_srv_hub_done answers */
    if (rpc_srv_take_back(s))
        rpc_srv_answer(s, IM_SERVER_ERROR, "cannot queue the kick", 1);
}

static void rpc_srv_send(rpc_scall *s)
{
    const rpc_req *r = &s->req;
    /* The server may take calls before workers_start has published the
     * workers (the port must be known first): until then the count is 0 and
     * nobody is connected. Once it is n, workers 0..n-1 are initialised and
     * stay allocated until workers_stop, which runs after rpc_stop. */
    if (workers_count() <= 0) {
        rpc_srv_answer_send(s, 0);
        return;
    }
    if (r->method == RPC_M_KICK_USER) {
        rpc_srv_kick(s);
        return;
    }
    const dlog_id *id = r->has_id ? &r->id : NULL;    /* an imgate peer logged it */
    sbuf *f = hub_push_frame_id(r->seq, r->seqlen, r->cms, r->msg, r->msglen, r->uid, r->uidlen, id);
    if (!f) {
        rpc_srv_answer(s, IM_SERVER_ERROR, "out of memory", 0);
        return;
    }
    if (r->method == RPC_M_SEND_MSG_ALL) {
        /* A room push is answered once it is queued on every worker: the
         * sender needs no count, and a big room on a busy node must not
         * run the sender's deadline out (its peer would look unhealthy). */
        int rc = hub_send_room_logged(r->appid, r->uid, r->except_len, f, id, NULL, NULL);
        sbuf_unref(f);
        if (rc == 0)
            rpc_srv_answer(s, IM_OK, im_code_msg(IM_OK), 0);
        else
            rpc_srv_answer(s, IM_SERVER_ERROR, "cannot queue the delivery", 0);
        return;
    }
    /* From here until it is answered, s counts as one operation: the queue
     * stays open for its reply (rpc_stop waits, or abandons it). */
    pthread_mutex_lock(&g_rpc.mu);
    rpc_srv_link(s);
    g_rpc.ops++;
    rpc_srv.counts.handed++;
    pthread_mutex_unlock(&g_rpc.mu);
    int rc = hub_send_user_logged(r->appid, r->uid, r->uidlen, f, id, rpc_srv_hub_done, s);
    sbuf_unref(f);
    if (rc == 0)
        return;                                  /* rpc_srv_hub_done answers */
    if (rpc_srv_take_back(s))
        rpc_srv_answer(s, IM_SERVER_ERROR, "cannot queue the delivery", 1);
}

/* ---------- request dispatch ---------- */

/* The whole payload as one slice (0), or -1. */
static int rpc_srv_read(grpc_byte_buffer *bb, grpc_slice *out)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return -1;
    *out = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return 0;
}

static void rpc_srv_on_request(rpc_tag *t, int ok)
{
    rpc_scall *s = (rpc_scall *)t;
    grpc_slice body;
    if (!ok) {                                   /* cancelled, or over the size cap */
        rpc_srv_free(s);
        return;
    }
    if (!s->in || rpc_srv_read(s->in, &body) != 0) {
        rpc_srv_status(s, GRPC_STATUS_INVALID_ARGUMENT, "no request message", 0);
        return;
    }
    rpc_req_decode((const char *)GRPC_SLICE_START_PTR(s->details.method),
                   GRPC_SLICE_LENGTH(s->details.method), GRPC_SLICE_START_PTR(body),
                   GRPC_SLICE_LENGTH(body), g_node.cfg.maxBodyBytes, &s->req);
    grpc_slice_unref(body);
    const rpc_req *r = &s->req;
    if (r->status != RPC_ST_OK)
        rpc_srv_status(s, (grpc_status_code)r->status, r->why, 0);
    else if (r->code != 0)
        rpc_srv_answer(s, r->code, r->why, 0);
    else if (r->method == RPC_M_QUERY_ONLINE)
        rpc_srv_query_online(s);
    else if (r->method == RPC_M_GET_USER_LIST)
        rpc_srv_user_list(s);
    else
        rpc_srv_send(s);
}

static void rpc_srv_post(void);

static void rpc_srv_on_call(rpc_tag *t, int ok)
{
    rpc_scall *s = (rpc_scall *)t;
    if (!ok) {                                   /* the server is shutting down */
        rpc_srv_free(s);
        return;
    }
    pthread_mutex_lock(&g_rpc.mu);
    int stopping = g_rpc.stopping;
    pthread_mutex_unlock(&g_rpc.mu);
    if (!stopping)
        rpc_srv_post();                          /* always one call posted */
    if (!rpc_sec_allowed(&s->md, s->call)) {     /* before anything else: nothing delivered */
        rpc_srv_status(s, GRPC_STATUS_UNAUTHENTICATED,
                       "missing or wrong token: calls to this node need metadata "
                       "'authorization: Bearer <cluster.rpcToken>'", 0);
        return;
    }
    const grpc_slice *m = &s->details.method;
    if (rpc_req_method((const char *)GRPC_SLICE_START_PTR(*m), GRPC_SLICE_LENGTH(*m)) ==
        RPC_M_UNKNOWN) {
        rpc_srv_status(s, GRPC_STATUS_UNIMPLEMENTED, "unknown method", 0);
        return;
    }
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->in;
    rpc_srv_batch(s, &op, 1, rpc_srv_on_request, 0);
}

/* Posts a grpc_server_request_call for the next incoming call. */
static void rpc_srv_post(void)
{
    rpc_scall *s = calloc(1, sizeof(*s));
    if (!s) {
        log_error("rpc: out of memory: no longer accepting calls");
        return;
    }
    grpc_call_details_init(&s->details);
    grpc_metadata_array_init(&s->md);
    s->status_msg = grpc_empty_slice();
    s->tag.fn = rpc_srv_on_call;
    rpc_op_begin();
    grpc_call_error e = grpc_server_request_call(rpc_srv.server, &s->call, &s->details, &s->md,
                                                 g_rpc.cq, g_rpc.cq, &s->tag);
    if (e != GRPC_CALL_OK) {
        log_error("rpc: cannot accept calls: %s", grpc_call_error_to_string(e));
        rpc_op_end();
        rpc_srv_free(s);
    }
}

/* ---------- start / stop ---------- */

static void rpc_srv_on_shutdown(rpc_tag *t, int ok)
{
    (void)t;
    (void)ok;
    log_debug("rpc: server shut down");
}

int rpc_server_start(const char *bind, int port, int *bound, char *err, size_t errlen)
{
    size_t cap = g_node.cfg.maxBodyBytes;
    grpc_arg args[2];
    memset(args, 0, sizeof(args));
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;      /* two nodes never share a port */
    args[0].value.integer = 0;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = cap > INT_MAX ? INT_MAX : (int)cap;
    grpc_channel_args ca = { 2, args };
    char addr[CONFIG_STR + 16];
    snprintf(addr, sizeof(addr), strchr(bind, ':') ? "[%s]:%d" : "%s:%d", bind, port);

    rpc_srv.server = grpc_server_create(&ca, NULL);
    if (!rpc_srv.server) {
        snprintf(err, errlen, "cannot create the gRPC server");
        return -1;
    }
    grpc_server_register_completion_queue(rpc_srv.server, g_rpc.cq, NULL);
    grpc_server_credentials *creds = rpc_sec_server_creds();   /* plaintext or mutual TLS */
    int got = grpc_server_add_http2_port(rpc_srv.server, addr, creds);
    grpc_server_credentials_release(creds);
    if (got <= 0) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not available%s)", addr,
                 strstr(rpc_auth_mode(), "mtls") ? ", or the TLS credentials were refused" : "");
        grpc_server_destroy(rpc_srv.server);
        rpc_srv.server = NULL;
        return -1;
    }
    grpc_server_start(rpc_srv.server);
    rpc_srv.shutdown_tag.fn = rpc_srv_on_shutdown;
    *bound = got;
    rpc_srv_post();
    return 0;
}

void rpc_server_shutdown(void)
{
    if (!rpc_srv.server)
        return;
    rpc_op_begin();
    grpc_server_shutdown_and_notify(rpc_srv.server, g_rpc.cq, &rpc_srv.shutdown_tag);
    grpc_server_cancel_all_calls(rpc_srv.server);
}

long rpc_server_abandon_locked(void)
{
    long n = 0;
    while (rpc_srv.hub_head) {                   /* their hub_done only frees them */
        rpc_scall *s = rpc_srv.hub_head;
        rpc_srv_unlink(s);
        s->abandoned = 1;
        rpc_srv_release_grpc(s);
        g_rpc.ops--;
        n++;
    }
    rpc_srv.counts.abandoned += n;
    if (n)
        log_warn("rpc: %ld calls still waited for their delivery: left unanswered", n);
    return n;
}

void rpc_hub_counts_get(rpc_hub_counts *out)
{
    pthread_mutex_lock(&g_rpc.mu);
    *out = rpc_srv.counts;
    out->pending = 0;
    for (const rpc_scall *s = rpc_srv.hub_head; s; s = s->next)
        out->pending++;
    pthread_mutex_unlock(&g_rpc.mu);
}

void rpc_server_destroy(void)
{
    if (rpc_srv.server)
        grpc_server_destroy(rpc_srv.server);
    rpc_srv.server = NULL;
}
