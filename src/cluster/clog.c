/* clog.c — the delivery logs of cluster mode in Redis streams (see clog.h).
 * Each operation is one Lua script, so that what it reads and writes is
 * atomic in Redis; ids are compared in Lua as "<ms>-<seq>" text (digits
 * only, no leading zeros: Redis's own ids and dlog_id_format's). */
#include "cluster/clog.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/rlink.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/node.h"
#include "im/presence.h"
#include "im/resume.h"

#define CLOG_INBOX_PREFIX "acc:user:inbox:"
#define CLOG_ROOM_PREFIX "acc:room:history:"
#define CLOG_CURSOR_PREFIX "acc:user:cursor:"
#define CLOG_CLOCK_KEY "acc:delivery:clock"

/* a < b for two ids */
#define CLOG_LUA_LT                                                             \
    "local function lt(a, b) "                                                  \
    "local am, as = string.match(a, '^(%d+)-(%d+)$') "                          \
    "local bm, bs = string.match(b, '^(%d+)-(%d+)$') "                          \
    "if not am or not bm then return false end "                                \
    "if #am ~= #bm then return #am < #bm end "                                  \
    "if am ~= bm then return am < bm end "                                      \
    "if #as ~= #bs then return #as < #bs end "                                  \
    "return as < bs end "

/* KEYS: log, msgID key, in-flight key, the clock, the node registry (a
 * registry that cannot be read fails the send later, in route.c: nothing
 * is reserved or appended then). ARGV: msgID ttl, max
 * entries, max age ms, key ttl s, from, msg, seq, "1" if there is a msgID.
 * The msgID check is route.c's (SET NX of the original's key); then XADD
 * with an id from one clock for every log (acc:delivery:clock, "<ms>-<seq>"
 * of Redis's time), so that ids order an inbox's and a room's entries
 * together (a resume merges both by id), as embedded mode's do. Retention
 * drops the oldest entries with XDEL (not XADD MAXLEN / XTRIM), because
 * only XDEL moves the stream's max-deleted-entry-id, which tells a resume
 * whether entries after its id are gone (one aged one per append; reads
 * skip the rest; at most 1000 per append, Lua's unpack has a limit). A
 * logged message is accepted once appended: its msgID key lives
 * msgIDTtl (ARGV[9]) from here, whatever happens to the send later. */
static const char clog_send_lua[] =
    CLOG_LUA_LT
    "local reg = redis.call('TYPE', KEYS[5])['ok'] "
    "if reg ~= 'hash' and reg ~= 'none' then return {3, ''} end "
    "if ARGV[8] == '1' then "
    "if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[9]) then "
    "if redis.call('EXISTS', KEYS[3]) == 1 then return {2, ''} end return {0, ''} end "
    "redis.call('SET', KEYS[3], '1', 'EX', ARGV[1]) end "
    "local t = redis.call('TIME') "
    "local min = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3]) "
    "local minid = string.format('%.0f', math.max(min, 0)) .. '-0' "
    "local over = redis.call('XLEN', KEYS[1]) + 1 - tonumber(ARGV[2]) "
    "local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', math.min(math.max(over, 0), 999) + 1) "
    "local drop = {} "
    "for i, e in ipairs(old) do "
    "if i <= over or lt(e[1], minid) then drop[#drop + 1] = e[1] else break end end "
    "if #drop > 0 then redis.call('XDEL', KEYS[1], unpack(drop)) end "
    "local ms, seq = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), 0 "
    "local clk = redis.call('GET', KEYS[4]) "
    "if clk then local cm, cs = string.match(clk, '^(%d+)-(%d+)$') "
    "if cm and tonumber(cm) >= ms then ms, seq = tonumber(cm), tonumber(cs) + 1 end end "
    "local id = string.format('%.0f-%.0f', ms, seq) "
    "local r = redis.pcall('XADD', KEYS[1], id, 'from', ARGV[5], 'msg', ARGV[6], 'seq', ARGV[7]) "
    "if type(r) == 'table' and r.err then "          /* the clock was lost: the log's own */
    "id = redis.call('XADD', KEYS[1], '*', 'from', ARGV[5], 'msg', ARGV[6], 'seq', ARGV[7]) end "
    "redis.call('SET', KEYS[4], id) "
    "redis.call('EXPIRE', KEYS[1], ARGV[4]) "
    "return {1, id}";

