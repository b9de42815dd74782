/*
 * sets_draw.c - coverage drawing for make-sets: a round anti-aliased pen along polylines, the
 * hand-made stroke skeletons of the ten digits, MNIST digits upscaled smoothly, shapes and font
 * glyphs (stb_truetype). Coverage is combined with max(), so overlapping strokes stay 1.
 */
#include "sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <stb_truetype.h>
#pragma GCC diagnostic pop

#define PI_F 3.14159265358979f

int canvas_init(struct canvas *c, int w, int h)
{
    c->w = w;
    c->h = h;
    c->cov = calloc((size_t)w * (size_t)h, sizeof *c->cov);
    return c->cov ? 0 : -1;
}

void canvas_free(struct canvas *c)
{
    if (!c)
        return;
    free(c->cov);
    c->cov = NULL;
}

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

static void put(struct canvas *c, int x, int y, float v)
{
    float *p = &c->cov[(size_t)y * (size_t)c->w + (size_t)x];
    if (v > *p)
        *p = v;
}

/* ---------------------------------------------------------------------------------------- */
/* The pen                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Coverage of a round pen of radius r along segment a-b at pixel centres: r + 0.5 - distance,
 * clamped, which is a one-pixel anti-aliased edge. */
static void draw_segment(struct canvas *c, float ax, float ay, float bx, float by, float r)
{
    int x0 = (int)floorf(fminf(ax, bx) - r - 1), x1 = (int)ceilf(fmaxf(ax, bx) + r + 1);
    int y0 = (int)floorf(fminf(ay, by) - r - 1), y1 = (int)ceilf(fmaxf(ay, by) + r + 1);
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > c->w - 1 ? c->w - 1 : x1;
    y1 = y1 > c->h - 1 ? c->h - 1 : y1;
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    for (int y = y0; y <= y1; y++) {
        for (int x = x0; x <= x1; x++) {
            float px = (float)x + 0.5f - ax, py = (float)y + 0.5f - ay;
            float t = len2 > 0 ? clampf((px * dx + py * dy) / len2, 0, 1) : 0;
            float ex = px - t * dx, ey = py - t * dy;
            float v = clampf(r + 0.5f - sqrtf(ex * ex + ey * ey), 0, 1);
            if (v > 0)
                put(c, x, y, v);
        }
    }
}

void draw_polyline(struct canvas *c, const float *xy, int n, float pen)
{
    float r = pen * 0.5f;
    if (n == 1)
        draw_segment(c, xy[0], xy[1], xy[0], xy[1], r);
    for (int i = 0; i + 1 < n; i++)
        draw_segment(c, xy[2 * i], xy[2 * i + 1], xy[2 * i + 2], xy[2 * i + 3], r);
}

static void place_map(const struct place *p, float u, float v, float *x, float *y)
{
    float dx = (u - 0.5f) * p->wd + p->slant * (v - 0.5f) * p->ht, dy = (v - 0.5f) * p->ht;
    float cs = cosf(p->angle), sn = sinf(p->angle);
    *x = p->cx + dx * cs - dy * sn;
    *y = p->cy + dx * sn + dy * cs;
}

/* Inverse of place_map: pixel (x, y) to unit (u, v). */
static void place_unmap(const struct place *p, float x, float y, float *u, float *v)
{
    float cs = cosf(p->angle), sn = sinf(p->angle);
    float rx = x - p->cx, ry = y - p->cy;
    float dx = rx * cs + ry * sn, dy = -rx * sn + ry * cs;
    *v = dy / p->ht + 0.5f;
    *u = (dx - p->slant * dy) / p->wd + 0.5f;
}

/* ---------------------------------------------------------------------------------------- */
/* Digit skeletons, in a unit box (u right, v down)                                         */
/* ---------------------------------------------------------------------------------------- */

#define PATH_MAX_POINTS 160

struct path {
    float uv[2 * PATH_MAX_POINTS];
    int n;
};

struct jit {
    struct nn_rng *rng;
    float amount;
};

static float J(struct jit *j)
{
    float g = nn_rng_normal(j->rng);
    return j->amount * clampf(g, -2.5f, 2.5f);
}

static void pt(struct path *p, float u, float v)
{
    if (p->n < PATH_MAX_POINTS) {
        p->uv[2 * p->n] = u;
        p->uv[2 * p->n + 1] = v;
        p->n++;
    }
}

