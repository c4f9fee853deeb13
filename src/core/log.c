/* log.c — owns the node's log sinks: stderr plus an optional append-only
 * file (reopened on SIGHUP), the level filter and the line format
 * "2026-11-22T01:02:03.456Z INFO message". Each line is formatted on the
 * stack (LOG_LINE_MAX bytes, longer lines are cut) and written with one
 * write(2) per sink, so threads need no lock. log_request lines ("REQ")
 * follow the info level. On failure log_init/log_reopen return -1 with
 * errno set (EINVAL for an unknown level). */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static atomic_int log_level = LOG_INFO;
static atomic_int log_fd = -1;           /* the file sink, -1 = none */
static char log_path[PATH_MAX];          /* set by log_init only */
static atomic_int log_req_fd = -1;       /* app.requestLog, -1 = with the debug log */
static char log_req_path[PATH_MAX];

static const char *const log_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static int log_parse_level(const char *s, int *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};

    if (!s || !*s) {
        *out = LOG_INFO;
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    errno = EINVAL;
    return -1;
}

/* mkdir -p for the directory part of path. */
static int log_make_dirs(const char *path)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, n + 1);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static int log_open(const char *path)
{
    if (log_make_dirs(path) < 0)
        return -1;
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int log_init(const char *level, const char *path)
{
    int lv, fd = -1;

    if (log_parse_level(level, &lv) < 0)
        return -1;
    if (path && *path) {
        if (strlen(path) >= sizeof log_path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = log_open(path);
        if (fd < 0)
            return -1;
    }
    log_close();
    snprintf(log_path, sizeof log_path, "%s", path ? path : "");
    atomic_store(&log_fd, fd);
    atomic_store(&log_level, lv);
    return 0;
}

/* The new file takes over the same descriptor number (dup3 is atomic), so a
 * thread writing concurrently hits either the old or the new file. */
static int log_reopen_one(int cur, const char *path)
{
    int fd;

    if (cur < 0 || !path[0])
        return 0;
    fd = log_open(path);
    if (fd < 0)
        return -1;
    if (dup3(fd, cur, O_CLOEXEC) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

int log_reopen(void)
{
    int a = log_reopen_one(atomic_load(&log_fd), log_path);
    int b = log_reopen_one(atomic_load(&log_req_fd), log_req_path);
    return a < 0 || b < 0 ? -1 : 0;
}

int log_init_requests(const char *path)
{
    int fd;

    if (!path || !*path)
        return 0;
    if (strlen(path) >= sizeof log_req_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = log_open(path);
    if (fd < 0)
        return -1;
    snprintf(log_req_path, sizeof log_req_path, "%s", path);
    fd = atomic_exchange(&log_req_fd, fd);
    if (fd >= 0)
        close(fd);
    return 0;
}

void log_close(void)
{
    int fd = atomic_exchange(&log_fd, -1);

    if (fd >= 0)
        close(fd);
    fd = atomic_exchange(&log_req_fd, -1);
    if (fd >= 0)
        close(fd);
}

int log_enabled(enum log_level lv)
{
    return (int)lv >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* "2026-11-22T01:02:03.456Z " into buf (at least 32 bytes); returns length. */
static size_t log_stamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        ts = (struct timespec){0, 0};
    if (!gmtime_r(&ts.tv_sec, &tm))
        memset(&tm, 0, sizeof tm);
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, len - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    return n;
}

/* Control characters would split or forge lines: show them as '?'. */
static void log_sanitize(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            s[i] = '?';
    }
}

/* One write per sink; a sink that fails has nowhere to report, the line is
 * dropped for that sink only. */
static void log_write_all(const char *line, size_t n, int request)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    int rfd = request ? atomic_load_explicit(&log_req_fd, memory_order_relaxed) : -1;

    if (rfd >= 0) {                       /* the request log has its own file */
        while (write(rfd, line, n) < 0 && errno == EINTR) {
        }
        return;
    }
    while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR) {
    }
    if (fd < 0)
        return;
    while (write(fd, line, n) < 0 && errno == EINTR) {
    }
}

static void log_emit(const char *tag, int request, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t head, n;
    int m;

    head = log_stamp(line, sizeof line);
    head += (size_t)snprintf(line + head, sizeof line - head, "%s ", tag);
    m = vsnprintf(line + head, sizeof line - head, fmt, ap);
    if (m < 0)
        m = 0;
    n = head + (size_t)m;
    if (n > sizeof line - 2) {            /* cut: keep room for "...\n" */
        n = sizeof line - 5;
        memcpy(line + n, "...", 3);
        n += 3;
    }
    log_sanitize(line + head, n - head);
    line[n++] = '\n';
    log_write_all(line, n, request);
}

void log_msg(enum log_level lv, const char *fmt, ...)
{
    va_list ap;

    if ((unsigned)lv > (unsigned)LOG_ERROR || !log_enabled(lv))
        return;
    va_start(ap, fmt);
    log_emit(log_names[lv], 0, fmt, ap);
    va_end(ap);
}

int log_requests_on(void) { return log_enabled(LOG_INFO); }

void log_request(const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(LOG_INFO))
        return;
    va_start(ap, fmt);
    log_emit("REQ", 1, fmt, ap);
    va_end(ap);
}
