/* coord.c — the parent of the WebSocket scenarios. Synchronous: between
 * API calls it polls the workers' pipes (coord_pump), which also samples the
 * timeline and redraws the progress line. */
#include "coord.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "httpc.h"
#include "jscan.h"
#include "proc.h"
#include "worker.h"

#define COORD_TL_MS 500
#define COORD_LINE_MS 250
#define COORD_HTTP_TIMEOUT_MS 60000    /* a cluster-wide broadcast to 1 M answers in ~20 s */

typedef struct coord {
    const bench_opts *o;
    result *r;
    proc ps[OPTS_MAX_PROCS];
    int n;
    long first[OPTS_MAX_PROCS], count[OPTS_MAX_PROCS];
    counters prog[OPTS_MAX_PROCS];
    int have_prog[OPTS_MAX_PROCS], got_final[OPTS_MAX_PROCS], got_end[OPTS_MAX_PROCS];
    uint8_t *bits[OPTS_MAX_PROCS];
    int wpids[OPTS_MAX_PROCS];
    uint32_t *bc_cnt, *p2p_cnt;
    uint64_t *bc_first, *bc_last;
    long nb, np;
    httpc http;
    int tty;
    const char *phase;
    uint64_t next_tl, next_line;
    struct coord *peer;              /* --interleave: the other pass, pumped along */
    uint64_t bc_base_rx, bc_base_bytes;      /* the broadcast phase in progress */
    double bc_cpu0, bc_ccpu0;
    int bc_cpu_ok, bc_ccpu_ok;
} coord;

static volatile sig_atomic_t g_coord_stop;
static void coord_agg(const struct coord *c, counters *out);
static cstats g_coord_tmp;               /* a worker's final stats, unpacked */

void coord_interrupt(void) { g_coord_stop = 1; }

int coord_interrupted(void) { return g_coord_stop != 0; }

/* Whether a message phase can run: some connection must still be there. */
static int coord_any_alive(coord *c, const char *phase)
{
    counters a;
    coord_agg(c, &a);
    if (a.alive > 0)
        return 1;
    snprintf(c->r->error, sizeof(c->r->error),
             "no logged-in connection left at the start of %s", phase);
    return 0;
}

static double coord_elapsed(const coord *c)
{
    return (double)(clock_ns() - c->r->t0) / 1e9;
}

/* ---------- worker records ---------- */

static void coord_arrays(coord *c, uint32_t t, const uint8_t *p, uint32_t n)
{
    if (t == IPC_BC_CNT && n == c->nb * 4) {
        for (long i = 0; i < c->nb; i++) {
            uint32_t v;
            memcpy(&v, p + 4 * i, 4);
            c->bc_cnt[i] += v;
        }
    } else if ((t == IPC_BC_FIRST || t == IPC_BC_LAST) && n == c->nb * 8) {
        for (long i = 0; i < c->nb; i++) {
            uint64_t v;
            memcpy(&v, p + 8 * i, 8);
            if (t == IPC_BC_FIRST && v && (!c->bc_first[i] || v < c->bc_first[i]))
                c->bc_first[i] = v;
            if (t == IPC_BC_LAST && v > c->bc_last[i])
                c->bc_last[i] = v;
        }
    } else if (t == IPC_P2P_CNT && n == c->np) {
        for (long i = 0; i < c->np; i++)
            c->p2p_cnt[i] += p[i];
    }
}

static void coord_record(coord *c, int i, uint32_t t, const uint8_t *p, uint32_t n)
{
    if (t == IPC_PROGRESS && n == sizeof(counters)) {
        memcpy(&c->prog[i], p, n);
        c->have_prog[i] = 1;
    } else if (t == IPC_READY && n == (uint32_t)((c->count[i] + 7) / 8)) {
        free(c->bits[i]);
        c->bits[i] = malloc(n ? n : 1);
        if (c->bits[i])
            memcpy(c->bits[i], p, n);
    } else if (t == IPC_FINAL && n == sizeof(cstats) && !c->got_final[i]) {
        memcpy(&g_coord_tmp, p, n);
        cstats_merge(&c->r->st, &g_coord_tmp);
        c->got_final[i] = 1;
        c->r->workers_reported++;
    } else if (t == IPC_END) {
        c->got_end[i] = 1;
    } else {
        coord_arrays(c, t, p, n);
    }
}

