/*
 * test_decode.c - images through the decoder (server/decode.c, jpeg.c, preflight.c): for
 * phone photos the DCT scaling choice, EXIF orientations 1..8, size limits and the memory
 * budget, truncated and hostile JPEGs; for PNG, BMP and GIF top-down and truncated files,
 * palettes shorter than their indices (the same pixels whatever the stack held), where error
 * sentences come from, and inputs whose cost outruns their size. Every image is made here
 * (tests/server/photo.h, images.h), none is committed.
 */
#include "server/decode.h"
#include "server/pool.h"
#include "server/jpeg.h"
#include "tests/server/images.h"
#include "tests/server/photo.h"

#include "nn/nn.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------- */
/* Scaling                                                                                  */
/* ---------------------------------------------------------------------------------------- */

struct scale_case {
    int w, h, num, denom;
};

static const struct scale_case scale_cases[] = {
    {28, 28, 1, 1},      {2048, 2048, 1, 1}, {2048, 1000, 1, 1}, /* small: as today */
    {2049, 100, 1, 2},                                           /* 1025: 3/8 would be 769 */
    {4032, 3024, 1, 4},                                          /* a 12 MP phone photo: 1008x756 */
    {3024, 4032, 1, 4},                                          /* the same, portrait */
    {4000, 3000, 1, 4},                                          /* exactly 1000 is still >= 1000 */
    {3999, 3000, 1, 4},  /* 999.75 rounds up to 1000 (TJSCALED) */
    {3900, 2925, 3, 8},  /* 975 at 1/4: 3/8 gives 1463 */
    {8000, 6000, 1, 8},  /* 48 MP: 1000x750 */
    {16384, 1000, 1, 8}, /* the widest accepted: 2048x125 */
    {2500, 900, 1, 2},   /* 1250; 3/8 would be 938 */
    {5000, 5000, 1, 4},  /* 1250; 1/8 would be 625 */
};

Test(jpeg_scale, picks_the_smallest_factor_that_keeps_1000_pixels_on_the_longer_side)
{
    for (size_t i = 0; i < sizeof scale_cases / sizeof scale_cases[0]; i++) {
        const struct scale_case *c = &scale_cases[i];
        int num = 0, denom = 0;
        srv_jpeg_scale(c->w, c->h, &num, &denom);
        cr_expect(num == c->num && denom == c->denom, "%dx%d: got %d/%d, expected %d/%d", c->w,
                  c->h, num, denom, c->num, c->denom);
        long longer = c->w > c->h ? c->w : c->h;
        long scaled = (longer * num + denom - 1) / denom;
        cr_expect(scaled >= 1000 || (num == 1 && denom == 1), "%dx%d: longer side %ld", c->w, c->h,
                  scaled);
        cr_expect(scaled <= SRV_JPEG_FULL_SIDE, "%dx%d: longer side %ld", c->w, c->h, scaled);
    }
}

/* Decodes jpg through srv_image_decode_pixels and checks the size; returns the pixels. */
static uint8_t *decode_ok(const uint8_t *jpg, size_t len, int ew, int eh, int ec)
{
    uint8_t *px = NULL;
    int w = 0, h = 0, c = 0;
    char err[256] = "";
    int rc = srv_image_decode_pixels(&px, &w, &h, &c, jpg, len, err, sizeof err);
    cr_assert_eq(rc, 0, "decode: %d: %s", rc, err);
    cr_assert(w == ew && h == eh && c == ec, "got %dx%d x%d, expected %dx%d x%d", w, h, c, ew, eh,
              ec);
    return px;
}

Test(jpeg_scale, a_12_mp_photo_is_decoded_at_a_quarter_and_a_small_one_at_full_size)
{
    uint8_t *jpg = NULL;
    size_t len = 0;
    cr_assert_eq(photo_make(&jpg, &len, 4032, 3024, 3, 90, 0, 0), 0);
    free(decode_ok(jpg, len, 1008, 756, 3));
    free(jpg);
    cr_assert_eq(photo_make(&jpg, &len, 2048, 1536, 1, 90, 0, 0), 0);
    free(decode_ok(jpg, len, 2048, 1536, 1));
    free(jpg);
}

Test(jpeg_scale, a_48_mp_photo_is_decoded_at_an_eighth_and_still_reads_as_ink)
{
    uint8_t *jpg = NULL;
    size_t len = 0;
    cr_assert_eq(photo_make(&jpg, &len, 8000, 6000, 1, 85, 0, 0), 0);
    float *ink = NULL;
    int w = 0, h = 0;
    char err[256] = "";
    cr_assert_eq(srv_image_decode(&ink, &w, &h, jpg, len, err, sizeof err), 0, "%s", err);
    cr_expect(w == 1000 && h == 750, "%dx%d", w, h);
    float out[NN_MNIST_PIXELS];
    cr_expect_eq(nn_image_normalize(out, ink, w, h), NN_OK);
    free(ink);
    free(jpg);
}

/* ---------------------------------------------------------------------------------------- */
/* Orientation                                                                              */
/* ---------------------------------------------------------------------------------------- */

#define OW 96 /* the stored image, wider than tall */
#define OH 64
#define MARK 16

/* Where the upright image's top-left and top-right corners are stored, for orientations 1..8,
 * read off the EXIF 2.3 definitions ("the 0th row is the visual top/bottom/left/right, the
 * 0th column the visual left/right/top/bottom"): 0 TL, 1 TR, 2 BL, 3 BR. */
static const int upright_tl[9] = {0, 0, 1, 3, 2, 0, 2, 3, 1};
static const int upright_tr[9] = {0, 1, 0, 2, 3, 2, 0, 1, 3};

static void fill_corner(uint8_t *px, int corner, uint8_t v)
{
    int x0 = corner & 1 ? OW - MARK : 0, y0 = corner & 2 ? OH - MARK : 0;
    for (int y = y0; y < y0 + MARK; y++)
        for (int x = x0; x < x0 + MARK; x++)
            px[y * OW + x] = v;
}

/* Mean of the 8x8 square centred in the corner's mark of the upright w x h image. */
static double corner_mean(const uint8_t *px, int w, int h, int corner)
{
    int x0 = (corner & 1 ? w - MARK : 0) + 4, y0 = (corner & 2 ? h - MARK : 0) + 4;
    double s = 0;
    for (int y = y0; y < y0 + 8; y++)
        for (int x = x0; x < x0 + 8; x++)
            s += px[y * w + x];
    return s / 64;
}

static void check_orientation(int o, int big)
{
    uint8_t stored[OW * OH];
    memset(stored, 230, sizeof stored);
    fill_corner(stored, upright_tl[o], 0);   /* upright top-left: black */
    fill_corner(stored, upright_tr[o], 120); /* upright top-right: grey */
    uint8_t *jpg = NULL, *ex = NULL;
    size_t len = 0, elen = 0;
    cr_assert_eq(photo_jpeg(&jpg, &len, stored, OW, OH, 1, 95, 0), 0);
    ex = photo_with_exif(jpg, len, o, big, &elen);
    cr_assert_not_null(ex);
    int w = o >= 5 ? OH : OW, h = o >= 5 ? OW : OH;
    uint8_t *px = decode_ok(ex, elen, w, h, 1);
    double tl = corner_mean(px, w, h, 0), tr = corner_mean(px, w, h, 1);
    double bl = corner_mean(px, w, h, 2), br = corner_mean(px, w, h, 3);
    cr_expect(tl < 20 && tr > 100 && tr < 140 && bl > 210 && br > 210,
              "orientation %d (%s): corners TL %.0f TR %.0f BL %.0f BR %.0f", o,
              big ? "big-endian" : "little-endian", tl, tr, bl, br);
    free(px);
    free(ex);
    free(jpg);
}

