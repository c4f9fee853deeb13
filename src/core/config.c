/* config.c — owns the configuration schema (one table row per key), the
 * strict YAML loader (libyaml document API), the IMGATE_* environment layer,
 * string setters for flags, cross-field validation and the --help dump. */
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

/* CT_LIST: a string field holding a comma-separated list, given as such a
 * string or as a YAML list of strings (joined with commas). */
typedef enum { CT_INT, CT_SIZE, CT_STR, CT_APPIDS, CT_LIST, CT_BOOL } config_type;
typedef enum { CK_NONE, CK_NONEMPTY, CK_PATH, CK_LEVEL } config_check;

typedef struct config_key {
    const char *key;     /* YAML path, "section.key", case-sensitive */
    const char *env;     /* IMGATE_* variable or NULL */
    config_type type;
    size_t off;          /* offset of the field in struct config */
    size_t size;         /* sizeof the field (bounds strings) */
    long long min, max;  /* inclusive range for CT_INT / CT_SIZE */
    config_check check;  /* extra rule for strings */
    bool secret;         /* masked by config_dump */
} config_key;

#define CONFIG_FIELD(m) offsetof(config, m), sizeof(((config *)0)->m)
#define CONFIG_KIB 1024LL
#define CONFIG_DAY 86400LL

