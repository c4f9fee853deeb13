/* dedup.h — msgID de-duplication for the push API: a msgID accepted within
 * the last TTL seconds makes a later send a no-op. Bounded memory: past
 * `max` entries the oldest are forgotten first. Process-wide, one mutex
 * (taken once per API send, never per recipient). */
#ifndef IMGATE_DEDUP_H
#define IMGATE_DEDUP_H

#include <stddef.h>
#include <stdint.h>

int dedup_init(uint32_t ttl_secs, size_t max);
void dedup_free(void);

/* Atomically checks and records msgID: 1 = new (now reserved, in flight),
 * 0 = a duplicate of an accepted send, 2 = a send with this msgID is still
 * in flight (its outcome is unknown: the caller should retry), -1 = out of
 * memory. An empty msgID is always new and never recorded. */
int dedup_reserve(const char *msgid, size_t len, uint32_t now);
/* The reserved send was accepted: later sends are duplicates. */
void dedup_commit(const char *msgid, size_t len);
/* Forgets a reservation whose send was not accepted, so a retry goes out. */
void dedup_release(const char *msgid, size_t len);
size_t dedup_count(void);

#endif
