/* rxring.h — a load-generating process's receive ring: the reads of many
 * sockets as multishot receives in one io_uring, instead of an epoll
 * wake-up and a read() system call per socket and per read.
 *
 * Each armed socket has one multishot recv that stays in the kernel and
 * posts a completion for every chunk that arrives, into a buffer taken from
 * one ring of buffers shared by all sockets; the buffer goes back to the
 * ring once the completion's callback returns. The ring is set up with
 * DEFER_TASKRUN, so the kernel does the receives when we ask for them
 * (rxring_run), in batches, on our own thread; an eventfd (rxring_fd) says
 * when there is something to do, for the caller's event loop to watch.
 *
 * Used by the clients for what a load generator spends most of its time
 * on during a room's walk or a broadcast: reading pushes. Set-up (connect,
 * upgrade, login) stays on libuv; a connection is armed once logged in.
 * rxring_open fails (NULL, errno) on kernels without what it needs (6.1:
 * DEFER_TASKRUN, buffer rings, multishot receive); the caller then reads
 * with libuv as before. One thread owns a ring. */
#ifndef BENCH_RXRING_H
#define BENCH_RXRING_H

#include <stddef.h>
#include <stdint.h>

typedef struct rxring rxring;

/* A completion for the socket armed with `tag`. n > 0: n bytes at p (valid
 * until the callback returns); n == 0: the peer closed; n < 0: -errno
 * (-ENOBUFS: the kernel had no free buffer, nothing was lost; -ECANCELED
 * after rxring_cancel; -EBUSY: the ring could not arm it again). Returns 1
 * to go on reading the socket: when the kernel stopped its receive (after
 * data, or for want of a buffer) the ring arms it again; 0: done with it
 * (on EOF, an error, or a socket the callback closed). */
typedef int (*rxring_fn)(void *ud, uint32_t tag, const uint8_t *p, int n);

/* nbufs buffers (a power of two) of bufsz bytes, touched here so that
 * they are part of the process's memory from the start. */
rxring *rxring_open(unsigned nbufs, unsigned bufsz);
void rxring_close(rxring *r);

/* The eventfd that becomes readable when rxring_run has work. */
int rxring_fd(const rxring *r);

/* Arms a multishot receive on fd (tag: below RXRING_TAG_NONE; the ring
 * keeps fd beside it to arm it again). Submitted at once, or with the
 * batch when called from a callback. Returns 0, or -errno: then nothing
 * was armed (fd may be closed). */
int rxring_arm(rxring *r, int fd, uint32_t tag);

/* Stops the receive armed with tag; its last completion says -ECANCELED
 * (or whatever it ended with first). The socket may be closed at once:
 * the kernel holds its own reference until the receive is gone. A cancel
 * the kernel could not take now goes with the next submit. Returns 0, or
 * -EBUSY when not even that could be queued. */
int rxring_cancel(rxring *r, int fd, uint32_t tag);

/* Runs the receives that are due and hands every completion to fn, in
 * the order the kernel posted them. Returns the completions handled, or
 * -errno when the ring failed. */
int rxring_run(rxring *r, rxring_fn fn, void *ud);

#define RXRING_TAG_NONE UINT32_MAX

#endif
