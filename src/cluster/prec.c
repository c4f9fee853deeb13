/* prec.c — presence records (see prec.h). */
#include "cluster/prec.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/jsonw.h"

int prec_key(char *out, size_t cap, uint32_t appid, const char *uid, size_t len)
{
    int n = snprintf(out, cap, PREC_KEY_PREFIX "%u_%.*s", appid, (int)len, uid);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

void prec_encode(jsonw *w, const prec *r)
{
    jsonw_lit(w, "{\"accIp\":");
    jsonw_cstr(w, r->acc_ip);
    jsonw_lit(w, ",\"accPort\":");
    jsonw_cstr(w, r->acc_port);
    jsonw_lit(w, ",\"appID\":");
    jsonw_uint(w, r->appid);
    jsonw_lit(w, ",\"userID\":");
    jsonw_str(w, r->uid, r->uidlen);
    jsonw_lit(w, ",\"clientIp\":");
    jsonw_cstr(w, r->client_ip);
    jsonw_lit(w, ",\"clientPort\":\"\",\"loginTime\":");
    jsonw_uint(w, r->login_time);
    jsonw_lit(w, ",\"heartbeatTime\":");
    jsonw_uint(w, r->hb_time);
    jsonw_lit(w, ",\"logOutTime\":");
    jsonw_uint(w, r->logout_time);
    jsonw_lit(w, ",\"qua\":\"\",\"deviceInfo\":\"\",\"isLogoff\":");
    jsonw_lit(w, r->is_logoff ? "true}" : "false}");
}

static json_t *prec_field(json_t *o, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
        if (strcasecmp(k, name) == 0)
            return v;
    return NULL;
}

static void prec_copy_str(json_t *o, const char *name, char *out, size_t cap, size_t *len)
{
    json_t *v = prec_field(o, name);
    size_t n = 0;
    if (json_is_string(v)) {
        n = json_string_length(v);
        if (n >= cap)
            n = cap - 1;
        memcpy(out, json_string_value(v), n);
    }
    out[n] = '\0';
    if (len)
        *len = n;
}

static uint64_t prec_uint(json_t *o, const char *name)
{
    json_t *v = prec_field(o, name);
    if (json_is_integer(v) && json_integer_value(v) > 0)
        return (uint64_t)json_integer_value(v);
    return 0;
}

int prec_parse(const char *json, size_t len, prec *r)
{
    memset(r, 0, sizeof(*r));
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    prec_copy_str(o, "accIp", r->acc_ip, sizeof(r->acc_ip), NULL);
    prec_copy_str(o, "accPort", r->acc_port, sizeof(r->acc_port), NULL);
    prec_copy_str(o, "userID", r->uid, sizeof(r->uid), &r->uidlen);
    prec_copy_str(o, "clientIp", r->client_ip, sizeof(r->client_ip), NULL);
    r->appid = (uint32_t)prec_uint(o, "appID");
    r->login_time = prec_uint(o, "loginTime");
    r->hb_time = prec_uint(o, "heartbeatTime");
    r->logout_time = prec_uint(o, "logOutTime");
    r->is_logoff = json_is_true(prec_field(o, "isLogoff"));
    json_decref(o);
    return 0;
}

int prec_online(const prec *r, uint64_t now)
{
    return !r->is_logoff && r->hb_time + PREC_ONLINE_SECS > now;
}

int prec_node(const prec *r, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s:%s", r->acc_ip, r->acc_port);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
