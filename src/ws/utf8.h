/* utf8.h — incremental UTF-8 validation (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), resumable across fragment boundaries. */
#ifndef IMGATE_WS_UTF8_H
#define IMGATE_WS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_ACCEPT 0u   /* at a character boundary, all valid so far */
#define UTF8_REJECT 1u   /* invalid: stays rejected */

/* Continues validation from `state` over n bytes; returns the new state.
 * A complete message is valid iff the final state is UTF8_ACCEPT; any other
 * non-REJECT state means "in the middle of a character". */
uint32_t utf8_validate(uint32_t state, const uint8_t *p, size_t n);

#endif
