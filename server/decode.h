/*
 * decode.h - image uploads (PNG, JPEG, BMP, GIF) to ink values.
 *
 * JPEG goes through libjpeg-turbo and libexif (jpeg.h): photos up to 48 MP, scaled down by the
 * decoder itself and turned upright. PNG, BMP and GIF go through stb_image, up to the limits
 * every image has after decoding (4096 per side, 4 MP): stb decodes the whole image before
 * anything could shrink it (a 16 MP RGBA PNG would cost 2 x 64 MiB and ~0.2 s), and a phone
 * writes its photos as JPEG, so larger ones are refused with a sentence naming the limits.
 *
 * stb_image is compiled once, in decode.c, with only three formats, STBI_MAX_DIMENSIONS
 * and an allocator that refuses any single block over a cap, so a small body cannot make the
 * decoder allocate without bound (a PNG's zlib stream can expand far past the image size).
 * Dimensions are read with stbi_info_from_memory and checked before anything is decoded.
 * Pure functions, no HTTP: the fuzz target tests/fuzz/fuzz_image.c calls them directly.
 */
#ifndef SRV_DECODE_H
#define SRV_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Every image handed on (and every PNG, BMP or GIF accepted) is within these. */
#define SRV_IMAGE_MAX_SIDE 4096            /* = NN_IMAGE_MAX_SIDE */
#define SRV_IMAGE_MAX_PIXELS (2048 * 2048) /* width * height */

/*
 * Decodes an image of len bytes and converts it to ink values with nn_image_from_pixels8
 * (alpha composited on white, grayscale, polarity from the border: 1 = ink).
 * On success *out holds w*h floats (free() it) and *w, *h are set; returns 0.
 * Errors (with a sentence for the client in err): NN_EFORMAT (not an image we accept, or
 * corrupt or truncated), NN_ERANGE (dimensions over the limits, or a JPEG whose decoding
 * would need more than SRV_DECODE_BUDGET), NN_ENOMEM. Thread-safe.
 */
int srv_image_decode(float **out, int *w, int *h, const void *data, size_t len, char *err,
                     size_t errlen);

/*
 * The decoding step of srv_image_decode alone: upright 8-bit pixels, 1..4 channels (gray,
 * gray+alpha, RGB, RGBA) as nn_image_from_pixels8 takes them, within SRV_IMAGE_MAX_SIDE and
 * SRV_IMAGE_MAX_PIXELS (JPEGs scaled down as jpeg.h says). On success *out (free()) holds
 * (*w)*(*h)*(*channels) bytes; returns 0. Errors as srv_image_decode. Thread-safe.
 */
int srv_image_decode_pixels(uint8_t **out, int *w, int *h, int *channels, const void *data,
                            size_t len, char *err, size_t errlen);

/* Width x height by the header (reads headers only; 0 for anything unreadable): what the
 * server weighs an upload by before decoding it (http.c: over 1 MP is expensive). */
int64_t srv_image_header_pixels(const void *data, size_t len);

/* Whether the first bytes look like PNG, JPEG, BMP or GIF ("png", ...; NULL if none). */
const char *srv_image_sniff(const void *data, size_t len);

#endif
