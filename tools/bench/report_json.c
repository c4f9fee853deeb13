/* report_json.c — results as JSON: the headline keys first (connections,
 * bytes per connection, rates, broadcast times, losses, latency), then one
 * object per phase, memory steps and the timeline; with a second pass, the
 * two side by side ("deflate": off, on, on_vs_off with --deflate; else
 * "passes": first, second, second_vs_first). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <uv.h>

#include "jw.h"
#include "report.h"
#include "worker.h"

const char *report_err_name(int code)
{
    return code < 0 ? uv_err_name(code) : "?";
}

const hist *report_main_hist(const result *r, const char **name)
{
    if (r->bc_ran) {
        *name = "broadcast";
        return &r->st.bc;
    }
    if (r->p2p_ran) {
        *name = "p2p";
        return &r->st.p2p;
    }
    *name = "login";
    return &r->st.login;
}

static double rj_ms(uint64_t ns) { return (double)ns / 1e6; }

static void rj_latency(jw *w, const char *key, const hist *h)
{
    jw_obj_inline(w, key);
    jw_int(w, "count", (long long)h->n);
    if (h->n) {
        jw_num(w, "min", rj_ms(h->min));
        jw_num(w, "mean", hist_mean(h) / 1e6);
        jw_num(w, "stddev", hist_stddev(h) / 1e6);
        jw_num(w, "p50", rj_ms(hist_quantile(h, 0.50)));
        jw_num(w, "p95", rj_ms(hist_quantile(h, 0.95)));
        jw_num(w, "p99", rj_ms(hist_quantile(h, 0.99)));
        jw_num(w, "p999", rj_ms(hist_quantile(h, 0.999)));
        jw_num(w, "max", rj_ms(h->max));
    }
    jw_end(w, '}');
}

static void rj_kv(jw *w, const char *key, const kv *m, int errnames)
{
    jw_obj_inline(w, key);
    for (int i = 0; i < KV_MAX; i++) {
        if (!m[i].n)
            continue;
        char name[32];
        if (errnames)
            snprintf(name, sizeof(name), "%s", report_err_name(m[i].key));
        else
            snprintf(name, sizeof(name), "%d", m[i].key);
        jw_int(w, name, m[i].n);
    }
    jw_end(w, '}');
}

/* The broadcast's time to last delivery beside the floor's, median to
 * median and best to best, and what one delivery weighs on the wire. */
static void rj_against_floor(jw *w, const result *r)
{
    const floor_result *f = &r->fl;
    jw_num(w, "broadcast_last_delivery_ms", r->bc_ran ? result_bc_last_median(r) : NAN);
    jw_num(w, "broadcast_last_delivery_ms_max", r->bc_ran ? result_bc_last_max(r) : NAN);
    jw_num(w, "broadcast_last_delivery_ms_best", r->bc_ran ? result_bc_last_min(r) : NAN);
    jw_num(w, "broadcast_floor_ms_median", f->ran ? f->last_delivery_ms_median : NAN);
    jw_num(w, "broadcast_floor_ms_best", f->ran ? f->last_delivery_ms : NAN);
    jw_num(w, "broadcast_floor_ms", f->ran ? f->last_delivery_ms : NAN);
    jw_num(w, "broadcast_ratio_median", result_ratio_median(r));
    jw_num(w, "broadcast_ratio_best", result_ratio_best(r));
    jw_num(w, "broadcast_frame_bytes", r->bc_frame_max > 0 ? (double)r->bc_frame_max : NAN);
    jw_num(w, "floor_frame_bytes", f->ran ? (double)f->payload : NAN);
}

