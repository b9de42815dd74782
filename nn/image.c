/*
 * image.c - turning any drawing into an MNIST-like 28x28 digit.
 *
 * MNIST's recipe (LeCun et al., http://yann.lecun.com/exdb/mnist/): the bilevel NIST digits
 * were size-normalised to fit a 20x20 box keeping their aspect ratio, anti-aliased, and then
 * placed in 28x28 so that their centre of mass sits at the centre. We apply the same to any
 * input, in one separable resampling pass straight from the caller's image into the 28x28
 * output: crop, scale and sub-pixel translation are one affine map, so nothing the size of the
 * input is ever copied or allocated. Each output pixel is the exact area average of the
 * (piecewise-constant) input over the pixel's footprint when shrinking, and a bilinear sample
 * weighted by the footprint's coverage of the digit's box when enlarging; both agree at
 * scale 1, where a fractional shift is plain linear interpolation.
 */
#include "nn_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NOISE_REL 0.1f  /* ink below this fraction of the strongest ink is noise */
#define NOISE_ABS 0.05f /* and so is anything below this, whatever the image */
#define BOX_SIDE 20.0   /* MNIST's size box */
/* Where the centre of mass goes, in continuous coordinates where pixel i spans [i, i+1):
 * 14.5, i.e. 14.0 in pixel indices (sum(i * v) / sum(v)). Measured on MNIST: its digits'
 * centres of mass lie in [14.0, 15.0] in these coordinates, mean 14.49 (x) and 14.51 (y), as
 * an integer translation of an index-convention centre of 14 gives. */
#define CENTRE 14.5
#define COM_TOL 0.01 /* re-render when the output's centre of mass is off by more */
#define COM_PASSES 3 /* renders at most (the first and two corrections) */
/* Stroke width, in output pixels, as 2 * ink mass / total variation (forward differences).
 * On MNIST's training digits: 1st percentile 1.43, median 2.36, 99th 4.28. Outside
 * [THIN, HEAVY] a digit is redrawn at STROKE_TARGET (see fix_stroke). */
#define THIN 1.4
#define HEAVY 4.4
#define STROKE_TARGET 2.4
#define WORK_SIDE 80 /* the box's longer side in the redrawing's working image */
#define OUT_MAX 128  /* widest render: the working image with its margins */
/* A box narrower than NARROW of its height whose rows often cross the ink twice (an 8 or a 0
 * a quarter as wide as tall, not a 1) is widened to NARROW_TO of its height. */
#define NARROW 0.35
#define NARROW_TO 0.45
#define TWO_RUNS 0.3 /* fraction of sampled rows that cross the ink twice or more */

/* One output pixel's footprint along one axis, as taps on input indices lo..hi:
 * w_lo * in[lo] + w_mid * sum(in[lo+1..hi-1]) + w_hi * in[hi]. Empty when lo > hi. */
struct tap {
    int lo, hi;
    float w_lo, w_mid, w_hi;
};

/* The crop, threshold and contrast that turn input values into ink. */
struct ink_map {
    float thresh; /* values below are noise (0); thresh > 0, so NaN and negatives are 0 too */
    float inv;    /* 1 / strongest ink: the strongest ink becomes 1 */
};

static inline float ink(const struct ink_map *m, float v)
{
    /* computed whatever v is, then selected: a compare and a mask, no branch to mispredict */
    const float c = (v < 1.0f ? v : 1.0f) * m->inv;
    return v >= m->thresh ? c : 0.0f;
}

/*
 * Taps for the nout output pixels along one axis. The digit's box covers input [b0, b0 + n)
 * and maps to output [off, off + n * s): u = off + (x - b0) * s.
 */
