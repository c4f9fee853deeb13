/* report_html.c — one self-contained HTML page: the headline numbers, SVG
 * charts (latency histogram, per-message time to last delivery against the
 * floor, connections and memory over time) and the detail tables. No
 * script, no external resource: it opens offline. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report.h"
#include "svg.h"

#define RH_BINS 60

static const char RH_STYLE[] =
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:800px;color:#222}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px "
    "solid #eee;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".bad{color:#b00020;font-weight:bold}.meta{color:#666}svg{max-width:100%;height:auto}";

static void rh_row(FILE *f, const char *name, const char *fmt, double v)
{
    fputs("<tr><td>", f);
    svg_text(f, name);
    fputs("</td><td class=n>", f);
    if (isnan(v))
        fputs("–", f);
    else
        fprintf(f, fmt, v);
    fputs("</td></tr>\n", f);
}

static void rh_row_s(FILE *f, const char *name, const char *v)
{
    fputs("<tr><td>", f);
    svg_text(f, name);
    fputs("</td><td class=n>", f);
    svg_text(f, v);
    fputs("</td></tr>\n", f);
}

static void rh_latency_rows(FILE *f, const char *what, const hist *h)
{
    char name[96];
    static const double q[] = { 0.50, 0.95, 0.99, 0.999 };
    static const char *const qn[] = { "p50", "p95", "p99", "p99.9" };
    if (!h->n)
        return;
    snprintf(name, sizeof(name), "%s: count", what);
    rh_row(f, name, "%.0f", (double)h->n);
    snprintf(name, sizeof(name), "%s: min / mean / stddev (ms)", what);
    fprintf(f, "<tr><td>%s</td><td class=n>%.3f / %.3f / %.3f</td></tr>\n", name,
            (double)h->min / 1e6, hist_mean(h) / 1e6, hist_stddev(h) / 1e6);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "%s: %s (ms)", what, qn[i]);
        rh_row(f, name, "%.3f", (double)hist_quantile(h, q[i]) / 1e6);
    }
    snprintf(name, sizeof(name), "%s: max (ms)", what);
    rh_row(f, name, "%.3f", (double)h->max / 1e6);
}

static void rh_floor_rows(FILE *f, const result *r)
{
    rh_row(f, "floor: raw TCP time to last delivery, median of trials (ms)", "%.1f",
           r->fl.last_delivery_ms_median);
    rh_row(f, "floor: raw TCP time to last delivery, best trial (ms)", "%.1f",
           r->fl.last_delivery_ms);
    rh_row(f, "floor: bytes sent to each socket", "%.0f", (double)r->fl.payload);
    if (!r->bc_ran)
        return;
    rh_row(f, "broadcast / floor, median message / median trial", "%.2f",
           result_ratio_median(r));
    rh_row(f, "broadcast / floor, best message / best trial", "%.2f", result_ratio_best(r));
}

static void rh_headline(FILE *f, const result *r)
{
    const char *hn;
    const hist *h = report_main_hist(r, &hn);
    char name[64];
    fputs("<h2>Key numbers</h2><table>\n", f);
    rh_row(f, "connections logged in", "%.0f", (double)r->logged_in);
    rh_row(f, "server RSS bytes per connection", "%.0f", result_server_bytes_per_conn(r));
    rh_row(f, "kernel bytes per connection (one end)", "%.0f", result_kernel_bytes_per_conn(r, 0));
    rh_row(f, "client (this tool) RSS bytes per connection", "%.0f",
           result_client_bytes_per_conn(r));
    rh_row(f, "connect rate achieved (per s)", "%.0f", r->connect_rate);
    if (r->bc_ran) {
        rh_row(f, "broadcast: time to last delivery, median (ms)", "%.1f",
               result_bc_last_median(r));
        rh_row(f, "broadcast: time to last delivery, best (ms)", "%.1f", result_bc_last_min(r));
        rh_row(f, "broadcast: time to last delivery, max (ms)", "%.1f", result_bc_last_max(r));
        rh_row(f, "broadcast: push frame on the wire (bytes)", "%.0f",
               r->bc_frame_max > 0 ? (double)r->bc_frame_max : NAN);
        fprintf(f, "<tr><td>broadcast: delivered / expected</td><td class=\"n%s\">%llu / %llu"
                "</td></tr>\n", r->bc_delivered != r->bc_expected ? " bad" : "",
                (unsigned long long)r->bc_delivered, (unsigned long long)r->bc_expected);
        rh_row(f, "broadcast: lost", "%.0f", (double)r->bc_lost);
        rh_row(f, "broadcast: duplicated", "%.0f", (double)r->bc_dup);
    }
    if (r->fl.ran)
        rh_floor_rows(f, r);
    snprintf(name, sizeof(name), "latency (%s)", hn);
    rh_latency_rows(f, name, h);
    fputs("</table>\n", f);
}

static void rh_histogram(FILE *f, const hist *h, const char *title)
{
    if (!h->n)
        return;
    double hi = (double)hist_quantile(h, 0.999) / 1e6 * 1.05, lo = 0;
    if (!(hi > lo))
        hi = (double)h->max / 1e6 + 1e-3;
    double w = (hi - lo) / RH_BINS, x[RH_BINS], y[RH_BINS];
    for (int i = 0; i < RH_BINS; i++) {
        x[i] = lo + i * w;
        y[i] = 0;
    }
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        if (!h->b[i])
            continue;
        uint64_t a, b;
        hist_bounds(i, &a, &b);
        int k = (int)(((double)(a + b) / 2e6 - lo) / w);
        y[k < 0 ? 0 : k >= RH_BINS ? RH_BINS - 1 : k] += (double)h->b[i];
    }
    svg_chart c = { title, "latency, ms (the last bar holds everything above p99.9)",
                    "deliveries", NAN, NULL };
    svg_bars(f, &c, x, y, RH_BINS, w, "#1f77b4");
}

static void rh_per_message(FILE *f, const result *r)
{
    if (!r->bc_ran || r->bc_sent == 0)
        return;
    double *x = calloc((size_t)r->bc_sent, sizeof(double));
    double *y = calloc((size_t)r->bc_sent, sizeof(double));
    if (x && y) {
        for (long i = 0; i < r->bc_sent; i++) {
            x[i] = (double)i;
            y[i] = result_msg_last_ms(r, i);
        }
        svg_chart c = { "Broadcast: time to last delivery per message", "message",
                        "ms", r->fl.ran ? r->fl.last_delivery_ms_median : NAN,
                        "raw TCP floor (median of trials)" };
        svg_bars(f, &c, x, y, (int)r->bc_sent, 1, "#2ca02c");
    }
    free(x);
    free(y);
}

/* The memory series of the timeline as growth since the "before" step. */
static void rh_memory_series(const result *r, double *v, int n)
{
    const mem_sample *b = result_step(r, "before");
    mem_sample zero;
    memset(&zero, 0, sizeof(zero));
    if (!b)
        b = &r->tl[0];
    double kb = (double)(b->slab + b->tcp_pages * r->page_size);
    for (int i = 0; i < n; i++) {
        const mem_sample *m = &r->tl[i];
        v[i] = m->rss_ok && b->rss_ok ? ((double)m->rss - (double)b->rss) / 1048576.0 : NAN;
        v[n + i] = ((double)(m->slab + m->tcp_pages * r->page_size) - kb) / 1048576.0;
        v[2 * n + i] = m->client_rss ? ((double)m->client_rss - (double)m->client_base) / 1048576.0
                                     : NAN;
        v[3 * n + i] = ((double)m->used - (double)b->used) / 1048576.0;
    }
}

