/*
 * fullbatch.c - the gradient of dense(I -> H) [ReLU] dense(H -> C) softmax cross-entropy, with
 * H, C <= 16, over a whole byte dataset, fused: the seed000 preset's full-batch descent.
 *
 * Design: full-batch descent reads the same images at every step, so their nonzero pixels
 * (19% of MNIST's) are listed once, and zero pixels cost nothing. H fits one AVX-512
 * register, so the first layer's weights are kept transposed, one 64-byte row of hidden units
 * per pixel. Samples go a block of FB_BLOCK at a time:
 *   - forward: per sample, its words (pixel << 8 | byte) in pixel order, one multiply-add
 *     of a weight row by the pixel's value each, into four register chains;
 *   - the rest of the network (ReLU, second layer, softmax, cross-entropy and their
 *     gradients) stage by stage across the block, so that the samples' latencies overlap;
 *   - backward: per pixel of the block, the same bytes listed pixel by pixel (sample in block
 *     << 8 | byte), whose errors are summed in registers into that pixel's gradient row, which
 *     is read and written once per block instead of once per sample.
 * Layer-by-layer kernels instead read every pixel twice and write every activation, in a few
 * hundred parallel regions per step; this is one. Both lists take 6 bytes per nonzero pixel
 * (54 MB for MNIST) and are made once per trainer.
 *
 * Determinism: the samples are cut into FB_PARTS fixed ranges in dataset order, and blocks
 * within ranges. Each range sums from zero into its own buffer, whichever thread runs it, and
 * the ranges are added in order, so the result does not depend on the thread count.
 */
#include "fullbatch.h"

#include "gemm_isa.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FB_X86 1
#else
#define FB_X86 0
#endif

#define FB_PARTS 32            /* fixed sample ranges: short enough to balance 2-8 threads */
#define FB_LANES 16            /* hidden units and classes, padded to one register */
#define FB_BLOCK 256           /* samples per block: a word's sample in its block is a byte */
#define FB_PREFETCH_WORDS 1024 /* words ahead; 4 KiB measured best of 1-16 KiB */
#define FB_MAX_INPUT 65536     /* a block's pixel is 16 bits */
#define TARGET_AVX512 __attribute__((target("avx512f,fma")))

/* One range's sums: gradient rows of the first layer (transposed), then the rest. */
struct part_sums {
    float *w1t;     /* (I, 16): w1t[p*16 + j] = d loss / d w1[j][p] */
    float *b1;      /* 16 */
    float *w2t;     /* (16, 16): w2t[j*16 + k] = d loss / d w2[k][j] */
    float *b2;      /* 16 */
    double loss;    /* summed over the range */
    size_t correct; /* argmax == label */
};

struct nn_fullbatch {
    size_t n, in;
    int hidden, classes, relu;
    size_t *start;  /* n + 1: sample s's words are word[start[s] .. start[s+1]) */
    uint32_t *word; /* pixel << 8 | byte, for every nonzero byte, sample after sample */
    /* the same bytes pixel by pixel within each block of samples, for the backward pass:
     * a block's pixels (in increasing order) say how many of its words each has, and its
     * words take the positions its samples' words take in word[] */
    uint16_t *col;        /* sample in its block << 8 | byte */
    uint32_t *pixel;      /* pixel << 16 | its words in the block */
    size_t *block_pixels; /* blocks + 1: block b's pixels start at pixel[block_pixels[b]] */
    size_t first_block[FB_PARTS];
    uint8_t *labels;  /* n */
    float value[256]; /* byte -> input, as nn_bytes_to_float */
    float *w1t;       /* (I, 16): the first layer transposed, zero-padded */
    float *w2t;       /* (16, 16): w2t[j*16 + k] = w2[k][j] */
    float *w2;        /* (16, 16): w2's rows, padded */
    float *b1, *b2;   /* 16 each, padded */
    float *sums;      /* FB_PARTS ranges' buffers, see part_floats */
    struct part_sums part[FB_PARTS];
};

