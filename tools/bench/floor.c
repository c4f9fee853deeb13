/* floor.c — the raw-TCP broadcast floor: sender and receiver processes. */
#include "floor.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clock.h"
#include "ipc.h"
#include "proc.h"
#include "rxring.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define FLOOR_MAX_PROCS 256
/* --rx-ring: the receivers read as the clients do (worker.c's ring) */
#define FLOOR_RING_BUFS 2048
#define FLOOR_RING_BUF_BYTES 16384

typedef struct floor_sent { uint64_t t_start, t_end, sent, eagain; } floor_sent;
typedef struct floor_recv { uint64_t bytes, first_ns, last_ns; } floor_recv;

typedef struct floor_arg {
    const bench_opts *o;
    long n;                  /* sockets in the whole floor */
    int senders, receivers;
    long first, count;       /* receiver: its share; sender: its index in first */
    int trials;
    int payload;             /* bytes per socket per trial */
    uint16_t ports[FLOOR_MAX_PROCS];
    uint64_t limit_ns;       /* how long a child may wait for anything */
} floor_arg;

static void floor_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Waits for a command byte until limit_ns has passed: the byte or -1. */
static int floor_wait_cmd(int cmd, uint64_t until)
{
    while (clock_ns() < until) {
        int c = ipc_wait_byte(cmd, 200);
        if (c != 0)
            return c;
    }
    return -1;
}

/* ---------- sender ---------- */

static int floor_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001u) };
    socklen_t al = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static long floor_accept_all(int lfd, int *fds, long want, uint64_t until)
{
    long got = 0;
    while (got < want && clock_ns() < until) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd >= 0) {
            int one = 1;                       /* as a server does */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            fds[got++] = fd;
            continue;
        }
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            break;
        struct pollfd pf = { .fd = lfd, .events = POLLIN };
        poll(&pf, 1, 100);
    }
    return got;
}

static void floor_send_all(const int *fds, long n, int size, floor_sent *s)
{
    static char payload[FLOOR_MAX_PAYLOAD] = "imgate-bench floor";
    long *retry = malloc(sizeof(long) * (size_t)(n ? n : 1));
    long nr = 0;
    s->t_start = clock_ns();
    for (long i = 0; i < n; i++) {
        ssize_t w = send(fds[i], payload, (size_t)size, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w == size)
            s->sent++;
        else if (retry && w < 0 && errno == EAGAIN)
            retry[nr++] = i;
    }
    for (int pass = 0; pass < 1000 && nr > 0; pass++) {    /* rare: a full socket */
        long keep = 0;
        s->eagain += (uint64_t)nr;
        for (long j = 0; j < nr; j++) {
            ssize_t w = send(fds[retry[j]], payload, (size_t)size, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w == size)
                s->sent++;
            else if (w < 0 && errno == EAGAIN)
                retry[keep++] = retry[j];
        }
        nr = keep;
        struct timeval tv = { 0, 1000 };
        select(0, NULL, NULL, NULL, &tv);
    }
    s->t_end = clock_ns();
    free(retry);
}

/* A sender's set-up: listens, reports its port, accepts its share of the
 * sockets (*got of them) and reports that. NULL if it could not. */
static int *floor_sender_setup(const floor_arg *a, int out, uint64_t until, uint64_t *got)
{
    long idx = a->first;
    long want = a->n / a->senders + (idx < a->n % a->senders);
    uint16_t port = 0;
    floor_nofile();
    int lfd = floor_listen(&port);
    int *fds = malloc(sizeof(int) * (size_t)(want ? want : 1));
    uint32_t p32 = port;
    if (lfd < 0 || !fds || ipc_send(out, IPC_FLOOR_PORT, &p32, sizeof(p32), NULL, 0) != 0) {
        free(fds);
        return NULL;
    }
    *got = (uint64_t)floor_accept_all(lfd, fds, want, until);
    ipc_send(out, IPC_FLOOR_READY, got, sizeof(*got), NULL, 0);
    return fds;
}

