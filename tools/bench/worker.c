/* worker.c — a load-generating process: pacing of new connections,
 * heartbeat slots, set-up timeouts, reports to the parent, and the stop. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "ipc.h"
#include "mem.h"
#include "wsc.h"

#define WORKER_TICK_MS 100
#define WORKER_PACE_MS 5
/* --rx-ring's buffers: 32 MiB per process, resident from the start (in the
 * baseline of "client RSS/conn"). A read takes one: what a pass of a room's
 * walk brings one connection, 2 KiB at 10 pushes/s and 100,000 members,
 * some 45 KiB when the machine is past saturation (40/s); with 4 KiB
 * buffers the kernel ran out of them there (every receive it stopped had to
 * be armed again) and the clients fell behind. */
#define WORKER_RING_BUFS 2048
#define WORKER_RING_BUF_BYTES 16384

/* Returns -1 if the parent is gone. */
static int worker_report(worker *w)
{
    w->st.c.connect_done = w->opened == w->count && w->inflight == 0;
    return ipc_send(w->out_fd, IPC_PROGRESS, &w->st.c, sizeof(w->st.c), NULL, 0);
}

/* Once set-up is over: which of our connections are logged in. */
static void worker_send_ready(worker *w)
{
    size_t bytes = (w->count + 7) / 8;
    uint8_t *bits = calloc(1, bytes ? bytes : 1);
    if (!bits)
        return;
    for (uint32_t i = 0; i < w->count; i++)
        if (w->conns[i].state == CS_READY)
            bits[i / 8] |= (uint8_t)(1u << (i % 8));
    ipc_send(w->out_fd, IPC_READY, bits, bytes, NULL, 0);
    free(bits);
    w->ready_sent = 1;
}

static void worker_finish(worker *w)
{
    if (w->finished)
        return;
    w->finished = 1;
    worker_report(w);
    int fd = w->out_fd;
    ipc_send(fd, IPC_FINAL, &w->st, sizeof(w->st), NULL, 0);
    ipc_send(fd, IPC_BC_CNT, w->bc_cnt, sizeof(uint32_t) * w->nb, NULL, 0);
    ipc_send(fd, IPC_BC_FIRST, w->bc_first, sizeof(uint64_t) * w->nb, NULL, 0);
    ipc_send(fd, IPC_BC_LAST, w->bc_last, sizeof(uint64_t) * w->nb, NULL, 0);
    ipc_send(fd, IPC_P2P_CNT, w->p2p_cnt, w->np, NULL, 0);
    ipc_send(fd, IPC_END, NULL, 0, NULL, 0);
    uv_stop(&w->loop);
}

static void worker_pace_cb(uv_timer_t *t)
{
    worker *w = t->data;
    uint64_t due = w->count;
    if (w->rate > 0) {
        double el = (double)(clock_ns() - w->t_start) / 1e9;
        double d = w->rate * el + 1;
        due = d < (double)w->count ? (uint64_t)d : w->count;
    }
    while (w->opened < due && w->inflight < w->inflight_max && !w->finished)
        client_start(w, &w->conns[w->opened++]);
    if (w->opened == w->count)
        uv_timer_stop(t);
}

static void worker_timeouts(worker *w, uint64_t now)
{
    while (w->pending_lo < w->opened && !client_in_setup(&w->conns[w->pending_lo]))
        w->pending_lo++;
    for (uint32_t i = w->pending_lo; i < w->opened; i++)
        client_check_timeout(w, &w->conns[i], now);
}

static void worker_heartbeats(worker *w)
{
    uint32_t slot = w->ticks % w->hb_slots;
    for (uint32_t i = slot; i < w->count; i += w->hb_slots)
        client_heartbeat(w, &w->conns[i]);
}

static void worker_tick_cb(uv_timer_t *t)
{
    worker *w = t->data;
    uint64_t now = clock_ns();
    w->ticks++;
    worker_timeouts(w, now);
    worker_heartbeats(w);
    int report = w->ticks % 2 == 0;
    if (w->opened == w->count && w->inflight == 0 && !w->ready_sent) {
        worker_send_ready(w);
        report = 1;
    }
    if ((report && worker_report(w) != 0) || now > w->deadline)
        worker_finish(w);
}

static void worker_cmd_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char cmdbuf[64];
    (void)h;
    (void)hint;
    *buf = uv_buf_init(cmdbuf, sizeof(cmdbuf));
}

static void worker_cmd_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    worker *w = s->data;
    if (nread < 0 || (nread > 0 && memchr(buf->base, 'S', (size_t)nread)))
        worker_finish(w);
}

