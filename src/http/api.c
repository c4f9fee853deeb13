/* api.c — HTTP API handlers (see api.h). Sends encode the push frame once
 * and hand it to the hub; the answer waits for the hub's delivery count. */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include "cluster/clog.h"
#include "cluster/cluster.h"
#include "cluster/cstate.h"
#include "cluster/kick.h"
#include "cluster/rlink.h"
#include "cluster/route.h"
#include "cluster/rpc.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/node.h"
#include "http/http_conn.h"
#include "http/params.h"
#include "im/auth.h"
#include "im/codes.h"
#include "im/dedup.h"
#include "im/dlog.h"
#include "im/hub.h"
#include "im/presence.h"
#include "im/proto.h"
#include "net/conn.h"
#include "net/tls.h"
#include "net/worker.h"
#include "web/web.h"
#include "ws/deflate.h"
#include "ws/session.h"
#include "ws/utf8.h"

#define API_JSON "application/json; charset=utf-8"
#define API_ID_MAX 256                 /* userID / msgID parameter buffer */

typedef struct api_ctx {
    struct conn *c;
    http_req *r;
    params p;
    const char *path;
    size_t plen;
} api_ctx;

/* ---------- answers ---------- */

static void api_answer(struct conn *c, jsonw *w)
{
    size_t len;
    const char *text = jsonw_text(w, &len);
    if (text)
        http_conn_respond(c, 200, API_JSON, text, len);
    else
        http_conn_respond(c, 500, "text/plain", "out of memory\n", 14);
    jsonw_free(w);
}

/* Starts {"code":..,"msg":..,"data": — the caller writes data and "}". */
static void api_begin(jsonw *w, int code, const char *msg)
{
    jsonw_init(w, 0);
    jsonw_lit(w, "{\"code\":");
    jsonw_int(w, code);
    jsonw_lit(w, ",\"msg\":");
    jsonw_cstr(w, msg ? msg : im_code_msg(code));
    jsonw_lit(w, ",\"data\":");
}

static void api_error(struct conn *c, int code, const char *detail)
{
    char msg[192];
    snprintf(msg, sizeof(msg), "%s%s%s", im_code_msg(code), detail ? ": " : "", detail ? detail : "");
    jsonw w;
    api_begin(&w, code, msg);
    jsonw_lit(&w, "{}}");
    api_answer(c, &w);
}

/* ---------- parameters ---------- */

/* A required appID: digits only. Returns 0, or answers 1001 and -1. */
static int api_appid(api_ctx *x, uint32_t *appid)
{
    char v[32];
    size_t n;
    int r = params_get(&x->p, "appID", v, sizeof(v), &n);
    if (r == 0) {
        api_error(x->c, IM_PARAM_ILLEGAL, "appID is required");
        return -1;
    }
    if (r < 0 || proto_parse_appid(v, n, appid) != 0) {
        api_error(x->c, IM_PARAM_ILLEGAL, "appID must be a non-negative integer");
        return -1;
    }
    return 0;
}

/* A string parameter; `required` answers 1001 when it is missing. */
static int api_str(api_ctx *x, const char *name, int required, char *out, size_t cap, size_t *n)
{
    char why[96];
    int r = params_get(&x->p, name, out, cap, n);
    if (r == 1 && utf8_validate(UTF8_ACCEPT, (const uint8_t *)out, *n) != UTF8_ACCEPT) {
        /* pushed as-is into text frames: invalid UTF-8 would make every
         * recipient's client fail the connection (1007) */
        snprintf(why, sizeof(why), "%s is not valid UTF-8", name);
        api_error(x->c, IM_PARAM_ILLEGAL, why);
        return -1;
    }
    if (r == 1)
        return 0;
    if (r == 0 && !required) {
        out[0] = '\0';
        *n = 0;
        return 0;
    }
    snprintf(why, sizeof(why), r == 0 ? "%s is required" : "%s is too long or not a string", name);
    api_error(x->c, IM_PARAM_ILLEGAL, why);
    return -1;
}

/* ---------- /user/list, /user/online ---------- */

/* Collects users [offset, offset + limit) of the room; counts them all. */
typedef struct api_list {
    jsonw *w;
    long n;                        /* users seen */
    long offset, limit;            /* limit < 0: no limit */
    long listed;
} api_list;

static void api_list_one(const pres_entry *e, void *ud)
{
    api_list *l = ud;
    long i = l->n++;
    if (i < l->offset || (l->limit >= 0 && l->listed >= l->limit))
        return;
    if (l->listed++)
        jsonw_raw(l->w, ",", 1);
    jsonw_str(l->w, e->id, e->idlen);
}

/* An optional integer parameter, at least `min` (0 or 1); answers 1001
 * if malformed or smaller. */
static int api_count(api_ctx *x, const char *name, long min, long *out)
{
    char v[24], why[64];
    size_t n;
    uint32_t u;
    int r = params_get(&x->p, name, v, sizeof(v), &n);
    if (r == 0)
        return 0;
    if (r < 0 || proto_parse_appid(v, n, &u) != 0 || (long)u < min) {
        snprintf(why, sizeof(why), "%s must be a %s integer", name,
                 min > 0 ? "positive" : "non-negative");
        api_error(x->c, IM_PARAM_ILLEGAL, why);
        return -1;
    }
    *out = u;
    return 0;
}

/* The answer of /user/list from the page's items (l->w) and counts. */
static void api_list_answer(struct conn *c, api_list *l)
{
    size_t len;
    const char *items = jsonw_text(l->w, &len);
    jsonw w;
    api_begin(&w, IM_OK, NULL);
    jsonw_lit(&w, "{\"userCount\":");
    jsonw_int(&w, l->n);
    jsonw_lit(&w, ",\"userList\":[");
    if (items)
        jsonw_raw(&w, items, len);
    jsonw_lit(&w, "]");
    if (l->offset + l->listed < l->n) {
        jsonw_lit(&w, ",\"nextOffset\":");
        jsonw_int(&w, l->offset + l->listed);
    }
    jsonw_lit(&w, "}}");
    api_answer(c, &w);
}

/* Cluster mode: the merged list of every node (cluster/route.h). */
typedef struct api_list_wait {
    struct conn *c;
    api_list l;
} api_list_wait;

static void api_list_merged(void *ud, int code, const char *why, const char *const *names,
                            const size_t *lens, size_t count)
{
    api_list_wait *q = ud;
    if (code != IM_OK) {
        api_error(q->c, code, why);
    } else {
        jsonw list;
        jsonw_init(&list, 0);
        q->l.w = &list;
        for (size_t i = 0; i < count; i++) {
            long k = q->l.n++;
            if (k < q->l.offset || (q->l.limit >= 0 && q->l.listed >= q->l.limit))
                continue;
            if (q->l.listed++)
                jsonw_raw(&list, ",", 1);
            jsonw_str(&list, names[i], lens[i]);
        }
        api_list_answer(q->c, &q->l);
        jsonw_free(&list);
    }
    free(q);
}

