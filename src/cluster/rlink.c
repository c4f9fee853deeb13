/* rlink.c — the Redis connection and its loop (see rlink.h): inbox,
 * connection life-cycle (look-up, connect, handshake, back-off, watchdog),
 * commands with per-command callbacks, worker queries and fire-and-forget
 * writes, running the loop (a thread of its own, or a worker polling it
 * inside its loop) and the stop (drain, close the inbox, end the loop).
 *
 * Hosted by a worker, the link's loop stays a loop of its own: its epoll fd
 * is one more fd the worker polls, and each time it is ready (or the link's
 * next timer is due) the worker turns the link's loop once without
 * waiting. Every "link thread" below is then the worker's thread; the link
 * never blocks it (host names are looked up on libuv's thread pool).
 *
 * Ownership: a task posted with rlink_post belongs to the link's inbox
 * while the inbox is open and is run by the link thread; once it is closed
 * (at the end of rlink_stop's drain) the posting thread runs it at once,
 * against a link that is down. A query belongs to the link from submit to
 * its last reply, then to its origin worker (an answer task in that
 * worker's inbox: see net/worker.h, a worker outlives the link). */
#include "cluster/rlink.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/resp.h"
#include "cluster/sentinel.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/node.h"
#include "net/worker.h"

#define RL_BACKOFF_MIN_MS 100
#define RL_BACKOFF_MAX_MS 5000
#define RL_WATCH_MS 250
#define RL_DRAIN_MS 20

/* RL_RESOLVING: asking the sentinels where the master is (sentinel mode);
 * RL_LOOKUP: looking up a host name (on libuv's thread pool: never on the
 * loop, which may be a worker's). */
enum rl_state { RL_DOWN, RL_RESOLVING, RL_LOOKUP, RL_CONNECTING, RL_HANDSHAKE, RL_UP };

/* One command in flight: its callback travels as hiredis's privdata. A
 * command nobody waits for shares rl_quiet; a query's commands share the
 * one in the query; only a lone command with a callback has its own
 * (heap: freed after its reply). */
typedef struct rl_cmd {
    rlink_reply_fn fn;
    void *ud;
    int heap;
} rl_cmd;

static rl_cmd rl_quiet;              /* no callback: an error is logged */

/* Formatted commands up to this size are built on the stack. */
#define RL_STACK_CMD 1024

struct rlink_query {
    task t;                          /* runs on the link loop */
    task back;                       /* runs on the origin worker */
    struct worker *origin;
    rlink_query_fn fn;
    void *ud;
    rl_cmd cb;                       /* every command's callback: rl_on_query_reply */
    int ok;                          /* every command got a reply */
    int n, got, cap;
    char *resp;                      /* the commands, formatted back to back */
    size_t resp_len, resp_cap;
    int waits;                       /* rlink_query_submit_wait */
    uint64_t deadline;               /* waiting: uv_now() when it fails */
    struct rlink_query *wnext;       /* the waiting list */
    size_t *lens;                    /* each command's bytes in resp (cap of them) */
    rlink_val *replies;              /* cap of them; lens and replies share q's block */
};

typedef struct rl_write {
    task t;
    size_t len;
    char cmd[];                      /* formatted */
} rl_write;

static struct {
    uv_loop_t loop;
    uv_thread_t thread;              /* runs loop, unless a worker hosts it */
    int threaded;                    /* rlink_run started the thread */
    struct worker *hostw;            /* the worker whose thread runs loop (hosted) */
    uv_poll_t host_poll;             /* on the host's loop: loop's epoll fd */
    uv_timer_t host_timer;           /* on the host's loop: loop's next timer */
    uv_sem_t host_done;              /* hosted: loop has ended (the stop) */
    int host_ready;                  /* host_poll and host_timer set up (host's thread only) */
    task host_task;
    uv_async_t wake;
    task_inbox inbox;
    uv_timer_t retry_timer, watch_timer;
    uv_getaddrinfo_t lookup;         /* RL_LOOKUP */
    redisAsyncContext *ac;
    enum rl_state state;
    uint64_t state_since;            /* uv_now() when the state began */
    int backoff_ms;
    long inflight;                   /* commands sent, not yet answered */
    uint64_t last_progress;          /* uv_now() of the last reply */
    int handshake_left;              /* AUTH/SELECT/PING(/ROLE) replies awaited */
    int started, stopping;
    atomic_int open;                 /* the inbox takes tasks (rlink_post) */
    atomic_int posting;              /* rlink_post calls between check and push */
    char host[CONFIG_STR];           /* where the link connects (the master, with sentinels) */
    int port;
    pthread_mutex_t addr_lock;       /* guards addr: /system/state reads it */
    char addr[CONFIG_STR + 8];       /* "host:port" of host and port */
    int sentinel;                    /* sentinel mode: the sentinels name host and port */
    char hint_host[CONFIG_STR];      /* a +switch-master not yet followed (hint_port > 0) */
    int hint_port;
    char master[CONFIG_STR + 8];     /* the last address verified as the master ("" = none) */
    rlink_hooks hooks;
    rlink_query *waiting, **waiting_tail;   /* queries waiting for the link, oldest first */
    atomic_int up;
    atomic_int on_worker;            /* hostw is set (for /system/state) */
    atomic_long reconnects, dropped_writes, failovers;
    atomic_long pending, unsent;     /* inflight and the bytes hiredis holds, for /system/state */
} g_rl = { .addr_lock = PTHREAD_MUTEX_INITIALIZER };

static void rl_connect(void);
static void rl_dial(void);
static int rl_take_hint(void);
static void rl_demoted(const char *err);
static void rl_drop(void);

