/* test_dlog_disk.c — the on-disk copy of the delivery logs (LMDB): put and
 * load round trip over inbox and room logs (log by log, oldest first, ids
 * put out of key order across logs), trim (ranges, neighbours untouched,
 * across many pages), cursors, reopen, a process that dies without closing
 * (_exit, and SIGKILL in the middle of a stream of puts), open errors (a
 * directory that cannot be created, not an LMDB file, a store in use by
 * another process), concurrent writers, callbacks that write during load,
 * and 100k entries through a map that must grow (prints bytes per entry). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "im/dlog_disk.h"

static char g_dir[64];
static char g_self[4096];                /* this program, for the lock test's child */

/* ---- helpers ---- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/test_dlog_disk.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    dlog_disk_set_map_start(0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dlog_disk_close();
    return nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void open_store(void)
{
    char err[512] = "";
    int rc = dlog_disk_open(g_dir, err, sizeof err);
    if (rc != 0)
        fail_msg("open %s: %s", g_dir, err);
}

static dlog_key inbox(uint32_t appid, const char *uid) { return (dlog_key){ appid, uid, strlen(uid) }; }
static dlog_key room(uint32_t appid) { return (dlog_key){ appid, NULL, 0 }; }

static int put(const dlog_key *k, uint64_t ms, uint64_t seq, const char *from, const char *msg)
{
    char mid[32];
    snprintf(mid, sizeof mid, "m%llu", (unsigned long long)(ms * 1000 + seq));
    dlog_entry e = { { ms, seq }, ms + 7, from, strlen(from), msg, strlen(msg), mid, strlen(mid) };
    return dlog_disk_put(k, &e);
}

/* A loaded entry or cursor, copied. */
typedef struct rec {
    uint32_t appid;
    char uid[64];
    size_t uidlen;
    dlog_id id;
    uint64_t time_ms;
    char from[64], seq[64];
    char *msg;
    size_t msglen;
} rec;

typedef struct loaded {
    rec *e, *c;
    size_t ne, nc, cape, capc;
} loaded;

static rec *push_rec(rec **a, size_t *n, size_t *cap, const dlog_key *k)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *a = realloc(*a, *cap * sizeof **a);
        assert_non_null(*a);
    }
    rec *r = &(*a)[(*n)++];
    memset(r, 0, sizeof *r);
    assert_true(k->uidlen < sizeof r->uid);
    r->appid = k->appid;
    memcpy(r->uid, k->uid, k->uidlen);
    r->uidlen = k->uidlen;
    return r;
}

static void on_entry(const dlog_key *k, const dlog_entry *e, void *ud)
{
    loaded *l = ud;
    rec *r = push_rec(&l->e, &l->ne, &l->cape, k);
    assert_true(e->fromlen < sizeof r->from && e->seqlen < sizeof r->seq);
    r->id = e->id;
    r->time_ms = e->time_ms;
    memcpy(r->from, e->from, e->fromlen);
    memcpy(r->seq, e->seq, e->seqlen);
    r->msg = malloc(e->msglen + 1);
    assert_non_null(r->msg);
    memcpy(r->msg, e->msg, e->msglen);
    r->msglen = e->msglen;
}

static void on_cursor(const dlog_key *k, dlog_id id, void *ud)
{
    loaded *l = ud;
    push_rec(&l->c, &l->nc, &l->capc, k)->id = id;
}

static void load(loaded *l)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(dlog_disk_load(on_entry, on_cursor, l), 0);
}

static void unload(loaded *l)
{
    for (size_t i = 0; i < l->ne; i++)
        free(l->e[i].msg);
    free(l->e);
    free(l->c);
}

static int same_log(const rec *r, const dlog_key *k)
{
    return r->appid == k->appid && r->uidlen == k->uidlen
           && (k->uidlen == 0 || memcmp(r->uid, k->uid, k->uidlen) == 0);
}

/* The ids of k's log in load order, into ids (at most max); their count. */
static size_t log_ids(const loaded *l, const dlog_key *k, dlog_id *ids, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < l->ne; i++)
        if (same_log(&l->e[i], k) && n < max)
            ids[n++] = l->e[i].id;
    return n;
}

