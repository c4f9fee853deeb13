/* worker.c — the event-loop threads: start (initialise, publish, run),
 * the two-step shutdown (close the clients; later end the loops, drain the
 * inboxes, free), the lock-free task inbox (multi-producer push, the loop
 * thread takes the whole list at once), and the periodic sweep that times
 * out connections without a per-connection timer handle. Who owns what and
 * until when: worker.h. */
#include "net/worker.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/node.h"
#include "net/conn.h"

/* Rounds of workers_stop's last drain (tasks posting to each other). */
#define WORKER_DRAIN_ROUNDS 100

/* The table (see worker.h for who owns what). `count` is the publication:
 * stored (release) once every worker is initialised, loaded (acquire) by
 * any thread; the rest is written by the owning thread only. */
enum worker_phase {
    WORKERS_NONE,        /* no table: before workers_start, after workers_stop */
    WORKERS_RUNNING,     /* loops serve clients */
    WORKERS_CLOSING,     /* clients closed or closing; loops run tasks */
    WORKERS_DRAINING,    /* loops ended: workers_stop runs the inboxes */
};

/* What the layer above keeps per worker (im/hub.c's tables). */
static worker_local_ops g_local;

void workers_set_local(const worker_local_ops *ops) { g_local = *ops; }

static struct {
    worker **all;
    int n;                       /* allocated, owner's view */
    atomic_int count;            /* published */
    atomic_int phase;            /* enum worker_phase */
    uv_mutex_t quiet_mu;         /* workers_close_clients' wait */
    uv_cond_t quiet_cond;
    int quiet;                   /* workers whose clients are all gone */
} g_wk;

static _Thread_local worker *t_self;

int workers_count(void) { return atomic_load_explicit(&g_wk.count, memory_order_acquire); }
worker *worker_at(int i) { return g_wk.all[i]; }
worker *worker_self(void) { return t_self; }

static void worker_on_soon(uv_idle_t *h);

void worker_post(worker *w, task *t)
{
    if (atomic_load_explicit(&g_wk.phase, memory_order_acquire) == WORKERS_NONE) {
        log_error("worker_post: the workers are gone (a thread outlived workers_stop)");
        abort();
    }
    /* The wake handle stays open until the last drain is over, so this is
     * valid in every phase; once the loop has ended the task simply waits
     * for that drain. Posted by the loop's own thread while the loop runs
     * (a Redis answer on a worker that hosts the link), an idle handle runs
     * it at the start of the next turn: no eventfd written and read back. */
    if (!task_push(&w->inbox, t))
        return;                                  /* whoever made it non-empty woke it */
    if (t_self == w && atomic_load_explicit(&g_wk.phase, memory_order_acquire) != WORKERS_DRAINING &&
        !uv_is_closing((uv_handle_t *)&w->soon) && uv_idle_start(&w->soon, worker_on_soon) == 0)
        return;
    uv_async_send(&w->wake);
}

static void worker_run_inbox(worker *w) { task_run_all(task_take_all(&w->inbox), w); }

static void worker_on_wake(uv_async_t *a) { worker_run_inbox(a->data); }

static void worker_on_soon(uv_idle_t *h)
{
    (void)uv_idle_stop(h);
    worker_run_inbox(h->data);
}

static void worker_on_defer(uv_idle_t *h)
{
    worker *w = h->data;
    if (!g_local.step || !w->hub || !g_local.step(w->hub))
        (void)uv_idle_stop(h);
}

void worker_defer(worker *w)
{
    if (!uv_is_active((uv_handle_t *)&w->defer))
        (void)uv_idle_start(&w->defer, worker_on_defer);
}

/* Deferred work done now (see worker_local_ops.flush). */
static void worker_flush(worker *w)
{
    if (g_local.flush && w->hub)
        g_local.flush(w->hub);
    (void)uv_idle_stop(&w->defer);
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
    if (g_local.sweep && w->hub)
        g_local.sweep(w->hub, uv_now(&w->loop));
}

static void worker_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (conn_is_conn(h))
        conn_stop((conn *)h);                /* its layer: 1001, or close when not held */
}

/* At the end of the grace: every connection left is closed now (the loop's
 * own handles stay open: it keeps running tasks). */
