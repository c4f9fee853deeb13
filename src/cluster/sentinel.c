/* sentinel.c — Redis Sentinel (see sentinel.h): the configured list, the
 * question "where is the master?" put to each sentinel in turn, and the
 * +switch-master subscription with its liveness check. Link thread only,
 * but for the validation before the start and the watched address.
 *
 * hiredis frees a context itself when its connect fails, and runs every
 * pending callback with a NULL reply whenever a context is freed (by us
 * or by hiredis): so the asking context is forgotten in its reply
 * callback, and the watching one in its connect and disconnect callbacks
 * or right before we free it. */
#include "cluster/sentinel.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/rlink.h"
#include "core/log.h"
#include "core/node.h"

#define SN_BACKOFF_MIN_MS 100
#define SN_BACKOFF_MAX_MS 5000
#define SN_TICK_MS 250                   /* the watch's timer */
#define SN_RENEW_MS 1000                 /* the subscription's liveness check */
#define SN_CHANNEL "+switch-master"

typedef struct sn_addr {
    char host[CONFIG_STR];
    int port;
    char addr[CONFIG_STR + 8];           /* "host:port" as configured */
} sn_addr;

static struct {
    uv_loop_t *loop;
    sentinel_hooks hooks;
    sn_addr list[SENTINEL_MAX];
    int n;
    int started, stopping;
    /* asking */
    uv_timer_t ask_timer;                /* the deadline of one sentinel, or the next try */
    redisAsyncContext *qac;
    int asking, qidx, qtimed_out;
    /* watching */
    uv_timer_t watch_timer;
    redisAsyncContext *wac;
    int widx, wbackoff_ms, subscribed;
    uint64_t wnext;                      /* no watch connection: when to open one */
    uint64_t renewed;                    /* the last confirmation of the subscription */
    uint64_t renew_sent;                 /* a renewal awaited since (0: none) */
    pthread_mutex_t lock;                /* guards watching */
    char watching[CONFIG_STR + 8];
} g_sn = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---------- the configuration ---------- */

int sentinel_configured(const config *c)
{
    return c->redisSentinels[0] != '\0' && c->redisMasterName[0] != '\0';
}

/* One "host:port" (or "[v6]:port") of the list, spaces around it allowed. */
static int sn_parse_one(const char *s, size_t len, sn_addr *out)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    const char *colon = memrchr(s, ':', len), *host = s;
    size_t hl = colon ? (size_t)(colon - s) : 0, pl = colon ? len - hl - 1 : 0;
    if (!colon || hl == 0 || hl >= sizeof(out->host) || pl == 0 || pl > 5)
        return -1;
    long port = 0;
    for (size_t i = 0; i < pl; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return -1;
        port = port * 10 + (colon[1 + i] - '0');
    }
    if (port < 1 || port > 65535)
        return -1;
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']')
        host++, hl -= 2;
    if (memchr(host, ' ', hl) || memchr(host, '[', hl) || memchr(host, ']', hl) ||
        (s == host && memchr(host, ':', hl)))
        return -1;
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    out->port = (int)port;
    snprintf(out->addr, sizeof(out->addr), "%.*s", (int)len, s);
    return 0;
}

/* The whole list into list (up to SENTINEL_MAX); the count, or -1 with
 * the bad item in err. */
static int sn_parse_list(const char *text, sn_addr *list, char *err, size_t errlen)
{
    int n = 0;
    for (const char *p = text; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == SENTINEL_MAX) {
            snprintf(err, errlen, "key 'redis.sentinels': more than %d sentinels", SENTINEL_MAX);
            return -1;
        }
        if (sn_parse_one(p, len, &list[n]) != 0) {
            snprintf(err, errlen, "key 'redis.sentinels': '%.*s' is not host:port (a port 1-65535)",
                     (int)(len > 200 ? 200 : len), p);
            return -1;
        }
        n++;
        p += len + (comma != NULL);
    }
    return n;
}

