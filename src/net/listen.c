/* listen.c — SO_REUSEPORT listener groups and the open-file limit. */
#include "net/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

static int listen_addr(const char *addr, int port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, addr, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Binds a probe socket without SO_REUSEPORT: fails if anyone holds the
 * port; for port 0 it picks the port the group will share. */
static int listen_probe(const struct sockaddr_in *sa, int *port, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
        snprintf(err, errlen, "bind port %d: %s", ntohs(sa->sin_port), strerror(errno));
        close(fd);
        return -1;
    }
    struct sockaddr_in got;
    socklen_t glen = sizeof(got);
    if (getsockname(fd, (struct sockaddr *)&got, &glen) != 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(got.sin_port);
    close(fd);
    return 0;
}

static int listen_one(const struct sockaddr_in *sa, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "listen on port %d: %s", ntohs(sa->sin_port), strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int listen_group(const char *addr, int port, int n, int *fds, int *bound_port,
                 char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (listen_addr(addr, port, &sa) != 0) {
        snprintf(err, errlen, "bad bind address '%s' (an IPv4 address is expected)", addr);
        return -1;
    }
    if (listen_probe(&sa, &port, err, errlen) != 0)
        return -1;
    sa.sin_port = htons((uint16_t)port);
    for (int i = 0; i < n; i++) {
        fds[i] = listen_one(&sa, err, errlen);
        if (fds[i] < 0) {
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
    }
    *bound_port = port;
    return 0;
}

long listen_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}
