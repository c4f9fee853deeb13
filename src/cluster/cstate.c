/* cstate.c — the node's dashboard state and its snapshots in Redis (see
 * cstate.h). The counters are the workers' atomics and presence's count:
 * reading them from the link thread takes no lock but the peers' list. */
#include "cluster/cstate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cluster/cluster.h"
#include "cluster/rlink.h"
#include "cluster/rpc.h"
#include "core/jsonw.h"
#include "core/node.h"
#include "im/hub.h"
#include "im/presence.h"
#include "net/worker.h"

static struct {
    uv_timer_t timer;            /* on the link loop */
    int on;
} g_cs;

static void cs_num(jsonw *w, const char *key, long long v)
{
    jsonw_lit(w, ",");
    jsonw_key(w, key);
    jsonw_int(w, v);
}

static long long cs_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void cstate_node_json(jsonw *w)
{
    long ws = 0, logged = 0, out = 0, in = 0, frames = 0, slow = 0, rate = 0;
    for (int i = 0; i < workers_count(); i++) {
        worker_stats *s = &worker_at(i)->stats;
        ws += atomic_load_explicit(&s->ws_conns, memory_order_relaxed);
        logged += atomic_load_explicit(&s->logged_in, memory_order_relaxed);
        out += atomic_load_explicit(&s->out_bytes, memory_order_relaxed);
        in += atomic_load_explicit(&s->msgs_in, memory_order_relaxed);
        frames += atomic_load_explicit(&s->frames_out, memory_order_relaxed);
        slow += atomic_load_explicit(&s->slow_closed, memory_order_relaxed);
        rate += atomic_load_explicit(&s->rate_closed, memory_order_relaxed);
    }
    int cluster = cluster_enabled();
    char http[CONFIG_STR + 8], wsaddr[CONFIG_STR + 8];
    const char *self = cluster ? cluster_self() : "", *colon = strrchr(self, ':');
    int iplen = colon ? (int)(colon - self) : 0;           /* the advertised address */
    const char *host = iplen ? self : g_node.cfg.bind;
    if (!iplen)
        iplen = (int)strlen(host);
    snprintf(http, sizeof(http), "%.*s:%d", iplen, host, g_node.http_port);
    snprintf(wsaddr, sizeof(wsaddr), "%.*s:%d", iplen, host, g_node.ws_port);
    jsonw_lit(w, "{\"node\":");
    jsonw_cstr(w, cluster ? cluster_self() : http);
    jsonw_lit(w, cluster ? ",\"mode\":\"cluster\",\"http\":" : ",\"mode\":\"embedded\",\"http\":");
    jsonw_cstr(w, http);
    jsonw_lit(w, ",\"ws\":");
    jsonw_cstr(w, wsaddr);
    jsonw_lit(w, ",\"version\":\"" IMGATE_VERSION "\"");
    cs_num(w, "time", cs_now_ms());
    cs_num(w, "uptimeSeconds", (long long)(time(NULL) - (time_t)g_node.start_unix));
    cs_num(w, "workers", workers_count());
    cs_num(w, "connections", ws);
    cs_num(w, "loggedIn", logged);
    cs_num(w, "users", presence_count());
    cs_num(w, "messagesIn", in);
    cs_num(w, "framesOut", frames);
    cs_num(w, "outQueueBytes", out);
    cs_num(w, "slowConsumersClosed", slow);
    cs_num(w, "rateLimitedClosed", rate);
    jsonw_lit(w, !cluster ? ",\"redis\":\"none\"" : rlink_up() ? ",\"redis\":\"up\"" : ",\"redis\":\"down\"");
    jsonw_lit(w, ",\"peers\":");
    if (cluster)
        rpc_peers_json(w);
    else
        jsonw_lit(w, "[]");
    jsonw_lit(w, ",\"rooms\":[");
    for (int r = 0; r < g_node.cfg.appIDCount; r++) {
        jsonw_lit(w, r ? ",{\"appID\":" : "{\"appID\":");
        jsonw_uint(w, g_node.cfg.appIDs[r]);
        cs_num(w, "users", hub_room_users_count(r));
        jsonw_lit(w, "}");
    }
    jsonw_lit(w, "]}");
}

/* ---------- the other nodes' snapshots (on a worker) ---------- */

#define CS_REDIS_DOWN "Redis is unavailable: only this node's state is shown"

typedef struct cs_gather {
    cstate_peers_fn done;
    void *ud;
    int n;
    char (*peers)[64];
} cs_gather;

static void cs_gather_end(cs_gather *g, int ok, const char *why, jsonw *w)
{
    size_t len = 0;
    const char *json = w ? jsonw_text(w, &len) : NULL;
    g->done(g->ud, ok && (!w || json), ok && w && !json ? "out of memory" : why, json ? json : "[]",
            json ? len : 2);
    if (w)
        jsonw_free(w);
    free(g->peers);
    free(g);
}

/* Whether a snapshot read back is one JSON object (it goes into the
 * answer as it is). */
