/* test_rpc_client.c — the gRPC client (cluster/rpc.h) against this
 * process's own server: answers of the four methods (no workers run, so
 * nobody is connected and sends report 1000), the peer health rules
 * (skipping after two failures, one trial call after the back-off, reset
 * on success), rpc_peers_json, a port already taken, and rpc_stop failing
 * an in-flight call exactly once. Traffic only to 127.0.0.1. */
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

/* Waits (at most 10 s) for done to have run once. */
static void waiter_wait(waiter *w)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
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

static void test_dead_peer_skipped(void **state)
{
    (void)state;
    char peer[64];
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", tcp_port(0, NULL));
    waiter w;
    waiter_init(&w);
    fail_once(peer);
    assert_int_equal(rpc_peer_skipped(peer), 0);
    fail_once(peer);
    assert_int_equal(rpc_peer_skipped(peer), 1);
    assert_int_equal(rpc_query_online(peer, 101, "u1", 2, on_done, &w), -1);  /* skipped */
    assert_true(peer_json_has("\"healthy\":false,\"calls\":2,\"failures\":2,\"consecutiveFailures\":2"));
    sleep_ms(1100);                              /* the first back-off is 1 s */
    assert_int_equal(rpc_peer_skipped(peer), 0);
    assert_int_equal(rpc_query_online(peer, 101, "u1", 2, on_done, &w), 0);   /* the trial */
    assert_int_equal(rpc_query_online(peer, 101, "u1", 2, on_done, &w), -1);  /* one at a time */
    waiter_wait(&w);
    assert_int_equal(w.ok, 0);
    assert_int_equal(rpc_peer_skipped(peer), 1); /* failed again: 2 s now (cluster.peerBackoff) */
    sleep_ms(1100);
    assert_int_equal(rpc_peer_skipped(peer), 1);
    assert_int_equal(w.runs, 1);
    waiter_free(&w);
    assert_int_equal(rpc_peer_skipped(self_peer), 0);
    assert_int_equal(rpc_peer_skipped("127.0.0.1:1"), 0);    /* never called */
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
    assert_int_equal(rpc_peer_skipped(peer), 1);
    g_node.cfg.maxBodyBytes = cap;
    sleep_ms(1100);
    waiter w;
    query(peer, 101, "u1", &w);
    assert_int_equal(w.ok, 1);
    assert_int_equal(w.online, 1);
    waiter_free(&w);
    assert_int_equal(rpc_peer_skipped(peer), 0);
    char want[256];
    snprintf(want, sizeof(want), "{\"peer\":\"%s\",\"healthy\":true,\"calls\":3,\"failures\":2,"
             "\"consecutiveFailures\":0,\"lastError\":\"RESOURCE_EXHAUSTED: ", peer);
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

/* rpc_stop fails a call that would otherwise wait for its deadline: done
 * runs once, with ok = 0, before rpc_stop returns; later calls are refused. */
static void test_stop_fails_in_flight(void **state)
{
    (void)state;
    int fd = -1;
    char peer[64];
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", tcp_port(1, &fd));
    g_node.cfg.rpcTimeout = 30000;
    waiter w;
    waiter_init(&w);
    assert_int_equal(rpc_query_online(peer, 101, "u1", 2, on_done, &w), 0);
    sleep_ms(200);
    if (w.runs)
        fprintf(stderr, "early: ok %d err %s\n", w.ok, w.err);
    assert_int_equal(w.runs, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rpc_stop();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(w.runs, 1);
    assert_int_equal(w.ok, 0);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    assert_int_equal(rpc_query_online(self_peer, 101, "u1", 2, on_done, &w), -1);
    assert_true(peer_json_has("[]"));
    rpc_stop();                                  /* harmless twice */
    assert_int_equal(w.runs, 1);
    waiter_free(&w);
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
        cmocka_unit_test(test_dead_peer_skipped),
        cmocka_unit_test(test_recovery_resets),
        cmocka_unit_test(test_port_taken),
        cmocka_unit_test(test_stop_fails_in_flight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