static void coord_agg(const coord *c, counters *out)
{
    counters_init(out);
    for (int i = 0; i < c->n; i++)
        if (c->have_prog[i])
            counters_merge(out, &c->prog[i]);
}

/* ---------- memory and progress ---------- */

static void coord_sample(coord *c, mem_sample *m, const char *step)
{
    counters a;
    int ok = 1;
    coord_agg(c, &a);
    memset(m, 0, sizeof(*m));
    mem_read(c->o->pids, c->o->npids, m);
    int all = c->n > 0;
    for (int i = 0; i < c->n; i++)
        all = all && c->have_prog[i];
    if (all) {                             /* every worker's baseline is known */
        m->client_rss = mem_rss(c->wpids, c->n, &ok);
        m->client_base = a.rss_start;
    }
    m->conns = (long)a.alive;
    m->t = coord_elapsed(c);
    m->step = step;
}

static void coord_timeline(coord *c)
{
    result *r = c->r;
    if (r->ntl == RES_MAX_TIMELINE) {       /* full: keep every other point */
        for (int i = 0; i < RES_MAX_TIMELINE / 2; i++)
            r->tl[i] = r->tl[2 * i];
        r->ntl = RES_MAX_TIMELINE / 2;
        r->tl_every *= 2;
    }
    coord_sample(c, &r->tl[r->ntl++], NULL);
}

static void coord_line(coord *c)
{
    counters a;
    coord_agg(c, &a);
    const mem_sample *m = c->r->ntl ? &c->r->tl[c->r->ntl - 1] : NULL;
    fprintf(stderr, "\r\033[K%-9s %6.1fs  logged in %lu/%ld  failed %lu  dropped %lu  "
            "broadcast rx %lu  p2p rx %lu  server %.1f MiB",
            c->phase, coord_elapsed(c), (unsigned long)a.alive, c->o->conns,
            (unsigned long)a.failed, (unsigned long)a.dropped, (unsigned long)a.bc_rx,
            (unsigned long)a.p2p_rx, m ? (double)m->rss / 1048576.0 : 0.0);
}

static void coord_pump_one(coord *c, int timeout_ms, int line)
{
    proc_poll(c->ps, c->n, timeout_ms);
    for (int i = 0; i < c->n; i++) {
        uint32_t t, n;
        const uint8_t *p;
        while (ipc_next(&c->ps[i].rd, &t, &p, &n))
            coord_record(c, i, t, p, n);
    }
    uint64_t now = clock_ns();
    if (now >= c->next_tl) {
        coord_timeline(c);
        c->next_tl = now + (uint64_t)(c->r->tl_every * 1e9);
    }
    if (line && c->tty && now >= c->next_line) {
        coord_line(c);
        c->next_line = now + COORD_LINE_MS * 1000000ull;
    }
}

/* Reads the workers' pipes (waiting up to timeout_ms), and the other
 * pass's when both run at once, so that neither's workers stall. */
static void coord_pump(coord *c, int timeout_ms)
{
    coord_pump_one(c, timeout_ms, 1);
    if (c->peer)
        coord_pump_one(c->peer, 0, 0);
}

/* httpc's wait hook: while an API call is awaited (a cluster-wide broadcast
 * answers only once every node has written it), the workers' pipes are
 * still read — a worker whose pipe is full would stop its loop — and the
 * timeline is still sampled. Ctrl-C abandons the call. */
static int coord_http_wait(void *ud)
{
    coord_pump(ud, 0);
    return g_coord_stop != 0;
}

/* Pumps until `until` (ns) or until the run is interrupted. */
static void coord_sleep_until(coord *c, uint64_t until)
{
    for (uint64_t now; (now = clock_ns()) < until && !g_coord_stop;) {
        uint64_t left_ms = (until - now) / 1000000ull;
        coord_pump(c, left_ms > 100 ? 100 : (int)left_ms);
    }
}

static void coord_add_step(result *r, const mem_sample *m)
{
    if (r->nsteps < RES_MAX_STEPS)
        r->steps[r->nsteps++] = *m;
}

