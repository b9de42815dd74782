/*
 * sets_paper.c - turns a coverage canvas into a photo or scan: paper colour and grain, ruled or
 * squared lines, ink (pen, pencil, chalk), specks, illumination gradient and shadow, blur and
 * sensor noise, in that order (lines and ink are on the paper; light falls on all of it; the
 * camera blurs and adds noise last).
 */
#include "sets.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

static float smooth01(float t)
{
    t = clampf(t, 0, 1);
    return t * t * (3 - 2 * t);
}

/* Value noise in [-1,1]: hashed lattice every `cell` px, bilinear between. */
static float lattice(uint64_t seed, int x, int y)
{
    return (float)(nn_hash3(seed, (uint64_t)(uint32_t)x, (uint64_t)(uint32_t)y) >> 40) *
               (2.0f / 16777216.0f) -
           1.0f;
}

static float value_noise(uint64_t seed, float x, float y, float cell)
{
    float fx = x / cell, fy = y / cell;
    int ix = (int)floorf(fx), iy = (int)floorf(fy);
    float tx = smooth01(fx - (float)ix), ty = smooth01(fy - (float)iy);
    float a = lattice(seed, ix, iy), b = lattice(seed, ix + 1, iy);
    float c = lattice(seed, ix, iy + 1), d = lattice(seed, ix + 1, iy + 1);
    return (1 - ty) * ((1 - tx) * a + tx * b) + ty * ((1 - tx) * c + tx * d);
}

/* Coverage of a line of width lw at distance d from its centre. */
static float line_cov(float d, float lw) { return clampf(lw * 0.5f + 0.5f - fabsf(d), 0, 1); }

static float grid_dist(float x, float offset, float spacing)
{
    float t = fmodf(x - offset, spacing);
    if (t < 0)
        t += spacing;
    return fminf(t, spacing - t);
}

/* Separable Gaussian blur of an interleaved 3-channel float image, in place. */
static int blur3(float *img, int w, int h, float sigma)
{
    int r = (int)ceilf(3 * sigma);
    if (r < 1)
        return 0;
    float *k = malloc((size_t)(2 * r + 1) * sizeof *k);
    int n = w > h ? w : h;
    float *line = malloc((size_t)n * 3 * sizeof *line);
    if (!k || !line) {
        free(k);
        free(line);
        return -1;
    }
    float sum = 0;
    for (int i = -r; i <= r; i++)
        sum += k[i + r] = expf(-(float)(i * i) / (2 * sigma * sigma));
    for (int i = 0; i <= 2 * r; i++)
        k[i] /= sum;
    for (int pass = 0; pass < 2; pass++) {
        int len = pass ? h : w, count = pass ? w : h;
        size_t step = pass ? (size_t)w * 3 : 3;
        for (int j = 0; j < count; j++) {
            float *base = pass ? img + (size_t)j * 3 : img + (size_t)j * (size_t)w * 3;
            for (int i = 0; i < len; i++)
                memcpy(&line[i * 3], base + (size_t)i * step, 3 * sizeof *line);
            for (int i = 0; i < len; i++) {
                float acc[3] = {0, 0, 0};
                for (int t = -r; t <= r; t++) {
                    int q = i + t;
                    q = q < 0 ? 0 : q >= len ? len - 1 : q;
                    for (int ch = 0; ch < 3; ch++)
                        acc[ch] += k[t + r] * line[q * 3 + ch];
                }
                memcpy(base + (size_t)i * step, acc, sizeof acc);
            }
        }
    }
    free(k);
    free(line);
    return 0;
}

/* Uniform noise with the variance of a unit normal, from one 64-bit draw (fast enough for
 * 12-megapixel images). */
static void noise3(struct nn_rng *rng, float out[3])
{
    uint64_t r = nn_rng_next(rng);
    for (int ch = 0; ch < 3; ch++)
        out[ch] = ((float)((r >> (ch * 21)) & 0x1fffff) * (1.0f / 2097152.0f) - 0.5f) * 3.4641f;
}

