/*
 * test_image.c - grayscale conversion (nn_image_from_pixels8) and MNIST-style normalisation
 * (nn_image_normalize).
 *
 * The normaliser is checked against MNIST itself: MNIST digits are already normalised, so they
 * must come back nearly unchanged, and a digit drawn anywhere on a big canvas at any size must
 * come back like the digit itself. render_digit() below is the canvas-drawing helper; the
 * suites that need MNIST fail (never skip) when MNIST_DIR has no MNIST.
 */
#include "nn/nn.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIDE NN_MNIST_SIDE
#define PIX NN_MNIST_PIXELS

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void load_test_digits(struct nn_dataset *ds)
{
    const char *dir = getenv("MNIST_DIR");
    char err[512] = "";
    if (!dir || !*dir) {
        dir = "data/mnist";
    }
    int st = nn_dataset_load_mnist(ds, dir, "test", err, sizeof(err));
    cr_assert_eq(st, NN_OK, "MNIST is needed (run `make data` or set MNIST_DIR): %s", err);
    cr_assert_eq(ds->rows, SIDE);
    cr_assert_eq(ds->cols, SIDE);
}

static void digit_to_float(float *dst, const struct nn_dataset *ds, size_t i)
{
    for (int k = 0; k < PIX; k++) {
        dst[k] = ds->images[i * PIX + (size_t)k] / 255.0f;
    }
}

/* Pearson correlation of a[0..n) and b[0..n). */
static double correlation(const float *a, const float *b, size_t n)
{
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (size_t i = 0; i < n; i++) {
        sa += a[i];
        sb += b[i];
        saa += (double)a[i] * a[i];
        sbb += (double)b[i] * b[i];
        sab += (double)a[i] * b[i];
    }
    double va = saa - sa * sa / n, vb = sbb - sb * sb / n;
    return (sab - sa * sb / n) / sqrt(va * vb);
}

/* Centre of mass in pixel indices (sum(i * v) / sum(v)); MNIST puts it at (14, 14). */
static void centre_of_mass(const float *img, int w, int h, double *cx, double *cy)
{
    double s = 0, sx = 0, sy = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double v = img[(size_t)y * w + x];
            s += v;
            sx += v * x;
            sy += v * y;
        }
    }
    *cx = sx / s;
    *cy = sy / s;
}

/* Bounding box of values >= thresh; returns its width and height. */
static void ink_box(const float *img, int w, int h, float thresh, int *bw, int *bh)
{
    int x0 = w, x1 = -1, y0 = h, y1 = -1;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            if (img[(size_t)y * w + x] >= thresh) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
        }
    }
    *bw = x1 - x0 + 1;
    *bh = y1 - y0 + 1;
}

