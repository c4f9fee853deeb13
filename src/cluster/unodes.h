/* unodes.h — one user on several nodes (SPEC §7.2, cluster mode).
 *
 * Beside the Go-compatible presence record (cluster/prec.h) imgate nodes
 * keep the hash acc:user:nodes:<appID>_<userID>: field "ip:rpcPort" → that
 * node's connections of the user, 24 h TTL. A node writes it at the user's
 * first connection on the node (join: one MULTI/EXEC transaction of HSET of
 * its field, EXPIRE, SET of the presence record and HGETALL of the hash;
 * no script, whose start cost Redis more than the rest of a login) and
 * after the last one (leave, one Lua script: its field removed; the record
 * marked logged off if no live node holds the user any more, else handed
 * over to one that does when it names this node). Each runs with no other
 * node's edge in between, and each answers how many *other live* nodes
 * hold the user, so enter is announced only for the user's first
 * connection in the cluster and exit only after its last one. A join that
 * announces nothing (its room is over im.presenceEventsMaxRoom on this
 * node) is the same three writes back to back, without the transaction
 * and the HGETALL: it needs no count (unodes.c, un_join_send). The leave
 * script asks the registry (acc:hash:servers) which nodes are live and
 * removes the fields of the others; the join counts by this node's list of
 * live nodes (read from the registry every cluster.registerInterval) and,
 * when the hash names a node that list does not know, runs a script that
 * removes the fields the registry says are dead. Counts between the edges
 * are plain HSETs.
 *
 * While Redis is down the edges cannot be written: every edge is then
 * announced (what each node sees alone), and after the reconnect the node
 * rewrites its fields (unodes_resync_one) and removes the fields it left
 * behind (unodes_sweep: also those of an earlier run of the same ip:port).
 *
 * Readers (cluster/route.c) read the hash with HGETALL and count a field
 * only if its node is live. */
#ifndef IMGATE_UNODES_H
#define IMGATE_UNODES_H

#include <stddef.h>
#include <stdint.h>

#define UNODES_KEY_PREFIX "acc:user:nodes:"

struct pres_entry;

/* Writes the key into out; returns its length, or -1 if it does not fit. */
int unodes_key(char *out, size_t cap, uint32_t appid, const char *uid, size_t len);

/* Presence changes on this node, called under the user's stripe lock (see
 * presence.h; no-ops in embedded mode): the first connection (join), the
 * last one gone (leave; e is freed after the call), any other count
 * (count). announce: whether enter/exit are announced in the room at all
 * (im.presenceEventsMaxRoom). */
void unodes_join(const struct pres_entry *e, int announce);
void unodes_leave(const struct pres_entry *e, int announce);
void unodes_count(const struct pres_entry *e);

/* A heartbeat (prev_hb: the heartbeat time it replaced): keeps the hash
 * from expiring under a long-lived user. Its TTL is a day and the edges
 * renew it, so one EXPIRE per user per hour is enough: the first heartbeat
 * of each hour since the user's login here sends it, the others nothing
 * (at a million users with 30 s heartbeats, 33,000 commands a second less
 * for Redis). */
void unodes_touch(const struct pres_entry *e, uint32_t prev_hb);

/* ---- link thread, right after a (re)connect ---- */

/* Rewrites this node's field for one user it holds. */
void unodes_resync_one(const struct pres_entry *e);
/* Walks the hashes (SCAN) and removes this node's field where it holds
 * nobody any more (as a leave, without announcing). */
void unodes_sweep(void);

#endif