/* KEYS: inbox, cursor, room history. ARGV: lastID ("" = the cursor),
 * lastRoomID ("" = no room replay), inbox count, room count. Returns
 * {inbox part, the id read after, legacy (1: the cursor's)[, room part]};
 * a part is {newest id ("" = no log), max-deleted id, 1 if the asked id
 * was newer than the log (then read from the start), entries, the oldest
 * entry's id ("" = none)}. */
static const char clog_login_lua[] =
    CLOG_LUA_LT
    "local function part(k, after, n) "
    "if redis.call('EXISTS', k) == 0 then return {'', '', 0, {}, ''} end "
    "local x = redis.call('XINFO', 'STREAM', k) "
    "local last, md, first = '', '', '' "
    "for i = 1, #x - 1, 2 do "
    "if x[i] == 'last-generated-id' then last = x[i + 1] "
    "elseif x[i] == 'max-deleted-entry-id' then md = x[i + 1] "
    "elseif x[i] == 'first-entry' and x[i + 1] then first = x[i + 1][1] end end "
    "local future = 0 "
    "if lt(last, after) then future = 1 after = '0-0' end "
    "return {last, md, future, redis.call('XRANGE', k, '(' .. after, '+', 'COUNT', n), first} end "
    "local after, legacy = ARGV[1], 0 "
    "if after == '' then after = redis.call('GET', KEYS[2]) or '0-0' legacy = 1 end "
    "local r = {part(KEYS[1], after, ARGV[3]), after, legacy} "
    "if ARGV[2] ~= '' and ARGV[4] ~= '0' then r[4] = part(KEYS[3], ARGV[2], ARGV[4]) end "
    "return r";

/* KEYS: cursor, inbox. ARGV: id, ttl. Forward only, never past the inbox. */
static const char clog_cursor_lua[] =
    CLOG_LUA_LT
    "local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1) "
    "if #top == 0 or lt(top[1][1], ARGV[1]) then return 0 end "
    "local c = redis.call('GET', KEYS[1]) "
    "if c and not lt(c, ARGV[1]) then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1";

/* KEYS: msgID key, in-flight key, cursor. ARGV: "1" if there is a msgID,
 * "1" to keep it (the send counts), msgID ttl, the id the cursor moves to
 * ("" = none), cursor ttl. The end of a send: route.c's msgID bookkeeping
 * and, when the message was pushed, the cursor (forward only). */
static const char clog_finish_lua[] =
    CLOG_LUA_LT
    "if ARGV[1] == '1' then "
    "if ARGV[2] == '1' then redis.call('EXPIRE', KEYS[1], ARGV[3]) redis.call('DEL', KEYS[2]) "
    "else redis.call('DEL', KEYS[1], KEYS[2]) end end "
    "if ARGV[4] ~= '' then local c = redis.call('GET', KEYS[3]) "
    "if not c or lt(c, ARGV[4]) then redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5]) end end "
    "return 1";

/* The scripts run by their SHA1 (EVALSHA: Redis neither receives nor
 * hashes the text again); the link loads them after every connect. */
enum { CLOG_SEND, CLOG_LOGIN, CLOG_CURSOR, CLOG_FINISH, CLOG_NSCRIPTS };
static struct {
    const char *name, *text;
    char sha[41];
} clog_scripts[CLOG_NSCRIPTS] = {
    [CLOG_SEND] = { "send", clog_send_lua, "" },
    [CLOG_LOGIN] = { "login", clog_login_lua, "" },
    [CLOG_CURSOR] = { "cursor", clog_cursor_lua, "" },
    [CLOG_FINISH] = { "finish", clog_finish_lua, "" },
};
static atomic_int clog_reloading;          /* a reload is posted to the link */

