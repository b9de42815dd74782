/*
 * test_ink.c - ink from real paper (nn_image_from_pixels8 on photos and scans).
 *
 * Data-driven: tests/fixtures/ink/MANIFEST.tsv lists small photo-like fixtures, one per case
 * of issue 18 (grey, cream and coloured paper, blue and pencil ink, a shadow, a gradient, JPEG
 * artefacts, specks, ruled and squared paper, a digit off the border, chalk, very thin and
 * very heavy strokes, a narrow 8, a clean canvas), made by `build/make-sets --fixtures` from
 * hand-made stroke skeletons (no MNIST pixels), each with a mask of the pen's real coverage.
 * Every fixture must come back as ink that matches its mask, and read as its digit with the
 * shipped CNN through the same steps /predict takes.
 */
#include "nn/nn.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO_WRITE
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#include <stb_image.h>
#pragma GCC diagnostic pop
/* stb declares static functions it never defines; the warning fires at the end of the file. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define FIXTURES "tests/fixtures/ink"
#define MODEL "models/mnist-cnn.model"

struct fixture {
    char file[128], name[128], kase[64];
    int digit;
};

/* The manifest's rows (file, digit, case); fails the test when it cannot be read. */
static int read_manifest(struct fixture *out, int max)
{
    FILE *f = fopen(FIXTURES "/MANIFEST.tsv", "r");
    cr_assert_not_null(f, "cannot open " FIXTURES "/MANIFEST.tsv (run from the repository root)");
    char line[512];
    int n = 0;
    cr_assert_not_null(fgets(line, sizeof line, f), "empty manifest");
    while (n < max && fgets(line, sizeof line, f)) {
        struct fixture *x = &out[n];
        if (sscanf(line, "%127s\t%d\t%63s", x->file, &x->digit, x->kase) != 3)
            continue;
        const char *dot = strrchr(x->file, '.');
        snprintf(x->name, sizeof x->name, "%.*s", (int)(dot ? dot - x->file : 0), x->file);
        n++;
    }
    fclose(f);
    return n;
}

static unsigned char *load(const char *file, int *w, int *h, int *c, int want)
{
    char path[512];
    snprintf(path, sizeof path, FIXTURES "/%s", file);
    unsigned char *p = stbi_load(path, w, h, c, want);
    cr_assert_not_null(p, "cannot decode %s: %s", path, stbi_failure_reason());
    return p;
}

/* Ink of one fixture, allocated; *w, *h set. */
static float *fixture_ink(const struct fixture *x, int *w, int *h)
{
    int c;
    unsigned char *px = load(x->file, w, h, &c, 0);
    float *ink = malloc(sizeof(float) * (size_t)*w * *h);
    cr_assert_not_null(ink);
    cr_assert_eq(nn_image_from_pixels8(ink, px, *w, *h, c), NN_OK, "%s", x->file);
    stbi_image_free(px);
    return ink;
}

Test(ink, every_fixture_matches_the_pens_coverage)
{
    struct fixture fx[64];
    int n = read_manifest(fx, 64);
    cr_assert_geq(n, 20, "only %d fixtures", n);
    for (int k = 0; k < n; k++) {
        int w, h, mw, mh, mc;
        float *ink = fixture_ink(&fx[k], &w, &h);
        char mask[160];
        snprintf(mask, sizeof mask, "%s.mask.png", fx[k].name);
        unsigned char *m = load(mask, &mw, &mh, &mc, 1);
        cr_assert(mw == w && mh == h, "%s: mask is %dx%d, image %dx%d", mask, mw, mh, w, h);
        double tp = 0, fp = 0, fn = 0;
        for (size_t i = 0; i < (size_t)w * h; i++) {
            int a = ink[i] > 0.5f, b = m[i] > 127;
            tp += a && b;
            fp += a && !b;
            fn += !a && b;
        }
        double precision = tp / (tp + fp), recall = tp / (tp + fn);
        /* nothing but the pen (no paper, shadow, ruling or speck), and most of the pen
         * (pencil's texture and a hairline's anti-aliasing lose some of it) */
        cr_expect_geq(precision, 0.97, "%s (%s): precision %.3f", fx[k].file, fx[k].kase,
                      precision);
        cr_expect_geq(recall, 0.65, "%s (%s): recall %.3f", fx[k].file, fx[k].kase, recall);
        stbi_image_free(m);
        free(ink);
    }
}

