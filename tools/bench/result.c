/* result.c — figures derived from a run's raw measurements. */
#include "result.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const mem_sample *result_step(const result *r, const char *name)
{
    for (int i = 0; i < r->nsteps; i++)
        if (r->steps[i].step && strcmp(r->steps[i].step, name) == 0)
            return &r->steps[i];
    return NULL;
}

enum { RF_RSS, RF_USED, RF_KMEM };

static double result_value(const result *r, const mem_sample *m, int field)
{
    switch (field) {
    case RF_RSS: return (double)m->rss;
    case RF_USED: return (double)m->used;
    default: return (double)m->slab + (double)m->tcp_pages * (double)r->page_size;
    }
}

/* Growth of a field from "before" to "connected", per logged-in connection. */
static double result_delta(const result *r, int field)
{
    const mem_sample *a = result_step(r, "before"), *b = result_step(r, "connected");
    if (!a || !b || r->logged_in <= 0)
        return NAN;
    return (result_value(r, b, field) - result_value(r, a, field)) / (double)r->logged_in;
}

double result_server_bytes_per_conn(const result *r)
{
    const mem_sample *a = result_step(r, "before"), *b = result_step(r, "connected");
    if (!a || !b || !a->rss_ok || !b->rss_ok)
        return NAN;
    return result_delta(r, RF_RSS);
}

/* Kernel memory (Slab + TCP buffer pages) per connection. Client and server
 * are on this machine, so every connection is two sockets: one end is half
 * the growth. */
double result_kernel_bytes_per_conn(const result *r, int both_ends)
{
    double d = result_delta(r, RF_KMEM);
    return both_ends ? d : d / 2;
}

double result_host_bytes_per_conn(const result *r)
{
    return result_delta(r, RF_USED);
}

/* Growth of the workers' own RSS from their start to "connected", per
 * logged-in connection (the per-process constant is left out). */
double result_client_bytes_per_conn(const result *r)
{
    const mem_sample *b = result_step(r, "connected");
    if (!b || r->logged_in <= 0 || !b->client_rss || !b->client_base)
        return NAN;
    return ((double)b->client_rss - (double)b->client_base) / (double)r->logged_in;
}

double result_msg_last_ms(const result *r, long i)
{
    const res_msg *m = &r->bc[i];
    if (!m->ok || !m->delivered || m->last_ns < m->sent_ns)
        return NAN;
    return (double)(m->last_ns - m->sent_ns) / 1e6;
}

static int result_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double result_bc_last_median(const result *r)
{
    double *v = malloc(sizeof(double) * (size_t)(r->bc_sent ? r->bc_sent : 1));
    long n = 0;
    if (!v)
        return NAN;
    for (long i = 0; i < r->bc_sent; i++) {
        double x = result_msg_last_ms(r, i);
        if (!isnan(x))
            v[n++] = x;
    }
    qsort(v, (size_t)n, sizeof(double), result_cmp);
    double m = n == 0 ? NAN : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    free(v);
    return m;
}

/* The extreme (sign 1: max, -1: min) of the time to last delivery. */
static double result_bc_last_extreme(const result *r, int sign)
{
    double m = NAN;
    for (long i = 0; i < r->bc_sent; i++) {
        double x = result_msg_last_ms(r, i);
        if (!isnan(x) && (isnan(m) || (x - m) * sign > 0))
            m = x;
    }
    return m;
}

double result_bc_last_max(const result *r) { return result_bc_last_extreme(r, 1); }

double result_bc_last_min(const result *r) { return result_bc_last_extreme(r, -1); }

static double result_ratio(double a, double b)
{
    return isnan(a) || isnan(b) || !(b > 0) ? NAN : a / b;
}

double result_ratio_median_to(const result *r, const floor_result *fl)
{
    if (!r->bc_ran || !fl->ran)
        return NAN;
    return result_ratio(result_bc_last_median(r), fl->last_delivery_ms_median);
}

double result_ratio_best_to(const result *r, const floor_result *fl)
{
    if (!r->bc_ran || !fl->ran)
        return NAN;
    return result_ratio(result_bc_last_min(r), fl->last_delivery_ms);
}

double result_ratio_median(const result *r) { return result_ratio_median_to(r, &r->fl); }

double result_ratio_best(const result *r) { return result_ratio_best_to(r, &r->fl); }