/* userCount is the room's size; userList holds at most app.maxListUsers
 * names (or `limit`), from `offset`; "nextOffset" says where to go on. */
static void api_user_list(api_ctx *x)
{
    uint32_t appid;
    long max = g_node.cfg.maxListUsers;
    api_list l = { .offset = 0, .limit = max > 0 ? max : -1 };
    long limit = -1;
    if (api_appid(x, &appid) != 0 || api_count(x, "offset", 0, &l.offset) != 0 ||
        api_count(x, "limit", 1, &limit) != 0)   /* limit 0 would page forever */
        return;
    if (limit >= 0 && (l.limit < 0 || limit < l.limit))
        l.limit = limit;
    if (cluster_enabled()) {
        api_list_wait *q = malloc(sizeof(*q));
        if (!q) {
            api_error(x->c, IM_SERVER_ERROR, "out of memory");
            return;
        }
        q->c = x->c;
        q->l = l;
        http_conn_defer(x->c);
        if (route_list(appid, api_list_merged, q) != 0)
            api_list_merged(q, IM_SERVER_ERROR, "out of memory", NULL, NULL, 0);
        return;
    }
    jsonw list;
    jsonw_init(&list, 0);
    l.w = &list;
    presence_each(appid, api_list_one, &l);
    api_list_answer(x->c, &l);
    jsonw_free(&list);
}

/* ---------- /user/history ---------- */

#define API_HISTORY_LIMIT 100       /* entries per page unless limit says fewer */
#define API_HISTORY_MAX 1000

typedef struct api_history {
    jsonw *w;
    long n, limit;
    dlog_id last;                  /* the newest entry listed */
    int more;                      /* an entry beyond the page exists */
} api_history;

static int api_history_one(const dlog_entry *e, void *ud)
{
    api_history *h = ud;
    char id[DLOG_ID_MAX];
    if (h->n == h->limit) {
        h->more = 1;
        return 1;
    }
    jsonw_lit(h->w, h->n++ ? ",{\"id\":" : "{\"id\":");
    jsonw_str(h->w, id, dlog_id_format(e->id, id));
    jsonw_lit(h->w, ",\"from\":");
    jsonw_str(h->w, e->from, e->fromlen);
    jsonw_lit(h->w, ",\"msg\":");
    jsonw_str(h->w, e->msg, e->msglen);
    jsonw_lit(h->w, ",\"type\":\"text\",\"time\":");
    jsonw_uint(h->w, e->time_ms);
    jsonw_lit(h->w, "}");
    h->last = e->id;
    return 0;
}

static void api_history_answer(struct conn *c, jsonw *items, const api_history *h)
{
    size_t len;
    const char *text = jsonw_text(items, &len);
    jsonw w;
    api_begin(&w, IM_OK, NULL);
    jsonw_lit(&w, "{\"messages\":[");
    jsonw_raw(&w, text ? text : "", text ? len : 0);
    jsonw_lit(&w, "]");
    if (h->more) {
        char id[DLOG_ID_MAX];
        jsonw_lit(&w, ",\"nextID\":");
        jsonw_str(&w, id, dlog_id_format(h->last, id));
    }
    jsonw_lit(&w, "}}");
    api_answer(c, &w);
}

/* Cluster mode: the streams in Redis (cluster/clog.h). */
static void api_history_routed(void *ud, int ok, const dlog_entry *e, size_t n, int more)
{
    struct conn *c = ud;
    if (!ok) {
        api_error(c, IM_SERVER_ERROR, "Redis is unavailable; the history cannot be read");
        return;
    }
    jsonw items;
    jsonw_init(&items, 0);
    api_history h = { .w = &items, .limit = (long)n };
    for (size_t i = 0; i < n; i++)
        api_history_one(&e[i], &h);
    h.more = more;
    api_history_answer(c, &items, &h);
    jsonw_free(&items);
}

static void api_history_cluster(struct conn *c, uint32_t appid, const char *uid, size_t ulen,
                                const dlog_id *after, long limit)
{
    http_conn_defer(c);
    if (clog_history(appid, uid, ulen, after, (size_t)limit, api_history_routed, c) != 0)
        api_history_routed(c, 0, NULL, 0, 0);
}

/* A user's inbox (userID given) or the room's history (userID empty),
 * oldest first, after an id, paged by limit with nextID (SPEC 7.1). */
static void api_user_history(api_ctx *x)
{
    uint32_t appid;
    char uid[API_ID_MAX], after[DLOG_ID_MAX + 8];
    size_t ulen, alen;
    long limit = API_HISTORY_LIMIT;
    dlog_id from;
    if (api_appid(x, &appid) != 0 || api_str(x, "userID", 0, uid, sizeof(uid), &ulen) != 0 ||
        api_str(x, "after", 0, after, sizeof(after), &alen) != 0 || api_count(x, "limit", 1, &limit) != 0)
        return;
    if (alen && dlog_id_parse(after, alen, &from) != 0) {
        api_error(x->c, IM_PARAM_ILLEGAL, "after must be an entry id such as 1733300000000-0");
        return;
    }
    if (!g_node.cfg.deliveryEnabled) {
        api_error(x->c, IM_OPERATION_FAILURE, "no history: delivery logging is off on this node");
        return;
    }
    limit = limit < API_HISTORY_MAX ? limit : API_HISTORY_MAX;
    if (cluster_enabled()) {
        api_history_cluster(x->c, appid, uid, ulen, alen ? &from : NULL, limit);
        return;
    }
    jsonw items;
    jsonw_init(&items, 0);
    api_history h = { .w = &items, .limit = limit };
    dlog_key k = { appid, uid, ulen };
    int gap;
    dlog_lock(&k);
    dlog_read_locked(&k, alen ? &from : NULL, 0, api_history_one, &h, &gap);
    dlog_unlock(&k);
    api_history_answer(x->c, &items, &h);
    jsonw_free(&items);
}

static void api_online_answer(struct conn *c, const char *uid, size_t ulen, int on)
{
    jsonw w;
    api_begin(&w, IM_OK, NULL);
    jsonw_lit(&w, "{\"userID\":");
    jsonw_str(&w, uid, ulen);
    jsonw_lit(&w, on ? ",\"online\":true}}" : ",\"online\":false}}");
    api_answer(c, &w);
}

