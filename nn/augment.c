/*
 * augment.c - on-the-fly data augmentation for training.
 *
 * Design: every sample gets its own RNG stream seeded from (seed, epoch, index), so batches are
 * assembled in parallel and reproducibly. The distorted digit is then passed through the same
 * MNIST normalisation the server applies to drawings, so the network trains on exactly the
 * distribution it is served.
 */
#include "nn_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int nn_augment_enabled(const struct nn_train_config *cfg)
{
    return cfg->aug_shift > 0.0f || cfg->aug_rotate > 0.0f || cfg->aug_scale > 0.0f ||
           cfg->aug_shear > 0.0f || cfg->aug_elastic > 0.0f || cfg->aug_thickness > 0.0f ||
           cfg->aug_paper > 0.0f;
}

static float sym(struct nn_rng *rng, float a) { return a * (2.0f * nn_rng_uniform(rng) - 1.0f); }

/* Bilinear sample of a rows x cols float image at (y, x); 0 outside. */
static float sample(const float *im, int rows, int cols, float y, float x)
{
    int y0 = (int)floorf(y), x0 = (int)floorf(x);
    float fy = y - (float)y0, fx = x - (float)x0;
    float v = 0.0f;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int yy = y0 + dy, xx = x0 + dx;
            if (yy < 0 || yy >= rows || xx < 0 || xx >= cols)
                continue;
            v += im[yy * cols + xx] * (dy ? fy : 1.0f - fy) * (dx ? fx : 1.0f - fx);
        }
    return v;
}

/*
 * Elastic distortion (Simard, Steinkraus & Platt 2003): a random displacement field, uniform in
 * [-1,1] per pixel, smoothed by a Gaussian of width sigma and scaled by alpha, then applied by
 * bilinear resampling. dst and src are rows x cols.
 */
/* One smoothed random displacement component: uniform [-1,1] per pixel, separable Gaussian
 * blur with zero padding (kernel k of radius R), scaled by alpha. */
static void displacement(float *d, float *tmp, int rows, int cols, const float *k, int R,
                         float alpha, struct nn_rng *rng)
{
    for (int i = 0; i < rows * cols; i++)
        d[i] = 2.0f * nn_rng_uniform(rng) - 1.0f;
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++) {
            float acc = 0.0f;
            for (int t = -R; t <= R; t++)
                if (x + t >= 0 && x + t < cols)
                    acc += k[t + R] * d[y * cols + x + t];
            tmp[y * cols + x] = acc;
        }
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++) {
            float acc = 0.0f;
            for (int t = -R; t <= R; t++)
                if (y + t >= 0 && y + t < rows)
                    acc += k[t + R] * tmp[(y + t) * cols + x];
            d[y * cols + x] = alpha * acc;
        }
}

static void elastic(float *dst, const float *src, int rows, int cols, float alpha, float sigma,
                    struct nn_rng *rng)
{
    enum { MAXPIX = 64 * 64, R = 12 };
    float dx[MAXPIX], dy[MAXPIX], tmp[MAXPIX], k[2 * R + 1];
    float ksum = 0.0f;
    for (int i = -R; i <= R; i++)
        ksum += k[i + R] = expf(-(float)(i * i) / (2.0f * sigma * sigma));
    for (int i = 0; i <= 2 * R; i++)
        k[i] /= ksum;
    displacement(dx, tmp, rows, cols, k, R, alpha, rng);
    displacement(dy, tmp, rows, cols, k, R, alpha, rng);
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++)
            dst[y * cols + x] =
                sample(src, rows, cols, (float)y + dy[y * cols + x], (float)x + dx[y * cols + x]);
}

/* 3x3 grey dilation (thicken) or erosion (thin). */
static void morph(float *dst, const float *src, int rows, int cols, int thicken)
{
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++) {
            float v = src[y * cols + x];
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    float s =
                        (yy < 0 || yy >= rows || xx < 0 || xx >= cols) ? 0.0f : src[yy * cols + xx];
                    if (abs(dy) + abs(dx) == 2)
                        s *= 0.5f; /* softer diagonal: a rounder pen */
                    v = thicken ? fmaxf(v, s)
                                : fminf(v, s + (abs(dy) + abs(dx) == 2 ? 0.5f : 0.0f));
                }
            dst[y * cols + x] = v;
        }
}

/*
 * The 28x28 ink image b printed at twice its size (bilinear) on synthetic paper and read back
 * through nn_image_from_pixels8 into b: paper level 0.75-1 with a tint, a light gradient of
 * up to 15% in a random direction, ink black, blue or pencil grey at 0-55% of the paper's
 * level, sensor noise up to 3%, and on a third a thin ruling. What the server does to a
 * photo, so that the network learns what the ink function leaves behind.
 */
