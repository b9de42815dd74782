/*
 * images.h - PNG, BMP and GIF files made on the fly for the decoder's tests (header-only, as
 * photo.h: each user is one program). Nothing is committed but the code that writes them.
 *
 * img_png writes IHDR, an optional PLTE, one IDAT (zlib's compress2, or any stream given to
 * img_png_z) and IEND with real CRCs;
 * img_bmp a BITMAPINFOHEADER file (BI_RGB, or BI_BITFIELDS with RGB565 / XRGB masks), bottom-up
 * or top-down; img_gif a GIF89a of one frame whose LZW codes are all literals, with a clear code
 * before the code size would grow (so the encoder is a dozen lines). Every function returns a
 * malloc'd file (free()) and its length, or NULL when out of memory.
 */
#ifndef TESTS_IMAGES_H
#define TESTS_IMAGES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* A growing byte buffer; a failed allocation leaves p NULL and every later put a no-op. */
struct img_buf {
    uint8_t *p;
    size_t n, cap;
    int failed;
};

static inline void img_put(struct img_buf *b, const void *src, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            free(b->p);
            b->p = NULL;
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static inline void img_u8(struct img_buf *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    img_put(b, &c, 1);
}

static inline void img_le16(struct img_buf *b, unsigned v)
{
    img_u8(b, v & 255);
    img_u8(b, v >> 8 & 255);
}

static inline void img_le32(struct img_buf *b, uint32_t v)
{
    img_le16(b, v & 0xffff);
    img_le16(b, v >> 16);
}

static inline void img_be32(struct img_buf *b, uint32_t v)
{
    img_u8(b, v >> 24);
    img_u8(b, v >> 16 & 255);
    img_u8(b, v >> 8 & 255);
    img_u8(b, v & 255);
}

static inline uint8_t *img_done(struct img_buf *b, size_t *len)
{
    *len = b->failed ? 0 : b->n;
    return b->failed ? NULL : b->p;
}

/* ---------------------------------------------------------------------------------------- */
/* PNG                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* One chunk: length, type, data, CRC-32 of type and data (PNG 1.2 section 3.4). */
static inline void img_png_chunk(struct img_buf *b, const char type[4], const void *data, size_t n)
{
    img_be32(b, (uint32_t)n);
    img_put(b, type, 4);
    img_put(b, data, n);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    crc = crc32(crc, (const Bytef *)data, (uInt)n);
    img_be32(b, (uint32_t)crc);
}

/* Samples per pixel of PNG colour type ctype (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA). */
static inline int img_png_channels(int ctype)
{
    return ctype == 2 ? 3 : ctype == 4 ? 2 : ctype == 6 ? 4 : 1;
}

/* A w x h PNG of bit depth `depth` and colour type ctype whose IDAT holds the zlib stream
 * z[0..zlen) as it is; plte holds nplte RGB entries (a PLTE chunk when nplte > 0). */
static inline uint8_t *img_png_z(size_t *len, int w, int h, int depth, int ctype, const uint8_t *z,
                                 size_t zlen, const uint8_t *plte, int nplte)
{
    struct img_buf b = {0};
    img_put(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24),
                        (uint8_t)(w >> 16),
                        (uint8_t)(w >> 8),
                        (uint8_t)w,
                        (uint8_t)(h >> 24),
                        (uint8_t)(h >> 16),
                        (uint8_t)(h >> 8),
                        (uint8_t)h,
                        (uint8_t)depth,
                        (uint8_t)ctype,
                        0,
                        0,
                        0};
    img_png_chunk(&b, "IHDR", ihdr, sizeof ihdr);
    if (nplte > 0)
        img_png_chunk(&b, "PLTE", plte, 3 * (size_t)nplte);
    img_png_chunk(&b, "IDAT", z, zlen);
    img_png_chunk(&b, "IEND", "", 0);
    return img_done(&b, len);
}

/* Rows px (each (w * channels * depth + 7) / 8 bytes, top first) with filter byte 0 before
 * each: the filtered image data a PNG compresses. Sets *raw_len. */
static inline uint8_t *img_png_rows(size_t *raw_len, int w, int h, int depth, int ctype,
                                    const uint8_t *px)
{
    size_t row = ((size_t)w * (size_t)img_png_channels(ctype) * (size_t)depth + 7) / 8;
    *raw_len = (row + 1) * (size_t)h;
    uint8_t *raw = malloc(*raw_len);
    for (int y = 0; raw && y < h; y++) {
        raw[(size_t)y * (row + 1)] = 0;
        memcpy(raw + (size_t)y * (row + 1) + 1, px + (size_t)y * row, row);
    }
    return raw;
}

