/* cluster.c — cluster mode's place in the cluster (see cluster.h), on top
 * of the Redis link (rlink.h): the node's registration in acc:hash:servers
 * every cluster.registerInterval and its removal at shutdown, the list of
 * live nodes, the presence records of the users it holds (rewritten in full
 * after every reconnect) and enter/exit announcements to the other nodes.
 * Its timer and tasks run on the link thread. */
#include "cluster/cluster.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/clog.h"
#include "cluster/cstate.h"
#include "cluster/prec.h"
#include "cluster/rlink.h"
#include "cluster/rpc.h"
#include "cluster/sentinel.h"
#include "cluster/unodes.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/node.h"
#include "im/hub.h"
#include "im/presence.h"
#include "net/worker.h"

#define CL_SERVERS_KEY CLUSTER_SERVERS_KEY
#define CL_SERVERS_TTL "7200"            /* seconds, on the registry key */
#define CL_MAX_SERVERS 1024
#define CL_MAX_BAD 64                    /* bad registry fields remembered (logged once each) */

static struct {
    uv_timer_t reg_timer;            /* on the link loop */
    uv_idle_t resync;                /* on the link loop: the resync's walk, a stripe a turn */
    int resync_init, resync_stripe;
    int link_stopped;                /* cl_on_stop ran (link loop) */
    long resync_users;
    int started, deregistering;
    char self[96];
    pthread_mutex_t lock;            /* guards servers, bad, registry_broken, quiet */
    char (*servers)[64];             /* live nodes from the last HGETALL */
    int nservers;
    char bad[CL_MAX_BAD][64];        /* registry fields that are not ip:port, logged */
    int nbad, bad_full;
    int registry_broken;             /* the last registry read failed (logged) */
    int quiet;                       /* deregistering: no more announcements */
    pthread_mutex_t wait_lock;       /* the deregister hand-shake */
    pthread_cond_t wait_cond;
    int wait_done;
} g_cl = { .lock = PTHREAD_MUTEX_INITIALIZER, .wait_lock = PTHREAD_MUTEX_INITIALIZER,
           .wait_cond = PTHREAD_COND_INITIALIZER };

int cluster_enabled(void)
{
    return g_node.cfg.redisAddr[0] != '\0' || sentinel_configured(&g_node.cfg);
}
const char *cluster_self(void) { return g_cl.self; }

/* ---------- presence records ---------- */

static void cl_prec_fill(prec *r, const pres_entry *e, int logoff)
{
    memset(r, 0, sizeof(*r));
    const char *colon = strrchr(g_cl.self, ':');
    size_t iplen = colon ? (size_t)(colon - g_cl.self) : 0;
    snprintf(r->acc_ip, sizeof(r->acc_ip), "%.*s", (int)iplen, g_cl.self);
    snprintf(r->acc_port, sizeof(r->acc_port), "%s", colon ? colon + 1 : "");
    r->appid = e->appid;
    memcpy(r->uid, e->id, e->idlen);
    r->uidlen = e->idlen;
    if (e->client_ip4) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &e->client_ip4, ip, sizeof(ip));
        snprintf(r->client_ip, sizeof(r->client_ip), "%s:%u", ip, e->client_port);
    }
    r->login_time = e->login_time;
    r->hb_time = atomic_load_explicit(&e->hb_time, memory_order_relaxed);
    r->is_logoff = logoff;
    r->logout_time = logoff ? (uint64_t)time(NULL) : 0;
}

void cluster_prec_json(jsonw *w, const pres_entry *e, int logoff)
{
    prec r;
    cl_prec_fill(&r, e, logoff);
    prec_encode(w, &r);
}

