/*
 * Generated non-digits for the "not a digit" class: scribbles, shapes, stroke-drawn letters,
 * crossing strokes, blobs and noise, drawn with a round pen on a float canvas and normalised
 * as MNIST digits are (nn_image_normalize). Deterministic: image i of a seed depends only on
 * (seed, i). No fonts and no MNIST images are used.
 */
#include "nn_impl.h"

#include <math.h>
#include <string.h>

#define SIDE 56
#define MAX_PTS 64

struct pen {
    float *c;        /* SIDE x SIDE canvas, 1 = ink */
    float ca, sa, s; /* rotation and scale of the local frame ([-1,1] square) */
    float ax, ay;    /* aspect */
    float ox, oy;    /* centre on the canvas */
    float r;         /* pen radius in canvas pixels */
};

static void to_canvas(const struct pen *p, float x, float y, float *cx, float *cy)
{
    x *= p->ax, y *= p->ay;
    *cx = p->ox + p->s * (p->ca * x - p->sa * y);
    *cy = p->oy + p->s * (p->sa * x + p->ca * y);
}

static void seg_canvas(struct pen *p, float x0, float y0, float x1, float y1)
{
    const float r = p->r;
    int lx = (int)floorf(fminf(x0, x1) - r - 1), hx = (int)ceilf(fmaxf(x0, x1) + r + 1);
    int ly = (int)floorf(fminf(y0, y1) - r - 1), hy = (int)ceilf(fmaxf(y0, y1) + r + 1);
    float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = ly < 0 ? 0 : ly; y <= hy && y < SIDE; y++)
        for (int x = lx < 0 ? 0 : lx; x <= hx && x < SIDE; x++) {
            float px = (float)x + 0.5f - x0, py = (float)y + 0.5f - y0;
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0.0f;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy, d = sqrtf(ex * ex + ey * ey);
            float v = r + 0.5f - d;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            if (v > p->c[y * SIDE + x])
                p->c[y * SIDE + x] = v;
        }
}

static void seg(struct pen *p, float x0, float y0, float x1, float y1)
{
    float a, b, c, d;
    to_canvas(p, x0, y0, &a, &b);
    to_canvas(p, x1, y1, &c, &d);
    seg_canvas(p, a, b, c, d);
}

static void polyline(struct pen *p, const float *xy, int n, int closed)
{
    for (int i = 0; i + 1 < n; i++)
        seg(p, xy[2 * i], xy[2 * i + 1], xy[2 * i + 2], xy[2 * i + 3]);
    if (closed && n > 2)
        seg(p, xy[2 * n - 2], xy[2 * n - 1], xy[0], xy[1]);
}

/* Fills the polygon (local coordinates) with 2x2 supersampling. */
static void fill(struct pen *p, const float *xy, int n)
{
    float cx[MAX_PTS], cy[MAX_PTS];
    for (int i = 0; i < n; i++)
        to_canvas(p, xy[2 * i], xy[2 * i + 1], &cx[i], &cy[i]);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int hits = 0;
            for (int sy = 0; sy < 2; sy++)
                for (int sx = 0; sx < 2; sx++) {
                    float px = (float)x + 0.25f + 0.5f * (float)sx;
                    float py = (float)y + 0.25f + 0.5f * (float)sy;
                    int in = 0;
                    for (int i = 0, j = n - 1; i < n; j = i++)
                        if ((cy[i] > py) != (cy[j] > py) &&
                            px < (cx[j] - cx[i]) * (py - cy[i]) / (cy[j] - cy[i]) + cx[i])
                            in = !in;
                    hits += in;
                }
            float v = (float)hits / 4.0f;
            if (v > p->c[y * SIDE + x])
                p->c[y * SIDE + x] = v;
        }
}

static float uni(struct nn_rng *g, float lo, float hi)
{
    return lo + (hi - lo) * nn_rng_uniform(g);
}