static void print_on_paper(float *b, struct nn_rng *rng)
{
    enum { S = 2 * NN_MNIST_SIDE };
    uint8_t px[S * S * 3];
    float ink[S * S];
    float paper = 0.75f + 0.25f * nn_rng_uniform(rng), tint[3], inkc[3];
    for (int c = 0; c < 3; c++) {
        tint[c] = paper * (0.85f + 0.15f * nn_rng_uniform(rng));
    }
    float level = 0.55f * nn_rng_uniform(rng), kind = nn_rng_uniform(rng);
    for (int c = 0; c < 3; c++) {
        inkc[c] = kind < 0.2f ? level * (c == 2 ? 2.0f : 0.6f) : level; /* blue or grey */
    }
    float gx = sym(rng, 0.15f), gy = sym(rng, 0.15f), noise = 0.03f * nn_rng_uniform(rng);
    int ruling = nn_rng_uniform(rng) < 0.33f ? 4 + (int)nn_rng_below(rng, S - 8) : -1;
    for (int y = 0; y < S; y++) {
        for (int x = 0; x < S; x++) {
            float a = sample(b, NN_MNIST_SIDE, NN_MNIST_SIDE, (y + 0.5f) / 2 - 0.5f,
                             (x + 0.5f) / 2 - 0.5f);
            a = a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a;
            float light = 1.0f + gx * (x / (float)S - 0.5f) + gy * (y / (float)S - 0.5f);
            float line = y == ruling ? 0.3f : 0.0f;
            for (int c = 0; c < 3; c++) {
                float p = tint[c] * (1.0f - line * (c == 2 ? 0.2f : 1.0f));
                float v = light * (p * (1.0f - a) + inkc[c] * a) + noise * nn_rng_normal(rng);
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                px[(y * S + x) * 3 + c] = (uint8_t)(v * 255.0f + 0.5f);
            }
        }
    }
    float out[NN_MNIST_PIXELS];
    if (nn_image_from_pixels8(ink, px, S, S, 3) == NN_OK &&
        nn_image_normalize(out, ink, S, S) == NN_OK) {
        memcpy(b, out, sizeof(out));
    }
}

void nn_augment_image(float *dst, const uint8_t *src, int rows, int cols,
                      const struct nn_train_config *cfg, uint64_t seed)
{
    enum { MAXPIX = 64 * 64 };
    float a[MAXPIX], b[MAXPIX];
    const int n = rows * cols;
    struct nn_rng rng;
    nn_rng_seed(&rng, seed);
    /* drawn only when asked for, so that runs without it keep their random streams */
    if (n > MAXPIX || (cfg->aug_clean > 0.0f && nn_rng_uniform(&rng) < cfg->aug_clean)) {
        nn_bytes_to_float(dst, src, (size_t)n);
        return;
    }
    nn_bytes_to_float(a, src, (size_t)n);

    /* Inverse-mapped affine about the centre: out(p) = in(A^-1 (p - c - t) + c). */
    float ang = sym(&rng, cfg->aug_rotate) * 0.017453292f;
    float sc = 1.0f + sym(&rng, cfg->aug_scale);
    float asp = 1.0f + sym(&rng, cfg->aug_scale * 0.5f);
    float sh = sym(&rng, cfg->aug_shear);
    float tx = sym(&rng, cfg->aug_shift), ty = sym(&rng, cfg->aug_shift);
    float sx = sc * asp, sy = sc / asp;
    /* forward A = R * Shear * S; build the inverse directly */
    float ca = cosf(ang), sa = sinf(ang);
    float f00 = ca * sx, f01 = ca * sh * sy - sa * sy, f10 = sa * sx, f11 = sa * sh * sy + ca * sy;
    float det = f00 * f11 - f01 * f10;
    float i00 = f11 / det, i01 = -f01 / det, i10 = -f10 / det, i11 = f00 / det;
    float cy = (float)rows * 0.5f, cx = (float)cols * 0.5f;
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++) {
            float px = (float)x + 0.5f - cx - tx, py = (float)y + 0.5f - cy - ty;
            float ux = i00 * px + i01 * py + cx - 0.5f, uy = i10 * px + i11 * py + cy - 0.5f;
            b[y * cols + x] = sample(a, rows, cols, uy, ux);
        }

    if (cfg->aug_elastic > 0.0f) {
        elastic(a, b, rows, cols, cfg->aug_elastic, 4.0f, &rng);
        memcpy(b, a, sizeof(float) * (size_t)n);
    }
    if (cfg->aug_thickness > 0.0f && nn_rng_uniform(&rng) < cfg->aug_thickness) {
        morph(a, b, rows, cols, nn_rng_uniform(&rng) < 0.5f);
        memcpy(b, a, sizeof(float) * (size_t)n);
    }
    int square = rows == NN_MNIST_SIDE && cols == NN_MNIST_SIDE;
    if (square && cfg->aug_paper > 0.0f && nn_rng_uniform(&rng) < cfg->aug_paper) {
        print_on_paper(b, &rng); /* normalised on the way back */
        memcpy(dst, b, sizeof(float) * (size_t)n);
        return;
    }
    if (!square || nn_image_normalize(dst, b, cols, rows))
        memcpy(dst, b, sizeof(float) * (size_t)n);
}

int nn_evaluate_robust(const nn_model *model, const struct nn_dataset *ds, uint64_t seed,
                       double *accuracy)
{
    struct nn_train_config cfg;
    nn_train_config_default(&cfg);
    cfg.aug_shift = 4.0f;
    cfg.aug_rotate = 15.0f;
    cfg.aug_scale = 0.3f;
    cfg.aug_thickness = 0.5f;
    const size_t in = (size_t)ds->rows * ds->cols;
    const int classes = nn_model_classes(model);
    size_t correct = 0;
    float probs[NN_OUTPUTS_MAX];
    nn_workspace *ws = NULL;
    if (in != (size_t)nn_model_input_size(model) || classes > NN_OUTPUTS_MAX)
        return NN_EINVAL;
    float *x = malloc(in * sizeof *x);
    if (!x || nn_workspace_new(&ws, model, 1)) {
        free(x);
        return NN_ENOMEM;
    }
    for (size_t i = 0; i < ds->n; i++) {
        nn_augment_image(x, ds->images + i * in, ds->rows, ds->cols, &cfg, nn_hash3(seed, 1, i));
        nn_model_predict(model, x, probs, ws);
        /* the most likely digit, as nn_evaluate scores digits */
        correct += nn_argmax(probs, classes < 10 ? classes : 10) == ds->labels[i];
    }
    nn_workspace_free(ws);
    free(x);
    *accuracy = ds->n ? (double)correct / (double)ds->n : 0.0;
    return NN_OK;
}
