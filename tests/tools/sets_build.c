/*
 * sets_build.c - the evaluation sets of make-sets: paper (single MNIST digits photographed on
 * paper), numbers (2-8 MNIST digits side by side) and nondigits (letters, scribbles, shapes,
 * noise). Each item draws its own randomness from nn_hash3(seed, set, item), so items can be
 * made in parallel and the output does not depend on the thread count. Each set is a folder
 * with labels.tsv (file, label) and conditions.tsv (how each item was made).
 */
#include "sets.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SET_PAPER = 1, SET_NUMBERS = 2, SET_NONDIGITS = 3 };

#define PI_F 3.14159265358979f
#define BIG_W 4032
#define BIG_H 3024

/* One item's outcome: its file name, label and condition line, kept for the TSV files. */
struct item {
    char file[32];
    char label[16];
    char cond[160];
};

static float uniform(struct nn_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * nn_rng_uniform(r);
}

static float log_uniform(struct nn_rng *r, float lo, float hi)
{
    return expf(uniform(r, logf(lo), logf(hi)));
}

static void set3(float *v, float r, float g, float b) { v[0] = r, v[1] = g, v[2] = b; }

/* ---------------------------------------------------------------------------------------- */
/* Paper                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static const char *const paper_names[] = {"grey", "cream",  "white", "blue",
                                          "pink", "yellow", "green"};
static const char *const ink_names[] = {"black", "blue", "blueblack", "pencil"};

/* A random photo of paper for an image of w x h whose ink is about ink_h px tall; lines: 0 no
 * ruled or squared lines, 1 ruled or squared (half each). Writes "paper ink lines shadow" to
 * desc. */
static void random_paper(struct scene *s, struct nn_rng *r, int w, int h, float ink_h, int lines,
                         char *desc, size_t desclen)
{
    memset(s, 0, sizeof *s);
    int paper = (int)nn_rng_below(r, 7), ink = (int)nn_rng_below(r, 4);
    float level = uniform(r, 0.86f, 0.98f);
    switch (paper) {
    case 0: level = uniform(r, 0.78f, 0.9f), set3(s->paper, level, level, level * 0.99f); break;
    case 1: set3(s->paper, level, level * 0.95f, level * uniform(r, 0.78f, 0.86f)); break;
    case 2: set3(s->paper, level, level, level); break;
    case 3: set3(s->paper, level * 0.8f, level * 0.9f, level); break;
    case 4: set3(s->paper, level, level * 0.83f, level * 0.87f); break;
    case 5: set3(s->paper, level, level * 0.96f, level * 0.62f); break;
    default: set3(s->paper, level * 0.85f, level, level * 0.85f); break;
    }
    float dark = uniform(r, 0.03f, 0.2f);
    switch (ink) {
    case 0: set3(s->ink, dark, dark, dark); break;
    case 1:
        set3(s->ink, uniform(r, 0.1f, 0.2f), uniform(r, 0.18f, 0.3f), uniform(r, 0.55f, 0.8f));
        break;
    case 2: set3(s->ink, dark, dark * 1.1f, dark + 0.12f); break;
    default:
        s->ink_kind = INK_PENCIL;
        dark = uniform(r, 0.3f, 0.55f);
        set3(s->ink, dark, dark, dark * 1.04f);
        break;
    }
    int side = w < h ? w : h, big = (w > h ? w : h) > 1500;
    s->texture = uniform(r, 0, 0.03f);
    s->noise = uniform(r, 0.003f, 0.02f);
    s->blur = uniform(r, 0, 1.2f) * (big ? 2.5f : 1.0f);
    s->grad_l = s->grad_r = 1;
    if (nn_rng_uniform(r) < 0.7f) {
        float a = uniform(r, 0.03f, 0.3f);
        s->grad_l = 1 - a;
        s->grad_angle = uniform(r, 0, 2 * PI_F);
    }
    int shadow = nn_rng_uniform(r) < 0.25f;
    if (shadow) {
        float t = uniform(r, 0, 2 * PI_F);
        s->shadow = uniform(r, 0.5f, 0.85f);
        s->shadow_x0 = uniform(r, 0.2f, 0.8f) * (float)w;
        s->shadow_y0 = uniform(r, 0.2f, 0.8f) * (float)h;
        s->shadow_nx = cosf(t), s->shadow_ny = sinf(t);
        s->shadow_soft = uniform(r, 0.01f, 0.12f) * (float)side + 1;
    }
    const char *line_kind = "none";
    if (lines) {
        float spacing = ink_h / uniform(r, 1.3f, 2.5f);
        s->line_width = fmaxf(1.0f, uniform(r, 0.8f, 1.6f) * (float)side / 400.0f);
        s->ruled_offset = uniform(r, 0, spacing);
        if (nn_rng_uniform(r) < 0.5f) {
            s->ruled = spacing;
            line_kind = "ruled";
        } else {
            s->squared = spacing * 0.6f;
            line_kind = "squared";
        }
    }
    snprintf(desc, desclen, "%s\t%s\t%s\t%d", paper_names[paper], ink_names[ink], line_kind,
             shadow);
}