uv_loop_t *rlink_loop(void) { return &g_rl.loop; }
int rlink_up(void) { return atomic_load(&g_rl.up); }
int rlink_on_worker(void) { return atomic_load(&g_rl.on_worker); }
int rlink_sentinel_mode(void) { return g_rl.sentinel; }
long rlink_failovers(void) { return atomic_load(&g_rl.failovers); }
long rlink_reconnects(void) { return atomic_load(&g_rl.reconnects); }
long rlink_dropped_writes(void) { return atomic_load(&g_rl.dropped_writes); }
long rlink_pending(void) { return atomic_load(&g_rl.pending); }
long rlink_unsent_bytes(void) { return atomic_load(&g_rl.unsent); }

/* Publishes inflight (link thread, after every change). */
static void rl_note_inflight(void) { atomic_store(&g_rl.pending, g_rl.inflight); }

/* Publishes what the link's context has not handed to its socket. */
static void rl_note_unsent(const redisAsyncContext *ac)
{
    if (ac && ac == g_rl.ac)
        atomic_store(&g_rl.unsent, (long)sdslen(ac->c.obuf));
}

/* ---------- the inbox ---------- */

/* Open inbox: push and wake the link thread. Closed (before rlink_start,
 * after the stop's drain): run t here, the link being down. `posting`
 * lets the close wait for a post that saw the inbox open (seq_cst on both
 * sides: either the poster sees it closed, or the closer sees it posting). */
static void rl_host_soon(void);

void rlink_post(task *t)
{
    atomic_fetch_add(&g_rl.posting, 1);
    if (atomic_load(&g_rl.open)) {
        if (!task_push(&g_rl.inbox, t))
            ;                                    /* whoever made it non-empty woke it */
        else if (atomic_load(&g_rl.on_worker) && worker_self() == g_rl.hostw && g_rl.host_ready)
            rl_host_soon();                      /* the worker hosting it: no system call */
        else
            uv_async_send(&g_rl.wake);
        atomic_fetch_sub(&g_rl.posting, 1);
        return;
    }
    atomic_fetch_sub(&g_rl.posting, 1);
    t->run(NULL, t);
}

/* On the link thread, the link down for good: no post can reach the inbox
 * any more; what reached it runs now (queries fail back to their workers,
 * writes are dropped). After this the wake handle may close. */
static void rl_close_inbox(void)
{
    atomic_store(&g_rl.open, 0);
    while (atomic_load(&g_rl.posting) > 0)
        sched_yield();
    task_run_all(task_take_all(&g_rl.inbox), NULL);
}

static void rl_on_wake(uv_async_t *a)
{
    (void)a;
    task_run_all(task_take_all(&g_rl.inbox), NULL);
}

/* ---------- hiredis on libuv ---------- */

/* hiredis 0.14's own libuv adapter drops a poll callback that carries an
 * error status, and libuv reports a refused connect (POLLERR) just so,
 * stopping the poll: the connect would hang until a deadline. This one
 * hands every error to hiredis, whose read or write then sees it.
 *
 * Writes: on a connected context, the commands a loop turn appends are
 * written once, by a uv_idle at the start of the next turn (an active idle
 * handle keeps the loop from blocking, so nothing waits for another
 * event), with no change to what is polled; only a write the socket does
 * not take whole polls for POLLOUT. A uv_poll_start or _stop is two
 * epoll_ctl calls (libuv drops the fd, then adds it again): polling for
 * POLLOUT around every write was four per batch of commands, some 9 % of a
 * node's CPU in a login storm. The connect itself is still awaited as
 * POLLOUT (hiredis tells it from a writable socket). */
typedef struct rl_ev {
    redisAsyncContext *ac;           /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    uv_idle_t flush;                 /* the turn's commands to write */
    int events;                      /* polled */
    int flushing;                    /* in redisAsyncHandleWrite from flush */
    int open;                        /* handles not closed yet */
} rl_ev;

static void rl_ev_on_poll(uv_poll_t *h, int status, int events)
{
    rl_ev *e = h->data;
    if (status != 0)
        events = e->events;
    if (e->ac && (events & UV_READABLE))
        redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE)) {
        redisAsyncHandleWrite(e->ac);
        rl_note_unsent(e->ac);
    }
}

static void rl_ev_set(rl_ev *e, int events)
{
    if (events == e->events)
        return;
    e->events = events;
    int rc = events ? uv_poll_start(&e->poll, events, rl_ev_on_poll) : uv_poll_stop(&e->poll);
    if (rc != 0)                                 /* the deadlines drop what then hangs */
        log_warn("cluster: cannot poll a Redis connection: %s", uv_strerror(rc));
}

static void rl_ev_on_flush(uv_idle_t *h)
{
    rl_ev *e = h->data;
    (void)uv_idle_stop(h);
    if (!e->ac)
        return;
    e->flushing = 1;
    redisAsyncHandleWrite(e->ac);               /* not all taken: add_write polls */
    e->flushing = 0;
    rl_note_unsent(e->ac);
}

static void rl_ev_add_read(void *p) { rl_ev_set(p, ((rl_ev *)p)->events | UV_READABLE); }
static void rl_ev_del_read(void *p) { rl_ev_set(p, ((rl_ev *)p)->events & ~UV_READABLE); }

static void rl_ev_add_write(void *p)
{
    rl_ev *e = p;
    if (e->ac && (e->ac->c.flags & REDIS_CONNECTED) && !e->flushing && !(e->events & UV_WRITABLE) &&
        (uv_is_active((uv_handle_t *)&e->flush) || uv_idle_start(&e->flush, rl_ev_on_flush) == 0))
        return;                                  /* written by the flush */
    rl_ev_set(e, e->events | UV_WRITABLE);
}

static void rl_ev_del_write(void *p)
{
    rl_ev *e = p;
    (void)uv_idle_stop(&e->flush);
    rl_ev_set(e, e->events & ~UV_WRITABLE);
}

static void rl_ev_on_close(uv_handle_t *h)
{
    rl_ev *e = h->data;
    if (--e->open == 0)
        free(e);
}

