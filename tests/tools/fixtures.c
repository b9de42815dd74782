/*
 * fixtures.c - make-sets --fixtures DIR: the small committed images of tests/fixtures/ink/, one
 * or two per photo/scan condition of issue 18, drawn from hand-made stroke skeletons (never MNIST
 * pixels, which are not ours to commit), each with <name>.mask.png (the pen's coverage >= 0.5
 * before paper, lighting and noise: the ink a test should recover) and a MANIFEST.tsv.
 */
#include "sets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
    const char *name; /* file stem; the extension says PNG or JPEG */
    const char *ext;
    int digit;
    const char *kase;
    const char *note;
};

static const struct fixture fixtures[] = {
    {"grey-paper-3", "jpg", 3, "grey_paper", "grey paper at 0.83, black ink, slight blur"},
    {"cream-paper-5", "jpg", 5, "cream_paper", "cream paper, blue-black ink"},
    {"blue-paper-2", "jpg", 2, "coloured_paper", "light blue paper, black ink"},
    {"pink-paper-6", "jpg", 6, "coloured_paper", "pink paper, black ink"},
    {"yellow-paper-4", "jpg", 4, "coloured_paper", "yellow paper, blue ballpoint"},
    {"ballpoint-blue-7", "jpg", 7, "blue_ink", "blue ballpoint on white paper, thin pen"},
    {"black-ink-9", "jpg", 9, "black_ink", "black felt pen on off-white paper"},
    {"pencil-4", "jpg", 4, "pencil", "grey graphite, low contrast, textured stroke and paper"},
    {"pencil-2", "jpg", 2, "pencil", "light pencil on cream paper"},
    {"shadow-8", "jpg", 8, "shadow", "a soft shadow (light 0.5) across the lower left of the page"},
    {"gradient-0", "jpg", 0, "gradient", "illumination 0.55 at the left edge to 1.0 at the right"},
    {"jpeg-q30-2", "jpg", 2, "jpeg_artefacts", "grey paper, JPEG quality 30"},
    {"jpeg-q45-6", "jpg", 6, "jpeg_artefacts", "cream paper, JPEG quality 45"},
    {"specks-3", "jpg", 3, "specks", "30 small dark dots, none within 6% of the digit"},
    {"ruled-1", "jpg", 1, "ruled", "notebook: blue lines every 8% of the height, red margin"},
    {"ruled-7", "jpg", 7, "ruled", "notebook: the 7's bar lies along a blue line"},
    {"squared-5", "jpg", 5, "squared", "squared paper, grid every 6% of the height"},
    {"border-2", "jpg", 2, "border",
     "the digit runs off the left edge and its bar touches the bottom"},
    {"chalk-3", "jpg", 3, "chalk", "white chalk on a dark green board"},
    {"chalk-7", "jpg", 7, "chalk", "white chalk on a black board"},
    {"thin-4", "png", 4, "thin_strokes", "1 px pen at 400 px, flat light paper"},
    {"heavy-8", "jpg", 8, "heavy_strokes", "pen a fifth of the digit height"},
    {"heavy-3", "jpg", 3, "heavy_strokes", "pen a fifth of the digit height"},
    {"narrow-8", "png", 8, "narrow", "an 8 a quarter as wide as tall"},
    {"clean-canvas-3", "png", 3, "clean_canvas", "pure white, pure black strokes (the page)"},
    {"mnist-polarity-6", "png", 6, "mnist_polarity", "black background, white strokes"},
    /* added later (each fixture's random stream depends on its index only) */
    {"shadow-most-4", "jpg", 4, "shadow", "pencil, a hard shadow (light 0.55) over most of the page"},
    {"squared-pencil-8", "jpg", 8, "squared", "pencil on small squared paper, grid every 8%"},
    {"ruled-pencil-5", "jpg", 5, "ruled", "pencil on yellow ruled paper with a red margin"},
};

#define N_FIXTURES ((int)(sizeof fixtures / sizeof fixtures[0]))

static void scene_default(struct scene *s)
{
    memset(s, 0, sizeof *s);
    for (int ch = 0; ch < 3; ch++)
        s->paper[ch] = 0.95f, s->ink[ch] = 0.08f;
    s->texture = 0.015f;
    s->grad_l = s->grad_r = 1;
    s->blur = 0.6f;
    s->noise = 0.006f;
    s->line_width = 1.2f;
}

static void set3(float *v, float r, float g, float b) { v[0] = r, v[1] = g, v[2] = b; }