static void make_taps(struct tap *taps, int nout, int b0, int n, double s, double off)
{
    int last = b0 + n - 1;
    for (int X = 0; X < nout; X++) {
        struct tap *t = &taps[X];
        t->lo = 1;
        t->hi = 0;
        t->w_lo = t->w_mid = t->w_hi = 0.0f;
        if (s <= 1.0) {
            /* Shrinking: exact coverage of input pixels by [X, X+1), in output units. */
            double a = b0 + (X - off) / s, b = b0 + (X + 1 - off) / s;
            if (a < b0) {
                a = b0;
            }
            if (b > b0 + n) {
                b = b0 + n;
            }
            if (b <= a) {
                continue;
            }
            int lo = (int)floor(a), hi = (int)ceil(b) - 1;
            if (lo < b0) {
                lo = b0;
            }
            if (hi > last) {
                hi = last;
            }
            if (hi < lo) {
                hi = lo;
            }
            t->lo = lo;
            t->hi = hi;
            if (lo == hi) {
                t->w_lo = (float)((b - a) * s);
            } else {
                t->w_lo = (float)((lo + 1 - a) * s);
                t->w_mid = (float)s;
                t->w_hi = (float)((b - hi) * s);
            }
        } else {
            /* Enlarging: bilinear (clamped to the box) at the centre of the part of [X, X+1)
             * inside the box, times that part's length, so the box edges are anti-aliased. */
            double ca = X > off ? X : off, cb = X + 1 < off + n * s ? X + 1 : off + n * s;
            if (cb <= ca) {
                continue;
            }
            double cov = cb - ca, x = b0 + ((ca + cb) / 2 - off) / s - 0.5;
            if (x < b0) {
                x = b0;
            }
            if (x > last) {
                x = last;
            }
            int lo = (int)floor(x);
            double f = x - lo;
            if (lo >= last) {
                lo = last;
                f = 0.0;
            }
            t->lo = lo;
            t->hi = f > 0.0 ? lo + 1 : lo;
            t->w_lo = (float)(cov * (1.0 - f));
            t->w_hi = (float)(cov * f);
        }
    }
}

/* h[X] for X in 0..nx-1: one input row through the column taps. */
static void eval_row(float *h, int nx, const float *row, const struct tap *tx,
                     const struct ink_map *m)
{
    for (int X = 0; X < nx; X++) {
        const struct tap *t = &tx[X];
        float v = 0.0f;
        if (t->lo <= t->hi) {
            v = t->w_lo * ink(m, row[t->lo]);
            if (t->hi > t->lo) {
                float mid = 0.0f;
                for (int i = t->lo + 1; i < t->hi; i++) {
                    mid += ink(m, row[i]);
                }
                v += t->w_mid * mid + t->w_hi * ink(m, row[t->hi]);
            }
        }
        h[X] = v;
    }
}

static void add_scaled(float *dst, const float *h, int nx, float w)
{
    for (int X = 0; X < nx; X++) {
        dst[X] += w * h[X];
    }
}

/* dst (ny,nx) = rows taps (x) column taps applied to src (h,w), nx <= OUT_MAX. A one-row
 * cache covers the input row that two neighbouring output rows share. */
static void render(float *dst, int nx, int ny, const float *src, int w, const struct tap *tx,
                   const struct tap *ty, const struct ink_map *m)
{
    float h[OUT_MAX], cache[OUT_MAX];
    int cached = -1;
    memset(dst, 0, (size_t)nx * ny * sizeof(*dst));
    for (int Y = 0; Y < ny; Y++) {
        const struct tap *t = &ty[Y];
        float *out = dst + (size_t)Y * nx;
        for (int r = t->lo; r <= t->hi; r++) {
            float wr = r == t->lo ? t->w_lo : r == t->hi ? t->w_hi : t->w_mid;
            if (wr == 0.0f) {
                continue;
            }
            if (r == cached) {
                add_scaled(out, cache, nx, wr);
                continue;
            }
            eval_row(h, nx, src + (size_t)r * w, tx, m);
            add_scaled(out, h, nx, wr);
            if (r == t->hi) {
                memcpy(cache, h, sizeof(h));
                cached = r;
            }
        }
    }
}

/* Sum of x[i] and of x[i] * (i + 0.5) over i in [lo, hi), x = ink(m, v[i]) or v[i] when m is
 * NULL, in double, in ACC independent chains (one chain would wait on the previous addition at
 * every pixel). */
