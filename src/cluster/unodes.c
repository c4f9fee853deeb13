/* unodes.c — the user's nodes hash acc:user:nodes:<appID>_<userID> (see
 * unodes.h): the join (a MULTI/EXEC transaction, or three writes when it
 * announces nothing) and the leave (a script)
 * posted at a user's first and last connection on this node and the
 * announcements their answers decide, the counts in between, the rewrite
 * after a reconnect and the sweep of the fields this node left behind.
 * Edges and sweep run on the link thread. */
#include "cluster/unodes.h"

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "cluster/prec.h"
#include "cluster/rlink.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/node.h"
#include "im/presence.h"

#define UN_TTL "86400"                   /* seconds, on the hash (and the record) */
#define UN_TOUCH_SECS 3600u              /* a heartbeat renews the hash's TTL once per hour */
#define UN_SCAN_COUNT "500"

/* Shared by the leave and prune scripts. KEYS[1] the user's nodes hash,
 * KEYS[2] acc:hash:servers, KEYS[3] the presence record; ARGV[1] this
 * node's field, ARGV[2] the oldest registration time that is still live,
 * ARGV[3] the TTL.
 * live_others(): how many other nodes that are live in the registry hold
 * the user, and the first of them; fields of nodes that are not live are
 * removed. An unreadable registry counts every node as live. */
#define UN_LUA_LIVE                                                                          \
    "local function live_others() "                                                          \
    "local f = redis.call('HGETALL', KEYS[1]) local n, first = 0, nil "                      \
    "for i = 1, #f, 2 do if f[i] ~= ARGV[1] then "                                           \
    "local reg = redis.pcall('HGET', KEYS[2], f[i]) "                                        \
    "local live = type(reg) == 'table' or (reg and (tonumber(reg) or 0) > tonumber(ARGV[2])) " \
    "if not live then redis.call('HDEL', KEYS[1], f[i]) "                                    \
    "elseif (tonumber(f[i + 1]) or 0) > 0 then n = n + 1 first = first or f[i] end "        \
    "end end return n, first end "

/* What remains of live_others() after a join (below): the fields of nodes
 * that are not live are removed. Answers the count, which nobody reads. */
static const char un_prune_lua[] = UN_LUA_LIVE "local n = live_others() return n";

/* The last connection on this node gone: ARGV[4] how the record names this
 * node, ARGV[5] the logged-off record ("": make it from the stored one,
 * logged out at ARGV[6]). The record is touched only while it names this
 * node (or is missing): logged off when no other live node holds the user,
 * else handed over to one that does (its accIp/accPort; the rest is
 * rewritten by that node's next heartbeat). Answers live_others(). */
static const char un_leave_lua[] =
    UN_LUA_LIVE
    "redis.call('HDEL', KEYS[1], ARGV[1]) "
    "local n, other = live_others() "
    "local v = redis.call('GET', KEYS[3]) local s, e "
    "if v then s, e = string.find(v, ARGV[4], 1, true) end "
    "if n == 0 and (s or not v) then local rec = ARGV[5] "
    "if rec == '' and v then "
    "rec = (string.gsub(v, '\"logOutTime\":%d+', '\"logOutTime\":' .. ARGV[6], 1)) "
    "rec = (string.gsub(rec, '\"isLogoff\":false', '\"isLogoff\":true', 1)) end "
    "if rec ~= '' then redis.call('SET', KEYS[3], rec, 'EX', ARGV[3]) end "
    "elseif n > 0 and s then "
    "local ip, port = string.match(other, '^([%w%.%-%[%]:]+):(%d+)$') "
    "if ip then redis.call('SET', KEYS[3], string.sub(v, 1, s - 1) .. '\"accIp\":\"' .. ip .. "
    "'\",\"accPort\":\"' .. port .. '\",' .. string.sub(v, e + 1), 'EX', ARGV[3]) end end "
    "return n";

/* A first or last connection, on its way to the link thread. */
typedef struct un_edge {
    task t;
    int join, announce;
    uint32_t appid, conns;
    uint8_t uidlen;
    char uid[PRESENCE_MAX_ID];
    size_t jlen;
    char json[];                         /* the record to write ("" = derive) */
} un_edge;

