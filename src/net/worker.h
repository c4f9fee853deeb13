/* worker.h — event-loop threads. Each worker owns one libuv loop, its own
 * SO_REUSEPORT listeners (HTTP and WebSocket), the connections accepted on
 * them, and a lock-free inbox of tasks posted by other threads and woken by
 * a uv_async_t. Nothing a worker owns is touched by another thread. */
#ifndef IMGATE_WORKER_H
#define IMGATE_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "core/task.h"

#define WORKER_READ_BUF (64 * 1024)

struct hub_local;
struct worker;


typedef struct worker_stats {
    atomic_long conns;        /* open TCP connections (HTTP + WS) */
    atomic_long ws_conns;     /* upgraded WebSocket connections */
    atomic_long logged_in;    /* logged-in WebSocket connections */
    atomic_long out_bytes;    /* bytes waiting in outbound queues */
    atomic_long out_queues;   /* connections with a non-empty queue */
    atomic_long msgs_in;      /* WebSocket messages received */
    atomic_long frames_out;   /* pushes (msg/enter/exit) handed to connections */
    atomic_long slow_closed;  /* closed for a full outbound queue (own or node cap) */
    atomic_long rate_closed;  /* closed for sending too many messages */
    atomic_long handshake_timeouts; /* closed before finishing the upgrade */
} worker_stats;

typedef struct worker {
    int id;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    task_inbox inbox;
    uv_tcp_t ws_listener;
    uv_tcp_t http_listener;
    int ws_fd, http_fd;
    uv_timer_t sweep;
    struct hub_local *hub;
    int stopping;
    uint64_t stop_deadline;         /* uv_now() when shutdown stops waiting */
    worker_stats stats;
    uint8_t rbuf[WORKER_READ_BUF];   /* shared by every read on this loop */
    uint8_t tls_buf[WORKER_READ_BUF]; /* plaintext of TLS reads (net/tls.c) */
    int rbuf_busy;
} worker;

/* Starts n workers, each adopting its own listening sockets (ws_fds[i],
 * http_fds[i]). Returns 0 or -1 (logged). */
int workers_start(int n, const int *ws_fds, const int *http_fds);
/* Asks every worker to close its connections (1001) and stop; joins them. */
void workers_stop(void);

int workers_count(void);
worker *worker_at(int i);

/* Posts t to w's inbox from any thread; t->run runs on w's loop. */
void worker_post(worker *w, task *t);

/* Seconds on a monotonic clock, as seen by loop w (cheap: cached per tick). */
static inline uint32_t worker_now(const worker *w) { return (uint32_t)(uv_now(&w->loop) / 1000); }

/* The worker owning the calling loop thread (NULL on other threads). */
worker *worker_self(void);

#endif
