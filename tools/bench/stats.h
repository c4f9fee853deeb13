/* stats.h — what a worker process counts. Plain fixed-size structs (no
 * pointers): a worker writes them to its pipe as bytes, the parent (the same
 * binary) reads them back and merges. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdint.h>

#include "hist.h"

#define KV_MAX 8

/* A small counter map: up to KV_MAX keys, the last slot takes the rest. */
typedef struct kv { int32_t key; uint32_t n; } kv;

typedef struct counters {
    uint32_t child, connect_done;
    uint64_t attempted, tcp_ok, upgraded, logged_in, alive, failed, dropped;
    /* why a set-up failed */
    uint64_t f_connect, f_status, f_accept, f_login, f_to_connect, f_to_handshake, f_to_login,
        f_closed, f_protocol, f_ext;   /* f_ext: permessage-deflate asked for, not granted */
    /* why a logged-in connection went away */
    uint64_t d_eof, d_error, d_close, d_protocol;
    kv connect_errs[KV_MAX];     /* errno (negative libuv code) -> count */
    kv statuses[KV_MAX];         /* handshake HTTP status -> count */
    kv login_codes[KV_MAX];      /* login reply code -> count */
    kv close_codes[KV_MAX];      /* close code received after login -> count */
    uint64_t t_first, t_last_login;  /* first connect started, last login done */
    uint64_t hb_sent, hb_ok, hb_err;
    uint64_t bc_rx, bc_dup, p2p_rx, p2p_dup, p2p_wrong, msg_bad;
    uint64_t bc_frame_min, bc_frame_max;  /* wire bytes of a broadcast push frame */
    uint64_t z_rx, bc_z;             /* messages / broadcast pushes that came compressed */
    uint64_t enter_rx, exit_rx, other_rx, ping_rx, write_err, rx_bytes;
    uint64_t rss_start;              /* the worker's VmRSS before its first connection */
    uint64_t rx_ring;                /* processes reading through an io_uring (--rx-ring) */
} counters;

typedef struct cstats {
    counters c;
    hist hs, login, hb, bc, p2p;
} cstats;

void kv_add(kv *m, int32_t key, uint32_t n);
void counters_init(counters *c);
void cstats_init(cstats *s);
/* dst += src (maps, sums, min of t_first, max of t_last_login). */
void counters_merge(counters *dst, const counters *src);
void cstats_merge(cstats *dst, const cstats *src);

#endif