#define ACC 8
static inline void row_moments(const float *v, int lo, int hi, const struct ink_map *m, double *sum,
                               double *moment)
{
    double s[ACC] = {0}, mo[ACC] = {0};
    int i = lo;
    for (; i + ACC <= hi; i += ACC) {
        for (int j = 0; j < ACC; j++) {
            const double x = m ? ink(m, v[i + j]) : v[i + j];
            s[j] += x;
            mo[j] += x * (i + j + 0.5);
        }
    }
    for (; i < hi; i++) {
        const double x = m ? ink(m, v[i]) : v[i];
        s[0] += x;
        mo[0] += x * (i + 0.5);
    }
    double ts = 0.0, tm = 0.0;
    for (int j = 0; j < ACC; j++) {
        ts += s[j];
        tm += mo[j];
    }
    *sum = ts;
    *moment = tm;
}

/* Centre of mass of a 28x28 image (pixel centres at i + 0.5); false when it is empty. */
static int centre_of_mass(const float *img, double *cx, double *cy)
{
    double sum = 0.0, sx = 0.0, sy = 0.0;
    for (int y = 0; y < NN_MNIST_SIDE; y++) {
        double rs, rsx;
        row_moments(img + y * NN_MNIST_SIDE, 0, NN_MNIST_SIDE, NULL, &rs, &rsx);
        sum += rs;
        sx += rsx;
        sy += rs * (y + 0.5);
    }
    if (!(sum > 0.0)) {
        return 0;
    }
    *cx = sx / sum;
    *cy = sy / sum;
    return 1;
}

static int check_dims(int w, int h)
{
    if (w < 1 || w > NN_IMAGE_MAX_SIDE || h < 1 || h > NN_IMAGE_MAX_SIDE) {
        return NN_ERANGE;
    }
    return NN_OK;
}

static int normalize(float *dst, const float *src, int w, int h, int fix);

/* Of about 40 rows sampled across the box [x0,x1] x [y0,y1], the fraction in which the ink
 * (values >= thresh) forms two or more runs. */
static double two_runs(const float *src, int w, int x0, int x1, int y0, int y1, float thresh)
{
    int rows = y1 - y0 + 1, step = rows > 40 ? rows / 40 : 1, n = 0, two = 0;
    for (int y = y0; y <= y1; y += step) {
        const float *row = src + (size_t)y * w;
        int runs = 0, in = 0;
        for (int x = x0; x <= x1; x++) {
            int on = row[x] >= thresh;
            runs += on && !in;
            in = on;
        }
        two += runs >= 2;
        n++;
    }
    return (double)two / n;
}

/* Stroke width of an image (w,h) in pixels: 2 * mass / total variation, forward differences
 * (a stroke of width t and length L has mass tL and two edges of length L), values taken
 * relative to the image's peak. */
static double stroke_width(const float *img, int w, int h)
{
    double mass = 0, tv = 0, peak = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            float v = img[y * w + x];
            float r = x + 1 < w ? img[y * w + x + 1] : 0.0f;
            float d = y + 1 < h ? img[(y + 1) * w + x] : 0.0f;
            mass += v;
            tv += sqrt((double)(r - v) * (r - v) + (double)(d - v) * (d - v));
            peak = v > peak ? v : peak;
        }
    }
    return tv > 0 && peak > 0 ? 2.0 * mass / tv : STROKE_TARGET;
}

#define MORPH_ROW_MAX 512 /* widest row morph filters (the working image is at most OUT_MAX) */

/* dst[x] = max (grow) or min of row[x - hw .. x + hw] for x in [0, w), outside the row 0:
 * van Herk / Gil-Werman, 3 comparisons a pixel whatever hw. pad, pre, suf: w + 2 hw + k. */
