/* dlog_disk.c — owns the on-disk copy of the delivery logs (dlog_disk.h):
 * one LMDB environment in delivery.dir with two named databases.
 *   "entries": key  kind(1: inbox 1, room 2) appid(4 BE) uidlen(1) uid
 *                   id.ms(8 BE) id.seq(8 BE)  — a log is one key range,
 *                   oldest entry first;
 *              value  ver(1) time_ms(8 BE) seqlen(2 BE) fromlen(2 BE)
 *                   msglen(4 BE) seq from msg.
 *   "cursors": key  kind appid uidlen uid;  value  id.ms(8 BE) id.seq(8 BE).
 * Commits do not fsync (MDB_NOSYNC): when a call returns its pages are in
 * the OS page cache, so a killed process loses nothing (an OS crash may);
 * dlog_disk_close syncs. One mutex serializes every transaction: LMDB has
 * one writer per environment, and growing the map (doubled on
 * MDB_MAP_FULL) needs no transaction open. An exclusive flock on
 * <dir>/imgate.lock keeps a second process out of the directory. */
#include "im/dlog_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#define DD_KIND_INBOX 1
#define DD_KIND_ROOM 2
#define DD_VAL_VERSION 1
#define DD_PREFIX_MAX (1 + 4 + 1 + 255)
#define DD_KEY_MAX (DD_PREFIX_MAX + 16)
#define DD_VAL_HEAD (1 + 8 + 2 + 2 + 4)
#define DD_MAP_START ((size_t)1 << 30)      /* 1 GiB of address space; the file is sparse */
#define DD_CHUNK (256 * 1024)               /* bytes copied per read transaction in load */
#define DD_NOT_OPEN (-1)                    /* an rc: no store (LMDB's codes are < -30000) */

static struct {
    pthread_mutex_t lock;                   /* held around every transaction */
    MDB_env *env;                           /* NULL when closed */
    MDB_dbi entries, cursors;
    size_t mapsize;
    int lockfd;
    char dir[PATH_MAX];
} g_dd = { .lock = PTHREAD_MUTEX_INITIALIZER, .lockfd = -1 };

static size_t dd_map_start = DD_MAP_START;

/* ---- byte order ---- */

