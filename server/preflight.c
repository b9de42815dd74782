/*
 * preflight.c - PNG, BMP and GIF walked before stb_image decodes them (see preflight.h).
 *
 * Each walk reads the file in the order stb_image 2.27 does, so that what is checked here is
 * what stb will read: PNG chunks (ISO/IEC 15948 section 5) up to IEND and the zlib stream of
 * the IDAT chunks (inflated once by zlib, output discarded); the BMP file and info headers,
 * colour table and pixel rows; GIF blocks (GIF89a sections 17-23) up to the end of the first
 * image's data, whose LZW codes (appendix F) are counted, not drawn. Where stb would refuse a
 * file itself, the walk stops and leaves the sentence to stb.
 */
#include "preflight.h"
#include "decode.h"
#include "err.h"

#include "nn/nn.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static unsigned le16(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static int side_ok(long v) { return v >= 1 && v <= SRV_IMAGE_MAX_SIDE; }

/* ---------------------------------------------------------------------------------------- */
/* PNG                                                                                      */
/* ---------------------------------------------------------------------------------------- */

#define PNG_HEADER 33                /* signature 8, IHDR chunk: length 4, type 4, data 13, CRC 4 */
#define PNG_SLACK ((size_t)64 << 10) /* inflated bytes past twice the image's, accepted */

struct png_walk {
    uint32_t w, h;
    int depth, ctype, interlace;
    int cgbi;       /* Apple's CgBI chunk: stb inflates raw deflate, without a zlib header */
    int short_plte; /* a palette image with a PLTE of fewer than 2^depth entries */
    size_t nplte;   /* PLTE chunks */
    size_t end;     /* just past IEND (stb never reads IEND's CRC, so it may be missing) */
};

static int png_is(const uint8_t *type, const char *name) { return !memcmp(type, name, 4); }

/* The chunk type for a message: its 4 letters, any other byte as '?'. */
static void png_name(char out[5], const uint8_t *type)
{
    for (int i = 0; i < 4; i++) {
        uint8_t c = type[i];
        out[i] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? (char)c : '?';
    }
    out[4] = 0;
}

/* The critical chunks stb knows (a 0 in bit 5 of the first byte is critical, section 5.4);
 * for any other stb writes the type into a static buffer every thread shares. */
static int png_known_critical(const uint8_t *t)
{
    return png_is(t, "IHDR") || png_is(t, "PLTE") || png_is(t, "IDAT") || png_is(t, "IEND") ||
           png_is(t, "CgBI");
}

/* Every chunk from IHDR to IEND inside p[0..len): length, type, data and CRC. */
static int png_walk(struct png_walk *pw, const uint8_t *p, size_t len, char *err, size_t errlen)
{
    memset(pw, 0, sizeof *pw);
    pw->w = be32(p + 16);
    pw->h = be32(p + 20);
    pw->depth = p[24];
    pw->ctype = p[25];
    pw->interlace = p[28];
    for (size_t pos = 8;;) {
        if (len - pos < 8)
            return srv_seterr(err, errlen, NN_EFORMAT,
                              "the png file is truncated: it ends at byte %zu, before its IEND "
                              "chunk",
                              len);
        uint32_t n = be32(p + pos);
        const uint8_t *t = p + pos + 4;
        char name[5];
        png_name(name, t);
        int iend = png_is(t, "IEND");
        if (n > 0x7fffffffu)
            return srv_seterr(err, errlen, NN_EFORMAT,
                              "cannot decode the png image: chunk %s at byte %zu claims %lu "
                              "bytes (at most 2^31 - 1)",
                              name, pos, (unsigned long)n);
        size_t need = 8 + (size_t)n + (iend ? 0 : 4);
        if (len - pos < need)
            return srv_seterr(err, errlen, NN_EFORMAT,
                              "the png file is truncated: chunk %s at byte %zu needs %zu bytes, "
                              "%zu present",
                              name, pos, need, len - pos);
        if (!(t[0] & 0x20) && !png_known_critical(t))
            return srv_seterr(err, errlen, NN_EFORMAT,
                              "cannot decode the png image: unknown critical chunk %s at byte %zu",
                              name, pos);
        if (png_is(t, "PLTE")) {
            pw->nplte++;
            if (pw->ctype == 3 && n % 3 == 0 && n <= 768 && pw->depth <= 8 &&
                n / 3 < (1u << pw->depth))
                pw->short_plte = 1;
        }
        pw->cgbi |= png_is(t, "CgBI");
        if (iend) {
            pw->end = len - pos - need >= 4 ? pos + need + 4 : len;
            return 0;
        }
        pos += need;
    }
}