/* Cluster mode: the presence records in Redis (cluster/route.h). */
typedef struct api_online_wait {
    struct conn *c;
    size_t ulen;
    char uid[];
} api_online_wait;

static void api_online_routed(void *ud, int code, const char *why, int online)
{
    api_online_wait *q = ud;
    if (code != IM_OK)
        api_error(q->c, code, why);
    else
        api_online_answer(q->c, q->uid, q->ulen, online);
    free(q);
}

static void api_user_online(api_ctx *x)
{
    uint32_t appid;
    char uid[API_ID_MAX];
    size_t ulen;
    if (api_appid(x, &appid) != 0 || api_str(x, "userID", 1, uid, sizeof(uid), &ulen) != 0)
        return;
    if (cluster_enabled() && ulen > 0 && ulen < PRESENCE_MAX_ID) {
        api_online_wait *q = malloc(sizeof(*q) + ulen + 1);
        if (!q) {
            api_error(x->c, IM_SERVER_ERROR, "out of memory");
            return;
        }
        q->c = x->c;
        q->ulen = ulen;
        memcpy(q->uid, uid, ulen + 1);
        http_conn_defer(x->c);
        if (route_online(appid, uid, ulen, api_online_routed, q) != 0)
            api_online_routed(q, IM_SERVER_ERROR, "out of memory", 0);
        return;
    }
    uint32_t now = (uint32_t)time(NULL);
    int on = 0;
    if (appid != 0)
        on = presence_online(appid, uid, ulen, now);
    for (int i = 0; appid == 0 && !on && i < g_node.cfg.appIDCount; i++)  /* any platform */
        on = presence_online(g_node.cfg.appIDs[i], uid, ulen, now);
    api_online_answer(x->c, uid, ulen, on);
}

/* ---------- sends ---------- */

typedef struct api_pending {
    struct conn *c;
    int to_room;
    int stored;                    /* in the user's inbox: pushed at the next login */
    dedup_ticket ticket;           /* the msgID's reservation */
} api_pending;

static void api_send_done(void *ud, long delivered)
{
    api_pending *s = ud;
    int ok = s->to_room || delivered > 0;
    if (ok || s->stored)
        dedup_commit(&s->ticket, (uint32_t)time(NULL));
    else
        dedup_release(&s->ticket);               /* a retry must go out */
    jsonw w;
    api_begin(&w, IM_OK, NULL);
    jsonw_lit(&w, ok ? "{\"sendResults\":true}}"
                : s->stored ? "{\"sendResults\":false,\"stored\":true}}" : "{\"sendResults\":false}}");
    api_answer(s->c, &w);
    free(s);
}

/* Cluster mode: cluster-wide de-dup and routing (cluster/route.h). */
static void api_send_routed(void *ud, int code, const char *why, int dup, int sent, int stored)
{
    struct conn *c = ud;
    jsonw w;
    if (code != IM_OK) {
        api_error(c, code, why);
        return;
    }
    api_begin(&w, IM_OK, NULL);
    jsonw_lit(&w, dup ? "{}}" : sent ? "{\"sendResults\":true}}"
                : stored ? "{\"sendResults\":false,\"stored\":true}}" : "{\"sendResults\":false}}");
    api_answer(c, &w);
}

static void api_send_cluster(api_ctx *x, const route_send_args *a)
{
    http_conn_defer(x->c);
    if (!a->to_room && (a->uidlen == 0 || a->uidlen >= PRESENCE_MAX_ID))
        api_send_routed(x->c, IM_OK, NULL, 0, 0, 0);   /* no such user can be online */
    else if (route_send(a, api_send_routed, x->c) != 0)
        api_send_routed(x->c, IM_SERVER_ERROR, "out of memory", 0, 0, 0);
}

/* The answer when dedup_reserve did not reserve the msgID. */
static void api_send_not_new(struct conn *c, int found)
{
    if (found == DEDUP_NOMEM) {
        api_error(c, IM_SERVER_ERROR, "out of memory");
    } else if (found == DEDUP_IN_FLIGHT) {
        api_error(c, IM_OPERATION_FAILURE,
                  "a send with this msgID is in progress; retry when it has answered");
    } else if (found == DEDUP_FULL) {
        api_error(c, IM_OPERATION_FAILURE,
                  "too many sends in progress (im.dedupMaxBytes); retry when they have answered");
    } else {
        jsonw w;                                  /* a duplicate: a no-op */
        api_begin(&w, IM_OK, NULL);
        jsonw_lit(&w, "{}}");
        api_answer(c, &w);
    }
}

/* A push frame that no connection could ever take (app.maxOutboundBytes):
 * refused before anything is sent, so nobody gets part of it. */
static int api_frame_refused(api_ctx *x, const sbuf *frame)
{
    char why[160];
    size_t id_field = g_node.cfg.deliveryEnabled ? DLOG_ID_MAX + 8 : 0;   /* ,"id":"..." of a logged push */
    if (ws_session_frame_fits(frame->len + id_field))
        return 0;
    snprintf(why, sizeof(why), "message is too large: its push frame is %zu bytes, over "
             "app.maxOutboundBytes (%zu)", (size_t)frame->len, g_node.cfg.maxOutboundBytes);
    api_error(x->c, IM_PARAM_ILLEGAL, why);
    return 1;
}

/* What a send carries, for the logged path. */
typedef struct api_send_text {
    uint32_t appid;
    const char *uid;
    size_t ulen;
    const char *msgid;
    size_t mlen;
    const char *msg;
    size_t msglen;
} api_send_text;

/* Embedded mode with delivery.enabled: the message goes into the user's
 * inbox (or the room's history) and out to the workers under the log's
 * lock, so that a login's replay is ordered with it (im/resume.h). A user
 * message that reaches nobody is stored: pushed at the next login. */
static int api_send_logged(api_pending *s, const api_send_text *t)
{
    dlog_key k = { t->appid, s->to_room ? "" : t->uid, s->to_room ? 0 : t->ulen };
    size_t except = t->ulen < PRESENCE_MAX_ID ? t->ulen : 0;
    dlog_id id;
    int r = -1;
    dlog_lock(&k);
    if (dlog_append_locked(&k, t->msgid, t->mlen, t->uid, t->ulen, t->msg, t->msglen, &id) == 0) {
        sbuf *f = hub_push_frame_id(t->msgid, t->mlen, "msg", t->msg, t->msglen, t->uid, t->ulen, &id);
        s->stored = !s->to_room;
        if (f)
            r = s->to_room ? hub_send_room(t->appid, t->uid, except, f, api_send_done, s)
                           : hub_send_user_logged(t->appid, t->uid, t->ulen, f, &id, api_send_done, s);
        sbuf_unref(f);
    }
    dlog_unlock(&k);
    return r;
}

