/* route.c — the API's cluster-wide operations (see route.h).
 *
 * Each operation is a route_op owned by the worker that serves the HTTP
 * request: one pipelined Redis query (cluster_query, answered on this
 * worker), then the local part (hub or presence) and one gRPC call per other
 * live node. gRPC completions arrive on the gRPC thread and are posted back
 * as tasks, so `pending` and the results are only touched on this worker. */
#include "cluster/route.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/clog.h"
#include "cluster/cluster.h"
#include "cluster/prec.h"
#include "cluster/rlink.h"
#include "cluster/rpc.h"
#include "cluster/unodes.h"
#include "core/log.h"
#include "core/node.h"
#include "im/codes.h"
#include "im/hub.h"
#include "im/presence.h"
#include "net/worker.h"

#define ROUTE_REDIS_DOWN "Redis is unavailable; cluster-wide calls fail until it is back"
#define ROUTE_SEQ_PREFIX "acc:submit:again:seq:"
#define ROUTE_FLIGHT_PREFIX "acc:submit:inflight:"

/* Reserves a msgID cluster-wide: 1 = new (now in flight), 0 = used, 2 = in
 * flight elsewhere. The seq key is the original's ("1", SETNX); it lives
 * only ARGV[1] seconds until the send is accepted (route_dedup_finish). */
static const char route_dedup_lua[] =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then "
    "redis.call('SET', KEYS[2], '1', 'EX', ARGV[1]) return 1 end "
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end return 0";

enum route_kind { ROUTE_SEND, ROUTE_LIST, ROUTE_ONLINE };

typedef struct route_op {
    enum route_kind kind;
    struct worker *origin;
    int pending;                        /* local part + gRPC calls still out */
    void *ud;
    union {
        route_send_fn send;
        route_list_fn list;
        route_online_fn online;
    } done;
    /* send */
    int to_room;
    uint32_t appid;
    uint8_t uidlen;
    char uid[PRESENCE_MAX_ID];
    char *msgid, *msg;
    size_t msgidlen, msglen;
    sbuf *frame;
    int logged;                         /* appended to its log (clog.h): id */
    dlog_id id;
    long delivered;
    int remote_ok;
    int err;                            /* answer this code instead (msgID released) */
    char why[160];
    /* list: every name seen (duplicates removed at the end) */
    char **names;
    size_t *lens;
    size_t count, cap;
} route_op;

/* A gRPC answer travelling back to the op's worker. */
typedef struct route_reply {
    task t;
    route_op *op;
    int ok;
    uint32_t ret;
    char peer[64];
    size_t n;
    char **names;
    size_t *lens;
} route_reply;

static void route_op_free(route_op *op)
{
    for (size_t i = 0; i < op->count; i++)
        free(op->names[i]);
    free(op->names);
    free(op->lens);
    free(op->msgid);
    free(op->msg);
    if (op->frame)
        sbuf_unref(op->frame);
    free(op);
}

static route_op *route_op_new(enum route_kind kind, void *ud)
{
    route_op *op = calloc(1, sizeof(*op));
    if (op) {
        op->kind = kind;
        op->ud = ud;
        op->origin = worker_self();
    }
    return op;
}

/* The live nodes other than this one, from a fresh HGETALL reply, into a
 * new array sized by the reply (the caller frees it); returns their count,
 * or -1 when the registry cannot be read (why says so; *out is NULL). */
static int route_peers(const rlink_val *servers, char (**out)[64], char *why, size_t whylen)
{
    *out = NULL;
    if (cluster_servers_note(servers) != 0) {
        snprintf(why, whylen, "the node registry " CLUSTER_SERVERS_KEY " cannot be read: %s",
                 servers->type == REDIS_REPLY_ERROR && servers->str ? servers->str : "not a hash");
        return -1;
    }
    int max = (int)(servers->n / 2) + 1;
    char (*list)[64] = malloc((size_t)max * sizeof(*list));
    int n = list ? cluster_servers(list, max) : 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], cluster_self()) != 0)
            memmove(list[k++], list[i], sizeof(*list));
    *out = list;
    return k;
}

static int route_is_live(const char *node, char (*peers)[64], int npeers)
{
    if (strcmp(node, cluster_self()) == 0)
        return 1;
    for (int i = 0; i < npeers; i++)
        if (strcmp(node, peers[i]) == 0)
            return 1;
    return 0;
}

/* Whether an HGETALL reply of a user's nodes hash (cluster/unodes.h) names
 * a live node other than this one with connections; with `each`, calls it
 * for every such node (and returns how many there were). */
