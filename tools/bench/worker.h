/* worker.h — one load-generating process: it owns a share of the
 * connections (one libuv loop), sets them up at its share of the rate,
 * heartbeats them, timestamps every push, and reports to the parent over a
 * pipe (progress every 200 ms, a bitmap of logged-in connections once set-up
 * is over, and its final counters, histograms and per-message arrays when
 * told to stop or when its deadline passes). */
#ifndef BENCH_WORKER_H
#define BENCH_WORKER_H

#include <uv.h>

#include "opts.h"
#include "rxring.h"
#include "stats.h"

typedef struct client_rx client_rx;

/* One connection: the libuv handle and 24 bytes. No buffer while idle (rx
 * exists only while a frame or a handshake answer is incomplete). Which
 * broadcasts it has seen is one bit per message in the worker's bc_seen. */
typedef struct bench_conn {
    uv_tcp_t tcp;        /* tcp.data = the worker */
    uint64_t t0;         /* start of the current set-up step, ns */
    uint8_t state;
    uint8_t ringed;      /* reads come from the worker's rxring, not libuv */
    client_rx *rx;
} bench_conn;

enum { CS_NEW = 0, CS_CONNECTING, CS_HANDSHAKE, CS_LOGIN, CS_READY, CS_FAILED, CS_DROPPED };

typedef struct worker {
    const bench_opts *o;
    uv_loop_t loop;
    bench_conn *conns;
    uint32_t count, opened, pending_lo, inflight, inflight_max;
    long first;                       /* global index of conns[0] */
    double rate;                      /* this worker's connections per second */
    uint64_t t_start, deadline, timeout_ns, key_seed, rng;
    uv_timer_t pace, tick;
    uv_pipe_t cmd;
    int out_fd, ready_sent, finished;
    uint32_t ticks, hb_slots;
    cstats st;
    uint32_t nb, np;                  /* broadcast / p2p messages expected at most */
    uint32_t *bc_cnt;
    uint64_t *bc_first, *bc_last;
    uint8_t *bc_seen;                 /* bit i * nb + seq: conns[i] got broadcast seq */
    uint8_t *p2p_cnt;
    uint32_t rx_frame;                /* wire bytes of the message being handled */
    uint8_t rx_z;                     /* ... and it came compressed (permessage-deflate) */
    char prefix[8];                   /* "<tag>." at the start of our messages */
    size_t prefix_len;
    rxring *ring;                     /* NULL: every read through libuv */
    uv_poll_t ring_poll;              /* on rxring_fd */
} worker;

/* Runs a worker for connections [first, first+count) of the run; reads
 * commands from cmd_fd ('S' = stop), writes records to out_fd. Returns the
 * process exit status. */
int worker_main(const bench_opts *o, int index, long first, long count, int cmd_fd, int out_fd);

/* client.c: the connection state machine. */
void client_start(worker *w, bench_conn *c);
void client_check_timeout(worker *w, bench_conn *c, uint64_t now);
void client_heartbeat(worker *w, bench_conn *c);
int client_in_setup(const bench_conn *c);
/* rxring_fn: a logged-in connection's reads (tag: its index in conns). */
int client_ring_read(void *ud, uint32_t tag, const uint8_t *p, int n);

#endif
