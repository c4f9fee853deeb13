/* test_rxring.c — imgate-bench's receive ring (tools/bench/rxring.h) on
 * real loopback sockets: data in order per socket, the peer's close, a
 * cancelled receive, and a receive the kernel stopped for want of a buffer
 * (armed again by its callback) losing nothing. Where the kernel refuses
 * the ring, the refusal is checked (from 6.1 on only a policy may refuse
 * it) and there is nothing else to test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "rxring.h"

#define NSOCK 4
#define NMANY 64

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
    assert_int_equal(connect(*r, (struct sockaddr *)&a, sizeof(a)), 0);
    *w = accept(l, NULL, NULL);
    assert_true(*w >= 0);
    close(l);
}

/* What the callbacks saw, per tag. */
typedef struct seen {
    rxring *g;
    int fd[NSOCK];
    char got[NSOCK][8192];
    size_t len[NSOCK];
    int eof[NSOCK], cancelled[NSOCK], nobufs, chunks;
    unsigned bufsz;
} seen;

/* Reads on after data and after -ENOBUFS (the ring arms the receive
 * again), as the clients do. */
static int on_read(void *ud, uint32_t tag, const uint8_t *p, int n)
{
    seen *s = ud;
    assert_true(tag < NSOCK);
    if (n > 0) {
        assert_non_null(p);
        assert_true((unsigned)n <= s->bufsz);
        assert_true(s->len[tag] + (size_t)n <= sizeof(s->got[tag]));
        s->chunks++;
        memcpy(s->got[tag] + s->len[tag], p, (size_t)n);
        s->len[tag] += (size_t)n;
    } else if (n == 0) {
        s->eof[tag] = 1;
    } else if (n == -ECANCELED) {
        s->cancelled[tag] = 1;
    } else {
        assert_int_equal(n, -ENOBUFS);
        s->nobufs++;
    }
    return n > 0 || n == -ENOBUFS;
}

/* Runs the ring with callback fn until done(s) holds. While it does not,
 * something is due, so the eventfd must say so: a wake-up the ring lost
 * fails here. */
static void run_with(seen *s, rxring_fn fn, int (*done)(const seen *))
{
    for (int i = 0; i < 1000 && !done(s); i++) {
        struct pollfd p = { .fd = rxring_fd(s->g), .events = POLLIN };
        assert_int_equal(poll(&p, 1, 5000), 1);
        assert_true(rxring_run(s->g, fn, s) >= 0);
    }
    assert_true(done(s));
}

static void run_until(seen *s, int (*done)(const seen *)) { run_with(s, on_read, done); }

/* Whether the kernel is at least major.minor (uname). */
static int kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return 0;
    return ma > major || (ma == major && mi >= minor);
}

/* The ring, or NULL where the kernel refuses it. From 6.1 on the kernel
 * has everything the ring uses, so only a policy may refuse it (seccomp,
 * kernel.io_uring_disabled: EPERM or EACCES); any other failure there is
 * the ring's own and fails the test. */
static rxring *open_or_explain(unsigned nbufs, unsigned bufsz)
{
    rxring *g = rxring_open(nbufs, bufsz);
    if (!g) {
        int e = errno;
        if (kernel_at_least(6, 1))
            assert_true(e == EPERM || e == EACCES);
        else
            assert_true(e == ENOSYS || e == EINVAL || e == EPERM || e == EACCES || e == ENOMEM);
        fprintf(stderr, "no receive ring here (%s): imgate-bench reads with epoll\n", strerror(e));
    }
    return g;
}

static int all_12(const seen *s)
{
    for (int i = 0; i < NSOCK; i++)
        if (s->len[i] < 12)
            return 0;
    return 1;
}

static int all_eof(const seen *s)
{
    for (int i = 0; i < NSOCK; i++)
        if (!s->eof[i])
            return 0;
    return 1;
}

static void test_data_in_order_then_eof(void **state)
{
    (void)state;
    static seen s;
    memset(&s, 0, sizeof(s));
    if (!(s.g = open_or_explain(8, 4096)))
        return;
    s.bufsz = 4096;
    int w[NSOCK];
    for (int i = 0; i < NSOCK; i++) {
        tcp_pair(&w[i], &s.fd[i]);
        assert_int_equal(rxring_arm(s.g, s.fd[i], (uint32_t)i), 0);
    }
    for (int i = 0; i < NSOCK; i++) {
        char m[16];
        snprintf(m, sizeof m, "s%d-first.", i);          /* 9 bytes */
        assert_int_equal(write(w[i], m, 9), 9);
        assert_int_equal(write(w[i], "abc", 3), 3);
    }
    run_until(&s, all_12);
    for (int i = 0; i < NSOCK; i++) {
        char m[16];
        snprintf(m, sizeof m, "s%d-first.abc", i);
        assert_int_equal(s.len[i], 12);
        assert_memory_equal(s.got[i], m, 12);
        close(w[i]);
    }
    run_until(&s, all_eof);
    for (int i = 0; i < NSOCK; i++)
        close(s.fd[i]);
    rxring_close(s.g);
}