static void rl_ev_cleanup(void *p)
{
    rl_ev *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, rl_ev_on_close);
    uv_close((uv_handle_t *)&e->flush, rl_ev_on_close);
}

int rlink_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    rl_ev *e = ac->ev.data ? NULL : calloc(1, sizeof(*e));
    if (!e)
        return -1;
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    if (uv_idle_init(loop, &e->flush) != 0) {
        e->open = 1;                             /* the poll's close frees e */
        e->poll.data = e;
        uv_close((uv_handle_t *)&e->poll, rl_ev_on_close);
        return -1;
    }
    e->open = 2;
    e->ac = ac;
    e->poll.data = e;
    e->flush.data = e;
    ac->ev.data = e;
    ac->ev.addRead = rl_ev_add_read;
    ac->ev.delRead = rl_ev_del_read;
    ac->ev.addWrite = rl_ev_add_write;
    ac->ev.delWrite = rl_ev_del_write;
    ac->ev.cleanup = rl_ev_cleanup;
    return 0;
}

/* ---------- commands ---------- */

static void rl_on_reply(redisAsyncContext *ac, void *reply, void *pd)
{
    (void)ac;
    rl_cmd *c = pd;
    rlink_reply_fn fn = c->fn;                   /* a query's c may be freed by fn's */
    void *ud = c->ud;                            /* last call, on another thread */
    if (c->heap)
        free(c);
    g_rl.inflight--;
    rl_note_inflight();
    g_rl.last_progress = uv_now(&g_rl.loop);
    const redisReply *r = reply;
    if (fn)
        fn(ud, r);
    else if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("redis: %s", r->str);
    if (r && r->type == REDIS_REPLY_ERROR && g_rl.sentinel && strncmp(r->str, "READONLY", 8) == 0)
        rl_demoted(r->str);
}

/* Sends a formatted command with callback c (hiredis copies the bytes),
 * in any state but "no connection". c is freed here if it is not sent. */
static int rl_send_cmd(rl_cmd *c, const char *cmd, size_t len)
{
    if (!g_rl.ac || redisAsyncFormattedCommand(g_rl.ac, rl_on_reply, c, cmd, len) != REDIS_OK) {
        if (c->heap)
            free(c);
        return -1;
    }
    if (g_rl.inflight++ == 0)
        g_rl.last_progress = uv_now(&g_rl.loop);
    rl_note_inflight();
    if (g_rl.ac->ev.data && (((rl_ev *)g_rl.ac->ev.data)->events & UV_WRITABLE))
        rl_note_unsent(g_rl.ac);      /* a stalled socket: the figure grows */
    return 0;
}

/* The callback record of a lone command: rl_quiet without fn, else a heap
 * one (NULL on no memory). */
static rl_cmd *rl_cmd_new(rlink_reply_fn fn, void *ud)
{
    if (!fn)
        return &rl_quiet;
    rl_cmd *c = malloc(sizeof(*c));
    if (c)
        *c = (rl_cmd){ fn, ud, 1 };
    return c;
}

/* The same with fn and ud (none: rl_quiet). */
static int rl_send(rlink_reply_fn fn, void *ud, const char *cmd, size_t len)
{
    rl_cmd *c = rl_cmd_new(fn, ud);
    return c ? rl_send_cmd(c, cmd, len) : -1;
}

/* A buffer of n bytes for formatting: stack (n <= RL_STACK_CMD) or heap;
 * rl_buf_done frees what this took. */
static char *rl_buf(char *stack, size_t n)
{
    return n <= RL_STACK_CMD ? stack : malloc(n);
}

static void rl_buf_done(char *stack, char *buf)
{
    if (buf != stack)
        free(buf);
}

static int rl_sendv(rlink_reply_fn fn, void *ud, int argc, const char **argv, const size_t *lens)
{
    char stack[RL_STACK_CMD];
    size_t n = resp_size(argc, argv, lens);
    char *cmd = rl_buf(stack, n);
    if (!cmd)
        return -1;
    resp_put(cmd, argc, argv, lens);
    int r = rl_send(fn, ud, cmd, n);
    rl_buf_done(stack, cmd);
    return r;
}

int rlink_cmd(rlink_reply_fn fn, void *ud, int argc, const char **argv, const size_t *lens)
{
    return g_rl.state == RL_UP ? rl_sendv(fn, ud, argc, argv, lens) : -1;
}

/* The k-th command of rl_send_all: cmds[k - 1] between MULTI and EXEC
 * when multi is set, else cmds[k]. */
static rlink_argv rl_nth(int multi, int n, const rlink_argv *cmds, int k)
{
    static const char *multi_argv[] = { "MULTI" }, *exec_argv[] = { "EXEC" };
    int i = multi ? k - 1 : k;                   /* -1 or n: MULTI/EXEC */
    if (i >= 0 && i < n)
        return cmds[i];
    return (rlink_argv){ 1, i < 0 ? multi_argv : exec_argv, NULL };
}

/* rlink_multi and rlink_pipeline: all of it is formatted into one buffer
 * before anything goes out; fn gets the last command's reply. */