/* After --settle, a memory sample of each pass under `name`. */
static void coord_steps(coord **cs, int n, const char *name)
{
    mem_sample m;
    coord_sleep_until(cs[0], clock_ns() + (uint64_t)(cs[0]->o->settle_s * 1e9));
    for (int i = 0; i < n; i++) {
        coord_sample(cs[i], &m, name);
        coord_add_step(cs[i]->r, &m);
    }
}

static void coord_step(coord *c, const char *name)
{
    coord_steps(&c, 1, name);
}

void coord_step_now(result *r, const char *name, long conns)
{
    mem_sample m;
    memset(&m, 0, sizeof(m));
    mem_read(r->o->pids, r->o->npids, &m);
    m.conns = conns;
    m.t = (double)(clock_ns() - r->t0) / 1e9;
    m.step = name;
    coord_add_step(r, &m);
}

/* ---------- workers ---------- */

typedef struct coord_warg {
    const bench_opts *o;
    int index;
    long first, count;
} coord_warg;

static int coord_worker_entry(void *argp, int cmd, int out)
{
    coord_warg *a = argp;
    return worker_main(a->o, a->index, a->first, a->count, cmd, out);
}

/* The processes a new worker must close the pipes of: its siblings, and
 * the other pass's workers when both run at once. */
static const proc *coord_others(const coord *c, int i, int *n)
{
    static proc all[2 * OPTS_MAX_PROCS];
    *n = i;
    if (!c->peer || !c->peer->n)
        return c->ps;
    memcpy(all, c->ps, sizeof(proc) * (size_t)i);
    memcpy(all + i, c->peer->ps, sizeof(proc) * (size_t)c->peer->n);
    *n = i + c->peer->n;
    return all;
}

static int coord_spawn(coord *c)
{
    const bench_opts *o = c->o;
    for (int i = 0; i < o->procs; i++) {
        coord_warg a = { o, i, o->conns * i / o->procs, 0 };
        a.count = o->conns * (i + 1) / o->procs - a.first;
        c->first[i] = a.first;
        c->count[i] = a.count;
        int no;
        const proc *others = coord_others(c, i, &no);
        if (proc_spawn(&c->ps[i], others, no, coord_worker_entry, &a) != 0)
            return -1;
        c->wpids[i] = (int)c->ps[i].pid;
        c->n = i + 1;
    }
    return 0;
}

static int coord_all_set_up(const coord *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->ps[i].ended)
            continue;
        if (!c->have_prog[i] || !c->prog[i].connect_done || !c->bits[i])
            return 0;
    }
    return 1;
}

static void coord_stop_workers(coord *c)
{
    c->phase = "stopping";
    for (int i = 0; i < c->n; i++)
        proc_command(&c->ps[i], 'S');
    uint64_t until = clock_ns() + 30 * 1000000000ull;
    for (;;) {
        int left = 0;
        for (int i = 0; i < c->n; i++)
            left += !c->got_end[i] && !c->ps[i].ended;
        if (!left || clock_ns() > until)
            break;
        coord_pump(c, 100);
    }
    coord_pump(c, 0);
    proc_reap(c->ps, c->n, 5);
}

/* ---------- phases ---------- */

static int coord_connect(coord *c)
{
    const bench_opts *o = c->o;
    result *r = c->r;
    c->phase = "connect";
    if (coord_spawn(c) != 0) {
        snprintf(r->error, sizeof(r->error), "fork of worker %d failed", c->n);
        return -1;
    }
    double limit = (o->connect_rate > 0 ? (double)o->conns / o->connect_rate : 0) +
                   2 * o->timeout_s + (double)o->conns / 2000.0 + 30;
    uint64_t until = clock_ns() + (uint64_t)(limit * 1e9);
    while (!coord_all_set_up(c) && clock_ns() < until && !g_coord_stop)
        coord_pump(c, 50);
    counters a;
    coord_agg(c, &a);
    r->logged_in = (long)a.alive;
    if (a.t_last_login > a.t_first && a.t_first != UINT64_MAX) {
        r->connect_s = (double)(a.t_last_login - a.t_first) / 1e9;
        r->connect_rate = (double)a.logged_in / r->connect_s;
    }
    if (!coord_all_set_up(c)) {
        snprintf(r->error, sizeof(r->error), "set-up did not finish within %.0f s", limit);
        return -1;
    }
    return 0;
}