static int paper_item(struct item *it, const struct set_opts *o, const struct nn_dataset *ds,
                      size_t i, const char *dir, char *err, size_t errlen)
{
    size_t src = o->first + i;
    struct nn_rng r;
    nn_rng_seed(&r, nn_hash3(o->seed, SET_PAPER, src));
    int big = o->big_every > 0 && (int)(i % (size_t)o->big_every) == o->big_every / 2;
    int w, h;
    if (big) {
        w = BIG_W, h = BIG_H;
    } else {
        static const float aspects[] = {4.0f / 3, 3.0f / 2, 1.0f, 16.0f / 9, 5.0f / 4};
        float longside = log_uniform(&r, 100, 1200), a = aspects[nn_rng_below(&r, 5)];
        w = (int)longside, h = (int)fmaxf(60, longside / a);
    }
    if (nn_rng_uniform(&r) < 0.5f) {
        int t = w;
        w = h, h = t;
    }
    int side = w < h ? w : h;
    /* the digit's ink is ~20 of MNIST's 28 px: the box is 1.4x the ink height */
    float ink_h =
        big ? uniform(&r, 0.15f, 0.4f) * (float)side : uniform(&r, 0.3f, 0.75f) * (float)side;
    float box = ink_h * 1.4f;
    float room_x = fmaxf(0, (float)w - box) * 0.45f, room_y = fmaxf(0, (float)h - box) * 0.45f;
    struct place p = {0.5f * (float)w + uniform(&r, -room_x, room_x),
                      0.5f * (float)h + uniform(&r, -room_y, room_y),
                      box,
                      box,
                      uniform(&r, -10, 10) * (PI_F / 180.0f),
                      0};
    int lines = nn_rng_uniform(&r) < 1.0f / 3;
    int quality = 50 + (int)nn_rng_below(&r, 46);
    int orientation = i % 3 == 0 ? 2 + (int)((i / 3) % 7) : 1;
    struct scene s;
    char desc[96];
    random_paper(&s, &r, w, h, ink_h, lines, desc, sizeof desc);

    struct canvas c = {0};
    uint8_t *rgb = NULL;
    int rc = -1;
    if (canvas_init(&c, w, h) != 0 || !(rgb = malloc((size_t)w * (size_t)h * 3))) {
        snprintf(err, errlen, "paper: out of memory for %dx%d", w, h);
        goto done;
    }
    draw_mnist(&c, ds->images + src * NN_MNIST_PIXELS, &p);
    if (scene_render(rgb, &c, &s, &r) != 0) {
        snprintf(err, errlen, "paper: out of memory for %dx%d", w, h);
        goto done;
    }
    snprintf(it->file, sizeof it->file, "%05zu.jpg", i);
    snprintf(it->label, sizeof it->label, "%d", ds->labels[src]);
    snprintf(it->cond, sizeof it->cond, "%zu\t%dx%d\t%d\t%d\t%s", src, w, h, quality, orientation,
             desc);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, it->file);
    rc = write_jpeg(path, rgb, w, h, 3, quality, orientation, err, errlen);
done:
    canvas_free(&c);
    free(rgb);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Numbers                                                                                  */
/* ---------------------------------------------------------------------------------------- */

#define NUM_MAX 8
#define NUM_ROWS 34 /* 28 + room for the baseline jitter */

