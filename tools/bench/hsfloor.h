/* hsfloor.h — the raw-handshake floor: `imgate-bench handshake-server`.
 *
 * The least a WebSocket server must do for a connect + login, with nothing
 * else: accept, read the upgrade request, answer 101 with the SHA-1 accept
 * key, read the login frame and answer a fixed login reply (and heartbeats
 * with theirs). M processes (--procs, the node count of the run it is the
 * floor of), one loop each, each on its own port, printed as imgate prints
 * its own ("ws listening on 127.0.0.1:<port>", one line per process). The
 * connect scenario run against these ports is then the floor that
 * imgate's connect + login is compared with at the same process count.
 * Runs until SIGTERM/SIGINT; stops its children by PID. */
#ifndef IMGATE_BENCH_HSFLOOR_H
#define IMGATE_BENCH_HSFLOOR_H

/* argv[0] is "handshake-server". Returns the exit status. */
int hsfloor_main(int argc, char **argv);

#endif
