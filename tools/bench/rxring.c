/* rxring.c — multishot receives in one io_uring (see rxring.h).
 *
 * Raw system calls (<linux/io_uring.h>), no library. The submission array
 * is the identity; only we move the submission tail, the completion head
 * and the buffer ring's tail. Buffers: one region of nbufs x bufsz bytes,
 * buffer i at base + i * bufsz, handed to the kernel through a registered
 * buffer ring (group 0) and handed back after each completion. */
#include "rxring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RXRING_SQ 256               /* arms and cancels between two submits */
#define RXRING_CQ 16384             /* completions the kernel can post ahead of us */
#define RXRING_BATCH 256            /* receives the kernel runs per rxring_run round */
#define RXRING_SMALL 16             /* fewer from a round: no backlog, wait for the eventfd */
#define RXRING_RUN_MAX 8192         /* completions per rxring_run: the caller's loop runs too */

struct rxring {
    int fd, efd;
    unsigned *sq_tail, *sq_flags, sq_mask, tail, queued;
    unsigned *cq_head, *cq_tail, *cq_flags, cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_map, *cq_map, *sqe_map;
    size_t sq_len, cq_len, sqe_len;
    struct io_uring_buf_ring *br;   /* the buffer ring (nbufs entries) */
    size_t br_len;
    uint8_t *bufs;
    size_t bufs_len;
    unsigned nbufs, bufsz;
    uint16_t br_tail;
    int in_run;                     /* inside rxring_run: submits wait for its next round */
};

static long rx_enter(int fd, unsigned submit, unsigned wait, unsigned flags, void *arg, size_t argsz)
{
    return syscall(__NR_io_uring_enter, fd, submit, wait, flags, arg, argsz);
}

static void *rx_map(int fd, size_t len, off_t what)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);
    return m == MAP_FAILED ? NULL : m;
}

static int rx_map_rings(rxring *r, const struct io_uring_params *p)
{
    r->sq_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    r->cq_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    if (r->cq_len > r->sq_len)
        r->sq_len = r->cq_len;                   /* IORING_FEAT_SINGLE_MMAP: checked by the caller */
    r->sqe_len = p->sq_entries * sizeof(struct io_uring_sqe);
    if (!(r->sq_map = rx_map(r->fd, r->sq_len, IORING_OFF_SQ_RING)) ||
        !(r->sqe_map = rx_map(r->fd, r->sqe_len, IORING_OFF_SQES)))
        return -1;
    char *sq = r->sq_map;
    r->cq_map = r->sq_map;
    r->sq_tail = (unsigned *)(sq + p->sq_off.tail);
    r->sq_flags = (unsigned *)(sq + p->sq_off.flags);
    r->sq_mask = *(unsigned *)(sq + p->sq_off.ring_mask);
    r->tail = *r->sq_tail;
    unsigned *array = (unsigned *)(sq + p->sq_off.array);
    for (unsigned i = 0; i < p->sq_entries; i++)
        array[i] = i;
    r->cq_head = (unsigned *)(sq + p->cq_off.head);
    r->cq_tail = (unsigned *)(sq + p->cq_off.tail);
    r->cq_flags = (unsigned *)(sq + p->cq_off.flags);
    r->cq_mask = *(unsigned *)(sq + p->cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(sq + p->cq_off.cqes);
    r->sqes = r->sqe_map;
    return 0;
}

/* Buffer bid back to the kernel (published by rx_publish). */
static void rx_give(rxring *r, unsigned bid)
{
    struct io_uring_buf *b = &r->br->bufs[r->br_tail & (r->nbufs - 1)];
    b->addr = (uint64_t)(uintptr_t)(r->bufs + (size_t)bid * r->bufsz);
    b->len = r->bufsz;
    b->bid = (uint16_t)bid;
    r->br_tail++;
}

static void rx_publish(rxring *r)
{
    __atomic_store_n(&r->br->tail, r->br_tail, __ATOMIC_RELEASE);
}

static int rx_buffers(rxring *r)
{
    /* MAP_POPULATE: resident from the start (see rxring.h) */
    r->br_len = r->nbufs * sizeof(struct io_uring_buf);
    r->bufs_len = (size_t)r->nbufs * r->bufsz;
    void *m = mmap(NULL, r->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    void *b = mmap(NULL, r->bufs_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    r->br = m == MAP_FAILED ? NULL : m;
    r->bufs = b == MAP_FAILED ? NULL : b;
    if (!r->br || !r->bufs)
        return -1;
    struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)m, .ring_entries = r->nbufs,
                                    .bgid = 0 };
    if (syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_PBUF_RING, &reg, 1) != 0)
        return -1;
    for (unsigned i = 0; i < r->nbufs; i++)
        rx_give(r, i);
    rx_publish(r);
    return 0;
}