/* The schema. Order is the order of config_dump; keep sections together. */
static const config_key config_keys[] = {
    {"app.logFile", "IMGATE_LOG_FILE", CT_STR, CONFIG_FIELD(logFile), 0, 0, CK_NONE, false},
    {"app.httpPort", "IMGATE_HTTP_PORT", CT_INT, CONFIG_FIELD(httpPort), 0, 65535, CK_NONE, false},
    {"app.webSocketPort", "IMGATE_WS_PORT", CT_INT, CONFIG_FIELD(webSocketPort), 0, 65535, CK_NONE, false},
    {"app.rpcPort", "IMGATE_RPC_PORT", CT_INT, CONFIG_FIELD(rpcPort), 0, 65535, CK_NONE, false},
    {"app.httpUrl", NULL, CT_STR, CONFIG_FIELD(httpUrl), 0, 0, CK_NONE, false},
    {"app.webSocketUrl", NULL, CT_STR, CONFIG_FIELD(webSocketUrl), 0, 0, CK_NONE, false},
    {"app.bind", "IMGATE_BIND", CT_STR, CONFIG_FIELD(bind), 0, 0, CK_NONEMPTY, false},
    {"app.advertiseIp", "IMGATE_ADVERTISE_IP", CT_STR, CONFIG_FIELD(advertiseIp), 0, 0, CK_NONE, false},
    {"app.workers", "IMGATE_WORKERS", CT_INT, CONFIG_FIELD(workers), 0, 1024, CK_NONE, false},
    {"app.appIDs", "IMGATE_APP_IDS", CT_APPIDS, CONFIG_FIELD(appIDs), 1, UINT32_MAX, CK_NONE, false},
    {"app.connectionTimeout", "IMGATE_CONNECTION_TIMEOUT", CT_INT, CONFIG_FIELD(connectionTimeout), 1, 7 * CONFIG_DAY, CK_NONE, false},
    {"app.pingInterval", "IMGATE_PING_INTERVAL", CT_INT, CONFIG_FIELD(pingInterval), 0, CONFIG_DAY, CK_NONE, false},
    {"app.sweepInterval", "IMGATE_SWEEP_INTERVAL", CT_INT, CONFIG_FIELD(sweepInterval), 1, 3600, CK_NONE, false},
    {"app.handshakeTimeout", "IMGATE_HANDSHAKE_TIMEOUT", CT_INT, CONFIG_FIELD(handshakeTimeout), 1, 3600, CK_NONE, false},
    {"app.maxMessageSize", "IMGATE_MAX_MESSAGE_SIZE", CT_SIZE, CONFIG_FIELD(maxMessageSize), 1, CONFIG_KIB * CONFIG_KIB * CONFIG_KIB, CK_NONE, false},
    {"app.maxOutboundBytes", "IMGATE_MAX_OUTBOUND_BYTES", CT_SIZE, CONFIG_FIELD(maxOutboundBytes), 1, 64 * CONFIG_KIB * CONFIG_KIB * CONFIG_KIB, CK_NONE, false},
    {"app.echoPath", "IMGATE_ECHO_PATH", CT_STR, CONFIG_FIELD(echoPath), 0, 0, CK_PATH, false},
    {"app.maxConnections", NULL, CT_INT, CONFIG_FIELD(maxConnections), 0, 100000000, CK_NONE, false},
    {"app.maxHttpConnections", NULL, CT_INT, CONFIG_FIELD(maxHttpConnections), 0, 100000000, CK_NONE, false},
    {"app.logLevel", "IMGATE_LOG_LEVEL", CT_STR, CONFIG_FIELD(logLevel), 0, 0, CK_LEVEL, false},
    {"app.requestLog", NULL, CT_STR, CONFIG_FIELD(requestLog), 0, 0, CK_NONE, false},
    {"app.maxMessagesPerSecond", NULL, CT_INT, CONFIG_FIELD(maxMessagesPerSecond), 0, CONFIG_MAX_RATE, CK_NONE, false},
    {"app.maxOutboundBytesTotal", NULL, CT_SIZE, CONFIG_FIELD(maxOutboundBytesTotal), 0, 1024 * CONFIG_KIB * CONFIG_KIB * CONFIG_KIB, CK_NONE, false},
    {"app.httpIdleTimeout", NULL, CT_INT, CONFIG_FIELD(httpIdleTimeout), 1, CONFIG_DAY, CK_NONE, false},
    {"app.maxHeaderBytes", NULL, CT_SIZE, CONFIG_FIELD(maxHeaderBytes), 1024, 1024 * CONFIG_KIB, CK_NONE, false},
    {"app.maxBodyBytes", NULL, CT_SIZE, CONFIG_FIELD(maxBodyBytes), 1024, 1024 * CONFIG_KIB * CONFIG_KIB, CK_NONE, false},
    {"app.maxListUsers", NULL, CT_INT, CONFIG_FIELD(maxListUsers), 0, INT_MAX, CK_NONE, false},
    {"app.shutdownGrace", NULL, CT_INT, CONFIG_FIELD(shutdownGrace), 0, 3600, CK_NONE, false},
    {"app.allowedOrigins", NULL, CT_LIST, CONFIG_FIELD(allowedOrigins), 0, 0, CK_NONE, false},
    {"app.tlsCert", "IMGATE_TLS_CERT", CT_STR, CONFIG_FIELD(tlsCert), 0, 0, CK_NONE, false},
    {"app.tlsKey", "IMGATE_TLS_KEY", CT_STR, CONFIG_FIELD(tlsKey), 0, 0, CK_NONE, false},
    {"app.ioUring", "IMGATE_IO_URING", CT_BOOL, CONFIG_FIELD(ioUring), 0, 1, CK_NONE, false},
    {"app.perMessageDeflate", NULL, CT_BOOL, CONFIG_FIELD(perMessageDeflate), 0, 1, CK_NONE, false},
    {"app.deflateMinSize", NULL, CT_SIZE, CONFIG_FIELD(deflateMinSize), 0, 1024 * CONFIG_KIB * CONFIG_KIB, CK_NONE, false},
    {"redis.addr", "IMGATE_REDIS", CT_STR, CONFIG_FIELD(redisAddr), 0, 0, CK_NONE, false},
    {"redis.password", NULL, CT_STR, CONFIG_FIELD(redisPassword), 0, 0, CK_NONE, true},
    {"redis.DB", NULL, CT_INT, CONFIG_FIELD(redisDB), 0, INT_MAX, CK_NONE, false},
    {"redis.poolSize", NULL, CT_INT, CONFIG_FIELD(redisPoolSize), 1, 100000, CK_NONE, false},
    {"redis.minIdleConns", NULL, CT_INT, CONFIG_FIELD(redisMinIdleConns), 0, 100000, CK_NONE, false},
    {"redis.sentinels", NULL, CT_LIST, CONFIG_FIELD(redisSentinels), 0, 0, CK_NONE, false},
    {"redis.masterName", NULL, CT_STR, CONFIG_FIELD(redisMasterName), 0, 0, CK_NONE, false},
    {"cluster.registerInterval", NULL, CT_INT, CONFIG_FIELD(registerInterval), 1, 3600, CK_NONE, false},
    {"cluster.serverTimeout", NULL, CT_INT, CONFIG_FIELD(serverTimeout), 2, CONFIG_DAY, CK_NONE, false},
    {"cluster.rpcTimeout", NULL, CT_INT, CONFIG_FIELD(rpcTimeout), 10, 600000, CK_NONE, false},
    {"cluster.redisTimeout", NULL, CT_INT, CONFIG_FIELD(redisTimeout), 10, 600000, CK_NONE, false},
    {"cluster.peerBackoff", NULL, CT_INT, CONFIG_FIELD(peerBackoff), 1, 3600, CK_NONE, false},
    {"cluster.rpcBind", "IMGATE_RPC_BIND", CT_STR, CONFIG_FIELD(rpcBind), 0, 0, CK_NONE, false},
    {"cluster.rpcToken", "IMGATE_RPC_TOKEN", CT_STR, CONFIG_FIELD(rpcToken), 0, 0, CK_NONE, true},
    {"cluster.rpcTlsCert", "IMGATE_RPC_TLS_CERT", CT_STR, CONFIG_FIELD(rpcTlsCert), 0, 0, CK_NONE, false},
    {"cluster.rpcTlsKey", "IMGATE_RPC_TLS_KEY", CT_STR, CONFIG_FIELD(rpcTlsKey), 0, 0, CK_NONE, false},
    {"cluster.rpcTlsCA", "IMGATE_RPC_TLS_CA", CT_STR, CONFIG_FIELD(rpcTlsCA), 0, 0, CK_NONE, false},
    {"im.dedupTtl", NULL, CT_INT, CONFIG_FIELD(dedupTtl), 1, 365 * CONFIG_DAY, CK_NONE, false},
    {"im.dedupMax", NULL, CT_INT, CONFIG_FIELD(dedupMax), 1, INT_MAX, CK_NONE, false},
    {"im.dedupMaxBytes", NULL, CT_SIZE, CONFIG_FIELD(dedupMaxBytes), 64 * CONFIG_KIB, 1024 * CONFIG_KIB * CONFIG_KIB * CONFIG_KIB, CK_NONE, false},
    {"im.presenceEventsMaxRoom", NULL, CT_INT, CONFIG_FIELD(presenceEventsMaxRoom), 0, INT_MAX, CK_NONE, false},
    {"delivery.enabled", NULL, CT_BOOL, CONFIG_FIELD(deliveryEnabled), 0, 1, CK_NONE, false},
    {"delivery.ackRequired", NULL, CT_BOOL, CONFIG_FIELD(ackRequired), 0, 1, CK_NONE, false},
    {"delivery.inboxMax", NULL, CT_INT, CONFIG_FIELD(inboxMax), 1, 10000000, CK_NONE, false},
    {"delivery.inboxTTL", NULL, CT_INT, CONFIG_FIELD(inboxTTL), 1, 365 * CONFIG_DAY, CK_NONE, false},
    {"delivery.roomHistoryMax", NULL, CT_INT, CONFIG_FIELD(roomHistoryMax), 0, 10000000, CK_NONE, false},
    {"delivery.roomHistoryTTL", NULL, CT_INT, CONFIG_FIELD(roomHistoryTTL), 1, 365 * CONFIG_DAY, CK_NONE, false},
    {"delivery.dir", "IMGATE_DELIVERY_DIR", CT_STR, CONFIG_FIELD(deliveryDir), 0, 0, CK_NONE, false},
    {"auth.secret", "IMGATE_AUTH_SECRET", CT_STR, CONFIG_FIELD(authSecret), 0, 0, CK_NONE, true},
    {"auth.apiKey", "IMGATE_API_KEY", CT_STR, CONFIG_FIELD(apiKey), 0, 0, CK_NONE, true},
};

