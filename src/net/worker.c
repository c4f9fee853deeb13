/* worker.c — the event-loop threads: start/stop, the lock-free task inbox
 * (multi-producer push, the loop thread takes the whole list at once), and
 * the periodic sweep that times out connections without a per-connection
 * timer handle. */
#include "net/worker.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/node.h"
#include "im/hub.h"
#include "net/conn.h"
#include "ws/session.h"

static worker **g_workers;
static int g_nworkers;
static _Thread_local worker *t_self;

int workers_count(void) { return g_nworkers; }
worker *worker_at(int i) { return g_workers[i]; }
worker *worker_self(void) { return t_self; }

void worker_post(worker *w, task *t)
{
    if (task_push(&w->inbox, t))
        uv_async_send(&w->wake);
}

static void worker_on_wake(uv_async_t *a)
{
    worker *w = a->data;
    task_run_all(task_take_all(&w->inbox), w);
}

static void worker_sweep_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h) && conn_is_conn(h))
        conn_sweep_one((conn *)h, *(uint32_t *)arg);
}

static void worker_on_sweep(uv_timer_t *t)
{
    worker *w = t->data;
    uint32_t now = worker_now(w);
    uv_walk(&w->loop, worker_sweep_walk, &now);
}

static void worker_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (conn_is_conn(h)) {
        conn *c = (conn *)h;
        if (c->state == CONN_WS_OPEN)
            conn_close_ws(c, 1001, "server shutting down");
        else if (c->state == CONN_HTTP && !(c->flags & CONN_F_BUSY))
            conn_close(c);
    }
}

static void worker_force_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (conn_is_conn(h))
        conn_close((conn *)h);
    else
        uv_close(h, NULL);
}

/* During shutdown: poll every 50 ms until the clients are gone or the grace
 * period is over, then close everything left so the loop ends. */
static void worker_on_grace(uv_timer_t *t)
{
    worker *w = t->data;
    long left = atomic_load_explicit(&w->stats.conns, memory_order_relaxed);
    if (left > 0 && uv_now(&w->loop) < w->stop_deadline)
        return;
    uv_timer_stop(t);
    uv_walk(&w->loop, worker_force_walk, NULL);
}

/* Shutdown: close listeners, say 1001 to clients, wait for them to go. */
static void worker_stop_task(worker *w, task *t)
{
    free(t);
    w->stopping = 1;
    uv_close((uv_handle_t *)&w->ws_listener, NULL);
    uv_close((uv_handle_t *)&w->http_listener, NULL);
    uv_timer_stop(&w->sweep);
    uv_walk(&w->loop, worker_close_walk, NULL);
    w->stop_deadline = uv_now(&w->loop) + (uint64_t)g_node.cfg.shutdownGrace * 1000;
    uv_timer_start(&w->sweep, worker_on_grace, 50, 50);
}

static void worker_main(void *arg)
{
    worker *w = arg;
    t_self = w;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static int worker_init(worker *w, int id, int ws_fd, int http_fd)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->ws_fd = ws_fd;
    w->http_fd = http_fd;
    atomic_init(&w->inbox, NULL);
    if (uv_loop_init(&w->loop) != 0)
        return -1;
    w->loop.data = w;
    w->wake.data = w;
    w->sweep.data = w;
    if (uv_async_init(&w->loop, &w->wake, worker_on_wake) != 0 ||
        uv_timer_init(&w->loop, &w->sweep) != 0)
        return -1;
    w->hub = hub_local_new();
    if (!w->hub || conn_listen(w) != 0)
        return -1;
    uint64_t every = (uint64_t)g_node.cfg.sweepInterval * 1000;
    return uv_timer_start(&w->sweep, worker_on_sweep, every, every);
}

int workers_start(int n, const int *ws_fds, const int *http_fds)
{
    g_workers = calloc((size_t)n, sizeof(*g_workers));
    if (!g_workers)
        return -1;
    for (int i = 0; i < n; i++) {
        g_workers[i] = malloc(sizeof(worker));
        if (!g_workers[i] || worker_init(g_workers[i], i, ws_fds[i], http_fds[i]) != 0) {
            log_error("worker %d: initialisation failed", i);
            return -1;
        }
        g_nworkers = i + 1;
    }
    for (int i = 0; i < n; i++) {
        if (uv_thread_create(&g_workers[i]->thread, worker_main, g_workers[i]) != 0) {
            /* earlier workers already run: there is no clean way back */
            log_error("worker %d: cannot start its thread; exiting", i);
            exit(1);
        }
    }
    return 0;
}

static void workers_free_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void workers_stop(void)
{
    for (int i = 0; i < g_nworkers; i++) {
        task *t = malloc(sizeof(*t));
        if (!t)
            abort();
        t->run = worker_stop_task;
        worker_post(g_workers[i], t);
    }
    for (int i = 0; i < g_nworkers; i++)
        uv_thread_join(&g_workers[i]->thread);
    /* All loop threads are gone: run what is left in the inboxes here (tasks
     * may post to each other), then release the loops. */
    for (int round = 0, busy = 1; busy && round < 100; round++) {
        busy = 0;
        for (int i = 0; i < g_nworkers; i++) {
            worker *w = g_workers[i];
            if (atomic_load(&w->inbox)) {
                busy = 1;
                worker_on_wake(&w->wake);
            }
        }
    }
    for (int i = 0; i < g_nworkers; i++) {
        worker *w = g_workers[i];
        uv_walk(&w->loop, workers_free_walk, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        hub_local_free(w->hub);
        free(w);
    }
    free(g_workers);
    g_workers = NULL;
    g_nworkers = 0;
}
