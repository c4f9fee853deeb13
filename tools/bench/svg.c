/* svg.c — small inline SVG chart writer. */
#include "svg.h"

#include <math.h>
#include <string.h>

#define SVG_W 760
#define SVG_H 280
#define SVG_L 70
#define SVG_R 20
#define SVG_T 48
#define SVG_B 44

typedef struct svg_axes { double x0, x1, y0, y1; } svg_axes;

void svg_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static double svg_nice(double range)
{
    if (!(range > 0))
        return 1;
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static double svg_px(const svg_axes *a, double x)
{
    return SVG_L + (x - a->x0) / (a->x1 - a->x0) * (SVG_W - SVG_L - SVG_R);
}

static double svg_py(const svg_axes *a, double y)
{
    return SVG_H - SVG_B - (y - a->y0) / (a->y1 - a->y0) * (SVG_H - SVG_T - SVG_B);
}

static void svg_label(FILE *f, double v)
{
    double a = fabs(v);
    if (a >= 1e6)
        fprintf(f, "%.3gM", v / 1e6);
    else if (a >= 1e4)
        fprintf(f, "%.3gk", v / 1e3);
    else
        fprintf(f, "%.4g", v);
}

static void svg_frame(FILE *f, const svg_chart *c, svg_axes *a)
{
    if (!(a->x1 > a->x0))
        a->x1 = a->x0 + 1;
    double ys = svg_nice(a->y1 - a->y0);
    a->y1 = ceil(a->y1 / ys) * ys;
    a->y0 = floor(a->y0 / ys) * ys;
    if (!(a->y1 > a->y0))
        a->y1 = a->y0 + 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
            "height=\"%d\" role=\"img\"><rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>",
            SVG_W, SVG_H, SVG_W, SVG_H);
    fprintf(f, "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">", SVG_L);
    svg_text(f, c->title);
    fputs("</text>", f);
    ys = svg_nice(a->y1 - a->y0);
    double y = a->y0;
    for (int i = 0; i < 40 && y <= a->y1 + ys / 2; i++, y += ys) {
        double py = svg_py(a, y);
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">",
                SVG_L, SVG_W - SVG_R, py, py, SVG_L - 6, py + 4);
        svg_label(f, y);
        fputs("</text>", f);
    }
    double xs = svg_nice(a->x1 - a->x0);
    double x = ceil(a->x0 / xs) * xs;
    for (int i = 0; i < 40 && x <= a->x1 + xs / 1000; i++, x += xs) {
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">",
                svg_px(a, x), SVG_H - SVG_B + 16);
        svg_label(f, x);
        fputs("</text>", f);
    }
    fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#555\"/>", SVG_L,
            SVG_W - SVG_R, SVG_H - SVG_B, SVG_H - SVG_B);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">",
            (SVG_L + SVG_W - SVG_R) / 2, SVG_H - 8);
    svg_text(f, c->xlabel);
    fprintf(f, "</text><text x=\"14\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 14 %d)\">", (SVG_T + SVG_H - SVG_B) / 2,
            (SVG_T + SVG_H - SVG_B) / 2);
    svg_text(f, c->ylabel);
    fputs("</text>", f);
}

static void svg_ref(FILE *f, const svg_chart *c, const svg_axes *a)
{
    if (isnan(c->ref) || c->ref < a->y0 || c->ref > a->y1)
        return;
    double py = svg_py(a, c->ref);
    fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
            "stroke-dasharray=\"6 4\"/><text x=\"%d\" y=\"%.1f\" font-size=\"11\" "
            "text-anchor=\"end\" fill=\"#d62728\">", SVG_L, SVG_W - SVG_R, py, py,
            SVG_W - SVG_R - 4, py - 4);
    svg_text(f, c->ref_label);
    fputs("</text>", f);
}

static void svg_bounds(const svg_series *s, int ns, double ref, svg_axes *a)
{
    a->x0 = INFINITY;
    a->x1 = -INFINITY;
    a->y0 = 0;
    a->y1 = isnan(ref) ? 0 : ref;
    for (int k = 0; k < ns; k++) {
        for (int i = 0; i < s[k].n; i++) {
            if (isnan(s[k].y[i]))
                continue;
            a->x0 = fmin(a->x0, s[k].x[i]);
            a->x1 = fmax(a->x1, s[k].x[i]);
            a->y1 = fmax(a->y1, s[k].y[i]);
            a->y0 = fmin(a->y0, s[k].y[i]);
        }
    }
    if (!isfinite(a->x0)) {
        a->x0 = 0;
        a->x1 = 1;
    }
}

void svg_lines(FILE *f, const svg_chart *c, const svg_series *s, int ns)
{
    svg_axes a;
    svg_bounds(s, ns, c->ref, &a);
    svg_frame(f, c, &a);
    int lx = SVG_L;                             /* the legend: one row under the title */
    for (int k = 0; k < ns; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"",
                s[k].color);
        for (int i = 0; i < s[k].n; i++)
            if (!isnan(s[k].y[i]))
                fprintf(f, "%.1f,%.1f ", svg_px(&a, s[k].x[i]), svg_py(&a, s[k].y[i]));
        fprintf(f, "\"/><rect x=\"%d\" y=\"28\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"37\" font-size=\"11\">", lx, s[k].color, lx + 14);
        svg_text(f, s[k].name);
        fputs("</text>", f);
        lx += 14 + (int)(strlen(s[k].name ? s[k].name : "") * 6.2) + 16;
    }
    svg_ref(f, c, &a);
    fputs("</svg>\n", f);
}

void svg_bars(FILE *f, const svg_chart *c, const double *x, const double *y, int n, double width,
              const char *color)
{
    svg_series s = { "", color, x, y, n };
    svg_axes a;
    svg_bounds(&s, 1, c->ref, &a);
    a.x1 += width;
    svg_frame(f, c, &a);
    for (int i = 0; i < n; i++) {
        if (isnan(y[i]) || y[i] <= 0)
            continue;
        double px0 = svg_px(&a, x[i]), px1 = svg_px(&a, x[i] + width), py = svg_py(&a, y[i]);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
                px0, py, fmax(px1 - px0 - 1, 1), SVG_H - SVG_B - py, color);
    }
    svg_ref(f, c, &a);
    fputs("</svg>\n", f);
}
