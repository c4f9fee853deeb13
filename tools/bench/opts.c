/* opts.c — command-line parsing and the derived limits of a run. */
#include "opts.h"

#include <getopt.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

static const char OPTS_USAGE[] =
    "usage: imgate-bench SCENARIO[,SCENARIO...] [options]\n"
    "\n"
    "Scenarios (a comma list runs them in this order on one set of connections):\n"
    "  connect    open and log in N connections at --rate per second\n"
    "  hold       connect, stay idle --duration seconds, heartbeat every --heartbeat\n"
    "  broadcast  connect, then every --interval s send --messages through\n"
    "             /user/sendMessageAll (--rounds times); time every delivery\n"
    "  p2p        connect, then --rate messages/s through /user/sendMessage to\n"
    "             random connected users for --duration seconds\n"
    "  floor      raw TCP: N idle socket pairs, one send() of a push frame's size\n"
    "             to each (the size the broadcast received, else computed)\n"
    "  room       connect, then --room-rate pushes/s to the room (all N) through\n"
    "             /user/sendMessageAll for --room-duration s; every push to every\n"
    "             connection exactly once, latency of each delivery, CPU per delivery\n"
    "  floor-stream  raw TCP: N socket pairs, --room-rate single send()s per socket\n"
    "             and second for --room-duration s (a push frame's size), from\n"
    "             --floor-senders processes; exact counts, latency, CPU per delivery\n"
    "\n"
    "imgate-bench handshake-server [--procs M] [--bind ADDR] [--redis HOST:PORT]:\n"
    "the raw-handshake floor, M processes that only answer the upgrade and the\n"
    "login; prints \"ws listening on ADDR:PORT\" per process; run `connect`\n"
    "against them. --redis: each login first sends the five Redis commands a\n"
    "cluster node sends for it and answers after the two reads (the floor with\n"
    "the Redis work of a login).\n"
    "\n"
    "Options:\n"
    "  --ws URL              WebSocket URL (ws://127.0.0.1:8089/acc); repeatable:\n"
    "                        connections go round-robin over the URLs (nodes)\n"
    "  --api URL             HTTP API URL (http://127.0.0.1:8080)\n"
    "  -n, --conns N         connections (10000)\n"
    "  --procs N             worker processes sharing them (ceil(N/16000))\n"
    "  --rate R              connections/s; for p2p alone: messages/s\n"
    "  --connect-rate R      connections/s (5000; 0 = only --inflight bounds it)\n"
    "  --p2p-rate R          p2p messages/s (1000)\n"
    "  --inflight N          set-ups in progress at once, whole run (1000)\n"
    "  --timeout S           limit of each set-up step: TCP+upgrade, login (10)\n"
    "  --app ID              appID to log in with (101)\n"
    "  --duration S          hold and p2p duration (hold 30, p2p 10)\n"
    "  --hold-duration S, --p2p-duration S\n"
    "  --heartbeat S         heartbeat interval (30)\n"
    "  --interval S          broadcast: seconds between rounds (2)\n"
    "  --messages K          broadcast: messages per round (1)\n"
    "  --rounds R            broadcast: rounds (5)\n"
    "  --drain S             longest wait for deliveries after a phase's last send (10)\n"
    "  --settle S            pause before each memory sample (1)\n"
    "  --room-rate R         room, floor-stream: pushes per second (10)\n"
    "  --room-duration T     room, floor-stream: seconds of pushes (10)\n"
    "  --with-floor          also run floor with the same N (with room: floor-stream)\n"
    "  --node-workers N      worker threads of the nodes under test, all together\n"
    "                        (recorded; the floor gets as many senders)\n"
    "  --floor-senders N     floor: sending processes (--node-workers, else the\n"
    "                        number of CPUs)\n"
    "  --floor-trials N      floor: rounds on the same sockets; median and best (5)\n"
    "  --pid PID             server process to sample VmRSS of (repeatable)\n"
    "  --no-bind-sources     do not bind clients to 127.0.0.2-254\n"
    "  --rx-ring             clients (once logged in) and floor receivers read\n"
    "                        through an io_uring (multishot receives) instead of\n"
    "                        epoll + read(); falls back, and says so, where the\n"
    "                        kernel lacks it (needs 6.1)\n"
    "  --json FILE           write the results as JSON\n"
    "  --html FILE           write a self-contained HTML report\n"
    "  --max-time S          hard limit of the whole run (derived from the phases)\n"
    "  --tag T               run tag in userIDs and msgIDs (random)\n"
    "  --pad N               broadcast: N bytes of prose after each message's text\n"
    "                        (0; compressible like a real push)\n"
    "  --deflate             run the WebSocket scenarios twice: clients without,\n"
    "                        then with permessage-deflate (RFC 7692); side by side\n"
    "  --deflate-ws URL, --deflate-api URL, --deflate-pid PID\n"
    "                        the second pass's nodes (default: the same as the first)\n"
    "  --second-ws URL, --second-api URL, --second-pid PID\n"
    "                        run the WebSocket scenarios a second time, same clients,\n"
    "                        against these nodes (repeatable like --ws, --pid);\n"
    "                        side by side, one floor for both\n"
    "  --first-label T, --second-label T\n"
    "                        the passes' names in the reports (first/second; off/on)\n"
    "  --interleave          with a second pass: both passes' connections at once,\n"
    "                        their broadcast rounds alternating half an --interval\n"
    "                        apart (who goes first swaps every round)\n"
    "  -q, --quiet           no progress line\n"
    "  -h, --help\n";

