/* cluster.h — cluster mode (redis.addr or Sentinel): the node's place in the
 * cluster, kept in Redis through the Redis link (cluster/rlink.h): its
 * registration in acc:hash:servers, the list of live nodes, the presence
 * records acc:user:online:<appID>_<userID> of the users it holds (rewritten
 * in full after every reconnect), and enter/exit announcements to the other
 * nodes over gRPC (SPEC §5–6). One user on several nodes (the hash
 * acc:user:nodes:..., which decides enter/exit and logoff) is
 * cluster/unodes.h; msgID de-duplication and the API's routing are
 * cluster/route.h.
 *
 * Workers never wait for Redis: what they ask is posted to the link's
 * thread, and answers come back as a task on their own loop. */
#ifndef IMGATE_CLUSTER_H
#define IMGATE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct pres_entry;
struct jsonw;

/* Is cluster mode on (redis.addr set, or redis.sentinels and
 * redis.masterName: see cluster/sentinel.h)? */
int cluster_enabled(void);

/* Starts the Redis link and connects (asynchronously: a Redis
 * that is down at start is retried with back-off, the node serves its own
 * users meanwhile). self is this node's "advertiseIp:rpcPort". Returns 0 or
 * -1 with a reason in err. */
int cluster_start(const char *self, char *err, size_t errlen);
/* After workers_start: runs the link (cluster/rlink.h), on the worker's
 * thread when the node has one worker (no thread hop per Redis command),
 * else on a thread of its own. No-op unless cluster_start succeeded. */
void cluster_run(void);
/* Removes this node from acc:hash:servers (clean shutdown), waiting at most
 * cluster.redisTimeout for the answer. */
void cluster_deregister(void);
/* Writes what is queued (bounded by cluster.redisTimeout), disconnects and
 * ends the link's loop; its queries fail back to their workers. Call after
 * workers_close_clients and before workers_stop (the workers must still run
 * to take those answers). */
void cluster_stop(void);

/* This node's "ip:port" in the registry and in presence records. */
const char *cluster_self(void);

/* A heartbeat of a user this node holds: rewrites the presence record and
 * keeps acc:user:nodes:<appID>_<userID> alive (no-op in embedded mode; any
 * thread, quick: it only formats the commands and posts them). While Redis
 * is down it is dropped: a reconnect rewrites every user. The first and last
 * connections of a user are cluster/unodes.h. */
void cluster_user_online(const struct pres_entry *e, uint32_t prev_hb);

/* The presence record of e (SPEC §5), online or logged off, into w. */
void cluster_prec_json(struct jsonw *w, const struct pres_entry *e, int logoff);
/* How a presence record names this node: `"accIp":"<ip>","accPort":"<port>",`
 * into out; returns its length or -1. */
int cluster_prec_frag(char *out, size_t cap);

/* Announces an enter/exit (cmd) of the user to this node's room and, with
 * SendMsgAll (cms = cmd, the user excluded), to every other live node. Runs
 * where the Redis answer to a user's join/leave is handled (cluster/unodes.c:
 * the link thread). Nothing once cluster_deregister has begun: the node is
 * closing every client anyway, and peers are no longer called. */
void cluster_announce(const char *cmd, uint32_t appid, const char *uid, size_t len);

/* ---- for the API's cluster routes (cluster/route.c) ---- */

struct rlink_val;

#define CLUSTER_SERVERS_KEY "acc:hash:servers"

/* Takes a fresh HGETALL acc:hash:servers reply as the live node list (a
 * field that is not "ip:port" is skipped, and logged once). Returns 0, or
 * -1 when the reply is not a hash (e.g. WRONGTYPE: logged once until the
 * registry can be read again); the list is then left as it was. */
int cluster_servers_note(const struct rlink_val *v);
/* Copies up to max live nodes ("ip:port", self included) into out. */
int cluster_servers(char (*out)[64], int max);
/* Whether node addr ("ip:port", len bytes) is in the live node list: 1 or
 * 0, or -1 when the list is unknown (the registry has not been read, or
 * its last read failed). Any thread. */
int cluster_server_live(const char *addr, size_t len);

/* {"self":..,"redis":"up"|"down",...,"servers":[..],"peers":[..]} */
void cluster_state_json(struct jsonw *w);

#endif