/* Ellipse arc from a0 to a1 degrees (0 = right, 90 = down), 4 degrees a step. */
static void arc(struct path *p, float cu, float cv, float ru, float rv, float a0, float a1)
{
    int steps = (int)ceilf(fabsf(a1 - a0) / 4.0f);
    steps = steps < 2 ? 2 : steps;
    for (int i = 0; i <= steps; i++) {
        float a = (a0 + (a1 - a0) * (float)i / (float)steps) * (PI_F / 180.0f);
        pt(p, cu + ru * cosf(a), cv + rv * sinf(a));
    }
}

/* Fills up to 3 strokes for digit d, jittered; returns the stroke count. */
static int skeleton(struct path s[3], int d, struct jit *j)
{
    memset(s, 0, 3 * sizeof *s);
    switch (d) {
    case 0: arc(&s[0], 0.5f + J(j), 0.5f, 0.44f + J(j), 0.49f, -90 + 10 * J(j), 275); break;
    case 1:
        pt(&s[0], 0.22f + J(j), 0.2f + J(j));
        pt(&s[0], 0.58f + J(j), 0.0f);
        pt(&s[0], 0.55f + J(j), 1.0f);
        break;
    case 2:
        arc(&s[0], 0.5f, 0.28f + J(j), 0.42f + J(j), 0.27f, 195 + 20 * J(j), 385 + 20 * J(j));
        pt(&s[0], 0.06f + J(j), 0.98f + J(j));
        pt(&s[0], 0.96f + J(j), 0.98f + J(j));
        break;
    case 3:
        arc(&s[0], 0.5f + J(j), 0.26f, 0.38f + J(j), 0.25f, 200 + 20 * J(j), 450);
        arc(&s[1], 0.5f + J(j), 0.74f, 0.44f + J(j), 0.26f, 270, 515 + 20 * J(j));
        break;
    case 4: {
        float bar = 0.68f + J(j);
        pt(&s[0], 0.72f + J(j), 1.0f);
        pt(&s[0], 0.70f + J(j), 0.0f);
        pt(&s[0], 0.04f + J(j), bar);
        pt(&s[0], 0.96f + J(j), bar + J(j));
        break;
    }
    case 5:
        pt(&s[0], 0.88f + J(j), 0.0f + J(j));
        pt(&s[0], 0.22f + J(j), 0.0f + J(j));
        pt(&s[0], 0.18f + J(j), 0.45f);
        arc(&s[0], 0.5f + J(j), 0.68f, 0.42f + J(j), 0.32f, 225, 510 + 15 * J(j));
        break;
    case 6:
        arc(&s[0], 0.88f + J(j), 0.72f, 0.78f, 0.72f, 252 + 6 * J(j), 180);
        arc(&s[0], 0.5f + J(j), 0.72f, 0.4f + J(j), 0.28f, 180, 540);
        break;
    case 7: {
        float top = 0.0f + J(j);
        pt(&s[0], 0.04f + J(j), top);
        pt(&s[0], 0.96f + J(j), top);
        pt(&s[0], 0.36f + J(j), 1.0f);
        break;
    }
    case 8:
        arc(&s[0], 0.5f + J(j), 0.25f, 0.32f + J(j), 0.24f, 0, 360);
        arc(&s[1], 0.5f + J(j), 0.735f, 0.42f + J(j), 0.265f, 0, 360);
        break;
    default:
        arc(&s[0], 0.5f + J(j), 0.3f, 0.4f + J(j), 0.3f, 0, 360);
        pt(&s[1], 0.9f, 0.3f);
        pt(&s[1], 0.84f + J(j), 1.0f);
        break;
    }
    return s[2].n ? 3 : s[1].n ? 2 : 1;
}

