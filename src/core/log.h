/* log.h — the node's two logs: the debug log (levels, to stderr and
 * app.logFile) and the request log (one line per HTTP request / WS
 * connection event). Thread-safe: each line is one write(2). */
#ifndef IMGATE_LOG_H
#define IMGATE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

int log_init(const char *level, const char *path);   /* 0 or -1 */
/* Sends request lines to their own file (app.requestLog) instead of the
 * debug log's sinks. "" or NULL keeps them with the debug log. */
int log_init_requests(const char *path);
int log_reopen(void);                                  /* after SIGHUP: both files */
void log_close(void);
int log_enabled(enum log_level lv);
void log_msg(enum log_level lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_request(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether log_request writes anything: skip building a line nobody reads. */
int log_requests_on(void);

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