enum { O_WS = 256, O_API, O_PROCS, O_RATE, O_CRATE, O_PRATE, O_INFL, O_TIMEOUT, O_APP,
       O_DUR, O_HDUR, O_PDUR, O_HB, O_INTERVAL, O_MSGS, O_ROUNDS, O_DRAIN, O_SETTLE,
       O_FLOOR, O_FSEND, O_FTRIALS, O_NWORKERS, O_PID, O_NOBIND, O_RXRING, O_JSON, O_HTML, O_MAXT, O_TAG,
       O_PAD, O_DEFLATE, O_DWS, O_DAPI, O_DPID, O_SWS, O_SAPI, O_SPID, O_FLABEL, O_SLABEL,
       O_INTERLEAVE, O_RRATE, O_RDUR };

static const struct option OPTS_LONG[] = {
    { "ws", 1, 0, O_WS }, { "api", 1, 0, O_API }, { "conns", 1, 0, 'n' },
    { "procs", 1, 0, O_PROCS }, { "rate", 1, 0, O_RATE }, { "connect-rate", 1, 0, O_CRATE },
    { "p2p-rate", 1, 0, O_PRATE }, { "inflight", 1, 0, O_INFL },
    { "timeout", 1, 0, O_TIMEOUT }, { "app", 1, 0, O_APP }, { "duration", 1, 0, O_DUR },
    { "hold-duration", 1, 0, O_HDUR }, { "p2p-duration", 1, 0, O_PDUR },
    { "heartbeat", 1, 0, O_HB }, { "interval", 1, 0, O_INTERVAL },
    { "messages", 1, 0, O_MSGS }, { "rounds", 1, 0, O_ROUNDS }, { "drain", 1, 0, O_DRAIN },
    { "settle", 1, 0, O_SETTLE }, { "with-floor", 0, 0, O_FLOOR },
    { "floor-senders", 1, 0, O_FSEND }, { "node-workers", 1, 0, O_NWORKERS }, { "floor-trials", 1, 0, O_FTRIALS }, { "pid", 1, 0, O_PID },
    { "no-bind-sources", 0, 0, O_NOBIND }, { "rx-ring", 0, 0, O_RXRING },
    { "json", 1, 0, O_JSON }, { "html", 1, 0, O_HTML },
    { "max-time", 1, 0, O_MAXT }, { "tag", 1, 0, O_TAG }, { "quiet", 0, 0, 'q' },
    { "pad", 1, 0, O_PAD }, { "deflate", 0, 0, O_DEFLATE }, { "deflate-ws", 1, 0, O_DWS },
    { "deflate-api", 1, 0, O_DAPI }, { "deflate-pid", 1, 0, O_DPID },
    { "second-ws", 1, 0, O_SWS }, { "second-api", 1, 0, O_SAPI }, { "second-pid", 1, 0, O_SPID },
    { "first-label", 1, 0, O_FLABEL }, { "second-label", 1, 0, O_SLABEL },
    { "interleave", 0, 0, O_INTERLEAVE }, { "room-rate", 1, 0, O_RRATE },
    { "room-duration", 1, 0, O_RDUR },
    { "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
};

static const char *const OPTS_NAMES[] = { "connect", "hold", "broadcast", "p2p", "floor",
                                           "room", "floor-stream" };
#define OPTS_NSC 7

const char *opts_scenario_name(unsigned bit)
{
    for (unsigned i = 0; i < OPTS_NSC; i++)
        if (bit == (1u << i))
            return OPTS_NAMES[i];
    return "?";
}

static int opts_scenarios(const char *s, unsigned *out)
{
    char buf[128];
    if (strlen(s) >= sizeof(buf))
        return -1;
    strcpy(buf, s);
    *out = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        unsigned bit = 0;
        for (unsigned i = 0; i < OPTS_NSC; i++)
            if (strcmp(t, OPTS_NAMES[i]) == 0)
                bit = 1u << i;
        if (!bit)
            return -1;
        *out |= bit;
    }
    return *out ? 0 : -1;
}

