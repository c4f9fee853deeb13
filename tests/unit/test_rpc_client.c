/* test_rpc_client.c — the gRPC client (cluster/rpc.h) against this
 * process's own server: answers of the four methods (no workers run, so
 * nobody is connected and sends report 1000), the peer health rules
 * (skipping after two failures, one trial call after the back-off, reset
 * on success), rpc_peers_json, a port already taken, and rpc_stop failing
 * an in-flight call exactly once. Traffic only to 127.0.0.1.
 *
 * No fixed sleep orders events here: the tests wait for a call's done, a
 * state polled until it holds (bounded by WAIT_S) or a connection on a
 * test socket. Peer health is checked by order: a call refused while the
 * peer is skipped leaves its "calls" count (rpc_peers_json) unchanged, and
 * the trial call is kept in flight by holding the completion-queue thread
 * (a done callback that waits for the test), so the calls made meanwhile
 * must be skipped whatever the time. The back-offs themselves are checked
 * by lower bounds on elapsed time, which load can only lengthen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/rpc.h"
#include "core/jsonw.h"
#include "core/node.h"
#include "im/codes.h"
#include "im/presence.h"

/* One call's outcome, copied out of done. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int runs;
    int lens_bad;                 /* a user_lens entry disagreed with strlen */
    int ok, online;
    uint32_t ret;
    char err[256];
    size_t nusers;
    char users[8][32];
} waiter;

/* Bound of every wait for an event (generous: ASan, ctest -j, busy cores). */
#define WAIT_S 60
/* The client's first back-off (rpc.h: 1 s, doubling after a failed trial). */
#define BACKOFF_FIRST_MS 1000L

static char self_peer[64];
static pres_entry *held[3];

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
}

static void waiter_free(waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
}

