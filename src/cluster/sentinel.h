/* sentinel.h — Redis Sentinel for the Redis link (cluster/rlink.h), with
 * redis.sentinels ("host:port,...") and redis.masterName set: finding the
 * master and hearing of its failovers. Everything but sentinel_validate,
 * sentinel_configured and sentinel_watching runs on the link's loop (given
 * to sentinel_start), with hiredis async and the libuv adapter: nothing
 * here ever blocks a worker, but hiredis's look-up of a sentinel's host
 * name, which is why a link on a worker needs addresses
 * (sentinel_all_addresses).
 *
 * Asking (sentinel_ask): `SENTINEL get-master-addr-by-name <name>` to the
 * sentinels in their configured order, each on a short-lived connection
 * with a deadline of cluster.redisTimeout; the first that names the master
 * answers, and on_master runs once (host NULL: none did).
 *
 * Watching: one connection at a time, to the first sentinel that takes
 * it, subscribed to +switch-master; a switch of our master runs
 * on_switch with the new address. The subscription is renewed every
 * second as a liveness check: a sentinel that dies, refuses or stops
 * answering for cluster.redisTimeout is left for the next one in the list
 * (back-off 0.1 s doubling to 5 s). */
#ifndef IMGATE_SENTINEL_H
#define IMGATE_SENTINEL_H

#include <stddef.h>
#include <uv.h>

#include "core/config.h"

#define SENTINEL_MAX 16                  /* sentinels in redis.sentinels */

typedef struct sentinel_hooks {
    /* The answer to sentinel_ask: the master's host and port, or host NULL
     * when no sentinel named it (each failure is logged). */
    void (*on_master)(const char *host, int port);
    /* A sentinel announced +switch-master for our master. */
    void (*on_switch)(const char *host, int port);
} sentinel_hooks;

/* Both keys or neither, each sentinel "host:port" (an IPv6 address in
 * brackets), at most SENTINEL_MAX, a master name without spaces. Returns 0,
 * or -1 with "key '...': why" in err. Any thread, before the start. */
int sentinel_validate(const config *c, char *err, size_t errlen);
/* Are redis.sentinels and redis.masterName set (sentinel mode)? */
int sentinel_configured(const config *c);

/* Parses the configured list and starts watching for switches on loop
 * (the link's, before its thread runs or on it). Returns 0 or -1 with a
 * reason in err. */
int sentinel_start(uv_loop_t *loop, const sentinel_hooks *hooks, char *err, size_t errlen);
/* Asks the sentinels where the master is; on_master runs once, later (or
 * right away when no sentinel can even be dialled). A call while an
 * answer is awaited does nothing: that answer comes. */
void sentinel_ask(void);
/* Drops every sentinel connection (no hook runs any more) and closes the
 * timers. Link thread, when the link stops. */
void sentinel_stop(void);

/* "host:port" of the sentinel whose +switch-master we hear, "" while none
 * (any thread). */
void sentinel_watching(char *out, size_t cap);
/* The configured sentinels, one "host:port" each, for /system/state
 * (after sentinel_start; read only from then on). */
int sentinel_count(void);
const char *sentinel_at(int i);
/* Is every sentinel given as an address? A host name is looked up by
 * hiredis with a blocking call on the link's loop, which must then not be
 * a worker's (cluster_run). After sentinel_start. */
int sentinel_all_addresses(void);

#endif
