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
#include "nn_impl.h"

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

int nn_touching_image(uint8_t img[NN_MNIST_PIXELS], const struct nn_dataset *ds, uint64_t seed,
                      uint64_t index)
{
    if (!img || !ds || !ds->images || ds->n == 0 || ds->rows != SIDE || ds->cols != SIDE ||
        ds->n > UINT32_MAX)
        return NN_EINVAL;
    static const int none = -1000;
    float canvas[CANVAS_W * CANVAS_H], out[NN_MNIST_PIXELS];
    int cur_right[CANVAS_H]; /* rightmost ink so far, canvas row; none when empty */
    struct nn_rng g;
    nn_rng_seed(&g, nn_hash3(seed, 0x70616972u, index)); /* "pair" */
    memset(canvas, 0, sizeof canvas);
    for (int y = 0; y < CANVAS_H; y++)
        cur_right[y] = none;
    const int n = nn_rng_uniform(&g) < 0.2f ? 3 : 2;
    int x_end = 0; /* one past the rightmost ink column placed */
    for (int k = 0; k < n; k++) {
        const uint8_t *d = ds->images + (size_t)nn_rng_below(&g, (uint32_t)ds->n) * NN_MNIST_PIXELS;
        int left[SIDE], right[SIDE];
        row_extent(d, left, right);
        int dy = 4 + (int)nn_rng_below(&g, 7) - 3; /* baseline jitter: -3..3 px */
        int dx = 0;
        if (k > 0) {
            /* the offset at which this digit's ink overlaps the last one's by 1-4 px in the row
             * where they come closest */
            int overlap = 1 + (int)nn_rng_below(&g, 4), need = none;
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
        for (int y = 0; y < SIDE; y++) {
            float *row = canvas + (size_t)(y + dy) * CANVAS_W + dx;
            for (int x = 0; x < SIDE; x++) {
                float v = (float)d[y * SIDE + x] / 255.0f;
                row[x] = v > row[x] ? v : row[x];
            }
            if (right[y] >= 0) {
                cur_right[y + dy] = dx + right[y];
                x_end = dx + right[y] + 1 > x_end ? dx + right[y] + 1 : x_end;
            }
        }
    }
    int rc = nn_image_normalize(out, canvas, CANVAS_W, CANVAS_H);
    if (rc != NN_OK)
        return rc;
    nn_float_to_bytes(img, out, NN_MNIST_PIXELS);
    return NN_OK;
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
