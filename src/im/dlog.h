/* dlog.h — delivery logs of embedded mode (SPEC §7.1): each user's inbox
 * (per appID + userID) and each room's history (per appID), ordered entries
 * with ids "<milliseconds>-<sequence>", retention by count and age
 * (delivery.*), and each user's pushed cursor. Kept in process; with
 * delivery.dir set, also written through to disk (im/dlog_disk.c, LMDB) and
 * loaded back at start, so a restart loses nothing.
 *
 * Ordering: every log has a lock (striped). A sender appends and hands its
 * push to the workers while holding it; a login reads what it must replay
 * and hands its replay to its worker while holding it (the user's lock,
 * then the room's). Because the workers' inboxes are FIFO, a replay never
 * interleaves with live pushes of the same log (see im/proto.c). */
#ifndef IMGATE_DLOG_H
#define IMGATE_DLOG_H

#include <stddef.h>
#include <stdint.h>

/* An entry id: milliseconds since the epoch and a sequence number within
 * that millisecond (the same form as a Redis stream id). */
typedef struct dlog_id {
    uint64_t ms;
    uint64_t seq;
} dlog_id;

#define DLOG_ID_MAX 42            /* "18446744073709551615-18446744073709551615" + NUL */

/* Parses "<ms>-<seq>" (digits only, each fits in 64 bits). 0 or -1. */
int dlog_id_parse(const char *s, size_t n, dlog_id *out);
/* Writes the id's text (NUL-terminated) into out; returns its length. */
size_t dlog_id_format(dlog_id id, char out[DLOG_ID_MAX]);
int dlog_id_cmp(dlog_id a, dlog_id b);

/* A log: a user's inbox (uidlen > 0) or a room's history (uidlen == 0). */
typedef struct dlog_key {
    uint32_t appid;
    const char *uid;
    size_t uidlen;
} dlog_key;

/* One entry as read (pointers valid during the callback only). */
typedef struct dlog_entry {
    dlog_id id;
    uint64_t time_ms;              /* when it was appended */
    const char *from;
    size_t fromlen;
    const char *msg;
    size_t msglen;
    const char *seq;               /* the message's msgID (the push's seq); may be empty */
    size_t seqlen;
} dlog_entry;

/* Returns 0 to go on, non-zero to stop. */
typedef int (*dlog_read_fn)(const dlog_entry *e, void *ud);

/* Opens the logs (g_node.cfg.delivery*: limits, and delivery.dir for the
 * disk copy, whose entries are loaded back). 0, or -1 with a reason. */
int dlog_init(char *err, size_t errlen);
void dlog_free(void);
/* Is logging on (delivery.enabled)? */
int dlog_enabled(void);

/* The lock of k's log. Calls marked _locked need it held. Order when
 * holding two: a user's inbox first, then its room's history. */
void dlog_lock(const dlog_key *k);
void dlog_unlock(const dlog_key *k);
/* Both locks (a user's inbox, then its room's history; once if they share
 * a stripe), and back. */
void dlog_lock2(const dlog_key *user, const dlog_key *room);
void dlog_unlock2(const dlog_key *user, const dlog_key *room);

/* Appends an entry (time = now); its id is greater than every id of that
 * log. Drops what retention no longer keeps. 0, or -1 (out of memory). */
int dlog_append_locked(const dlog_key *k, const char *seq, size_t seqlen, const char *from,
                       size_t fromlen, const char *msg, size_t msglen, dlog_id *id);

/* Calls fn for the entries with an id greater than `after` (all retained
 * entries when after is NULL), oldest first, at most max of them (0 = no
 * limit). *gap is set when entries after `after` were already dropped by
 * retention (the reader has missed some). Returns the number read. */
size_t dlog_read_locked(const dlog_key *k, const dlog_id *after, size_t max,
                        dlog_read_fn fn, void *ud, int *gap);

/* The id of the newest entry of k's log; 0 if the log is empty. */
int dlog_last_locked(const dlog_key *k, dlog_id *id);

/* A user's pushed cursor (inbox logs only): the id of the last entry pushed
 * to (or acked by) any connection of the user. Get returns 0 if set, -1 if
 * never set. Set moves it forward only. */
int dlog_cursor_get(const dlog_key *k, dlog_id *id);
int dlog_cursor_get_locked(const dlog_key *k, dlog_id *id);
void dlog_cursor_set(const dlog_key *k, dlog_id id);

/* Applies retention to `stripes` of the DLOG_STRIPES lock stripes (the
 * next ones in turn) and frees the logs left with nothing to replay. Any
 * thread; the node calls it once a second (main.c). */
#define DLOG_STRIPES 256
void dlog_sweep(int stripes);

/* Counts for /system/state and /metrics. */
typedef struct dlog_stats {
    long logs;                     /* inboxes and histories held */
    long entries;
    long bytes;                    /* memory of the entries (payloads and headers) */
} dlog_stats;
void dlog_get_stats(dlog_stats *s);

#endif