static int rl_send_all(int multi, rlink_reply_fn fn, void *ud, int n, const rlink_argv *cmds)
{
    size_t len[RLINK_MULTI_MAX + 2], size = 0;
    int sent = 0, rc = 0, total = n + (multi ? 2 : 0);
    if (g_rl.state != RL_UP || n < 1 || n > RLINK_MULTI_MAX)
        return -1;
    for (int k = 0; k < total; k++) {
        rlink_argv c = rl_nth(multi, n, cmds, k);
        size += len[k] = resp_size(c.argc, c.argv, c.lens);
    }
    char stack[RL_STACK_CMD];
    char *buf = rl_buf(stack, size), *p = buf;
    rl_cmd *cb = buf ? rl_cmd_new(fn, ud) : NULL;  /* the last command's, before anything goes out */
    if (!cb) {
        rl_buf_done(stack, buf);
        return -1;
    }
    for (int k = 0; k < total; k++) {
        rlink_argv c = rl_nth(multi, n, cmds, k);
        resp_put(p, c.argc, c.argv, c.lens);
        p += len[k];
    }
    for (p = buf; rc == 0 && sent < total; p += len[sent++])
        rc = rl_send_cmd(sent == total - 1 ? cb : &rl_quiet, p, len[sent]);
    if (rc != 0 && sent < total && cb->heap)
        free(cb);                                /* the last was never sent (a failed one frees its own) */
    rl_buf_done(stack, buf);
    if (multi && rc != 0 && sent > 1 && g_rl.ac && !(g_rl.ac->c.flags & REDIS_FREEING)) {
        log_warn("cluster: a transaction could not be queued whole (out of memory?); reconnecting");
        rl_drop();                               /* MULTI went out: never leave it open */
    }
    return rc == 0 ? 0 : -1;
}

int rlink_multi(rlink_reply_fn fn, void *ud, int n, const rlink_argv *cmds)
{
    return rl_send_all(1, fn, ud, n, cmds);
}

int rlink_pipeline(rlink_reply_fn fn, void *ud, int n, const rlink_argv *cmds)
{
    return rl_send_all(0, fn, ud, n, cmds);
}

/* ---------- worker queries ---------- */

void rlink_val_free(rlink_val *v)
{
    for (size_t i = 0; i < v->n; i++)
        rlink_val_free(&v->elem[i]);
    free(v->elem);
    free(v->str);
}

/* Deep copy of a hiredis reply (freed when its callback returns). */
int rlink_val_copy(rlink_val *v, const redisReply *r)
{
    memset(v, 0, sizeof(*v));
    v->type = r->type;
    v->integer = r->integer;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) {
        v->str = malloc(r->len + 1);
        if (!v->str)
            return -1;
        memcpy(v->str, r->str, r->len);
        v->str[r->len] = '\0';
        v->len = r->len;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        v->elem = calloc(r->elements, sizeof(*v->elem));
        if (!v->elem)
            return -1;
        v->n = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            if (rlink_val_copy(&v->elem[i], r->element[i]) != 0)
                return -1;
    }
    return 0;
}

void rlink_query_cancel(rlink_query *q)
{
    for (int i = 0; i < q->n; i++)
        rlink_val_free(&q->replies[i]);
    free(q->resp);
    free(q);
}

static void rl_query_back(struct worker *w, task *t)
{
    (void)w;
    rlink_query *q = (rlink_query *)((char *)t - offsetof(rlink_query, back));
    q->fn(q->ud, q->ok, q->replies, q->n);
    rlink_query_cancel(q);
}

/* Every command answered or failed: hand q to its origin worker (alive
 * until every thread that posts to it is joined, rlink's included). */
static void rl_query_finish(rlink_query *q)
{
    if (q->origin)
        worker_post(q->origin, &q->back);
    else
        rl_query_back(NULL, &q->back);
}

static void rl_on_query_reply(void *ud, const redisReply *r)
{
    rlink_query *q = ud;
    int i = q->got++;
    if (!r || rlink_val_copy(&q->replies[i], r) != 0)
        q->ok = 0;
    if (q->got == q->n)
        rl_query_finish(q);
}

static void rl_query_send(rlink_query *q)
{
    const char *p = q->resp;
    for (int i = 0; i < q->n; p += q->lens[i++]) {
        if (g_rl.state != RL_UP || rl_send_cmd(&q->cb, p, q->lens[i]) != 0) {
            /* what was sent fails on its own; account for the rest here */
            q->ok = 0;
            q->got += q->n - i;
            if (q->got == q->n)
                rl_query_finish(q);
            return;
        }
    }
}

/* A query that may wait is kept while the link is down (until it is up,
 * or cluster.redisTimeout, or the stop). */
static void rl_query_run(struct worker *w, task *t)
{
    (void)w;
    rlink_query *q = (rlink_query *)t;
    if (g_rl.state == RL_UP || !q->waits || g_rl.stopping) {
        rl_query_send(q);
        return;
    }
    q->deadline = uv_now(&g_rl.loop) + (uint64_t)g_node.cfg.redisTimeout;
    q->wnext = NULL;
    if (!g_rl.waiting_tail)
        g_rl.waiting_tail = &g_rl.waiting;
    *g_rl.waiting_tail = q;
    g_rl.waiting_tail = &q->wnext;
}

/* Sends the waiting queries (the link is up), or fails them (all: the
 * stop; else those past their deadline; the list is in deadline order). */
static void rl_waiting_run(int fail_all, uint64_t now)
{
    while (g_rl.waiting) {
        rlink_query *q = g_rl.waiting;
        if (!fail_all && g_rl.state != RL_UP && q->deadline > now)
            return;
        g_rl.waiting = q->wnext;
        if (!g_rl.waiting)
            g_rl.waiting_tail = &g_rl.waiting;
        rl_query_send(q);                        /* the link down: fails it */
    }
}

/* One block: the query, then its replies, then the commands' lengths. */
rlink_query *rlink_query_new(int n, rlink_query_fn fn, void *ud)
{
    if (n < 1)
        return NULL;
    rlink_query *q = mem_zalloc(sizeof(*q) + (size_t)n * (sizeof(rlink_val) + sizeof(size_t)));
    if (!q)
        return NULL;
    q->replies = (rlink_val *)(q + 1);
    q->lens = (size_t *)(q->replies + n);
    q->cap = n;
    q->fn = fn;
    q->ud = ud;
    q->cb = (rl_cmd){ rl_on_query_reply, q, 0 };
    q->ok = 1;
    return q;
}

