/* report.h — the outputs of a run: JSON (report_json.c), a self-contained
 * HTML page with inline SVG charts (report_html.c) and the short summary on
 * stdout. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include "result.h"

int report_json(const result *r, const char *path);
int report_html(const result *r, const char *path);
void report_summary(const result *r, FILE *f);

/* The histogram the headline latency_ms describes (broadcast, else p2p,
 * else login) and its name. */
const hist *report_main_hist(const result *r, const char **name);

/* Names of libuv/errno codes for failure tables. */
const char *report_err_name(int code);

/* A second pass (--deflate, --second-*): one figure of both passes
 * (report_passes.c). */
#define RP_MAX_ROWS 24
typedef struct rp_row {
    const char *name, *fmt;       /* fmt: for one double */
    double first, second;         /* NaN: not measured */
} rp_row;
/* The rows comparing r with r->second; 0 without a second pass. */
int report_pass_rows(const result *r, rp_row *rows);
/* The heading of the second ÷ first column ("on/off" with --deflate). */
const char *report_pass_quotient(const result *r);

#endif