rxring *rxring_open(unsigned nbufs, unsigned bufsz)
{
    if (nbufs == 0 || nbufs > 32768 || (nbufs & (nbufs - 1)) || bufsz == 0) {
        errno = EINVAL;
        return NULL;
    }
    rxring *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->fd = r->efd = -1;
    r->nbufs = nbufs;
    r->bufsz = bufsz;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
              IORING_SETUP_CQSIZE;
    p.cq_entries = RXRING_CQ;
    r->fd = (int)syscall(__NR_io_uring_setup, RXRING_SQ, &p);
    int ok = r->fd >= 0;
    if (ok && !(p.features & IORING_FEAT_SINGLE_MMAP && p.features & IORING_FEAT_EXT_ARG)) {
        errno = ENOSYS;
        ok = 0;
    }
    ok = ok && rx_map_rings(r, &p) == 0 && rx_buffers(r) == 0 &&
         (r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) >= 0 &&
         syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_EVENTFD, &r->efd, 1) == 0;
    if (!ok) {
        int e = errno ? errno : ENOSYS;
        rxring_close(r);
        errno = e;
        return NULL;
    }
    return r;
}

void rxring_close(rxring *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);                            /* ends every receive; the kernel drops its buffers' use */
    if (r->efd >= 0)
        close(r->efd);
    if (r->sqe_map)
        munmap(r->sqe_map, r->sqe_len);
    if (r->sq_map)
        munmap(r->sq_map, r->sq_len);
    if (r->br)
        munmap(r->br, r->br_len);
    if (r->bufs)
        munmap(r->bufs, r->bufs_len);
    free(r);
}

int rxring_fd(const rxring *r) { return r->efd; }

/* Hands the queued entries to the kernel (with every buffer given back so
 * far: a receive issued at once may need one). */
