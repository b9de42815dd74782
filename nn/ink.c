/*
 * ink.c - ink from real paper: 8-bit pixels of a photo, a scan or a drawing to ink in [0,1].
 *
 * A drawing exported from a canvas has an exactly uniform background, and its ink is plain
 * 1 - luminance (or luminance, for MNIST's light-on-dark polarity); such an image takes that
 * exact path. A photo of paper does not: the paper is grey, cream or coloured, the light falls
 * off across the page, there are shadows, JPEG noise, specks, notebook rulings. For those:
 *
 *   0. Preview: the choices below are made on a preview of at most 65536 pixels, each the
 *      mean of a block of the image (the image itself when it is that small).
 *   1. Projection: the gray channel mix with the best ink contrast (luminance, or the red,
 *      green or blue channel alone: blue ballpoint is darkest in red, red ruled lines vanish
 *      there), luminance preferred on a near tie.
 *   2. Polarity (dark ink on paper, or white chalk on a dark board, which is inverted first):
 *      grey-scale top-hats, which a shadow's edge does not move, where they are clear; else
 *      the pull of block percentiles away from their medians (see dark_on_light).
 *   3. Background: the paper's level in blocks of about 1/40 of the longer side (each block's
 *      90th percentile, so that strokes thinner than a block vanish), then a grey-scale
 *      closing of that grid (max then min over squares of blocks: dark features narrower
 *      than the square, i.e. strokes, are filled, while step edges such as a shadow's are
 *      kept), bilinear between block centres. The square is 9x9 blocks on the preview, where
 *      the strokes are measured; the image gets one just wide enough for them, since a wider
 *      one also fills a shadow's wedge or corner and its paper reads as ink. Darkness is the
 *      ratio d = 1 - v / paper: light is multiplicative, so a gradient or a shadow cancels;
 *      a pixel as light as the darkest paper around it, within a few percent, is taken as
 *      that paper (the dark side of a shadow's edge, where the interpolation mixes in the lit
 *      side). Dev paper set, shadows: 94.0% read right before these three, 97.7% after.
 *      Around the sheet: blocks of another colour than the paper that reach the image's
 *      border (a wooden table, a hand) are not paper: their darkness is cleared (see
 *      find_off_paper).
 *   4. Levels: paper noise from the spread of d below its median; the ink's own level as the
 *      98th percentile of what stands above the noise; a strong threshold between paper and
 *      ink by Otsu's method (1979) on that part of the histogram, and a weak one below it
 *      (hysteresis: faint anti-aliased edges are kept only where they touch strong ink).
 *   5. Clutter: long thin straight lines (ruled and squared paper, margins) are removed where
 *      no stroke continues across them, so a 1 or a 7's bar lying on a line survives; then
 *      connected components (8-connectivity) with no strong pixel, or small and away from the
 *      digit (specks, dust), are dropped.
 *   6. Output: (d - weak) / (ink level - weak), clamped: paper 0, the ink's own level 1, the
 *      anti-aliasing in between.
 * Cost: about ten passes over the image and 5 bytes of scratch per pixel (mask and labels).
 */
#include "nn_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CLEAN_BORDER 0.9 /* fraction of border pixels exactly white (or black) for "clean" */
#define BLOCKS 40        /* blocks along the longer side for the paper estimate */
#define BLOCK_MIN 4      /* smallest block side, pixels */
#define POL_MARGIN 0.02f /* top-hat counted above twice its median and this */
#define POL_CLEAR 1.5    /* the top-hat vote decides when one side has this times the other */
#define POL_BLOCKS 3     /* blocks along the longer side for the block vote */
#define MAXF(a, b) ((a) > (b) ? (a) : (b)) /* fmaxf and fminf are calls without -ffast-math */
#define MINF(a, b) ((a) < (b) ? (a) : (b))
#define PREVIEW_PIXELS 65536 /* the choices are made on a preview of at most this many pixels */
#define TOPHAT_PIXELS 16384  /* ... the top-hat vote on every other of its pixels above this */
#define OFF_PAPER_TOL 0.03f /* a block this far from the paper's chromaticity is not paper ... */
#define OFF_PAPER_LIT 0.35f /* ... judged when its brightest quarter is this bright of its level */
#define OFF_PAPER_DARK 0.9f /* ... and at most this bright of the paper ... */
#define OFF_PAPER_BORDER 0.15 /* ... cleared when such blocks hold this much of the border */
#define PROJ_MARGIN 1.3f  /* a channel replaces luminance when its contrast is this many ... */
#define PROJ_ABOVE 0.05f  /* ... times luminance's and this much more */
#define BLOCK_PCT 0.90   /* percentile of a block taken as its paper level */
#define CLOSE_R 4        /* closing radius, blocks */
#define SHADOW_TOL 0.06f /* a pixel this close to its darkest neighbouring paper may be paper */
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