Test(ink, every_fixture_reads_as_its_digit_with_the_shipped_cnn)
{
    struct fixture fx[64];
    int n = read_manifest(fx, 64);
    nn_model *model = NULL;
    nn_workspace *ws = NULL;
    char err[256] = "";
    cr_assert_eq(nn_model_load(&model, MODEL, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_workspace_new(&ws, model, 1), NN_OK);
    for (int k = 0; k < n; k++) {
        int w, h;
        float *ink = fixture_ink(&fx[k], &w, &h), x[NN_MNIST_PIXELS], probs[NN_OUTPUTS_MAX];
        cr_assert_eq(nn_image_normalize(x, ink, w, h), NN_OK, "%s", fx[k].file);
        cr_assert_eq(nn_model_predict(model, x, probs, ws), NN_OK);
        int got = nn_argmax(probs, 10);
        cr_expect_eq(got, fx[k].digit, "%s (%s): read as %d (%.2f), not %d", fx[k].file,
                     fx[k].kase, got, probs[got], fx[k].digit);
        free(ink);
    }
    nn_workspace_free(ws);
    nn_model_free(model);
}

/* A canvas export comes out exactly as it always did: ink = 1 - luminance. */
Test(ink, a_clean_canvas_is_exactly_one_minus_its_luminance)
{
    int w, h, c;
    unsigned char *px = load("clean-canvas-3.png", &w, &h, &c, 0);
    float *ink = malloc(sizeof(float) * (size_t)w * h);
    cr_assert_not_null(ink);
    cr_assert_eq(nn_image_from_pixels8(ink, px, w, h, c), NN_OK);
    size_t inked = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        const unsigned char *p = px + i * (size_t)c;
        float y = c >= 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
        float a = c == 2 ? p[1] / 255.0f : c == 4 ? p[3] / 255.0f : 1.0f;
        float want = 1.0f - ((y / 255.0f) * a + (1.0f - a));
        want = want < 0.0f ? 0.0f : want > 1.0f ? 1.0f : want;
        cr_assert_eq(ink[i], want, "pixel %zu: %.9g, want %.9g", i, ink[i], want);
        inked += ink[i] > 0.5f;
    }
    cr_expect_gt(inked, 100, "the canvas has a digit on it");
    free(ink);
    stbi_image_free(px);
}

/* Paper with light falling off, noise and JPEG-like blockiness but no pen: no ink at all, so
 * /predict answers "blank" instead of guessing. */
Test(ink, a_photo_of_empty_paper_has_no_ink)
{
    enum { W = 320, H = 240 };
    static uint8_t px[W * H * 3];
    struct nn_rng rng;
    nn_rng_seed(&rng, 3);
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            float light = 1.0f - 0.3f * x / W - 0.1f * y / H;
            for (int c = 0; c < 3; c++) {
                float v = (c == 2 ? 0.80f : 0.88f) * light + 0.015f * nn_rng_normal(&rng) +
                          0.01f * (((x / 8 + y / 8) & 1) ? 1 : -1);
                px[(y * W + x) * 3 + c] = (uint8_t)lrintf(255.0f * (v < 0 ? 0 : v > 1 ? 1 : v));
            }
        }
    }
    static float ink[W * H];
    float x28[NN_MNIST_PIXELS];
    cr_assert_eq(nn_image_from_pixels8(ink, px, W, H, 3), NN_OK);
    double sum = 0;
    for (int i = 0; i < W * H; i++)
        sum += ink[i];
    cr_expect_eq(sum, 0.0, "empty paper has %g of ink", sum);
    cr_expect_eq(nn_image_normalize(x28, ink, W, H), NN_EBLANK);
}

/* The same digit on white paper and on dark grey paper under a shadow gives nearly the same
 * ink: the paper's level is taken out. */
