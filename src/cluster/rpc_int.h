/* rpc_int.h — what the parts of the gRPC module share (private to
 * src/cluster/rpc*.c): the completion queue, its thread, one mutex and the
 * count of operations whose completion has not been handled yet.
 *
 * Rules that keep the completion queue safe to shut down:
 *  - every operation that will put a tag on the queue is counted with
 *    rpc_op_begin (or under g_rpc.mu by incrementing g_rpc.ops) BEFORE it
 *    is started; the queue thread uncounts it after running the tag;
 *  - a server call handed to the hub counts as the operation of its reply
 *    from that moment (its reply may come from a worker at any time);
 *  - new work starts only while g_rpc.running && !g_rpc.stopping, checked
 *    under g_rpc.mu, or from the queue thread while it runs a counted tag;
 *  - rpc_stop shuts the queue down only once g_rpc.ops is 0 (after ~2 s it
 *    abandons the calls still waiting for the hub). */
#ifndef IMGATE_RPC_INT_H
#define IMGATE_RPC_INT_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdint.h>

#include "cluster/rpc.h"

/* A tag on the completion queue: fn runs on the queue thread. */
typedef struct rpc_tag {
    void (*fn)(struct rpc_tag *t, int ok);
} rpc_tag;

typedef struct rpc_core {
    pthread_mutex_t mu;
    pthread_cond_t cond;         /* ops or server calls waiting on hub drop */
    grpc_completion_queue *cq;
    int running;                 /* between rpc_start and the end of rpc_stop */
    int stopping;                /* rpc_stop has begun: no new work */
    long ops;                    /* counted operations (see above) */
} rpc_core;

extern rpc_core g_rpc;

/* Counts one operation / uncounts one (take g_rpc.mu). rpc_op_end is for
 * an operation that could not be started; the queue thread uncounts the
 * others. */
void rpc_op_begin(void);
void rpc_op_end(void);
/* Milliseconds on a monotonic clock. */
uint64_t rpc_now_ms(void);

/* rpc_server.c */
int rpc_server_start(const char *bind, int port, int *bound, char *err, size_t errlen);
void rpc_server_shutdown(void);          /* shutdown_and_notify + cancel_all_calls */
/* Gives up on the calls whose delivery still runs on the workers: their
 * gRPC parts are released and their operations uncounted now; their hub
 * completion only frees them. Returns how many. Under g_rpc.mu. */
long rpc_server_abandon_locked(void);
void rpc_server_destroy(void);

/* rpc_sec.c (see rpc_security_load) */
grpc_server_credentials *rpc_sec_server_creds(void);      /* the caller releases them */
grpc_channel_credentials *rpc_sec_channel_creds(void);    /* the caller releases them */
/* Whether an incoming call's metadata passes cluster.rpcToken (always, when
 * it is not set); a refusal is counted. Queue thread. */
int rpc_sec_allowed(const grpc_metadata_array *md, grpc_call *call);
/* The metadata every outgoing call sends (count 0 when there is no token). */
const grpc_metadata *rpc_sec_call_md(size_t *count);

/* rpc_client.c */
void rpc_client_cancel_all(void);
void rpc_client_destroy(void);

#endif
