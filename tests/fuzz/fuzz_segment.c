/*
 * fuzz_segment.c - nn_read_number (nn/segment.c) on arbitrary small ink images.
 *
 * Input: byte 0 = width - 1 (mod 64), byte 1 = height - 1 (mod 64), then one byte per pixel
 * (value / 255; missing pixels are 0). A small CNN built once in code (seed 1) reads them, so
 * the classifier's answers are arbitrary and every split decision gets exercised. Checked: the
 * status is one of the documented ones, no digits unless NN_OK and then 1..NN_READ_MAX_DIGITS,
 * boxes inside the image, probabilities summing to 1, the prediction their argmax, and nothing
 * leaks or reads out of bounds (under ASan with libFuzzer).
 * Replayed over tests/fuzz/corpus/segment by `make test`, run with libFuzzer by `make fuzz`.
 */
#include "nn/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static nn_model *model;
static nn_workspace *ws;

static void build_model(void)
{
    struct nn_layer_spec layers[NN_MAX_LAYERS];
    int n = 0;
    struct nn_rng rng;
    char err[256];
    nn_rng_seed(&rng, 1);
    if (nn_arch_parse(layers, NN_MAX_LAYERS, &n, "conv:4:5,pool:2,dense:10", NN_LAYER_RELU, err,
                      sizeof err) != NN_OK ||
        nn_model_new(&model, 1, NN_MNIST_SIDE, NN_MNIST_SIDE, layers, n, &rng, err, sizeof err) !=
            NN_OK ||
        nn_workspace_new(&ws, model, 1) != NN_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model)
        build_model();
    if (size < 2)
        return 0;
    int w = 1 + data[0] % 64, h = 1 + data[1] % 64;
    float *px = calloc((size_t)w * h, sizeof *px);
    struct nn_read_result *r = malloc(sizeof *r);
    if (!px || !r)
        abort();
    for (size_t k = 0; k < (size_t)w * h && k + 2 < size; k++)
        px[k] = data[k + 2] / 255.0f;
    int rc = nn_read_number(r, model, ws, px, w, h);
    if (rc != NN_OK && rc != NN_EBLANK && rc != NN_ERANGE)
        abort();
    if (rc != NN_OK && r->n != 0)
        abort();
    if (rc == NN_OK && (r->n < 1 || r->n > NN_READ_MAX_DIGITS))
        abort();
    for (int j = 0; j < (rc == NN_OK ? r->n : 0); j++) {
        const struct nn_read_digit *d = &r->digits[j];
        if (d->x < 0 || d->y < 0 || d->w < 1 || d->h < 1 || d->x + d->w > w || d->y + d->h > h)
            abort();
        double sum = 0;
        for (int c = 0; c < 10; c++)
            sum += d->probs[c];
        if (!(fabs(sum - 1.0) < 1e-3) || nn_argmax(d->probs, 10) != d->prediction)
            abort();
    }
    free(px);
    free(r);
    return 0;
}