#define CONFIG_NKEYS (sizeof config_keys / sizeof config_keys[0])
#define CONFIG_KEYLEN 128  /* longest "section.key" we look up */

void config_defaults(config *c)
{
    static const uint32_t ids[] = {101, 102, 103, 104};

    memset(c, 0, sizeof *c);
    c->httpPort = 8080;
    c->webSocketPort = 8089;
    c->rpcPort = 9001;
    snprintf(c->httpUrl, sizeof c->httpUrl, "%s", "127.0.0.1:8080");
    snprintf(c->webSocketUrl, sizeof c->webSocketUrl, "%s", "127.0.0.1:8089");
    snprintf(c->bind, sizeof c->bind, "%s", "0.0.0.0");
    memcpy(c->appIDs, ids, sizeof ids);
    c->appIDCount = (int)(sizeof ids / sizeof ids[0]);
    c->connectionTimeout = 360;
    c->pingInterval = 30;
    c->sweepInterval = 10;
    c->handshakeTimeout = 10;
    c->maxMessageSize = 65536;
    c->maxOutboundBytes = 1048576;
    snprintf(c->logLevel, sizeof c->logLevel, "%s", "info");
    c->redisPoolSize = 30;
    c->redisMinIdleConns = 30;
    c->registerInterval = 60;
    c->serverTimeout = 180;
    c->rpcTimeout = 2000;
    c->redisTimeout = 2000;
    c->peerBackoff = 30;
    c->dedupTtl = 43200;
    c->dedupMax = 1000000;
    c->dedupMaxBytes = (size_t)64 * 1024 * 1024;
    c->presenceEventsMaxRoom = 1000;
    c->maxMessagesPerSecond = 100;
    c->maxOutboundBytesTotal = (size_t)512 * 1024 * 1024;
    c->httpIdleTimeout = 60;
    c->maxHttpConnections = 1024;
    c->deflateMinSize = 128;
    c->ioUring = 1;
    c->deliveryEnabled = 1;
    c->inboxMax = 1000;
    c->inboxTTL = 7 * 24 * 3600;
    c->roomHistoryMax = 100;
    c->roomHistoryTTL = 3600;
    c->maxHeaderBytes = 16 * 1024;
    c->maxBodyBytes = 1024 * 1024;
    c->maxListUsers = 10000;
    c->shutdownGrace = 5;
}