static void rj_headline(jw *w, const result *r)
{
    const char *hn;
    const hist *h = report_main_hist(r, &hn);
    jw_int(w, "connections", r->logged_in);
    jw_int(w, "connections_target", r->o->conns);
    jw_num(w, "server_rss_bytes_per_conn", result_server_bytes_per_conn(r));
    jw_num(w, "kernel_bytes_per_conn", result_kernel_bytes_per_conn(r, 0));
    jw_num(w, "kernel_bytes_per_conn_both_ends", result_kernel_bytes_per_conn(r, 1));
    jw_num(w, "host_bytes_per_conn", result_host_bytes_per_conn(r));
    jw_num(w, "client_rss_bytes_per_conn", result_client_bytes_per_conn(r));
    jw_int(w, "client_conn_struct_bytes", (long long)sizeof(bench_conn));
    jw_int(w, "client_rx_ring_procs", (long long)r->st.c.rx_ring);
    jw_num(w, "connect_rate_per_s", r->connect_rate);
    rj_against_floor(w, r);
    if (r->bc_ran) {
        jw_int(w, "broadcast_lost", (long long)r->bc_lost);
        jw_int(w, "broadcast_duplicated", (long long)r->bc_dup);
    } else {
        jw_num(w, "broadcast_lost", NAN);
        jw_num(w, "broadcast_duplicated", NAN);
    }
    jw_str(w, "latency_of", hn);
    rj_latency(w, "latency_ms", h);
}

static void rj_connect(jw *w, const result *r)
{
    const counters *k = &r->st.c;
    jw_obj(w, "connect");
    jw_int(w, "attempted", (long long)k->attempted);
    jw_int(w, "tcp_connected", (long long)k->tcp_ok);
    jw_int(w, "upgraded", (long long)k->upgraded);
    jw_int(w, "logged_in", (long long)k->logged_in);
    jw_int(w, "failed", (long long)k->failed);
    jw_obj_inline(w, "failures");
    jw_int(w, "connect_error", (long long)k->f_connect);
    jw_int(w, "handshake_status", (long long)k->f_status);
    jw_int(w, "bad_accept", (long long)k->f_accept);
    jw_int(w, "login_code", (long long)k->f_login);
    jw_int(w, "timeout_connect", (long long)k->f_to_connect);
    jw_int(w, "timeout_handshake", (long long)k->f_to_handshake);
    jw_int(w, "timeout_login", (long long)k->f_to_login);
    jw_int(w, "closed", (long long)k->f_closed);
    jw_int(w, "protocol", (long long)k->f_protocol);
    jw_int(w, "extension_refused", (long long)k->f_ext);
    jw_end(w, '}');
    rj_kv(w, "connect_errors", k->connect_errs, 1);
    rj_kv(w, "handshake_statuses", k->statuses, 0);
    rj_kv(w, "login_codes", k->login_codes, 0);
    jw_num(w, "target_rate_per_s", r->o->connect_rate);
    jw_num(w, "duration_s", r->connect_s);
    jw_num(w, "rate_per_s", r->connect_rate);
    rj_latency(w, "handshake_ms", &r->st.hs);
    rj_latency(w, "login_ms", &r->st.login);
    jw_end(w, '}');
}

static void rj_hold(jw *w, const result *r)
{
    const counters *k = &r->st.c;
    jw_obj(w, "hold");
    jw_bool(w, "ran", r->hold_ran);
    jw_num(w, "duration_s", r->hold_s);
    jw_num(w, "heartbeat_s", r->o->heartbeat_s);
    jw_int(w, "heartbeats_sent", (long long)r->hold_hb_sent);
    jw_int(w, "heartbeats_ok", (long long)r->hold_hb_ok);
    jw_int(w, "drops", (long long)r->hold_drops);
    jw_int(w, "drops_whole_run", (long long)k->dropped);
    jw_obj_inline(w, "drop_reasons");
    jw_int(w, "eof", (long long)k->d_eof);
    jw_int(w, "error", (long long)k->d_error);
    jw_int(w, "close_frame", (long long)k->d_close);
    jw_int(w, "protocol", (long long)k->d_protocol);
    jw_end(w, '}');
    rj_kv(w, "close_codes", k->close_codes, 0);
    rj_latency(w, "heartbeat_ms", &r->st.hb);
    jw_int(w, "server_pings", (long long)k->ping_rx);
    jw_end(w, '}');
}