/* The passes in cs hold their connections idle at the same time. */
static void coord_hold(coord **cs, int n)
{
    counters a[2], b;
    for (int i = 0; i < n; i++) {
        cs[i]->phase = "hold";
        coord_agg(cs[i], &a[i]);
    }
    uint64_t t = clock_ns();
    coord_sleep_until(cs[0], t + (uint64_t)(cs[0]->o->hold_s * 1e9));
    coord_pump(cs[0], 250);               /* the last progress of the workers */
    for (int i = 0; i < n; i++) {
        result *r = cs[i]->r;
        coord_agg(cs[i], &b);
        r->hold_ran = 1;
        r->hold_s = (double)(clock_ns() - t) / 1e9;
        r->hold_drops = b.dropped - a[i].dropped;
        r->hold_hb_sent = b.hb_sent - a[i].hb_sent;
        r->hold_hb_ok = b.hb_ok - a[i].hb_ok;
    }
}

/* Posts one API message; returns 1 if the API accepted it (code 200),
 * with *flag the boolean sendResults when asked for. */
static int coord_post(httpc *h, const char *path, const char *body, int n, int *status,
                      int *flag)
{
    const char *resp = NULL;
    size_t rl = 0;
    long code = -1;
    int st = 0, e = httpc_post(h, path, body, (size_t)n, COORD_HTTP_TIMEOUT_MS, &st, &resp, &rl);
    if (e == 0)
        jscan_int(resp, rl, "code", &code);
    if (flag && (e != 0 || jscan_bool(resp, rl, "sendResults", flag) != 0))
        *flag = -1;
    *status = e == 0 ? st : e;
    return e == 0 && st == 200 && code == 200;
}

/* The msgID and the message text of broadcast seq, fixed-width so that
 * every push frame of the run has the same size. */
static void coord_bc_text(const bench_opts *o, long seq, uint64_t ts, char *id, size_t idcap,
                          char *msg, size_t msgcap)
{
    snprintf(id, idcap, "%s-b%05ld", o->tag, seq);
    snprintf(msg, msgcap, "%s.B.%05ld.%016llu", o->tag, seq, (unsigned long long)ts);
}

static void coord_bc_sender(const bench_opts *o, char *uid, size_t cap)
{
    snprintf(uid, cap, "bs%s", o->tag);
}

/* The frame a node with delivery logging on (its default, SPEC 7.1) pushes
 * for this run's broadcast: the entry id of a room history is 13 digits of
 * milliseconds and, within one, a small sequence. */
size_t coord_bc_frame_bytes(const bench_opts *o)
{
    char id[32], msg[64], uid[16], payload[400];
    coord_bc_text(o, 0, 0, id, sizeof(id), msg, sizeof(msg));
    coord_bc_sender(o, uid, sizeof(uid));
    int n = snprintf(payload, sizeof(payload),
                     "{\"seq\":\"%s\",\"cmd\":\"msg\",\"response\":{\"code\":200,"
                     "\"codeMsg\":\"Ok\",\"data\":{\"target\":\"\",\"type\":\"text\","
                     "\"msg\":\"%s\",\"from\":\"%s\",\"id\":\"1700000000000-0\"}}}", id, msg, uid);
    size_t len = n > 0 ? (size_t)n : 0;
    return len + (len < 126 ? 2 : len < 65536 ? 4 : 10);    /* unmasked server frame */
}

/* The --pad text as it goes in a form body: " " + words, spaces as '+'. */
static const char *coord_bc_pad(const bench_opts *o)
{
    static char pad[OPTS_MAX_PAD + 2];
    if (o->pad == 0)
        return "";
    pad[0] = ' ';
    opts_pad_text(o, pad + 1);
    for (char *p = pad; *p; p++)
        if (*p == ' ')
            *p = '+';
    return pad;
}

/* Posts broadcast seq through h; fills in its res_msg only (so that the
 * room's sender threads can share c). */