static int clog_on;                      /* clog_init: cluster mode with delivery.enabled */

int clog_enabled(void) { return clog_on; }

/* The key of a user's inbox or cursor (prefix), or of the room's history
 * (uidlen 0). Its length, or -1. */
static int clog_key(char *out, size_t cap, const char *prefix, uint32_t appid, const char *uid,
                    size_t uidlen)
{
    int n = uidlen ? snprintf(out, cap, "%s%u_%.*s", prefix, appid, (int)uidlen, uid)
                   : snprintf(out, cap, "%s%u", prefix, appid);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

static uint64_t clog_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The age limit of a log, in ms. */
static uint64_t clog_ttl_ms(int room) { return (uint64_t)(room ? g_node.cfg.roomHistoryTTL : g_node.cfg.inboxTTL) * 1000u; }

/* ---------- the scripts ---------- */

static int clog_sha1(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(text, strlen(text), md, &n, EVP_sha1(), NULL) || n != 20)
        return -1;
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static void clog_on_loaded(void *ud, const redisReply *r)
{
    const char *name = ud;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_error("cluster: Redis refused the delivery script '%s': %s", name, r->str);
}

/* The logs need Redis 7.0 (max-deleted-entry-id tells a resume about a
 * gap; exclusive ranges came in 6.2): say so loudly on an older one. */
static void clog_on_info(void *ud, const redisReply *r)
{
    (void)ud;
    const char *v = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "redis_version:") : NULL;
    int major = v ? atoi(v + 14) : 0;
    if (v && major < 7)
        log_error("cluster: Redis %.*s is older than 7.0: the delivery logs need 7.0 "
                  "(logins cannot read their replay, gaps go unseen); upgrade Redis or set "
                  "delivery.enabled: false", (int)strcspn(v + 14, "\r\n"), v + 14);
}

void clog_on_up(void)
{
    atomic_store(&clog_reloading, 0);
    const char *info[] = { "INFO", "server" };
    if (clog_on)
        (void)rlink_cmd(clog_on_info, NULL, 2, info, NULL);
    for (int i = 0; clog_on && i < CLOG_NSCRIPTS; i++) {
        const char *argv[] = { "SCRIPT", "LOAD", clog_scripts[i].text };
        (void)rlink_cmd(clog_on_loaded, (void *)clog_scripts[i].name, 3, argv, NULL);
    }
}

static void clog_reload_run(struct worker *w, task *t)
{
    (void)w;
    (void)t;
    clog_on_up();
}

/* A NOSCRIPT answer (Redis lost its script cache: SCRIPT FLUSH, or a
 * restart the link did not see): load them again (once at a time). */
void clog_check_noscript(const rlink_val *v)
{
    static task reload = { .run = clog_reload_run };
    if (v->type != REDIS_REPLY_ERROR || !v->str || strncmp(v->str, "NOSCRIPT", 8) != 0)
        return;
    if (atomic_exchange(&clog_reloading, 1) == 0) {
        log_warn("cluster: Redis lost the delivery scripts; loading them again");
        rlink_post(&reload);
    }
}

/* EVALSHA of script s with its keys and arguments in argv[3..]; argv[0..2]
 * are filled here. lens may be NULL. */
static void clog_evalsha(const char **argv, int s, const char *nkeys)
{
    argv[0] = "EVALSHA";
    argv[1] = clog_scripts[s].sha;
    argv[2] = nkeys;
}

/* ---------- sends ---------- */

