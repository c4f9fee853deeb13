/* report_deflate.c — the figures of --deflate's two passes side by side
 * (without and with permessage-deflate), shared by the text summary and the
 * HTML page; the JSON writes the same figures under "deflate". */
#include <math.h>
#include <stdio.h>

#include "report.h"

static double rd_per_delivery(const result *r, double total)
{
    return r->bc_delivered ? total / (double)r->bc_delivered : NAN;
}

static double rd_frame(const result *r)
{
    return r->bc_frame_max > 0 ? (double)r->bc_frame_max : NAN;
}

static double rd_quantile(const result *r, double q)
{
    return r->st.bc.n ? (double)hist_quantile(&r->st.bc, q) / 1e6 : NAN;
}

static void rd_add(rd_row *rows, int *n, const char *name, const char *fmt, double off, double on)
{
    if (*n >= RD_MAX_ROWS)
        return;
    rows[*n] = (rd_row){ name, fmt, off, on };
    (*n)++;
}

int report_deflate_rows(const result *r, rd_row *rows)
{
    const result *z = r->deflate_on;
    int n = 0;
    if (!z)
        return 0;
    rd_add(rows, &n, "connections logged in", "%.0f", (double)r->logged_in, (double)z->logged_in);
    rd_add(rows, &n, "server memory per idle connection (RSS growth, B)", "%.0f",
           result_server_bytes_per_conn(r), result_server_bytes_per_conn(z));
    rd_add(rows, &n, "push frame on the wire (B)", "%.0f", rd_frame(r), rd_frame(z));
    rd_add(rows, &n, "pushes received compressed", "%.0f", (double)r->st.c.bc_z,
           (double)z->st.c.bc_z);
    rd_add(rows, &n, "bytes read by the clients in the broadcast phase (MB)", "%.2f",
           (double)r->bc_rx_bytes / 1e6, (double)z->bc_rx_bytes / 1e6);
    rd_add(rows, &n, "... per delivery (B)", "%.1f", rd_per_delivery(r, (double)r->bc_rx_bytes),
           rd_per_delivery(z, (double)z->bc_rx_bytes));
    rd_add(rows, &n, "time to last delivery, median (ms)", "%.1f", result_bc_last_median(r),
           result_bc_last_median(z));
    rd_add(rows, &n, "time to last delivery, best (ms)", "%.1f", result_bc_last_min(r),
           result_bc_last_min(z));
    rd_add(rows, &n, "time to last delivery, max (ms)", "%.1f", result_bc_last_max(r),
           result_bc_last_max(z));
    rd_add(rows, &n, "node CPU in the broadcast phase (s)", "%.2f", r->bc_node_cpu_s,
           z->bc_node_cpu_s);
    rd_add(rows, &n, "... per delivery (us)", "%.2f", rd_per_delivery(r, r->bc_node_cpu_s * 1e6),
           rd_per_delivery(z, z->bc_node_cpu_s * 1e6));
    rd_add(rows, &n, "delivery latency p50 (ms)", "%.1f", rd_quantile(r, 0.5), rd_quantile(z, 0.5));
    rd_add(rows, &n, "delivery latency p99 (ms)", "%.1f", rd_quantile(r, 0.99), rd_quantile(z, 0.99));
    rd_add(rows, &n, "delivered", "%.0f", (double)r->bc_delivered, (double)z->bc_delivered);
    rd_add(rows, &n, "lost", "%.0f", (double)r->bc_lost, (double)z->bc_lost);
    rd_add(rows, &n, "duplicated", "%.0f", (double)r->bc_dup, (double)z->bc_dup);
    return n;
}
