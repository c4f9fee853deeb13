/* cluster.c — cluster mode's Redis side (see cluster.h): one thread with its
 * own libuv loop owns the hiredis async connection. It connects and
 * reconnects with back-off (AUTH and SELECT first), registers the node in
 * acc:hash:servers every cluster.registerInterval, keeps the list of live
 * nodes, rewrites every local user's presence after a (re)connect, writes
 * the presence records posted by the workers and runs their queries.
 *
 * Nothing here blocks a worker: workers post tasks (lock-free inbox +
 * uv_async) and get query answers back as tasks on their own loop. A Redis
 * that stops answering is noticed by a watchdog (cluster.redisTimeout): the
 * connection is dropped, every pending command fails, and the node goes on
 * serving its own users until Redis is back. */
#include "cluster/cluster.h"

#include <arpa/inet.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/prec.h"
#include "cluster/rpc.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/node.h"
#include "im/presence.h"
#include "net/worker.h"

#define CL_SERVERS_KEY "acc:hash:servers"
#define CL_SERVERS_TTL "7200"            /* seconds, on the registry key */
#define CL_BACKOFF_MIN_MS 100
#define CL_BACKOFF_MAX_MS 5000
#define CL_WATCH_MS 250
#define CL_MAX_SERVERS 1024

enum cl_state { CL_DOWN, CL_CONNECTING, CL_HANDSHAKE, CL_UP };

typedef struct cl_task {
    struct cl_task *next;
    void (*run)(struct cl_task *t);
} cl_task;

/* A pipelined group of commands posted by a worker (cluster_query). */
struct cluster_query {
    cl_task t;                       /* runs on the cluster loop */
    task back;                       /* runs on the origin worker */
    struct worker *origin;
    cluster_query_fn fn;
    void *ud;
    int ok;                          /* every command got a reply */
    int n, got;
    char **cmds;
    size_t *lens;
    cluster_val *replies;
};

/* A fire-and-forget command (presence write, de-dup commit, ...). */
typedef struct cl_write {
    cl_task t;
    size_t len;
    char *cmd;                       /* formatted by redisFormatCommandArgv */
} cl_write;

/* An enter/exit for the other nodes. */
typedef struct cl_announce {
    cl_task t;
    uint32_t appid;
    uint8_t uidlen;
    char cmd[8];
    char uid[PRESENCE_MAX_ID];
} cl_announce;

static struct {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    _Atomic(cl_task *) inbox;
    uv_timer_t reg_timer, retry_timer, watch_timer;
    redisAsyncContext *ac;
    enum cl_state state;
    int backoff_ms;
    uint64_t state_since;            /* uv_now() when the state began */
    long inflight;                   /* commands sent, not yet answered */
    uint64_t last_progress;          /* uv_now() of the last reply */
    int handshake_left;              /* AUTH/SELECT replies awaited */
    int started, stopping, registered, deregistering;
    char self[96];
    char host[CONFIG_STR];
    int port;
    atomic_int up;                   /* state == CL_UP, for other threads */
    atomic_long reconnects, dropped_writes;
    pthread_mutex_t lock;            /* guards servers, self_live */
    char (*servers)[64];             /* live nodes from the last HGETALL */
    int nservers;
    pthread_mutex_t wait_lock;       /* deregister/stop hand-shakes */
    pthread_cond_t wait_cond;
    int wait_done;
} g_cl = { .lock = PTHREAD_MUTEX_INITIALIZER, .wait_lock = PTHREAD_MUTEX_INITIALIZER,
           .wait_cond = PTHREAD_COND_INITIALIZER };

static void cl_connect(void);
static void cl_register(void);

int cluster_enabled(void) { return g_node.cfg.redisAddr[0] != '\0'; }
const char *cluster_self(void) { return g_cl.self; }
int cluster_redis_up(void) { return atomic_load(&g_cl.up); }

/* ---------- the inbox ---------- */

static void cl_post(cl_task *t)
{
    cl_task *head = atomic_load_explicit(&g_cl.inbox, memory_order_relaxed);
    do {
        t->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&g_cl.inbox, &head, t,
                                                    memory_order_release, memory_order_relaxed));
    if (head == NULL)
        uv_async_send(&g_cl.wake);
}

