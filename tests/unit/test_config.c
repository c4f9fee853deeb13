/* test_config.c — unit tests for core/config: defaults, the shipped
 * config/app.yaml, a full custom file, every loader error with its exact
 * "FILE:LINE: key '...': reason", the IMGATE_* layer, config_set,
 * config_validate and the --help dump. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"

/* ---- helpers ------------------------------------------------------------ */

static void assert_config_equal(const config *a, const config *b)
{
    assert_string_equal(a->logFile, b->logFile);
    assert_int_equal(a->httpPort, b->httpPort);
    assert_int_equal(a->webSocketPort, b->webSocketPort);
    assert_int_equal(a->rpcPort, b->rpcPort);
    assert_string_equal(a->httpUrl, b->httpUrl);
    assert_string_equal(a->webSocketUrl, b->webSocketUrl);
    assert_string_equal(a->bind, b->bind);
    assert_string_equal(a->advertiseIp, b->advertiseIp);
    assert_int_equal(a->workers, b->workers);
    assert_int_equal(a->appIDCount, b->appIDCount);
    for (int i = 0; i < a->appIDCount; i++)
        assert_int_equal(a->appIDs[i], b->appIDs[i]);
    assert_int_equal(a->connectionTimeout, b->connectionTimeout);
    assert_int_equal(a->pingInterval, b->pingInterval);
    assert_int_equal(a->sweepInterval, b->sweepInterval);
    assert_int_equal(a->handshakeTimeout, b->handshakeTimeout);
    assert_int_equal(a->maxMessageSize, b->maxMessageSize);
    assert_int_equal(a->maxOutboundBytes, b->maxOutboundBytes);
    assert_string_equal(a->echoPath, b->echoPath);
    assert_int_equal(a->maxConnections, b->maxConnections);
    assert_int_equal(a->maxHttpConnections, b->maxHttpConnections);
    assert_string_equal(a->logLevel, b->logLevel);
    assert_string_equal(a->requestLog, b->requestLog);
    assert_string_equal(a->redisAddr, b->redisAddr);
    assert_string_equal(a->redisPassword, b->redisPassword);
    assert_int_equal(a->redisDB, b->redisDB);
    assert_int_equal(a->redisPoolSize, b->redisPoolSize);
    assert_int_equal(a->redisMinIdleConns, b->redisMinIdleConns);
    assert_int_equal(a->dedupTtl, b->dedupTtl);
    assert_int_equal(a->dedupMax, b->dedupMax);
    assert_int_equal(a->dedupMaxBytes, b->dedupMaxBytes);
    assert_string_equal(a->allowedOrigins, b->allowedOrigins);
    assert_string_equal(a->rpcBind, b->rpcBind);
    assert_string_equal(a->rpcTlsCert, b->rpcTlsCert);
    assert_string_equal(a->rpcTlsKey, b->rpcTlsKey);
    assert_string_equal(a->rpcTlsCA, b->rpcTlsCA);
}