static void rj_messages(jw *w, const result *r)
{
    jw_arr(w, "per_message");
    for (long i = 0; i < r->bc_sent; i++) {
        const res_msg *m = &r->bc[i];
        jw_obj_inline(w, NULL);
        jw_int(w, "seq", i);
        jw_num(w, "sent_s", (double)(m->sent_ns - r->t0) / 1e9);
        jw_int(w, "http_status", m->status);
        jw_bool(w, "accepted", m->ok);
        jw_num(w, "api_ms", (double)(m->answer_ns - m->sent_ns) / 1e6);
        jw_int(w, "delivered", (long long)m->delivered);
        jw_num(w, "first_delivery_ms",
               m->first_ns > m->sent_ns ? (double)(m->first_ns - m->sent_ns) / 1e6 : NAN);
        jw_num(w, "last_delivery_ms", result_msg_last_ms(r, i));
        jw_end(w, '}');
    }
    jw_end(w, ']');
}

static void rj_broadcast(jw *w, const result *r)
{
    jw_obj(w, "broadcast");
    jw_bool(w, "ran", r->bc_ran);
    jw_int(w, "rounds", r->o->rounds);
    jw_int(w, "messages_per_round", r->o->messages);
    jw_num(w, "interval_s", r->o->interval_s);
    jw_int(w, "messages_sent", r->bc_sent);
    jw_int(w, "messages_accepted", (long long)r->bc_accepted);
    jw_int(w, "http_errors", (long long)r->bc_http_err);
    jw_int(w, "expected_per_message", r->bc_expected_per);
    jw_int(w, "expected", (long long)r->bc_expected);
    jw_int(w, "delivered", (long long)r->bc_delivered);
    jw_int(w, "lost", (long long)r->bc_lost);
    jw_int(w, "duplicated", (long long)r->bc_dup);
    jw_num(w, "frame_bytes_min", r->bc_frame_min > 0 ? (double)r->bc_frame_min : NAN);
    jw_num(w, "frame_bytes_max", r->bc_frame_max > 0 ? (double)r->bc_frame_max : NAN);
    jw_num(w, "last_delivery_ms_median", r->bc_ran ? result_bc_last_median(r) : NAN);
    jw_num(w, "last_delivery_ms_max", r->bc_ran ? result_bc_last_max(r) : NAN);
    jw_num(w, "phase_s", r->bc_phase_s);
    jw_num(w, "node_cpu_s", r->bc_ran ? r->bc_node_cpu_s : NAN);
    jw_int(w, "rx_bytes", (long long)r->bc_rx_bytes);
    jw_int(w, "compressed_pushes", (long long)r->st.c.bc_z);
    rj_latency(w, "latency_ms", &r->st.bc);
    rj_messages(w, r);
    jw_end(w, '}');
}

static void rj_p2p(jw *w, const result *r)
{
    jw_obj(w, "p2p");
    jw_bool(w, "ran", r->p2p_ran);
    jw_num(w, "target_rate_per_s", r->o->p2p_rate);
    jw_num(w, "rate_per_s", r->p2p_rate);
    jw_num(w, "duration_s", r->p2p_s);
    jw_int(w, "sent", (long long)r->p2p_sent);
    jw_int(w, "accepted", (long long)r->p2p_ok);
    jw_int(w, "send_results_false", (long long)r->p2p_false);
    jw_int(w, "http_errors", (long long)r->p2p_http_err);
    jw_int(w, "delivered", (long long)r->p2p_delivered);
    jw_int(w, "lost", (long long)r->p2p_lost);
    jw_int(w, "duplicated", (long long)r->p2p_dup);
    jw_int(w, "misdelivered", (long long)r->st.c.p2p_wrong);
    rj_latency(w, "latency_ms", &r->st.p2p);
    jw_end(w, '}');
}

static double rj_per(double v, double n) { return n > 0 ? v / n : NAN; }

/* The room scenario: the paced broadcast as the issue reads it, with the
 * floor-stream beside it. */