static int route_user_nodes(const rlink_val *h, char (*peers)[64], int npeers,
                            void (*each)(void *ud, const char *node), void *ud)
{
    int n = 0;
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->n; i += 2) {
        const rlink_val *f = &h->elem[i], *v = &h->elem[i + 1];
        if (!f->str || !v->str || strtol(v->str, NULL, 10) <= 0 ||
            strcmp(f->str, cluster_self()) == 0 || !route_is_live(f->str, peers, npeers))
            continue;
        n++;
        if (!each)
            break;
        each(ud, f->str);
    }
    return n;
}

static int route_add_name(route_op *op, const char *s, size_t len)
{
    if (op->count == op->cap) {
        size_t ncap = op->cap ? op->cap * 2 : 64;
        char **nn = realloc(op->names, ncap * sizeof(*nn));
        if (!nn)
            return -1;
        op->names = nn;
        size_t *nl = realloc(op->lens, ncap * sizeof(*nl));
        if (!nl)
            return -1;
        op->lens = nl;
        op->cap = ncap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    op->names[op->count] = copy;
    op->lens[op->count++] = len;
    return 0;
}

/* ---------- finishing ---------- */

/* The send is over: its answer goes out once Redis has recorded the
 * outcome, so a retry of the same msgID on any node sees it. */
static void route_on_dedup_done(void *ud, int ok, rlink_val *rep, int n)
{
    route_op *op = ud;
    int sent = !op->err && (op->to_room || op->delivered > 0 || op->remote_ok);
    if (!ok)
        log_warn("cluster: could not record the outcome of msgID %s in Redis", op->msgid);
    else if (op->logged && n == 1)
        clog_check_noscript(&rep[0]);
    if (op->err)
        op->done.send(op->ud, op->err, op->why, 0, 0, 0);
    else                                         /* in the inbox: pushed at the next login */
        op->done.send(op->ud, IM_OK, NULL, 0, sent, !sent && op->logged && !op->to_room);
    route_op_free(op);
}

/* A logged send ends in one script (clog.h): the msgID, and the cursor
 * when the message was pushed (the sending node moves it: it knows from
 * the hub and the peers' answers; they do not write Redis per push). */
static void route_finish_logged(route_op *op, int keep)
{
    int pushed = !op->err && !op->to_room && (op->delivered > 0 || op->remote_ok) &&
                 !g_node.cfg.ackRequired;
    rlink_query *q = op->msgidlen || pushed ? rlink_query_new(1, route_on_dedup_done, op) : NULL;
    if (q && clog_finish_add(q, op->msgid, op->msgidlen, keep, op->appid, op->uid, op->uidlen,
                             pushed ? &op->id : NULL) == 0) {
        rlink_query_submit(q);
        return;
    }
    if (q)
        rlink_query_cancel(q);
    route_on_dedup_done(op, 1, NULL, 0);
}

static void route_finish_send(route_op *op)
{
    /* a stored message counts as sent: its msgID stays used (SPEC 7.1) */
    int sent = !op->err && (op->to_room || op->delivered > 0 || op->remote_ok || op->logged);
    if (op->logged) {                            /* appended: accepted, its msgID stays used */
        route_finish_logged(op, 1);
        return;
    }
    char seq[300], flight[300], ttl[24];
    snprintf(seq, sizeof(seq), ROUTE_SEQ_PREFIX "%.*s", (int)op->msgidlen, op->msgid);
    snprintf(flight, sizeof(flight), ROUTE_FLIGHT_PREFIX "%.*s", (int)op->msgidlen, op->msgid);
    snprintf(ttl, sizeof(ttl), "%d", g_node.cfg.dedupTtl);
    const char *exp[] = { "EXPIRE", seq, ttl };
    const char *del[] = { "DEL", flight };
    const char *del2[] = { "DEL", seq, flight };
    rlink_query *q = op->msgidlen ? rlink_query_new(2, route_on_dedup_done, op) : NULL;
    int bad = !q || (sent ? rlink_query_add(q, 3, exp, NULL) != 0 || rlink_query_add(q, 2, del, NULL) != 0
                          : rlink_query_add(q, 3, del2, NULL) != 0);
    if (!bad) {
        rlink_query_submit(q);
        return;
    }
    if (q)
        rlink_query_cancel(q);
    route_on_dedup_done(op, 1, NULL, 0);
}

static int route_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void route_finish_list(route_op *op)
{
    /* sorted and de-duplicated: a user on two nodes is listed once, and
     * paging (offset/limit) sees a stable order */
    if (op->count > 1)
        qsort(op->names, op->count, sizeof(*op->names), route_name_cmp);
    size_t k = 0;
    for (size_t i = 0; i < op->count; i++) {
        if (k && strcmp(op->names[k - 1], op->names[i]) == 0) {
            free(op->names[i]);
            continue;
        }
        op->names[k] = op->names[i];
        op->lens[k++] = strlen(op->names[i]);
    }
    op->count = k;
    op->done.list(op->ud, IM_OK, NULL, (const char *const *)op->names, op->lens, op->count);
}

static void route_finish(route_op *op)
{
    if (op->kind == ROUTE_SEND) {
        route_finish_send(op);                   /* answers and frees later */
        return;
    }
    route_finish_list(op);
    route_op_free(op);
}

static void route_one_done(route_op *op)
{
    if (--op->pending == 0)
        route_finish(op);
}

/* ---------- gRPC answers ---------- */

static void route_reply_run(struct worker *w, task *t)
{
    (void)w;
    route_reply *r = (route_reply *)t;
    route_op *op = r->op;
    if (!r->ok)
        log_warn("cluster: call to %s failed", r->peer);
    else if (op->kind == ROUTE_SEND && r->ret == IM_OK)
        op->remote_ok = 1;
    for (size_t i = 0; i < r->n; i++) {
        if (r->ok && route_add_name(op, r->names[i], r->lens[i]) != 0)
            log_warn("cluster: out of memory merging user lists");
        free(r->names[i]);
    }
    free(r->names);
    free(r->lens);
    free(r);
    route_one_done(op);
}

/* On the gRPC thread: copy what is needed and hand it to the op's worker. */
static void route_on_rpc(void *ud, const rpc_result *res)
{
    route_reply *r = ud;
    r->ok = res->ok;
    r->ret = res->ret_code;
    if (res->ok && res->nusers) {
        r->names = calloc(res->nusers, sizeof(*r->names));
        r->lens = calloc(res->nusers, sizeof(*r->lens));
        for (size_t i = 0; r->names && r->lens && i < res->nusers; i++) {
            r->names[i] = malloc(res->user_lens[i] + 1);
            if (!r->names[i])
                break;
            memcpy(r->names[i], res->users[i], res->user_lens[i]);
            r->names[i][res->user_lens[i]] = '\0';
            r->lens[i] = res->user_lens[i];
            r->n = i + 1;
        }
    }
    r->t.run = route_reply_run;
    worker_post(r->op->origin, &r->t);
}

/* Starts one gRPC call of op to peer; counts it in pending if it is made. */
static void route_call(route_op *op, const char *peer)
{
    route_reply *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->op = op;
    snprintf(r->peer, sizeof(r->peer), "%s", peer);
    rpc_msg m = { .seq = op->msgid, .seqlen = op->msgidlen, .appid = op->appid, .uid = op->uid,
                  .uidlen = op->uidlen, .cms = "msg", .msg = op->msg, .msglen = op->msglen,
                  .id = op->logged ? &op->id : NULL,
                  /* a logged message (to a node that holds the user, or a
                   * room push to every live node) is not skipped for the
                   * peer's back-off: its connections there would miss it
                   * live, and a later push would carry their lastID or
                   * lastRoomID past it (a resume could not tell) */
                  .must = op->logged };
    int rc;
    op->pending++;
    if (op->kind == ROUTE_LIST)
        rc = rpc_get_user_list(peer, op->appid, route_on_rpc, r);
    else if (op->to_room)
        rc = rpc_send_msg_all(peer, &m, route_on_rpc, r);
    else
        rc = rpc_send_msg(peer, &m, route_on_rpc, r);
    if (rc != 0) {                       /* skipped (failing) or no memory */
        op->pending--;
        log_debug("cluster: not calling %s (failing, backing off)", peer);
        free(r);
    }
}

/* ---------- send ---------- */

static void route_local_done(void *ud, long delivered)
{
    route_op *op = ud;
    op->delivered = delivered;
    route_one_done(op);
}

static void route_call_node(void *ud, const char *node)
{
    route_call(ud, node);
}

/* A send to one user: every live node of the user's nodes hash, and the
 * node of the presence record (a Go node writes no hash) if it is another
 * one, online and live. */
static void route_send_user_remote(route_op *op, const rlink_val *pres, const rlink_val *nodes,
                                   char (*peers)[64], int np)
{
    route_user_nodes(nodes, peers, np, route_call_node, op);
    prec r;
    char node[96];
    if (pres->type != REDIS_REPLY_STRING || prec_parse(pres->str, pres->len, &r) != 0 ||
        !prec_online(&r, (uint64_t)time(NULL)) || prec_node(&r, node, sizeof(node)) <= 0 ||
        strcmp(node, cluster_self()) == 0 || !route_is_live(node, peers, np))
        return;
    for (size_t i = 0; nodes->type == REDIS_REPLY_ARRAY && i + 1 < nodes->n; i += 2)
        if (nodes->elem[i].str && strcmp(nodes->elem[i].str, node) == 0 &&
            nodes->elem[i + 1].str && strtol(nodes->elem[i + 1].str, NULL, 10) > 0)
            return;                                  /* called already */
    route_call(op, node);
}

/* The push of a logged message carries its id: re-encoded once here. */
static int route_frame_id(route_op *op)
{
    sbuf *f = hub_push_frame_id(op->msgid, op->msgidlen, "msg", op->msg, op->msglen, op->uid,
                                op->uidlen, &op->id);
    if (!f)
        return -1;
    sbuf_unref(op->frame);
    op->frame = f;
    return 0;
}

/* The msgID check (and, with logging, the append) of a send: 0 = go on;
 * else the send was answered. */
static int route_send_dedup(route_op *op, const rlink_val *d)
{
    int st = op->logged ? clog_send_reply(d, &op->id)
                        : d->type == REDIS_REPLY_INTEGER ? (int)d->integer : -1;
    if (st == 3) {                               /* nothing done: fails on the registry below */
        op->logged = 0;
        return 0;
    }
    if (st == 1 && (!op->logged || route_frame_id(op) == 0))
        return 0;
    if (st == 1)
        op->done.send(op->ud, IM_SERVER_ERROR, "out of memory", 0, 0, 0);
    else if (st == -1)
        op->done.send(op->ud, IM_SERVER_ERROR, d->type == REDIS_REPLY_ERROR && d->str ? d->str
                      : "Redis refused the msgID check", 0, 0, 0);
    else if (st == 2)
        op->done.send(op->ud, IM_OPERATION_FAILURE,
                      "a send with this msgID is in progress; retry when it has answered", 0, 0, 0);
    else
        op->done.send(op->ud, IM_OK, NULL, 1, 0, 0);
    route_op_free(op);
    return -1;
}

/* Replies: [dedup], [GET presence, HGETALL user's nodes], HGETALL servers. */
static void route_on_send_query(void *ud, int ok, rlink_val *rep, int n)
{
    route_op *op = ud;
    int i = 0;
    if (!ok) {
        op->done.send(op->ud, IM_SERVER_ERROR, ROUTE_REDIS_DOWN, 0, 0, 0);
        route_op_free(op);
        return;
    }
    if ((op->msgidlen || op->logged) && route_send_dedup(op, &rep[i++]) != 0)
        return;
    const rlink_val *pres = op->to_room ? NULL : &rep[i++];
    const rlink_val *nodes = op->to_room ? NULL : &rep[i++];
    char (*peers)[64];
    int np = route_peers(&rep[n - 1], &peers, op->why, sizeof(op->why));
    if (np < 0) {                                    /* nothing sent: release the msgID */
        op->err = IM_SERVER_ERROR;
        route_finish_send(op);
        return;
    }
    op->pending = 1;                                 /* the local part */
    if (op->to_room) {
        for (int p = 0; p < np; p++)
            route_call(op, peers[p]);
    } else {
        route_send_user_remote(op, pres, nodes, peers, np);
    }
    free(peers);
    /* local delivery: the room's users here, or the user's connections here
     * (also when the record names another node: a user may be on both) */
    const dlog_id *id = op->logged ? &op->id : NULL;
    int r = op->to_room ? hub_send_room_logged(op->appid, op->uid, op->uidlen, op->frame, id,
                                               route_local_done, op)
                        : hub_send_user_logged(op->appid, op->uid, op->uidlen, op->frame, id,
                                               route_local_done, op);
    if (r != 0)
        route_local_done(op, 0);
}

int route_send(const route_send_args *a, route_send_fn done, void *ud)
{
    route_op *op = route_op_new(ROUTE_SEND, ud);
    rlink_query *q = op ? rlink_query_new(4, route_on_send_query, op) : NULL;
    if (!q) {
        free(op);
        return -1;
    }
    op->done.send = done;
    op->to_room = a->to_room;
    op->appid = a->appid;
    op->uidlen = (uint8_t)(a->uidlen < PRESENCE_MAX_ID ? a->uidlen : 0);
    memcpy(op->uid, a->uid, op->uidlen);
    op->msgid = malloc(a->msgidlen + 1);
    op->msg = malloc(a->msglen + 1);
    op->frame = sbuf_ref(a->frame);
    int bad = !op->msgid || !op->msg;
    if (!bad) {
        memcpy(op->msgid, a->msgid, a->msgidlen);
        op->msgid[a->msgidlen] = '\0';
        op->msgidlen = a->msgidlen;
        memcpy(op->msg, a->msg, a->msglen);
        op->msg[a->msglen] = '\0';
        op->msglen = a->msglen;
    }
    char seq[300], flight[300], ttl[24], key[96], nkey[96];
    /* a logged send appends before it reads where the user is (clog.h) */
    op->logged = clog_enabled() && op->uidlen == a->uidlen && (a->to_room || op->uidlen > 0) &&
                 (a->to_room ? g_node.cfg.roomHistoryMax : g_node.cfg.inboxMax) > 0;
    if (!bad && op->logged) {
        bad = clog_send_add(q, a->to_room, a->appid, op->uid, op->uidlen, a->msgid, a->msgidlen,
                            a->msg, a->msglen) != 0;
    } else if (!bad && a->msgidlen) {
        snprintf(seq, sizeof(seq), ROUTE_SEQ_PREFIX "%.*s", (int)a->msgidlen, a->msgid);
        snprintf(flight, sizeof(flight), ROUTE_FLIGHT_PREFIX "%.*s", (int)a->msgidlen, a->msgid);
        snprintf(ttl, sizeof(ttl), "%d", g_node.cfg.rpcTimeout * 3 / 1000 + 10);
        const char *argv[] = { "EVAL", route_dedup_lua, "2", seq, flight, ttl };
        bad = rlink_query_add(q, 6, argv, NULL) != 0;
    }
    if (!bad && !a->to_room) {
        bad = prec_key(key, sizeof(key), a->appid, op->uid, op->uidlen) < 0 ||
              unodes_key(nkey, sizeof(nkey), a->appid, op->uid, op->uidlen) < 0;
        const char *get[] = { "GET", key };
        const char *nodes[] = { "HGETALL", nkey };
        bad = bad || rlink_query_add(q, 2, get, NULL) != 0 || rlink_query_add(q, 2, nodes, NULL) != 0;
    }
    const char *all[] = { "HGETALL", CLUSTER_SERVERS_KEY };
    if (bad || rlink_query_add(q, 2, all, NULL) != 0) {
        rlink_query_cancel(q);
        route_op_free(op);
        return -1;
    }
    rlink_query_submit(q);
    return 0;
}

/* ---------- list ---------- */

static void route_list_local(const pres_entry *e, void *ud)
{
    route_op *op = ud;
    if (route_add_name(op, e->id, e->idlen) != 0)
        log_warn("cluster: out of memory listing users");
}

static void route_on_list_query(void *ud, int ok, rlink_val *rep, int n)
{
    route_op *op = ud;
    char why[160];
    char (*peers)[64] = NULL;
    int np = ok && n == 1 ? route_peers(&rep[0], &peers, why, sizeof(why)) : -1;
    if (np < 0) {
        op->done.list(op->ud, IM_SERVER_ERROR, ok ? why : ROUTE_REDIS_DOWN, NULL, NULL, 0);
        route_op_free(op);
        return;
    }
    op->pending = 1;
    for (int p = 0; p < np; p++)
        route_call(op, peers[p]);
    free(peers);
    presence_each(op->appid, route_list_local, op);
    route_one_done(op);
}

int route_list(uint32_t appid, route_list_fn done, void *ud)
{
    route_op *op = route_op_new(ROUTE_LIST, ud);
    rlink_query *q = op ? rlink_query_new(1, route_on_list_query, op) : NULL;
    const char *all[] = { "HGETALL", CLUSTER_SERVERS_KEY };
    if (!q || rlink_query_add(q, 2, all, NULL) != 0) {
        if (q)
            rlink_query_cancel(q);
        free(op);
        return -1;
    }
    op->done.list = done;
    op->appid = appid;
    rlink_query_submit(q);
    return 0;
}

/* ---------- online ---------- */

/* Whether one of the presence records (an MGET reply) is online on a live
 * node: how a user on a Go node is seen. */
static int route_records_online(const rlink_val *recs, char (*peers)[64], int np)
{
    uint64_t now = (uint64_t)time(NULL);
    for (size_t i = 0; recs->type == REDIS_REPLY_ARRAY && i < recs->n; i++) {
        const rlink_val *v = &recs->elem[i];
        prec r;
        char node[96];
        if (v->type == REDIS_REPLY_STRING && prec_parse(v->str, v->len, &r) == 0 &&
            prec_online(&r, now) && prec_node(&r, node, sizeof(node)) > 0 &&
            route_is_live(node, peers, np))
            return 1;
    }
    return 0;
}

/* Replies: MGET of the records, HGETALL of each user's nodes hash, HGETALL
 * servers. Online: held here, or by another live node (its field in a
 * nodes hash), or so says a record (SPEC §7.2). */
static void route_on_online_query(void *ud, int ok, rlink_val *rep, int n)
{
    route_op *op = ud;
    int nkeys = op->appid ? 1 : g_node.cfg.appIDCount;
    char why[160];
    char (*peers)[64] = NULL;
    int np = ok && n == nkeys + 2 ? route_peers(&rep[n - 1], &peers, why, sizeof(why)) : -1;
    if (np < 0) {
        op->done.online(op->ud, IM_SERVER_ERROR, ok ? why : ROUTE_REDIS_DOWN, 0);
        route_op_free(op);
        return;
    }
    uint32_t now = (uint32_t)time(NULL);
    int online = 0;
    for (int i = 0; !online && i < nkeys; i++) {
        uint32_t a = op->appid ? op->appid : g_node.cfg.appIDs[i];
        online = presence_online(a, op->uid, op->uidlen, now) ||
                 route_user_nodes(&rep[1 + i], peers, np, NULL, NULL) > 0;
    }
    online = online || route_records_online(&rep[0], peers, np);
    free(peers);
    op->done.online(op->ud, IM_OK, NULL, online);
    route_op_free(op);
}

/* Adds MGET of the records, or HGETALL of the nodes hash, of every appID
 * asked (appid 0: all); 0 or -1. */
static int route_online_add(rlink_query *q, uint32_t appid, const char *uid, size_t uidlen, int nodes)
{
    const config *c = &g_node.cfg;
    int nkeys = appid ? 1 : c->appIDCount;
    const char **argv = calloc((size_t)nkeys + 1, sizeof(*argv));
    char (*keys)[96] = calloc((size_t)nkeys, sizeof(*keys));
    int bad = !argv || !keys;
    if (argv)
        argv[0] = "MGET";
    for (int i = 0; !bad && i < nkeys; i++) {
        uint32_t a = appid ? appid : c->appIDs[i];
        bad = (nodes ? unodes_key(keys[i], sizeof(keys[i]), a, uid, uidlen)
                     : prec_key(keys[i], sizeof(keys[i]), a, uid, uidlen)) < 0;
        argv[i + 1] = keys[i];
        if (!bad && nodes) {
            const char *h[] = { "HGETALL", keys[i] };
            bad = rlink_query_add(q, 2, h, NULL) != 0;
        }
    }
    bad = bad || (!nodes && rlink_query_add(q, nkeys + 1, argv, NULL) != 0);
    free(argv);
    free(keys);
    return bad ? -1 : 0;
}

int route_online(uint32_t appid, const char *uid, size_t uidlen, route_online_fn done, void *ud)
{
    int nkeys = appid ? 1 : g_node.cfg.appIDCount;
    route_op *op = route_op_new(ROUTE_ONLINE, ud);
    rlink_query *q = op ? rlink_query_new(nkeys + 2, route_on_online_query, op) : NULL;
    const char *all[] = { "HGETALL", CLUSTER_SERVERS_KEY };
    int bad = !q || route_online_add(q, appid, uid, uidlen, 0) != 0 ||
              route_online_add(q, appid, uid, uidlen, 1) != 0 || rlink_query_add(q, 2, all, NULL) != 0;
    if (bad) {
        if (q)
            rlink_query_cancel(q);
        free(op);
        return -1;
    }
    op->done.online = done;
    op->appid = appid;
    op->uidlen = (uint8_t)(uidlen < PRESENCE_MAX_ID ? uidlen : 0);
    memcpy(op->uid, uid, op->uidlen);
    rlink_query_submit(q);
    return 0;
}