static void coord_bc_post(coord *c, httpc *h, long seq)
{
    const bench_opts *o = c->o;
    res_msg *m = &c->r->bc[seq];
    char body[OPTS_MAX_PAD + 256];
    char id[32], msg[64], uid[16];
    uint64_t ts = clock_ns();
    coord_bc_text(o, seq, ts, id, sizeof(id), msg, sizeof(msg));
    coord_bc_sender(o, uid, sizeof(uid));
    int n = snprintf(body, sizeof(body), "appID=%d&userID=%s&msgID=%s&message=%s%s", o->app_id,
                     uid, id, msg, coord_bc_pad(o));
    m->sent_ns = ts;
    m->ok = coord_post(h, "/user/sendMessageAll", body, n, &m->status, NULL);
    m->answer_ns = clock_ns();
}

static void coord_bc_count(coord *c, long seq)
{
    if (c->r->bc[seq].ok)
        c->r->bc_accepted++;
    else
        c->r->bc_http_err++;
    c->r->bc_sent = seq + 1;
}

static void coord_bc_send(coord *c, long seq)
{
    coord_bc_post(c, &c->http, seq);
    coord_bc_count(c, seq);
}

/* room: COORD_ROOM_SENDERS threads post the pushes, each on its own HTTP
 * connection, push k at k / R s from the start (k mod n = the thread), as a
 * business system with several threads would: the rate does not depend on
 * how long one answer takes. A push due after the end is not sent. */
#define COORD_ROOM_SENDERS 8

typedef struct coord_sender {
    coord *c;
    httpc http;
    pthread_t th;
    int k, n;
    long total;
    uint64_t start, end;
    atomic_int *done;
} coord_sender;

static void *coord_sender_main(void *arg)
{
    coord_sender *s = arg;
    double step = 1e9 / s->c->o->room_rate;
    for (long seq = s->k; seq < s->total && !g_coord_stop; seq += s->n) {
        uint64_t due = s->start + (uint64_t)((double)seq * step);
        if (due >= s->end)
            break;
        for (uint64_t now; (now = clock_ns()) < due;) {
            struct timespec ts = { 0, (long)(due - now) };
            nanosleep(&ts, NULL);
        }
        coord_bc_post(s->c, &s->http, seq);
    }
    atomic_fetch_add(s->done, 1);
    return NULL;
}

/* Runs the room's pushes; returns how many were due (0 .. total). */
static long coord_room_pushes(coord *c, uint64_t start, uint64_t end)
{
    coord_sender s[COORD_ROOM_SENDERS];
    atomic_int done = 0;
    long total = (long)c->o->rounds * c->o->messages;
    int n = 0;
    for (int k = 0; k < COORD_ROOM_SENDERS; k++) {
        s[k] = (coord_sender){ .c = c, .k = k, .n = COORD_ROOM_SENDERS, .total = total,
                               .start = start, .end = end, .done = &done };
        httpc_init(&s[k].http, c->http.u);
        if (pthread_create(&s[k].th, NULL, coord_sender_main, &s[k]) != 0) {
            httpc_free(&s[k].http);
            break;
        }
        n++;
    }
    while (atomic_load(&done) < n)
        coord_pump(c, 20);
    for (int k = 0; k < n; k++) {
        pthread_join(s[k].th, NULL);
        httpc_free(&s[k].http);
    }
    if (n < COORD_ROOM_SENDERS)
        fprintf(stderr, "imgate-bench: only %d of %d push threads started\n", n, COORD_ROOM_SENDERS);
    double step = 1e9 / c->o->room_rate;
    long due = 0;
    while (due < total && start + (uint64_t)((double)due * step) < end)
        due++;
    for (long seq = 0; seq < due; seq++)
        coord_bc_count(c, seq);
    return due;
}

/* Pumps until the workers saw `want` unique deliveries of the counter, or
 * drain_s passed; then a short grace so late duplicates are counted. */
static void coord_drain(coord *c, int p2p, uint64_t want)
{
    uint64_t until = clock_ns() + (uint64_t)(c->o->drain_s * 1e9);
    counters a;
    for (;;) {
        coord_agg(c, &a);
        if ((p2p ? a.p2p_rx : a.bc_rx) >= want || clock_ns() > until || g_coord_stop)
            break;
        coord_pump(c, 20);
    }
    coord_sleep_until(c, clock_ns() + 300000000ull);
}