static void worker_force_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h) && conn_is_conn(h))
        conn_close((conn *)h);
}

/* Tells workers_close_clients that one more worker has no client left. */
static void worker_report_quiet(void)
{
    uv_mutex_lock(&g_wk.quiet_mu);
    g_wk.quiet++;
    uv_cond_signal(&g_wk.quiet_cond);
    uv_mutex_unlock(&g_wk.quiet_mu);
}

/* During shutdown: poll every 50 ms until the clients are gone or the grace
 * period is over, then close every connection left and report. */
static void worker_on_grace(uv_timer_t *t)
{
    worker *w = t->data;
    long left = atomic_load_explicit(&w->stats.conns, memory_order_relaxed);
    if (left > 0 && uv_now(&w->loop) < w->stop_deadline)
        return;
    uv_timer_stop(t);
    uv_walk(&w->loop, worker_force_walk, NULL);
    worker_report_quiet();
}

/* Shutdown step 1, on w's loop: close listeners, say 1001 to clients, wait
 * for them to go (w->close_task: owned by w, not freed). */
static void worker_close_run(worker *w, task *t)
{
    (void)t;
    w->stopping = 1;
    worker_flush(w);                         /* what was sent before goes out first */
    uv_close((uv_handle_t *)&w->ws_listener, NULL);
    uv_close((uv_handle_t *)&w->http_listener, NULL);
    uv_timer_stop(&w->sweep);
    uv_walk(&w->loop, worker_close_walk, NULL);
    w->stop_deadline = uv_now(&w->loop) + (uint64_t)g_node.cfg.shutdownGrace * 1000;
    uv_timer_start(&w->sweep, worker_on_grace, 50, 50);
}

/* Shutdown step 2, on w's loop: end the loop, its handles left open (a
 * task posted from now on waits in the inbox for workers_stop's drain). */
static void worker_exit_run(worker *w, task *t)
{
    (void)t;
    uv_stop(&w->loop);
}

