/* rpc.c — the gRPC module's life cycle (see rpc.h): grpc_init, the one
 * completion queue shared by the server and the client, the thread that is
 * always waiting in grpc_completion_queue_next, and the ordered stop. The
 * server is in rpc_server.c, the client in rpc_client.c, request decoding
 * in rpc_req.c; what they share is in rpc_int.h. */
#include "cluster/rpc.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster/rpc_int.h"
#include "core/log.h"

#define RPC_STOP_HUB_MS 2000     /* longest wait for deliveries of server calls */
#define RPC_STOP_WARN_MS 2000    /* period of the "still waiting" warnings */

rpc_core g_rpc = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static pthread_t rpc_thread;

uint64_t rpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void rpc_op_begin(void)
{
    pthread_mutex_lock(&g_rpc.mu);
    g_rpc.ops++;
    pthread_mutex_unlock(&g_rpc.mu);
}

void rpc_op_end(void)
{
    pthread_mutex_lock(&g_rpc.mu);
    if (--g_rpc.ops == 0)
        pthread_cond_broadcast(&g_rpc.cond);
    pthread_mutex_unlock(&g_rpc.mu);
}

/* The completion-queue thread: every tag's handler runs here. */
static void *rpc_thread_main(void *arg)
{
    (void)arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g_rpc.cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        rpc_tag *t = ev.tag;
        t->fn(t, ev.success);                    /* may free t */
        rpc_op_end();
    }
    return NULL;
}

/* Shuts the (idle) queue down, joins its thread, releases gRPC. */
static void rpc_close_cq(int has_thread)
{
    grpc_completion_queue_shutdown(g_rpc.cq);
    if (has_thread)
        pthread_join(rpc_thread, NULL);
    grpc_completion_queue_destroy(g_rpc.cq);
    g_rpc.cq = NULL;
    grpc_shutdown();
}

int rpc_start(const char *bind, int port, int *bound, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_rpc.mu);
    int again = g_rpc.running;
    pthread_mutex_unlock(&g_rpc.mu);
    if (again) {
        snprintf(err, errlen, "the gRPC server is already running");
        return -1;
    }
    grpc_init();
    g_rpc.cq = grpc_completion_queue_create_for_next(NULL);
    g_rpc.ops = 0;
    g_rpc.stopping = 0;
    if (pthread_create(&rpc_thread, NULL, rpc_thread_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the gRPC thread");
        rpc_close_cq(0);
        return -1;
    }
    if (rpc_server_start(bind, port, bound, err, errlen) != 0) {
        rpc_close_cq(1);
        return -1;
    }
    pthread_mutex_lock(&g_rpc.mu);
    g_rpc.running = 1;
    pthread_mutex_unlock(&g_rpc.mu);
    return 0;
}

static void rpc_wait_until(uint64_t ms_from_now)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)(ms_from_now / 1000);
    dl.tv_nsec += (long)(ms_from_now % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_rpc.cond, &g_rpc.mu, &dl);
}

/* Waits until every counted operation has been handled. Cancelled calls
 * complete promptly; server calls waiting for the hub are given
 * RPC_STOP_HUB_MS, then abandoned. */
static void rpc_wait_ops(void)
{
    uint64_t give_up = rpc_now_ms() + RPC_STOP_HUB_MS, warn = give_up + RPC_STOP_WARN_MS;
    pthread_mutex_lock(&g_rpc.mu);
    while (g_rpc.ops > 0) {
        uint64_t now = rpc_now_ms();
        if (now >= give_up && rpc_server_abandon_locked() > 0)
            continue;
        if (now >= warn) {
            log_warn("rpc: stopping: still waiting for %ld gRPC operations", g_rpc.ops);
            warn = now + RPC_STOP_WARN_MS;
        }
        rpc_wait_until(now < give_up ? give_up - now : RPC_STOP_WARN_MS);
    }
    pthread_mutex_unlock(&g_rpc.mu);
}

/* Before workers_stop (net/worker.h): what the cancelled calls complete
 * with is posted to workers (client completions by their callers, server
 * deliveries through the hub), and the workers must still be there to run
 * it. After it returns the queue thread is joined: nothing here posts any
 * more. */
void rpc_stop(void)
{
    pthread_mutex_lock(&g_rpc.mu);
    int run = g_rpc.running && !g_rpc.stopping;
    if (run)
        g_rpc.stopping = 1;
    pthread_mutex_unlock(&g_rpc.mu);
    if (!run)
        return;
    rpc_server_shutdown();
    rpc_client_cancel_all();
    rpc_wait_ops();
    grpc_completion_queue_shutdown(g_rpc.cq);
    pthread_join(rpc_thread, NULL);
    rpc_server_destroy();
    rpc_client_destroy();
    grpc_completion_queue_destroy(g_rpc.cq);
    g_rpc.cq = NULL;
    grpc_shutdown();
    pthread_mutex_lock(&g_rpc.mu);
    g_rpc.running = 0;
    g_rpc.stopping = 0;
    pthread_mutex_unlock(&g_rpc.mu);
}
