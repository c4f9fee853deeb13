/* stats.c — worker counters: small maps and merging. */
#include "stats.h"

#include <string.h>

void kv_add(kv *m, int32_t key, uint32_t n)
{
    for (int i = 0; i < KV_MAX; i++) {
        if (m[i].n && m[i].key == key) {
            m[i].n += n;
            return;
        }
        if (!m[i].n) {
            m[i].key = key;
            m[i].n = n;
            return;
        }
    }
    m[KV_MAX - 1].n += n;     /* full: the last key takes the rest */
}

void counters_init(counters *c)
{
    memset(c, 0, sizeof(*c));
    c->t_first = UINT64_MAX;
}

void cstats_init(cstats *s)
{
    counters_init(&s->c);
    hist_init(&s->hs);
    hist_init(&s->login);
    hist_init(&s->hb);
    hist_init(&s->bc);
    hist_init(&s->p2p);
}

static void kv_merge(kv *dst, const kv *src)
{
    for (int i = 0; i < KV_MAX; i++)
        if (src[i].n)
            kv_add(dst, src[i].key, src[i].n);
}

#define STATS_SUM(f) (d->f += s->f)

void counters_merge(counters *d, const counters *s)
{
    STATS_SUM(attempted); STATS_SUM(tcp_ok); STATS_SUM(upgraded); STATS_SUM(logged_in);
    STATS_SUM(alive); STATS_SUM(failed); STATS_SUM(dropped);
    STATS_SUM(f_connect); STATS_SUM(f_status); STATS_SUM(f_accept); STATS_SUM(f_login);
    STATS_SUM(f_to_connect); STATS_SUM(f_to_handshake); STATS_SUM(f_to_login);
    STATS_SUM(f_closed); STATS_SUM(f_protocol); STATS_SUM(f_ext);
    STATS_SUM(d_eof); STATS_SUM(d_error); STATS_SUM(d_close); STATS_SUM(d_protocol);
    STATS_SUM(hb_sent); STATS_SUM(hb_ok); STATS_SUM(hb_err);
    STATS_SUM(bc_rx); STATS_SUM(bc_dup); STATS_SUM(p2p_rx);
    STATS_SUM(p2p_dup); STATS_SUM(p2p_wrong); STATS_SUM(msg_bad);
    STATS_SUM(enter_rx); STATS_SUM(exit_rx); STATS_SUM(other_rx); STATS_SUM(ping_rx);
    STATS_SUM(write_err); STATS_SUM(rx_bytes); STATS_SUM(rss_start);
    STATS_SUM(z_rx); STATS_SUM(bc_z); STATS_SUM(rx_ring);
    kv_merge(d->connect_errs, s->connect_errs);
    kv_merge(d->statuses, s->statuses);
    kv_merge(d->login_codes, s->login_codes);
    kv_merge(d->close_codes, s->close_codes);
    if (s->t_first < d->t_first)
        d->t_first = s->t_first;
    if (s->t_last_login > d->t_last_login)
        d->t_last_login = s->t_last_login;
    if (s->bc_frame_min && (!d->bc_frame_min || s->bc_frame_min < d->bc_frame_min))
        d->bc_frame_min = s->bc_frame_min;
    if (s->bc_frame_max > d->bc_frame_max)
        d->bc_frame_max = s->bc_frame_max;
}

void cstats_merge(cstats *d, const cstats *s)
{
    counters_merge(&d->c, &s->c);
    hist_merge(&d->hs, &s->hs);
    hist_merge(&d->login, &s->login);
    hist_merge(&d->hb, &s->hb);
    hist_merge(&d->bc, &s->bc);
    hist_merge(&d->p2p, &s->p2p);
}