static int opts_num(const char *name, const char *s, double lo, double hi, double *v)
{
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d) || d < lo || d > hi) {
        fprintf(stderr, "imgate-bench: --%s: expected a number in [%g, %g], got '%s'\n",
                name, lo, hi, s);
        return -1;
    }
    *v = d;
    return 0;
}

static void opts_defaults(bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->conns = 10000;
    o->connect_rate = 5000;
    o->inflight = 1000;
    o->timeout_s = 10;
    o->app_id = 101;
    o->hold_s = 30;
    o->heartbeat_s = 30;
    o->rounds = 5;
    o->messages = 1;
    o->interval_s = 2;
    o->drain_s = 10;
    o->settle_s = 1;
    o->p2p_rate = 1000;
    o->p2p_s = 10;
    o->bind_sources = 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->floor_senders = cpus > 0 ? (int)cpus : 2;
    o->floor_trials = 5;
    o->room_rate = 10;
    o->room_s = 10;
    snprintf(o->api_text, sizeof(o->api_text), "http://127.0.0.1:8080");
    unsigned long seed = (unsigned long)time(NULL) * 2654435761ul ^ (unsigned long)getpid();
    static const char A[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 4; i++, seed /= 36)
        o->tag[i] = A[seed % 36];
}

typedef struct opts_pending {
    double rate, dur;
    int have_rate, have_dur;
} opts_pending;

/* --first-label, --second-label: printable, at most 47 bytes. */
static int opts_label(const char *name, const char *a, char *out, size_t cap)
{
    size_t n = strlen(a);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)a[i] < 0x20 || a[i] == 0x7f)
            n = 0;
    }
    if (n == 0 || n >= cap) {
        fprintf(stderr, "imgate-bench: --%s: 1-%zu printable bytes\n", name, cap - 1);
        return -1;
    }
    snprintf(out, cap, "%s", a);
    return 0;
}

/* The options of the second pass (--deflate, --second-*, --deflate-*,
 * the labels, --interleave) and --pad; returns 0, or -1. */
