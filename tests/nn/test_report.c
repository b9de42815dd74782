/*
 * test_report.c - the training report writers (nn/report.c) and the atomic file writer they
 * and the model file share (nn/atomic_file.c).
 *
 * Every test works in its own mkdtemp directory, removed afterwards. The PNG is checked by
 * decoding it with stb_image; the SVG with a small tag-balance checker (no xmllint needed).
 */
#include "nn/atomic_file.h"
#include "nn/nn.h"
#include "nn/bin/report.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* stb_image compiled static, so this copy can never clash with another one linked into the
 * same test binary. stb_image 2.27 then declares static functions it never defines
 * (stbi_set_unpremultiply_on_load_thread; the GIF loader under STBI_ONLY_PNG), which GCC
 * reports at the end of the file, where a push/pop around the include no longer applies: so
 * -Wunused-function is off for the rest of this file. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image.h>

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/digits-test-report-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char sub[4096];
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void remove_tmpdir(void)
{
    if (tmpdir[0])
        remove_tree(tmpdir);
}

TestSuite(report, .init = make_tmpdir, .fini = remove_tmpdir);
TestSuite(atomic_file, .init = make_tmpdir, .fini = remove_tmpdir);

static void in_tmp(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* Whole file, NUL-terminated, in a malloc'd buffer (NULL if it cannot be read). */
static char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)n + 1);
        if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        } else if (data) {
            data[n] = '\0';
            if (size)
                *size = (size_t)n;
        }
    }
    fclose(f);
    return data;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* Entries of dir other than . and ..; *temps counts leftover "*.tmp.*" files. */
static int count_entries(const char *dir, int *temps)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (temps)
        *temps = 0;
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        if (temps && strstr(e->d_name, ".tmp."))
            (*temps)++;
    }
    closedir(d);
    return n;
}

static int count_substr(const char *s, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);
    while ((s = strstr(s, needle))) {
        n++;
        s += len;
    }
    return n;
}

/*
 * Well-formedness, enough for our generator: every start tag is closed in order, comments and
 * processing instructions are skipped, attribute values contain no '<' or '>', and every '&'
 * starts one of the five predefined entities or a character reference.
 */
static int xml_balanced(const char *s, char *why, size_t whylen)
{
    const char *stack[256];
    size_t lens[256];
    int depth = 0;
    const char *p;

    for (p = s; (p = strchr(p, '&')); p++) {
        if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) &&
            strncmp(p, "&quot;", 6) && strncmp(p, "&apos;", 6) && strncmp(p, "&#", 2)) {
            snprintf(why, whylen, "bare '&' at offset %td", p - s);
            return 0;
        }
    }
    p = s;
    while ((p = strchr(p, '<'))) {
        const char *name, *end;
        size_t nl;
        int closing;
        if (!strncmp(p, "<?", 2) || !strncmp(p, "<!--", 4)) {
            const char *close = strstr(p, p[1] == '?' ? "?>" : "-->");
            if (!close) {
                snprintf(why, whylen, "unterminated comment or PI");
                return 0;
            }
            p = close + 2;
            continue;
        }
        closing = p[1] == '/';
        name = p + 1 + closing;
        nl = strcspn(name, " \t\r\n/>");
        end = strchr(name, '>');
        if (!end || nl == 0 || memchr(name, '<', (size_t)(end - name))) {
            snprintf(why, whylen, "broken tag at offset %td", p - s);
            return 0;
        }
        if (closing) {
            if (depth == 0 || lens[depth - 1] != nl || strncmp(stack[depth - 1], name, nl)) {
                snprintf(why, whylen, "unexpected </%.*s> at offset %td", (int)nl, name, p - s);
                return 0;
            }
            depth--;
        } else if (end[-1] != '/') {
            if (depth == 256) {
                snprintf(why, whylen, "nesting too deep");
                return 0;
            }
            stack[depth] = name;
            lens[depth++] = nl;
        }
        p = end + 1;
    }
    if (depth != 0) {
        snprintf(why, whylen, "<%.*s> never closed", (int)lens[depth - 1], stack[depth - 1]);
        return 0;
    }
    return 1;
}

