/* route.h — the HTTP API's cluster-wide operations (cluster mode): one
 * Redis round trip (de-dup, presence record, live nodes), then local
 * delivery plus gRPC to the other nodes, merged into one answer.
 *
 * Every function is called on a worker loop and calls `done` exactly once,
 * later, on the same loop. code is IM_OK, or IM_SERVER_ERROR with why (e.g.
 * Redis is unavailable), or another code of SPEC §2. */
#ifndef IMGATE_ROUTE_H
#define IMGATE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "core/sbuf.h"

typedef struct route_send_args {
    int to_room;                        /* sendMessageAll */
    uint32_t appid;
    const char *uid; size_t uidlen;     /* recipient, or excluded sender */
    const char *msgid; size_t msgidlen;
    const char *msg; size_t msglen;
    sbuf *frame;                        /* the push, for local delivery (a logged
                                           message's is re-encoded with its id) */
} route_send_args;

/* dup: the msgID was already used (a no-op); sent: sendResults; stored:
 * nobody had it, it is in the user's inbox (delivery logging on). */
typedef void (*route_send_fn)(void *ud, int code, const char *why, int dup, int sent, int stored);
/* The names are valid during the call only; count of distinct users. */
typedef void (*route_list_fn)(void *ud, int code, const char *why, const char *const *names,
                              const size_t *lens, size_t count);
typedef void (*route_online_fn)(void *ud, int code, const char *why, int online);

/* Returns 0 (done will run) or -1 (no memory; done will not run). */
int route_send(const route_send_args *a, route_send_fn done, void *ud);
int route_list(uint32_t appid, route_list_fn done, void *ud);
int route_online(uint32_t appid, const char *uid, size_t uidlen, route_online_fn done, void *ud);

#endif