int clog_send_add(struct rlink_query *q, int to_room, uint32_t appid, const char *uid,
                  size_t uidlen, const char *msgid, size_t msgidlen, const char *msg,
                  size_t msglen)
{
    char key[128], seq[300], flight[300], dttl[24], max[24], age[24], ttl[24], used[24];
    const config *c = &g_node.cfg;
    if ((to_room ? clog_key(key, sizeof(key), CLOG_ROOM_PREFIX, appid, "", 0)
                 : clog_key(key, sizeof(key), CLOG_INBOX_PREFIX, appid, uid, uidlen)) < 0)
        return -1;
    snprintf(seq, sizeof(seq), "acc:submit:again:seq:%.*s", (int)msgidlen, msgid);
    snprintf(flight, sizeof(flight), "acc:submit:inflight:%.*s", (int)msgidlen, msgid);
    snprintf(dttl, sizeof(dttl), "%d", c->rpcTimeout * 3 / 1000 + 10);
    snprintf(used, sizeof(used), "%d", c->dedupTtl);
    snprintf(max, sizeof(max), "%d", to_room ? c->roomHistoryMax : c->inboxMax);
    snprintf(age, sizeof(age), "%llu", (unsigned long long)clog_ttl_ms(to_room));
    snprintf(ttl, sizeof(ttl), "%d", to_room ? c->roomHistoryTTL : c->inboxTTL);
    const char *argv[] = { NULL, NULL, NULL, key, seq, flight, CLOG_CLOCK_KEY, "acc:hash:servers",
                           dttl, max, age, ttl, uid, msg, msgid, msgidlen ? "1" : "0", used };
    clog_evalsha(argv, CLOG_SEND, "5");
    size_t lens[17];
    for (int i = 0; i < 17; i++)
        lens[i] = strlen(argv[i]);
    lens[12] = uidlen;
    lens[13] = msglen;
    lens[14] = msgidlen;
    return rlink_query_add(q, 17, argv, lens);
}

int clog_send_reply(const rlink_val *v, dlog_id *id)
{
    clog_check_noscript(v);
    if (v->type != REDIS_REPLY_ARRAY || v->n != 2 || v->elem[0].type != REDIS_REPLY_INTEGER)
        return -1;
    long long st = v->elem[0].integer;
    if (st != 1)
        return st == 0 || st == 2 || st == 3 ? (int)st : -1;
    const rlink_val *s = &v->elem[1];
    if (!s->str || dlog_id_parse(s->str, s->len, id) != 0)
        return -1;
    return 1;
}

/* ---------- the pushed cursor ---------- */

void clog_cursor_move(uint32_t appid, const char *uid, size_t len, dlog_id id)
{
    char ckey[128], ikey[128], text[DLOG_ID_MAX], ttl[24];
    if (clog_key(ckey, sizeof(ckey), CLOG_CURSOR_PREFIX, appid, uid, len) < 0 ||
        clog_key(ikey, sizeof(ikey), CLOG_INBOX_PREFIX, appid, uid, len) < 0)
        return;
    dlog_id_format(id, text);
    snprintf(ttl, sizeof(ttl), "%d", g_node.cfg.inboxTTL);
    const char *argv[] = { NULL, NULL, NULL, ckey, ikey, text, ttl };
    clog_evalsha(argv, CLOG_CURSOR, "2");
    rlink_write(7, argv, NULL);
}

int clog_finish_add(struct rlink_query *q, const char *msgid, size_t msgidlen, int keep,
                    uint32_t appid, const char *uid, size_t uidlen, const dlog_id *pushed)
{
    char seq[300], flight[300], ckey[128], dttl[24], ttl[24], id[DLOG_ID_MAX] = "";
    snprintf(seq, sizeof(seq), "acc:submit:again:seq:%.*s", (int)msgidlen, msgid);
    snprintf(flight, sizeof(flight), "acc:submit:inflight:%.*s", (int)msgidlen, msgid);
    if (clog_key(ckey, sizeof(ckey), CLOG_CURSOR_PREFIX, appid, uid, uidlen) < 0)
        return -1;
    snprintf(dttl, sizeof(dttl), "%d", g_node.cfg.dedupTtl);
    snprintf(ttl, sizeof(ttl), "%d", g_node.cfg.inboxTTL);
    if (pushed)
        dlog_id_format(*pushed, id);
    const char *argv[] = { NULL, NULL, NULL, seq, flight, ckey, msgidlen ? "1" : "0",
                           keep ? "1" : "0", dttl, id, ttl };
    clog_evalsha(argv, CLOG_FINISH, "3");
    return rlink_query_add(q, 11, argv, NULL);
}