static void circle(struct pen *p, float cx, float cy, float r, int n)
{
    float pts[2 * MAX_PTS];
    for (int i = 0; i < n; i++) {
        float t = 6.2831853f * (float)i / (float)n;
        pts[2 * i] = cx + r * cosf(t), pts[2 * i + 1] = cy + r * sinf(t);
    }
    polyline(p, pts, n, 1);
}

/* A smooth random curve: a walk with inertia. */
static void scribble(struct pen *p, struct nn_rng *g, int n)
{
    float pts[2 * MAX_PTS], x = uni(g, -0.5f, 0.5f), y = uni(g, -0.5f, 0.5f);
    float dir = uni(g, 0, 6.2831853f), turn = 0;
    for (int i = 0; i < n; i++) {
        pts[2 * i] = x, pts[2 * i + 1] = y;
        turn = 0.6f * turn + uni(g, -1.4f, 1.4f);
        dir += turn;
        x += 0.22f * cosf(dir), y += 0.22f * sinf(dir);
        if (fabsf(x) > 1) /* bounce back inside */
            dir = 3.1415927f - dir, x = x > 0 ? 1 : -1;
        if (fabsf(y) > 1)
            dir = -dir, y = y > 0 ? 1 : -1;
    }
    polyline(p, pts, n, 0);
}

/*
 * Letter skeletons in a [-1,1] box (y down): strokes separated by NaN-free markers; each stroke
 * is "n x0 y0 x1 y1 ...". Letters that look like digits (O o I l S s Z z G b g q B D) are left
 * out, and so are h and y (an open 4, a 4 or 9).
 */
static const signed char *const LETTERS[] = {
    /* A */ (const signed char[]){3, -8, 10, 0, -10, 8, 10, 2, -5, 2, 5, 2, 0},
    /* E */ (const signed char[]){4, 7, -10, -7, -10, -7, 10, 7, 10, 2, -7, 0, 5, 0, 0},
    /* F */ (const signed char[]){3, 7, -10, -7, -10, -7, 10, 2, -7, 0, 5, 0, 0},
    /* H */ (const signed char[]){2, -7, -10, -7, 10, 2, 7, -10, 7, 10, 2, -7, 0, 7, 0, 0},
    /* K */ (const signed char[]){2, -6, -10, -6, 10, 3, 7, -10, -6, 2, 7, 10, 0},
    /* M */ (const signed char[]){5, -8, 10, -8, -10, 0, 4, 8, -10, 8, 10, 0},
    /* N */ (const signed char[]){4, -7, 10, -7, -10, 7, 10, 7, -10, 0},
    /* R */ (const signed char[]){7, -6, 10, -6, -10, 4, -10, 7, -6, 4, -1, -6, -1, 7, 10, 0},
    /* W */ (const signed char[]){5, -10, -10, -5, 10, 0, -3, 5, 10, 10, -10, 0},
    /* X */ (const signed char[]){2, -7, -10, 7, 10, 2, 7, -10, -7, 10, 0},
    /* Y */ (const signed char[]){3, -7, -10, 0, 0, 7, -10, 2, 0, 0, 0, 10, 0},
    /* K with a bar: Ж-like */
    (const signed char[]){2, 0, -10, 0, 10, 2, -8, -10, 8, 10, 2, 8, -10, -8, 10, 0},
    /* P with a crossing: ₽-like */
    (const signed char[]){5, -5, 10, -5, -10, 5, -10, 5, 0, -5, 0, 2, -9, 5, 4, 5, 0},
    /* e */ (const signed char[]){8, -6, 0, 6, 0, 5, -5, 0, -7, -5, -5, -6, 0, -4, 6, 5, 6, 0},
    /* k */ (const signed char[]){2, -5, -10, -5, 10, 3, 5, -3, -5, 4, 6, 10, 0},
    /* m */ (const signed char[]){2, -8, -4, -8, 10, 4, -8, -2, -4, -4, 0,  -2,
                                  0, 10, 4,  0,  -2, 4, -4, 8,  -2, 8,  10, 0},
    /* n */ (const signed char[]){2, -6, -4, -6, 10, 4, -6, -1, 0, -4, 6, -1, 6, 10, 0},
    /* r */ (const signed char[]){2, -4, -4, -4, 10, 3, -4, 0, 0, -4, 5, -3, 0},
    /* w */ (const signed char[]){5, -9, -4, -5, 10, 0, 0, 5, 10, 9, -4, 0},
    /* x */ (const signed char[]){2, -6, -4, 6, 10, 2, 6, -4, -6, 10, 0},
    /* f */ (const signed char[]){4, 5, -9, 1, -10, -1, -7, -1, 10, 2, -5, -3, 4, -3, 0},
    /* t */ (const signed char[]){3, -1, -10, -1, 8, 4, 8, 2, -6, -4, 4, -4, 0},
    /* u */ (const signed char[]){4, -6, -4, -6, 8, 6, 8, 6, -4, 2, 6, -4, 6, 10, 0},
    /* v */ (const signed char[]){3, -7, -4, 0, 10, 7, -4, 0},
    /* a */ (const signed char[]){7, 5, -2, 0,  -4, -5, 0,  -5, 7,  0, 9,
                                  5, 5, 5,  -2, 2,  5,  -4, 6,  10, 0},
};
#define N_LETTERS ((int)(sizeof LETTERS / sizeof LETTERS[0]))