/* ---- schema lookup ---------------------------------------------------- */

static const config_key *config_find(const char *key)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].key, key) == 0)
            return &config_keys[i];
    return NULL;
}

/* A key that differs only in case, for the "did you mean" hint. */
static const config_key *config_find_nocase(const char *key)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcasecmp(config_keys[i].key, key) == 0)
            return &config_keys[i];
    return NULL;
}

static bool config_section_known(const char *section)
{
    size_t n = strlen(section);

    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strncmp(config_keys[i].key, section, n) == 0 && config_keys[i].key[n] == '.')
            return true;
    return false;
}

static void config_unknown_reason(const char *key, char *why, size_t len)
{
    const config_key *near = config_find_nocase(key);

    if (near)
        snprintf(why, len, "unknown key (did you mean '%s'?)", near->key);
    else
        snprintf(why, len, "unknown key");
}

/* ---- value parsing ------------------------------------------------------ */

/* Strict decimal integer: optional '-', digits only, no blanks.
 * Returns 0, -1 if not a number, -2 on overflow. */
static int config_parse_ll(const char *s, long long *out)
{
    const char *d = (*s == '-') ? s + 1 : s;
    char *end;

    if (*d < '0' || *d > '9')
        return -1;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (*end != '\0')
        return -1;
    return errno == ERANGE ? -2 : 0;
}

static int config_parse_ranged(const char *s, long long min, long long max,
                               long long *out, char *why, size_t len)
{
    int rc = config_parse_ll(s, out);

    if (rc == -1) {
        snprintf(why, len, "not a number: '%s'", s);
        return -1;
    }
    if (rc == -2 || *out < min || *out > max) {
        snprintf(why, len, "out of range %lld..%lld: '%s'", min, max, s);
        return -1;
    }
    return 0;
}

static int config_check_string(const config_key *k, const char *s, char *why, size_t len)
{
    if (strlen(s) >= k->size) {
        snprintf(why, len, "too long (max %zu bytes)", k->size - 1);
        return -1;
    }
    if (k->check == CK_NONEMPTY && *s == '\0') {
        snprintf(why, len, "must not be empty");
        return -1;
    }
    if (k->check == CK_PATH && *s != '\0' && *s != '/') {
        snprintf(why, len, "must be empty or start with '/': '%s'", s);
        return -1;
    }
    if (k->check == CK_LEVEL && strcmp(s, "debug") != 0 && strcmp(s, "info") != 0 &&
        strcmp(s, "warn") != 0 && strcmp(s, "error") != 0) {
        snprintf(why, len, "must be debug, info, warn or error: '%s'", s);
        return -1;
    }
    return 0;
}

/* ---- the appID list ------------------------------------------------------ */

typedef struct config_ids {
    uint32_t v[CONFIG_MAX_APPIDS];
    int n;
} config_ids;

static int config_ids_add(config_ids *ids, const config_key *k, const char *s,
                          char *why, size_t len)
{
    long long v;

    if (config_parse_ranged(s, k->min, k->max, &v, why, len) < 0)
        return -1;
    if (ids->n == CONFIG_MAX_APPIDS) {
        snprintf(why, len, "too many appIDs (max %d)", CONFIG_MAX_APPIDS);
        return -1;
    }
    for (int i = 0; i < ids->n; i++) {
        if (ids->v[i] == (uint32_t)v) {
            snprintf(why, len, "duplicate appID: %lld", v);
            return -1;
        }
    }
    ids->v[ids->n++] = (uint32_t)v;
    return 0;
}

static int config_ids_store(config *c, const config_ids *ids, char *why, size_t len)
{
    if (ids->n == 0) {
        snprintf(why, len, "must list at least one appID");
        return -1;
    }
    memcpy(c->appIDs, ids->v, (size_t)ids->n * sizeof ids->v[0]);
    c->appIDCount = ids->n;
    return 0;
}

/* "101,102, 103": comma-separated, blanks around items allowed. */
static int config_ids_from_string(config *c, const config_key *k, const char *s,
                                  char *why, size_t len)
{
    config_ids ids = {.n = 0};
    char item[32];

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return config_ids_store(c, &ids, why, len);
    for (;;) {
        size_t n = strcspn(s, ",");
        const char *b = s, *e = s + n;

        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        snprintf(item, sizeof item, "%.*s", (int)(e - b), b);
        if (config_ids_add(&ids, k, item, why, len) < 0)
            return -1;
        if (s[n] == '\0')
            break;
        s += n + 1;
    }
    return config_ids_store(c, &ids, why, len);
}