Test(ink, paper_level_and_shadow_are_taken_out)
{
    enum { W = 200, H = 200 };
    static uint8_t a[W * H], b[W * H];
    static float ia[W * H], ib[W * H];
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            double r = hypot(x - 100.0, (y - 100.0) * 0.7);
            int pen = fabs(r - 55) < 7;
            float paper_a = 0.97f, paper_b = x < 120 ? 0.62f : 0.45f; /* shadow on the right */
            a[y * W + x] = (uint8_t)lrintf(255.0f * (pen ? 0.1f * paper_a : paper_a));
            b[y * W + x] = (uint8_t)lrintf(255.0f * (pen ? 0.1f * paper_b : paper_b));
        }
    }
    cr_assert_eq(nn_image_from_pixels8(ia, a, W, H, 1), NN_OK);
    cr_assert_eq(nn_image_from_pixels8(ib, b, W, H, 1), NN_OK);
    double diff = 0, mass = 0;
    for (int i = 0; i < W * H; i++) {
        diff += fabs(ia[i] - ib[i]);
        mass += ia[i];
    }
    cr_expect_gt(mass, 1000, "the ring is ink");
    cr_expect_lt(diff / mass, 0.05, "ink differs by %.3f of its mass", diff / mass);
}

/* Precision and recall of ink (> 0.5) against the pen's pixels; the pen's anti-aliased rim
 * (2 px around it) is neither right nor wrong. */
static void pen_scores(const float *ink, const uint8_t *pen, int W, int H, double *precision,
                       double *recall)
{
    double tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < W * H; i++) {
        int a = ink[i] > 0.5f, b = pen[i], rim = 0;
        for (int d = -2; d <= 2 && !b && !rim; d++)
            rim = (i % W + d >= 0 && i % W + d < W && pen[i + d]) ||
                  (i / W + d >= 0 && i / W + d < H && pen[i + d * W]);
        tp += a && b;
        fp += a && !b && !rim;
        fn += !a && b;
    }
    *precision = tp / (tp + fp + 1e-9);
    *recall = tp / (tp + fn);
}

/* A pencil ring near the edge of a hard shadow, on paper rendered the way make-sets renders
 * it (multiplicative light, a penumbra of 2 px, noise). shadow(x, y) says where the shadow is.
 * Returns the precision and recall of the ink (> 0.5) against the ring's own pixels. */
static void ring_by_a_shadow(int (*shadow)(int x, int y), double *precision, double *recall)
{
    enum { W = 240, H = 180 };
    static uint8_t px[W * H * 3];
    static float ink[W * H];
    static uint8_t pen[W * H];
    struct nn_rng rng;
    nn_rng_seed(&rng, 5);
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            double r = hypot(x - 100.0, (y - 90.0) * 0.7);
            pen[y * W + x] = fabs(r - 40) < 3.5;
            /* the penumbra: the mean of the shadow over a 5x5 neighbourhood */
            int in = 0;
            for (int dy = -2; dy <= 2; dy++)
                for (int dx = -2; dx <= 2; dx++)
                    in += shadow(x + dx, y + dy);
            float light = 1.0f - 0.45f * (float)in / 25.0f;
            float v = (pen[y * W + x] ? 0.45f : 0.88f) * light;
            for (int c = 0; c < 3; c++) {
                float q = v * (c == 2 ? 0.85f : 1.0f) + 0.012f * nn_rng_normal(&rng);
                px[(y * W + x) * 3 + c] = (uint8_t)lrintf(255.0f * (q < 0 ? 0 : q > 1 ? 1 : q));
            }
        }
    }
    cr_assert_eq(nn_image_from_pixels8(ink, px, W, H, 3), NN_OK);
    pen_scores(ink, pen, W, H, precision, recall);
}

/* most of the page in shadow, its edge just right of the ring */
static int shadow_most(int x, int y) { return x > 150 + (y - 90) / 3; }
/* a shadow's edge cutting off a corner of the page: a wedge along the top border */
static int shadow_wedge(int x, int y) { return 2 * x + 5 * y < 360; }

/* A shadow over most of the page must not flip the polarity (paper read as ink), and a wedge
 * of shadow narrower than the paper estimate's closing must not read as ink: both were
 * common failures on photos of paper. */
