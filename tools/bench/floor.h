/* floor.h — the physical limit of a broadcast on this machine: N idle
 * loopback TCP socket pairs (sender processes accept, receiver processes
 * connect from 127.0.0.2-254), one 100-byte send() to each, and the time
 * until the last receiver has read its bytes. No protocol, no server. It
 * runs a few trials on the same sockets and keeps the fastest: a floor is a
 * best case. */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <stdint.h>

#include "opts.h"

#define FLOOR_PAYLOAD 100
#define FLOOR_MAX_TRIALS 16

typedef struct floor_result {
    int ran;
    long sockets, connected, accepted;
    int senders, receivers;
    uint64_t bytes, expected_bytes;
    uint64_t send_eagain;
    int trials;                           /* rounds of one send per socket */
    double trial_last_ms[FLOOR_MAX_TRIALS], trial_send_ms[FLOOR_MAX_TRIALS];
    /* the best (fastest) trial: the floor */
    double first_delivery_ms, last_delivery_ms, send_ms;
    int complete;                         /* every trial delivered every byte */
    char error[160];
} floor_result;

/* Runs the floor with n sockets. Returns 0 (result in *fr, maybe
 * incomplete) or -1 if it could not run (fr->error says why). */
int floor_run(const bench_opts *o, long n, floor_result *fr);

#endif