static int first_cancelled(const seen *s) { return s->cancelled[0]; }
static int second_has_4(const seen *s) { return s->len[1] >= 4; }

static void test_cancel_stops_reads(void **state)
{
    (void)state;
    static seen s;
    memset(&s, 0, sizeof(s));
    if (!(s.g = open_or_explain(8, 4096)))
        return;
    s.bufsz = 4096;
    int w[2];
    for (int i = 0; i < 2; i++) {
        tcp_pair(&w[i], &s.fd[i]);
        assert_int_equal(rxring_arm(s.g, s.fd[i], (uint32_t)i), 0);
    }
    assert_int_equal(rxring_cancel(s.g, s.fd[0], 0), 0);
    run_until(&s, first_cancelled);
    /* later bytes on the cancelled socket are not read; the other's are,
     * after them (a marker sent later on the same ring) */
    assert_int_equal(write(w[0], "late", 4), 4);
    assert_int_equal(write(w[1], "next", 4), 4);
    run_until(&s, second_has_4);
    assert_int_equal(s.len[0], 0);
    char buf[8];
    assert_int_equal(recv(s.fd[0], buf, sizeof buf, MSG_DONTWAIT), 4);   /* still in the socket */
    for (int i = 0; i < 2; i++) {
        close(w[i]);
        close(s.fd[i]);
    }
    rxring_close(s.g);
}

static int all_3000(const seen *s)
{
    for (int i = 0; i < NSOCK; i++)
        if (s->len[i] < 3000)
            return 0;
    return 1;
}

/* Two buffers of 512 bytes for four sockets of 3,000 bytes each: the
 * kernel runs out of buffers (a receive stops with -ENOBUFS, or after data
 * without "more"), the ring arms it again because the callback reads on,
 * and every byte arrives in order. */
static void test_out_of_buffers_loses_nothing(void **state)
{
    (void)state;
    static seen s;
    memset(&s, 0, sizeof(s));
    if (!(s.g = open_or_explain(2, 512)))
        return;
    s.bufsz = 512;
    int w[NSOCK];
    char data[NSOCK][3000];
    for (int i = 0; i < NSOCK; i++) {
        tcp_pair(&w[i], &s.fd[i]);
        for (int k = 0; k < 3000; k++)
            data[i][k] = (char)('a' + (k * 7 + i) % 26);
        assert_int_equal(write(w[i], data[i], sizeof data[i]), (ssize_t)sizeof data[i]);
    }
    for (int i = 0; i < NSOCK; i++)
        assert_int_equal(rxring_arm(s.g, s.fd[i], (uint32_t)i), 0);
    run_until(&s, all_3000);
    assert_true(s.nobufs > 0);                   /* the buffers did run out */
    assert_true(s.chunks >= NSOCK * 6);          /* 3,000 bytes in 512-byte buffers */
    for (int i = 0; i < NSOCK; i++) {
        assert_int_equal(s.len[i], 3000);
        assert_memory_equal(s.got[i], data[i], 3000);
        close(w[i]);
        close(s.fd[i]);
    }
    rxring_close(s.g);
}

/* Many sockets with data at once: the kernel's rounds bring more than a
 * few completions (the run goes on in batches) and every wake-up it owes
 * is signalled (run_until: the eventfd is readable whenever data waits). */
static int many_read(const seen *s) { return s->chunks == NMANY; }

static int many_cb(void *ud, uint32_t tag, const uint8_t *p, int n)
{
    seen *s = ud;
    assert_true(tag < NMANY);
    assert_true(n == 5 && p && memcmp(p, "hello", 5) == 0);
    s->chunks++;
    return 1;
}

static void test_many_sockets_every_wake_up(void **state)
{
    (void)state;
    static seen s;
    memset(&s, 0, sizeof(s));
    if (!(s.g = open_or_explain(128, 256)))
        return;
    s.bufsz = 256;
    int w[NMANY], r[NMANY];
    for (int i = 0; i < NMANY; i++) {
        tcp_pair(&w[i], &r[i]);
        assert_int_equal(rxring_arm(s.g, r[i], (uint32_t)i), 0);
    }
    for (int i = 0; i < NMANY; i++)
        assert_int_equal(write(w[i], "hello", 5), 5);
    run_with(&s, many_cb, many_read);
    assert_int_equal(s.chunks, NMANY);
    for (int i = 0; i < NMANY; i++) {
        close(w[i]);
        close(r[i]);
    }
    rxring_close(s.g);
}

static void test_bad_sizes_refused(void **state)
{
    (void)state;
    errno = 0;
    assert_null(rxring_open(3, 4096));
    assert_int_equal(errno, EINVAL);
    assert_null(rxring_open(8, 0));
    assert_int_equal(errno, EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_in_order_then_eof),
        cmocka_unit_test(test_cancel_stops_reads),
        cmocka_unit_test(test_out_of_buffers_loses_nothing),
        cmocka_unit_test(test_many_sockets_every_wake_up),
        cmocka_unit_test(test_bad_sizes_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