Test(jpeg_orientation, every_exif_orientation_from_1_to_8_comes_out_upright)
{
    for (int o = 1; o <= 8; o++)
        check_orientation(o, 0);
}

Test(jpeg_orientation, a_big_endian_exif_block_is_read_too)
{
    for (int o = 1; o <= 8; o++)
        check_orientation(o, 1);
}

Test(jpeg_orientation, a_rotated_12_mp_photo_is_scaled_then_turned_upright)
{
    uint8_t *jpg = NULL;
    size_t len = 0;
    cr_assert_eq(photo_make(&jpg, &len, 4032, 3024, 3, 90, 6, 0), 0);
    free(decode_ok(jpg, len, 756, 1008, 3));
    free(jpg);
}

Test(jpeg_orientation, a_missing_or_broken_exif_block_means_upright)
{
    cr_expect_eq(srv_jpeg_orientation(NULL, 0), 1);
    cr_expect_eq(srv_jpeg_orientation((const uint8_t *)"Exif\0\0", 6), 1);
    cr_expect_eq(srv_jpeg_orientation((const uint8_t *)"Exif\0\0II*\0\xff\xff\xff\xff", 14), 1);
    /* an orientation of 9 is not one of the eight: ignored */
    uint8_t px[64 * 64];
    memset(px, 200, sizeof px);
    uint8_t *jpg = NULL, *ex = NULL;
    size_t len = 0, elen = 0;
    cr_assert_eq(photo_jpeg(&jpg, &len, px, 64, 48, 1, 90, 0), 0);
    ex = photo_with_exif(jpg, len, 9, 0, &elen);
    cr_assert_not_null(ex);
    struct srv_jpeg_info info;
    cr_assert_eq(srv_jpeg_probe(&info, ex, elen), 0);
    cr_expect_not_null(info.exif);
    cr_expect_eq(srv_jpeg_orientation(info.exif, info.exif_len), 1);
    free(decode_ok(ex, elen, 64, 48, 1));
    free(ex);
    free(jpg);
}

/* ---------------------------------------------------------------------------------------- */
/* Limits and budget                                                                        */
/* ---------------------------------------------------------------------------------------- */

/* A JPEG with only headers: SOI, SOF (marker sof, w x h, nc components with sampling hv for
 * the first and 1x1 for the others), SOS naming ns components, EOI. Returns its length. */
static size_t header_jpeg(uint8_t *b, int sof, int w, int h, int nc, int hv, int ns)
{
    size_t n = 0;
    b[n++] = 0xff, b[n++] = 0xd8;
    b[n++] = 0xff, b[n++] = (uint8_t)sof;
    size_t seg = 8 + 3 * (size_t)nc;
    b[n++] = (uint8_t)(seg >> 8), b[n++] = (uint8_t)seg;
    b[n++] = 8;
    b[n++] = (uint8_t)(h >> 8), b[n++] = (uint8_t)h;
    b[n++] = (uint8_t)(w >> 8), b[n++] = (uint8_t)w;
    b[n++] = (uint8_t)nc;
    for (int c = 0; c < nc; c++) {
        b[n++] = (uint8_t)(c + 1);
        b[n++] = (uint8_t)(c == 0 ? hv : 0x11);
        b[n++] = 0;
    }
    b[n++] = 0xff, b[n++] = 0xda;
    seg = 6 + 2 * (size_t)ns;
    b[n++] = 0, b[n++] = (uint8_t)seg;
    b[n++] = (uint8_t)ns;
    for (int c = 0; c < ns; c++)
        b[n++] = (uint8_t)(c + 1), b[n++] = 0;
    b[n++] = 0, b[n++] = 63, b[n++] = 0;
    b[n++] = 0xff, b[n++] = 0xd9;
    return n;
}

struct limit_case {
    const char *what;
    int sof, w, h, nc, hv, ns;
    int rc;           /* expected from srv_image_decode */
    const char *frag; /* in err */
};

static const struct limit_case limit_cases[] = {
    {"16385 wide", 0xc0, 16385, 100, 3, 0x22, 3, NN_ERANGE, "up to 16384 pixels per side"},
    {"16384x3073 (over 48 Mi)", 0xc0, 16384, 3073, 3, 0x22, 3, NN_ERANGE, "50331648 pixels"},
    {"0 high", 0xc0, 100, 0, 3, 0x22, 3, NN_ERANGE, "is 100x0"},
    {"CMYK", 0xc0, 100, 100, 4, 0x11, 4, NN_EFORMAT, "not CMYK"},
    {"progressive 8000x6000 4:4:4", 0xc2, 8000, 6000, 3, 0x11, 1, NN_ERANGE,
     "over the per-request budget of 192 MiB"},
    {"non-interleaved 8000x6000 4:4:4", 0xc0, 8000, 6000, 3, 0x11, 1, NN_ERANGE, "budget"},
    /* within every limit: the header is fine, the missing data is what fails */
    {"progressive 8000x6000 4:2:0", 0xc2, 8000, 6000, 3, 0x22, 1, NN_EFORMAT, "cannot decode"},
    {"baseline 16384x3072", 0xc0, 16384, 3072, 3, 0x22, 3, NN_EFORMAT, "cannot decode"},
};

Test(jpeg_limits, sizes_and_memory_are_checked_from_the_headers_before_decoding)
{
    for (size_t i = 0; i < sizeof limit_cases / sizeof limit_cases[0]; i++) {
        const struct limit_case *c = &limit_cases[i];
        uint8_t b[128];
        size_t n = header_jpeg(b, c->sof, c->w, c->h, c->nc, c->hv, c->ns);
        float *px = NULL;
        int w = 0, h = 0;
        char err[512] = "";
        double t0 = now_s();
        int rc = srv_image_decode(&px, &w, &h, b, n, err, sizeof err);
        double dt = now_s() - t0;
        cr_expect_eq(rc, c->rc, "%s: rc %d: %s", c->what, rc, err);
        cr_expect(strstr(err, c->frag) != NULL, "%s: \"%s\" lacks \"%s\"", c->what, err, c->frag);
        cr_expect_null(px, "%s", c->what);
        cr_expect(dt < 0.5, "%s: %.3f s", c->what, dt);
    }
}

Test(jpeg_limits, the_budget_covers_a_progressive_48_mp_photo_and_not_twice_that)
{
    uint8_t b[128];
    struct srv_jpeg_info info;
    size_t n = header_jpeg(b, 0xc2, 8000, 6000, 3, 0x22, 1);
    cr_assert_eq(srv_jpeg_probe(&info, b, n), 0);
    cr_expect(info.progressive && info.buffered);
    size_t need = srv_jpeg_budget(&info, 1, 8);
    /* 48 M pixels x 1.5 blocks' worth of components x 2 bytes = 144 MB of coefficients */
    cr_expect(need > (size_t)144000000 && need <= SRV_DECODE_BUDGET, "%zu", need);
    n = header_jpeg(b, 0xc0, 8000, 6000, 3, 0x22, 3);
    cr_assert_eq(srv_jpeg_probe(&info, b, n), 0);
    cr_expect(!info.progressive && !info.buffered);
    cr_expect_lt(srv_jpeg_budget(&info, 1, 8), (size_t)8 << 20, "baseline needs no buffer");
}