static void worker_main(void *arg)
{
    worker *w = arg;
    t_self = w;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void worker_close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Closes w's handles and loop (on the owning thread, loop not running) and
 * frees it. */
static void worker_free(worker *w)
{
    t_self = w;                              /* close callbacks run as w */
    uv_walk(&w->loop, worker_close_any, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    t_self = NULL;
    if (uv_loop_close(&w->loop) != 0)
        log_error("worker %d: its loop still had handles at exit", w->id);
    if (w->hub && g_local.destroy)
        g_local.destroy(w->hub);
    conn_batch_end(w);
    conn_pool_end(w);
    free(w);
}

static int worker_init(worker *w, int ws_fd, int http_fd)
{
    w->ws_fd = ws_fd;
    w->http_fd = http_fd;
    atomic_init(&w->inbox, NULL);
    w->loop.data = w;
    w->wake.data = w;
    w->sweep.data = w;
    w->defer.data = w;
    w->soon.data = w;
    w->close_task.run = worker_close_run;
    w->exit_task.run = worker_exit_run;
    if (uv_async_init(&w->loop, &w->wake, worker_on_wake) != 0 ||
        uv_timer_init(&w->loop, &w->sweep) != 0 || uv_idle_init(&w->loop, &w->defer) != 0 ||
        uv_idle_init(&w->loop, &w->soon) != 0)
        return -1;
    if (g_local.create && !(w->hub = g_local.create()))
        return -1;
    if (conn_listen(w) != 0)
        return -1;
    uint64_t every = (uint64_t)g_node.cfg.sweepInterval * 1000;
    return uv_timer_start(&w->sweep, worker_on_sweep, every, every);
}

/* A worker ready to run (loop, wake-up, hub, listeners), or NULL. */
static worker *worker_new(int id, int ws_fd, int http_fd)
{
    worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->id = id;
    if (uv_loop_init(&w->loop) != 0) {
        free(w);
        return NULL;
    }
    if (worker_init(w, ws_fd, http_fd) != 0) {
        worker_free(w);
        return NULL;
    }
    return w;
}

/* Frees the table and every worker in it (no thread runs them). */
static void workers_free_all(void)
{
    for (int i = 0; i < g_wk.n; i++)
        worker_free(g_wk.all[i]);
    free(g_wk.all);
    g_wk.all = NULL;
    g_wk.n = 0;
    uv_cond_destroy(&g_wk.quiet_cond);
    uv_mutex_destroy(&g_wk.quiet_mu);
}

/* Every worker initialised: publish the table (from now on any thread may
 * post to them; tasks wait in the inboxes until the loops run). */
static void workers_publish(int n)
{
    g_wk.quiet = 0;
    atomic_store_explicit(&g_wk.phase, WORKERS_RUNNING, memory_order_relaxed);
    atomic_store_explicit(&g_wk.count, n, memory_order_release);
}

int workers_start(int n, const int *ws_fds, const int *http_fds)
{
    if (g_wk.n != 0 || n < 1 || uv_mutex_init(&g_wk.quiet_mu) != 0) {
        log_error("workers: cannot start %d workers (already running or no lock)", n);
        return -1;
    }
    if (uv_cond_init(&g_wk.quiet_cond) != 0) {
        log_error("workers: cannot create the shutdown condition");
        uv_mutex_destroy(&g_wk.quiet_mu);
        return -1;
    }
    g_wk.all = calloc((size_t)n, sizeof(*g_wk.all));
    if (!g_wk.all)
        log_error("workers: out of memory for the worker table");
    for (int i = 0; g_wk.all && i < n; i++) {
        g_wk.all[i] = worker_new(i, ws_fds[i], http_fds[i]);
        if (!g_wk.all[i]) {
            log_error("worker %d: initialisation failed", i);
            break;
        }
        g_wk.n = i + 1;
    }
    if (g_wk.n != n) {
        workers_free_all();
        return -1;
    }
    workers_publish(n);
    for (int i = 0; i < n; i++) {
        if (uv_thread_create(&g_wk.all[i]->thread, worker_main, g_wk.all[i]) != 0) {
            /* earlier workers already run: there is no clean way back */
            log_error("worker %d: cannot start its thread; exiting", i);
            exit(1);
        }
    }
    return 0;
}

void workers_close_clients(void)
{
    if (atomic_load_explicit(&g_wk.phase, memory_order_relaxed) != WORKERS_RUNNING)
        return;
    atomic_store_explicit(&g_wk.phase, WORKERS_CLOSING, memory_order_release);
    for (int i = 0; i < g_wk.n; i++)
        worker_post(g_wk.all[i], &g_wk.all[i]->close_task);
    uv_mutex_lock(&g_wk.quiet_mu);
    while (g_wk.quiet < g_wk.n)
        uv_cond_wait(&g_wk.quiet_cond, &g_wk.quiet_mu);
    uv_mutex_unlock(&g_wk.quiet_mu);
}

/* The loops have ended and no other thread posts: run what is left in the
 * inboxes here, each task as its worker, until every inbox stays empty
 * (tasks may post to each other). */
static void workers_drain(void)
{
    for (int round = 0; round < WORKER_DRAIN_ROUNDS; round++) {
        for (int i = 0; i < g_wk.n; i++) {
            worker *w = g_wk.all[i];
            task *list = task_take_all(&w->inbox);
            t_self = w;
            task_run_all(list, w);
            worker_flush(w);                 /* may post (answers to other workers) */
            t_self = NULL;
        }
        int left = 0;
        for (int i = 0; i < g_wk.n; i++)
            left |= atomic_load_explicit(&g_wk.all[i]->inbox, memory_order_acquire) != NULL;
        if (!left)
            return;
    }
    log_error("workers: tasks still posted to each other after %d rounds: left unrun",
              WORKER_DRAIN_ROUNDS);
}

void workers_stop(void)
{
    if (g_wk.n == 0)
        return;
    workers_close_clients();
    for (int i = 0; i < g_wk.n; i++)
        worker_post(g_wk.all[i], &g_wk.all[i]->exit_task);
    for (int i = 0; i < g_wk.n; i++)
        uv_thread_join(&g_wk.all[i]->thread);
    atomic_store_explicit(&g_wk.phase, WORKERS_DRAINING, memory_order_release);
    workers_drain();
    atomic_store_explicit(&g_wk.count, 0, memory_order_release);
    atomic_store_explicit(&g_wk.phase, WORKERS_NONE, memory_order_release);
    workers_free_all();
}