static struct {
    unsigned sweep_gen;                  /* link thread: the sweep that runs */
} g_un;

int unodes_key(char *out, size_t cap, uint32_t appid, const char *uid, size_t len)
{
    int n = snprintf(out, cap, UNODES_KEY_PREFIX "%u_%.*s", appid, (int)len, uid);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* ---------- the edges ---------- */

static void un_edge_done(un_edge *ed, long long others)
{
    /* unknown (Redis down, script failed): announce, as a node alone would */
    if (ed->announce && others <= 0)
        cluster_announce(ed->join ? "enter" : "exit", ed->appid, ed->uid, ed->uidlen);
    free(ed);
}

static const char *un_why(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR ? r->str : "odd reply";
}

/* The leave script's answer. */
static void un_on_edge_reply(void *ud, const redisReply *r)
{
    un_edge *ed = ud;
    long long others = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        others = r->integer;
    else if (r)
        log_warn("cluster: the leave script for user %u_%.*s failed: %s", ed->appid,
                 (int)ed->uidlen, ed->uid, un_why(r));
    un_edge_done(ed, others);
}

/* The keys and the live-since argument of the scripts (UN_LUA_LIVE). */
typedef struct un_args {
    char key[96], rkey[96], live[24];
} un_args;

static int un_args_make(un_args *a, const un_edge *ed)
{
    if (unodes_key(a->key, sizeof(a->key), ed->appid, ed->uid, ed->uidlen) < 0 ||
        prec_key(a->rkey, sizeof(a->rkey), ed->appid, ed->uid, ed->uidlen) < 0)
        return -1;
    snprintf(a->live, sizeof(a->live), "%lld", (long long)time(NULL) - g_node.cfg.serverTimeout);
    return 0;
}

/* Sends the leave script; -1 if it could not be sent. */
static int un_leave_send(un_edge *ed, const un_args *a)
{
    char frag[160], now[24];
    if (cluster_prec_frag(frag, sizeof(frag)) < 0)
        return -1;
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    const char *argv[] = { "EVAL", un_leave_lua, "3", a->key, CLUSTER_SERVERS_KEY, a->rkey,
                           cluster_self(), a->live, UN_TTL, frag, ed->json, now };
    size_t lens[12];
    for (int i = 0; i < 12; i++)
        lens[i] = strlen(argv[i]);
    lens[10] = ed->jlen;
    return rlink_cmd(un_on_edge_reply, ed, 12, argv, lens);
}

static void un_on_prune(void *ud, const redisReply *r)
{
    (void)ud;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("cluster: removing the fields of nodes that are not live failed: %s", r->str);
}

/* How many other nodes hold the user (count > 0) and are live in this
 * node's list of live nodes, read from the registry every
 * cluster.registerInterval; with no list (the registry unread or broken)
 * every node counts as live, as in the leave script. A node the list does
 * not know is counted as dead: mostly one that stopped registering (gone
 * from the list serverTimeout after its last registration, plus at most a
 * registerInterval), rarely one that registered after this node's last
 * read (its user's enter may then be announced twice). *prune then asks
 * the registry itself which fields go (un_prune_lua). */
static long long un_live_others(const redisReply *r, int *prune)
{
    const char *self = cluster_self();
    size_t sl = strlen(self);
    long long n = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            (f->len == sl && memcmp(f->str, self, sl) == 0))
            continue;
        int live = cluster_server_live(f->str, f->len);
        if (live == 0)
            *prune = 1;
        else if (strtoll(v->str, NULL, 10) > 0)
            n++;
    }
    return n;
}