int cluster_prec_frag(char *out, size_t cap)
{
    const char *colon = strrchr(g_cl.self, ':');
    int iplen = colon ? (int)(colon - g_cl.self) : 0;
    int n = snprintf(out, cap, "\"accIp\":\"%.*s\",\"accPort\":\"%s\",", iplen, g_cl.self,
                     colon ? colon + 1 : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* SET of the online record; send is rlink_write, or rlink_cmd's form on
 * the link thread. */
static void cl_presence(const pres_entry *e, void (*send)(int, const char **, const size_t *))
{
    char key[96];
    if (prec_key(key, sizeof(key), e->appid, e->id, e->idlen) < 0)
        return;
    jsonw w;
    jsonw_init(&w, 0);
    cluster_prec_json(&w, e, 0);
    size_t len;
    const char *json = jsonw_text(&w, &len);
    if (json) {
        const char *argv[] = { "SET", key, json, "EX", PREC_TTL_STR };
        size_t lens[] = { 3, strlen(key), len, 2, strlen(PREC_TTL_STR) };
        send(5, argv, lens);
    }
    jsonw_free(&w);
}

void cluster_user_online(const pres_entry *e, uint32_t prev_hb)
{
    if (!cluster_enabled())
        return;
    unodes_touch(e, prev_hb);                     /* first: the record's write follows it */
    cl_presence(e, rlink_write);
}

/* On the link loop, after a (re)connect: every user this node holds,
 * written directly, one stripe of the registry per loop turn (a link on the
 * worker's thread would otherwise hold that worker's clients for the whole
 * walk: about 2.3 us a user). Each user is written under its stripe's lock,
 * so it is ordered before any later edge of theirs (edges take the same
 * lock and their writes queue behind these); an edge before the walk
 * reaches the stripe is followed by a write of the user's state then. */
static void cl_resync_send(int argc, const char **argv, const size_t *lens)
{
    (void)rlink_cmd(NULL, NULL, argc, argv, lens);
}

static void cl_resync_one(const pres_entry *e, void *ud)
{
    (*(long *)ud)++;
    cl_presence(e, cl_resync_send);
    unodes_resync_one(e);
}

static void cl_on_resync_step(uv_idle_t *h)
{
    if (!rlink_up()) {                            /* dropped: the next on_up walks again */
        uv_idle_stop(h);
        return;
    }
    presence_each_stripe(g_cl.resync_stripe, 0, cl_resync_one, &g_cl.resync_users);
    if (++g_cl.resync_stripe < PRESENCE_STRIPES)
        return;
    uv_idle_stop(h);
    log_info("cluster: wrote the presence of %ld local users to Redis", g_cl.resync_users);
    unodes_sweep();
}

/* Starts the walk (again, from the first stripe, if one was under way). */
static void cl_resync(void)
{
    if (!g_cl.resync_init && uv_idle_init(rlink_loop(), &g_cl.resync) != 0) {
        log_error("cluster: cannot rewrite the local users' presence (no idle handle)");
        return;
    }
    g_cl.resync_init = 1;
    g_cl.resync_stripe = 0;
    g_cl.resync_users = 0;
    (void)uv_idle_start(&g_cl.resync, cl_on_resync_step);
}

/* ---------- the registry ---------- */

/* A registry that cannot be read is logged once, until it can again. */
static void cl_registry_state(int broken, const char *err)
{
    pthread_mutex_lock(&g_cl.lock);
    int was = g_cl.registry_broken;
    g_cl.registry_broken = broken;
    pthread_mutex_unlock(&g_cl.lock);
    if (broken && !was)
        log_warn("cluster: the node registry %s cannot be read: %s; cluster-wide API calls answer "
                 "1004 until it is a hash again", CL_SERVERS_KEY, err);
    else if (!broken && was)
        log_info("cluster: the node registry %s can be read again", CL_SERVERS_KEY);
}

/* "host:port": an IPv4 address, a [bracketed] IPv6 address or a DNS name,
 * and a port 1-65535 in decimal. */
static int cl_server_valid(const char *s, size_t len)
{
    const char *colon = memrchr(s, ':', len);
    size_t hl = colon ? (size_t)(colon - s) : 0, pl = colon ? len - hl - 1 : 0;
    if (!colon || hl == 0 || hl >= 64 || pl == 0 || pl > 5)
        return 0;
    long port = 0;
    for (size_t i = 0; i < pl; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return 0;
        port = port * 10 + (colon[1 + i] - '0');
    }
    if (port < 1 || port > 65535)
        return 0;
    char host[64], bin[16];
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        return inet_pton(AF_INET6, host + 1, bin) == 1;
    }
    if (inet_pton(AF_INET, host, bin) == 1)
        return 1;
    for (size_t i = 0; i < hl; i++) {
        char c = host[i];
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && (i == 0 || (c != '.' && c != '-')))
            return 0;
    }
    /* all digits and dots but not an IPv4 address (1.2.3.999): not a name */
    return strspn(host, "0123456789.") != hl;
}