static void cl_on_wake(uv_async_t *a)
{
    (void)a;
    cl_task *list = atomic_exchange_explicit(&g_cl.inbox, NULL, memory_order_acquire);
    cl_task *fifo = NULL;
    while (list) {                           /* newest-first: reverse */
        cl_task *next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        cl_task *next = fifo->next;
        fifo->run(fifo);
        fifo = next;
    }
}

/* ---------- replies ---------- */

static void cl_val_free(cluster_val *v)
{
    for (size_t i = 0; i < v->n; i++)
        cl_val_free(&v->elem[i]);
    free(v->elem);
    free(v->str);
}

/* Deep copy of a hiredis reply (it is freed when the callback returns). */
static int cl_val_copy(cluster_val *v, const redisReply *r)
{
    memset(v, 0, sizeof(*v));
    v->type = r->type;
    v->integer = r->integer;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) {
        v->str = malloc(r->len + 1);
        if (!v->str)
            return -1;
        memcpy(v->str, r->str, r->len);
        v->str[r->len] = '\0';
        v->len = r->len;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        v->elem = calloc(r->elements, sizeof(*v->elem));
        if (!v->elem)
            return -1;
        v->n = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            if (cl_val_copy(&v->elem[i], r->element[i]) != 0)
                return -1;
    }
    return 0;
}

/* Every reply (or failure, r == NULL) passes here first. */
static void cl_progress(void)
{
    g_cl.inflight--;
    g_cl.last_progress = uv_now(&g_cl.loop);
}

static void cl_on_void(redisAsyncContext *ac, void *reply, void *pd)
{
    (void)ac; (void)pd;
    const redisReply *r = reply;
    cl_progress();
    if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("redis: %s", r->str);
}

static int cl_send(redisCallbackFn *fn, void *pd, const char *cmd, size_t len)
{
    if (!g_cl.ac || redisAsyncFormattedCommand(g_cl.ac, fn, pd, cmd, len) != REDIS_OK)
        return -1;
    if (g_cl.inflight++ == 0)
        g_cl.last_progress = uv_now(&g_cl.loop);
    return 0;
}