static void rj_room(jw *w, const result *r)
{
    const floor_stream_result *f = &r->fs;
    double d = (double)r->bc_delivered, fd = (double)f->delivered;
    jw_obj(w, "room");
    jw_bool(w, "ran", r->room_ran);
    jw_int(w, "connections", r->bc_expected_per);
    jw_num(w, "pushes_per_s", r->o->room_rate);
    jw_num(w, "duration_s", r->o->room_s);
    jw_num(w, "pushes_per_s_sent", result_room_push_rate(r));
    jw_int(w, "pushes", r->bc_sent);
    jw_int(w, "pushes_accepted", (long long)r->bc_accepted);
    jw_int(w, "expected", (long long)r->bc_expected);
    jw_int(w, "delivered", (long long)r->bc_delivered);
    jw_num(w, "deliveries_per_s", result_room_delivery_rate(r));
    jw_num(w, "floor_deliveries_per_s", f->ran ? f->deliveries_per_s : NAN);
    jw_int(w, "lost", (long long)r->bc_lost);
    jw_int(w, "duplicated", (long long)r->bc_dup);
    jw_num(w, "frame_bytes", r->bc_frame_max > 0 ? (double)r->bc_frame_max : NAN);
    rj_latency(w, "latency_ms", &r->st.bc);
    jw_num(w, "node_cpu_s", r->bc_node_cpu_s);
    jw_num(w, "client_cpu_s", r->bc_client_cpu_s);
    jw_num(w, "cpu_us_per_delivery", rj_per(r->bc_node_cpu_s * 1e6, d));
    jw_num(w, "client_cpu_us_per_delivery", rj_per(r->bc_client_cpu_s * 1e6, d));
    jw_num(w, "floor_cpu_us_per_delivery", f->ran ? rj_per(f->sender_cpu_s * 1e6, fd) : NAN);
    jw_num(w, "floor_client_cpu_us_per_delivery",
           f->ran ? rj_per(f->receiver_cpu_s * 1e6, fd) : NAN);
    jw_end(w, '}');
}

/* What both floors share: their sockets and processes. */
static void rj_floor_procs(jw *w, long sockets, int senders, int receivers, long accepted,
                           long connected)
{
    jw_int(w, "sockets", sockets);
    jw_int(w, "senders", senders);
    jw_int(w, "receivers", receivers);
    jw_int(w, "accepted", accepted);
    jw_int(w, "connected", connected);
}

static void rj_floor_stream(jw *w, const result *r)
{
    const floor_stream_result *f = &r->fs;
    jw_obj(w, "floor_stream");
    jw_bool(w, "ran", f->ran);
    rj_floor_procs(w, f->sockets, f->senders, f->receivers, f->accepted, f->connected);
    jw_int(w, "bytes_per_message", f->payload);
    jw_num(w, "messages_per_s", f->rate_per_s);
    jw_num(w, "duration_s", f->duration_s);
    jw_int(w, "messages_per_socket", f->messages);
    jw_int(w, "sent", (long long)f->sent);
    jw_int(w, "expected", (long long)f->expected);
    jw_int(w, "delivered", (long long)f->delivered);
    jw_int(w, "lost", (long long)f->lost);
    jw_int(w, "duplicated", (long long)f->duplicated);
    jw_int(w, "send_eagain", (long long)f->send_eagain);
    jw_bool(w, "complete", f->complete);
    jw_num(w, "send_s", f->send_s);
    jw_num(w, "span_s", f->span_s);
    jw_num(w, "deliveries_per_s", f->deliveries_per_s);
    jw_num(w, "sender_cpu_s", f->ran ? f->sender_cpu_s : NAN);
    jw_num(w, "receiver_cpu_s", f->ran ? f->receiver_cpu_s : NAN);
    jw_num(w, "sender_cpu_us_per_delivery",
           f->ran ? rj_per(f->sender_cpu_s * 1e6, (double)f->delivered) : NAN);
    jw_num(w, "receiver_cpu_us_per_delivery",
           f->ran ? rj_per(f->receiver_cpu_s * 1e6, (double)f->delivered) : NAN);
    rj_latency(w, "latency_ms", &f->lat);
    jw_str(w, "error", f->error[0] ? f->error : NULL);
    jw_end(w, '}');
}