int rlink_query_add(rlink_query *q, int argc, const char **argv, const size_t *argvlen)
{
    if (q->n == q->cap)
        return -1;
    size_t len = resp_size(argc, argv, argvlen);
    if (q->resp_cap - q->resp_len < len) {
        size_t cap = q->resp_cap ? q->resp_cap : 256;
        while (cap - q->resp_len < len)
            cap *= 2;
        char *resp = realloc(q->resp, cap);
        if (!resp)
            return -1;
        q->resp = resp;
        q->resp_cap = cap;
    }
    resp_put(q->resp + q->resp_len, argc, argv, argvlen);
    q->resp_len += len;
    q->lens[q->n++] = len;
    return 0;
}

void rlink_query_submit_wait(rlink_query *q)
{
    q->waits = 1;
    rlink_query_submit(q);
}

void rlink_query_submit(rlink_query *q)
{
    q->origin = worker_self();
    q->t.run = rl_query_run;
    q->back.run = rl_query_back;
    rlink_post(&q->t);
}

/* ---------- fire-and-forget writes ---------- */

static void rl_write_run(struct worker *w, task *t)
{
    (void)w;
    rl_write *wr = (rl_write *)t;
    if (g_rl.state != RL_UP || rl_send(NULL, NULL, wr->cmd, wr->len) != 0)
        atomic_fetch_add_explicit(&g_rl.dropped_writes, 1, memory_order_relaxed);
    free(wr);
}

void rlink_write(int argc, const char **argv, const size_t *argvlen)
{
    size_t len = resp_size(argc, argv, argvlen);
    rl_write *wr = malloc(sizeof(*wr) + len);
    if (!wr) {
        atomic_fetch_add_explicit(&g_rl.dropped_writes, 1, memory_order_relaxed);
        return;
    }
    resp_put(wr->cmd, argc, argv, argvlen);
    wr->len = len;
    wr->t.run = rl_write_run;
    rlink_post(&wr->t);
}

/* ---------- connection life-cycle ---------- */

static void rl_set_state(enum rl_state s)
{
    g_rl.state = s;
    g_rl.state_since = uv_now(&g_rl.loop);
    atomic_store(&g_rl.up, s == RL_UP);
}

/* "host:port", an IPv6 address in brackets. */
static void rl_format_addr(char *out, size_t cap, const char *host, int port)
{
    int v6 = host[0] != '[' && strchr(host, ':') != NULL;
    snprintf(out, cap, v6 ? "[%s]:%d" : "%s:%d", host, port);
}

/* Where the link connects next: host and port, and addr for the readers. */
static void rl_set_addr(const char *host, int port)
{
    snprintf(g_rl.host, sizeof(g_rl.host), "%s", host);
    g_rl.port = port;
    pthread_mutex_lock(&g_rl.addr_lock);
    rl_format_addr(g_rl.addr, sizeof(g_rl.addr), host, port);
    pthread_mutex_unlock(&g_rl.addr_lock);
}

void rlink_addr(char *out, size_t cap)
{
    pthread_mutex_lock(&g_rl.addr_lock);
    snprintf(out, cap, "%s", g_rl.addr);
    pthread_mutex_unlock(&g_rl.addr_lock);
}

static void rl_on_retry(uv_timer_t *t)
{
    (void)t;
    rl_connect();
}

/* Lost or never made: try again after a back-off that doubles to 5 s. */
static void rl_schedule_retry(void)
{
    rl_set_state(RL_DOWN);
    g_rl.ac = NULL;
    g_rl.inflight = 0;
    rl_note_inflight();
    atomic_store(&g_rl.unsent, 0);
    if (g_rl.stopping)
        return;
    uv_timer_start(&g_rl.retry_timer, rl_on_retry, (uint64_t)g_rl.backoff_ms, 0);
    g_rl.backoff_ms = g_rl.backoff_ms * 2 > RL_BACKOFF_MAX_MS ? RL_BACKOFF_MAX_MS : g_rl.backoff_ms * 2;
}

/* Drops the connection at once: every pending command fails (NULL reply)
 * and a retry follows (from the disconnect callback once connected; hiredis
 * calls none before). Inside one of its callbacks hiredis frees it when
 * the callback returns, refusing new commands meanwhile. */
static void rl_drop(void)
{
    int connecting = g_rl.state == RL_CONNECTING;
    redisAsyncFree(g_rl.ac);
    if (connecting)
        rl_schedule_retry();
}

/* Sentinel mode: a newly verified master that is not the last one is a
 * failover followed. */
static void rl_note_master(void)
{
    if (!g_rl.sentinel || strcmp(g_rl.master, g_rl.addr) == 0)
        return;
    if (g_rl.master[0]) {
        atomic_fetch_add(&g_rl.failovers, 1);
        log_info("cluster: followed the failover of '%s': the master is now %s (was %s)",
                 g_node.cfg.redisMasterName, g_rl.addr, g_rl.master);
    }
    snprintf(g_rl.master, sizeof(g_rl.master), "%s", g_rl.addr);
}

static void rl_handshake_step(void)
{
    if (--g_rl.handshake_left > 0)
        return;
    rl_set_state(RL_UP);
    g_rl.backoff_ms = RL_BACKOFF_MIN_MS;
    log_info("cluster: connected to Redis at %s%s", g_rl.addr, g_rl.sentinel ? " (the master)" : "");
    rl_note_master();
    if (g_rl.hooks.on_up)
        g_rl.hooks.on_up();
    rl_waiting_run(0, uv_now(&g_rl.loop));       /* after what on_up sends at once */
}

static void rl_on_handshake(void *ud, const redisReply *r)
{
    const char *step = ud;
    if (!r)
        return;                                  /* disconnecting anyway */
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("cluster: Redis at %s refused %s: %s", g_rl.addr, step, r->str);
        redisAsyncDisconnect(g_rl.ac);
        return;
    }
    rl_handshake_step();
}