Test(image_limits, a_png_over_4_mp_is_refused_with_the_limits_named)
{
    /* IHDR alone is enough: stbi_info reads the header */
    static const struct {
        unsigned w, h;
    } sizes[] = {{4097, 1}, {2049, 2049}};
    for (size_t i = 0; i < 2; i++) {
        uint8_t png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                           0,    0,   0,   13,  'I',  'H',  'D',  'R'};
        for (int k = 0; k < 4; k++) {
            png[16 + k] = (uint8_t)(sizes[i].w >> (24 - 8 * k));
            png[20 + k] = (uint8_t)(sizes[i].h >> (24 - 8 * k));
        }
        png[24] = 8; /* 8-bit gray */
        float *px = NULL;
        int w, h;
        char err[512] = "";
        cr_expect_eq(srv_image_decode(&px, &w, &h, png, sizeof png, err, sizeof err), NN_ERANGE,
                     "%s", err);
        cr_expect(strstr(err, "PNG, BMP and GIF are accepted up to 4096 pixels per side and "
                              "4194304 pixels in all") != NULL,
                  "%s", err);
        cr_expect(strstr(err, "send a photo as JPEG") != NULL, "%s", err);
        cr_expect_eq(srv_image_header_pixels(png, sizeof png), (int64_t)sizes[i].w * sizes[i].h);
    }
}