static int floor_sender(void *argp, int cmd, int out)
{
    floor_arg *a = argp;
    uint64_t until = clock_ns() + a->limit_ns, got;
    int *fds = floor_sender_setup(a, out, until, &got);
    if (!fds)
        return 1;
    for (int trial = 0; trial < FLOOR_MAX_TRIALS && floor_wait_cmd(cmd, until) == 'G'; trial++) {
        floor_sent s = { 0, 0, 0, 0 };
        floor_send_all(fds, (long)got, a->payload, &s);
        ipc_send(out, IPC_FLOOR_SENT, &s, sizeof(s), NULL, 0);
    }
    free(fds);
    return 0;                                   /* exit closes the sockets */
}

/* ---------- receiver ---------- */

static int floor_connect_one(const floor_arg *a, long j)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (a->o->bind_sources) {
        int one = 1;
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(0x7F000000u | (uint32_t)(2 + j % 253));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        bind(fd, (struct sockaddr *)&src, sizeof(src));
    }
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001u) };
    dst.sin_port = htons(a->ports[j % a->senders]);
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

#define FLOOR_RING_BY_FD UINT64_MAX

/* --rx-ring: a receiver's ring, its eventfd in the receiver's epoll set
 * (as data.u64 = tag, or FLOOR_RING_BY_FD: as data.fd = the eventfd), or
 * NULL: epoll and recv() (said once if the kernel lacks the ring). */
static rxring *floor_ring_open(const floor_arg *a, int ep, uint64_t tag)
{
    if (!a->o->rx_ring)
        return NULL;
    rxring *g = rxring_open(FLOOR_RING_BUFS, FLOOR_RING_BUF_BYTES);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
    if (g && tag == FLOOR_RING_BY_FD)
        ev.data.fd = rxring_fd(g);
    if (g && epoll_ctl(ep, EPOLL_CTL_ADD, rxring_fd(g), &ev) == 0)
        return g;
    fprintf(stderr, "imgate-bench: floor receiver: --rx-ring: no io_uring receive ring here (%s): "
            "reading with epoll\n", strerror(errno));
    rxring_close(g);
    return NULL;
}

/* Whether a receiver reads on after n (rxring_fn's answer). A socket the
 * ring could not arm again is no longer read: said, and its trial stays
 * incomplete (the run reports it). */
static int floor_ring_more(uint32_t tag, int n)
{
    if (n > 0 || n == -ENOBUFS)
        return 1;
    if (n == -EBUSY)
        fprintf(stderr, "imgate-bench: floor receiver: socket %u: cannot arm its receive again\n",
                tag);
    return 0;
}

/* The broadcast floor's reads through the ring: bytes and times only. */
static int floor_ring_read(void *ud, uint32_t tag, const uint8_t *p, int n)
{
    floor_recv *r = ud;
    (void)p;
    if (n > 0) {
        uint64_t now = clock_ns();
        r->bytes += (uint64_t)n;
        if (!r->first_ns)
            r->first_ns = now;
        r->last_ns = now;
    }
    return floor_ring_more(tag, n);
}

/* Reads a ready socket; like an event loop, stops after a short read. */
static void floor_drain(int fd, floor_recv *r, uint64_t now)
{
    char buf[4096];
    for (int i = 0; i < 64; i++) {
        ssize_t got = recv(fd, buf, sizeof(buf), 0);
        if (got <= 0)
            return;
        r->bytes += (uint64_t)got;
        if (!r->first_ns)
            r->first_ns = now;
        r->last_ns = now;
        if ((size_t)got < sizeof(buf))
            return;
    }
}

/* Reads until every socket got its bytes of this trial (returns 0), or a
 * command or the time limit (returns -1). */
static int floor_read_loop(int ep, int cmd, rxring *g, uint64_t want, floor_recv *r, uint64_t until)
{
    struct epoll_event ev[256];
    while (r->bytes < want) {
        if (clock_ns() > until)
            return -1;
        int n = epoll_wait(ep, ev, 256, 100);
        uint64_t now = clock_ns();
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == cmd)
                return -1;
            if (g && ev[i].data.fd == rxring_fd(g)) {
                if (rxring_run(g, floor_ring_read, r) < 0)
                    return -1;
                continue;
            }
            floor_drain(ev[i].data.fd, r, now);
        }
    }
    return 0;
}

