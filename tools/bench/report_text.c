/* report_text.c — the short human summary printed on stdout. */
#include <math.h>
#include <stdio.h>

#include "report.h"

static void rt_lat(FILE *f, const char *name, const hist *h)
{
    if (!h->n)
        return;
    fprintf(f, "  %-18s p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms"
            "  (mean %.2f, sd %.2f, n %llu)\n", name, (double)hist_quantile(h, 0.5) / 1e6,
            (double)hist_quantile(h, 0.99) / 1e6, (double)hist_quantile(h, 0.999) / 1e6,
            (double)h->max / 1e6, hist_mean(h) / 1e6,
            hist_stddev(h) / 1e6, (unsigned long long)h->n);
}

static void rt_bytes(FILE *f, const char *name, double v)
{
    if (isnan(v))
        fprintf(f, "  %-18s -\n", name);
    else
        fprintf(f, "  %-18s %.0f B\n", name, v);
}

static void rt_room(FILE *f, const result *r)
{
    const floor_stream_result *fs = &r->fs;
    double d = (double)r->bc_delivered;
    fprintf(f, "  %-18s %.0f pushes/s x %.0f s (sent at %.1f/s) to %ld: %.0f deliveries/s, "
            "node %.2f us, clients %.2f us CPU per delivery\n", "room", r->o->room_rate,
            r->o->room_s, result_room_push_rate(r), r->bc_expected_per,
            result_room_delivery_rate(r), d > 0 ? r->bc_node_cpu_s * 1e6 / d : NAN,
            d > 0 ? r->bc_client_cpu_s * 1e6 / d : NAN);
    if (!fs->ran)
        return;
    double fd = (double)fs->delivered;
    fprintf(f, "  %-18s %ld sockets x %d B, %d senders: delivered %llu / %llu, lost %llu, "
            "duplicated %llu, %.0f deliveries/s, senders %.2f us, receivers %.2f us CPU per "
            "delivery%s%s\n", "floor-stream", fs->sockets, fs->payload, fs->senders,
            (unsigned long long)fs->delivered, (unsigned long long)fs->expected,
            (unsigned long long)fs->lost, (unsigned long long)fs->duplicated,
            fs->deliveries_per_s, fd > 0 ? fs->sender_cpu_s * 1e6 / fd : NAN,
            fd > 0 ? fs->receiver_cpu_s * 1e6 / fd : NAN, fs->error[0] ? ": " : "", fs->error);
    rt_lat(f, "floor-stream lat.", &fs->lat);
}

static void rt_floor(FILE *f, const result *r)
{
    const floor_result *fl = &r->fl;
    fprintf(f, "  %-18s %ld sockets x %d B, %d senders: last delivery median %.1f ms, "
            "best %.1f ms (send loop %.1f ms)%s%s\n", "floor", fl->sockets, fl->payload,
            fl->senders, fl->last_delivery_ms_median, fl->last_delivery_ms, fl->send_ms,
            fl->complete ? "" : " INCOMPLETE ", fl->error);
    fprintf(f, "  %-18s", "floor trials");
    for (int i = 0; i < fl->trials; i++)
        fprintf(f, "%s%.1f", i ? ", " : " ", fl->trial_last_ms[i]);
    fputs(" ms\n", f);
    if (r->bc_ran)
        fprintf(f, "  %-18s %.2f x median to median, %.2f x best to best\n",
                "broadcast / floor", result_ratio_median(r), result_ratio_best(r));
}

static void rt_value(FILE *f, const char *fmt, double v)
{
    char s[32] = "-";
    if (!isnan(v))
        snprintf(s, sizeof(s), fmt, v);
    fprintf(f, " %12s", s);
}