/* Writes text to a new temporary file; its name goes to path[64]. */
static void write_temp(char *path, const char *text)
{
    int fd;
    size_t n = strlen(text);

    snprintf(path, 64, "/tmp/imgate_test_config_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

/* Loads text over the defaults; returns the loader's result. */
static int load_text(config *c, const char *text, char *err, size_t errlen, char *path)
{
    int rc;

    config_defaults(c);
    write_temp(path, text);
    rc = config_load_file(c, path, 1, err, errlen);
    assert_int_equal(unlink(path), 0);
    return rc;
}

static int file_exists(const char *path)
{
    return access(path, R_OK) == 0;
}

/* out = dir/rel; true if that file exists. */
static int try_dir(char *out, size_t len, const char *dir, const char *rel)
{
    int n = snprintf(out, len, "%s/%s", dir, rel);

    return n > 0 && (size_t)n < len && file_exists(out);
}

/* Three levels above this file (tests/unit/x.c): the repository root. */
static int source_root(char *dir, size_t len)
{
    char *slash;

    if (snprintf(dir, len, "%s", __FILE__) >= (int)len)
        return 0;
    for (int up = 0; up < 3; up++) {
        slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else if (up == 2)
            snprintf(dir, len, ".");
        else
            return 0;
    }
    if (!*dir)
        snprintf(dir, len, "/");
    return 1;
}

/* Finds rel in the repository: the IMGATE_SOURCE_DIR macro or variable,
 * the root above this source file, or the cwd and its parents. */
static void repo_file(const char *rel, char *out, size_t len)
{
    const char *env = getenv("IMGATE_SOURCE_DIR");
    char dir[PATH_MAX];
    char *slash;

#ifdef IMGATE_SOURCE_DIR
    if (try_dir(out, len, IMGATE_SOURCE_DIR, rel))
        return;
#endif
    if (env && try_dir(out, len, env, rel))
        return;
    if (source_root(dir, sizeof dir) && try_dir(out, len, dir, rel))
        return;
    assert_non_null(getcwd(dir, sizeof dir));
    while (!try_dir(out, len, dir, rel)) {
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            fail_msg("cannot find %s (set IMGATE_SOURCE_DIR)", rel);
        *slash = '\0';
    }
}

/* ---- defaults and the shipped file -------------------------------------- */

static void test_defaults(void **state)
{
    config c;

    (void)state;
    memset(&c, 0x5a, sizeof c);
    config_defaults(&c);
    assert_string_equal(c.logFile, "");
    assert_int_equal(c.httpPort, 8080);
    assert_int_equal(c.webSocketPort, 8089);
    assert_int_equal(c.rpcPort, 9001);
    assert_string_equal(c.httpUrl, "127.0.0.1:8080");
    assert_string_equal(c.webSocketUrl, "127.0.0.1:8089");
    assert_string_equal(c.bind, "0.0.0.0");
    assert_string_equal(c.advertiseIp, "");
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.appIDCount, 4);
    assert_int_equal(c.appIDs[0], 101);
    assert_int_equal(c.appIDs[3], 104);
    assert_int_equal(c.connectionTimeout, 360);
    assert_int_equal(c.pingInterval, 30);
    assert_int_equal(c.sweepInterval, 10);
    assert_int_equal(c.handshakeTimeout, 10);
    assert_int_equal(c.maxMessageSize, 65536);
    assert_int_equal(c.maxOutboundBytes, 1048576);
    assert_string_equal(c.echoPath, "");
    assert_int_equal(c.maxConnections, 0);
    assert_int_equal(c.maxHttpConnections, 1024);
    assert_string_equal(c.logLevel, "info");
    assert_string_equal(c.requestLog, "");
    assert_string_equal(c.redisAddr, "");
    assert_string_equal(c.redisPassword, "");
    assert_int_equal(c.redisDB, 0);
    assert_int_equal(c.redisPoolSize, 30);
    assert_int_equal(c.redisMinIdleConns, 30);
    assert_int_equal(c.dedupTtl, 43200);
    assert_int_equal(c.dedupMax, 1000000);
    assert_int_equal(c.dedupMaxBytes, 64 * 1024 * 1024);
}

static void test_defaults_are_valid(void **state)
{
    config c;
    char err[256] = "";

    (void)state;
    config_defaults(&c);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
}

static void test_shipped_file_equals_defaults(void **state)
{
    config c, d;
    char path[PATH_MAX], err[512] = "";

    (void)state;
    repo_file("config/app.yaml", path, sizeof path);
    config_defaults(&d);
    memset(&c, 0, sizeof c);
    config_defaults(&c);
    c.httpPort = 1;            /* the file must set it back */
    c.appIDCount = 1;
    assert_int_equal(config_load_file(&c, path, 1, err, sizeof err), 0);
    assert_config_equal(&c, &d);
}

/* Every key of the schema (as config_dump lists it) is in the shipped file. */
static void test_shipped_file_lists_every_key(void **state)
{
    char path[PATH_MAX], line[512], shipped[8192] = "";
    char *dump = NULL;
    size_t dumplen = 0, n;
    FILE *f, *mem;
    config c;
    int keys = 0;

    (void)state;
    repo_file("config/app.yaml", path, sizeof path);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(shipped, 1, sizeof shipped - 1, f);
    shipped[n] = '\0';
    fclose(f);

    config_defaults(&c);
    mem = open_memstream(&dump, &dumplen);
    assert_non_null(mem);
    assert_int_equal(config_dump(&c, mem), 0);
    assert_int_equal(fclose(mem), 0);
    for (char *p = dump; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] ? 1 : 0)) {
        size_t len = strcspn(p, ":");

        snprintf(line, sizeof line, "\n%.*s:", (int)len, p);
        assert_non_null(strstr(shipped, line));
        keys++;
    }
    assert_true(keys >= 30);     /* 3 sections + 27 keys */
    free(dump);
}

/* ---- files that load ------------------------------------------------------ */

static const char full_yaml[] =
    "# a comment\n"
    "app:\n"
    "  logFile: log/imgate.log\n"
    "  httpPort: 8081\n"
    "  webSocketPort: 8090\n"
    "  rpcPort: 9002\n"
    "  httpUrl: im.example.com\n"
    "  webSocketUrl: 'im.example.com:443'\n"
    "  bind: 127.0.0.1\n"
    "  advertiseIp: 10.0.0.5\n"
    "  workers: 4\n"
    "  appIDs:\n"
    "    - 7\n"
    "    - 4294967295\n"
    "  connectionTimeout: 120\n"
    "  pingInterval: 0\n"
    "  sweepInterval: 1\n"
    "  handshakeTimeout: 5\n"
    "  maxMessageSize: 1024\n"
    "  maxOutboundBytes: 4096\n"
    "  echoPath: /echo\n"
    "  maxConnections: 50000\n"
    "  logLevel: debug\n"
    "  requestLog: log/req.log\n"
    "redis:\n"
    "  addr: \"localhost:6379\"\n"
    "  password: 123456\n"
    "  DB: 3\n"
    "  poolSize: 10\n"
    "  minIdleConns: 2\n"
    "im:\n"
    "  dedupTtl: 60\n"
    "  dedupMax: 500\n"
    "  dedupMaxBytes: 1048576\n";

