/*
 * report.c - training reports written next to a model: history as CSV and as an SVG chart,
 * a PNG grid of labelled test digits, and ASCII art of one digit.
 *
 * Every writer builds its whole output in memory and hands it to nn_atomic_write, so a report
 * on disk is always complete. The SVG is plain SVG 1.1 (no script, no external font or style
 * sheet) so it renders the same in a browser, an image viewer or a code-review tool.
 * The PNG goes through stb_image_write (nothings/stb), compiled here only, with its functions
 * static so its symbols never clash with another copy elsewhere in a program.
 */
#include "nn/bin/report.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* With STB_IMAGE_WRITE_STATIC the writers we do not call (BMP, TGA, HDR, JPEG) are unused
 * static functions; that is the only warning stb 1.16 gives under our flags (gcc 12 and clang,
 * -O1 to -O3), so it alone is silenced, for the include only. We never touch stb's tuning
 * globals (stbi_write_png_compression_level, ...), so they stay constant in practice. */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

/* Writes the message into err (when given) and returns status, as libnn's functions do. */
static int report_err(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int report_err(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ---------------------------------------------------------------------------------------- */
/* Growable output buffer                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Appends never fail visibly: the first allocation failure sets `failed` and later appends
 * are ignored, so writers check once at the end. */
struct sbuf {
    char *data;
    size_t len, cap;
    int failed;
};

static int sb_reserve(struct sbuf *b, size_t extra)
{
    size_t cap;
    char *p;
    if (b->failed)
        return -1;
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static void sb_append(struct sbuf *b, const void *p, size_t n)
{
    if (n == 0 || sb_reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void sb_puts(struct sbuf *b, const char *s) { sb_append(b, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (sb_reserve(b, (size_t)n + 1) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Hands the finished buffer to nn_atomic_write and frees it. */
static int sb_write(struct sbuf *b, const char *path, char *err, size_t errlen)
{
    int status;
    if (b->failed)
        status = report_err(err, errlen, NN_ENOMEM, "%s: out of memory building report", path);
    else
        status = nn_atomic_write(path, b->data ? b->data : "", b->len, err, errlen);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return status;
}

static int check_history(const char *path, const struct nn_history_point *h, int n, char *err,
                         size_t errlen)
{
    if (!path || !*path)
        return report_err(err, errlen, NN_EINVAL, "report: no output path");
    if (n < 0 || (n > 0 && !h))
        return report_err(err, errlen, NN_EINVAL, "%s: invalid history (%d points)", path, n);
    return NN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* History as CSV                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* %.9g round-trips every float; non-finite values (not evaluated) become empty fields. */
static void csv_value(struct sbuf *b, double v, int last)
{
    if (isfinite(v))
        sb_printf(b, "%.9g", v);
    sb_puts(b, last ? "\n" : ",");
}

int nn_report_history_csv(const char *path, const struct nn_history_point *h, int n, char *err,
                          size_t errlen)
{
    struct sbuf b = {0};
    int status = check_history(path, h, n, err, errlen);
    if (status != NN_OK)
        return status;

    sb_puts(&b, "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,seconds\n");
    for (int i = 0; i < n; i++) {
        sb_printf(&b, "%d,%lld,", h[i].epoch, (long long)h[i].step);
        csv_value(&b, h[i].lr, 0);
        csv_value(&b, h[i].train_loss, 0);
        csv_value(&b, h[i].train_acc, 0);
        csv_value(&b, h[i].test_loss, 0);
        csv_value(&b, h[i].test_acc, 0);
        csv_value(&b, h[i].seconds, 1);
    }
    return sb_write(&b, path, err, errlen);
}

/* ---------------------------------------------------------------------------------------- */
/* History as SVG                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* Canvas in SVG user units; two panels side by side, each with a plot area inset for the
 * tick labels and axis titles. */
enum {
    SVG_W = 960,
    SVG_H = 480,
    PANEL_W = SVG_W / 2,
    PLOT_LEFT = 76,  /* from the panel's left edge */
    PLOT_RIGHT = 24, /* from the panel's right edge */
    PLOT_TOP = 96,
    PLOT_BOTTOM = 392,
    MARKERS_MAX = 40, /* draw a dot on every point up to this many points */
};

#define COLOR_TRAIN "#1f63b4"
#define COLOR_TEST "#d95f02"

/* One axis: [lo, hi] with ticks every `step` from lo; labels with `decimals` digits. */
struct axis {
    double lo, hi, step;
    int decimals;
};

/* 1, 2 or 5 times a power of ten, so that `range` spans about `target` steps. */
static double nice_step(double range, int target)
{
    double raw = range / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double m = f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0;
    return m * mag;
}

/* Axis covering [lo, hi] with nice ticks; bounds are rounded out to whole steps. A degenerate
 * range (one value, or none) is widened so the data sits in the middle. */
static void axis_fit(struct axis *a, double lo, double hi, int target, double min_step)
{
    if (!(lo <= hi)) { /* no finite data */
        lo = 0.0;
        hi = 1.0;
    }
    if (hi - lo < 1e-12 * fmax(1.0, fabs(hi))) {
        double d = fabs(hi) > 0.0 ? fabs(hi) * 0.1 : 1.0;
        lo -= d;
        hi += d;
    }
    a->step = fmax(nice_step(hi - lo, target), min_step);
    a->lo = floor(lo / a->step + 1e-9) * a->step;
    a->hi = ceil(hi / a->step - 1e-9) * a->step;
    if (a->hi <= a->lo)
        a->hi = a->lo + a->step;
    a->decimals = a->step >= 1.0 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
}

static double axis_map(const struct axis *a, double v, double p0, double p1)
{
    return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

/* Tick count, guarded so that a pathological range cannot loop for long. */
static int axis_ticks(const struct axis *a)
{
    double n = floor((a->hi - a->lo) / a->step + 1e-6) + 1.0;
    return n > 50.0 ? 50 : (int)n;
}

static void tick_label(char *buf, size_t len, const struct axis *a, int k)
{
    double v = a->lo + k * a->step;
    if (fabs(v) < a->step * 1e-6)
        v = 0.0; /* no "-0" */
    snprintf(buf, len, "%.*f", a->decimals, v);
}

/*
 * Copies s into b as XML character data: the five special characters become entities,
 * control characters that XML 1.0 forbids and bytes that are not well-formed UTF-8 become
 * '?', so any title yields a well-formed document.
 */
static void sb_xml_text(struct sbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = 0; /* continuation bytes */
        if (c == '&') {
            sb_puts(b, "&amp;");
        } else if (c == '<') {
            sb_puts(b, "&lt;");
        } else if (c == '>') {
            sb_puts(b, "&gt;");
        } else if (c == '"') {
            sb_puts(b, "&quot;");
        } else if (c == '\'') {
            sb_puts(b, "&apos;");
        } else if (c < 0x20) {
            sb_puts(b, c == '\t' || c == '\n' || c == '\r' ? " " : "?");
        } else if (c < 0x80) {
            sb_append(b, p, 1);
        } else {
            /* RFC 3629: reject overlongs, surrogates and code points above U+10FFFF. */
            unsigned cp = 0, min = 0;
            if (c >= 0xc2 && c <= 0xdf) {
                n = 1, cp = c & 0x1f, min = 0x80;
            } else if (c >= 0xe0 && c <= 0xef) {
                n = 2, cp = c & 0x0f, min = 0x800;
            } else if (c >= 0xf0 && c <= 0xf4) {
                n = 3, cp = c & 0x07, min = 0x10000;
            }
            for (int i = 1; i <= n; i++) {
                if ((p[i] & 0xc0) != 0x80) {
                    n = 0;
                    break;
                }
                cp = (cp << 6) | (p[i] & 0x3f);
            }
            if (n == 0 || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
                cp == 0xfffe || cp == 0xffff) {
                sb_puts(b, "?");
                n = 0;
            } else {
                sb_append(b, p, (size_t)n + 1);
            }
        }
        p += 1 + n;
    }
}

/* Which value of a history point a series plots. */
enum series { TRAIN_LOSS, TEST_LOSS, TRAIN_ACC, TEST_ACC };

static double series_value(const struct nn_history_point *p, enum series s)
{
    double v;
    switch (s) {
    case TRAIN_LOSS: v = p->train_loss; break;
    case TEST_LOSS: v = p->test_loss; break;
    case TRAIN_ACC: v = 100.0 * p->train_acc; break;
    default: v = 100.0 * p->test_acc; break;
    }
    return isfinite(v) ? v : NAN;
}

struct panel {
    double x0, x1, y0, y1; /* plot area: x0 left, x1 right, y0 top, y1 bottom */
    struct axis ax, ay;
};

/* Axes, grid, ticks, labels and titles of one panel. */
static void svg_panel_frame(struct sbuf *b, const struct panel *pn, const char *heading,
                            const char *ytitle)
{
    char lab[64];
    int nx = axis_ticks(&pn->ax), ny = axis_ticks(&pn->ay);
    double cx = (pn->x0 + pn->x1) / 2, cy = (pn->y0 + pn->y1) / 2;

    sb_printf(b,
              "<g>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"15\" "
              "font-weight=\"bold\" fill=\"#222\">",
              cx, pn->y0 - 14);
    sb_xml_text(b, heading);
    sb_puts(b, "</text>\n");
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\"/>\n",
              pn->x0, pn->y0, pn->x1 - pn->x0, pn->y1 - pn->y0);

    /* Grid lines and ticks: x ticks below the axis, y ticks left of it. */
    sb_puts(b, "<g stroke=\"#e2e2e2\" stroke-width=\"1\">\n");
    for (int k = 0; k < nx; k++) {
        double x = axis_map(&pn->ax, pn->ax.lo + k * pn->ax.step, pn->x0, pn->x1);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, pn->y0, x,
                  pn->y1);
    }
    for (int k = 0; k < ny; k++) {
        double y = axis_map(&pn->ay, pn->ay.lo + k * pn->ay.step, pn->y1, pn->y0);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", pn->x0, y, pn->x1,
                  y);
    }
    sb_puts(b, "</g>\n<g stroke=\"#333\" stroke-width=\"1\">\n");
    for (int k = 0; k < nx; k++) {
        double x = axis_map(&pn->ax, pn->ax.lo + k * pn->ax.step, pn->x0, pn->x1);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, pn->y1, x,
                  pn->y1 + 5);
    }
    for (int k = 0; k < ny; k++) {
        double y = axis_map(&pn->ay, pn->ay.lo + k * pn->ay.step, pn->y1, pn->y0);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", pn->x0 - 5, y,
                  pn->x0, y);
    }
    sb_printf(b, "<path fill=\"none\" d=\"M%.1f %.1fV%.1fH%.1f\"/>\n", pn->x0, pn->y0, pn->y1,
              pn->x1);
    sb_puts(b, "</g>\n");

    /* Tick labels. */
    sb_puts(b, "<g font-size=\"12\" fill=\"#333\">\n");
    for (int k = 0; k < nx; k++) {
        double x = axis_map(&pn->ax, pn->ax.lo + k * pn->ax.step, pn->x0, pn->x1);
        tick_label(lab, sizeof lab, &pn->ax, k);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x,
                  pn->y1 + 19, lab);
    }
    for (int k = 0; k < ny; k++) {
        double y = axis_map(&pn->ay, pn->ay.lo + k * pn->ay.step, pn->y1, pn->y0);
        tick_label(lab, sizeof lab, &pn->ay, k);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", pn->x0 - 8,
                  y + 4, lab);
    }
    sb_puts(b, "</g>\n");

    /* Axis titles. */
    sb_printf(b,
              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
              "fill=\"#222\">epoch</text>\n",
              cx, pn->y1 + 40);
    sb_printf(b,
              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
              "fill=\"#222\" transform=\"rotate(-90 %.1f %.1f)\">",
              pn->x0 - 52, cy, pn->x0 - 52, cy);
    sb_xml_text(b, ytitle);
    sb_puts(b, "</text>\n</g>\n");
}

/*
 * One curve through the points where the value is finite: NaN means "not evaluated at this
 * point" (e.g. a test set scored every few epochs), so the evaluated points are joined across
 * it. A single point becomes a larger dot (a line needs two); with few points every point
 * gets a dot.
 */
static void svg_series(struct sbuf *b, const struct panel *pn, const struct nn_history_point *h,
                       int n, enum series s, const char *color, int dashed)
{
    int count = 0, k = 0;
    for (int i = 0; i < n; i++)
        count += !isnan(series_value(&h[i], s));
    if (count == 0)
        return;

    if (count >= 2) {
        sb_printf(b,
                  "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                  "stroke-linejoin=\"round\"%s points=\"",
                  color, dashed ? " stroke-dasharray=\"7 4\"" : "");
        for (int i = 0; i < n; i++) {
            double v = series_value(&h[i], s);
            if (isnan(v))
                continue;
            sb_printf(b, "%s%.2f,%.2f", k++ ? " " : "",
                      axis_map(&pn->ax, h[i].epoch, pn->x0, pn->x1),
                      axis_map(&pn->ay, v, pn->y1, pn->y0));
        }
        sb_puts(b, "\"/>\n");
    }
    if (count > 1 && count > MARKERS_MAX)
        return;
    sb_printf(b, "<g fill=\"%s\" stroke=\"#fff\" stroke-width=\"1\">\n", color);
    for (int i = 0; i < n; i++) {
        double v = series_value(&h[i], s);
        if (isnan(v))
            continue;
        sb_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%s\"/>\n",
                  axis_map(&pn->ax, h[i].epoch, pn->x0, pn->x1),
                  axis_map(&pn->ay, v, pn->y1, pn->y0), count == 1 ? "4" : "3");
    }
    sb_puts(b, "</g>\n");
}

static void series_range(const struct nn_history_point *h, int n, enum series s, double *lo,
                         double *hi)
{
    for (int i = 0; i < n; i++) {
        double v = series_value(&h[i], s);
        if (isnan(v))
            continue;
        *lo = fmin(*lo, v);
        *hi = fmax(*hi, v);
    }
}

static int series_any(const struct nn_history_point *h, int n, enum series s)
{
    for (int i = 0; i < n; i++)
        if (!isnan(series_value(&h[i], s)))
            return 1;
    return 0;
}

/* Legend entry: a short line sample (dashed for test) and its label. */
static void svg_legend_entry(struct sbuf *b, double x, double y, const char *color, int dashed,
                             const char *label)
{
    sb_printf(b,
              "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
              "stroke-width=\"2.5\"%s/>\n",
              x, y, x + 28, y, color, dashed ? " stroke-dasharray=\"7 4\"" : "");
    sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x + 14, y, color);
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" fill=\"#222\">%s</text>\n", x + 34,
              y + 4.5, label);
}

