/*
 * eval.c - loss, accuracy and confusion matrix of a model over a byte dataset.
 *
 * Design: the dataset stays as bytes; fixed-size chunks are converted to float as they are
 * evaluated, in parallel, and per-chunk sums are added in chunk order, so the result is the
 * same for any thread count.
 */
#include "nn_impl.h"
#include "net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CHUNK 256

void nn_bytes_to_float(float *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i] * (1.0f / 255.0f);
}

void nn_float_to_bytes(uint8_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = src[i] < 0.0f ? 0.0f : src[i] > 1.0f ? 1.0f : src[i];
        dst[i] = (uint8_t)lrintf(v * 255.0f);
    }
}

int nn_evaluate(const nn_model *model, const struct nn_dataset *ds, int threads,
                struct nn_eval *out, uint8_t *predicted)
{
    const size_t in = (size_t)nn_model_input_size(model);
    const int classes = nn_model_classes(model);
    if (!ds || !out || (size_t)ds->rows * ds->cols != in || threads < 1)
        return NN_EINVAL;
    memset(out, 0, sizeof *out);
    size_t chunks = (ds->n + CHUNK - 1) / CHUNK;
    double *losses = calloc(chunks ? chunks : 1, sizeof *losses);
    uint32_t(*conf)[NN_CLASSES_MAX][NN_CLASSES_MAX] = calloc((size_t)threads, sizeof *conf);
    size_t *nd_right = calloc((size_t)threads, sizeof *nd_right);
    int rc = NN_OK;
    if (!losses || !conf || !nd_right) {
        rc = NN_ENOMEM;
        goto done;
    }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int t = nn_thread_num();
        struct nn_net net;
        int ok = nn_net_init(&net, model, CHUNK, 1, 0) == NN_OK;
        if (!ok) {
#pragma omp atomic write
            rc = NN_ENOMEM;
        }
#pragma omp for schedule(static)
        for (size_t c = 0; c < chunks; c++) {
            if (!ok)
                continue;
            size_t lo = c * CHUNK, n = ds->n - lo < CHUNK ? ds->n - lo : CHUNK;
            nn_bytes_to_float(net.acts[0], ds->images + lo * in, n * in);
            const float *logits = nn_net_forward(model, &net, (int)n, 0);
            losses[c] =
                nn_softmax_xent(net.probs, NULL, logits, ds->labels + lo, (int)n, classes, 0.0f, 1);
            for (size_t i = 0; i < n; i++) {
                const float *pr = net.probs + i * classes;
                int y = ds->labels[lo + i];
                /* a digit is scored by the digit its model finds most likely (rejection is
                 * measured apart, nn_model_answer); a non-digit by whether class 10 wins */
                int p = y < NN_CLASSES_MAX ? nn_argmax(pr, classes < 10 ? classes : 10)
                                           : nn_argmax(pr, classes);
                if (y < NN_CLASSES_MAX && p < NN_CLASSES_MAX)
                    conf[t][y][p]++;
                else if (y == p)
                    nd_right[t]++;
                if (predicted)
                    predicted[lo + i] = (uint8_t)p;
            }
        }
        nn_net_free(&net);
    }
    if (rc)
        goto done;
    double loss = 0.0;
    size_t correct = 0;
    for (size_t c = 0; c < chunks; c++)
        loss += losses[c];
    for (int t = 0; t < threads; t++)
        for (int y = 0; y < NN_CLASSES_MAX; y++)
            for (int p = 0; p < NN_CLASSES_MAX; p++)
                out->confusion[y][p] += conf[t][y][p];
    for (int y = 0; y < NN_CLASSES_MAX; y++)
        correct += out->confusion[y][y];
    for (int t = 0; t < threads; t++)
        correct += nd_right[t];
    out->n = ds->n;
    out->loss = ds->n ? loss / (double)ds->n : 0.0;
    out->accuracy = ds->n ? (double)correct / (double)ds->n : 0.0;
done:
    free(losses);
    free(conf);
    free(nd_right);
    return rc;
}
