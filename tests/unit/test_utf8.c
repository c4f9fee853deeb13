/* test_utf8.c — unit tests of the incremental UTF-8 validator (ws/utf8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ws/utf8.h"

typedef struct sample {
    const char *name;
    const char *bytes;
    size_t len;
} sample;

#define S(name, lit) { name, lit, sizeof(lit) - 1 }

static const sample valid_samples[] = {
    S("empty", ""),
    S("ascii", "Hello, world! 0123456789 ~\x7f\x01"),
    S("kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
    S("U+0080", "\xc2\x80"),
    S("U+07FF", "\xdf\xbf"),
    S("U+0800", "\xe0\xa0\x80"),
    S("U+D7FF", "\xed\x9f\xbf"),
    S("U+E000", "\xee\x80\x80"),
    S("U+FFFD", "\xef\xbf\xbd"),
    S("U+FFFF", "\xef\xbf\xbf"),
    S("U+10000", "\xf0\x90\x80\x80"),
    S("U+10FFFF", "\xf4\x8f\xbf\xbf"),
    S("emoji mix", "a\xf0\x9f\x98\x80z\xe2\x82\xac\xc3\xa9"),
    S("NUL", "a\0b"),
    S("long ascii then 4-byte", "0123456789abcdef0123456789abcdef\xf0\x9f\x8e\x89"),
};

static const sample invalid_samples[] = {
    S("overlong slash C0 AF", "\xc0\xaf"),
    S("overlong C1 BF", "\xc1\xbf"),
    S("overlong 3-byte E0 80 AF", "\xe0\x80\xaf"),
    S("overlong 3-byte E0 9F BF", "\xe0\x9f\xbf"),
    S("overlong 4-byte F0 80 80 AF", "\xf0\x80\x80\xaf"),
    S("overlong 4-byte F0 8F BF BF", "\xf0\x8f\xbf\xbf"),
    S("surrogate ED A0 80", "\xed\xa0\x80"),
    S("surrogate ED BF BF", "\xed\xbf\xbf"),
    S("surrogate pair", "\xed\xa0\x80\xed\xb0\x80"),
    S("U+110000", "\xf4\x90\x80\x80"),
    S("F5 lead", "\xf5\x80\x80\x80"),
    S("F8 5-byte", "\xf8\x88\x80\x80\x80"),
    S("FC 6-byte", "\xfc\x84\x80\x80\x80\x80"),
    S("FE", "\xfe"),
    S("FF", "\xff"),
    S("lone continuation 80", "a\x80"),
    S("lone continuation BF", "\xbf"),
    S("lead then ascii", "\xc2\x41"),
    S("3-byte cut by ascii", "\xe1\x80\x41"),
    S("4-byte cut by lead", "\xf0\x9f\x98\xc3\xa9"),
    S("two leads", "\xc2\xc2\x80"),
    S("kosme then bad", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited"),
};

static const sample incomplete_samples[] = {
    S("2-byte cut", "\xc2"),
    S("3-byte cut", "\xe2\x82"),
    S("4-byte cut", "\xf0\x9f\x98"),
    S("text then cut", "hello \xce"),
};

static uint32_t v(uint32_t st, const char *p, size_t n)
{
    return utf8_validate(st, (const uint8_t *)p, n);
}

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_samples) / sizeof(valid_samples[0]); i++) {
        const sample *s = &valid_samples[i];
        if (v(UTF8_ACCEPT, s->bytes, s->len) != UTF8_ACCEPT) fail_msg("valid rejected: %s", s->name);
    }
}

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid_samples) / sizeof(invalid_samples[0]); i++) {
        const sample *s = &invalid_samples[i];
        if (v(UTF8_ACCEPT, s->bytes, s->len) != UTF8_REJECT) fail_msg("invalid accepted: %s", s->name);
    }
}

static void test_incomplete(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(incomplete_samples) / sizeof(incomplete_samples[0]); i++) {
        const sample *s = &incomplete_samples[i];
        uint32_t st = v(UTF8_ACCEPT, s->bytes, s->len);
        if (st == UTF8_ACCEPT || st == UTF8_REJECT) fail_msg("not pending: %s", s->name);
    }
}

/* Validating in two pieces, and byte by byte, gives the whole-buffer answer. */
static void check_splits(const sample *s, uint32_t want)
{
    for (size_t cut = 0; cut <= s->len; cut++) {
        uint32_t st = v(UTF8_ACCEPT, s->bytes, cut);
        st = v(st, s->bytes + cut, s->len - cut);
        if (st != want) fail_msg("%s split at %zu: got %u", s->name, cut, st);
    }
    uint32_t st = UTF8_ACCEPT;
    for (size_t i = 0; i < s->len; i++) st = v(st, s->bytes + i, 1);
    if (st != want) fail_msg("%s byte by byte: got %u", s->name, st);
}