static void check_full(const config *c)
{
    assert_string_equal(c->logFile, "log/imgate.log");
    assert_int_equal(c->httpPort, 8081);
    assert_int_equal(c->webSocketPort, 8090);
    assert_int_equal(c->rpcPort, 9002);
    assert_string_equal(c->httpUrl, "im.example.com");
    assert_string_equal(c->webSocketUrl, "im.example.com:443");
    assert_string_equal(c->bind, "127.0.0.1");
    assert_string_equal(c->advertiseIp, "10.0.0.5");
    assert_int_equal(c->workers, 4);
    assert_int_equal(c->appIDCount, 2);
    assert_int_equal(c->appIDs[0], 7);
    assert_int_equal(c->appIDs[1], 4294967295u);
    assert_int_equal(c->connectionTimeout, 120);
    assert_int_equal(c->pingInterval, 0);
    assert_int_equal(c->sweepInterval, 1);
    assert_int_equal(c->handshakeTimeout, 5);
    assert_int_equal(c->maxMessageSize, 1024);
    assert_int_equal(c->maxOutboundBytes, 4096);
    assert_string_equal(c->echoPath, "/echo");
    assert_int_equal(c->maxConnections, 50000);
    assert_string_equal(c->logLevel, "debug");
    assert_string_equal(c->requestLog, "log/req.log");
    assert_string_equal(c->redisAddr, "localhost:6379");
    assert_string_equal(c->redisPassword, "123456");
    assert_int_equal(c->redisDB, 3);
    assert_int_equal(c->redisPoolSize, 10);
    assert_int_equal(c->redisMinIdleConns, 2);
    assert_int_equal(c->dedupTtl, 60);
    assert_int_equal(c->dedupMax, 500);
    assert_int_equal(c->dedupMaxBytes, 1048576);
}

static void test_full_file(void **state)
{
    config c;
    char path[64], err[512] = "";

    (void)state;
    assert_int_equal(load_text(&c, full_yaml, err, sizeof err, path), 0);
    check_full(&c);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
}

/* The original goWebSocket file (seed 4.3) loads as is. */
static void test_original_file(void **state)
{
    static const char original[] =
        "app:\n"
        "  logFile: log/gin.log # log file\n"
        "  httpPort: 8080 # http port\n"
        "  webSocketPort: 8089\n"
        "  rpcPort: 9001\n"
        "  httpUrl: 127.0.0.1:8080\n"
        "  webSocketUrl:  127.0.0.1:8089\n"
        "\n\n"
        "redis:\n"
        "  addr: \"localhost:6379\"\n"
        "  password: \"\"\n"
        "  DB: 0\n"
        "  poolSize: 30\n"
        "  minIdleConns: 30\n";
    config c;
    char path[64], err[512] = "";

    (void)state;
    assert_int_equal(load_text(&c, original, err, sizeof err, path), 0);
    assert_string_equal(c.logFile, "log/gin.log");
    assert_string_equal(c.webSocketUrl, "127.0.0.1:8089");
    assert_string_equal(c.redisAddr, "localhost:6379");
    assert_int_equal(c.redisPoolSize, 30);
}

static void test_empty_files_mean_defaults(void **state)
{
    static const char *const texts[] = {
        "", "\n\n", "# only\n  # comments\n", "---\n", "~\n", "redis:\n", "app:\nredis: ~\nim:\n",
    };
    config c, d;
    char path[64], err[512];

    (void)state;
    config_defaults(&d);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        err[0] = '\0';
        if (load_text(&c, texts[i], err, sizeof err, path) != 0)
            fail_msg("text %zu: %s", i, err);
        assert_config_equal(&c, &d);
    }
}

static void test_null_string_means_empty(void **state)
{
    config c;
    char path[64], err[512] = "";

    (void)state;
    assert_int_equal(load_text(&c, "app:\n  httpUrl:\n  webSocketUrl: ~\n", err, sizeof err, path), 0);
    assert_string_equal(c.httpUrl, "");
    assert_string_equal(c.webSocketUrl, "");
}