static void rh_timeline(FILE *f, const result *r)
{
    int n = r->ntl;
    if (n == 0)
        return;
    double *t = calloc((size_t)n, sizeof(double)), *v = calloc((size_t)n * 5, sizeof(double));
    if (t && v) {
        for (int i = 0; i < n; i++) {
            t[i] = r->tl[i].t;
            v[4 * n + i] = (double)r->tl[i].conns;
        }
        rh_memory_series(r, v, n);
        svg_series cs = { "logged-in connections", "#1f77b4", t, v + 4 * n, n };
        svg_chart c1 = { "Connections over time", "seconds", "connections", NAN, NULL };
        svg_lines(f, &c1, &cs, 1);
        svg_series ms[4] = {
            { "server RSS (--pid)", "#d62728", t, v, n },
            { "kernel: Slab + TCP pages", "#9467bd", t, v + n, n },
            { "client RSS (this tool)", "#ff7f0e", t, v + 2 * n, n },
            { "host used (total - available)", "#7f7f7f", t, v + 3 * n, n },
        };
        svg_chart c2 = { "Memory growth since the start", "seconds", "MiB", NAN, NULL };
        svg_lines(f, &c2, ms, 4);
    }
    free(t);
    free(v);
}

static void rh_connect(FILE *f, const result *r)
{
    const counters *k = &r->st.c;
    fputs("<h2>Connect</h2><table>\n", f);
    rh_row(f, "attempted", "%.0f", (double)k->attempted);
    rh_row(f, "logged in", "%.0f", (double)k->logged_in);
    rh_row(f, "target rate (per s, 0 = unpaced)", "%.0f", r->o->connect_rate);
    rh_row(f, "set-up duration (s)", "%.2f", r->connect_s);
    rh_row(f, "failed: TCP connect error", "%.0f", (double)k->f_connect);
    rh_row(f, "failed: handshake status not 101", "%.0f", (double)k->f_status);
    rh_row(f, "failed: bad Sec-WebSocket-Accept", "%.0f", (double)k->f_accept);
    rh_row(f, "failed: login code not 200", "%.0f", (double)k->f_login);
    rh_row(f, "failed: timeout (connect / handshake / login)", "%.0f",
           (double)(k->f_to_connect + k->f_to_handshake + k->f_to_login));
    rh_row(f, "failed: closed or protocol error", "%.0f", (double)(k->f_closed + k->f_protocol));
    for (int i = 0; i < KV_MAX; i++) {
        char name[64];
        if (k->connect_errs[i].n) {
            snprintf(name, sizeof(name), "connect error %s",
                     report_err_name(k->connect_errs[i].key));
            rh_row(f, name, "%.0f", (double)k->connect_errs[i].n);
        }
    }
    rh_latency_rows(f, "handshake", &r->st.hs);
    rh_latency_rows(f, "login", &r->st.login);
    fputs("</table>\n", f);
}

