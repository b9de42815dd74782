/*
 * sets_io.c - the files make-sets writes: PNG (stb_image_write), JPEG (TurboJPEG, accurate
 * DCT, so the bytes do not depend on the SIMD path) with an optional EXIF APP1 block holding
 * only the Orientation tag (built by libexif, spliced in right after SOI), and directories.
 */
#include "sets.h"

#include <errno.h>
#include <libexif/exif-data.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

int write_png(const char *path, const uint8_t *px, int w, int h, int channels, char *err,
              size_t errlen)
{
    if (!stbi_write_png(path, w, h, channels, px, w * channels)) {
        snprintf(err, errlen, "%s: cannot write PNG", path);
        return -1;
    }
    return 0;
}

void orient_for_exif(uint8_t *dst, int *sw, int *sh, const uint8_t *src, int w, int h, int ch,
                     int o)
{
    /* For each stored pixel (sx, sy), the upright pixel it shows once the tag is applied
     * (EXIF 2.32, Orientation: 6 = the stored row 0 is the visual right side and column 0 the
     * visual top, so a viewer turns it 90 degrees clockwise; 8 the reverse, ...). */
    int swap = o >= 5;
    *sw = swap ? h : w;
    *sh = swap ? w : h;
    for (int sy = 0; sy < *sh; sy++) {
        for (int sx = 0; sx < *sw; sx++) {
            int x, y;
            switch (o) {
            case 2: x = w - 1 - sx, y = sy; break;
            case 3: x = w - 1 - sx, y = h - 1 - sy; break;
            case 4: x = sx, y = h - 1 - sy; break;
            case 5: x = sy, y = sx; break;
            case 6: x = w - 1 - sy, y = sx; break;
            case 7: x = w - 1 - sy, y = h - 1 - sx; break;
            case 8: x = sy, y = h - 1 - sx; break;
            default: x = sx, y = sy; break;
            }
            memcpy(&dst[((size_t)sy * (size_t)*sw + (size_t)sx) * (size_t)ch],
                   &src[((size_t)y * (size_t)w + (size_t)x) * (size_t)ch], (size_t)ch);
        }
    }
}

/* "Exif\0\0" + a TIFF block whose IFD0 holds only Orientation; *out is freed with free(). */
static int exif_orientation_block(unsigned char **out, unsigned int *len, int o)
{
    ExifData *ed = exif_data_new();
    if (!ed)
        return -1;
    exif_data_set_byte_order(ed, EXIF_BYTE_ORDER_INTEL);
    exif_data_set_data_type(ed, EXIF_DATA_TYPE_COMPRESSED);
    ExifEntry *e = exif_entry_new();
    int rc = -1;
    if (e) {
        exif_content_add_entry(ed->ifd[EXIF_IFD_0], e);
        exif_entry_initialize(e, EXIF_TAG_ORIENTATION);
        exif_set_short(e->data, EXIF_BYTE_ORDER_INTEL, (ExifShort)o);
        exif_entry_unref(e);
        unsigned char *buf = NULL;
        exif_data_save_data(ed, &buf, len);
        if (buf && *len > 6 && *len < 65000) {
            *out = malloc(*len);
            if (*out) {
                memcpy(*out, buf, *len);
                rc = 0;
            }
        }
        free(buf);
    }
    exif_data_unref(ed);
    return rc;
}

int write_jpeg(const char *path, const uint8_t *px, int w, int h, int channels, int quality,
               int orientation, char *err, size_t errlen)
{
    uint8_t *stored = NULL;
    unsigned char *jpg = NULL, *exif = NULL;
    unsigned long size = 0;
    unsigned int exif_len = 0;
    FILE *f = NULL;
    int rc = -1, sw = w, sh = h;
    tjhandle tj = tjInitCompress();
    if (!tj) {
        snprintf(err, errlen, "%s: tjInitCompress: %s", path, tjGetErrorStr2(NULL));
        return -1;
    }
    if (orientation > 1) {
        stored = malloc((size_t)w * (size_t)h * (size_t)channels);
        if (!stored) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        orient_for_exif(stored, &sw, &sh, px, w, h, channels, orientation);
        px = stored;
        if (exif_orientation_block(&exif, &exif_len, orientation) != 0) {
            snprintf(err, errlen, "%s: libexif could not build the Orientation block", path);
            goto fail;
        }
    }
    if (tjCompress2(tj, px, sw, sw * channels, sh, channels == 1 ? TJPF_GRAY : TJPF_RGB, &jpg,
                    &size, channels == 1 ? TJSAMP_GRAY : TJSAMP_420, quality,
                    TJFLAG_ACCURATEDCT) != 0) {
        snprintf(err, errlen, "%s: tjCompress2: %s", path, tjGetErrorStr2(tj));
        goto fail;
    }
    f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    int ok = fwrite(jpg, 1, 2, f) == 2; /* SOI */
    if (exif) {
        unsigned int seg = exif_len + 2;
        unsigned char hdr[4] = {0xff, 0xe1, (unsigned char)(seg >> 8), (unsigned char)seg};
        ok = ok && fwrite(hdr, 1, 4, f) == 4 && fwrite(exif, 1, exif_len, f) == exif_len;
    }
    ok = ok && fwrite(jpg + 2, 1, size - 2, f) == size - 2;
    if (fclose(f) != 0 || !ok) {
        f = NULL;
        snprintf(err, errlen, "%s: cannot write", path);
        goto fail;
    }
    f = NULL;
    rc = 0;
fail:
    tjFree(jpg);
    tjDestroy(tj);
    free(stored);
    free(exif);
    return rc;
}

int make_dirs(const char *path, char *err, size_t errlen)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        snprintf(err, errlen, "%s: bad directory name", path);
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: %s", buf, strerror(errno));
            return -1;
        }
        buf[i] = c;
    }
    return 0;
}