static void api_send(api_ctx *x, int to_room)
{
    uint32_t appid;
    char uid[API_ID_MAX], msgid[API_ID_MAX];
    size_t ulen, mlen, msglen;
    size_t cap = x->r->body_len + x->r->url_len + 1;
    char *msg = malloc(cap);
    if (!msg) {
        api_error(x->c, IM_SERVER_ERROR, "out of memory");
        return;
    }
    if (api_appid(x, &appid) != 0 ||
        api_str(x, "userID", !to_room, uid, sizeof(uid), &ulen) != 0 ||
        api_str(x, "msgID", 0, msgid, sizeof(msgid), &mlen) != 0 ||
        api_str(x, "message", 1, msg, cap, &msglen) != 0) {
        free(msg);
        return;
    }
    if (cluster_enabled()) {
        sbuf *frame = hub_push_frame(msgid, mlen, "msg", msg, msglen, uid, ulen);
        route_send_args a = { .to_room = to_room, .appid = appid, .uid = uid, .uidlen = ulen,
                              .msgid = msgid, .msgidlen = mlen, .msg = msg, .msglen = msglen,
                              .frame = frame };
        if (!frame)
            api_error(x->c, IM_SERVER_ERROR, "out of memory");
        else if (!api_frame_refused(x, frame))
            api_send_cluster(x, &a);
        if (frame)
            sbuf_unref(frame);
        free(msg);
        return;
    }
    dedup_ticket ticket;
    int fresh = dedup_reserve(msgid, mlen, (uint32_t)time(NULL), &ticket);
    if (fresh != DEDUP_NEW) {
        free(msg);
        api_send_not_new(x->c, fresh);
        return;
    }
    api_pending *s = calloc(1, sizeof(*s));
    sbuf *frame = s ? hub_push_frame(msgid, mlen, "msg", msg, msglen, uid, ulen) : NULL;
    if (!frame || api_frame_refused(x, frame)) {
        free(s);
        free(msg);
        dedup_release(&ticket);
        if (!frame)
            api_error(x->c, IM_SERVER_ERROR, "out of memory");
        else
            sbuf_unref(frame);
        return;
    }
    s->c = x->c;
    s->to_room = to_room;
    s->ticket = ticket;
    http_conn_defer(x->c);
    int r = 0;
    if (dlog_enabled() && (to_room || (ulen && ulen < PRESENCE_MAX_ID))) {
        api_send_text t = { appid, uid, ulen, msgid, mlen, msg, msglen };
        r = api_send_logged(s, &t);
    } else if (to_room)                            /* an impossible sender excludes nobody */
        r = hub_send_room(appid, uid, ulen < PRESENCE_MAX_ID ? ulen : 0, frame, api_send_done, s);
    else if (ulen == 0 || ulen >= PRESENCE_MAX_ID)
        api_send_done(s, 0);                       /* no such user can be online */
    else
        r = hub_send_user(appid, uid, ulen, frame, api_send_done, s);
    sbuf_unref(frame);
    free(msg);
    if (r != 0) {
        s->to_room = 0;
        api_send_done(s, 0);
    }
}

static void api_send_message(api_ctx *x) { api_send(x, 0); }
static void api_send_message_all(api_ctx *x) { api_send(x, 1); }

/* ---------- /system/state and /metrics ---------- */

typedef struct api_totals {
    long conns, http_conns, ws, logged_in, out_bytes, http_out_bytes, out_queues, msgs_in, frames_out;
    long slow_closed, rate_closed, handshake_timeouts, ws_writes, ws_write_bytes, room_pending;
    long ring_on, ring_writes, ring_submits;
} api_totals;

static void api_sum(api_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < workers_count(); i++) {
        worker_stats *s = &worker_at(i)->stats;
        t->conns += atomic_load_explicit(&s->conns, memory_order_relaxed);
        t->ws += atomic_load_explicit(&s->ws_conns, memory_order_relaxed);
        t->logged_in += atomic_load_explicit(&s->logged_in, memory_order_relaxed);
        t->out_bytes += atomic_load_explicit(&s->out_bytes, memory_order_relaxed);
        t->http_out_bytes += atomic_load_explicit(&s->http_out_bytes, memory_order_relaxed);
        t->http_conns += atomic_load_explicit(&s->http_conns, memory_order_relaxed);
        t->out_queues += atomic_load_explicit(&s->out_queues, memory_order_relaxed);
        t->msgs_in += atomic_load_explicit(&s->msgs_in, memory_order_relaxed);
        t->frames_out += atomic_load_explicit(&s->frames_out, memory_order_relaxed);
        t->slow_closed += atomic_load_explicit(&s->slow_closed, memory_order_relaxed);
        t->rate_closed += atomic_load_explicit(&s->rate_closed, memory_order_relaxed);
        t->handshake_timeouts += atomic_load_explicit(&s->handshake_timeouts, memory_order_relaxed);
        t->ws_writes += atomic_load_explicit(&s->ws_writes, memory_order_relaxed);
        t->ring_on += atomic_load_explicit(&s->ring_on, memory_order_relaxed);
        t->ring_writes += atomic_load_explicit(&s->ring_writes, memory_order_relaxed);
        t->ring_submits += atomic_load_explicit(&s->ring_submits, memory_order_relaxed);
        t->ws_write_bytes += atomic_load_explicit(&s->ws_write_bytes, memory_order_relaxed);
        t->room_pending += atomic_load_explicit(&s->room_pending, memory_order_relaxed);
    }
}

static long api_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

/* Writes "key":v, with a comma unless it opens an object. */
static void api_num(jsonw *w, const char *key, long long v)
{
    if (w->len > w->reserve && w->buf[w->len - 1] != '{')
        jsonw_raw(w, ",", 1);
    jsonw_key(w, key);
    jsonw_int(w, v);
}

/* permessage-deflate: what the workers compressed and inflated, and the
 * memory of their zlib streams (no connection holds any). */
static void api_deflate_state(jsonw *w)
{
    ws_deflate_stats d;
    ws_deflate_stats_get(&d);
    jsonw_lit(w, g_node.cfg.perMessageDeflate ? ",\"deflate\":{\"enabled\":true"
                                              : ",\"deflate\":{\"enabled\":false");
    api_num(w, "minSize", (long long)g_node.cfg.deflateMinSize);
    api_num(w, "connections", d.connections);
    api_num(w, "messagesCompressed", d.compressed);
    api_num(w, "compressSkipped", d.compress_skipped);
    api_num(w, "compressBytesIn", d.compress_in);
    api_num(w, "compressBytesOut", d.compress_out);
    api_num(w, "messagesInflated", d.inflated);
    api_num(w, "inflateBytesIn", d.inflate_in);
    api_num(w, "inflateBytesOut", d.inflate_out);
    api_num(w, "inflateErrors", d.inflate_errors);
    api_num(w, "zlibBytes", d.zlib_bytes);
    jsonw_lit(w, "}");
}

