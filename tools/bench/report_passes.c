/* report_passes.c — the figures of a second pass set beside the first's
 * (--deflate: without and with permessage-deflate; --second-*: the same
 * clients against other nodes), shared by the text summary and the HTML
 * page; the JSON writes the same figures under "deflate" or "passes". */
#include <math.h>
#include <stdio.h>

#include "report.h"

static double rp_per_delivery(const result *r, double total)
{
    return r->bc_delivered ? total / (double)r->bc_delivered : NAN;
}

static double rp_frame(const result *r)
{
    return r->bc_frame_max > 0 ? (double)r->bc_frame_max : NAN;
}

static double rp_quantile(const result *r, double q)
{
    return r->st.bc.n ? (double)hist_quantile(&r->st.bc, q) / 1e6 : NAN;
}

static void rp_add(rp_row *rows, int *n, const char *name, const char *fmt, double first,
                   double second)
{
    if (*n >= RP_MAX_ROWS)
        return;
    rows[*n] = (rp_row){ name, fmt, first, second };
    (*n)++;
}

/* Both passes against the one floor of the run (the first pass's). */
static void rp_floor_rows(const result *r, const result *z, rp_row *rows, int *n)
{
    const floor_result *fl = &r->fl;
    if (!fl->ran)
        return;
    rp_add(rows, n, "floor, median of trials (ms; one floor for both)", "%.1f",
           fl->last_delivery_ms_median, fl->last_delivery_ms_median);
    rp_add(rows, n, "broadcast / floor, median to median", "%.3f", result_ratio_median_to(r, fl),
           result_ratio_median_to(z, fl));
    rp_add(rows, n, "broadcast / floor, best to best", "%.3f", result_ratio_best_to(r, fl),
           result_ratio_best_to(z, fl));
}

int report_pass_rows(const result *r, rp_row *rows)
{
    const result *z = r->second;
    int n = 0;
    if (!z)
        return 0;
    rp_add(rows, &n, "connections logged in", "%.0f", (double)r->logged_in, (double)z->logged_in);
    rp_add(rows, &n, "server memory per idle connection (RSS growth, B)", "%.0f",
           result_server_bytes_per_conn(r), result_server_bytes_per_conn(z));
    rp_add(rows, &n, "push frame on the wire (B)", "%.0f", rp_frame(r), rp_frame(z));
    if (r->o->deflate)
        rp_add(rows, &n, "pushes received compressed", "%.0f", (double)r->st.c.bc_z,
               (double)z->st.c.bc_z);
    rp_add(rows, &n, "bytes read by the clients in the broadcast phase (MB)", "%.2f",
           (double)r->bc_rx_bytes / 1e6, (double)z->bc_rx_bytes / 1e6);
    rp_add(rows, &n, "... per delivery (B)", "%.1f", rp_per_delivery(r, (double)r->bc_rx_bytes),
           rp_per_delivery(z, (double)z->bc_rx_bytes));
    rp_add(rows, &n, "time to last delivery, median (ms)", "%.1f", result_bc_last_median(r),
           result_bc_last_median(z));
    rp_add(rows, &n, "time to last delivery, best (ms)", "%.1f", result_bc_last_min(r),
           result_bc_last_min(z));
    rp_add(rows, &n, "time to last delivery, max (ms)", "%.1f", result_bc_last_max(r),
           result_bc_last_max(z));
    rp_floor_rows(r, z, rows, &n);
    rp_add(rows, &n, "node CPU in the broadcast phase (s)", "%.2f", r->bc_node_cpu_s,
           z->bc_node_cpu_s);
    rp_add(rows, &n, "... per delivery (us)", "%.2f", rp_per_delivery(r, r->bc_node_cpu_s * 1e6),
           rp_per_delivery(z, z->bc_node_cpu_s * 1e6));
    rp_add(rows, &n, "delivery latency p50 (ms)", "%.1f", rp_quantile(r, 0.5), rp_quantile(z, 0.5));
    rp_add(rows, &n, "delivery latency p99 (ms)", "%.1f", rp_quantile(r, 0.99), rp_quantile(z, 0.99));
    rp_add(rows, &n, "delivered", "%.0f", (double)r->bc_delivered, (double)z->bc_delivered);
    rp_add(rows, &n, "lost", "%.0f", (double)r->bc_lost, (double)z->bc_lost);
    rp_add(rows, &n, "duplicated", "%.0f", (double)r->bc_dup, (double)z->bc_dup);
    return n;
}

const char *report_pass_quotient(const result *r)
{
    return r->o->deflate ? "on/off" : "2nd/1st";
}