/* Every log's entries come as one run (log by log). */
static void assert_runs(const loaded *l)
{
    for (size_t i = 1; i < l->ne; i++) {
        const rec *a = &l->e[i - 1];
        dlog_key ka = { a->appid, a->uid, a->uidlen };
        if (same_log(&l->e[i], &ka))
            continue;
        for (size_t j = i + 1; j < l->ne; j++)
            assert_false(same_log(&l->e[j], &ka));
    }
}

static int id_eq(dlog_id a, uint64_t ms, uint64_t seq) { return a.ms == ms && a.seq == seq; }

/* ---- round trip ---- */

static void test_roundtrip(void **state)
{
    (void)state;
    open_store();
    dlog_key a = inbox(101, "alice"), b = inbox(101, "bob"), a2 = inbox(102, "alice");
    dlog_key x = inbox(101, "a"), xb = inbox(101, "ab"), r1 = room(101), r2 = room(102);
    dlog_key big = inbox(UINT32_MAX, "zed"), zero = room(0);
    /* Across logs the ids go down while within each log they go up; ms
     * 255 then 256 then 2^40 (a little-endian key would misorder them). */
    assert_int_equal(put(&b, 900, 0, "carol", "b1"), 0);
    assert_int_equal(put(&a, 500, 0, "bob", "a1"), 0);
    assert_int_equal(put(&r1, 400, 3, "bob", "r1"), 0);
    assert_int_equal(put(&xb, 300, 0, "s", "xb1"), 0);
    assert_int_equal(put(&x, 255, 0, "s", "x1"), 0);
    assert_int_equal(put(&x, 256, 0, "s", "x2"), 0);
    assert_int_equal(put(&a, 500, 1, "bob", "a2"), 0);
    assert_int_equal(put(&a2, 100, 0, "", ""), 0);
    assert_int_equal(put(&r2, 50, 0, "sys", "r2-1"), 0);
    assert_int_equal(put(&x, (uint64_t)1 << 40, 0, "s", "x3"), 0);
    assert_int_equal(put(&a, 501, 0, "bob", "a3"), 0);
    assert_int_equal(put(&big, UINT64_MAX, UINT64_MAX, "z", "max"), 0);
    assert_int_equal(put(&zero, 0, 0, "z", "zero"), 0);
    assert_int_equal(put(&r1, 401, 0, "alice", "r2"), 0);
    /* binary message with NUL bytes and a long one */
    char bin[5000];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (char)(i * 7);
    dlog_entry e = { { 600, 0 }, 42, "bob", 3, bin, sizeof bin, "", 0 };
    assert_int_equal(dlog_disk_put(&b, &e), 0);
    e.msglen = 3;
    e.id.ms = 601;
    assert_int_equal(dlog_disk_put(&b, &e), 0);

    loaded l;
    load(&l);
    assert_int_equal(l.ne, 16);
    assert_int_equal(l.nc, 0);
    assert_runs(&l);
    dlog_id ids[8];
    assert_int_equal(log_ids(&l, &a, ids, 8), 3);
    assert_true(id_eq(ids[0], 500, 0) && id_eq(ids[1], 500, 1) && id_eq(ids[2], 501, 0));
    assert_int_equal(log_ids(&l, &x, ids, 8), 3);
    assert_true(id_eq(ids[0], 255, 0) && id_eq(ids[1], 256, 0) && id_eq(ids[2], (uint64_t)1 << 40, 0));
    assert_int_equal(log_ids(&l, &xb, ids, 8), 1);
    assert_int_equal(log_ids(&l, &r1, ids, 8), 2);
    assert_true(id_eq(ids[0], 400, 3) && id_eq(ids[1], 401, 0));
    assert_int_equal(log_ids(&l, &b, ids, 8), 3);
    assert_int_equal(log_ids(&l, &a2, ids, 8), 1);
    assert_int_equal(log_ids(&l, &r2, ids, 8), 1);
    assert_int_equal(log_ids(&l, &big, ids, 8), 1);
    assert_true(id_eq(ids[0], UINT64_MAX, UINT64_MAX));
    assert_int_equal(log_ids(&l, &zero, ids, 8), 1);
    /* the fields */
    for (size_t i = 0; i < l.ne; i++) {
        const rec *r = &l.e[i];
        if (same_log(r, &a) && id_eq(r->id, 500, 1)) {
            assert_string_equal(r->from, "bob");
            assert_int_equal(r->msglen, 2);
            assert_memory_equal(r->msg, "a2", 2);
            assert_int_equal(r->time_ms, 507);
            assert_string_equal(r->seq, "m500001");
        }
        if (same_log(r, &a2)) {
            assert_string_equal(r->from, "");
            assert_int_equal(r->msglen, 0);
        }
        if (same_log(r, &b) && id_eq(r->id, 600, 0)) {
            assert_int_equal(r->msglen, sizeof bin);
            assert_memory_equal(r->msg, bin, sizeof bin);
            assert_int_equal(r->time_ms, 42);
            assert_string_equal(r->seq, "");
        }
    }
    /* inboxes come before rooms */
    assert_int_equal(l.e[l.ne - 1].uidlen, 0);
    assert_true(l.e[0].uidlen > 0);
    unload(&l);
}