/* Logs a registry field that is not ip:port, once per field (the first
 * CL_MAX_BAD of them; then one line says the rest are not logged). */
static void cl_bad_field(const char *f, size_t len)
{
    char shown[64];
    size_t n = len < sizeof(shown) - 1 ? len : sizeof(shown) - 1;
    for (size_t i = 0; i < n; i++)
        shown[i] = (f[i] < 0x20 || f[i] >= 0x7f || f[i] == '\'') ? '?' : f[i];
    shown[n] = '\0';
    int seen = 0, full = 0;
    pthread_mutex_lock(&g_cl.lock);
    for (int i = 0; !seen && i < g_cl.nbad; i++)
        seen = strcmp(g_cl.bad[i], shown) == 0;
    if (!seen && g_cl.nbad < CL_MAX_BAD)
        memcpy(g_cl.bad[g_cl.nbad++], shown, n + 1);
    else if (!seen) {
        seen = g_cl.bad_full;
        full = g_cl.bad_full = 1;
    }
    pthread_mutex_unlock(&g_cl.lock);
    if (!seen && !full)
        log_warn("cluster: skipping field '%s'%s of %s: not ip:port (an address and a port 1-65535)",
                 shown, len > n ? " (cut)" : "", CL_SERVERS_KEY);
    else if (!seen)
        log_warn("cluster: more fields of %s are not ip:port; skipped, not logged each", CL_SERVERS_KEY);
}

/* The live nodes of an HGETALL reply of acc:hash:servers ("ip:port" ->
 * unix seconds of the last registration); also fed by the workers' fresh
 * HGETALLs (cluster/route.c). */
int cluster_servers_note(const rlink_val *v)
{
    if (!v || v->type != REDIS_REPLY_ARRAY) {
        cl_registry_state(1, v && v->type == REDIS_REPLY_ERROR && v->str ? v->str : "not a hash");
        return -1;
    }
    cl_registry_state(0, NULL);
    uint64_t now = (uint64_t)time(NULL);
    size_t cap = v->n / 2 < CL_MAX_SERVERS ? v->n / 2 + 1 : CL_MAX_SERVERS;
    char (*list)[64] = calloc(cap, sizeof(*list));
    if (!list)
        return 0;
    int n = 0;
    for (size_t i = 0; i + 1 < v->n && (size_t)n < cap; i += 2) {
        const rlink_val *f = &v->elem[i], *val = &v->elem[i + 1];
        if (!f->str || !val->str)
            continue;
        if (!cl_server_valid(f->str, f->len))
            cl_bad_field(f->str, f->len);
        else if (strtoull(val->str, NULL, 10) + (uint64_t)g_node.cfg.serverTimeout > now)
            memcpy(list[n++], f->str, f->len + 1);
    }
    pthread_mutex_lock(&g_cl.lock);
    free(g_cl.servers);
    g_cl.servers = list;
    g_cl.nservers = n;
    pthread_mutex_unlock(&g_cl.lock);
    return 0;
}

int cluster_servers(char (*out)[64], int max)
{
    pthread_mutex_lock(&g_cl.lock);
    int n = g_cl.nservers < max ? g_cl.nservers : max;
    if (n > 0)
        memcpy(out, g_cl.servers, (size_t)n * sizeof(*out));
    pthread_mutex_unlock(&g_cl.lock);
    return n;
}

int cluster_server_live(const char *addr, size_t len)
{
    int live = -1;
    pthread_mutex_lock(&g_cl.lock);
    if (!g_cl.registry_broken && g_cl.nservers > 0)
        for (int i = live = 0; i < g_cl.nservers && !live; i++)
            live = len < sizeof(g_cl.servers[i]) && memcmp(g_cl.servers[i], addr, len) == 0 &&
                   g_cl.servers[i][len] == '\0';
    pthread_mutex_unlock(&g_cl.lock);
    return live;
}

static void cl_on_servers(void *ud, const redisReply *reply)
{
    (void)ud;
    rlink_val v;
    if (!reply)
        return;
    if (rlink_val_copy(&v, reply) == 0)
        (void)cluster_servers_note(&v);            /* a failure is logged there */
    rlink_val_free(&v);
}

/* A READONLY answer in sentinel mode is a demoted master, which the link
 * leaves at once (rlink.h), not a broken registry. */
