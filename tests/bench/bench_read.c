/*
 * bench_read.c - nn_read_number on a 6-digit number 1000x300 (issue 18's target: under 2 ms),
 * the work of POST /read after decoding: marks, groups, the cuts tried, one classification per
 * digit and per candidate half, with the shipped CNN on one core. Digits are MNIST test images
 * drawn 4x: their 112 px boxes 20 px apart, then overlapping by 40 px (their ink close), then
 * by 60 px (most of them touching: the number is one or two chains, read by cuts). Prints one
 * JSON line per case: median microseconds over 41 runs and the classifier calls made.
 */
#include "bench_util.h"

#include "nn/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 1000, H = 300, DIGITS = 6, SCALE = 4, RUNS = 41 };

/* Digit k of the test set, 28x28 drawn SCALE times larger at (ox, oy), maximum with what is
 * there (so touching digits overlap instead of covering each other). */
static void draw(float *img, const struct nn_dataset *ds, size_t k, int ox, int oy)
{
    for (int y = 0; y < 28 * SCALE; y++)
        for (int x = 0; x < 28 * SCALE; x++) {
            int X = ox + x, Y = oy + y;
            if (X < 0 || Y < 0 || X >= W || Y >= H)
                continue;
            float v = ds->images[k * 784 + (y / SCALE) * 28 + x / SCALE] / 255.0f;
            float *p = &img[(size_t)Y * W + X];
            *p = v > *p ? v : *p;
        }
}

static int run_case(const char *name, const nn_model *m, nn_workspace *ws,
                    const struct nn_dataset *ds, int step)
{
    float *img = calloc((size_t)W * H, sizeof *img);
    struct nn_read_result *res = malloc(sizeof *res);
    double t[RUNS];
    if (!img || !res) {
        free(img);
        free(res);
        return 1;
    }
    for (int d = 0; d < DIGITS; d++)
        draw(img, ds, (size_t)d, 40 + d * step, 90);
    int rc = NN_OK;
    for (int r = 0; r < RUNS && rc == NN_OK; r++) {
        double t0 = bench_now();
        rc = nn_read_number(res, m, ws, img, W, H);
        t[r] = bench_now() - t0;
    }
    if (rc != NN_OK) {
        fprintf(stderr, "bench_read: %s: %s\n", name, nn_strerror(rc));
        free(img);
        free(res);
        return 1;
    }
    char number[NN_READ_MAX_DIGITS + 1];
    for (int j = 0; j < res->n; j++)
        number[j] = res->digits[j].prediction >= 0 ? (char)('0' + res->digits[j].prediction) : '?';
    number[res->n] = 0;
    printf("{\"bench\":\"read\",\"case\":\"%s\",\"size\":\"%dx%d\",\"metric\":\"median_us\","
           "\"value\":%.1f,\"classified\":%d,\"digits_found\":%d,\"number\":\"%s\"}\n",
           name, W, H, 1e6 * bench_median(t, RUNS), res->classified, res->n, number);
    free(img);
    free(res);
    return 0;
}

int main(void)
{
    const char *dir = getenv("MNIST_DIR") ? getenv("MNIST_DIR") : "data/mnist";
    char err[512];
    struct nn_dataset ds = {0};
    nn_model *m = NULL;
    nn_workspace *ws = NULL;
    int status = 1;
    if (nn_dataset_load_mnist(&ds, dir, "test", err, sizeof err) ||
        nn_model_load(&m, "models/mnist-cnn.model", err, sizeof err)) {
        fprintf(stderr, "bench_read: %s\n", err);
        goto done;
    }
    if (nn_workspace_new(&ws, m, 1)) {
        fprintf(stderr, "bench_read: out of memory\n");
        goto done;
    }
    if (run_case("separated", m, ws, &ds, 28 * SCALE + 20) ||
        run_case("close", m, ws, &ds, 28 * SCALE - 40) ||
        run_case("touching", m, ws, &ds, 28 * SCALE - 60))
        goto done;
    status = 0;
done:
    nn_workspace_free(ws);
    nn_model_free(m);
    nn_dataset_free(&ds);
    return status;
}