Test(ink, a_shadow_over_most_of_the_page_or_a_wedge_of_shadow_is_not_ink)
{
    double precision, recall;
    ring_by_a_shadow(shadow_most, &precision, &recall);
    cr_expect_geq(precision, 0.97, "shadow over most of the page: precision %.3f", precision);
    cr_expect_geq(recall, 0.8, "shadow over most of the page: recall %.3f", recall);
    /* the wedge's tip, where it is narrower than the closing fitted to the strokes, still
     * reads as ink (0.90 today; 0.70 with one closing for all images) */
    ring_by_a_shadow(shadow_wedge, &precision, &recall);
    cr_expect_geq(precision, 0.88, "wedge of shadow: precision %.3f", precision);
    cr_expect_geq(recall, 0.8, "wedge of shadow: recall %.3f", recall);
}

/* A pen ring on a sheet (colour sheet[]) turned 6 degrees, spanning u0..u1 of the width and
 * -vh..vh of the height about the centre (past the frame when beyond 0.5), with `around[]`
 * (grain: a wood texture's amplitude) around it; the precision and recall of the ink (> 0.5)
 * against the ring's pixels. */
static void ring_on_a_sheet(const float sheet[3], const float around[3], float grain, float u0,
                            float u1, float vh,
                            double *precision, double *recall)
{
    enum { W = 400, H = 300 };
    static uint8_t px[W * H * 3], pen[W * H];
    static float ink[W * H];
    struct nn_rng rng;
    nn_rng_seed(&rng, 3);
    const float c = cosf(0.1f), s = sinf(0.1f);
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            float u = (x - W / 2) * c + (y - H / 2) * s, v = -(x - W / 2) * s + (y - H / 2) * c;
            int paper = u > u0 * W && u < u1 * W && v > -vh * H && v < vh * H;
            pen[y * W + x] = paper && fabs(hypot(x - 250.0, (y - 150.0) * 0.7) - 45) < 4;
            float g = 1.0f + grain * sinf(y * 0.35f + 3 * sinf(x * 0.02f)), rgb[3];
            for (int k = 0; k < 3; k++)
                rgb[k] = paper ? sheet[k] : around[k] * g;
            if (pen[y * W + x])
                rgb[0] = 0.15f, rgb[1] = 0.20f, rgb[2] = 0.60f; /* blue ballpoint */
            for (int k = 0; k < 3; k++) {
                float q = rgb[k] * (1.0f - 0.2f * x / W) + 0.01f * nn_rng_normal(&rng);
                px[(y * W + x) * 3 + k] = (uint8_t)lrintf(255.0f * (q < 0 ? 0 : q > 1 ? 1 : q));
            }
        }
    }
    cr_assert_eq(nn_image_from_pixels8(ink, px, W, H, 3), NN_OK);
    pen_scores(ink, pen, W, H, precision, recall);
}

/* A sheet of paper on a wooden table, the table around it on every side: the wood's grain
 * is darker than the wood's own level, as ink is than paper, but it is not on the paper. And
 * an orange sticky note running off three sides of the frame beside a white desk: the note,
 * not the brighter desk, is the paper. */
Test(ink, the_table_around_the_sheet_is_not_ink)
{
    const float cream[3] = {0.95f, 0.93f, 0.86f}, wood[3] = {0.55f, 0.40f, 0.27f};
    const float orange[3] = {0.98f, 0.72f, 0.40f}, white[3] = {0.97f, 0.97f, 0.97f};
    double precision, recall;
    ring_on_a_sheet(cream, wood, 0.12f, -0.2f, 0.45f, 0.42f, &precision, &recall);
    /* measured: precision 0.27 before the table was told from the paper by its colour */
    cr_expect_geq(precision, 0.97, "sheet on a table: precision %.3f", precision);
    cr_expect_geq(recall, 0.8, "sheet on a table: recall %.3f", recall);
    ring_on_a_sheet(orange, white, 0.0f, -0.3f, 0.8f, 0.8f, &precision, &recall);
    cr_expect_geq(precision, 0.97, "sticky note: precision %.3f", precision);
    cr_expect_geq(recall, 0.8, "sticky note: recall %.3f", recall);
}