/* What http.c weighs an image by (over 1 MP: computed on the pool's threads). */
Test(image_limits, header_pixels_come_from_the_headers_alone)
{
    uint8_t b[128];
    cr_expect_eq(srv_image_header_pixels(b, header_jpeg(b, 0xc0, 1024, 1024, 3, 0x22, 3)),
                 1024 * 1024);
    cr_expect_eq(srv_image_header_pixels(b, header_jpeg(b, 0xc0, 1008, 756, 3, 0x22, 3)),
                 1008 * 756);
    cr_expect_eq(srv_image_header_pixels(b, header_jpeg(b, 0xc0, 4032, 3024, 3, 0x22, 3)),
                 4032 * 3024);
    cr_expect_eq(srv_image_header_pixels("hello", 5), 0);
    cr_expect_eq(srv_image_header_pixels(b, 3), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Corrupt and hostile input                                                                */
/* ---------------------------------------------------------------------------------------- */

Test(jpeg_corrupt, a_truncated_jpeg_is_refused_not_padded_with_grey)
{
    uint8_t *jpg = NULL;
    size_t len = 0;
    cr_assert_eq(photo_make(&jpg, &len, 640, 480, 3, 90, 0, 0), 0);
    size_t cuts[] = {len * 6 / 10, len - 2, 20, 3};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        uint8_t *px = NULL;
        int w, h, c;
        char err[512] = "";
        int rc = srv_image_decode_pixels(&px, &w, &h, &c, jpg, cuts[i], err, sizeof err);
        cr_expect_eq(rc, NN_EFORMAT, "cut at %zu of %zu: rc %d", cuts[i], len, rc);
        cr_expect(strstr(err, "jpeg") != NULL, "%s", err);
        cr_expect_null(px);
    }
    /* the whole file decodes */
    free(decode_ok(jpg, len, 640, 480, 3));
    free(jpg);
}

/* Appends a marker segment (marker, payload of n bytes). */
static size_t put_seg(uint8_t *b, size_t o, int marker, const uint8_t *p, size_t n)
{
    b[o++] = 0xff, b[o++] = (uint8_t)marker;
    b[o++] = (uint8_t)((n + 2) >> 8), b[o++] = (uint8_t)(n + 2);
    memcpy(b + o, p, n);
    return o + n;
}

/* A valid progressive 4096x4096 gray JPEG of all-zero coefficients in 1 + ncoef x 14 scans:
 * the DC, then for each of the first ncoef AC coefficients a first scan at Al = 13 and 13
 * refinements down to Al = 0 (every one legal), each scan one EOB run per 16384 blocks, so the
 * file is tiny and every scan makes libjpeg walk all 262144 blocks. ncoef = 63: 883 scans. */
static uint8_t *scan_bomb(size_t *len, int ncoef)
{
    const int side = 4096, blocks = (side / 8) * (side / 8);
    uint8_t *b = malloc((size_t)1 << 20);
    cr_assert_not_null(b);
    size_t o = 0;
    b[o++] = 0xff, b[o++] = 0xd8;
    uint8_t dqt[65] = {0};
    for (int k = 1; k < 65; k++)
        dqt[k] = 1;
    o = put_seg(b, o, 0xdb, dqt, sizeof dqt);
    uint8_t sof[9] = {8, side >> 8, side & 255, side >> 8, side & 255, 1, 1, 0x11, 0};
    o = put_seg(b, o, 0xc2, sof, sizeof sof);
    /* DC table 0: one code "0" for category 0; AC table 0: one code "0" for EOB14 (0xe0) */
    uint8_t dht[2 * 18] = {0x00, 1};
    dht[17] = 0x00;
    dht[18] = 0x10, dht[19] = 1, dht[35] = 0xe0;
    o = put_seg(b, o, 0xc4, dht, sizeof dht);
    uint8_t sos[6] = {1, 1, 0x00, 0, 0, 0};
    o = put_seg(b, o, 0xda, sos, sizeof sos);
    memset(b + o, 0, (size_t)blocks / 8); /* one 0 bit per block: DC difference 0 */
    o += (size_t)blocks / 8;
    for (int k = 1; k <= ncoef; k++) {
        for (int al = 13; al >= 0; al--) {
            uint8_t s[6] = {1,          1,          0x00,
                            (uint8_t)k, (uint8_t)k, (uint8_t)((al == 13 ? 0 : (al + 1) << 4) | al)};
            o = put_seg(b, o, 0xda, s, sizeof s);
            /* EOB14 with 14 extra bits of 0: a run of 16384 blocks, 15 bits each; 16 of them
             * = 240 bits = 30 bytes of zeros */
            memset(b + o, 0, (size_t)(blocks / 16384) * 15 / 8);
            o += (size_t)(blocks / 16384) * 15 / 8;
        }
    }
    b[o++] = 0xff, b[o++] = 0xd9;
    *len = o;
    return b;
}

Test(jpeg_corrupt, a_progressive_scan_bomb_is_refused_quickly)
{
    size_t len = 0;
    uint8_t *b = scan_bomb(&len, 63);
    uint8_t *px = NULL;
    int w, h, c;
    char err[512] = "";
    double t0 = now_s();
    int rc = srv_image_decode_pixels(&px, &w, &h, &c, b, len, err, sizeof err);
    double dt = now_s() - t0;
    cr_expect_eq(rc, NN_EFORMAT, "rc %d (%s), %zu bytes", rc, err, len);
    cr_expect(strstr(err, "it has 883 scans; at most 64") != NULL, "%s", err);
    cr_expect_null(px);
    cr_expect(dt < 0.1, "took %.3f s", dt);
    free(b);
}

/* Issue 21: fewer than 64 scans, but each walks all 262144 blocks of a 4096x4096 image: 57
 * scans are 14 Mi block visits (~70 ms), over SRV_JPEG_MAX_BLOCK_VISITS. */
Test(jpeg_corrupt, scans_over_the_block_budget_are_refused_from_the_headers)
{
    size_t len = 0;
    uint8_t *b = scan_bomb(&len, 4); /* 57 scans */
    uint8_t *px = NULL;
    int w, h, c;
    char err[512] = "";
    double t0 = now_s();
    int rc = srv_image_decode_pixels(&px, &w, &h, &c, b, len, err, sizeof err);
    double dt = now_s() - t0;
    cr_expect_eq(rc, NN_ERANGE, "rc %d (%s)", rc, err);
    cr_expect(strstr(err, "its 57 scans cover 14 Mi blocks in all, over the limit of 12 Mi") !=
                  NULL,
              "%s", err);
    cr_expect_null(px);
    cr_expect(dt < 0.05, "took %.3f s", dt);
    free(b);
}

Test(jpeg_corrupt, a_progressive_jpeg_within_the_scan_limit_decodes)
{
    size_t len = 0;
    uint8_t *b = scan_bomb(&len, 3); /* 43 scans, 11 Mi block visits */
    uint8_t *px = decode_ok(b, len, 1024, 1024, 1);
    cr_expect(px[0] == 128 && px[1024 * 1024 - 1] == 128, "%d %d", px[0], px[1024 * 1024 - 1]);
    free(px);
    free(b);
}

/* ---------------------------------------------------------------------------------------- */
/* PNG, BMP and GIF: stb_image behind server/preflight.c                                    */
/* ---------------------------------------------------------------------------------------- */

/* Decodes f[0..n) expecting a failure; returns its status, err holds the sentence. */
static int decode_fails(const uint8_t *f, size_t n, char *err, size_t errlen)
{
    uint8_t *px = NULL;
    int w = 0, h = 0, c = 0;
    err[0] = 0;
    int rc = srv_image_decode_pixels(&px, &w, &h, &c, f, n, err, errlen);
    cr_expect_neq(rc, 0, "decoded %zu bytes to %dx%d x%d", n, w, h, c);
    cr_expect_null(px);
    free(px);
    return rc;
}

static void set_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A BMP colour table of 256 greys (BGRX). */
static void grey_table(uint8_t pal[1024])
{
    for (int i = 0; i < 256; i++)
        pal[4 * i] = pal[4 * i + 1] = pal[4 * i + 2] = (uint8_t)i, pal[4 * i + 3] = 0;
}

/* Row y of a w-wide grey image is 40 * y + 10, but its first pixel is 0: every row, and the
 * left side from the right, can be told apart. */
static uint8_t rows_grey(int x, int y) { return x == 0 ? 0 : (uint8_t)(40 * y + 10); }

Test(bmp, a_top_down_bmp_decodes_upright_like_the_bottom_up_one)
{
    enum { W = 5, H = 6 };
    uint8_t g[W * H], bgr[W * H * 3], pal[1024];
    grey_table(pal);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            g[y * W + x] = bgr[3 * (y * W + x)] = bgr[3 * (y * W + x) + 1] =
                bgr[3 * (y * W + x) + 2] = rows_grey(x, y);
    for (int bpp = 8; bpp <= 24; bpp += 16) {
        for (int sign = -1; sign <= 1; sign += 2) {
            size_t n = 0;
            uint8_t *f =
                img_bmp(&n, W, sign * H, bpp, bpp == 8 ? g : bgr, pal, bpp == 8 ? 256 : 0, 0);
            cr_assert_not_null(f);
            uint8_t *px = decode_ok(f, n, W, H, 3);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    cr_expect_eq(px[3 * (y * W + x)], rows_grey(x, y),
                                 "%d bpp, height %d: pixel (%d,%d) is %d, expected %d", bpp,
                                 sign * H, x, y, px[3 * (y * W + x)], rows_grey(x, y));
            free(px);
            free(f);
        }
    }
    /* the sizes of a top-down header: positive in the limits, the header's pixel count and the
     * error, as for a bottom-up one */
    size_t n = 0;
    uint8_t *f = img_bmp(&n, 1, -1, 24, bgr, NULL, 0, 0);
    cr_assert_not_null(f);
    static const struct {
        int w, h;
        const char *frag;
    } sizes[] = {{1024, -1024, NULL},
                 {1024, -1025, NULL},
                 {2048, -2049, "bmp image is 2048x2049;"},
                 {4097, -1, "bmp image is 4097x1;"}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        set_le32(f + 18, (uint32_t)sizes[i].w);
        set_le32(f + 22, (uint32_t)sizes[i].h);
        cr_expect_eq(srv_image_header_pixels(f, n), (int64_t)sizes[i].w * -sizes[i].h, "%dx%d",
                     sizes[i].w, sizes[i].h);
        if (!sizes[i].frag)
            continue;
        char err[512];
        cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_ERANGE);
        cr_expect(strstr(err, sizes[i].frag) != NULL, "%s", err);
    }
    free(f);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct bmp_case {
    int bpp, bitfields;
};

static const struct bmp_case bmp_cases[] = {{1, 0},  {4, 0},  {8, 0},  {16, 0},
                                            {16, 1}, {24, 0}, {32, 0}, {32, 1}};

Test(bmp, a_truncated_bmp_is_refused_with_the_bytes_expected_and_present)
{
    enum { W = 27, H = 28 }; /* 27 wide: most rows have padding */
    uint8_t px[W * H * 4], pal[1024];
    grey_table(pal);
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7 + 3);
    for (size_t k = 0; k < sizeof bmp_cases / sizeof bmp_cases[0]; k++) {
        const struct bmp_case *bc = &bmp_cases[k];
        size_t n = 0;
        uint8_t *f =
            img_bmp(&n, W, H, bc->bpp, px, pal, bc->bpp <= 8 ? 1 << bc->bpp : 0, bc->bitfields);
        cr_assert_not_null(f);
        size_t off = get_le32(f + 10), row = ((size_t)W * bc->bpp + 7) / 8;
        size_t stride = ((size_t)W * bc->bpp + 31) / 32 * 4, need = stride * (H - 1) + row;
        cr_assert_eq(n, off + stride * H);
        free(decode_ok(f, n, W, H, bc->bpp == 32 && !bc->bitfields ? 4 : 3));
        /* the last row's padding is not needed: stb skips it */
        free(decode_ok(f, off + need, W, H, bc->bpp == 32 && !bc->bitfields ? 4 : 3));
        size_t cuts[] = {n / 10, n / 2, off + need - 1, off + 1, off};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            if (cuts[i] < off)
                continue; /* inside the header or the colour table: below */
            char err[512], want[200];
            cr_expect_eq(decode_fails(f, cuts[i], err, sizeof err), NN_EFORMAT);
            snprintf(want, sizeof want,
                     "the bmp file is truncated: %zu bytes of pixel data expected, %zu present",
                     need, cuts[i] - off);
            cr_expect_str_eq(err, want, "%d bpp%s, cut at %zu of %zu", bc->bpp,
                             bc->bitfields ? " bitfields" : "", cuts[i], n);
        }
        /* a cut inside the colour table leaves no pixel data at all */
        if (bc->bpp <= 8) {
            char err[512], want[200];
            decode_fails(f, off - 1, err, sizeof err);
            snprintf(want, sizeof want,
                     "the bmp file is truncated: %zu bytes of pixel data expected, 0 present",
                     need);
            cr_expect_str_eq(err, want, "%d bpp", bc->bpp);
        }
        free(f);
    }
}