static void letter(struct pen *p, int which)
{
    const signed char *s = LETTERS[which];
    float pts[2 * MAX_PTS];
    while (*s) {
        int n = *s++;
        for (int i = 0; i < n; i++)
            pts[2 * i] = (float)s[2 * i] / 10.0f, pts[2 * i + 1] = (float)s[2 * i + 1] / 10.0f;
        polyline(p, pts, n, 0);
        s += 2 * n;
    }
}

enum kind {
    K_SCRIBBLE,
    K_X,
    K_PLUS,
    K_SQUARE_FILLED,
    K_SQUARE,
    K_CIRCLE_CROSS,
    K_TRIANGLE,
    K_STAR,
    K_HASH,
    K_ZIGZAG,
    K_SPIRAL,
    K_LETTER,
    K_CROSSING,
    K_BLOB,
    K_NOISE,
    K_TRIANGLE_FILLED,
    K_COUNT
};

static void draw(struct pen *p, struct nn_rng *g, int kind)
{
    float pts[2 * MAX_PTS];
    switch (kind) {
    case K_SCRIBBLE:
        scribble(p, g, 34 + (int)nn_rng_below(g, 30)); /* long enough to be a tangle */
        break;
    case K_X: seg(p, -1, -1, 1, 1), seg(p, 1, -1, -1, 1); break;
    case K_PLUS: {
        float a = uni(g, -0.3f, 0.3f);
        seg(p, -1, a, 1, a), seg(p, -a, -1, -a, 1);
        break;
    }
    case K_SQUARE_FILLED:
    case K_SQUARE: {
        float sq[8] = {-1, -1, 1, -1, 1, 1, -1, 1};
        if (kind == K_SQUARE_FILLED)
            fill(p, sq, 4);
        else
            polyline(p, sq, 4, 1);
        break;
    }
    case K_CIRCLE_CROSS:
        circle(p, 0, 0, 1, 40);
        if (nn_rng_below(g, 2))
            seg(p, -0.7f, -0.7f, 0.7f, 0.7f), seg(p, 0.7f, -0.7f, -0.7f, 0.7f);
        else
            seg(p, -1.2f, 0, 1.2f, 0), seg(p, 0, -1.2f, 0, 1.2f);
        break;
    case K_TRIANGLE:
    case K_TRIANGLE_FILLED: {
        float tr[6] = {0, -1, 1, 0.8f, -1, 0.8f};
        if (kind == K_TRIANGLE_FILLED)
            fill(p, tr, 3);
        else
            polyline(p, tr, 3, 1);
        break;
    }
    case K_STAR: {
        int n = 5 + (int)nn_rng_below(g, 3) * 2; /* 5, 7 or 9 points, drawn as a star polygon */
        for (int i = 0; i < n; i++) {
            float t = 6.2831853f * (float)(i * (n / 2)) / (float)n - 1.5707963f;
            pts[2 * i] = cosf(t), pts[2 * i + 1] = sinf(t);
        }
        polyline(p, pts, n, 1);
        break;
    }
    case K_HASH:
        seg(p, -1, -0.4f, 1, -0.4f), seg(p, -1, 0.4f, 1, 0.4f);
        seg(p, -0.4f, -1, -0.4f, 1), seg(p, 0.4f, -1, 0.4f, 1);
        break;
    case K_ZIGZAG: {
        int n = 5 + (int)nn_rng_below(g, 6);
        for (int i = 0; i < n; i++)
            pts[2 * i] = -1 + 2.0f * (float)i / (float)(n - 1),
                    pts[2 * i + 1] = i % 2 ? 0.6f : -0.6f;
        polyline(p, pts, n, 0);
        break;
    }
    case K_SPIRAL: {
        float turns = uni(g, 3.0f, 5.0f);
        for (int i = 0; i < MAX_PTS; i++) {
            float f = (float)i / (MAX_PTS - 1), t = f * turns * 6.2831853f;
            pts[2 * i] = f * cosf(t), pts[2 * i + 1] = f * sinf(t);
        }
        polyline(p, pts, MAX_PTS, 0);
        break;
    }
    case K_LETTER: letter(p, (int)nn_rng_below(g, N_LETTERS)); break;
    case K_CROSSING: { /* two long gently curved strokes crossing near the middle */
        for (int k = 0; k < 2; k++) {
            float a = uni(g, 0, 3.1415927f) + (float)k * 1.5707963f, bend = uni(g, -0.5f, 0.5f);
            for (int i = 0; i < 12; i++) {
                float t = -1 + 2.0f * (float)i / 11.0f;
                float x = t, y = bend * (1 - t * t);
                pts[2 * i] = x * cosf(a) - y * sinf(a), pts[2 * i + 1] = x * sinf(a) + y * cosf(a);
            }
            polyline(p, pts, 12, 0);
        }
        break;
    }
    case K_BLOB: { /* an irregular filled shape */
        int n = 24;
        float a1 = uni(g, 0.1f, 0.35f), a2 = uni(g, 0.05f, 0.25f), ph = uni(g, 0, 6.3f);
        for (int i = 0; i < n; i++) {
            float t = 6.2831853f * (float)i / (float)n;
            float r = 1 + a1 * sinf(2 * t + ph) + a2 * sinf(3 * t - ph);
            pts[2 * i] = r * cosf(t), pts[2 * i + 1] = r * sinf(t);
        }
        fill(p, pts, n);
        break;
    }
    case K_NOISE: {
        float density = uni(g, 0.1f, 0.5f);
        int cell = 1 + (int)nn_rng_below(g, 3);
        for (int y = 0; y < SIDE; y += cell)
            for (int x = 0; x < SIDE; x += cell)
                if (nn_rng_uniform(g) < density) {
                    float v = uni(g, 0.4f, 1.0f);
                    for (int dy = 0; dy < cell && y + dy < SIDE; dy++)
                        for (int dx = 0; dx < cell && x + dx < SIDE; dx++)
                            p->c[(y + dy) * SIDE + x + dx] = v;
                }
        break;
    }
    }
}