static void test_duplicate_id_refused(void **state)
{
    (void)state;
    open_store();
    dlog_key a = inbox(101, "alice");
    assert_int_equal(put(&a, 500, 0, "bob", "first"), 0);
    assert_int_equal(put(&a, 500, 0, "bob", "second"), -1);     /* logged, not overwritten */
    loaded l;
    load(&l);
    assert_int_equal(l.ne, 1);
    assert_memory_equal(l.e[0].msg, "first", 5);
    unload(&l);
}

/* ---- trim ---- */

static void test_trim(void **state)
{
    (void)state;
    open_store();
    dlog_key a = inbox(101, "u"), b = inbox(101, "u1"), r = room(101), c = inbox(100, "u");
    for (uint64_t i = 1; i <= 10; i++) {
        assert_int_equal(put(&a, 1000 + i, 0, "s", "a"), 0);
        assert_int_equal(put(&b, 1000 + i, 0, "s", "b"), 0);
        assert_int_equal(put(&r, 1000 + i, 0, "s", "r"), 0);
        assert_int_equal(put(&c, 1000 + i, 0, "s", "c"), 0);
    }
    assert_int_equal(put(&a, 1010, 1, "s", "a"), 0);
    assert_int_equal(dlog_disk_trim(&a, (dlog_id){ 0, 0 }), 0);          /* nothing that old */
    assert_int_equal(dlog_disk_trim(&a, (dlog_id){ 1005, 0 }), 0);       /* 1001..1005 */
    assert_int_equal(dlog_disk_trim(&a, (dlog_id){ 1006, 7 }), 0);       /* between ids: 1006 */
    assert_int_equal(dlog_disk_trim(&a, (dlog_id){ 1008, 0 }), 0);       /* 1007, 1008 */
    assert_int_equal(dlog_disk_trim(&r, (dlog_id){ UINT64_MAX, UINT64_MAX }), 0);  /* all */
    assert_int_equal(dlog_disk_trim(&r, (dlog_id){ UINT64_MAX, UINT64_MAX }), 0);  /* empty log */
    dlog_key none = inbox(7, "nobody");
    assert_int_equal(dlog_disk_trim(&none, (dlog_id){ 5, 0 }), 0);

    loaded l;
    load(&l);
    dlog_id ids[16];
    assert_int_equal(log_ids(&l, &a, ids, 16), 3);
    assert_true(id_eq(ids[0], 1009, 0) && id_eq(ids[1], 1010, 0) && id_eq(ids[2], 1010, 1));
    assert_int_equal(log_ids(&l, &b, ids, 16), 10);
    assert_int_equal(log_ids(&l, &c, ids, 16), 10);
    assert_int_equal(log_ids(&l, &r, ids, 16), 0);
    unload(&l);
    assert_int_equal(dlog_disk_trim(&a, (dlog_id){ 1010, 0 }), 0);       /* 1010-0, not 1010-1 */
    load(&l);
    assert_int_equal(log_ids(&l, &a, ids, 16), 1);
    assert_true(id_eq(ids[0], 1010, 1));
    assert_int_equal(l.ne, 21);
    unload(&l);
}

