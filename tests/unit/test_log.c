/* test_log.c — unit tests for core/log: the line format on both sinks,
 * level filtering, bad arguments, reopen after rotation, long and
 * multi-line messages, and whole lines under concurrent writers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

#define LINE_RE "^[0-9]{4}-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z " \
                "(DEBUG|INFO|WARN|ERROR|REQ) "

typedef struct fixture {
    char dir[64];
    char path[PATH_MAX];       /* the log file, two directories down */
    char errpath[PATH_MAX];    /* where stderr goes during a test */
    int saved_stderr;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/imgate_test_log_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/a/b/imgate.log", f->dir);
    snprintf(f->errpath, sizeof f->errpath, "%s/stderr.txt", f->dir);
    f->saved_stderr = -1;
    *state = f;
    return 0;
}

/* Sends stderr to f->errpath until stderr_restore. */
static void stderr_capture(fixture *f)
{
    int fd = open(f->errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    f->saved_stderr = dup(STDERR_FILENO);
    assert_true(f->saved_stderr >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

static void stderr_restore(fixture *f)
{
    assert_true(dup2(f->saved_stderr, STDERR_FILENO) >= 0);
    close(f->saved_stderr);
    f->saved_stderr = -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];

    log_close();
    if (f->saved_stderr >= 0)          /* a failed test left stderr captured */
        stderr_restore(f);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* The whole file in a malloc'd string ("" when missing). */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    size_t n = 0;

    assert_non_null(buf);
    if (fp) {
        n = fread(buf, 1, (1 << 20) - 1, fp);
        fclose(fp);
    }
    buf[n] = '\0';
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Every line matches pattern (extended regex). */
static void assert_lines_match(const char *text, const char *pattern)
{
    regex_t re;
    char line[4096];

    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    while (*text) {
        size_t n = strcspn(text, "\n");

        assert_true(n < sizeof line);
        memcpy(line, text, n);
        line[n] = '\0';
        if (regexec(&re, line, 0, NULL, 0) != 0)
            fail_msg("badly formed line: '%s'", line);
        text += n + (text[n] == '\n');
    }
    regfree(&re);
}

/* Every line has the stamp and a level tag. */
static void assert_lines_well_formed(const char *text)
{
    assert_lines_match(text, LINE_RE);
}

static void test_file_and_stderr(void **state)
{
    fixture *f = *state;
    char *file, *err;

    stderr_capture(f);
    assert_int_equal(log_init("info", f->path), 0);   /* creates a/b/ */
    log_info("hello %d", 42);
    log_debug("hidden %s", "debug");
    log_warn("careful");
    log_error("broken: %s", "yes");
    log_request("GET /user/online 200 %dus", 17);
    stderr_restore(f);

    file = slurp(f->path);
    err = slurp(f->errpath);
    assert_int_equal(count_lines(file), 4);
    assert_lines_well_formed(file);
    assert_non_null(strstr(file, "Z INFO hello 42\n"));
    assert_non_null(strstr(file, "Z WARN careful\n"));
    assert_non_null(strstr(file, "Z ERROR broken: yes\n"));
    assert_non_null(strstr(file, "Z REQ GET /user/online 200 17us\n"));
    assert_null(strstr(file, "hidden"));
    assert_string_equal(err, file);                 /* stderr gets the same lines */
    free(file);
    free(err);
}

static void test_level_filter(void **state)
{
    fixture *f = *state;
    char *file;

    stderr_capture(f);
    assert_int_equal(log_init("error", f->path), 0);
    assert_false(log_enabled(LOG_WARN));
    assert_true(log_enabled(LOG_ERROR));
    log_info("no info");
    log_warn("no warn");
    log_request("no request line");
    log_error("only this");
    assert_int_equal(log_init("debug", f->path), 0);
    assert_true(log_enabled(LOG_DEBUG));
    log_debug("now debug");
    stderr_restore(f);

    file = slurp(f->path);
    assert_int_equal(count_lines(file), 2);
    assert_non_null(strstr(file, " ERROR only this\n"));
    assert_non_null(strstr(file, " DEBUG now debug\n"));
    free(file);
}

static void test_bad_init(void **state)
{
    fixture *f = *state;
    char blocker[PATH_MAX + 8], under[PATH_MAX + 24];
    char *file;
    FILE *fp;

    stderr_capture(f);
    assert_int_equal(log_init("info", f->path), 0);
    errno = 0;
    assert_int_equal(log_init("verbose", NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(log_init("INFO", NULL), -1);

    snprintf(blocker, sizeof blocker, "%s/plain", f->dir);     /* a file, not a dir */
    fp = fopen(blocker, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(under, sizeof under, "%s/sub/x.log", blocker);
    assert_int_equal(log_init("info", under), -1);
    assert_int_equal(errno, ENOTDIR);

    log_info("still the first file");              /* failed inits changed nothing */
    stderr_restore(f);
    file = slurp(f->path);
    assert_non_null(strstr(file, " INFO still the first file\n"));
    free(file);
}

static void test_reopen_after_rename(void **state)
{
    fixture *f = *state;
    char rotated[PATH_MAX + 8];
    char *old, *cur;

    snprintf(rotated, sizeof rotated, "%s.1", f->path);
    stderr_capture(f);
    assert_int_equal(log_init("info", f->path), 0);
    log_info("line A");
    assert_int_equal(rename(f->path, rotated), 0);
    log_info("line B");                         /* still the renamed file */
    assert_int_equal(log_reopen(), 0);
    log_info("line C");
    stderr_restore(f);

    old = slurp(rotated);
    cur = slurp(f->path);
    assert_int_equal(count_lines(old), 2);
    assert_non_null(strstr(old, "line A\n"));
    assert_non_null(strstr(old, "line B\n"));
    assert_int_equal(count_lines(cur), 1);
    assert_non_null(strstr(cur, "line C\n"));
    free(old);
    free(cur);
}

/* app.requestLog: REQ lines go to their own file, the rest stays put, and
 * SIGHUP's reopen covers both files. */
static void test_request_log_file(void **state)
{
    fixture *f = *state;
    char req[PATH_MAX + 8], rotated[PATH_MAX + 16];
    char *dbg, *rq, *old;

    snprintf(req, sizeof req, "%s.req", f->path);
    snprintf(rotated, sizeof rotated, "%s.1", req);
    stderr_capture(f);
    assert_int_equal(log_init("info", f->path), 0);
    assert_int_equal(log_init_requests(req), 0);
    log_info("debug line");
    log_request("GET /user/list 200");
    assert_int_equal(rename(req, rotated), 0);
    assert_int_equal(log_reopen(), 0);
    log_request("GET /system/state 200");
    stderr_restore(f);

    dbg = slurp(f->path);
    rq = slurp(req);
    old = slurp(rotated);
    assert_non_null(strstr(dbg, "INFO debug line\n"));
    assert_null(strstr(dbg, "REQ"));
    assert_non_null(strstr(old, "REQ GET /user/list 200\n"));
    assert_int_equal(count_lines(rq), 1);
    assert_non_null(strstr(rq, "REQ GET /system/state 200\n"));
    free(dbg);
    free(rq);
    free(old);
}

static void test_reopen_without_file(void **state)
{
    fixture *f = *state;

    stderr_capture(f);
    assert_int_equal(log_init("info", NULL), 0);
    assert_int_equal(log_reopen(), 0);
    stderr_restore(f);
}

static void test_long_and_multiline(void **state)
{
    fixture *f = *state;
    char big[5000];
    char *file, *nl;

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    stderr_capture(f);
    assert_int_equal(log_init("info", f->path), 0);
    log_info("%s", big);
    log_info("a\nb\rc\td");
    stderr_restore(f);

    file = slurp(f->path);
    assert_int_equal(count_lines(file), 2);
    nl = strchr(file, '\n');
    assert_true(nl - file + 1 <= 2048);
    assert_memory_equal(nl - 3, "...", 3);
    assert_non_null(strstr(nl + 1, " INFO a?b?c\td\n"));
    assert_lines_well_formed(file);
    free(file);
}

#define THREADS 4
#define PER_THREAD 500

static void *writer(void *arg)
{
    long id = (long)(intptr_t)arg;

    for (int i = 0; i < PER_THREAD; i++)
        log_info("thread %ld line %04d %s", id, i,
                 "padding-padding-padding-padding-padding-padding-padding-padding");
    return NULL;
}

static void test_concurrent_lines_stay_whole(void **state)
{
    fixture *f = *state;
    pthread_t th[THREADS];
    char *file;

    stderr_capture(f);
    assert_int_equal(log_init("info", f->path), 0);
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    stderr_restore(f);

    file = slurp(f->path);
    assert_int_equal(count_lines(file), THREADS * PER_THREAD);
    assert_lines_match(file, LINE_RE "thread [0-9] line [0-9]{4} (padding-){7}padding$");
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_and_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_without_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_log_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_and_multiline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_lines_stay_whole, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