static void rj_floor(jw *w, const result *r)
{
    const floor_result *f = &r->fl;
    jw_obj(w, "floor");
    jw_bool(w, "ran", f->ran);
    rj_floor_procs(w, f->sockets, f->senders, f->receivers, f->accepted, f->connected);
    jw_int(w, "senders_requested", f->senders_requested);
    jw_int(w, "bytes_per_socket", f->payload);
    jw_str(w, "bytes_per_socket_from", !f->ran ? NULL : f->payload_measured
           ? "broadcast frames received" : "computed push frame");
    jw_int(w, "bytes", (long long)f->bytes);
    jw_int(w, "expected_bytes", (long long)f->expected_bytes);
    jw_bool(w, "complete", f->complete);
    jw_num(w, "send_ms", f->send_ms);
    jw_num(w, "first_delivery_ms", f->first_delivery_ms);
    jw_num(w, "last_delivery_ms_median", f->last_delivery_ms_median);
    jw_num(w, "last_delivery_ms_best", f->last_delivery_ms);
    jw_num(w, "last_delivery_ms", f->last_delivery_ms);
    jw_int(w, "trials", f->trials);
    jw_int(w, "complete_trials", f->ok_trials);
    jw_arr(w, "trials_last_delivery_ms");
    for (int i = 0; i < f->trials; i++)
        jw_num(w, NULL, f->trial_last_ms[i]);
    jw_end(w, ']');
    jw_arr(w, "trials_send_ms");
    for (int i = 0; i < f->trials; i++)
        jw_num(w, NULL, f->trial_send_ms[i]);
    jw_end(w, ']');
    jw_str(w, "error", f->error[0] ? f->error : NULL);
    jw_end(w, '}');
}

static void rj_sample(jw *w, const mem_sample *m)
{
    jw_obj_inline(w, NULL);
    if (m->step)
        jw_str(w, "step", m->step);
    jw_num(w, "t_s", m->t);
    jw_int(w, "connections", m->conns);
    jw_num(w, "server_rss_bytes", m->rss_ok ? (double)m->rss : NAN);
    jw_int(w, "client_rss_bytes", (long long)m->client_rss);
    jw_int(w, "host_used_bytes", (long long)m->used);
    jw_int(w, "slab_bytes", (long long)m->slab);
    jw_int(w, "tcp_mem_pages", (long long)m->tcp_pages);
    jw_int(w, "tcp_inuse", (long long)m->tcp_inuse);
    jw_end(w, '}');
}

static void rj_memory(jw *w, const result *r)
{
    jw_arr(w, "memory");
    for (int i = 0; i < r->nsteps; i++)
        rj_sample(w, &r->steps[i]);
    jw_end(w, ']');
    jw_arr(w, "timeline");
    for (int i = 0; i < r->ntl; i++)
        rj_sample(w, &r->tl[i]);
    jw_end(w, ']');
}