static void test_missing_file(void **state)
{
    config c, d;
    char err[512] = "";
    const char *path = "/nonexistent-imgate/app.yaml";

    (void)state;
    config_defaults(&c);
    config_defaults(&d);
    assert_int_equal(config_load_file(&c, path, 0, err, sizeof err), 0);
    assert_config_equal(&c, &d);
    assert_int_equal(config_load_file(&c, path, 1, err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent-imgate/app.yaml: cannot open: No such file or directory");
    assert_int_equal(config_load_file(&c, "/tmp", 0, err, sizeof err), -1);
    assert_string_equal(err, "/tmp: cannot open: Is a directory");
}

/* ---- files that do not load ----------------------------------------------- */

typedef struct bad_case {
    const char *text;
    int line;
    const char *msg;     /* what follows "FILE:LINE: " */
} bad_case;

static const bad_case bad_cases[] = {
    {"app:\n  httpPort: abc\n", 2, "key 'app.httpPort': not a number: 'abc'"},
    {"app:\n  httpPort: 12abc\n", 2, "key 'app.httpPort': not a number: '12abc'"},
    {"app:\n  httpPort: 0x1f\n", 2, "key 'app.httpPort': not a number: '0x1f'"},
    {"app:\n  httpPort: 8080.5\n", 2, "key 'app.httpPort': not a number: '8080.5'"},
    {"app:\n  httpPort: 70000\n", 2, "key 'app.httpPort': out of range 0..65535: '70000'"},
    {"app:\n  rpcPort: -1\n", 2, "key 'app.rpcPort': out of range 0..65535: '-1'"},
    {"app:\n  webSocketPort: 99999999999999999999\n", 2,
     "key 'app.webSocketPort': out of range 0..65535: '99999999999999999999'"},
    {"app:\n  httpPort: \"8080\"\n", 2,
     "key 'app.httpPort': expected a number, got a quoted string: '8080'"},
    {"app:\n\n  httpPort:\n", 3, "key 'app.httpPort': missing value, expected a number"},
    {"app:\n  httpPort: [1]\n", 2, "key 'app.httpPort': expected a number, got a sequence"},
    {"app:\n  bind: {a: 1}\n", 2, "key 'app.bind': expected a string, got a mapping"},
    {"app:\n  maxMessageSize: -5\n", 2,
     "key 'app.maxMessageSize': out of range 1..1073741824: '-5'"},
    {"app:\n  maxOutboundBytes: -1\n", 2,
     "key 'app.maxOutboundBytes': out of range 1..68719476736: '-1'"},
    {"app:\n  sweepInterval: 0\n", 2, "key 'app.sweepInterval': out of range 1..3600: '0'"},
    {"redis:\n  poolSize: 0\n", 2, "key 'redis.poolSize': out of range 1..100000: '0'"},
    {"im:\n  dedupMax: x\n", 2, "key 'im.dedupMax': not a number: 'x'"},
    {"im:\n  dedupMaxBytes: 65535\n", 2,
     "key 'im.dedupMaxBytes': out of range 65536..1099511627776: '65535'"},
    {"app:\n  logLevel: verbose\n", 2,
     "key 'app.logLevel': must be debug, info, warn or error: 'verbose'"},
    {"app:\n  logLevel: INFO\n", 2,
     "key 'app.logLevel': must be debug, info, warn or error: 'INFO'"},
    {"app:\n  echoPath: echo\n", 2, "key 'app.echoPath': must be empty or start with '/': 'echo'"},
    {"app:\n  bind: \"\"\n", 2, "key 'app.bind': must not be empty"},
    {"app:\n  httpPort: 1\n  bogus: 1\n", 3, "key 'app.bogus': unknown key"},
    {"app:\n  httpport: 1\n", 2, "key 'app.httpport': unknown key (did you mean 'app.httpPort'?)"},
    {"redis:\n  db: 1\n", 2, "key 'redis.db': unknown key (did you mean 'redis.DB'?)"},
    {"app:\n  httpPort: 1\nfoo:\n  x: 1\n", 3, "key 'foo': unknown section"},
    {"App:\n  httpPort: 1\n", 1, "key 'App': unknown section"},
    {"app:\n  httpPort: 1\n  httpPort: 2\n", 3, "key 'app.httpPort': duplicate key"},
    {"app:\n  httpPort: 1\napp:\n  rpcPort: 2\n", 3, "key 'app': duplicate section"},
    {"app: 5\n", 1, "key 'app': expected a mapping, got a scalar"},
    {"redis:\n  - addr\n", 2, "key 'redis': expected a mapping, got a sequence"},
    {"- app\n", 1, "expected a mapping of sections (app:, redis:, cluster:, im:, auth:), got a sequence"},
    {"just text\n", 1, "expected a mapping of sections (app:, redis:, cluster:, im:, auth:), got a scalar"},
    {"app:\n  appIDs: [101, x]\n", 2, "key 'app.appIDs': not a number: 'x'"},
    {"app:\n  appIDs:\n    - 101\n    - 0\n", 4, "key 'app.appIDs': out of range 1..4294967295: '0'"},
    {"app:\n  appIDs: [1, 4294967296]\n", 2,
     "key 'app.appIDs': out of range 1..4294967295: '4294967296'"},
    {"app:\n  appIDs: [1, \"2\"]\n", 2,
     "key 'app.appIDs': expected a list of numbers, got a quoted string: '2'"},
    {"app:\n  appIDs: [1, [2]]\n", 2, "key 'app.appIDs': expected a number in the list, got a sequence"},
    {"app:\n  appIDs: [5, 6, 5]\n", 2, "key 'app.appIDs': duplicate appID: 5"},
    {"app:\n  appIDs: []\n", 2, "key 'app.appIDs': must list at least one appID"},
    {"app:\n  appIDs: {a: 1}\n", 2, "key 'app.appIDs': expected a list of numbers, got a mapping"},
    {"app:\n  httpPort: 1\n---\nim:\n  dedupMax: 5\n", 4, "a config file holds one YAML document"},
    {"app:\n  [a]: 1\n", 2, "key 'app': a key must be a string, got a sequence"},
    {"app:\n  allowedOrigins:\n    - https://a.com\n    - {x: 1}\n", 4,
     "key 'app.allowedOrigins': expected a string in the list, got a mapping"},
    {"app:\n  allowedOrigins: [https://a.com, [b]]\n", 2,
     "key 'app.allowedOrigins': expected a string in the list, got a sequence"},
    {"app:\n  allowedOrigins:\n    - https://a.com\n    - ~\n", 4,
     "key 'app.allowedOrigins': expected a string in the list, got null"},
    {"app:\n  allowedOrigins: [\"\"]\n", 2, "key 'app.allowedOrigins': an empty string in the list"},
    {"app:\n  allowedOrigins: []\n", 2,
     "key 'app.allowedOrigins': an empty list (to leave it unset, write \"\")"},
    {"app:\n  allowedOrigins: {a: 1}\n", 2,
     "key 'app.allowedOrigins': expected a string or a list of strings, got a mapping"},
};

static void test_bad_files(void **state)
{
    config c, d;
    char path[64], err[512], want[640];

    (void)state;
    config_defaults(&d);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *b = &bad_cases[i];

        err[0] = '\0';
        if (load_text(&c, b->text, err, sizeof err, path) != -1)
            fail_msg("case %zu loaded: %s", i, b->text);
        snprintf(want, sizeof want, "%s:%d: %s", path, b->line, b->msg);
        if (strcmp(err, want) != 0)
            fail_msg("case %zu:\n  got  '%s'\n  want '%s'", i, err, want);
        assert_config_equal(&c, &d);   /* nothing applied on failure */
    }
}

/* app.allowedOrigins: a YAML list is joined with commas; the string form
 * keeps working; the dump (a string) loads back to the same. */
static void test_origins_list(void **state)
{
    static const struct { const char *text, *want; } cases[] = {
        {"app:\n  allowedOrigins:\n    - https://a.com\n    - 'http://localhost:8080'\n",
         "https://a.com,http://localhost:8080"},
        {"app:\n  allowedOrigins: [\"https://a.com\", https://b.com]\n", "https://a.com,https://b.com"},
        {"app:\n  allowedOrigins: [\"*\"]\n", "*"},
        {"app:\n  allowedOrigins: https://a.com,https://b.com\n", "https://a.com,https://b.com"},
        {"app:\n  allowedOrigins: \"\"\n", ""},
    };
    char path[64], err[512];
    config c, back;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        if (load_text(&c, cases[i].text, err, sizeof err, path) != 0)
            fail_msg("case %zu: %s", i, err);
        assert_string_equal(c.allowedOrigins, cases[i].want);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(config_dump(&c, f), 0);
        assert_int_equal(fclose(f), 0);
        config_defaults(&back);
        if (config_load_file(&back, path, 1, err, sizeof err) != 0)
            fail_msg("case %zu: the dump does not load: %s", i, err);
        assert_int_equal(unlink(path), 0);
        assert_config_equal(&back, &c);
    }
}