static struct nn_history_point point(int epoch, float train_loss, float train_acc, float test_loss,
                                     float test_acc)
{
    struct nn_history_point p = {.epoch = epoch,
                                 .step = 100 * (int64_t)epoch,
                                 .lr = 0.1f,
                                 .train_loss = train_loss,
                                 .train_acc = train_acc,
                                 .test_loss = test_loss,
                                 .test_acc = test_acc,
                                 .seconds = 1.5 * epoch};
    return p;
}

/* Writes an SVG for h into the temp dir and returns its text (caller frees). */
static char *render_svg(const struct nn_history_point *h, int n, const char *title)
{
    char path[128], err[256] = "";
    char *svg;
    in_tmp(path, sizeof path, "history.svg");
    cr_assert_eq(nn_report_history_svg(path, h, n, title, err, sizeof err), NN_OK, "%s", err);
    svg = slurp(path, NULL);
    cr_assert_not_null(svg);
    return svg;
}

static void assert_well_formed_svg(const char *svg)
{
    char why[128] = "";
    cr_assert_eq(strncmp(svg, "<svg", 4), 0, "starts with: %.20s", svg);
    cr_assert_not_null(strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
    cr_assert_not_null(strstr(svg, "viewBox=\"0 0 "));
    cr_assert(xml_balanced(svg, why, sizeof why), "not well-formed: %s", why);
    /* A NaN or infinity that slipped into a coordinate would print as nan/inf. */
    cr_assert_null(strstr(svg, "nan"));
    cr_assert_null(strstr(svg, "inf"));
    cr_assert_null(strstr(svg, "<script"));
}

/* ---------------------------------------------------------------------------------------- */
/* History CSV                                                                              */
/* ---------------------------------------------------------------------------------------- */

Test(report, history_csv_writes_every_point_with_nan_test_values_as_empty_fields)
{
    struct nn_history_point h[3] = {
        point(1, 0.5f, 0.875f, NAN, NAN),
        point(2, 0.25f, 0.9375f, 0.3125f, 0.90625f),
        point(3, 0.125f, 0.96875f, 0.2f, NAN),
    };
    char path[128], err[256] = "";
    char *csv;
    h[2].seconds = 12.25;
    in_tmp(path, sizeof path, "history.csv");
    cr_assert_eq(nn_report_history_csv(path, h, 3, err, sizeof err), NN_OK, "%s", err);
    csv = slurp(path, NULL);
    cr_assert_not_null(csv);
    cr_assert_str_eq(csv, "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,seconds\n"
                          "1,100,0.100000001,0.5,0.875,,,1.5\n"
                          "2,200,0.100000001,0.25,0.9375,0.3125,0.90625,3\n"
                          "3,300,0.100000001,0.125,0.96875,0.200000003,,12.25\n");
    free(csv);
}

Test(report, history_csv_of_no_points_is_just_the_header)
{
    char path[128], err[256] = "";
    char *csv;
    in_tmp(path, sizeof path, "empty.csv");
    cr_assert_eq(nn_report_history_csv(path, NULL, 0, err, sizeof err), NN_OK, "%s", err);
    csv = slurp(path, NULL);
    cr_assert_not_null(csv);
    cr_assert_str_eq(csv, "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,seconds\n");
    free(csv);
}

Test(report, history_csv_rejects_a_negative_count_and_writes_nothing)
{
    struct nn_history_point h[1] = {point(1, 1, 1, 1, 1)};
    char path[128], err[256] = "";
    in_tmp(path, sizeof path, "bad.csv");
    cr_assert_eq(nn_report_history_csv(path, h, -1, err, sizeof err), NN_EINVAL);
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(count_entries(tmpdir, NULL), 0);
}

Test(report, history_csv_into_a_missing_directory_fails_with_eio)
{
    struct nn_history_point h[1] = {point(1, 1, 1, 1, 1)};
    char path[128], err[256] = "";
    in_tmp(path, sizeof path, "nope/history.csv");
    cr_assert_eq(nn_report_history_csv(path, h, 1, err, sizeof err), NN_EIO);
    cr_assert_not_null(strstr(err, path), "err: %s", err);
}

/* ---------------------------------------------------------------------------------------- */
/* History SVG                                                                              */
/* ---------------------------------------------------------------------------------------- */

Test(report, history_svg_is_a_standalone_well_formed_document)
{
    struct nn_history_point h[5];
    char *svg;
    for (int i = 0; i < 5; i++)
        h[i] = point(i + 1, 1.0f / (i + 1), 0.9f + 0.01f * i, 1.2f / (i + 1), 0.89f + 0.01f * i);
    svg = render_svg(h, 5, "MLP on MNIST");
    assert_well_formed_svg(svg);
    cr_assert_not_null(strstr(svg, "font-family=\"sans-serif\""));
    cr_assert_not_null(strstr(svg, ">MLP on MNIST</text>"));
    cr_assert_not_null(strstr(svg, ">epoch</text>"));
    cr_assert_not_null(strstr(svg, ">accuracy (%)</text>"));
    cr_assert_not_null(strstr(svg, ">train</text>"), "legend has train");
    cr_assert_not_null(strstr(svg, ">test</text>"), "legend has test");
    cr_assert_eq(strcmp(svg + strlen(svg) - 7, "</svg>\n"), 0);
    free(svg);
}

Test(report, history_svg_escapes_xml_special_characters_in_the_title)
{
    struct nn_history_point h[2] = {point(1, 1, 0.5f, 1, 0.5f), point(2, 0.5f, 0.7f, 0.6f, 0.6f)};
    char *svg = render_svg(h, 2, "a<b & \"c\" > 'd' \x01 \xff caf\xc3\xa9");
    assert_well_formed_svg(svg);
    cr_assert_not_null(strstr(svg, "a&lt;b &amp; &quot;c&quot; &gt; &apos;d&apos; ? ? caf\xc3\xa9"),
                       "escaped title missing:\n%.600s", svg);
    cr_assert_null(strstr(svg, "a<b"));
    free(svg);
}

Test(report, history_svg_draws_one_polyline_per_curve)
{
    struct nn_history_point h[4];
    char *svg;
    for (int i = 0; i < 4; i++)
        h[i] = point(i + 1, 2.0f - 0.4f * i, 0.5f + 0.1f * i, 2.1f - 0.4f * i, 0.45f + 0.1f * i);
    svg = render_svg(h, 4, "curves");
    assert_well_formed_svg(svg);
    cr_assert_eq(count_substr(svg, "<polyline"), 4, "train/test loss and accuracy");
    free(svg);
}

Test(report, history_svg_of_a_single_point_draws_dots_not_lines)
{
    struct nn_history_point h[1] = {point(1, 0.3f, 0.91f, 0.35f, 0.9f)};
    char *svg = render_svg(h, 1, "one epoch");
    assert_well_formed_svg(svg);
    cr_assert_eq(count_substr(svg, "<polyline"), 0);
    cr_assert_eq(count_substr(svg, "r=\"4\""), 4, "a dot for each of the four values");
    free(svg);
}

Test(report, history_svg_skips_test_values_that_are_nan)
{
    struct nn_history_point h[4];
    char *svg;
    for (int i = 0; i < 4; i++)
        h[i] = point(i + 1, 1.0f - 0.2f * i, 0.6f + 0.1f * i, NAN, NAN);
    svg = render_svg(h, 4, "no test set");
    assert_well_formed_svg(svg);
    cr_assert_eq(count_substr(svg, "<polyline"), 2, "only the train curves");
    cr_assert_null(strstr(svg, ">test</text>"), "no legend entry for a curve that is absent");
    free(svg);

    /* Test evaluated every other epoch: the evaluated points are joined across the gaps. */
    h[1].test_loss = 0.9f, h[1].test_acc = 0.7f;
    h[3].test_loss = 0.5f, h[3].test_acc = 0.9f;
    svg = render_svg(h, 4, "sparse test set");
    assert_well_formed_svg(svg);
    cr_assert_eq(count_substr(svg, "<polyline"), 4);
    cr_assert_not_null(strstr(svg, ">test</text>"));
    cr_assert_not_null(strstr(svg, "test loss 0.5, accuracy 90.00%"), "summary has test");
    free(svg);

    /* Only the first point evaluated: a dot for each test value, and the summary says when. */
    h[1].test_loss = h[1].test_acc = h[3].test_loss = h[3].test_acc = NAN;
    h[0].test_loss = 1.25f, h[0].test_acc = 0.5f;
    svg = render_svg(h, 4, "test once");
    assert_well_formed_svg(svg);
    cr_assert_eq(count_substr(svg, "<polyline"), 2);
    cr_assert_eq(count_substr(svg, "r=\"4\""), 2, "a lone dot for test loss and accuracy");
    cr_assert_not_null(strstr(svg, "test loss 1.25, accuracy 50.00% (epoch 1)"));
    free(svg);
}

Test(report, history_svg_labels_ticks_with_nice_numbers)
{
    struct nn_history_point h[10];
    char *svg;
    for (int i = 0; i < 10; i++)
        h[i] = point(i + 1, 2.0f - 0.15f * i, 0.905f + 0.009f * i, NAN, NAN);
    svg = render_svg(h, 10, "ticks");
    assert_well_formed_svg(svg);
    /* Epochs 1..10 in about six steps: step 2 from 0 to 10. */
    for (int e = 0; e <= 10; e += 2) {
        char label[32];
        snprintf(label, sizeof label, ">%d</text>", e);
        cr_assert_not_null(strstr(svg, label), "x tick %d", e);
    }
    cr_assert_null(strstr(svg, ">3</text>"));
    /* Accuracy 90.5..98.6% in steps of 2, capped at 100; loss from 0. */
    cr_assert_not_null(strstr(svg, ">90</text>"));
    cr_assert_not_null(strstr(svg, ">100</text>"));
    cr_assert_not_null(strstr(svg, ">0.0</text>"));
    cr_assert_not_null(strstr(svg, ">2.0</text>"));
    free(svg);
}

Test(report, history_svg_of_no_points_says_so)
{
    char *svg = render_svg(NULL, 0, NULL);
    assert_well_formed_svg(svg);
    cr_assert_not_null(strstr(svg, ">no data</text>"));
    cr_assert_not_null(strstr(svg, ">Training history</text>"), "default title");
    free(svg);
}

/* ---------------------------------------------------------------------------------------- */
/* Digit grid PNG                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* Layout of nn/report.c for 28x28 digits: 6 px margin, 60x78 cells (2 px frame around a
 * 56x56 digit over an 18 px caption), 6 px gaps, 10 to a row. */
enum { MARGIN = 6, CELL_W = 60, CELL_H = 78, GAP = 6, FRAME = 2, IMG = 56 };

struct grid {
    struct nn_dataset ds;
    uint8_t predicted[16];
};

/* 12 blank digits labelled i % 10, each with one ink pixel at (row 10, col 10 + i); every
 * prediction right except image 1 (predicted 7, true 1). */
static void make_grid(struct grid *g)
{
    memset(g, 0, sizeof *g);
    g->ds.n = 12;
    g->ds.rows = g->ds.cols = 28;
    g->ds.images = calloc(12, NN_MNIST_PIXELS);
    g->ds.labels = calloc(12, 1);
    cr_assert(g->ds.images && g->ds.labels);
    for (int i = 0; i < 12; i++) {
        g->ds.labels[i] = (uint8_t)(i % 10);
        g->predicted[i] = (uint8_t)(i % 10);
        g->ds.images[(size_t)i * NN_MNIST_PIXELS + 10 * 28 + 10 + i] = 255;
    }
    g->predicted[1] = 7;
}

static void free_grid(struct grid *g)
{
    free(g->ds.images);
    free(g->ds.labels);
}

static unsigned char *render_grid(struct grid *g, int count, int *w, int *h)
{
    char path[128], err[256] = "";
    unsigned char *png, *rgb;
    size_t size;
    int comp;
    in_tmp(path, sizeof path, "grid.png");
    cr_assert_eq(nn_report_digit_grid_png(path, &g->ds, g->predicted, count, err, sizeof err),
                 NN_OK, "%s", err);
    png = (unsigned char *)slurp(path, &size);
    cr_assert_not_null(png);
    rgb = stbi_load_from_memory(png, (int)size, w, h, &comp, 3);
    cr_assert_not_null(rgb, "decode: %s", stbi_failure_reason());
    cr_assert_eq(comp, 3, "RGB output");
    free(png);
    return rgb;
}

static const unsigned char *pixel(const unsigned char *rgb, int w, int x, int y)
{
    return rgb + ((size_t)y * w + x) * 3;
}

static int is_red(const unsigned char *p) { return p[0] > 180 && p[1] < 80 && p[2] < 80; }

/* Number of red pixels on the outer frame ring of cell i. */
static int red_frame_pixels(const unsigned char *rgb, int w, int i)
{
    int x0 = MARGIN + (i % 10) * (CELL_W + GAP), y0 = MARGIN + (i / 10) * (CELL_H + GAP);
    int n = 0;
    for (int x = x0; x < x0 + CELL_W; x++)
        n += is_red(pixel(rgb, w, x, y0)) + is_red(pixel(rgb, w, x, y0 + CELL_H - 1));
    for (int y = y0; y < y0 + CELL_H; y++)
        n += is_red(pixel(rgb, w, x0, y)) + is_red(pixel(rgb, w, x0 + CELL_W - 1, y));
    return n;
}

Test(report, digit_grid_png_decodes_to_the_documented_size)
{
    struct grid g;
    int w, h;
    unsigned char *rgb;
    make_grid(&g);
    rgb = render_grid(&g, 12, &w, &h);
    cr_assert_eq(w, 2 * MARGIN + 10 * CELL_W + 9 * GAP);
    cr_assert_eq(h, 2 * MARGIN + 2 * CELL_H + GAP);
    stbi_image_free(rgb);

    rgb = render_grid(&g, 3, &w, &h);
    cr_assert_eq(w, 2 * MARGIN + 3 * CELL_W + 2 * GAP, "a short row is only as wide as needed");
    cr_assert_eq(h, 2 * MARGIN + CELL_H);
    stbi_image_free(rgb);
    free_grid(&g);
}

Test(report, digit_grid_png_frames_misclassified_digits_in_red)
{
    struct grid g;
    int w, h, perimeter = 2 * (CELL_W + CELL_H) - 4;
    unsigned char *rgb;
    make_grid(&g);
    rgb = render_grid(&g, 12, &w, &h);
    cr_assert_geq(red_frame_pixels(rgb, w, 1), perimeter, "cell 1 (7 for a 1) is wrong");
    for (int i = 0; i < 12; i++) {
        if (i != 1)
            cr_assert_eq(red_frame_pixels(rgb, w, i), 0, "cell %d is right", i);
    }
    stbi_image_free(rgb);
    free_grid(&g);
}

Test(report, digit_grid_png_shows_ink_dark_on_white_paper)
{
    struct grid g;
    int w, h;
    unsigned char *rgb;
    make_grid(&g);
    rgb = render_grid(&g, 12, &w, &h);
    for (int i = 0; i < 12; i++) {
        int ix = MARGIN + (i % 10) * (CELL_W + GAP) + FRAME;
        int iy = MARGIN + (i / 10) * (CELL_H + GAP) + FRAME;
        /* The ink pixel (row 10, col 10 + i) covers 2x2 output pixels. */
        for (int dy = 0; dy < 2; dy++) {
            for (int dx = 0; dx < 2; dx++) {
                const unsigned char *p = pixel(rgb, w, ix + 2 * (10 + i) + dx, iy + 20 + dy);
                cr_assert(p[0] == 0 && p[1] == 0 && p[2] == 0, "cell %d ink", i);
            }
        }
        cr_assert_eq(pixel(rgb, w, ix, iy)[0], 255, "cell %d paper", i);
        cr_assert_eq(pixel(rgb, w, ix + 2 * (11 + i), iy + 20)[1], 255, "cell %d paper", i);
    }
    stbi_image_free(rgb);
    free_grid(&g);
}

Test(report, digit_grid_png_captions_carry_dark_text_on_a_tinted_strip)
{
    struct grid g;
    int w, h;
    unsigned char *rgb;
    make_grid(&g);
    rgb = render_grid(&g, 2, &w, &h);
    for (int i = 0; i < 2; i++) {
        int x0 = MARGIN + i * (CELL_W + GAP) + FRAME, y0 = MARGIN + FRAME + IMG;
        int dark = 0, tint = 0;
        for (int y = y0; y < y0 + 18; y++) {
            for (int x = x0; x < x0 + IMG; x++) {
                const unsigned char *p = pixel(rgb, w, x, y);
                dark += p[0] + p[1] + p[2] < 3 * 160;
                tint += p[0] + p[1] + p[2] > 3 * 200 && !(p[0] == p[1] && p[1] == p[2]);
            }
        }
        cr_assert_gt(dark, 40, "cell %d caption has text", i);
        cr_assert_gt(tint, 300, "cell %d caption strip is tinted", i);
    }
    stbi_image_free(rgb);
    free_grid(&g);
}

Test(report, digit_grid_png_rejects_more_digits_than_the_dataset_has)
{
    struct grid g;
    char path[128], err[256] = "";
    make_grid(&g);
    in_tmp(path, sizeof path, "grid.png");
    cr_assert_eq(nn_report_digit_grid_png(path, &g.ds, g.predicted, 13, err, sizeof err),
                 NN_EINVAL);
    cr_assert_not_null(strstr(err, "13"), "err: %s", err);
    cr_assert_eq(nn_report_digit_grid_png(path, &g.ds, g.predicted, 0, err, sizeof err), NN_EINVAL);
    cr_assert_eq(nn_report_digit_grid_png(path, &g.ds, NULL, 1, err, sizeof err), NN_EINVAL);
    g.ds.rows = 0;
    cr_assert_eq(nn_report_digit_grid_png(path, &g.ds, g.predicted, 1, err, sizeof err), NN_ERANGE);
    cr_assert_eq(count_entries(tmpdir, NULL), 0);
    free_grid(&g);
}

/* ---------------------------------------------------------------------------------------- */
/* ASCII                                                                                    */
/* ---------------------------------------------------------------------------------------- */

Test(report, ascii_digit_maps_each_intensity_band_to_the_ramp)
{
    /* The lowest value of each of the ten bands v*10/256 = 0..9, then the highest value of
     * band 0 and of band 9. */
    const uint8_t px[12] = {0, 26, 52, 77, 103, 128, 154, 180, 205, 231, 25, 255};
    char buf[64];
    cr_assert_eq(nn_report_ascii_digit(buf, sizeof buf, px, 2, 6), 14);
    cr_assert_str_eq(buf, " .:-=+\n*#%@ @\n");
    cr_assert_eq(nn_report_ascii_digit(buf, sizeof buf, px, 3, 4), 15);
    cr_assert_str_eq(buf, " .:-\n=+*#\n%@ @\n");
}

Test(report, ascii_digit_truncates_and_terminates_like_snprintf)
{
    const uint8_t px[4] = {255, 255, 255, 255};
    char buf[8];
    memset(buf, 'x', sizeof buf);
    cr_assert_eq(nn_report_ascii_digit(buf, 4, px, 2, 2), 6);
    cr_assert_str_eq(buf, "@@\n");
    cr_assert_eq(buf[4], 'x', "nothing written past len");
    cr_assert_eq(nn_report_ascii_digit(buf, 1, px, 2, 2), 6);
    cr_assert_str_eq(buf, "");
    cr_assert_eq(nn_report_ascii_digit(NULL, 0, px, 2, 2), 6, "size query");
}

Test(report, ascii_digit_rejects_empty_shapes)
{
    const uint8_t px[1] = {0};
    char buf[8] = "zz";
    cr_assert_lt(nn_report_ascii_digit(buf, sizeof buf, px, 0, 1), 0);
    cr_assert_str_eq(buf, "", "still NUL-terminated");
    cr_assert_lt(nn_report_ascii_digit(buf, sizeof buf, px, 1, -1), 0);
    cr_assert_lt(nn_report_ascii_digit(buf, sizeof buf, NULL, 1, 1), 0);
}

Test(report, ascii_digit_draws_an_mnist_digit_recognisably)
{
    /* A 7x5 "1": a vertical stroke with a foot. */
    const uint8_t px[35] = {
        0, 0, 255, 0, 0,   0, 255, 255, 0, 0,   0, 0, 255, 0,   0,   0,   0, 255,
        0, 0, 0,   0, 255, 0, 0,   0,   0, 255, 0, 0, 0,   255, 255, 255, 0,
    };
    char buf[64];
    cr_assert_eq(nn_report_ascii_digit(buf, sizeof buf, px, 7, 5), 42);
    cr_assert_str_eq(buf, "  @  \n @@  \n  @  \n  @  \n  @  \n  @  \n @@@ \n");
}

/* ---------------------------------------------------------------------------------------- */
/* Atomic file writes                                                                       */
/* ---------------------------------------------------------------------------------------- */

Test(atomic_file, writes_a_new_file_with_exactly_the_given_bytes)
{
    static const char data[] = "hello\0world";
    char path[128], err[256] = "";
    char *got;
    size_t size = 0;
    struct stat st;
    int temps;
    in_tmp(path, sizeof path, "new.bin");
    cr_assert_eq(nn_atomic_write(path, data, sizeof data, err, sizeof err), NN_OK, "%s", err);
    got = slurp(path, &size);
    cr_assert_not_null(got);
    cr_assert_eq(size, sizeof data);
    cr_assert_eq(memcmp(got, data, size), 0);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644);
    cr_assert_eq(count_entries(tmpdir, &temps), 1);
    cr_assert_eq(temps, 0);
    free(got);
}

