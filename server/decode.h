/*
 * decode.h - image uploads (PNG, JPEG, BMP, GIF) to ink values, via stb_image.
 *
 * stb_image is compiled once, in decode.c, with only these four formats, STBI_MAX_DIMENSIONS
 * and an allocator that refuses any single block over a cap, so a small body cannot make the
 * decoder allocate without bound (a PNG's zlib stream can expand far past the image size).
 * Dimensions are read with stbi_info_from_memory and checked before anything is decoded.
 * Pure functions, no HTTP: the fuzz target tests/fuzz/fuzz_image.c calls them directly.
 */
#ifndef SRV_DECODE_H
#define SRV_DECODE_H

#include <stddef.h>

#define SRV_IMAGE_MAX_SIDE 4096            /* = NN_IMAGE_MAX_SIDE */
#define SRV_IMAGE_MAX_PIXELS (2048 * 2048) /* width * height */

/*
 * Decodes an image of len bytes and converts it to ink values with nn_image_from_pixels8
 * (alpha composited on white, grayscale, polarity from the border: 1 = ink).
 * On success *out holds w*h floats (free() it) and *w, *h are set; returns 0.
 * Errors (with a sentence for the client in err): NN_EFORMAT (not an image we accept, or
 * corrupt), NN_ERANGE (dimensions over the limits), NN_ENOMEM. Thread-safe.
 */
int srv_image_decode(float **out, int *w, int *h, const void *data, size_t len, char *err,
                     size_t errlen);

/* Whether the first bytes look like PNG, JPEG, BMP or GIF ("png", ...; NULL if none). */
const char *srv_image_sniff(const void *data, size_t len);

#endif