/* A trim over thousands of entries (many pages), its neighbours interleaved. */
static void test_trim_many(void **state)
{
    (void)state;
    open_store();
    dlog_key a = inbox(5, "big"), b = inbox(5, "bif"), c = inbox(5, "bih");
    char msg[101];
    memset(msg, 'x', 100);
    msg[100] = '\0';
    for (uint64_t i = 0; i < 5000; i++) {
        assert_int_equal(put(&b, i, 0, "s", msg), 0);
        assert_int_equal(put(&a, i, 0, "s", msg), 0);
        assert_int_equal(put(&c, i, 0, "s", msg), 0);
    }
    assert_int_equal(dlog_disk_trim(&a, (dlog_id){ 3999, 0 }), 0);
    loaded l;
    load(&l);
    assert_int_equal(l.ne, 11000);
    assert_runs(&l);
    static dlog_id ids[5000];
    assert_int_equal(log_ids(&l, &a, ids, 5000), 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_true(id_eq(ids[i], 4000 + i, 0));
    assert_int_equal(log_ids(&l, &b, ids, 5000), 5000);
    assert_int_equal(log_ids(&l, &c, ids, 5000), 5000);
    unload(&l);
}

/* ---- cursors ---- */

static void test_cursors(void **state)
{
    (void)state;
    open_store();
    dlog_key a = inbox(101, "alice"), b = inbox(101, "bob"), a2 = inbox(102, "alice");
    assert_int_equal(dlog_disk_cursor_put(&a, (dlog_id){ 10, 1 }), 0);
    assert_int_equal(dlog_disk_cursor_put(&b, (dlog_id){ 20, 0 }), 0);
    assert_int_equal(dlog_disk_cursor_put(&a, (dlog_id){ 11, 0 }), 0);  /* replaces */
    assert_int_equal(dlog_disk_cursor_put(&a2, (dlog_id){ 1, 2 }), 0);
    assert_int_equal(put(&a, 11, 0, "s", "m"), 0);                        /* apart from entries */
    loaded l;
    load(&l);
    assert_int_equal(l.ne, 1);
    assert_int_equal(l.nc, 3);
    for (size_t i = 0; i < l.nc; i++) {
        const rec *r = &l.c[i];
        if (same_log(r, &a))
            assert_true(id_eq(r->id, 11, 0));
        else if (same_log(r, &b))
            assert_true(id_eq(r->id, 20, 0));
        else if (same_log(r, &a2))
            assert_true(id_eq(r->id, 1, 2));
        else
            fail_msg("unexpected cursor %u/%s", r->appid, r->uid);
    }
    unload(&l);
}

/* ---- reopen and death ---- */

static void test_reopen(void **state)
{
    (void)state;
    open_store();
    dlog_key a = inbox(101, "alice"), r = room(101);
    assert_int_equal(put(&a, 1, 0, "s", "one"), 0);
    assert_int_equal(put(&r, 2, 0, "s", "two"), 0);
    assert_int_equal(dlog_disk_cursor_put(&a, (dlog_id){ 1, 0 }), 0);
    dlog_disk_close();
    dlog_disk_close();                                   /* twice is harmless */
    assert_int_equal(put(&a, 3, 0, "s", "closed"), -1);  /* no store: -1, logged */
    loaded l;
    memset(&l, 0, sizeof l);
    assert_int_equal(dlog_disk_load(on_entry, on_cursor, &l), -1);
    open_store();
    assert_int_equal(put(&a, 3, 0, "s", "three"), 0);
    load(&l);
    assert_int_equal(l.ne, 3);
    assert_int_equal(l.nc, 1);
    dlog_id ids[4];
    assert_int_equal(log_ids(&l, &a, ids, 4), 2);
    assert_true(id_eq(ids[0], 1, 0) && id_eq(ids[1], 3, 0));
    unload(&l);
}

/* In a child: opens the store, puts n entries to each of three logs and a
 * cursor, and _exits without closing. */
static void child_put_and_exit(int n)
{
    char err[256];
    if (dlog_disk_open(g_dir, err, sizeof err) != 0)
        _exit(10);
    dlog_key a = inbox(101, "alice"), b = inbox(102, "bob"), r = room(101);
    for (int i = 0; i < n; i++)
        if (put(&a, 100 + i, 0, "s", "a") || put(&b, 100 + i, 1, "s", "b") || put(&r, 100 + i, 2, "s", "r"))
            _exit(11);
    if (dlog_disk_cursor_put(&a, (dlog_id){ 100 + n - 1, 0 }))
        _exit(12);
    _exit(0);
}

static void test_exit_without_close(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_put_and_exit(300);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    open_store();
    loaded l;
    load(&l);
    assert_int_equal(l.ne, 900);
    assert_int_equal(l.nc, 1);
    assert_true(id_eq(l.c[0].id, 399, 0));
    dlog_key r = room(101);
    static dlog_id ids[300];
    assert_int_equal(log_ids(&l, &r, ids, 300), 300);
    for (int i = 0; i < 300; i++)
        assert_true(id_eq(ids[i], 100 + i, 2));
    unload(&l);
}

/* In a child: puts entry i to one log forever, telling the parent each i
 * whose put has returned. */
static void child_stream(int wfd)
{
    char err[256];
    if (dlog_disk_open(g_dir, err, sizeof err) != 0)
        _exit(10);
    dlog_key a = inbox(101, "alice");
    for (uint32_t i = 0;; i++) {
        if (put(&a, 1000 + i, 0, "s", "streamed message") != 0)
            _exit(11);
        if (write(wfd, &i, sizeof i) != sizeof i)
            _exit(12);
    }
}

/* kill -9 while puts go on: every put that returned is there, and the
 * store opens (the dead process's lock and reader slots are released). */
static void test_sigkill_midstream(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_stream(p[1]);
    }
    close(p[1]);
    uint32_t i = 0, last = 0;
    size_t acks = 0;
    while (acks < 3000 && read(p[0], &i, sizeof i) == sizeof i)
        last = i, acks++;
    assert_int_equal(acks, 3000);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    while (read(p[0], &i, sizeof i) == sizeof i)
        last = i;
    close(p[0]);
    open_store();
    loaded l;
    load(&l);
    assert_true(l.ne >= (size_t)last + 1);               /* + perhaps one not yet told */
    assert_true(l.ne <= (size_t)last + 2);
    for (size_t k = 0; k < l.ne; k++)
        assert_true(id_eq(l.e[k].id, 1000 + k, 0));
    printf("  killed after %zu puts returned; %zu entries loaded\n", (size_t)last + 1, l.ne);
    unload(&l);
}

