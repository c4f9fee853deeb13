/* api.h — the HTTP API (SPEC §3): /user/list, /user/online,
 * /user/sendMessage, /user/sendMessageAll, /system/state, /home/index,
 * /metrics. Answers {"code","msg","data"} JSON with CORS headers. */
#ifndef IMGATE_API_H
#define IMGATE_API_H

struct conn;
struct http_req;

/* Handles the complete request r on c: answers now, or defers the answer
 * (http_conn_defer) until the workers have delivered a push. */
void api_handle(struct conn *c, struct http_req *r);

#endif
