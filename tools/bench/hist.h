/* hist.h — latency histogram: log-linear buckets (64 per power of two, so a
 * quantile is within ~1.6 %), exact count/min/max/mean/stddev. Fixed size,
 * no pointers: workers send it through a pipe as plain bytes, the parent
 * merges. Values are nanoseconds. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 47                         /* values up to 2^48 ns */
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 2) * HIST_SUB)

typedef struct hist {
    uint64_t n;
    uint64_t min, max;
    double sum, sumsq;
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_add(hist *h, uint64_t v);
void hist_merge(hist *dst, const hist *src);
/* The value at quantile q (0..1), a bucket midpoint clamped to [min, max];
 * 0 when empty. */
uint64_t hist_quantile(const hist *h, double q);
double hist_mean(const hist *h);
double hist_stddev(const hist *h);
/* Bucket i covers [*lo, *hi). */
void hist_bounds(unsigned i, uint64_t *lo, uint64_t *hi);

#endif
