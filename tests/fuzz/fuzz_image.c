/*
 * fuzz_image.c - image uploads: sniff, stb_image decode (with the header checked first),
 * grayscale and polarity (nn_image_from_pixels8), MNIST normalisation (server/decode.c).
 */
#include "server/decode.h"

#include "nn/nn.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)srv_image_sniff(data, size);
    float *px = NULL;
    int w = 0, h = 0;
    char err[512];
    int rc = srv_image_decode(&px, &w, &h, data, size, err, sizeof err);
    if (rc == 0) {
        if (!px || w < 1 || h < 1 || w > SRV_IMAGE_MAX_SIDE || h > SRV_IMAGE_MAX_SIDE ||
            (int64_t)w * h > SRV_IMAGE_MAX_PIXELS)
            abort();
        for (size_t k = 0; k < (size_t)w * (size_t)h; k++)
            if (!(px[k] >= 0.0f && px[k] <= 1.0f))
                abort();
        float out[NN_MNIST_PIXELS];
        int n = nn_image_normalize(out, px, w, h);
        if (n != NN_OK && n != NN_EBLANK)
            abort();
    } else if (px) {
        abort();
    }
    free(px);
    return 0;
}
