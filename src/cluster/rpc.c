/* rpc.c — placeholder until the gRPC module lands (see rpc.h). */
#include "cluster/rpc.h"

#include <stdio.h>

int rpc_start(const char *bind, int port, int *bound, char *err, size_t errlen)
{
    (void)bind; (void)port; (void)bound;
    snprintf(err, errlen, "gRPC is not built yet");
    return -1;
}
void rpc_stop(void) {}
int rpc_send_msg(const char *p, const rpc_msg *m, rpc_done_fn d, void *u) { (void)p; (void)m; (void)d; (void)u; return -1; }
int rpc_send_msg_all(const char *p, const rpc_msg *m, rpc_done_fn d, void *u) { (void)p; (void)m; (void)d; (void)u; return -1; }
int rpc_get_user_list(const char *p, uint32_t a, rpc_done_fn d, void *u) { (void)p; (void)a; (void)d; (void)u; return -1; }
int rpc_query_online(const char *p, uint32_t a, const char *id, size_t n, rpc_done_fn d, void *u) { (void)p; (void)a; (void)id; (void)n; (void)d; (void)u; return -1; }
int rpc_peer_skipped(const char *p) { (void)p; return 0; }
#include "core/jsonw.h"
void rpc_peers_json(struct jsonw *w) { jsonw_lit(w, "[]"); }