/* ---------- entries of a reply ---------- */

/* The entries of an XRANGE reply, parsed into a new array (views into v),
 * oldest first, without those older than the log's age limit (*aged says
 * if there were any). Returns the count; *out NULL when there are none or
 * on no memory (*failed). */
static size_t clog_entries(const rlink_val *v, int room, dlog_entry **out, int *aged, int *failed)
{
    *out = NULL;
    if (v->type != REDIS_REPLY_ARRAY || v->n == 0)
        return 0;
    dlog_entry *e = calloc(v->n, sizeof(*e));
    if (!e) {
        *failed = 1;
        return 0;
    }
    uint64_t now = clog_now_ms(), ttl = clog_ttl_ms(room);
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        const rlink_val *x = &v->elem[i];
        if (x->type != REDIS_REPLY_ARRAY || x->n != 2 || !x->elem[0].str ||
            dlog_id_parse(x->elem[0].str, x->elem[0].len, &e[n].id) != 0)
            continue;
        if (e[n].id.ms + ttl < now) {
            *aged = 1;
            continue;
        }
        e[n].time_ms = e[n].id.ms;
        e[n].from = e[n].msg = e[n].seq = "";
        const rlink_val *f = &x->elem[1];
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->n; k += 2) {
            const rlink_val *name = &f->elem[k], *val = &f->elem[k + 1];
            if (!name->str || !val->str)
                continue;
            if (strcmp(name->str, "from") == 0)
                e[n].from = val->str, e[n].fromlen = val->len;
            else if (strcmp(name->str, "msg") == 0)
                e[n].msg = val->str, e[n].msglen = val->len;
            else if (strcmp(name->str, "seq") == 0)
                e[n].seq = val->str, e[n].seqlen = val->len;
        }
        n++;
    }
    *out = e;
    return n;
}

/* ---------- logins (im/resume.h store) ---------- */

typedef struct clog_login {
    resume_found_fn fn;
    void *ud;
    uint32_t appid;
    uint8_t uidlen;
    char uid[PRESENCE_MAX_ID];
    int has_last, has_last_room;
    dlog_id last, last_room;
    int by_text;                   /* resent as EVAL after a NOSCRIPT */
} clog_login;

static int clog_login_send(clog_login *l);
static int clog_login_send_quick(clog_login *l);

/* One part of the login script's reply: its entries, the log's newest id
 * (*max, *has_max), and whether entries after `after` are missing (gap). */
typedef struct clog_part {
    dlog_entry *e;
    size_t n;
    dlog_id max;
    int has_max, gap;
} clog_part;

static void clog_part_read(const rlink_val *p, const dlog_id *after, int room, size_t count,
                           clog_part *out, int *failed)
{
    memset(out, 0, sizeof(*out));
    if (p->type != REDIS_REPLY_ARRAY || p->n != 5 || !p->elem[0].str || !p->elem[1].str ||
        !p->elem[4].str) {
        *failed = 1;
        return;
    }
    const rlink_val *last = &p->elem[0], *md = &p->elem[1];
    const rlink_val *first = &p->elem[4], *got = &p->elem[3];
    dlog_id del = { 0, 0 }, head;
    int aged = 0, asked = after->ms != 0 || after->seq != 0;
    if (last->len) {
        out->has_max = dlog_id_parse(last->str, last->len, &out->max) == 0;
        if (md->len && dlog_id_parse(md->str, md->len, &del) != 0)
            del = (dlog_id){ 0, 0 };
        /* an entry after `after` was deleted by retention; or nothing was
         * ever deleted from this stream, yet `after` is older than its
         * first entry: an earlier stream of this key expired with entries
         * the client had not seen */
        out->gap = dlog_id_cmp(del, *after) > 0 ||
                   (asked && del.ms == 0 && del.seq == 0 && first->len &&
                    dlog_id_parse(first->str, first->len, &head) == 0 && dlog_id_cmp(*after, head) < 0);
    } else {                                       /* no log: gone, unless nothing was asked */
        out->gap = asked;
    }
    out->gap |= p->elem[2].type == REDIS_REPLY_INTEGER && p->elem[2].integer == 1;
    out->n = clog_entries(got, room, &out->e, &aged, failed);
    out->gap |= aged;
    /* a read cut by COUNT replayed up to its last entry only */
    if (count && got->type == REDIS_REPLY_ARRAY && got->n >= count) {
        const rlink_val *x = &got->elem[got->n - 1];
        out->has_max = x->type == REDIS_REPLY_ARRAY && x->n == 2 && x->elem[0].str &&
                       dlog_id_parse(x->elem[0].str, x->elem[0].len, &out->max) == 0;
    }
}

