/* config.h — imgate's configuration: defaults, config/app.yaml, IMGATE_*
 * environment variables and command-line flags, in rising precedence.
 *
 * The loader is strict: an unknown key, a value of the wrong type or out of
 * range stops start-up with "FILE:LINE: key 'app.x': reason". A missing file
 * means defaults. */
#ifndef IMGATE_CONFIG_H
#define IMGATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_APPIDS 64
#define CONFIG_STR 256
/* Highest app.maxMessagesPerSecond: the per-connection counter is 11 bits
 * (net/conn.h, CONN_MAX_RATE). */
#define CONFIG_MAX_RATE 2000

typedef struct config {
    /* app: (original keys) */
    char logFile[CONFIG_STR];        /* "" = stderr only */
    int httpPort;                    /* 8080; 0 = pick a free port */
    int webSocketPort;               /* 8089 */
    int rpcPort;                     /* 9001 */
    char httpUrl[CONFIG_STR];        /* "127.0.0.1:8080", used by the chat page */
    char webSocketUrl[CONFIG_STR];   /* "127.0.0.1:8089", used by the chat page */
    /* app: (new keys) */
    char bind[CONFIG_STR];           /* "0.0.0.0" */
    char advertiseIp[CONFIG_STR];    /* "" = derived */
    int workers;                     /* 0 = CPU count */
    uint32_t appIDs[CONFIG_MAX_APPIDS];
    int appIDCount;                  /* default 4: 101..104 */
    int connectionTimeout;           /* seconds, 360 */
    int pingInterval;                /* seconds, 30; 0 = no server pings */
    int sweepInterval;               /* seconds, 10 */
    int handshakeTimeout;            /* seconds, 10 */
    size_t maxMessageSize;           /* bytes, 65536 */
    size_t maxOutboundBytes;         /* per connection outbound queue cap, 1 MiB */
    char echoPath[CONFIG_STR];       /* "" = off; e.g. "/echo" */
    int maxConnections;              /* WebSocket port; 0 = only the open-file limit */
    int maxHttpConnections;          /* HTTP API port, counted apart; 0 = no cap; 1024 */
    int perMessageDeflate;           /* RFC 7692 offered by clients is accepted; false */
    int ioUring;                     /* end-of-turn writes in one io_uring call (net/uring.h); true */
    size_t deflateMinSize;           /* messages under this are sent uncompressed, 128 */
    char logLevel[16];               /* debug|info|warn|error, "info" */
    char requestLog[CONFIG_STR];     /* "" = request log goes with the debug log */
    int maxMessagesPerSecond;        /* per connection, inbound; over it: close 1008; 0 = off; 100 */
    size_t maxOutboundBytesTotal;    /* all outbound queues of the node; 0 = off; 512 MiB */
    int httpIdleTimeout;             /* seconds an idle keep-alive HTTP client is kept, 60 */
    size_t maxHeaderBytes;           /* HTTP request line + headers (431 over it), 16 KiB */
    size_t maxBodyBytes;             /* HTTP request body (413 over it), 1 MiB */
    int maxListUsers;                /* most users in one /user/list answer (paged); 0 = all; 10000 */
    int shutdownGrace;               /* seconds queued messages may flush at shutdown, 5 */
    char allowedOrigins[1024];       /* Origins allowed to upgrade, comma-separated (a YAML
                                        list is joined so); "" = any */
    char tlsCert[CONFIG_STR];        /* PEM certificate chain: TLS on both ports; "" = plain */
    char tlsKey[CONFIG_STR];         /* PEM private key of tlsCert; set both or neither */
    /* redis: (original keys; cluster mode when addr is set) */
    char redisAddr[CONFIG_STR];
    char redisSentinels[1024];       /* "host:port,..." of Redis Sentinels ("" = off) */
    char redisMasterName[CONFIG_STR];/* the master's name at the sentinels */
    char redisPassword[CONFIG_STR];
    int redisDB;
    int redisPoolSize;
    int redisMinIdleConns;
    /* cluster: (used in cluster mode only) */
    int registerInterval;            /* seconds between registrations in acc:hash:servers, 60 */
    int serverTimeout;               /* a node registered this many seconds ago or more is gone, 180 */
    int rpcTimeout;                  /* milliseconds: deadline of every gRPC call to a peer, 2000 */
    int redisTimeout;                /* milliseconds a Redis command may take before the
                                        connection is dropped and re-made, 2000 */
    int peerBackoff;                 /* seconds: longest pause before a failing peer is tried again, 30 */
    char rpcBind[CONFIG_STR];        /* gRPC listen address; "" = app.bind */
    char rpcToken[CONFIG_STR];       /* gRPC calls need "authorization: Bearer <token>"; "" = off */
    char rpcTlsCert[CONFIG_STR];     /* PEM certificate chain of this node (mutual TLS); "" = off */
    char rpcTlsKey[CONFIG_STR];      /* PEM private key of rpcTlsCert */
    char rpcTlsCA[CONFIG_STR];       /* PEM CA certificates the nodes' certificates are signed by;
                                        the three rpcTls* keys are set together or not at all */
    /* im: */
    int dedupTtl;                    /* seconds a msgID stays used, 43200 */
    int dedupMax;                    /* max remembered msgIDs (bounded memory), 1000000 */
    size_t dedupMaxBytes;            /* max bytes the remembered msgIDs hold, 64 MiB */
    /* delivery.* (SPEC 7.1): inbox and room history logs */
    int deliveryEnabled;             /* log messages at all; true */
    int ackRequired;                 /* only acks move the pushed cursor; false */
    int inboxMax;                    /* entries per user inbox, 1000 */
    int inboxTTL;                    /* seconds an inbox entry is kept, 7 days */
    int roomHistoryMax;              /* entries per room history, 100 */
    int roomHistoryTTL;              /* seconds a room history entry is kept, 3600 */
    char deliveryDir[CONFIG_STR];    /* embedded mode: LMDB directory ("" = memory only) */
    int presenceEventsMaxRoom;       /* no enter/exit pushes in rooms with more users
                                        than this on the node (0 = always), 1000 */
    /* auth: (off when empty) */
    char authSecret[CONFIG_STR];     /* HS256 key of login tokens (serviceToken) */
    char apiKey[CONFIG_STR];         /* HTTP API key, "Authorization: Bearer <key>" */
} config;