Test(atomic_file, replaces_an_existing_file)
{
    char path[128], err[256] = "";
    char *got;
    in_tmp(path, sizeof path, "model.bin");
    spit(path, "the old and rather longer contents\n");
    cr_assert_eq(nn_atomic_write(path, "new", 3, err, sizeof err), NN_OK, "%s", err);
    got = slurp(path, NULL);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, "new");
    cr_assert_eq(count_entries(tmpdir, NULL), 1);
    free(got);
}

Test(atomic_file, writes_an_empty_file)
{
    char path[128], err[256] = "";
    size_t size = 99;
    char *got;
    in_tmp(path, sizeof path, "empty");
    cr_assert_eq(nn_atomic_write(path, NULL, 0, err, sizeof err), NN_OK, "%s", err);
    got = slurp(path, &size);
    cr_assert_not_null(got);
    cr_assert_eq(size, 0);
    free(got);
}

Test(atomic_file, accepts_a_bare_file_name_in_the_current_directory)
{
    char err[256] = "";
    char *got;
    cr_assert_eq(chdir(tmpdir), 0);
    cr_assert_eq(nn_atomic_write("plain.txt", "x", 1, err, sizeof err), NN_OK, "%s", err);
    got = slurp("plain.txt", NULL);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, "x");
    free(got);
}