/* "last point: epoch 12, step 5000, 34 s | train loss 0.0123, accuracy 99.12% | test ..."; the
 * test figures are the latest evaluated ones, with their epoch if that is not the last. */
static void svg_summary(struct sbuf *b, const struct nn_history_point *h, int n)
{
    const struct nn_history_point *p = &h[n - 1];
    int t = n - 1;
    while (t >= 0 && !(isfinite(h[t].test_loss) && isfinite(h[t].test_acc)))
        t--;
    sb_printf(b,
              "<text x=\"%d\" y=\"54\" text-anchor=\"middle\" font-size=\"13\" "
              "fill=\"#555\">last point: epoch %d, step %lld, %.0f s",
              SVG_W / 2, p->epoch, (long long)p->step, isfinite(p->seconds) ? p->seconds : 0.0);
    if (isfinite(p->train_loss) && isfinite(p->train_acc))
        sb_printf(b, " | train loss %.4g, accuracy %.2f%%", p->train_loss, 100.0 * p->train_acc);
    if (t >= 0) {
        sb_printf(b, " | test loss %.4g, accuracy %.2f%%", h[t].test_loss, 100.0 * h[t].test_acc);
        if (t != n - 1)
            sb_printf(b, " (epoch %d)", h[t].epoch);
    }
    sb_puts(b, "</text>\n");
}