static void api_state_body(jsonw *w, const api_totals *t)
{
    jsonw_lit(w, "{\"version\":\"" IMGATE_VERSION "\",\"mode\":");
    jsonw_cstr(w, cluster_enabled() ? "cluster" : "embedded");
    jsonw_lit(w, tls_enabled() ? ",\"tls\":true" : ",\"tls\":false");
    api_num(w, "uptimeSeconds", time(NULL) - (time_t)g_node.start_unix);
    api_num(w, "numCPU", sysconf(_SC_NPROCESSORS_ONLN));
    api_num(w, "workers", workers_count());
    api_num(w, "connections", t->conns);
    api_num(w, "httpConnections", t->http_conns);
    api_num(w, "wsConnections", t->ws);
    api_num(w, "loggedIn", t->logged_in);
    api_num(w, "users", presence_count());
    api_num(w, "maxConnections", g_node.max_conns);
    api_num(w, "maxHttpConnections", g_node.cfg.maxHttpConnections);
    api_num(w, "openFileLimit", g_node.nofile);
    api_num(w, "outQueueBytes", t->out_bytes);
    api_num(w, "httpOutQueueBytes", t->http_out_bytes);
    api_num(w, "outQueues", t->out_queues);
    api_num(w, "wsWrites", t->ws_writes);
    api_num(w, "wsWriteBytes", t->ws_write_bytes);
    api_num(w, "ioUringWorkers", t->ring_on);
    api_num(w, "wsRingWrites", t->ring_writes);
    api_num(w, "wsRingSubmits", t->ring_submits);
    api_num(w, "roomPushesPending", t->room_pending);
    api_num(w, "slowConsumersClosed", t->slow_closed);
    api_num(w, "rateLimitedClosed", t->rate_closed);
    api_num(w, "handshakeTimeouts", t->handshake_timeouts);
    jsonw_lit(w, ",\"limits\":{");
    api_num(w, "maxConnections", g_node.max_conns);
    api_num(w, "maxHttpConnections", g_node.cfg.maxHttpConnections);
    api_num(w, "maxMessageSize", g_node.cfg.maxMessageSize);
    api_num(w, "maxMessagesPerSecond", g_node.cfg.maxMessagesPerSecond);
    api_num(w, "maxOutboundBytes", g_node.cfg.maxOutboundBytes);
    api_num(w, "maxOutboundBytesTotal", g_node.cfg.maxOutboundBytesTotal);
    api_num(w, "maxHeaderBytes", g_node.cfg.maxHeaderBytes);
    api_num(w, "maxBodyBytes", g_node.cfg.maxBodyBytes);
    api_num(w, "handshakeTimeout", g_node.cfg.handshakeTimeout);
    api_num(w, "httpIdleTimeout", g_node.cfg.httpIdleTimeout);
    api_num(w, "maxListUsers", g_node.cfg.maxListUsers);
    api_num(w, "dedupMaxBytes", (long long)g_node.cfg.dedupMaxBytes);
    jsonw_lit(w, "}");
    api_num(w, "messagesIn", t->msgs_in);
    api_num(w, "framesOut", t->frames_out);
    api_num(w, "dedupEntries", (long long)dedup_count());
    api_num(w, "dedupBytes", (long long)dedup_bytes());
    dlog_stats ds;
    dlog_get_stats(&ds);
    api_num(w, "deliveryLogs", ds.logs);
    api_num(w, "deliveryEntries", ds.entries);
    api_num(w, "deliveryBytes", ds.bytes);
    api_deflate_state(w);
    struct mallinfo2 mi = mallinfo2();
    jsonw_lit(w, ",\"memory\":{");
    api_num(w, "rssBytes", api_rss_bytes());
    api_num(w, "heapInUseBytes", (long long)mi.uordblks);
    api_num(w, "heapFreeBytes", (long long)mi.fordblks);
    jsonw_lit(w, "},\"perWorker\":[");
    for (int i = 0; i < workers_count(); i++) {
        worker_stats *s = &worker_at(i)->stats;
        jsonw_lit(w, i ? ",{" : "{");
        api_num(w, "id", i);
        api_num(w, "connections", atomic_load(&s->conns));
        api_num(w, "loggedIn", atomic_load(&s->logged_in));
        api_num(w, "outQueueBytes", atomic_load(&s->out_bytes));
        jsonw_lit(w, "}");
    }
    jsonw_lit(w, "]");
    if (cluster_enabled()) {
        jsonw_lit(w, ",\"cluster\":");
        cluster_state_json(w);
    }
}

/* isDebug: every worker lists its clients; answered when all have. */
typedef struct api_debug {
    struct conn *c;
    atomic_int pending;
    int n;
    jsonw *parts;                  /* one per worker */
    struct api_debug_slot { task t; struct api_debug *d; } slots[];
} api_debug;

static void api_debug_client(struct conn *cl, void *ud)
{
    jsonw *w = ud;
    char peer[64];
    conn_peer(cl, peer, sizeof(peer));
    if (w->len > w->reserve)
        jsonw_raw(w, ",", 1);
    jsonw_lit(w, "{\"addr\":");
    jsonw_cstr(w, peer);
    jsonw_lit(w, ",\"appID\":");
    jsonw_uint(w, cl->pres->appid);
    jsonw_lit(w, ",\"userID\":");
    jsonw_str(w, cl->pres->id, cl->pres->idlen);
    jsonw_lit(w, "}");
}

static void api_debug_key(const pres_entry *e, void *ud)
{
    jsonw *w = ud;
    char key[64];
    int n = snprintf(key, sizeof(key), "%u_%s", e->appid, e->id);
    if (w->len > w->reserve)
        jsonw_raw(w, ",", 1);
    jsonw_str(w, key, (size_t)n);
}