/* Formats and sends argv with cl_on_void. */
static int cl_sendv(int argc, const char **argv)
{
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    if (len < 0)
        return -1;
    int r = cl_send(cl_on_void, NULL, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

/* ---------- queries from the workers ---------- */

static void cl_query_free(cluster_query *q)
{
    for (int i = 0; i < q->n; i++) {
        redisFreeCommand(q->cmds[i]);
        cl_val_free(&q->replies[i]);
    }
    free(q->cmds);
    free(q->lens);
    free(q->replies);
    free(q);
}

static void cl_query_back(struct worker *w, task *t)
{
    (void)w;
    cluster_query *q = (cluster_query *)((char *)t - offsetof(cluster_query, back));
    q->fn(q->ud, q->ok, q->replies, q->n);
    cl_query_free(q);
}

static void cl_query_finish(cluster_query *q)
{
    if (q->origin)
        worker_post(q->origin, &q->back);
    else
        cl_query_back(NULL, &q->back);
}

static void cl_on_query_reply(redisAsyncContext *ac, void *reply, void *pd)
{
    (void)ac;
    cluster_query *q = pd;
    cl_progress();
    int i = q->got++;
    if (!reply || cl_val_copy(&q->replies[i], reply) != 0)
        q->ok = 0;
    if (q->got == q->n)
        cl_query_finish(q);
}

static void cl_query_run(cl_task *t)
{
    cluster_query *q = (cluster_query *)t;
    if (g_cl.state != CL_UP) {
        q->ok = 0;
        cl_query_finish(q);
        return;
    }
    for (int i = 0; i < q->n; i++) {
        if (cl_send(cl_on_query_reply, q, q->cmds[i], q->lens[i]) != 0) {
            /* the connection is going: what was sent fails on its own;
             * account for the rest here */
            q->ok = 0;
            q->got += q->n - i;
            if (q->got == q->n)
                cl_query_finish(q);
            return;
        }
    }
}

cluster_query *cluster_query_new(int n, cluster_query_fn fn, void *ud)
{
    cluster_query *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->cmds = calloc((size_t)n, sizeof(*q->cmds));
    q->lens = calloc((size_t)n, sizeof(*q->lens));
    q->replies = calloc((size_t)n, sizeof(*q->replies));
    if (!q->cmds || !q->lens || !q->replies) {
        cl_query_free(q);
        return NULL;
    }
    q->fn = fn;
    q->ud = ud;
    q->ok = 1;
    return q;
}

int cluster_query_add(cluster_query *q, int argc, const char **argv, const size_t *argvlen)
{
    int len = redisFormatCommandArgv(&q->cmds[q->n], argc, argv, argvlen);
    if (len < 0)
        return -1;
    q->lens[q->n++] = (size_t)len;
    return 0;
}

void cluster_query_submit(cluster_query *q)
{
    q->origin = worker_self();
    q->t.run = cl_query_run;
    q->back.run = cl_query_back;
    cl_post(&q->t);
}

void cluster_query_cancel(cluster_query *q) { cl_query_free(q); }

/* ---------- fire-and-forget writes ---------- */

static void cl_write_run(cl_task *t)
{
    cl_write *wr = (cl_write *)t;
    if (g_cl.state != CL_UP || cl_send(cl_on_void, NULL, wr->cmd, wr->len) != 0)
        atomic_fetch_add_explicit(&g_cl.dropped_writes, 1, memory_order_relaxed);
    redisFreeCommand(wr->cmd);
    free(wr);
}

void cluster_write(int argc, const char **argv, const size_t *argvlen)
{
    cl_write *wr = malloc(sizeof(*wr));
    int len = wr ? redisFormatCommandArgv(&wr->cmd, argc, argv, argvlen) : -1;
    if (len < 0) {
        free(wr);
        atomic_fetch_add_explicit(&g_cl.dropped_writes, 1, memory_order_relaxed);
        return;
    }
    wr->len = (size_t)len;
    wr->t.run = cl_write_run;
    cl_post(&wr->t);
}

/* ---------- presence records ---------- */

/* Writes a logoff only while the record still names this node (ARGV[2] is
 * the "accIp":..,"accPort":.. fragment of ours). */
static const char cl_logoff_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v and not string.find(v, ARGV[2], 1, true) then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) return 1";

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

static void cl_presence(const pres_entry *e, int logoff, void (*send)(int, const char **, const size_t *))
{
    char key[96], frag[160];
    prec r;
    if (prec_key(key, sizeof(key), e->appid, e->id, e->idlen) < 0)
        return;
    cl_prec_fill(&r, e, logoff);
    jsonw w;
    jsonw_init(&w, 0);
    prec_encode(&w, &r);
    size_t len;
    const char *json = jsonw_text(&w, &len);
    if (json && !logoff) {
        const char *argv[] = { "SET", key, json, "EX", PREC_TTL_STR };
        size_t lens[] = { 3, strlen(key), len, 2, strlen(PREC_TTL_STR) };
        send(5, argv, lens);
    } else if (json) {
        snprintf(frag, sizeof(frag), "\"accIp\":\"%s\",\"accPort\":\"%s\",", r.acc_ip, r.acc_port);
        const char *argv[] = { "EVAL", cl_logoff_lua, "1", key, json, frag, PREC_TTL_STR };
        size_t lens[] = { 4, sizeof(cl_logoff_lua) - 1, 1, strlen(key), len, strlen(frag),
                          strlen(PREC_TTL_STR) };
        send(7, argv, lens);
    }
    jsonw_free(&w);
}

void cluster_user_online(const pres_entry *e)
{
    if (cluster_enabled())
        cl_presence(e, 0, cluster_write);
}

void cluster_user_offline(const pres_entry *e)
{
    if (cluster_enabled())
        cl_presence(e, 1, cluster_write);
}

/* On the cluster loop, right after a (re)connect: every user this node
 * holds, written directly (ordered before any later edge of theirs: edges
 * run under the same stripe lock and their writes queue behind these). */
static void cl_resync_send(int argc, const char **argv, const size_t *lens)
{
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
        return;
    (void)cl_send(cl_on_void, NULL, cmd, (size_t)len);
    redisFreeCommand(cmd);
}

static void cl_resync_one(const pres_entry *e, void *ud)
{
    (*(long *)ud)++;
    cl_presence(e, 0, cl_resync_send);
}

static void cl_resync(void)
{
    long n = 0;
    presence_each(0, cl_resync_one, &n);
    log_info("cluster: wrote the presence of %ld local users to Redis", n);
}

/* ---------- the registry ---------- */

static void cl_on_servers(redisAsyncContext *ac, void *reply, void *pd)
{
    (void)ac; (void)pd;
    cl_progress();
    cluster_val v;
    if (reply && cl_val_copy(&v, reply) == 0)
        cluster_servers_note(&v);
    if (reply)
        cl_val_free(&v);
}

static void cl_register(void)
{
    if (g_cl.state != CL_UP || g_cl.deregistering)
        return;
    char now[24];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)time(NULL));
    const char *hset[] = { "HSET", CL_SERVERS_KEY, g_cl.self, now };
    const char *expire[] = { "EXPIRE", CL_SERVERS_KEY, CL_SERVERS_TTL };
    const char *all[] = { "HGETALL", CL_SERVERS_KEY };
    char *cmd;
    int len;
    if (cl_sendv(4, hset) != 0 || cl_sendv(3, expire) != 0 ||
        (len = redisFormatCommandArgv(&cmd, 2, all, NULL)) < 0)
        return;
    (void)cl_send(cl_on_servers, NULL, cmd, (size_t)len);
    redisFreeCommand(cmd);
    g_cl.registered = 1;
}