Test(bmp, a_cut_header_and_a_compressed_bmp_are_refused_in_words)
{
    uint8_t px[64 * 4], pal[1024];
    memset(px, 9, sizeof px);
    grey_table(pal);
    size_t n = 0;
    uint8_t *f = img_bmp(&n, 8, 8, 8, px, pal, 256, 0);
    cr_assert_not_null(f);
    char err[512];
    cr_expect_eq(decode_fails(f, 20, err, sizeof err), NN_EFORMAT);
    cr_expect_str_eq(err, "the bmp file is truncated: its header needs 54 bytes, 20 present");
    cr_expect_eq(decode_fails(f, 10, err, sizeof err), NN_EFORMAT);
    cr_expect_str_eq(err, "the bmp file is truncated: its header needs 18 bytes, 10 present");
    f[30] = 1; /* BI_RLE8 */
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    cr_expect(strstr(err, "compression 1 is not supported") != NULL, "%s", err);
    f[30] = 0;
    f[28] = 2; /* 2 bits per pixel: not a BMP depth */
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    cr_expect(strstr(err, "2 bits per pixel") != NULL, "%s", err);
    f[28] = 8;
    set_le32(f + 10, 40); /* pixels "inside" the header */
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    cr_expect(strstr(err, "offset 40 is inside its 54-byte header") != NULL, "%s", err);
    free(f);
}

Test(png, every_cut_of_a_png_is_refused_and_none_decodes_to_invented_pixels)
{
    enum { W = 28, H = 28 };
    uint8_t g[W * H];
    for (int i = 0; i < W * H; i++)
        g[i] = (uint8_t)(i * 5);
    size_t n = 0;
    uint8_t *f = img_png(&n, W, H, 8, 0, g, NULL, 0);
    cr_assert_not_null(f);
    uint8_t *whole = decode_ok(f, n, W, H, 1);
    cr_expect_eq(memcmp(whole, g, sizeof g), 0);
    for (size_t cut = 8; cut < n; cut++) {
        if (cut >= n - 4) { /* only IEND's CRC is missing: stb never reads it */
            uint8_t *px = decode_ok(f, cut, W, H, 1);
            cr_expect_eq(memcmp(px, g, sizeof g), 0);
            free(px);
            continue;
        }
        char err[512];
        cr_expect_eq(decode_fails(f, cut, err, sizeof err), NN_EFORMAT, "cut at %zu", cut);
        cr_expect(strstr(err, "the png file is truncated: ") == err, "cut at %zu: %s", cut, err);
    }
    free(whole);
    free(f);
}

/* w x h grey indices (i * 7) as a GIF with a global table of 256 greys. */
static uint8_t *grey_gif(size_t *len, int w, int h, uint8_t *idx)
{
    uint8_t pal[768];
    for (int i = 0; i < 768; i++)
        pal[i] = (uint8_t)(i / 3);
    for (int i = 0; i < w * h; i++)
        idx[i] = (uint8_t)(i * 7);
    return img_gif(len, w, h, idx, 8, pal, 8);
}

Test(gif, every_cut_of_a_gif_before_its_image_data_ends_is_refused)
{
    enum { W = 28, H = 28 };
    uint8_t idx[W * H];
    size_t n = 0;
    uint8_t *f = grey_gif(&n, W, H, idx);
    cr_assert_not_null(f);
    uint8_t *whole = decode_ok(f, n, W, H, 4);
    for (int i = 0; i < W * H; i++)
        cr_expect(whole[4 * i] == idx[i] && whole[4 * i + 3] == 255, "pixel %d", i);
    for (size_t cut = 6; cut < n - 1; cut++) {
        char err[512];
        cr_expect_eq(decode_fails(f, cut, err, sizeof err), NN_EFORMAT, "cut at %zu", cut);
        cr_expect(strstr(err, "the gif file is truncated: ") == err, "cut at %zu: %s", cut, err);
    }
    /* without its trailer (the last byte) the image is all there: stb never reads it */
    uint8_t *px = decode_ok(f, n - 1, W, H, 4);
    cr_expect_eq(memcmp(px, whole, (size_t)W * H * 4), 0);
    free(px);
    free(whole);
    free(f);

    /* data that ends (block terminator and all) after 400 of the 784 pixels */
    uint8_t pal[6] = {0, 0, 0, 255, 255, 255};
    struct img_buf b = {0};
    img_gif_head(&b, W, H, pal, 1);
    img_gif_frame(&b, 0, 0, W, H, idx, 400, 2);
    img_u8(&b, 0x3b);
    f = img_done(&b, &n);
    char err[512];
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    cr_expect_str_eq(err, "cannot decode the gif image: its image data ends after 400 of the 784 "
                          "pixels of its 28x28 frame");
    free(f);
}

/* Broken files whose sentences come from stb or the preflight (one of each kind of path). */
struct bad_file {
    const char *kind, *what, *frag;
    uint8_t *f;
    size_t n;
};

static void make_bad_files(struct bad_file *bf, size_t *count)
{
    size_t k = 0, n = 0;
    uint8_t g[64], pal[1024], *f;
    memset(g, 100, sizeof g);
    grey_table(pal);
    f = img_bmp(&n, 8, 8, 8, g, pal, 256, 0);
    f[26] = 0; /* planes */
    bf[k++] = (struct bad_file){"bmp", "0 planes", "cannot read the bmp header: bad BMP", f, n};
    f = img_bmp(&n, 8, 8, 8, g, pal, 256, 0);
    f[30] = 2; /* BI_RLE4 */
    bf[k++] = (struct bad_file){"bmp", "RLE", "compression 2 is not supported", f, n};
    f = img_gif(&n, 8, 8, g, 8, pal, 8);
    f[13 + 768 + 10] = 13; /* LZW minimum code size */
    bf[k++] = (struct bad_file){"gif", "LZW 13", "LZW minimum code size 13 (at most 12)", f, n};
    f = malloc(14);
    memcpy(f, "GIF89a\x08\x00\x08\x00\x00\x00\x00\x3b", 14);
    bf[k++] = (struct bad_file){"gif", "no image", "it has no image", f, 14};
    f = img_png(&n, 8, 8, 8, 0, g, NULL, 0);
    memcpy(f + 33 + 4, "XyZW", 4); /* IDAT renamed: an unknown critical chunk */
    bf[k++] = (struct bad_file){"png", "XyZW", "unknown critical chunk XyZW at byte 33", f, n};
    f = img_png(&n, 8, 8, 8, 0, g, NULL, 0);
    f[33 + 8] = 0x79; /* the zlib header's check bits */
    bf[k++] = (struct bad_file){"png", "zlib header",
                                "cannot decode the png image: bad zlib header", f, n};
    /* IDAT chunks whose lengths add up past 2^31: stb 2.27 returns without a reason there */
    struct img_buf b = {0};
    img_put(&b, "\x89PNG\r\n\x1a\n", 8);
    img_png_chunk(&b, "IHDR", "\0\0\0\x08\0\0\0\x08\x08\0\0\0\0", 13);
    img_png_chunk(&b, "IDAT", "\x78", 1);
    img_be32(&b, 0x7fffffffu);
    img_put(&b, "IDAT", 4);
    f = img_done(&b, &n);
    bf[k++] = (struct bad_file){"png", "IDAT past 2 GiB",
                                "the png file is truncated: chunk IDAT at byte 46 needs", f, n};
    for (size_t i = 0; i < k; i++)
        cr_assert_not_null(bf[i].f, "%s", bf[i].what);
    *count = k;
}