/* Range k of the samples. */
static void range_of(size_t n, int k, size_t *lo, size_t *hi)
{
    *lo = n * (size_t)k / FB_PARTS;
    *hi = n * (size_t)(k + 1) / FB_PARTS;
}

/* floats of one range's buffer: w1t, b1, w2t, b2 */
static size_t part_floats(size_t in) { return (in + 1 + FB_LANES + 1) * FB_LANES; }

int nn_fullbatch_supported(const struct nn_model *m)
{
    const struct nn_layer *L = m->layers;
    int relu = m->n_layers == 3 && L[1].spec.kind == NN_LAYER_RELU;
    if (!FB_X86 || nn_sgemm_isa_best() != NN_GEMM_AVX512 || (m->n_layers != 2 && !relu))
        return 0;
    const struct nn_layer *first = &L[0], *last = &L[m->n_layers - 1];
    return first->spec.kind == NN_LAYER_DENSE && last->spec.kind == NN_LAYER_DENSE &&
           first->out_size <= FB_LANES && last->out_size <= FB_LANES &&
           first->in_size < FB_MAX_INPUT;
}

void nn_fullbatch_free(nn_fullbatch *fb)
{
    if (!fb)
        return;
    free(fb->start);
    free(fb->word);
    free(fb->col);
    free(fb->pixel);
    free(fb->block_pixels);
    free(fb->labels);
    free(fb->w1t);
    free(fb->sums);
    free(fb);
}

static float *alloc_aligned_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

/* Block b (from sample s0, S samples) of the pixel-major lists; cnt is in zeros, left so. */
static void list_block(nn_fullbatch *fb, size_t b, size_t s0, size_t S, uint32_t *cnt, size_t *pos)
{
    const uint32_t *w = fb->word + fb->start[s0], *end = fb->word + fb->start[s0 + S];
    for (; w < end; w++)
        cnt[*w >> 8]++;
    size_t np = fb->block_pixels[b], at = fb->start[s0];
    for (size_t p = 0; p < fb->in; p++) {
        if (!cnt[p])
            continue;
        fb->pixel[np++] = (uint32_t)p << 16 | cnt[p];
        pos[p] = at;
        at += cnt[p];
        cnt[p] = 0;
    }
    fb->block_pixels[b + 1] = np;
    for (size_t i = 0; i < S; i++)
        for (w = fb->word + fb->start[s0 + i]; w < fb->word + fb->start[s0 + i + 1]; w++)
            fb->col[pos[*w >> 8]++] = (uint16_t)(i << 8 | (*w & 255));
}

/* The pixel-major lists of every block, blocks cut within each range. */
static int list_columns(nn_fullbatch *fb)
{
    size_t blocks = 0, nnz = fb->start[fb->n];
    for (int k = 0; k < FB_PARTS; k++) {
        size_t lo, hi;
        range_of(fb->n, k, &lo, &hi);
        fb->first_block[k] = blocks;
        blocks += (hi - lo + FB_BLOCK - 1) / FB_BLOCK;
    }
    size_t most = blocks * fb->in < nnz ? blocks * fb->in : nnz;
    fb->col = malloc((nnz ? nnz : 1) * sizeof *fb->col);
    fb->pixel = malloc((most ? most : 1) * sizeof *fb->pixel);
    fb->block_pixels = malloc((blocks + 1) * sizeof *fb->block_pixels);
    uint32_t *cnt = calloc(fb->in, sizeof *cnt);
    size_t *pos = malloc(fb->in * sizeof *pos);
    int rc = NN_ENOMEM;
    if (!fb->col || !fb->pixel || !fb->block_pixels || !cnt || !pos)
        goto out;
    fb->block_pixels[0] = 0;
    for (int k = 0; k < FB_PARTS; k++) {
        size_t lo, hi, b = fb->first_block[k];
        range_of(fb->n, k, &lo, &hi);
        for (size_t s0 = lo; s0 < hi; s0 += FB_BLOCK, b++)
            list_block(fb, b, s0, hi - s0 < FB_BLOCK ? hi - s0 : FB_BLOCK, cnt, pos);
    }
    rc = NN_OK;
out:
    free(cnt);
    free(pos);
    return rc;
}