int nn_report_history_svg(const char *path, const struct nn_history_point *h, int n,
                          const char *title, char *err, size_t errlen)
{
    struct sbuf b = {0};
    struct panel loss, acc;
    double xlo = INFINITY, xhi = -INFINITY, lo, hi, pad;
    int has_test;
    int status = check_history(path, h, n, err, errlen);
    if (status != NN_OK)
        return status;
    if (!title)
        title = "Training history";

    /* x: epochs, whole-number ticks. (Plain comparisons: gcc 12 for aarch64 crashes
     * vectorising fmin/fmax of a converted int here.) */
    for (int i = 0; i < n; i++) {
        double e = h[i].epoch;
        if (e < xlo)
            xlo = e;
        if (e > xhi)
            xhi = e;
    }
    if (n > 0 && xlo == xhi) {
        xlo -= 1;
        xhi += 1;
    }

    loss.x0 = PLOT_LEFT;
    loss.x1 = PANEL_W - PLOT_RIGHT;
    acc.x0 = PANEL_W + PLOT_LEFT;
    acc.x1 = SVG_W - PLOT_RIGHT;
    loss.y0 = acc.y0 = PLOT_TOP;
    loss.y1 = acc.y1 = PLOT_BOTTOM;
    axis_fit(&loss.ax, xlo, xhi, 6, 1.0);
    acc.ax = loss.ax;

    /* Loss from 0: a loss axis that starts elsewhere exaggerates small differences. */
    lo = INFINITY, hi = -INFINITY;
    series_range(h, n, TRAIN_LOSS, &lo, &hi);
    series_range(h, n, TEST_LOSS, &lo, &hi);
    if (lo <= hi) {
        lo = fmin(lo, 0.0);
        hi += 0.03 * (hi - lo);
    }
    axis_fit(&loss.ay, lo, hi, 6, 0.0);

    /* Accuracy zooms in on the data (it usually lives in 90..100%), never past 0 or 100. */
    lo = INFINITY, hi = -INFINITY;
    series_range(h, n, TRAIN_ACC, &lo, &hi);
    series_range(h, n, TEST_ACC, &lo, &hi);
    if (!(lo <= hi)) {
        lo = 0.0;
        hi = 100.0;
    }
    if (hi - lo < 2.0) { /* at least 2 points of accuracy, so noise does not look like news */
        double mid = (lo + hi) / 2;
        lo = mid - 1.0;
        hi = mid + 1.0;
    }
    pad = 0.03 * (hi - lo); /* keep points off the frame */
    axis_fit(&acc.ay, lo - pad, hi + pad, 6, 0.0);
    if (acc.ay.lo < 0.0 && lo >= 0.0)
        acc.ay.lo = 0.0;
    if (acc.ay.hi > 100.0 && hi <= 100.0)
        acc.ay.hi = 100.0;

    has_test = series_any(h, n, TEST_LOSS) || series_any(h, n, TEST_ACC);

    sb_printf(&b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
              "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
              SVG_W, SVG_H, SVG_W, SVG_H);
    sb_puts(&b, "<title>");
    sb_xml_text(&b, title);
    sb_puts(&b, "</title>\n");
    sb_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W,
              SVG_H);
    sb_printf(&b,
              "<text x=\"%d\" y=\"30\" text-anchor=\"middle\" font-size=\"19\" "
              "font-weight=\"bold\" fill=\"#111\">",
              SVG_W / 2);
    sb_xml_text(&b, title);
    sb_puts(&b, "</text>\n");
    if (n > 0)
        svg_summary(&b, h, n);

    svg_panel_frame(&b, &loss, "Loss", "cross-entropy loss");
    svg_panel_frame(&b, &acc, "Accuracy", "accuracy (%)");
    if (n == 0) {
        sb_printf(&b,
                  "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"15\" "
                  "fill=\"#888\">no data</text>\n",
                  SVG_W / 2, (PLOT_TOP + PLOT_BOTTOM) / 2);
    }
    /* Test first so that the train curve, usually the smoother, is drawn on top. */
    svg_series(&b, &loss, h, n, TEST_LOSS, COLOR_TEST, 1);
    svg_series(&b, &loss, h, n, TRAIN_LOSS, COLOR_TRAIN, 0);
    svg_series(&b, &acc, h, n, TEST_ACC, COLOR_TEST, 1);
    svg_series(&b, &acc, h, n, TRAIN_ACC, COLOR_TRAIN, 0);

    /* Legend, centred under both panels. */
    {
        double lw = has_test ? 190 : 80, x = SVG_W / 2.0 - lw / 2, y = SVG_H - 22;
        sb_puts(&b, "<g>\n");
        svg_legend_entry(&b, x, y, COLOR_TRAIN, 0, "train");
        if (has_test)
            svg_legend_entry(&b, x + 110, y, COLOR_TEST, 1, "test");
        sb_puts(&b, "</g>\n");
    }
    sb_puts(&b, "</svg>\n");
    return sb_write(&b, path, err, errlen);
}

