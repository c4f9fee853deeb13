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

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define FLOOR_MAX_PROCS 256

typedef struct floor_sent { uint64_t t_start, t_end, sent, eagain; } floor_sent;
typedef struct floor_recv { uint64_t bytes, first_ns, last_ns; } floor_recv;

typedef struct floor_arg {
    const bench_opts *o;
    long n;                  /* sockets in the whole floor */
    int senders;
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

static int floor_sender(void *argp, int cmd, int out)
{
    floor_arg *a = argp;
    long idx = a->first;
    long want = a->n / a->senders + (idx < a->n % a->senders);
    uint64_t until = clock_ns() + a->limit_ns;
    uint16_t port = 0;
    floor_nofile();
    int lfd = floor_listen(&port);
    int *fds = malloc(sizeof(int) * (size_t)(want ? want : 1));
    uint32_t p32 = port;
    if (lfd < 0 || !fds || ipc_send(out, IPC_FLOOR_PORT, &p32, sizeof(p32), NULL, 0) != 0)
        return 1;
    uint64_t got = (uint64_t)floor_accept_all(lfd, fds, want, until);
    ipc_send(out, IPC_FLOOR_READY, &got, sizeof(got), NULL, 0);
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
static int floor_read_loop(int ep, int cmd, uint64_t want, floor_recv *r, uint64_t until)
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
    uint64_t connected = 0;
    for (long j = a->first; j < a->first + a->count && clock_ns() < until; j++) {
        int fd = floor_connect_one(a, j);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0)
            connected++;
    }
    struct epoll_event cev = { .events = EPOLLIN, .data.fd = cmd };
    epoll_ctl(ep, EPOLL_CTL_ADD, cmd, &cev);
    ipc_send(out, IPC_FLOOR_READY, &connected, sizeof(connected), NULL, 0);
    for (int trial = 0; trial < a->trials; trial++) {
        floor_recv r = { 0, 0, 0 };
        int done = floor_read_loop(ep, cmd, connected * (uint64_t)a->payload, &r, until);
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

static void floor_record(floor_run_state *st, floor_result *fr, int i, uint32_t t,
                         const uint8_t *p, uint32_t n)
{
    if (t == IPC_FLOOR_PORT && n == 4 && i < st->ns) {
        uint32_t port;
        memcpy(&port, p, 4);
        st->arg.ports[i] = (uint16_t)port;
        st->ports++;
    } else if (t == IPC_FLOOR_READY && n == 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        if (i < st->ns)
            fr->accepted += (long)v;
        else
            fr->connected += (long)v;
        st->ready++;
    } else if (t == IPC_FLOOR_SENT && n == sizeof(floor_sent)) {
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

/* Polls the children until *counter reaches want or the time is up. */
static int floor_wait(floor_run_state *st, floor_result *fr, int *counter, int want,
                      double seconds)
{
    uint64_t until = clock_ns() + (uint64_t)(seconds * 1e9);
    while (*counter < want && clock_ns() < until) {
        proc_poll(st->ps, st->np, 100);
        for (int i = 0; i < st->np; i++) {
            uint32_t t, n;
            const uint8_t *p;
            while (ipc_next(&st->ps[i].rd, &t, &p, &n))
                floor_record(st, fr, i, t, p, n);
        }
    }
    return *counter >= want ? 0 : -1;
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
    int senders = floor_senders_for(o, n);
    int receivers = o->procs < n ? o->procs : (int)n;
    if (payload < 1 || payload > FLOOR_MAX_PAYLOAD)
        return floor_fail(fr, "payload size out of range");
    if (senders < 1 || senders > FLOOR_MAX_PROCS || receivers > FLOOR_MAX_PROCS)
        return floor_fail(fr, "too many sockets per sender, or too many processes");
    fr->senders = senders;
    fr->receivers = receivers;
    st.ns = senders;
    st.arg.o = o;
    st.arg.n = n;
    st.arg.senders = senders;
    st.arg.trials = o->floor_trials;
    st.arg.payload = payload;
    st.arg.limit_ns = (uint64_t)((o->timeout_s + (double)n / 2000.0 + o->drain_s + 60) * 1e9);
    int r = floor_spawn_senders(&st) != 0 ? floor_fail(fr, "fork failed")
                                            : floor_phases(&st, fr, receivers, n);
    for (int i = 0; i < st.np; i++)
        proc_command(&st.ps[i], 'S');
    proc_reap(st.ps, st.np, 10);
    return r;
}
