/* kick.h — /user/kick in cluster mode: every connection of a user closed
 * on every live node (close code 4000 and a reason). One Redis read (the
 * registry acc:hash:servers), the local hub job, and the imgate-only gRPC
 * method KickUser to every other live node: all of them, not only those of
 * the user's nodes hash, so that a connection whose hash field is not yet
 * (or no longer) written is closed too; a kick is rare. A node that does
 * not answer, or answers UNIMPLEMENTED (a Go node), is listed as failed;
 * the call still succeeds with what the others closed. */
#ifndef IMGATE_KICK_H
#define IMGATE_KICK_H

#include <stddef.h>
#include <stdint.h>

#define KICK_MAX_FAILED 16              /* failed nodes named in the answer */

typedef struct kick_result {
    long kicked;                        /* connections closed, all nodes */
    int nodes;                          /* live nodes asked, this one included */
    int nfailed;                        /* of them, those that did not do it */
    const char (*failed)[64];           /* the first KICK_MAX_FAILED of them */
} kick_result;

/* code is IM_OK, or IM_SERVER_ERROR with why (Redis is unavailable, the
 * registry cannot be read): nothing was closed then. r is valid during the
 * call only. */
typedef void (*kick_fn)(void *ud, int code, const char *why, const kick_result *r);

/* From a worker; done runs once, later, on the same worker. reason is cut
 * to HUB_KICK_REASON_MAX bytes by the close frame. Returns 0, or -1 (no
 * memory; done will not run). */
int cluster_kick(uint32_t appid, const char *uid, size_t uidlen, const char *reason, kick_fn done,
                 void *ud);

#endif