/* ---------------------------------------------------------------------------------------- */
/* Digit grid as PNG                                                                        */
/* ---------------------------------------------------------------------------------------- */

/*
 * Layout, in pixels. Each cell is the digit upscaled GRID_SCALE times (dark ink on white) over
 * a caption strip "pred/true", inside a GRID_FRAME-wide frame: grey when the prediction is
 * right, red when it is wrong. Cells sit GRID_GAP apart with a GRID_MARGIN border, at most
 * GRID_COLS to a row. For 28x28 digits a cell is 60x78 and a full row 666 pixels wide.
 */
enum {
    GRID_COLS = 10,
    GRID_SCALE = 2,
    GRID_FRAME = 2,
    GRID_CAPTION = 18,
    GRID_GAP = 6,
    GRID_MARGIN = 6,
    GLYPH_W = 5,
    GLYPH_H = 7,
};

#define GRID_MAX_PIXELS ((size_t)1 << 26) /* 64 Mpixel, 192 MB of RGB */

/* 5x7 bitmap font: one byte per row, bit 4 is the leftmost column. Digits, '/', '?'. */
static const uint8_t glyphs[12][GLYPH_H] = {
    {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}, /* 0 */
    {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}, /* 1 */
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}, /* 2 */
    {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e}, /* 3 */
    {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}, /* 4 */
    {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}, /* 5 */
    {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}, /* 6 */
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}, /* 8 */
    {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}, /* 9 */
    {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}, /* / */
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}, /* ? */
};