static void cl_on_hset(void *ud, const redisReply *reply)
{
    (void)ud;
    if (reply && reply->type == REDIS_REPLY_ERROR &&
        !(rlink_sentinel_mode() && strncmp(reply->str, "READONLY", 8) == 0))
        cl_registry_state(1, reply->str);
}

static void cl_register(void)
{
    if (!rlink_up() || g_cl.deregistering)
        return;
    char now[24];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)time(NULL));
    const char *hset[] = { "HSET", CL_SERVERS_KEY, g_cl.self, now };
    const char *expire[] = { "EXPIRE", CL_SERVERS_KEY, CL_SERVERS_TTL };
    const char *all[] = { "HGETALL", CL_SERVERS_KEY };
    if (rlink_cmd(cl_on_hset, NULL, 4, hset, NULL) == 0 && rlink_cmd(NULL, NULL, 3, expire, NULL) == 0)
        (void)rlink_cmd(cl_on_servers, NULL, 2, all, NULL);
}

static void cl_on_reg_timer(uv_timer_t *t)
{
    (void)t;
    cl_register();
}

/* rlink hook: connected (again): register and rewrite every local user. */
static void cl_on_up(void)
{
    if (g_cl.link_stopped)    /* a reconnect finishing in the stop's drain: no registering again */
        return;
    clog_on_up();                                 /* first on the connection */
    log_info("cluster: registering as %s", g_cl.self);
    cl_register();
    cl_resync();
}

/* rlink hook: the link is stopping. */
static void cl_on_stop(void)
{
    g_cl.link_stopped = 1;
    uv_close((uv_handle_t *)&g_cl.reg_timer, NULL);
    if (g_cl.resync_init)
        uv_close((uv_handle_t *)&g_cl.resync, NULL);
    cstate_stop();
}

static void cl_init_run(struct worker *w, task *t)
{
    (void)w;
    (void)t;
    uint64_t every = (uint64_t)g_node.cfg.registerInterval * 1000;
    uv_timer_init(rlink_loop(), &g_cl.reg_timer);
    uv_timer_start(&g_cl.reg_timer, cl_on_reg_timer, every, every);
    cstate_start();                               /* the dashboard's snapshots */
}

/* ---------- enter/exit to the other nodes ---------- */

static void cl_on_announced(void *ud, const rpc_result *res)
{
    (void)ud;
    if (!res->ok)
        log_debug("cluster: enter/exit to a peer failed: %s", res->err ? res->err : "?");
}

static void cl_announce_peers(const char *cmd, uint32_t appid, const char *uid, size_t len)
{
    char seq[24];
    int sl = snprintf(seq, sizeof(seq), "%ld", (long)time(NULL));
    rpc_msg m = { .seq = seq, .seqlen = (size_t)sl, .appid = appid, .uid = uid,
                  .uidlen = len, .cms = cmd, .msg = "", .msglen = 0 };
    pthread_mutex_lock(&g_cl.lock);   /* a list that grows meanwhile is cut to this size */
    int max = g_cl.nservers;
    pthread_mutex_unlock(&g_cl.lock);
    char (*peers)[64] = max ? malloc((size_t)max * sizeof(*peers)) : NULL;
    int n = peers ? cluster_servers(peers, max) : 0;
    for (int i = 0; i < n; i++)
        if (strcmp(peers[i], g_cl.self) != 0)
            (void)rpc_send_msg_all(peers[i], &m, cl_on_announced, NULL);
    free(peers);
}

void cluster_announce(const char *cmd, uint32_t appid, const char *uid, size_t len)
{
    /* under the lock: once cluster_deregister has set quiet, no local
     * announcement is being handed to the workers any more */
    pthread_mutex_lock(&g_cl.lock);
    int quiet = g_cl.quiet;
    if (!quiet)
        hub_announce(cmd, appid, uid, len);
    pthread_mutex_unlock(&g_cl.lock);
    if (!quiet)
        cl_announce_peers(cmd, appid, uid, len);
}

/* ---------- start, deregister, stop ---------- */

static int cl_specific(const char *addr)
{
    return addr[0] && strcmp(addr, "0.0.0.0") != 0 && strcmp(addr, "::") != 0;
}

/* app.advertiseIp, else a specific cluster.rpcBind (where peers call), else
 * a specific app.bind, else the first non-loopback IPv4 address (SPEC §5),
 * else 127.0.0.1. */