/* Fills *c with the defaults. */
void config_defaults(config *c);

/* Loads a YAML file over *c. A missing file is not an error when
 * must_exist is 0. Returns 0, or -1 with a message "FILE:LINE: ..." in err. */
int config_load_file(config *c, const char *path, int must_exist, char *err, size_t errlen);

/* Applies IMGATE_* environment variables (IMGATE_HTTP_PORT, IMGATE_WS_PORT,
 * IMGATE_RPC_PORT, IMGATE_BIND, IMGATE_ADVERTISE_IP, IMGATE_REDIS,
 * IMGATE_WORKERS, IMGATE_LOG_LEVEL, IMGATE_LOG_FILE, IMGATE_ECHO_PATH,
 * IMGATE_CONNECTION_TIMEOUT, IMGATE_PING_INTERVAL, IMGATE_SWEEP_INTERVAL,
 * IMGATE_AUTH_SECRET, IMGATE_API_KEY, ...: the env column of the schema).
 * Returns 0 or -1 with a message naming the variable. */
int config_apply_env(config *c, char *err, size_t errlen);

/* Sets one value by its YAML path ("app.httpPort") from a string, with the
 * same checks as the file loader. Used by the env and flag layers.
 * Returns 0 or -1 with a reason in err. */
int config_set(config *c, const char *key, const char *value, char *err, size_t errlen);

/* Checks cross-field rules after all layers are applied. */
int config_validate(const config *c, char *err, size_t errlen);

/* Writes *c as YAML that config_load_file reads back, one key per line with
 * its IMGATE_* variable as a comment; secrets are masked. For --help.
 * Returns 0, or -1 on a write error. */
int config_dump(const config *c, FILE *out);

#endif
