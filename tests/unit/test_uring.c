/* test_uring.c — net/uring on real loopback TCP sockets: a write the socket
 * cannot take answers -EAGAIN at once (it is never parked until the socket
 * is writable: uring_submit would block the worker), a write it can take in
 * part answers the part, a gathered write arrives in order, a write to a
 * reset peer fails, and more writes than the ring holds go in several
 * submits. Where the kernel refuses io_uring, uring_open must say so with
 * errno (the node then writes the old way, tested by the no_uring runs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/uring.h"

/* A connected loopback pair; the writer (w) non-blocking as libuv's are. */
static void tcp_pair(int *w, int *r)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    *r = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    assert_int_equal(setsockopt(*r, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    assert_int_equal(connect(*r, (struct sockaddr *)&a, sizeof(a)), 0);
    *w = accept(l, NULL, NULL);
    assert_true(*w >= 0);
    close(l);
    assert_int_equal(fcntl(*w, F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(*r, F_SETFL, O_NONBLOCK), 0);
}

/* Writes to w until the kernel takes nothing more. */
static void fill(int w)
{
    static char junk[65536];
    for (;;) {
        ssize_t n = write(w, junk, sizeof(junk));
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            return;
        }
    }
}

static size_t drain(int r, char *keep, size_t cap)
{
    size_t got = 0;
    char buf[65536];
    for (;;) {
        ssize_t n = read(r, buf, sizeof(buf));
        if (n <= 0)
            return got;
        if (keep && got + (size_t)n <= cap)
            memcpy(keep + got, buf, (size_t)n);
        got += (size_t)n;
    }
}

/* One write through the ring, submitted at once; its result. */
static int32_t write_now(uring *u, int fd, const struct iovec *v, unsigned n)
{
    int32_t res = 12345;
    assert_int_equal(uring_write(u, fd, v, n, &res), 0);
    assert_int_equal(uring_queued(u), 1);
    assert_int_equal(uring_submit(u), 0);
    assert_int_equal(uring_queued(u), 0);
    return res;
}

static uring *open_or_explain(void)
{
    uring *u = uring_open(8, 64);
    if (!u) {
        /* refused here: the reason is in errno, and nothing else to test */
        assert_true(errno == ENOSYS || errno == EPERM || errno == EACCES || errno == ENOMEM ||
                    errno == EINVAL);            /* EINVAL: no opcode probe (before 5.6) */
        fprintf(stderr, "io_uring refused here (%s): the node writes one system call per socket\n",
                strerror(errno));
    }
    return u;
}

/* Each test's ring and socket pair (NULL state: io_uring refused here). */
typedef struct fixture {
    uring *u;
    int w, r;
} fixture;

static int fixture_setup(void **state)
{
    static fixture f;
    f.u = open_or_explain();
    if (f.u)
        tcp_pair(&f.w, &f.r);
    *state = f.u ? &f : NULL;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    if (f) {
        close(f->w);
        if (f->r >= 0)
            close(f->r);
        uring_close(f->u);
    }
    return 0;
}

static void test_full_socket_answers_eagain(void **state)
{
    fixture *f = *state;
    if (!f)
        return;
    fill(f->w);
    char msg[188] = "x";
    struct iovec v = { msg, sizeof(msg) };
    assert_int_equal(write_now(f->u, f->w, &v, 1), -EAGAIN);
    /* and the ring is still good for the next turn */
    struct iovec v2[2] = { { msg, 10 }, { msg, 20 } };
    assert_int_equal(write_now(f->u, f->w, v2, 2), -EAGAIN);
}

/* The same on a socket in blocking mode: the send itself says not to
 * wait (a parked write would make uring_submit fail after its bound). */
static void test_full_blocking_socket_answers_eagain(void **state)
{
    fixture *f = *state;
    if (!f)
        return;
    fill(f->w);
    assert_int_equal(fcntl(f->w, F_SETFL, 0), 0);
    char msg[188] = "y";
    struct iovec v = { msg, sizeof(msg) };
    assert_int_equal(write_now(f->u, f->w, &v, 1), -EAGAIN);
    struct iovec v2[2] = { { msg, 10 }, { msg, 20 } };
    assert_int_equal(write_now(f->u, f->w, v2, 2), -EAGAIN);
}

static void test_partial_write(void **state)
{
    fixture *f = *state;
    if (!f)
        return;
    fill(f->w);
    size_t before = drain(f->r, NULL, 0);   /* some room opens up, less than what follows */
    assert_true(before > 0);
    static char big[8 * 1024 * 1024];
    struct iovec v = { big, sizeof(big) };
    int32_t res = write_now(f->u, f->w, &v, 1);
    assert_true(res > 0);
    assert_true((size_t)res < sizeof(big));
}

static void test_gathered_write_in_order(void **state)
{
    fixture *f = *state;
    if (!f)
        return;
    struct iovec v[3] = { { "alpha-", 6 }, { "beta-", 5 }, { "gamma", 5 } };
    assert_int_equal(write_now(f->u, f->w, v, 3), 16);
    char got[32] = "";
    size_t n = 0;
    while (n < 16) {
        ssize_t k = read(f->r, got + n, sizeof(got) - 1 - n);
        if (k > 0)
            n += (size_t)k;
    }
    assert_memory_equal(got, "alpha-beta-gamma", 16);
}

static void test_reset_peer_fails(void **state)
{
    fixture *f = *state;
    if (!f)
        return;
    struct linger lg = { 1, 0 };
    assert_int_equal(setsockopt(f->r, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(f->r);                         /* RST */
    f->r = -1;
    char b[100] = "";
    ssize_t first = read(f->w, b, sizeof(b));   /* takes the reset */
    assert_true(first <= 0);
    struct iovec v = { b, sizeof(b) };
    int32_t res = write_now(f->u, f->w, &v, 1);
    assert_true(res == -EPIPE || res == -ECONNRESET);
}

/* 20 sockets through a ring of 8 entries: uring_write says "full", a
 * submit makes room, every write lands on its own socket. */
static void test_more_writes_than_entries(void **state)
{
    (void)state;
    uring *u = open_or_explain();
    if (!u)
        return;
    enum { N = 20 };
    int w[N], r[N];
    int32_t res[N];
    char msg[N][8];
    unsigned submits = 0;
    for (int i = 0; i < N; i++) {
        tcp_pair(&w[i], &r[i]);
        snprintf(msg[i], sizeof(msg[i]), "m%05d", i);
        struct iovec v = { msg[i], 6 };
        if (uring_write(u, w[i], &v, 1, &res[i]) != 0) {
            assert_int_equal(uring_submit(u), 0);
            submits++;
            assert_int_equal(uring_write(u, w[i], &v, 1, &res[i]), 0);
        }
    }
    assert_int_equal(uring_submit(u), 0);
    assert_true(submits >= 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i], 6);
        char got[8] = "";
        size_t n = 0;
        while (n < 6) {
            ssize_t k = read(r[i], got + n, 6 - n);
            if (k > 0)
                n += (size_t)k;
        }
        assert_memory_equal(got, msg[i], 6);
        close(w[i]);
        close(r[i]);
    }
    uring_close(u);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);            /* as the node does (main.c) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_socket_answers_eagain, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_full_blocking_socket_answers_eagain, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_partial_write, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_gathered_write_in_order, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reset_peer_fails, fixture_setup, fixture_teardown),
        cmocka_unit_test(test_more_writes_than_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