int nn_fullbatch_new(nn_fullbatch **out, const struct nn_model *m, const struct nn_dataset *ds)
{
    *out = NULL;
    if (!nn_fullbatch_supported(m) || !ds || ds->n == 0 ||
        (size_t)ds->rows * ds->cols != m->layers[0].in_size)
        return NN_EINVAL;
    const size_t n = ds->n, in = m->layers[0].in_size;
    const int classes = (int)m->layers[m->n_layers - 1].out_size;
    for (size_t s = 0; s < n; s++)
        if (ds->labels[s] >= classes)
            return NN_EINVAL;
    nn_fullbatch *fb = calloc(1, sizeof *fb);
    if (!fb)
        return NN_ENOMEM;
    fb->n = n;
    fb->in = in;
    fb->hidden = (int)m->layers[0].out_size;
    fb->classes = classes;
    fb->relu = m->n_layers == 3;
    for (int v = 0; v < 256; v++) {
        uint8_t byte = (uint8_t)v;
        nn_bytes_to_float(&fb->value[v], &byte, 1);
    }

    size_t nnz = 0;
    for (size_t i = 0; i < n * in; i++)
        nnz += ds->images[i] != 0;
    fb->start = malloc((n + 1) * sizeof *fb->start);
    fb->word = malloc((nnz ? nnz : 1) * sizeof *fb->word);
    fb->labels = malloc(n);
    /* one block: w1t (I rows), w2t, w2, b1, b2 */
    fb->w1t = alloc_aligned_floats((in + 2 * FB_LANES + 2) * FB_LANES);
    fb->sums = alloc_aligned_floats(FB_PARTS * part_floats(in));
    if (!fb->start || !fb->word || !fb->labels || !fb->w1t || !fb->sums)
        goto fail;
    fb->w2t = fb->w1t + in * FB_LANES;
    fb->w2 = fb->w2t + FB_LANES * FB_LANES;
    fb->b1 = fb->w2 + FB_LANES * FB_LANES;
    fb->b2 = fb->b1 + FB_LANES;
    for (int k = 0; k < FB_PARTS; k++) {
        struct part_sums *ps = &fb->part[k];
        ps->w1t = fb->sums + k * part_floats(in);
        ps->b1 = ps->w1t + in * FB_LANES;
        ps->w2t = ps->b1 + FB_LANES;
        ps->b2 = ps->w2t + FB_LANES * FB_LANES;
    }

    size_t at = 0;
    for (size_t s = 0; s < n; s++) {
        const uint8_t *img = ds->images + s * in;
        fb->start[s] = at;
        for (size_t p = 0; p < in; p++)
            if (img[p])
                fb->word[at++] = (uint32_t)p << 8 | img[p];
    }
    fb->start[n] = at;
    memcpy(fb->labels, ds->labels, n);
    if (list_columns(fb) != NN_OK)
        goto fail;
    *out = fb;
    return NN_OK;
fail:
    nn_fullbatch_free(fb);
    return NN_ENOMEM;
}

/* The model's weights into the padded layouts the pass reads. */
static void load_weights(nn_fullbatch *fb, const struct nn_model *m)
{
    const struct nn_layer *L1 = &m->layers[0], *L2 = &m->layers[m->n_layers - 1];
    const float *w1 = m->params + L1->w_off, *w2 = m->params + L2->w_off;
    const size_t in = fb->in, H = (size_t)fb->hidden, C = (size_t)fb->classes;
    for (size_t j = 0; j < H; j++)
        for (size_t p = 0; p < in; p++)
            fb->w1t[p * FB_LANES + j] = w1[j * in + p];
    for (size_t k = 0; k < C; k++)
        for (size_t j = 0; j < H; j++) {
            fb->w2t[j * FB_LANES + k] = w2[k * H + j];
            fb->w2[k * FB_LANES + j] = w2[k * H + j];
        }
    memcpy(fb->b1, m->params + L1->b_off, H * sizeof(float));
    memcpy(fb->b2, m->params + L2->b_off, C * sizeof(float));
}