static void clog_on_login(void *ud, int ok, rlink_val *rep, int n)
{
    clog_login *l = ud;
    resume_found f = { 0 };
    clog_part in = { 0 }, rm = { 0 };
    int failed = !ok || n != 1 || rep[0].type != REDIS_REPLY_ARRAY || rep[0].n < 3;
    if (ok && n == 1 && rep[0].type == REDIS_REPLY_ERROR) {
        clog_check_noscript(&rep[0]);
        /* Redis lost the script: read again with its text, the login
         * waits (its presence is already written: a later read only sees
         * more, and the gate drops what the replay then has) */
        if (!l->by_text && rep[0].str && strncmp(rep[0].str, "NOSCRIPT", 8) == 0) {
            l->by_text = 1;
            if (clog_login_send(l) == 0)
                return;
        }
        log_warn("cluster: reading a login's replay failed: %s", rep[0].str);
    }
    dlog_id after = { 0, 0 };
    if (!failed) {
        const rlink_val *r = &rep[0];
        int legacy = r->elem[2].type == REDIS_REPLY_INTEGER && r->elem[2].integer == 1;
        if (!r->elem[1].str || dlog_id_parse(r->elem[1].str, r->elem[1].len, &after) != 0)
            failed = 1;
        else
            clog_part_read(&r->elem[0], &after, 0, (size_t)g_node.cfg.inboxMax, &in, &failed);
        if (legacy)
            in.gap = 0;                            /* a legacy client cannot be told */
        if (!failed && l->has_last_room && r->n >= 4)
            clog_part_read(&r->elem[3], &l->last_room, 1, (size_t)g_node.cfg.roomHistoryMax, &rm, &failed);
    }
    if (!failed) {
        f.ok = 1;
        f.inbox = in.e, f.ninbox = in.n;
        f.room = rm.e, f.nroom = rm.n;
        f.gap = in.gap || rm.gap;
        f.inbox_max = in.has_max ? &in.max : NULL;
        f.room_max = rm.has_max ? &rm.max : NULL;
    }
    l->fn(l->ud, &f);
    free(in.e);
    free(rm.e);
    free(l);
}

/* The user's inbox and cursor keys: 0, or -1 if they do not fit. */
static int clog_login_keys(const clog_login *l, char ikey[128], char ckey[128])
{
    return clog_key(ikey, 128, CLOG_INBOX_PREFIX, l->appid, l->uid, l->uidlen) < 0 ||
           clog_key(ckey, 128, CLOG_CURSOR_PREFIX, l->appid, l->uid, l->uidlen) < 0 ? -1 : 0;
}

/* Submits a login's read query, which waits for the link if a node just
 * (re)started; or cancels it (bad). 0, or -1. */
static int clog_login_submit(rlink_query *q, int bad)
{
    if (bad) {
        if (q)
            rlink_query_cancel(q);
        return -1;
    }
    rlink_query_submit_wait(q);
    return 0;
}

/* Submits l's read (EVALSHA, or EVAL once Redis said NOSCRIPT). 0, or -1
 * (l is not freed). */
