/* result.h — everything one run measured, as the reports need it: merged
 * worker statistics, per-phase figures, per-message arrays, memory steps
 * and the timeline. Filled by coord.c and floor.c, read by report_*.c. */
#ifndef BENCH_RESULT_H
#define BENCH_RESULT_H

#include <stdint.h>

#include "floor.h"
#include "mem.h"
#include "opts.h"
#include "stats.h"

#define RES_MAX_STEPS 16
#define RES_MAX_TIMELINE 2048
#define RES_MAX_FAILURES 12

typedef struct res_msg {          /* one broadcast message */
    uint64_t sent_ns;             /* just before the request was written */
    uint64_t answer_ns;           /* the API answered */
    int status, ok;               /* HTTP status; API code 200 */
    uint64_t delivered, first_ns, last_ns;
} res_msg;

typedef struct result {
    const bench_opts *o;
    uint64_t t0;                  /* start of the run */
    double total_s;
    int cpus;
    uint64_t mem_total, page_size;
    char kernel[160];
    char error[768];              /* why the run stopped early or failed ("; "-joined) */
    char failures[RES_MAX_FAILURES][160];   /* the same, one reason each */
    int nfailures;

    /* workers, merged at the end */
    int workers, workers_reported;
    cstats st;

    /* connect */
    long logged_in;               /* alive when set-up was over */
    double connect_s, connect_rate;

    /* hold */
    int hold_ran;
    double hold_s;
    uint64_t hold_drops, hold_hb_sent, hold_hb_ok;

    /* broadcast */
    int bc_ran;
    long bc_sent;                 /* requests made */
    res_msg *bc;                  /* [bc_sent] */
    long bc_expected_per;         /* connections alive when the phase began */
    uint64_t bc_accepted, bc_expected, bc_delivered, bc_lost, bc_dup, bc_http_err;
    double bc_phase_s;
    long bc_frame_min, bc_frame_max;  /* wire bytes of the push frames received (0: none) */
    double bc_node_cpu_s;         /* CPU the --pid processes used in the phase (NaN: unknown) */
    uint64_t bc_rx_bytes;         /* bytes the clients read in the phase (pushes, replies) */
    double bc_client_cpu_s;       /* CPU the client worker processes used in the phase */

    /* room: the broadcast paced (see opts.h); derived in result_room */
    int room_ran;

    /* p2p */
    int p2p_ran;
    uint64_t p2p_sent, p2p_ok, p2p_false, p2p_http_err, p2p_delivered, p2p_lost, p2p_dup;
    double p2p_s, p2p_rate;

    floor_result fl;
    floor_stream_result fs;       /* floor-stream */

    mem_sample steps[RES_MAX_STEPS];
    int nsteps;
    mem_sample *tl;
    int ntl;
    double tl_every;

    /* the second pass (--deflate: clients with permessage-deflate;
     * --second-*: the same clients, other nodes), which the reports set
     * beside this one, with this one's floor; NULL without one */
    const struct result *second;
} result;

/* Derived figures (NaN when not measured). */
double result_server_bytes_per_conn(const result *r);
double result_kernel_bytes_per_conn(const result *r, int both_ends);
double result_host_bytes_per_conn(const result *r);
double result_client_bytes_per_conn(const result *r);
/* Time to last delivery of broadcast message i, ms (NaN if none). */
double result_msg_last_ms(const result *r, long i);
/* Median / max / min over the broadcast messages of the time to last
 * delivery (accepted messages that reached someone). */
double result_bc_last_median(const result *r);
double result_bc_last_max(const result *r);
double result_bc_last_min(const result *r);
/* Broadcast against the floor: median message / median floor trial, and
 * best message / best floor trial (NaN when either is missing). */
double result_ratio_median(const result *r);
double result_ratio_best(const result *r);
/* The same against another pass's floor (the second pass has none). */
double result_ratio_median_to(const result *r, const floor_result *fl);
double result_ratio_best_to(const result *r, const floor_result *fl);

/* room: pushes/s sent (first to last send), deliveries/s (first send to
 * last delivery), NaN when not measured. */
double result_room_push_rate(const result *r);
double result_room_delivery_rate(const result *r);

/* Checks what a trustworthy run needs — every connection logged in and
 * stayed, no broadcast or p2p message lost, duplicated, misdelivered or
 * refused by the API, every push parsed, a complete floor — and records
 * each miss in r->failures and r->error. Returns the number of failures. */
int result_verdict(result *r);
const mem_sample *result_step(const result *r, const char *name);

void result_free(result *r);

#endif