static void cl_on_reg_timer(uv_timer_t *t)
{
    (void)t;
    cl_register();
}

/* The live nodes of an HGETALL reply of acc:hash:servers ("ip:port" ->
 * unix seconds of the last registration); also fed by the workers' fresh
 * HGETALLs (cluster/route.c). */
void cluster_servers_note(const cluster_val *v)
{
    if (!v || v->type != REDIS_REPLY_ARRAY)
        return;
    uint64_t now = (uint64_t)time(NULL);
    char (*list)[64] = calloc(CL_MAX_SERVERS, sizeof(*list));
    if (!list)
        return;
    int n = 0;
    for (size_t i = 0; i + 1 < v->n && n < CL_MAX_SERVERS; i += 2) {
        const cluster_val *f = &v->elem[i], *val = &v->elem[i + 1];
        if (!f->str || !val->str || f->len >= 64)
            continue;
        if (strtoull(val->str, NULL, 10) + (uint64_t)g_node.cfg.serverTimeout > now)
            memcpy(list[n++], f->str, f->len + 1);
    }
    pthread_mutex_lock(&g_cl.lock);
    free(g_cl.servers);
    g_cl.servers = list;
    g_cl.nservers = n;
    pthread_mutex_unlock(&g_cl.lock);
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

/* ---------- enter/exit to the other nodes ---------- */

static void cl_on_announced(void *ud, const rpc_result *res)
{
    (void)ud;
    if (!res->ok)
        log_debug("cluster: enter/exit to a peer failed: %s", res->err ? res->err : "?");
}

static void cl_announce_run(cl_task *t)
{
    cl_announce *a = (cl_announce *)t;
    char seq[24];
    int sl = snprintf(seq, sizeof(seq), "%ld", (long)time(NULL));
    rpc_msg m = { .seq = seq, .seqlen = (size_t)sl, .appid = a->appid, .uid = a->uid,
                  .uidlen = a->uidlen, .cms = a->cmd, .msg = "", .msglen = 0 };
    pthread_mutex_lock(&g_cl.lock);
    int n = g_cl.nservers;
    char (*peers)[64] = n ? malloc((size_t)n * sizeof(*peers)) : NULL;
    if (peers)
        memcpy(peers, g_cl.servers, (size_t)n * sizeof(*peers));
    pthread_mutex_unlock(&g_cl.lock);
    for (int i = 0; peers && i < n; i++)
        if (strcmp(peers[i], g_cl.self) != 0)
            (void)rpc_send_msg_all(peers[i], &m, cl_on_announced, NULL);
    free(peers);
    free(a);
}

void cluster_announce(const char *cmd, uint32_t appid, const char *uid, size_t len)
{
    if (!cluster_enabled() || len >= PRESENCE_MAX_ID)
        return;
    cl_announce *a = malloc(sizeof(*a));
    if (!a)
        return;
    a->t.run = cl_announce_run;
    a->appid = appid;
    a->uidlen = (uint8_t)len;
    memcpy(a->uid, uid, len);
    snprintf(a->cmd, sizeof(a->cmd), "%s", cmd);
    cl_post(&a->t);
}

/* ---------- connection life-cycle ---------- */

static void cl_set_state(enum cl_state s)
{
    g_cl.state = s;
    g_cl.state_since = uv_now(&g_cl.loop);
    atomic_store(&g_cl.up, s == CL_UP);
}

static void cl_on_retry(uv_timer_t *t)
{
    (void)t;
    cl_connect();
}

/* Lost or never made: try again after a back-off that doubles to 5 s. */
static void cl_schedule_retry(void)
{
    cl_set_state(CL_DOWN);
    g_cl.ac = NULL;
    g_cl.inflight = 0;
    if (g_cl.stopping)
        return;
    uv_timer_start(&g_cl.retry_timer, cl_on_retry, (uint64_t)g_cl.backoff_ms, 0);
    g_cl.backoff_ms = g_cl.backoff_ms * 2 > CL_BACKOFF_MAX_MS ? CL_BACKOFF_MAX_MS : g_cl.backoff_ms * 2;
}

static void cl_up(void)
{
    cl_set_state(CL_UP);
    g_cl.backoff_ms = CL_BACKOFF_MIN_MS;
    log_info("cluster: connected to Redis at %s:%d; registering as %s", g_cl.host, g_cl.port, g_cl.self);
    cl_register();
    cl_resync();
}

static void cl_on_handshake(redisAsyncContext *ac, void *reply, void *pd)
{
    const redisReply *r = reply;
    (void)pd;
    cl_progress();
    if (!r)
        return;                                  /* disconnecting anyway */
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("cluster: Redis refused %s: %s", g_cl.handshake_left > 1 && g_node.cfg.redisPassword[0] ? "AUTH" : "the handshake", r->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (--g_cl.handshake_left == 0)
        cl_up();
}

static void cl_on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        log_warn("cluster: cannot connect to Redis at %s:%d: %s", g_cl.host, g_cl.port, ac->errstr);
        cl_schedule_retry();                     /* hiredis frees ac */
        return;
    }
    const config *c = &g_node.cfg;
    char db[16];
    snprintf(db, sizeof(db), "%d", c->redisDB);
    const char *auth[] = { "AUTH", c->redisPassword };
    const char *sel[] = { "SELECT", db };
    const char *ping[] = { "PING" };
    cl_set_state(CL_HANDSHAKE);
    g_cl.handshake_left = 0;
    struct { int argc; const char **argv; int on; } steps[] = {
        { 2, auth, c->redisPassword[0] != '\0' },
        { 2, sel, c->redisDB != 0 },
        { 1, ping, 1 },
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char *cmd;
        int len;
        if (!steps[i].on || (len = redisFormatCommandArgv(&cmd, steps[i].argc, steps[i].argv, NULL)) < 0)
            continue;
        if (cl_send(cl_on_handshake, NULL, cmd, (size_t)len) == 0)
            g_cl.handshake_left++;
        redisFreeCommand(cmd);
    }
}