static int floor_receiver(void *argp, int cmd, int out)
{
    floor_arg *a = argp;
    uint64_t until = clock_ns() + a->limit_ns;
    floor_nofile();
    int ep = epoll_create1(0);
    if (ep < 0)
        return 1;
    rxring *g = floor_ring_open(a, ep, FLOOR_RING_BY_FD);   /* tags: the sockets' fds */
    uint64_t connected = 0;
    for (long j = a->first; j < a->first + a->count && clock_ns() < until; j++) {
        int fd = floor_connect_one(a, j);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (fd >= 0 && (g ? rxring_arm(g, fd, (uint32_t)fd) : epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) == 0)
            connected++;
    }
    struct epoll_event cev = { .events = EPOLLIN, .data.fd = cmd };
    epoll_ctl(ep, EPOLL_CTL_ADD, cmd, &cev);
    ipc_send(out, IPC_FLOOR_READY, &connected, sizeof(connected), NULL, 0);
    for (int trial = 0; trial < a->trials; trial++) {
        floor_recv r = { 0, 0, 0 };
        int done = floor_read_loop(ep, cmd, g, connected * (uint64_t)a->payload, &r, until);
        ipc_send(out, IPC_FLOOR_RECV, &r, sizeof(r), NULL, 0);
        if (done != 0)
            return 0;
    }
    floor_wait_cmd(cmd, until);
    return 0;
}

/* ---------- parent ---------- */

typedef struct floor_run_state {
    proc ps[2 * FLOOR_MAX_PROCS];
    int np, ns;              /* processes; the first ns are senders */
    int ports, ready, sent, recvd;
    floor_sent s_sum;
    uint64_t s_start, s_end, r_first, r_last, trial_bytes;
    floor_arg arg;
} floor_run_state;

/* The set-up records of both floors: a sender's port, a child's sockets
 * ready. Returns 1 if the record was one of them. */
static int floor_setup_record(floor_arg *arg, int *ports, int *ready, long *accepted,
                              long *connected, int ns, int i, uint32_t t, const uint8_t *p,
                              uint32_t n)
{
    if (t == IPC_FLOOR_PORT && n == 4 && i < ns) {
        uint32_t port;
        memcpy(&port, p, 4);
        arg->ports[i] = (uint16_t)port;
        (*ports)++;
        return 1;
    }
    if (t == IPC_FLOOR_READY && n == 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        if (i < ns)
            *accepted += (long)v;
        else
            *connected += (long)v;
        (*ready)++;
        return 1;
    }
    return 0;
}

static void floor_record(floor_run_state *st, floor_result *fr, int i, uint32_t t,
                         const uint8_t *p, uint32_t n)
{
    if (floor_setup_record(&st->arg, &st->ports, &st->ready, &fr->accepted, &fr->connected,
                           st->ns, i, t, p, n))
        return;
    if (t == IPC_FLOOR_SENT && n == sizeof(floor_sent)) {
        floor_sent s;
        memcpy(&s, p, sizeof(s));
        if (!st->s_start || s.t_start < st->s_start)
            st->s_start = s.t_start;
        if (s.t_end > st->s_end)
            st->s_end = s.t_end;
        fr->send_eagain += s.eagain;
        st->sent++;
    } else if (t == IPC_FLOOR_RECV && n == sizeof(floor_recv)) {
        floor_recv r;
        memcpy(&r, p, sizeof(r));
        st->trial_bytes += r.bytes;
        if (r.first_ns && (!st->r_first || r.first_ns < st->r_first))
            st->r_first = r.first_ns;
        if (r.last_ns > st->r_last)
            st->r_last = r.last_ns;
        st->recvd++;
    }
}

typedef void (*floor_rec_fn)(void *st, void *fr, int i, uint32_t t, const uint8_t *p,
                             uint32_t n);

/* Polls the children ps[0..np) and hands their records to rec until
 * *counter reaches want or the time is up. */
static int floor_pump(proc *ps, int np, floor_rec_fn rec, void *st, void *fr, int *counter,
                      int want, double seconds)
{
    uint64_t until = clock_ns() + (uint64_t)(seconds * 1e9);
    for (uint64_t now; *counter < want && (now = clock_ns()) < until;) {
        uint64_t left = (until - now) / 1000000ull;
        proc_poll(ps, np, left > 100 ? 100 : (int)left + 1);
        for (int i = 0; i < np; i++) {
            uint32_t t, n;
            const uint8_t *p;
            while (ipc_next(&ps[i].rd, &t, &p, &n))
                rec(st, fr, i, t, p, n);
        }
    }
    return *counter >= want ? 0 : -1;
}

