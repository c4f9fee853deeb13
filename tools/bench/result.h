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
    char error[256];              /* why the run stopped early, if it did */

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

    /* p2p */
    int p2p_ran;
    uint64_t p2p_sent, p2p_ok, p2p_false, p2p_http_err, p2p_delivered, p2p_lost, p2p_dup;
    double p2p_s, p2p_rate;

    floor_result fl;

    mem_sample steps[RES_MAX_STEPS];
    int nsteps;
    mem_sample *tl;
    int ntl;
    double tl_every;
} result;

/* Derived figures (NaN when not measured). */
double result_server_bytes_per_conn(const result *r);
double result_kernel_bytes_per_conn(const result *r, int both_ends);
double result_host_bytes_per_conn(const result *r);
double result_client_bytes_per_conn(const result *r);
/* Time to last delivery of broadcast message i, ms (NaN if none). */
double result_msg_last_ms(const result *r, long i);
/* Median / max over the broadcast messages of the time to last delivery. */
double result_bc_last_median(const result *r);
double result_bc_last_max(const result *r);
const mem_sample *result_step(const result *r, const char *name);

void result_free(result *r);

#endif