static void on_done(void *ud, const rpc_result *res)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->runs++;
    w->ok = res->ok;
    w->ret = res->ret_code;
    w->online = res->online;
    snprintf(w->err, sizeof(w->err), "%s", res->err ? res->err : "");
    w->nusers = res->nusers;
    for (size_t i = 0; i < res->nusers && i < 8; i++) {
        w->lens_bad |= strlen(res->users[i]) != res->user_lens[i];
        snprintf(w->users[i], sizeof(w->users[i]), "%s", res->users[i]);
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static int waiter_runs(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    int runs = w->runs;
    pthread_mutex_unlock(&w->mu);
    return runs;
}

/* Waits (at most WAIT_S) for done to have run once. */
static void waiter_wait(waiter *w)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_S;
    pthread_mutex_lock(&w->mu);
    while (w->runs == 0 && pthread_cond_timedwait(&w->cond, &w->mu, &dl) == 0)
        ;
    int runs = w->runs;
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(runs, 1);
    assert_int_equal(w->lens_bad, 0);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Milliseconds on the monotonic clock, truncated as the client's clock is
 * (so "not skipped at t1" and "t0 before the failure" give t1 - t0 >= the
 * back-off exactly). */
static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Polls rpc_peer_skipped(peer) every 5 ms until it is 0 (the back-off has
 * run out); fails after WAIT_S. Returns the time it was seen. */
static long wait_not_skipped(const char *peer)
{
    long deadline = now_ms() + WAIT_S * 1000L;
    while (rpc_peer_skipped(peer)) {
        assert_true(now_ms() < deadline);
        sleep_ms(5);
    }
    return now_ms();
}

/* ---------- holding the completion-queue thread ---------- */

/* A done callback that does not return until release_queue: while it
 * waits, no other completion is handled, so a call in flight stays in
 * flight. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int entered, released, timed_out;
} cq_gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static void on_done_hold(void *ud, const rpc_result *res)
{
    on_done(ud, res);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_S;
    pthread_mutex_lock(&cq_gate.mu);
    cq_gate.entered = 1;
    pthread_cond_broadcast(&cq_gate.cond);
    while (!cq_gate.released)
        if (pthread_cond_timedwait(&cq_gate.cond, &cq_gate.mu, &dl) != 0) {
            cq_gate.timed_out = 1;
            break;
        }
    pthread_mutex_unlock(&cq_gate.mu);
}

/* Makes a call to this node whose done holds the queue thread; returns
 * once it holds it. */
static void hold_queue(waiter *w)
{
    pthread_mutex_lock(&cq_gate.mu);
    cq_gate.entered = cq_gate.released = cq_gate.timed_out = 0;
    pthread_mutex_unlock(&cq_gate.mu);
    waiter_init(w);
    assert_int_equal(rpc_query_online(self_peer, 101, "u1", 2, on_done_hold, w), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_S;
    pthread_mutex_lock(&cq_gate.mu);
    while (!cq_gate.entered && pthread_cond_timedwait(&cq_gate.cond, &cq_gate.mu, &dl) == 0)
        ;
    int entered = cq_gate.entered;
    pthread_mutex_unlock(&cq_gate.mu);
    assert_int_equal(entered, 1);
}

static void release_queue(void)
{
    pthread_mutex_lock(&cq_gate.mu);
    cq_gate.released = 1;
    pthread_cond_broadcast(&cq_gate.cond);
    pthread_mutex_unlock(&cq_gate.mu);
}

/* Per-test teardown: a test that failed while holding the queue frees it. */
static int release_queue_after(void **state)
{
    (void)state;
    release_queue();
    return 0;
}

/* A loopback TCP socket bound to a free port: listening (accepts nothing,
 * never speaks HTTP/2) or, with listening = 0, closed again so that nothing
 * answers on the port. */
static int tcp_port(int listening, int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (listening)
        assert_int_equal(listen(fd, 16), 0);
    if (fd_out && listening)
        *fd_out = fd;
    else
        close(fd);
    return ntohs(a.sin_port);
}

static int setup(void **state)
{
    (void)state;
    config_defaults(&g_node.cfg);
    g_node.cfg.rpcTimeout = 2000;
    g_node.cfg.peerBackoff = 2;
    assert_int_equal(presence_init(), 0);
    int first;
    held[0] = presence_acquire(101, "u1", 2, &first, NULL, NULL);
    held[1] = presence_acquire(102, "u1", 2, &first, NULL, NULL);
    held[2] = presence_acquire(101, "u2", 2, &first, NULL, NULL);
    char err[256] = "";
    int port = 0;
    assert_int_equal(rpc_start("127.0.0.1", 0, &port, err, sizeof(err)), 0);
    assert_true(port > 0);
    snprintf(self_peer, sizeof(self_peer), "127.0.0.1:%d", port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    release_queue();                             /* a failed test may have left it held */
    rpc_stop();
    for (int i = 0; i < 3; i++)
        presence_release(held[i], NULL, NULL);
    presence_free();
    return 0;
}

static void test_start_errors(void **state)
{
    (void)state;
    char err[256] = "";
    int port = 0;
    assert_int_equal(rpc_start("127.0.0.1", 0, &port, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already running"));
}

static void query(const char *peer, uint32_t appid, const char *uid, waiter *w)
{
    waiter_init(w);
    assert_int_equal(rpc_query_online(peer, appid, uid, strlen(uid), on_done, w), 0);
    waiter_wait(w);
}

static void test_query_online(void **state)
{
    (void)state;
    waiter w;
    query(self_peer, 101, "u1", &w);
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.ret, IM_OK);
    assert_int_equal(w.online, 1);
    waiter_free(&w);
    query(self_peer, 101, "zz", &w);
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.online, 0);
    waiter_free(&w);
    query(self_peer, 0, "u2", &w);             /* any platform */
    assert_int_equal(w.online, 1);
    waiter_free(&w);
    query(self_peer, 103, "u1", &w);
    assert_int_equal(w.online, 0);
    waiter_free(&w);
}

static void user_list(uint32_t appid, waiter *w)
{
    waiter_init(w);
    assert_int_equal(rpc_get_user_list(self_peer, appid, on_done, w), 0);
    waiter_wait(w);
    assert_int_equal(w->ok, 1);
    assert_int_equal(w->ret, IM_OK);
}

static void test_user_list(void **state)
{
    (void)state;
    waiter w;
    user_list(0, &w);                            /* all rooms: u1 once */
    assert_int_equal(w.nusers, 2);
    assert_string_equal(w.users[0], "u1");
    assert_string_equal(w.users[1], "u2");
    waiter_free(&w);
    user_list(102, &w);
    assert_int_equal(w.nusers, 1);
    assert_string_equal(w.users[0], "u1");
    waiter_free(&w);
    user_list(104, &w);
    assert_int_equal(w.nusers, 0);
    waiter_free(&w);
}

static void do_send(int all, const char *uid, const char *msg, waiter *w)
{
    rpc_msg m = { .seq = "s1", .seqlen = 2, .appid = 101, .uid = uid, .uidlen = strlen(uid),
                  .cms = "msg", .msg = msg, .msglen = strlen(msg) };
    waiter_init(w);
    int rc = all ? rpc_send_msg_all(self_peer, &m, on_done, w) : rpc_send_msg(self_peer, &m, on_done, w);
    assert_int_equal(rc, 0);
    waiter_wait(w);
    assert_int_equal(w->ok, 1);
}

static void test_send(void **state)
{
    (void)state;
    waiter w;
    do_send(0, "u1", "hi", &w);                     /* no workers: nobody is connected */
    assert_int_equal(w.ret, IM_NOT_LOGGED_IN);
    assert_string_equal(w.err, "user is not connected to this node");
    waiter_free(&w);
    do_send(0, "u1", "bad \xc3\x28", &w);
    assert_int_equal(w.ret, IM_PARAM_ILLEGAL);
    waiter_free(&w);
    do_send(0, "0123456789012345678901234", "hi", &w);
    assert_int_equal(w.ret, IM_USER_ID_ILLEGAL);
    waiter_free(&w);
    do_send(1, "u1", "to all", &w);
    assert_int_equal(w.ret, IM_OK);
    waiter_free(&w);
}

static int peer_json_has(const char *needle)
{
    jsonw j;
    jsonw_init(&j, 0);
    rpc_peers_json(&j);
    size_t len;
    const char *text = jsonw_text(&j, &len);
    assert_non_null(text);
    int found = strstr(text, needle) != NULL;
    if (!found)
        fprintf(stderr, "peers: %s\n", text);
    jsonw_free(&j);
    return found;
}

/* A call to peer that must fail (ok = 0). */
static void fail_once(const char *peer)
{
    waiter w;
    query(peer, 101, "u1", &w);
    assert_int_equal(w.ok, 0);
    assert_true(w.err[0] != '\0');
    waiter_free(&w);
}

/* Whether rpc_peers_json shows peer with exactly these numbers. */
static int peer_state_is(const char *peer, int healthy, long calls, long failures, int consecutive)
{
    char want[256];
    snprintf(want, sizeof(want), "{\"peer\":\"%s\",\"healthy\":%s,\"calls\":%ld,\"failures\":%ld,"
             "\"consecutiveFailures\":%d,", peer, healthy ? "true" : "false", calls, failures,
             consecutive);
    return peer_json_has(want);
}

/* A loopback port where nothing listens: calls to it fail at once. */
static void closed_peer(char *peer, size_t cap)
{
    snprintf(peer, cap, "127.0.0.1:%d", tcp_port(0, NULL));
}

/* Makes a fresh dead peer fail twice and checks that a call made right
 * after the second failure is skipped without being made (its calls count
 * stays 2). The back-off starts when the second failure is accounted, after
 * *t0: a call made before *t0 + 1 s must be refused, so one that went out
 * is a failure unless a full second had passed (the machine stalled; then
 * it starts over with another peer). */
static void make_skipped_peer(char *peer, size_t cap, long *t0)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        closed_peer(peer, cap);
        fail_once(peer);
        assert_int_equal(rpc_peer_skipped(peer), 0);
        assert_true(peer_state_is(peer, 1, 1, 1, 1));
        *t0 = now_ms();
        fail_once(peer);
        assert_true(peer_state_is(peer, 0, 2, 2, 2));   /* unhealthy, whatever the time */
        waiter w;
        waiter_init(&w);
        int skipped = rpc_peer_skipped(peer);
        int rc = rpc_query_online(peer, 101, "u1", 2, on_done, &w);
        long t_after = now_ms();
        if (skipped && rc == -1) {
            assert_true(peer_state_is(peer, 0, 2, 2, 2));   /* no call was made */
            assert_int_equal(w.runs, 0);
            waiter_free(&w);
            return;
        }
        /* Not skipped: only possible once the back-off has run out. */
        assert_true(t_after - *t0 >= BACKOFF_FIRST_MS);
        fprintf(stderr, "stalled for %ld ms: the back-off ran out before it was checked; "
                "again with another peer\n", t_after - *t0);
        if (rc == 0)
            waiter_wait(&w);
        waiter_free(&w);
    }
    fail_msg("the test thread stalled for over a second five times in a row");
}

/* Two failures make a peer skipped for 1 s; the trial call after it goes
 * out alone (the calls made while it is in flight are skipped); its failure
 * doubles the back-off. */
static void test_dead_peer_skipped(void **state)
{
    (void)state;
    int backoff_max = g_node.cfg.peerBackoff;
    g_node.cfg.peerBackoff = 30;                 /* the doubling is not capped at 2 s */
    char peer[64];
    long t0;
    make_skipped_peer(peer, sizeof(peer), &t0);
    long t1 = wait_not_skipped(peer);
    assert_true(t1 - t0 >= BACKOFF_FIRST_MS);    /* it was skipped for its whole back-off */
    assert_true(peer_state_is(peer, 0, 2, 2, 2)); /* and no call was made meanwhile */

    /* The trial, held in flight: the queue thread cannot handle its end. */
    waiter hold, trial, other;
    hold_queue(&hold);
    waiter_init(&trial);
    waiter_init(&other);
    assert_int_equal(rpc_query_online(peer, 101, "u1", 2, on_done, &trial), 0);  /* goes out */
    assert_true(peer_state_is(peer, 0, 3, 2, 2));
    assert_int_equal(rpc_peer_skipped(peer), 1); /* while the trial is in flight */
    assert_int_equal(rpc_query_online(peer, 101, "u1", 2, on_done, &other), -1); /* one at a time */
    assert_true(peer_state_is(peer, 0, 3, 2, 2)); /* not made */
    assert_int_equal(waiter_runs(&trial), 0);
    t0 = now_ms();                               /* the trial's failure is accounted after this */
    release_queue();
    waiter_wait(&hold);
    assert_int_equal(hold.ok, 1);
    waiter_wait(&trial);
    assert_int_equal(trial.ok, 0);
    assert_int_equal(cq_gate.timed_out, 0);
    assert_true(peer_state_is(peer, 0, 3, 3, 3));

    /* Skipped again, now for 2 s: a call that goes out before that is wrong. */
    int rc = rpc_query_online(peer, 101, "u1", 2, on_done, &other);
    long t_after = now_ms();
    if (rc == 0) {
        assert_true(t_after - t0 >= 2 * BACKOFF_FIRST_MS);
        waiter_wait(&other);
    } else {
        assert_true(peer_state_is(peer, 0, 3, 3, 3));
    }
    t1 = wait_not_skipped(peer);
    assert_true(t1 - t0 >= 2 * BACKOFF_FIRST_MS);   /* the back-off doubled */
    assert_int_equal(waiter_runs(&other), rc == 0 ? 1 : 0);
    waiter_free(&hold);
    waiter_free(&trial);
    waiter_free(&other);
    assert_int_equal(rpc_peer_skipped(self_peer), 0);
    assert_int_equal(rpc_peer_skipped("127.0.0.1:1"), 0);    /* never called */
    g_node.cfg.peerBackoff = backoff_max;
}

/* A peer that fails (its answers are over the size cap) and then recovers:
 * the trial call's success makes it healthy again. */
static void test_recovery_resets(void **state)
{
    (void)state;
    char peer[96];
    snprintf(peer, sizeof(peer), "ipv4:%s", self_peer);   /* same server, another peer */
    size_t cap = g_node.cfg.maxBodyBytes;
    g_node.cfg.maxBodyBytes = 2;                /* the server refuses every request */
    fail_once(peer);
    fail_once(peer);
    assert_true(peer_state_is(peer, 0, 2, 2, 2));
    g_node.cfg.maxBodyBytes = cap;
    wait_not_skipped(peer);
    waiter w;
    query(peer, 101, "u1", &w);                 /* the trial */
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.online, 1);
    waiter_free(&w);
    assert_int_equal(rpc_peer_skipped(peer), 0);
    char want[256];
    snprintf(want, sizeof(want), "{\"peer\":\"%s\",\"healthy\":true,\"calls\":3,\"failures\":2,"
             "\"consecutiveFailures\":0,\"skippedForMs\":0,\"lastError\":\"RESOURCE_EXHAUSTED: ", peer);
    assert_true(peer_json_has(want));
}