static void api_debug_finish(worker *self, task *t)
{
    (void)self;
    api_debug *d = (api_debug *)((char *)t - offsetof(api_debug, slots));
    api_totals tot;
    api_sum(&tot);
    jsonw w;
    api_begin(&w, IM_OK, NULL);
    api_state_body(&w, &tot);
    jsonw_lit(&w, ",\"clients\":[");
    for (int i = 0, any = 0; i < d->n; i++) {
        size_t len;
        const char *s = jsonw_text(&d->parts[i], &len);
        if (s && len) {
            if (any++)
                jsonw_raw(&w, ",", 1);
            jsonw_raw(&w, s, len);
        }
        jsonw_free(&d->parts[i]);
    }
    jsonw keys;
    jsonw_init(&keys, 0);
    presence_each(0, api_debug_key, &keys);
    size_t klen;
    const char *ks = jsonw_text(&keys, &klen);
    jsonw_lit(&w, "],\"userKeys\":[");
    if (ks)
        jsonw_raw(&w, ks, klen);
    jsonw_lit(&w, "]}}");
    jsonw_free(&keys);
    api_answer(d->c, &w);
    free(d->parts);
    free(d);
}

static void api_debug_run(worker *w, task *t)
{
    struct api_debug_slot *slot = (struct api_debug_slot *)t;
    api_debug *d = slot->d;
    hub_local_each(w->hub, api_debug_client, &d->parts[w->id]);
    if (atomic_fetch_sub(&d->pending, 1) == 1)
        worker_post(conn_worker(d->c), &d->slots[0].t);
}

static void api_system_state(api_ctx *x)
{
    char dbg[16];
    size_t n;
    int r = params_get(&x->p, "isDebug", dbg, sizeof(dbg), &n);
    if (r == 1 && (strcmp(dbg, "true") == 0 || strcmp(dbg, "1") == 0)) {
        int nw = workers_count();
        api_debug *d = calloc(1, sizeof(*d) + (size_t)(nw + 1) * sizeof(d->slots[0]));
        jsonw *parts = d ? calloc((size_t)nw, sizeof(jsonw)) : NULL;
        if (!parts) {
            free(d);
            api_error(x->c, IM_SERVER_ERROR, "out of memory");
            return;
        }
        d->c = x->c;
        d->n = nw;
        d->parts = parts;
        atomic_init(&d->pending, nw);
        for (int i = 0; i < nw; i++)
            jsonw_init(&parts[i], 0);
        d->slots[0].t.run = api_debug_finish;     /* slot 0: the final step */
        http_conn_defer(x->c);
        for (int i = 0; i < nw; i++) {
            d->slots[i + 1].d = d;
            d->slots[i + 1].t.run = api_debug_run;
            worker_post(worker_at(i), &d->slots[i + 1].t);
        }
        return;
    }
    api_totals t;
    api_sum(&t);
    jsonw w;
    api_begin(&w, IM_OK, NULL);
    api_state_body(&w, &t);
    jsonw_lit(&w, "}}");
    api_answer(x->c, &w);
}

static void api_metric(jsonw *w, const char *name, const char *type, const char *help, long long v)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %lld\n",
                     name, help, name, type, name, v);
    jsonw_raw(w, line, (size_t)n);
}

static void api_deflate_metrics(jsonw *w)
{
    ws_deflate_stats d;
    ws_deflate_stats_get(&d);
    api_metric(w, "imgate_deflate_connections", "gauge", "Open connections that negotiated permessage-deflate.", d.connections);
    api_metric(w, "imgate_deflate_messages_total", "counter",
               "Messages compressed: a push once per worker that has such a recipient, a reply or echo once.", d.compressed);
    api_metric(w, "imgate_deflate_skipped_total", "counter", "Messages compressed that did not shrink (sent plain).", d.compress_skipped);
    api_metric(w, "imgate_deflate_in_bytes_total", "counter", "Payload bytes given to compression.", d.compress_in);
    api_metric(w, "imgate_deflate_out_bytes_total", "counter", "Payload bytes compression gave back (plain when it did not shrink).", d.compress_out);
    api_metric(w, "imgate_inflate_messages_total", "counter", "Compressed messages received and inflated.", d.inflated);
    api_metric(w, "imgate_inflate_in_bytes_total", "counter", "Compressed payload bytes of those messages.", d.inflate_in);
    api_metric(w, "imgate_inflate_out_bytes_total", "counter", "Their bytes once inflated.", d.inflate_out);
    api_metric(w, "imgate_inflate_errors_total", "counter", "Compressed messages refused: bad data (1007) or too big once inflated (1009).",
               d.inflate_errors);
    api_metric(w, "imgate_deflate_zlib_bytes", "gauge", "Memory of the workers' zlib streams and buffers.", d.zlib_bytes);
}