int sentinel_validate(const config *c, char *err, size_t errlen)
{
    static sn_addr list[SENTINEL_MAX];
    if (c->redisSentinels[0] && !c->redisMasterName[0]) {
        snprintf(err, errlen, "key 'redis.masterName': must be set with redis.sentinels "
                 "(the name the sentinels monitor the master under)");
        return -1;
    }
    if (c->redisMasterName[0] && !c->redisSentinels[0]) {
        snprintf(err, errlen, "key 'redis.sentinels': must be set with redis.masterName "
                 "(host:port of the sentinels to ask)");
        return -1;
    }
    if (strpbrk(c->redisMasterName, " \t\r\n")) {
        snprintf(err, errlen, "key 'redis.masterName': no spaces in a master's name");
        return -1;
    }
    if (c->redisSentinels[0] && sn_parse_list(c->redisSentinels, list, err, errlen) < 1)
        return -1;
    return 0;
}

int sentinel_count(void) { return g_sn.n; }
const char *sentinel_at(int i) { return g_sn.list[i].addr; }

int sentinel_all_addresses(void)
{
    for (int i = 0; i < g_sn.n; i++)
        if (!rlink_is_address(g_sn.list[i].host))
            return 0;
    return 1;
}

void sentinel_watching(char *out, size_t cap)
{
    pthread_mutex_lock(&g_sn.lock);
    snprintf(out, cap, "%s", g_sn.watching);
    pthread_mutex_unlock(&g_sn.lock);
}

/* ---------- connections ---------- */

/* A connection to sentinel s on the link loop; NULL (logged) when it
 * cannot even start. */
static redisAsyncContext *sn_open(const sn_addr *s)
{
    redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
    if (!ac || ac->err || rlink_attach(ac, g_sn.loop) != 0) {
        log_warn("cluster: cannot connect to sentinel %s: %s", s->addr,
                 !ac ? "out of memory" : ac->err ? ac->errstr : "event loop");
        if (ac)
            redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

/* ---------- asking where the master is ---------- */

static void sn_ask_next(void);

static void sn_answer(const char *host, int port)
{
    g_sn.asking = 0;
    if (!host)
        log_warn("cluster: no sentinel of %d named the master '%s'", g_sn.n, g_node.cfg.redisMasterName);
    g_sn.hooks.on_master(host, port);
}

/* ["host", "port"]: the master; anything else (nil: an unknown name) is
 * not. Returns the port or 0. */
static int sn_master_of(const redisReply *r, char *host, size_t cap)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len == 0 || r->element[0]->len >= cap)
        return 0;
    char *end;
    long port = strtol(r->element[1]->str, &end, 10);
    if (*end || port < 1 || port > 65535)
        return 0;
    memcpy(host, r->element[0]->str, r->element[0]->len + 1);
    return (int)port;
}

static void sn_log_no_master(const redisAsyncContext *ac, const redisReply *r)
{
    const char *at = g_sn.list[g_sn.qidx].addr, *name = g_node.cfg.redisMasterName;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("cluster: sentinel %s refused get-master-addr-by-name: %s", at, r->str);
    else if (r)
        log_warn("cluster: sentinel %s does not know a master named '%s'", at, name);
    else if (g_sn.qtimed_out)
        log_warn("cluster: sentinel %s did not answer within %d ms", at, g_node.cfg.redisTimeout);
    else
        log_warn("cluster: sentinel %s did not answer: %s", at, ac->err ? ac->errstr : "connection lost");
}

static void sn_on_ask_retry(uv_timer_t *t)
{
    (void)t;
    sn_ask_next();
}

/* The answer of sentinel qidx (NULL: its connection failed or was
 * dropped); hiredis frees ac after this returns. */
static void sn_on_addr(redisAsyncContext *ac, void *reply, void *pd)
{
    (void)pd;
    const redisReply *r = reply;
    char host[CONFIG_STR];
    g_sn.qac = NULL;
    uv_timer_stop(&g_sn.ask_timer);
    if (r)
        redisAsyncFree(ac);                      /* done with it (after this callback) */
    if (g_sn.stopping)
        return;
    int port = sn_master_of(r, host, sizeof(host));
    if (port) {
        sn_answer(host, port);
        return;
    }
    sn_log_no_master(ac, r);
    g_sn.qidx++;
    uv_timer_start(&g_sn.ask_timer, sn_on_ask_retry, 0, 0);   /* the next, out of hiredis */
}

