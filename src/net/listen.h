/* listen.h — listening sockets for a group of workers: one SO_REUSEPORT
 * socket per worker on the same address and port, so the kernel spreads
 * accepts across loops. */
#ifndef IMGATE_LISTEN_H
#define IMGATE_LISTEN_H

#include <stddef.h>

/* Opens n listening sockets on addr:port (port 0 = a free port chosen once
 * for the whole group). Before that it checks that nobody else holds the
 * port, so two nodes started on the same port fail instead of silently
 * splitting traffic. Fills fds[0..n) and *bound_port. Returns 0, or -1 with
 * a reason in err. */
int listen_group(const char *addr, int port, int n, int *fds, int *bound_port,
                 char *err, size_t errlen);

/* Raises the open-file soft limit to the hard limit; returns the new limit. */
long listen_raise_nofile(void);

#endif