static int cs_is_object(const rlink_val *v)
{
    if (v->type != REDIS_REPLY_STRING || !v->str || v->len == 0 || v->str[0] != '{')
        return 0;
    json_t *j = json_loadb(v->str, v->len, 0, NULL);
    int ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

static void cs_on_states(void *ud, int ok, rlink_val *rep, int n)
{
    cs_gather *g = ud;
    if (!ok || n != 1 || rep[0].type != REDIS_REPLY_ARRAY || rep[0].n != (size_t)g->n) {
        cs_gather_end(g, 0, ok ? "the snapshots could not be read" : CS_REDIS_DOWN, NULL);
        return;
    }
    jsonw w;
    jsonw_init(&w, 0);
    jsonw_lit(&w, "[");
    for (int i = 0; i < g->n; i++) {
        const rlink_val *v = &rep[0].elem[i];
        if (i)
            jsonw_lit(&w, ",");
        if (cs_is_object(v)) {
            jsonw_raw(&w, v->str, v->len);
        } else {
            jsonw_lit(&w, "{\"node\":");
            jsonw_cstr(&w, g->peers[i]);
            jsonw_lit(&w, ",\"snapshot\":false}");
        }
    }
    jsonw_lit(&w, "]");
    cs_gather_end(g, 1, NULL, &w);
}

static void cs_on_servers(void *ud, int ok, rlink_val *rep, int n)
{
    cs_gather *g = ud;
    if (!ok || n != 1) {
        cs_gather_end(g, 0, CS_REDIS_DOWN, NULL);
        return;
    }
    if (cluster_servers_note(&rep[0]) != 0) {
        cs_gather_end(g, 0, "the node registry " CLUSTER_SERVERS_KEY " cannot be read", NULL);
        return;
    }
    int max = (int)(rep[0].n / 2) + 1;
    g->peers = malloc((size_t)max * sizeof(*g->peers));
    int all = g->peers ? cluster_servers(g->peers, max) : 0;
    for (int i = 0; i < all; i++)
        if (strcmp(g->peers[i], cluster_self()) != 0)
            memmove(g->peers[g->n++], g->peers[i], sizeof(*g->peers));
    const char **argv = g->n ? calloc((size_t)g->n + 1, sizeof(*argv)) : NULL;
    char (*keys)[96] = g->n ? calloc((size_t)g->n, sizeof(*keys)) : NULL;
    rlink_query *q = keys && argv ? rlink_query_new(1, cs_on_states, g) : NULL;
    if (!q) {
        free(argv);
        free(keys);
        if (g->n)
            cs_gather_end(g, 0, "out of memory", NULL);
        else
            cs_gather_end(g, 1, NULL, NULL);          /* alone: "[]" */
        return;
    }
    argv[0] = "MGET";
    for (int i = 0; i < g->n; i++) {
        snprintf(keys[i], sizeof(keys[i]), CSTATE_KEY_PREFIX "%s", g->peers[i]);
        argv[i + 1] = keys[i];
    }
    int bad = rlink_query_add(q, g->n + 1, argv, NULL) != 0;
    free(argv);
    free(keys);
    if (bad) {
        rlink_query_cancel(q);
        cs_gather_end(g, 0, "out of memory", NULL);
        return;
    }
    rlink_query_submit(q);
}

int cstate_peers(cstate_peers_fn done, void *ud)
{
    cs_gather *g = calloc(1, sizeof(*g));
    rlink_query *q = g ? rlink_query_new(1, cs_on_servers, g) : NULL;
    const char *all[] = { "HGETALL", CLUSTER_SERVERS_KEY };
    if (!q || rlink_query_add(q, 2, all, NULL) != 0) {
        if (q)
            rlink_query_cancel(q);
        free(g);
        return -1;
    }
    g->done = done;
    g->ud = ud;
    rlink_query_submit(q);
    return 0;
}

/* ---------- snapshots (link thread) ---------- */

static void cs_write(uv_timer_t *t)
{
    (void)t;
    if (!rlink_up() || !cluster_self()[0])
        return;
    char key[160], ttl[16];
    snprintf(key, sizeof(key), CSTATE_KEY_PREFIX "%s", cluster_self());
    snprintf(ttl, sizeof(ttl), "%d", CSTATE_TTL_S);
    jsonw w;
    jsonw_init(&w, 0);
    cstate_node_json(&w);
    size_t len;
    const char *json = jsonw_text(&w, &len);
    if (json) {
        const char *argv[] = { "SET", key, json, "EX", ttl };
        size_t lens[] = { 3, strlen(key), len, 2, strlen(ttl) };
        (void)rlink_cmd(NULL, NULL, 5, argv, lens);
    }
    jsonw_free(&w);
}

void cstate_start(void)
{
    uv_timer_init(rlink_loop(), &g_cs.timer);
    uv_timer_start(&g_cs.timer, cs_write, 0, CSTATE_INTERVAL_MS);
    g_cs.on = 1;
}

void cstate_forget(void)
{
    if (g_cs.on)
        uv_timer_stop(&g_cs.timer);
    char key[160];
    snprintf(key, sizeof(key), CSTATE_KEY_PREFIX "%s", cluster_self());
    const char *argv[] = { "DEL", key };
    (void)rlink_cmd(NULL, NULL, 2, argv, NULL);
}

void cstate_stop(void)
{
    if (!g_cs.on)
        return;
    g_cs.on = 0;
    uv_close((uv_handle_t *)&g_cs.timer, NULL);
}