#if FB_X86

/* z = b + sum over words w of value[w & 255] * rows[w >> 8], rows of FB_LANES floats; four
 * chains, so that the adds do not wait on each other. The words stream from memory once per
 * step: the hardware prefetcher alone leaves the loop waiting for them a third of the time. */
#define DEFINE_ROWS_DOT(name, word_type)                                                           \
    TARGET_AVX512 static inline __m512 name(const word_type *w, const word_type *end,              \
                                            const float *rows, const float *value, __m512 b)       \
    {                                                                                              \
        __m512 a0 = b, a1 = _mm512_setzero_ps(), a2 = a1, a3 = a1;                                 \
        for (; w + 4 <= end; w += 4) {                                                             \
            _mm_prefetch((const char *)(w + FB_PREFETCH_WORDS), _MM_HINT_T0);                      \
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(value[w[0] & 255]),                                \
                                 _mm512_load_ps(rows + (size_t)(w[0] >> 8) * FB_LANES), a0);       \
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(value[w[1] & 255]),                                \
                                 _mm512_load_ps(rows + (size_t)(w[1] >> 8) * FB_LANES), a1);       \
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(value[w[2] & 255]),                                \
                                 _mm512_load_ps(rows + (size_t)(w[2] >> 8) * FB_LANES), a2);       \
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(value[w[3] & 255]),                                \
                                 _mm512_load_ps(rows + (size_t)(w[3] >> 8) * FB_LANES), a3);       \
        }                                                                                          \
        for (; w < end; w++)                                                                       \
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(value[*w & 255]),                                  \
                                 _mm512_load_ps(rows + (size_t)(*w >> 8) * FB_LANES), a0);         \
        return _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));                        \
    }
DEFINE_ROWS_DOT(rows_dot, uint32_t) /* a sample's words: pixel rows of the first layer */
DEFINE_ROWS_DOT(col_dot, uint16_t)  /* a pixel's words in a block: the block samples' errors */

