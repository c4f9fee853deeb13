/* ipc.h — records between the parent and its worker processes over pipes:
 * an 8-byte header (type, length) and the payload. Writers block until the
 * whole record is written; the parent reads without blocking and takes
 * complete records out of a growing buffer. */
#ifndef BENCH_IPC_H
#define BENCH_IPC_H

#include <stddef.h>
#include <stdint.h>

enum {
    IPC_PROGRESS = 1,   /* counters */
    IPC_READY,          /* bitmap of the worker's logged-in connections */
    IPC_FINAL,          /* cstats */
    IPC_BC_CNT,         /* uint32_t per broadcast message: deliveries */
    IPC_BC_FIRST,       /* uint64_t per broadcast message: first delivery, ns */
    IPC_BC_LAST,        /* uint64_t per broadcast message: last delivery, ns */
    IPC_P2P_CNT,        /* uint8_t per p2p message: deliveries (saturating) */
    IPC_END,            /* nothing follows */
    IPC_FLOOR_PORT,     /* uint32_t: a floor sender's listening port */
    IPC_FLOOR_READY,    /* uint64_t: sockets connected or accepted */
    IPC_FLOOR_SENT,     /* floor_sent */
    IPC_FLOOR_RECV,     /* floor_recv */
    IPC_FSTREAM_SENT,   /* floor_ssent (floor-stream sender) */
    IPC_FSTREAM_RECV,   /* floor_srecv (floor-stream receiver) */
    IPC_FSTREAM_PROG    /* uint64_t: a floor-stream receiver's deliveries so far */
};

typedef struct ipc_hdr { uint32_t type, len; } ipc_hdr;

/* Writes one record (payload a[0..an) then b[0..bn)). Returns 0 or -1. */
int ipc_send(int fd, uint32_t type, const void *a, size_t an, const void *b, size_t bn);

typedef struct ipc_reader {
    uint8_t *buf;
    size_t len, cap, off;
    int eof;
} ipc_reader;

/* Reads what fd (non-blocking) has. Returns bytes read, 0 if none, -1 at
 * EOF or on an error (r->eof set). */
long ipc_fill(ipc_reader *r, int fd);

/* The next complete record: 1 with *type, *p and *n set (valid until the next
 * ipc_fill/ipc_next), 0 if none is complete. */
int ipc_next(ipc_reader *r, uint32_t *type, const uint8_t **p, uint32_t *n);

void ipc_reader_free(ipc_reader *r);

/* Reads one byte command from a blocking or non-blocking fd with a
 * timeout in ms: the byte, 0 on timeout, -1 at EOF/error. */
int ipc_wait_byte(int fd, int timeout_ms);

#endif
