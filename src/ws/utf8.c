/* utf8.c — owns incremental UTF-8 validation (RFC 3629).
 *
 * The state is UTF8_ACCEPT, UTF8_REJECT, or one of the "pending" states
 * below, each naming the range the next continuation byte must fall into and
 * the state that follows it. The narrowed ranges after E0, ED, F0 and F4 are
 * what rule out overlong forms, surrogates and code points above U+10FFFF. */
#include "ws/utf8.h"

#include <string.h>

enum {
    PEND_1 = 2,      /* one more continuation byte, 80..BF */
    PEND_2,          /* two more, 80..BF */
    PEND_3,          /* three more, 80..BF */
    PEND_E0,         /* after E0: A0..BF (no overlong 3-byte forms) */
    PEND_ED,         /* after ED: 80..9F (no surrogates) */
    PEND_F0,         /* after F0: 90..BF (no overlong 4-byte forms) */
    PEND_F4,         /* after F4: 80..8F (nothing above U+10FFFF) */
    STATE_COUNT
};

typedef struct utf8_step {
    uint8_t lo, hi;  /* accepted range of the next byte */
    uint8_t next;    /* state after it */
} utf8_step;

static const utf8_step utf8_steps[STATE_COUNT] = {
    [PEND_1]  = { 0x80, 0xBF, UTF8_ACCEPT },
    [PEND_2]  = { 0x80, 0xBF, PEND_1 },
    [PEND_3]  = { 0x80, 0xBF, PEND_2 },
    [PEND_E0] = { 0xA0, 0xBF, PEND_1 },
    [PEND_ED] = { 0x80, 0x9F, PEND_1 },
    [PEND_F0] = { 0x90, 0xBF, PEND_2 },
    [PEND_F4] = { 0x80, 0x8F, PEND_2 },
};

/* State after a byte seen at a character boundary. */
static uint32_t utf8_lead(uint8_t b)
{
    if (b < 0x80) return UTF8_ACCEPT;
    if (b < 0xC2) return UTF8_REJECT;  /* stray continuation, overlong C0/C1 */
    if (b < 0xE0) return PEND_1;
    if (b == 0xE0) return PEND_E0;
    if (b == 0xED) return PEND_ED;
    if (b < 0xF0) return PEND_2;
    if (b == 0xF0) return PEND_F0;
    if (b < 0xF4) return PEND_3;
    if (b == 0xF4) return PEND_F4;
    return UTF8_REJECT;                /* F5..FF */
}

/* Number of leading bytes of p[0..n) that are plain ASCII, 8 at a time. */
static size_t utf8_ascii_run(const uint8_t *p, size_t n)
{
    const uint64_t high = 0x8080808080808080ull;
    size_t i = 0;
    uint64_t w;

    while (i + 8 <= n) {
        memcpy(&w, p + i, 8);
        if (w & high) break;
        i += 8;
    }
    while (i < n && p[i] < 0x80) i++;
    return i;
}

uint32_t utf8_validate(uint32_t state, const uint8_t *p, size_t n)
{
    size_t i = 0;

    if (state == UTF8_REJECT || state >= STATE_COUNT) return UTF8_REJECT;
    while (i < n) {
        if (state != UTF8_ACCEPT) {
            const utf8_step *s = &utf8_steps[state];
            uint8_t b = p[i++];
            if (b < s->lo || b > s->hi) return UTF8_REJECT;
            state = s->next;
        } else if (p[i] < 0x80) {
            i += utf8_ascii_run(p + i, n - i);
        } else {
            state = utf8_lead(p[i++]);
            if (state == UTF8_REJECT) return UTF8_REJECT;
        }
    }
    return state;
}
