/*
 * jpeg.c - JPEG photos through TurboJPEG and libexif (see jpeg.h).
 *
 * Why TurboJPEG and not stb_image, measured on this machine (tests/bench/bench_decode.c: one
 * core, a 4032x3024 baseline 4:2:0 JPEG at quality 90, grey gradient, dark stroke, noise,
 * 3.6 MB; median of 11): stb_image at full size 81 ms and 52 MiB peak; TurboJPEG at full size
 * 50 ms and 35 MiB; TurboJPEG at 1/4 (what this file does) 30 ms and 2.7 MiB. FASTUPSAMPLE
 * made no difference at 1/4 (29.8 ms) and FASTDCT does not apply to the reduced IDCTs, so
 * neither is used. A progressive file is slower whatever the scale (125 ms: every scan is
 * entropy-decoded at full size).
 */
#include "jpeg.h"
#include "err.h"

#include "nn/nn.h"

#include <libexif/exif-data.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* ---------------------------------------------------------------------------------------- */
/* Segment headers                                                                          */
/* ---------------------------------------------------------------------------------------- */

static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

/* The 8x8 blocks the decoder walks for the scan whose SOS payload is sos[0..n): a scan of one
 * component covers that component's blocks; an interleaved one, every MCU's blocks of the
 * components it names. Unknown components count as the largest. */
static uint64_t scan_blocks(const struct srv_jpeg_info *info, const uint8_t *sos, size_t n)
{
    uint64_t w = (uint64_t)info->width, h = (uint64_t)info->height;
    uint64_t hmax = info->hmax > 0 ? (uint64_t)info->hmax : 1;
    uint64_t vmax = info->vmax > 0 ? (uint64_t)info->vmax : 1;
    int ns = n >= 1 ? sos[0] : 0;
    uint64_t total = 0, per_mcu = 0;
    for (int k = 0; k < ns && 1 + 2 * (size_t)k < n; k++) {
        uint64_t hs = hmax, vs = vmax;
        for (int c = 0; c < info->components && c < 4; c++)
            if (info->id[c] == sos[1 + 2 * k] && info->h[c] > 0 && info->v[c] > 0) {
                hs = (uint64_t)info->h[c];
                vs = (uint64_t)info->v[c];
                break;
            }
        if (ns == 1) {
            uint64_t cw = (w * hs + hmax - 1) / hmax, chh = (h * vs + vmax - 1) / vmax;
            total += ((cw + 7) / 8) * ((chh + 7) / 8);
        }
        per_mcu += hs * vs;
    }
    if (ns > 1)
        total = ((w + 8 * hmax - 1) / (8 * hmax)) * ((h + 8 * vmax - 1) / (8 * vmax)) * per_mcu;
    return total;
}