static void coord_bc_begin(coord *c)
{
    result *r = c->r;
    counters a;
    c->phase = (c->o->scenarios & SC_ROOM) ? "room" : "broadcast";
    coord_agg(c, &a);
    r->bc_ran = 1;
    r->bc_expected_per = (long)a.alive;
    c->bc_cpu_ok = c->o->npids > 0;
    c->bc_cpu0 = mem_cpu_s(c->o->pids, c->o->npids, &c->bc_cpu_ok);
    c->bc_ccpu_ok = 1;
    c->bc_ccpu0 = mem_cpu_s(c->wpids, c->n, &c->bc_ccpu_ok);
    r->room_ran = (c->o->scenarios & SC_ROOM) != 0;
    c->bc_base_rx = a.bc_rx;
    c->bc_base_bytes = a.rx_bytes;
}

static void coord_bc_end(coord *c, uint64_t start)
{
    result *r = c->r;
    counters a;
    r->bc_phase_s = (double)(clock_ns() - start) / 1e9;
    double cpu1 = mem_cpu_s(c->o->pids, c->o->npids, &c->bc_cpu_ok);
    r->bc_node_cpu_s = c->bc_cpu_ok ? cpu1 - c->bc_cpu0 : NAN;
    double ccpu1 = mem_cpu_s(c->wpids, c->n, &c->bc_ccpu_ok);
    r->bc_client_cpu_s = c->bc_ccpu_ok ? ccpu1 - c->bc_ccpu0 : NAN;
    coord_agg(c, &a);
    r->bc_rx_bytes = a.rx_bytes - c->bc_base_bytes;
}

/* The broadcast phase of the passes in cs (one, or two at once): round k
 * of pass j is sent at k x interval + j x interval / n from the start, pass
 * (k + j) mod n, so that with two passes they alternate half an interval
 * apart and go first every other round. */
static void coord_broadcast(coord **cs, int n)
{
    const bench_opts *o = cs[0]->o;
    for (int i = 0; i < n; i++)
        coord_bc_begin(cs[i]);
    uint64_t start = clock_ns();
    /* room: bounded in time, not in count; a push due after it is not sent */
    uint64_t end = (o->scenarios & SC_ROOM) ? start + (uint64_t)(o->room_s * 1e9) : UINT64_MAX;
    int threads = (o->scenarios & SC_ROOM) && n == 1;
    if (threads)
        coord_room_pushes(cs[0], start, end);
    for (int round = 0; !threads && round < o->rounds && !g_coord_stop && clock_ns() < end;
         round++) {
        for (int j = 0; j < n && !g_coord_stop; j++) {
            coord *c = cs[(round + j) % n];
            coord_sleep_until(cs[0], start + (uint64_t)((round + (double)j / n) *
                                                        o->interval_s * 1e9));
            for (int k = 0; k < o->messages && !g_coord_stop; k++)
                coord_bc_send(c, (long)round * o->messages + k);
            coord_pump(c, 0);
        }
    }
    for (int i = 0; i < n; i++)
        coord_drain(cs[i], 0, cs[i]->bc_base_rx +
                    cs[i]->r->bc_accepted * (uint64_t)cs[i]->r->bc_expected_per);
    for (int i = 0; i < n; i++)
        coord_bc_end(cs[i], start);
}

/* The global indexes of the connections logged in when set-up was over. */
static long *coord_targets(const coord *c, long *nt)
{
    long *t = malloc(sizeof(long) * (size_t)(c->o->conns ? c->o->conns : 1));
    *nt = 0;
    if (!t)
        return NULL;
    for (int i = 0; i < c->n; i++)
        for (long j = 0; c->bits[i] && j < c->count[i]; j++)
            if (c->bits[i][j / 8] & (1u << (j % 8)))
                t[(*nt)++] = c->first[i] + j;
    return t;
}