static void rj_config(jw *w, const result *r)
{
    const bench_opts *o = r->o;
    jw_obj(w, "config");
    jw_str(w, "ws_url", o->ws_text[0]);
    jw_arr(w, "ws_urls");
    for (int i = 0; i < o->nws; i++)
        jw_str(w, NULL, o->ws_text[i]);
    jw_end(w, ']');
    jw_str(w, "api_url", o->api_text);
    jw_int(w, "server_pids", o->npids);
    jw_int(w, "conns", o->conns);
    jw_int(w, "procs", o->procs);
    jw_num(w, "connect_rate", o->connect_rate);
    jw_int(w, "inflight", o->inflight);
    jw_num(w, "timeout_s", o->timeout_s);
    jw_int(w, "app_id", o->app_id);
    jw_num(w, "hold_s", o->hold_s);
    jw_num(w, "heartbeat_s", o->heartbeat_s);
    jw_int(w, "rounds", o->rounds);
    jw_int(w, "messages", o->messages);
    jw_num(w, "interval_s", o->interval_s);
    jw_num(w, "p2p_rate", o->p2p_rate);
    jw_num(w, "p2p_s", o->p2p_s);
    jw_num(w, "node_workers", o->node_workers > 0 ? o->node_workers : NAN);
    jw_int(w, "floor_senders", o->floor_senders);
    jw_int(w, "floor_trials", o->floor_trials);
    jw_bool(w, "bind_sources", o->bind_sources);
    jw_str(w, "tag", o->tag);
    jw_int(w, "pad", o->pad);
    jw_bool(w, "deflate", o->deflate);
    jw_bool(w, "offer_deflate", o->offer_deflate);
    jw_bool(w, "second_pass", o->second);
    jw_bool(w, "interleave", o->interleave);
    jw_end(w, '}');
    jw_obj(w, "machine");
    jw_int(w, "cpus", r->cpus);
    jw_int(w, "mem_total_bytes", (long long)r->mem_total);
    jw_str(w, "kernel", r->kernel);
    jw_end(w, '}');
}

static void rj_scenarios(jw *w, const result *r)
{
    jw_arr(w, "scenarios");
    for (unsigned b = 1; b <= SC_FSTREAM; b <<= 1)
        if (r->o->scenarios & b)
            jw_str(w, NULL, opts_scenario_name(b));
    jw_end(w, ']');
}

static double rj_ratio(double a, double b)
{
    return isnan(a) || isnan(b) || !(b > 0) ? NAN : a / b;
}

static double rj_per_delivery(const result *r, double total)
{
    return r->bc_delivered ? total / (double)r->bc_delivered : NAN;
}

/* One of two passes, in the figures the comparison is about; fl: the
 * run's floor, which both are set against. */
static void rj_pass(jw *w, const char *key, const result *r, const floor_result *fl)
{
    const counters *k = &r->st.c;
    jw_obj(w, key);
    jw_str(w, "label", r->o->label);
    jw_str(w, "ws_url", r->o->ws_text[0]);
    jw_bool(w, "clients_offer_deflate", r->o->offer_deflate);
    jw_arr(w, "failures");
    for (int i = 0; i < r->nfailures; i++)
        jw_str(w, NULL, r->failures[i]);
    jw_end(w, ']');
    jw_int(w, "connections", r->logged_in);
    jw_int(w, "failed", (long long)k->failed);
    jw_int(w, "dropped", (long long)k->dropped);
    jw_num(w, "server_rss_bytes_per_conn", result_server_bytes_per_conn(r));
    jw_num(w, "kernel_bytes_per_conn", result_kernel_bytes_per_conn(r, 0));
    jw_num(w, "frame_bytes", r->bc_frame_max > 0 ? (double)r->bc_frame_max : NAN);
    jw_int(w, "compressed_pushes", (long long)k->bc_z);
    jw_int(w, "delivered", (long long)r->bc_delivered);
    jw_int(w, "expected", (long long)r->bc_expected);
    jw_int(w, "lost", (long long)r->bc_lost);
    jw_int(w, "duplicated", (long long)r->bc_dup);
    jw_int(w, "broadcast_rx_bytes", (long long)r->bc_rx_bytes);
    jw_num(w, "broadcast_rx_bytes_per_delivery", rj_per_delivery(r, (double)r->bc_rx_bytes));
    jw_num(w, "last_delivery_ms_median", r->bc_ran ? result_bc_last_median(r) : NAN);
    jw_num(w, "last_delivery_ms_best", r->bc_ran ? result_bc_last_min(r) : NAN);
    jw_num(w, "last_delivery_ms_max", r->bc_ran ? result_bc_last_max(r) : NAN);
    jw_arr(w, "last_delivery_ms_per_message");
    for (long i = 0; i < r->bc_sent; i++)
        jw_num(w, NULL, result_msg_last_ms(r, i));
    jw_end(w, ']');
    if (fl->ran) {
        jw_num(w, "broadcast_ratio_median", result_ratio_median_to(r, fl));
        jw_num(w, "broadcast_ratio_best", result_ratio_best_to(r, fl));
    }
    jw_num(w, "node_cpu_s", r->bc_ran ? r->bc_node_cpu_s : NAN);
    jw_num(w, "node_cpu_us_per_delivery", rj_per_delivery(r, r->bc_node_cpu_s * 1e6));
    rj_latency(w, "latency_ms", &r->st.bc);
    jw_end(w, '}');
}

