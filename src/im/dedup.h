/* dedup.h — msgID de-duplication for the push API (embedded mode): a msgID
 * accepted within the last TTL seconds makes a later send a no-op. Bounded
 * memory: past `max_entries` entries or `max_bytes` bytes the oldest
 * accepted msgIDs are forgotten first; a reservation still in flight is
 * never forgotten. Process-wide, one mutex (taken once per API send, never
 * per recipient). */
#ifndef IMGATE_DEDUP_H
#define IMGATE_DEDUP_H

#include <stddef.h>
#include <stdint.h>

/* What dedup_reserve found. */
enum {
    DEDUP_NOMEM = -1,      /* out of memory */
    DEDUP_DUP = 0,         /* a duplicate of an accepted send */
    DEDUP_NEW = 1,         /* new: now reserved (in flight) */
    DEDUP_IN_FLIGHT = 2,   /* a send with this msgID is in flight: retry later */
    DEDUP_FULL = 3,        /* the bounds are taken by sends in flight: retry later */
};

/* A reservation. gen 0 = nothing reserved (an empty msgID). */
typedef struct dedup_ticket {
    uint64_t gen;
    uint32_t hash;
} dedup_ticket;

int dedup_init(uint32_t ttl_secs, size_t max_entries, size_t max_bytes);
void dedup_free(void);

/* Atomically checks and records msgID (see the enum). On DEDUP_NEW *t is
 * the reservation, which must be committed or released exactly once. An
 * empty msgID is always new and never recorded (t->gen = 0). */
int dedup_reserve(const char *msgid, size_t len, uint32_t now, dedup_ticket *t);
/* The reserved send was accepted at `now`: later sends with its msgID are
 * duplicates for the TTL. A ticket that is no longer reserved (released,
 * committed, or from before dedup_free) does nothing. */
void dedup_commit(const dedup_ticket *t, uint32_t now);
/* Forgets a reservation whose send was not accepted, so a retry goes out.
 * Only that reservation: a stale ticket never touches a newer reservation
 * of the same msgID. */
void dedup_release(const dedup_ticket *t);

size_t dedup_count(void);
/* Memory held: every entry's allocation (dedup_entry_bytes) plus the hash
 * table; never above max_bytes. */
size_t dedup_bytes(void);
/* What one entry with a msgID of len bytes is charged: its malloc chunk. */
size_t dedup_entry_bytes(size_t len);

#endif