/* Bytes the filtered image data holds: a filter byte and the packed samples of every row, of
 * every Adam7 pass when interlaced (section 8.2). */
static size_t png_raw_bytes(const struct png_walk *pw)
{
    static const unsigned x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const unsigned dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    int ch = pw->ctype == 2 ? 3 : pw->ctype == 4 ? 2 : pw->ctype == 6 ? 4 : 1;
    size_t bits = (size_t)ch * (size_t)pw->depth;
    if (!pw->interlace)
        return (size_t)pw->h * (1 + ((size_t)pw->w * bits + 7) / 8);
    size_t total = 0;
    for (int k = 0; k < 7; k++) {
        size_t pw_ = pw->w > x0[k] ? (pw->w - x0[k] + dx[k] - 1) / dx[k] : 0;
        size_t ph = pw->h > y0[k] ? (pw->h - y0[k] + dy[k] - 1) / dy[k] : 0;
        if (pw_ && ph)
            total += ph * (1 + (pw_ * bits + 7) / 8);
    }
    return total;
}

/* The IDAT chunks' data in file order (stb concatenates them). */
struct png_idat {
    const uint8_t *p;
    size_t pos, end;
};

static int png_next_idat(struct png_idat *r, const uint8_t **data, size_t *n)
{
    while (r->pos < r->end) {
        uint32_t cl = be32(r->p + r->pos);
        const uint8_t *t = r->p + r->pos + 4;
        if (png_is(t, "IEND"))
            break;
        size_t at = r->pos + 8;
        r->pos += 12 + (size_t)cl;
        if (png_is(t, "IDAT") && cl > 0) {
            *data = r->p + at;
            *n = cl;
            return 1;
        }
    }
    return 0;
}

/* Reads the 2-byte zlib header (RFC 1950 section 2.2) off the IDAT stream; 1 if stb accepts
 * it (deflate, no preset dictionary, check bits right), 0 if stb will refuse it in words. */
static int png_zlib_header(struct png_idat *r, const uint8_t **in, size_t *n, int *have)
{
    uint8_t hdr[2];
    int k = 0;
    while (k < 2 && *have) {
        hdr[k++] = *(*in)++;
        if (--*n == 0)
            *have = png_next_idat(r, in, n);
    }
    return k == 2 && (hdr[0] * 256 + hdr[1]) % 31 == 0 && !(hdr[1] & 32) && (hdr[0] & 15) == 8;
}

/*
 * Inflates the IDAT stream with zlib into a scratch buffer, counting bytes and deflate blocks.
 * A deflate block costs a Huffman table build whatever it holds: a 32 MiB PNG of 2.8 million
 * empty dynamic blocks took stb 1.7 s for a 1x1 image (zlib 1.2 s). Encoders write a block per
 * 16-64 KiB, or two per row when they flush each row; so at most 4 per row and 1 per KiB of
 * image data (plus 64) are accepted. Past the image's bytes the stream only costs time (stb
 * ignores the rest), so at most twice them (plus 64 KiB) are inflated. zlib refuses what stb
 * would read past (incomplete or oversubscribed codes, distances too far back); the Adler-32
 * is not checked (stb skips it).
 */
