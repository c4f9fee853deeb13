/* mem.h — zeroed allocation for what a connection or a login allocates
 * and frees again soon (request state, a Redis query, a login's record).
 *
 * glibc's calloc (2.36, Debian 12) never takes a chunk from the thread's
 * cache (tcache): each call goes the arena's way (_int_malloc). In perf of
 * one node in a login storm the HTTP request state's calloc alone was
 * 1.6 % of the node's samples there; as malloc + memset it no longer
 * shows. The zeroing calloc could skip for fresh pages is nothing at these
 * sizes. Long-lived and large tables keep calloc. */
#ifndef IMGATE_CORE_MEM_H
#define IMGATE_CORE_MEM_H

#include <stdlib.h>
#include <string.h>

/* n zeroed bytes from malloc, or NULL. The empty asm hides p from the
 * optimizer, which would otherwise fold malloc + memset back into calloc
 * (GCC 12 at -O2 does). */
static inline void *mem_zalloc(size_t n)
{
    void *p = malloc(n);
    if (p) {
        __asm__ volatile("" : : "r"(p) : "memory");
        memset(p, 0, n);
    }
    return p;
}

#endif
