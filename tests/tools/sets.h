/*
 * sets.h - the pieces of make-sets (tests/tools/make_sets.c): a coverage canvas that strokes,
 * MNIST digits and font glyphs are drawn into, a "scene" that turns coverage into a photo or
 * scan of paper (colour, lighting, lines, specks, blur, noise), and the PNG/JPEG/EXIF writers.
 *
 * Everything is deterministic: randomness comes only from a caller's struct nn_rng, and the
 * tool is compiled with -ffp-contract=off so that the same flags and seed give the same bytes.
 * Coverage is the pen's own ink, in [0,1], before any paper, lighting or noise: the fixtures'
 * masks are made from it.
 */
#ifndef SETS_H
#define SETS_H

#include "nn/nn.h"

#include <stddef.h>
#include <stdint.h>

/* A w*h coverage map (1 = fully inked), row-major. */
struct canvas {
    int w, h;
    float *cov;
};

int canvas_init(struct canvas *c, int w, int h); /* zeroed; 0 or -1 (no memory) */
void canvas_free(struct canvas *c);

/* Where a unit-box drawing lands: unit (u,v) in [0,1]^2, v down, maps to
 * (cx + ((u-0.5)*wd + slant*(v-0.5)*ht) rotated by angle, cy + ...). */
struct place {
    float cx, cy; /* centre of the digit box, pixels */
    float wd, ht; /* box width and height, pixels */
    float angle;  /* radians, clockwise on screen */
    float slant;  /* shear: x += slant * (v - 0.5) * ht */
};

/* Strokes a hand-made skeleton of digit 0..9 with a round anti-aliased pen of width pen px;
 * jitter (a fraction of the height, e.g. 0.02) moves the skeleton's points with rng. */
void draw_digit_strokes(struct canvas *c, int digit, const struct place *p, float pen, float jitter,
                        struct nn_rng *rng);

/* Strokes a polyline of n points (pixels) with a round pen: coverage = max(old, new). */
void draw_polyline(struct canvas *c, const float *xy, int n, float pen);

/* Draws a 28x28 MNIST image (0..255, 255 = ink) smoothly upscaled into p's box (wd = ht = the
 * 28 px side): bicubic, then a soft threshold so strokes have pen-like edges. */
void draw_mnist(struct canvas *c, const uint8_t *img28, const struct place *p);
/* The same for any sw x sh image of values in [0,1]: p's wd x ht is the whole image. */
void draw_smooth(struct canvas *c, const float *src, int sw, int sh, const struct place *p);

/* Filled or outlined shapes for non-digits: kind 0 square, 1 circle, 2 X, 3 cross,
 * 4 triangle; filled or with a pen of width pen. */
void draw_shape(struct canvas *c, int kind, int filled, const struct place *p, float pen);

/* Fonts: DejaVu TTF files loaded once. */
struct fonts {
    int n;
    unsigned char *data[8];
    void *info[8]; /* stbtt_fontinfo */
};
int fonts_load(struct fonts *f, const char *dir, char *err, size_t errlen);
void fonts_free(struct fonts *f);
/* Draws character ch of font k, its ink box fitted into p's box height (keeps its aspect). */
void draw_glyph(struct canvas *c, const struct fonts *f, int k, int ch, const struct place *p);

/* How coverage becomes a picture. Colours are linear-ish RGB in [0,1]. */
enum ink_kind { INK_PEN = 0, INK_PENCIL, INK_CHALK };
struct scene {
    float paper[3], ink[3];
    enum ink_kind ink_kind;
    float texture;        /* paper grain amplitude (0 = none) */
    float grad_l, grad_r; /* illumination at the left and right edges (1 = none) */
    float grad_angle;     /* direction of the gradient, radians (0 = left to right) */
    float shadow;         /* 0 = none, else light kept in the shadow (e.g. 0.6) */
    float shadow_x0, shadow_y0, shadow_nx, shadow_ny, shadow_soft; /* half-plane, px */
    float ruled;        /* line spacing in px (0 = none): blue lines, red margin */
    float squared;      /* grid spacing in px (0 = none) */
    float line_width;   /* px */
    float ruled_offset; /* first line's y, px */
    int specks;         /* small dark dots away from the ink */
    float blur;         /* Gaussian sigma, px (0 = none) */
    float noise;        /* sensor noise sigma, in [0,1] units */
};

/* Renders c through s into rgb (w*h*3 bytes). Returns 0 or -1 (no memory). */
int scene_render(uint8_t *rgb, const struct canvas *c, const struct scene *s, struct nn_rng *rng);

/* Writers: return 0, or -1 with err filled. quality 1..100. orientation 1..8 (1 = none): the
 * pixels given are upright, the file holds them transformed so that applying the EXIF tag
 * shows them upright. */
int write_png(const char *path, const uint8_t *px, int w, int h, int channels, char *err,
              size_t errlen);
int write_jpeg(const char *path, const uint8_t *px, int w, int h, int channels, int quality,
               int orientation, char *err, size_t errlen);
/* Stored = the upright w*h image transformed for orientation o; *sw, *sh its size. */
void orient_for_exif(uint8_t *dst, int *sw, int *sh, const uint8_t *src, int w, int h, int ch,
                     int o);

/* Creates a directory and its parents (like mkdir -p); 0 or -1 with err. */
int make_dirs(const char *path, char *err, size_t errlen);

/* make-sets --fixtures DIR (fixtures.c): the committed ink fixtures and MANIFEST.tsv. */
int make_fixtures(const char *dir, uint64_t seed, char *err, size_t errlen);

/* make-sets' sets (sets_build.c): paper, numbers, nondigits under out/. */
struct set_opts {
    const char *out, *mnist, *fonts;
    int train;           /* source: MNIST training images, else test */
    size_t first, count; /* source range (paper: one image each); count 0 = to the end */
    int n_numbers, n_nondigits;
    int paper, numbers, nondigits; /* which sets to write */
    int big_every;                 /* every Nth paper image is 12 MP (0 = none) */
    uint64_t seed;
    int threads;
};
int make_sets(const struct set_opts *o, char *err, size_t errlen);

#endif
