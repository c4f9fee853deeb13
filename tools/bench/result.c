/* result.c — figures derived from a run's raw measurements. */
#include "result.h"

#include <math.h>
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

double result_bc_last_max(const result *r)
{
    double m = NAN;
    for (long i = 0; i < r->bc_sent; i++) {
        double x = result_msg_last_ms(r, i);
        if (!isnan(x) && (isnan(m) || x > m))
            m = x;
    }
    return m;
}

void result_free(result *r)
{
    free(r->bc);
    free(r->tl);
    r->bc = NULL;
    r->tl = NULL;
}
