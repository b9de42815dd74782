/*
 * jpeg.h - JPEG photos to upright 8-bit pixels: libjpeg-turbo's TurboJPEG API for the pixels,
 * libexif for the Orientation tag.
 *
 * The key choice is to scale down inside the decoder: a 12 MP phone photo is decoded at 1/4
 * scale by the DCT itself (TurboJPEG's scaling factors), so the pixels that exist after
 * decoding are ~1 MP whatever the photo's size, and nothing downstream ever sees the full
 * image. Before anything is decoded, the segment headers are walked (SOF, SOS, APP1) to know the
 * size, whether libjpeg will buffer the whole image's DCT coefficients (progressive or
 * non-interleaved files), and the memory that costs; a file over the budget is refused there.
 * Pure functions, thread-safe, no HTTP.
 */
#ifndef SRV_JPEG_H
#define SRV_JPEG_H

#include <stddef.h>
#include <stdint.h>

#define SRV_JPEG_MAX_SIDE 16384                /* width or height of the file */
#define SRV_JPEG_MAX_PIXELS (48 * 1024 * 1024) /* width * height: 48 Mi (8000x6000 fits) */
#define SRV_DECODE_BUDGET ((size_t)192 << 20)  /* bytes one decode may need (estimated) */
#define SRV_JPEG_FULL_SIDE 2048                /* at most this per side: decoded at 1/1 */
#define SRV_JPEG_TARGET_SIDE 1000              /* else: smallest scale keeping this */
#define SRV_JPEG_MAX_SCANS 64                  /* scans in a progressive/multi-scan file */
/* 8x8 blocks the scans of a buffered file make the decoder walk, summed over its scans
 * (each walks every block of the components it names, ~5 ns a block here even when the scan
 * holds nothing but end-of-band runs). libjpeg's default progression walks 8 times the
 * luminance blocks at 4:2:0 (6.3 Mi for a 48 MP photo) and 14 times at 4:4:4 (10.5 Mi at
 * 48 MP); 12 Mi allows both, and holds a hostile file to what such a photo costs (~60 ms). */
#define SRV_JPEG_MAX_BLOCK_VISITS ((uint64_t)12 << 20)

/* What the segment headers before the first scan say (srv_jpeg_probe). */
struct srv_jpeg_info {
    int width, height;   /* from SOF; 0 if no SOF was found before the first scan */
    int components;      /* 1 (gray), 3 (YCbCr/RGB) or 4 (CMYK/YCCK) */
    int hmax, vmax;      /* largest sampling factors */
    int h[4], v[4];      /* sampling factors per component (first 4) */
    int id[4];           /* component identifiers (first 4) */
    int progressive;     /* SOF2/6/10/14 */
    int buffered;        /* libjpeg keeps every DCT coefficient: progressive, or a first
                          * scan with fewer components than the frame */
    int scans;           /* SOS markers in the whole file, counted when buffered */
    uint64_t block_visits; /* blocks all those scans cover (SRV_JPEG_MAX_BLOCK_VISITS) */
    const uint8_t *exif; /* APP1 payload starting "Exif\0\0", or NULL */
    size_t exif_len;
};

/*
 * Walks the JPEG segments of data[0..len) from SOI up to the first SOS and fills *info; for a
 * buffered file it also reads every SOS header in the rest, counting the scans and the blocks
 * each covers (entropy-coded data stuffs each 0xFF with 0x00, so "FF DA" there is always a
 * real marker). Returns 0, or -1 when the bytes are not a JPEG or a segment runs past
 * the end before a frame header was seen (info->width stays 0).
 */
int srv_jpeg_probe(struct srv_jpeg_info *info, const void *data, size_t len);

/*
 * The DCT scaling factor num/denom for a w x h image: 1/1 when both sides are at most
 * SRV_JPEG_FULL_SIDE, else the smallest factor TurboJPEG offers (of 1/8 .. 8/8) whose scaled
 * longer side is still >= SRV_JPEG_TARGET_SIDE. Scaled sizes round up (TJSCALED).
 */
void srv_jpeg_scale(int w, int h, int *num, int *denom);

/*
 * Bytes a decode of info at num/denom will need: the output pixels (twice, for the orientation
 * copy), libjpeg's row buffers and, for buffered files, the whole image's coefficient arrays
 * (64 coefficients x 2 bytes per 8x8 block of every component, at full size: scaling does not
 * shrink them).
 */
size_t srv_jpeg_budget(const struct srv_jpeg_info *info, int num, int denom);

/* EXIF Orientation (1..8) from an APP1 payload "Exif\0\0..." via libexif; 1 when absent or
 * unreadable or outside 1..8. */
int srv_jpeg_orientation(const uint8_t *exif, size_t len);

/*
 * Reorders w x h pixels of `channels` bytes so that an image stored with EXIF orientation o
 * (1..8) comes out upright: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
 * 7 transverse, 8 rotate 90 counter-clockwise. Returns a new buffer (free()) and sets *ow, *oh
 * (swapped for 5..8); NULL on OOM. o outside 2..8 copies.
 */
uint8_t *srv_pixels_orient(const uint8_t *src, int w, int h, int channels, int o, int *ow, int *oh);

/*
 * Decodes a JPEG to upright 8-bit pixels: gray (1 channel) for a grayscale file, RGB (3) else,
 * scaled by srv_jpeg_scale, with the EXIF orientation applied. On success *out (free()) holds
 * (*w)*(*h)*(*channels) bytes, at most SRV_JPEG_FULL_SIDE per side; returns 0. Errors, with a
 * sentence for the client in err: NN_EFORMAT (corrupt, truncated, unsupported: CMYK,
 * over SRV_JPEG_MAX_SCANS scans), NN_ERANGE (over SRV_JPEG_MAX_SIDE or
 * SRV_JPEG_MAX_PIXELS, or over SRV_DECODE_BUDGET), NN_ENOMEM. Thread-safe.
 */
int srv_jpeg_decode(uint8_t **out, int *w, int *h, int *channels, const void *data, size_t len,
                    char *err, size_t errlen);

#endif
