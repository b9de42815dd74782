/*
 * fuzz_image.c - image uploads: sniff, the header-only checks (srv_image_header_pixels, the JPEG
 * segment walk), decoding (TurboJPEG with DCT scaling and EXIF orientation through libexif for
 * JPEG, stb_image for PNG/BMP/GIF), grayscale and polarity (nn_image_from_pixels8), MNIST
 * normalisation (server/decode.c, server/jpeg.c, server/preflight.c). Every accepted image must
 * be within the limits that every decoded image has, whatever its file said, and must decode to
 * the same pixels again after the stack below the decoder has been overwritten: memory a
 * decode did not write (stb's palettes on its stack) must never reach an answer.
 */
#include "server/decode.h"
#include "server/jpeg.h"

#include "nn/nn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fills 256 KiB of the stack below the caller with bytes seeded by v. */
__attribute__((noinline)) static void dirty_stack(unsigned v)
{
    volatile uint8_t junk[1 << 18];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(v + i * 131);
}

/* The same pixels as px8 (w x h x c) from a second decode over a dirtied stack. */
static void check_same_again(const uint8_t *px8, int w, int h, int c, const uint8_t *data,
                             size_t size)
{
    dirty_stack((unsigned)size);
    uint8_t *again = NULL;
    int w2 = 0, h2 = 0, c2 = 0;
    char err[512];
    if (srv_image_decode_pixels(&again, &w2, &h2, &c2, data, size, err, sizeof err) != 0 ||
        w2 != w || h2 != h || c2 != c || memcmp(again, px8, (size_t)w * (size_t)h * (size_t)c))
        abort();
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)srv_image_sniff(data, size);
    (void)srv_image_header_pixels(data, size);
    struct srv_jpeg_info info;
    if (srv_jpeg_probe(&info, data, size) == 0) {
        if (info.width < 0 || info.height < 0 || (info.exif && info.exif_len < 6))
            abort();
        int o = srv_jpeg_orientation(info.exif, info.exif_len);
        if (o < 1 || o > 8)
            abort();
    }
    uint8_t *px8 = NULL;
    int w = 0, h = 0, c = 0;
    char err[512];
    int rc = srv_image_decode_pixels(&px8, &w, &h, &c, data, size, err, sizeof err);
    if (rc == 0) {
        if (!px8 || w < 1 || h < 1 || w > SRV_IMAGE_MAX_SIDE || h > SRV_IMAGE_MAX_SIDE ||
            (int64_t)w * h > SRV_IMAGE_MAX_PIXELS || c < 1 || c > 4)
            abort();
        check_same_again(px8, w, h, c, data, size);
        /* every orientation of what came out, the same size with the sides swapped or not */
        int ow = 0, oh = 0, o = (int)(size % 8) + 1;
        uint8_t *r = srv_pixels_orient(px8, w, h, c, o, &ow, &oh);
        if (r && !((o >= 5 && ow == h && oh == w) || (o < 5 && ow == w && oh == h)))
            abort();
        free(r);
    } else if (px8) {
        abort();
    }
    free(px8);

    float *px = NULL;
    rc = srv_image_decode(&px, &w, &h, data, size, err, sizeof err);
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