static void floor_record_cb(void *st, void *fr, int i, uint32_t t, const uint8_t *p,
                            uint32_t n)
{
    floor_record(st, fr, i, t, p, n);
}

static int floor_wait(floor_run_state *st, floor_result *fr, int *counter, int want,
                      double seconds)
{
    return floor_pump(st->ps, st->np, floor_record_cb, st, fr, counter, want, seconds);
}

static int floor_spawn_senders(floor_run_state *st)
{
    for (int s = 0; s < st->ns; s++) {
        st->arg.first = s;
        if (proc_spawn(&st->ps[st->np], st->ps, st->np, floor_sender, &st->arg) != 0)
            return -1;
        st->np++;
    }
    return 0;
}

static int floor_spawn_receivers(floor_run_state *st, int receivers, long n)
{
    for (int r = 0; r < receivers; r++) {
        st->arg.first = n * r / receivers;
        st->arg.count = n * (r + 1) / receivers - st->arg.first;
        if (proc_spawn(&st->ps[st->np], st->ps, st->np, floor_receiver, &st->arg) != 0)
            return -1;
        st->np++;
    }
    return 0;
}

static int floor_fail(floor_result *fr, const char *why)
{
    snprintf(fr->error, sizeof(fr->error), "%s", why);
    return -1;
}

/* One trial: a send to every socket; returns 1 if every byte arrived. */
static int floor_trial(floor_run_state *st, floor_result *fr, int receivers, int k)
{
    int want_sent = st->sent + st->ns, want_recv = st->recvd + receivers;
    st->s_start = st->s_end = st->r_first = st->r_last = st->trial_bytes = 0;
    struct timeval tv = { 0, 200000 };                 /* let everything settle */
    select(0, NULL, NULL, NULL, &tv);
    uint64_t t0 = clock_ns();
    for (int s = 0; s < st->ns; s++)
        proc_command(&st->ps[s], 'G');
    double drain = st->arg.o->drain_s + 5;
    floor_wait(st, fr, &st->sent, want_sent, drain);
    floor_wait(st, fr, &st->recvd, want_recv, drain);
    double last = st->r_last > t0 ? clock_ms(st->r_last - t0) : NAN;
    double send = st->s_end > st->s_start ? clock_ms(st->s_end - st->s_start) : NAN;
    fr->trial_last_ms[k] = last;
    fr->trial_send_ms[k] = send;
    fr->trials = k + 1;
    fr->bytes = st->trial_bytes;
    int ok = st->trial_bytes == fr->expected_bytes && st->recvd == want_recv;
    if (ok && (isnan(fr->last_delivery_ms) || last < fr->last_delivery_ms)) {
        fr->last_delivery_ms = last;
        fr->send_ms = send;
        fr->first_delivery_ms = st->r_first > t0 ? clock_ms(st->r_first - t0) : NAN;
    }
    return ok;
}

static int floor_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (NaN when n is 0). */
static double floor_median(const double *v, int n)
{
    double s[FLOOR_MAX_TRIALS];
    if (n <= 0)
        return NAN;
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), floor_cmp);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int floor_phases(floor_run_state *st, floor_result *fr, int receivers, long n)
{
    double setup = st->arg.o->timeout_s + (double)n / 2000.0 + 10;
    if (floor_wait(st, fr, &st->ports, st->ns, 10) != 0)
        return floor_fail(fr, "a sender did not report its port");
    if (floor_spawn_receivers(st, receivers, n) != 0)
        return floor_fail(fr, "fork failed");
    if (floor_wait(st, fr, &st->ready, st->np, setup) != 0)
        return floor_fail(fr, "set-up of the socket pairs timed out");
    fr->expected_bytes = (uint64_t)fr->connected * (uint64_t)fr->payload;
    fr->complete = fr->accepted == n && fr->connected == n;
    fr->first_delivery_ms = fr->last_delivery_ms = fr->send_ms = NAN;
    for (int k = 0; k < st->arg.trials; k++) {
        if (!floor_trial(st, fr, receivers, k)) {
            fr->complete = 0;
            break;
        }
        fr->ok_trials = k + 1;
    }
    fr->last_delivery_ms_median = floor_median(fr->trial_last_ms, fr->ok_trials);
    return 0;
}

