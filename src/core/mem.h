/* mem.h — zeroed allocation for what a connection or a login allocates
 * and frees again soon (request state, a Redis query, a login's record).
 *
 * glibc's calloc (2.36, Debian 12) never takes a chunk from the thread's
 * cache (tcache): each call goes the arena's way (_int_malloc), and with
 * several callocs per login that was 2 % of a node in a login storm.
 * malloc then memset is served from the cache like any malloc; the zeroing
 * calloc could skip for fresh pages is nothing at these sizes. Long-lived
 * and large tables keep calloc. */
#ifndef IMGATE_CORE_MEM_H
#define IMGATE_CORE_MEM_H

#include <stdlib.h>
#include <string.h>

/* n zeroed bytes from malloc, or NULL. */
static inline void *mem_zalloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

#endif