Test(image_errors, a_reason_comes_from_the_file_itself_not_another_format_or_request)
{
    struct bad_file bf[16];
    size_t k = 0;
    make_bad_files(bf, &k);
    char alone[16][512];
    for (size_t i = 0; i < k; i++) {
        decode_fails(bf[i].f, bf[i].n, alone[i], sizeof alone[i]);
        cr_expect(strstr(alone[i], bf[i].frag) != NULL, "%s: \"%s\" lacks \"%s\"", bf[i].what,
                  alone[i], bf[i].frag);
        cr_expect(strstr(alone[i], bf[i].kind) != NULL, "%s: %s", bf[i].what, alone[i]);
    }
    /* every failure after every other: the same sentence, naming no other format's test */
    static const char *const others[] = {"png sig", "BMP", "GIF", "PNG", "unknown image type"};
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j < k; j++) {
            char first[512], then[512];
            decode_fails(bf[i].f, bf[i].n, first, sizeof first);
            decode_fails(bf[j].f, bf[j].n, then, sizeof then);
            cr_expect_str_eq(then, alone[j], "%s after %s", bf[j].what, bf[i].what);
            for (size_t o = 0; o < sizeof others / sizeof others[0]; o++) {
                int own = (!strcmp(bf[j].kind, "bmp") && !strcmp(others[o], "BMP"));
                cr_expect(own || strstr(then, others[o]) == NULL, "%s after %s: %s", bf[j].what,
                          bf[i].what, then);
            }
        }
    }
    for (size_t i = 0; i < k; i++)
        free(bf[i].f);
}

/* Fills 256 KiB of the stack below the caller with a pattern seeded by v, so that what a
 * decoder called next reads without having written it differs with v. */
__attribute__((noinline)) static void dirty_stack(unsigned v)
{
    volatile uint8_t junk[1 << 18];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(v + i * 131);
}

/* Row-major indices packed at depth bits per pixel, most significant bits first (the order
 * of PNG and BMP rows). */
static void pack_row(uint8_t *dst, const uint8_t *idx, int w, int depth)
{
    memset(dst, 0, ((size_t)w * depth + 7) / 8);
    for (int x = 0; x < w; x++)
        dst[x * depth / 8] |= (uint8_t)(idx[x] << (8 - depth - x * depth % 8));
}

Test(bmp, indices_past_a_short_colour_table_are_black_whatever_the_stack_held)
{
    enum { W = 16, H = 16 };
    static const int depths[] = {1, 4, 8};
    for (size_t d = 0; d < 3; d++) {
        int depth = depths[d];
        uint8_t idx[W], rows[H * W];
        size_t row = ((size_t)W * depth + 7) / 8;
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++)
                idx[x] = (uint8_t)((y * W + x) % (1 << depth));
            pack_row(rows + (size_t)y * row, idx, W, depth);
        }
        static const uint8_t pal[4] = {50, 100, 200, 0}; /* BGRX: one entry */
        size_t n = 0;
        uint8_t *f = img_bmp(&n, W, -H, depth, rows, pal, 1, 0);
        cr_assert_not_null(f);
        for (unsigned v = 0; v < 3; v++) {
            dirty_stack(v * 85);
            uint8_t *px = decode_ok(f, n, W, H, 3);
            for (int i = 0; i < W * H; i++) {
                int first = i % (1 << depth) == 0;
                uint8_t r = first ? 200 : 0, g = first ? 100 : 0, b = first ? 50 : 0;
                cr_expect(px[3 * i] == r && px[3 * i + 1] == g && px[3 * i + 2] == b,
                          "%d bpp, stack %u: pixel %d is %d,%d,%d, expected %d,%d,%d", depth, v, i,
                          px[3 * i], px[3 * i + 1], px[3 * i + 2], r, g, b);
            }
            free(px);
        }
        free(f);
    }
}

Test(bmp, an_os2_bmp_gets_all_256_colours_of_its_table)
{
    /* BITMAPCOREHEADER: 12 bytes, 16-bit sizes, a table of 3-byte BGR entries. stb counts
     * that table 4 entries short, so 252..255 came from its stack. */
    enum { W = 16, H = 16 };
    uint8_t f[26 + 768 + W * H];
    memset(f, 0, sizeof f);
    f[0] = 'B', f[1] = 'M';
    set_le32(f + 2, sizeof f);
    set_le32(f + 10, 26 + 768);
    set_le32(f + 14, 12);
    f[18] = W, f[20] = H, f[22] = 1, f[24] = 8;
    for (int i = 0; i < 256; i++)
        f[26 + 3 * i] = (uint8_t)i, f[27 + 3 * i] = (uint8_t)(255 - i), f[28 + 3 * i] = 7;
    for (int y = 0; y < H; y++) /* bottom-up */
        for (int x = 0; x < W; x++)
            f[26 + 768 + (H - 1 - y) * W + x] = (uint8_t)(y * W + x);
    for (unsigned v = 0; v < 2; v++) {
        dirty_stack(v * 77);
        uint8_t *px = decode_ok(f, sizeof f, W, H, 3);
        for (int i = 0; i < W * H; i++)
            cr_expect(px[3 * i] == 7 && px[3 * i + 1] == 255 - i && px[3 * i + 2] == i,
                      "pixel %d (index %d) is %d,%d,%d", i, i, px[3 * i], px[3 * i + 1],
                      px[3 * i + 2]);
        free(px);
    }
}

/* A palette PNG, w x h at depth bits, indices i % 2^depth, with a PLTE of one entry (200, 100,
 * 50) and, when alpha >= 0, a tRNS giving that entry that alpha. */
static uint8_t *palette_png(size_t *len, int w, int h, int depth, int alpha)
{
    size_t row = ((size_t)w * depth + 7) / 8, raw_len = (row + 1) * (size_t)h;
    uint8_t *raw = calloc(1, raw_len), idx[64];
    cr_assert(raw && w <= 64);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            idx[x] = (uint8_t)((y * w + x) % (1 << depth));
        pack_row(raw + (size_t)y * (row + 1) + 1, idx, w, depth);
    }
    uLongf zlen = compressBound(raw_len);
    uint8_t *z = malloc(zlen);
    cr_assert(z && compress2(z, &zlen, raw, raw_len, 9) == Z_OK);
    struct img_buf b = {0};
    img_put(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {0, 0, 0, (uint8_t)w, 0, 0, 0, (uint8_t)h, (uint8_t)depth, 3, 0, 0, 0};
    img_png_chunk(&b, "IHDR", ihdr, 13);
    img_png_chunk(&b, "tEXt", "Comment\0dropped from the padded copy", 36);
    img_png_chunk(&b, "PLTE", "\xc8\x64\x32", 3);
    if (alpha >= 0)
        img_png_chunk(&b, "tRNS", (uint8_t[1]){(uint8_t)alpha}, 1);
    img_png_chunk(&b, "IDAT", z, zlen);
    img_png_chunk(&b, "IEND", "", 0);
    free(z);
    free(raw);
    return img_done(&b, len);
}

