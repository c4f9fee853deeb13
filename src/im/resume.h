/* resume.h — login and ack with the delivery logs (SPEC §7.1): the entries
 * a user has not seen (after lastID / lastRoomID, or after the user's
 * pushed cursor) are pushed right after the login reply, in order, before
 * any newer message, never interleaved with live pushes and never twice.
 *
 * How: the login reads what it must replay while holding the user's inbox
 * lock and its room's history lock, and hands the reply, the replay and the
 * attachment of the connection (hub_attach) to its own worker as one task,
 * still under those locks. A send appends and hands its push to the
 * workers under the same lock, and every worker's inbox is FIFO: a push
 * handed over before the login is in the replay and reaches the worker
 * while the connection is not attached yet; one handed over after it runs
 * after the replay. The connection is held (conn_hold) until the task ran. */
#ifndef IMGATE_RESUME_H
#define IMGATE_RESUME_H

#include <stddef.h>
#include <stdint.h>

#include "im/dlog.h"

struct conn;

typedef struct resume_req {
    uint32_t appid;
    const char *uid;
    size_t uidlen;
    const char *seq;               /* the login's seq, for the reply */
    size_t seqlen;
    int has_last, has_last_room;   /* lastID / lastRoomID given */
    dlog_id last, last_room;
} resume_req;

/* A store the login must wait for (cluster mode: Redis streams, see
 * cluster/clog.h). Then a login attaches the connection at once, gated
 * (im/hub.h: pushes to it are held), asks the store, and on its answer
 * sends the reply, the replay, and what was held but not replayed. */
typedef struct resume_found {
    int ok;                        /* the store answered (else: no replay, recovered:false) */
    const dlog_entry *inbox;       /* after lastID, or after the pushed cursor; in order */
    size_t ninbox;
    const dlog_entry *room;        /* after lastRoomID, in order (the user's own included) */
    size_t nroom;
    int gap;                       /* entries the client asked for were dropped (or unknown) */
    const dlog_id *inbox_max;      /* the logs' newest ids when read (NULL: empty, or not read) */
    const dlog_id *room_max;
} resume_found;
typedef void (*resume_found_fn)(void *ud, const resume_found *f);
typedef struct resume_store {
    /* On c's worker; fn runs once, later, on the same worker (pointers
     * valid during the call). 0, or -1 (fn will not run). */
    int (*read)(const resume_req *q, resume_found_fn fn, void *ud);
    /* The user's pushed cursor moves forward to id (a replay or an ack;
     * never past the log). Any thread. */
    void (*cursor)(uint32_t appid, const char *uid, size_t len, dlog_id id);
    uint32_t keep_ms;              /* how long late duplicates are dropped (hub_gate_open) */
} resume_store;
/* At start-up, before the workers run (cluster/ registers Redis). */
void resume_set_store(const resume_store *s);
/* Are messages logged (embedded logs on, or a store registered)? */
int resume_enabled(void);

/* Starts the login of c (validated, not logged in, not logging in). Returns
 * -1 when the reply and the replay are on their way (from a task on c's
 * worker), or an IM code to answer now. An id newer than its log (the node
 * lost its memory, or the id is not its own) replays everything kept and
 * answers recovered:false. */
int resume_login(struct conn *c, const resume_req *q);

/* Is a login of c under way (resume_login called, its task not run yet)? */
int resume_pending(const struct conn *c);
/* Keeps a message c sent while its login is under way: it is handled right
 * after the login's reply and replay (replies keep the order of requests).
 * Returns 0, or -1 (out of memory: the caller answers it now). */
int resume_defer(struct conn *c, const char *msg, size_t len);

/* The ack command: moves the user's pushed cursor to id. An IM code. */
int resume_ack(struct conn *c, const char *id, size_t len);

#endif
