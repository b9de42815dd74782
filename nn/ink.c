/*
 * ink.c - ink from real paper: 8-bit pixels of a photo, a scan or a drawing to ink in [0,1].
 *
 * A drawing exported from a canvas has an exactly uniform background, and its ink is plain
 * 1 - luminance (or luminance, for MNIST's light-on-dark polarity); such an image takes that
 * exact path. A photo of paper does not: the paper is grey, cream or coloured, the light falls
 * off across the page, there are shadows, JPEG noise, specks, notebook rulings. For those:
 *
 *   1. Projection: the gray channel mix with the best ink contrast (luminance, or the red,
 *      green or blue channel alone: blue ballpoint is darkest in red, red ruled lines vanish
 *      there), luminance preferred on a near tie.
 *   2. Polarity: the side of the border's median level on which most of the deviating mass
 *      lies (dark ink on paper, or white chalk on a dark board, which is inverted first).
 *   3. Background: the paper's level in blocks of about 1/40 of the longer side (each block's
 *      90th percentile, so that strokes thinner than a block vanish), then a grey-scale
 *      closing of that grid (max then min over 9x9 blocks: dark features up to about a
 *      quarter of the image, i.e. heavy strokes, are filled, while step edges such as a
 *      shadow's are kept), bilinear between block centres. Blocks of 1/20 left a band a
 *      block wide on the dark side of a shadow's edge that read as ink; at 1/40 the band is
 *      half as wide (dev paper set: 97.5% read right at 1/20, 97.9% at 1/40; 1/60 read less). Darkness is the ratio
 *      d = 1 - v / paper: light is multiplicative, so a gradient or a shadow cancels.
 *   4. Levels: paper noise from the median absolute deviation of d; the ink's own level as
 *      the 98th percentile of what stands above the noise; a strong threshold between paper
 *      and ink by Otsu's method (1979) on that part of the histogram, and a weak one below it
 *      (hysteresis: faint anti-aliased edges are kept only where they touch strong ink).
 *   5. Clutter: long thin straight lines (ruled and squared paper, margins) are removed where
 *      no stroke continues across them, so a 1 or a 7's bar lying on a line survives; then
 *      connected components (8-connectivity) with no strong pixel, or small and away from the
 *      digit (specks, dust), are dropped.
 *   6. Output: (d - weak) / (ink level - weak), clamped: paper 0, the ink's own level 1, the
 *      anti-aliasing in between.
 * Cost: a few passes over the image and 5 bytes of scratch per pixel (mask and labels).
 */
#include "nn_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CLEAN_BORDER 0.9 /* fraction of border pixels exactly white (or black) for "clean" */
#define BLOCKS 40        /* blocks along the longer side for the paper estimate */
#define BLOCK_MIN 4      /* smallest block side, pixels */
#define POL_BLOCKS 3     /* blocks along the longer side for the polarity vote */
#define BLOCK_PCT 0.90   /* percentile of a block taken as its paper level */
#define CLOSE_R 4        /* closing radius, blocks */
#define DBINS 1024       /* histogram bins of the darkness d in [0,1] */
#define MIN_CONTRAST 0.12f /* ink at least this much darker than its paper, relative ... */
#define INK_SIGMAS 10.0f  /* ... and this many noise deviations: a noise tail is no ink */
#define MIN_ABS 0.08f      /* ... and in absolute level (a dark ground's noise is large in ratio) */
#define LINE_FILL 0.5    /* a row (column) is on a line when this fraction of it is ink */
#define SPECK_REL 0.02   /* components under this fraction of the largest are specks */
#define NEAR_REL 0.15    /* components under this fraction count as "small" ... */
#define NEAR_DIST 0.25   /* ... and are dropped farther than this (of the digit's size) away */

/* ---------------------------------------------------------------------------------------- */
/* Gray projections                                                                         */
/* ---------------------------------------------------------------------------------------- */

enum proj { PROJ_LUMA, PROJ_R, PROJ_G, PROJ_B, PROJ_N };

/* Gray level in [0,1] (1 = white) of pixel i under projection p, alpha composited on white,
 * Rec. 601 weights for luminance. */