/* A w x h PNG of bit depth `depth` and colour type ctype from packed rows px (see
 * img_png_rows), compressed with compress2 at level 9; plte as img_png_z. */
static inline uint8_t *img_png(size_t *len, int w, int h, int depth, int ctype, const uint8_t *px,
                               const uint8_t *plte, int nplte)
{
    size_t raw_len = 0;
    uint8_t *raw = img_png_rows(&raw_len, w, h, depth, ctype, px);
    uLongf zlen = compressBound((uLong)raw_len);
    uint8_t *z = malloc(zlen), *png = NULL;
    *len = 0;
    if (raw && z && compress2(z, &zlen, raw, (uLong)raw_len, 9) == Z_OK)
        png = img_png_z(len, w, h, depth, ctype, z, zlen, plte, nplte);
    free(raw);
    free(z);
    return png;
}

/* ---------------------------------------------------------------------------------------- */
/* BMP                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* A BMP with a 40-byte BITMAPINFOHEADER: w x |h| pixels, bottom-up when h > 0 and top-down
 * when h < 0 (as the header says); bpp 1, 4, 8 (with npal BGRX entries from pal), 16, 24 or 32.
 * px holds the rows top first, each (w * bpp + 7) / 8 bytes as the file stores a pixel (BGR
 * for 24); rows are padded to 4 bytes. bitfields: BI_BITFIELDS with RGB565 masks for 16 bpp,
 * 0xff0000 / 0xff00 / 0xff for 32 (BI_RGB when 0). */
static inline uint8_t *img_bmp(size_t *len, int w, int h, int bpp, const uint8_t *px,
                               const uint8_t *pal, int npal, int bitfields)
{
    int rows = h < 0 ? -h : h;
    size_t packed = ((size_t)w * (size_t)bpp + 7) / 8,
           stride = ((size_t)w * (size_t)bpp + 31) / 32 * 4;
    size_t head = 14 + 40 + (bitfields ? 12 : 0) + 4 * (size_t)npal;
    struct img_buf b = {0};
    img_put(&b, "BM", 2);
    img_le32(&b, (uint32_t)(head + stride * (size_t)rows));
    img_le32(&b, 0);
    img_le32(&b, (uint32_t)head);
    img_le32(&b, 40);
    img_le32(&b, (uint32_t)w);
    img_le32(&b, (uint32_t)h);
    img_le16(&b, 1);
    img_le16(&b, (unsigned)bpp);
    img_le32(&b, bitfields ? 3 : 0);
    img_le32(&b, (uint32_t)(stride * (size_t)rows));
    img_le32(&b, 2835); /* 72 dpi */
    img_le32(&b, 2835);
    img_le32(&b, (uint32_t)npal);
    img_le32(&b, 0);
    if (bitfields) {
        img_le32(&b, bpp == 16 ? 0xf800 : 0xff0000);
        img_le32(&b, bpp == 16 ? 0x07e0 : 0xff00);
        img_le32(&b, bpp == 16 ? 0x001f : 0xff);
    }
    img_put(&b, pal, 4 * (size_t)npal);
    static const uint8_t zeros[4] = {0};
    for (int r = 0; r < rows; r++) {
        int y = h < 0 ? r : rows - 1 - r; /* the file's r-th row is this row of the picture */
        img_put(&b, px + (size_t)y * packed, packed);
        img_put(&b, zeros, stride - packed);
    }
    return img_done(&b, len);
}

/* ---------------------------------------------------------------------------------------- */
/* GIF                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* LZW codes of `size` bits packed least significant bit first into 255-byte sub-blocks. */
struct img_lzw {
    struct img_buf *b;
    uint8_t block[255];
    int nblock;
    uint32_t acc;
    int nacc;
};

static inline void img_lzw_byte(struct img_lzw *z, unsigned v)
{
    z->block[z->nblock++] = (uint8_t)v;
    if (z->nblock == 255) {
        img_u8(z->b, 255);
        img_put(z->b, z->block, 255);
        z->nblock = 0;
    }
}

static inline void img_lzw_code(struct img_lzw *z, unsigned code, int size)
{
    z->acc |= (uint32_t)code << z->nacc;
    z->nacc += size;
    while (z->nacc >= 8) {
        img_lzw_byte(z, z->acc & 255);
        z->acc >>= 8;
        z->nacc -= 8;
    }
}