/* Sentinel mode: ROLE answers ["master", ...] on the master only. */
static void rl_on_role(void *ud, const redisReply *r)
{
    (void)ud;
    if (!r)
        return;
    const char *role = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                       r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : NULL;
    if (role && strcmp(role, "master") == 0) {
        rl_handshake_step();
        return;
    }
    log_warn("cluster: Redis at %s is not the master (ROLE: %s); asking the sentinels again", g_rl.addr,
             role ? role : r->type == REDIS_REPLY_ERROR ? r->str : "unreadable");
    redisAsyncDisconnect(g_rl.ac);               /* the retry asks them, after a back-off */
}

/* A write answered READONLY: the master we hold was demoted (a failover
 * we did not hear of). Drop it; the retry asks the sentinels. */
static void rl_demoted(const char *err)
{
    if (!g_rl.ac || (g_rl.ac->c.flags & REDIS_FREEING))
        return;
    log_warn("cluster: Redis at %s is no longer the master (%.80s); asking the sentinels", g_rl.addr, err);
    rl_drop();
}

static void rl_on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        log_warn("cluster: cannot connect to Redis at %s: %s", g_rl.addr, ac->errstr);
        rl_schedule_retry();                     /* hiredis frees ac */
        return;
    }
    const config *c = &g_node.cfg;
    char db[16];
    snprintf(db, sizeof(db), "%d", c->redisDB);
    const char *auth[] = { "AUTH", c->redisPassword };
    const char *sel[] = { "SELECT", db };
    const char *ping[] = { "PING" };
    const char *role[] = { "ROLE" };
    const struct { int argc; const char **argv; int on; rlink_reply_fn fn; } steps[] = {
        { 2, auth, c->redisPassword[0] != '\0', rl_on_handshake },
        { 2, sel, c->redisDB != 0, rl_on_handshake },
        { 1, ping, 1, rl_on_handshake },
        { 1, role, g_rl.sentinel, rl_on_role },
    };
    rl_set_state(RL_HANDSHAKE);
    g_rl.handshake_left = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (steps[i].on && rl_sendv(steps[i].fn, (void *)steps[i].argv[0], steps[i].argc,
                                    steps[i].argv, NULL) == 0)
            g_rl.handshake_left++;
}

static void rl_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    if (g_rl.state == RL_UP)
        atomic_fetch_add(&g_rl.reconnects, 1);
    if (!g_rl.stopping)
        log_warn("cluster: lost Redis at %s%s; serving local users, retrying", g_rl.addr,
                 status == REDIS_OK ? "" : " (error)");
    rl_schedule_retry();
}

/* Connects to ip, at port (the configured Redis, or the master). */
static void rl_dial_ip(const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, g_rl.port);
    if (!ac || ac->err || rlink_attach(ac, &g_rl.loop) != 0) {
        log_warn("cluster: cannot connect to Redis at %s: %s", g_rl.addr,
                 !ac ? "out of memory" : ac->err ? ac->errstr : "event loop");
        if (ac)
            redisAsyncFree(ac);
        rl_schedule_retry();
        return;
    }
    redisAsyncSetConnectCallback(ac, rl_on_connect);
    redisAsyncSetDisconnectCallback(ac, rl_on_disconnect);
    g_rl.ac = ac;
    g_rl.inflight = 0;
    rl_note_inflight();
    atomic_store(&g_rl.unsent, 0);
    rl_set_state(RL_CONNECTING);
}

static void rl_on_lookup(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    (void)req;
    char ip[INET6_ADDRSTRLEN] = "";
    const struct addrinfo *v4 = NULL, *v6 = NULL;     /* IPv4 first, as hiredis itself does */
    for (const struct addrinfo *a = status == 0 ? res : NULL; a; a = a->ai_next) {
        if (a->ai_family == AF_INET && !v4)
            v4 = a;
        else if (a->ai_family == AF_INET6 && !v6)
            v6 = a;
    }
    if (v4)
        uv_ip4_name((const struct sockaddr_in *)v4->ai_addr, ip, sizeof(ip));
    else if (v6)
        uv_ip6_name((const struct sockaddr_in6 *)v6->ai_addr, ip, sizeof(ip));
    uv_freeaddrinfo(res);
    if (g_rl.stopping) {
        rl_set_state(RL_DOWN);
    } else if (rl_take_hint()) {                 /* a switch heard meanwhile is newer */
        rl_dial();
    } else if (!ip[0]) {
        log_warn("cluster: cannot look up the Redis host %s: %s", g_rl.addr,
                 status ? uv_strerror(status) : "no address");
        rl_schedule_retry();
    } else {
        rl_dial_ip(ip);
    }
}

int rlink_is_address(const char *host)
{
    struct in6_addr a;
    return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
}

/* Connects to host:port: an address at once, a name once looked up. */
static void rl_dial(void)
{
    if (rlink_is_address(g_rl.host)) {
        rl_dial_ip(g_rl.host);
        return;
    }
    const struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    int rc = uv_getaddrinfo(&g_rl.loop, &g_rl.lookup, rl_on_lookup, g_rl.host, NULL, &hints);
    if (rc != 0) {
        log_warn("cluster: cannot look up the Redis host %s: %s", g_rl.addr, uv_strerror(rc));
        rl_schedule_retry();
        return;
    }
    rl_set_state(RL_LOOKUP);
}

/* Sentinel mode: an announced switch not yet tried goes first. */
static int rl_take_hint(void)
{
    if (!g_rl.hint_port)
        return 0;
    rl_set_addr(g_rl.hint_host, g_rl.hint_port);
    g_rl.hint_port = 0;
    return 1;
}

/* Direct: dial redis.addr. Sentinel mode: dial the switch just announced,
 * else ask the sentinels first (rl_on_master dials their answer). */
static void rl_connect(void)
{
    if (g_rl.stopping)
        return;
    if (!g_rl.sentinel || rl_take_hint()) {
        rl_dial();
        return;
    }
    rl_set_state(RL_RESOLVING);
    sentinel_ask();
}