static void row_filter(float *dst, const float *row, int w, int hw, int grow, float *pad,
                       float *pre, float *suf)
{
    int k = 2 * hw + 1, n = w + 2 * hw, nb = (n + k - 1) / k * k;
    for (int i = 0; i < nb; i++)
        pad[i] = i >= hw && i < hw + w ? row[i - hw] : 0.0f;
    for (int b = 0; b < nb; b += k) {
        pre[b] = pad[b];
        for (int i = b + 1; i < b + k; i++)
            pre[i] = grow ? (pad[i] > pre[i - 1] ? pad[i] : pre[i - 1])
                          : (pad[i] < pre[i - 1] ? pad[i] : pre[i - 1]);
        suf[b + k - 1] = pad[b + k - 1];
        for (int i = b + k - 2; i >= b; i--)
            suf[i] = grow ? (pad[i] > suf[i + 1] ? pad[i] : suf[i + 1])
                          : (pad[i] < suf[i + 1] ? pad[i] : suf[i + 1]);
    }
    for (int x = 0; x < w; x++) {
        float a = suf[x], b = pre[x + k - 1];
        dst[x] = grow ? (a > b ? a : b) : (a < b ? a : b);
    }
}

/* out = grey-scale dilation (grow > 0) or erosion (grow < 0) of in (h,w) by a disc of radius
 * |grow| pixels (fractional radii include the offsets within it), outside the image 0. The
 * disc is a stack of rows, one per dy, each a window of half-width hw(dy): each output row is
 * the max (min) of its neighbours' rows filtered over their windows, in O(w) per row and dy
 * (a pixel's disc of up to 300 offsets, taken one by one, was most of /read's time on heavy
 * strokes). Max and min are exact: the same values as the offset-by-offset loop. */
static void morph(float *out, const float *in, int w, int h, double grow)
{
    double r = fabs(grow);
    int ri = (int)r, dil = grow > 0;
    float pad[3 * MORPH_ROW_MAX], pre[3 * MORPH_ROW_MAX], suf[3 * MORPH_ROW_MAX];
    float filt[MORPH_ROW_MAX];
    if (w + 4 * ri + 1 > MORPH_ROW_MAX) { /* cannot happen for the working image */
        memcpy(out, in, sizeof(float) * (size_t)w * h);
        return;
    }
    for (int y = 0; y < h; y++) {
        float *o = out + (size_t)y * w;
        memcpy(o, in + (size_t)y * w, sizeof(float) * (size_t)w);
        for (int dy = -ri; dy <= ri; dy++) {
            int hw = 0; /* the widest dx with dx*dx + dy*dy <= r*r */
            while ((double)((hw + 1) * (hw + 1) + dy * dy) <= r * r)
                hw++;
            if ((double)(dy * dy) > r * r)
                continue;
            int yy = y + dy;
            if (yy < 0 || yy >= h) { /* a row of zeros */
                if (!dil)
                    for (int x = 0; x < w; x++)
                        o[x] = o[x] < 0.0f ? o[x] : 0.0f;
                continue;
            }
            row_filter(filt, in + (size_t)yy * w, w, hw, dil, pad, pre, suf);
            for (int x = 0; x < w; x++)
                o[x] = dil ? (filt[x] > o[x] ? filt[x] : o[x]) : (filt[x] < o[x] ? filt[x] : o[x]);
        }
    }
}

/*
 * Redraws a digit whose strokes are very thin or very heavy for its size at STROKE_TARGET:
 * the box is resampled (same ink map, same widening) into a working image whose longer side
 * is WORK_SIDE, with a margin for growth; there the strokes are measured, dilated or eroded
 * by the difference, and the working image is normalised again (without this step). A digit
 * that erosion would wipe out keeps dst.
 */
