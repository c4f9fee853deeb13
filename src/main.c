/* main.c — imgate's entry point: configuration (file < IMGATE_* < flags),
 * logging, listeners, worker threads, signals, clean shutdown.
 * Exit status: 0 clean shutdown, 2 bad configuration, 1 anything else. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cluster/cluster.h"
#include "cluster/rpc.h"
#include "cluster/sentinel.h"
#include "core/config.h"
#include "core/log.h"
#include "core/node.h"
#include "http/http_conn.h"
#include "im/dedup.h"
#include "im/dlog.h"
#include "im/hub.h"
#include "im/presence.h"
#include "im/proto.h"
#include "net/listen.h"
#include "net/tls.h"
#include "net/worker.h"


#define MAIN_FD_RESERVE 64   /* files kept for logs, listeners, Redis, ... */

static const char main_usage[] =
    "usage: imgate [-c config/app.yaml] [--http-port N] [--ws-port N] [--rpc-port N]\n"
    "              [--bind ADDR] [--advertise-ip ADDR] [--redis HOST:PORT] [--workers N]\n"
    "              [--log-level debug|info|warn|error] [--set section.key=value ...]\n"
    "       imgate --version | --help\n"
    "\n"
    "Precedence: flags > IMGATE_* environment variables > the config file > defaults.\n"
    "Port 0 picks a free port; the bound ports are printed as 'http listening on ...'.\n";

static const struct {
    const char *flag;
    const char *key;
} main_flags[] = {
    { "--http-port", "app.httpPort" },
    { "--ws-port", "app.webSocketPort" },
    { "--rpc-port", "app.rpcPort" },
    { "--bind", "app.bind" },
    { "--advertise-ip", "app.advertiseIp" },
    { "--redis", "redis.addr" },
    { "--workers", "app.workers" },
    { "--log-level", "app.logLevel" },
};

/* Applies the flags over cfg (after file and environment). */
static int main_apply_flags(config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        const char *key = NULL;
        for (size_t f = 0; f < sizeof(main_flags) / sizeof(main_flags[0]); f++)
            if (strcmp(a, main_flags[f].flag) == 0)
                key = main_flags[f].key;
        char kv[512];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--set") == 0 && val) {
            snprintf(kv, sizeof(kv), "%s", val);
            char *eq = strchr(kv, '=');
            if (!eq) {
                snprintf(err, errlen, "--set %s: expected section.key=value", val);
                return -1;
            }
            *eq = '\0';
            key = kv;
            val = eq + 1;
        } else if (!key) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", a);
            return -1;
        }
        if (!val) {
            snprintf(err, errlen, "option '%s' needs a value", a);
            return -1;
        }
        char why[256];
        if (config_set(cfg, key, val, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s: %s", a, why);
            return -1;
        }
        i++;
    }
    return 0;
}

static int main_config(int argc, char **argv)
{
    const char *path = "config/app.yaml";
    int must_exist = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(main_usage, stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("imgate %s\n", IMGATE_VERSION);
            exit(0);
        }
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
            must_exist = 1;
        }
    }
    char err[512];
    config_defaults(&g_node.cfg);
    if (config_load_file(&g_node.cfg, path, must_exist, err, sizeof(err)) != 0 ||
        config_apply_env(&g_node.cfg, err, sizeof(err)) != 0 ||
        main_apply_flags(&g_node.cfg, argc, argv, err, sizeof(err)) != 0 ||
        config_validate(&g_node.cfg, err, sizeof(err)) != 0 ||
        sentinel_validate(&g_node.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "imgate: configuration error: %s\n", err);
        return -1;
    }
    return 0;
}

/* The chat page needs reachable URLs: default ones follow the bound ports. */
static void main_fix_urls(void)
{
    config *c = &g_node.cfg;
    char host[64];
    snprintf(host, sizeof(host), "%.40s", strcmp(c->bind, "0.0.0.0") == 0 ? "127.0.0.1" : c->bind);
    if (strcmp(c->httpUrl, "127.0.0.1:8080") == 0)
        snprintf(c->httpUrl, sizeof(c->httpUrl), "%s:%d", host, g_node.http_port);
    if (strcmp(c->webSocketUrl, "127.0.0.1:8089") == 0)
        snprintf(c->webSocketUrl, sizeof(c->webSocketUrl), "%s:%d", host, g_node.ws_port);
}