/* sentinel hook: their answer (host NULL: none named the master). */
static void rl_on_master(const char *host, int port)
{
    if (g_rl.stopping || g_rl.state != RL_RESOLVING)
        return;
    if (rl_take_hint()) {                        /* a switch heard meanwhile is newer */
        rl_dial();
    } else if (host) {
        rl_set_addr(host, port);
        rl_dial();
    } else {
        rl_schedule_retry();
    }
}

/* sentinel hook: +switch-master of our master. Unless the link is already
 * there, it goes there now (the retry takes the hint). */
static void rl_on_switch(const char *host, int port)
{
    char addr[CONFIG_STR + 8];
    rl_format_addr(addr, sizeof(addr), host, port);
    int there = g_rl.state >= RL_CONNECTING && strcmp(addr, g_rl.addr) == 0;
    log_info("cluster: the sentinels switched master '%s' to %s%s", g_node.cfg.redisMasterName, addr,
             there ? " (the link is there)" : "; reconnecting");
    if (there || g_rl.stopping)
        return;
    snprintf(g_rl.hint_host, sizeof(g_rl.hint_host), "%s", host);
    g_rl.hint_port = port;
    g_rl.backoff_ms = RL_BACKOFF_MIN_MS;
    if (g_rl.state == RL_DOWN) {
        uv_timer_stop(&g_rl.retry_timer);
        rl_connect();
    } else if (g_rl.state != RL_RESOLVING && g_rl.state != RL_LOOKUP) {
        /* resolving, looking up: rl_on_master, rl_on_lookup take the hint */
        rl_drop();
    }
}

/* A Redis that stops answering (or a connect that never completes) must not
 * hang the API: drop the connection, which fails every pending command. */
static void rl_on_watch(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(&g_rl.loop), limit = (uint64_t)g_node.cfg.redisTimeout;
    rl_waiting_run(0, now);
    int stuck = (g_rl.state == RL_CONNECTING && now - g_rl.state_since > limit) ||
                (g_rl.inflight > 0 && now - g_rl.last_progress > limit);
    if (!stuck || !g_rl.ac)
        return;
    log_warn("cluster: Redis did not answer within %d ms; reconnecting", g_node.cfg.redisTimeout);
    rl_drop();                                   /* pending callbacks get NULL */
}

/* ---------- start ---------- */

static int rl_parse_addr(const char *addr, char *err, size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    char *end = NULL, host[CONFIG_STR];
    long port = colon ? strtol(colon + 1, &end, 10) : 6379;
    if (colon && (end == colon + 1 || *end || port < 1 || port > 65535)) {
        snprintf(err, errlen, "redis.addr '%s': expected host:port", addr);
        return -1;
    }
    size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);
    snprintf(host, sizeof(host), "%.*s", (int)hl, addr);
    rl_set_addr(host, (int)port);
    return 0;
}

/* The loop and its handles, the first connection attempt (sentinel mode:
 * the sentinels' watch and the first question); rlink_run runs them. */
static int rl_start(const rlink_hooks *hooks, char *err, size_t errlen)
{
    g_rl.hooks = *hooks;
    g_rl.backoff_ms = RL_BACKOFF_MIN_MS;
    atomic_init(&g_rl.inbox, NULL);
    if (uv_loop_init(&g_rl.loop) != 0 || uv_async_init(&g_rl.loop, &g_rl.wake, rl_on_wake) != 0 ||
        uv_timer_init(&g_rl.loop, &g_rl.retry_timer) != 0 ||
        uv_timer_init(&g_rl.loop, &g_rl.watch_timer) != 0) {
        snprintf(err, errlen, "cannot set up the Redis loop");
        return -1;
    }
    static const sentinel_hooks sh = { .on_master = rl_on_master, .on_switch = rl_on_switch };
    if (g_rl.sentinel && sentinel_start(&g_rl.loop, &sh, err, errlen) != 0)
        return -1;
    uv_timer_start(&g_rl.watch_timer, rl_on_watch, RL_WATCH_MS, RL_WATCH_MS);
    rl_connect();
    atomic_store(&g_rl.open, 1);                 /* tasks wait for rlink_run */
    g_rl.started = 1;
    return 0;
}

int rlink_start(const char *addr, const rlink_hooks *hooks, char *err, size_t errlen)
{
    if (rl_parse_addr(addr, err, errlen) != 0)
        return -1;
    return rl_start(hooks, err, errlen);
}

int rlink_start_sentinel(const rlink_hooks *hooks, char *err, size_t errlen)
{
    g_rl.sentinel = 1;
    return rl_start(hooks, err, errlen);
}

/* Stopping: wait for what is in flight (the workers' last logoff writes),
 * bounded by cluster.redisTimeout; then fail what is left (each query's
 * answer goes back to its worker, whose loop still runs), close the inbox
 * and every handle so the loop ends. */
static void rl_on_drain(uv_timer_t *t)
{
    uint64_t now = uv_now(&g_rl.loop);
    if (g_rl.inflight > 0 && g_rl.ac && now - g_rl.state_since < (uint64_t)g_node.cfg.redisTimeout)
        return;
    uv_timer_stop(t);
    redisAsyncContext *ac = g_rl.ac;
    g_rl.ac = NULL;
    if (ac)
        redisAsyncFree(ac);                      /* pending callbacks get NULL */
    rl_set_state(RL_DOWN);
    g_rl.inflight = 0;
    rl_note_inflight();
    atomic_store(&g_rl.unsent, 0);
    rl_close_inbox();
    uv_close((uv_handle_t *)&g_rl.retry_timer, NULL);
    uv_close((uv_handle_t *)&g_rl.watch_timer, NULL);
    uv_close((uv_handle_t *)&g_rl.wake, NULL);
}

