/*
 * decode.c - the one place stb_image is compiled (see decode.h); JPEG goes to jpeg.c, and
 * preflight.c walks a PNG, BMP or GIF before stb sees it.
 */
#include "decode.h"
#include "err.h"
#include "jpeg.h"
#include "preflight.h"

#include "nn/nn.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest single block the decoder may allocate: a 16-bit RGBA image at the pixel limit
 * (32 MiB) plus PNG filter bytes, with room to spare. */
#define DECODE_MAX_ALLOC ((size_t)64 << 20)

/* Cleared: stb_image 2.27 can read a JPEG Huffman table the file never defined from the
 * memory it allocated for its decoder (a fuzzer found an assertion failure in
 * stbi__jpeg_huff_decode that only happened after other inputs had been decoded in the same
 * process); zeros make that deterministic. */
static void *decode_malloc(size_t n) { return n <= DECODE_MAX_ALLOC ? calloc(1, n) : NULL; }

static void *decode_realloc(void *p, size_t n)
{
    return n <= DECODE_MAX_ALLOC ? realloc(p, n) : NULL;
}

#define STBI_MALLOC(sz) decode_malloc(sz)
#define STBI_REALLOC(p, newsz) decode_realloc(p, newsz)
#define STBI_FREE(p) free(p)
/* above our own limit, so that the header of a larger PNG is read and refused in words */
#define STBI_MAX_DIMENSIONS SRV_JPEG_MAX_SIDE
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
/* stb_image 2.27 has undefined behaviour on some corrupt input that is harmless on the machine
 * but stops a -fsanitize=undefined build at once: shifts by negative or >= 32 bit counts when a
 * JPEG's entropy data runs out, memcpy(NULL, NULL, 0) and NULL + 0 (fixed upstream after 2.27).
 * Those three checks are turned off for stb's functions only; every other check, and ASan,
 * stay on. The standard headers stb uses come first, so the `static` macro (GCC has no pragma
 * for this) only ever touches stb's own declarations. */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#define STB_NO_SAN __attribute__((no_sanitize("shift", "pointer-overflow", "nonnull-attribute")))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wattributes"
#if defined(__clang__)
#pragma clang attribute push(STB_NO_SAN, apply_to = function)
#elif defined(__GNUC__)
#define static static STB_NO_SAN
#endif
#include <stb_image.h>
#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#undef static
#endif
#pragma GCC diagnostic pop
/* stb declares a static function it never defines; the warning fires at the end of the file. */
#pragma GCC diagnostic ignored "-Wunused-function"

