/* proto.c — WebSocket command dispatch and replies (see proto.h).
 * Field names are matched case-insensitively (appID, appId and appid are the
 * same field); replies use the original spelling. */
#include "im/proto.h"


#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/jsonw.h"
#include "core/log.h"
#include "core/node.h"
#include "im/auth.h"
#include "im/codes.h"
#include "im/hub.h"
#include "im/dlog.h"
#include "im/jarena.h"
#include "im/presence.h"
#include "im/resume.h"
#include "net/conn.h"
#include "ws/session.h"

typedef struct proto_req {
    struct conn *c;
    proto_msg m;
} proto_req;

typedef int (*proto_handler)(proto_req *r);

char *proto_reply_encode(const char *seq, size_t seqlen, const char *cmd, size_t cmdlen,
                         int code, const char *data_json, size_t *len)
{
    jsonw w;
    jsonw_init(&w, 0);
    jsonw_lit(&w, "{\"seq\":");
    jsonw_str(&w, seq, seqlen);
    jsonw_lit(&w, ",\"cmd\":");
    jsonw_str(&w, cmd, cmdlen);
    jsonw_lit(&w, ",\"response\":{\"code\":");
    jsonw_int(&w, code);
    jsonw_lit(&w, ",\"codeMsg\":");
    jsonw_cstr(&w, im_code_msg(code));
    jsonw_lit(&w, ",\"data\":");
    jsonw_lit(&w, data_json);
    jsonw_lit(&w, "}}");
    if (!jsonw_text(&w, len)) {
        jsonw_free(&w);
        return NULL;
    }
    return w.buf;                 /* no reserve: the text starts the buffer */
}

void proto_reply_raw(struct conn *c, const char *seq, size_t seqlen, const char *cmd,
                            size_t cmdlen, int code, const char *data_json)
{
    size_t len;
    char *text = proto_reply_encode(seq, seqlen, cmd, cmdlen, code, data_json, &len);
    if (text)
        (void)ws_session_send_text(c, text, len);
    free(text);
}

static void proto_reply(proto_req *r, int code, const char *data_json)
{
    proto_reply_raw(r->c, r->m.seq, r->m.seqlen, r->m.cmd, r->m.cmdlen, code, data_json);
}

json_t *proto_field(json_t *obj, const char *name)
{
    if (!json_is_object(obj))
        return NULL;
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        if (strcasecmp(key, name) == 0)
            return val;
    }
    return NULL;
}

int proto_parse_appid(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* appID: a JSON number, or [beyond] a numeric string. */
static int proto_appid(json_t *v, uint32_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > (json_int_t)UINT32_MAX)
            return -1;
        *out = (uint32_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d < 0 || d > UINT32_MAX || d != (double)(uint32_t)d)
            return -1;
        *out = (uint32_t)d;
        return 0;
    }
    if (json_is_string(v))
        return proto_parse_appid(json_string_value(v), json_string_length(v), out);
    return -1;
}

int proto_login_args(json_t *data, uint32_t *appid, const char **uid, size_t *uidlen)
{
    json_t *uidv = proto_field(data, "userID");
    *uid = json_is_string(uidv) ? json_string_value(uidv) : "";
    *uidlen = json_is_string(uidv) ? json_string_length(uidv) : 0;
    if (*uidlen == 0 || *uidlen >= PRESENCE_MAX_ID || memchr(*uid, '\0', *uidlen))
        return IM_USER_ID_ILLEGAL;
    if (proto_appid(proto_field(data, "appID"), appid) != 0 || hub_room_index(*appid) < 0)
        return IM_UNAUTHORIZED;
    return IM_OK;
}

/* With auth.secret set, serviceToken must be an HS256 JWT for this userID. */
static int proto_login_token(json_t *data, const char *uid, size_t uidlen)
{
    const char *secret = g_node.cfg.authSecret;
    json_t *tok = proto_field(data, "serviceToken");
    const char *why = "missing token";
    if (!secret[0])
        return IM_OK;
    if (json_is_string(tok) &&
        auth_jwt_check(json_string_value(tok), json_string_length(tok), secret, uid, uidlen,
                       (long)time(NULL), &why) == 0)
        return IM_OK;
    log_debug("login of %.*s refused: %s", (int)uidlen, uid, why);
    return IM_UNAUTHORIZED;
}

/* An optional entry id of login's data (lastID, lastRoomID): absent or
 * null is fine; anything but a well-formed id string is 1001. */
static int proto_login_id(json_t *data, const char *name, int *has, dlog_id *id)
{
    json_t *v = json_is_object(data) ? proto_field(data, name) : NULL;
    *has = 0;
    if (!v || json_is_null(v))
        return IM_OK;
    if (!json_is_string(v) || dlog_id_parse(json_string_value(v), json_string_length(v), id) != 0)
        return IM_PARAM_ILLEGAL;
    *has = 1;
    return IM_OK;
}

/* A login with the delivery logs: reply and replay come from resume.c. */
static int proto_login_logged(proto_req *r, uint32_t appid, const char *uid, size_t uidlen)
{
    resume_req q = { .appid = appid, .uid = uid, .uidlen = uidlen,
                     .seq = r->m.seq ? r->m.seq : "", .seqlen = r->m.seqlen };
    if (proto_login_id(r->m.data, "lastID", &q.has_last, &q.last) != IM_OK ||
        proto_login_id(r->m.data, "lastRoomID", &q.has_last_room, &q.last_room) != IM_OK)
        return IM_PARAM_ILLEGAL;
    return resume_login(r->c, &q);
}