static void coord_p2p_send(coord *c, long seq, long idx)
{
    const bench_opts *o = c->o;
    result *r = c->r;
    char body[300], uid[32];
    opts_user_id(o, idx, uid, sizeof(uid));
    int n = snprintf(body, sizeof(body),
                     "appID=%d&userID=%s&msgID=%s-p%ld&message=%s.P.%ld.%llu.%ld", o->app_id,
                     uid, o->tag, seq, o->tag, seq, (unsigned long long)clock_ns(), idx);
    int status, flag;
    int ok = coord_post(&c->http, "/user/sendMessage", body, n, &status, &flag);
    r->p2p_sent++;
    if (ok && flag == 1)
        r->p2p_ok++;
    else if (ok && flag == 0)
        r->p2p_false++;
    else
        r->p2p_http_err++;
}

static void coord_p2p(coord *c)
{
    const bench_opts *o = c->o;
    result *r = c->r;
    long nt = 0, *targets = coord_targets(c, &nt);
    counters a;
    c->phase = "p2p";
    r->p2p_ran = 1;
    coord_agg(c, &a);
    uint64_t base_rx = a.p2p_rx, start = clock_ns(), rng = start | 1;
    uint64_t end = start + (uint64_t)(o->p2p_s * 1e9);
    long total = (long)ceil(o->p2p_rate * o->p2p_s);
    long seq = 0;
    while (targets && nt > 0 && seq < total && !g_coord_stop) {
        uint64_t now = clock_ns();
        if (now >= end)
            break;
        long due = (long)((double)(now - start) / 1e9 * o->p2p_rate) + 1;
        for (int burst = 0; seq < due && seq < total && burst < 64; burst++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            coord_p2p_send(c, seq++, targets[rng % (uint64_t)nt]);
        }
        coord_pump(c, seq < due ? 0 : 1);
    }
    r->p2p_s = (double)(clock_ns() - start) / 1e9;
    r->p2p_rate = r->p2p_s > 0 ? (double)r->p2p_sent / r->p2p_s : 0;
    free(targets);
    coord_drain(c, 1, base_rx + r->p2p_ok);
}

/* ---------- results ---------- */

/* Every message sent counts: one the API refused or did not answer is
 * expected by every connection all the same, so what did not arrive of it
 * is lost. p2p: every message went to a logged-in connection, so what did
 * not arrive there (refused, sendResults false, misdelivered) is lost. */
static void coord_collect(coord *c)
{
    result *r = c->r;
    uint64_t per = r->bc_expected_per > 0 ? (uint64_t)r->bc_expected_per : 0;
    for (long i = 0; i < r->bc_sent; i++) {
        res_msg *m = &r->bc[i];
        m->delivered = c->bc_cnt[i];
        m->first_ns = c->bc_first[i];
        m->last_ns = c->bc_last[i];
        r->bc_delivered += m->delivered;
        r->bc_expected += per;
        if (m->delivered < per)
            r->bc_lost += per - m->delivered;
    }
    r->bc_dup = r->st.c.bc_dup;
    r->bc_frame_min = (long)r->st.c.bc_frame_min;
    r->bc_frame_max = (long)r->st.c.bc_frame_max;
    r->p2p_delivered = r->st.c.p2p_rx;
    r->p2p_dup = r->st.c.p2p_dup;
    r->p2p_lost = r->p2p_sent > r->p2p_delivered ? r->p2p_sent - r->p2p_delivered : 0;
}

static int coord_alloc(coord *c)
{
    c->nb = opts_bcast_total(c->o);
    c->np = opts_p2p_total(c->o);
    c->bc_cnt = calloc((size_t)c->nb + 1, 4);
    c->bc_first = calloc((size_t)c->nb + 1, 8);
    c->bc_last = calloc((size_t)c->nb + 1, 8);
    c->p2p_cnt = calloc((size_t)c->np + 1, 4);
    c->r->bc = calloc((size_t)c->nb + 1, sizeof(res_msg));
    c->r->tl = calloc(RES_MAX_TIMELINE, sizeof(mem_sample));
    return c->bc_cnt && c->bc_first && c->bc_last && c->p2p_cnt && c->r->bc && c->r->tl ? 0 : -1;
}

static void coord_free(coord *c)
{
    free(c->bc_cnt);
    free(c->bc_first);
    free(c->bc_last);
    free(c->p2p_cnt);
    for (int i = 0; i < c->n; i++)
        free(c->bits[i]);
    httpc_free(&c->http);
}

