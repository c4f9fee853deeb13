/* fuzz_proto.c — fuzz target for the WebSocket protocol's pure parts: the
 * envelope parser (proto_parse), routing (proto_route), the login rules
 * (proto_login_args), the reply encoder (proto_reply_encode) and the appID
 * text rule (proto_parse_appid).
 *
 * Input: one text frame as a client sends it. The flow is proto_handle's
 * without a connection: parse, route, check login's data, then encode the
 * reply that would be sent — for a rejected frame the "invalid data" reply
 * with empty seq/cmd, else one with the message's seq and cmd and its data
 * re-encoded as the reply data. The reply must be a JSON object that reads
 * back to the same seq, cmd and code. g_node.cfg holds the defaults (appIDs
 * 101..104), set once. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "core/config.h"
#include "core/node.h"
#include "fuzz.h"
#include "im/codes.h"
#include "im/presence.h"
#include "im/proto.h"

/* The reply text reads back to seq, cmd and code. */
static void fuzz_check_reply(const char *text, size_t len, const char *seq, size_t seqlen,
                             const char *cmd, size_t cmdlen, int code)
{
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &err);
    if (!root)
        fprintf(stderr, "reply does not parse: %s: %.*s\n", err.text, (int)len, text);
    FUZZ_CHECK(json_is_object(root));
    json_t *s = json_object_get(root, "seq"), *c = json_object_get(root, "cmd");
    json_t *resp = json_object_get(root, "response");
    FUZZ_CHECK(json_is_string(s) && json_string_length(s) == seqlen &&
               memcmp(json_string_value(s), seq, seqlen) == 0);
    FUZZ_CHECK(json_is_string(c) && json_string_length(c) == cmdlen &&
               memcmp(json_string_value(c), cmd, cmdlen) == 0);
    FUZZ_CHECK(json_is_object(resp));
    FUZZ_CHECK(json_integer_value(json_object_get(resp, "code")) == code);
    FUZZ_CHECK(json_is_string(json_object_get(resp, "codeMsg")));
    FUZZ_CHECK(json_object_get(resp, "data") != NULL);
    json_decref(root);
}

static void fuzz_reply(const char *seq, size_t seqlen, const char *cmd, size_t cmdlen, int code,
                       const char *data_json)
{
    size_t len = 0;
    char *text = proto_reply_encode(seq, seqlen, cmd, cmdlen, code, data_json, &len);
    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(strlen(text) == len);
    fuzz_check_reply(text, len, seq, seqlen, cmd, cmdlen, code);
    free(text);
}

/* proto_parse_appid against a plain reading: 1..10 digits, at most 2^32-1. */
static void fuzz_appid(const char *s, size_t n)
{
    uint32_t v = 0;
    int rc = proto_parse_appid(s, n, &v);
    int ok = n >= 1 && n <= 10;
    unsigned long long want = 0;
    for (size_t i = 0; ok && i < n; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        want = want * 10 + (unsigned long long)(s[i] - '0');
    }
    ok = ok && want <= UINT32_MAX;
    FUZZ_CHECK(rc == (ok ? 0 : -1));
    if (ok)
        FUZZ_CHECK(v == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        config_defaults(&g_node.cfg);
        ready = 1;
    }
    const char *msg = (const char *)data;
    proto_msg m;
    const char *why = NULL;

    fuzz_appid(msg, size < 12 ? size : 12);
    if (proto_parse(msg, size, &m, &why) != 0) {
        FUZZ_CHECK(why != NULL && why[0] != '\0');
        FUZZ_CHECK(m.root == NULL);
        json_t *q = json_string(why);
        char *qt = json_dumps(q, JSON_ENCODE_ANY);
        fuzz_reply("", 0, "", 0, IM_PARAM_ILLEGAL, qt ? qt : "null");
        free(qt);
        json_decref(q);
        return 0;
    }
    FUZZ_CHECK(m.root != NULL && m.cmd != NULL && m.seq != NULL);
    FUZZ_CHECK(strlen(m.cmd) <= m.cmdlen && strlen(m.seq) <= m.seqlen);

    int route = proto_route(m.cmd, m.cmdlen);
    static const char *const names[] = { "login", "heartbeat", "ping", "logout", "ack" };
    FUZZ_CHECK(route >= -1 && route < (int)(sizeof(names) / sizeof(names[0])));
    if (route >= 0)
        FUZZ_CHECK(m.cmdlen == strlen(names[route]) && memcmp(m.cmd, names[route], m.cmdlen) == 0);

    uint32_t appid = 0;
    const char *uid = NULL;
    size_t uidlen = 0;
    int code = proto_login_args(m.data, &appid, &uid, &uidlen);
    FUZZ_CHECK(code == IM_OK || code == IM_USER_ID_ILLEGAL || code == IM_UNAUTHORIZED);
    FUZZ_CHECK(uid != NULL);
    if (code == IM_OK) {
        FUZZ_CHECK(uidlen > 0 && uidlen < PRESENCE_MAX_ID && strlen(uid) == uidlen);
        FUZZ_CHECK(appid >= 101 && appid <= 104);
    }
    if (route != 0)
        code = route < 0 ? IM_ROUTING_NOT_EXIST : IM_OK;

    char *dj = m.data ? json_dumps(m.data, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    fuzz_reply(m.seq, m.seqlen, m.cmd, m.cmdlen, code, dj ? dj : "null");
    free(dj);
    proto_msg_free(&m);
    FUZZ_CHECK(m.root == NULL);
    return 0;
}