static int worker_alloc(worker *w, long count)
{
    const bench_opts *o = w->o;
    w->count = (uint32_t)count;
    w->nb = (uint32_t)opts_bcast_total(o);
    w->np = (uint32_t)opts_p2p_total(o);
    w->conns = calloc((size_t)count, sizeof(bench_conn));
    w->bc_cnt = calloc(w->nb + 1, sizeof(uint32_t));
    w->bc_first = calloc(w->nb + 1, sizeof(uint64_t));
    w->bc_last = calloc(w->nb + 1, sizeof(uint64_t));
    w->p2p_cnt = calloc(w->np + 1, 1);
    w->bc_seen = calloc(opts_bc_seen_bytes(w->nb, w->count), 1);
    return w->conns && w->bc_cnt && w->bc_first && w->bc_last && w->p2p_cnt && w->bc_seen
               ? 0 : -1;
}

static void worker_limits(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
}

static void worker_ring_cb(uv_poll_t *p, int status, int events)
{
    worker *w = p->data;
    (void)events;
    int r = status < 0 ? status : rxring_run(w->ring, client_ring_read, w);
    if (r < 0) {
        fprintf(stderr, "imgate-bench: worker: receive ring failed: %s\n", strerror(-r));
        worker_finish(w);
    }
}

/* The receive ring (rxring.h) when asked for (--rx-ring) and the kernel
 * has it; else reads stay on libuv, and the report counts the processes
 * that had it. */
static int worker_ring(worker *w, int index)
{
    if (!w->o->rx_ring)
        return 0;
    w->ring = rxring_open(WORKER_RING_BUFS, WORKER_RING_BUF_BYTES);
    if (!w->ring) {
        fprintf(stderr, "imgate-bench: worker %d: --rx-ring: no io_uring receive ring here (%s): "
                "reading with epoll\n", index, strerror(errno));
        return 0;
    }
    w->st.c.rx_ring = 1;
    w->ring_poll.data = w;
    if (uv_poll_init(&w->loop, &w->ring_poll, rxring_fd(w->ring)) != 0 ||
        uv_poll_start(&w->ring_poll, UV_READABLE, worker_ring_cb) != 0)
        return -1;
    return 0;
}

static int worker_setup(worker *w, int index, long first, int cmd_fd)
{
    const bench_opts *o = w->o;
    w->first = first;
    w->rate = o->connect_rate / o->procs;
    w->inflight_max = (uint32_t)((o->inflight + o->procs - 1) / o->procs);
    w->timeout_ns = (uint64_t)(o->timeout_s * 1e9);
    w->t_start = clock_ns();
    w->deadline = w->t_start + (uint64_t)(o->max_time_s * 1e9);
    w->key_seed = w->t_start ^ ((uint64_t)getpid() << 32);
    w->rng = w->key_seed | 1;
    w->hb_slots = (uint32_t)(o->heartbeat_s * 1000 / WORKER_TICK_MS + 0.5);
    if (w->hb_slots < 1)
        w->hb_slots = 1;
    w->prefix_len = (size_t)snprintf(w->prefix, sizeof(w->prefix), "%s.", o->tag);
    cstats_init(&w->st);
    w->st.c.child = (uint32_t)index;
    if (uv_loop_init(&w->loop) != 0)
        return -1;
    uv_timer_init(&w->loop, &w->pace);
    uv_timer_init(&w->loop, &w->tick);
    w->pace.data = w->tick.data = w;
    uv_timer_start(&w->pace, worker_pace_cb, 0, WORKER_PACE_MS);
    uv_timer_start(&w->tick, worker_tick_cb, WORKER_TICK_MS, WORKER_TICK_MS);
    if (uv_pipe_init(&w->loop, &w->cmd, 0) != 0 || uv_pipe_open(&w->cmd, cmd_fd) != 0)
        return -1;
    w->cmd.data = w;
    if (uv_read_start((uv_stream_t *)&w->cmd, worker_cmd_alloc, worker_cmd_cb) != 0)
        return -1;
    if (worker_ring(w, index) != 0)
        return -1;
    /* The baseline of "client bytes per connection": taken once the
     * per-process constants exist (libcrypto initialises itself on its
     * first digest, and that is megabytes). */
    char warm[WSC_ACCEPT_LEN + 1];
    int self = (int)getpid(), ok = 1;
    wsc_accept("dGhlIHNhbXBsZSBub25jZQ==", warm);
    w->st.c.rss_start = mem_rss(&self, 1, &ok);
    return 0;
}

int worker_main(const bench_opts *o, int index, long first, long count, int cmd_fd, int out_fd)
{
    static worker w;                  /* one per process; holds the histograms */
    w.o = o;
    w.out_fd = out_fd;
    worker_limits();
    if (worker_alloc(&w, count) != 0 || worker_setup(&w, index, first, cmd_fd) != 0) {
        fprintf(stderr, "imgate-bench: worker %d: out of memory or loop set-up failed\n", index);
        return 1;
    }
    uv_run(&w.loop, UV_RUN_DEFAULT);
    /* The process exits now; the kernel closes every socket at once. */
    return 0;
}