void draw_digit_strokes(struct canvas *c, int digit, const struct place *p, float pen, float jitter,
                        struct nn_rng *rng)
{
    struct path s[3];
    struct jit j = {rng, jitter};
    int n = skeleton(s, digit % 10, &j);
    for (int k = 0; k < n; k++) {
        float xy[2 * PATH_MAX_POINTS];
        for (int i = 0; i < s[k].n; i++)
            place_map(p, s[k].uv[2 * i], s[k].uv[2 * i + 1], &xy[2 * i], &xy[2 * i + 1]);
        draw_polyline(c, xy, s[k].n, pen);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Images into the canvas: MNIST digits and glyph bitmaps                                   */
/* ---------------------------------------------------------------------------------------- */

static float cubic_w(float t)
{
    /* Catmull-Rom (a = -0.5) */
    t = fabsf(t);
    if (t < 1)
        return (1.5f * t - 2.5f) * t * t + 1;
    if (t < 2)
        return ((-0.5f * t + 2.5f) * t - 4) * t + 2;
    return 0;
}

static float src_at(const float *s, int sw, int sh, int x, int y)
{
    return x < 0 || y < 0 || x >= sw || y >= sh ? 0 : s[y * sw + x];
}

static float sample_bicubic(const float *s, int sw, int sh, float x, float y)
{
    int ix = (int)floorf(x), iy = (int)floorf(y);
    float fx = x - (float)ix, fy = y - (float)iy, acc = 0;
    for (int j = -1; j <= 2; j++) {
        float wy = cubic_w((float)j - fy), row = 0;
        for (int i = -1; i <= 2; i++)
            row += cubic_w((float)i - fx) * src_at(s, sw, sh, ix + i, iy + j);
        acc += wy * row;
    }
    return acc;
}

static float sample_bilinear(const float *s, int sw, int sh, float x, float y)
{
    int ix = (int)floorf(x), iy = (int)floorf(y);
    float fx = x - (float)ix, fy = y - (float)iy;
    return (1 - fy) * ((1 - fx) * src_at(s, sw, sh, ix, iy) + fx * src_at(s, sw, sh, ix + 1, iy)) +
           fy * ((1 - fx) * src_at(s, sw, sh, ix, iy + 1) + fx * src_at(s, sw, sh, ix + 1, iy + 1));
}

/* Maps src (sw x sh, values 0..1) onto p's box; thresh < 0: bilinear as is; else bicubic then
 * a smoothstep of width tw around thresh. */
static void draw_image(struct canvas *c, const float *src, int sw, int sh, const struct place *p,
                       float thresh, float tw)
{
    float bx0 = 1e30f, by0 = 1e30f, bx1 = -1e30f, by1 = -1e30f;
    for (int k = 0; k < 4; k++) {
        float x, y;
        place_map(p, (float)(k & 1), (float)(k >> 1), &x, &y);
        bx0 = fminf(bx0, x), by0 = fminf(by0, y), bx1 = fmaxf(bx1, x), by1 = fmaxf(by1, y);
    }
    int x0 = (int)fmaxf(0, floorf(bx0) - 2), x1 = (int)fminf((float)c->w - 1, ceilf(bx1) + 2);
    int y0 = (int)fmaxf(0, floorf(by0) - 2), y1 = (int)fminf((float)c->h - 1, ceilf(by1) + 2);
    for (int y = y0; y <= y1; y++) {
        for (int x = x0; x <= x1; x++) {
            float u, v;
            place_unmap(p, (float)x + 0.5f, (float)y + 0.5f, &u, &v);
            if (u < -0.1f || v < -0.1f || u > 1.1f || v > 1.1f)
                continue;
            float sx = u * (float)sw - 0.5f, sy = v * (float)sh - 0.5f, val;
            if (thresh < 0) {
                val = clampf(sample_bilinear(src, sw, sh, sx, sy), 0, 1);
            } else {
                float t =
                    clampf((sample_bicubic(src, sw, sh, sx, sy) - (thresh - tw * 0.5f)) / tw, 0, 1);
                val = t * t * (3 - 2 * t);
            }
            if (val > 0)
                put(c, x, y, val);
        }
    }
}

void draw_smooth(struct canvas *c, const float *src, int sw, int sh, const struct place *p)
{
    /* MNIST edges ramp over ~1.5 source pixels; a threshold 1/scale wide makes the upscaled
     * edge ~1.5 output pixels, a pen's edge, at any size */
    float scale = p->ht / (float)sh;
    if (scale <= 3) {
        draw_image(c, src, sw, sh, p, 0.42f, clampf(1.0f / scale, 0.06f, 0.5f));
        return;
    }
    /* Enlarged further, bicubic shows MNIST's pixel grid as ripples along the edges; a light
     * Gaussian (sigma 0.6 source px) first makes them a pen's smooth outline. */
    float *tmp = malloc((size_t)sw * (size_t)sh * sizeof *tmp);
    float *out = malloc((size_t)sw * (size_t)sh * sizeof *out);
    if (!tmp || !out) {
        free(tmp);
        free(out);
        draw_image(c, src, sw, sh, p, 0.42f, clampf(1.0f / scale, 0.06f, 0.5f));
        return;
    }
    float k[5], sum = 0;
    for (int i = -2; i <= 2; i++)
        sum += k[i + 2] = expf(-(float)(i * i) / (2 * 0.6f * 0.6f));
    for (int i = 0; i < 5; i++)
        k[i] /= sum;
    for (int y = 0; y < sh; y++) {
        for (int x = 0; x < sw; x++) {
            float a = 0;
            for (int i = -2; i <= 2; i++)
                a += k[i + 2] * src_at(src, sw, sh, x + i, y);
            tmp[y * sw + x] = a;
        }
    }
    for (int y = 0; y < sh; y++) {
        for (int x = 0; x < sw; x++) {
            float a = 0;
            for (int i = -2; i <= 2; i++)
                a += k[i + 2] * src_at(tmp, sw, sh, x, y + i);
            out[y * sw + x] = a;
        }
    }
    /* the blur lowers a thin stroke's peak: a lower threshold keeps its width */
    draw_image(c, out, sw, sh, p, 0.36f, clampf(1.0f / scale, 0.04f, 0.5f));
    free(tmp);
    free(out);
}

void draw_mnist(struct canvas *c, const uint8_t *img28, const struct place *p)
{
    float src[NN_MNIST_PIXELS];
    for (int i = 0; i < NN_MNIST_PIXELS; i++)
        src[i] = (float)img28[i] / 255.0f;
    draw_smooth(c, src, 28, 28, p);
}

void draw_shape(struct canvas *c, int kind, int filled, const struct place *p, float pen)
{
    static const float square[] = {0, 0, 1, 0, 1, 1, 0, 1, 0, 0};
    static const float tri[] = {0.5f, 0, 1, 1, 0, 1, 0.5f, 0};
    float uv[2 * 66] = {0}, xy[2 * 66] = {0};
    int n = 0;
    switch (kind % 5) {
    case 0: memcpy(uv, square, sizeof square), n = 5; break;
    case 1:
        for (n = 0; n <= 64; n++) {
            uv[2 * n] = 0.5f + 0.5f * cosf(2 * PI_F * (float)n / 64);
            uv[2 * n + 1] = 0.5f + 0.5f * sinf(2 * PI_F * (float)n / 64);
        }
        break;
    case 4: memcpy(uv, tri, sizeof tri), n = 4; break;
    default: { /* X or cross: two strokes, no fill */
        float a[4] = {0, 0, 1, 1}, b[4] = {1, 0, 0, 1};
        if (kind % 5 == 3) {
            float a2[4] = {0.5f, 0, 0.5f, 1}, b2[4] = {0, 0.5f, 1, 0.5f};
            memcpy(a, a2, sizeof a), memcpy(b, b2, sizeof b);
        }
        float w = filled ? pen * 2.5f : pen;
        place_map(p, a[0], a[1], &xy[0], &xy[1]);
        place_map(p, a[2], a[3], &xy[2], &xy[3]);
        draw_polyline(c, xy, 2, w);
        place_map(p, b[0], b[1], &xy[0], &xy[1]);
        place_map(p, b[2], b[3], &xy[2], &xy[3]);
        draw_polyline(c, xy, 2, w);
        return;
    }
    }
    for (int i = 0; i < n; i++)
        place_map(p, uv[2 * i], uv[2 * i + 1], &xy[2 * i], &xy[2 * i + 1]);
    draw_polyline(c, xy, n, pen);
    if (!filled)
        return;
    /* convex fill, 4x4 samples a pixel, in unit space */
    float x0 = 1e30f, y0 = 1e30f, x1 = -1e30f, y1 = -1e30f;
    for (int i = 0; i < n; i++) {
        x0 = fminf(x0, xy[2 * i]), x1 = fmaxf(x1, xy[2 * i]);
        y0 = fminf(y0, xy[2 * i + 1]), y1 = fmaxf(y1, xy[2 * i + 1]);
    }
    int ix0 = (int)fmaxf(0, floorf(x0)), ix1 = (int)fminf((float)c->w - 1, ceilf(x1));
    int iy0 = (int)fmaxf(0, floorf(y0)), iy1 = (int)fminf((float)c->h - 1, ceilf(y1));
    for (int y = iy0; y <= iy1; y++) {
        for (int x = ix0; x <= ix1; x++) {
            int in = 0;
            for (int s = 0; s < 16; s++) {
                float px = (float)x + ((float)(s & 3) + 0.5f) / 4,
                      py = (float)y + ((float)(s >> 2) + 0.5f) / 4;
                int pos = 0, neg = 0;
                for (int i = 0; i + 1 < n; i++) {
                    float cr = (xy[2 * i + 2] - xy[2 * i]) * (py - xy[2 * i + 1]) -
                               (xy[2 * i + 3] - xy[2 * i + 1]) * (px - xy[2 * i]);
                    pos += cr > 0, neg += cr < 0;
                }
                in += !(pos && neg);
            }
            if (in)
                put(c, x, y, (float)in / 16);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Fonts                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static const char *const font_files[] = {
    "DejaVuSans.ttf",         "DejaVuSans-Bold.ttf",          "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",   "DejaVuSansMono.ttf",           "DejaVuSans-Oblique.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSansCondensed-Bold.ttf",
};

int fonts_load(struct fonts *f, const char *dir, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    for (int k = 0; k < 8; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, font_files[k]);
        FILE *fp = fopen(path, "rb");
        long n = -1;
        if (fp && fseek(fp, 0, SEEK_END) == 0)
            n = ftell(fp);
        if (!fp || n <= 0 || fseek(fp, 0, SEEK_SET) != 0) {
            snprintf(err, errlen, "%s: cannot read (install fonts-dejavu-core)", path);
            if (fp)
                fclose(fp);
            goto fail;
        }
        f->data[k] = malloc((size_t)n);
        f->info[k] = calloc(1, sizeof(stbtt_fontinfo));
        f->n = k + 1;
        if (!f->data[k] || !f->info[k] || fread(f->data[k], 1, (size_t)n, fp) != (size_t)n) {
            snprintf(err, errlen, "%s: cannot read", path);
            fclose(fp);
            goto fail;
        }
        fclose(fp);
        if (!stbtt_InitFont(f->info[k], f->data[k], stbtt_GetFontOffsetForIndex(f->data[k], 0))) {
            snprintf(err, errlen, "%s: not a font stb_truetype reads", path);
            goto fail;
        }
    }
    return 0;
fail:
    fonts_free(f);
    return -1;
}

void fonts_free(struct fonts *f)
{
    if (!f)
        return;
    for (int k = 0; k < f->n; k++) {
        free(f->data[k]);
        free(f->info[k]);
    }
    f->n = 0;
}

void draw_glyph(struct canvas *c, const struct fonts *f, int k, int ch, const struct place *p)
{
    const stbtt_fontinfo *info = f->info[k % f->n];
    int x0, y0, x1, y1;
    float scale = stbtt_ScaleForPixelHeight(info, p->ht);
    stbtt_GetCodepointBitmapBox(info, ch, scale, scale, &x0, &y0, &x1, &y1);
    int bw = x1 - x0, bh = y1 - y0;
    if (bw <= 0 || bh <= 0)
        return;
    /* fit the ink box to the place's height */
    scale *= p->ht / (float)bh;
    stbtt_GetCodepointBitmapBox(info, ch, scale, scale, &x0, &y0, &x1, &y1);
    bw = x1 - x0, bh = y1 - y0;
    if (bw <= 0 || bh <= 0)
        return;
    unsigned char *bm = calloc((size_t)bw * (size_t)bh, 1);
    float *src = malloc((size_t)bw * (size_t)bh * sizeof *src);
    if (bm && src) {
        stbtt_MakeCodepointBitmap(info, bm, bw, bh, bw, scale, scale, ch);
        for (int i = 0; i < bw * bh; i++)
            src[i] = (float)bm[i] / 255.0f;
        struct place q = *p;
        q.ht = (float)bh;
        q.wd = (float)bw;
        draw_image(c, src, bw, bh, &q, -1, 0);
    }
    free(bm);
    free(src);
}