static void sn_on_ask_deadline(uv_timer_t *t)
{
    (void)t;
    if (!g_sn.qac)
        return;
    g_sn.qtimed_out = 1;
    redisAsyncFree(g_sn.qac);                    /* sn_on_addr runs with NULL */
}

/* Sentinel qidx, or the next one that can be dialled; none left: no answer. */
static void sn_ask_next(void)
{
    const char *argv[] = { "SENTINEL", "get-master-addr-by-name", g_node.cfg.redisMasterName };
    for (; g_sn.qidx < g_sn.n; g_sn.qidx++) {
        redisAsyncContext *ac = sn_open(&g_sn.list[g_sn.qidx]);
        if (!ac)
            continue;
        if (redisAsyncCommandArgv(ac, sn_on_addr, NULL, 3, argv, NULL) != REDIS_OK) {
            redisAsyncFree(ac);
            continue;
        }
        g_sn.qac = ac;
        g_sn.qtimed_out = 0;
        uv_timer_start(&g_sn.ask_timer, sn_on_ask_deadline, (uint64_t)g_node.cfg.redisTimeout, 0);
        return;
    }
    sn_answer(NULL, 0);
}

void sentinel_ask(void)
{
    if (g_sn.asking || g_sn.stopping)
        return;
    g_sn.asking = 1;
    g_sn.qidx = 0;
    sn_ask_next();
}

/* ---------- watching for +switch-master ---------- */

static void sn_set_watching(const char *addr)
{
    pthread_mutex_lock(&g_sn.lock);
    snprintf(g_sn.watching, sizeof(g_sn.watching), "%s", addr);
    pthread_mutex_unlock(&g_sn.lock);
}

/* The watch connection is gone: the next sentinel after a back-off. */
static void sn_watch_lost(void)
{
    g_sn.wac = NULL;
    g_sn.subscribed = 0;
    sn_set_watching("");
    g_sn.widx = (g_sn.widx + 1) % g_sn.n;
    g_sn.wnext = uv_now(g_sn.loop) + (uint64_t)g_sn.wbackoff_ms;
    g_sn.wbackoff_ms = g_sn.wbackoff_ms * 2 > SN_BACKOFF_MAX_MS ? SN_BACKOFF_MAX_MS : g_sn.wbackoff_ms * 2;
}

static void sn_watch_drop(const char *why)
{
    redisAsyncContext *ac = g_sn.wac;
    log_warn("cluster: sentinel %s %s; watching for failovers through the next one",
             g_sn.list[g_sn.widx].addr, why);
    sn_watch_lost();
    if (ac)
        redisAsyncFree(ac);                      /* its callbacks see it is no longer wac */
}

/* "<name> <old-ip> <old-port> <new-ip> <new-port>" */
static void sn_on_switch_payload(const char *msg)
{
    char name[CONFIG_STR], host[CONFIG_STR];
    int port;
    if (sscanf(msg, "%255s %*s %*s %255s %d", name, host, &port) != 3 || port < 1 || port > 65535)
        log_warn("cluster: sentinel %s sent a +switch-master I cannot read: '%.200s'",
                 g_sn.list[g_sn.widx].addr, msg);
    else if (strcmp(name, g_node.cfg.redisMasterName) == 0)
        g_sn.hooks.on_switch(host, port);
}

static void sn_on_confirmed(void)
{
    g_sn.renewed = uv_now(g_sn.loop);
    g_sn.renew_sent = 0;
    if (g_sn.subscribed)
        return;
    g_sn.subscribed = 1;
    g_sn.wbackoff_ms = SN_BACKOFF_MIN_MS;
    sn_set_watching(g_sn.list[g_sn.widx].addr);
    log_info("cluster: following failovers of master '%s' through sentinel %s",
             g_node.cfg.redisMasterName, g_sn.list[g_sn.widx].addr);
}

/* Every reply on the subscription: ["subscribe", channel, n] (the first
 * and every renewal) or ["message", channel, payload]. */
