/* kick.c — a user's connections closed cluster-wide (see kick.h). The op
 * belongs to the worker that serves the HTTP request: gRPC completions are
 * posted back to it as tasks, so its counters are touched there only. */
#include "cluster/kick.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/rlink.h"
#include "cluster/rpc.h"
#include "core/log.h"
#include "im/codes.h"
#include "im/hub.h"
#include "im/presence.h"
#include "net/worker.h"

typedef struct kick_op {
    struct worker *origin;
    kick_fn done;
    void *ud;
    int pending;                        /* local part + gRPC calls out */
    long kicked;
    int nodes, nfailed;
    char failed[KICK_MAX_FAILED][64];
    uint32_t appid;
    uint8_t uidlen;
    char uid[PRESENCE_MAX_ID];
    char *reason;
} kick_op;

typedef struct kick_reply {
    task t;
    kick_op *op;
    int ok;
    uint32_t kicked;
    char peer[64];
    char err[128];
} kick_reply;

static void kick_fail(kick_op *op, const char *node)
{
    if (op->nfailed < KICK_MAX_FAILED)
        snprintf(op->failed[op->nfailed], sizeof(op->failed[0]), "%s", node);
    op->nfailed++;
}

static void kick_op_free(kick_op *op)
{
    free(op->reason);
    free(op);
}

static void kick_one_done(kick_op *op)
{
    if (--op->pending)
        return;
    kick_result r = { op->kicked, op->nodes, op->nfailed, (const char (*)[64])op->failed };
    op->done(op->ud, IM_OK, NULL, &r);
    kick_op_free(op);
}

static void kick_reply_run(struct worker *w, task *t)
{
    (void)w;
    kick_reply *r = (kick_reply *)t;
    kick_op *op = r->op;
    if (r->ok) {
        op->kicked += r->kicked;
    } else {
        log_warn("cluster: KickUser to %s failed: %s", r->peer, r->err);
        kick_fail(op, r->peer);
    }
    free(r);
    kick_one_done(op);
}

/* On the gRPC thread: hand the outcome to the op's worker. */
static void kick_on_rpc(void *ud, const rpc_result *res)
{
    kick_reply *r = ud;
    r->ok = res->ok && res->ret_code == IM_OK;
    r->kicked = r->ok ? res->kicked : 0;
    snprintf(r->err, sizeof(r->err), "%s", res->err ? res->err : "?");
    r->t.run = kick_reply_run;
    worker_post(r->op->origin, &r->t);
}

static void kick_call(kick_op *op, const char *peer)
{
    kick_reply *r = calloc(1, sizeof(*r));
    op->nodes++;
    if (r) {
        r->op = op;
        snprintf(r->peer, sizeof(r->peer), "%s", peer);
        op->pending++;
        if (rpc_kick_user(peer, op->appid, op->uid, op->uidlen, op->reason, kick_on_rpc, r) == 0)
            return;
        op->pending--;
        free(r);
    }
    log_warn("cluster: KickUser to %s not made (the peer is being skipped, or no memory)", peer);
    kick_fail(op, peer);
}

static void kick_local_done(void *ud, long n)
{
    kick_op *op = ud;
    op->kicked += n;
    kick_one_done(op);
}

static void kick_on_servers(void *ud, int ok, rlink_val *rep, int n)
{
    kick_op *op = ud;
    if (!ok || n != 1 || cluster_servers_note(&rep[0]) != 0) {
        op->done(op->ud, IM_SERVER_ERROR, !ok || n != 1
                 ? "Redis is unavailable; cluster-wide calls fail until it is back"
                 : "the node registry " CLUSTER_SERVERS_KEY " cannot be read", NULL);
        kick_op_free(op);
        return;
    }
    int max = (int)(rep[0].n / 2) + 1;
    char (*list)[64] = malloc((size_t)max * sizeof(*list));
    int all = list ? cluster_servers(list, max) : 0;
    op->pending = 1;                             /* the local part */
    op->nodes = 1;
    for (int i = 0; i < all; i++)
        if (strcmp(list[i], cluster_self()) != 0)
            kick_call(op, list[i]);
    free(list);
    if (hub_kick_user(op->appid, op->uid, op->uidlen, op->reason, kick_local_done, op) != 0) {
        kick_fail(op, cluster_self());
        kick_one_done(op);
    }
}

int cluster_kick(uint32_t appid, const char *uid, size_t uidlen, const char *reason, kick_fn done,
                 void *ud)
{
    if (uidlen == 0 || uidlen >= PRESENCE_MAX_ID)
        return -1;
    kick_op *op = calloc(1, sizeof(*op));
    rlink_query *q = op ? rlink_query_new(1, kick_on_servers, op) : NULL;
    const char *argv[] = { "HGETALL", CLUSTER_SERVERS_KEY };
    if (op)
        op->reason = strdup(reason);
    if (!q || !op->reason || rlink_query_add(q, 2, argv, NULL) != 0) {
        if (q)
            rlink_query_cancel(q);
        if (op)
            kick_op_free(op);
        return -1;
    }
    op->origin = worker_self();
    op->done = done;
    op->ud = ud;
    op->appid = appid;
    op->uidlen = (uint8_t)uidlen;
    memcpy(op->uid, uid, uidlen);
    rlink_query_submit(q);
    return 0;
}
