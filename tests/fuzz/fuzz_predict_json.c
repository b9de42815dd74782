/*
 * fuzz_predict_json.c - the /predict JSON body: parse + validate + normalise, and a
 * differential check of the two parsers (server/request.c).
 *
 * For every input both the public path (fast path, cJSON when it gives up) and cJSON alone
 * must agree: same status, and when both accept, the same images bit for bit. Any
 * disagreement aborts, so the fuzzer reports it like a crash.
 */
#include "server/request.h"

#include "nn/nn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_image(const struct srv_image *a, const struct srv_image *b)
{
    return a->width == b->width && a->height == b->height && a->raw == b->raw &&
           a->return_input == b->return_input && !strcmp(a->model, b->model) &&
           !memcmp(a->pixels, b->pixels, (size_t)a->width * (size_t)a->height * sizeof(float));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct srv_request a, b;
    char err_a[512], err_b[512];
    int ra = srv_request_parse_json(&a, (const char *)data, size, 0, err_a, sizeof err_a);
    int rb = srv_request_parse_json(&b, (const char *)data, size, SRV_PARSE_NO_FAST, err_b,
                                    sizeof err_b);
    if (ra != rb)
        abort();
    if (ra == 0) {
        if (a.n != b.n || a.batch != b.batch)
            abort();
        for (int i = 0; i < a.n; i++)
            if (!same_image(&a.images[i], &b.images[i]))
                abort();
        for (int i = 0; i < a.n; i++) {
            const struct srv_image *im = &a.images[i];
            for (size_t k = 0; k < (size_t)im->width * (size_t)im->height; k++)
                if (!(im->pixels[k] >= 0.0f && im->pixels[k] <= 1.0f))
                    abort();
            float out[NN_MNIST_PIXELS];
            if (!im->raw) {
                int rc = nn_image_normalize(out, im->pixels, im->width, im->height);
                if (rc != NN_OK && rc != NN_EBLANK)
                    abort();
            }
        }
    } else if (!err_a[0] || strcmp(err_a, err_b) != 0) {
        abort(); /* every failure is worded, and the same way by both paths */
    }
    srv_request_free(&a);
    srv_request_free(&b);
    return 0;
}
