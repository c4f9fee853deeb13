/* rpc.h — gRPC between cluster nodes: the protobuf.AccServer service
 * (proto/acc.proto, SPEC §6) served on app.rpcPort, and a client with one
 * channel per peer ("ip:port").
 *
 * Threads: gRPC's C core does its socket I/O inside a thread waiting in
 * grpc_completion_queue_next; this module owns one such thread for the
 * server and the client. Server calls are handed to the worker loops through
 * the hub: SendMsg is answered when every worker has delivered (the answer
 * says whether the user was found), SendMsgAll as soon as the delivery is
 * queued on every worker (a big room must not run the caller's deadline out).
 * Client completions (rpc_done_fn) run on the completion-queue thread: they
 * must be quick and must not block (post to a worker to do more). */
#ifndef IMGATE_RPC_H
#define IMGATE_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "im/dlog.h"

struct jsonw;
struct config;

/* Node-to-node security (SPEC §7.3), from the configuration, before
 * rpc_start: cluster.rpcToken (then every incoming call must carry metadata
 * "authorization: Bearer <token>", else it is answered UNAUTHENTICATED and
 * counted, and every outgoing call carries it) and cluster.rpcTlsCert/Key/CA
 * (then the server requires and verifies a client certificate signed by the
 * CA, and the client channels present this node's certificate and trust only
 * the CA). The PEM files are read and checked here. Returns 0, or -1 with a
 * message naming the key and the path in err. Both off when empty. */
int rpc_security_load(const struct config *c, char *err, size_t errlen);
/* Forgets what rpc_security_load read (after rpc_stop). */
void rpc_security_free(void);
/* "none", "token", "mtls" or "token+mtls" (never the token itself). */
const char *rpc_auth_mode(void);
/* Incoming calls refused for a missing or wrong token since the start. */
long rpc_refused_calls(void);

/* Starts the server on bind:port (port 0 = pick a free one; the bound port
 * goes to *bound) and the completion-queue thread. Returns 0, or -1 with a
 * reason in err (e.g. the port is taken: two nodes never share one). */
int rpc_start(const char *bind, int port, int *bound, char *err, size_t errlen);
/* Stops accepting calls, cancels what is in flight, joins the thread.
 * Call before the workers stop. Safe if rpc_start was not called. */
void rpc_stop(void);

/* A message for SendMsg / SendMsgAll. Pointers are borrowed for the call. */
typedef struct rpc_msg {
    const char *seq; size_t seqlen;     /* the msgID */
    uint32_t appid;
    const char *uid; size_t uidlen;     /* SendMsg: recipient; SendMsgAll: excluded sender */
    const char *cms;                    /* "msg", "enter" or "exit" */
    const char *msg; size_t msglen;     /* the text */
    const dlog_id *id;                  /* a logged message's entry id, or NULL */
    int must;                           /* made even while the peer is skipped (below; at
                                           most 64 such calls in flight per peer) */
} rpc_msg;

/* The outcome of a client call. ok = 0: the call failed (transport error,
 * deadline, peer skipped, bad answer); then only err is meaningful.
 * ok = 1: ret_code is the peer's retCode (200 = success). */
typedef struct rpc_result {
    int ok;
    uint32_t ret_code;
    const char *err;                    /* gRPC status text or errMsg */
    int online;                         /* QueryUsersOnline */
    size_t nusers;                      /* GetUserList */
    const char *const *users;           /* NUL-terminated userIDs */
    const size_t *user_lens;
    uint32_t kicked;                    /* KickUser */
} rpc_result;

/* Runs once per call, on the completion-queue thread; res and what it points
 * to are valid only during the call. */
typedef void (*rpc_done_fn)(void *ud, const rpc_result *res);

/* Client calls to peer "ip:port", each with a deadline of cluster.rpcTimeout
 * ms. Return 0: done will run exactly once. Return -1: the call was not made
 * (the peer is being skipped after repeated failures, rpc_start has not run
 * or rpc_stop has begun, or no memory) and done will not run. Calls still in
 * flight when rpc_stop runs are cancelled: their done runs (ok = 0) before
 * rpc_stop returns. With ok = 1, err is the peer's errMsg.
 *
 * Peer health: a call fails (ok = 0) on a transport error, a non-OK gRPC
 * status, the deadline or an undecodable answer; any answer, whatever its
 * retCode, is a success. After 2 consecutive failures the peer is skipped
 * for a back-off of 1 s, doubling after each failed trial up to
 * cluster.peerBackoff s; when it runs out, one trial call goes through (the
 * others are still skipped while it is in flight). A success resets all. */
int rpc_send_msg(const char *peer, const rpc_msg *m, rpc_done_fn done, void *ud);
int rpc_send_msg_all(const char *peer, const rpc_msg *m, rpc_done_fn done, void *ud);
int rpc_get_user_list(const char *peer, uint32_t appid, rpc_done_fn done, void *ud);
int rpc_query_online(const char *peer, uint32_t appid, const char *uid, size_t uidlen,
                     rpc_done_fn done, void *ud);
/* KickUser (imgate only): closes the user's connections on peer with close
 * code 4000 and reason. A peer without the method (a Go node) answers
 * UNIMPLEMENTED: ok = 0 for this call, but not a failure of the peer's
 * health (it answered). */
int rpc_kick_user(const char *peer, uint32_t appid, const char *uid, size_t uidlen,
                  const char *reason, rpc_done_fn done, void *ud);

/* Whether calls to peer are being skipped right now (it failed repeatedly
 * and its back-off has not run out). */
int rpc_peer_skipped(const char *peer);

/* Appends a JSON array of the peers this node has called:
 * [{"peer":"ip:port","healthy":true,"calls":N,"failures":N,
 *   "consecutiveFailures":N,"lastError":"..."}] — for /system/state. */
void rpc_peers_json(struct jsonw *w);

/* Test hook (tests/unit/test_rpc_hub.c), no effect on behaviour: what
 * became of the server's SendMsg calls handed to the hub, counted since the
 * process started (across rpc_start/rpc_stop). handed: given to the workers
 * for delivery; pending: of those, still waiting for their delivery now;
 * abandoned: given up by rpc_stop after its grace (left unanswered);
 * late: abandoned calls whose delivery has since ended (and freed them). */
typedef struct rpc_hub_counts {
    long handed, pending, abandoned, late;
} rpc_hub_counts;
void rpc_hub_counts_get(rpc_hub_counts *out);

#endif