/* Range k's sums, from zero, a block of samples at a time (see the top of the file). */
TARGET_AVX512 static void range_avx512(nn_fullbatch *fb, int k, float scale)
{
    struct part_sums *ps = &fb->part[k];
    size_t lo, hi, b = fb->first_block[k];
    range_of(fb->n, k, &lo, &hi);
    const int H = fb->hidden, C = fb->classes;
    const __mmask16 cmask = (__mmask16)((1u << C) - 1);
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    const __m512 b1 = _mm512_load_ps(fb->b1), b2 = _mm512_load_ps(fb->b2);
    const __m512 vscale = _mm512_set1_ps(scale);
    const uint32_t *word = fb->word;
    const size_t *start = fb->start;
    __m512 gb1 = zero, gb2 = zero;
    double loss = 0.0;
    size_t correct = 0;
    float h[FB_BLOCK * FB_LANES] __attribute__((aligned(64)));
    float z[FB_BLOCK * FB_LANES] __attribute__((aligned(64)));
    float e[FB_BLOCK * FB_LANES] __attribute__((aligned(64)));
    float d[FB_BLOCK * FB_LANES] __attribute__((aligned(64)));
    memset(ps->w1t, 0, part_floats(fb->in) * sizeof(float));

    for (size_t s0 = lo; s0 < hi; s0 += FB_BLOCK, b++) {
        const int S = hi - s0 < FB_BLOCK ? (int)(hi - s0) : FB_BLOCK;
        /* first layer and its activation */
        for (int i = 0; i < S; i++) {
            __m512 z1 =
                rows_dot(word + start[s0 + i], word + start[s0 + i + 1], fb->w1t, fb->value, b1);
            _mm512_store_ps(h + i * FB_LANES, fb->relu ? _mm512_max_ps(z1, zero) : z1);
        }
        /* second layer: logits z[k] = b2[k] + sum_j h[j] w2[k][j], less their max */
        for (int i = 0; i < S; i++) {
            __m512 z2 = b2;
            for (int j = 0; j < H; j++)
                z2 = _mm512_fmadd_ps(_mm512_set1_ps(h[i * FB_LANES + j]),
                                     _mm512_load_ps(fb->w2t + j * FB_LANES), z2);
            const __m512 mx = _mm512_set1_ps(_mm512_mask_reduce_max_ps(cmask, z2));
            /* the most probable class: the first of the largest logits */
            const int top = __builtin_ctz((unsigned)_mm512_mask_cmpeq_ps_mask(cmask, z2, mx));
            correct += top == fb->labels[s0 + i];
            _mm512_store_ps(z + i * FB_LANES, _mm512_sub_ps(z2, mx));
        }
        for (int t = 0; t < S * FB_LANES; t++)
            e[t] = nn_exp_approx(z[t]);
        /* softmax, cross-entropy (as nn_softmax_xent) and d = (p - onehot(y)) * scale */
        double sums = 1.0;
        for (int i = 0; i < S; i++) {
            const __m512 ev = _mm512_maskz_load_ps(cmask, e + i * FB_LANES);
            const float sum = _mm512_reduce_add_ps(ev);
            const __m512 p = _mm512_mul_ps(ev, _mm512_set1_ps(1.0f / sum));
            const int y = fb->labels[s0 + i];
            loss -= (double)z[i * FB_LANES + y];
            /* the log of a product of up to 64 sums in [1, 16] (the largest term is 1)
             * instead of 64 logs: at most 2^256, and the same sum to ~1e-14 */
            sums *= sum;
            if ((i & 63) == 63 || i + 1 == S) {
                loss += log(sums);
                sums = 1.0;
            }
            const __m512 di =
                _mm512_mul_ps(_mm512_mask_sub_ps(p, (__mmask16)(1u << y), p, one), vscale);
            gb2 = _mm512_add_ps(gb2, di);
            _mm512_store_ps(d + i * FB_LANES, di);
        }
        /* second layer's weight gradient, two chains per row */
        for (int j = 0; j < H; j++) {
            float *g = ps->w2t + j * FB_LANES;
            __m512 a0 = _mm512_load_ps(g), a1 = zero;
            int i = 0;
            for (; i + 2 <= S; i += 2) {
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(h[i * FB_LANES + j]),
                                     _mm512_load_ps(d + i * FB_LANES), a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(h[(i + 1) * FB_LANES + j]),
                                     _mm512_load_ps(d + (i + 1) * FB_LANES), a1);
            }
            if (i < S)
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(h[i * FB_LANES + j]),
                                     _mm512_load_ps(d + i * FB_LANES), a0);
            _mm512_store_ps(g, _mm512_add_ps(a0, a1));
        }
        /* error at the hidden layer, dz = (w2^T d) where the output is positive (as
         * nn_relu_backward), and the first layer's gradient rows */
        for (int i = 0; i < S; i++) {
            __m512 dh0 = zero, dh1 = zero;
            int c = 0;
            for (; c + 2 <= C; c += 2) {
                dh0 = _mm512_fmadd_ps(_mm512_set1_ps(d[i * FB_LANES + c]),
                                      _mm512_load_ps(fb->w2 + c * FB_LANES), dh0);
                dh1 = _mm512_fmadd_ps(_mm512_set1_ps(d[i * FB_LANES + c + 1]),
                                      _mm512_load_ps(fb->w2 + (c + 1) * FB_LANES), dh1);
            }
            if (c < C)
                dh0 = _mm512_fmadd_ps(_mm512_set1_ps(d[i * FB_LANES + c]),
                                      _mm512_load_ps(fb->w2 + c * FB_LANES), dh0);
            __m512 dz = _mm512_add_ps(dh0, dh1);
            if (fb->relu)
                dz = _mm512_maskz_mov_ps(
                    _mm512_cmp_ps_mask(_mm512_load_ps(h + i * FB_LANES), zero, _CMP_GT_OQ), dz);
            gb1 = _mm512_add_ps(gb1, dz);
            _mm512_store_ps(d + i * FB_LANES, dz);
        }
        const uint32_t *px = fb->pixel + fb->block_pixels[b];
        const uint32_t *px_end = fb->pixel + fb->block_pixels[b + 1];
        for (const uint16_t *u = fb->col + start[s0]; px < px_end; px++) {
            const uint16_t *u_end = u + (*px & 0xffff);
            float *g = ps->w1t + (size_t)(*px >> 16) * FB_LANES;
            _mm512_store_ps(g, col_dot(u, u_end, d, fb->value, _mm512_load_ps(g)));
            u = u_end;
        }
    }
    _mm512_store_ps(ps->b1, gb1);
    _mm512_store_ps(ps->b2, gb2);
    ps->loss = loss;
    ps->correct = correct;
}
#endif

