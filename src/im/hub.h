/* hub.h — who is connected where, and delivery to them.
 *
 * Each worker has a hub_local: its logged-in connections by user (a hash
 * table chained through conn.unext) and by room (lists through conn.rprev /
 * rnext). Only the owning loop touches it, so delivery needs no lock.
 * A send that may concern several workers (a user, a room) is a hub job:
 * the frame is encoded once into one sbuf, every worker writes that same
 * buffer to its own recipients, and the origin worker gets the total. */
#ifndef IMGATE_HUB_H
#define IMGATE_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "core/sbuf.h"
#include "im/dlog.h"

struct conn;
struct worker;
typedef struct hub_local hub_local;

hub_local *hub_local_new(void);
void hub_local_free(hub_local *h);
/* Gives every worker its hub_local (workers_set_local); call at start-up. */
void hub_init(void);

/* Index of appid in app.appIDs, or -1 if it is not a known app. */
int hub_room_index(uint32_t appid);

/* Binds c (on its own worker) to (appid, userID): registers presence, puts
 * it in the user table and the room. For the user's first connection on
 * this node *first is set and "enter" is announced to the room's other
 * users (in cluster mode: only if it is the user's first connection in the
 * cluster, see cluster/unodes.h). Returns 0, or -1 (presence store failure). */
int hub_attach(struct conn *c, uint32_t appid, const char *uid, size_t len, int *first);
/* Unbinds c; announces "exit" to the room if it was the user's last
 * connection on the node (in cluster mode: in the cluster). Safe on a
 * connection that is not logged in. */
void hub_detach(struct conn *c);

/* What cluster mode is told of this node's users (cluster/ registers these
 * at start-up, before the workers run; without them the node is alone and
 * enter/exit are announced here). join/leave/count run under the user's
 * stripe lock (see presence.h): the first connection on this node, the
 * last one gone (e is freed after the call), any other count; announce:
 * whether the room hears enter/exit at all (im.presenceEventsMaxRoom). */
struct pres_entry;
typedef struct hub_cluster_hooks {
    void (*join)(const struct pres_entry *e, int announce);
    void (*leave)(const struct pres_entry *e, int announce);
    void (*count)(const struct pres_entry *e);
    void (*heartbeat)(const struct pres_entry *e, uint32_t prev_hb);   /* the time it replaced */
} hub_cluster_hooks;
void hub_set_cluster(const hub_cluster_hooks *hooks);

/* A heartbeat of c's user: presence here, and the cluster's record. */
void hub_heartbeat(struct conn *c, uint32_t now);

/* Called on the origin worker when every worker has run its share. */
typedef void (*hub_done_fn)(void *ud, long delivered);

/* Sends frame to every connection of (appid, uid) on this node. */
int hub_send_user(uint32_t appid, const char *uid, size_t len, sbuf *frame,
                  hub_done_fn done, void *ud);
/* The same for a logged message (its inbox entry id): in embedded mode,
 * once it was pushed to a connection, the user's pushed cursor moves to id
 * (in cluster mode the sending node moves it in Redis, cluster/route.c;
 * not with
 * delivery.ackRequired). */
int hub_send_user_logged(uint32_t appid, const char *uid, size_t len, sbuf *frame,
                         const dlog_id *id, hub_done_fn done, void *ud);
/* Sends frame to every connection in room appid except those of user
 * `except` (may be empty) on this node: each worker queues it on its walk
 * of the room (im/fanout.h), which hands it to the members over the next
 * loop turns, in order with the room's other pushes. done runs once every
 * worker has queued it (delivered is then 0: the walks count later). */
int hub_send_room(uint32_t appid, const char *except, size_t len, sbuf *frame,
                  hub_done_fn done, void *ud);
/* The same for a logged room message (its history entry id). */
int hub_send_room_logged(uint32_t appid, const char *except, size_t len, sbuf *frame,
                         const dlog_id *id, hub_done_fn done, void *ud);

/* Closes every connection of (appid, uid) on this node (appid 0: in every
 * room) with close code HUB_KICK_CODE and reason (valid UTF-8; the close
 * frame cuts it to HUB_KICK_REASON_MAX bytes); done gets how many. */
#define HUB_KICK_CODE 4000
#define HUB_KICK_REASON_MAX 123
int hub_kick_user(uint32_t appid, const char *uid, size_t len, const char *reason,
                  hub_done_fn done, void *ud);

/* Distinct users of room index r (hub_room_index) on this node. */
long hub_room_users_count(int r);

/* Gates: a login whose replay is read from a store the node must wait for
 * (Redis, in cluster mode). The connection is attached first, so that no
 * push sent meanwhile can miss it, and gated: every push to it is held
 * (the login reply and the replay go first; a held push does not count as
 * delivered to its sender). hub_gate_open then sends
 * what was held, except the logged messages the replay already had (an id
 * not newer than inbox_max, or room_max, the logs' newest ids when the
 * replay was read; NULL: that log was not replayed), and for keep_ms more
 * drops such late duplicates too (a push routed while the replay was read
 * may arrive after it). On c's worker; a gate ends with hub_detach. More
 * than HUB_GATE_MAX_HELD held pushes close c (1008): its client resumes. */
#define HUB_GATE_MAX_HELD 4096
int hub_gate_hold(struct conn *c);               /* 0, or -1 (no memory) */
/* Returns 1 with *sent_inbox = the newest inbox id among the held pushes it
 * sent (a held push is not "delivered" for its sender: the caller moves
 * the cursor), else 0. */
/* uncounted: the replay could not be read, so for as long as c lives its
 * logged inbox pushes (the held ones too) are sent but count as not
 * delivered: no sender moves the cursor past what was never replayed, and
 * the next login replays it (again, for what c got meanwhile). Other
 * pushes count as usual. Returns 0 then. */
int hub_gate_open(struct conn *c, const dlog_id *inbox_max, const dlog_id *room_max,
                  uint32_t keep_ms, int uncounted, dlog_id *sent_inbox);
/* Was c's gate opened uncounted (its login's replay could not be read)? */
int hub_gate_uncounted(struct conn *c);

/* Announces cmd ("enter"/"exit") of user uid to this node's room appid,
 * the user excluded; nothing in a room over im.presenceEventsMaxRoom. Any
 * thread (delivery goes through the workers' inboxes). */
void hub_announce(const char *cmd, uint32_t appid, const char *uid, size_t len);

/* Encodes a server push {"seq","cmd","response":{code 200,"Ok",data:
 * {"target":"","type":"text","msg","from"}}} as one WebSocket text frame. */
sbuf *hub_push_frame(const char *seq, size_t seqlen, const char *cmd,
                     const char *msg, size_t msglen, const char *from, size_t fromlen);
/* The same with the entry id of a logged message in data ("id"); id may be
 * NULL (no id field). */
sbuf *hub_push_frame_id(const char *seq, size_t seqlen, const char *cmd, const char *msg,
                        size_t msglen, const char *from, size_t fromlen, const dlog_id *id);

/* Local counts of the calling worker's hub (for /system/state). */
long hub_local_users(const hub_local *h);

/* Calls fn for each logged-in connection of worker w (on w's thread). */
void hub_local_each(hub_local *h, void (*fn)(struct conn *c, void *ud), void *ud);

#endif