int nn_nondigit_image(uint8_t img[NN_MNIST_PIXELS], uint64_t seed, uint64_t index)
{
    float canvas[SIDE * SIDE], out[NN_MNIST_PIXELS];
    struct nn_rng g;
    nn_rng_seed(&g, nn_hash3(seed, 0x6e6f6e64u, index)); /* "nond" */
    for (int attempt = 0; attempt < 8; attempt++) {
        memset(canvas, 0, sizeof canvas);
        int kind = (int)nn_rng_below(&g, K_COUNT);
        float rot = uni(&g, -0.5f, 0.5f);
        if (kind == K_SCRIBBLE || kind == K_CROSSING || kind == K_STAR || kind == K_SPIRAL ||
            kind == K_BLOB)
            rot = uni(&g, 0, 6.2831853f);
        float s = uni(&g, 10.0f, 22.0f), asp = uni(&g, 0.75f, 1.3f);
        struct pen p = {.c = canvas,
                        .ca = cosf(rot),
                        .sa = sinf(rot),
                        .s = s,
                        .ax = asp,
                        .ay = 1.0f / asp,
                        .ox = SIDE / 2.0f + uni(&g, -6, 6),
                        .oy = SIDE / 2.0f + uni(&g, -6, 6),
                        .r = uni(&g, 0.8f, 3.2f)};
        draw(&p, &g, kind);
        if (nn_image_normalize(out, canvas, SIDE, SIDE) != NN_OK)
            continue; /* nothing drawn: try another */
        nn_float_to_bytes(img, out, NN_MNIST_PIXELS);
        return NN_OK;
    }
    return NN_EBLANK;
}