Test(png, indices_past_a_short_plte_are_black_whatever_the_stack_held)
{
    enum { W = 16, H = 16 };
    for (int depth = 1; depth <= 8; depth *= 2) {
        for (int alpha = -1; alpha <= 128; alpha += 129) {
            size_t n = 0;
            uint8_t *f = palette_png(&n, W, H, depth, alpha);
            cr_assert_not_null(f);
            int ch = alpha >= 0 ? 4 : 3;
            for (unsigned v = 0; v < 3; v++) {
                dirty_stack(v * 85 + 1);
                uint8_t *px = decode_ok(f, n, W, H, ch);
                for (int i = 0; i < W * H; i++) {
                    int first = i % (1 << depth) == 0;
                    const uint8_t *p = px + (size_t)i * ch;
                    int ok = first ? p[0] == 200 && p[1] == 100 && p[2] == 50
                                   : p[0] == 0 && p[1] == 0 && p[2] == 0;
                    if (ch == 4)
                        ok = ok && p[3] == (first ? alpha : 255);
                    cr_expect(ok, "depth %d, tRNS %d, stack %u: pixel %d is %d,%d,%d,%d", depth,
                              alpha, v, i, p[0], p[1], p[2], ch == 4 ? p[3] : -1);
                }
                free(px);
            }
            free(f);
        }
    }
}

Test(gif, an_index_past_a_short_colour_table_is_transparent_every_time)
{
    enum { W = 16, H = 16 };
    uint8_t idx[W * H], pal[6] = {10, 20, 30, 40, 50, 60};
    for (int i = 0; i < W * H; i++)
        idx[i] = (uint8_t)i;
    size_t n = 0;
    uint8_t *f = img_gif(&n, W, H, idx, 8, pal, 1); /* a table of 2 */
    cr_assert_not_null(f);
    for (unsigned v = 0; v < 3; v++) {
        dirty_stack(v * 85 + 2);
        uint8_t *px = decode_ok(f, n, W, H, 4);
        for (int i = 0; i < W * H; i++) {
            const uint8_t *p = px + 4 * i;
            int ok = i < 2 ? p[0] == pal[3 * i] && p[1] == pal[3 * i + 1] &&
                                 p[2] == pal[3 * i + 2] && p[3] == 255
                           : p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0;
            cr_expect(ok, "stack %u: pixel %d is %d,%d,%d,%d", v, i, p[0], p[1], p[2], p[3]);
        }
        free(px);
    }
    free(f);
    /* no colour table at all: refused */
    f = img_gif(&n, W, H, idx, 8, NULL, 0);
    char err[512];
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    cr_expect_str_eq(err, "cannot decode the gif image: missing color table");
    free(f);
}

Test(png, a_zlib_stream_that_stops_halfway_is_refused_as_truncated)
{
    /* an IDAT whose chunk is whole but whose zlib stream stops halfway: the chunk walk cannot
     * tell, the inflate can */
    enum { W = 28, H = 28 };
    uint8_t g[W * H];
    for (int i = 0; i < W * H; i++)
        g[i] = (uint8_t)(i * 5);
    size_t n = 0, raw_len = 0;
    uint8_t *raw = img_png_rows(&raw_len, W, H, 8, 0, g);
    uLongf zlen = compressBound(raw_len);
    uint8_t *z = malloc(zlen);
    cr_assert(raw && z && compress2(z, &zlen, raw, raw_len, 9) == Z_OK);
    uint8_t *f = img_png_z(&n, W, H, 8, 0, z, zlen / 2, NULL, 0);
    char err[512];
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    cr_expect(strstr(err, "the png file is truncated: its image data inflates to ") == err, "%s",
              err);
    cr_expect(strstr(err, "of the 812 bytes its 28x28 pixels need") != NULL, "%s", err);
    free(f);
    free(z);
    free(raw);
}

Test(gif, only_the_first_frame_of_an_animated_gif_is_decoded)
{
    enum { W = 8, H = 8 };
    uint8_t ones[W * H], twos[W * H], pal[12] = {0, 0, 0, 255, 255, 255, 9, 9, 9, 0, 0, 0};
    memset(ones, 1, sizeof ones);
    memset(twos, 2, sizeof twos);
    struct img_buf b = {0};
    img_gif_head(&b, W, H, pal, 2);
    img_gif_frame(&b, 0, 0, W, H, ones, W * H, 2);
    for (int k = 0; k < 50; k++) /* 50 more frames, each all index 2 */
        img_gif_frame(&b, 0, 0, W, H, twos, W * H, 2);
    img_u8(&b, 0x3b);
    size_t n = 0;
    uint8_t *f = img_done(&b, &n);
    cr_assert_not_null(f);
    uint8_t *px = decode_ok(f, n, W, H, 4);
    for (int i = 0; i < W * H; i++)
        cr_expect(px[4 * i] == 255 && px[4 * i + 3] == 255, "pixel %d is %d", i, px[4 * i]);
    free(px);
    free(f);
}

Test(image_bounds, a_gif_whose_codes_outrun_its_frame_is_refused_in_linear_time)
{
    /* 1 MiB of codes drawing 2 billion pixels into a 16x16 frame: stb took 5 s for this */
    size_t n = 0;
    uint8_t *f = img_gif_long_codes(&n, 16, 16, (size_t)1 << 20);
    cr_assert_not_null(f);
    char err[512];
    double t0 = now_s();
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    double dt = now_s() - t0;
    cr_expect_str_eq(err, "cannot decode the gif image: its image data decodes to more than twice "
                          "the 256 pixels of its 16x16 frame");
    cr_expect(dt < 0.05, "took %.3f s", dt);
    free(f);
    /* the same codes drawing 1.6 times a 128x128 frame: within twice, decoded */
    f = img_gif_long_codes(&n, 128, 128, 800); /* one sub-block: 226 codes, 25651 pixels */
    cr_assert_not_null(f);
    free(decode_ok(f, n, 128, 128, 4));
    free(f);
}

Test(image_bounds, a_png_of_empty_deflate_blocks_is_refused_in_linear_time)
{
    static const uint8_t raw[2] = {0, 77}; /* 1x1 grey: filter byte, pixel */
    size_t zn = 0, n = 0;
    uint8_t *z = img_zlib_empty_blocks(&zn, 100000, raw, 2); /* 1.2 MB */
    cr_assert_not_null(z);
    uint8_t *f = img_png_z(&n, 1, 1, 8, 0, z, zn, NULL, 0);
    cr_assert_not_null(f);
    char err[512];
    double t0 = now_s();
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    double dt = now_s() - t0;
    cr_expect(strstr(err, "its compressed data has over 68 deflate blocks") != NULL, "%s", err);
    cr_expect(dt < 0.05, "took %.3f s", dt);
    free(f);
    free(z);
    /* 60 of them are within the limit: zlib and stb both read these blocks */
    z = img_zlib_empty_blocks(&zn, 60, raw, 2);
    f = img_png_z(&n, 1, 1, 8, 0, z, zn, NULL, 0);
    uint8_t *px = decode_ok(f, n, 1, 1, 1);
    cr_expect_eq(px[0], 77);
    free(px);
    free(f);
    free(z);
}