/* ---- one value from a string (env, flags, YAML scalars) ----------------- */

/* true/false (YAML's spellings: also True/TRUE, yes/no, on/off) or 1/0. */
static int config_parse_bool(const char *s, int *out, char *why, size_t len)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "1"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    snprintf(why, len, "expected true or false, got '%s'", s);
    return -1;
}

static int config_set_key(config *c, const config_key *k, const char *value,
                          char *why, size_t len)
{
    char *field = (char *)c + k->off;
    long long v;

    switch (k->type) {
    case CT_INT:
        if (config_parse_ranged(value, k->min, k->max, &v, why, len) < 0)
            return -1;
        *(int *)(void *)field = (int)v;
        return 0;
    case CT_SIZE:
        if (config_parse_ranged(value, k->min, k->max, &v, why, len) < 0)
            return -1;
        if ((unsigned long long)v > SIZE_MAX) {
            snprintf(why, len, "out of range for this platform: '%s'", value);
            return -1;
        }
        *(size_t *)(void *)field = (size_t)v;
        return 0;
    case CT_STR:
    case CT_LIST:
        if (config_check_string(k, value, why, len) < 0)
            return -1;
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case CT_APPIDS:
        return config_ids_from_string(c, k, value, why, len);
    case CT_BOOL:
        return config_parse_bool(value, (int *)(void *)field, why, len);
    }
    snprintf(why, len, "internal error: bad key type");
    return -1;
}

int config_set(config *c, const char *key, const char *value, char *err, size_t errlen)
{
    const config_key *k = config_find(key);
    char why[256];

    if (!k) {
        config_unknown_reason(key, why, sizeof why);
        snprintf(err, errlen, "key '%s': %s", key, why);
        return -1;
    }
    return config_set_key(c, k, value, err, errlen);
}

/* ---- environment -------------------------------------------------------- */

int config_apply_env(config *c, char *err, size_t errlen)
{
    config tmp = *c;
    char why[256];

    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const config_key *k = &config_keys[i];
        const char *v = k->env ? getenv(k->env) : NULL;

        if (!v)
            continue;
        if (config_set_key(&tmp, k, v, why, sizeof why) < 0) {
            snprintf(err, errlen, "%s: %s", k->env, why);
            return -1;
        }
    }
    *c = tmp;
    return 0;
}

/* ---- YAML file ---------------------------------------------------------- */

/* Everything one load needs, so the walkers keep short argument lists. */
typedef struct config_loader {
    config *c;
    yaml_document_t *doc;
    const char *file;
    char *err;
    size_t errlen;
} config_loader;