static int opts_pass_one(bench_opts *o, int c, const char *a)
{
    double v = 0;
    if (c == O_DWS || c == O_DAPI || c == O_DPID)
        o->deflate_named = 1;
    else if (c == O_SWS || c == O_SAPI || c == O_SPID || c == O_SLABEL)
        o->second = 1;
    switch (c) {
    case O_PAD:
        if (opts_num("pad", a, 0, OPTS_MAX_PAD, &v))
            return -1;
        o->pad = (int)v;
        return 0;
    case O_DEFLATE: o->deflate = o->second = 1; return 0;
    case O_INTERLEAVE: o->interleave = 1; return 0;
    case O_FLABEL: return opts_label("first-label", a, o->label, sizeof(o->label));
    case O_SLABEL: return opts_label("second-label", a, o->second_label, sizeof(o->second_label));
    case O_DWS:
    case O_SWS:
        if (o->nsecond_ws >= OPTS_MAX_WS) {
            fprintf(stderr, "imgate-bench: at most %d --second-ws\n", OPTS_MAX_WS);
            return -1;
        }
        snprintf(o->second_ws_text[o->nsecond_ws++], sizeof(o->second_ws_text[0]), "%s", a);
        return 0;
    case O_DAPI:
    case O_SAPI:
        snprintf(o->second_api_text, sizeof(o->second_api_text), "%s", a);
        return 0;
    default:
        if (o->nsecond_pids >= OPTS_MAX_PIDS || opts_num("second-pid", a, 1, 1 << 30, &v))
            return -1;
        o->second_pids[o->nsecond_pids++] = (int)v;
        return 0;
    }
}

