/* rlink.h — the node's one Redis connection (cluster mode). It lives on its
 * own libuv loop (hiredis async with the libuv adapter), run by a thread of
 * its own or by the node's one worker (rlink_run): it
 * connects, says AUTH/SELECT when configured, reconnects with a back-off of
 * 0.1 s doubling to 5 s, and drops a connection on which a command stays
 * unanswered for cluster.redisTimeout (every pending command then fails),
 * so no caller ever waits on a Redis that hangs.
 *
 * Sentinel mode (rlink_start_sentinel, cluster/sentinel.h): every
 * connection attempt first asks the sentinels where the master is, and the
 * handshake ends with ROLE, which must say "master" (else the attempt
 * fails and is retried with the back-off). The link follows the master:
 * a +switch-master heard from a sentinel drops the connection at once and
 * dials the new master; a lost connection or a READONLY answer asks the
 * sentinels again. on_up runs after each of these reconnects too.
 *
 * Other threads talk to it through tasks (rlink_post: a lock-free inbox
 * woken by uv_async), queries whose answers come back as a task on the
 * posting worker's loop (rlink_query_*) and fire-and-forget writes
 * (rlink_write). */
#ifndef IMGATE_RLINK_H
#define IMGATE_RLINK_H

#include <stddef.h>
#include <uv.h>

#include <hiredis/hiredis.h>

#include "core/task.h"


/* Hooks, run on the link thread: on_up after every (re)connect once the
 * handshake is done; on_stop when rlink_stop begins (close your handles). */
typedef struct rlink_hooks {
    void (*on_up)(void);
    void (*on_stop)(void);
} rlink_hooks;

/* Sets up the link's loop and its first connection attempt to addr
 * "host:port"; nothing runs before rlink_run (posted tasks wait). Returns
 * 0, or -1 with a reason in err. */
int rlink_start(const char *addr, const rlink_hooks *hooks, char *err, size_t errlen);
/* The same in sentinel mode: the master is the one redis.sentinels name for
 * redis.masterName (see above). */
int rlink_start_sentinel(const rlink_hooks *hooks, char *err, size_t errlen);
/* Runs the link, once, after rlink_start and workers_start: on a thread of
 * its own (host NULL), or on host's loop thread, whose loop then polls the
 * link's loop inside its own (a node with one worker: no thread hop and no
 * wake-up between the worker and the link; "the link thread" below is then
 * that worker's). If the thread cannot start, worker 0 hosts it. */
struct worker;
void rlink_run(struct worker *host);
/* Is a worker running the link (rlink_run)? Any thread. */
int rlink_on_worker(void);
/* Is host an IPv4 or IPv6 address (no look-up needed)? A name is looked up
 * off the loop for Redis itself; hiredis looks up a sentinel's name with a
 * blocking call (cluster_run). Any thread. */
int rlink_is_address(const char *host);
/* Lets what is in flight finish (at most cluster.redisTimeout), then fails
 * what is left (queries answer ok = 0 on their worker: the workers must
 * still exist and, hosted, the host's loop still run: see net/worker.h),
 * closes the inbox and the connection, and returns once the link's loop
 * has ended (the thread joined). Not yet running, the loop runs to its end
 * here. Safe if rlink_start was not called. */
void rlink_stop(void);

/* Runs t->run (with w = NULL) on the link thread. Any thread. Before
 * rlink_start and once rlink_stop has closed the inbox, t runs at once on
 * the calling thread with the link down (a query fails back to its worker,
 * a write is dropped): a task is never left in an inbox nobody reads. */
void rlink_post(task *t);
/* The link thread's loop, for the caller's timers (link thread only). */
uv_loop_t *rlink_loop(void);
/* Is the connection up (handshake done)? Any thread. */
int rlink_up(void);
/* "host:port" of Redis: redis.addr, or in sentinel mode the master the
 * link is on or trying ("" before the sentinels first named one). Any
 * thread. */