/* EXEC's answer: [HSET, EXPIRE, SET, HGETALL of the hash]. */
static void un_on_join_fields(void *ud, const redisReply *r)
{
    un_edge *ed = ud;
    long long others = -1;
    int prune = 0;
    un_args a;
    const redisReply *all = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        all = r->element[3];
        for (int i = 0; i < 3; i++)              /* the writes: logged, the count goes on */
            if (r->element[i]->type == REDIS_REPLY_ERROR)
                log_warn("cluster: a write of the join of user %u_%.*s failed: %s", ed->appid,
                         (int)ed->uidlen, ed->uid, r->element[i]->str);
    }
    if (all && all->type == REDIS_REPLY_ARRAY)
        others = un_live_others(all, &prune);
    else if (r)
        log_warn("cluster: the join of user %u_%.*s failed: %s", ed->appid, (int)ed->uidlen,
                 ed->uid, un_why(all ? all : r));
    if (prune && un_args_make(&a, ed) == 0) {
        const char *argv[] = { "EVAL", un_prune_lua, "2", a.key, CLUSTER_SERVERS_KEY,
                               cluster_self(), a.live };
        (void)rlink_cmd(un_on_prune, NULL, 7, argv, NULL);
    }
    un_edge_done(ed, others);
}

/* The SET's answer of a join that announces nothing (un_join_send). */
static void un_on_join_written(void *ud, const redisReply *r)
{
    un_edge *ed = ud;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("cluster: the presence record of user %u_%.*s was not written: %s", ed->appid,
                 (int)ed->uidlen, ed->uid, r->str);
    un_edge_done(ed, 0);
}

/* The join as one transaction, without a script (starting Lua was most of
 * what Redis spent on a login): this node's field and its TTL, the
 * presence record, then the whole hash, whose answer counts the other live
 * nodes. Like the script it replaces it runs with no other node's edge in
 * between, so of two first connections at once exactly one is announced.
 * A join that announces nothing (a room over im.presenceEventsMaxRoom:
 * most logins of a big deployment) needs no count and so no isolation:
 * the three writes go back to back. A leave script of another node may
 * then run between them, and sees the field written and the record not
 * yet (it hands the record over to this node, whose SET then rewrites it)
 * or neither or both, as it could see before or after a transaction. If
 * the link fails between the three (out of memory, or a drop), the writes
 * already made stay: the rewrite of every user after a reconnect
 * (unodes_resync_one), a heartbeat (the record) or the hourly EXPIRE
 * (unodes_touch) completes them.
 * -1 if not sent (ed is then the caller's). */
static int un_join_send(un_edge *ed, const un_args *a)
{
    char cnt[16];
    snprintf(cnt, sizeof(cnt), "%u", ed->conns);
    const char *hset[] = { "HSET", a->key, cluster_self(), cnt };
    const char *expire[] = { "EXPIRE", a->key, UN_TTL };
    const char *set[] = { "SET", a->rkey, ed->json, "EX", UN_TTL };
    size_t setlens[] = { 3, strlen(a->rkey), ed->jlen, 2, strlen(UN_TTL) };
    const char *all[] = { "HGETALL", a->key };
    const rlink_argv cmds[] = { { 4, hset, NULL }, { 3, expire, NULL }, { 5, set, setlens },
                                { 2, all, NULL } };
    if (!ed->announce)
        return rlink_pipeline(un_on_join_written, ed, 3, cmds);
    return rlink_multi(un_on_join_fields, ed, 4, cmds);
}

/* Sends the edge; -1 if it could not be sent (ed is then the caller's). */
static int un_edge_send(un_edge *ed)
{
    un_args a;
    if (un_args_make(&a, ed) != 0)
        return -1;
    return ed->join ? un_join_send(ed, &a) : un_leave_send(ed, &a);
}

static void un_edge_run(struct worker *w, task *t)
{
    (void)w;
    un_edge *ed = (un_edge *)t;
    if (un_edge_send(ed) != 0)
        un_edge_done(ed, -1);
}

static un_edge *un_edge_new(uint32_t appid, const char *uid, size_t len, const char *json, size_t jlen)
{
    un_edge *ed = len < PRESENCE_MAX_ID ? mem_zalloc(sizeof(*ed) + jlen + 1) : NULL;
    if (!ed)
        return NULL;
    ed->t.run = un_edge_run;
    ed->appid = appid;
    ed->uidlen = (uint8_t)len;
    memcpy(ed->uid, uid, len);
    memcpy(ed->json, json, jlen);
    ed->jlen = jlen;
    return ed;
}