/* grads += the ranges' sums, added in range order: row p of the first layer's weights. */
static void add_first_row(const nn_fullbatch *fb, const struct nn_model *m, float *grads, size_t p)
{
    const size_t in = fb->in, H = (size_t)fb->hidden;
    float *g = grads + m->layers[0].w_off + p;
    float row[FB_LANES];
    memcpy(row, fb->part[0].w1t + p * FB_LANES, sizeof row);
    for (int k = 1; k < FB_PARTS; k++)
        for (size_t j = 0; j < H; j++)
            row[j] += fb->part[k].w1t[p * FB_LANES + j];
    for (size_t j = 0; j < H; j++)
        g[j * in] += row[j];
}

/* Value off of every range's buffer (see part_floats), added in range order. */
static float sum_parts(const nn_fullbatch *fb, size_t off)
{
    const size_t stride = part_floats(fb->in);
    float sum = fb->sums[off];
    for (int k = 1; k < FB_PARTS; k++)
        sum += fb->sums[k * stride + off];
    return sum;
}

/* The same for the biases and the second layer. */
static void add_rest(const nn_fullbatch *fb, const struct nn_model *m, float *grads)
{
    const struct nn_layer *L1 = &m->layers[0], *L2 = &m->layers[m->n_layers - 1];
    const size_t H = (size_t)fb->hidden, C = (size_t)fb->classes;
    const struct part_sums *p0 = &fb->part[0];
    const size_t b1 = (size_t)(p0->b1 - fb->sums), w2t = (size_t)(p0->w2t - fb->sums);
    const size_t b2 = (size_t)(p0->b2 - fb->sums);
    for (size_t j = 0; j < H; j++)
        grads[L1->b_off + j] += sum_parts(fb, b1 + j);
    for (size_t c = 0; c < C; c++) {
        for (size_t j = 0; j < H; j++)
            grads[L2->w_off + c * H + j] += sum_parts(fb, w2t + j * FB_LANES + c);
        grads[L2->b_off + c] += sum_parts(fb, b2 + c);
    }
}

double nn_fullbatch_grad(nn_fullbatch *fb, const struct nn_model *m, float *grads, float scale,
                         size_t *correct, int threads)
{
    load_weights(fb, m);
#if FB_X86
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < FB_PARTS; k++)
            range_avx512(fb, k, scale);
#pragma omp for schedule(static)
        for (size_t p = 0; p < fb->in; p++)
            add_first_row(fb, m, grads, p);
    }
#else
    (void)threads;
    (void)scale;
#endif
    add_rest(fb, m, grads);
    double loss = 0.0;
    *correct = 0;
    for (int k = 0; k < FB_PARTS; k++) {
        loss += fb->part[k].loss;
        *correct += fb->part[k].correct;
    }
    return loss;
}
