/* cstate.h — the node's state for the dashboard (SPEC 7.5): one compact
 * JSON object per node (counters, connections, users, queue bytes, closes,
 * rooms with their user counts, Redis and peer health). In cluster mode
 * each node writes its own to Redis every CSTATE_INTERVAL_MS from the link
 * thread (SET acc:node:state:<ip:rpcPort> EX CSTATE_TTL_S), so that any node
 * can show every node's state with one Redis read and without calling (or
 * waiting for) its peers. */
#ifndef IMGATE_CSTATE_H
#define IMGATE_CSTATE_H

#include <stddef.h>

struct jsonw;

#define CSTATE_KEY_PREFIX "acc:node:state:"
#define CSTATE_INTERVAL_MS 1000
#define CSTATE_TTL_S 10

/* This node's state object, now (any thread):
 * {"node","mode","http","ws","time","uptimeSeconds","workers","connections",
 *  "loggedIn","users","messagesIn","framesOut","outQueueBytes",
 *  "slowConsumersClosed","rateLimitedClosed","redis","peers":[..],
 *  "rooms":[{"appID","users"}]} (see docs/dashboard.md). */
void cstate_node_json(struct jsonw *w);

/* From a worker: the state of every other live node of the registry, read
 * from Redis (HGETALL acc:hash:servers, then MGET of their snapshots).
 * done runs once, later, on the same worker: ok = 0 when Redis is down or
 * the registry cannot be read (why says so); else json is an array of
 * objects: a node's snapshot (cstate_node_json), or
 * {"node":"ip:port","snapshot":false} for a live node without one (a Go
 * node, or one that has not written it yet). Returns 0, or -1 (no memory;
 * done will not run). */
typedef void (*cstate_peers_fn)(void *ud, int ok, const char *why, const char *json, size_t len);
int cstate_peers(cstate_peers_fn done, void *ud);

/* The snapshot timer, on the link thread (cluster.c): started once the
 * link's loop runs, closed when the link stops. */
void cstate_start(void);
void cstate_stop(void);
/* Clean shutdown (cluster_deregister): no more snapshots, and DEL of this
 * node's (before its registry field goes). Link thread. */
void cstate_forget(void);

#endif
