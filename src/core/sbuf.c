/* sbuf.c — reference-counted shared buffers (see sbuf.h). */
#include "core/sbuf.h"

#include <stdlib.h>
#include <string.h>

sbuf *sbuf_new(size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    sbuf *b = malloc(sizeof(*b) + len);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = (uint32_t)len;
    return b;
}

sbuf *sbuf_copy(const void *p, size_t len)
{
    sbuf *b = sbuf_new(len);
    if (b && len)
        memcpy(b->data, p, len);
    return b;
}

void sbuf_unref(sbuf *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}
