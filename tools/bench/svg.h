/* svg.h — inline SVG charts for the HTML report: line charts over a shared
 * x axis and bar charts, with "nice" axis ticks, a legend and an optional
 * reference line. Output is plain text into a FILE; no script, no font
 * download. */
#ifndef BENCH_SVG_H
#define BENCH_SVG_H

#include <stdio.h>

typedef struct svg_series {
    const char *name;
    const char *color;
    const double *x, *y;      /* NaN y values are skipped */
    int n;
} svg_series;

typedef struct svg_chart {
    const char *title, *xlabel, *ylabel;
    double ref;               /* a dashed horizontal line at this y (NaN: none) */
    const char *ref_label;
} svg_chart;

void svg_lines(FILE *f, const svg_chart *c, const svg_series *s, int ns);

/* Bars: bar i spans [x[i], x[i] + width) with height y[i]. */
void svg_bars(FILE *f, const svg_chart *c, const double *x, const double *y, int n, double width,
              const char *color);

/* Writes s with &, <, > and " escaped. */
void svg_text(FILE *f, const char *s);

#endif
