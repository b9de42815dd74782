/*
 * photo.h - phone-style JPEGs made on the fly for the decoder's tests, the bench and the node
 * test's helper (header-only: each user is one program). Nothing big is ever committed.
 *
 * photo_pixels draws what a phone sees: grey paper with a gentle left-to-right illumination
 * gradient, a thick dark digit-like stroke (a "7": a bar and a slanted leg) and +-12 levels of
 * noise; photo_jpeg compresses any pixels with TurboJPEG; photo_with_exif inserts an APP1
 * segment holding one IFD0 entry, Orientation, written by hand (little- or big-endian TIFF).
 */
#ifndef TESTS_PHOTO_H
#define TESTS_PHOTO_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* w*h*channels bytes (channels 1 or 3; free()), deterministic for a given size. */
static inline uint8_t *photo_pixels(int w, int h, int channels)
{
    uint8_t *px = malloc((size_t)w * (size_t)h * (size_t)channels);
    if (!px)
        return NULL;
    uint32_t rng = 12345u;
    double s = (w < h ? w : h) / 3.0; /* digit height */
    double x0 = w / 2.0 - s / 3.0, y0 = h / 2.0 - s / 2.0, th = s / 8.0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double v = 200.0 + 30.0 * x / w; /* paper, brighter to the right */
            double dy = y - y0, dx = x - x0;
            int bar = dy >= 0 && dy < th && dx >= 0 && dx < 2 * s / 3;
            /* the leg: from the bar's right end down-left to the bottom */
            double t = dy / s, lx = x0 + 2 * s / 3 - t * s / 3;
            int leg = t >= 0 && t <= 1 && x >= lx - th && x < lx;
            if (bar || leg)
                v = 40.0;
            rng = rng * 1664525u + 1013904223u;
            v += (double)(rng >> 24) / 255.0 * 24.0 - 12.0;
            uint8_t g = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            for (int c = 0; c < channels; c++) /* a slightly warm paper in RGB */
                px[((size_t)y * (size_t)w + (size_t)x) * (size_t)channels + (size_t)c] =
                    (uint8_t)(channels == 3 && c == 2 && g > 10 ? g - 10 : g);
        }
    }
    return px;
}

/* JPEG of pixels (1 or 3 channels) at quality q; flags such as TJFLAG_PROGRESSIVE. Returns
 * 0 and a malloc'd *jpg (free()), -1 on failure. */
static inline int photo_jpeg(uint8_t **jpg, size_t *len, const uint8_t *px, int w, int h,
                             int channels, int q, int flags)
{
    *jpg = NULL;
    *len = 0;
    tjhandle tj = tjInitCompress();
    if (!tj)
        return -1;
    unsigned char *buf = NULL;
    unsigned long n = 0;
    int rc = tjCompress2(tj, px, w, w * channels, h, channels == 1 ? TJPF_GRAY : TJPF_RGB, &buf, &n,
                         channels == 1 ? TJSAMP_GRAY : TJSAMP_420, q, flags);
    tjDestroy(tj);
    if (rc != 0) {
        tjFree(buf);
        return -1;
    }
    *jpg = malloc(n);
    if (*jpg) {
        memcpy(*jpg, buf, n);
        *len = n;
    }
    tjFree(buf);
    return *jpg ? 0 : -1;
}

/* v as an n-byte TIFF integer at p, big- or little-endian. */
static inline void photo_put(uint8_t *p, uint32_t v, int n, int big)
{
    for (int k = 0; k < n; k++)
        p[big ? n - 1 - k : k] = (uint8_t)(v >> (8 * k));
}

/* A copy of jpg with an EXIF APP1 segment right after SOI holding Orientation = o
 * (big-endian TIFF when big is set). Returns NULL on OOM. */
static inline uint8_t *photo_with_exif(const uint8_t *jpg, size_t len, int o, int big,
                                       size_t *out_len)
{
    uint8_t app[2 + 2 + 32] = {0xff, 0xe1, 0, 34};
    uint8_t *e = app + 4;
    memcpy(e, "Exif\0\0", 6);
    uint8_t *t = e + 6; /* TIFF header, offsets from here */
    memcpy(t, big ? "MM" : "II", 2);
    photo_put(t + 2, 42, 2, big);
    photo_put(t + 4, 8, 4, big);      /* IFD0 at 8 */
    photo_put(t + 8, 1, 2, big);      /* one entry */
    photo_put(t + 10, 0x112, 2, big); /* Orientation */
    photo_put(t + 12, 3, 2, big);     /* SHORT */
    photo_put(t + 14, 1, 4, big);     /* count */
    photo_put(t + 18, (uint32_t)o, 2, big);
    photo_put(t + 20, 0, 2, big); /* value padded to 4 bytes */
    photo_put(t + 22, 0, 4, big); /* no next IFD */
    uint8_t *out = malloc(len + sizeof app);
    if (!out)
        return NULL;
    memcpy(out, jpg, 2);
    memcpy(out + 2, app, sizeof app);
    memcpy(out + 2 + sizeof app, jpg + 2, len - 2);
    *out_len = len + sizeof app;
    return out;
}

/* A phone photo: photo_pixels as a JPEG at quality q, with an EXIF Orientation when o is in
 * 1..8 (0: no EXIF). Returns 0 and *jpg (free()), -1 on failure. */
static inline int photo_make(uint8_t **jpg, size_t *len, int w, int h, int channels, int q, int o,
                             int flags)
{
    uint8_t *px = photo_pixels(w, h, channels);
    if (!px)
        return -1;
    int rc = photo_jpeg(jpg, len, px, w, h, channels, q, flags);
    free(px);
    if (rc != 0 || o == 0)
        return rc;
    size_t n = 0;
    uint8_t *e = photo_with_exif(*jpg, *len, o, 0, &n);
    free(*jpg);
    *jpg = e;
    *len = n;
    return e ? 0 : -1;
}

#endif