static void test_bad_arguments(void **state)
{
    (void)state;
    waiter w;
    waiter_init(&w);
    char longpeer[200];
    memset(longpeer, 'a', sizeof(longpeer) - 1);
    longpeer[sizeof(longpeer) - 1] = '\0';
    assert_int_equal(rpc_query_online(longpeer, 101, "u1", 2, on_done, &w), -1);
    assert_int_equal(rpc_query_online(NULL, 101, "u1", 2, on_done, &w), -1);
    assert_int_equal(rpc_get_user_list(self_peer, 101, NULL, &w), -1);
    assert_int_equal(rpc_send_msg(self_peer, NULL, on_done, &w), -1);
    assert_int_equal(w.runs, 0);
    waiter_free(&w);
}

static void test_port_taken(void **state)
{
    (void)state;
    int fd = -1;
    int port = tcp_port(1, &fd);
    rpc_stop();
    char err[256] = "";
    int bound = 0;
    assert_int_equal(rpc_start("127.0.0.1", port, &bound, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot listen"));
    close(fd);
    assert_int_equal(rpc_start("127.0.0.1", 0, &bound, err, sizeof(err)), 0);
    snprintf(self_peer, sizeof(self_peer), "127.0.0.1:%d", bound);
    waiter w;
    query(self_peer, 101, "u1", &w);
    assert_int_equal(w.online, 1);
    waiter_free(&w);
}

/* Must-calls (a logged send) go to a skipped peer, but at most 64 of them
 * in flight: a peer that accepts TCP and never answers holds each until its
 * deadline. Made skipped with two short failures; then 70 must-calls within
 * the 1 s back-off: 64 are made (65 if the machine stalled past the
 * back-off: the first is then its trial), the rest refused at once. */
#define FORCED_MAX 64
#define FORCED_TRIES 70
static void test_forced_calls_capped(void **state)
{
    (void)state;
    int fd = -1;
    char peer[64];
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", tcp_port(1, &fd));
    g_node.cfg.rpcTimeout = 200;
    fail_once(peer);
    fail_once(peer);
    assert_true(peer_state_is(peer, 0, 2, 2, 2));
    g_node.cfg.rpcTimeout = 5000;                /* the made ones stay in flight */
    static waiter ws[FORCED_TRIES];
    int made = 0, refused = 0;
    rpc_msg m = { .seq = "f1", .seqlen = 2, .appid = 101, .uid = "u1", .uidlen = 2,
                  .cms = "msg", .msg = "m", .msglen = 1, .must = 1 };
    for (int i = 0; i < FORCED_TRIES; i++) {
        waiter_init(&ws[i]);
        if (rpc_send_msg_all(peer, &m, on_done, &ws[i]) == 0)
            made++;
        else
            refused++;
    }
    if (made != FORCED_MAX)
        fprintf(stderr, "made %d must-calls to a skipped peer, refused %d\n", made, refused);
    assert_true(made == FORCED_MAX || made == FORCED_MAX + 1);
    assert_int_equal(made + refused, FORCED_TRIES);
    m.must = 0;
    waiter w;
    waiter_init(&w);
    assert_int_equal(rpc_send_msg_all(peer, &m, on_done, &w), -1);   /* still skipped */
    waiter_free(&w);
    for (int i = 0; i < FORCED_TRIES; i++) {
        if (i < made)                            /* the made ones are the first ones */
            waiter_wait(&ws[i]);
        assert_int_equal(ws[i].runs, i < made ? 1 : 0);
        waiter_free(&ws[i]);
    }
    close(fd);
    g_node.cfg.rpcTimeout = 2000;
}

/* Accepts one connection on the listening fd (at most WAIT_S); returns it. */
static int accept_within(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, WAIT_S * 1000), 1);
    int c = accept(fd, NULL, NULL);
    assert_true(c >= 0);
    return c;
}

