/* cluster.h — cluster mode (redis.addr set): the node's link to Redis and
 * its place in the cluster. It owns one thread with its own libuv loop that
 * holds the Redis connection (hiredis async, libuv adapter): presence records
 * (acc:user:online:<appID>_<userID>), the node registry (acc:hash:servers),
 * msgID de-duplication (acc:submit:again:seq:<msgID>), reconnect with
 * back-off and, after a reconnect, re-registration and a rewrite of the
 * presence of every user the node holds (SPEC §5).
 *
 * Workers never wait for Redis: they post requests to the cluster loop's
 * inbox and get the answer back as a task on their own loop. */
#ifndef IMGATE_CLUSTER_H
#define IMGATE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct pres_entry;
struct worker;
struct jsonw;

/* Is cluster mode on (redis.addr set)? */
int cluster_enabled(void);

/* Starts the cluster thread and connects to Redis (asynchronously: a Redis
 * that is down at start is retried with back-off, the node serves its own
 * users meanwhile). self is this node's "advertiseIp:rpcPort". Returns 0 or
 * -1 with a reason in err. */
int cluster_start(const char *self, char *err, size_t errlen);
/* Removes this node from acc:hash:servers (clean shutdown), waiting at most
 * cluster.redisTimeout for the answer. */
void cluster_deregister(void);
/* Writes what is queued (bounded by cluster.redisTimeout), disconnects and
 * joins the thread. After the workers have stopped. */
void cluster_stop(void);

/* This node's "ip:port" in the registry and in presence records. */
const char *cluster_self(void);

/* Presence records (no-ops in embedded mode; any thread, quick: they only
 * format the command and post it). Online: at the user's first login on
 * this node and at each heartbeat. Offline: when the user's last
 * connection on this node goes (written only while the record still names
 * this node, so a user who moved on to another node stays online there).
 * While Redis is down they are dropped: a reconnect rewrites every user. */
void cluster_user_online(const struct pres_entry *e);
void cluster_user_offline(const struct pres_entry *e);

/* Tells every other live node of an enter/exit in room appid (SendMsgAll
 * with cms = cmd, the user excluded). Any thread, quick. */
void cluster_announce(const char *cmd, uint32_t appid, const char *uid, size_t len);

/* ---- for the API's cluster routes (cluster/route.c) ---- */

/* Is the Redis connection up right now? */
int cluster_redis_up(void);

/* A copy of one Redis reply (type is hiredis's REDIS_REPLY_*). */
typedef struct cluster_val {
    int type;
    long long integer;
    char *str;                       /* NUL-terminated; STRING, STATUS, ERROR */
    size_t len;
    size_t n;                        /* ARRAY */
    struct cluster_val *elem;
} cluster_val;

/* Commands sent back to back; fn runs on the submitting worker's loop with
 * every reply (ok = 0: Redis is down or the connection failed meanwhile;
 * replies may then be partly empty). The replies are freed after fn. */
typedef struct cluster_query cluster_query;
typedef void (*cluster_query_fn)(void *ud, int ok, cluster_val *replies, int n);
/* Room for up to n commands. NULL on no memory. */
cluster_query *cluster_query_new(int n, cluster_query_fn fn, void *ud);
int cluster_query_add(cluster_query *q, int argc, const char **argv, const size_t *argvlen);
void cluster_query_submit(cluster_query *q);   /* from a worker; fn runs there */
void cluster_query_cancel(cluster_query *q);   /* not submitted: free it */

/* A command whose answer nobody waits for (dropped while Redis is down). */
void cluster_write(int argc, const char **argv, const size_t *argvlen);

/* Takes a fresh HGETALL acc:hash:servers reply as the live node list. */
void cluster_servers_note(const cluster_val *v);
/* Copies up to max live nodes ("ip:port", self included) into out. */
int cluster_servers(char (*out)[64], int max);

/* {"self":..,"redis":"up"|"down",...,"servers":[..],"peers":[..]} */
void cluster_state_json(struct jsonw *w);

#endif
