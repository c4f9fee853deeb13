/* worker.h — event-loop threads. Each worker owns one libuv loop, its own
 * SO_REUSEPORT listeners (HTTP and WebSocket), the connections accepted on
 * them, and a lock-free inbox of tasks posted by other threads and woken by
 * a uv_async_t (by a uv_idle when the worker posts to itself). Nothing a
 * worker owns is touched by another thread.
 *
 * Ownership and life-cycle:
 *  - the worker table and every worker in it belong to the thread that
 *    calls workers_start/workers_stop (main). workers_start initialises
 *    every worker, then publishes the table with one release store of its
 *    count (workers_count() loads it with acquire: a thread that sees n > 0
 *    sees n initialised workers), then starts the loop threads. A worker
 *    stays allocated until the end of workers_stop.
 *  - a task posted to a worker belongs to that worker's inbox until it
 *    runs, and it always runs, with w = that worker: on the worker's loop
 *    while the loop runs (also while it closes its clients), else in
 *    workers_stop's last drain, on the stopping thread (worker_self() is
 *    then that worker too). A task is never dropped, so its owner's
 *    clean-up (free, answer, unhold) always happens.
 *  - therefore workers_stop may run only once every other thread that
 *    posts to workers has been joined (the gRPC thread: rpc_stop; the Redis
 *    link: cluster_stop). Posting to workers after workers_stop is a bug:
 *    worker_post aborts with a message rather than touch freed memory.
 *
 * Shutdown: workers_close_clients (stop accepting, 1001 to the clients,
 * wait for them at most app.shutdownGrace, loops keep running tasks), then
 * the cluster stops, then workers_stop (loops end, last drain, free). */
#ifndef IMGATE_WORKER_H
#define IMGATE_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "core/task.h"
#include "net/conn.h"

#define WORKER_READ_BUF (64 * 1024)

struct hub_local;
struct worker;


typedef struct worker_stats {
    atomic_long conns;        /* open TCP connections (HTTP + WS) */
    atomic_long http_conns;   /* those of them on the HTTP API port */
    atomic_long ws_port_conns; /* and on the WebSocket port (upgraded or not) */
    atomic_long ws_conns;     /* upgraded WebSocket connections */
    atomic_long logged_in;    /* logged-in WebSocket connections */
    atomic_long out_bytes;    /* bytes waiting in outbound queues (WebSocket port) */
    atomic_long http_out_bytes; /* the same on the HTTP port (answers) */
    atomic_long out_queues;   /* connections with a non-empty queue */
    atomic_long msgs_in;      /* WebSocket messages received */
    atomic_long frames_out;   /* pushes (msg/enter/exit) handed to connections */
    atomic_long slow_closed;  /* closed for a full outbound queue (own or node cap) */
    atomic_long rate_closed;  /* closed for sending too many messages */
    atomic_long handshake_timeouts; /* closed before finishing the upgrade */
    atomic_long ws_writes;    /* writes to WebSocket connections (uv_try_write, uv_write) */
    atomic_long ws_write_bytes; /* bytes those writes put on the wire */
    atomic_long room_pending; /* room pushes queued in this worker's walks (im/fanout.h) */
    atomic_long ring_on;      /* 1 while its end-of-turn writes go through an io_uring */
    atomic_long ring_writes;  /* ws_writes made through it */
    atomic_long ring_submits; /* system calls that made them (net/conn.c, conn_batch_ahead) */
} worker_stats;

typedef struct worker {
    int id;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_idle_t soon;                 /* runs the inbox posted from the loop's own thread */
    task_inbox inbox;
    uv_tcp_t ws_listener;
    uv_tcp_t http_listener;
    int ws_fd, http_fd;
    uv_timer_t sweep;
    uv_idle_t defer;                /* runs worker_local_ops.step while it has work */
    struct hub_local *hub;
    int stopping;                   /* closing its clients (loop thread) */
    uint64_t stop_deadline;         /* uv_now() when shutdown stops waiting */
    task close_task, exit_task;     /* posted by workers_close_clients/workers_stop */
    worker_stats stats;
    conn_batch batch;               /* this turn's frames, written at its end (net/conn.c) */
    conn_pool pool;                 /* its plain connections' memory (net/conn.c) */
    uint8_t rbuf[WORKER_READ_BUF];   /* shared by every read on this loop */
    uint8_t tls_buf[WORKER_READ_BUF]; /* plaintext of TLS reads (net/tls.c) */
    int rbuf_busy;
} worker;

/* Per-worker state of the layer above (the hub's user and room tables):
 * created for each worker before it accepts, destroyed after its loop has
 * ended. Registered once at start-up, before workers_start. */
typedef struct worker_local_ops {
    struct hub_local *(*create)(void);
    void (*destroy)(struct hub_local *h);
    /* Every app.sweepInterval on the worker's loop (may be NULL). */
    void (*sweep)(struct hub_local *h, uint64_t now_ms);
    /* Deferred work (worker_defer), one slice per loop turn: returns 1 while
     * some is left. */
    int (*step)(struct hub_local *h);
    /* All deferred work, now: before the worker closes its clients, and in
     * workers_stop's last drain (the loop no longer turns). */
    void (*flush)(struct hub_local *h);
} worker_local_ops;
void workers_set_local(const worker_local_ops *ops);

/* Starts n workers, each adopting its own listening sockets (ws_fds[i],
 * http_fds[i]): initialises all, publishes the table, starts the threads.
 * Returns 0, or -1 (logged; nothing published, nothing left allocated). */
int workers_start(int n, const int *ws_fds, const int *http_fds);
/* Shutdown, step 1: every worker closes its listeners, says 1001 to its
 * WebSocket clients and closes idle HTTP ones, waits for them at most
 * app.shutdownGrace, then closes what is left. Returns when every worker
 * has no connection; the loops keep running posted tasks. Idempotent. */
void workers_close_clients(void);
/* Shutdown, step 2 (after rpc_stop and cluster_stop: no other thread may
 * post any more): workers_close_clients if not done, ends the loops, joins
 * the threads, runs what is left in the inboxes here, frees every worker.
 * Safe if workers_start did not succeed. */
void workers_stop(void);

/* Published workers (0 before workers_start has initialised all of them
 * and after workers_stop). Any thread. */
int workers_count(void);
/* Worker i < workers_count(). */
worker *worker_at(int i);

/* Posts t to w's inbox from any thread; t->run runs once, with w (see the
 * ownership rules above). */
void worker_post(worker *w, task *t);

/* The layer above has deferred work on w (its own thread only): its step
 * runs once per loop turn, without blocking the poll, until it says done. */
void worker_defer(worker *w);

/* Seconds on a monotonic clock, as seen by loop w (cheap: cached per tick). */
static inline uint32_t worker_now(const worker *w) { return (uint32_t)(uv_now(&w->loop) / 1000); }

/* The worker owning the calling loop thread (NULL on other threads). */
worker *worker_self(void);

#endif