/* A list that does not fit the field when joined stops at the item. */
static void test_origins_list_too_long(void **state)
{
    char text[2048] = "app:\n  allowedOrigins:\n", path[64], err[512], want[600];
    config c;

    (void)state;
    for (int i = 0; i < 40; i++)        /* 30 bytes each: item 35 (line 37) passes 1023 */
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "    - https://origin-%02d.example.com\n", i);
    assert_int_equal(load_text(&c, text, err, sizeof err, path), -1);
    snprintf(want, sizeof want,
             "%s:37: key 'app.allowedOrigins': too long (max 1023 bytes joined with commas)", path);
    assert_string_equal(err, want);
}

static void test_string_too_long(void **state)
{
    char text[400], path[64], err[512], want[600];
    config c;

    (void)state;
    snprintf(text, sizeof text, "app:\n  httpUrl: %0300d\n", 0);
    assert_int_equal(load_text(&c, text, err, sizeof err, path), -1);
    snprintf(want, sizeof want, "%s:2: key 'app.httpUrl': too long (max 255 bytes)", path);
    assert_string_equal(err, want);
}

static void test_malformed_yaml(void **state)
{
    static const struct { const char *text; int line; } cases[] = {
        {"app:\n  httpPort: 1\n  bad: [1, 2\n", 4},
        {"app:\n\thttpPort: 1\n", 2},
        {"app:\n  httpPort: 1\n webSocketPort: 2\n", 3},
        {"app:\n  httpUrl: \"abc\n", 3},
        {"app:\n  x: *nope\n", 2},
    };
    char path[64], err[512], want[128];
    config c;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        assert_int_equal(load_text(&c, cases[i].text, err, sizeof err, path), -1);
        snprintf(want, sizeof want, "%s:%d: malformed YAML: ", path, cases[i].line);
        if (strncmp(err, want, strlen(want)) != 0 || strlen(err) <= strlen(want))
            fail_msg("case %zu:\n  got  '%s'\n  want '%s...'", i, err, want);
    }
}

/* ---- config_set ---------------------------------------------------------- */

