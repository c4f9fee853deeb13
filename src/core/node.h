/* node.h — process-wide facts of the running node: its configuration (read
 * only once workers start), the ports it bound and its start time. */
#ifndef IMGATE_NODE_H
#define IMGATE_NODE_H

#include <stdint.h>

#include "core/config.h"

typedef struct node {
    config cfg;
    int http_port;
    int ws_port;
    int rpc_port;         /* cluster mode: the bound gRPC port */
    long nofile;          /* open-file limit after raising it */
    long max_conns;       /* effective connection cap */
    uint64_t start_unix;  /* seconds */
    char hostname[64];
} node;

extern node g_node;

#endif