long floor_sender_cap(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 16000;
    rlim_t max = rl.rlim_max < (rlim_t)1048576 ? rl.rlim_max : (rlim_t)1048576;
    return max > 1064 ? (long)max - 64 : 1000;
}

int floor_senders_for(const bench_opts *o, long n)
{
    long cap = floor_sender_cap();
    int senders = o->floor_senders;
    if ((n + senders - 1) / senders <= cap)
        return senders;
    return o->floor_senders_given ? -1 : (int)((n + cap - 1) / cap);
}

/* The processes and children's arguments of a floor with n sockets: NULL,
 * or why it cannot run. */
static const char *floor_plan(const bench_opts *o, long n, int payload, int min_payload,
                              int trials, double extra_s, floor_arg *a)
{
    int senders = floor_senders_for(o, n);
    int receivers = o->procs < n ? o->procs : (int)n;
    if (payload < min_payload || payload > FLOOR_MAX_PAYLOAD)
        return "payload size out of range";
    if (senders < 1 || senders > FLOOR_MAX_PROCS || receivers > FLOOR_MAX_PROCS)
        return "too many sockets per sender, or too many processes";
    a->o = o;
    a->n = n;
    a->senders = senders;
    a->receivers = receivers;
    a->trials = trials;
    a->payload = payload;
    a->limit_ns = (uint64_t)((o->timeout_s + (double)n / 2000.0 + extra_s) * 1e9);
    return NULL;
}

int floor_run(const bench_opts *o, long n, int payload, floor_result *fr)
{
    static floor_run_state st;
    memset(&st, 0, sizeof(st));
    memset(fr, 0, sizeof(*fr));
    fr->ran = 1;
    fr->sockets = n;
    fr->payload = payload;
    fr->last_delivery_ms_median = NAN;
    fr->senders_requested = o->floor_senders;
    const char *why = floor_plan(o, n, payload, 1, o->floor_trials, o->drain_s + 60, &st.arg);
    if (why)
        return floor_fail(fr, why);
    fr->senders = st.ns = st.arg.senders;
    fr->receivers = st.arg.receivers;
    int receivers = st.arg.receivers;
    int r = floor_spawn_senders(&st) != 0 ? floor_fail(fr, "fork failed")
                                            : floor_phases(&st, fr, receivers, n);
    for (int i = 0; i < st.np; i++)
        proc_command(&st.ps[i], 'S');
    proc_reap(st.ps, st.np, 10);
    return r;
}

/* ---------- floor-stream ---------- */

#define FSTREAM_HDR 12u                    /* uint32 sequence, uint64 send time (ns) */

typedef struct floor_ssent {
    uint64_t t_first, t_last, sent, eagain, cpu_ns;
    uint64_t ticks, sockets;             /* messages sent to each socket; sockets */
} floor_ssent;
typedef struct floor_srecv {
    uint64_t delivered, lost, dup, first_ns, last_ns, cpu_ns;
    hist lat;
} floor_srecv;

static uint64_t floor_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* One whole message to fd: a short write or a full socket waits for room
 * (counted in *eagain). Returns 0, -1 if the socket failed. */