int srv_jpeg_probe(struct srv_jpeg_info *info, const void *data, size_t len)
{
    memset(info, 0, sizeof *info);
    const uint8_t *p = data;
    if (len < 4 || p[0] != 0xff || p[1] != 0xd8)
        return -1;
    size_t i = 2;
    while (i + 4 <= len) {
        if (p[i] != 0xff)
            return info->width ? 0 : -1; /* garbage between segments: libjpeg words it */
        unsigned m = p[i + 1];
        if (m == 0xff) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) { /* no length */
            i += 2;
            continue;
        }
        if (m == 0xd9)
            break;
        size_t seg = be16(p + i + 2); /* includes its own two bytes */
        if (seg < 2 || i + 2 + seg > len)
            return info->width ? 0 : -1;
        const uint8_t *s = p + i + 4;
        size_t n = seg - 2;
        if (m == 0xe1 && !info->exif && n >= 6 && !memcmp(s, "Exif\0\0", 6)) {
            info->exif = s;
            info->exif_len = n;
        } else if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc && n >= 6 &&
                   !info->width) {
            int nf = s[5];
            info->height = (int)be16(s + 1);
            info->width = (int)be16(s + 3);
            info->components = nf;
            info->progressive = (m & 3) == 2;
            info->buffered = info->progressive;
            for (int c = 0; c < nf && c < 4 && 6 + 3 * (size_t)c + 2 < n; c++) {
                int hs = s[7 + 3 * c] >> 4, vs = s[7 + 3 * c] & 15;
                info->id[c] = s[6 + 3 * c];
                info->h[c] = hs;
                info->v[c] = vs;
                info->hmax = hs > info->hmax ? hs : info->hmax;
                info->vmax = vs > info->vmax ? vs : info->vmax;
            }
        } else if (m == 0xda) {
            if (n >= 1 && s[0] < info->components)
                info->buffered = 1; /* non-interleaved: libjpeg buffers the whole image */
            info->scans = 1;
            info->block_visits = scan_blocks(info, s, n);
            for (size_t k = i + 2 + seg; info->buffered && k + 1 < len; k++) {
                const uint8_t *q = memchr(p + k, 0xff, len - 1 - k);
                if (!q)
                    break;
                k = (size_t)(q - p);
                if (q[1] != 0xda)
                    continue;
                info->scans++;
                if (k + 4 <= len) {
                    size_t sl = be16(q + 2);
                    if (sl >= 2 && k + 2 + sl <= len)
                        info->block_visits += scan_blocks(info, q + 4, sl - 2);
                }
            }
            break;
        }
        i += 2 + seg;
    }
    return info->width ? 0 : -1;
}

void srv_jpeg_scale(int w, int h, int *num, int *denom)
{
    *num = *denom = 1;
    if (w <= SRV_JPEG_FULL_SIDE && h <= SRV_JPEG_FULL_SIDE)
        return;
    long longer = w > h ? w : h;
    int n = 0;
    tjscalingfactor *f = tjGetScalingFactors(&n);
    double best = 1.0;
    for (int k = 0; f && k < n; k++) {
        double v = (double)f[k].num / f[k].denom;
        if (v >= best || (longer * f[k].num + f[k].denom - 1) / f[k].denom < SRV_JPEG_TARGET_SIDE)
            continue;
        best = v;
        *num = f[k].num;
        *denom = f[k].denom;
    }
}

size_t srv_jpeg_budget(const struct srv_jpeg_info *info, int num, int denom)
{
    size_t w = (size_t)info->width, h = (size_t)info->height;
    size_t sw = (w * (size_t)num + (size_t)denom - 1) / (size_t)denom;
    size_t sh = (h * (size_t)num + (size_t)denom - 1) / (size_t)denom;
    size_t nc = info->components > 0 ? (size_t)info->components : 1;
    size_t ch = nc == 1 ? 1 : 3;
    /* decoder output and the orientation copy; row buffers: generously 2 MCU rows of 16
     * lines at full width for every component, plus 1 MiB of tables and state */
    size_t bytes = 2 * sw * sh * ch + w * nc * 64 + ((size_t)1 << 20);
    if (info->buffered) {
        size_t hmax = info->hmax > 0 ? (size_t)info->hmax : 1;
        size_t vmax = info->vmax > 0 ? (size_t)info->vmax : 1;
        for (size_t c = 0; c < nc && c < 4; c++) {
            size_t hs = info->h[c] > 0 ? (size_t)info->h[c] : 1;
            size_t vs = info->v[c] > 0 ? (size_t)info->v[c] : 1;
            /* blocks rounded up to whole MCUs: +1 block each way is an upper bound */
            size_t bw = (w * hs + 8 * hmax - 1) / (8 * hmax) + 1;
            size_t bh = (h * vs + 8 * vmax - 1) / (8 * vmax) + 1;
            bytes += bw * bh * 128;
        }
    }
    return bytes;
}

/* ---------------------------------------------------------------------------------------- */
/* Orientation                                                                              */
/* ---------------------------------------------------------------------------------------- */