/* Sets up a pass: memory before, connections, memory with them. */
static int coord_open(coord *c)
{
    coord_step_now(c->r, "before", 0);
    if (coord_connect(c) != 0 || g_coord_stop)
        return -1;
    coord_step(c, "connected");
    return 0;
}

/* The phases of one pass, or of two at once: each sets up in turn, then
 * they hold together, broadcast alternately, and run p2p in turn. */
static void coord_phases(coord **cs, int n)
{
    const bench_opts *o = cs[0]->o;
    coord *up[2], *bc[2];
    int nu = 0, nb = 0;
    for (int i = 0; i < n && !g_coord_stop; i++)
        if (coord_open(cs[i]) == 0)
            up[nu++] = cs[i];
    if (!nu)
        return;
    if ((o->scenarios & SC_HOLD) && !g_coord_stop) {
        coord_hold(up, nu);
        coord_steps(up, nu, "held");
    }
    for (int i = 0; i < nu && (o->scenarios & SC_BROADCAST) && !g_coord_stop; i++)
        if (coord_any_alive(up[i], "broadcast"))
            bc[nb++] = up[i];
    if (nb) {
        coord_broadcast(bc, nb);
        coord_steps(bc, nb, "broadcast");
    }
    for (int i = 0; i < nu; i++) {
        coord *c = up[i];
        if ((o->scenarios & SC_P2P) && !g_coord_stop && !c->r->error[0] &&
            coord_any_alive(c, "p2p")) {
            coord_p2p(c);
            coord_step(c, "p2p");
        }
    }
}

static int coord_init(coord *c, const bench_opts *o, result *r)
{
    memset(c, 0, sizeof(*c));
    c->o = o;
    c->r = r;
    c->tty = isatty(2) && !o->quiet;
    c->phase = "start";
    r->tl_every = COORD_TL_MS / 1000.0;
    r->workers = o->procs;
    cstats_init(&r->st);
    httpc_init(&c->http, &o->api);
    c->http.on_wait = coord_http_wait;
    c->http.wait_ud = c;
    if (coord_alloc(c) == 0)
        return 0;
    snprintf(r->error, sizeof(r->error), "out of memory");
    coord_free(c);
    return -1;
}

/* Stops a pass's workers and merges what they measured. */
static void coord_finish(coord *c)
{
    result *r = c->r;
    if (g_coord_stop && !r->error[0])
        snprintf(r->error, sizeof(r->error), "interrupted");
    coord_stop_workers(c);
    if (c->tty)
        fputc('\n', stderr);
    coord_collect(c);
    if (r->workers_reported < c->n && !r->error[0])
        snprintf(r->error, sizeof(r->error), "%d of %d workers sent no final report",
                 c->n - r->workers_reported, c->n);
    if (c->peer) {                        /* its workers are gone: pump it no more */
        c->peer->peer = NULL;
        c->peer = NULL;
    }
}

static int coord_run_passes(const bench_opts *const *os, result *const *rs, int n)
{
    static coord cs[2];
    coord *live[2];
    int nl = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        if (coord_init(&cs[i], os[i], rs[i]) != 0)
            rc = -1;
        else
            live[nl++] = &cs[i];
    }
    if (nl == 2) {
        live[0]->peer = live[1];
        live[1]->peer = live[0];
    }
    if (nl)
        coord_phases(live, nl);
    for (int i = 0; i < nl; i++)
        coord_finish(live[i]);
    const bench_opts *o = os[0];
    if (nl && o->settle_s > 0) {
        struct timespec ts = { (time_t)o->settle_s, (long)(fmod(o->settle_s, 1) * 1e9) };
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < nl; i++) {
        coord_step_now(live[i]->r, "closed", 0);
        coord_free(live[i]);
        rc |= live[i]->r->error[0] ? -1 : 0;
    }
    return rc;
}

int coord_run(const bench_opts *o, result *r)
{
    return coord_run_passes(&o, &r, 1);
}

int coord_run_interleaved(const bench_opts *o1, result *r1, const bench_opts *o2, result *r2)
{
    const bench_opts *os[2] = { o1, o2 };
    result *rs[2] = { r1, r2 };
    return coord_run_passes(os, rs, 2);
}