static void dd_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t dd_unbe(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- keys and values ---- */

/* memcpy that accepts (NULL, 0): an empty uid, from, msgID or message. */
static void dd_copy(void *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
}

/* The key of k's log (the prefix of its entries' keys); 0 if uid is too long. */
static size_t dd_prefix(const dlog_key *k, unsigned char *p)
{
    if (k->uidlen > 255)
        return 0;
    p[0] = k->uidlen ? DD_KIND_INBOX : DD_KIND_ROOM;
    dd_be(p + 1, k->appid, 4);
    p[5] = (unsigned char)k->uidlen;
    dd_copy(p + 6, k->uid, k->uidlen);
    return 6 + k->uidlen;
}

static void dd_put_id(unsigned char *p, dlog_id id)
{
    dd_be(p, id.ms, 8);
    dd_be(p + 8, id.seq, 8);
}

static dlog_id dd_get_id(const unsigned char *p)
{
    return (dlog_id){ dd_unbe(p, 8), dd_unbe(p + 8, 8) };
}

/* The key of entry `id` of k's log into p; 0 if uid is too long. */
static size_t dd_entry_key(const dlog_key *k, dlog_id id, unsigned char *p)
{
    size_t n = dd_prefix(k, p);
    if (n)
        dd_put_id(p + n, id);
    return n ? n + 16 : 0;
}

/* Parses a log key at the start of key (n bytes); its length, or 0. */
static size_t dd_parse_prefix(const unsigned char *p, size_t n, dlog_key *k)
{
    if (n < 6 || n < 6 + (size_t)p[5])
        return 0;
    if (!(p[0] == DD_KIND_INBOX && p[5] > 0) && !(p[0] == DD_KIND_ROOM && p[5] == 0))
        return 0;
    k->appid = (uint32_t)dd_unbe(p + 1, 4);
    k->uidlen = p[5];
    k->uid = (const char *)p + 6;
    return 6 + k->uidlen;
}

static size_t dd_val_size(const dlog_entry *e) { return DD_VAL_HEAD + e->seqlen + e->fromlen + e->msglen; }

static void dd_val_write(const dlog_entry *e, unsigned char *p)
{
    p[0] = DD_VAL_VERSION;
    dd_be(p + 1, e->time_ms, 8);
    dd_be(p + 9, e->seqlen, 2);
    dd_be(p + 11, e->fromlen, 2);
    dd_be(p + 13, e->msglen, 4);
    p += DD_VAL_HEAD;
    dd_copy(p, e->seq, e->seqlen);
    dd_copy(p + e->seqlen, e->from, e->fromlen);
    dd_copy(p + e->seqlen + e->fromlen, e->msg, e->msglen);
}

/* Parses a stored value into e (pointers into p). 0, or -1 if malformed. */
static int dd_val_read(const unsigned char *p, size_t n, dlog_entry *e)
{
    if (n < DD_VAL_HEAD || p[0] != DD_VAL_VERSION)
        return -1;
    e->time_ms = dd_unbe(p + 1, 8);
    e->seqlen = (size_t)dd_unbe(p + 9, 2);
    e->fromlen = (size_t)dd_unbe(p + 11, 2);
    e->msglen = (size_t)dd_unbe(p + 13, 4);
    if (n != dd_val_size(e))
        return -1;
    e->seq = (const char *)p + DD_VAL_HEAD;
    e->from = e->seq + e->seqlen;
    e->msg = e->from + e->fromlen;
    return 0;
}

/* ---- errors ---- */

static const char *dd_strerror(int rc) { return rc == DD_NOT_OPEN ? "store not open" : mdb_strerror(rc); }

/* Logs a failed operation on k's log; returns -1 (0 if rc is 0). */
static int dd_result(int rc, const char *op, const dlog_key *k, dlog_id id)
{
    if (rc == 0)
        return 0;
    log_error("dlog_disk: %s %s %" PRIu32 "/%.*s %" PRIu64 "-%" PRIu64 ": %s", op,
              k->uidlen ? "inbox" : "room", k->appid, (int)k->uidlen, k->uid ? k->uid : "",
              id.ms, id.seq, dd_strerror(rc));
    return -1;
}

static void dd_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void dd_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- transactions (g_dd.lock held) ---- */

typedef int (*dd_txn_fn)(MDB_txn *txn, void *ctx);

static int dd_try_write(dd_txn_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(g_dd.env, NULL, 0, &txn);
    if (rc)
        return rc;
    rc = fn(txn, ctx);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Doubles the map (no transaction is open: all run under g_dd.lock). */
static int dd_grow(void)
{
    size_t want = g_dd.mapsize * 2;
    int rc = mdb_env_set_mapsize(g_dd.env, want);
    if (rc) {
        log_error("dlog_disk: %s: cannot grow the map to %zu MiB: %s", g_dd.dir, want >> 20,
                  mdb_strerror(rc));
        return -1;
    }
    g_dd.mapsize = want;
    log_info("dlog_disk: %s: map grown to %zu MiB", g_dd.dir, want >> 20);
    return 0;
}

/* Runs fn in a write transaction and commits it; on MDB_MAP_FULL grows
 * the map and tries once more. An LMDB rc (0 = committed). */
static int dd_write(dd_txn_fn fn, void *ctx)
{
    int rc = DD_NOT_OPEN;
    pthread_mutex_lock(&g_dd.lock);
    if (g_dd.env) {
        rc = dd_try_write(fn, ctx);
        if (rc == MDB_MAP_FULL && dd_grow() == 0)
            rc = dd_try_write(fn, ctx);
    }
    pthread_mutex_unlock(&g_dd.lock);
    return rc;
}

/* ---- open and close ---- */

/* mkdir -p dir, creating what is missing with mode 0700. 0 or -1 (errno). */
static int dd_mkdirs(char *dir)
{
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(dir, 0700);
        *p = c;
        if (rc < 0 && errno != EEXIST)
            return -1;
        if (c == '\0')
            return 0;
    }
}

/* Takes <dir>/imgate.lock exclusively (one process per store). */
static int dd_lock_dir(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/imgate.lock", dir) >= sizeof path) {
        dd_fail(err, errlen, "delivery.dir %s: path too long", dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        dd_fail(err, errlen, "delivery.dir %s: cannot open %s: %s", dir, path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        dd_fail(err, errlen, "delivery.dir %s: %s", dir,
                e == EWOULDBLOCK ? "in use by another process" : strerror(e));
        return -1;
    }
    return fd;
}

static int dd_open_dbis(MDB_txn *txn, void *ctx)
{
    (void)ctx;
    int rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &g_dd.entries);
    return rc ? rc : mdb_dbi_open(txn, "cursors", MDB_CREATE, &g_dd.cursors);
}

/* A store reopened with more data than the map start: at least twice the
 * used size, so the first put does not have to grow it. An LMDB rc. */
static int dd_headroom(const MDB_envinfo *info)
{
    MDB_stat st;
    int rc = mdb_env_stat(g_dd.env, &st);
    size_t used = (info->me_last_pgno + 1) * (size_t)st.ms_psize;
    if (rc || g_dd.mapsize >= 2 * used)
        return rc;
    rc = mdb_env_set_mapsize(g_dd.env, 2 * used);
    if (rc == 0)
        g_dd.mapsize = 2 * used;
    return rc;
}

/* Creates the environment in g_dd.dir. An LMDB rc. */
static int dd_env_create(MDB_env **env)
{
    int rc = mdb_env_create(env);
    if (rc)
        return rc;
    if (!(rc = mdb_env_set_maxdbs(*env, 2)) && !(rc = mdb_env_set_mapsize(*env, dd_map_start)))
        rc = mdb_env_open(*env, g_dd.dir, MDB_NOSYNC | MDB_NOTLS, 0600);
    if (rc)
        mdb_env_close(*env);
    return rc;
}

/* Reader slots of a killed process, the databases, the map size. */
static int dd_env_setup(void)
{
    int dead;
    MDB_envinfo info;
    int rc = mdb_reader_check(g_dd.env, &dead);
    if (!rc)
        rc = dd_try_write(dd_open_dbis, NULL);
    if (!rc)
        rc = mdb_env_info(g_dd.env, &info);
    if (rc)
        return rc;
    g_dd.mapsize = info.me_mapsize;
    return dd_headroom(&info);
}

/* Opens the environment in g_dd.dir into g_dd.env. An LMDB rc. */
static int dd_env_open(void)
{
    int rc = dd_env_create(&g_dd.env);
    if (rc) {
        g_dd.env = NULL;
        return rc;
    }
    rc = dd_env_setup();
    if (rc) {
        mdb_env_close(g_dd.env);
        g_dd.env = NULL;
    }
    return rc;
}

static int dd_open_locked(const char *dir, char *err, size_t errlen)
{
    if (g_dd.env) {
        dd_fail(err, errlen, "delivery.dir %s: a store is already open (%s)", dir, g_dd.dir);
        return -1;
    }
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof g_dd.dir - 16) {
        dd_fail(err, errlen, "delivery.dir '%s': empty or too long", dir);
        return -1;
    }
    memcpy(g_dd.dir, dir, n + 1);
    if (dd_mkdirs(g_dd.dir) < 0) {
        dd_fail(err, errlen, "delivery.dir %s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    int fd = dd_lock_dir(dir, err, errlen);
    if (fd < 0)
        return -1;
    int rc = dd_env_open();
    if (rc) {
        close(fd);
        dd_fail(err, errlen, "delivery.dir %s: LMDB: %s", dir, mdb_strerror(rc));
        return -1;
    }
    g_dd.lockfd = fd;
    return 0;
}

int dlog_disk_open(const char *dir, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_dd.lock);
    int rc = dd_open_locked(dir, err, errlen);
    if (rc == 0)
        log_info("dlog_disk: store %s open (map %zu MiB)", dir, g_dd.mapsize >> 20);
    pthread_mutex_unlock(&g_dd.lock);
    return rc;
}

void dlog_disk_close(void)
{
    pthread_mutex_lock(&g_dd.lock);
    if (g_dd.env) {
        int rc = mdb_env_sync(g_dd.env, 1);
        if (rc)
            log_error("dlog_disk: %s: sync at close: %s", g_dd.dir, mdb_strerror(rc));
        mdb_env_close(g_dd.env);
        g_dd.env = NULL;
        close(g_dd.lockfd);
        g_dd.lockfd = -1;
    }
    pthread_mutex_unlock(&g_dd.lock);
}

void dlog_disk_set_map_start(size_t bytes)
{
    dd_map_start = bytes ? bytes : DD_MAP_START;
}

/* ---- writes ---- */

typedef struct dd_put_ctx {
    const dlog_key *k;
    const dlog_entry *e;
} dd_put_ctx;

static int dd_put_txn(MDB_txn *txn, void *ctx)
{
    const dd_put_ctx *c = ctx;
    const dlog_entry *e = c->e;
    unsigned char kb[DD_KEY_MAX];
    MDB_val key = { dd_entry_key(c->k, e->id, kb), kb };
    MDB_val val = { dd_val_size(e), NULL };
    if (key.mv_size == 0 || e->seqlen > UINT16_MAX || e->fromlen > UINT16_MAX || e->msglen > UINT32_MAX)
        return MDB_BAD_VALSIZE;
    int rc = mdb_put(txn, g_dd.entries, &key, &val, MDB_NOOVERWRITE | MDB_RESERVE);
    if (rc == 0)
        dd_val_write(e, val.mv_data);
    return rc;
}

int dlog_disk_put(const dlog_key *k, const dlog_entry *e)
{
    dd_put_ctx c = { k, e };
    return dd_result(dd_write(dd_put_txn, &c), "put", k, e->id);
}

typedef struct dd_trim_ctx {
    const dlog_key *k;
    dlog_id upto;
} dd_trim_ctx;

/* Is key an entry of the log with prefix p (n bytes) with an id <= upto? */
static int dd_trim_match(const MDB_val *key, const unsigned char *p, size_t n, dlog_id upto)
{
    if (key->mv_size != n + 16 || memcmp(key->mv_data, p, n) != 0)
        return 0;
    dlog_id id = dd_get_id((const unsigned char *)key->mv_data + n);
    return id.ms < upto.ms || (id.ms == upto.ms && id.seq <= upto.seq);
}

static int dd_trim_txn(MDB_txn *txn, void *ctx)
{
    const dd_trim_ctx *c = ctx;
    unsigned char kb[DD_KEY_MAX];
    size_t n = dd_prefix(c->k, kb);
    if (n == 0)
        return MDB_BAD_VALSIZE;
    dd_put_id(kb + n, (dlog_id){ 0, 0 });
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, g_dd.entries, &cur);
    if (rc)
        return rc;
    MDB_val key = { n + 16, kb }, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && dd_trim_match(&key, kb, n, c->upto)) {
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0)
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);   /* the one after the deleted */
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int dlog_disk_trim(const dlog_key *k, dlog_id upto)
{
    dd_trim_ctx c = { k, upto };
    return dd_result(dd_write(dd_trim_txn, &c), "trim", k, upto);
}