static int rx_submit(rxring *r)
{
    rx_publish(r);
    while (r->queued) {
        __atomic_store_n(r->sq_tail, r->tail, __ATOMIC_RELEASE);
        long n = rx_enter(r->fd, r->queued, 0, 0, NULL, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        r->queued -= (unsigned)n;
        if (n == 0)
            return -EBUSY;
    }
    return 0;
}

static struct io_uring_sqe *rx_sqe(rxring *r)
{
    if (r->queued == RXRING_SQ && rx_submit(r) != 0)
        return NULL;
    struct io_uring_sqe *e = &r->sqes[r->tail & r->sq_mask];
    memset(e, 0, sizeof(*e));
    r->tail++;
    r->queued++;
    return e;
}

/* The last entry back out of the ring when the kernel did not take it
 * (only read by io_uring_enter: nothing has seen it). Returns err. */
static int rx_unqueue_last(rxring *r, int err)
{
    if (r->queued) {
        r->tail--;
        r->queued--;
        __atomic_store_n(r->sq_tail, r->tail, __ATOMIC_RELEASE);
    }
    return err;
}

/* A receive's user_data: the socket and the caller's tag (a cancel's own
 * answer: all ones, never a receive's, whose fd is not -1). */
static uint64_t rx_key(int fd, uint32_t tag) { return (uint64_t)(uint32_t)fd << 32 | tag; }
#define RX_KEY_NONE UINT64_MAX

/* A failure means nothing was armed (the caller may close fd at once). */
int rxring_arm(rxring *r, int fd, uint32_t tag)
{
    struct io_uring_sqe *e = rx_sqe(r);
    if (!e)
        return -EBUSY;
    e->opcode = IORING_OP_RECV;
    e->fd = fd;
    e->ioprio = IORING_RECV_MULTISHOT;
    e->flags = IOSQE_BUFFER_SELECT;
    e->buf_group = 0;
    e->user_data = rx_key(fd, tag);
    int err = r->in_run ? 0 : rx_submit(r);
    return err ? rx_unqueue_last(r, err) : 0;
}

int rxring_cancel(rxring *r, int fd, uint32_t tag)
{
    struct io_uring_sqe *e = rx_sqe(r);
    if (!e)
        return -EBUSY;
    e->opcode = IORING_OP_ASYNC_CANCEL;
    e->fd = -1;
    e->addr = rx_key(fd, tag);
    e->user_data = RX_KEY_NONE;                  /* its own answer is not reported */
    if (!r->in_run)
        (void)rx_submit(r);                      /* failed: it goes with the next submit */
    return 0;
}

/* One completion to fn; a receive the kernel stopped that fn still wants
 * is armed again (or fn hears that it could not be). */
static void rx_deliver(rxring *r, rxring_fn fn, void *ud, uint64_t key, const uint8_t *p, int res,
                       int more)
{
    int fd = (int)(uint32_t)(key >> 32);
    uint32_t tag = (uint32_t)key;
    if (!fn(ud, tag, p, res) || more || (res <= 0 && res != -ENOBUFS))
        return;
    int err = rxring_arm(r, fd, tag);
    if (err)
        (void)fn(ud, tag, NULL, err);
}

/* Every completion posted, to fn; their buffers back to the kernel. */
static int rx_reap(rxring *r, rxring_fn fn, void *ud)
{
    unsigned head = *r->cq_head, tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    int n = 0;
    for (; head != tail; head++) {
        const struct io_uring_cqe *c = &r->cqes[head & r->cq_mask];
        uint64_t key = c->user_data;
        int res = c->res, more = (c->flags & IORING_CQE_F_MORE) != 0;
        const uint8_t *p = NULL;
        unsigned bid = 0;
        if (c->flags & IORING_CQE_F_BUFFER) {
            bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
            p = r->bufs + (size_t)bid * r->bufsz;
        } else if (res > 0) {
            res = -EIO;                          /* data without a buffer: never posted */
        }
        if (key != RX_KEY_NONE) {
            rx_deliver(r, fn, ud, key, p, res, more);
            n++;
        }
        if (p)
            rx_give(r, bid);
    }
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
    rx_publish(r);
    return n;
}

/* Our completions must not signal the eventfd (we are reading them), nor
 * must work that comes while we run (we look for it at the end). That
 * relies on the kernel's side being ordered (it raises IORING_SQ_TASKRUN,
 * then reads cq_flags): an atomic read-modify-write is a full barrier on
 * x86 only, so elsewhere the eventfd stays on (a spare wake-up per run). */
static void rx_eventfd(rxring *r, int on)
{
#if !defined(__x86_64__) && !defined(__i386__)
    (void)r;
    (void)on;
    return;
#endif
    unsigned f = __atomic_load_n(r->cq_flags, __ATOMIC_RELAXED);
    f = on ? f & ~IORING_CQ_EVENTFD_DISABLED : f | IORING_CQ_EVENTFD_DISABLED;
    __atomic_store_n(r->cq_flags, f, __ATOMIC_RELEASE);
}

/* Rounds: submit what callbacks queued, let the kernel run the receives
 * that are due (DEFER_TASKRUN: inside this enter) and take their
 * completions. The first round asks for none (the kernel runs a small
 * batch and returns at once); a round that brought RXRING_SMALL or more
 * means a backlog, and the next asks for a batch with a zero timeout. A
 * round with less ends the run: what arrives from then on is for the next
 * wake-up, not chased one socket at a time; so does RXRING_RUN_MAX (the
 * rest is signalled for the next turn of the caller's loop, which has
 * timers and other sockets too). The eventfd is off meanwhile;
 * once it is on again, work that came while it was off (the kernel raised
 * the "work due" flag before it looked at the eventfd) is signalled by us. */
int rxring_run(rxring *r, rxring_fn fn, void *ud)
{
    uint64_t v;
    if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return -errno;
    struct __kernel_timespec ts = { 0, 0 };
    struct io_uring_getevents_arg arg = { .sigmask_sz = _NSIG / 8, .ts = (uint64_t)(uintptr_t)&ts };
    int total = 0, err = 0;
    r->in_run = 1;
    rx_eventfd(r, 0);
    for (int round = 0; total < RXRING_RUN_MAX; round++) {
        unsigned want = round ? RXRING_BATCH : 0;
        __atomic_store_n(r->sq_tail, r->tail, __ATOMIC_RELEASE);
        long s = rx_enter(r->fd, r->queued, want, IORING_ENTER_GETEVENTS | (want ? IORING_ENTER_EXT_ARG : 0),
                          want ? &arg : NULL, want ? sizeof(arg) : 0);
        if (s < 0 && errno != ETIME && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
            err = -errno;
            break;
        }
        if (s > 0)
            r->queued -= (unsigned)s > r->queued ? r->queued : (unsigned)s;
        int got = rx_reap(r, fn, ud);
        total += got;
        if (!r->queued && got < RXRING_SMALL)
            break;
    }
    r->in_run = 0;
    rx_eventfd(r, 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (err == 0 && r->queued)
        err = rx_submit(r);
    if (err == 0 && (total >= RXRING_RUN_MAX ||
                     (__atomic_load_n(r->sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_TASKRUN))) {
        v = 1;
        if (write(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            err = -errno;
    }
    return err ? err : total;
}