static int config_fail(config_loader *L, const yaml_node_t *at, const char *key,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int config_fail(config_loader *L, const yaml_node_t *at, const char *key,
                       const char *fmt, ...)
{
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (key)
        snprintf(L->err, L->errlen, "%s:%zu: key '%s': %s", L->file,
                 at->start_mark.line + 1, key, why);
    else
        snprintf(L->err, L->errlen, "%s:%zu: %s", L->file, at->start_mark.line + 1, why);
    return -1;
}

static const char *config_node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a sequence";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

static const char *config_scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool config_is_null(const yaml_node_t *n)
{
    const char *s;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = config_scalar(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

static const char *config_expected(const config_key *k)
{
    switch (k->type) {
    case CT_STR: return "a string";
    case CT_APPIDS: return "a list of numbers";
    case CT_LIST: return "a string or a list of strings";
    case CT_BOOL: return "true or false";
    default: return "a number";
    }
}

/* Checks a scalar's shape for key k: a number must be plain, a null string
 * means "". Sets *value to the text to parse. */
static int config_scalar_value(config_loader *L, const config_key *k,
                               const yaml_node_t *v, const char **value)
{
    if (strlen(config_scalar(v)) != v->data.scalar.length)
        return config_fail(L, v, k->key, "contains a NUL byte");
    if (k->type == CT_STR || k->type == CT_LIST) {
        *value = config_is_null(v) ? "" : config_scalar(v);
        return 0;
    }
    if (config_is_null(v))
        return config_fail(L, v, k->key, "missing value, expected %s", config_expected(k));
    if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return config_fail(L, v, k->key, "expected %s, got a quoted string: '%s'",
                           config_expected(k), config_scalar(v));
    *value = config_scalar(v);
    return 0;
}

static int config_load_ids(config_loader *L, const config_key *k, const yaml_node_t *seq)
{
    config_ids ids = {.n = 0};
    char why[256];

    for (yaml_node_item_t *it = seq->data.sequence.items.start;
         it < seq->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(L->doc, *it);
        const char *s;

        if (item->type != YAML_SCALAR_NODE)
            return config_fail(L, item, k->key, "expected a number in the list, got %s",
                               config_node_kind(item));
        if (config_scalar_value(L, k, item, &s) < 0)
            return -1;
        if (config_ids_add(&ids, k, s, why, sizeof why) < 0)
            return config_fail(L, item, k->key, "%s", why);
    }
    if (config_ids_store(L->c, &ids, why, sizeof why) < 0)
        return config_fail(L, seq, k->key, "%s", why);
    return 0;
}

#define CONFIG_LIST_LEN 1024       /* the largest CT_LIST field */
_Static_assert(sizeof(((config *)0)->allowedOrigins) <= CONFIG_LIST_LEN, "CONFIG_LIST_LEN");

/* One item of a CT_LIST sequence: a non-empty string. */
static int config_list_item(config_loader *L, const config_key *k, const yaml_node_t *item,
                            const char **s)
{
    if (item->type != YAML_SCALAR_NODE)
        return config_fail(L, item, k->key, "expected a string in the list, got %s",
                           config_node_kind(item));
    if (config_is_null(item))
        return config_fail(L, item, k->key, "expected a string in the list, got null");
    if (config_scalar_value(L, k, item, s) < 0)
        return -1;
    if ((*s)[strspn(*s, " \t")] == '\0')
        return config_fail(L, item, k->key, "an empty string in the list");
    return 0;
}

/* A CT_LIST given as a YAML sequence: its items joined with commas. */
static int config_load_list(config_loader *L, const config_key *k, const yaml_node_t *seq)
{
    char joined[CONFIG_LIST_LEN] = "", why[256];
    size_t n = 0;

    if (seq->data.sequence.items.start == seq->data.sequence.items.top)
        return config_fail(L, seq, k->key, "an empty list (to leave it unset, write \"\")");
    for (yaml_node_item_t *it = seq->data.sequence.items.start;
         it < seq->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(L->doc, *it);
        const char *s;

        if (config_list_item(L, k, item, &s) < 0)
            return -1;
        if (n + (n > 0) + strlen(s) >= k->size)
            return config_fail(L, item, k->key, "too long (max %zu bytes joined with commas)",
                               k->size - 1);
        n += (size_t)snprintf(joined + n, sizeof joined - n, "%s%s", n ? "," : "", s);
    }
    if (config_set_key(L->c, k, joined, why, sizeof why) < 0)
        return config_fail(L, seq, k->key, "%s", why);
    return 0;
}

static int config_load_value(config_loader *L, const config_key *k, const yaml_node_t *v)
{
    const char *s;
    char why[256];

    if (k->type == CT_APPIDS && v->type == YAML_SEQUENCE_NODE)
        return config_load_ids(L, k, v);
    if (k->type == CT_LIST && v->type == YAML_SEQUENCE_NODE)
        return config_load_list(L, k, v);
    if (v->type != YAML_SCALAR_NODE)
        return config_fail(L, v, k->key, "expected %s, got %s", config_expected(k),
                           config_node_kind(v));
    if (config_scalar_value(L, k, v, &s) < 0)
        return -1;
    if (config_set_key(L->c, k, s, why, sizeof why) < 0)
        return config_fail(L, v, k->key, "%s", why);
    return 0;
}

/* Is the key of pair i equal to the key of an earlier pair of the mapping? */
static bool config_dup_key(yaml_document_t *doc, const yaml_node_t *map, const yaml_node_pair_t *p)
{
    const char *name = config_scalar(yaml_document_get_node(doc, p->key));

    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
        if (!strcmp(config_scalar(yaml_document_get_node(doc, q->key)), name))
            return true;
    return false;
}

static int config_load_section(config_loader *L, const char *section, const yaml_node_t *map)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        char path[CONFIG_KEYLEN], why[256];
        const config_key *k;

        if (kn->type != YAML_SCALAR_NODE)
            return config_fail(L, kn, section, "a key must be a string, got %s",
                               config_node_kind(kn));
        snprintf(path, sizeof path, "%s.%s", section, config_scalar(kn));
        k = config_find(path);
        if (!k) {
            config_unknown_reason(path, why, sizeof why);
            return config_fail(L, kn, path, "%s", why);
        }
        if (config_dup_key(L->doc, map, p))
            return config_fail(L, kn, path, "duplicate key");
        if (config_load_value(L, k, yaml_document_get_node(L->doc, p->value)) < 0)
            return -1;
    }
    return 0;
}

static int config_load_root(config_loader *L, const yaml_node_t *root)
{
    if (config_is_null(root))
        return 0;
    if (root->type != YAML_MAPPING_NODE)
        return config_fail(L, root, NULL, "expected a mapping of sections (app:, redis:, cluster:, im:, auth:), got %s",
                           config_node_kind(root));
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        const char *name;

        if (kn->type != YAML_SCALAR_NODE)
            return config_fail(L, kn, NULL, "a section name must be a string, got %s",
                               config_node_kind(kn));
        name = config_scalar(kn);
        if (!config_section_known(name))
            return config_fail(L, kn, name, "unknown section");
        if (config_dup_key(L->doc, root, p))
            return config_fail(L, kn, name, "duplicate section");
        if (config_is_null(vn))
            continue;
        if (vn->type != YAML_MAPPING_NODE)
            return config_fail(L, vn, name, "expected a mapping, got %s", config_node_kind(vn));
        if (config_load_section(L, name, vn) < 0)
            return -1;
    }
    return 0;
}

