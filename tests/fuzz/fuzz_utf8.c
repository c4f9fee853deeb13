/* fuzz_utf8.c — differential fuzz target for utf8_validate: the table-driven
 * incremental validator against a plain reference decoder written here from
 * RFC 3629 (decode each sequence to a code point, then rule out overlongs,
 * surrogates and values above U+10FFFF).
 *
 * Input: two bytes choosing a split point, then the text. The text is
 * validated whole, and in two calls split at that point (each half in its
 * own exactly sized heap buffer); the state after the first half and the
 * final state must match the reference's verdict on the same prefix and on
 * the whole text, and both ways must end in the same state. */
#include <stdint.h>

#include "fuzz.h"
#include "ws/utf8.h"

enum ref_verdict {
    REF_VALID,        /* complete characters only */
    REF_PARTIAL,      /* valid so far, ends inside a character that can still be completed */
    REF_INVALID
};

/* Lowest and highest code point encoded with len bytes. */
static const uint32_t ref_min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
static const uint32_t ref_max[5] = { 0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF };

/* Whether some code point in [lo, hi] is a valid scalar value of a len-byte
 * sequence (not overlong, not a surrogate, at most U+10FFFF). */
static int ref_possible(uint32_t lo, uint32_t hi, int len)
{
    if (lo < ref_min[len])
        lo = ref_min[len];
    if (hi > ref_max[len])
        hi = ref_max[len];
    if (lo > hi)
        return 0;
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

static enum ref_verdict ref_check(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        int len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3
                : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0)
            return REF_INVALID;          /* a continuation byte, or F8..FF */
        uint32_t cp = len == 1 ? b : b & (0x7Fu >> len);
        int have = 1;
        /* Each byte narrows the range of code points the sequence can still
         * become; it is invalid as soon as that range holds no valid one. */
        for (;;) {
            int left = len - have;
            uint32_t lo = cp << (6 * left), hi = lo | ((1u << (6 * left)) - 1);
            if (!ref_possible(lo, hi, len))
                return REF_INVALID;
            if (left == 0)
                break;
            if (i + (size_t)have >= n)
                return REF_PARTIAL;
            uint8_t c = p[i + (size_t)have];
            if ((c & 0xC0) != 0x80)
                return REF_INVALID;
            cp = cp << 6 | (c & 0x3Fu);
            have++;
        }
        i += (size_t)len;
    }
    return REF_VALID;
}

static enum ref_verdict state_verdict(uint32_t state)
{
    return state == UTF8_ACCEPT ? REF_VALID : state == UTF8_REJECT ? REF_INVALID : REF_PARTIAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    size_t split = fuzz_u16(&in);
    const uint8_t *s = in.p;
    size_t n = in.n;
    if (split > n)
        split = n ? split % (n + 1) : 0;

    uint8_t *whole = fuzz_memdup(s, n);
    uint8_t *a = fuzz_memdup(s, split);
    uint8_t *b = fuzz_memdup(s + split, n - split);

    uint32_t st_whole = utf8_validate(UTF8_ACCEPT, whole, n);
    uint32_t st_a = utf8_validate(UTF8_ACCEPT, a, split);
    uint32_t st_ab = utf8_validate(st_a, b, n - split);

    FUZZ_CHECK(state_verdict(st_whole) == ref_check(s, n));
    FUZZ_CHECK(state_verdict(st_a) == ref_check(s, split));
    FUZZ_CHECK(st_ab == st_whole);
    /* REJECT is final. */
    FUZZ_CHECK(utf8_validate(UTF8_REJECT, b, n - split) == UTF8_REJECT);

    free(whole);
    free(a);
    free(b);
    return 0;
}
