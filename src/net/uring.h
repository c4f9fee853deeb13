/* uring.h — one worker's io_uring, used for one thing: many sockets'
 * non-blocking writes in one system call.
 *
 * At the end of a loop turn a worker writes to every connection that was
 * sent something (net/conn.c, conn_batch). With one writev per connection
 * each write pays a system call's entry and exit, which on a virtual
 * machine is a good part of the write (about 1 µs of ~6 µs measured on the
 * machines imgate is benchmarked on). Here the turn's writes are queued as
 * submission entries and handed to the kernel in one io_uring_enter, which
 * runs each at once (a send with MSG_DONTWAIT: a write the socket cannot
 * take answers -EAGAIN instead of waiting for room) and returns after
 * every result is in; nothing is in flight between two calls, so the
 * caller's buffers and descriptors only have to live until uring_submit
 * returns.
 *
 * The ring is set up with raw system calls (<linux/io_uring.h>), no
 * library. uring_open fails where io_uring is missing or forbidden (old
 * kernel without socket sends in the ring, seccomp,
 * kernel.io_uring_disabled): the caller then writes one system call per
 * socket as before. Owned and used by one thread. */
#ifndef IMGATE_URING_H
#define IMGATE_URING_H

#include <stdint.h>
#include <sys/uio.h>

typedef struct uring uring;

/* A ring of `entries` writes (a power of two is best) holding at most
 * max_iov buffers between two submits. Returns NULL with errno set. */
uring *uring_open(unsigned entries, unsigned max_iov);
void uring_close(uring *u);

/* Queues a write of iov[0..n) to fd (a socket); it never waits for room:
 * a write the socket cannot take answers -EAGAIN. Its result
 * (bytes written, or -errno) goes to *res when uring_submit returns (until
 * then *res is not touched). iov is copied; the bytes it points to must
 * stay valid until uring_submit returns. Returns 0, or -1 when the ring or
 * its buffer table is full (submit, then queue again). */
int uring_write(uring *u, int fd, const struct iovec *iov, unsigned n, int32_t *res);

/* What *res says of a write the kernel never took (nothing written). */
#define URING_NOT_TAKEN INT32_MIN

/* Hands every queued write to the kernel and waits for all their results
 * (every one answers at once; a kernel that would not gets a few seconds,
 * then its writes are cancelled: -ECANCELED, nothing written). Returns 0,
 * or -errno when the ring itself failed: then writes the kernel never took
 * say URING_NOT_TAKEN, and only if even the cancellation failed do some
 * keep *res untouched — their bytes may have gone out or be read by the
 * kernel later (keep them). Either way the ring must not be used again. */
int uring_submit(uring *u);

/* Sends queued and not yet submitted. */
unsigned uring_queued(const uring *u);

#endif