static int main_listen(int nw, int *ws_fds, int *http_fds)
{
    char err[256];
    config *c = &g_node.cfg;
    if (listen_group(c->bind, c->webSocketPort, nw, ws_fds, &g_node.ws_port, err, sizeof(err)) != 0) {
        log_error("ws listener: %s", err);
        return -1;
    }
    if (listen_group(c->bind, c->httpPort, nw, http_fds, &g_node.http_port, err, sizeof(err)) != 0) {
        log_error("http listener: %s", err);
        return -1;
    }
    printf("http listening on %s:%d\n", c->bind, g_node.http_port);
    printf("ws listening on %s:%d\n", c->bind, g_node.ws_port);
    main_fix_urls();
    printf("chat page: %s://%s/home/index?appID=101\n", tls_enabled() ? "https" : "http", c->httpUrl);
    fflush(stdout);
    return 0;
}

/* Cluster mode: the gRPC server on cluster.rpcBind (default app.bind) and
 * app.rpcPort (before the workers, so the port is known for the registry)
 * — see cluster/rpc.h. Its calls may come before the workers exist: it sees
 * them only once workers_start has published them (workers_count() is 0
 * until then). */
static int main_rpc(void)
{
    config *c = &g_node.cfg;
    const char *bind = c->rpcBind[0] ? c->rpcBind : c->bind;
    char err[256];
    if (!cluster_enabled())
        return 0;
    if (rpc_start(bind, c->rpcPort, &g_node.rpc_port, err, sizeof(err)) != 0) {
        log_error("rpc listener: %s", err);
        return -1;
    }
    printf("rpc listening on %s:%d\n", bind, g_node.rpc_port);
    fflush(stdout);
    return 0;
}

/* Cluster mode: cluster.rpcToken and cluster.rpcTls* (SPEC §7.3); a file
 * that cannot be read or used stops start-up. */
static int main_rpc_security(void)
{
    const config *c = &g_node.cfg;
    char err[768];
    if (!cluster_enabled())
        return 0;
    if (rpc_security_load(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "imgate: configuration error: %s\n", err);
        return -1;
    }
    if (strcmp(rpc_auth_mode(), "none") != 0)
        log_info("rpc: node-to-node calls secured (%s): only imgate nodes with the same settings "
                 "can join this cluster", rpc_auth_mode());
    return 0;
}

/* Embedded mode: the delivery logs (im/dlog.h), and their sweep on this
 * loop (64 of the 256 stripes a second: every log about every 4 s).
 * Cluster mode keeps them in Redis (cluster/clog.h). */
static uv_timer_t main_dlog_sweep;

static void main_on_dlog_sweep(uv_timer_t *t)
{
    (void)t;
    dlog_sweep(64);
}

static int main_delivery(void)
{
    char err[256];
    if (g_node.cfg.redisAddr[0] || g_node.cfg.redisSentinels[0] || !g_node.cfg.deliveryEnabled)
        return 0;
    if (dlog_init(err, sizeof(err)) != 0) {
        log_error("delivery: %s", err);
        return -1;
    }
    uv_timer_init(uv_default_loop(), &main_dlog_sweep);
    uv_timer_start(&main_dlog_sweep, main_on_dlog_sweep, 1000, 1000);
    return 0;
}

/* Before the main loop's last run (main_signals_close). */
static void main_delivery_stop(void)
{
    if (uv_is_active((uv_handle_t *)&main_dlog_sweep))
        uv_close((uv_handle_t *)&main_dlog_sweep, NULL);
}

/* Cluster mode: Redis, registration, presence (see cluster/cluster.h). */
static int main_cluster(void)
{
    char err[256];
    if (!cluster_enabled())
        return 0;
    if (cluster_start(NULL, err, sizeof(err)) != 0) {
        log_error("cluster: %s", err);
        return -1;
    }
    return 0;
}

static void main_limits(void)
{
    g_node.nofile = listen_raise_nofile();
    /* The file budget: a reserve for Redis, logs and gRPC, then the HTTP
     * API's own cap, the rest for WebSocket clients. */
    long http = g_node.cfg.maxHttpConnections;
    long cap = g_node.nofile - MAIN_FD_RESERVE - http;
    if (cap < 1)
        cap = 1;
    if (g_node.cfg.maxConnections > 0 && g_node.cfg.maxConnections < cap)
        cap = g_node.cfg.maxConnections;
    g_node.max_conns = cap;
    log_info("open-file limit %ld: this node accepts up to %ld WebSocket connections%s and %ld HTTP API "
             "connections", g_node.nofile, cap, g_node.cfg.maxConnections > 0 ? " (app.maxConnections)" : "",
             http);
}

/* app.tlsCert/app.tlsKey: load them now; a bad file stops start-up. */
static int main_tls(void)
{
    const config *c = &g_node.cfg;
    char err[768];
    if (!c->tlsCert[0])
        return 0;
    if (tls_init(c->tlsCert, c->tlsKey, err, sizeof(err)) != 0) {
        fprintf(stderr, "imgate: TLS: %s\n", err);
        return -1;
    }
    log_info("TLS on: both ports speak TLS only (https://, wss://); certificate %s", c->tlsCert);
    return 0;
}

