/* clog.h — the delivery logs of cluster mode (SPEC §7.1) in Redis streams:
 * each user's inbox acc:user:inbox:<appID>_<userID>, each room's history
 * acc:room:history:<appID>, and each user's pushed cursor
 * acc:user:cursor:<appID>_<userID> (a string: the id of the last inbox
 * entry pushed to, or acked by, any connection of the user). Stream ids
 * are the entry ids that pushes carry; entries keep the sender ("from"),
 * the text ("msg") and the msgID ("seq"). Retention: on every append the
 * entries over the count and the oldest past the age limit (Redis's own
 * clock) are deleted (XDEL: the stream then knows the newest id it lost),
 * and the whole key expires after the age limit; reads skip entries older
 * than the age limit.
 *
 * Everything goes through the node's Redis link (cluster/rlink.h): a worker
 * never waits. Ordering with logins (im/resume.h, im/hub.h gates): a send
 * appends in the same pipeline that then reads where the user is; a login
 * attaches first (its node's join reaches Redis first) and reads after. So a
 * message either reaches the new connection live (then it may be in the
 * replay too: the gate drops the second copy by id) or is in the replay. */
#ifndef IMGATE_CLOG_H
#define IMGATE_CLOG_H

#include <stddef.h>
#include <stdint.h>

#include "im/dlog.h"

struct rlink_query;
struct rlink_val;

/* Cluster mode (cluster_start): logging is on when delivery.enabled, and
 * the login store (im/resume.h) is registered. Start-up, before the
 * workers run. */
void clog_init(void);
/* Is logging on (cluster mode and delivery.enabled)? */
int clog_enabled(void);

/* Adds to q the one command that reserves the msgID (when msgidlen > 0, as
 * the original's acc:submit:again:seq key) and, if it was new, appends the
 * message to the user's inbox (to_room = 0) or the room's history (to_room
 * = 1; uid is the sender). 0 or -1. */
int clog_send_add(struct rlink_query *q, int to_room, uint32_t appid, const char *uid,
                  size_t uidlen, const char *msgid, size_t msgidlen, const char *msg,
                  size_t msglen);
/* Its reply: 1 = new and logged (*id set), 0 = the msgID was used,
 * 2 = a send with it is in flight, 3 = nothing done (the node registry
 * acc:hash:servers is not a hash: the send fails on it), -1 = Redis
 * refused (an error reply). */
int clog_send_reply(const struct rlink_val *v, dlog_id *id);

/* Adds to q the end of a logged send: the msgID kept (keep) or released,
 * as route.c does without logging, and, when the message was pushed to a
 * connection (pushed: its id; NULL: not pushed, or delivery.ackRequired),
 * the user's cursor moved to it. One command; 0 or -1. */
int clog_finish_add(struct rlink_query *q, const char *msgid, size_t msgidlen, int keep,
                    uint32_t appid, const char *uid, size_t uidlen, const dlog_id *pushed);

/* Link thread (the cluster's on_up hook): loads the scripts into Redis's
 * cache after every connect; commands run them by SHA1 (EVALSHA). */
void clog_on_up(void);
/* Any reply of a script: NOSCRIPT (Redis lost its script cache) has the
 * link load them again. Worker threads. */
void clog_check_noscript(const struct rlink_val *v);

/* The user's pushed cursor moves forward to id (never back, never past the
 * inbox's newest entry). Any thread; fire-and-forget. */
void clog_cursor_move(uint32_t appid, const char *uid, size_t len, dlog_id id);

/* /user/history: up to limit entries after `after` (NULL: from the oldest)
 * of a user's inbox (uidlen > 0) or the room's history. fn runs on the
 * calling worker: ok = 0 when Redis is unavailable; more = an entry exists
 * beyond the page. Entries are valid during the call. 0, or -1 (fn will not
 * run). */
typedef void (*clog_history_fn)(void *ud, int ok, const dlog_entry *e, size_t n, int more);
int clog_history(uint32_t appid, const char *uid, size_t uidlen, const dlog_id *after,
                 size_t limit, clog_history_fn fn, void *ud);

#endif