/* The second pass beside the first: "deflate" (off, on, on_vs_off) with
 * --deflate, else "passes" (first, second, second_vs_first). */
static void rj_passes(jw *w, const result *r)
{
    const result *z = r->second;
    const floor_result *fl = &r->fl;
    int d = r->o->deflate;
    if (!z)
        return;
    jw_obj(w, d ? "deflate" : "passes");
    jw_bool(w, "interleaved", r->o->interleave);
    if (fl->ran) {                        /* one floor, set against both passes */
        jw_num(w, "floor_ms_median", fl->last_delivery_ms_median);
        jw_num(w, "floor_ms_best", fl->last_delivery_ms);
        jw_num(w, "floor_frame_bytes", (double)fl->payload);
    }
    rj_pass(w, d ? "off" : "first", r, fl);
    rj_pass(w, d ? "on" : "second", z, fl);
    jw_obj(w, d ? "on_vs_off" : "second_vs_first");
    jw_num(w, "frame_bytes", rj_ratio((double)z->bc_frame_max, (double)r->bc_frame_max));
    jw_num(w, "broadcast_rx_bytes", rj_ratio((double)z->bc_rx_bytes, (double)r->bc_rx_bytes));
    jw_num(w, "last_delivery_ms_median", rj_ratio(result_bc_last_median(z), result_bc_last_median(r)));
    jw_num(w, "node_cpu_s", rj_ratio(z->bc_node_cpu_s, r->bc_node_cpu_s));
    jw_num(w, "server_rss_bytes_per_conn", rj_ratio(result_server_bytes_per_conn(z),
                                                    result_server_bytes_per_conn(r)));
    if (fl->ran) {
        double q = rj_ratio(result_ratio_median_to(z, fl), result_ratio_median_to(r, fl));
        jw_num(w, "broadcast_ratio_median", q);
        jw_num(w, "broadcast_ratio_median_change", q - 1);
        jw_num(w, "broadcast_ratio_best", rj_ratio(result_ratio_best_to(z, fl),
                                                   result_ratio_best_to(r, fl)));
    }
    jw_end(w, '}');
    jw_end(w, '}');
}

int report_json(const result *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    jw w;
    jw_init(&w, f);
    jw_obj(&w, NULL);
    jw_str(&w, "tool", "imgate-bench");
    rj_scenarios(&w, r);
    jw_str(&w, "error", r->error[0] ? r->error : NULL);
    jw_arr(&w, "failures");
    for (int i = 0; i < r->nfailures; i++)
        jw_str(&w, NULL, r->failures[i]);
    jw_end(&w, ']');
    jw_num(&w, "duration_s", r->total_s);
    rj_headline(&w, r);
    rj_passes(&w, r);
    rj_config(&w, r);
    rj_connect(&w, r);
    rj_hold(&w, r);
    rj_broadcast(&w, r);
    rj_p2p(&w, r);
    rj_floor(&w, r);
    rj_room(&w, r);
    rj_floor_stream(&w, r);
    jw_obj_inline(&w, "pushes_other");
    jw_int(&w, "enter", (long long)r->st.c.enter_rx);
    jw_int(&w, "exit", (long long)r->st.c.exit_rx);
    jw_int(&w, "other", (long long)r->st.c.other_rx);
    jw_int(&w, "unparsable", (long long)r->st.c.msg_bad);
    jw_end(&w, '}');
    rj_memory(&w, r);
    jw_end(&w, '}');
    return fclose(f) == 0 ? 0 : -1;
}