void rlink_addr(char *out, size_t cap);
int rlink_sentinel_mode(void);
/* Sentinel mode: how many times the link moved to a new master. */
long rlink_failovers(void);
long rlink_reconnects(void);
long rlink_dropped_writes(void);
/* Commands sent to Redis and not answered yet, and the bytes of them the
 * socket has not taken (a Redis that stopped reading). Any thread. */
long rlink_pending(void);
long rlink_unsent_bytes(void);

/* ---- link thread only ---- */

/* Puts a hiredis async context on loop (hiredis 0.14's libuv adapter, but
 * for a failed connect, which it never reports). 0, or -1: free ac. */
struct redisAsyncContext;
int rlink_attach(struct redisAsyncContext *ac, uv_loop_t *loop);

/* reply is NULL when the command failed (connection lost or dropped). */
typedef void (*rlink_reply_fn)(void *ud, const redisReply *reply);
/* Sends a command; fn (may be NULL) runs once with its reply. Returns -1
 * (fn will not run) when the connection is not up. */
int rlink_cmd(rlink_reply_fn fn, void *ud, int argc, const char **argv, const size_t *lens);

/* One command of a transaction: its arguments (lens may be NULL: strlen). */
typedef struct rlink_argv {
    int argc;
    const char **argv;
    const size_t *lens;
} rlink_argv;
#define RLINK_MULTI_MAX 8
/* Sends n (1..RLINK_MULTI_MAX) commands as MULTI, the commands, EXEC:
 * Redis runs them with no other client's command in between, without the
 * cost of starting a script. fn runs once with EXEC's reply: an array of
 * the n replies, an error if Redis refused the transaction, or NULL if no
 * reply came (the link dropped; it may have run). All are
 * formatted before anything is sent, and a send that fails after MULTI
 * drops the connection rather than leave it inside the transaction (every
 * pending command then fails, as on any drop). 0, or -1 (fn will not run). */
int rlink_multi(rlink_reply_fn fn, void *ud, int n, const rlink_argv *cmds);
/* Sends n (1..RLINK_MULTI_MAX) commands back to back, without MULTI: for
 * writes that need their order but not their isolation. fn runs once with
 * the last command's reply (NULL if none came); an error answered to an
 * earlier one is logged. 0, or -1 (fn will not run; if the link failed
 * half-way, the commands already queued still run). */
int rlink_pipeline(rlink_reply_fn fn, void *ud, int n, const rlink_argv *cmds);

/* ---- from the workers ---- */

/* A copy of one reply (type is hiredis's REDIS_REPLY_*). */
typedef struct rlink_val {
    int type;
    long long integer;
    char *str;                       /* NUL-terminated: STRING, STATUS, ERROR */
    size_t len;
    size_t n;                        /* ARRAY */
    struct rlink_val *elem;
} rlink_val;

/* Deep copy of a reply into v; on failure (no memory) v is partly filled:
 * free it either way. */
int rlink_val_copy(rlink_val *v, const redisReply *r);
void rlink_val_free(rlink_val *v);

/* Commands sent back to back; fn runs on the submitting worker's loop with
 * every reply (ok = 0: Redis is down or the connection failed meanwhile;
 * replies may then be partly empty). The replies are freed after fn. */
typedef struct rlink_query rlink_query;
typedef void (*rlink_query_fn)(void *ud, int ok, rlink_val *replies, int n);
/* Room for up to n (>= 1) commands: rlink_query_add refuses more (-1).
 * NULL on no memory or n < 1. */
rlink_query *rlink_query_new(int n, rlink_query_fn fn, void *ud);
int rlink_query_add(rlink_query *q, int argc, const char **argv, const size_t *argvlen);
void rlink_query_submit(rlink_query *q);   /* from a worker; fn runs there, always */
/* The same, but while the link is down (still connecting at start, or
 * reconnecting) the query waits for it, at most cluster.redisTimeout,
 * instead of failing at once (a login's replay after a node restart). */
void rlink_query_submit_wait(rlink_query *q);
void rlink_query_cancel(rlink_query *q);   /* not submitted: free it */

/* A command whose answer nobody waits for; dropped (and counted) while the
 * connection is down. Any thread. */
void rlink_write(int argc, const char **argv, const size_t *argvlen);

#endif