static inline void img_lzw_end(struct img_lzw *z)
{
    if (z->nacc > 0)
        img_lzw_byte(z, z->acc & 255);
    if (z->nblock > 0) {
        img_u8(z->b, (unsigned)z->nblock);
        img_put(z->b, z->block, (size_t)z->nblock);
    }
    img_u8(z->b, 0); /* block terminator */
}

/* The image data of one frame: LZW minimum code size mcs (2..8), then the codes for the n
 * indices idx, each a literal; a clear code every 2^mcs - 3 literals keeps the code size at
 * mcs + 1 bits (the table never reaches 2^(mcs+1) entries); end-of-information, terminator. */
static inline void img_gif_data(struct img_buf *b, int mcs, const uint8_t *idx, size_t n)
{
    struct img_lzw z = {.b = b};
    unsigned clear = 1u << mcs, run = clear > 4 ? clear - 3 : 1;
    int size = mcs + 1;
    img_u8(b, (unsigned)mcs);
    for (size_t i = 0; i < n; i++) {
        if (i % run == 0)
            img_lzw_code(&z, clear, size);
        img_lzw_code(&z, idx[i] & (clear - 1), size);
    }
    img_lzw_code(&z, clear + 1, size);
    img_lzw_end(&z);
}

/* GIF89a signature and logical screen descriptor (w x h), then a global colour table of
 * 2^gbits RGB entries from pal when gbits > 0 (none when 0). */
static inline void img_gif_head(struct img_buf *b, int w, int h, const uint8_t *pal, int gbits)
{
    img_put(b, "GIF89a", 6);
    img_le16(b, (unsigned)w);
    img_le16(b, (unsigned)h);
    img_u8(b, gbits > 0 ? 0x80u | (unsigned)(gbits - 1) : 0);
    img_u8(b, 0); /* background index */
    img_u8(b, 0); /* aspect */
    if (gbits > 0)
        img_put(b, pal, 3 * ((size_t)1 << gbits));
}

/* An image descriptor for a w x h frame at (x, y) (no local table, not interlaced) and the
 * data for its first n indices (n < w * h makes a short raster). */
static inline void img_gif_frame(struct img_buf *b, int x, int y, int w, int h, const uint8_t *idx,
                                 size_t n, int mcs)
{
    img_u8(b, 0x2c);
    img_le16(b, (unsigned)x);
    img_le16(b, (unsigned)y);
    img_le16(b, (unsigned)w);
    img_le16(b, (unsigned)h);
    img_u8(b, 0);
    img_gif_data(b, mcs, idx, n);
}

/* A GIF89a of w x h indices idx: header and global table as img_gif_head, one frame covering
 * the screen with LZW minimum code size mcs, the trailer. */
static inline uint8_t *img_gif(size_t *len, int w, int h, const uint8_t *idx, int mcs,
                               const uint8_t *pal, int gbits)
{
    struct img_buf b = {0};
    img_gif_head(&b, w, h, pal, gbits);
    img_gif_frame(&b, 0, 0, w, h, idx, (size_t)w * (size_t)h, mcs);
    img_u8(&b, 0x3b);
    return img_done(&b, len);
}

/* ---------------------------------------------------------------------------------------- */
/* Hostile streams: valid, and costly for a decoder that does not count                     */
/* ---------------------------------------------------------------------------------------- */

/* Deflate's bit order (RFC 1951 section 3.1.1): values least significant bit first, Huffman
 * codes most significant bit first (img_bits_code reverses them). */
struct img_bits {
    struct img_buf *b;
    uint32_t acc;
    int n;
};

static inline void img_bits_put(struct img_bits *w, uint32_t v, int n)
{
    w->acc |= v << w->n;
    w->n += n;
    while (w->n >= 8) {
        img_u8(w->b, w->acc & 255);
        w->acc >>= 8;
        w->n -= 8;
    }
}

static inline void img_bits_code(struct img_bits *w, uint32_t code, int n)
{
    uint32_t r = 0;
    for (int i = 0; i < n; i++)
        r |= (code >> i & 1) << (n - 1 - i);
    img_bits_put(w, r, n);
}

/* A zlib stream of nblocks empty dynamic-Huffman blocks (12 bytes each: literal/length codes
 * of length 1 for 0 and 256, no distance code; complete codes, so zlib reads them too), then
 * a final stored block of raw[0..raw_len), raw_len <= 65535. Each empty block makes a decoder
 * build three Huffman tables for nothing. */