static int floor_send_full(int fd, const char *p, int size, uint64_t *eagain)
{
    int off = 0;
    while (off < size) {
        ssize_t w = send(fd, p + off, (size_t)(size - off), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            off += (int)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        (*eagain)++;
        struct pollfd pf = { .fd = fd, .events = POLLOUT };
        poll(&pf, 1, 100);
    }
    return 0;
}

/* Sends message k to each socket at start + k / rate, for every k < m;
 * stops early on a command byte. */
static void floor_stream_send(const floor_arg *a, int cmd, const int *fds, long n, long m,
                              floor_ssent *s)
{
    static char payload[FLOOR_MAX_PAYLOAD] = "............imgate-bench floor-stream";
    uint64_t cpu0 = floor_cpu_ns(), start = clock_ns();
    double step_ns = 1e9 / a->o->room_rate;
    uint64_t end = start + (uint64_t)(a->o->room_s * 1e9);
    for (long k = 0; k < m; k++) {
        uint64_t due = start + (uint64_t)((double)k * step_ns);
        if (clock_ns() > end)            /* behind: bounded in time, not in count */
            break;
        for (uint64_t now; (now = clock_ns()) < due;) {
            uint64_t left = (due - now) / 1000000ull;
            if (ipc_wait_byte(cmd, left > 50 ? 50 : (int)left) != 0)
                goto out;
        }
        uint32_t seq = (uint32_t)k;
        uint64_t ts = clock_ns();
        memcpy(payload, &seq, 4);
        memcpy(payload + 4, &ts, 8);
        if (!s->t_first)
            s->t_first = ts;
        for (long i = 0; i < n; i++)
            if (floor_send_full(fds[i], payload, a->payload, &s->eagain) == 0)
                s->sent++;
        s->t_last = clock_ns();
        s->ticks++;
    }
out:
    s->cpu_ns = floor_cpu_ns() - cpu0;
}

static int floor_stream_sender(void *argp, int cmd, int out)
{
    floor_arg *a = argp;
    uint64_t until = clock_ns() + a->limit_ns, got;
    int *fds = floor_sender_setup(a, out, until, &got);
    if (!fds)
        return 1;
    if (floor_wait_cmd(cmd, until) == 'G') {
        floor_ssent s;
        memset(&s, 0, sizeof(s));
        s.sockets = got;
        floor_stream_send(a, cmd, fds, (long)got, a->trials, &s);
        ipc_send(out, IPC_FSTREAM_SENT, &s, sizeof(s), NULL, 0);
        floor_wait_cmd(cmd, until);
    }
    free(fds);
    return 0;
}

/* A receiving socket's state: the message being read. */
typedef struct fs_sock {
    int fd;
    uint32_t next;                   /* the sequence number expected */
    uint16_t got;                    /* bytes of the current message read */
    uint8_t hdr[FSTREAM_HDR];
} fs_sock;

static void floor_stream_bytes(fs_sock *k, const uint8_t *p, size_t n, int size,
                               floor_srecv *r, uint64_t now)
{
    while (n > 0) {
        size_t take = (size_t)size - k->got;
        if (take > n)
            take = n;
        if (k->got < FSTREAM_HDR) {
            size_t h = (size_t)(FSTREAM_HDR - k->got);
            if (h > take)
                h = take;
            memcpy(k->hdr + k->got, p, h);
        }
        k->got = (uint16_t)(k->got + take);
        p += take;
        n -= take;
        if (k->got < size)
            return;
        k->got = 0;
        uint32_t seq;
        uint64_t ts;
        memcpy(&seq, k->hdr, 4);
        memcpy(&ts, k->hdr + 4, 8);
        if (seq < k->next) {
            r->dup++;
            continue;
        }
        r->lost += seq - k->next;     /* a gap: never on TCP, but counted */
        k->next = seq + 1;
        r->delivered++;
        if (!r->first_ns)
            r->first_ns = now;
        r->last_ns = now;
        hist_add(&r->lat, now > ts ? now - ts : 0);
    }
}

typedef struct fs_ring_ctx {
    fs_sock *ks;
    floor_srecv *r;
    int payload;
} fs_ring_ctx;

/* The floor-stream's reads through the ring (tag: the socket's index). */
static int fs_ring_read(void *ud, uint32_t tag, const uint8_t *p, int n)
{
    fs_ring_ctx *x = ud;
    if (n > 0)
        floor_stream_bytes(&x->ks[tag], p, (size_t)n, x->payload, x->r, clock_ns());
    return floor_ring_more(tag, n);
}

static int floor_stream_receiver(void *argp, int cmd, int out)
{
    floor_arg *a = argp;
    uint64_t until = clock_ns() + a->limit_ns;
    floor_nofile();
    int ep = epoll_create1(0);
    fs_sock *ks = calloc((size_t)(a->count ? a->count : 1), sizeof(fs_sock));
    static floor_srecv r;
    if (ep < 0 || !ks)
        return 1;
    memset(&r, 0, sizeof(r));
    hist_init(&r.lat);
    rxring *g = floor_ring_open(a, ep, UINT64_MAX - 1);
    fs_ring_ctx rc = { ks, &r, a->payload };
    uint64_t connected = 0;
    for (long j = a->first; j < a->first + a->count && clock_ns() < until; j++) {
        int fd = floor_connect_one(a, j);
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = connected };
        if (fd >= 0 && (g ? rxring_arm(g, fd, (uint32_t)connected) : epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) == 0)
            ks[connected++].fd = fd;
        else if (fd >= 0)
            close(fd);
    }
    struct epoll_event cev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
    epoll_ctl(ep, EPOLL_CTL_ADD, cmd, &cev);
    ipc_send(out, IPC_FLOOR_READY, &connected, sizeof(connected), NULL, 0);
    uint64_t cpu0 = floor_cpu_ns(), next_prog = 0;
    struct epoll_event ev[256];
    uint8_t buf[16384];
    int stop = 0;
    while (!stop && clock_ns() < until) {             /* until the parent says */
        int n = epoll_wait(ep, ev, 256, 50);
        uint64_t now = clock_ns();
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == UINT64_MAX) {
                stop = 1;
                continue;
            }
            if (ev[i].data.u64 == UINT64_MAX - 1) {
                if (rxring_run(g, fs_ring_read, &rc) < 0)
                    stop = 1;
                continue;
            }
            fs_sock *k = &ks[ev[i].data.u64];
            for (int rd = 0; rd < 16; rd++) {
                ssize_t got = recv(k->fd, buf, sizeof(buf), 0);
                if (got <= 0)
                    break;
                floor_stream_bytes(k, buf, (size_t)got, a->payload, &r, now);
                if ((size_t)got < sizeof(buf))
                    break;
            }
        }
        if (now >= next_prog) {
            ipc_send(out, IPC_FSTREAM_PROG, &r.delivered, sizeof(r.delivered), NULL, 0);
            next_prog = now + 100000000ull;
        }
    }
    r.cpu_ns = floor_cpu_ns() - cpu0;
    ipc_send(out, IPC_FSTREAM_RECV, &r, sizeof(r), NULL, 0);
    free(ks);
    return 0;
}