static int fix_stroke(float *dst, const float *src, int w, int x0, int y0, int bw, int bh,
                      double stretch, const struct ink_map *m)
{
    double longer = bw * stretch > bh ? bw * stretch : bh, k = WORK_SIDE / longer;
    double per_out = WORK_SIDE / BOX_SIDE; /* working pixels per output pixel */
    /* the largest growth (a hairline to the target) bounds the margin */
    int margin = (int)ceil(STROKE_TARGET * per_out / 2.0) + 2;
    int ww = (int)ceil(bw * stretch * k) + 2 * margin, wh = (int)ceil(bh * k) + 2 * margin;
    if (ww > OUT_MAX || wh > OUT_MAX) {
        return NN_OK; /* cannot happen: WORK_SIDE plus margins fits */
    }
    float *work = malloc(sizeof(float) * 2 * (size_t)ww * wh);
    if (!work) {
        return NN_ENOMEM;
    }
    struct tap tx[OUT_MAX], ty[OUT_MAX];
    make_taps(tx, ww, x0, bw, stretch * k, margin);
    make_taps(ty, wh, y0, bh, k, margin);
    render(work, ww, wh, src, w, tx, ty, m);
    /* measured here, not on the 28x28, where a hairline's area average looks a pixel wide */
    double grow = (STROKE_TARGET * per_out - stroke_width(work, ww, wh)) / 2.0;
    if (grow < -STROKE_TARGET * per_out) {
        grow = -STROKE_TARGET * per_out;
    }
    float *grown = work + (size_t)ww * wh;
    morph(grown, work, ww, wh, grow);
    float out[NN_MNIST_PIXELS];
    int rc = normalize(out, grown, ww, wh, 0);
    if (rc == NN_OK) {
        memcpy(dst, out, sizeof(out));
    }
    free(work);
    return rc == NN_EBLANK ? NN_OK : rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Public API                                                                                */
/* ---------------------------------------------------------------------------------------- */

/*
 * Steps, for src (h, w) with 1 = ink:
 * 1. Noise: values below max(NOISE_REL * strongest, NOISE_ABS) count as 0; values are then
 *    divided by the strongest ink, so faint pencil looks like MNIST's full-contrast strokes
 *    (the NIST originals were bilevel). No value at or above NOISE_ABS: NN_EBLANK.
 * 2. Crop to the bounding box of what is left; scale s = 20 / longer side of the box.
 * 3. Place the box so that its (intensity-weighted) centre of mass lands at pixel index
 *    (14, 14), i.e. at 14.5 in continuous coordinates where pixel i spans [i, i+1), as
 *    in MNIST (see CENTRE), with a sub-pixel offset rather than MNIST's rounding; render;
 *    then correct the offset by the rendered image's own centre of mass (discretisation
 *    moves it by up to a few tenths of a pixel) and render again, so the output's centre
 *    of mass is at CENTRE +- COM_TOL unless ink was cut at the field's edge (a shape with
 *    most of its mass at one end can reach past 28 pixels, as in MNIST).
 * 4. Shape: a box narrower than NARROW of its height whose rows often cross the ink twice
 *    (a narrow 8 or 0, not a 1) is widened to NARROW_TO before the fit, so its loops survive;
 *    strokes thinner than THIN or heavier than HEAVY output pixels (MNIST's 1st and past its
 *    99th percentile) are redrawn at MNIST's median width (fix_stroke).
 * Output values are in [0,1]. Cost: two passes over the input and up to COM_PASSES passes
 * over the box (about 0.8 ms for a 1024x1024 drawing, 3 us for 28x28); a redrawn stroke adds
 * an 80x80 working image (50 KB, heap) and its dilation.
 * Errors: NN_EINVAL (NULL), NN_ERANGE (a side outside 1..NN_IMAGE_MAX_SIDE; dst zeroed),
 * NN_EBLANK (dst zeroed), NN_ENOMEM. Thread-safe.
 */
static int normalize(float *dst, const float *src, int w, int h, int fix)
{
    if (!dst || !src) {
        return NN_EINVAL;
    }
    if (check_dims(w, h) < 0) {
        memset(dst, 0, NN_MNIST_PIXELS * sizeof(*dst));
        return NN_ERANGE;
    }

    /* 1. Strongest ink. */
    float pk[ACC] = {0};
    size_t n = (size_t)w * h, i = 0;
    for (; i + ACC <= n; i += ACC) {
        for (int j = 0; j < ACC; j++) {
            pk[j] = src[i + j] > pk[j] ? src[i + j] : pk[j];
        }
    }
    for (; i < n; i++) {
        pk[0] = src[i] > pk[0] ? src[i] : pk[0];
    }
    float peak = 0.0f;
    for (int j = 0; j < ACC; j++) {
        peak = pk[j] > peak ? pk[j] : peak;
    }
    if (peak > 1.0f) {
        peak = 1.0f;
    }
    if (!(peak >= NOISE_ABS)) {
        memset(dst, 0, NN_MNIST_PIXELS * sizeof(*dst));
        return NN_EBLANK;
    }
    struct ink_map m = {NOISE_REL * peak, 1.0f / peak};
    if (m.thresh < NOISE_ABS) {
        m.thresh = NOISE_ABS;
    }

    /* 2. Bounding box and centre of mass of the ink. */
    int x0 = w, x1 = -1, y0 = h, y1 = -1;
    double sum = 0.0, sx = 0.0, sy = 0.0;
    for (int y = 0; y < h; y++) {
        const float *row = src + (size_t)y * w;
        /* ink(v) > 0 exactly when v >= thresh (thresh > 0) */
        int first = 0, lastx = w - 1;
        while (first < w && !(row[first] >= m.thresh)) {
            first++;
        }
        if (first == w) {
            continue;
        }
        while (!(row[lastx] >= m.thresh)) {
            lastx--;
        }
        double rs, rsx;
        row_moments(row, first, lastx + 1, &m, &rs, &rsx);
        x0 = first < x0 ? first : x0;
        x1 = lastx > x1 ? lastx : x1;
        y0 = y < y0 ? y : y0;
        y1 = y;
        sum += rs;
        sx += rsx;
        sy += rs * (y + 0.5);
    }
    /* peak >= thresh, so the pixel holding it is ink and the box is not empty. */
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    double stretch = 1.0;
    if (bw < NARROW * bh && two_runs(src, w, x0, x1, y0, y1, m.thresh) >= TWO_RUNS) {
        stretch = NARROW_TO * bh / bw;
    }
    double s = BOX_SIDE / (bw * stretch > bh ? bw * stretch : bh), sxs = s * stretch;
    double offx = CENTRE - (sx / sum - x0) * sxs, offy = CENTRE - (sy / sum - y0) * s;

    /* 3. Render, then correct the centre of mass from the rendered image. */
    struct tap tx[NN_MNIST_SIDE], ty[NN_MNIST_SIDE];
    for (int pass = 0; pass < COM_PASSES; pass++) {
        make_taps(tx, NN_MNIST_SIDE, x0, bw, sxs, offx);
        make_taps(ty, NN_MNIST_SIDE, y0, bh, s, offy);
        render(dst, NN_MNIST_SIDE, NN_MNIST_SIDE, src, w, tx, ty, &m);
        double cx, cy;
        if (!centre_of_mass(dst, &cx, &cy)) {
            break; /* cannot happen with the box inside the field; keep what we have */
        }
        if (fabs(cx - CENTRE) <= COM_TOL && fabs(cy - CENTRE) <= COM_TOL) {
            break;
        }
        if (pass + 1 < COM_PASSES) {
            offx += CENTRE - cx;
            offy += CENTRE - cy;
        }
    }
    for (int k = 0; k < NN_MNIST_PIXELS; k++) {
        dst[k] = dst[k] < 0.0f ? 0.0f : dst[k] > 1.0f ? 1.0f : dst[k];
    }
    if (fix) {
        double t = stroke_width(dst, NN_MNIST_SIDE, NN_MNIST_SIDE);
        if (t < THIN || t > HEAVY) {
            return fix_stroke(dst, src, w, x0, y0, bw, bh, stretch, &m);
        }
    }
    return NN_OK;
}

int nn_image_normalize(float *dst, const float *src, int w, int h)
{
    return normalize(dst, src, w, h, 1);
}