/* Formats the edge under the stripe lock (e may be freed right after) and
 * posts it behind the user's earlier writes. */
static void un_edge_post(const pres_entry *e, int join, int announce)
{
    jsonw w;
    jsonw_init(&w, 0);
    cluster_prec_json(&w, e, !join);
    size_t jlen;
    const char *json = jsonw_text(&w, &jlen);
    un_edge *ed = json ? un_edge_new(e->appid, e->id, e->idlen, json, jlen) : NULL;
    jsonw_free(&w);
    if (!ed) {
        log_warn("cluster: out of memory: the %s of user %u_%s is not written to Redis",
                 join ? "login" : "logout", e->appid, e->id);
        return;
    }
    ed->join = join;
    ed->announce = announce;
    ed->conns = e->conns;
    rlink_post(&ed->t);
}

void unodes_join(const pres_entry *e, int announce)
{
    if (cluster_enabled())
        un_edge_post(e, 1, announce);
}

void unodes_leave(const pres_entry *e, int announce)
{
    if (cluster_enabled())
        un_edge_post(e, 0, announce);
}

/* ---------- counts and TTL between the edges ---------- */

/* HSET of this node's count (and the TTL), sent through send. */
static void un_count_send(const pres_entry *e, void (*send)(int, const char **, const size_t *))
{
    char key[96], cnt[16];
    if (unodes_key(key, sizeof(key), e->appid, e->id, e->idlen) < 0)
        return;
    snprintf(cnt, sizeof(cnt), "%u", e->conns);
    const char *hset[] = { "HSET", key, cluster_self(), cnt };
    const char *expire[] = { "EXPIRE", key, UN_TTL };
    send(4, hset, NULL);
    send(3, expire, NULL);
}

void unodes_count(const pres_entry *e)
{
    if (cluster_enabled())
        un_count_send(e, rlink_write);
}

void unodes_touch(const pres_entry *e, uint32_t prev_hb)
{
    char key[96];
    /* hours counted from the user's login here: not all users on the
     * same clock hour (a burst of EXPIREs at every hh:00) */
    uint32_t hb = atomic_load_explicit(&e->hb_time, memory_order_relaxed);
    if ((hb - e->login_time) / UN_TOUCH_SECS == (prev_hb - e->login_time) / UN_TOUCH_SECS)
        return;                                  /* renewed this hour already */
    if (!cluster_enabled() || unodes_key(key, sizeof(key), e->appid, e->id, e->idlen) < 0)
        return;
    const char *expire[] = { "EXPIRE", key, UN_TTL };
    rlink_write(3, expire, NULL);
}

static void un_direct(int argc, const char **argv, const size_t *lens)
{
    (void)rlink_cmd(NULL, NULL, argc, argv, lens);
}

void unodes_resync_one(const pres_entry *e)
{
    un_count_send(e, un_direct);
}

/* ---------- the sweep ---------- */

/* (appid, userID) of a key "acc:user:nodes:<appID>_<userID>"; 0 or -1. */
static int un_parse_key(const char *k, size_t len, uint32_t *appid, const char **uid, size_t *ulen)
{
    size_t pl = sizeof(UNODES_KEY_PREFIX) - 1, i = pl;
    unsigned long a = 0;
    if (len <= pl || memcmp(k, UNODES_KEY_PREFIX, pl) != 0)
        return -1;
    for (; i < len && k[i] >= '0' && k[i] <= '9' && a <= 0xffffffffUL; i++)
        a = a * 10 + (unsigned long)(k[i] - '0');
    if (i == pl || i >= len || k[i] != '_' || a > 0xffffffffUL || len - i - 1 == 0 ||
        len - i - 1 >= PRESENCE_MAX_ID)
        return -1;
    *appid = (uint32_t)a;
    *uid = k + i + 1;
    *ulen = len - i - 1;
    return 0;
}

/* Which of KEYS hold this node's field (ARGV[1]); keys of another type are
 * passed over. */