static void rh_floor(FILE *f, const result *r)
{
    const floor_result *fl = &r->fl;
    char name[64];
    fprintf(f, "<h2>Floor (raw TCP, one %d-byte send per socket)</h2><table>\n", fl->payload);
    rh_row(f, "socket pairs", "%.0f", (double)fl->sockets);
    rh_row(f, "bytes per socket", "%.0f", (double)fl->payload);
    rh_row_s(f, "bytes per socket from", fl->payload_measured ? "broadcast frames received"
                                                              : "computed push frame");
    rh_row(f, "sender processes", "%.0f", (double)fl->senders);
    rh_row(f, "worker threads of the nodes under test", "%.0f",
           r->o->node_workers > 0 ? (double)r->o->node_workers : NAN);
    rh_row(f, "receiver processes", "%.0f", (double)fl->receivers);
    for (int i = 0; i < fl->trials; i++) {
        snprintf(name, sizeof(name), "trial %d: time to last delivery (ms)", i + 1);
        rh_row(f, name, "%.2f", fl->trial_last_ms[i]);
    }
    rh_row(f, "time to last delivery, median of trials (ms)", "%.2f",
           fl->last_delivery_ms_median);
    rh_row(f, "time to last delivery, best trial (ms)", "%.2f", fl->last_delivery_ms);
    rh_row(f, "best trial: time to first delivery (ms)", "%.2f", fl->first_delivery_ms);
    rh_row(f, "best trial: send loop (ms)", "%.2f", fl->send_ms);
    rh_row_s(f, "complete", fl->complete ? "yes" : "NO");
    fputs("</table>\n", f);
}

static void rh_phases(FILE *f, const result *r)
{
    if (r->hold_ran) {
        fputs("<h2>Hold</h2><table>\n", f);
        rh_row(f, "duration (s)", "%.1f", r->hold_s);
        rh_row(f, "heartbeats sent", "%.0f", (double)r->hold_hb_sent);
        rh_row(f, "heartbeats answered 200", "%.0f", (double)r->hold_hb_ok);
        rh_row(f, "unexpected drops", "%.0f", (double)r->hold_drops);
        rh_latency_rows(f, "heartbeat (whole run)", &r->st.hb);
        fputs("</table>\n", f);
    }
    if (r->p2p_ran) {
        fputs("<h2>Point to point</h2><table>\n", f);
        rh_row(f, "rate achieved (per s)", "%.0f", r->p2p_rate);
        rh_row(f, "sent", "%.0f", (double)r->p2p_sent);
        rh_row(f, "accepted (sendResults true)", "%.0f", (double)r->p2p_ok);
        rh_row(f, "delivered", "%.0f", (double)r->p2p_delivered);
        rh_row(f, "lost", "%.0f", (double)r->p2p_lost);
        rh_row(f, "duplicated", "%.0f", (double)r->p2p_dup);
        rh_latency_rows(f, "p2p latency", &r->st.p2p);
        fputs("</table>\n", f);
    }
    if (r->fl.ran)
        rh_floor(f, r);
}

