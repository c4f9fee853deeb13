/* hsredis.h — the Redis half of the handshake floor with Redis
 * (`imgate-bench handshake-server --redis HOST:PORT`): what a cluster node
 * must ask Redis for one login, done with nothing else around it.
 *
 * Per login the five commands an imgate node sends for a first login that
 * announces nothing (SPEC's presence and delivery keys): GET of the
 * delivery cursor and XINFO STREAM of the inbox (the login's replay read,
 * which the login reply waits for), then HSET and EXPIRE of the user's
 * node hash and SET of the presence record with its TTL (written without
 * waiting). One connection per process; the commands of one loop turn go
 * out in one write, as a node's do. The floor is thus the handshake floor
 * plus the Redis round trip and Redis's own work that a login costs. */
#ifndef IMGATE_BENCH_HSREDIS_H
#define IMGATE_BENCH_HSREDIS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Called once the login's reads are answered (ok: every reply came). */
typedef void (*hsr_done_fn)(void *ud, int ok);

/* Connects to host:port on loop (blocking until connected). self names
 * this process in the node hash ("ip:port" of its listener). 0 or -1. */
int hsr_open(uv_loop_t *loop, const char *hostport, const char *self);

/* Queues one login's commands; fn(ud) runs when its reads are answered,
 * never from inside this call. 0 (a lost connection ends the process). */
int hsr_login(uint32_t appid, const char *uid, size_t uidlen, hsr_done_fn fn, void *ud);

#endif