static int png_inflate(const struct png_walk *pw, const uint8_t *p, char *err, size_t errlen)
{
    size_t need = png_raw_bytes(pw);
    size_t max_blocks = 4 * (size_t)pw->h + need / 1024 + 64;
    struct png_idat r = {p, 8, pw->end};
    const uint8_t *in = NULL;
    size_t n = 0;
    int have = png_next_idat(&r, &in, &n);
    if (!pw->cgbi && !png_zlib_header(&r, &in, &n, &have))
        return 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory for the png's zlib stream");
    uint8_t buf[16384];
    size_t out = 0, blocks = 0;
    uLong block_in = (uLong)-1;
    int zrc = Z_OK, rc = 0;
    for (;;) {
        if (z.avail_in == 0) {
            if (!have)
                break;
            z.next_in = (Bytef *)(uintptr_t)in;
            z.avail_in = (uInt)n;
            have = png_next_idat(&r, &in, &n);
        }
        z.next_out = buf;
        z.avail_out = sizeof buf;
        zrc = inflate(&z, Z_BLOCK);
        out += sizeof buf - z.avail_out;
        if ((z.data_type & 128) && z.total_in != block_in) { /* at a block boundary */
            blocks++;
            block_in = z.total_in;
        }
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_MEM_ERROR) {
            rc = srv_seterr(err, errlen, NN_ENOMEM, "out of memory for the png's zlib stream");
            goto done;
        }
        if ((zrc != Z_OK && zrc != Z_BUF_ERROR) || (zrc == Z_BUF_ERROR && z.avail_in > 0)) {
            rc = srv_seterr(err, errlen, NN_EFORMAT,
                            "cannot decode the png image: its compressed data is corrupt (%s)",
                            z.msg ? z.msg : "zlib error");
            goto done;
        }
        if (out > 2 * need + PNG_SLACK) {
            rc = srv_seterr(err, errlen, NN_EFORMAT,
                            "cannot decode the png image: its compressed data inflates to more "
                            "than twice the %zu bytes its %lux%lu pixels need (plus 64 KiB)",
                            need, (unsigned long)pw->w, (unsigned long)pw->h);
            goto done;
        }
        if (blocks > max_blocks) {
            rc = srv_seterr(err, errlen, NN_EFORMAT,
                            "cannot decode the png image: its compressed data has over %zu "
                            "deflate blocks (at most 4 per row and 1 per KiB of image data, "
                            "plus 64, are accepted)",
                            max_blocks);
            goto done;
        }
    }
    if (out < need)
        rc = srv_seterr(err, errlen, NN_EFORMAT,
                        "the png file is truncated: its image data inflates to %zu of the %zu "
                        "bytes its %lux%lu pixels need",
                        out, need, (unsigned long)pw->w, (unsigned long)pw->h);
    else if (zrc != Z_STREAM_END)
        rc = srv_seterr(err, errlen, NN_EFORMAT,
                        "the png file is truncated: its compressed data stops before the end "
                        "of its last deflate block");
done:
    inflateEnd(&z);
    return rc;
}

/* A copy holding the chunks stb reads (the critical ones and tRNS) up to IEND, every PLTE
 * grown to 2^depth entries of black (stb makes every PLTE entry opaque), its length and CRC
 * recomputed: stb's palette is an uninitialised array on its stack, and an index past the
 * PLTE read whatever an earlier request had left there. */
