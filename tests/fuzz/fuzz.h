/* fuzz.h — shared by the fuzz targets (tests/fuzz/fuzz_*.c) and the replay
 * driver: the libFuzzer entry point, a check that survives NDEBUG, and a
 * cursor that carves bytes, integers and lines off the front of an input.
 *
 * Every target compiles two ways: with clang -fsanitize=fuzzer as a libFuzzer
 * binary, and with the normal compiler plus replay_main.c as a plain program
 * that replays the seed corpus and the crash regressions (ctest fuzz.*). */
#ifndef IMGATE_FUZZ_H
#define IMGATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold: aborts (a crash for libFuzzer) when it does
 * not, also in NDEBUG builds. */
#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                     \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* The unread rest of an input. Reads past the end yield zeros / empty. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* Takes the next line (without its '\n'; the rest when there is none). */
static inline const uint8_t *fuzz_line(fuzz_in *in, size_t *len)
{
    const uint8_t *s = in->p;
    const uint8_t *nl = in->n ? memchr(in->p, '\n', in->n) : NULL;
    size_t take = nl ? (size_t)(nl - s) + 1 : in->n;
    *len = nl ? take - 1 : take;
    in->p += take;
    in->n -= take;
    return s;
}

/* A malloc'd, exactly sized NUL-terminated copy of s[0..n) (so ASan sees a
 * read past the terminator). Aborts when out of memory. */
static inline char *fuzz_strdup(const uint8_t *s, size_t n)
{
    char *out = malloc(n + 1);
    FUZZ_CHECK(out != NULL);
    if (n)
        memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

/* A malloc'd, exactly sized copy of s[0..n) (n may be 0). */
static inline uint8_t *fuzz_memdup(const uint8_t *s, size_t n)
{
    uint8_t *out = malloc(n ? n : 1);
    FUZZ_CHECK(out != NULL);
    if (n)
        memcpy(out, s, n);
    return out;
}

#endif