struct canvas {
    uint8_t *rgb; /* w*h*3 */
    int w, h;
};

struct rgb {
    uint8_t r, g, b;
};

static const struct rgb PAPER = {255, 255, 255};
static const struct rgb FRAME_OK = {178, 178, 178};
static const struct rgb FRAME_BAD = {220, 20, 20};
static const struct rgb CAPTION_OK = {222, 242, 222};
static const struct rgb CAPTION_BAD = {255, 226, 226};
static const struct rgb TEXT_OK = {20, 70, 20};
static const struct rgb TEXT_BAD = {150, 0, 0};

/* Fills [x, x+w) x [y, y+h) clipped to the clip rectangle and the canvas. */
static void fill_rect(struct canvas *cv, int x, int y, int w, int h, struct rgb c, int cx0, int cy0,
                      int cx1, int cy1)
{
    int xa = x > cx0 ? x : cx0, ya = y > cy0 ? y : cy0;
    int xb = x + w < cx1 ? x + w : cx1, yb = y + h < cy1 ? y + h : cy1;
    if (xa < 0)
        xa = 0;
    if (ya < 0)
        ya = 0;
    if (xb > cv->w)
        xb = cv->w;
    if (yb > cv->h)
        yb = cv->h;
    for (int yy = ya; yy < yb; yy++) {
        uint8_t *p = cv->rgb + ((size_t)yy * cv->w + xa) * 3;
        for (int xx = xa; xx < xb; xx++, p += 3) {
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
    }
}

static int glyph_index(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    return ch == '/' ? 10 : 11;
}

/* Draws text centred in the box (x, y, w, h), at scale 2 when it fits and 1 otherwise, and
 * clipped to the box. */
static void draw_text(struct canvas *cv, const char *s, int x, int y, int w, int h, struct rgb c)
{
    int n = (int)strlen(s), scale = 2, tw, tx, ty;
    tw = n * (GLYPH_W + 1) * scale - scale;
    if (tw > w || GLYPH_H * scale > h) {
        scale = 1;
        tw = n * (GLYPH_W + 1) - 1;
    }
    tx = x + (w - tw) / 2;
    ty = y + (h - GLYPH_H * scale) / 2;
    for (int i = 0; i < n; i++) {
        const uint8_t *g = glyphs[glyph_index(s[i])];
        int gx = tx + i * (GLYPH_W + 1) * scale;
        for (int r = 0; r < GLYPH_H; r++) {
            for (int col = 0; col < GLYPH_W; col++) {
                if (g[r] & (0x10 >> col))
                    fill_rect(cv, gx + col * scale, ty + r * scale, scale, scale, c, x, y, x + w,
                              y + h);
            }
        }
    }
}

static void draw_cell(struct canvas *cv, int x, int y, const uint8_t *img, int rows, int cols,
                      unsigned pred, unsigned truth)
{
    int iw = cols * GRID_SCALE, ih = rows * GRID_SCALE;
    int bw = iw + 2 * GRID_FRAME, bh = ih + GRID_CAPTION + 2 * GRID_FRAME;
    int ok = pred == truth;
    char caption[16];

    fill_rect(cv, x, y, bw, bh, ok ? FRAME_OK : FRAME_BAD, 0, 0, cv->w, cv->h);
    /* Digit: dataset bytes are ink (255 = ink), shown as dark ink on white paper. */
    for (int r = 0; r < ih; r++) {
        uint8_t *p = cv->rgb + ((size_t)(y + GRID_FRAME + r) * cv->w + x + GRID_FRAME) * 3;
        const uint8_t *src = img + (size_t)(r / GRID_SCALE) * cols;
        for (int c = 0; c < iw; c++, p += 3)
            p[0] = p[1] = p[2] = (uint8_t)(255 - src[c / GRID_SCALE]);
    }
    fill_rect(cv, x + GRID_FRAME, y + GRID_FRAME + ih, iw, GRID_CAPTION,
              ok ? CAPTION_OK : CAPTION_BAD, 0, 0, cv->w, cv->h);
    snprintf(caption, sizeof caption, "%u/%u", pred, truth);
    draw_text(cv, caption, x + GRID_FRAME, y + GRID_FRAME + ih, iw, GRID_CAPTION,
              ok ? TEXT_OK : TEXT_BAD);
}

static void png_sink(void *ctx, void *data, int size)
{
    if (size > 0)
        sb_append(ctx, data, (size_t)size);
}

int nn_report_digit_grid_png(const char *path, const struct nn_dataset *ds,
                             const uint8_t *predicted, int count, char *err, size_t errlen)
{
    struct canvas cv = {0};
    struct sbuf b = {0};
    size_t cw, ch, gw, gh, img_size;
    int ncols, nrows;

    if (!path || !*path)
        return report_err(err, errlen, NN_EINVAL, "report: no output path");
    if (!ds || !ds->images || !ds->labels || !predicted)
        return report_err(err, errlen, NN_EINVAL, "%s: no dataset or predictions", path);
    if (count <= 0 || (size_t)count > ds->n)
        return report_err(err, errlen, NN_EINVAL, "%s: %d digits asked for, dataset has %zu", path,
                         count, ds->n);
    if (ds->rows <= 0 || ds->cols <= 0 || ds->rows > NN_IMAGE_MAX_SIDE ||
        ds->cols > NN_IMAGE_MAX_SIDE)
        return report_err(err, errlen, NN_ERANGE, "%s: image size %dx%d outside 1..%d", path,
                         ds->cols, ds->rows, NN_IMAGE_MAX_SIDE);

    /* Sizes in size_t: with sides <= 4096 and count <= INT_MAX nothing below overflows
     * 64 bits before the pixel cap is checked. */
    img_size = (size_t)ds->rows * (size_t)ds->cols;
    ncols = count < GRID_COLS ? count : GRID_COLS;
    nrows = (count + GRID_COLS - 1) / GRID_COLS;
    cw = (size_t)ds->cols * GRID_SCALE + 2 * GRID_FRAME;
    ch = (size_t)ds->rows * GRID_SCALE + GRID_CAPTION + 2 * GRID_FRAME;
    gw = 2 * GRID_MARGIN + (size_t)ncols * cw + (size_t)(ncols - 1) * GRID_GAP;
    gh = 2 * GRID_MARGIN + (size_t)nrows * ch + (size_t)(nrows - 1) * GRID_GAP;
    if (gw > INT_MAX / 3 || gh > INT_MAX || gw * gh > GRID_MAX_PIXELS)
        return report_err(err, errlen, NN_ERANGE,
                         "%s: a grid of %d digits would be %zux%zu pixels, over the limit of "
                         "%zu pixels",
                         path, count, gw, gh, GRID_MAX_PIXELS);

    cv.w = (int)gw;
    cv.h = (int)gh;
    cv.rgb = malloc(gw * gh * 3);
    if (!cv.rgb)
        return report_err(err, errlen, NN_ENOMEM, "%s: out of memory for a %zux%zu image", path, gw,
                         gh);
    fill_rect(&cv, 0, 0, cv.w, cv.h, PAPER, 0, 0, cv.w, cv.h);
    for (int i = 0; i < count; i++) {
        int x = GRID_MARGIN + (i % GRID_COLS) * (int)(cw + GRID_GAP);
        int y = GRID_MARGIN + (i / GRID_COLS) * (int)(ch + GRID_GAP);
        draw_cell(&cv, x, y, ds->images + (size_t)i * img_size, ds->rows, ds->cols, predicted[i],
                  ds->labels[i]);
    }

    if (!stbi_write_png_to_func(png_sink, &b, cv.w, cv.h, 3, cv.rgb, cv.w * 3) && !b.failed) {
        free(cv.rgb);
        free(b.data);
        return report_err(err, errlen, NN_ENOMEM, "%s: PNG encoding failed", path);
    }
    free(cv.rgb);
    return sb_write(&b, path, err, errlen);
}

/* ---------------------------------------------------------------------------------------- */
/* ASCII art                                                                                */
/* ---------------------------------------------------------------------------------------- */

int nn_report_ascii_digit(char *buf, size_t len, const uint8_t *pixels, int rows, int cols)
{
    static const char ramp[] = " .:-=+*#%@"; /* light to dark: 0 = paper, 255 = ink */
    const size_t levels = sizeof ramp - 1;
    size_t need, k = 0;

    if (buf && len > 0)
        buf[0] = '\0';
    if (!pixels || rows <= 0 || cols <= 0)
        return NN_EINVAL;
    need = (size_t)rows * ((size_t)cols + 1);
    if (need > INT_MAX)
        return NN_ERANGE;
    if (!buf || len == 0)
        return (int)need;

    for (int r = 0; r < rows && k + 1 < len; r++) {
        for (int c = 0; c < cols && k + 1 < len; c++)
            buf[k++] = ramp[pixels[(size_t)r * cols + c] * levels / 256];
        if (k + 1 < len)
            buf[k++] = '\n';
    }
    buf[k] = '\0';
    return (int)need;
}

int nn_report_confusion_text(char *buf, size_t len,
                             const uint32_t conf[NN_CLASSES_MAX][NN_CLASSES_MAX])
{
    size_t used = 0;
#define OUT(...)                                                                                   \
    used +=                                                                                        \
        (size_t)snprintf(used < len ? buf + used : NULL, used < len ? len - used : 0, __VA_ARGS__)
    OUT("confusion matrix (rows: true digit, columns: predicted)\n     ");
    for (int p = 0; p < NN_CLASSES_MAX; p++)
        OUT("%7d", p);
    OUT("\n");
    for (int y = 0; y < NN_CLASSES_MAX; y++) {
        OUT("  %d: ", y);
        for (int p = 0; p < NN_CLASSES_MAX; p++)
            OUT("%7u", conf[y][p]);
        OUT("\n");
    }
#undef OUT
    if (len > 0 && used >= len)
        buf[len - 1] = '\0';
    return (int)used;
}

int nn_report_stdout_written(const char *prog)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    fprintf(stderr, "%s: writing to standard output: %s\n", prog, strerror(errno));
    return -1;
}
