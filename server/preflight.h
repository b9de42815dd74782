/*
 * preflight.h - a PNG, BMP or GIF walked in our own code before stb_image decodes it.
 *
 * stb_image 2.27 trusts a file in ways a server cannot: it reads zeros past the end of the
 * body (a cut BMP or GIF decodes to an image), reads palette entries the file never defined
 * from its own uninitialised stack (a short PNG PLTE, a short BMP colour table: the answer
 * then depends on earlier requests), names a chunk it does not know through a buffer every
 * thread shares, and spends time on GIF codes after the frame is full (a 32 MiB GIF of
 * long codes took 164 s). Each format is walked here first, in the order stb reads it:
 * what would be decoded from bytes that are not there, or cost more than the image is
 * worth, is refused with a sentence; a short palette is padded (black, opaque) in a copy
 * that stb decodes instead. Pure functions, thread-safe, no HTTP.
 */
#ifndef SRV_PREFLIGHT_H
#define SRV_PREFLIGHT_H

#include <stddef.h>
#include <stdint.h>

/* What stb_image is to decode: the body itself, or a mended copy of it. */
struct srv_preflight {
    const uint8_t *data; /* the body, or copy */
    size_t len;
    uint8_t *copy; /* NULL, or a copy with its palette padded (srv_preflight_free) */
};

/*
 * Checks that the fixed header of a kind ("png", "bmp" or "gif", as srv_image_sniff says)
 * image is all inside data[0..len): PNG signature and IHDR chunk, GIF header and logical
 * screen descriptor, BMP file header and info header; and that a BMP's compression is BI_RGB
 * or BI_BITFIELDS (with 16 or 32 bits per pixel) and its bits per pixel 1, 4, 8, 16, 24 or 32.
 * Returns 0, or NN_EFORMAT with a sentence in err ("the bmp file is truncated: its header
 * needs 54 bytes, 20 present"). Run before the dimensions are read, so that a cut header is
 * not reported as a 0x0 image.
 */
int srv_preflight_header(const char *kind, const void *data, size_t len, char *err, size_t errlen);

/*
 * Walks a kind image of len bytes whose header stb_image has read and whose size the caller
 * has checked (an image over SRV_IMAGE_MAX_SIDE per side is left alone), and sets *pf to what
 * stb is to decode. Work and memory are linear in len. Refused with NN_EFORMAT and a sentence:
 *   PNG: a chunk running past the end or no IEND ("the png file is truncated: ..."), an unknown
 *        critical chunk, compressed data that zlib finds corrupt, that ends before the image
 *        does, that inflates to more than twice the image's bytes (plus 64 KiB), or that has
 *        more deflate blocks than 4 per row and 1 per KiB of image data (plus 64);
 *   BMP: what srv_preflight_header refuses, pixel data starting inside the header, fewer
 *        bytes of pixel data than the header's width, height, bits per pixel and 4-byte rows
 *        need ("the bmp file is truncated: N bytes of pixel data expected, M present");
 *   GIF: a file that ends before its first image's data does, no image, an LZW code size over
 *        12, data that draws fewer pixels than the frame or more than twice as many (+ 8192).
 * What stb refuses itself is left to it. A palette PNG whose PLTE has fewer than 2^depth
 * entries and a BMP whose colour table (as stb counts it) is shorter than 2^bpp get a copy
 * with the palette padded to full length with opaque black (PNG: chunk length and CRC
 * recomputed, only the chunks stb reads are kept; BMP: offset moved). A GIF needs none: stb
 * clears its colour tables, so an index past a short table is transparent, the same every
 * time. Returns 0, NN_EFORMAT, or NN_ENOMEM. On error *pf holds nothing to free.
 */
int srv_preflight(struct srv_preflight *pf, const char *kind, const void *data, size_t len,
                  char *err, size_t errlen);

/* Frees pf->copy (pf may be NULL); pf->data is the caller's again. */
void srv_preflight_free(struct srv_preflight *pf);

#endif