/* ---- open errors ---- */

static void test_open_errors(void **state)
{
    (void)state;
    char path[128], err[512];
    /* a directory that cannot be created: its parent is a file */
    snprintf(path, sizeof path, "%s/file", g_dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/file/store", g_dir);
    assert_int_equal(dlog_disk_open(path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot create"));
    assert_non_null(strstr(err, "Not a directory"));
    /* a data file that is not LMDB */
    snprintf(path, sizeof path, "%s/junk", g_dir);
    assert_int_equal(mkdir(path, 0700), 0);
    char data[160];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    fd = open(data, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    char junk[8192];
    memset(junk, 'j', sizeof junk);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    assert_int_equal(dlog_disk_open(path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "LMDB"));
    printf("  %s\n", err);
    /* an empty path */
    assert_int_equal(dlog_disk_open("", err, sizeof err), -1);
}

static void test_created_0700_nested(void **state)
{
    (void)state;
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/a/b/store", g_dir);
    assert_int_equal(dlog_disk_open(path, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* a second open while one is open */
    assert_int_equal(dlog_disk_open(g_dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "already open"));
}

/* Another process cannot open a store in use (exec'd: a fresh process). */
static void test_in_use_by_other_process(void **state)
{
    (void)state;
    open_store();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(g_self, g_self, "--open-child", g_dir, (char *)NULL);
        _exit(20);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);               /* refused with "in use" */
    dlog_disk_close();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(g_self, g_self, "--open-child", g_dir, (char *)NULL);
        _exit(20);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);               /* free again after close */
}

static int open_child(const char *dir)
{
    char err[512] = "";
    if (dlog_disk_open(dir, err, sizeof err) == 0) {
        dlog_disk_close();
        return 0;
    }
    fprintf(stderr, "open-child: %s\n", err);
    return strstr(err, "in use by another process") ? 3 : 4;
}

/* ---- threads ---- */

#define TH_N 4
#define TH_PUTS 2000

static void *th_put(void *arg)
{
    char uid[16];
    snprintf(uid, sizeof uid, "t%d", (int)(intptr_t)arg);
    dlog_key k = inbox(9, uid), r = room((uint32_t)(intptr_t)arg + 1000);
    for (uint64_t i = 0; i < TH_PUTS; i++) {
        if (put(&k, i, 0, "s", "threaded") || put(&r, i, 1, "s", "room"))
            return (void *)1;
        if (i % 100 != 99)
            continue;
        if (dlog_disk_trim(&r, (dlog_id){ i - 50, 1 }) || dlog_disk_cursor_put(&k, (dlog_id){ i, 0 }))
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    open_store();
    pthread_t th[TH_N];
    for (intptr_t t = 0; t < TH_N; t++)
        assert_int_equal(pthread_create(&th[t], NULL, th_put, (void *)t), 0);
    for (int t = 0; t < TH_N; t++) {
        void *ret;
        assert_int_equal(pthread_join(th[t], &ret), 0);
        assert_null(ret);
    }
    loaded l;
    load(&l);
    assert_int_equal(l.ne, TH_N * (TH_PUTS + 50));
    assert_int_equal(l.nc, TH_N);
    assert_runs(&l);
    static dlog_id ids[TH_PUTS];
    for (int t = 0; t < TH_N; t++) {
        char uid[16];
        snprintf(uid, sizeof uid, "t%d", t);
        dlog_key k = inbox(9, uid), r = room((uint32_t)t + 1000);
        assert_int_equal(log_ids(&l, &k, ids, TH_PUTS), TH_PUTS);
        for (uint64_t i = 0; i < TH_PUTS; i++)
            assert_true(id_eq(ids[i], i, 0));
        assert_int_equal(log_ids(&l, &r, ids, TH_PUTS), 50);
        assert_true(id_eq(ids[0], TH_PUTS - 50, 1));
    }
    unload(&l);
}

/* ---- load with callbacks that write ---- */

typedef struct trim_ud {
    size_t seen;
    uint64_t next;
    int bad;
} trim_ud;

/* Retention at load: keeps only the newest entry of each log. */
static void on_entry_trim(const dlog_key *k, const dlog_entry *e, void *ud)
{
    trim_ud *t = ud;
    if (e->id.ms != t->next)
        t->bad = 1;
    t->next++;
    t->seen++;
    if (e->id.ms > 0 && dlog_disk_trim(k, (dlog_id){ e->id.ms - 1, 0 }) != 0)
        t->bad = 1;
    if (dlog_disk_cursor_put(k, e->id) != 0)
        t->bad = 1;
}

static void on_cursor_count(const dlog_key *k, dlog_id id, void *ud)
{
    (void)k;
    trim_ud *t = ud;
    if (id.ms != 9999)
        t->bad = 1;
    t->seen++;
}

static void test_load_callbacks_write(void **state)
{
    (void)state;
    open_store();
    dlog_key a = inbox(1, "a");
    char msg[201];
    memset(msg, 'm', 200);
    msg[200] = '\0';
    for (uint64_t i = 0; i < 10000; i++)                 /* several load chunks */
        assert_int_equal(put(&a, i, 0, "s", msg), 0);
    trim_ud t = { 0, 0, 0 };
    assert_int_equal(dlog_disk_load(on_entry_trim, NULL, &t), 0);
    assert_false(t.bad);
    assert_int_equal(t.seen, 10000);
    t = (trim_ud){ 0, 9999, 0 };
    assert_int_equal(dlog_disk_load(on_entry_trim, on_cursor_count, &t), 0);
    assert_false(t.bad);
    assert_int_equal(t.seen, 2);                        /* the newest entry and the cursor */
}

/* ---- volume, map growth, bytes per entry ---- */

typedef struct count_ud {
    size_t n;
    uint32_t users;
    int bad;
} count_ud;

static void on_entry_count(const dlog_key *k, const dlog_entry *e, void *ud)
{
    count_ud *c = ud;
    /* inbox logs u0000..u0999, each 100 entries oldest first */
    size_t per = c->n % 100, user = c->n / 100;
    char uid[24];
    snprintf(uid, sizeof uid, "u%04zu", user);
    if (k->uidlen != 5 || memcmp(k->uid, uid, 5) != 0 || e->id.ms != 1700000000000ull + per * 1000 + user
        || e->msglen != 100 || e->fromlen != 8)
        c->bad = 1;
    c->n++;
}

static long long file_blocks(const char *name, long long *size)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    assert_int_equal(stat(path, &st), 0);
    *size = st.st_size;
    return (long long)st.st_blocks * 512;
}

static void test_100k_growth(void **state)
{
    (void)state;
    dlog_disk_set_map_start(1 << 20);                    /* 1 MiB: must grow to hold ~20 MB */
    open_store();
    char msg[101];
    memset(msg, 'x', 100);
    msg[100] = '\0';
    /* 100 rounds over 1000 users (realistic: logs interleave on disk) */
    for (uint64_t round = 0; round < 100; round++) {
        for (uint32_t u = 0; u < 1000; u++) {
            char uid[24];
            snprintf(uid, sizeof uid, "u%04u", u);
            dlog_key k = inbox(101, uid);
            char mid[16];
            snprintf(mid, sizeof mid, "msg-%06u", (unsigned)(round * 1000 + u));
            dlog_entry e = { { 1700000000000ull + round * 1000 + u, 0 }, 1700000000000ull, "sender01", 8,
                             msg, 100, mid, strlen(mid) };
            assert_int_equal(dlog_disk_put(&k, &e), 0);
        }
    }
    long long size, disk = file_blocks("data.mdb", &size);
    assert_true(size > (1 << 20));                       /* the map grew */
    printf("  100k inbox entries (100-byte msg, 8-byte from, 10-byte msgID, 5-byte uid, "
           "1000 logs interleaved): data.mdb %lld bytes, %lld on disk = %.0f bytes per entry\n",
           size, disk, (double)disk / 100000);
    dlog_disk_close();
    open_store();                                        /* the bigger map size is kept */
    count_ud c = { 0, 0, 0 };
    assert_int_equal(dlog_disk_load(on_entry_count, NULL, &c), 0);
    assert_false(c.bad);
    assert_int_equal(c.n, 100000);
    dlog_key k = inbox(101, "u0001");
    assert_int_equal(put(&k, UINT64_MAX, 0, "s", "after reopen"), 0);
}

/* One room log appended in order (pages fill completely). */
static void test_100k_sequential_size(void **state)
{
    (void)state;
    open_store();
    char msg[101];
    memset(msg, 'x', 100);
    msg[100] = '\0';
    dlog_key r = room(101);
    for (uint64_t i = 0; i < 100000; i++) {
        dlog_entry e = { { 1700000000000ull + i, 0 }, 1700000000000ull, "sender01", 8, msg, 100,
                         "msg-000000", 10 };
        assert_int_equal(dlog_disk_put(&r, &e), 0);
    }
    long long size, disk = file_blocks("data.mdb", &size);
    printf("  100k entries of one room log in order: data.mdb %lld bytes, %lld on disk"
           " = %.0f bytes per entry\n",
           size, disk, (double)disk / 100000);
    /* trim all but the last 1000, then append 99k more: freed pages are reused */
    assert_int_equal(dlog_disk_trim(&r, (dlog_id){ 1700000000000ull + 98999, 0 }), 0);
    for (uint64_t i = 100000; i < 199000; i++) {
        dlog_entry e = { { 1700000000000ull + i, 0 }, 1700000000000ull, "sender01", 8, msg, 100,
                         "msg-000000", 10 };
        assert_int_equal(dlog_disk_put(&r, &e), 0);
    }
    long long size2;
    file_blocks("data.mdb", &size2);
    printf("  after trimming to 1000 and appending 99k more: data.mdb %lld bytes\n", size2);
    assert_true(size2 < size * 3 / 2);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--open-child") == 0)
        return open_child(argv[2]);
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0)
        return 1;
    g_self[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_id_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_without_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_midstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_0700_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_use_by_other_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_callbacks_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_100k_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_100k_sequential_size, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