/* Where pixel column x lies between block centres: columns c0, c1, weight fx on c1. */
struct grid_col {
    int c0, c1;
    float fx;
};

/* The paper-level grid of v (w,h): gw x gh blocks of side bs. */
struct paper {
    int bs, gw, gh;
    float *level;          /* (gh, gw) */
    float *low;            /* (gh, gw): the lowest level of each block's 3x3 neighbourhood */
    float *row, *row_low;  /* w each: a pixel row of level (interpolated) and of low */
    float *gcol;           /* 2 gw: one grid row of level and of low, between two block rows */
    struct grid_col *cols; /* w */
};

static void grid_pos(int p, int bs, int g, int *i0, int *i1, float *f);

static int paper_new(struct paper *pp, int w, int h)
{
    int longer = w > h ? w : h;
    int bs = (longer + BLOCKS - 1) / BLOCKS;
    pp->bs = bs < BLOCK_MIN ? BLOCK_MIN : bs;
    pp->gw = (w + pp->bs - 1) / pp->bs;
    pp->gh = (h + pp->bs - 1) / pp->bs;
    size_t g = (size_t)pp->gw * pp->gh;
    pp->level = malloc(sizeof(float) * (3 * g + 2 * (size_t)w + 2 * (size_t)pp->gw));
    pp->cols = malloc(sizeof(*pp->cols) * (size_t)w);
    if (!pp->level || !pp->cols) {
        free(pp->level);
        free(pp->cols);
        pp->level = NULL;
        pp->cols = NULL;
        return NN_ENOMEM;
    }
    pp->low = pp->level + 2 * g;
    pp->row = pp->low + g;
    pp->row_low = pp->row + w;
    pp->gcol = pp->row_low + w;
    for (int x = 0; x < w; x++) {
        grid_pos(x, pp->bs, pp->gw, &pp->cols[x].c0, &pp->cols[x].c1, &pp->cols[x].fx);
    }
    return NN_OK;
}

static void paper_free(struct paper *pp)
{
    free(pp->level);
    free(pp->cols);
}