static int clog_login_send(clog_login *l)
{
    char ikey[128], ckey[128], rkey[128], last[DLOG_ID_MAX] = "", lroom[DLOG_ID_MAX] = "";
    char nin[24], nroom[24];
    rlink_query *q = rlink_query_new(1, clog_on_login, l);
    if (!q || clog_login_keys(l, ikey, ckey) != 0 ||
        clog_key(rkey, sizeof(rkey), CLOG_ROOM_PREFIX, l->appid, "", 0) < 0)
        return clog_login_submit(q, 1);
    if (l->has_last)
        dlog_id_format(l->last, last);
    if (l->has_last_room)
        dlog_id_format(l->last_room, lroom);
    snprintf(nin, sizeof(nin), "%d", g_node.cfg.inboxMax);
    snprintf(nroom, sizeof(nroom), "%d", g_node.cfg.roomHistoryMax);
    const char *argv[] = { NULL, NULL, NULL, ikey, ckey, rkey, last, lroom, nin, nroom };
    clog_evalsha(argv, CLOG_LOGIN, "3");
    if (l->by_text) {
        argv[0] = "EVAL";
        argv[1] = clog_scripts[CLOG_LOGIN].text;
    }
    return clog_login_submit(q, rlink_query_add(q, 10, argv, NULL) != 0);
}

/* ---------- a legacy login with nothing to replay: no script ---------- */

/* The stream's last-generated-id from an XINFO STREAM reply: 1 (with *id),
 * 0 if the stream does not exist, -1 if the reply says neither. */
static int clog_xinfo_last(const rlink_val *v, dlog_id *id)
{
    if (v->type == REDIS_REPLY_ERROR)
        return v->str && strcmp(v->str, "ERR no such key") == 0 ? 0 : -1;
    if (v->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const rlink_val *k = &v->elem[i], *x = &v->elem[i + 1];
        if (k->str && k->len == 17 && memcmp(k->str, "last-generated-id", 17) == 0)
            return x->str && dlog_id_parse(x->str, x->len, id) == 0 ? 1 : -1;
    }
    return -1;
}

/* Replies: GET cursor, XINFO STREAM inbox (read in that order, after the
 * login's presence join like the script). No inbox, or an inbox whose
 * newest id is the cursor (everything was pushed): the replay is empty and
 * the log's newest id is known — what the script would answer, for one
 * GET and one XINFO instead of a Lua run (most logins of legacy clients).
 * Else (entries after the cursor, a cursor ahead of a log that was made
 * anew, anything odd) the script reads it: a later read only sees more. */
static void clog_on_login_quick(void *ud, int ok, rlink_val *rep, int n)
{
    clog_login *l = ud;
    resume_found f = { 0 };
    dlog_id cursor = { 0, 0 }, last;
    int has_log = -1;
    if (ok && n == 2 && (rep[0].type == REDIS_REPLY_NIL ||
                         (rep[0].str && dlog_id_parse(rep[0].str, rep[0].len, &cursor) == 0)))
        has_log = clog_xinfo_last(&rep[1], &last);
    if (ok && (has_log < 0 || (has_log == 1 && dlog_id_cmp(last, cursor) != 0))) {
        if (clog_login_send(l) == 0)
            return;
        ok = 0;                                  /* no memory: served without a replay */
    }
    if (ok) {
        f.ok = 1;
        f.inbox_max = has_log == 1 ? &last : NULL;
    }
    l->fn(l->ud, &f);
    free(l);
}

static int clog_login_send_quick(clog_login *l)
{
    char ikey[128], ckey[128];
    rlink_query *q = rlink_query_new(2, clog_on_login_quick, l);
    if (!q || clog_login_keys(l, ikey, ckey) != 0)
        return clog_login_submit(q, 1);
    const char *get[] = { "GET", ckey };
    const char *xinfo[] = { "XINFO", "STREAM", ikey };
    return clog_login_submit(q, rlink_query_add(q, 2, get, NULL) != 0 ||
                                    rlink_query_add(q, 3, xinfo, NULL) != 0);
}