static void expect_set_error(const char *key, const char *value, const char *msg)
{
    config c, d;
    char err[256] = "";

    config_defaults(&c);
    config_defaults(&d);
    if (config_set(&c, key, value, err, sizeof err) != -1)
        fail_msg("%s='%s' was accepted", key, value);
    assert_string_equal(err, msg);
    assert_config_equal(&c, &d);
}

static void test_set_ok(void **state)
{
    config c;
    char err[256] = "";

    (void)state;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "app.httpPort", "0", err, sizeof err), 0);
    assert_int_equal(c.httpPort, 0);
    assert_int_equal(config_set(&c, "app.maxOutboundBytes", "68719476736", err, sizeof err), 0);
    assert_int_equal(c.maxOutboundBytes, 68719476736ull);
    assert_int_equal(config_set(&c, "app.appIDs", " 5, 6 ,7", err, sizeof err), 0);
    assert_int_equal(c.appIDCount, 3);
    assert_int_equal(c.appIDs[2], 7);
    assert_int_equal(config_set(&c, "redis.addr", "", err, sizeof err), 0);
    assert_string_equal(c.redisAddr, "");
    assert_int_equal(config_set(&c, "app.echoPath", "/echo", err, sizeof err), 0);
    assert_string_equal(c.echoPath, "/echo");
    assert_int_equal(config_set(&c, "app.logLevel", "warn", err, sizeof err), 0);
    assert_string_equal(c.logLevel, "warn");
    assert_int_equal(config_set(&c, "im.dedupMaxBytes", "65536", err, sizeof err), 0);
    assert_int_equal(c.dedupMaxBytes, 65536);
}

static void test_set_errors(void **state)
{
    char many[512] = "";

    (void)state;
    expect_set_error("app.httpPort", "12abc", "not a number: '12abc'");
    expect_set_error("app.httpPort", "", "not a number: ''");
    expect_set_error("app.httpPort", " 12", "not a number: ' 12'");
    expect_set_error("app.httpPort", "+12", "not a number: '+12'");
    expect_set_error("app.httpPort", "-", "not a number: '-'");
    expect_set_error("app.httpPort", "99999999999999999999",
                     "out of range 0..65535: '99999999999999999999'");
    expect_set_error("app.workers", "1025", "out of range 0..1024: '1025'");
    expect_set_error("app.maxMessageSize", "-1", "out of range 1..1073741824: '-1'");
    expect_set_error("app.logLevel", "trace", "must be debug, info, warn or error: 'trace'");
    expect_set_error("app.echoPath", "echo", "must be empty or start with '/': 'echo'");
    expect_set_error("app.appIDs", "101,,102", "not a number: ''");
    expect_set_error("app.appIDs", "", "must list at least one appID");
    expect_set_error("app.appIDs", "1,2,1", "duplicate appID: 1");
    expect_set_error("app.nope", "1", "key 'app.nope': unknown key");
    expect_set_error("app.HTTPPORT", "1", "key 'app.HTTPPORT': unknown key (did you mean 'app.httpPort'?)");
    for (int i = 1; i <= CONFIG_MAX_APPIDS + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s%d", i > 1 ? "," : "", i);
    expect_set_error("app.appIDs", many, "too many appIDs (max 64)");
}

/* ---- environment ------------------------------------------------------- */

static const char *const env_names[] = {
    "IMGATE_HTTP_PORT", "IMGATE_WS_PORT", "IMGATE_RPC_PORT", "IMGATE_BIND",
    "IMGATE_ADVERTISE_IP", "IMGATE_REDIS", "IMGATE_WORKERS", "IMGATE_LOG_LEVEL",
    "IMGATE_LOG_FILE", "IMGATE_ECHO_PATH", "IMGATE_CONNECTION_TIMEOUT",
    "IMGATE_PING_INTERVAL", "IMGATE_SWEEP_INTERVAL", "IMGATE_MAX_MESSAGE_SIZE",
    "IMGATE_MAX_OUTBOUND_BYTES", "IMGATE_HANDSHAKE_TIMEOUT", "IMGATE_APP_IDS",
};

static void env_clear(void)
{
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        assert_int_equal(unsetenv(env_names[i]), 0);
}

static void test_env_all(void **state)
{
    config c;
    char err[256] = "";

    (void)state;
    env_clear();
    setenv("IMGATE_HTTP_PORT", "18080", 1);
    setenv("IMGATE_WS_PORT", "18089", 1);
    setenv("IMGATE_RPC_PORT", "19001", 1);
    setenv("IMGATE_BIND", "127.0.0.1", 1);
    setenv("IMGATE_ADVERTISE_IP", "10.1.2.3", 1);
    setenv("IMGATE_REDIS", "redis:6379", 1);
    setenv("IMGATE_WORKERS", "3", 1);
    setenv("IMGATE_LOG_LEVEL", "error", 1);
    setenv("IMGATE_LOG_FILE", "/var/log/imgate.log", 1);
    setenv("IMGATE_ECHO_PATH", "/echo", 1);
    setenv("IMGATE_CONNECTION_TIMEOUT", "100", 1);
    setenv("IMGATE_PING_INTERVAL", "20", 1);
    setenv("IMGATE_SWEEP_INTERVAL", "2", 1);
    setenv("IMGATE_MAX_MESSAGE_SIZE", "2048", 1);
    setenv("IMGATE_MAX_OUTBOUND_BYTES", "8192", 1);
    setenv("IMGATE_HANDSHAKE_TIMEOUT", "3", 1);
    setenv("IMGATE_APP_IDS", "1,2", 1);
    config_defaults(&c);
    assert_int_equal(config_apply_env(&c, err, sizeof err), 0);
    env_clear();
    assert_int_equal(c.httpPort, 18080);
    assert_int_equal(c.webSocketPort, 18089);
    assert_int_equal(c.rpcPort, 19001);
    assert_string_equal(c.bind, "127.0.0.1");
    assert_string_equal(c.advertiseIp, "10.1.2.3");
    assert_string_equal(c.redisAddr, "redis:6379");
    assert_int_equal(c.workers, 3);
    assert_string_equal(c.logLevel, "error");
    assert_string_equal(c.logFile, "/var/log/imgate.log");
    assert_string_equal(c.echoPath, "/echo");
    assert_int_equal(c.connectionTimeout, 100);
    assert_int_equal(c.pingInterval, 20);
    assert_int_equal(c.sweepInterval, 2);
    assert_int_equal(c.maxMessageSize, 2048);
    assert_int_equal(c.maxOutboundBytes, 8192);
    assert_int_equal(c.handshakeTimeout, 3);
    assert_int_equal(c.appIDCount, 2);
    assert_int_equal(c.appIDs[1], 2);
}

/* The env layer goes over the file layer and leaves other keys alone. */
static void test_env_over_file(void **state)
{
    config c;
    char path[64], err[512] = "";

    (void)state;
    env_clear();
    assert_int_equal(load_text(&c, full_yaml, err, sizeof err, path), 0);
    setenv("IMGATE_HTTP_PORT", "7000", 1);
    setenv("IMGATE_REDIS", "", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), 0);
    env_clear();
    assert_int_equal(c.httpPort, 7000);
    assert_string_equal(c.redisAddr, "");
    assert_int_equal(c.webSocketPort, 8090);
    assert_string_equal(c.logLevel, "debug");
}