/* Per-row leftmost and rightmost ink column of a 28x28 digit (-1 where the row is empty). */
static void ink_rows(const uint8_t *img, int left[28], int right[28])
{
    for (int y = 0; y < 28; y++) {
        left[y] = right[y] = -1;
        for (int x = 0; x < 28; x++) {
            if (img[y * 28 + x] > 40) {
                if (left[y] < 0)
                    left[y] = x;
                right[y] = x;
            }
        }
    }
}

static int number_item(struct item *it, const struct set_opts *o, const struct nn_dataset *ds,
                       size_t range, size_t i, const char *dir, char *err, size_t errlen)
{
    struct nn_rng r;
    nn_rng_seed(&r, nn_hash3(o->seed, SET_NUMBERS, i));
    int n = 2 + (int)nn_rng_below(&r, NUM_MAX - 1);
    int touching = i % 8 < 2, paper = i % 2 == 0;
    const uint8_t *img[NUM_MAX];
    int xoff[NUM_MAX], yoff[NUM_MAX], pairs = 0;
    int left[NUM_MAX][28], right[NUM_MAX][28];
    for (int k = 0; k < n; k++) {
        size_t src = o->first + nn_rng_below(&r, (uint32_t)range);
        img[k] = ds->images + src * NN_MNIST_PIXELS;
        it->label[k] = (char)('0' + ds->labels[src]);
        ink_rows(img[k], left[k], right[k]);
        yoff[k] = 3 + (int)nn_rng_below(&r, 5) - 2;
    }
    it->label[n] = '\0';
    /* place digit k so that its ink starts a gap after digit k-1's, or, for touching pairs,
     * overlaps it by 1-3 px in the row where they come closest */
    int cursor = 4;
    for (int k = 0; k < n; k++) {
        int l0 = 28, r0 = -1;
        for (int y = 0; y < 28; y++) {
            if (left[k][y] >= 0 && left[k][y] < l0)
                l0 = left[k][y];
            if (right[k][y] > r0)
                r0 = right[k][y];
        }
        if (k == 0) {
            xoff[k] = cursor - l0;
        } else if (touching && (pairs == 0 || nn_rng_uniform(&r) < 0.5f)) {
            int overlap = 1 + (int)nn_rng_below(&r, 3), need = -1000;
            for (int y = 0; y < NUM_ROWS; y++) {
                int yp = y - yoff[k - 1], yk = y - yoff[k];
                if (yp < 0 || yp >= 28 || yk < 0 || yk >= 28 || right[k - 1][yp] < 0 ||
                    left[k][yk] < 0)
                    continue;
                int s = xoff[k - 1] + right[k - 1][yp] - left[k][yk] + 1 - overlap;
                if (s > need)
                    need = s;
            }
            xoff[k] = need > -1000 ? need : cursor - l0 - overlap;
            pairs++;
        } else {
            xoff[k] = cursor + 2 + (int)nn_rng_below(&r, 9) - l0;
        }
        cursor = xoff[k] + r0 + 1;
    }
    int mw = cursor + 4;
    float *map = calloc((size_t)mw * NUM_ROWS, sizeof *map);
    if (!map) {
        snprintf(err, errlen, "numbers: out of memory");
        return -1;
    }
    for (int k = 0; k < n; k++) {
        for (int y = 0; y < 28; y++) {
            for (int x = 0; x < 28; x++) {
                int mx = x + xoff[k], my = y + yoff[k];
                float v = (float)img[k][y * 28 + x] / 255.0f, *d = &map[my * mw + mx];
                if (mx >= 0 && mx < mw && v > *d)
                    *d = v;
            }
        }
    }
    float hpx = log_uniform(&r, 60, 360), scale = hpx * uniform(&r, 0.5f, 0.8f) / NUM_ROWS;
    int h = (int)hpx, w = (int)((float)mw * scale + uniform(&r, 0.1f, 0.4f) * hpx);
    struct place p = {0.5f * (float)w + uniform(&r, -0.05f, 0.05f) * (float)w,
                      0.5f * (float)h + uniform(&r, -0.05f, 0.05f) * (float)h,
                      (float)mw * scale,
                      NUM_ROWS * scale,
                      paper ? uniform(&r, -4, 4) * (PI_F / 180.0f) : 0,
                      uniform(&r, -0.25f, 0.25f)};
    struct canvas c = {0};
    uint8_t *rgb = NULL;
    int rc = -1;
    if (canvas_init(&c, w, h) != 0 || !(rgb = malloc((size_t)w * (size_t)h * 3))) {
        snprintf(err, errlen, "numbers: out of memory");
        goto done;
    }
    draw_smooth(&c, map, mw, NUM_ROWS, &p);
    char path[4096];
    const char *style;
    if (paper) {
        struct scene s;
        char desc[96];
        random_paper(&s, &r, w, h, 20 * scale, nn_rng_uniform(&r) < 1.0f / 3, desc, sizeof desc);
        if (scene_render(rgb, &c, &s, &r) != 0) {
            snprintf(err, errlen, "numbers: out of memory");
            goto done;
        }
        int quality = 50 + (int)nn_rng_below(&r, 46);
        snprintf(it->file, sizeof it->file, "%05zu.jpg", i);
        snprintf(path, sizeof path, "%s/%s", dir, it->file);
        if (write_jpeg(path, rgb, w, h, 3, quality, 1, err, errlen) != 0)
            goto done;
        style = "paper";
    } else {
        int dark = nn_rng_uniform(&r) < 0.5f; /* white on black (MNIST's polarity) */
        for (size_t q = 0; q < (size_t)w * (size_t)h; q++) {
            float v = dark ? c.cov[q] : 1 - c.cov[q];
            rgb[q] = (uint8_t)(v * 255.0f + 0.5f);
        }
        snprintf(it->file, sizeof it->file, "%05zu.png", i);
        snprintf(path, sizeof path, "%s/%s", dir, it->file);
        if (write_png(path, rgb, w, h, 1, err, errlen) != 0)
            goto done;
        style = dark ? "white_on_black" : "black_on_white";
    }
    snprintf(it->cond, sizeof it->cond, "%dx%d\t%s\t%d\t%d", w, h, style, n, pairs);
    rc = 0;
done:
    free(map);
    canvas_free(&c);
    free(rgb);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Non-digits                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* O, o, I and l are left out: in these fonts they are drawn as a 0 or a 1. */
static const char letters[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";

static void draw_scribble(struct canvas *c, struct nn_rng *r, float pen)
{
    float ctrl[2 * 10], xy[2 * 400];
    int m = 4 + (int)nn_rng_below(r, 6), n = 0;
    for (int k = 0; k < m; k++) {
        ctrl[2 * k] = uniform(r, 0.15f, 0.85f) * (float)c->w;
        ctrl[2 * k + 1] = uniform(r, 0.15f, 0.85f) * (float)c->h;
    }
    /* Catmull-Rom through the points, 30 samples a span */
    for (int k = 0; k + 1 < m; k++) {
        int a = k > 0 ? k - 1 : 0, d = k + 2 < m ? k + 2 : m - 1;
        for (int t = 0; t < 30; t++) {
            float u = (float)t / 30, u2 = u * u, u3 = u2 * u;
            for (int e = 0; e < 2; e++) {
                float p0 = ctrl[2 * a + e], p1 = ctrl[2 * k + e], p2 = ctrl[2 * (k + 1) + e],
                      p3 = ctrl[2 * d + e];
                xy[2 * n + e] =
                    0.5f * (2 * p1 + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u2 +
                            (-p0 + 3 * p1 - 3 * p2 + p3) * u3);
            }
            n++;
        }
    }
    draw_polyline(c, xy, n, pen);
}

static int nondigit_item(struct item *it, const struct set_opts *o, const struct fonts *f, size_t i,
                         const char *dir, char *err, size_t errlen)
{
    struct nn_rng r;
    nn_rng_seed(&r, nn_hash3(o->seed, SET_NONDIGITS, i));
    float side = log_uniform(&r, 100, 600);
    int w = (int)(side * uniform(&r, 0.8f, 1.25f)), h = (int)side;
    int bucket = (int)(i % 20), paper = i % 3 == 0;
    float s = (float)(w < h ? w : h), pen = s * uniform(&r, 0.04f, 0.12f);
    struct canvas c = {0};
    uint8_t *rgb = NULL;
    int rc = -1;
    char what[48];
    if (canvas_init(&c, w, h) != 0 || !(rgb = malloc((size_t)w * (size_t)h * 3))) {
        snprintf(err, errlen, "nondigits: out of memory");
        goto done;
    }
    struct place p = {0.5f * (float)w + uniform(&r, -0.1f, 0.1f) * s,
                      0.5f * (float)h + uniform(&r, -0.1f, 0.1f) * s,
                      0,
                      0,
                      0,
                      0};
    if (bucket < 8) {
        int k = (int)nn_rng_below(&r, (uint32_t)f->n);
        char ch = letters[nn_rng_below(&r, sizeof letters - 1)];
        p.ht = uniform(&r, 0.4f, 0.8f) * s;
        p.angle = uniform(&r, -20, 20) * (PI_F / 180.0f);
        draw_glyph(&c, f, k, ch, &p);
        snprintf(what, sizeof what, "letter\t%c", ch);
    } else if (bucket < 12) {
        draw_scribble(&c, &r, pen * 0.8f);
        snprintf(what, sizeof what, "scribble\t-");
    } else if (bucket < 17) {
        static const char *const names[] = {"square", "circle", "x", "cross", "triangle"};
        int kind = (int)nn_rng_below(&r, 5), filled = nn_rng_uniform(&r) < 0.5f;
        p.ht = uniform(&r, 0.4f, 0.75f) * s;
        p.wd = p.ht * uniform(&r, 0.7f, 1.3f);
        p.angle = uniform(&r, -30, 30) * (PI_F / 180.0f);
        draw_shape(&c, kind, filled, &p, pen);
        snprintf(what, sizeof what, "shape\t%s%s", filled ? "filled_" : "", names[kind]);
    } else if (bucket < 19) {
        int cell = 1 + (int)nn_rng_below(&r, 8);
        float density = uniform(&r, 0.02f, 0.35f);
        for (int y = 0; y < h; y += cell) {
            for (int x = 0; x < w; x += cell) {
                if (nn_rng_uniform(&r) >= density)
                    continue;
                for (int yy = y; yy < y + cell && yy < h; yy++)
                    for (int xx = x; xx < x + cell && xx < w; xx++)
                        c.cov[(size_t)yy * w + xx] = 1;
            }
        }
        snprintf(what, sizeof what, "noise\t%d", cell);
    } else {
        int m = 1 + (int)nn_rng_below(&r, 4);
        for (int k = 0; k < m; k++) {
            struct place b = {uniform(&r, 0.2f, 0.8f) * (float)w,
                              uniform(&r, 0.2f, 0.8f) * (float)h,
                              uniform(&r, 0.1f, 0.4f) * s,
                              uniform(&r, 0.1f, 0.4f) * s,
                              uniform(&r, 0, PI_F),
                              0};
            draw_shape(&c, 1, 1, &b, 1);
        }
        snprintf(what, sizeof what, "blob\t%d", m);
    }
    char path[4096];
    const char *style;
    if (paper) {
        struct scene sc;
        char desc[96];
        random_paper(&sc, &r, w, h, 0.6f * s, nn_rng_uniform(&r) < 1.0f / 3, desc, sizeof desc);
        if (scene_render(rgb, &c, &sc, &r) != 0) {
            snprintf(err, errlen, "nondigits: out of memory");
            goto done;
        }
        snprintf(it->file, sizeof it->file, "%05zu.jpg", i);
        snprintf(path, sizeof path, "%s/%s", dir, it->file);
        if (write_jpeg(path, rgb, w, h, 3, 50 + (int)nn_rng_below(&r, 46), 1, err, errlen) != 0)
            goto done;
        style = "paper";
    } else {
        int dark = nn_rng_uniform(&r) < 0.5f;
        for (size_t q = 0; q < (size_t)w * (size_t)h; q++) {
            float v = dark ? c.cov[q] : 1 - c.cov[q];
            rgb[q] = (uint8_t)(v * 255.0f + 0.5f);
        }
        snprintf(it->file, sizeof it->file, "%05zu.png", i);
        snprintf(path, sizeof path, "%s/%s", dir, it->file);
        if (write_png(path, rgb, w, h, 1, err, errlen) != 0)
            goto done;
        style = dark ? "white_on_black" : "black_on_white";
    }
    snprintf(it->label, sizeof it->label, "-");
    snprintf(it->cond, sizeof it->cond, "%dx%d\t%s\t%s", w, h, style, what);
    rc = 0;
done:
    canvas_free(&c);
    free(rgb);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Sets                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int write_tsv(const char *dir, const struct item *items, size_t n, const char *cond_header,
                     char *err, size_t errlen)
{
    char path[4200];
    for (int pass = 0; pass < 2; pass++) {
        snprintf(path, sizeof path, "%s/%s", dir, pass ? "conditions.tsv" : "labels.tsv");
        FILE *f = fopen(path, "w");
        if (!f) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        fprintf(f, "file\t%s\n", pass ? cond_header : "label");
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%s\t%s\n", items[i].file, pass ? items[i].cond : items[i].label);
        if (fclose(f) != 0) {
            snprintf(err, errlen, "%s: cannot write", path);
            return -1;
        }
    }
    return 0;
}

/* Runs one set's items in parallel; the first error (lowest item) is reported. */
static int run_set(int set, const struct set_opts *o, const struct nn_dataset *ds,
                   const struct fonts *f, size_t range, size_t n, const char *name, char *err,
                   size_t errlen)
{
    static const char *const headers[] = {
        "",
        "source\tsize\tquality\torientation\tpaper\tink\tlines\tshadow",
        "size\tstyle\tdigits\ttouching_pairs",
        "size\tstyle\tkind\tdetail",
    };
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", o->out, name);
    if (make_dirs(dir, err, errlen) != 0)
        return -1;
    struct item *items = calloc(n ? n : 1, sizeof *items);
    if (!items) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    long first_bad = -1;
    char first_err[1024] = "";
#pragma omp parallel for schedule(dynamic, 4) num_threads(o->threads)
    for (long i = 0; i < (long)n; i++) {
        char e[1024] = "";
        int rc;
        if (set == SET_PAPER)
            rc = paper_item(&items[i], o, ds, (size_t)i, dir, e, sizeof e);
        else if (set == SET_NUMBERS)
            rc = number_item(&items[i], o, ds, range, (size_t)i, dir, e, sizeof e);
        else
            rc = nondigit_item(&items[i], o, f, (size_t)i, dir, e, sizeof e);
        if (rc != 0) {
#pragma omp critical
            if (first_bad < 0 || i < first_bad) {
                first_bad = i;
                snprintf(first_err, sizeof first_err, "%s", e);
            }
        }
    }
    int rc = 0;
    if (first_bad >= 0) {
        snprintf(err, errlen, "%s item %ld: %s", name, first_bad, first_err);
        rc = -1;
    } else {
        rc = write_tsv(dir, items, n, headers[set], err, errlen);
    }
    free(items);
    return rc;
}

int make_sets(const struct set_opts *o, char *err, size_t errlen)
{
    struct nn_dataset ds = {0};
    struct fonts f = {0};
    int rc = -1;
    if (o->paper || o->numbers) {
        char e[512];
        if (nn_dataset_load_mnist(&ds, o->mnist, o->train ? "train" : "test", e, sizeof e) != 0) {
            snprintf(err, errlen, "%s (run `make data`)", e);
            return -1;
        }
        if (o->first >= ds.n || (o->count && o->first + o->count > ds.n)) {
            snprintf(err, errlen, "--first %zu --count %zu: the %s set has %zu images", o->first,
                     o->count, o->train ? "training" : "test", ds.n);
            goto done;
        }
    }
    size_t range = o->count ? o->count : ds.n > o->first ? ds.n - o->first : 0;
    if (o->nondigits && fonts_load(&f, o->fonts, err, errlen) != 0)
        goto done;
    if (o->paper && run_set(SET_PAPER, o, &ds, &f, range, range, "paper", err, errlen) != 0)
        goto done;
    if (o->numbers &&
        run_set(SET_NUMBERS, o, &ds, &f, range, (size_t)o->n_numbers, "numbers", err, errlen) != 0)
        goto done;
    if (o->nondigits && run_set(SET_NONDIGITS, o, &ds, &f, range, (size_t)o->n_nondigits,
                                "nondigits", err, errlen) != 0)
        goto done;
    rc = 0;
done:
    nn_dataset_free(&ds);
    fonts_free(&f);
    return rc;
}