static inline __attribute__((always_inline)) float gray(const uint8_t *src, size_t i, int channels,
                                                        enum proj p)
{
    const uint8_t *q = src + i * (size_t)channels;
    float y, a = 1.0f;
    if (channels <= 2) {
        y = q[0];
        if (channels == 2) {
            a = q[1] / 255.0f;
        }
    } else {
        switch (p) {
        case PROJ_R: y = q[0]; break;
        case PROJ_G: y = q[1]; break;
        case PROJ_B: y = q[2]; break;
        default: y = 0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2]; break;
        }
        if (channels == 4) {
            a = q[3] / 255.0f;
        }
    }
    return (y / 255.0f) * a + (1.0f - a);
}

/* dst[i] = gray level of every pixel, or 1 - it when invert, clamped to [0,1]. */
static void project(float *dst, const uint8_t *src, size_t n, int channels, enum proj p, int invert)
{
    for (size_t i = 0; i < n; i++) {
        float v = gray(src, i, channels, p);
        v = invert ? 1.0f - v : v;
        dst[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
}

/* Calls f(i) for each border pixel index once (the whole image when a side is 1 or 2). */
#define FOR_BORDER(w, h, i, body)                                                              \
    do {                                                                                       \
        for (int bx_ = 0; bx_ < (w); bx_++) {                                                  \
            size_t i = (size_t)bx_;                                                            \
            body;                                                                              \
            if ((h) > 1) {                                                                     \
                i = (size_t)((h)-1) * (w) + bx_;                                               \
                body;                                                                          \
            }                                                                                  \
        }                                                                                      \
        for (int by_ = 1; by_ < (h)-1; by_++) {                                                \
            size_t i = (size_t)by_ * (w);                                                      \
            body;                                                                              \
            if ((w) > 1) {                                                                     \
                i = (size_t)by_ * (w) + (w)-1;                                                 \
                body;                                                                          \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* ---------------------------------------------------------------------------------------- */
/* Paper level                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* The paper-level grid of v (w,h): gw x gh blocks of side bs. */
struct paper {
    int bs, gw, gh;
    float *level; /* (gh, gw) */
};

static int paper_new(struct paper *pp, int w, int h)
{
    int longer = w > h ? w : h;
    int bs = (longer + BLOCKS - 1) / BLOCKS;
    pp->bs = bs < BLOCK_MIN ? BLOCK_MIN : bs;
    pp->gw = (w + pp->bs - 1) / pp->bs;
    pp->gh = (h + pp->bs - 1) / pp->bs;
    pp->level = malloc(sizeof(float) * 2 * (size_t)pp->gw * pp->gh);
    return pp->level ? NN_OK : NN_ENOMEM;
}

/* v is sampled every `step` pixels in both directions (1 = every pixel). */
static void paper_estimate(struct paper *pp, const float *v, int w, int h, int step)
{
    int gw = pp->gw, gh = pp->gh, bs = pp->bs;
    float *lv = pp->level, *tmp = pp->level + (size_t)gw * gh;
    for (int by = 0; by < gh; by++) {
        for (int bx = 0; bx < gw; bx++) {
            uint32_t hist[256] = {0}, cnt = 0;
            int y1 = (by + 1) * bs < h ? (by + 1) * bs : h, x1 = (bx + 1) * bs < w ? (bx + 1) * bs : w;
            /* the sampled pixels are the multiples of step */
            for (int y = (by * bs + step - 1) / step * step; y < y1; y += step) {
                for (int x = (bx * bs + step - 1) / step * step; x < x1; x += step) {
                    hist[(int)(v[(size_t)y * w + x] * 255.0f + 0.5f)]++;
                    cnt++;
                }
            }
            uint32_t want = (uint32_t)(BLOCK_PCT * cnt), acc = 0;
            int b = 0;
            while (b < 255 && acc + hist[b] <= want) {
                acc += hist[b++];
            }
            lv[by * gw + bx] = cnt ? b / 255.0f : 1.0f;
        }
    }
    /* Closing: dilation (max) then erosion (min) over (2 CLOSE_R + 1)^2 blocks, each square
     * done directly (grids are at most BLOCKS x BLOCKS). */
    for (int pass = 0; pass < 2; pass++) {
        const float *in = pass ? tmp : lv;
        float *out = pass ? lv : tmp;
        for (int by = 0; by < gh; by++) {
            for (int bx = 0; bx < gw; bx++) {
                float m = in[by * gw + bx];
                for (int dy = -CLOSE_R; dy <= CLOSE_R; dy++) {
                    for (int dx = -CLOSE_R; dx <= CLOSE_R; dx++) {
                        int yy = by + dy, xx = bx + dx;
                        if (yy < 0 || yy >= gh || xx < 0 || xx >= gw) {
                            continue;
                        }
                        float q = in[yy * gw + xx];
                        m = pass ? (q < m ? q : m) : (q > m ? q : m);
                    }
                }
                out[by * gw + bx] = m;
            }
        }
    }
}

/* The median paper level of the grid. */
static float paper_median(const struct paper *pp)
{
    uint32_t hist[256] = {0}, n = (uint32_t)pp->gw * (uint32_t)pp->gh, acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        hist[(int)(pp->level[i] * 255.0f + 0.5f)]++;
    }
    int b = 0;
    while (b < 255 && acc + hist[b] <= n / 2) {
        acc += hist[b++];
    }
    return b / 255.0f;
}

/* Block-centre coordinate interpolation along one axis: pixel p lies between blocks i0, i1
 * with weight f on i1. */
static inline void grid_pos(int p, int bs, int g, int *i0, int *i1, float *f)
{
    float c = (p + 0.5f) / bs - 0.5f;
    if (c <= 0.0f) {
        *i0 = *i1 = 0;
        *f = 0.0f;
    } else if (c >= g - 1) {
        *i0 = *i1 = g - 1;
        *f = 0.0f;
    } else {
        *i0 = (int)c;
        *i1 = *i0 + 1;
        *f = c - *i0;
    }
}

/* d[i] = 1 - v[i] / paper level at i, clamped to [0,1] (in place when d == v). The lerps are
 * written a + (b - a) f, exact when a == b, so a uniform paper gives an exact level. */
static void darkness(float *d, const float *v, int w, int h, const struct paper *pp, int step)
{
    const float *lv = pp->level;
    for (int y = 0; y < h; y += step) {
        int r0, r1;
        float fy;
        grid_pos(y, pp->bs, pp->gh, &r0, &r1, &fy);
        for (int x = 0; x < w; x += step) {
            int c0, c1;
            float fx;
            grid_pos(x, pp->bs, pp->gw, &c0, &c1, &fx);
            float a = lv[r0 * pp->gw + c0], b = lv[r0 * pp->gw + c1];
            float c = lv[r1 * pp->gw + c0], e = lv[r1 * pp->gw + c1];
            float top = a + (b - a) * fx, bot = c + (e - c) * fx;
            float p = top + (bot - top) * fy;
            p = p < 1.0f / 255.0f ? 1.0f / 255.0f : p;
            float q = 1.0f - v[(size_t)y * w + x] / p;
            d[(size_t)y * w + x] = q < 0.0f ? 0.0f : q > 1.0f ? 1.0f : q;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Levels                                                                                   */
/* ---------------------------------------------------------------------------------------- */

struct levels {
    float noise;  /* paper's darkness stays below this */
    float strong; /* ink for sure at or above */
    float weak;   /* edge of ink at or above, where it touches strong ink */
    float ink;    /* the ink's own level: maps to 1 */
};

/* Value at fraction q of the histogram's mass in bins [lo, hi). */
static float hist_quantile(const uint32_t *hist, int lo, int hi, double q)
{
    uint64_t tot = 0;
    for (int b = lo; b < hi; b++) {
        tot += hist[b];
    }
    uint64_t want = (uint64_t)(q * (double)tot), acc = 0;
    int b = lo;
    while (b < hi - 1 && acc + hist[b] <= want) {
        acc += hist[b++];
    }
    return (b + 0.5f) / DBINS;
}

/* Otsu's threshold on bins [lo, DBINS): the bin maximising the between-class variance. */
static float otsu(const uint32_t *hist, int lo)
{
    double tot = 0, sum = 0;
    for (int b = lo; b < DBINS; b++) {
        tot += hist[b];
        sum += (double)b * hist[b];
    }
    double w0 = 0, s0 = 0, best = -1;
    int arg = lo;
    for (int b = lo; b < DBINS - 1; b++) {
        w0 += hist[b];
        s0 += (double)b * hist[b];
        double w1 = tot - w0;
        if (w0 == 0 || w1 == 0) {
            continue;
        }
        double m0 = s0 / w0, m1 = (sum - s0) / w1, between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if (between > best) {
            best = between;
            arg = b + 1;
        }
    }
    return (float)arg / DBINS;
}

/* Levels of d (every step-th pixel) on paper of typical level `paper`; returns 0 when nothing
 * stands out of the paper, relatively and absolutely. */
static int find_levels(struct levels *lv, const float *d, int w, int h, int step, float paper)
{
    uint32_t *hist = calloc(DBINS, sizeof *hist);
    if (!hist) {
        return NN_ENOMEM;
    }
    for (int y = 0; y < h; y += step) {
        for (int x = 0; x < w; x += step) {
            int b = (int)(d[(size_t)y * w + x] * DBINS);
            hist[b < DBINS ? b : DBINS - 1]++;
        }
    }
    /* The paper's noise: median and MAD of the pixels below Otsu's split of the whole
     * histogram, so that ink covering much of the image (a big digit in a tight crop) does not
     * count as noise. */
    int split = (int)(otsu(hist, 0) * DBINS);
    split = split < 1 ? 1 : split;
    float med = hist_quantile(hist, 0, split, 0.5);
    uint32_t *dev = calloc(DBINS, sizeof *dev);
    if (!dev) {
        free(hist);
        return NN_ENOMEM;
    }
    int mb = (int)(med * DBINS);
    for (int b = 0; b < split; b++) {
        dev[abs(b - mb)] += hist[b];
    }
    float mad = hist_quantile(dev, 0, DBINS, 0.5);
    free(dev);
    float sigma = 1.4826f * mad;
    lv->noise = med + 4.0f * sigma + 0.02f;
    int lo = (int)(lv->noise * DBINS) + 1;
    int found = 0;
    if (lo < DBINS) {
        uint64_t above = 0;
        for (int b = lo; b < DBINS; b++) {
            above += hist[b];
        }
        if (above > 0) {
            lv->ink = hist_quantile(hist, lo, DBINS, 0.98);
            if (lv->ink >= lv->noise + MIN_CONTRAST * 0.5f && lv->ink >= MIN_CONTRAST &&
                lv->ink * paper >= MIN_ABS && lv->ink >= med + INK_SIGMAS * sigma) {
                float t = otsu(hist, lo);
                float tlo = lv->noise + 0.3f * (lv->ink - lv->noise);
                float thi = lv->noise + 0.7f * (lv->ink - lv->noise);
                lv->strong = t < tlo ? tlo : t > thi ? thi : t;
                lv->weak = lv->noise + 0.5f * (lv->strong - lv->noise);
                found = 1;
            }
        }
    }
    free(hist);
    return found;
}

/* ---------------------------------------------------------------------------------------- */
/* Clutter                                                                                  */
/* ---------------------------------------------------------------------------------------- */

enum { M_NONE = 0, M_WEAK = 1, M_STRONG = 2 };

/*
 * Long thin lines along rows (vertical = 0) or columns: a run of consecutive lines each of
 * which is at least LINE_FILL ink (weak or strong: a faint ruling is weak ink that would
 * cling to the digit it crosses), at most `thick` lines thick, is a ruling; its pixels are
 * cleared (with one line of weak fringe either side) wherever neither the line just before nor
 * the one just after the band holds ink, i.e. where no stroke crosses it.
 */
static void remove_lines(uint8_t *m, int w, int h, int vertical)
{
    int n = vertical ? w : h, len = vertical ? h : w;
    size_t along = vertical ? (size_t)w : 1, across = vertical ? 1 : (size_t)w;
    int thick = (int)(0.02 * (vertical ? w : h)) + 2;
    int k = 0;
    while (k < n) {
        int start = k;
        while (k < n) {
            int cnt = 0;
            const uint8_t *p = m + (size_t)k * across;
            for (int j = 0; j < len; j++) {
                cnt += p[(size_t)j * along] != M_NONE;
            }
            if (cnt < LINE_FILL * len) {
                break;
            }
            k++;
        }
        int end = k; /* band [start, end) */
        if (end > start && end - start <= thick) {
            int b0 = start - 1, b1 = end; /* fringe lines, cleared too */
            for (int j = 0; j < len; j++) {
                int before = start - 2 >= 0 && m[(size_t)(start - 2) * across + (size_t)j * along];
                int after = end + 1 < n && m[(size_t)(end + 1) * across + (size_t)j * along];
                if (before || after) {
                    continue; /* a stroke crosses here */
                }
                for (int q = b0 < 0 ? 0 : b0; q <= b1 && q < n; q++) {
                    m[(size_t)q * across + (size_t)j * along] = M_NONE;
                }
            }
        }
        k = end > start ? end : k + 1;
    }
}

struct comp {
    int x0, y0, x1, y1;
    uint32_t strong;
};

static int find(int32_t *parent, int32_t a)
{
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

/* Labels m's ink (8-connectivity) and clears components that are specks or have no strong
 * pixel. lab is w*h, parent w*h/2 + 2 entries. */
static int drop_clutter(uint8_t *m, int32_t *lab, int w, int h)
{
    size_t cap = (size_t)w * h / 2 + 2;
    int32_t *parent = malloc(sizeof(int32_t) * cap);
    if (!parent) {
        return NN_ENOMEM;
    }
    int32_t next = 1;
    parent[0] = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            lab[i] = 0;
            if (!m[i]) {
                continue;
            }
            int32_t nb[4], k = 0;
            if (x > 0 && lab[i - 1]) {
                nb[k++] = lab[i - 1];
            }
            if (y > 0) {
                size_t u = i - (size_t)w;
                if (x > 0 && lab[u - 1]) {
                    nb[k++] = lab[u - 1];
                }
                if (lab[u]) {
                    nb[k++] = lab[u];
                }
                if (x + 1 < w && lab[u + 1]) {
                    nb[k++] = lab[u + 1];
                }
            }
            if (k == 0) {
                if ((size_t)next >= cap) { /* cannot happen: labels <= pixels / 2 + 1 */
                    free(parent);
                    return NN_ENOMEM;
                }
                parent[next] = next;
                lab[i] = next++;
                continue;
            }
            int32_t r = find(parent, nb[0]);
            for (int j = 1; j < k; j++) {
                int32_t s = find(parent, nb[j]);
                if (s != r) {
                    if (s < r) {
                        int32_t t = s;
                        s = r;
                        r = t;
                    }
                    parent[s] = r;
                }
            }
            lab[i] = r;
        }
    }
    /* Compact roots to 0..nc-1 (parent[] reused as the map). */
    for (int32_t l = 1; l < next; l++) {
        parent[l] = find(parent, l); /* roots are smaller than their members */
    }
    int32_t nc = 0;
    for (int32_t l = 1; l < next; l++) { /* in order: a member's root has its number already */
        parent[l] = parent[l] == l ? nc++ : parent[parent[l]];
    }
    struct comp *c = malloc(sizeof(*c) * (size_t)(nc ? nc : 1));
    if (!c) {
        free(parent);
        return NN_ENOMEM;
    }
    for (int32_t j = 0; j < nc; j++) {
        c[j] = (struct comp){w, h, -1, -1, 0};
    }
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (!lab[i]) {
                continue;
            }
            int32_t j = parent[lab[i]];
            lab[i] = j + 1;
            struct comp *q = &c[j];
            q->x0 = x < q->x0 ? x : q->x0;
            q->x1 = x > q->x1 ? x : q->x1;
            q->y0 = y < q->y0 ? y : q->y0;
            q->y1 = y > q->y1 ? y : q->y1;
            q->strong += m[i] == M_STRONG;
        }
    }
    uint32_t big = 0;
    for (int32_t j = 0; j < nc; j++) {
        big = c[j].strong > big ? c[j].strong : big;
    }
    /* The digit's box: the union of the components that are not small. */
    int ux0 = w, uy0 = h, ux1 = -1, uy1 = -1;
    for (int32_t j = 0; j < nc; j++) {
        if (c[j].strong >= NEAR_REL * big) {
            ux0 = c[j].x0 < ux0 ? c[j].x0 : ux0;
            uy0 = c[j].y0 < uy0 ? c[j].y0 : uy0;
            ux1 = c[j].x1 > ux1 ? c[j].x1 : ux1;
            uy1 = c[j].y1 > uy1 ? c[j].y1 : uy1;
        }
    }
    double size = (ux1 - ux0 > uy1 - uy0 ? ux1 - ux0 : uy1 - uy0) + 1;
    uint8_t *keep = malloc((size_t)(nc ? nc : 1));
    if (!keep) {
        free(c);
        free(parent);
        return NN_ENOMEM;
    }
    for (int32_t j = 0; j < nc; j++) {
        const struct comp *q = &c[j];
        int k = q->strong > 0 && q->strong >= SPECK_REL * big;
        if (k && q->strong < NEAR_REL * big) {
            int dx = q->x1 < ux0 ? ux0 - q->x1 : q->x0 > ux1 ? q->x0 - ux1 : 0;
            int dy = q->y1 < uy0 ? uy0 - q->y1 : q->y0 > uy1 ? q->y0 - uy1 : 0;
            k = (dx > dy ? dx : dy) <= NEAR_DIST * size;
        }
        keep[j] = (uint8_t)k;
    }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        if (lab[i] && !keep[lab[i] - 1]) {
            m[i] = M_NONE;
        }
    }
    free(keep);
    free(c);
    free(parent);
    return NN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Choices                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Whether at least CLEAN_BORDER of the border's luminance is exactly `level` (0 or 1). */
static int clean_border(const uint8_t *src, int w, int h, int channels, float level)
{
    size_t n = 0, same = 0;
    FOR_BORDER(w, h, i, {
        n++;
        same += gray(src, i, channels, PROJ_LUMA) == level;
    });
    return same >= CLEAN_BORDER * n;
}

/* Dark ink on light paper (1) or light ink on a dark ground (0). Ink is the minority of the
 * pixels wherever it is, so inside each block of 1/POL_BLOCKS of the longer side (larger than
 * the paper grid's, so that even heavy strokes are a minority; sampled every step-th pixel)
 * it pulls the block's extreme percentile away from its median on its own side: the side
 * with more of that pull over all blocks wins. A shadow's or a ruling's edge pulls both ways,
 * a global rule (the border's level, say) is fooled by a shadow over half the page. An image
 * where nothing deviates falls back to the border's mean level. */
static int dark_on_light(const uint8_t *src, int w, int h, int channels, int step)
{
    double below = 0, above = 0;
    int longer = w > h ? w : h, bs = (longer + POL_BLOCKS - 1) / POL_BLOCKS;
    bs = bs < BLOCK_MIN ? BLOCK_MIN : bs;
    for (int by = 0; by * bs < h; by++) {
        for (int bx = 0; bx * bs < w; bx++) {
            uint32_t hist[256] = {0}, cnt = 0;
            int y1 = (by + 1) * bs < h ? (by + 1) * bs : h, x1 = (bx + 1) * bs < w ? (bx + 1) * bs : w;
            for (int y = (by * bs + step - 1) / step * step; y < y1; y += step) {
                for (int x = (bx * bs + step - 1) / step * step; x < x1; x += step) {
                    hist[(int)(gray(src, (size_t)y * w + x, channels, PROJ_LUMA) * 255 + 0.5f)]++;
                    cnt++;
                }
            }
            if (!cnt) {
                continue;
            }
            int q[3];
            const double at[3] = {0.02, 0.5, 0.98};
            for (int k = 0; k < 3; k++) {
                uint32_t want = (uint32_t)(at[k] * cnt), acc = 0;
                int b = 0;
                while (b < 255 && acc + hist[b] <= want) {
                    acc += hist[b++];
                }
                q[k] = b;
            }
            below += q[1] - q[0];
            above += q[2] - q[1];
        }
    }
    if (below == above) {
        double border = 0;
        size_t n = 0;
        FOR_BORDER(w, h, i, {
            border += gray(src, i, channels, PROJ_LUMA);
            n++;
        });
        return border / (double)n >= 0.5;
    }
    return below > above;
}

/* The projection with the best ink contrast, judged on a subsample (every step-th pixel):
 * the 99.5th percentile of darkness against each projection's own paper. */
static int choose_projection(enum proj *best, float *scratch, const uint8_t *src, int w, int h,
                             int channels, int invert, struct paper *pp, int step)
{
    *best = PROJ_LUMA;
    if (channels < 3) {
        return NN_OK;
    }
    float score[PROJ_N];
    uint32_t *hist = malloc(sizeof(uint32_t) * DBINS);
    if (!hist) {
        return NN_ENOMEM;
    }
    for (int p = 0; p < PROJ_N; p++) {
        for (int y = 0; y < h; y += step) {
            for (int x = 0; x < w; x += step) {
                size_t i = (size_t)y * w + x;
                float v = gray(src, i, channels, (enum proj)p);
                scratch[i] = invert ? 1.0f - v : v;
            }
        }
        paper_estimate(pp, scratch, w, h, step);
        darkness(scratch, scratch, w, h, pp, step);
        memset(hist, 0, sizeof(uint32_t) * DBINS);
        for (int y = 0; y < h; y += step) {
            for (int x = 0; x < w; x += step) {
                int b = (int)(scratch[(size_t)y * w + x] * DBINS);
                hist[b < DBINS ? b : DBINS - 1]++;
            }
        }
        score[p] = hist_quantile(hist, 0, DBINS, 0.995);
    }
    free(hist);
    for (int p = 1; p < PROJ_N; p++) {
        if (score[p] > 1.15f * score[*best] + 0.02f) {
            *best = (enum proj)p;
        }
    }
    return NN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Public API                                                                                */
/* ---------------------------------------------------------------------------------------- */

/*
 * See the file comment for the steps. A clean image (at least 90% of its border exactly white,
 * or exactly black, as a canvas export or a synthetic image is) takes the exact old path:
 * ink = 1 - luminance (white ground) or luminance (black ground).
 * Errors: NN_EINVAL (NULL, channels outside 1..4), NN_ERANGE (a side outside
 * 1..NN_IMAGE_MAX_SIDE), NN_ENOMEM. Thread-safe; allocates about 5 bytes per pixel of scratch,
 * freed before it returns.
 */
int nn_image_from_pixels8(float *dst, const uint8_t *src, int w, int h, int channels)
{
    if (!dst || !src || channels < 1 || channels > 4) {
        return NN_EINVAL;
    }
    if (w < 1 || w > NN_IMAGE_MAX_SIDE || h < 1 || h > NN_IMAGE_MAX_SIDE) {
        return NN_ERANGE;
    }
    size_t n = (size_t)w * h;
    if (clean_border(src, w, h, channels, 1.0f) || clean_border(src, w, h, channels, 0.0f)) {
        int invert = clean_border(src, w, h, channels, 1.0f);
        switch (channels) { /* one loop per channel count, so that gray's tests fold away */
        case 1: project(dst, src, n, 1, PROJ_LUMA, invert); break;
        case 2: project(dst, src, n, 2, PROJ_LUMA, invert); break;
        case 3: project(dst, src, n, 3, PROJ_LUMA, invert); break;
        default: project(dst, src, n, 4, PROJ_LUMA, invert); break;
        }
        return NN_OK;
    }

    struct paper pp = {0};
    uint8_t *m = NULL;
    int32_t *lab = NULL;
    int rc = paper_new(&pp, w, h);
    if (rc < 0) {
        goto fail;
    }
    int step = 1; /* the subsample for the choices: at most 65536 pixels */
    while (n / ((size_t)step * step) > 65536) {
        step++;
    }
    int invert = !dark_on_light(src, w, h, channels, step); /* the ground is kept light */
    enum proj p;
    rc = choose_projection(&p, dst, src, w, h, channels, invert, &pp, step);
    if (rc < 0) {
        goto fail;
    }
    switch (channels) {
    case 1: project(dst, src, n, 1, p, invert); break;
    case 2: project(dst, src, n, 2, p, invert); break;
    case 3: project(dst, src, n, 3, p, invert); break;
    default: project(dst, src, n, 4, p, invert); break;
    }
    paper_estimate(&pp, dst, w, h, 1);
    darkness(dst, dst, w, h, &pp, 1);

    struct levels lv;
    rc = find_levels(&lv, dst, w, h, 1, paper_median(&pp));
    if (rc < 0) {
        goto fail;
    }
    if (rc == 0) { /* nothing stands out of the paper: blank */
        memset(dst, 0, n * sizeof(*dst));
        rc = NN_OK;
        goto fail;
    }
    m = malloc(n);
    lab = malloc(sizeof(int32_t) * n);
    if (!m || !lab) {
        rc = NN_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        m[i] = dst[i] >= lv.strong ? M_STRONG : dst[i] >= lv.weak ? M_WEAK : M_NONE;
    }
    remove_lines(m, w, h, 0);
    remove_lines(m, w, h, 1);
    rc = drop_clutter(m, lab, w, h);
    if (rc < 0) {
        goto fail;
    }
    float scale = 1.0f / (lv.ink - lv.weak);
    for (size_t i = 0; i < n; i++) {
        float v = m[i] ? (dst[i] - lv.weak) * scale : 0.0f;
        dst[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    rc = NN_OK;
fail:
    free(lab);
    free(m);
    free(pp.level);
    return rc;
}
