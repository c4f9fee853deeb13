/* clock.h — the one clock of the tool: CLOCK_MONOTONIC in nanoseconds.
 * Parent and workers run on one machine, so their readings compare. */
#ifndef BENCH_CLOCK_H
#define BENCH_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double clock_ms(uint64_t ns) { return (double)ns / 1e6; }

#endif