static void test_env_errors(void **state)
{
    config c, d;
    char err[256] = "";

    (void)state;
    env_clear();
    config_defaults(&c);
    config_defaults(&d);
    setenv("IMGATE_WORKERS", "2", 1);
    setenv("IMGATE_HTTP_PORT", "x", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), -1);
    assert_string_equal(err, "IMGATE_HTTP_PORT: not a number: 'x'");
    assert_config_equal(&c, &d);     /* IMGATE_WORKERS not half-applied */
    env_clear();
    setenv("IMGATE_LOG_LEVEL", "loud", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), -1);
    assert_string_equal(err, "IMGATE_LOG_LEVEL: must be debug, info, warn or error: 'loud'");
    env_clear();
    setenv("IMGATE_APP_IDS", "1,a", 1);
    assert_int_equal(config_apply_env(&c, err, sizeof err), -1);
    assert_string_equal(err, "IMGATE_APP_IDS: not a number: 'a'");
    env_clear();
}

/* ---- validate ------------------------------------------------------------ */

static void expect_invalid(const config *c, const char *msg)
{
    char err[256] = "";

    assert_int_equal(config_validate(c, err, sizeof err), -1);
    assert_string_equal(err, msg);
}

static void test_validate(void **state)
{
    config c;
    char err[256];

    (void)state;
    config_defaults(&c);
    c.webSocketPort = 8080;
    expect_invalid(&c, "key 'app.webSocketPort': same port as app.httpPort (8080)");
    c.httpPort = c.webSocketPort = 0;
    assert_int_equal(config_validate(&c, err, sizeof err), 0);

    config_defaults(&c);
    c.rpcPort = 8080;
    assert_int_equal(config_validate(&c, err, sizeof err), 0);   /* embedded: no RPC */
    snprintf(c.redisAddr, sizeof c.redisAddr, "127.0.0.1:6379");
    expect_invalid(&c, "key 'app.rpcPort': same port as app.httpPort (8080)");

    config_defaults(&c);
    c.pingInterval = 360;
    expect_invalid(&c, "key 'app.pingInterval': 360 must be less than app.connectionTimeout (360)");
    c.pingInterval = 0;
    assert_int_equal(config_validate(&c, err, sizeof err), 0);

    config_defaults(&c);
    c.sweepInterval = 0;
    expect_invalid(&c, "key 'app.sweepInterval': must be at least 1");

    config_defaults(&c);
    c.maxOutboundBytes = 1000;
    expect_invalid(&c, "key 'app.maxOutboundBytes': 1000 must be at least app.maxMessageSize (65536)");

    config_defaults(&c);
    c.appIDCount = 0;
    expect_invalid(&c, "key 'app.appIDs': must list 1..64 appIDs");

    config_defaults(&c);
    snprintf(c.echoPath, sizeof c.echoPath, "/acc");
    expect_invalid(&c, "key 'app.echoPath': '/acc' is the WebSocket endpoint");

    config_defaults(&c);
    snprintf(c.tlsCert, sizeof c.tlsCert, "cert.pem");
    expect_invalid(&c, "key 'app.tlsKey': app.tlsCert and app.tlsKey must be set together (or both left empty)");
    snprintf(c.tlsKey, sizeof c.tlsKey, "key.pem");
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    c.tlsCert[0] = '\0';
    expect_invalid(&c, "key 'app.tlsCert': app.tlsCert and app.tlsKey must be set together (or both left empty)");
}

