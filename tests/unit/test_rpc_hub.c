/* test_rpc_hub.c — the gRPC server's sends through the hub with real
 * worker loops, and rpc_stop while a delivery still runs on a worker: a
 * delivery that ends within the grace is answered (to a cancelled call)
 * before rpc_stop returns; one that does not is abandoned after about 2 s
 * and freed by its late hub completion (LSan checks that nothing leaks).
 * A worker is kept busy by posting it a task that sleeps. Traffic only to
 * 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include "cluster/rpc.h"
#include "core/node.h"
#include "im/codes.h"
#include "im/presence.h"
#include "net/listen.h"
#include "net/worker.h"

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int runs, ok;
    uint32_t ret;
} waiter;

typedef struct blocker {
    task t;
    long ms;
} blocker;

static char self_peer[64];

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Blockers that have finished sleeping (see block_worker). */
static atomic_int blocks_done;

/* Waits (at most 10 s) until n blockers have finished. */
static void wait_blocks(int n)
{
    for (int i = 0; i < 1000 && atomic_load(&blocks_done) < n; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&blocks_done), n);
}

static void on_done(void *ud, const rpc_result *res)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->runs++;
    w->ok = res->ok;
    w->ret = res->ret_code;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
}

static void waiter_wait(waiter *w)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&w->mu);
    while (w->runs == 0 && pthread_cond_timedwait(&w->cond, &w->mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(w->runs, 1);
}

static void waiter_free(waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
}

static void block_run(worker *w, task *t)
{
    (void)w;
    blocker *b = (blocker *)t;
    sleep_ms(b->ms);
    free(b);
    atomic_fetch_add(&blocks_done, 1);
}

/* Keeps worker 0 busy for ms (the hub's share queued behind it waits). */
static void block_worker(long ms)
{
    blocker *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->t.run = block_run;
    b->ms = ms;
    worker_post(worker_at(0), &b->t);
}

static void start_rpc(void)
{
    char err[256] = "";
    int port = 0;
    assert_int_equal(rpc_start("127.0.0.1", 0, &port, err, sizeof(err)), 0);
    snprintf(self_peer, sizeof(self_peer), "127.0.0.1:%d", port);
}

static int setup(void **state)
{
    (void)state;
    config_defaults(&g_node.cfg);
    g_node.cfg.shutdownGrace = 1;
    assert_int_equal(presence_init(), 0);
    int ws_fd, http_fd, ws_port, http_port;
    char err[256];
    assert_int_equal(listen_group("127.0.0.1", 0, 1, &ws_fd, &ws_port, err, sizeof(err)), 0);
    assert_int_equal(listen_group("127.0.0.1", 0, 1, &http_fd, &http_port, err, sizeof(err)), 0);
    assert_int_equal(workers_start(1, &ws_fd, &http_fd), 0);
    start_rpc();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rpc_stop();
    workers_stop();                               /* runs what is left in the inboxes */
    presence_free();
    return 0;
}

static void send_to_self(int all, waiter *w)
{
    rpc_msg m = { .seq = "h1", .seqlen = 2, .appid = 101, .uid = "u1", .uidlen = 2,
                  .cms = "msg", .msg = "hi", .msglen = 2 };
    waiter_init(w);
    int rc = all ? rpc_send_msg_all(self_peer, &m, on_done, w) : rpc_send_msg(self_peer, &m, on_done, w);
    assert_int_equal(rc, 0);
}

static void test_sends_through_the_hub(void **state)
{
    (void)state;
    waiter w;
    send_to_self(0, &w);
    waiter_wait(&w);
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.ret, IM_NOT_LOGGED_IN);   /* nobody is connected */
    waiter_free(&w);
    send_to_self(1, &w);                         /* answered once queued */
    waiter_wait(&w);
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.ret, IM_OK);
    waiter_free(&w);
}

/* The delivery ends during rpc_stop's grace: rpc_stop waits for it. */
static void test_stop_waits_for_a_short_delivery(void **state)
{
    (void)state;
    waiter w;
    atomic_store(&blocks_done, 0);
    block_worker(700);
    send_to_self(0, &w);
    sleep_ms(300);                               /* the call reaches the hub */
    assert_int_equal(w.runs, 0);
    rpc_stop();
    assert_int_equal(atomic_load(&blocks_done), 1);  /* it waited for the delivery */
    assert_int_equal(w.runs, 1);                 /* cancelled by the stop */
    assert_int_equal(w.ok, 0);
    waiter_free(&w);
    start_rpc();
}

/* The delivery outlasts the grace: the call is abandoned after ~2 s and
 * freed when the worker finally runs the hub's share. */
static void test_stop_abandons_a_stuck_delivery(void **state)
{
    (void)state;
    waiter w;
    atomic_store(&blocks_done, 0);
    block_worker(3500);
    send_to_self(0, &w);
    sleep_ms(300);
    assert_int_equal(w.runs, 0);
    rpc_stop();
    assert_int_equal(atomic_load(&blocks_done), 0);  /* it gave up before the delivery */
    assert_int_equal(w.runs, 1);
    assert_int_equal(w.ok, 0);
    waiter_free(&w);
    wait_blocks(1);                              /* the late completion frees the call */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sends_through_the_hub),
        cmocka_unit_test(test_stop_waits_for_a_short_delivery),
        cmocka_unit_test(test_stop_abandons_a_stuck_delivery),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