/* Builds fixture k: its canvas (coverage), scene, JPEG quality and channel count. */
static int build(const struct fixture *fx, struct canvas *c, struct scene *s, int *quality,
                 int *channels, struct nn_rng *rng)
{
    int w = 240, h = 240;
    float ht = 150, aspect = 0.62f, pen = 14, jitter = 0.02f, cx, cy, angle = 0;
    float slant = 0.1f * (nn_rng_uniform(rng) - 0.5f);
    scene_default(s);
    *quality = 85;
    *channels = 3;
    const char *k = fx->kase;
    if (!strcmp(k, "grey_paper")) {
        set3(s->paper, 0.83f, 0.83f, 0.83f);
        s->ink[0] = s->ink[1] = s->ink[2] = 0.12f;
        s->blur = 0.9f;
    } else if (!strcmp(k, "cream_paper")) {
        set3(s->paper, 0.96f, 0.91f, 0.78f);
        set3(s->ink, 0.10f, 0.12f, 0.25f);
    } else if (!strcmp(k, "coloured_paper")) {
        if (fx->digit == 2)
            set3(s->paper, 0.76f, 0.86f, 0.97f);
        else if (fx->digit == 6)
            set3(s->paper, 0.98f, 0.80f, 0.85f);
        else
            set3(s->paper, 0.99f, 0.94f, 0.58f), set3(s->ink, 0.16f, 0.24f, 0.68f), pen = 9;
    } else if (!strcmp(k, "blue_ink")) {
        set3(s->ink, 0.14f, 0.24f, 0.72f);
        pen = 8;
    } else if (!strcmp(k, "black_ink")) {
        set3(s->paper, 0.93f, 0.93f, 0.91f);
        s->ink[0] = s->ink[1] = s->ink[2] = 0.04f;
    } else if (!strcmp(k, "pencil")) {
        s->ink_kind = INK_PENCIL;
        s->texture = 0.035f;
        pen = 7;
        if (fx->digit == 4) {
            set3(s->paper, 0.92f, 0.92f, 0.91f);
            set3(s->ink, 0.50f, 0.50f, 0.52f);
        } else {
            set3(s->paper, 0.95f, 0.92f, 0.82f);
            set3(s->ink, 0.62f, 0.60f, 0.58f);
        }
    } else if (!strcmp(k, "shadow") && fx->digit == 4) {
        /* the edge crosses the digit; the shadow covers the left and the bottom */
        s->ink_kind = INK_PENCIL;
        s->texture = 0.035f;
        pen = 8;
        set3(s->paper, 0.92f, 0.90f, 0.84f);
        set3(s->ink, 0.50f, 0.50f, 0.52f);
        s->shadow = 0.55f;
        s->shadow_x0 = 160, s->shadow_y0 = 100, s->shadow_nx = -0.8f, s->shadow_ny = 0.6f;
        s->shadow_soft = 2;
    } else if (!strcmp(k, "shadow")) {
        s->shadow = 0.5f;
        s->shadow_x0 = 150, s->shadow_y0 = 150, s->shadow_nx = -0.6f, s->shadow_ny = 0.8f;
        s->shadow_soft = 12;
    } else if (!strcmp(k, "gradient")) {
        s->grad_l = 0.55f, s->grad_r = 1.0f;
    } else if (!strcmp(k, "jpeg_artefacts")) {
        if (fx->digit == 2)
            set3(s->paper, 0.84f, 0.84f, 0.83f), *quality = 30;
        else
            set3(s->paper, 0.96f, 0.91f, 0.78f), *quality = 45;
    } else if (!strcmp(k, "specks")) {
        s->specks = 30;
    } else if (!strcmp(k, "squared") && fx->digit == 8) {
        w = 160, h = 150;
        s->ink_kind = INK_PENCIL;
        s->texture = 0.03f;
        set3(s->paper, 0.97f, 0.82f, 0.86f);
        set3(s->ink, 0.55f, 0.50f, 0.52f);
        s->line_width = 1.5f;
        s->squared = 0.08f * (float)h;
        s->ruled_offset = 3;
        s->blur = 0.9f;
        jitter = 0.005f;
        ht = 100;
        pen = 5;
        *quality = 68;
    } else if (!strcmp(k, "ruled") && fx->digit == 5) {
        w = 200, h = 190;
        s->ink_kind = INK_PENCIL;
        s->texture = 0.03f;
        set3(s->paper, 0.99f, 0.94f, 0.58f);
        set3(s->ink, 0.55f, 0.54f, 0.52f);
        s->line_width = 1.5f;
        s->ruled = 0.12f * (float)h;
        s->ruled_offset = 8;
        jitter = 0.005f;
        ht = 120;
        pen = 9;
        *quality = 75;
    } else if (!strcmp(k, "ruled") || !strcmp(k, "squared")) {
        w = 300, h = 300;
        s->line_width = 1.5f;
        float spacing = 0.08f * (float)h;
        if (!strcmp(k, "ruled")) {
            s->ruled = spacing;
            s->ruled_offset = 0.5f * spacing;
        } else {
            s->squared = 0.06f * (float)h;
            s->ruled_offset = 3;
        }
        jitter = 0.005f;
        ht = 6 * spacing;
        pen = 10;
    } else if (!strcmp(k, "border")) {
        /* the box runs 5% past the left edge and down to the bottom one */
        ht = 170;
    } else if (!strcmp(k, "chalk")) {
        s->ink_kind = INK_CHALK;
        s->texture = 0.04f;
        if (fx->digit == 3)
            set3(s->paper, 0.13f, 0.24f, 0.17f);
        else
            set3(s->paper, 0.07f, 0.07f, 0.08f);
        set3(s->ink, 0.90f, 0.91f, 0.88f);
        pen = 12;
    } else if (!strcmp(k, "thin_strokes")) {
        w = h = 400;
        ht = 260, pen = 1;
        set3(s->paper, 0.94f, 0.94f, 0.94f);
        s->texture = 0, s->noise = 0, s->blur = 0;
    } else if (!strcmp(k, "heavy_strokes")) {
        pen = ht / 5;
    } else if (!strcmp(k, "narrow")) {
        w = 200, h = 300;
        ht = 220, aspect = 0.25f, pen = 12;
        set3(s->paper, 0.96f, 0.96f, 0.96f);
        s->texture = 0, s->noise = 0, s->blur = 0;
    } else if (!strcmp(k, "clean_canvas") || !strcmp(k, "mnist_polarity")) {
        w = h = 280;
        ht = 180, pen = 22;
        *channels = 1;
        float paper = !strcmp(k, "clean_canvas") ? 1.0f : 0.0f;
        set3(s->paper, paper, paper, paper);
        set3(s->ink, 1 - paper, 1 - paper, 1 - paper);
        s->texture = 0, s->noise = 0, s->blur = 0;
    }
    cx = 0.5f * (float)w + 6 * (nn_rng_uniform(rng) - 0.5f);
    cy = 0.5f * (float)h + 6 * (nn_rng_uniform(rng) - 0.5f);
    if (!strcmp(k, "ruled")) {
        /* the 7's bar on the line at y = offset + 2 spacings; the 1 from a line to a line */
        cy = s->ruled_offset + 2 * s->ruled + 0.5f * ht;
        slant = 0;
        angle = 0;
    }
    if (!strcmp(k, "border")) {
        cx = 0.5f * ht * aspect - 0.05f * ht;
        cy = (float)h - 0.5f * ht; /* the bar touches the bottom edge */
    }
    if (canvas_init(c, w, h) != 0)
        return -1;
    struct place p = {cx, cy, ht * aspect, ht, angle, slant};
    if (fx->digit == 1)
        p.wd = ht * 0.45f;
    draw_digit_strokes(c, fx->digit, &p, pen, jitter, rng);
    return 0;
}