static int png_pad_copy(struct srv_preflight *pf, const struct png_walk *pw, const uint8_t *p,
                        char *err, size_t errlen)
{
    size_t full = 3 * ((size_t)1 << pw->depth);
    uint8_t *q = malloc(pw->end + pw->nplte * 768 + 12);
    if (!q)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory for a copy of the png");
    memcpy(q, p, 8);
    size_t o = 8;
    for (size_t pos = 8;;) {
        uint32_t n = be32(p + pos);
        const uint8_t *t = p + pos + 4;
        if (png_is(t, "IEND")) {
            memcpy(q + o, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
            o += 12;
            break;
        }
        if (png_is(t, "PLTE") && n % 3 == 0 && n < full) {
            put_be32(q + o, (uint32_t)full);
            memcpy(q + o + 4, t, 4 + n);
            memset(q + o + 8 + n, 0, full - n);
            put_be32(q + o + 8 + full, (uint32_t)crc32(0L, q + o + 4, (uInt)(4 + full)));
            o += 12 + full;
        } else if (!(t[0] & 0x20) || png_is(t, "tRNS")) {
            memcpy(q + o, p + pos, 12 + (size_t)n);
            o += 12 + (size_t)n;
        }
        pos += 12 + (size_t)n;
    }
    pf->copy = q;
    pf->data = q;
    pf->len = o;
    return 0;
}

static int png_check(struct srv_preflight *pf, const uint8_t *p, size_t len, char *err,
                     size_t errlen)
{
    struct png_walk pw;
    int rc = png_walk(&pw, p, len, err, errlen);
    if (rc != 0)
        return rc;
    if (!side_ok(pw.w) || !side_ok(pw.h) || pw.depth > 16)
        return 0; /* the caller refuses the size, stb the depth */
    rc = png_inflate(&pw, p, err, errlen);
    if (rc == 0 && pw.short_plte)
        rc = png_pad_copy(pf, &pw, p, err, errlen);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* BMP                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* Info header sizes stb reads: OS/2 1.x core (12), BITMAPINFOHEADER (40), its Adobe variant
 * with masks (56), BITMAPV4HEADER (108), BITMAPV5HEADER (124). */
static int bmp_known_header(uint32_t hsz)
{
    return hsz == 12 || hsz == 40 || hsz == 56 || hsz == 108 || hsz == 124;
}

/* Bytes up to where the colour table or the pixels start: file header, info header and, for a
 * 40-byte header with BI_BITFIELDS, the three masks after it. */
static size_t bmp_header_bytes(const uint8_t *p, size_t len)
{
    if (len < 18)
        return 18;
    uint32_t hsz = le32(p + 14);
    if (!bmp_known_header(hsz))
        return 18; /* stb refuses it */
    size_t need = 14 + (size_t)hsz;
    if (hsz == 40 && len >= need && le32(p + 30) == 3)
        need += 12;
    return need;
}

struct bmp_info {
    uint32_t hsz, offset, compression;
    unsigned bpp;
    long w, h;   /* h made positive: a negative height is a top-down file */
    size_t head; /* bmp_header_bytes */
};

/* The fields of a header that bmp_header_bytes found whole, of a size bmp_known_header. */
static void bmp_read(struct bmp_info *b, const uint8_t *p, size_t len)
{
    b->offset = le32(p + 10);
    b->hsz = le32(p + 14);
    if (b->hsz == 12) {
        b->w = le16(p + 18);
        b->h = le16(p + 20);
        b->bpp = le16(p + 24);
        b->compression = 0;
    } else {
        b->w = (int32_t)le32(p + 18);
        b->h = (int32_t)le32(p + 22);
        b->h = b->h < 0 ? -b->h : b->h;
        b->bpp = le16(p + 28);
        b->compression = le32(p + 30);
    }
    b->head = bmp_header_bytes(p, len);
}

/* Entries of the colour table as stb 2.27 counts them from the pixel offset: for the OS/2
 * header it subtracts 24 bytes where the header is 12, so it counts 4 entries too few (a
 * negative count reads none). */
static long bmp_stb_entries(const struct bmp_info *b)
{
    if (b->hsz == 12)
        return ((long)b->offset - 14 - 24) / 3;
    return ((long)b->offset - 14 - (long)b->hsz) / 4;
}

/* A copy with a colour table of 2^bpp entries: the file's (as many as fit before the pixel
 * offset), then black; then, for OS/2, the 12 bytes stb skips after its count; then the pixel
 * rows. stb's table is an uninitialised array on its stack, so an index past what it read
 * from the file would show an earlier request's memory. */
static int bmp_pad_copy(struct srv_preflight *pf, const struct bmp_info *b, const uint8_t *p,
                        size_t pixels, char *err, size_t errlen)
{
    size_t esize = b->hsz == 12 ? 3 : 4, full = (size_t)1 << b->bpp;
    size_t table = 14 + (size_t)b->hsz, have = (b->offset - table) / esize;
    size_t gap = b->hsz == 12 ? 12 : 0;
    size_t off = table + full * esize + gap, n = off + pixels;
    uint8_t *q = calloc(1, n);
    if (!q)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory for a copy of the bmp");
    memcpy(q, p, table);
    memcpy(q + table, p + table, (have < full ? have : full) * esize);
    memcpy(q + off, p + b->offset, pixels);
    put_le32(q + 2, (uint32_t)n);
    put_le32(q + 10, (uint32_t)off);
    pf->copy = q;
    pf->data = q;
    pf->len = n;
    return 0;
}

/* The header's compression and bits per pixel, in our words: stb refuses RLE, JPEG and PNG
 * compression in its own ("BMP RLE"), but reads a compression of -1 as none, and a depth of
 * 2 as an error only when it gets to the pixels. */
static int bmp_header_fields(const uint8_t *p, size_t len, char *err, size_t errlen)
{
    if (!bmp_known_header(le32(p + 14)))
        return 0; /* stb refuses it */
    struct bmp_info b;
    bmp_read(&b, p, len);
    if (b.compression != 0 && b.compression != 3)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "cannot decode the bmp image: compression %lu is not supported (only "
                          "uncompressed BI_RGB and BI_BITFIELDS)",
                          (unsigned long)b.compression);
    if (b.bpp != 1 && b.bpp != 4 && b.bpp != 8 && b.bpp != 16 && b.bpp != 24 && b.bpp != 32)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "cannot decode the bmp image: %u bits per pixel (1, 4, 8, 16, 24 or "
                          "32 are accepted)",
                          b.bpp);
    if (b.compression == 3 && b.bpp != 16 && b.bpp != 32)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "cannot decode the bmp image: BI_BITFIELDS with %u bits per pixel "
                          "(it needs 16 or 32)",
                          b.bpp);
    return 0;
}