Test(image_bounds, a_png_flushed_after_every_row_decodes)
{
    /* two blocks a row (the row's and the empty stored block of Z_SYNC_FLUSH), as a streaming
     * encoder writes: within 4 per row */
    enum { W = 200, H = 300 };
    uint8_t *g = malloc(W * H);
    for (int i = 0; i < W * H; i++)
        g[i] = (uint8_t)(i % 251);
    size_t raw_len = 0;
    uint8_t *raw = img_png_rows(&raw_len, W, H, 8, 0, g);
    uint8_t *z = malloc(2 * raw_len + 1024);
    cr_assert(g && raw && z);
    z_stream s;
    memset(&s, 0, sizeof s);
    cr_assert_eq(deflateInit(&s, 6), Z_OK);
    s.next_out = z;
    s.avail_out = (uInt)(2 * raw_len + 1024);
    for (int y = 0; y < H; y++) {
        s.next_in = raw + (size_t)y * (W + 1);
        s.avail_in = W + 1;
        cr_assert_eq(deflate(&s, y == H - 1 ? Z_FINISH : Z_SYNC_FLUSH),
                     y == H - 1 ? Z_STREAM_END : Z_OK);
    }
    size_t n = 0;
    uint8_t *f = img_png_z(&n, W, H, 8, 0, z, s.total_out, NULL, 0);
    deflateEnd(&s);
    uint8_t *px = decode_ok(f, n, W, H, 1);
    cr_expect_eq(memcmp(px, g, (size_t)W * H), 0);
    free(px);
    free(f);
    free(z);
    free(raw);
    free(g);
}

Test(image_bounds, a_png_inflating_past_twice_its_pixels_is_refused)
{
    size_t big = (size_t)1 << 20, n = 0;
    uint8_t *zeros = calloc(1, big);
    uLongf zlen = compressBound(big);
    uint8_t *z = malloc(zlen);
    cr_assert(zeros && z && compress2(z, &zlen, zeros, big, 9) == Z_OK);
    uint8_t *f = img_png_z(&n, 1, 1, 8, 0, z, zlen, NULL, 0);
    char err[512];
    cr_expect_eq(decode_fails(f, n, err, sizeof err), NN_EFORMAT);
    cr_expect_str_eq(err, "cannot decode the png image: its compressed data inflates to more than "
                          "twice the 2 bytes its 1x1 pixels need (plus 64 KiB)");
    free(f);
    free(z);
    free(zeros);
}

/* ---------------------------------------------------------------------------------------- */
/* The expensive-request pool                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Jobs that wait for the test to release them, recording the order they ran in. */
struct jobs;
struct test_job {
    struct srv_job job;
    int id, parked;
    struct jobs *all;
};

struct jobs {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, done, release;
    int order[8];
    struct test_job t[4];
};

static void note_park(void *p) { ((struct test_job *)p)->parked = 1; }

static void test_run(struct srv_job *job)
{
    struct test_job *t = (struct test_job *)job;
    struct jobs *js = t->all;
    pthread_mutex_lock(&js->mu);
    js->started++;
    pthread_cond_broadcast(&js->cv);
    while (!js->release)
        pthread_cond_wait(&js->cv, &js->mu);
    js->order[js->done++] = t->id;
    pthread_cond_broadcast(&js->cv);
    pthread_mutex_unlock(&js->mu);
}

static void jobs_init(struct jobs *js, int n)
{
    memset(js, 0, sizeof *js);
    pthread_mutex_init(&js->mu, NULL);
    pthread_cond_init(&js->cv, NULL);
    for (int i = 0; i < n; i++)
        js->t[i] = (struct test_job){{test_run, NULL, 0, 0}, i + 1, 0, js};
}

/* Waits until n jobs have started running (a worker has taken them from the queue). */
static void jobs_wait_started(struct jobs *js, int n)
{
    pthread_mutex_lock(&js->mu);
    while (js->started < n)
        pthread_cond_wait(&js->cv, &js->mu);
    pthread_mutex_unlock(&js->mu);
}

/* Lets every job finish and waits until n have. */
static void jobs_release(struct jobs *js, int n)
{
    pthread_mutex_lock(&js->mu);
    js->release = 1;
    pthread_cond_broadcast(&js->cv);
    while (js->done < n)
        pthread_cond_wait(&js->cv, &js->mu);
    pthread_mutex_unlock(&js->mu);
}

static void jobs_free(struct jobs *js)
{
    pthread_cond_destroy(&js->cv);
    pthread_mutex_destroy(&js->mu);
}

Test(pool, jobs_run_first_come_first_served_and_the_queue_is_bounded)
{
    struct jobs js;
    jobs_init(&js, 4);
    struct test_job *t = js.t;
    struct srv_pool *p = NULL;
    cr_assert_eq(srv_pool_new(&p, 1, 2), 0);
    cr_expect_eq(srv_pool_threads(p), 1);
    /* one runs (held until released), two wait, the fourth finds no room */
    cr_expect_eq(srv_pool_submit(p, &t[0].job, 0, note_park, &t[0]), 0);
    jobs_wait_started(&js, 1);
    cr_expect_eq(srv_pool_submit(p, &t[1].job, 1, note_park, &t[1]), 0);
    cr_expect_eq(srv_pool_submit(p, &t[2].job, 2, note_park, &t[2]), 0);
    cr_expect_eq(srv_pool_submit(p, &t[3].job, 3, note_park, &t[3]), -1);
    cr_expect(t[0].parked && t[1].parked && t[2].parked && !t[3].parked,
              "parked before queued, and only when queued");
    jobs_release(&js, 3);
    cr_expect(js.order[0] == 1 && js.order[1] == 2 && js.order[2] == 3, "ran %d %d %d",
              js.order[0], js.order[1], js.order[2]);
    srv_pool_free(p);
    jobs_free(&js);
}

Test(pool, jobs_waiting_past_the_wait_are_taken_out_unrun)
{
    struct jobs js;
    jobs_init(&js, 4);
    struct test_job *t = js.t;
    struct srv_pool *p = NULL;
    cr_assert_eq(srv_pool_new(&p, 1, 3), 0);
    cr_assert_eq(srv_pool_submit(p, &t[0].job, 0, note_park, &t[0]), 0);
    jobs_wait_started(&js, 1);
    for (int i = 1; i < 4; i++)
        cr_assert_eq(srv_pool_submit(p, &t[i].job, (uint64_t)i * 1000, note_park, &t[i]), 0);
    /* at t = 3500 with a 1000 us wait: jobs 2 and 3 (queued at 1000 and 2000) are over it,
     * job 4 (3000) is not */
    struct srv_job *out = srv_pool_expire(p, 3500, 1000);
    cr_assert_eq(out, &t[1].job);
    cr_expect_eq(out->next, &t[2].job);
    cr_expect_eq(t[2].job.next, NULL);
    cr_expect(t[1].job.expired && t[2].job.expired && !t[3].job.expired);
    jobs_release(&js, 2);
    cr_expect(js.order[0] == 1 && js.order[1] == 4, "ran %d %d: the expired ones never",
              js.order[0], js.order[1]);
    cr_expect_eq(srv_pool_expire(p, 99999, 0), NULL, "nothing waits any more");
    srv_pool_free(p);
    jobs_free(&js);
}

Test(pool, with_no_waiting_room_a_job_runs_only_on_a_free_worker)
{
    struct jobs js;
    jobs_init(&js, 2);
    struct test_job *t = js.t;
    struct srv_pool *p = NULL;
    cr_assert_eq(srv_pool_new(&p, 1, 0), 0);
    cr_expect_eq(srv_pool_submit(p, &t[0].job, 0, note_park, &t[0]), 0, "a free worker");
    cr_expect_eq(srv_pool_submit(p, &t[1].job, 0, note_park, &t[1]), -1, "none free, no room");
    jobs_release(&js, 1);
    srv_pool_free(p);
    jobs_free(&js);
}