typedef struct fs_state {
    proc ps[2 * FLOOR_MAX_PROCS];
    int np, ns, ports, ready, sent, recvd;
    floor_arg arg;
    uint64_t t_first, t_last, r_first, r_last;
    uint64_t prog[2 * FLOOR_MAX_PROCS];  /* each receiver's deliveries so far */
} fs_state;

static void fs_record(fs_state *st, floor_stream_result *fr, int i, uint32_t t,
                      const uint8_t *p, uint32_t n)
{
    static floor_srecv r;
    if (floor_setup_record(&st->arg, &st->ports, &st->ready, &fr->accepted, &fr->connected,
                           st->ns, i, t, p, n))
        return;
    if (t == IPC_FSTREAM_SENT && n == sizeof(floor_ssent)) {
        floor_ssent s;
        memcpy(&s, p, sizeof(s));
        if (s.t_first && (!st->t_first || s.t_first < st->t_first))
            st->t_first = s.t_first;
        if (s.t_last > st->t_last)
            st->t_last = s.t_last;
        fr->sent += s.sent;
        fr->expected += s.ticks * s.sockets;
        if (s.ticks < (uint64_t)fr->messages)
            fr->messages_short++;
        fr->send_eagain += s.eagain;
        fr->sender_cpu_s += (double)s.cpu_ns / 1e9;
        st->sent++;
    } else if (t == IPC_FSTREAM_PROG && n == 8) {
        memcpy(&st->prog[i], p, 8);
    } else if (t == IPC_FSTREAM_RECV && n == sizeof(floor_srecv)) {
        memcpy(&r, p, sizeof(r));
        st->prog[i] = r.delivered;
        fr->delivered += r.delivered;
        fr->lost += r.lost;
        fr->duplicated += r.dup;
        fr->receiver_cpu_s += (double)r.cpu_ns / 1e9;
        hist_merge(&fr->lat, &r.lat);
        if (r.first_ns && (!st->r_first || r.first_ns < st->r_first))
            st->r_first = r.first_ns;
        if (r.last_ns > st->r_last)
            st->r_last = r.last_ns;
        st->recvd++;
    }
}

static void fs_record_cb(void *st, void *fr, int i, uint32_t t, const uint8_t *p, uint32_t n)
{
    fs_record(st, fr, i, t, p, n);
}

static int fs_wait(fs_state *st, floor_stream_result *fr, int *counter, int want, double s)
{
    return floor_pump(st->ps, st->np, fs_record_cb, st, fr, counter, want, s);
}