int make_fixtures(const char *dir, uint64_t seed, char *err, size_t errlen)
{
    char path[4096];
    FILE *man = NULL;
    uint8_t *rgb = NULL, *grey = NULL;
    struct canvas c = {0};
    int rc = -1;
    if (make_dirs(dir, err, errlen) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/MANIFEST.tsv", dir);
    man = fopen(path, "w");
    if (!man) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(man, "file\tdigit\tcase\tnote\n");
    for (int k = 0; k < N_FIXTURES; k++) {
        const struct fixture *fx = &fixtures[k];
        struct nn_rng rng;
        struct scene s;
        int quality, channels;
        nn_rng_seed(&rng, nn_hash3(seed, 0xf1, (uint64_t)k));
        if (build(fx, &c, &s, &quality, &channels, &rng) != 0)
            goto nomem;
        size_t n = (size_t)c.w * (size_t)c.h;
        rgb = malloc(n * 3);
        grey = malloc(n);
        if (!rgb || !grey || scene_render(rgb, &c, &s, &rng) != 0)
            goto nomem;
        for (size_t i = 0; i < n; i++)
            grey[i] = c.cov[i] >= 0.5f ? 255 : 0;
        snprintf(path, sizeof path, "%s/%s.mask.png", dir, fx->name);
        if (write_png(path, grey, c.w, c.h, 1, err, errlen) != 0)
            goto fail;
        if (channels == 1) {
            for (size_t i = 0; i < n; i++)
                rgb[i] = rgb[i * 3];
        }
        snprintf(path, sizeof path, "%s/%s.%s", dir, fx->name, fx->ext);
        if (!strcmp(fx->ext, "png")
                ? write_png(path, rgb, c.w, c.h, channels, err, errlen)
                : write_jpeg(path, rgb, c.w, c.h, channels, quality, 1, err, errlen))
            goto fail;
        fprintf(man, "%s.%s\t%d\t%s\t%s\n", fx->name, fx->ext, fx->digit, fx->kase, fx->note);
        canvas_free(&c);
        free(rgb);
        free(grey);
        rgb = grey = NULL;
    }
    if (fclose(man) != 0) {
        man = NULL;
        snprintf(err, errlen, "%s/MANIFEST.tsv: cannot write", dir);
        goto fail;
    }
    return 0;
nomem:
    snprintf(err, errlen, "fixtures: out of memory");
fail:
    if (man)
        fclose(man);
    canvas_free(&c);
    free(rgb);
    free(grey);
    return rc;
}