static void cl_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    int was_up = g_cl.state == CL_UP;
    if (!g_cl.stopping)
        log_warn("cluster: lost Redis at %s:%d%s; serving local users, retrying", g_cl.host, g_cl.port,
                 status == REDIS_OK ? "" : " (error)");
    if (was_up)
        atomic_fetch_add(&g_cl.reconnects, 1);
    cl_schedule_retry();
}

static void cl_connect(void)
{
    if (g_cl.stopping)
        return;
    redisAsyncContext *ac = redisAsyncConnect(g_cl.host, g_cl.port);
    if (!ac || ac->err) {
        log_warn("cluster: cannot connect to Redis at %s:%d: %s", g_cl.host, g_cl.port,
                 ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        cl_schedule_retry();
        return;
    }
    if (redisLibuvAttach(ac, &g_cl.loop) != REDIS_OK) {
        redisAsyncFree(ac);
        cl_schedule_retry();
        return;
    }
    redisAsyncSetConnectCallback(ac, cl_on_connect);
    redisAsyncSetDisconnectCallback(ac, cl_on_disconnect);
    g_cl.ac = ac;
    g_cl.inflight = 0;
    cl_set_state(CL_CONNECTING);
}

/* A Redis that stops answering (or a connect that never completes) must not
 * hang the API: drop the connection, which fails every pending command. */
static void cl_on_watch(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(&g_cl.loop), limit = (uint64_t)g_node.cfg.redisTimeout;
    int stuck = (g_cl.state == CL_CONNECTING && now - g_cl.state_since > limit) ||
                (g_cl.ac && g_cl.inflight > 0 && now - g_cl.last_progress > limit);
    if (!stuck || !g_cl.ac)
        return;
    log_warn("cluster: Redis did not answer within %d ms; reconnecting", g_node.cfg.redisTimeout);
    redisAsyncContext *ac = g_cl.ac;
    int connected = g_cl.state != CL_CONNECTING;
    redisAsyncFree(ac);                          /* pending callbacks get NULL */
    if (!connected)                              /* no disconnect callback then */
        cl_schedule_retry();
}

/* ---------- thread, start, stop ---------- */

static void cl_main(void *arg)
{
    (void)arg;
    uv_run(&g_cl.loop, UV_RUN_DEFAULT);
}

static int cl_parse_addr(const char *addr, char *err, size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 6379;
    if (colon && (end == colon + 1 || *end || port < 1 || port > 65535)) {
        snprintf(err, errlen, "redis.addr '%s': expected host:port", addr);
        return -1;
    }
    size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);
    snprintf(g_cl.host, sizeof(g_cl.host), "%.*s", (int)hl, addr);
    g_cl.port = (int)port;
    return 0;
}