static void rl_stop_run(struct worker *w, task *t)
{
    (void)w;
    (void)t;
    g_rl.stopping = 1;
    g_rl.state_since = uv_now(&g_rl.loop);       /* the drain's deadline counts from here */
    uv_timer_stop(&g_rl.retry_timer);
    if (g_rl.state == RL_LOOKUP)                 /* not started yet: ends now; else when it does */
        (void)uv_cancel((uv_req_t *)&g_rl.lookup);
    if (g_rl.sentinel)
        sentinel_stop();
    if (g_rl.hooks.on_stop)
        g_rl.hooks.on_stop();
    rl_waiting_run(1, 0);
    uv_timer_start(&g_rl.watch_timer, rl_on_drain, 0, RL_DRAIN_MS);
}

/* ---------- running: on a thread of its own, or on a worker's ---------- */

static void rl_main(void *arg)
{
    (void)arg;
    uv_run(&g_rl.loop, UV_RUN_DEFAULT);
}

static void rl_host_closed(uv_handle_t *h)
{
    if (h == (uv_handle_t *)&g_rl.host_timer)
        uv_sem_post(&g_rl.host_done);            /* rlink_stop may close the loop */
}

static void rl_on_host_timer(uv_timer_t *t);

/* Hosted: turns of the link's loop without waiting, on the host's thread
 * (a second one at once when the first left work, such as the commands
 * its tasks queued, which a uv_idle writes), then the host's timer is set
 * for the link's next timer. Once the loop has ended (the stop's drain
 * closed its last handle) the host's two handles close and rlink_stop
 * hears of it. */
static void rl_host_pump(int from_timer)
{
    uv_update_time(&g_rl.loop);                  /* the tasks read the link's clock */
    task_run_all(task_take_all(&g_rl.inbox), NULL);   /* posted from the host itself */
    int alive = uv_run(&g_rl.loop, UV_RUN_NOWAIT);
    if (alive && uv_backend_timeout(&g_rl.loop) == 0)
        alive = uv_run(&g_rl.loop, UV_RUN_NOWAIT);
    if (!alive) {
        g_rl.host_ready = 0;
        uv_close((uv_handle_t *)&g_rl.host_poll, rl_host_closed);
        uv_close((uv_handle_t *)&g_rl.host_timer, rl_host_closed);
        return;
    }
    /* The link's next timer (-1: none). Work the two turns left (commands
     * the second one's replies queued, handles closing) and tasks the host
     * posted meanwhile (its rl_host_soon is overwritten here; other
     * threads' posts woke the link's loop themselves): the next host turn,
     * but 1 ms when this is the timer's own callback, where a 0 ms timer
     * would run again in the same pass, before the host polls its sockets,
     * and spin while posts keep coming. */
    int ms = atomic_load(&g_rl.inbox) ? 0 : uv_backend_timeout(&g_rl.loop);
    if (ms == 0 && from_timer)
        ms = 1;
    if (ms >= 0)
        (void)uv_timer_start(&g_rl.host_timer, rl_on_host_timer, (uint64_t)ms, 0);
}

static void rl_on_host_timer(uv_timer_t *t)
{
    (void)t;
    rl_host_pump(1);
}

/* A task the host posted to itself: the pump runs at the start of the
 * host's next loop turn. */
static void rl_host_soon(void)
{
    (void)uv_timer_start(&g_rl.host_timer, rl_on_host_timer, 0, 0);
}

static void rl_on_host_poll(uv_poll_t *p, int status, int events)
{
    (void)p;
    (void)status;
    (void)events;
    rl_host_pump(0);
}

/* On the host's thread: its loop watches the link loop's epoll fd (ready
 * when anything of the link is: Redis, the inbox, the sentinels). */
static void rl_host_run(struct worker *w, task *t)
{
    (void)t;
    if (uv_poll_init(&w->loop, &g_rl.host_poll, uv_backend_fd(&g_rl.loop)) != 0 ||
        uv_timer_init(&w->loop, &g_rl.host_timer) != 0 ||
        uv_poll_start(&g_rl.host_poll, UV_READABLE, rl_on_host_poll) != 0) {
        log_error("cluster: worker %d cannot run the Redis link; stopping", w->id);
        abort();                                 /* epoll on an epoll fd: never fails on Linux */
    }
    g_rl.host_ready = 1;
    rl_host_pump(0);
}

void rlink_run(struct worker *host)
{
    if (!g_rl.started || g_rl.threaded || g_rl.hostw)
        return;
    if (!host && uv_thread_create(&g_rl.thread, rl_main, NULL) == 0) {
        g_rl.threaded = 1;
        return;
    }
    if (!host) {
        log_warn("cluster: cannot start the Redis thread; worker 0 runs the Redis link");
        host = worker_at(0);
    }
    if (uv_sem_init(&g_rl.host_done, 0) != 0) {
        log_error("cluster: cannot set up the Redis link on worker %d", host->id);
        abort();
    }
    g_rl.hostw = host;
    atomic_store(&g_rl.on_worker, 1);
    g_rl.host_task.run = rl_host_run;
    worker_post(host, &g_rl.host_task);
}

/* The stop task ends the loop on whichever thread runs it; not yet
 * running (a start-up that failed), it runs here. */
void rlink_stop(void)
{
    if (!g_rl.started)
        return;
    g_rl.started = 0;
    static task t = { .run = rl_stop_run };
    rlink_post(&t);
    if (g_rl.threaded) {
        uv_thread_join(&g_rl.thread);
    } else if (g_rl.hostw) {
        uv_sem_wait(&g_rl.host_done);
        uv_sem_destroy(&g_rl.host_done);
    } else {
        uv_run(&g_rl.loop, UV_RUN_DEFAULT);
    }
    g_rl.threaded = 0;
    g_rl.hostw = NULL;
    if (uv_loop_close(&g_rl.loop) != 0)
        log_error("cluster: the Redis loop still had handles at exit");
}