static inline uint8_t *img_zlib_empty_blocks(size_t *len, size_t nblocks, const uint8_t *raw,
                                             size_t raw_len)
{
    /* code length code lengths in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1:
     * 18 -> 1 bit (code 0), 0 -> 2 bits (code 10), 1 -> 2 bits (code 11) */
    static const uint8_t cl[18] = {0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    struct img_buf b = {0};
    struct img_bits w = {.b = &b};
    img_u8(&b, 0x78);
    img_u8(&b, 0x01);
    for (size_t k = 0; k < nblocks; k++) {
        img_bits_put(&w, 0, 1);  /* not the last block */
        img_bits_put(&w, 2, 2);  /* dynamic Huffman */
        img_bits_put(&w, 0, 5);  /* 257 literal/length codes */
        img_bits_put(&w, 0, 5);  /* 1 distance code */
        img_bits_put(&w, 14, 4); /* 18 code length codes */
        for (int i = 0; i < 18; i++)
            img_bits_put(&w, cl[i], 3);
        img_bits_code(&w, 3, 2); /* literal 0: length 1 */
        img_bits_code(&w, 0, 1); /* 138 zeros */
        img_bits_put(&w, 127, 7);
        img_bits_code(&w, 0, 1); /* 117 zeros */
        img_bits_put(&w, 106, 7);
        img_bits_code(&w, 3, 2); /* 256, end of block: length 1 */
        img_bits_code(&w, 2, 2); /* the distance code: length 0 */
        img_bits_code(&w, 1, 1); /* end of block */
    }
    img_bits_put(&w, 1, 1); /* last block, stored */
    img_bits_put(&w, 0, 2);
    if (w.n)
        img_bits_put(&w, 0, 8 - w.n);
    img_le16(&b, (unsigned)raw_len);
    img_le16(&b, (unsigned)raw_len ^ 0xffff);
    img_put(&b, raw, raw_len);
    img_be32(&b, (uint32_t)adler32(adler32(0L, Z_NULL, 0), raw, (uInt)raw_len));
    return img_done(&b, len);
}

/* LZW codes as stb's decoder reads them: after each code but the first after a clear, a new
 * table entry; the code size grows when the next free entry reaches 2^size, up to 12 bits. */
struct img_lzw_state {
    struct img_lzw z;
    unsigned mcs, size, avail;
    int have_old;
};

static inline void img_lzw_emit(struct img_lzw_state *e, unsigned code)
{
    img_lzw_code(&e->z, code, (int)e->size);
    unsigned clear = 1u << e->mcs;
    if (code == clear) {
        e->size = e->mcs + 1;
        e->avail = clear + 2;
        e->have_old = 0;
        return;
    }
    if (e->have_old)
        e->avail++;
    if ((e->avail & ((1u << e->size) - 1)) == 0 && e->avail <= 0xfff)
        e->size++;
    e->have_old = 1;
}

/* A w x h GIF (a global table of 256 greys) whose image data is about max_bytes of rounds of:
 * a clear code, literal 0, codes that each extend the one before (strings 2, 3, ... 3838 long),
 * then the longest again until stb's table of 8192 is nearly full. A round is ~12 KiB and
 * draws 23 million pixels; a full frame takes a few of its codes. */
static inline uint8_t *img_gif_long_codes(size_t *len, int w, int h, size_t max_bytes)
{
    uint8_t pal[3 * 256];
    for (int i = 0; i < 3 * 256; i++)
        pal[i] = (uint8_t)(i / 3);
    struct img_buf b = {0};
    img_gif_head(&b, w, h, pal, 8);
    img_u8(&b, 0x2c);
    img_le16(&b, 0);
    img_le16(&b, 0);
    img_le16(&b, (unsigned)w);
    img_le16(&b, (unsigned)h);
    img_u8(&b, 0);
    img_u8(&b, 8); /* LZW minimum code size */
    struct img_lzw_state e = {.z = {.b = &b}, .mcs = 8, .size = 9};
    while (b.n < max_bytes && !b.failed) {
        img_lzw_emit(&e, 256);
        img_lzw_emit(&e, 0);
        while (e.avail < 4095 && b.n < max_bytes)
            img_lzw_emit(&e, e.avail);
        while (e.avail < 8190 && b.n < max_bytes)
            img_lzw_emit(&e, 4094);
    }
    img_lzw_emit(&e, 257);
    img_lzw_end(&e.z);
    img_u8(&b, 0x3b);
    return img_done(&b, len);
}

#endif