static const char un_mine_lua[] =
    "local out = {} for i = 1, #KEYS do "
    "if redis.pcall('HEXISTS', KEYS[i], ARGV[1]) == 1 then out[#out + 1] = KEYS[i] end end "
    "return out";

/* One of this node's fields. If the node holds nobody of that user now,
 * leave as at a last disconnection (not announced: the exit went out when
 * it happened, or belongs to an earlier run). A login that comes after this
 * check posts its join behind this leave. */
static void un_sweep_field(const redisReply *k)
{
    uint32_t appid;
    const char *uid;
    size_t ulen;
    if (k->type != REDIS_REPLY_STRING || un_parse_key(k->str, k->len, &appid, &uid, &ulen) != 0 ||
        presence_conns(appid, uid, ulen) != 0)
        return;
    un_edge *ed = un_edge_new(appid, uid, ulen, "", 0);
    if (!ed || un_edge_send(ed) != 0) {
        free(ed);
        return;
    }
    log_info("cluster: removing this node's stale field of user %u_%.*s", appid, (int)ulen, uid);
}

static void un_on_mine(void *ud, const redisReply *r)
{
    (void)ud;
    if (r && r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            un_sweep_field(r->element[i]);
    else if (r)
        log_warn("cluster: the sweep of %s* skipped a batch: %s", UNODES_KEY_PREFIX,
                 r->type == REDIS_REPLY_ERROR ? r->str : "odd reply");
}

/* Asks which keys of a SCAN batch hold this node's field. */
static void un_sweep_batch(const redisReply *keys)
{
    size_t n = keys->elements;
    if (n == 0)
        return;
    const char **argv = calloc(n + 4, sizeof(*argv));
    size_t *lens = calloc(n + 4, sizeof(*lens));
    char nk[24];
    snprintf(nk, sizeof(nk), "%zu", n);
    const char *head[] = { "EVAL", un_mine_lua, nk };
    for (size_t i = 0; argv && lens && i < 3; i++) {
        argv[i] = head[i];
        lens[i] = strlen(head[i]);
    }
    for (size_t i = 0; argv && lens && i < n; i++) {
        const redisReply *k = keys->element[i];
        argv[3 + i] = k->type == REDIS_REPLY_STRING ? k->str : "";
        lens[3 + i] = k->type == REDIS_REPLY_STRING ? k->len : 0;
    }
    if (!argv || !lens)
        log_warn("cluster: out of memory: the sweep of %s* skipped a batch", UNODES_KEY_PREFIX);
    else {
        argv[3 + n] = cluster_self();
        lens[3 + n] = strlen(cluster_self());
        if (rlink_cmd(un_on_mine, NULL, (int)(n + 4), argv, lens) != 0)
            log_warn("cluster: the sweep of %s* stopped: the link went down", UNODES_KEY_PREFIX);
    }
    free(argv);
    free(lens);
}

static int un_scan(const char *cursor);

static void un_on_scan(void *ud, const redisReply *r)
{
    if ((unsigned)(uintptr_t)ud != g_un.sweep_gen || !r)
        return;                                   /* superseded, or the link went down */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        log_warn("cluster: the sweep of %s* stopped: %s", UNODES_KEY_PREFIX,
                 r->type == REDIS_REPLY_ERROR ? r->str : "odd SCAN reply");
        return;
    }
    un_sweep_batch(r->element[1]);
    if (strcmp(r->element[0]->str, "0") != 0 && un_scan(r->element[0]->str) != 0)
        log_warn("cluster: the sweep of %s* stopped: the link went down", UNODES_KEY_PREFIX);
}

static int un_scan(const char *cursor)
{
    const char *argv[] = { "SCAN", cursor, "MATCH", UNODES_KEY_PREFIX "*", "COUNT", UN_SCAN_COUNT };
    return rlink_cmd(un_on_scan, (void *)(uintptr_t)g_un.sweep_gen, 6, argv, NULL);
}

void unodes_sweep(void)
{
    g_un.sweep_gen++;
    (void)un_scan("0");                           /* down again: the next reconnect sweeps */
}