/* The paper levels of v (w,h), closed with radius close_r (blocks). */
static void paper_estimate(struct paper *pp, const float *v, int w, int h, int close_r)
{
    int gw = pp->gw, gh = pp->gh, bs = pp->bs;
    float *lv = pp->level, *tmp = pp->level + (size_t)gw * gh;
    for (int by = 0; by < gh; by++) {
        for (int bx = 0; bx < gw; bx++) {
            uint32_t hist[256] = {0}, cnt = 0;
            int y1 = (by + 1) * bs < h ? (by + 1) * bs : h, x1 = (bx + 1) * bs < w ? (bx + 1) * bs : w;
            for (int y = by * bs; y < y1; y++) {
                for (int x = bx * bs; x < x1; x++) {
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
    /* Closing: dilation (max) then erosion (min) over (2 close_r + 1)^2 blocks, each square
     * done directly (grids are at most BLOCKS x BLOCKS). */
    for (int pass = 0; pass < 2; pass++) {
        const float *in = pass ? tmp : lv;
        float *out = pass ? lv : tmp;
        for (int by = 0; by < gh; by++) {
            for (int bx = 0; bx < gw; bx++) {
                float m = in[by * gw + bx];
                for (int dy = -close_r; dy <= close_r; dy++) {
                    for (int dx = -close_r; dx <= close_r; dx++) {
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
    for (int by = 0; by < gh; by++) {
        for (int bx = 0; bx < gw; bx++) {
            float m = lv[by * gw + bx];
            for (int yy = by - 1; yy <= by + 1; yy++) {
                for (int xx = bx - 1; xx <= bx + 1; xx++) {
                    if (yy >= 0 && yy < gh && xx >= 0 && xx < gw && lv[yy * gw + xx] < m) {
                        m = lv[yy * gw + xx];
                    }
                }
            }
            pp->low[by * gw + bx] = m;
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
static void grid_pos(int p, int bs, int g, int *i0, int *i1, float *f)
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

/* Pixel row y of the paper level (bilinear between block centres) into pp->row, and of the
 * lowest level around (the least of the four blocks it lies between) into pp->row_low. The
 * lerps are written a + (b - a) f, exact when a == b, so a uniform paper gives an exact level. */
static void paper_rows(struct paper *pp, int y, int w)
{
    int r0, r1, gw = pp->gw;
    float fy, *lv = pp->gcol, *lo = pp->gcol + gw;
    grid_pos(y, pp->bs, pp->gh, &r0, &r1, &fy);
    for (int c = 0; c < gw; c++) {
        float a = pp->level[r0 * gw + c], b = pp->level[r1 * gw + c];
        float u = pp->low[r0 * gw + c], v = pp->low[r1 * gw + c];
        lv[c] = a + (b - a) * fy;
        lo[c] = u < v ? u : v;
    }
    for (int x = 0; x < w; x++) {
        const struct grid_col *g = &pp->cols[x];
        float a = lv[g->c0], b = lv[g->c1], u = lo[g->c0], v = lo[g->c1];
        pp->row[x] = a + (b - a) * g->fx;
        pp->row_low[x] = u < v ? u : v;
    }
}

/* d[i] = 1 - v[i] / paper level at i, clamped to [0,1] (in place when d == v). */
static void darkness(float *d, const float *v, int w, int h, struct paper *pp)
{
    for (int y = 0; y < h; y++) {
        paper_rows(pp, y, w);
        for (int x = 0; x < w; x++) {
            float p = pp->row[x];
            p = p < 1.0f / 255.0f ? 1.0f / 255.0f : p;
            float q = 1.0f - v[(size_t)y * w + x] / p;
            d[(size_t)y * w + x] = q < 0.0f ? 0.0f : q > 1.0f ? 1.0f : q;
        }
    }
}

/* Where a shadow's edge crosses the grid, the interpolated paper level on its dark side is
 * that of the lit paper: its paper would read as ink. A pixel of d (w,h) that is within
 * SHADOW_TOL of the darkest paper level around it (the 3x3-block minimum at the four blocks
 * it is interpolated from) may be that paper: its darkness is taken against that level
 * instead, when that is less. Uniform paper is unchanged. Done after the levels are found,
 * since it narrows the paper's noise. */
static void clip_shadow(float *d, int w, int h, struct paper *pp)
{
    for (int y = 0; y < h; y++) {
        paper_rows(pp, y, w);
        for (int x = 0; x < w; x++) {
            float *q = &d[(size_t)y * w + x], p = pp->row[x], lo = pp->row_low[x];
            if (*q == 0.0f || lo >= p) {
                continue;
            }
            p = p < 1.0f / 255.0f ? 1.0f / 255.0f : p;
            lo = lo < 1.0f / 255.0f ? 1.0f / 255.0f : lo;
            float val = p * (1.0f - *q); /* the pixel, as darkness() had it */
            if (val >= lo * (1.0f - SHADOW_TOL)) {
                float qlo = 1.0f - val / lo;
                *q = qlo < *q ? (qlo < 0.0f ? 0.0f : qlo) : *q;
            }
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

/* Levels of d (w,h) on paper of typical level `paper`; returns 0 when nothing
 * stands out of the paper, relatively and absolutely. */
static int find_levels(struct levels *lv, const float *d, int w, int h, float paper)
{
    uint32_t *hist = calloc(DBINS, sizeof *hist);
    if (!hist) {
        return NN_ENOMEM;
    }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        int b = (int)(d[i] * DBINS);
        hist[b < DBINS ? b : DBINS - 1]++;
    }
    /* The paper's noise: median and spread of the pixels below Otsu's split of the whole
     * histogram, so that ink covering much of the image (a big digit in a tight crop) does not
     * count as noise; the spread from the median's lower side alone (median - first quartile
     * = 0.6745 sigma), since faint lines of squared paper and a pencil's halo are on the upper
     * side (the median absolute deviation took them in: dev paper set, 16 pencil digits on
     * squared paper read as blank, 6 now). */
    int split = (int)(otsu(hist, 0) * DBINS);
    split = split < 1 ? 1 : split;
    float med = hist_quantile(hist, 0, split, 0.5);
    float q25 = hist_quantile(hist, 0, split, 0.25);
    float sigma = (med - q25) / 0.6745f;
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

/* The typical stroke width of the ink in m, in pixels: twice its area over the length of its
 * outline (a stroke of width W and length L has area W L and an outline of about 2 L). */
static float stroke_width(const uint8_t *m, int w, int h)
{
    size_t area = 0, edge = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (!m[i]) {
                continue;
            }
            area++;
            edge += (x == 0 || !m[i - 1]) + (x == w - 1 || !m[i + 1]);
            edge += (y == 0 || !m[i - (size_t)w]) + (y == h - 1 || !m[i + (size_t)w]);
        }
    }
    /* edge counts pixel sides, horizontal and vertical: a straight outline of length L has L
     * of them, a diagonal one about 1.4 L; 2 area / (edge / 1.2) splits the difference */
    return edge ? 2.4f * (float)area / (float)edge : 0.0f;
}

/* The median of v[0..n-1] (reordered). */
static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float median_float(float *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    return v[n / 2];
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

/* Running maximum (or minimum) over windows of 2r + 1 of the n values at x[0], x[stride], ...,
 * windows cut at the ends; van Herk's and Gil and Werman's method: prefix and suffix extremes
 * within blocks of 2r + 1, three comparisons a value whatever r. buf holds 3 (n + 2r) floats. */
static void run_extreme(float *x, size_t stride, int n, int r, int is_max, float *buf)
{
    int k = 2 * r + 1, np = n + 2 * r;
    float pad = is_max ? -INFINITY : INFINITY, *a = buf, *pre = buf + np, *suf = buf + 2 * np;
    for (int i = 0; i < np; i++) {
        a[i] = i < r || i >= n + r ? pad : x[(size_t)(i - r) * stride];
    }
    for (int b0 = 0; b0 < np; b0 += k) {
        int b1 = b0 + k < np ? b0 + k : np;
        pre[b0] = a[b0];
        for (int i = b0 + 1; i < b1; i++) {
            pre[i] = is_max ? MAXF(pre[i - 1], a[i]) : MINF(pre[i - 1], a[i]);
        }
        suf[b1 - 1] = a[b1 - 1];
        for (int i = b1 - 2; i >= b0; i--) {
            suf[i] = is_max ? MAXF(suf[i + 1], a[i]) : MINF(suf[i + 1], a[i]);
        }
    }
    for (int i = 0; i < n; i++) { /* the window [i, i + 2r] of a */
        float u = suf[i], v = pre[i + 2 * r];
        x[(size_t)i * stride] = is_max ? MAXF(u, v) : MINF(u, v);
    }
}

/* Grey-scale dilation (is_max) or erosion of img (w,h) by a (2r + 1)^2 square, in place. */
static void square_extreme(float *img, int w, int h, int r, int is_max, float *buf)
{
    for (int y = 0; y < h; y++) {
        run_extreme(img + (size_t)y * w, 1, w, r, is_max, buf);
    }
    for (int x = 0; x < w; x++) {
        run_extreme(img + x, (size_t)w, h, r, is_max, buf);
    }
}

/* The top-hat vote, from the luminance sampled every step-th pixel. Ink is a thin mark: a
 * grey-scale closing (max then min over a square wider than the stroke) fills dark strokes
 * and an opening (min then max) removes light ones, while both keep a step edge or a slope as
 * it is: the edge of a shadow over half the page, or its penumbra, counts for neither side.
 * dark_mass and light_mass are the masses of the two top-hats (closing - image, image -
 * opening) above the paper's own texture, summed over squares of 1/32, 1/16 and 1/8 of the
 * shorter side (a digit is no taller than that; on a wide photo of a number, squares of the
 * longer side took the gaps between digits for light marks) since the stroke width is not
 * known yet. Strokes heavier than the squares, or the bays between them, fool it: it only
 * decides when one side clearly outweighs the other. */
static int tophat_vote(double *dark_mass, double *light_mass, const uint8_t *src, int w, int h,
                       int channels, int step)
{
    int sw = (w + step - 1) / step, sh = (h + step - 1) / step, longer = sw > sh ? sw : sh;
    int shorter = sw < sh ? sw : sh;
    size_t n = (size_t)sw * sh;
    /* three images, and run_extreme's 3 (n + 2r) for the largest square, r = shorter / 16 */
    float *img = malloc(sizeof(float) * (3 * n + 3 * (size_t)(longer + shorter / 8 + 2)));
    if (!img) {
        return NN_ENOMEM;
    }
    float *a = img + n, *b = img + 2 * n, *buf = img + 3 * n;
    for (int y = 0; y < sh; y++) {
        for (int x = 0; x < sw; x++) {
            img[(size_t)y * sw + x] = gray(src, (size_t)y * step * w + (size_t)x * step, channels,
                                           PROJ_LUMA);
        }
    }
    double dark = 0, light = 0;
    for (int div = 32; div >= 8; div /= 2) {
        int r = shorter / (2 * div);
        if (r < 1) {
            continue;
        }
        memcpy(a, img, sizeof(float) * n);
        square_extreme(a, sw, sh, r, 1, buf);
        square_extreme(a, sw, sh, r, 0, buf); /* closing */
        memcpy(b, img, sizeof(float) * n);
        square_extreme(b, sw, sh, r, 0, buf);
        square_extreme(b, sw, sh, r, 1, buf); /* opening */
        /* paper's own texture and noise are in both top-hats at every pixel: only what
         * stands well above their typical (median) level counts */
        uint32_t hd[256] = {0}, hl[256] = {0};
        for (size_t i = 0; i < n; i++) {
            a[i] -= img[i];
            b[i] = img[i] - b[i];
            hd[(int)(a[i] * 255.0f)]++;
            hl[(int)(b[i] * 255.0f)]++;
        }
        int md = 0, ml = 0;
        for (uint32_t acc = 0; md < 255 && (acc += hd[md]) <= n / 2; md++) {
        }
        for (uint32_t acc = 0; ml < 255 && (acc += hl[ml]) <= n / 2; ml++) {
        }
        float t = 2.0f * (md > ml ? md : ml) / 255.0f + POL_MARGIN;
        for (size_t i = 0; i < n; i++) {
            dark += a[i] > t ? a[i] - t : 0.0f;
            light += b[i] > t ? b[i] - t : 0.0f;
        }
    }
    free(img);
    *dark_mass = dark;
    *light_mass = light;
    return NN_OK;
}

/* The block vote. Ink is the minority of the pixels wherever it is, so inside each block of
 * 1/POL_BLOCKS of the longer side (larger than the paper grid's, so that even heavy strokes
 * are a minority) it pulls the block's extreme percentile away from its median on its own side: the side
 * with more of that pull over all blocks wins. Heavy strokes do not fool it, but a shadow
 * covering most of a block does (it pulls towards its minority side). An image where nothing
 * deviates falls back to the border's mean level. */
static int block_vote(const uint8_t *src, int w, int h, int channels)
{
    double below = 0, above = 0;
    int longer = w > h ? w : h, bs = (longer + POL_BLOCKS - 1) / POL_BLOCKS;
    bs = bs < BLOCK_MIN ? BLOCK_MIN : bs;
    for (int by = 0; by * bs < h; by++) {
        for (int bx = 0; bx * bs < w; bx++) {
            uint32_t hist[256] = {0}, cnt = 0;
            int y1 = (by + 1) * bs < h ? (by + 1) * bs : h, x1 = (bx + 1) * bs < w ? (bx + 1) * bs : w;
            for (int y = by * bs; y < y1; y++) {
                for (int x = bx * bs; x < x1; x++) {
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

/* Dark ink on light paper (1) or light ink on a dark ground (0), or NN_ENOMEM: the top-hat
 * vote where it is clear (one side at least POL_CLEAR times the other), else the block vote.
 * On the dev paper set (all dark on light) the block vote alone got 27 of 5000 wrong, nearly
 * all under a shadow; the top-hat vote alone got 15 wrong, heavy strokes. Combined, on the
 * previews the library makes, with the top-hat deciding from a ratio of 1.1 / 1.5 / 2 / 3:
 * 15 / 8 / 16 / 21 wrong, and none of the 250 photos of numbers (with squares of the longer
 * side: 8 / 8 / 12 / 20, and 34 / 2 / 0 / 0 numbers); the same counts on the same photos
 * inverted (light ink on a dark ground), so the choice favours neither polarity. */
static int dark_on_light(const uint8_t *src, int w, int h, int channels)
{
    double dark, light;
    int step = (size_t)w * h > TOPHAT_PIXELS ? 2 : 1;
    int rc = tophat_vote(&dark, &light, src, w, h, channels, step);
    if (rc < 0) {
        return rc;
    }
    if (dark > POL_CLEAR * light || light > POL_CLEAR * dark) {
        return dark > light;
    }
    return block_vote(src, w, h, channels);
}

/* The projection with the best ink contrast (judged on the preview): the 99.5th percentile of
 * darkness against each projection's own paper; luminance unless another beats it by
 * PROJ_MARGIN times and PROJ_ABOVE. That percentile can be won by rulings or by the chroma
 * noise of a channel in which tinted paper is dark: with a margin of 1.15x + 0.02 a "50" in
 * pencil on yellow ruled paper got the blue channel, where pencil has almost no contrast, and
 * read as blank. Dev sets, 1.15x + 0.02 / 1.3x + 0.05 / luminance always: paper 4945 / 4947 /
 * 4947 of 5000 read right, separated numbers 352 / 353 / 353 of 374. */
static int choose_projection(enum proj *best, float *scratch, const uint8_t *src, int w, int h,
                             int channels, int invert, struct paper *pp)
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
        for (size_t i = 0; i < (size_t)w * h; i++) {
            float v = gray(src, i, channels, (enum proj)p);
            scratch[i] = invert ? 1.0f - v : v;
        }
        paper_estimate(pp, scratch, w, h, CLOSE_R);
        darkness(scratch, scratch, w, h, pp);
        memset(hist, 0, sizeof(uint32_t) * DBINS);
        for (size_t i = 0; i < (size_t)w * h; i++) {
            int b = (int)(scratch[i] * DBINS);
            hist[b < DBINS ? b : DBINS - 1]++;
        }
        score[p] = hist_quantile(hist, 0, DBINS, 0.995);
    }
    free(hist);
    for (int p = 1; p < PROJ_N; p++) {
        if (score[p] > PROJ_MARGIN * score[*best] + PROJ_ABOVE) {
            *best = (enum proj)p;
        }
    }
    return NN_OK;
}

/* dst (w/step x h/step rounded up, channels as src): each pixel the mean of a step x step
 * block of src (w,h), fewer pixels at the right and bottom edges. Inlined per channel count. */
static inline __attribute__((always_inline)) void box_shrink_c(uint8_t *dst, const uint8_t *src,
                                                               int w, int h, int channels,
                                                               int step)
{
    int sw = (w + step - 1) / step, sh = (h + step - 1) / step;
    for (int by = 0; by < sh; by++) {
        int y0 = by * step, y1 = y0 + step < h ? y0 + step : h;
        for (int bx = 0; bx < sw; bx++) {
            int x0 = bx * step, x1 = x0 + step < w ? x0 + step : w;
            uint32_t sum[4] = {0}, cnt = (uint32_t)((y1 - y0) * (x1 - x0));
            for (int y = y0; y < y1; y++) {
                const uint8_t *row = src + ((size_t)y * w + x0) * channels;
                for (int x = 0; x < x1 - x0; x++) {
                    for (int c = 0; c < channels; c++) {
                        sum[c] += row[x * channels + c];
                    }
                }
            }
            uint8_t *o = dst + ((size_t)by * sw + bx) * channels;
            for (int c = 0; c < channels; c++) {
                o[c] = (uint8_t)((sum[c] + cnt / 2) / cnt);
            }
        }
    }
}

static void box_shrink(uint8_t *dst, const uint8_t *src, int w, int h, int channels, int step)
{
    switch (channels) {
    case 1: box_shrink_c(dst, src, w, h, 1, step); break;
    case 2: box_shrink_c(dst, src, w, h, 2, step); break;
    case 3: box_shrink_c(dst, src, w, h, 3, step); break;
    default: box_shrink_c(dst, src, w, h, 4, step); break;
    }
}

/* Around the sheet (found on the preview, applied to every pass): a photo of paper often
 * shows the table (or a hand, a book) around it, whose texture (wood grain) reads as ink
 * against its own level. Light changes how bright the paper is but hardly its colour, and the
 * table is another colour: each block's colour (the mean chromaticity of its brightest
 * quarter, paper between the strokes where there is some) is compared with the paper's (the
 * median over the blocks). Blocks further than OFF_PAPER_TOL, darker than the paper, that connect to the
 * image's border, when they hold OFF_PAPER_BORDER of it (a coloured stroke running off the
 * edge does not), and the blocks beside them (across the sheet's edge the paper level mixes
 * in the table's) are not paper. Colour images only: a grey table under white paper is not
 * told apart. find_off_paper returns NN_OK or NN_ENOMEM. */
struct off_paper {
    uint8_t *mask;    /* gw x gh blocks of side pixels: 1 = not paper */
    int side, gw, gh; /* of the grid it was found on */
    int any;
};

static int find_off_paper(struct off_paper *op, const uint8_t *src, int w, int h, int channels,
                          const struct paper *pp)
{
    int gw = pp->gw, gh = pp->gh, bs = pp->bs, ng = gw * gh;
    op->side = bs, op->gw = gw, op->gh = gh, op->any = 0;
    op->mask = malloc((size_t)ng);
    if (!op->mask) {
        return NN_ENOMEM;
    }
    memset(op->mask, 0, (size_t)ng);
    if (channels < 3) {
        return NN_OK;
    }
    float *cr = malloc(sizeof(float) * 3 * (size_t)ng);
    uint8_t *off = op->mask;
    int *stack = malloc(sizeof(int) * (size_t)ng);
    if (!cr || !stack) {
        free(cr), free(stack);
        return NN_ENOMEM;
    }
    float *cg = cr + ng, *lum = cr + 2 * (size_t)ng;
    for (int b = 0; b < ng; b++) {
        int bx = b % gw, by = b / gw;
        int y1 = (by + 1) * bs < h ? (by + 1) * bs : h, x1 = (bx + 1) * bs < w ? (bx + 1) * bs : w;
        uint32_t hl[256] = {0}, all = 0;
        for (int y = by * bs; y < y1; y++) {
            for (int x = bx * bs; x < x1; x++) {
                hl[(int)(gray(src, (size_t)y * w + x, channels, PROJ_LUMA) * 255.0f + 0.5f)]++;
                all++;
            }
        }
        int q = 255;
        for (uint32_t acc = 0; q > 0 && (acc += hl[q]) < all / 4; q--) {
        }
        double sr = 0, sg = 0, sb = 0;
        for (int y = by * bs; y < y1; y++) {
            for (int x = bx * bs; x < x1; x++) {
                size_t i = (size_t)y * w + x;
                if (gray(src, i, channels, PROJ_LUMA) * 255.0f + 0.5f >= (float)q) {
                    const uint8_t *c = src + i * (size_t)channels;
                    sr += c[0], sg += c[1], sb += c[2];
                }
            }
        }
        double sum = sr + sg + sb;
        /* a dark block (ink over all of it) has no colour to judge: kept */
        int lit = q >= OFF_PAPER_LIT * 255.0f * pp->level[b];
        cr[b] = sum > 0 && lit ? (float)(sr / sum) : -1.0f;
        cg[b] = sum > 0 && lit ? (float)(sg / sum) : -1.0f;
        lum[b] = (float)q / 255.0f;
    }
    /* The paper's colour: the median chromaticity of the blocks judged (the paper fills most
     * of a photo of paper; the brightest blocks would make a white desk the paper when a
     * sticky note fills the frame), and its brightness: the median of those blocks near that
     * colour. A block of another colour is off the paper only if it is also darker (a table,
     * a hand; paper is the brightest surface in a photo of paper), so a sheet on a table
     * larger than it stays paper, and nothing is cleared. */
    float *ref = malloc(sizeof(float) * 2 * (size_t)ng);
    if (!ref) {
        free(cr), free(stack);
        return NN_ENOMEM;
    }
    int nr = 0;
    for (int b = 0; b < ng; b++) {
        if (cr[b] >= 0) {
            ref[nr] = cr[b], ref[ng + nr] = cg[b], nr++;
        }
    }
    if (nr == 0) {
        free(cr), free(stack), free(ref);
        return NN_OK;
    }
    float rr = median_float(ref, nr), rg = median_float(ref + ng, nr);
    int nl = 0;
    for (int b = 0; b < ng; b++) {
        float dr = cr[b] - rr, dg = cg[b] - rg;
        if (cr[b] >= 0 && dr * dr + dg * dg <= OFF_PAPER_TOL * OFF_PAPER_TOL) {
            ref[nl++] = lum[b];
        }
    }
    float paper_lum = nl ? median_float(ref, nl) : 1.0f;
    free(ref);
    for (int b = 0; b < ng; b++) {
        float dr = cr[b] - rr, dg = cg[b] - rg;
        off[b] = cr[b] >= 0 && dr * dr + dg * dg > OFF_PAPER_TOL * OFF_PAPER_TOL &&
                 lum[b] < OFF_PAPER_DARK * paper_lum;
    }
    /* keep only the off-paper blocks connected to the border (2 = reached), and only when
     * they hold OFF_PAPER_BORDER of the border: a table around the sheet, not a coloured
     * stroke running off the edge */
    int sp = 0, border = 0;
    for (int b = 0; b < ng; b++) {
        int bx = b % gw, by = b / gw;
        if (bx == 0 || by == 0 || bx == gw - 1 || by == gh - 1) {
            border++;
            if (off[b] == 1) {
                off[b] = 2;
                stack[sp++] = b;
            }
        }
    }
    if (sp < OFF_PAPER_BORDER * border) {
        memset(off, 0, (size_t)ng);
        free(cr), free(stack);
        return NN_OK;
    }
    while (sp > 0) {
        int b = stack[--sp], bx = b % gw, by = b / gw;
        const int nb[4][2] = {{bx - 1, by}, {bx + 1, by}, {bx, by - 1}, {bx, by + 1}};
        for (int k = 0; k < 4; k++) {
            int x = nb[k][0], y = nb[k][1];
            if (x >= 0 && y >= 0 && x < gw && y < gh && off[y * gw + x] == 1) {
                off[y * gw + x] = 2;
                stack[sp++] = y * gw + x;
            }
        }
    }
    /* and the blocks beside them */
    for (int b = 0; b < ng; b++) {
        int bx = b % gw, by = b / gw;
        for (int k = 0; k < 4 && off[b] == 0; k++) {
            int x = bx + (k == 0) - (k == 1), y = by + (k == 2) - (k == 3);
            if (x >= 0 && y >= 0 && x < gw && y < gh && off[y * gw + x] == 2) {
                off[b] = 3;
            }
        }
    }
    for (int b = 0; b < ng; b++) {
        off[b] = off[b] >= 2;
        op->any |= off[b];
    }
    free(cr), free(stack);
    return NN_OK;
}

/* Clears the darkness d (w,h) where op says the image is not paper; the image is `scale`
 * times the one op was found on (each of whose pixels is the mean of scale x scale). */
static void apply_off_paper(float *d, int w, int h, const struct off_paper *op, int scale)
{
    if (!op->any) {
        return;
    }
    int side = op->side * scale;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = op->mask + (size_t)(y / side < op->gh ? y / side : op->gh - 1) * op->gw;
        for (int b = 0; b < op->gw; b++) {
            if (row[b]) {
                int x0 = b * side, x1 = (b + 1) * side < w ? (b + 1) * side : w;
                for (int x = x0; x < x1; x++) {
                    d[(size_t)y * w + x] = 0.0f;
                }
            }
        }
    }
}

/* One extraction of src (w,h) with projection p and a paper closing of radius close_r:
 * darkness into d, the mask of the ink kept (strong or weak) into m, levels into lv. Returns
 * 1, 0 when nothing stands out of the paper, or NN_ENOMEM. lab is w*h scratch. */
static int ink_pass(float *d, uint8_t *m, int32_t *lab, const uint8_t *src, int w, int h,
                    int channels, enum proj p, int invert, int close_r, struct paper *pp,
                    struct levels *lv, struct off_paper *op, int scale)
{
    size_t n = (size_t)w * h;
    switch (channels) { /* one loop per channel count, so that gray's tests fold away */
    case 1: project(d, src, n, 1, p, invert); break;
    case 2: project(d, src, n, 2, p, invert); break;
    case 3: project(d, src, n, 3, p, invert); break;
    default: project(d, src, n, 4, p, invert); break;
    }
    paper_estimate(pp, d, w, h, close_r);
    darkness(d, d, w, h, pp);
    int rc = NN_OK;
    if (!op->mask) { /* the preview's pass finds it, every pass applies it */
        rc = find_off_paper(op, src, w, h, channels, pp);
        if (rc < 0) {
            return rc;
        }
    }
    apply_off_paper(d, w, h, op, scale);
    rc = find_levels(lv, d, w, h, paper_median(pp));
    if (rc <= 0) {
        return rc;
    }
    clip_shadow(d, w, h, pp);
    for (size_t i = 0; i < n; i++) {
        m[i] = d[i] >= lv->strong ? M_STRONG : d[i] >= lv->weak ? M_WEAK : M_NONE;
    }
    remove_lines(m, w, h, 0);
    remove_lines(m, w, h, 1);
    rc = drop_clutter(m, lab, w, h);
    return rc < 0 ? rc : 1;
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

    /* The choices (polarity, projection, closing radius) are made on a preview of at most
     * PREVIEW_PIXELS, each of its pixels the mean of a step x step block. */
    struct paper pp = {0}, pq = {0};
    uint8_t *m = NULL, *small = NULL, *ms = NULL;
    int32_t *lab = NULL;
    float *ds = NULL;
    struct off_paper op = {0};
    int step = 1;
    while (n / ((size_t)step * step) > PREVIEW_PIXELS) {
        step++;
    }
    int sw = (w + step - 1) / step, sh = (h + step - 1) / step;
    size_t ns = (size_t)sw * sh;
    m = malloc(n);
    lab = malloc(sizeof(int32_t) * n);
    int rc = NN_ENOMEM;
    if (!m || !lab) {
        goto fail;
    }
    if (step > 1) {
        small = malloc(ns * (size_t)channels);
        ds = malloc(sizeof(float) * ns);
        ms = malloc(ns);
        if (!small || !ds || !ms) {
            goto fail;
        }
        box_shrink(small, src, w, h, channels, step);
    }
    const uint8_t *pv = step > 1 ? small : src;
    float *pd = step > 1 ? ds : dst;
    uint8_t *pm = step > 1 ? ms : m;
    if ((rc = paper_new(&pq, sw, sh)) < 0) {
        goto fail;
    }
    int dol = dark_on_light(pv, sw, sh, channels);
    if (dol < 0) {
        rc = dol;
        goto fail;
    }
    int invert = !dol; /* the ground is kept light */
    enum proj p;
    if ((rc = choose_projection(&p, pd, pv, sw, sh, channels, invert, &pq)) < 0) {
        goto fail;
    }
    /* The widest closing fills the heaviest strokes, but also a shadow's corner or wedge
     * narrower than it, whose paper then reads as ink: the preview's strokes, found with the
     * widest, give the closing the image gets, just wide enough for them (a dark run of k
     * blocks is filled by a closing of radius k / 2). */
    struct levels lv;
    rc = ink_pass(pd, pm, lab, pv, sw, sh, channels, p, invert, CLOSE_R, &pq, &lv, &op, 1);
    if (rc < 0) {
        goto fail;
    }
    int fit = rc > 0 ? (int)ceilf(stroke_width(pm, sw, sh) / (2.0f * pq.bs)) + 1 : CLOSE_R;
    int close_r = fit < CLOSE_R ? fit : CLOSE_R;
    if (rc > 0 && (step > 1 || close_r < CLOSE_R)) { /* else the preview is the image: done */
        if ((rc = paper_new(&pp, w, h)) < 0) {
            goto fail;
        }
        rc = ink_pass(dst, m, lab, src, w, h, channels, p, invert, close_r, &pp, &lv, &op, step);
        if (rc < 0) {
            goto fail;
        }
    }
    if (rc == 0) { /* nothing stands out of the paper: blank */
        memset(dst, 0, n * sizeof(*dst));
        rc = NN_OK;
        goto fail;
    }
    float scale = 1.0f / (lv.ink - lv.weak);
    for (size_t i = 0; i < n; i++) {
        float v = m[i] ? (dst[i] - lv.weak) * scale : 0.0f;
        dst[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    rc = NN_OK;
fail:
    free(op.mask);
    free(ds);
    free(ms);
    free(small);
    free(lab);
    free(m);
    paper_free(&pq);
    paper_free(&pp);
    return rc;
}