static void cl_advertise_ip(char *out, size_t cap)
{
    const config *c = &g_node.cfg;
    const char *specific = c->advertiseIp[0] ? c->advertiseIp : cl_specific(c->rpcBind) ? c->rpcBind
        : cl_specific(c->bind) ? c->bind : NULL;
    if (specific) {
        snprintf(out, cap, "%.63s", specific);
        return;
    }
    snprintf(out, cap, "127.0.0.1");
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        const struct in_addr *a = &((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
        if ((ntohl(a->s_addr) >> 24) == 127)
            continue;
        inet_ntop(AF_INET, a, out, (socklen_t)cap);
        break;
    }
    freeifaddrs(ifs);
}

/* The Redis link: redis.addr, or the master the sentinels name (they win
 * over redis.addr when both are set). */
static int cl_start_link(char *err, size_t errlen)
{
    const config *c = &g_node.cfg;
    const rlink_hooks hooks = { .on_up = cl_on_up, .on_stop = cl_on_stop };
    char addr[CONFIG_STR + 8];
    if (!sentinel_configured(c)) {
        if (rlink_start(c->redisAddr, &hooks, err, errlen) != 0)
            return -1;
        rlink_addr(addr, sizeof(addr));
        log_info("cluster mode: Redis %s, this node is %s (register every %d s, peers gone after %d s)",
                 addr, g_cl.self, c->registerInterval, c->serverTimeout);
        return 0;
    }
    if (c->redisAddr[0])
        log_warn("cluster: redis.addr %s is ignored: redis.sentinels and redis.masterName are set, and "
                 "the sentinels name the master", c->redisAddr);
    if (rlink_start_sentinel(&hooks, err, errlen) != 0)
        return -1;
    log_info("cluster mode: Redis through the sentinels %s (master '%s'), this node is %s (register "
             "every %d s, peers gone after %d s)", c->redisSentinels, c->redisMasterName, g_cl.self,
             c->registerInterval, c->serverTimeout);
    return 0;
}

int cluster_start(const char *self, char *err, size_t errlen)
{
    if (!cluster_enabled())
        return 0;
    if (self) {
        snprintf(g_cl.self, sizeof(g_cl.self), "%s", self);
    } else {
        char ip[64];
        cl_advertise_ip(ip, sizeof(ip));
        snprintf(g_cl.self, sizeof(g_cl.self), "%s:%d", ip, g_node.rpc_port);
    }
    static const hub_cluster_hooks users = {
        .join = unodes_join, .leave = unodes_leave, .count = unodes_count, .heartbeat = cluster_user_online,
    };
    hub_set_cluster(&users);                      /* before any worker runs */
    clog_init();                                  /* the delivery logs in Redis, when on */
    if (cl_start_link(err, errlen) != 0)
        return -1;
    static task init = { .run = cl_init_run };
    rlink_post(&init);
    g_cl.started = 1;
    return 0;
}

void cluster_run(void)
{
    if (!g_cl.started)
        return;
    const char *why = workers_count() != 1 ? "more than one worker"
        : rlink_sentinel_mode() && !sentinel_all_addresses() ? "a sentinel is named by a host name, "
          "whose lookup would block the worker" : NULL;
    rlink_run(why ? NULL : worker_at(0));
    if (rlink_on_worker())
        log_info("cluster: the Redis link runs on worker 0's thread (no thread hop per command)");
    else
        log_info("cluster: the Redis link runs on a thread of its own (%s)", why);
}

static void cl_wait_signal(void)
{
    pthread_mutex_lock(&g_cl.wait_lock);
    g_cl.wait_done = 1;
    pthread_cond_signal(&g_cl.wait_cond);
    pthread_mutex_unlock(&g_cl.wait_lock);
}

/* Runs t on the link loop and waits, at most ms, until it signals. */
static void cl_post_and_wait(task *t, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g_cl.wait_lock);
    g_cl.wait_done = 0;
    rlink_post(t);
    while (!g_cl.wait_done)
        if (pthread_cond_timedwait(&g_cl.wait_cond, &g_cl.wait_lock, &until) != 0)
            break;
    pthread_mutex_unlock(&g_cl.wait_lock);
}

static void cl_on_hdel(void *ud, const redisReply *reply)
{
    (void)ud;
    if (reply)
        log_info("cluster: removed %s from %s", g_cl.self, CL_SERVERS_KEY);
    cl_wait_signal();
}