static void sn_on_watch_msg(redisAsyncContext *ac, void *reply, void *pd)
{
    (void)pd;
    const redisReply *r = reply;
    if (!r || ac != g_sn.wac || g_sn.stopping)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->element[0]->str, "subscribe") == 0)
        sn_on_confirmed();
    else if (strcmp(r->element[0]->str, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING)
        sn_on_switch_payload(r->element[2]->str);
}

static int sn_subscribe(redisAsyncContext *ac)
{
    const char *argv[] = { "SUBSCRIBE", SN_CHANNEL };
    g_sn.renew_sent = uv_now(g_sn.loop);
    return redisAsyncCommandArgv(ac, sn_on_watch_msg, NULL, 2, argv, NULL) == REDIS_OK ? 0 : -1;
}

static void sn_on_watch_connect(const redisAsyncContext *ac, int status)
{
    if (ac != g_sn.wac || status == REDIS_OK)
        return;
    log_warn("cluster: cannot connect to sentinel %s: %s", g_sn.list[g_sn.widx].addr, ac->errstr);
    sn_watch_lost();                             /* hiredis frees ac */
}

static void sn_on_watch_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    if (ac != g_sn.wac || g_sn.stopping)
        return;
    log_warn("cluster: lost sentinel %s%s%s", g_sn.list[g_sn.widx].addr, ac->err ? ": " : "",
             ac->err ? ac->errstr : "");
    sn_watch_lost();
}

static void sn_watch_open(void)
{
    redisAsyncContext *ac = sn_open(&g_sn.list[g_sn.widx]);
    if (!ac) {
        sn_watch_lost();
        return;
    }
    redisAsyncSetConnectCallback(ac, sn_on_watch_connect);
    redisAsyncSetDisconnectCallback(ac, sn_on_watch_disconnect);
    g_sn.wac = ac;
    if (sn_subscribe(ac) != 0)
        sn_watch_drop("cannot take SUBSCRIBE");
}

/* Opens the watch when due, renews the subscription every SN_RENEW_MS and
 * drops a sentinel that leaves a (re)subscription unconfirmed for
 * cluster.redisTimeout. */
static void sn_on_watch_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(g_sn.loop);
    if (!g_sn.wac) {
        if (now >= g_sn.wnext)
            sn_watch_open();
    } else if (g_sn.renew_sent && now - g_sn.renew_sent > (uint64_t)g_node.cfg.redisTimeout) {
        sn_watch_drop(g_sn.subscribed ? "stopped answering" : "did not confirm the subscription");
    } else if (g_sn.subscribed && !g_sn.renew_sent && now - g_sn.renewed >= SN_RENEW_MS &&
               sn_subscribe(g_sn.wac) != 0) {
        sn_watch_drop("cannot take SUBSCRIBE");
    }
}

/* ---------- start, stop ---------- */

int sentinel_start(uv_loop_t *loop, const sentinel_hooks *hooks, char *err, size_t errlen)
{
    int n = sn_parse_list(g_node.cfg.redisSentinels, g_sn.list, err, errlen);
    if (n < 1)
        return -1;
    if (uv_timer_init(loop, &g_sn.ask_timer) != 0 ||
        uv_timer_init(loop, &g_sn.watch_timer) != 0) {
        snprintf(err, errlen, "cannot set up the sentinel timers");
        return -1;
    }
    g_sn.n = n;
    g_sn.loop = loop;
    g_sn.hooks = *hooks;
    g_sn.wbackoff_ms = SN_BACKOFF_MIN_MS;
    g_sn.started = 1;
    sn_watch_open();
    uv_timer_start(&g_sn.watch_timer, sn_on_watch_tick, SN_TICK_MS, SN_TICK_MS);
    return 0;
}

void sentinel_stop(void)
{
    if (!g_sn.started || g_sn.stopping)
        return;
    g_sn.stopping = 1;
    redisAsyncContext *q = g_sn.qac, *w = g_sn.wac;
    g_sn.qac = g_sn.wac = NULL;
    if (q)
        redisAsyncFree(q);
    if (w)
        redisAsyncFree(w);
    sn_set_watching("");
    uv_close((uv_handle_t *)&g_sn.ask_timer, NULL);
    uv_close((uv_handle_t *)&g_sn.watch_timer, NULL);
}