const char *srv_image_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return "png";
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return "jpeg";
    if (len >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
        return "gif";
    if (len >= 2 && p[0] == 'B' && p[1] == 'M')
        return "bmp";
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* stb_image, one format at a time                                                          */
/* ---------------------------------------------------------------------------------------- */

/* stbi_info_from_memory and stbi_load_from_memory try every format in turn, and each attempt
 * that fails sets the failure reason: a BMP's header error came out as "unknown image type",
 * a GIF's load error could read "bad png sig" (the PNG test's), and a path that fails
 * without a reason left the previous call's (this thread's: another request's, in another
 * format). So the format's own functions are called (stb is compiled in this file), with the
 * reason cleared first. */
static int stb_format(const char *kind) { return kind[0] == 'p' ? 0 : kind[0] == 'b' ? 1 : 2; }

static const char *stb_reason(void)
{
    const char *r = stbi_failure_reason();
    if (!r || !*r)
        return "corrupt";
    /* stb names an unknown critical PNG chunk in a static buffer every thread shares (the
     * preflight refuses those first; never quote another request's bytes) */
    if (strstr(r, "PNG chunk not known"))
        return "unknown critical chunk";
    return r;
}

/* The header's size and channels, as the format's info function reads them; a BMP's height is
 * made positive (a negative one is a top-down file, which stbi__bmp_load flips itself). */
static int stb_info(const char *kind, const void *data, size_t len, int *w, int *h, int *c)
{
    stbi__context s;
    stbi__g_failure_reason = NULL;
    stbi__start_mem(&s, data, (int)len);
    int fmt = stb_format(kind);
    int ok = fmt == 0   ? stbi__png_info(&s, w, h, c)
             : fmt == 1 ? stbi__bmp_info(&s, w, h, c)
                        : stbi__gif_info(&s, w, h, c);
    if (ok && fmt == 1 && *h < 0 && *h != INT_MIN)
        *h = -*h;
    return ok;
}

/* stbi_load_from_memory(data, len, w, h, c, 0) for one format: 8 bits per channel (a 16-bit
 * PNG converted as stbi__load_and_postprocess_8bit does), never flipped. NULL on failure. */
static unsigned char *stb_load(const char *kind, const uint8_t *data, size_t len, int *w, int *h,
                               int *c)
{
    stbi__context s;
    stbi__result_info ri;
    memset(&ri, 0, sizeof ri);
    ri.bits_per_channel = 8;
    ri.channel_order = STBI_ORDER_RGB;
    stbi__g_failure_reason = NULL;
    stbi__start_mem(&s, data, (int)len);
    int fmt = stb_format(kind);
    void *px = fmt == 0   ? stbi__png_load(&s, w, h, c, 0, &ri)
               : fmt == 1 ? stbi__bmp_load(&s, w, h, c, 0, &ri)
                          : stbi__gif_load(&s, w, h, c, 0, &ri); /* the first frame only */
    if (px && ri.bits_per_channel == 16)
        px = stbi__convert_16_to_8(px, *w, *h, *c);
    return px;
}

/* ---------------------------------------------------------------------------------------- */
/* Public                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* The header's width and height for any format we accept; 0 when unreadable. */
static int image_size(const void *data, size_t len, int *w, int *h)
{
    *w = *h = 0;
    const char *kind = srv_image_sniff(data, len);
    if (!kind || len > INT_MAX)
        return 0;
    if (!strcmp(kind, "jpeg")) {
        struct srv_jpeg_info info;
        if (srv_jpeg_probe(&info, data, len) != 0)
            return 0;
        *w = info.width;
        *h = info.height;
        return 1;
    }
    int c = 0;
    return stb_info(kind, data, len, w, h, &c);
}

int64_t srv_image_header_pixels(const void *data, size_t len)
{
    int w, h;
    return image_size(data, len, &w, &h) && w > 0 && h > 0 ? (int64_t)w * h : 0;
}

/* A PNG, BMP or GIF: header, size, preflight (preflight.h), then stb on the body or the
 * preflight's mended copy. */
static int stb_decode(uint8_t **out, int *w, int *h, int *channels, const char *kind,
                      const void *data, size_t len, char *err, size_t errlen)
{
    int rc = srv_preflight_header(kind, data, len, err, errlen);
    if (rc != 0)
        return rc;
    int iw = 0, ih = 0, ic = 0;
    if (!stb_info(kind, data, len, &iw, &ih, &ic))
        return srv_seterr(err, errlen, NN_EFORMAT, "cannot read the %s header: %s", kind,
                          stb_reason());
    if (iw < 1 || ih < 1 || iw > SRV_IMAGE_MAX_SIDE || ih > SRV_IMAGE_MAX_SIDE ||
        (int64_t)iw * ih > SRV_IMAGE_MAX_PIXELS)
        return srv_seterr(err, errlen, NN_ERANGE,
                          "%s image is %dx%d; PNG, BMP and GIF are accepted up to %d pixels per "
                          "side and %d pixels in all (send a photo as JPEG: up to %d per side "
                          "and %d pixels)",
                          kind, iw, ih, SRV_IMAGE_MAX_SIDE, SRV_IMAGE_MAX_PIXELS, SRV_JPEG_MAX_SIDE,
                          SRV_JPEG_MAX_PIXELS);
    struct srv_preflight pf;
    rc = srv_preflight(&pf, kind, data, len, err, errlen);
    if (rc != 0)
        return rc;
    int lw = 0, lh = 0, lc = 0;
    unsigned char *px = stb_load(kind, pf.data, pf.len, &lw, &lh, &lc);
    srv_preflight_free(&pf);
    if (!px)
        return srv_seterr(err, errlen, NN_EFORMAT, "cannot decode the %s image: %s", kind,
                          stb_reason());
    /* The header read by info and the decoder agree for every format we accept; check anyway,
     * since everything after is sized from lw and lh. */
    if (lw != iw || lh != ih || lc < 1 || lc > 4) {
        stbi_image_free(px);
        return srv_seterr(err, errlen, NN_EFORMAT, "inconsistent %s image", kind);
    }
    *out = px; /* STBI_FREE is free() */
    *w = lw;
    *h = lh;
    *channels = lc;
    return 0;
}

int srv_image_decode_pixels(uint8_t **out, int *w, int *h, int *channels, const void *data,
                            size_t len, char *err, size_t errlen)
{
    *out = NULL;
    *w = *h = *channels = 0;
    if (len == 0)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "empty body: send a PNG, JPEG, BMP or GIF image");
    if (len > INT_MAX)
        return srv_seterr(err, errlen, NN_ERANGE, "image of %zu bytes is too large", len);
    const char *kind = srv_image_sniff(data, len);
    if (!kind)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "not a PNG, JPEG, BMP or GIF image (unrecognised first bytes)");
    if (!strcmp(kind, "jpeg"))
        return srv_jpeg_decode(out, w, h, channels, data, len, err, errlen);
    return stb_decode(out, w, h, channels, kind, data, len, err, errlen);
}

int srv_image_decode(float **out, int *w, int *h, const void *data, size_t len, char *err,
                     size_t errlen)
{
    *out = NULL;
    *w = *h = 0;
    uint8_t *px = NULL;
    int lw = 0, lh = 0, lc = 0;
    int rc = srv_image_decode_pixels(&px, &lw, &lh, &lc, data, len, err, errlen);
    if (rc != 0)
        return rc;
    float *dst = NULL;
    if (lw > SRV_IMAGE_MAX_SIDE || lh > SRV_IMAGE_MAX_SIDE ||
        (int64_t)lw * lh > SRV_IMAGE_MAX_PIXELS) { /* cannot happen: both decoders bound it */
        rc = srv_seterr(err, errlen, NN_ERANGE, "decoded image is %dx%d", lw, lh);
        goto fail;
    }
    dst = malloc((size_t)lw * (size_t)lh * sizeof *dst);
    if (!dst) {
        rc = srv_seterr(err, errlen, NN_ENOMEM, "out of memory for a %dx%d image", lw, lh);
        goto fail;
    }
    rc = nn_image_from_pixels8(dst, px, lw, lh, lc);
    if (rc != NN_OK) {
        rc = srv_seterr(err, errlen, rc, "cannot convert the %dx%d image: %s", lw, lh,
                        nn_strerror(rc));
        goto fail;
    }
    free(px);
    *out = dst;
    *w = lw;
    *h = lh;
    return 0;
fail:
    free(dst);
    free(px);
    return rc;
}
