/* sbuf.h — an immutable, reference-counted byte buffer shared between
 * threads. A broadcast frame is encoded once into an sbuf and every
 * recipient's write queue holds a reference to it, never a copy. */
#ifndef IMGATE_SBUF_H
#define IMGATE_SBUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sbuf {
    atomic_uint refs;
    uint32_t len;
    uint8_t data[];
} sbuf;

/* A new buffer of len bytes with one reference, or NULL. */
sbuf *sbuf_new(size_t len);
/* A new buffer holding a copy of p[0..len). */
sbuf *sbuf_copy(const void *p, size_t len);
static inline sbuf *sbuf_ref(sbuf *b) { atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed); return b; }
void sbuf_unref(sbuf *b);

#endif
