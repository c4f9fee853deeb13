/* floor.h — the physical limit of a broadcast on this machine: N idle
 * loopback TCP socket pairs (sender processes accept, receiver processes
 * connect from 127.0.0.2-254), one send() of a push frame's size to each,
 * and the time until the last receiver has read its bytes. No protocol, no
 * server. It runs a few trials on the same sockets and reports their
 * median (to set beside the broadcast's median message) and the fastest. */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <stdint.h>

#include "hist.h"
#include "opts.h"

#define FLOOR_MAX_PAYLOAD 4096
#define FLOOR_MAX_TRIALS 16

typedef struct floor_result {
    int ran;
    long sockets, connected, accepted;
    int senders, senders_requested, receivers;
    int payload;                          /* bytes sent to each socket per trial */
    int payload_measured;                 /* 1: the broadcast's frame size; 0: computed */
    uint64_t bytes, expected_bytes;
    uint64_t send_eagain;
    int trials;                           /* rounds of one send per socket */
    int ok_trials;                        /* the first ok_trials delivered every byte */
    double trial_last_ms[FLOOR_MAX_TRIALS], trial_send_ms[FLOOR_MAX_TRIALS];
    double last_delivery_ms_median;       /* over the complete trials */
    /* the best (fastest) trial */
    double first_delivery_ms, last_delivery_ms, send_ms;
    int complete;                         /* every trial delivered every byte */
    char error[160];
} floor_result;

/* floor-stream: the same socket pairs, and the room scenario's load on
 * them: every 1/rate s each sender process send()s one message of
 * `payload` bytes to each of its sockets (a 12-byte header: sequence number
 * and send time), ceil(rate x duration) times. Receivers check every
 * message of every socket arrives once, in order, and time it. Bounded in
 * time like room: a sender behind the rate stops at the duration, and what
 * it sent is what is expected. */
typedef struct floor_stream_result {
    int ran;
    long sockets, connected, accepted;
    int senders, receivers, payload;
    double rate_per_s, duration_s;
    long messages;                        /* per socket, at the full rate */
    int messages_short;                   /* senders that ran out of time first */
    uint64_t expected, delivered, lost, duplicated, send_eagain, sent;
    double send_s;                        /* first send to last send */
    double span_s;                        /* first send to last delivery */
    double deliveries_per_s;              /* delivered / span_s */
    double sender_cpu_s, receiver_cpu_s;
    hist lat;                             /* send time to receipt, per delivery */
    int complete;
    char error[160];
} floor_stream_result;

/* Runs floor-stream with n sockets (o->room_rate, o->room_s). Returns 0
 * (result in *fr; fr->complete says whether every message arrived once)
 * or -1 if it could not run. */
int floor_stream_run(const bench_opts *o, long n, int payload, floor_stream_result *fr);

/* Runs the floor with n sockets and `payload` bytes per send (at most
 * FLOOR_MAX_PAYLOAD). Returns 0 (result in *fr, maybe incomplete) or -1 if
 * it could not run (fr->error says why). */
int floor_run(const bench_opts *o, long n, int payload, floor_result *fr);

/* Sockets one floor sender may hold under the open-file limit. */
long floor_sender_cap(void);

/* The sender processes for n sockets: --floor-senders, or more when a
 * default count cannot hold them; -1 when an explicit count cannot. */
int floor_senders_for(const bench_opts *o, long n);

#endif
