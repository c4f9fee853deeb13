/* opts.h — the command line of imgate-bench: scenarios and their knobs. */
#ifndef BENCH_OPTS_H
#define BENCH_OPTS_H

#include "url.h"

enum {
    SC_CONNECT = 1, SC_HOLD = 2, SC_BROADCAST = 4, SC_P2P = 8, SC_FLOOR = 16,
    SC_ROOM = 32, SC_FSTREAM = 64,
    SC_WS = SC_CONNECT | SC_HOLD | SC_BROADCAST | SC_P2P | SC_ROOM
};

#define OPTS_MAX_PIDS 64
#define OPTS_MAX_WS 64
#define OPTS_MAX_PROCS 256
#define OPTS_MAX_BCAST 100000          /* broadcast messages in one run */
#define OPTS_MAX_P2P 5000000           /* p2p messages in one run */
#define OPTS_MAX_SEEN (64u << 20)      /* a worker's broadcast duplicate bitmap, bytes */
#define OPTS_MAX_PAD 16384             /* --pad: text after a broadcast's fixed part */

typedef struct bench_opts {
    unsigned scenarios;
    url ws[OPTS_MAX_WS], api;        /* connection i goes to ws[i % nws] */
    int nws;
    char ws_text[OPTS_MAX_WS][300], api_text[300];
    long conns;
    int procs;
    double connect_rate;           /* new connections per second, 0 = unpaced */
    int inflight;                  /* set-ups in progress at once, whole run */
    double timeout_s;              /* per set-up step */
    int app_id;
    double hold_s, heartbeat_s;
    int rounds, messages;
    double interval_s, drain_s, settle_s;
    double p2p_rate, p2p_s;
    int floor_senders, floor_trials;
    int floor_senders_given;       /* --floor-senders: exactly that many, or refuse */
    int node_workers;              /* worker threads of the nodes under test, 0: unknown */
    int pids[OPTS_MAX_PIDS], npids;
    int bind_sources;
    int rx_ring;                   /* --rx-ring: clients and floor receivers read via io_uring */
    const char *json_path, *html_path;
    double max_time_s;
    int quiet;
    char tag[8];                   /* makes userIDs and msgIDs unique per run */
    int pad;                       /* --pad: bytes of prose after each broadcast's text */
    /* room: --room-rate pushes per second for --room-duration seconds through
     * /user/sendMessageAll (the broadcast's machinery, paced: rounds =
     * ceil(rate x duration), one message each, interval 1/rate); floor-stream
     * sends the same rate and count as single send()s per raw socket. */
    double room_rate, room_s;
    /* A second pass: the WebSocket scenarios run again in the same
     * invocation, reported beside the first. --deflate asks for one whose
     * clients offer permessage-deflate, must get it and inflate what is
     * compressed; --second-* for one with the same clients, usually against
     * another node. Its targets: second_ws/second_api/second_pids (default:
     * the first pass's). */
    int deflate;
    int second;                    /* a second pass runs (--deflate or --second-*) */
    int deflate_named;             /* --deflate-ws/-api/-pid given: need --deflate */
    int interleave;                /* both passes' connections at once, broadcast
                                    * rounds alternating between them */
    int offer_deflate;             /* this pass's clients offer permessage-deflate */
    char label[48], second_label[48];   /* this pass's name; the second pass's */
    char second_ws_text[OPTS_MAX_WS][300], second_api_text[300];
    int nsecond_ws;
    int second_pids[OPTS_MAX_PIDS], nsecond_pids;
} bench_opts;

/* Parses argv. Returns 0 to run, 1 if help was printed, -1 on a usage error
 * (message printed on stderr). */
int opts_parse(int argc, char **argv, bench_opts *o);

/* Names of the scenario bits, in run order ("connect", ...). */
const char *opts_scenario_name(unsigned bit);

/* The options of the second pass: o's, with the --second-* (--deflate-*)
 * targets, the second label, another tag, and with --deflate clients that
 * offer permessage-deflate. */
int opts_second_pass(const bench_opts *o, bench_opts *out);

/* The --pad text (o->pad bytes, fixed for a run; words and spaces). */
void opts_pad_text(const bench_opts *o, char *out);

/* The WebSocket address of connection i. */
const url *opts_ws_for(const bench_opts *o, long i);

/* The userID of connection i (unique per run, under 20 bytes). */
int opts_user_id(const bench_opts *o, long i, char *out, size_t cap);

/* Bounded message counts the workers must be ready for. */
long opts_bcast_total(const bench_opts *o);
long opts_p2p_total(const bench_opts *o);

/* Bytes of a worker's duplicate bitmap: one bit per broadcast message and
 * connection. */
size_t opts_bc_seen_bytes(long messages, long conns);

#endif
