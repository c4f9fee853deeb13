/* prec.h — the presence record of SPEC §5: the Redis key
 * acc:user:online:<appID>_<userID> and its JSON value, written by this node
 * and read back (also when written by an original Go node, whose field
 * names differ in case: appId/userId). Pure functions, no I/O. */
#ifndef IMGATE_PREC_H
#define IMGATE_PREC_H

#include <stddef.h>
#include <stdint.h>

#define PREC_KEY_PREFIX "acc:user:online:"
#define PREC_TTL_STR "86400"        /* seconds, on every write */
#define PREC_ONLINE_SECS 180        /* a heartbeat older than this is offline */

struct jsonw;

typedef struct prec {
    char acc_ip[64];                /* the node holding the user */
    char acc_port[16];              /* that node's rpc port, a string */
    uint32_t appid;
    char uid[64];
    size_t uidlen;
    char client_ip[64];             /* "ip:port" of the client */
    uint64_t login_time, hb_time, logout_time;
    int is_logoff;
} prec;

/* Writes the key into out (NUL-terminated); returns its length, or -1 if
 * it does not fit. */
int prec_key(char *out, size_t cap, uint32_t appid, const char *uid, size_t len);

/* Appends the record's JSON, fields in the original's order. */
void prec_encode(struct jsonw *w, const prec *r);

/* Parses a stored record; field names are matched case-insensitively.
 * Returns 0, or -1 if it is not a JSON object. Missing fields stay zero. */
int prec_parse(const char *json, size_t len, prec *r);

/* Online: not logged off and a heartbeat under PREC_ONLINE_SECS old. */
int prec_online(const prec *r, uint64_t now);

/* "accIp:accPort" of the record into out; returns its length or -1. */
int prec_node(const prec *r, char *out, size_t cap);

#endif