/* Images 0..n-1 of one generator and stream into dst. */
static int fill_images(uint8_t *dst, size_t n, uint64_t seed,
                       int (*image)(uint8_t img[NN_MNIST_PIXELS], uint64_t seed, uint64_t index))
{
    for (size_t i = 0; i < n; i++) {
        int rc = image(dst + i * NN_MNIST_PIXELS, seed, i);
        if (rc)
            return rc;
    }
    return NN_OK;
}

int nn_nondigit_fill(uint8_t *dst, size_t n, uint64_t seed)
{
    return fill_images(dst, n, seed, nn_nondigit_image);
}

/* Pieces: reading a number cuts a mark the network rejects and reads the halves (segment.c),
 * so the halves of a non-digit must not read as digits either: the left half of an X is no
 * 7, nor its right half a 5. */
int nn_nondigit_piece_image(uint8_t img[NN_MNIST_PIXELS], uint64_t seed, uint64_t index)
{
    uint8_t whole[NN_MNIST_PIXELS];
    float part[NN_MNIST_PIXELS], out[NN_MNIST_PIXELS];
    struct nn_rng g;
    nn_rng_seed(&g, nn_hash3(seed, 0x70696563u, index)); /* "piec" */
    for (uint64_t attempt = 0; attempt < 8; attempt++) {
        int rc = nn_nondigit_image(whole, nn_hash3(seed, 0x70637372u, attempt), index); /* "pcsr" */
        if (rc)
            return rc;
        int x0 = NN_MNIST_SIDE, x1 = -1;
        for (int i = 0; i < NN_MNIST_PIXELS; i++)
            if (whole[i] >= 64) {
                int x = i % NN_MNIST_SIDE;
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
            }
        if (x1 - x0 < 4)
            continue; /* too narrow to cut */
        int c = x0 + (int)lrintf((float)(x1 - x0 + 1) * uni(&g, 0.3f, 0.7f));
        int right = nn_rng_uniform(&g) < 0.5f;
        for (int i = 0; i < NN_MNIST_PIXELS; i++) {
            int x = i % NN_MNIST_SIDE;
            part[i] = (right ? x >= c : x < c) ? (float)whole[i] / 255.0f : 0.0f;
        }
        if (nn_image_normalize(out, part, NN_MNIST_SIDE, NN_MNIST_SIDE) != NN_OK)
            continue;
        nn_float_to_bytes(img, out, NN_MNIST_PIXELS);
        return NN_OK;
    }
    return NN_EBLANK;
}

int nn_nondigit_piece_fill(uint8_t *dst, size_t n, uint64_t seed)
{
    return fill_images(dst, n, seed, nn_nondigit_piece_image);
}
