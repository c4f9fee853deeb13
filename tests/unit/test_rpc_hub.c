/* test_rpc_hub.c — the gRPC server's sends through the hub with real
 * worker loops, and rpc_stop while a delivery still runs on a worker: a
 * delivery that ends during rpc_stop's grace is answered (to a cancelled
 * call) before rpc_stop returns; one that does not is abandoned after the
 * grace (~2 s) and freed by its late hub completion (LSan checks that
 * nothing leaks). The worker is held by a task that waits for the test to
 * release it, and every step waits for a signal from the code under test
 * (rpc_hub_counts_get, the call's done), never for a fixed time. Traffic
 * only to 127.0.0.1. */
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
#include "im/hub.h"
#include "im/presence.h"
#include "net/listen.h"
#include "net/worker.h"

/* Bound of every wait for an event (generous: ASan, ctest -j, busy cores). */
#define WAIT_S 60

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int runs, ok;
    uint32_t ret;
} waiter;

static char self_peer[64];

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Polls cond(arg) every 5 ms until it holds; 0 if it did not within WAIT_S. */
static int wait_until(int (*cond)(void *), void *arg)
{
    long deadline = now_ms() + WAIT_S * 1000L;
    while (!cond(arg)) {
        if (now_ms() > deadline)
            return 0;
        sleep_ms(5);
    }
    return 1;
}

static rpc_hub_counts counts(void)
{
    rpc_hub_counts c;
    rpc_hub_counts_get(&c);
    return c;
}

/* ---------- a task that holds worker 0 until released ---------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int released;
    int timed_out;               /* WAIT_S passed without a release */
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

/* Blockers that have ended (see hold_worker). */
static atomic_int blocks_done;

static void block_run(worker *w, task *t)
{
    (void)w;
    free(t);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_S;
    pthread_mutex_lock(&gate.mu);
    while (!gate.released)
        if (pthread_cond_timedwait(&gate.cond, &gate.mu, &dl) != 0) {
            gate.timed_out = 1;
            break;
        }
    pthread_mutex_unlock(&gate.mu);
    atomic_fetch_add(&blocks_done, 1);
}

/* Holds worker 0 (the hub's share queued behind the blocker waits) until
 * release_worker. */
static void hold_worker(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.released = 0;
    gate.timed_out = 0;
    pthread_mutex_unlock(&gate.mu);
    atomic_store(&blocks_done, 0);
    task *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->run = block_run;
    worker_post(worker_at(0), t);
}

static void release_worker(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.released = 1;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.mu);
}

/* Per-test teardown: a test that failed while holding the worker frees it. */
static int release_worker_after(void **state)
{
    (void)state;
    release_worker();
    return 0;
}

/* ---------- a client call's outcome ---------- */

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

static int waiter_runs(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    int runs = w->runs;
    pthread_mutex_unlock(&w->mu);
    return runs;
}

