/*
 * test_segment.c - nn_read_number: whole numbers made of MNIST *test* digits read by the
 * shipped CNN (separated, with varying gaps, touching), and synthetic strokes for the
 * structural cases (a broken 5, a crossed 7, a 4 in two strokes, specks), blank input, too
 * many digits, and the equality with /predict's normalisation for a lone digit.
 */
#include "nn/nn.h"

#include <criterion/criterion.h>
#include <time.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL "models/mnist-cnn.model"

static nn_model *model;
static nn_workspace *ws;
static struct nn_dataset test;

static const char *mnist_dir(void)
{
    const char *d = getenv("MNIST_DIR");
    return d && *d ? d : "data/mnist";
}

static void setup(void)
{
    char err[512] = "";
    cr_assert_eq(access(MODEL, R_OK), 0, "%s is missing", MODEL);
    cr_assert_eq(nn_model_load(&model, MODEL, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_workspace_new(&ws, model, 1), NN_OK);
    cr_assert_eq(nn_dataset_load_mnist(&test, mnist_dir(), "test", err, sizeof err), NN_OK,
                 "MNIST is needed (run `make data`): %s", err);
}

static void teardown(void)
{
    nn_workspace_free(ws);
    nn_model_free(model);
    nn_dataset_free(&test);
}

TestSuite(segment, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------------------------------- */
/* Building numbers                                                                         */
/* ---------------------------------------------------------------------------------------- */

struct canvas {
    int w, h;
    float *px;
};

static struct canvas canvas_new(int w, int h)
{
    struct canvas c = {w, h, calloc((size_t)w * h, sizeof(float))};
    cr_assert_not_null(c.px);
    return c;
}

/* Ink box of test image i (values >= 13/255, about the reader's threshold). */
static void ink_box(int i, int *x0, int *x1)
{
    const uint8_t *im = test.images + (size_t)i * 784;
    *x0 = 28;
    *x1 = -1;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            if (im[y * 28 + x] >= 26) {
                *x0 = x < *x0 ? x : *x0;
                *x1 = x > *x1 ? x : *x1;
            }
}

/* Draws test image i scaled by an integer factor k with its top-left at (ox, oy); ink is
 * combined by max, so overlapping digits touch. */
static void paste(struct canvas *c, int i, int k, int ox, int oy)
{
    const uint8_t *im = test.images + (size_t)i * 784;
    for (int y = 0; y < 28 * k; y++)
        for (int x = 0; x < 28 * k; x++) {
            int cx = ox + x, cy = oy + y;
            if (cx < 0 || cy < 0 || cx >= c->w || cy >= c->h)
                continue;
            float v = im[(y / k) * 28 + x / k] / 255.0f;
            float *p = &c->px[(size_t)cy * c->w + cx];
            *p = v > *p ? v : *p;
        }
}

/* Whether the shipped CNN reads test image i alone as its label with confidence. */
static int legible(int i)
{
    float x[784], p[NN_OUTPUTS_MAX], im[784];
    for (int k = 0; k < 784; k++)
        im[k] = test.images[(size_t)i * 784 + k] / 255.0f;
    if (nn_image_normalize(x, im, 28, 28) != NN_OK || nn_model_predict(model, x, p, ws) != NN_OK)
        return 0;
    int d = nn_argmax(p, 10);
    return d == test.labels[i] && p[d] > 0.95f;
}

/* The n-th (from `from`) legible test image of digit d. */
static int pick(int d, int from)
{
    for (size_t i = 0; i < test.n; i++)
        if (test.labels[i] == d && legible((int)i) && from-- == 0)
            return (int)i;
    cr_assert_fail("no legible %d", d);
    return -1;
}

/* Lays out the digits of `number` (test images picks[]) at scale k with `gap` pixels between
 * their ink boxes (negative: overlapping), on a canvas with a margin. */
static struct canvas lay_out(const int *picks, int n, int k, int gap)
{
    int width = 8 * k;
    for (int j = 0; j < n; j++) {
        int x0, x1;
        ink_box(picks[j], &x0, &x1);
        width += (x1 - x0 + 1) * k + gap;
    }
    struct canvas c = canvas_new(width + 16 * k, 40 * k);
    int x = 8 * k;
    for (int j = 0; j < n; j++) {
        int x0, x1;
        ink_box(picks[j], &x0, &x1);
        paste(&c, picks[j], k, x - x0 * k, 6 * k);
        x += (x1 - x0 + 1) * k + gap;
    }
    return c;
}

static void number_string(char *buf, const struct nn_read_result *r)
{
    for (int j = 0; j < r->n; j++)
        buf[j] = (char)('0' + r->digits[j].prediction);
    buf[r->n] = '\0';
}

static int read_string(char *buf, const struct canvas *c, struct nn_read_result *r)
{
    int rc = nn_read_number(r, model, ws, c->px, c->w, c->h);
    number_string(buf, r);
    return rc;
}

/* Thick anti-aliased stroke from (ax,ay) to (bx,by), radius rad, onto c (max). */
static void stroke(struct canvas *c, float ax, float ay, float bx, float by, float rad)
{
    float dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++) {
            float px = x + 0.5f - ax, py = y + 0.5f - ay;
            float t = l2 > 0 ? (px * dx + py * dy) / l2 : 0.0f;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy, d = sqrtf(ex * ex + ey * ey);
            float v = d <= rad - 0.5f ? 1.0f : d >= rad + 0.5f ? 0.0f : rad + 0.5f - d;
            float *p = &c->px[(size_t)y * c->w + x];
            *p = v > *p ? v : *p;
        }
}

/* An arc of the circle centred (cx,cy) radius r from angle a0 to a1 (degrees, y down). */
static void arc(struct canvas *c, float cx, float cy, float r, float a0, float a1, float rad)
{
    const int steps = 24;
    for (int k = 0; k < steps; k++) {
        float t0 = (a0 + (a1 - a0) * k / steps) * 3.14159265f / 180,
              t1 = (a0 + (a1 - a0) * (k + 1) / steps) * 3.14159265f / 180;
        stroke(c, cx + r * cosf(t0), cy + r * sinf(t0), cx + r * cosf(t1), cy + r * sinf(t1), rad);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Numbers of MNIST digits                                                                  */
/* ---------------------------------------------------------------------------------------- */

Test(segment, separated_digits_are_read_left_to_right_with_their_boxes)
{
    int picks[4] = {pick(2, 0), pick(0, 0), pick(2, 1), pick(6, 0)};
    struct canvas c = lay_out(picks, 4, 2, 10);
    struct nn_read_result r;
    char s[32];
    cr_assert_eq(read_string(s, &c, &r), NN_OK);
    cr_expect_str_eq(s, "2026");
    cr_expect_leq(r.classified, 4, "separated digits are classified once each");
    for (int j = 1; j < r.n; j++)
        cr_expect_gt(r.digits[j].x, r.digits[j - 1].x + r.digits[j - 1].w - 1,
                     "boxes %d and %d are apart, left to right", j - 1, j);
    for (int j = 0; j < r.n; j++) {
        cr_expect_gt(r.digits[j].h, 20, "box %d is a digit's height at scale 2", j);
        cr_expect_gt(r.digits[j].probs[r.digits[j].prediction], 0.5f);
    }
    free(c.px);
}

Test(segment, numbers_with_varying_gaps_are_read_exactly)
{
    struct nn_rng rng;
    nn_rng_seed(&rng, 18);
    int ok = 0, total = 0;
    static const int gaps[] = {1, 2, 4, 7, 12, 25};
    for (int t = 0; t < 60; t++) {
        int n = 2 + (int)nn_rng_below(&rng, 7), picks[8];
        char want[9];
        for (int j = 0; j < n; j++) {
            int d = (int)nn_rng_below(&rng, 10);
            picks[j] = pick(d, (int)nn_rng_below(&rng, 20));
            want[j] = (char)('0' + d);
        }
        want[n] = '\0';
        int gap = gaps[t % 6];
        struct canvas c = lay_out(picks, n, 1 + t % 3, gap * (1 + t % 3));
        struct nn_read_result r;
        char s[32];
        int rc = read_string(s, &c, &r);
        total++;
        ok += rc == NN_OK && !strcmp(s, want);
        if (rc != NN_OK || strcmp(s, want))
            cr_log_info("gap %d scale %d: wanted %s, read %s (rc %d)", gap, 1 + t % 3, want, s, rc);
        free(c.px);
    }
    cr_expect_geq(ok, total * 95 / 100, "%d of %d numbers read exactly", ok, total);
}

Test(segment, touching_pairs_are_split_by_the_classifier)
{
    struct nn_rng rng;
    nn_rng_seed(&rng, 7);
    int ok = 0, touching = 0;
    for (int t = 0; t < 40; t++) {
        int a = (int)nn_rng_below(&rng, 10), b = (int)nn_rng_below(&rng, 10);
        int picks[2] = {pick(a, t % 10), pick(b, 10 + t % 10)};
        struct canvas c = lay_out(picks, 2, 2, -3);
        struct nn_read_result r;
        char s[32], want[3] = {(char)('0' + a), (char)('0' + b), 0};
        int rc = read_string(s, &c, &r);
        touching++;
        ok += rc == NN_OK && !strcmp(s, want);
        if (rc != NN_OK || strcmp(s, want))
            cr_log_info("touching: wanted %s, read %s", want, s);
        free(c.px);
    }
    /* measured: 26 of 40 (65%) before the model learnt touching digits as "not a digit"
     * (nn/pairs.c) and rejected wholes were cut; 40 of 40 since */
    cr_expect_geq(ok, touching * 85 / 100, "%d of %d touching pairs read", ok, touching);
}

/* Three or four digits each touching the next: the halves of a chain are numbers, so the
 * chain is read from the left, one digit at a time. */
Test(segment, touching_chains_are_read_digit_by_digit)
{
    struct nn_rng rng;
    nn_rng_seed(&rng, 11);
    int ok = 0, n_chains = 30;
    for (int t = 0; t < n_chains; t++) {
        int n = 3 + t % 2, picks[4];
        char want[5] = {0}, s[32];
        for (int j = 0; j < n; j++) {
            int d = (int)nn_rng_below(&rng, 10);
            picks[j] = pick(d, (t + 7 * j) % 20);
            want[j] = (char)('0' + d);
        }
        struct canvas c = lay_out(picks, n, 2, -3);
        struct nn_read_result r;
        int rc = read_string(s, &c, &r);
        ok += rc == NN_OK && !strcmp(s, want);
        if (rc != NN_OK || strcmp(s, want))
            cr_log_info("chain: wanted %s, read %s", want, s);
        free(c.px);
    }
    /* measured: 13 of 30 when every cut was scored by both halves, 25 of 30 now */
    cr_expect_geq(ok, n_chains * 70 / 100, "%d of %d touching chains read", ok, n_chains);
}

Test(segment, a_lone_1_beside_an_8_stays_two_digits)
{
    int picks[2] = {pick(1, 0), pick(8, 0)};
    for (int gap = 2; gap <= 6; gap += 2) {
        struct canvas c = lay_out(picks, 2, 2, gap);
        struct nn_read_result r;
        char s[32];
        cr_assert_eq(read_string(s, &c, &r), NN_OK);
        cr_expect_str_eq(s, "18", "gap %d", gap);
        free(c.px);
    }
}

Test(segment, a_lone_digit_is_normalised_exactly_as_predict_does)
{
    int i = pick(3, 0);
    struct canvas c = canvas_new(200, 120);
    paste(&c, i, 3, 50, 20);
    float x[784];
    cr_assert_eq(nn_image_normalize(x, c.px, c.w, c.h), NN_OK);
    struct nn_read_result r;
    cr_assert_eq(nn_read_number(&r, model, ws, c.px, c.w, c.h), NN_OK);
    cr_assert_eq(r.n, 1);
    float maxd = 0;
    for (int k = 0; k < 784; k++)
        maxd = fmaxf(maxd, fabsf(x[k] - r.digits[0].input[k]));
    cr_expect_leq(maxd, 1e-6f, "the 28x28 differs from nn_image_normalize's by %g", maxd);
    cr_expect_eq(r.digits[0].prediction, 3);
    free(c.px);
}

Test(segment, more_than_16_digits_is_a_range_error)
{
    int picks[17];
    for (int j = 0; j < 17; j++)
        picks[j] = pick(j % 10, j / 10);
    struct canvas c = lay_out(picks, 17, 1, 6);
    struct nn_read_result r;
    cr_expect_eq(nn_read_number(&r, model, ws, c.px, c.w, c.h), NN_ERANGE);
    cr_expect_eq(r.n, 0);
    free(c.px);
    struct canvas d = lay_out(picks, 16, 1, 6);
    cr_expect_eq(nn_read_number(&r, model, ws, d.px, d.w, d.h), NN_OK, "16 digits are fine");
    cr_expect_eq(r.n, 16);
    free(d.px);
}

Test(segment, specks_away_from_the_digits_are_ignored)
{
    int picks[3] = {pick(4, 0), pick(0, 1), pick(7, 0)};
    struct canvas c = lay_out(picks, 3, 2, 12);
    struct nn_read_result r;
    char clean[32], dusty[32];
    cr_assert_eq(read_string(clean, &c, &r), NN_OK);
    cr_assert_str_eq(clean, "407");
    /* dust: single pixels and 2x2 dots in the margins and between the digits */
    int xs[] = {2, 5, 30, c.w - 4, c.w / 2, c.w / 3 + 1}, ys[] = {2, 70, 74, 3, 76, 1};
    for (int k = 0; k < 6; k++)
        for (int dy = 0; dy < 1 + k % 2; dy++)
            for (int dx = 0; dx < 1 + k % 2; dx++)
                c.px[(size_t)(ys[k] + dy) * c.w + xs[k] + dx] = 1.0f;
    cr_assert_eq(read_string(dusty, &c, &r), NN_OK);
    cr_expect_str_eq(dusty, clean);
    free(c.px);
}

/* ---------------------------------------------------------------------------------------- */
/* Strokes that belong together                                                             */
/* ---------------------------------------------------------------------------------------- */

Test(segment, a_5_whose_flag_is_not_connected_is_one_digit)
{
    struct canvas c = canvas_new(120, 120);
    stroke(&c, 46, 20, 80, 20, 4);     /* the flag, apart from the stem */
    stroke(&c, 38, 28, 36, 56, 4);     /* the stem */
    arc(&c, 52, 72, 20, -150, 140, 4); /* the bowl */
    struct nn_read_result r;
    cr_assert_eq(nn_read_number(&r, model, ws, c.px, c.w, c.h), NN_OK);
    cr_expect_eq(r.n, 1, "one digit, not %d", r.n);
    cr_expect_leq(r.digits[0].y, 17, "the box holds the flag");
    cr_expect_eq(r.digits[0].prediction, 5);
    free(c.px);
}

/* A stroke broken near its end (a faint bit of ink, a thin pen) leaves a short piece beside
 * its digit, here a 5's flag that starts past the stem and reaches beyond the bowl: it joins
 * the digit instead of being read as one more. */
Test(segment, a_broken_off_piece_joins_its_digit)
{
    struct canvas c = canvas_new(260, 120);
    stroke(&c, 30, 20, 30, 92, 4);       /* 1 */
    stroke(&c, 90, 28, 88, 56, 4);       /* 5: the stem */
    arc(&c, 104, 72, 20, -150, 140, 4);  /* the bowl */
    stroke(&c, 112, 16, 146, 16, 4);     /* the flag, broken off the stem */
    stroke(&c, 200, 20, 200, 92, 4);     /* 1 */
    struct nn_read_result r;
    char s[32];
    cr_assert_eq(read_string(s, &c, &r), NN_OK);
    cr_expect_str_eq(s, "151");
    if (r.n == 3)
        cr_expect_leq(r.digits[1].y, 13, "the 5's box holds its flag");
    free(c.px);
}

Test(segment, a_crossed_7_is_one_digit)
{
    struct canvas c = canvas_new(120, 120);
    stroke(&c, 30, 20, 85, 20, 4);
    stroke(&c, 85, 20, 50, 100, 4);
    stroke(&c, 50, 60, 64, 60, 3); /* the bar, short of the stem */
    struct nn_read_result r;
    cr_assert_eq(nn_read_number(&r, model, ws, c.px, c.w, c.h), NN_OK);
    cr_expect_eq(r.n, 1, "one digit, not %d", r.n);
    cr_expect_eq(r.digits[0].prediction, 7);
    free(c.px);
}

Test(segment, a_4_in_two_strokes_is_one_digit)
{
    struct canvas c = canvas_new(120, 120);
    stroke(&c, 45, 15, 30, 65, 4);  /* down-left ... */
    stroke(&c, 30, 65, 66, 65, 4);  /* ... and across, ending short of the stem */
    stroke(&c, 76, 15, 76, 105, 4); /* the stem */
    struct nn_read_result r;
    cr_assert_eq(nn_read_number(&r, model, ws, c.px, c.w, c.h), NN_OK);
    cr_expect_eq(r.n, 1, "one digit, not %d", r.n);
    cr_expect_eq(r.digits[0].prediction, 4);
    free(c.px);
}

Test(segment, two_strokes_of_one_height_side_by_side_are_two_digits)
{
    struct canvas c = canvas_new(120, 120);
    stroke(&c, 40, 15, 40, 100, 4);
    stroke(&c, 56, 15, 56, 100, 4);
    struct nn_read_result r;
    char s[32];
    cr_assert_eq(read_string(s, &c, &r), NN_OK);
    cr_expect_str_eq(s, "11");
    free(c.px);
}

/* ---------------------------------------------------------------------------------------- */
/* Edges                                                                                    */
/* ---------------------------------------------------------------------------------------- */

Test(segment, a_blank_or_faint_image_is_blank)
{
    struct canvas c = canvas_new(90, 30);
    struct nn_read_result r;
    cr_expect_eq(nn_read_number(&r, model, ws, c.px, c.w, c.h), NN_EBLANK);
    cr_expect_eq(r.n, 0);
    for (int k = 0; k < c.w * c.h; k++)
        c.px[k] = (k % 7) * 0.007f; /* under 0.05 everywhere */
    cr_expect_eq(nn_read_number(&r, model, ws, c.px, c.w, c.h), NN_EBLANK);
    free(c.px);
}

Test(segment, bad_arguments_are_refused)
{
    float px[4] = {1, 0, 0, 1};
    struct nn_read_result r;
    cr_expect_eq(nn_read_number(NULL, model, ws, px, 2, 2), NN_EINVAL);
    cr_expect_eq(nn_read_number(&r, NULL, ws, px, 2, 2), NN_EINVAL);
    cr_expect_eq(nn_read_number(&r, model, NULL, px, 2, 2), NN_EINVAL);
    cr_expect_eq(nn_read_number(&r, model, ws, NULL, 2, 2), NN_EINVAL);
    cr_expect_eq(nn_read_number(&r, model, ws, px, 0, 2), NN_ERANGE);
    cr_expect_eq(nn_read_number(&r, model, ws, px, 2, NN_IMAGE_MAX_SIDE + 1), NN_ERANGE);
    cr_expect_eq(nn_read_number(&r, model, ws, px, 2, 2), NN_OK, "a 2x2 mark is read");
    cr_expect_eq(r.n, 1);
}

/* ---------------------------------------------------------------------------------------- */
/* Bounded work (issue 21)                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* A solid bar 16 times as wide as tall is a "chain" the cuts try at every place: it took
 * 1.5 s through /read before the work was bounded (the time is make bench's, in
 * bench_hostile.mjs); now it ends within the budgets. */
Test(segment, a_long_wide_mark_costs_bounded_work)
{
    const int sizes[2][2] = {{2048, 128}, {4096, 512}};
    for (int k = 0; k < 2; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        float *img = calloc((size_t)w * h, sizeof *img);
        cr_assert_not_null(img);
        for (int y = h / 8; y < h - h / 8; y++)
            for (int x = 0; x < w; x++)
                img[(size_t)y * w + x] = 1.0f;
        struct nn_read_result r;
        int rc = nn_read_number(&r, model, ws, img, w, h);
        cr_expect_eq(rc, NN_ERANGE, "%dx%d: rc %d", w, h, rc);
        cr_expect_leq(r.classified, NN_READ_MAX_CLASSIFIED);
        /* the budget is checked before each call: at most one call's box past it */
        cr_expect_leq(r.work, NN_READ_MAX_WORK + 2 * (uint64_t)w * h, "%dx%d: work %llu", w, h,
                      (unsigned long long)r.work);
        free(img);
    }
}
