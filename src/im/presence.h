/* presence.h — the node's registry of logged-in users: one entry per
 * (appID, userID) with the number of this node's connections, the login and
 * heartbeat times. Shared by all workers behind striped locks; touched on
 * login, heartbeat, logout and API look-ups, never per message. */
#ifndef IMGATE_PRESENCE_H
#define IMGATE_PRESENCE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PRESENCE_MAX_ID 20       /* userID must be shorter than this */
#define PRESENCE_ONLINE_SECS 180 /* a heartbeat older than this is offline */

typedef struct pres_entry {
    struct pres_entry *next;     /* stripe hash chain */
    uint32_t hash;
    uint32_t appid;
    uint32_t conns;              /* guarded by the stripe lock */
    uint32_t login_time;         /* unix seconds */
    _Atomic uint32_t hb_time;    /* unix seconds */
    uint32_t client_ip4;         /* first connection's IPv4 (network order), 0 if none */
    uint16_t client_port;        /* and its port (host order): for cluster presence records */
    uint8_t idlen;
    char id[];                   /* NUL-terminated; immutable */
} pres_entry;

uint32_t presence_hash(uint32_t appid, const char *id, size_t len);

int presence_init(void);
void presence_free(void);

/* Called under the user's stripe lock after every change of a user's
 * connection count on this node (e->conns is the new count: 1 after the
 * first connection, 0 after the last, before the entry is freed): what it
 * posts for that user is ordered like the changes themselves (a logout
 * racing a login on another worker cannot overtake). It must be quick and
 * must not call back into presence. */
typedef void (*presence_edge_fn)(pres_entry *e, void *ud);

/* Counts one more connection of (appid, id); creates the entry if needed.
 * *first is set when this is the user's first connection on this node.
 * on_acquire (may be NULL) runs after the count went up. Returns the entry
 * (valid while the caller holds its count) or NULL. */
pres_entry *presence_acquire(uint32_t appid, const char *id, size_t len, int *first,
                             presence_edge_fn on_acquire, void *ud);
/* Drops one connection and runs on_release (may be NULL); after the last
 * one, frees the entry and returns 1. */
int presence_release(pres_entry *e, presence_edge_fn on_release, void *ud);
/* Returns the heartbeat time it replaces. */
uint32_t presence_heartbeat(pres_entry *e, uint32_t now);

/* Online: an entry exists for (appid, id) with a heartbeat under
 * PRESENCE_ONLINE_SECS old. (For "any platform" ask each appID.) */
int presence_online(uint32_t appid, const char *id, size_t len, uint32_t now);

/* This node's connections of (appid, id), 0 if it holds none. */
uint32_t presence_conns(uint32_t appid, const char *id, size_t len);

/* Calls fn for each user of the room (appid 0 = all), under the stripe lock:
 * fn must be quick and must not call back into presence. */
void presence_each(uint32_t appid, void (*fn)(const pres_entry *e, void *ud), void *ud);
/* The same for one stripe of the registry (0 <= stripe < PRESENCE_STRIPES),
 * so that a long walk can be spread over loop turns. */
#define PRESENCE_STRIPES 64
void presence_each_stripe(int stripe, uint32_t appid, void (*fn)(const pres_entry *e, void *ud), void *ud);

/* Number of distinct users. */
long presence_count(void);

#endif