static int clog_login_read(const resume_req *q, resume_found_fn fn, void *ud)
{
    clog_login *l = q->uidlen < PRESENCE_MAX_ID ? mem_zalloc(sizeof(*l)) : NULL;
    if (!l)
        return -1;
    l->fn = fn;
    l->ud = ud;
    l->appid = q->appid;
    l->uidlen = (uint8_t)q->uidlen;
    memcpy(l->uid, q->uid, q->uidlen);
    l->has_last = q->has_last;
    l->last = q->last;
    l->has_last_room = q->has_last_room;
    l->last_room = q->last_room;
    /* a legacy login (no lastID, no lastRoomID) tries without the script */
    if ((l->has_last || l->has_last_room ? clog_login_send(l) : clog_login_send_quick(l)) != 0) {
        free(l);
        return -1;
    }
    return 0;
}

void clog_init(void)
{
    /* late duplicates: a push routed while the replay was read comes at
     * most one Redis answer (the sender's) and one gRPC deadline after it */
    static resume_store store = { .read = clog_login_read, .cursor = clog_cursor_move };
    clog_on = g_node.cfg.deliveryEnabled;
    if (!clog_on)
        return;
    for (int i = 0; i < CLOG_NSCRIPTS; i++)
        if (clog_sha1(clog_scripts[i].text, clog_scripts[i].sha) != 0)
            log_error("cluster: cannot hash the delivery script '%s'", clog_scripts[i].name);
    store.keep_ms = (uint32_t)g_node.cfg.redisTimeout + (uint32_t)g_node.cfg.rpcTimeout + 1000u;
    resume_set_store(&store);
}

/* ---------- /user/history ---------- */

typedef struct clog_hist {
    clog_history_fn fn;
    void *ud;
    int room;
    size_t limit;
} clog_hist;

static void clog_on_history(void *ud, int ok, rlink_val *rep, int n)
{
    clog_hist *h = ud;
    dlog_entry *e = NULL;
    int aged = 0, failed = 0;
    size_t cnt = ok && n == 1 ? clog_entries(&rep[0], h->room, &e, &aged, &failed) : 0;
    int good = ok && n == 1 && rep[0].type != REDIS_REPLY_ERROR && !failed;
    h->fn(h->ud, good, e, cnt > h->limit ? h->limit : cnt, cnt > h->limit);
    free(e);
    free(h);
}

int clog_history(uint32_t appid, const char *uid, size_t uidlen, const dlog_id *after,
                 size_t limit, clog_history_fn fn, void *ud)
{
    char key[128], from[DLOG_ID_MAX + 1] = "-", count[24];
    clog_hist *h = calloc(1, sizeof(*h));
    rlink_query *q = h ? rlink_query_new(1, clog_on_history, h) : NULL;
    int bad = !q || (uidlen ? clog_key(key, sizeof(key), CLOG_INBOX_PREFIX, appid, uid, uidlen)
                            : clog_key(key, sizeof(key), CLOG_ROOM_PREFIX, appid, "", 0)) < 0;
    /* entries past the age limit may still lead the stream (retention
     * deletes a few per append): start after them, or after `after` */
    uint64_t now = clog_now_ms(), ttl = clog_ttl_ms(uidlen == 0);
    dlog_id young = { now > ttl ? now - ttl : 0, 0 };
    if (!bad && after && dlog_id_cmp(*after, young) >= 0) {
        from[0] = '(';
        dlog_id_format(*after, from + 1);
    } else if (!bad && young.ms) {
        dlog_id_format(young, from);
    }
    snprintf(count, sizeof(count), "%zu", limit + 1);
    const char *argv[] = { "XRANGE", key, from, "+", "COUNT", count };
    if (bad || rlink_query_add(q, 6, argv, NULL) != 0) {
        if (q)
            rlink_query_cancel(q);
        free(h);
        return -1;
    }
    h->fn = fn;
    h->ud = ud;
    h->room = uidlen == 0;
    h->limit = limit;
    rlink_query_submit(q);
    return 0;
}