static void rh_steps(FILE *f, const result *r)
{
    fputs("<h2>Memory steps</h2><table><tr><th>step</th><th>t (s)</th><th>connections</th>"
          "<th>server RSS</th><th>client RSS</th><th>Slab</th><th>TCP pages</th>"
          "<th>host used</th></tr>\n", f);
    for (int i = 0; i < r->nsteps; i++) {
        const mem_sample *m = &r->steps[i];
        fprintf(f, "<tr><td>%s</td><td class=n>%.1f</td><td class=n>%ld</td><td class=n>",
                m->step, m->t, m->conns);
        if (m->rss_ok)
            fprintf(f, "%.1f MiB", (double)m->rss / 1048576.0);
        else
            fputs("–", f);
        fprintf(f, "</td><td class=n>%.1f MiB</td><td class=n>%.1f MiB</td><td class=n>%llu</td>"
                "<td class=n>%.1f MiB</td></tr>\n", (double)m->client_rss / 1048576.0,
                (double)m->slab / 1048576.0, (unsigned long long)m->tcp_pages,
                (double)m->used / 1048576.0);
    }
    fputs("</table>\n", f);
}

static void rh_head(FILE *f, const result *r)
{
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
    fprintf(f, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>imgate-bench report</title><style>%s</style></head><body>\n"
            "<h1>imgate-bench report</h1>\n<p class=meta>", RH_STYLE);
    for (unsigned b = 1; b <= SC_FLOOR; b <<= 1)
        if (r->o->scenarios & b)
            fprintf(f, "%s ", opts_scenario_name(b));
    fprintf(f, "· %ld connections over %d processes · %d CPUs, %.1f GiB, Linux ", r->o->conns,
            r->o->procs, r->cpus, (double)r->mem_total / 1073741824.0);
    svg_text(f, r->kernel);
    fputs(" · ", f);
    svg_text(f, r->o->ws_text[0]);
    if (r->o->nws > 1)
        fprintf(f, " and %d more", r->o->nws - 1);
    if (r->o->npids > 1)
        fprintf(f, " · server memory of %d processes", r->o->npids);
    fprintf(f, " · %s</p>\n", when);
    if (r->error[0]) {
        fputs("<p class=bad>Run failed: ", f);
        svg_text(f, r->error);
        fputs("</p>\n", f);
    }
}

static void rh_cell(FILE *f, const char *fmt, double v)
{
    fputs("<td class=n>", f);
    if (isnan(v))
        fputs("–", f);
    else
        fprintf(f, fmt, v);
    fputs("</td>", f);
}

/* A second pass: both side by side. */
static void rh_passes(FILE *f, const result *r)
{
    rp_row rows[RP_MAX_ROWS];
    const result *z = r->second;
    int n = report_pass_rows(r, rows);
    if (!n)
        return;
    if (r->o->deflate) {
        fputs("<h2>permessage-deflate: off and on</h2>\n<p class=meta>The same scenarios twice: "
              "clients that do not offer permessage-deflate, then clients that offer it and "
              "inflate what is compressed (second pass: ", f);
    } else {
        fputs("<h2>Two passes: ", f);
        svg_text(f, r->o->label);
        fputs(" and ", f);
        svg_text(f, z->o->label);
        fputs("</h2>\n<p class=meta>The same scenarios twice with the same clients", f);
        fputs(r->o->interleave ? ", at once (broadcast rounds alternating)" : "", f);
        fputs("; the floor, if it ran, is the first pass's, for both (second pass: ", f);
    }
    svg_text(f, z->o->ws_text[0]);
    fputs(").</p>\n", f);
    if (z->error[0]) {
        fputs("<p class=bad>Second pass failed: ", f);
        svg_text(f, z->error);
        fputs("</p>\n", f);
    }
    fputs("<table><tr><th></th><th>", f);
    svg_text(f, r->o->label);
    fputs("</th><th>", f);
    svg_text(f, z->o->label);
    fprintf(f, "</th><th>%s</th></tr>\n", r->o->deflate ? "on / off" : "second / first");
    for (int i = 0; i < n; i++) {
        double q = rows[i].first > 0 && !isnan(rows[i].second) ? rows[i].second / rows[i].first
                                                                : NAN;
        fputs("<tr><td>", f);
        svg_text(f, rows[i].name);
        fputs("</td>", f);
        rh_cell(f, rows[i].fmt, rows[i].first);
        rh_cell(f, rows[i].fmt, rows[i].second);
        rh_cell(f, "%.3f ×", q);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

int report_html(const result *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const char *hn;
    const hist *h = report_main_hist(r, &hn);
    char title[96];
    snprintf(title, sizeof(title), "Latency histogram (%s)", hn);
    rh_head(f, r);
    rh_headline(f, r);
    rh_passes(f, r);
    fputs("<h2>Charts</h2>\n", f);
    rh_histogram(f, h, title);
    if (r->p2p_ran && r->bc_ran)
        rh_histogram(f, &r->st.p2p, "Latency histogram (p2p)");
    rh_per_message(f, r);
    rh_timeline(f, r);
    rh_connect(f, r);
    rh_phases(f, r);
    rh_steps(f, r);
    fputs("</body></html>\n", f);
    return fclose(f) == 0 ? 0 : -1;
}