/* cluster.rpcToken: visible ASCII only; cluster.rpcTls*: all three or none. */
static void test_validate_rpc(void **state)
{
    static const char together[] = "cluster.rpcTlsCert, cluster.rpcTlsKey and cluster.rpcTlsCA must be "
                                   "set together (or all left empty)";
    char err[256], want[256];
    config c;

    (void)state;
    config_defaults(&c);
    snprintf(c.rpcToken, sizeof c.rpcToken, "a-Z_0.9~!");
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    snprintf(c.rpcToken, sizeof c.rpcToken, "two words");
    expect_invalid(&c, "key 'cluster.rpcToken': only visible ASCII characters (no spaces or control characters)");
    snprintf(c.rpcToken, sizeof c.rpcToken, "tab\there");
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    snprintf(c.rpcToken, sizeof c.rpcToken, "caf\xc3\xa9");
    assert_int_equal(config_validate(&c, err, sizeof err), -1);

    config_defaults(&c);
    snprintf(c.rpcTlsCert, sizeof c.rpcTlsCert, "node.pem");
    snprintf(want, sizeof want, "key 'cluster.rpcTlsKey': %s", together);
    expect_invalid(&c, want);
    snprintf(c.rpcTlsKey, sizeof c.rpcTlsKey, "node.key");
    snprintf(want, sizeof want, "key 'cluster.rpcTlsCA': %s", together);
    expect_invalid(&c, want);
    snprintf(c.rpcTlsCA, sizeof c.rpcTlsCA, "ca.pem");
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    c.rpcTlsCert[0] = '\0';
    snprintf(want, sizeof want, "key 'cluster.rpcTlsCert': %s", together);
    expect_invalid(&c, want);

    config_defaults(&c);
    assert_int_equal(config_set(&c, "cluster.rpcBind", "10.0.0.5", err, sizeof err), 0);
    assert_string_equal(c.rpcBind, "10.0.0.5");
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
}

/* ---- dump ---------------------------------------------------------------- */

static void test_dump_round_trip(void **state)
{
    config c, back;
    char path[64], err[512] = "";
    FILE *f;
    int fd;

    (void)state;
    assert_int_equal(load_text(&c, full_yaml, err, sizeof err, path), 0);
    snprintf(c.httpUrl, sizeof c.httpUrl, "a \"quoted\" \\ url: # not a comment");
    c.redisPassword[0] = '\0';

    snprintf(path, sizeof path, "/tmp/imgate_test_dump_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(config_dump(&c, f), 0);
    assert_int_equal(fclose(f), 0);

    config_defaults(&back);
    if (config_load_file(&back, path, 1, err, sizeof err) != 0)
        fail_msg("%s", err);
    unlink(path);
    assert_config_equal(&back, &c);
}

static void test_dump_masks_secrets(void **state)
{
    config c;
    char *out = NULL;
    size_t len = 0;
    FILE *mem;

    (void)state;
    config_defaults(&c);
    snprintf(c.redisPassword, sizeof c.redisPassword, "s3cret");
    snprintf(c.rpcToken, sizeof c.rpcToken, "n0de-t0ken");
    mem = open_memstream(&out, &len);
    assert_non_null(mem);
    assert_int_equal(config_dump(&c, mem), 0);
    assert_int_equal(fclose(mem), 0);
    assert_null(strstr(out, "s3cret"));
    assert_non_null(strstr(out, "  password: \"***\"\n"));
    assert_null(strstr(out, "n0de-t0ken"));
    assert_non_null(strstr(out, "  rpcToken: \"***\"    # IMGATE_RPC_TOKEN\n"));
    assert_non_null(strstr(out, "  httpPort: 8080    # IMGATE_HTTP_PORT\n"));
    assert_non_null(strstr(out, "  appIDs: [101, 102, 103, 104]    # IMGATE_APP_IDS\n"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_defaults_are_valid),
        cmocka_unit_test(test_shipped_file_equals_defaults),
        cmocka_unit_test(test_shipped_file_lists_every_key),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_original_file),
        cmocka_unit_test(test_empty_files_mean_defaults),
        cmocka_unit_test(test_null_string_means_empty),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_origins_list),
        cmocka_unit_test(test_origins_list_too_long),
        cmocka_unit_test(test_string_too_long),
        cmocka_unit_test(test_malformed_yaml),
        cmocka_unit_test(test_set_ok),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_env_all),
        cmocka_unit_test(test_env_over_file),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_validate_rpc),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_dump_masks_secrets),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