int scene_render(uint8_t *rgb, const struct canvas *c, const struct scene *s, struct nn_rng *rng)
{
    int w = c->w, h = c->h;
    size_t n = (size_t)w * (size_t)h;
    float *img = malloc(n * 3 * sizeof *img);
    float *speck = s->specks > 0 ? calloc(n, sizeof *speck) : NULL;
    if (!img || (s->specks > 0 && !speck)) {
        free(img);
        free(speck);
        return -1;
    }
    uint64_t seed_paper = nn_rng_next(rng), seed_ink = nn_rng_next(rng);

    if (speck) {
        /* dots placed only where no ink is within 6% of the image's side */
        struct canvas sc = {w, h, speck};
        int placed = 0, tries = 0, gap = (int)(0.06f * (float)(w < h ? w : h)) + 2;
        while (placed < s->specks && tries++ < s->specks * 50) {
            int x = (int)nn_rng_below(rng, (uint32_t)w), y = (int)nn_rng_below(rng, (uint32_t)h);
            int clear = 1;
            for (int dy = -gap; dy <= gap && clear; dy += 2) {
                for (int dx = -gap; dx <= gap && clear; dx += 2) {
                    int xx = x + dx, yy = y + dy;
                    if (xx >= 0 && yy >= 0 && xx < w && yy < h && c->cov[(size_t)yy * w + xx] > 0)
                        clear = 0;
                }
            }
            if (!clear)
                continue;
            float xy[2] = {(float)x + nn_rng_uniform(rng), (float)y + nn_rng_uniform(rng)};
            draw_polyline(&sc, xy, 1, 1.0f + 3.0f * nn_rng_uniform(rng) * nn_rng_uniform(rng));
            placed++;
        }
    }

    float ca = cosf(s->grad_angle), sa = sinf(s->grad_angle);
    float cell = 2.0f + (float)(w > h ? w : h) / 400.0f;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            float fx = (float)x + 0.5f, fy = (float)y + 0.5f, p[3];
            float grain = s->texture > 0 ? value_noise(seed_paper, fx, fy, cell) * 0.7f +
                                               lattice(seed_paper + 1, x, y) * 0.3f
                                         : 0;
            for (int ch = 0; ch < 3; ch++)
                p[ch] = s->paper[ch] * (1 + s->texture * grain);
            if (s->ruled > 0) {
                float lc = line_cov(grid_dist(fy, s->ruled_offset, s->ruled), s->line_width);
                static const float blue[3] = {0.55f, 0.72f, 0.95f};
                for (int ch = 0; ch < 3; ch++)
                    p[ch] *= 1 - lc * (1 - blue[ch]);
                float mc = line_cov(fx - 0.12f * (float)w, s->line_width * 1.2f);
                static const float red[3] = {0.95f, 0.45f, 0.45f};
                for (int ch = 0; ch < 3; ch++)
                    p[ch] *= 1 - mc * (1 - red[ch]);
            }
            if (s->squared > 0) {
                float lc =
                    fmaxf(line_cov(grid_dist(fy, s->ruled_offset, s->squared), s->line_width),
                          line_cov(grid_dist(fx, s->ruled_offset, s->squared), s->line_width));
                static const float grid[3] = {0.62f, 0.72f, 0.85f};
                for (int ch = 0; ch < 3; ch++)
                    p[ch] *= 1 - lc * (1 - grid[ch]);
            }
            float cov = c->cov[i];
            if (cov > 0 && s->ink_kind != INK_PEN) {
                /* graphite and chalk leave the paper's grain showing through the stroke */
                float t =
                    value_noise(seed_ink, fx, fy, 1.5f) * 0.6f + lattice(seed_ink + 1, x, y) * 0.4f;
                cov *= s->ink_kind == INK_PENCIL ? 0.7f + 0.3f * t : 0.75f + 0.25f * t;
                cov = clampf(cov, 0, 1);
            }
            for (int ch = 0; ch < 3; ch++)
                p[ch] = p[ch] * (1 - cov) + s->ink[ch] * cov;
            if (speck && speck[i] > 0) {
                for (int ch = 0; ch < 3; ch++)
                    p[ch] = p[ch] * (1 - speck[i]) + 0.18f * speck[i];
            }
            float light = 1;
            if (s->grad_l != 1 || s->grad_r != 1) {
                float t = ((fx / (float)w - 0.5f) * ca + (fy / (float)h - 0.5f) * sa) + 0.5f;
                light = s->grad_l + (s->grad_r - s->grad_l) * clampf(t, 0, 1);
            }
            if (s->shadow > 0) {
                float d = (fx - s->shadow_x0) * s->shadow_nx + (fy - s->shadow_y0) * s->shadow_ny;
                float f = smooth01(d / (2 * s->shadow_soft) + 0.5f);
                light *= 1 - (1 - s->shadow) * f;
            }
            for (int ch = 0; ch < 3; ch++)
                img[i * 3 + ch] = p[ch] * light;
        }
    }
    free(speck);
    if (s->blur > 0.05f && blur3(img, w, h, s->blur) != 0) {
        free(img);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        float e[3] = {0, 0, 0};
        if (s->noise > 0)
            noise3(rng, e);
        for (int ch = 0; ch < 3; ch++) {
            float v = clampf(img[i * 3 + ch] + s->noise * e[ch], 0, 1);
            rgb[i * 3 + ch] = (uint8_t)(v * 255.0f + 0.5f);
        }
    }
    free(img);
    return 0;
}
