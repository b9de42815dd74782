/*
 * pairs.c - touching digits as "not a digit": two or three training digits placed side by side
 * so that their strokes touch or overlap, normalised as one digit (nn_image_normalize).
 *
 * Why: reading a whole number (segment.c) cuts a group of ink only where the classifier says
 * the whole is less legible than its parts. A network that has only seen single digits reads
 * a touching "37" as a 3 at 0.999, so the split never pays for itself; one that has learnt
 * that such a blob is not one digit rejects it, and the cut is tried and taken. The digits
 * come from the training images passed in (never the test set), so the pairs stay as varied
 * as the handwriting is.
 */
#include "nn.h"

#include <math.h>
#include <string.h>

#define SIDE NN_MNIST_SIDE
#define PAIR_MAX 3                      /* digits in one sample */
#define CANVAS_W (PAIR_MAX * SIDE + 8) /* room for three digits side by side */
#define CANVAS_H (SIDE + 8)             /* and their vertical offsets */
#define INK 64                          /* a byte at least this is a stroke, for placing */

/* Leftmost and rightmost ink column of each row of a 28x28 digit; -1 for an empty row. */
static void row_extent(const uint8_t *img, int left[SIDE], int right[SIDE])
{
    for (int y = 0; y < SIDE; y++) {
        left[y] = right[y] = -1;
        for (int x = 0; x < SIDE; x++)
            if (img[y * SIDE + x] >= INK) {
                if (left[y] < 0)
                    left[y] = x;
                right[y] = x;
            }
    }
}

/* Where a composed digit lies on the canvas: its ink's first and last columns. */
struct placed {
    int x0, x1;
    uint8_t label;
};

/* Draws n digits of ds side by side onto canvas (CANVAS_W x CANVAS_H, zeroed), each
 * overlapping the last by 1-4 px where they come closest, with baseline jitter. */
static void compose(float *canvas, struct placed *at, int n, const struct nn_dataset *ds,
                    struct nn_rng *g)
{
    static const int none = -1000;
    int cur_right[CANVAS_H]; /* rightmost ink so far, canvas row; none when empty */
    for (int y = 0; y < CANVAS_H; y++)
        cur_right[y] = none;
    int x_end = 0; /* one past the rightmost ink column placed */
    for (int k = 0; k < n; k++) {
        size_t i = nn_rng_below(g, (uint32_t)ds->n);
        const uint8_t *d = ds->images + i * NN_MNIST_PIXELS;
        int left[SIDE], right[SIDE];
        row_extent(d, left, right);
        int dy = 4 + (int)nn_rng_below(g, 7) - 3; /* baseline jitter: -3..3 px */
        int dx = 0;
        if (k > 0) {
            /* the offset at which this digit's ink overlaps the last one's by 1-4 px in the row
             * where they come closest */
            int overlap = 1 + (int)nn_rng_below(g, 4), need = none;
            for (int y = 0; y < SIDE; y++) {
                if (left[y] < 0 || cur_right[y + dy] == none)
                    continue;
                int s = cur_right[y + dy] - left[y] + 1 - overlap;
                need = s > need ? s : need;
            }
            dx = need != none ? need : x_end - overlap;
        }
        if (dx < 0)
            dx = 0;
        if (dx + SIDE > CANVAS_W)
            dx = CANVAS_W - SIDE;
        at[k] = (struct placed){CANVAS_W, -1, ds->labels ? ds->labels[i] : 0};
        for (int y = 0; y < SIDE; y++) {
            float *row = canvas + (size_t)(y + dy) * CANVAS_W + dx;
            for (int x = 0; x < SIDE; x++) {
                float v = (float)d[y * SIDE + x] / 255.0f;
                row[x] = v > row[x] ? v : row[x];
            }
            if (right[y] >= 0) {
                cur_right[y + dy] = dx + right[y];
                x_end = dx + right[y] + 1 > x_end ? dx + right[y] + 1 : x_end;
                at[k].x0 = dx + left[y] < at[k].x0 ? dx + left[y] : at[k].x0;
                at[k].x1 = dx + right[y] > at[k].x1 ? dx + right[y] : at[k].x1;
            }
        }
    }
}