static int fs_fail(floor_stream_result *fr, const char *why)
{
    snprintf(fr->error, sizeof(fr->error), "%s", why);
    return -1;
}

static int fs_spawn(fs_state *st, int receivers, long n, int sender)
{
    for (int k = 0; k < (sender ? st->ns : receivers); k++) {
        if (sender) {
            st->arg.first = k;
        } else {
            st->arg.first = n * k / receivers;
            st->arg.count = n * (k + 1) / receivers - st->arg.first;
        }
        if (proc_spawn(&st->ps[st->np], st->ps, st->np,
                       sender ? floor_stream_sender : floor_stream_receiver, &st->arg) != 0)
            return -1;
        st->np++;
    }
    return 0;
}

static int fs_phases(fs_state *st, floor_stream_result *fr, int receivers, long n)
{
    const bench_opts *o = st->arg.o;
    double setup = o->timeout_s + (double)n / 2000.0 + 10;
    if (fs_wait(st, fr, &st->ports, st->ns, 10) != 0)
        return fs_fail(fr, "a sender did not report its port");
    if (fs_spawn(st, receivers, n, 0) != 0)
        return fs_fail(fr, "fork failed");
    if (fs_wait(st, fr, &st->ready, st->np, setup) != 0)
        return fs_fail(fr, "set-up of the socket pairs timed out");
    struct timeval tv = { 0, 300000 };                  /* let everything settle */
    select(0, NULL, NULL, NULL, &tv);
    for (int s = 0; s < st->ns; s++)
        proc_command(&st->ps[s], 'G');
    fs_wait(st, fr, &st->sent, st->ns, o->room_s * 2 + 30);
    /* every message sent has arrived, or --drain has passed: stop the
     * receivers, which then report */
    uint64_t until = clock_ns() + (uint64_t)(o->drain_s * 1e9);
    for (;;) {
        uint64_t got = 0;
        for (int i = st->ns; i < st->np; i++)
            got += st->prog[i];
        if (got >= fr->expected || clock_ns() > until)
            break;
        int dummy = 0;
        fs_wait(st, fr, &dummy, 1, 0.05);
    }
    for (int i = st->ns; i < st->np; i++)
        proc_command(&st->ps[i], 'S');
    fs_wait(st, fr, &st->recvd, receivers, 10);
    if (st->sent < st->ns || st->recvd < receivers)
        return fs_fail(fr, "a floor-stream process did not report");
    return 0;
}

int floor_stream_run(const bench_opts *o, long n, int payload, floor_stream_result *fr)
{
    static fs_state st;
    memset(&st, 0, sizeof(st));
    memset(fr, 0, sizeof(*fr));
    hist_init(&fr->lat);
    fr->ran = 1;
    fr->sockets = n;
    fr->payload = payload;
    fr->rate_per_s = o->room_rate;
    fr->duration_s = o->room_s;
    fr->messages = (long)ceil(o->room_rate * o->room_s - 1e-9);
    fr->send_s = fr->span_s = fr->deliveries_per_s = NAN;
    const char *why = floor_plan(o, n, payload, (int)FSTREAM_HDR, (int)fr->messages,
                                 2 * o->room_s + o->drain_s + 60, &st.arg);
    if (why)
        return fs_fail(fr, why);
    fr->senders = st.ns = st.arg.senders;
    fr->receivers = st.arg.receivers;
    int receivers = st.arg.receivers;
    int r = fs_spawn(&st, receivers, n, 1) != 0 ? fs_fail(fr, "fork failed")
                                                 : fs_phases(&st, fr, receivers, n);
    for (int i = 0; i < st.np; i++)
        proc_command(&st.ps[i], 'S');
    proc_reap(st.ps, st.np, 10);
    if (st.t_last > st.t_first)
        fr->send_s = (double)(st.t_last - st.t_first) / 1e9;
    if (st.r_last > st.t_first && st.t_first) {
        fr->span_s = (double)(st.r_last - st.t_first) / 1e9;
        fr->deliveries_per_s = (double)fr->delivered / fr->span_s;
    }
    if (fr->expected > fr->delivered + fr->lost)        /* what never came */
        fr->lost = fr->expected - fr->delivered;
    fr->complete = r == 0 && fr->accepted == n && fr->connected == n &&
                   fr->delivered == fr->expected && fr->lost == 0 && fr->duplicated == 0;
    return r;
}
