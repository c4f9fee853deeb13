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

/* --deflate: one figure of both passes (report_deflate.c). */
#define RD_MAX_ROWS 24
typedef struct rd_row {
    const char *name, *fmt;       /* fmt: for one double */
    double off, on;               /* NaN: not measured */
} rd_row;
/* The rows comparing r with r->deflate_on; 0 without --deflate. */
int report_deflate_rows(const result *r, rd_row *rows);

#endif
