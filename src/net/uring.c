/* uring.c — a worker's io_uring for batched socket writes (see uring.h).
 *
 * The three shared regions (submission ring, completion ring, submission
 * entries) are mapped once at open. The submission array is the identity
 * (slot i holds entry i), so an entry is filled in place at tail & mask.
 * Only the kernel moves the submission head and the completion tail; only
 * we move the submission tail (published by uring_submit) and the
 * completion head. */
#include "net/uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <signal.h>
#include <unistd.h>

#define URING_WAIT_MAX_S 2          /* see uring_submit */

struct uring {
    int fd;
    unsigned entries;               /* submission entries */
    unsigned *sq_tail, sq_mask;
    unsigned *cq_head, *cq_tail, cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    unsigned tail;                  /* our next submission slot (not yet published) */
    unsigned queued;                /* entries filled since the last submit */
    int ext_arg;                    /* the kernel takes a wait timeout (IORING_FEAT_EXT_ARG) */
    struct iovec *iov;              /* copies of the queued buffers */
    unsigned iov_used, iov_cap;
    struct msghdr *msg;             /* one per submission entry: its sendmsg header */
    void *sq_map, *cq_map, *sqe_map;
    size_t sq_len, cq_len, sqe_len;
};

static int uring_setup(unsigned entries, struct io_uring_params *p)
{
    /* Newer flags first (a kernel that lacks one says EINVAL): keep going
     * past a failed entry; the kernel's task work runs when we enter. Not
     * SINGLE_ISSUER: the ring is made on the thread that starts the
     * workers, and used by the worker's own. */
    static const unsigned tries[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int fd = -1;
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        memset(p, 0, sizeof(*p));
        p->flags = tries[i];
        fd = (int)syscall(__NR_io_uring_setup, entries, p);
        if (fd >= 0 || errno != EINVAL)
            break;
    }
    return fd;
}

static void *uring_map(int fd, size_t len, off_t what)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);
    return m == MAP_FAILED ? NULL : m;
}

static int uring_map_all(uring *u, const struct io_uring_params *p)
{
    u->sq_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    u->cq_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    u->sqe_len = p->sq_entries * sizeof(struct io_uring_sqe);
    if (p->features & IORING_FEAT_SINGLE_MMAP) {
        if (u->cq_len > u->sq_len)
            u->sq_len = u->cq_len;
        u->cq_len = 0;
    }
    if (!(u->sq_map = uring_map(u->fd, u->sq_len, IORING_OFF_SQ_RING)))
        return -1;
    u->cq_map = u->sq_map;
    if (u->cq_len && !(u->cq_map = uring_map(u->fd, u->cq_len, IORING_OFF_CQ_RING)))
        return -1;
    if (!(u->sqe_map = uring_map(u->fd, u->sqe_len, IORING_OFF_SQES)))
        return -1;
    char *sq = u->sq_map, *cq = u->cq_map;
    u->sq_tail = (unsigned *)(sq + p->sq_off.tail);
    u->sq_mask = *(unsigned *)(sq + p->sq_off.ring_mask);
    u->tail = *u->sq_tail;
    unsigned *array = (unsigned *)(sq + p->sq_off.array);
    for (unsigned i = 0; i < p->sq_entries; i++)
        array[i] = i;
    u->cq_head = (unsigned *)(cq + p->cq_off.head);
    u->cq_tail = (unsigned *)(cq + p->cq_off.tail);
    u->cq_mask = *(unsigned *)(cq + p->cq_off.ring_mask);
    u->cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);
    u->sqes = u->sqe_map;
    u->entries = p->sq_entries;
    return 0;
}

/* 1 when the kernel has both opcodes uring_write uses (SEND: 5.6,
 * SENDMSG: 5.3; the probe itself: 5.6). */
static int uring_has_send(int fd)
{
    size_t len = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
    struct io_uring_probe *p = calloc(1, len);
    if (!p)
        return 0;
    int ok = syscall(__NR_io_uring_register, fd, IORING_REGISTER_PROBE, p, 256) == 0 &&
             p->last_op >= IORING_OP_SEND &&
             (p->ops[IORING_OP_SEND].flags & IO_URING_OP_SUPPORTED) &&
             (p->ops[IORING_OP_SENDMSG].flags & IO_URING_OP_SUPPORTED);
    free(p);
    return ok;
}

uring *uring_open(unsigned entries, unsigned max_iov)
{
    uring *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    struct io_uring_params p;
    u->fd = uring_setup(entries, &p);
    if (u->fd < 0) {
        free(u);
        return NULL;
    }
    u->iov_cap = max_iov;
    u->ext_arg = (p.features & IORING_FEAT_EXT_ARG) != 0;
    errno = 0;
    if (!uring_has_send(u->fd) || uring_map_all(u, &p) != 0 ||
        !(u->iov = calloc(max_iov ? max_iov : 1, sizeof(*u->iov))) ||
        !(u->msg = calloc(p.sq_entries, sizeof(*u->msg)))) {
        int e = errno ? errno : ENOSYS;
        uring_close(u);
        errno = e;
        return NULL;
    }
    return u;
}

void uring_close(uring *u)
{
    if (!u)
        return;
    if (u->sqe_map)
        munmap(u->sqe_map, u->sqe_len);
    if (u->cq_map && u->cq_map != u->sq_map)
        munmap(u->cq_map, u->cq_len);
    if (u->sq_map)
        munmap(u->sq_map, u->sq_len);
    if (u->fd >= 0)
        close(u->fd);
    free(u->iov);
    free(u->msg);
    free(u);
}