static int config_yaml_error(config_loader *L, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "cannot parse";

    if (p->error == YAML_MEMORY_ERROR) {
        snprintf(L->err, L->errlen, "%s: out of memory", L->file);
        return -1;
    }
    snprintf(L->err, L->errlen, "%s:%zu: malformed YAML: %s", L->file,
             p->problem_mark.line + 1, problem);
    return -1;
}

/* Parses the stream: exactly one document (or none), walked into L->c. */
static int config_parse(config_loader *L, yaml_parser_t *parser)
{
    yaml_document_t doc, extra;
    yaml_node_t *root;
    int rc = 0;

    if (!yaml_parser_load(parser, &doc))
        return config_yaml_error(L, parser);
    L->doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root)
        rc = config_load_root(L, root);
    if (rc == 0 && !yaml_parser_load(parser, &extra)) {
        rc = config_yaml_error(L, parser);
    } else if (rc == 0) {
        yaml_node_t *more = yaml_document_get_root_node(&extra);

        if (more)
            rc = config_fail(L, more, NULL, "a config file holds one YAML document");
        yaml_document_delete(&extra);
    }
    yaml_document_delete(&doc);
    return rc;
}

static int config_open(const char *path, int must_exist, FILE **out, char *err, size_t errlen)
{
    struct stat st;
    FILE *f = fopen(path, "rb");

    *out = NULL;
    if (!f) {
        if (errno == ENOENT && !must_exist)
            return 0;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(EISDIR));
        return -1;
    }
    *out = f;
    return 0;
}