/* One option; returns 0, 1 (help) or -1. */
static int opts_one(bench_opts *o, int c, const char *a, opts_pending *pd)
{
    if (c >= O_PAD && c <= O_INTERLEAVE)
        return opts_pass_one(o, c, a);
    double v = 0;
    switch (c) {
    case O_WS:
        if (o->nws >= OPTS_MAX_WS) {
            fprintf(stderr, "imgate-bench: at most %d --ws\n", OPTS_MAX_WS);
            return -1;
        }
        snprintf(o->ws_text[o->nws++], sizeof(o->ws_text[0]), "%s", a);
        return 0;
    case O_API: snprintf(o->api_text, sizeof(o->api_text), "%s", a); return 0;
    case 'n':
        if (opts_num("conns", a, 1, 5e6, &v))
            return -1;
        o->conns = (long)v;
        return 0;
    case O_PROCS:
        if (opts_num("procs", a, 1, OPTS_MAX_PROCS, &v))
            return -1;
        o->procs = (int)v;
        return 0;
    case O_RATE:
        pd->have_rate = 1;
        return opts_num("rate", a, 0, 1e7, &pd->rate);
    case O_CRATE: return opts_num("connect-rate", a, 0, 1e7, &o->connect_rate);
    case O_PRATE: return opts_num("p2p-rate", a, 0.1, 1e6, &o->p2p_rate);
    case O_INFL:
        if (opts_num("inflight", a, 1, 1e6, &v))
            return -1;
        o->inflight = (int)v;
        return 0;
    case O_TIMEOUT: return opts_num("timeout", a, 0.1, 600, &o->timeout_s);
    case O_APP:
        if (opts_num("app", a, 0, 2147483647.0, &v))
            return -1;
        o->app_id = (int)v;
        return 0;
    case O_DUR:
        pd->have_dur = 1;
        return opts_num("duration", a, 0, 86400, &pd->dur);
    case O_HDUR: return opts_num("hold-duration", a, 0, 86400, &o->hold_s);
    case O_PDUR: return opts_num("p2p-duration", a, 0.1, 86400, &o->p2p_s);
    case O_HB: return opts_num("heartbeat", a, 0.1, 3600, &o->heartbeat_s);
    case O_INTERVAL: return opts_num("interval", a, 0, 3600, &o->interval_s);
    case O_MSGS:
        if (opts_num("messages", a, 1, OPTS_MAX_BCAST, &v))
            return -1;
        o->messages = (int)v;
        return 0;
    case O_ROUNDS:
        if (opts_num("rounds", a, 1, OPTS_MAX_BCAST, &v))
            return -1;
        o->rounds = (int)v;
        return 0;
    case O_DRAIN: return opts_num("drain", a, 0, 3600, &o->drain_s);
    case O_SETTLE: return opts_num("settle", a, 0, 600, &o->settle_s);
    case O_FLOOR: o->scenarios |= SC_FLOOR; return 0;
    case O_RRATE: return opts_num("room-rate", a, 0.01, 10000, &o->room_rate);
    case O_RDUR: return opts_num("room-duration", a, 0.1, 3600, &o->room_s);
    case O_FSEND:
        if (opts_num("floor-senders", a, 1, 256, &v))
            return -1;
        o->floor_senders = (int)v;
        o->floor_senders_given = 1;
        return 0;
    case O_NWORKERS:
        if (opts_num("node-workers", a, 1, 256, &v))
            return -1;
        o->node_workers = (int)v;
        return 0;
    case O_FTRIALS:
        if (opts_num("floor-trials", a, 1, FLOOR_MAX_TRIALS, &v))
            return -1;
        o->floor_trials = (int)v;
        return 0;
    case O_PID:
        if (o->npids >= OPTS_MAX_PIDS || opts_num("pid", a, 1, 1 << 30, &v))
            return -1;
        o->pids[o->npids++] = (int)v;
        return 0;
    case O_NOBIND: o->bind_sources = 0; return 0;
    case O_RXRING: o->rx_ring = 1; return 0;
    case O_JSON: o->json_path = a; return 0;
    case O_HTML: o->html_path = a; return 0;
    case O_MAXT: return opts_num("max-time", a, 1, 86400, &o->max_time_s);
    case O_TAG:
        if (strlen(a) < 1 || strlen(a) > 4 ||
            strspn(a, "0123456789abcdefghijklmnopqrstuvwxyz") != strlen(a)) {
            fprintf(stderr, "imgate-bench: --tag: 1-4 characters of [0-9a-z]\n");
            return -1;
        }
        snprintf(o->tag, sizeof(o->tag), "%s", a);
        return 0;
    case 'q': o->quiet = 1; return 0;
    case 'h': fputs(OPTS_USAGE, stdout); return 1;
    default: return -1;
    }
}

/* The second pass's options: what needs what, and the default labels. */
static int opts_finish_passes(bench_opts *o)
{
    if (o->deflate_named && !o->deflate) {
        fprintf(stderr, "imgate-bench: --deflate-ws/--deflate-api/--deflate-pid need --deflate\n");
        return -1;
    }
    if (o->interleave && !(o->second && (o->scenarios & SC_WS))) {
        fprintf(stderr, "imgate-bench: --interleave needs a second pass (--second-*, --deflate)"
                " and a WebSocket scenario\n");
        return -1;
    }
    if (o->label[0] && !o->second) {
        fprintf(stderr, "imgate-bench: --first-label needs a second pass\n");
        return -1;
    }
    if (!o->label[0])
        snprintf(o->label, sizeof(o->label), "%s", o->deflate ? "off" : "first");
    if (!o->second_label[0])
        snprintf(o->second_label, sizeof(o->second_label), "%s", o->deflate ? "on" : "second");
    static bench_opts check;                 /* its URLs parse: refused up front */
    return o->second ? opts_second_pass(o, &check) : 0;
}

/* room is the broadcast paced: one push every 1/rate s, ceil(rate x
 * duration) of them; --with-floor then means floor-stream. */