typedef struct dd_cursor_ctx {
    const dlog_key *k;
    dlog_id id;
} dd_cursor_ctx;

static int dd_cursor_txn(MDB_txn *txn, void *ctx)
{
    const dd_cursor_ctx *c = ctx;
    unsigned char kb[DD_PREFIX_MAX], vb[16];
    MDB_val key = { dd_prefix(c->k, kb), kb }, val = { sizeof vb, vb };
    if (key.mv_size == 0)
        return MDB_BAD_VALSIZE;
    dd_put_id(vb, c->id);
    return mdb_put(txn, g_dd.cursors, &key, &val, 0);
}

int dlog_disk_cursor_put(const dlog_key *k, dlog_id id)
{
    dd_cursor_ctx c = { k, id };
    return dd_result(dd_write(dd_cursor_txn, &c), "cursor", k, id);
}

static int dd_cursor_del_txn(MDB_txn *txn, void *ctx)
{
    const dlog_key *k = ctx;
    unsigned char kb[DD_PREFIX_MAX];
    MDB_val key = { dd_prefix(k, kb), kb };
    if (key.mv_size == 0)
        return MDB_BAD_VALSIZE;
    int rc = mdb_del(txn, g_dd.cursors, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int dlog_disk_cursor_del(const dlog_key *k)
{
    return dd_result(dd_write(dd_cursor_del_txn, (void *)k), "cursor delete", k, (dlog_id){ 0, 0 });
}

/* ---- load ----
 * Copies up to DD_CHUNK bytes of records per read transaction (under the
 * lock), then calls the callbacks with the lock released, so they may call
 * dlog_disk_trim / _cursor_put (and a put may grow the map meanwhile). */

typedef struct dd_chunk {
    unsigned char *buf;                     /* records: klen(4) vlen(4) key value */
    size_t len, cap;
    unsigned char last[DD_KEY_MAX];         /* key of the last record copied */
    size_t lastlen;                         /* 0: none yet */
    int done;                               /* the database has no more */
} dd_chunk;

static int dd_chunk_add(dd_chunk *c, const MDB_val *key, const MDB_val *val)
{
    size_t need = c->len + 8 + key->mv_size + val->mv_size;
    if (key->mv_size > DD_KEY_MAX || val->mv_size > UINT32_MAX)
        return MDB_CORRUPTED;
    if (need > c->cap) {
        size_t cap = need > 2 * c->cap ? need : 2 * c->cap;
        unsigned char *b = realloc(c->buf, cap);
        if (!b)
            return ENOMEM;
        c->buf = b;
        c->cap = cap;
    }
    unsigned char *p = c->buf + c->len;
    dd_be(p, key->mv_size, 4);
    dd_be(p + 4, val->mv_size, 4);
    memcpy(p + 8, key->mv_data, key->mv_size);
    memcpy(p + 8 + key->mv_size, val->mv_data, val->mv_size);
    c->len = need;
    memcpy(c->last, key->mv_data, key->mv_size);
    c->lastlen = key->mv_size;
    return 0;
}

/* Positions cur on the first record after the last one copied. */
static int dd_chunk_seek(dd_chunk *c, MDB_cursor *cur, MDB_val *key, MDB_val *val)
{
    if (c->lastlen == 0)
        return mdb_cursor_get(cur, key, val, MDB_FIRST);
    unsigned char k[DD_KEY_MAX];
    memcpy(k, c->last, c->lastlen);
    *key = (MDB_val){ c->lastlen, k };
    int rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    if (rc == 0 && key->mv_size == c->lastlen && memcmp(key->mv_data, c->last, c->lastlen) == 0)
        rc = mdb_cursor_get(cur, key, val, MDB_NEXT);
    return rc;
}

static int dd_chunk_fill(dd_chunk *c, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    MDB_val key, val;
    c->len = 0;
    rc = dd_chunk_seek(c, cur, &key, &val);
    while (rc == 0 && (rc = dd_chunk_add(c, &key, &val)) == 0 && c->len < DD_CHUNK)
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        c->done = 1;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Copies the next chunk of dbi's records into c. An LMDB rc. */
static int dd_chunk_read(dd_chunk *c, MDB_dbi dbi)
{
    MDB_txn *txn;
    int rc = DD_NOT_OPEN;
    pthread_mutex_lock(&g_dd.lock);
    if (g_dd.env && (rc = mdb_txn_begin(g_dd.env, NULL, MDB_RDONLY, &txn)) == 0) {
        rc = dd_chunk_fill(c, txn, dbi);
        mdb_txn_abort(txn);
    }
    pthread_mutex_unlock(&g_dd.lock);
    return rc;
}

typedef struct dd_load_ctx {
    dlog_disk_entry_fn on_entry;
    dlog_disk_cursor_fn on_cursor;
    void *ud;
} dd_load_ctx;

static int dd_emit_entry(const dd_load_ctx *l, const unsigned char *key, size_t klen,
                         const unsigned char *val, size_t vlen)
{
    dlog_key k;
    dlog_entry e;
    size_t n = dd_parse_prefix(key, klen, &k);
    if (n == 0 || klen != n + 16 || dd_val_read(val, vlen, &e) < 0)
        return -1;
    e.id = dd_get_id(key + n);
    if (l->on_entry)
        l->on_entry(&k, &e, l->ud);
    return 0;
}

static int dd_emit_cursor(const dd_load_ctx *l, const unsigned char *key, size_t klen,
                          const unsigned char *val, size_t vlen)
{
    dlog_key k;
    if (dd_parse_prefix(key, klen, &k) != klen || vlen != 16)
        return -1;
    if (l->on_cursor)
        l->on_cursor(&k, dd_get_id(val), l->ud);
    return 0;
}

typedef int (*dd_emit_fn)(const dd_load_ctx *l, const unsigned char *key, size_t klen,
                          const unsigned char *val, size_t vlen);

/* Calls emit for each record of the chunk. 0, or -1 (logged) at a malformed one. */
static int dd_chunk_emit(const dd_chunk *c, dd_emit_fn emit, const dd_load_ctx *l, const char *db)
{
    for (size_t off = 0; off < c->len;) {
        const unsigned char *p = c->buf + off;
        size_t klen = (size_t)dd_unbe(p, 4), vlen = (size_t)dd_unbe(p + 4, 4);
        if (emit(l, p + 8, klen, p + 8 + klen, vlen) < 0) {
            log_error("dlog_disk: %s: malformed record in %s (key %zu bytes, value %zu bytes)",
                      g_dd.dir, db, klen, vlen);
            return -1;
        }
        off += 8 + klen + vlen;
    }
    return 0;
}

static int dd_load_db(MDB_dbi dbi, const char *db, dd_emit_fn emit, const dd_load_ctx *l)
{
    dd_chunk c = { 0 };
    int rc = 0;
    while (!c.done && rc == 0) {
        int lrc = dd_chunk_read(&c, dbi);
        if (lrc) {
            log_error("dlog_disk: %s: load %s: %s", g_dd.dir, db, dd_strerror(lrc));
            rc = -1;
        } else {
            rc = dd_chunk_emit(&c, emit, l, db);
        }
    }
    free(c.buf);
    return rc;
}

int dlog_disk_load(dlog_disk_entry_fn on_entry, dlog_disk_cursor_fn on_cursor, void *ud)
{
    dd_load_ctx l = { on_entry, on_cursor, ud };
    if (dd_load_db(g_dd.entries, "entries", dd_emit_entry, &l) < 0)
        return -1;
    return dd_load_db(g_dd.cursors, "cursors", dd_emit_cursor, &l);
}