/* Waits (at most WAIT_S) for done to have run; asserts it ran once. */
static void waiter_wait(waiter *w)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_S;
    pthread_mutex_lock(&w->mu);
    while (w->runs == 0 && pthread_cond_timedwait(&w->cond, &w->mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(waiter_runs(w), 1);
}

static void waiter_free(waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
}

/* ---------- conditions for wait_until ---------- */

static long handed_goal;

static int call_on_the_hub(void *arg)
{
    (void)arg;
    rpc_hub_counts c = counts();
    return c.handed >= handed_goal && c.pending == 1;
}

static int done_ran(void *arg)
{
    return waiter_runs(arg) > 0;
}

static int late_completion_ran(void *arg)
{
    (void)arg;
    rpc_hub_counts c = counts();
    return c.late == c.abandoned;
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
    g_node.cfg.rpcTimeout = WAIT_S * 1000;       /* the client's deadline never decides */
    assert_int_equal(presence_init(), 0);
    int ws_fd, http_fd, ws_port, http_port;
    char err[256];
    assert_int_equal(listen_group("127.0.0.1", 0, 1, &ws_fd, &ws_port, err, sizeof(err)), 0);
    assert_int_equal(listen_group("127.0.0.1", 0, 1, &http_fd, &http_port, err, sizeof(err)), 0);
    hub_init();
    assert_int_equal(workers_start(1, &ws_fd, &http_fd), 0);
    start_rpc();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    release_worker();                            /* a failed test may have left it held */
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

/* Sends a SendMsg to this node while worker 0 is held, and waits until the
 * server has handed it to the hub (its delivery is queued behind the
 * blocker); returns the counts at that point. */
static rpc_hub_counts send_while_held(waiter *w)
{
    rpc_hub_counts before = counts();
    assert_int_equal(before.pending, 0);
    hold_worker();
    send_to_self(0, w);
    handed_goal = before.handed + 1;
    assert_true(wait_until(call_on_the_hub, NULL));
    rpc_hub_counts c = counts();
    assert_int_equal(c.handed, before.handed + 1);
    assert_int_equal(c.pending, 1);
    assert_int_equal(c.abandoned, before.abandoned);
    assert_int_equal(waiter_runs(w), 0);         /* not answered: the delivery waits */
    assert_int_equal(atomic_load(&blocks_done), 0);
    return c;
}

static void test_sends_through_the_hub(void **state)
{
    (void)state;
    waiter w;
    rpc_hub_counts before = counts();
    send_to_self(0, &w);
    waiter_wait(&w);
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.ret, IM_NOT_LOGGED_IN);   /* nobody is connected */
    waiter_free(&w);
    rpc_hub_counts after = counts();
    assert_int_equal(after.handed, before.handed + 1);   /* SendMsg went through the hub */
    assert_int_equal(after.pending, 0);
    send_to_self(1, &w);                         /* answered once queued */
    waiter_wait(&w);
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.ret, IM_OK);
    waiter_free(&w);
    assert_int_equal(counts().handed, after.handed);     /* SendMsgAll does not wait for it */
}

static void *stop_thread(void *arg)
{
    (void)arg;
    rpc_stop();
    return NULL;
}

/* The delivery ends during rpc_stop: rpc_stop waits for it. Order: the call
 * is on the hub; rpc_stop begins (it cancels the client's call: done runs
 * with ok = 0) while the delivery is still held; only then is the worker
 * released. rpc_stop returns after the delivery, which took the call back
 * (nothing abandoned). The one bound on time is rpc_stop's own grace (2 s)
 * for a delivery that takes milliseconds once released. */
static void test_stop_waits_for_a_short_delivery(void **state)
{
    (void)state;
    waiter w;
    rpc_hub_counts c = send_while_held(&w);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_thread, NULL), 0);
    assert_true(wait_until(done_ran, &w));       /* rpc_stop has begun */
    assert_int_equal(w.ok, 0);                   /* cancelled by the stop */
    assert_int_equal(counts().pending, 1);       /* the delivery still waits */
    assert_int_equal(atomic_load(&blocks_done), 0);
    release_worker();
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&blocks_done), 1);  /* it waited for the delivery */
    rpc_hub_counts after = counts();
    assert_int_equal(after.pending, 0);
    assert_int_equal(after.abandoned, c.abandoned);  /* taken back, not abandoned */
    assert_int_equal(after.late, c.late);
    assert_int_equal(waiter_runs(&w), 1);
    assert_int_equal(gate.timed_out, 0);
    waiter_free(&w);
    start_rpc();
}

/* The delivery outlasts the grace: rpc_stop abandons the call (the abandon
 * path really runs: counted) and returns while the worker is still held;
 * once released, the late hub completion frees the call. */
static void test_stop_abandons_a_stuck_delivery(void **state)
{
    (void)state;
    waiter w;
    rpc_hub_counts c = send_while_held(&w);
    rpc_stop();
    rpc_hub_counts after = counts();
    assert_int_equal(after.abandoned, c.abandoned + 1);  /* it gave up on the call */
    assert_int_equal(after.pending, 0);
    assert_int_equal(after.late, c.late);
    assert_int_equal(atomic_load(&blocks_done), 0);      /* before the delivery */
    assert_int_equal(waiter_runs(&w), 1);
    assert_int_equal(w.ok, 0);
    waiter_free(&w);
    release_worker();
    assert_true(wait_until(late_completion_ran, NULL));  /* the late completion frees it */
    assert_int_equal(counts().late, c.late + 1);
    assert_int_equal(atomic_load(&blocks_done), 1);
    assert_int_equal(gate.timed_out, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sends_through_the_hub),
        cmocka_unit_test_teardown(test_stop_waits_for_a_short_delivery, release_worker_after),
        cmocka_unit_test_teardown(test_stop_abandons_a_stuck_delivery, release_worker_after),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