unsigned uring_queued(const uring *u) { return u->queued; }

/* A send with MSG_DONTWAIT: a write the socket cannot take answers
 * -EAGAIN at once. Without it io_uring parks such a request until the
 * socket is writable, O_NONBLOCK or not (a socket supports non-blocking
 * I/O, so io_uring "retries" for it), and uring_submit, waiting for every
 * result, would wait with it. A socket's send, not a file's write
 * (IORING_OP_WRITEV with RWF_NOWAIT does the same): it skips the file
 * layer's per-request work (the kiocb, the file's flags, the write's
 * fsnotify), about a sixth of the node's time in io_uring_enter during a
 * room's walk. io_uring adds MSG_NOSIGNAL itself; it is set here anyway. */
int uring_write(uring *u, int fd, const struct iovec *iov, unsigned n, int32_t *res)
{
    if (n == 0 || u->queued == u->entries || u->iov_used + n > u->iov_cap)
        return -1;
    unsigned slot = u->tail & u->sq_mask;
    struct io_uring_sqe *e = &u->sqes[slot];
    memset(e, 0, sizeof(*e));
    e->fd = fd;
    e->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
    e->user_data = (uint64_t)(uintptr_t)res;
    if (n == 1) {
        e->opcode = IORING_OP_SEND;
        e->addr = (uint64_t)(uintptr_t)iov[0].iov_base;
        e->len = (uint32_t)iov[0].iov_len;
    } else {
        struct iovec *v = &u->iov[u->iov_used];
        struct msghdr *m = &u->msg[slot];
        memcpy(v, iov, n * sizeof(*iov));
        u->iov_used += n;
        memset(m, 0, sizeof(*m));
        m->msg_iov = v;
        m->msg_iovlen = n;
        e->opcode = IORING_OP_SENDMSG;
        e->addr = (uint64_t)(uintptr_t)m;
    }
    u->tail++;
    u->queued++;
    return 0;
}

/* Takes every completion posted; returns how many. */
static unsigned uring_reap(uring *u)
{
    unsigned head = *u->cq_head;
    unsigned tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
    unsigned n = 0;
    for (; head != tail; head++, n++) {
        const struct io_uring_cqe *c = &u->cqes[head & u->cq_mask];
        *(int32_t *)(uintptr_t)c->user_data = c->res;
    }
    __atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
    return n;
}

static long uring_enter(uring *u, unsigned submit, unsigned wait, int bounded)
{
    struct __kernel_timespec ts = { .tv_sec = URING_WAIT_MAX_S };
    struct io_uring_getevents_arg arg = { .sigmask_sz = _NSIG / 8, .ts = (uint64_t)(uintptr_t)&ts };
    int ext = bounded && u->ext_arg;
    return syscall(__NR_io_uring_enter, u->fd, submit, wait,
                   IORING_ENTER_GETEVENTS | (ext ? IORING_ENTER_EXT_ARG : 0),
                   ext ? (void *)&arg : NULL, ext ? sizeof(arg) : 0);
}

/* Entries the kernel never took (the submission head did not reach them)
 * get URING_NOT_TAKEN: nothing of theirs was written. */
static void uring_untaken(uring *u, unsigned want, unsigned sent)
{
    for (unsigned k = sent; k < want; k++) {
        const struct io_uring_sqe *e = &u->sqes[(u->tail - want + k) & u->sq_mask];
        *(int32_t *)(uintptr_t)e->user_data = URING_NOT_TAKEN;
    }
}

/* Some taken writes did not answer in time, which MSG_DONTWAIT rules out: a
 * kernel that parks them anyway. Cancel them all, synchronously (not via the
 * submission ring: entries the kernel did not take sit there), then wait
 * for their answers, with no bound: a cancelled request answers at once
 * (-ECANCELED: it wrote nothing). Returns 0 when every taken one is in. */
static int uring_cancel_rest(uring *u, unsigned *got, unsigned sent)
{
    struct io_uring_sync_cancel_reg reg = {
        .fd = -1,
        .flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL,
        .timeout = { .tv_sec = -1, .tv_nsec = -1 },
    };
    if (syscall(__NR_io_uring_register, u->fd, IORING_REGISTER_SYNC_CANCEL, &reg, 1) < 0 &&
        errno != ENOENT)
        return -errno;
    while (*got < sent) {
        long r = uring_enter(u, 0, sent - *got, 0);
        if (r < 0 && errno != EINTR)
            return -errno;
        *got += uring_reap(u);
    }
    return 0;
}

int uring_submit(uring *u)
{
    unsigned want = u->queued, sent = 0, got = 0;
    if (want == 0)
        return 0;
    __atomic_store_n(u->sq_tail, u->tail, __ATOMIC_RELEASE);
    u->queued = 0;
    u->iov_used = 0;
    /* Every entry answers at once (see uring_write); the bound is for a
     * kernel that would not. */
    int busy = 0, err = 0;
    while (got < want) {
        long r = uring_enter(u, want - sent, want - got, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EBUSY) && busy++ < 16) {
            got += uring_reap(u);       /* the kernel's memory or the completion ring */
            continue;
        }
        if (r < 0) {
            err = -errno;
            break;
        }
        sent += (unsigned)r;
        got += uring_reap(u);
    }
    if (err == 0)
        return 0;
    got += uring_reap(u);
    uring_untaken(u, want, sent);
    if (got < sent)
        (void)uring_cancel_rest(u, &got, sent);   /* if it fails: results unknown, see uring.h */
    return err;
}