Test(atomic_file, into_a_missing_directory_fails_with_eio_and_leaves_nothing)
{
    char path[128], err[256] = "";
    in_tmp(path, sizeof path, "missing/model.bin");
    cr_assert_eq(nn_atomic_write(path, "data", 4, err, sizeof err), NN_EIO);
    cr_assert_eq(strncmp(err, path, strlen(path)), 0, "err starts with the path: %s", err);
    cr_assert_not_null(strstr(err, strerror(ENOENT)), "err: %s", err);
    cr_assert_eq(count_entries(tmpdir, NULL), 0);
}

Test(atomic_file, over_a_non_empty_directory_fails_and_leaves_it_and_no_temp_file)
{
    char path[128], inner[160], err[256] = "";
    int temps;
    struct stat st;
    in_tmp(path, sizeof path, "target");
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(inner, sizeof inner, "%s/keep", path);
    spit(inner, "kept");
    cr_assert_eq(nn_atomic_write(path, "data", 4, err, sizeof err), NN_EIO);
    cr_assert_not_null(strstr(err, "not a regular file (a directory), not replacing it"),
                       "err says why: %s", err);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISDIR(st.st_mode), "the directory is still there");
    cr_assert_eq(count_entries(path, NULL), 1);
    cr_assert_eq(count_entries(tmpdir, &temps), 1);
    cr_assert_eq(temps, 0);
}