static void cl_deregister_run(struct worker *w, task *t)
{
    (void)w;
    (void)t;
    g_cl.deregistering = 1;
    uv_timer_stop(&g_cl.reg_timer);
    cstate_forget();                              /* its snapshot goes first */
    const char *argv[] = { "HDEL", CL_SERVERS_KEY, g_cl.self };
    if (rlink_cmd(cl_on_hdel, NULL, 3, argv, NULL) != 0)
        cl_wait_signal();
}

void cluster_deregister(void)
{
    if (!g_cl.started)
        return;
    pthread_mutex_lock(&g_cl.lock);
    g_cl.quiet = 1;
    pthread_mutex_unlock(&g_cl.lock);
    static task t = { .run = cl_deregister_run };
    cl_post_and_wait(&t, g_node.cfg.redisTimeout);
}

void cluster_stop(void)
{
    if (!g_cl.started)
        return;
    g_cl.started = 0;
    rlink_stop();
    pthread_mutex_lock(&g_cl.lock);
    free(g_cl.servers);
    g_cl.servers = NULL;
    g_cl.nservers = 0;                            /* a late reader copies nothing */
    pthread_mutex_unlock(&g_cl.lock);
}

/* "redisMode", "redisAddr" (the master, in sentinel mode) and in sentinel
 * mode "redisMasterName", "redisSentinels", "redisSentinelWatch" (the one
 * heard from, "" = none) and "redisFailovers" (masters followed). */
static void cl_redis_json(jsonw *w)
{
    char addr[CONFIG_STR + 8];
    int sentinel = rlink_sentinel_mode();
    rlink_addr(addr, sizeof(addr));
    jsonw_lit(w, ",\"redisMode\":");
    jsonw_cstr(w, sentinel ? "sentinel" : "direct");
    jsonw_lit(w, ",\"redisAddr\":");
    jsonw_cstr(w, addr);
    jsonw_lit(w, ",\"redisLink\":");
    jsonw_cstr(w, rlink_on_worker() ? "worker" : "thread");
    if (!sentinel)
        return;
    jsonw_lit(w, ",\"redisMasterName\":");
    jsonw_cstr(w, g_node.cfg.redisMasterName);
    jsonw_lit(w, ",\"redisSentinels\":[");
    for (int i = 0; i < sentinel_count(); i++) {
        if (i)
            jsonw_raw(w, ",", 1);
        jsonw_cstr(w, sentinel_at(i));
    }
    sentinel_watching(addr, sizeof(addr));
    jsonw_lit(w, "],\"redisSentinelWatch\":");
    jsonw_cstr(w, addr);
    jsonw_lit(w, ",\"redisFailovers\":");
    jsonw_int(w, rlink_failovers());
}

void cluster_state_json(jsonw *w)
{
    jsonw_lit(w, "{\"self\":");
    jsonw_cstr(w, g_cl.self);
    jsonw_lit(w, rlink_up() ? ",\"redis\":\"up\"" : ",\"redis\":\"down\"");
    cl_redis_json(w);
    jsonw_lit(w, ",\"redisReconnects\":");
    jsonw_int(w, rlink_reconnects());
    jsonw_lit(w, ",\"droppedWrites\":");
    jsonw_int(w, rlink_dropped_writes());
    jsonw_lit(w, ",\"redisPending\":");
    jsonw_int(w, rlink_pending());
    jsonw_lit(w, ",\"redisUnsentBytes\":");
    jsonw_int(w, rlink_unsent_bytes());
    jsonw_lit(w, ",\"rpcAuth\":");
    jsonw_cstr(w, rpc_auth_mode());
    jsonw_lit(w, ",\"rpcRefusedCalls\":");
    jsonw_int(w, rpc_refused_calls());
    jsonw_lit(w, ",\"servers\":[");
    pthread_mutex_lock(&g_cl.lock);
    for (int i = 0; i < g_cl.nservers; i++) {
        if (i)
            jsonw_raw(w, ",", 1);
        jsonw_cstr(w, g_cl.servers[i]);
    }
    pthread_mutex_unlock(&g_cl.lock);
    jsonw_lit(w, "],\"peers\":");
    rpc_peers_json(w);
    jsonw_lit(w, "}");
}