__attribute__((format(printf, 2, 3)))
static void result_fail(result *r, const char *fmt, ...)
{
    if (r->nfailures >= RES_MAX_FAILURES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failures[r->nfailures++], sizeof(r->failures[0]), fmt, ap);
    va_end(ap);
}

static unsigned long long result_u(uint64_t v) { return (unsigned long long)v; }

static void result_verdict_ws(result *r)
{
    const counters *k = &r->st.c;
    if ((r->o->scenarios & SC_CONNECT) && r->logged_in < r->o->conns)
        result_fail(r, "%ld of %ld connections did not log in (failed set-up)",
                    r->o->conns - r->logged_in, r->o->conns);
    if (k->dropped)
        result_fail(r, "%llu logged-in connections dropped", result_u(k->dropped));
    if (k->msg_bad)
        result_fail(r, "%llu pushes of this run could not be parsed", result_u(k->msg_bad));
    if (r->bc_http_err)
        result_fail(r, "%llu of %ld broadcast API calls failed", result_u(r->bc_http_err),
                    r->bc_sent);
    if (r->bc_lost)
        result_fail(r, "%llu broadcast deliveries lost", result_u(r->bc_lost));
    if (r->bc_dup)
        result_fail(r, "%llu broadcast deliveries duplicated", result_u(r->bc_dup));
    if (r->p2p_lost)
        result_fail(r, "%llu p2p messages lost", result_u(r->p2p_lost));
    if (r->p2p_dup)
        result_fail(r, "%llu p2p messages duplicated", result_u(r->p2p_dup));
    if (k->p2p_wrong)
        result_fail(r, "%llu p2p messages misdelivered", result_u(k->p2p_wrong));
}

static void result_verdict_floor(result *r)
{
    const floor_result *f = &r->fl;
    if (!f->ran)
        return;
    if (f->error[0])
        result_fail(r, "floor: %s", f->error);
    else if (!f->complete)
        result_fail(r, "floor incomplete: %ld of %ld socket pairs, %d of %d trials delivered "
                    "every byte", f->connected < f->accepted ? f->connected : f->accepted,
                    f->sockets, f->ok_trials, r->o->floor_trials);
}

static void result_verdict_fstream(result *r)
{
    const floor_stream_result *f = &r->fs;
    if (!f->ran)
        return;
    if (f->error[0])
        result_fail(r, "floor-stream: %s", f->error);
    if (f->lost)
        result_fail(r, "floor-stream: %llu messages lost", result_u(f->lost));
    if (f->duplicated)
        result_fail(r, "floor-stream: %llu messages duplicated", result_u(f->duplicated));
    if (!f->error[0] && !f->complete)
        result_fail(r, "floor-stream incomplete: %ld of %ld socket pairs, %llu of %llu "
                    "messages", f->connected < f->accepted ? f->connected : f->accepted,
                    f->sockets, result_u(f->delivered), result_u(f->expected));
}

double result_room_push_rate(const result *r)
{
    if (!r->room_ran || r->bc_sent < 2)
        return NAN;
    uint64_t a = r->bc[0].sent_ns, b = r->bc[r->bc_sent - 1].sent_ns;
    return b > a ? (double)(r->bc_sent - 1) / ((double)(b - a) / 1e9) : NAN;
}

double result_room_delivery_rate(const result *r)
{
    if (!r->room_ran || r->bc_sent < 1)
        return NAN;
    uint64_t a = r->bc[0].sent_ns, b = 0;
    for (long i = 0; i < r->bc_sent; i++)
        if (r->bc[i].last_ns > b)
            b = r->bc[i].last_ns;
    return b > a ? (double)r->bc_delivered / ((double)(b - a) / 1e9) : NAN;
}

static void result_join(result *r)
{
    size_t n = 0;
    r->error[0] = 0;
    for (int i = 0; i < r->nfailures && n + 1 < sizeof(r->error); i++) {
        int w = snprintf(r->error + n, sizeof(r->error) - n, "%s%s", i ? "; " : "",
                         r->failures[i]);
        n += w > 0 ? (size_t)w : 0;
    }
}

int result_verdict(result *r)
{
    r->nfailures = 0;
    if (r->error[0])                                /* why it stopped early, first */
        result_fail(r, "%s", r->error);
    result_verdict_ws(r);
    result_verdict_floor(r);
    result_verdict_fstream(r);
    result_join(r);
    return r->nfailures;
}

void result_free(result *r)
{
    free(r->bc);
    free(r->tl);
    r->bc = NULL;
    r->tl = NULL;
}