Test(atomic_file, a_failed_write_leaves_the_old_file_intact_and_no_temp_file)
{
    /* A file-size limit makes write(2) fail with EFBIG even as root. Criterion runs each test
     * in its own process, so the limit ends with the test. */
    enum { BIG = 1 << 16 };
    struct rlimit rl;
    char path[128], err[256] = "";
    char *big, *got;
    int temps;
    in_tmp(path, sizeof path, "model.bin");
    spit(path, "old model\n");
    big = calloc(1, BIG);
    cr_assert_not_null(big);
    cr_assert_neq(signal(SIGXFSZ, SIG_IGN), SIG_ERR);
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = 1024;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0, "setrlimit: %s", strerror(errno));

    cr_assert_eq(nn_atomic_write(path, big, BIG, err, sizeof err), NN_EIO);
    cr_assert_not_null(strstr(err, "writing"), "err: %s", err);
    got = slurp(path, NULL);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, "old model\n");
    cr_assert_eq(count_entries(tmpdir, &temps), 1);
    cr_assert_eq(temps, 0);
    free(got);
    free(big);
}

Test(atomic_file, rejects_an_empty_path)
{
    char err[256] = "";
    cr_assert_eq(nn_atomic_write("", "x", 1, err, sizeof err), NN_EINVAL);
    cr_assert_eq(nn_atomic_write(NULL, "x", 1, NULL, 0), NN_EINVAL, "err may be NULL");
}