static void api_metrics(api_ctx *x)
{
    api_totals t;
    api_sum(&t);
    jsonw w;
    jsonw_init(&w, 0);
    api_metric(&w, "imgate_connections", "gauge", "Open TCP connections (HTTP and WebSocket).", t.conns);
    api_metric(&w, "imgate_ws_connections", "gauge", "Open WebSocket connections.", t.ws);
    api_metric(&w, "imgate_logged_in_connections", "gauge", "Logged-in WebSocket connections.", t.logged_in);
    api_metric(&w, "imgate_users", "gauge", "Distinct logged-in users (appID, userID).", presence_count());
    api_metric(&w, "imgate_outbound_queue_bytes", "gauge", "Bytes waiting in WebSocket outbound queues.", t.out_bytes);
    api_metric(&w, "imgate_http_outbound_queue_bytes", "gauge", "Bytes of HTTP answers waiting to be written.",
               t.http_out_bytes);
    api_metric(&w, "imgate_ws_writes_total", "counter",
               "Writes to WebSocket sockets (a turn's frames to one socket go out in one).", t.ws_writes);
    api_metric(&w, "imgate_ws_write_bytes_total", "counter", "Bytes those writes put on the wire.", t.ws_write_bytes);
    api_metric(&w, "imgate_io_uring_workers", "gauge",
               "Workers whose end-of-turn writes go to the kernel through an io_uring.", t.ring_on);
    api_metric(&w, "imgate_ws_ring_writes_total", "counter", "WebSocket writes made through the io_uring.",
               t.ring_writes);
    api_metric(&w, "imgate_ws_ring_submits_total", "counter",
               "System calls (io_uring_enter) that made them.", t.ring_submits);
    api_metric(&w, "imgate_room_pushes_pending", "gauge",
               "Room pushes not yet round their room on a worker (one per push and worker).", t.room_pending);
    api_metric(&w, "imgate_slow_consumers_closed_total", "counter", "Connections closed for a full outbound queue.", t.slow_closed);
    api_metric(&w, "imgate_rate_limited_closed_total", "counter", "Connections closed for exceeding app.maxMessagesPerSecond.", t.rate_closed);
    api_metric(&w, "imgate_handshake_timeouts_total", "counter", "Connections closed before finishing the upgrade in time.", t.handshake_timeouts);
    api_metric(&w, "imgate_outbound_queue_cap_bytes", "gauge", "app.maxOutboundBytesTotal (0 = no cap).", (long long)g_node.cfg.maxOutboundBytesTotal);
    api_metric(&w, "imgate_connection_cap", "gauge", "WebSocket-port connections this node accepts (file limit or app.maxConnections).", g_node.max_conns);
    api_metric(&w, "imgate_http_connections", "gauge", "Open connections on the HTTP API port.", t.http_conns);
    api_metric(&w, "imgate_http_connection_cap", "gauge", "HTTP API connections this node accepts (app.maxHttpConnections; 0 = no cap).",
               g_node.cfg.maxHttpConnections);
    api_metric(&w, "imgate_messages_received_total", "counter", "WebSocket messages received.", t.msgs_in);
    api_metric(&w, "imgate_frames_sent_total", "counter", "Pushes (msg/enter/exit) handed to connections.", t.frames_out);
    api_metric(&w, "imgate_dedup_entries", "gauge", "Remembered msgIDs (embedded mode).", (long long)dedup_count());
    api_metric(&w, "imgate_dedup_bytes", "gauge", "Memory the remembered msgIDs hold (embedded mode).", (long long)dedup_bytes());
    api_metric(&w, "imgate_dedup_cap_bytes", "gauge", "im.dedupMaxBytes.", (long long)g_node.cfg.dedupMaxBytes);
    api_metric(&w, "imgate_resident_memory_bytes", "gauge", "Resident memory of the process.", api_rss_bytes());
    api_metric(&w, "imgate_rpc_refused_calls_total", "counter",
               "Incoming gRPC calls refused for a missing or wrong cluster.rpcToken.", rpc_refused_calls());
    api_metric(&w, "imgate_redis_pending_commands", "gauge",
               "Commands sent to Redis not answered yet (cluster mode).", rlink_pending());
    api_metric(&w, "imgate_redis_unsent_bytes", "gauge",
               "Bytes of those commands the Redis socket has not taken yet (cluster mode).", rlink_unsent_bytes());
    api_deflate_metrics(&w);
    size_t len;
    const char *text = jsonw_text(&w, &len);
    http_conn_respond(x->c, 200, "text/plain; version=0.0.4", text ? text : "", text ? len : 0);
    jsonw_free(&w);
}

/* ---------- /user/kick ---------- */

#define API_KICK_REASON "kicked by an administrator"

static void api_kick_answer(struct conn *c, const char *uid, size_t ulen, const kick_result *r)
{
    jsonw w;
    api_begin(&w, IM_OK, NULL);
    jsonw_lit(&w, "{\"userID\":");
    jsonw_str(&w, uid, ulen);
    api_num(&w, "kicked", r->kicked);
    api_num(&w, "nodes", r->nodes);
    jsonw_lit(&w, ",\"failedNodes\":[");
    for (int i = 0; i < r->nfailed && i < KICK_MAX_FAILED; i++) {
        if (i)
            jsonw_lit(&w, ",");
        jsonw_cstr(&w, r->failed[i]);
    }
    jsonw_lit(&w, "]}}");
    api_answer(c, &w);
}

typedef struct api_kick_wait {
    struct conn *c;
    size_t ulen;
    char uid[PRESENCE_MAX_ID];
} api_kick_wait;

static void api_kick_routed(void *ud, int code, const char *why, const kick_result *r)
{
    api_kick_wait *k = ud;
    if (code != IM_OK)
        api_error(k->c, code, why);
    else
        api_kick_answer(k->c, k->uid, k->ulen, r);
    free(k);
}

static void api_kick_local(void *ud, long n)
{
    api_kick_wait *k = ud;
    kick_result r = { .kicked = n, .nodes = 1 };
    api_kick_routed(k, IM_OK, NULL, &r);
}

/* Closes every connection of the user (appID 0: on every platform) with
 * close code 4000 and the reason, on every node; a user nobody holds is
 * kicked:0 (docs/dashboard.md). */
static void api_user_kick(api_ctx *x)
{
    uint32_t appid;
    char uid[API_ID_MAX], reason[HUB_KICK_REASON_MAX * 4 + 1];
    size_t ulen, rlen;
    if (api_appid(x, &appid) != 0 || api_str(x, "userID", 1, uid, sizeof(uid), &ulen) != 0 ||
        api_str(x, "reason", 0, reason, sizeof(reason), &rlen) != 0)
        return;
    if (ulen == 0) {
        api_error(x->c, IM_PARAM_ILLEGAL, "userID is required");
        return;
    }
    if (ulen >= PRESENCE_MAX_ID) {                 /* nobody can be logged in as that */
        kick_result none = { .nodes = 0 };
        api_kick_answer(x->c, uid, ulen, &none);
        return;
    }
    api_kick_wait *k = calloc(1, sizeof(*k));
    if (!k) {
        api_error(x->c, IM_SERVER_ERROR, "out of memory");
        return;
    }
    k->c = x->c;
    k->ulen = ulen;
    memcpy(k->uid, uid, ulen);
    const char *why = rlen ? reason : API_KICK_REASON;
    http_conn_defer(x->c);
    int rc = cluster_enabled() ? cluster_kick(appid, uid, ulen, why, api_kick_routed, k)
                               : hub_kick_user(appid, uid, ulen, why, api_kick_local, k);
    if (rc != 0)
        api_kick_routed(k, IM_SERVER_ERROR, "out of memory", NULL);
}

/* ---------- /dashboard and its data, /system/cluster ---------- */

/* Every node: this one's state now, then the others' snapshots (cstate.h). */
static void api_cluster_answer(struct conn *c, int ok, const char *why, const char *peers, size_t plen)
{
    jsonw w;
    api_begin(&w, IM_OK, NULL);
    jsonw_lit(&w, cluster_enabled() ? "{\"mode\":\"cluster\"" : "{\"mode\":\"embedded\"");
    api_num(&w, "snapshotIntervalMs", CSTATE_INTERVAL_MS);
    if (cluster_enabled()) {
        jsonw_lit(&w, ",\"self\":");
        jsonw_cstr(&w, cluster_self());
    }
    if (!ok) {
        jsonw_lit(&w, ",\"error\":");
        jsonw_cstr(&w, why ? why : "?");
    }
    jsonw_lit(&w, ",\"nodes\":[");
    cstate_node_json(&w);
    if (ok && plen > 2) {                          /* "[...]": its items */
        jsonw_lit(&w, ",");
        jsonw_raw(&w, peers + 1, plen - 2);
    }
    jsonw_lit(&w, "]}}");
    api_answer(c, &w);
}