static void test_split_everywhere(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_samples) / sizeof(valid_samples[0]); i++)
        check_splits(&valid_samples[i], UTF8_ACCEPT);
    for (size_t i = 0; i < sizeof(invalid_samples) / sizeof(invalid_samples[0]); i++)
        check_splits(&invalid_samples[i], UTF8_REJECT);
}

static void test_reject_is_sticky(void **state)
{
    (void)state;
    assert_int_equal(v(UTF8_REJECT, "abc", 3), UTF8_REJECT);
    assert_int_equal(v(UTF8_REJECT, "", 0), UTF8_REJECT);
    assert_int_equal(v(UTF8_ACCEPT, "", 0), UTF8_ACCEPT);
    uint32_t st = v(UTF8_ACCEPT, "\xe2", 1);
    assert_int_equal(v(st, "", 0), st);
}

/* ASCII fast path: a bad byte at every offset and alignment of a long run. */
static void test_fast_path_positions(void **state)
{
    (void)state;
    char buf[80];
    for (size_t align = 0; align < 8; align++) {
        for (size_t bad = 0; bad + align < sizeof(buf); bad++) {
            memset(buf, 'a', sizeof(buf));
            buf[align + bad] = (char)0x80;
            uint32_t st = v(UTF8_ACCEPT, buf + align, sizeof(buf) - align);
            assert_int_equal(st, UTF8_REJECT);
            buf[align + bad] = 'a';
            assert_int_equal(v(UTF8_ACCEPT, buf + align, sizeof(buf) - align), UTF8_ACCEPT);
        }
    }
    /* A multi-byte character after a long ASCII run, split inside it. */
    memset(buf, 'x', 40);
    memcpy(buf + 40, "\xf4\x8f\xbf\xbf", 4);
    for (size_t cut = 38; cut <= 44; cut++) {
        uint32_t st = v(UTF8_ACCEPT, buf, cut);
        assert_int_equal(v(st, buf + cut, 44 - cut), UTF8_ACCEPT);
    }
}

/* Independent, obvious reference: decode and check the code point. */
static int ref_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t len;
        uint32_t cp;
        if (b < 0x80) { i++; continue; }
        if ((b & 0xE0) == 0xC0) { len = 2; cp = b & 0x1F; }
        else if ((b & 0xF0) == 0xE0) { len = 3; cp = b & 0x0F; }
        else if ((b & 0xF8) == 0xF0) { len = 4; cp = b & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

static void check_ref(const uint8_t *p, size_t n)
{
    int want = ref_valid(p, n);
    int got = utf8_validate(UTF8_ACCEPT, p, n) == UTF8_ACCEPT;
    if (want != got)
        fail_msg("mismatch on %zu bytes %02x %02x %02x %02x: want %d", n, p[0],
                 n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0, want);
}

/* Every 1-, 2- and 3-byte sequence; 4-byte ones over interesting bytes. */
static void test_exhaustive_vs_reference(void **state)
{
    (void)state;
    uint8_t b[4];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        check_ref(b, 1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            check_ref(b, 2);
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (uint8_t)z;
                check_ref(b, 3);
            }
        }
    }
    static const uint8_t pick[] = { 0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xFF };
    for (unsigned x = 0xF0; x < 0x100; x++)
        for (unsigned y = 0; y < 256; y++)
            for (size_t z = 0; z < sizeof(pick); z++)
                for (size_t w = 0; w < sizeof(pick); w++) {
                    b[0] = (uint8_t)x; b[1] = (uint8_t)y; b[2] = pick[z]; b[3] = pick[w];
                    check_ref(b, 4);
                }
}

/* Random mixes of valid characters and noise, checked whole and split. */
static void test_random_vs_reference(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "a", "~", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf",
        "\xf4\x8f\xbf\xbf", "\xc0", "\x80", "\xed\xa0", "\xf4\x90", "\xff", "\xe0\x9f",
    };
    uint8_t buf[64];
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        while (n < 48) {
            seed = seed * 1103515245u + 12345u;
            const char *pc = pieces[(seed >> 16) % (iter % 3 ? 7 : 13)];
            size_t pl = strlen(pc);
            memcpy(buf + n, pc, pl);
            n += pl;
        }
        check_ref(buf, n);
        size_t cut = (seed >> 8) % (n + 1);
        uint32_t st = utf8_validate(UTF8_ACCEPT, buf, cut);
        st = utf8_validate(st, buf + cut, n - cut);
        assert_int_equal(st == UTF8_ACCEPT, ref_valid(buf, n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_reject_is_sticky),
        cmocka_unit_test(test_fast_path_positions),
        cmocka_unit_test(test_exhaustive_vs_reference),
        cmocka_unit_test(test_random_vs_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