/* ---------------------------------------------------------------------------------------- */
/* Whole-file reads (nn_read_file, the loaders' counterpart in the same module)             */
/* ---------------------------------------------------------------------------------------- */

Test(atomic_file, read_file_returns_exactly_the_bytes_written)
{
    static const char data[] = "abc\0def";
    char path[128], err[256] = "";
    void *got = NULL;
    size_t size = 0;
    in_tmp(path, sizeof path, "r.bin");
    cr_assert_eq(nn_atomic_write(path, data, sizeof data, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_read_file(path, 1024, &got, &size, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(size, sizeof data);
    cr_assert_eq(memcmp(got, data, size), 0);
    free(got);
}

Test(atomic_file, read_file_refuses_a_file_over_the_size_limit)
{
    char path[128], err[256] = "";
    void *got = (void *)1;
    size_t size = 1;
    in_tmp(path, sizeof path, "big.bin");
    spit(path, "0123456789");
    cr_assert_eq(nn_read_file(path, 9, &got, &size, err, sizeof err), NN_ERANGE);
    cr_assert_null(got);
    cr_assert_eq(size, 0);
    cr_assert_not_null(strstr(err, path), "err: %s", err);
    cr_assert_eq(nn_read_file(path, 10, &got, &size, err, sizeof err), NN_OK, "at the limit");
    cr_assert_eq(size, 10);
    free(got);
}

/* A FIFO is opened without blocking and refused (a blocking open would wait for a writer);
 * /dev/zero is refused without a byte read (it would fill any size limit). */
Test(atomic_file, read_file_refuses_a_fifo_and_a_device_at_once, .timeout = 10)
{
    char path[128], err[256] = "";
    void *got = (void *)1;
    size_t size = 1;
    in_tmp(path, sizeof path, "fifo");
    cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
    cr_assert_eq(nn_read_file(path, 1024, &got, &size, err, sizeof err), NN_EIO);
    cr_assert_null(got);
    cr_assert_eq(size, 0);
    char want[192];
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", path);
    cr_assert_str_eq(err, want);
    cr_assert_eq(nn_read_file("/dev/zero", (size_t)512 << 20, &got, &size, err, sizeof err),
                 NN_EIO);
    cr_assert_str_eq(err, "/dev/zero: not a regular file (a character device)");
    cr_assert_null(got);
}

Test(atomic_file, read_file_ends_the_bytes_with_a_nul)
{
    char path[128], err[256] = "";
    void *got = NULL;
    size_t size = 0;
    in_tmp(path, sizeof path, "text");
    spit(path, "a\tb\n");
    cr_assert_eq(nn_read_file(path, 16, &got, &size, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(size, 4);
    cr_assert_str_eq(got, "a\tb\n");
    free(got);
    in_tmp(path, sizeof path, "empty");
    spit(path, "");
    cr_assert_eq(nn_read_file(path, 16, &got, &size, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(size, 0);
    cr_assert_str_eq(got, "");
    free(got);
}

/* rename(2) over a FIFO or a device would replace it by a regular file (as root, even
 * /dev/null): the writer refuses before it writes anything, and leaves no temporary file. */
Test(atomic_file, write_refuses_to_replace_a_fifo, .timeout = 10)
{
    char path[128], err[256] = "", want[192];
    struct stat st;
    int temps = 0;
    in_tmp(path, sizeof path, "fifo.csv");
    cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
    cr_assert_eq(nn_atomic_write(path, "x", 1, err, sizeof err), NN_EIO);
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO), not replacing it", path);
    cr_assert_str_eq(err, want);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode), "the FIFO is still there");
    cr_assert_eq(count_entries(tmpdir, &temps), 1);
    cr_assert_eq(temps, 0);
}

Test(atomic_file, read_file_of_a_missing_file_or_a_directory_fails_with_eio)
{
    char path[128], err[256] = "";
    void *got = NULL;
    size_t size = 0;
    in_tmp(path, sizeof path, "absent");
    cr_assert_eq(nn_read_file(path, 1024, &got, &size, err, sizeof err), NN_EIO);
    cr_assert_not_null(strstr(err, strerror(ENOENT)), "err: %s", err);
    cr_assert_eq(nn_read_file(tmpdir, 1024, &got, &size, err, sizeof err), NN_EIO);
    cr_assert_not_null(strstr(err, strerror(EISDIR)), "err: %s", err);
    cr_assert_null(got);
}