/* rpc_stop fails a call that would otherwise wait for its deadline: done
 * runs once, with ok = 0 and the status of a cancelled call, before rpc_stop
 * returns; later calls are refused. The peer accepts the connection and
 * never speaks; the call's deadline (120 s) is beyond the bound on rpc_stop
 * (60 s), which only guards against a hang. */
static void test_stop_fails_in_flight(void **state)
{
    (void)state;
    int fd = -1;
    char peer[64];
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", tcp_port(1, &fd));
    g_node.cfg.rpcTimeout = 120000;
    waiter w;
    waiter_init(&w);
    assert_int_equal(rpc_query_online(peer, 101, "u1", 2, on_done, &w), 0);
    int conn = accept_within(fd);               /* the call has reached the peer */
    if (waiter_runs(&w))
        fprintf(stderr, "early: ok %d err %s\n", w.ok, w.err);
    assert_int_equal(waiter_runs(&w), 0);
    long t0 = now_ms();
    rpc_stop();
    long t1 = now_ms();
    assert_int_equal(w.runs, 1);
    assert_int_equal(w.ok, 0);
    if (strncmp(w.err, "CANCELLED", 9) != 0)
        fprintf(stderr, "err: %s\n", w.err);
    assert_int_equal(strncmp(w.err, "CANCELLED", 9), 0);    /* by the stop, not a deadline */
    assert_true(t1 - t0 < 60000);
    assert_int_equal(rpc_query_online(self_peer, 101, "u1", 2, on_done, &w), -1);
    assert_true(peer_json_has("[]"));
    rpc_stop();                                  /* harmless twice */
    assert_int_equal(w.runs, 1);
    waiter_free(&w);
    close(conn);
    close(fd);
    g_node.cfg.rpcTimeout = 2000;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_query_online),
        cmocka_unit_test(test_user_list),
        cmocka_unit_test(test_send),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test_teardown(test_dead_peer_skipped, release_queue_after),
        cmocka_unit_test(test_recovery_resets),
        cmocka_unit_test(test_forced_calls_capped),
        cmocka_unit_test(test_port_taken),
        cmocka_unit_test(test_stop_fails_in_flight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