static void api_cluster_gathered(void *ud, int ok, const char *why, const char *json, size_t len)
{
    api_cluster_answer(ud, ok, why, json, len);
}

static void api_system_cluster(api_ctx *x)
{
    if (!cluster_enabled()) {
        api_cluster_answer(x->c, 1, NULL, "[]", 2);
        return;
    }
    http_conn_defer(x->c);
    if (cstate_peers(api_cluster_gathered, x->c) != 0)
        api_cluster_answer(x->c, 0, "out of memory", "[]", 2);
}

static void api_dashboard(api_ctx *x)
{
    const web_asset *a = web_asset_find("dashboard.html");
    if (!a)
        http_conn_respond(x->c, 404, "text/plain", "no dashboard built in\n", 22);
    else
        http_conn_respond(x->c, 200, "text/html; charset=utf-8", a->data, a->len);
}

/* ---------- /home/index ---------- */

/* Copies the page, replacing {{APP_ID}}, {{WS_URL}} and {{HTTP_URL}}. */
static void api_home(api_ctx *x)
{
    const web_asset *a = web_asset_find("chat.html");
    if (!a) {
        http_conn_respond(x->c, 404, "text/plain", "no chat page built in\n", 22);
        return;
    }
    uint32_t appid = 0;
    char v[32];
    size_t n;
    if (params_get(&x->p, "appID", v, sizeof(v), &n) != 1 || proto_parse_appid(v, n, &appid) != 0 ||
        hub_room_index(appid) < 0)
        appid = 101;
    char app[16];
    snprintf(app, sizeof(app), "%u", appid);
    const char *keys[] = { "{{APP_ID}}", "{{WS_URL}}", "{{HTTP_URL}}" };
    const char *vals[] = { app, g_node.cfg.webSocketUrl, g_node.cfg.httpUrl };
    jsonw w;                                    /* used as a plain byte builder */
    jsonw_init(&w, 0);
    const char *p = a->data, *end = a->data + a->len;
    while (p < end) {
        const char *m = memmem(p, (size_t)(end - p), "{{", 2);
        if (!m) {
            jsonw_raw(&w, p, (size_t)(end - p));
            break;
        }
        jsonw_raw(&w, p, (size_t)(m - p));
        p = m;
        int hit = 0;
        for (int i = 0; i < 3 && !hit; i++) {
            size_t kl = strlen(keys[i]);
            if ((size_t)(end - p) >= kl && memcmp(p, keys[i], kl) == 0) {
                jsonw_lit(&w, vals[i]);
                p += kl;
                hit = 1;
            }
        }
        if (!hit) {
            jsonw_raw(&w, p, 2);
            p += 2;
        }
    }
    size_t len;
    const char *text = jsonw_text(&w, &len);
    http_conn_respond(x->c, 200, "text/html; charset=utf-8", text ? text : "", text ? len : 0);
    jsonw_free(&w);
}

/* ---------- routing ---------- */

static const struct {
    const char *path;
    void (*fn)(api_ctx *x);
} api_routes[] = {
    { "/user/list", api_user_list },
    { "/user/online", api_user_online },
    { "/user/sendMessage", api_send_message },
    { "/user/sendMessageAll", api_send_message_all },
    { "/user/history", api_user_history },
    { "/system/state", api_system_state },
    { "/system/cluster", api_system_cluster },
    { "/user/kick", api_user_kick },
    { "/dashboard", api_dashboard },
    { "/home/index", api_home },
    { "/", api_home },
    { "/metrics", api_metrics },
};

/* ---------- API key ---------- */

static int api_path_is(const api_ctx *x, const char *path)
{
    return strlen(path) == x->plen && memcmp(path, x->path, x->plen) == 0;
}

/* Whether the request may go on: no auth.apiKey configured, an open path
 * (the chat page), or "Authorization: Bearer <key>". Else answers 401. */
static int api_authorized(api_ctx *x)
{
    static const char body[] =
        "{\"code\":1003,\"msg\":\"Unauthorized: missing or wrong API key\",\"data\":{}}";
    const char *key = g_node.cfg.apiKey;
    /* the dashboard page asks for the key itself: its data calls need it */
    if (!key[0] || api_path_is(x, "/home/index") || api_path_is(x, "/") || api_path_is(x, "/dashboard"))
        return 1;
    if (auth_api_key_check(x->r->hv[HTTP_H_AUTHORIZATION], key) == 0)
        return 1;
    http_conn_respond_ex(x->c, 401, API_JSON, "WWW-Authenticate: Bearer\r\n", body,
                         sizeof(body) - 1);
    return 0;
}

void api_handle(struct conn *c, http_req *r)
{
    int method = r->parser.method;
    if (method == HTTP_OPTIONS) {
        http_conn_respond(c, 204, "text/plain", "", 0);
        return;
    }
    if (method != HTTP_GET && method != HTTP_POST) {
        static const char body[] =
            "{\"code\":1010,\"msg\":\"Route does not exist: use GET or POST\",\"data\":{}}";
        /* The parser stops at a CONNECT's head (what follows is a tunnel):
         * its body would be read as the next request. Answer and close. */
        if (method == HTTP_CONNECT)
            r->keep_alive = 0;
        http_conn_respond_ex(c, 405, API_JSON, "Allow: GET, POST, OPTIONS\r\n", body, sizeof(body) - 1);
        return;
    }
    api_ctx x = { .c = c, .r = r };
    const char *url = r->url ? r->url : "/";
    size_t ulen = r->url ? r->url_len : 1;
    const char *q = memchr(url, '?', ulen);
    x.path = url;
    x.plen = q ? (size_t)(q - url) : ulen;
    if (!api_authorized(&x))
        return;
    params_init(&x.p, url, ulen, r->hv[HTTP_H_CONTENT_TYPE], r->body, r->body_len);
    if (x.p.json_bad) {
        api_error(c, IM_PARAM_ILLEGAL, "the JSON body is not a JSON object");
        params_free(&x.p);
        return;
    }
    for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
        if (strlen(api_routes[i].path) == x.plen && memcmp(api_routes[i].path, x.path, x.plen) == 0) {
            api_routes[i].fn(&x);
            params_free(&x.p);
            return;
        }
    }
    params_free(&x.p);
    jsonw w;
    api_begin(&w, IM_ROUTING_NOT_EXIST, NULL);
    jsonw_lit(&w, "{}}");
    size_t len;
    const char *text = jsonw_text(&w, &len);
    http_conn_respond(c, 404, API_JSON, text ? text : "", text ? len : 0);
    jsonw_free(&w);
}
