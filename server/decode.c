/*
 * decode.c - the one place stb_image is compiled (see decode.h).
 */
#include "decode.h"
#include "err.h"

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
#define STBI_MAX_DIMENSIONS SRV_IMAGE_MAX_SIDE
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
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

/* stb_image 2.27 (the Debian 12 header) trusts the symbol counts of a JPEG DHT table: more
 * than 256 symbols write past its Huffman tables on the heap (upstream checks since 2.28).
 * Every "FF C4" anywhere in the file is read as stb would read a DHT segment, and the file is
 * refused if any table there claims more than 256 symbols. Scanning every offset instead of
 * following the segment chain cannot get out of step with stb; a valid file never has such a
 * table. More than 64 "FF C4" pairs is refused too (bounds the work). Returns 1 to refuse. */
static int jpeg_bad_dht(const unsigned char *p, size_t len)
{
    int seen = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != 0xff || p[i + 1] != 0xc4)
            continue;
        if (++seen > 64) /* a real file has a handful; this bounds the work to 64 segments */
            return 1;
        size_t pos = i + 2;
#define AT(k) ((k) < len ? p[k] : 0u) /* stb reads 0 past the end */
        long L = (long)((AT(pos) << 8) | AT(pos + 1)) - 2;
        pos += 2;
        while (L > 0) {
            unsigned q = AT(pos);
            if ((q >> 4) > 1 || (q & 15) > 3)
                break; /* stb stops with an error here */
            unsigned n = 0;
            for (size_t k = 0; k < 16; k++)
                n += AT(pos + 1 + k);
            if (n > 256)
                return 1;
            pos += 17 + n;
            L -= 17 + (long)n;
            if (pos >= len) /* the rest reads as zeros: nothing more to find */
                break;
        }
#undef AT
    }
    return 0;
}

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

int srv_image_decode(float **out, int *w, int *h, const void *data, size_t len, char *err,
                     size_t errlen)
{
    *out = NULL;
    *w = *h = 0;
    if (len == 0)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "empty body: send a PNG, JPEG, BMP or GIF image");
    if (len > INT_MAX)
        return srv_seterr(err, errlen, NN_ERANGE, "image of %zu bytes is too large", len);
    const char *kind = srv_image_sniff(data, len);
    if (!kind)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "not a PNG, JPEG, BMP or GIF image (unrecognised first bytes)");
    if (!strcmp(kind, "jpeg") && jpeg_bad_dht(data, len))
        return srv_seterr(
            err, errlen, NN_EFORMAT,
            "cannot decode the jpeg image: bad Huffman table (more than 256 symbols)");
    int iw = 0, ih = 0, ic = 0;
    if (!stbi_info_from_memory(data, (int)len, &iw, &ih, &ic))
        return srv_seterr(err, errlen, NN_EFORMAT, "cannot read the %s header: %s", kind,
                          stbi_failure_reason() ? stbi_failure_reason() : "corrupt");
    if (iw < 1 || ih < 1 || iw > SRV_IMAGE_MAX_SIDE || ih > SRV_IMAGE_MAX_SIDE ||
        (int64_t)iw * ih > SRV_IMAGE_MAX_PIXELS)
        return srv_seterr(err, errlen, NN_ERANGE,
                          "image is %dx%d; at most %d pixels per side and %d pixels in all", iw, ih,
                          SRV_IMAGE_MAX_SIDE, SRV_IMAGE_MAX_PIXELS);
    int lw = 0, lh = 0, lc = 0;
    unsigned char *px = stbi_load_from_memory(data, (int)len, &lw, &lh, &lc, 0);
    if (!px)
        return srv_seterr(err, errlen, NN_EFORMAT, "cannot decode the %s image: %s", kind,
                          stbi_failure_reason() ? stbi_failure_reason() : "corrupt");
    int rc;
    float *dst = NULL;
    /* The header read by info and the decoder agree for every format we accept; check anyway,
     * since everything below is sized from lw and lh. */
    if (lw != iw || lh != ih || lc < 1 || lc > 4) {
        rc = srv_seterr(err, errlen, NN_EFORMAT, "inconsistent %s image", kind);
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
    stbi_image_free(px);
    *out = dst;
    *w = lw;
    *h = lh;
    return 0;
fail:
    free(dst);
    stbi_image_free(px);
    return rc;
}