static void main_on_signal(uv_signal_t *s, int signum)
{
    if (signum == SIGHUP) {
        log_info("SIGHUP: reopening logs");
        if (log_reopen() != 0)
            log_error("cannot reopen the log file");
        return;
    }
    log_info("%s: shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_stop(s->loop);
}

/* The signal handlers go in before any port is printed: a SIGTERM that
 * follows the "listening" lines at once must still shut down cleanly. */
static uv_signal_t main_sig[3];

static void main_signals(void)
{
    const int signums[3] = { SIGINT, SIGTERM, SIGHUP };
    for (int i = 0; i < 3; i++) {
        uv_signal_init(uv_default_loop(), &main_sig[i]);
        uv_signal_start(&main_sig[i], main_on_signal, signums[i]);
    }
}

static void main_signals_close(void)
{
    uv_loop_t *loop = uv_default_loop();
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&main_sig[i], NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
}

/* Shutdown. Each step ends a thread (or the clients) that may still post
 * to what the later steps stop, and the workers, which every other thread
 * posts to, are freed last (ownership: net/worker.h):
 *  1. leave the cluster: peers stop routing here;
 *  2. stop serving peers: the gRPC thread is joined, its calls answered,
 *     cancelled or abandoned (their worker tasks still run later);
 *  3. stop accepting and close the clients (1001, app.shutdownGrace): their
 *     logoff writes queue on the Redis link; the worker loops keep running;
 *  4. stop the Redis link: in-flight commands end or fail, every query's
 *     answer goes back to its worker (still running); its loop ends (its
 *     thread joined, or the one worker that ran it lets go of it);
 *  5. end the worker loops, run what is left in their inboxes, free them. */
static int main_run(void)
{
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    cluster_deregister();
    rpc_stop();
    workers_close_clients();
    cluster_stop();
    workers_stop();
    return 0;
}

/* glibc's fastbins off. A login allocates and frees dozens of small
 * blocks (the Redis commands and replies, the presence record) and every
 * allocation of a block over about 1 KiB that the thread cache cannot
 * serve (a hiredis output buffer regrown, a script sent), like every free
 * that leaves a free block of 64 KiB, first merged all the fastbins back
 * (malloc_consolidate): 4.4 % of a node's CPU in a login storm, of the
 * 15-20 % the allocator took. Without fastbins a small block beyond the
 * thread cache is merged when freed; the allocator as a whole still costs
 * about as much (one node alone, with and without: within the spread). */
static void main_malloc(void)
{
    if (mallopt(M_MXFAST, 0) != 1)
        log_warn("mallopt(M_MXFAST, 0) refused: malloc keeps its fastbins");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (main_config(argc, argv) != 0)
        return 2;
    config *c = &g_node.cfg;
    if (log_init(c->logLevel, c->logFile[0] ? c->logFile : NULL) != 0) {
        fprintf(stderr, "imgate: cannot open log file '%s': %s\n", c->logFile, strerror(errno));
        return 2;
    }
    if (log_init_requests(c->requestLog) != 0) {
        fprintf(stderr, "imgate: cannot open request log '%s': %s\n", c->requestLog, strerror(errno));
        return 2;
    }
    main_malloc();
    if (main_tls() != 0 || main_rpc_security() != 0) {
        tls_shutdown();
        return 2;
    }
    g_node.start_unix = (uint64_t)time(NULL);
    int nw = c->workers > 0 ? c->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nw < 1)
        nw = 1;
    log_info("imgate %s starting: %d workers, %s mode", IMGATE_VERSION, nw,
             cluster_enabled() ? "cluster" : "embedded");
    main_limits();
    http_conn_init();                            /* the layers above net/ register */
    proto_init();
    hub_init();
    int *ws_fds = calloc((size_t)nw, sizeof(int));
    int *http_fds = calloc((size_t)nw, sizeof(int));
    int rc = 1;
    main_signals();
    if (ws_fds && http_fds && presence_init() == 0 &&
        dedup_init((uint32_t)c->dedupTtl, (size_t)c->dedupMax, c->dedupMaxBytes) == 0 &&
        main_delivery() == 0 && main_listen(nw, ws_fds, http_fds) == 0 && main_rpc() == 0 && main_cluster() == 0 &&
        workers_start(nw, ws_fds, http_fds) == 0) {
        cluster_run();
        rc = main_run();
    } else {                                     /* a start-up step failed */
        cluster_stop();
        rpc_stop();
    }
    main_delivery_stop();
    main_signals_close();
    dedup_free();
    dlog_free();
    presence_free();
    tls_shutdown();
    rpc_security_free();
    free(ws_fds);
    free(http_fds);
    log_info("imgate stopped");
    log_close();
    return rc;
}