/* nn_image_normalize of canvas columns [x0, x1] into img as bytes. */
static int normalize_columns(uint8_t img[NN_MNIST_PIXELS], float *canvas, int x0, int x1)
{
    float out[NN_MNIST_PIXELS];
    for (int y = 0; y < CANVAS_H; y++)
        for (int x = 0; x < CANVAS_W; x++)
            if (x < x0 || x > x1)
                canvas[y * CANVAS_W + x] = 0.0f;
    int rc = nn_image_normalize(out, canvas, CANVAS_W, CANVAS_H);
    if (rc != NN_OK)
        return rc;
    for (int i = 0; i < NN_MNIST_PIXELS; i++) {
        float v = out[i] < 0 ? 0 : out[i] > 1 ? 1 : out[i];
        img[i] = (uint8_t)lrintf(v * 255.0f);
    }
    return NN_OK;
}

static int usable(const struct nn_dataset *ds)
{
    return ds && ds->images && ds->n > 0 && ds->rows == SIDE && ds->cols == SIDE &&
           ds->n <= UINT32_MAX;
}

int nn_touching_image(uint8_t img[NN_MNIST_PIXELS], const struct nn_dataset *ds, uint64_t seed,
                      uint64_t index)
{
    if (!img || !usable(ds))
        return NN_EINVAL;
    float canvas[CANVAS_W * CANVAS_H];
    struct placed at[PAIR_MAX];
    struct nn_rng g;
    nn_rng_seed(&g, nn_hash3(seed, 0x70616972u, index)); /* "pair" */
    memset(canvas, 0, sizeof canvas);
    compose(canvas, at, nn_rng_uniform(&g) < 0.2f ? 3 : 2, ds, &g);
    return normalize_columns(img, canvas, 0, CANVAS_W - 1);
}

int nn_touching_cut_image(uint8_t img[NN_MNIST_PIXELS], uint8_t *label,
                          const struct nn_dataset *ds, uint64_t seed, uint64_t index)
{
    if (!img || !label || !usable(ds) || !ds->labels)
        return NN_EINVAL;
    float canvas[CANVAS_W * CANVAS_H];
    struct placed at[2];
    struct nn_rng g;
    nn_rng_seed(&g, nn_hash3(seed, 0x63757473u, index)); /* "cuts" */
    for (int attempt = 0; attempt < 8; attempt++) {
        memset(canvas, 0, sizeof canvas);
        compose(canvas, at, 2, ds, &g);
        /* a cut where the two meet: from 2 px before the right digit's first column to 2 px
         * past the left one's last (a wider overlap than that is cut somewhere in it) */
        int lo = at[1].x0 - 2, hi = at[0].x1 + 2;
        if (hi < lo) {
            int t = lo;
            lo = hi, hi = t;
        }
        int c = lo + (int)nn_rng_below(&g, (uint32_t)(hi - lo + 1));
        int right = nn_rng_uniform(&g) < 0.5f;
        int rc = right ? normalize_columns(img, canvas, c, CANVAS_W - 1)
                       : normalize_columns(img, canvas, 0, c - 1);
        if (rc == NN_EBLANK)
            continue; /* the cut left nothing on that side */
        *label = at[right].label;
        return rc;
    }
    return NN_EBLANK;
}

int nn_touching_fill(uint8_t *dst, size_t n, const struct nn_dataset *ds, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        int rc = nn_touching_image(dst + i * NN_MNIST_PIXELS, ds, seed, i);
        if (rc)
            return rc;
    }
    return NN_OK;
}

int nn_touching_cut_fill(uint8_t *dst, uint8_t *labels, size_t n, const struct nn_dataset *ds,
                         uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        int rc = nn_touching_cut_image(dst + i * NN_MNIST_PIXELS, labels + i, ds, seed, i);
        if (rc)
            return rc;
    }
    return NN_OK;
}