/* app.advertiseIp, else a specific app.bind, else the first non-loopback
 * IPv4 address (SPEC §5), else 127.0.0.1. */
static void cl_advertise_ip(char *out, size_t cap)
{
    const config *c = &g_node.cfg;
    if (c->advertiseIp[0]) {
        snprintf(out, cap, "%.63s", c->advertiseIp);
        return;
    }
    if (strcmp(c->bind, "0.0.0.0") != 0 && strcmp(c->bind, "::") != 0) {
        snprintf(out, cap, "%.63s", c->bind);
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

int cluster_start(const char *self, char *err, size_t errlen)
{
    if (!cluster_enabled())
        return 0;
    if (cl_parse_addr(g_node.cfg.redisAddr, err, errlen) != 0)
        return -1;
    if (self) {
        snprintf(g_cl.self, sizeof(g_cl.self), "%s", self);
    } else {
        char ip[64];
        cl_advertise_ip(ip, sizeof(ip));
        snprintf(g_cl.self, sizeof(g_cl.self), "%s:%d", ip, g_node.rpc_port);
    }
    atomic_init(&g_cl.inbox, NULL);
    g_cl.backoff_ms = CL_BACKOFF_MIN_MS;
    if (uv_loop_init(&g_cl.loop) != 0 || uv_async_init(&g_cl.loop, &g_cl.wake, cl_on_wake) != 0 ||
        uv_timer_init(&g_cl.loop, &g_cl.reg_timer) != 0 ||
        uv_timer_init(&g_cl.loop, &g_cl.retry_timer) != 0 ||
        uv_timer_init(&g_cl.loop, &g_cl.watch_timer) != 0) {
        snprintf(err, errlen, "cannot set up the cluster loop");
        return -1;
    }
    uint64_t every = (uint64_t)g_node.cfg.registerInterval * 1000;
    uv_timer_start(&g_cl.reg_timer, cl_on_reg_timer, every, every);
    uv_timer_start(&g_cl.watch_timer, cl_on_watch, CL_WATCH_MS, CL_WATCH_MS);
    log_info("cluster mode: Redis %s:%d, this node is %s (register every %d s, peers gone after %d s)",
             g_cl.host, g_cl.port, g_cl.self, g_node.cfg.registerInterval, g_node.cfg.serverTimeout);
    cl_connect();
    if (uv_thread_create(&g_cl.thread, cl_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the cluster thread");
        return -1;
    }
    g_cl.started = 1;
    return 0;
}

/* Runs t on the cluster loop and waits (bounded) until it signals. */
static void cl_wait_signal(void)
{
    pthread_mutex_lock(&g_cl.wait_lock);
    g_cl.wait_done = 1;
    pthread_cond_signal(&g_cl.wait_cond);
    pthread_mutex_unlock(&g_cl.wait_lock);
}

static void cl_post_and_wait(cl_task *t, int ms)
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
    cl_post(t);
    while (!g_cl.wait_done)
        if (pthread_cond_timedwait(&g_cl.wait_cond, &g_cl.wait_lock, &until) != 0)
            break;
    pthread_mutex_unlock(&g_cl.wait_lock);
}

static void cl_on_hdel(redisAsyncContext *ac, void *reply, void *pd)
{
    (void)ac; (void)pd;
    cl_progress();
    if (reply)
        log_info("cluster: removed %s from %s", g_cl.self, CL_SERVERS_KEY);
    cl_wait_signal();
}

static void cl_deregister_run(cl_task *t)
{
    g_cl.deregistering = 1;
    uv_timer_stop(&g_cl.reg_timer);
    const char *argv[] = { "HDEL", CL_SERVERS_KEY, g_cl.self };
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, 3, argv, NULL);
    int sent = g_cl.state == CL_UP && len >= 0 && cl_send(cl_on_hdel, NULL, cmd, (size_t)len) == 0;
    if (len >= 0)
        redisFreeCommand(cmd);
    if (!sent)
        cl_wait_signal();
    (void)t;
}

void cluster_deregister(void)
{
    if (!g_cl.started)
        return;
    static cl_task t = { .run = cl_deregister_run };
    cl_post_and_wait(&t, g_node.cfg.redisTimeout);
}

/* Stop: wait for what is in flight (the workers' last logoff writes), then
 * close everything so the loop ends. */
static void cl_on_drain(uv_timer_t *t)
{
    uint64_t now = uv_now(&g_cl.loop);
    if (g_cl.inflight > 0 && g_cl.ac && now - g_cl.state_since < (uint64_t)g_node.cfg.redisTimeout)
        return;
    uv_timer_stop(t);
    if (g_cl.ac) {
        redisAsyncContext *ac = g_cl.ac;
        g_cl.ac = NULL;
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)&g_cl.reg_timer, NULL);
    uv_close((uv_handle_t *)&g_cl.retry_timer, NULL);
    uv_close((uv_handle_t *)&g_cl.watch_timer, NULL);
    uv_close((uv_handle_t *)&g_cl.wake, NULL);
}