static float sample_bilinear(const float *img, int w, int h, double x, double y)
{
    /* x, y in pixel-centre coordinates; zero outside the image */
    int ix = (int)floor(x), iy = (int)floor(y);
    double fx = x - ix, fy = y - iy, v = 0.0;
    for (int dy = 0; dy <= 1; dy++) {
        for (int dx = 0; dx <= 1; dx++) {
            int px = ix + dx, py = iy + dy;
            if (px < 0 || px >= w || py < 0 || py >= h) {
                continue;
            }
            v += img[(size_t)py * w + px] * (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
        }
    }
    return (float)v;
}

/*
 * Draws `digit` (dw x dh, 1 = ink) onto `canvas` (cw x ch) scaled by `scale`, with the digit's
 * top-left corner at canvas point (ox, oy) (continuous coordinates: canvas pixel X spans
 * [X, X+1)). Bilinear sampling at canvas pixel centres, zero outside the digit; the result is
 * combined with what the canvas holds by max, so several digits or strokes can be drawn.
 * Pixels outside the canvas are clipped. Suits scales from about 0.5 (where the bilinear tent
 * still spans two digit pixels, so it does not alias) up.
 */
static void render_digit(float *canvas, int cw, int ch, const float *digit, int dw, int dh,
                         double scale, double ox, double oy)
{
    int X0 = (int)floor(ox - scale), X1 = (int)ceil(ox + (dw + 1) * scale);
    int Y0 = (int)floor(oy - scale), Y1 = (int)ceil(oy + (dh + 1) * scale);
    for (int Y = Y0 < 0 ? 0 : Y0; Y < Y1 && Y < ch; Y++) {
        for (int X = X0 < 0 ? 0 : X0; X < X1 && X < cw; X++) {
            double u = (X + 0.5 - ox) / scale - 0.5, v = (Y + 0.5 - oy) / scale - 0.5;
            float s = sample_bilinear(digit, dw, dh, u, v);
            float *c = &canvas[(size_t)Y * cw + X];
            *c = s > *c ? s : *c;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* nn_image_normalize against MNIST                                                         */
/* ---------------------------------------------------------------------------------------- */

/*
 * Measured over the first 1000 test digits (gcc 12, x86-64): mean absolute pixel difference
 * 0.027, mean correlation 0.964, lowest 0.84. The difference comes from MNIST rounding its
 * translation to whole pixels where we shift by the exact sub-pixel amount, which for an
 * already-28x28 digit is a linear interpolation of up to half a pixel.
 */
Test(image, mnist_digits_come_back_almost_unchanged)
{
    struct nn_dataset ds;
    load_test_digits(&ds);
    float in[PIX], out[PIX];
    double mad = 0, corr = 0, worst = 1;
    const int n = 1000;
    for (int i = 0; i < n; i++) {
        digit_to_float(in, &ds, (size_t)i);
        cr_assert_eq(nn_image_normalize(out, in, SIDE, SIDE), NN_OK, "digit %d", i);
        double d = 0;
        for (int k = 0; k < PIX; k++) {
            d += fabs(out[k] - in[k]);
        }
        mad += d / PIX;
        double c = correlation(in, out, PIX);
        corr += c;
        worst = c < worst ? c : worst;
    }
    mad /= n;
    corr /= n;
    cr_log_info("MNIST round trip: mean |diff| %.4f, correlation mean %.4f, min %.4f", mad, corr,
                worst);
    cr_expect_lt(mad, 0.035, "mean absolute difference %.4f", mad);
    cr_expect_gt(corr, 0.95, "mean correlation %.4f", corr);
    cr_expect_gt(worst, 0.75, "lowest correlation %.4f", worst);
    nn_dataset_free(&ds);
}

/* MNIST's own digits have their centre of mass within half a pixel of index 14 (it rounded
 * the translation); ours is exactly there, on MNIST digits and on drawings. */
Test(image, output_centre_of_mass_is_at_pixel_14)
{
    struct nn_dataset ds;
    load_test_digits(&ds);
    float in[PIX], out[PIX];
    double worst = 0;
    for (int i = 0; i < 500; i++) {
        double cx, cy;
        digit_to_float(in, &ds, (size_t)i);
        centre_of_mass(in, SIDE, SIDE, &cx, &cy);
        cr_assert(fabs(cx - 14) <= 0.51 && fabs(cy - 14) <= 0.51,
                  "MNIST digit %d has its centre of mass at (%.2f, %.2f)", i, cx, cy);
        cr_assert_eq(nn_image_normalize(out, in, SIDE, SIDE), NN_OK);
        centre_of_mass(out, SIDE, SIDE, &cx, &cy);
        worst = fmax(worst, fmax(fabs(cx - 14), fabs(cy - 14)));
    }
    cr_log_info("normalised MNIST: centre of mass at most %.4f px from (14, 14)", worst);
    cr_expect_lt(worst, 0.05, "centre of mass %.3f px off", worst);
    nn_dataset_free(&ds);
}

/*
 * Each digit drawn at a random scale (0.5x to 3x, i.e. 14 to 84 px on a 280x280 canvas) and a
 * random position must normalise like the digit itself. Measured over these 300: mean
 * correlation 0.974, lowest 0.84 (at 0.5x a 14 px digit has lost detail that the enlarging
 * step cannot bring back), centre of mass within 0.01 px.
 */
Test(image, scaled_and_moved_digits_normalise_like_the_original)
{
    struct nn_dataset ds;
    load_test_digits(&ds);
    enum { CW = 280, N = 300 };
    float *canvas = malloc(sizeof(float) * CW * CW);
    cr_assert_not_null(canvas);
    float in[PIX], ref[PIX], out[PIX];
    struct nn_rng rng;
    nn_rng_seed(&rng, 20240601);
    double corr = 0, worst = 1, com = 0;
    for (int i = 0; i < N; i++) {
        digit_to_float(in, &ds, (size_t)i);
        cr_assert_eq(nn_image_normalize(ref, in, SIDE, SIDE), NN_OK);
        double scale = 0.5 * pow(6.0, nn_rng_uniform(&rng)); /* log-uniform in [0.5, 3] */
        double room = CW - SIDE * scale;
        double ox = room * nn_rng_uniform(&rng), oy = room * nn_rng_uniform(&rng);
        memset(canvas, 0, sizeof(float) * CW * CW);
        render_digit(canvas, CW, CW, in, SIDE, SIDE, scale, ox, oy);
        cr_assert_eq(nn_image_normalize(out, canvas, CW, CW), NN_OK, "digit %d", i);
        double c = correlation(ref, out, PIX), cx, cy;
        corr += c;
        worst = c < worst ? c : worst;
        centre_of_mass(out, SIDE, SIDE, &cx, &cy);
        com = fmax(com, fmax(fabs(cx - 14), fabs(cy - 14)));
    }
    corr /= N;
    cr_log_info("canvas vs original: correlation mean %.4f, min %.4f; centre of mass within "
                "%.3f px",
                corr, worst, com);
    cr_expect_gt(corr, 0.93, "mean correlation %.4f", corr);
    cr_expect_gt(worst, 0.75, "lowest correlation %.4f", worst);
    cr_expect_lt(com, 0.05, "centre of mass %.3f px off", com);
    free(canvas);
    nn_dataset_free(&ds);
}

/* The scaled digit fits MNIST's 20x20 box: its longer side (ink >= 0.1) spans 20 pixels, or 21
 * when the box straddles pixel boundaries after the sub-pixel shift. */
Test(image, normalised_digits_fill_a_20_pixel_box)
{
    struct nn_dataset ds;
    load_test_digits(&ds);
    enum { CW = 200 };
    float *canvas = calloc((size_t)CW * CW, sizeof(float));
    cr_assert_not_null(canvas);
    float in[PIX], out[PIX];
    for (int i = 0; i < 200; i++) {
        int bw, bh;
        digit_to_float(in, &ds, (size_t)i);
        memset(canvas, 0, sizeof(float) * CW * CW);
        render_digit(canvas, CW, CW, in, SIDE, SIDE, 5.0, 30, 20);
        cr_assert_eq(nn_image_normalize(out, canvas, CW, CW), NN_OK);
        ink_box(out, SIDE, SIDE, 0.1f, &bw, &bh);
        int longer = bw > bh ? bw : bh;
        cr_expect(longer >= 19 && longer <= 21, "digit %d: ink box %dx%d", i, bw, bh);
    }
    free(canvas);
    nn_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------------------- */
/* nn_image_normalize on synthetic drawings                                                 */
/* ---------------------------------------------------------------------------------------- */

static int count_above(const float *img, size_t n, float t)
{
    int c = 0;
    for (size_t i = 0; i < n; i++) {
        c += img[i] > t;
    }
    return c;
}

static void expect_in_unit_range(const float *img)
{
    for (int i = 0; i < PIX; i++) {
        cr_assert(img[i] >= 0.0f && img[i] <= 1.0f, "pixel %d is %g", i, img[i]);
    }
}

Test(image, blank_image_is_reported_and_zeroed)
{
    float src[64 * 48] = {0}, dst[PIX];
    for (int i = 0; i < PIX; i++) {
        dst[i] = 0.5f;
    }
    cr_assert_eq(nn_image_normalize(dst, src, 64, 48), NN_EBLANK);
    cr_assert_eq(count_above(dst, PIX, 0.0f), 0);
}

Test(image, faint_noise_alone_is_blank)
{
    float src[100 * 100], dst[PIX];
    struct nn_rng rng;
    nn_rng_seed(&rng, 7);
    for (int i = 0; i < 100 * 100; i++) {
        src[i] = 0.04f * nn_rng_uniform(&rng); /* below the absolute floor of 0.05 */
    }
    cr_assert_eq(nn_image_normalize(dst, src, 100, 100), NN_EBLANK);
    cr_assert_eq(count_above(dst, PIX, 0.0f), 0);
}

/* Faint specks far from the stroke (below a tenth of the ink) do not widen the box or move
 * the centre: the result equals the clean drawing's. */
Test(image, faint_noise_beside_a_drawing_is_ignored)
{
    enum { W = 120, H = 100 };
    static float clean[W * H], noisy[W * H];
    float a[PIX], b[PIX];
    struct nn_rng rng;
    nn_rng_seed(&rng, 11);
    for (int y = 30; y < 80; y++) {
        for (int x = 50; x < 58; x++) {
            clean[y * W + x] = 1.0f; /* a "1" */
        }
    }
    for (int i = 0; i < W * H; i++) {
        noisy[i] = clean[i] > 0 ? clean[i] : 0.09f * nn_rng_uniform(&rng);
    }
    cr_assert_eq(nn_image_normalize(a, clean, W, H), NN_OK);
    cr_assert_eq(nn_image_normalize(b, noisy, W, H), NN_OK);
    for (int i = 0; i < PIX; i++) {
        cr_assert_float_eq(a[i], b[i], 1e-6, "pixel %d: %g vs %g", i, a[i], b[i]);
    }
}

/* A lone dot is scaled like any drawing: a uniform 20x20 square centred on (14, 14). */
Test(image, single_dot_becomes_a_centred_square)
{
    float src[50 * 40] = {0}, dst[PIX];
    src[17 * 50 + 33] = 1.0f;
    cr_assert_eq(nn_image_normalize(dst, src, 50, 40), NN_OK);
    double cx, cy, sum = 0;
    centre_of_mass(dst, SIDE, SIDE, &cx, &cy);
    cr_expect_float_eq(cx, 14.0, 0.02);
    cr_expect_float_eq(cy, 14.0, 0.02);
    for (int i = 0; i < PIX; i++) {
        sum += dst[i];
    }
    cr_expect_float_eq(sum, 400.0, 0.5, "total ink %g", sum);
    for (int y = 5; y < 24; y++) {
        for (int x = 5; x < 24; x++) {
            cr_expect_float_eq(dst[y * SIDE + x], 1.0f, 1e-4, "(%d,%d)", x, y);
        }
    }
    expect_in_unit_range(dst);
}

/* A 300x15 bar keeps its 20:1 aspect ratio: 20 px wide, 1 px of ink high. Centred on pixel
 * index 14 (continuous 14.5), a symmetric bar spans [4.5, 24.5): 21 columns, the two end ones
 * half covered, and its one pixel of height lands on one or two rows. */
Test(image, wide_short_stroke_keeps_its_aspect_ratio)
{
    enum { W = 400, H = 200 };
    static float src[W * H];
    float dst[PIX];
    for (int y = 90; y < 120; y++) { /* 300 x 30: 20 x 2 in the output, in MNIST's stroke range */
        for (int x = 40; x < 340; x++) {
            src[y * W + x] = 1.0f;
        }
    }
    cr_assert_eq(nn_image_normalize(dst, src, W, H), NN_OK);
    double sum = 0, cx, cy;
    for (int i = 0; i < PIX; i++) {
        sum += dst[i];
    }
    cr_expect_float_eq(sum, 40.0, 0.01, "area 20 x 2 expected, total ink %g", sum);
    int bw, bh;
    ink_box(dst, SIDE, SIDE, 0.01f, &bw, &bh);
    cr_expect(bw >= 20 && bw <= 21, "width %d", bw);
    cr_expect(bh >= 2 && bh <= 3, "height %d", bh);
    cr_expect_float_eq(dst[13 * SIDE + 4] + dst[13 * SIDE + 24], dst[13 * SIDE + 14], 1e-4,
                       "end columns should share one column's ink");
    centre_of_mass(dst, SIDE, SIDE, &cx, &cy);
    cr_expect_float_eq(cx, 14.0, 0.02);
    cr_expect_float_eq(cy, 14.0, 0.02);
}

/* A tall thin stroke drawn thick on a big canvas: 20 px tall (21 rows when straddling, as
 * above), the width scaled by the same factor (30 px -> 2 px). */
Test(image, tall_stroke_is_20_pixels_high_and_scaled_width)
{
    enum { W = 500, H = 500 };
    static float src[W * H];
    float dst[PIX];
    for (int y = 100; y < 400; y++) {
        for (int x = 200; x < 230; x++) {
            src[y * W + x] = 1.0f;
        }
    }
    cr_assert_eq(nn_image_normalize(dst, src, W, H), NN_OK);
    double sum = 0;
    for (int i = 0; i < PIX; i++) {
        sum += dst[i];
    }
    cr_expect_float_eq(sum, 40.0, 0.01, "area 2 x 20 expected, total ink %g", sum);
    int bw, bh;
    ink_box(dst, SIDE, SIDE, 0.01f, &bw, &bh);
    cr_expect(bh >= 20 && bh <= 21, "height %d", bh);
    cr_expect(bw >= 2 && bw <= 3, "width %d", bw);
}

/* Enlarging a small drawing interpolates: a 1-px diagonal in a 7x7 image becomes a smooth
 * band with many intermediate values, not 3x3 blocks of 0 and 1. */
Test(image, enlarged_small_drawing_is_anti_aliased)
{
    float src[7 * 7] = {0}, dst[PIX];
    for (int i = 0; i < 7; i++) {
        src[i * 7 + i] = 1.0f;
    }
    cr_assert_eq(nn_image_normalize(dst, src, 7, 7), NN_OK);
    int mid = 0, ink = 0;
    for (int i = 0; i < PIX; i++) {
        ink += dst[i] > 0.02f;
        mid += dst[i] > 0.1f && dst[i] < 0.9f;
    }
    cr_expect_gt(ink, 60, "%d ink pixels", ink);
    cr_expect_gt(mid, ink / 3, "%d of %d ink pixels are intermediate", mid, ink);
    expect_in_unit_range(dst);
}

/* Grey ink is stretched to MNIST's full contrast, and values outside [0,1] or NaN (outside
 * the contract) neither crash nor leak out of [0,1]. */
Test(image, grey_ink_is_stretched_and_output_stays_in_unit_range)
{
    float src[30 * 30] = {0}, dst[PIX], grey[30 * 30] = {0};
    for (int y = 5; y < 25; y++) {
        for (int x = 12; x < 16; x++) {
            src[y * 30 + x] = 1.0f;
            grey[y * 30 + x] = 0.4f;
        }
    }
    float a[PIX];
    cr_assert_eq(nn_image_normalize(a, src, 30, 30), NN_OK);
    cr_assert_eq(nn_image_normalize(dst, grey, 30, 30), NN_OK);
    for (int i = 0; i < PIX; i++) {
        cr_assert_float_eq(a[i], dst[i], 1e-5);
    }
    src[0] = 7.0f;
    src[1] = -3.0f;
    src[2] = NAN;
    cr_assert_eq(nn_image_normalize(dst, src, 30, 30), NN_OK);
    expect_in_unit_range(dst);
}

Test(image, sizes_outside_1_to_4096_are_rejected)
{
    static float src[5000 * 2];
    float dst[PIX];
    src[0] = 1.0f;
    cr_expect_eq(nn_image_normalize(dst, src, 0, 10), NN_ERANGE);
    cr_expect_eq(nn_image_normalize(dst, src, 10, 0), NN_ERANGE);
    cr_expect_eq(nn_image_normalize(dst, src, -1, 10), NN_ERANGE);
    cr_expect_eq(nn_image_normalize(dst, src, 5000, 2), NN_ERANGE);
    cr_expect_eq(nn_image_normalize(dst, src, 2, 5000), NN_ERANGE);
    cr_expect_eq(nn_image_normalize(dst, src, 1, 1), NN_OK);
    cr_expect_eq(nn_image_from_pixels8(dst, (const uint8_t *)src, 0, 5, 1), NN_ERANGE);
    cr_expect_eq(nn_image_from_pixels8(dst, (const uint8_t *)src, 5000, 1, 1), NN_ERANGE);
}

Test(image, null_arguments_and_bad_channel_counts_are_rejected)
{
    float src[4] = {1, 0, 0, 0}, dst[PIX];
    uint8_t px[4 * 5] = {0};
    cr_expect_eq(nn_image_normalize(NULL, src, 2, 2), NN_EINVAL);
    cr_expect_eq(nn_image_normalize(dst, NULL, 2, 2), NN_EINVAL);
    cr_expect_eq(nn_image_from_pixels8(NULL, px, 2, 2, 1), NN_EINVAL);
    cr_expect_eq(nn_image_from_pixels8(dst, NULL, 2, 2, 1), NN_EINVAL);
    cr_expect_eq(nn_image_from_pixels8(dst, px, 2, 2, 0), NN_EINVAL);
    cr_expect_eq(nn_image_from_pixels8(dst, px, 2, 2, 5), NN_EINVAL);
}

/* The largest accepted image, full of ink, is handled (and in reasonable time). */
Test(image, largest_image_is_accepted, .timeout = 20)
{
    enum { W = NN_IMAGE_MAX_SIDE };
    float *src = malloc(sizeof(float) * W * W), dst[PIX];
    cr_assert_not_null(src);
    for (size_t i = 0; i < (size_t)W * W; i++) {
        src[i] = (float)((i * 2654435761u >> 7) % 1000) / 1000.0f;
    }
    cr_assert_eq(nn_image_normalize(dst, src, W, W), NN_OK);
    expect_in_unit_range(dst);
    free(src);
}

/* ---------------------------------------------------------------------------------------- */
/* nn_image_from_pixels8: polarity and channels                                             */
/* ---------------------------------------------------------------------------------------- */

enum { PW = 40, PH = 30 };

static int in_stroke(int x, int y)
{
    return (x >= 10 && x < 30 && y >= 14 && y < 17) || (x >= 18 && x < 21 && y >= 5 && y < 25);
}

/* Expects ink ~1 on the strokes of in_stroke() and ~0 elsewhere. */
static void expect_strokes(const float *ink)
{
    for (int y = 0; y < PH; y++) {
        for (int x = 0; x < PW; x++) {
            float want = in_stroke(x, y) ? 1.0f : 0.0f;
            cr_assert_float_eq(ink[y * PW + x], want, 0.01, "(%d,%d) is %g", x, y, ink[y * PW + x]);
        }
    }
}

Test(image, dark_strokes_on_light_rgb_become_ink)
{
    static uint8_t px[PW * PH * 3];
    float ink[PW * PH];
    for (int i = 0; i < PW * PH; i++) {
        int s = in_stroke(i % PW, i / PW);
        px[i * 3 + 0] = s ? 10 : 250; /* dark blue pen on off-white paper */
        px[i * 3 + 1] = s ? 0 : 250;
        px[i * 3 + 2] = s ? 30 : 245;
    }
    cr_assert_eq(nn_image_from_pixels8(ink, px, PW, PH, 3), NN_OK);
    for (int i = 0; i < PW * PH; i++) {
        ink[i] = ink[i] > 0.9f ? 1.0f : ink[i] < 0.1f ? 0.0f : ink[i];
    }
    expect_strokes(ink);
}

Test(image, light_strokes_on_dark_gray_stay_ink)
{
    static uint8_t px[PW * PH];
    float ink[PW * PH];
    for (int i = 0; i < PW * PH; i++) {
        px[i] = in_stroke(i % PW, i / PW) ? 255 : 0;
    }
    cr_assert_eq(nn_image_from_pixels8(ink, px, PW, PH, 1), NN_OK);
    expect_strokes(ink);
}

/* What a browser canvas exports: transparent background (0,0,0,0) and opaque black strokes. */
Test(image, canvas_export_with_transparent_background_becomes_ink)
{
    static uint8_t px[PW * PH * 4];
    float ink[PW * PH];
    for (int i = 0; i < PW * PH; i++) {
        px[i * 4 + 3] = in_stroke(i % PW, i / PW) ? 255 : 0; /* rgb 0 everywhere */
    }
    cr_assert_eq(nn_image_from_pixels8(ink, px, PW, PH, 4), NN_OK);
    expect_strokes(ink);
}

Test(image, gray_alpha_composites_on_white)
{
    static uint8_t px[PW * PH * 2];
    float ink[PW * PH];
    for (int i = 0; i < PW * PH; i++) {
        px[i * 2 + 0] = in_stroke(i % PW, i / PW) ? 0 : 200;
        px[i * 2 + 1] = in_stroke(i % PW, i / PW) ? 255 : 0; /* transparent grey = white */
    }
    cr_assert_eq(nn_image_from_pixels8(ink, px, PW, PH, 2), NN_OK);
    expect_strokes(ink);
    /* half-transparent black on white: luminance 0.5, ink 0.5 */
    px[0] = 0;
    px[1] = 128;
    cr_assert_eq(nn_image_from_pixels8(ink, px, PW, PH, 2), NN_OK);
    cr_expect_float_eq(ink[0], 128 / 255.0f, 1e-5);
}

Test(image, rec601_weights_give_the_luminance)
{
    uint8_t px[3 * 3 * 3];
    float ink[9];
    memset(px, 0, sizeof(px)); /* black background: no inversion */
    px[4 * 3 + 0] = 255;       /* a pure red centre pixel */
    cr_assert_eq(nn_image_from_pixels8(ink, px, 3, 3, 3), NN_OK);
    cr_expect_float_eq(ink[4], 0.299f, 1e-4);
    px[4 * 3 + 0] = 0;
    px[4 * 3 + 1] = 255;
    cr_assert_eq(nn_image_from_pixels8(ink, px, 3, 3, 3), NN_OK);
    cr_expect_float_eq(ink[4], 0.587f, 1e-4);
}

/* Drawing through both steps, as the server does: a dark digit on white RGBA, anywhere on a
 * 300x300 canvas, normalises like MNIST's own digit. */
Test(image, photo_style_digit_normalises_like_mnist)
{
    struct nn_dataset ds;
    load_test_digits(&ds);
    enum { CW = 300 };
    float *canvas = calloc((size_t)CW * CW, sizeof(float)), *ink = malloc(sizeof(float) * CW * CW);
    uint8_t *px = malloc((size_t)CW * CW * 4);
    cr_assert(canvas && ink && px);
    float in[PIX], ref[PIX], out[PIX];
    digit_to_float(in, &ds, 0);
    render_digit(canvas, CW, CW, in, SIDE, SIDE, 7.0, 60, 40);
    for (int i = 0; i < CW * CW; i++) {
        uint8_t g = (uint8_t)lrintf(255.0f * (1.0f - canvas[i]));
        px[i * 4 + 0] = px[i * 4 + 1] = px[i * 4 + 2] = g;
        px[i * 4 + 3] = 255;
    }
    cr_assert_eq(nn_image_from_pixels8(ink, px, CW, CW, 4), NN_OK);
    cr_assert_eq(nn_image_normalize(out, ink, CW, CW), NN_OK);
    cr_assert_eq(nn_image_normalize(ref, in, SIDE, SIDE), NN_OK);
    double c = correlation(ref, out, PIX);
    cr_expect_gt(c, 0.95, "correlation %.4f", c);
    free(canvas);
    free(ink);
    free(px);
    nn_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------------------- */
/* nn_image_normalize: stroke width and narrow digits                                       */
/* ---------------------------------------------------------------------------------------- */

/* 2 * mass / total variation (forward differences): a stroke's width in pixels. */
static double stroke_width(const float *img)
{
    double mass = 0, tv = 0;
    for (int y = 0; y < SIDE; y++) {
        for (int x = 0; x < SIDE; x++) {
            double v = img[y * SIDE + x], r = x + 1 < SIDE ? img[y * SIDE + x + 1] : 0;
            double d = y + 1 < SIDE ? img[(y + 1) * SIDE + x] : 0;
            mass += v;
            tv += sqrt((r - v) * (r - v) + (d - v) * (d - v));
        }
    }
    return 2 * mass / tv;
}

/* An ellipse outline with semi-axes (a, b) and stroke width t, centred at (cx, cy), added
 * (max) to src (w, h), 4x4 supersampled. */
static void draw_ring(float *src, int w, int h, double cx, double cy, double a, double b, double t)
{
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            int hit = 0;
            for (int k = 0; k < 16; k++) {
                double px = x + (k % 4 + 0.5) / 4 - cx, py = y + (k / 4 + 0.5) / 4 - cy;
                /* distance to the ellipse, approximated by the radial gap */
                double r = sqrt(px * px / (a * a) + py * py / (b * b));
                double scale = sqrt(px * px + py * py) / (r > 0 ? r : 1);
                hit += fabs(r - 1) * scale <= t / 2;
            }
            float v = hit / 16.0f;
            src[(size_t)y * w + x] = v > src[(size_t)y * w + x] ? v : src[(size_t)y * w + x];
        }
    }
}

Test(image, very_thin_strokes_are_brought_to_mnist_width)
{
    enum { W = 400 };
    float *src = calloc(W * W, sizeof(float)), dst[PIX];
    cr_assert_not_null(src);
    draw_ring(src, W, W, 200, 200, 120, 170, 1.5); /* a 0 drawn with a hair-thin pen */
    cr_assert_eq(nn_image_normalize(dst, src, W, W), NN_OK);
    double t = stroke_width(dst);
    cr_expect(t >= 1.9 && t <= 3.2, "stroke width %.2f px, MNIST's median is 2.4", t);
    expect_in_unit_range(dst);
    free(src);
}

Test(image, very_heavy_strokes_are_brought_to_mnist_width)
{
    enum { W = 300 };
    float *src = calloc(W * W, sizeof(float)), dst[PIX];
    cr_assert_not_null(src);
    draw_ring(src, W, W, 150, 150, 90, 125, 90); /* a 0 drawn with a marker */
    cr_assert_eq(nn_image_normalize(dst, src, W, W), NN_OK);
    double t = stroke_width(dst);
    cr_expect(t >= 2.0 && t <= 4.0, "stroke width %.2f px", t);
    /* the hole is still there: the centre is empty */
    cr_expect_lt(dst[14 * SIDE + 14], 0.2f, "centre %g", dst[14 * SIDE + 14]);
    free(src);
}

Test(image, strokes_of_ordinary_width_are_left_alone)
{
    enum { W = 300 };
    float *src = calloc(W * W, sizeof(float)), a[PIX], b[PIX];
    cr_assert_not_null(src);
    draw_ring(src, W, W, 150, 150, 90, 125, 22);
    cr_assert_eq(nn_image_normalize(a, src, W, W), NN_OK);
    double t = stroke_width(a);
    cr_expect(t > 1.4 && t < 4.4, "stroke width %.2f px", t);
    /* the same drawing shifted renders the same way: no redrawing step got in */
    memset(src, 0, sizeof(float) * W * W);
    draw_ring(src, W, W, 140, 160, 90, 125, 22);
    cr_assert_eq(nn_image_normalize(b, src, W, W), NN_OK);
    cr_expect_gt(correlation(a, b, PIX), 0.99);
    free(src);
}

Test(image, a_narrow_eight_keeps_its_loops)
{
    enum { W = 200, H = 400 };
    float *src = calloc(W * H, sizeof(float)), dst[PIX];
    cr_assert_not_null(src);
    /* an 8 a quarter as wide as tall: two stacked narrow loops */
    draw_ring(src, W, H, 100, 110, 22, 90, 10);
    draw_ring(src, W, H, 100, 290, 25, 90, 10);
    cr_assert_eq(nn_image_normalize(dst, src, W, H), NN_OK);
    int bw, bh;
    ink_box(dst, SIDE, SIDE, 0.1f, &bw, &bh);
    cr_expect_geq(bw, 8, "width %d of a %d-pixel-tall 8", bw, bh);
    /* across the middle of the upper loop the row crosses ink, gap, ink */
    int y = 9, runs = 0, in = 0;
    for (int x = 0; x < SIDE; x++) {
        int on = dst[y * SIDE + x] > 0.5f;
        runs += on && !in;
        in = on;
    }
    cr_expect_eq(runs, 2, "row %d crosses the loop %d times", y, runs);
    free(src);
}

Test(image, a_narrow_one_stays_narrow)
{
    enum { W = 200, H = 400 };
    float *src = calloc(W * H, sizeof(float)), dst[PIX];
    cr_assert_not_null(src);
    for (int y = 40; y < 360; y++) {
        for (int x = 92; x < 110; x++) {
            src[y * W + x] = 1.0f;
        }
    }
    cr_assert_eq(nn_image_normalize(dst, src, W, H), NN_OK);
    int bw, bh;
    ink_box(dst, SIDE, SIDE, 0.1f, &bw, &bh);
    cr_expect_leq(bw, 3, "a 1 is %d wide", bw);
    free(src);
}