static int bmp_check(struct srv_preflight *pf, const uint8_t *p, size_t len, char *err,
                     size_t errlen)
{
    if (!bmp_known_header(le32(p + 14)))
        return 0; /* stb refuses it */
    struct bmp_info b;
    bmp_read(&b, p, len);
    if (!side_ok(b.w) || !side_ok(b.h))
        return 0; /* the caller refuses the size */
    if (b.offset < b.head)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "cannot decode the bmp image: its pixel data offset %lu is inside its "
                          "%zu-byte header",
                          (unsigned long)b.offset, b.head);
    /* rows are padded to 4 bytes; the last row's padding may be missing (stb skips it) */
    size_t row = ((size_t)b.w * b.bpp + 7) / 8, stride = ((size_t)b.w * b.bpp + 31) / 32 * 4;
    size_t need = stride * (size_t)(b.h - 1) + row;
    size_t present = len > b.offset ? len - b.offset : 0;
    if (present < need)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "the bmp file is truncated: %zu bytes of pixel data expected, %zu "
                          "present",
                          need, present);
    if (b.bpp <= 8 && bmp_stb_entries(&b) < (1L << b.bpp)) {
        size_t pixels = present < stride * (size_t)b.h ? present : stride * (size_t)b.h;
        return bmp_pad_copy(pf, &b, p, pixels, err, errlen);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* GIF                                                                                      */
/* ---------------------------------------------------------------------------------------- */

#define GIF_HEADER 13  /* signature 6, logical screen descriptor 7 */
#define GIF_CODES 8192 /* stb's code table */

struct gif_reader {
    const uint8_t *p;
    size_t len, pos;
};

/* The next n bytes, or NULL when the file ends first. */
static const uint8_t *gif_take(struct gif_reader *r, size_t n)
{
    if (r->len - r->pos < n)
        return NULL;
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static int gif_truncated(const struct gif_reader *r, const char *where, char *err, size_t errlen)
{
    return srv_seterr(err, errlen, NN_EFORMAT,
                      "the gif file is truncated: it ends at byte %zu, "
                      "inside %s",
                      r->len, where);
}

/* Data sub-blocks up to the 0 that ends them; -1 when the file ends first. */
static int gif_skip_blocks(struct gif_reader *r)
{
    for (;;) {
        const uint8_t *n = gif_take(r, 1);
        if (!n || !gif_take(r, *n))
            return -1;
        if (*n == 0)
            return 0;
    }
}

/* LZW decoder state, as stbi__process_gif_raster keeps it; lens[c] is the length of code c's
 * string, so the pixels are counted without being drawn. */
struct gif_lzw {
    unsigned mcs, clear, size, mask, avail;
    int old, first;
    uint64_t pixels;
    uint16_t lens[GIF_CODES];
};

/* One code; returns 1 to go on, 0 at end of information or where stb stops with an error. */
static int gif_code(struct gif_lzw *z, unsigned code)
{
    if (code == z->clear) {
        z->size = z->mcs + 1;
        z->mask = (1u << z->size) - 1;
        z->avail = z->clear + 2;
        z->old = -1;
        z->first = 0;
        return 1;
    }
    if (code == z->clear + 1 || code > z->avail || z->first)
        return 0; /* end of information; or stb's "illegal code", "no clear code" */
    if (z->old >= 0) {
        if (z->avail >= GIF_CODES)
            return 0; /* "too many codes" */
        z->lens[z->avail++] = (uint16_t)(z->lens[z->old] + 1);
    } else if (code == z->avail) {
        return 0;
    }
    z->pixels += z->lens[code];
    if ((z->avail & z->mask) == 0 && z->avail <= 0x0fff) {
        z->size++;
        z->mask = (1u << z->size) - 1;
    }
    z->old = (int)code;
    return 1;
}

/*
 * The first image's data: the LZW minimum code size, then sub-blocks of codes, read bit for
 * bit as stb reads them. stb draws a code's string by recursing through its prefixes even
 * once the frame is full (a 32 MiB GIF of 16x16 pixels whose codes were all 4094 long took
 * 164 s), so data that would draw more than twice the frame (plus 8192) is refused, and so is
 * data that draws less than the frame (stb would leave the rest transparent).
 */
static int gif_data(struct gif_reader *r, unsigned fw, unsigned fh, char *err, size_t errlen)
{
    const uint8_t *b = gif_take(r, 1);
    if (!b)
        return gif_truncated(r, "its image data", err, errlen);
    if (*b > 12)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "cannot decode the gif image: LZW minimum code size %u (at most 12)", *b);
    struct gif_lzw *z = malloc(sizeof *z);
    if (!z)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory for the gif check");
    z->mcs = *b;
    z->clear = 1u << z->mcs;
    z->size = z->mcs + 1;
    z->mask = (1u << z->size) - 1;
    z->avail = z->clear + 2;
    z->old = -1;
    z->first = 1;
    z->pixels = 0;
    for (unsigned c = 0; c < z->clear; c++)
        z->lens[c] = 1;
    uint64_t area = (uint64_t)fw * fh, most = 2 * area + GIF_CODES;
    uint32_t bits = 0;
    unsigned valid = 0, left = 0;
    int rc = 0;
    for (;;) {
        if (valid < z->size) {
            if (left == 0) {
                if (!(b = gif_take(r, 1)))
                    goto truncated;
                if ((left = *b) == 0)
                    break; /* the block terminator: stb's end of data */
            }
            if (!(b = gif_take(r, 1)))
                goto truncated;
            left--;
            bits |= (uint32_t)*b << valid;
            valid += 8;
            continue;
        }
        unsigned code = bits & z->mask;
        bits >>= z->size;
        valid -= z->size;
        if (!gif_code(z, code)) {
            if (code != z->clear + 1)
                goto out; /* stb refuses the data in its own words */
            /* end of information: stb skips the rest of this block and the ones after */
            if (!gif_take(r, left) || gif_skip_blocks(r) != 0)
                goto truncated;
            break;
        }
        if (z->pixels > most) {
            rc = srv_seterr(err, errlen, NN_EFORMAT,
                            "cannot decode the gif image: its image data decodes to more than "
                            "twice the %llu pixels of its %ux%u frame",
                            (unsigned long long)area, fw, fh);
            goto out;
        }
    }
    if (z->pixels < area)
        rc = srv_seterr(err, errlen, NN_EFORMAT,
                        "cannot decode the gif image: its image data ends after %llu of the "
                        "%llu pixels of its %ux%u frame",
                        (unsigned long long)z->pixels, (unsigned long long)area, fw, fh);
    goto out;
truncated:
    rc = gif_truncated(r, "its image data", err, errlen);
out:
    free(z);
    return rc;
}

/* The image descriptor and local colour table of the first image, then its data. stb reads
 * only this first frame of an animated GIF (stbi__gif_load: one stbi__gif_load_next). */
static int gif_image(struct gif_reader *r, char *err, size_t errlen)
{
    unsigned sw = le16(r->p + 6), sh = le16(r->p + 8), flags = r->p[10];
    const uint8_t *d = gif_take(r, 9);
    if (!d)
        return gif_truncated(r, "its image descriptor", err, errlen);
    unsigned x = le16(d), y = le16(d + 2), fw = le16(d + 4), fh = le16(d + 6), lflags = d[8];
    if (x + fw > sw || y + fh > sh)
        return 0; /* stb: "bad Image Descriptor" */
    if (lflags & 0x80) {
        if (!gif_take(r, 3 * ((size_t)2 << (lflags & 7))))
            return gif_truncated(r, "its local colour table", err, errlen);
    } else if (!(flags & 0x80)) {
        return 0; /* stb: "missing color table" */
    }
    return gif_data(r, fw, fh, err, errlen);
}

/* Blocks from the logical screen descriptor to the first image, as stb reads them. */
static int gif_check(const uint8_t *p, size_t len, char *err, size_t errlen)
{
    struct gif_reader r = {p, len, GIF_HEADER};
    if (!side_ok(le16(p + 6)) || !side_ok(le16(p + 8)))
        return 0; /* the caller refuses the size */
    if ((p[10] & 0x80) && !gif_take(&r, 3 * ((size_t)2 << (p[10] & 7))))
        return gif_truncated(&r, "its global colour table", err, errlen);
    for (;;) {
        const uint8_t *tag = gif_take(&r, 1);
        if (!tag)
            return gif_truncated(&r, "the blocks before its first image", err, errlen);
        if (*tag == 0x2c)
            return gif_image(&r, err, errlen);
        if (*tag == 0x3b)
            return srv_seterr(err, errlen, NN_EFORMAT,
                              "cannot decode the gif image: it has no image (its trailer comes "
                              "before any image descriptor)");
        if (*tag != 0x21)
            return 0; /* stb: "unknown code" */
        const uint8_t *label = gif_take(&r, 1), *n = label ? gif_take(&r, 1) : NULL;
        if (!n)
            return gif_truncated(&r, "an extension block", err, errlen);
        /* *n is the first sub-block's size; stb skips a graphic control extension whose
         * size is not 4 and reads a block tag next, without looking for a terminator */
        int more = *label == 0xf9 ? *n == 4 : *n != 0;
        if (!gif_take(&r, *n) || (more && gif_skip_blocks(&r) != 0))
            return gif_truncated(&r, "an extension block", err, errlen);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Public                                                                                   */
/* ---------------------------------------------------------------------------------------- */

int srv_preflight_header(const char *kind, const void *data, size_t len, char *err, size_t errlen)
{
    size_t need = 0;
    if (!strcmp(kind, "png"))
        need = PNG_HEADER;
    else if (!strcmp(kind, "gif"))
        need = GIF_HEADER;
    else if (!strcmp(kind, "bmp"))
        need = bmp_header_bytes(data, len);
    if (len < need)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "the %s file is truncated: its header needs %zu bytes, %zu present", kind,
                          need, len);
    return !strcmp(kind, "bmp") ? bmp_header_fields(data, len, err, errlen) : 0;
}

int srv_preflight(struct srv_preflight *pf, const char *kind, const void *data, size_t len,
                  char *err, size_t errlen)
{
    pf->data = data;
    pf->len = len;
    pf->copy = NULL;
    int rc = srv_preflight_header(kind, data, len, err, errlen);
    if (rc == 0 && !strcmp(kind, "png"))
        rc = png_check(pf, data, len, err, errlen);
    else if (rc == 0 && !strcmp(kind, "bmp"))
        rc = bmp_check(pf, data, len, err, errlen);
    else if (rc == 0 && !strcmp(kind, "gif"))
        rc = gif_check(data, len, err, errlen);
    if (rc != 0) {
        srv_preflight_free(pf);
        pf->data = NULL;
        pf->len = 0;
    }
    return rc;
}

void srv_preflight_free(struct srv_preflight *pf)
{
    if (!pf)
        return;
    free(pf->copy);
    pf->copy = NULL;
}