/* A second pass: both side by side. */
static void rt_passes(const result *r, FILE *f)
{
    rp_row rows[RP_MAX_ROWS];
    const result *z = r->second;
    int n = report_pass_rows(r, rows);
    if (!n)
        return;
    if (r->o->deflate)
        fprintf(f, "  permessage-deflate, second pass (%s)%s\n", z->o->ws_text[0],
                z->error[0] ? ": ERROR" : "");
    else
        fprintf(f, "  second pass%s (%s)%s\n", r->o->interleave ? ", interleaved" : "",
                z->o->ws_text[0], z->error[0] ? ": ERROR" : "");
    if (z->error[0])
        fprintf(f, "  ERROR: %s\n", z->error);
    fprintf(f, "  %-54s %12s %12s %12s\n", "", r->o->label, z->o->label,
            report_pass_quotient(r));
    for (int i = 0; i < n; i++) {
        double q = rows[i].first > 0 && !isnan(rows[i].second) ? rows[i].second / rows[i].first
                                                                : NAN;
        fprintf(f, "  %-54s", rows[i].name);
        rt_value(f, rows[i].fmt, rows[i].first);
        rt_value(f, rows[i].fmt, rows[i].second);
        rt_value(f, "%.3fx", q);
        fputc('\n', f);
    }
}

void report_summary(const result *r, FILE *f)
{
    const counters *k = &r->st.c;
    fprintf(f, "imgate-bench: %ld connections over %d processes, %.1f s\n", r->o->conns,
            r->o->procs, r->total_s);
    if (r->error[0])
        fprintf(f, "  ERROR: %s\n", r->error);
    if (r->o->scenarios & SC_CONNECT) {
        fprintf(f, "  %-18s %ld / %ld (failed %llu, dropped %llu)\n", "logged in", r->logged_in,
                r->o->conns, (unsigned long long)k->failed, (unsigned long long)k->dropped);
        fprintf(f, "  %-18s %.0f /s\n", "connect rate", r->connect_rate);
        rt_lat(f, "handshake", &r->st.hs);
        rt_lat(f, "login", &r->st.login);
        rt_bytes(f, "server RSS/conn", result_server_bytes_per_conn(r));
        rt_bytes(f, "kernel/conn", result_kernel_bytes_per_conn(r, 0));
        rt_bytes(f, "client RSS/conn", result_client_bytes_per_conn(r));
        if (r->o->rx_ring)
            fprintf(f, "  %-18s io_uring receive ring in %llu of %d processes\n", "client reads",
                    (unsigned long long)k->rx_ring, r->o->procs);
    }
    if (r->hold_ran)
        fprintf(f, "  %-18s %.1f s, %llu drops, heartbeats %llu sent %llu ok\n", "hold",
                r->hold_s, (unsigned long long)r->hold_drops,
                (unsigned long long)r->hold_hb_sent, (unsigned long long)r->hold_hb_ok);
    if (r->bc_ran) {
        fprintf(f, "  %-18s %ld messages: delivered %llu / %llu, lost %llu, duplicated %llu\n",
                "broadcast", r->bc_sent, (unsigned long long)r->bc_delivered,
                (unsigned long long)r->bc_expected, (unsigned long long)r->bc_lost,
                (unsigned long long)r->bc_dup);
        if (r->bc_delivered)
            fprintf(f, "  %-18s median %.1f ms, best %.1f ms, max %.1f ms (frame %ld B)\n",
                    "last delivery", result_bc_last_median(r), result_bc_last_min(r),
                    result_bc_last_max(r), r->bc_frame_max);
        rt_lat(f, "broadcast latency", &r->st.bc);
    }
    if (r->p2p_ran) {
        fprintf(f, "  %-18s %llu sent (%.0f/s), %llu accepted, %llu delivered, lost %llu, "
                "duplicated %llu\n", "p2p", (unsigned long long)r->p2p_sent, r->p2p_rate,
                (unsigned long long)r->p2p_ok, (unsigned long long)r->p2p_delivered,
                (unsigned long long)r->p2p_lost, (unsigned long long)r->p2p_dup);
        rt_lat(f, "p2p latency", &r->st.p2p);
    }
    if (r->fl.ran)
        rt_floor(f, r);
    if (r->room_ran || r->fs.ran)
        rt_room(f, r);
    rt_passes(r, f);
}