static int proto_login(proto_req *r)
{
    struct conn *c = r->c;
    uint32_t appid;
    const char *uid;
    size_t uidlen;
    int code = proto_login_args(r->m.data, &appid, &uid, &uidlen);
    if (code == IM_OK)
        code = proto_login_token(r->m.data, uid, uidlen);
    if (code != IM_OK)
        return code;
    if (c->pres || resume_pending(c))
        return IM_OPERATION_FAILURE;
    if (resume_enabled())
        return proto_login_logged(r, appid, uid, uidlen);
    int first;
    if (hub_attach(c, appid, uid, uidlen, &first) != 0) {
        log_warn("login of %.*s failed: presence store", (int)uidlen, uid);
        return IM_SERVER_ERROR;
    }
    proto_reply(r, IM_OK, "null");
    log_debug("login appID=%u userID=%.*s", appid, (int)uidlen, uid);
    return -1;                                   /* already answered */
}

static int proto_heartbeat(proto_req *r)
{
    if (!r->c->pres)
        return IM_NOT_LOGGED_IN;
    hub_heartbeat(r->c, (uint32_t)time(NULL));
    return IM_OK;
}

/* {"cmd":"ack","data":{"id":"<inbox id>"}}: the client has this one. */
static int proto_ack(proto_req *r)
{
    if (!r->c->pres)
        return IM_NOT_LOGGED_IN;
    if (!resume_enabled())
        return IM_OK;                                 /* nothing is logged: nothing to move */
    json_t *id = json_is_object(r->m.data) ? proto_field(r->m.data, "id") : NULL;
    if (!json_is_string(id))
        return IM_PARAM_ILLEGAL;
    return resume_ack(r->c, json_string_value(id), json_string_length(id));
}

static int proto_ping(proto_req *r)
{
    proto_reply(r, IM_OK, "\"pong\"");
    return -1;
}

static int proto_logout(proto_req *r)
{
    if (!r->c->pres)
        return IM_NOT_LOGGED_IN;
    hub_detach(r->c);                            /* the room pushes it lacks first */
    proto_reply(r, IM_OK, "null");
    return -1;
}

static const struct {
    const char *cmd;
    proto_handler fn;
} proto_routes[] = {
    { "login", proto_login },
    { "heartbeat", proto_heartbeat },
    { "ping", proto_ping },
    { "logout", proto_logout },
    { "ack", proto_ack },
};

static void proto_invalid(struct conn *c, const char *why)
{
    char text[128];
    int n = snprintf(text, sizeof(text), "invalid data: %s", why);
    jsonw q;
    jsonw_init(&q, 0);
    jsonw_str(&q, text, (size_t)n);
    size_t len;
    const char *qt = jsonw_text(&q, &len);
    proto_reply_raw(c, "", 0, "", 0, IM_PARAM_ILLEGAL, qt ? qt : "null");
    jsonw_free(&q);
}

void proto_reject_binary(struct conn *c)
{
    proto_invalid(c, "binary frames are not part of the protocol");
}

int proto_parse(const char *msg, size_t len, proto_msg *m, const char **why)
{
    json_error_t err;
    memset(m, 0, sizeof(*m));
    int arena = jarena_open();
    json_t *root = json_loadb(msg, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (arena)
        jarena_close();
    m->root = root;                          /* freed by proto_msg_free from here on */
    m->in_arena = arena;
    if (!json_is_object(root)) {
        *why = root ? "not a JSON object" : "not JSON";
        proto_msg_free(m);
        return -1;
    }
    json_t *cmdv = proto_field(root, "cmd");
    json_t *seqv = proto_field(root, "seq");
    if (!json_is_string(cmdv)) {
        *why = "cmd must be a string";
        proto_msg_free(m);
        return -1;
    }
    if (seqv && !json_is_string(seqv) && !json_is_null(seqv)) {
        *why = "seq must be a string";
        proto_msg_free(m);
        return -1;
    }
    m->cmd = json_string_value(cmdv);
    m->cmdlen = json_string_length(cmdv);
    m->seq = json_is_string(seqv) ? json_string_value(seqv) : "";
    m->seqlen = json_is_string(seqv) ? json_string_length(seqv) : 0;
    m->data = proto_field(root, "data");
    return 0;
}

void proto_msg_free(proto_msg *m)
{
    json_decref(m->root);
    m->root = NULL;
    if (m->in_arena)
        jarena_release();
    m->in_arena = 0;
}

int proto_route(const char *cmd, size_t len)
{
    for (size_t i = 0; i < sizeof(proto_routes) / sizeof(proto_routes[0]); i++)
        if (strlen(proto_routes[i].cmd) == len && memcmp(proto_routes[i].cmd, cmd, len) == 0)
            return (int)i;
    return -1;
}

void proto_handle(struct conn *c, const char *msg, size_t len)
{
    proto_req r = { .c = c };
    const char *why;
    if (resume_pending(c) && resume_defer(c, msg, len) == 0)
        return;                                   /* after the pending login's reply */
    if (proto_parse(msg, len, &r.m, &why) != 0) {
        proto_invalid(c, why);
        return;
    }
    int route = proto_route(r.m.cmd, r.m.cmdlen);
    int code = route < 0 ? IM_ROUTING_NOT_EXIST : proto_routes[route].fn(&r);
    if (code >= 0)
        proto_reply(&r, code, "null");
    proto_msg_free(&r.m);
}

static const ws_session_app proto_app = {
    .on_text = proto_handle,
    .on_binary = proto_reject_binary,
    .on_end = hub_detach,
};

void proto_init(void)
{
    jarena_install();
    ws_session_init(&proto_app);
}