static void cl_stop_run(cl_task *t)
{
    (void)t;
    g_cl.stopping = 1;
    g_cl.state_since = uv_now(&g_cl.loop);       /* the drain's deadline counts from here */
    uv_timer_stop(&g_cl.reg_timer);
    uv_timer_stop(&g_cl.retry_timer);
    uv_timer_start(&g_cl.watch_timer, cl_on_drain, 0, 20);
}

void cluster_stop(void)
{
    if (!g_cl.started)
        return;
    g_cl.started = 0;
    static cl_task t = { .run = cl_stop_run };
    cl_post(&t);
    uv_thread_join(&g_cl.thread);
    uv_loop_close(&g_cl.loop);
    free(g_cl.servers);
    g_cl.servers = NULL;
}

void cluster_state_json(jsonw *w)
{
    jsonw_lit(w, "{\"self\":");
    jsonw_cstr(w, g_cl.self);
    jsonw_lit(w, atomic_load(&g_cl.up) ? ",\"redis\":\"up\"" : ",\"redis\":\"down\"");
    jsonw_lit(w, ",\"redisAddr\":");
    jsonw_cstr(w, g_node.cfg.redisAddr);
    jsonw_lit(w, ",\"redisReconnects\":");
    jsonw_int(w, atomic_load(&g_cl.reconnects));
    jsonw_lit(w, ",\"droppedWrites\":");
    jsonw_int(w, atomic_load(&g_cl.dropped_writes));
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