int srv_jpeg_orientation(const uint8_t *exif, size_t len)
{
    if (!exif || len < 6 || len > UINT32_MAX)
        return 1;
    /* exif_data_new_from_data would also "fix" the data to the specification (adding
     * mandatory tags we never read); only the loading is wanted. */
    ExifData *d = exif_data_new();
    if (!d)
        return 1;
    exif_data_unset_option(d, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(d, exif, (unsigned)len);
    int o = 1;
    ExifEntry *e = exif_content_get_entry(d->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->data && e->size >= 2) {
        int v = exif_get_short(e->data, exif_data_get_byte_order(d));
        if (v >= 1 && v <= 8)
            o = v;
    }
    exif_data_unref(d);
    return o;
}

uint8_t *srv_pixels_orient(const uint8_t *src, int w, int h, int channels, int o, int *ow, int *oh)
{
    int swap = o >= 5 && o <= 8;
    int W = swap ? h : w, H = swap ? w : h;
    size_t c = (size_t)channels;
    uint8_t *dst = malloc((size_t)w * (size_t)h * c);
    if (!dst)
        return NULL;
    *ow = W;
    *oh = H;
    for (int y = 0; y < H; y++) {
        uint8_t *row = dst + (size_t)y * (size_t)W * c;
        for (int x = 0; x < W; x++) {
            int sx, sy; /* the stored pixel shown at (x, y) */
            switch (o) {
            case 2: sx = w - 1 - x, sy = y; break;
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;
            case 4: sx = x, sy = h - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = h - 1 - x; break;
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;
            case 8: sx = w - 1 - y, sy = x; break;
            default: sx = x, sy = y; break;
            }
            memcpy(row + (size_t)x * c, src + ((size_t)sy * (size_t)w + (size_t)sx) * c, c);
        }
    }
    return dst;
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                 */
/* ---------------------------------------------------------------------------------------- */

int srv_jpeg_decode(uint8_t **out, int *w, int *h, int *channels, const void *data, size_t len,
                    char *err, size_t errlen)
{
    *out = NULL;
    *w = *h = *channels = 0;
    if (len > (size_t)UINT32_MAX)
        return srv_seterr(err, errlen, NN_ERANGE, "jpeg of %zu bytes is too large", len);
    struct srv_jpeg_info info;
    if (srv_jpeg_probe(&info, data, len) != 0)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "cannot read the jpeg header: no frame header (SOF) before the data");
    int iw = info.width, ih = info.height;
    if (iw < 1 || ih < 1 || iw > SRV_JPEG_MAX_SIDE || ih > SRV_JPEG_MAX_SIDE ||
        (int64_t)iw * ih > SRV_JPEG_MAX_PIXELS)
        return srv_seterr(err, errlen, NN_ERANGE,
                          "jpeg image is %dx%d; JPEG photos are accepted up to %d pixels per "
                          "side and %d pixels in all (48 MP)",
                          iw, ih, SRV_JPEG_MAX_SIDE, SRV_JPEG_MAX_PIXELS);
    if (info.components != 1 && info.components != 3)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "cannot decode the jpeg image: %d colour components (only gray and "
                          "YCbCr/RGB JPEGs are accepted, not CMYK)",
                          info.components);
    int num, denom;
    srv_jpeg_scale(iw, ih, &num, &denom);
    size_t need = srv_jpeg_budget(&info, num, denom);
    if (need > SRV_DECODE_BUDGET)
        return srv_seterr(err, errlen, NN_ERANGE,
                          "decoding this %s jpeg (%dx%d) would need %zu MiB, over the "
                          "per-request budget of %zu MiB; send a baseline JPEG or a smaller "
                          "image",
                          info.progressive ? "progressive" : "multi-scan", iw, ih, need >> 20,
                          SRV_DECODE_BUDGET >> 20);

    /* Each scan makes libjpeg walk every block of the components it names (~10 ns a block
     * here, even for a scan of nothing but end-of-band runs): 500 such scans of a 16 MP image
     * took 1.3 s. Encoders write 2..20 (libjpeg's default progression: 10 for colour). */
    if (info.scans > SRV_JPEG_MAX_SCANS)
        return srv_seterr(err, errlen, NN_EFORMAT,
                          "cannot decode the jpeg image: it has %d scans; at most %d are "
                          "accepted",
                          info.scans, SRV_JPEG_MAX_SCANS);
    if (info.block_visits > SRV_JPEG_MAX_BLOCK_VISITS)
        return srv_seterr(err, errlen, NN_ERANGE,
                          "cannot decode the %dx%d jpeg image: its %d scans cover %llu Mi "
                          "blocks in all, over the limit of %llu Mi (a %s JPEG of this size "
                          "may have about %d scans; send a baseline JPEG or a smaller image)",
                          iw, ih, info.scans,
                          (unsigned long long)(info.block_visits >> 20),
                          (unsigned long long)(SRV_JPEG_MAX_BLOCK_VISITS >> 20),
                          info.progressive ? "progressive" : "multi-scan",
                          (int)(SRV_JPEG_MAX_BLOCK_VISITS /
                                (info.block_visits / (uint64_t)info.scans + 1)));

    int rc;
    uint8_t *px = NULL;
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory for the jpeg decoder");
    int tw = 0, th = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &tw, &th, &subsamp, &cs) != 0) {
        rc = srv_seterr(err, errlen, NN_EFORMAT, "cannot read the jpeg header: %s",
                        tjGetErrorStr2(tj));
        goto fail;
    }
    if (tw != iw || th != ih || cs == TJCS_CMYK || cs == TJCS_YCCK) {
        rc = srv_seterr(err, errlen, NN_EFORMAT, "inconsistent or CMYK jpeg image");
        goto fail;
    }
    tjscalingfactor sf = {num, denom};
    int sw = TJSCALED(iw, sf), sh = TJSCALED(ih, sf);
    int ch = cs == TJCS_GRAY ? 1 : 3;
    px = malloc((size_t)sw * (size_t)sh * (size_t)ch);
    if (!px) {
        rc = srv_seterr(err, errlen, NN_ENOMEM, "out of memory for a %dx%d image", sw, sh);
        goto fail;
    }
    /* LIMITSCANS: more than 500 progressive scans is an error (a second fence behind
     * SRV_JPEG_MAX_SCANS, should a scan ever be missed by the count).
     * STOPONWARNING: a truncated or corrupt file is refused rather than padded with grey, which
     * could cut a digit in half without saying so. Default DCT and upsampling (FASTDCT does not
     * apply to the reduced IDCTs used at 1/2..1/8; see bench_decode for FASTUPSAMPLE). */
    int flags = TJFLAG_LIMITSCANS | TJFLAG_STOPONWARNING;
    if (tjDecompress2(tj, data, (unsigned long)len, px, sw, sw * ch, sh,
                      ch == 1 ? TJPF_GRAY : TJPF_RGB, flags) != 0) {
        rc = srv_seterr(err, errlen, NN_EFORMAT, "cannot decode the jpeg image: %s",
                        tjGetErrorStr2(tj));
        goto fail;
    }
    int o = srv_jpeg_orientation(info.exif, info.exif_len);
    if (o != 1) {
        int ow, oh;
        uint8_t *r = srv_pixels_orient(px, sw, sh, ch, o, &ow, &oh);
        if (!r) {
            rc = srv_seterr(err, errlen, NN_ENOMEM, "out of memory for a %dx%d image", sw, sh);
            goto fail;
        }
        free(px);
        px = r;
        sw = ow;
        sh = oh;
    }
    tjDestroy(tj);
    *out = px;
    *w = sw;
    *h = sh;
    *channels = ch;
    return 0;
fail:
    free(px);
    tjDestroy(tj);
    return rc;
}