int config_load_file(config *c, const char *path, int must_exist, char *err, size_t errlen)
{
    config tmp = *c;
    config_loader L = {.c = &tmp, .doc = NULL, .file = path, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    FILE *f;
    int rc;

    if (config_open(path, must_exist, &f, err, errlen) < 0)
        return -1;
    if (!f)
        return 0;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    rc = config_parse(&L, &parser);
    yaml_parser_delete(&parser);
    if (ferror(f) && rc == 0) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    fclose(f);
    if (rc == 0)
        *c = tmp;
    return rc;
}

/* ---- cross-field rules ---------------------------------------------------- */

static int config_invalid(char *err, size_t errlen, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int config_invalid(char *err, size_t errlen, const char *key, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "key '%s': %s", key, why);
    return -1;
}

static int config_validate_ports(const config *c, char *err, size_t errlen)
{
    bool cluster = c->redisAddr[0] != '\0';

    if (c->httpPort != 0 && c->httpPort == c->webSocketPort)
        return config_invalid(err, errlen, "app.webSocketPort",
                              "same port as app.httpPort (%d)", c->httpPort);
    if (cluster && c->rpcPort != 0 && c->rpcPort == c->httpPort)
        return config_invalid(err, errlen, "app.rpcPort",
                              "same port as app.httpPort (%d)", c->httpPort);
    if (cluster && c->rpcPort != 0 && c->rpcPort == c->webSocketPort)
        return config_invalid(err, errlen, "app.rpcPort",
                              "same port as app.webSocketPort (%d)", c->webSocketPort);
    return 0;
}

static int config_validate_timing(const config *c, char *err, size_t errlen)
{
    if (c->sweepInterval < 1)
        return config_invalid(err, errlen, "app.sweepInterval", "must be at least 1");
    if (c->pingInterval > 0 && c->connectionTimeout > 0 &&
        c->pingInterval >= c->connectionTimeout)
        return config_invalid(err, errlen, "app.pingInterval",
                              "%d must be less than app.connectionTimeout (%d)",
                              c->pingInterval, c->connectionTimeout);
    return 0;
}

/* cluster.rpcToken goes out as an HTTP/2 header value ("Bearer <token>"):
 * visible ASCII only. The three cluster.rpcTls* files come together. */
static int config_validate_rpc(const config *c, char *err, size_t errlen)
{
    for (const char *p = c->rpcToken; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return config_invalid(err, errlen, "cluster.rpcToken",
                                  "only visible ASCII characters (no spaces or control characters)");
    const char *names[3] = { "cluster.rpcTlsCert", "cluster.rpcTlsKey", "cluster.rpcTlsCA" };
    const char *vals[3] = { c->rpcTlsCert, c->rpcTlsKey, c->rpcTlsCA };
    int set = 0;
    for (int i = 0; i < 3; i++)
        set += vals[i][0] != '\0';
    for (int i = 0; set > 0 && set < 3 && i < 3; i++)
        if (!vals[i][0])
            return config_invalid(err, errlen, names[i],
                                  "cluster.rpcTlsCert, cluster.rpcTlsKey and cluster.rpcTlsCA must be "
                                  "set together (or all left empty)");
    return 0;
}

int config_validate(const config *c, char *err, size_t errlen)
{
    if (config_validate_ports(c, err, errlen) < 0 || config_validate_timing(c, err, errlen) < 0 ||
        config_validate_rpc(c, err, errlen) < 0)
        return -1;
    if (c->appIDCount < 1 || c->appIDCount > CONFIG_MAX_APPIDS)
        return config_invalid(err, errlen, "app.appIDs", "must list 1..%d appIDs",
                              CONFIG_MAX_APPIDS);
    if (c->maxOutboundBytes < c->maxMessageSize)
        return config_invalid(err, errlen, "app.maxOutboundBytes",
                              "%zu must be at least app.maxMessageSize (%zu)",
                              c->maxOutboundBytes, c->maxMessageSize);
    if (strcmp(c->echoPath, "/acc") == 0)
        return config_invalid(err, errlen, "app.echoPath", "'/acc' is the WebSocket endpoint");
    if (!c->tlsCert[0] != !c->tlsKey[0])
        return config_invalid(err, errlen, c->tlsCert[0] ? "app.tlsKey" : "app.tlsCert",
                              "app.tlsCert and app.tlsKey must be set together (or both left empty)");
    return 0;
}

/* ---- dump --------------------------------------------------------------- */

/* A YAML double-quoted scalar. */
/* Characters YAML will not read back as themselves inside a double-quoted
 * scalar, written as escapes: C0/C1 controls and DEL, U+FFFE/U+FFFF, and
 * the line/paragraph separators (which a loader folds). Returns the bytes
 * consumed at s (0 = an ordinary byte). */
static size_t config_dump_escape(FILE *out, const unsigned char *s)
{
    if (s[0] < 0x20 || s[0] == 0x7f) {
        fprintf(out, "\\x%02x", s[0]);
        return 1;
    }
    if (s[0] == 0xC2 && s[1] >= 0x80 && s[1] <= 0x9F) {
        fprintf(out, "\\x%02x", s[1]);
        return 2;
    }
    if (s[0] == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF)) {
        fprintf(out, "\\u%s", s[2] == 0xBE ? "FFFE" : "FFFF");
        return 3;
    }
    if (s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9)) {
        fprintf(out, "\\u%s", s[2] == 0xA8 ? "2028" : "2029");
        return 3;
    }
    return 0;
}

static void config_dump_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    fputc('"', out);
    while (*p) {
        size_t n = config_dump_escape(out, p);

        if (n) {
            p += n;
            continue;
        }
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p++, out);
    }
    fputc('"', out);
}

static void config_dump_value(FILE *out, const config *c, const config_key *k)
{
    const char *field = (const char *)c + k->off;

    switch (k->type) {
    case CT_INT:
        fprintf(out, "%d", *(const int *)(const void *)field);
        break;
    case CT_SIZE:
        fprintf(out, "%zu", *(const size_t *)(const void *)field);
        break;
    case CT_STR:
    case CT_LIST:
        config_dump_string(out, k->secret && *field ? "***" : field);
        break;
    case CT_BOOL:
        fputs(*(const int *)(const void *)field ? "true" : "false", out);
        break;
    case CT_APPIDS:
        fputc('[', out);
        for (int i = 0; i < c->appIDCount; i++)
            fprintf(out, "%s%u", i ? ", " : "", (unsigned)c->appIDs[i]);
        fputc(']', out);
        break;
    }
}

int config_dump(const config *c, FILE *out)
{
    size_t seclen = 0;
    const char *section = "";

    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const config_key *k = &config_keys[i];
        const char *dot = strchr(k->key, '.');

        if ((size_t)(dot - k->key) != seclen || strncmp(k->key, section, seclen) != 0) {
            section = k->key;
            seclen = (size_t)(dot - k->key);
            fprintf(out, "%.*s:\n", (int)seclen, section);
        }
        fprintf(out, "  %s: ", dot + 1);
        config_dump_value(out, c, k);
        if (k->env)
            fprintf(out, "    # %s", k->env);
        fputc('\n', out);
    }
    return ferror(out) ? -1 : 0;
}