static int opts_finish_room(bench_opts *o)
{
    if (!(o->scenarios & (SC_ROOM | SC_FSTREAM)))
        return 0;
    if ((o->scenarios & SC_ROOM) && (o->scenarios & (SC_BROADCAST | SC_P2P))) {
        fprintf(stderr, "imgate-bench: room runs alone (no broadcast or p2p with it)\n");
        return -1;
    }
    if (o->second) {
        fprintf(stderr, "imgate-bench: room and floor-stream have no second pass\n");
        return -1;
    }
    double total = ceil(o->room_rate * o->room_s - 1e-9);
    if (total < 1 || total > OPTS_MAX_BCAST) {
        fprintf(stderr, "imgate-bench: --room-rate x --room-duration: 1 to %d pushes\n",
                OPTS_MAX_BCAST);
        return -1;
    }
    if (o->scenarios & SC_ROOM) {
        o->scenarios |= SC_BROADCAST | SC_CONNECT;
        if (o->scenarios & SC_FLOOR)
            o->scenarios = (o->scenarios & ~(unsigned)SC_FLOOR) | SC_FSTREAM;
        o->rounds = (int)total;
        o->messages = 1;
        o->interval_s = 1.0 / o->room_rate;
    }
    return 0;
}

/* Applies --rate/--duration and checks what only makes sense together. */
static int opts_finish(bench_opts *o, unsigned given, const opts_pending *pd)
{
    if (pd->have_rate) {
        if ((given & SC_WS) == SC_P2P)
            o->p2p_rate = pd->rate > 0 ? pd->rate : o->p2p_rate;
        else
            o->connect_rate = pd->rate;
    }
    if (pd->have_dur) {
        o->hold_s = pd->dur;
        if (pd->dur > 0)
            o->p2p_s = pd->dur;
    }
    char err[400];
    if (o->nws == 0)
        snprintf(o->ws_text[o->nws++], sizeof(o->ws_text[0]), "ws://127.0.0.1:8089/acc");
    for (int i = 0; i < o->nws; i++) {
        if (url_parse(o->ws_text[i], "ws", &o->ws[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "imgate-bench: %s\n", err);
            return -1;
        }
    }
    if (url_parse(o->api_text, "http", &o->api, err, sizeof(err)) != 0) {
        fprintf(stderr, "imgate-bench: %s\n", err);
        return -1;
    }
    if (o->node_workers > 0 && !o->floor_senders_given) {
        o->floor_senders = o->node_workers;        /* like for like: exactly that many */
        o->floor_senders_given = 1;
    }
    if (opts_finish_room(o) != 0)
        return -1;
    if (o->procs == 0)
        o->procs = (int)((o->conns + 15999) / 16000);
    if (o->procs > o->conns)
        o->procs = (int)o->conns;
    if (o->procs > OPTS_MAX_PROCS) {
        fprintf(stderr, "imgate-bench: %ld connections need more than %d --procs\n", o->conns,
                OPTS_MAX_PROCS);
        return -1;
    }
    if ((long)o->rounds * o->messages > OPTS_MAX_BCAST) {
        fprintf(stderr, "imgate-bench: --rounds x --messages above %d\n", OPTS_MAX_BCAST);
        return -1;
    }
    long share = (o->conns + o->procs - 1) / o->procs;
    if (opts_bc_seen_bytes(opts_bcast_total(o), share) > OPTS_MAX_SEEN) {
        fprintf(stderr, "imgate-bench: --rounds x --messages x connections per process above "
                "%u (duplicate detection): use more --procs\n", OPTS_MAX_SEEN * 8);
        return -1;
    }
    if (o->p2p_rate * o->p2p_s > OPTS_MAX_P2P) {
        fprintf(stderr, "imgate-bench: --p2p-rate x --p2p-duration above %d\n", OPTS_MAX_P2P);
        return -1;
    }
    return opts_finish_passes(o);
}

/* A second tag as wide as the first, so both passes' frames weigh the same. */
static void opts_other_tag(char *tag)
{
    static const char A[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    const char *at = strchr(A, tag[0]);
    tag[0] = A[((at ? at - A : 0) + 18) % 36];
}

int opts_second_pass(const bench_opts *o, bench_opts *out)
{
    char err[400];
    *out = *o;
    out->offer_deflate = o->deflate;
    out->json_path = out->html_path = NULL;
    snprintf(out->label, sizeof(out->label), "%s", o->second_label);
    opts_other_tag(out->tag);
    if (o->nsecond_ws) {
        out->nws = o->nsecond_ws;
        for (int i = 0; i < o->nsecond_ws; i++) {
            snprintf(out->ws_text[i], sizeof(out->ws_text[i]), "%s", o->second_ws_text[i]);
            if (url_parse(out->ws_text[i], "ws", &out->ws[i], err, sizeof(err)) != 0) {
                fprintf(stderr, "imgate-bench: the second pass's --ws: %s\n", err);
                return -1;
            }
        }
    }
    if (o->second_api_text[0]) {
        snprintf(out->api_text, sizeof(out->api_text), "%s", o->second_api_text);
        if (url_parse(out->api_text, "http", &out->api, err, sizeof(err)) != 0) {
            fprintf(stderr, "imgate-bench: the second pass's --api: %s\n", err);
            return -1;
        }
    }
    if (o->nsecond_pids) {
        out->npids = o->nsecond_pids;
        memcpy(out->pids, o->second_pids, sizeof(o->second_pids));
    }
    return 0;
}

void opts_pad_text(const bench_opts *o, char *out)
{
    static const char *const words[] = {
        "your", "order", "has", "shipped", "and", "will", "arrive", "on", "tuesday",
        "between", "nine", "noon", "the", "courier", "calls", "before", "delivery",
        "track", "it", "in", "app", "reply", "stop", "to", "unsubscribe", "from", "these",
        "updates", "thank", "you", "for", "shopping", "with", "us", "room", "message",
    };
    uint32_t x = 2463534242u;
    int n = 0;
    while (n < o->pad) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        const char *w = words[x % (sizeof(words) / sizeof(words[0]))];
        for (size_t i = 0; w[i] && n < o->pad; i++)
            out[n++] = w[i];
        if (n < o->pad)
            out[n++] = ' ';
    }
    out[n] = '\0';
}

int opts_parse(int argc, char **argv, bench_opts *o)
{
    opts_defaults(o);
    opts_pending pd = { 0, 0, 0, 0 };
    unsigned sc = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:qh", OPTS_LONG, NULL)) != -1) {
        int r = opts_one(o, c, optarg, &pd);
        if (r != 0) {
            if (r < 0)
                fputs("imgate-bench: see --help\n", stderr);
            return r;
        }
    }
    if (optind != argc - 1 || opts_scenarios(argv[optind], &sc) != 0) {
        fputs(OPTS_USAGE, stderr);
        return -1;
    }
    o->scenarios |= sc;
    if (o->scenarios & (SC_HOLD | SC_BROADCAST | SC_P2P))
        o->scenarios |= SC_CONNECT;
    return opts_finish(o, sc, &pd);
}

const url *opts_ws_for(const bench_opts *o, long i)
{
    return &o->ws[i % o->nws];
}

int opts_user_id(const bench_opts *o, long i, char *out, size_t cap)
{
    return snprintf(out, cap, "b%s_%ld", o->tag, i);
}

long opts_bcast_total(const bench_opts *o)
{
    return (o->scenarios & SC_BROADCAST) ? (long)o->rounds * o->messages : 0;
}

long opts_p2p_total(const bench_opts *o)
{
    return (o->scenarios & SC_P2P) ? (long)ceil(o->p2p_rate * o->p2p_s) + 1 : 0;
}

size_t opts_bc_seen_bytes(long messages, long conns)
{
    return ((size_t)messages * (size_t)conns + 7) / 8 + 1;
}
