/*
 * layers.c - layer kernels as <layer>_forward / _backward pairs, over a whole mini-batch.
 *
 * Shape legend: N batch, C channels, H/W height/width, K kernel side, F filters, P = OH*OW
 * output positions, I inputs, O outputs. Row-major, contiguous; images are (N, C, H, W).
 * Dense and conv both go through nn_sgemm (conv via im2col, one product per group of samples
 * rather than per image), so tuning one product speeds up every layer. Two exceptions skip
 * the columns, 25 times the image, where the product is small: inference of a few images
 * (conv_direct) and training a first layer of few input planes (conv_dw_tile and friends).
 * Sigmoid uses a vectorisable exp (nn_exp_approx, ~1e-7 relative) instead of libm's expf.
 */
#include "nn_impl.h"

#include "gemm_isa.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LAYERS_X86 1
#else
#define LAYERS_X86 0
#endif

/* ---------------------------------------------------------------------------------------- */
/* Dense                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* out (N,O) += b (O) on every row */
static void add_bias(float *out, const float *b, int N, int O)
{
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * O;
        for (int o = 0; o < O; o++)
            row[o] += b[o];
    }
}

/* db (O) += column sums of dout (N,O) */
static void add_bias_grad(float *db, const float *dout, int N, int O)
{
    for (int n = 0; n < N; n++) {
        const float *row = dout + (size_t)n * O;
        for (int o = 0; o < O; o++)
            db[o] += row[o];
    }
}

/* out (N,O) = inp (N,I) @ w^T + b, with w (O,I) */
void nn_dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int I,
                      int O, int threads)
{
    nn_sgemm(0, 1, N, O, I, 1.0f, inp, I, w, I, 0.0f, out, O, threads);
    add_bias(out, b, N, O);
}

/* dinp (N,I) = dout (N,O) @ w (O,I); dw (O,I) += dout^T @ inp; db (O) += colsum(dout) */
void nn_dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                       const float *w, int N, int I, int O, int threads)
{
    if (dinp)
        nn_sgemm(0, 0, N, I, O, 1.0f, dout, O, w, I, 0.0f, dinp, I, threads);
    nn_sgemm(1, 0, O, I, N, 1.0f, dout, O, inp, I, 1.0f, dw, I, threads);
    add_bias_grad(db, dout, N, O);
}

/*
 * Dense with its weights transposed, wt (I,O): the layout the trainer keeps a first dense layer
 * in during an epoch, so that the zeros of its input (about 80% of a digit's pixels) cost
 * nothing. Forward, each sample reads only the rows of wt of its nonzero inputs (nn_spmv);
 * backward reads and writes only the rows of dwt that some sample's nonzeros use, each once,
 * threads taking whole rows, so the sums run in the same order whatever the thread count.
 * Input denser than half goes through nn_sgemm.
 */
void nn_dense_forward_io(float *out, const float *inp, const float *wt, const float *b, int N,
                         int I, int O, struct nn_sparse_rows *rows, int threads)
{
    long total = 0;
    int dense = 0;
#pragma omp parallel num_threads(threads) if (threads > 1 && N >= 8)
    {
#pragma omp for schedule(static) reduction(+ : total)
        for (int n = 0; n < N; n++) {
            const size_t at = (size_t)n * I;
            rows->count[n] = nn_nonzeros(inp + at, I, rows->idx + at, rows->val + at);
            total += rows->count[n];
        }
        /* after the loop's barrier every thread sees the same total */
        if (2 * total <= (long)N * I) {
#pragma omp for schedule(static)
            for (int n = 0; n < N; n++) {
                const size_t at = (size_t)n * I;
                nn_spmv(out + (size_t)n * O, b, rows->idx + at, rows->val + at, rows->count[n], wt,
                        O, O);
            }
        } else {
#pragma omp single
            dense = 1;
        }
    }
    rows->dense = dense;
    if (dense) {
        nn_sgemm(0, 0, N, O, I, 1.0f, inp, I, wt, O, 0.0f, out, O, threads);
        add_bias(out, b, N, O);
    }
}

int nn_sparse_rows_alloc(struct nn_sparse_rows *r, size_t N, size_t I)
{
    memset(r, 0, sizeof *r);
    r->idx = malloc(N * I * sizeof *r->idx);
    r->val = malloc(N * I * sizeof *r->val);
    r->count = malloc(N * sizeof *r->count);
    r->col_start = malloc((I + 1) * sizeof *r->col_start);
    r->col_list = malloc(I * sizeof *r->col_list);
    r->col_n = malloc(N * I * sizeof *r->col_n);
    r->col_val = malloc(N * I * sizeof *r->col_val);
    if (!r->idx || !r->val || !r->count || !r->col_start || !r->col_list || !r->col_n ||
        !r->col_val)
        return NN_ENOMEM;
    return NN_OK;
}

void nn_sparse_rows_free(struct nn_sparse_rows *r)
{
    free(r->idx);
    free(r->val);
    free(r->count);
    free(r->col_start);
    free(r->col_list);
    free(r->col_n);
    free(r->col_val);
    memset(r, 0, sizeof *r);
}

/* The nonzeros by input instead of by sample (a counting sort): input i's samples and values
 * (times scale) are at col_start[i] .. col_start[i+1] of col_n and col_val, in sample order;
 * col_list holds the inputs that have any, and the count of them is returned. */
static int columns_from_rows(struct nn_sparse_rows *r, int N, int I, float scale)
{
    int *start = r->col_start;
    memset(start, 0, (size_t)(I + 1) * sizeof *start);
    for (int n = 0; n < N; n++)
        for (int t = 0; t < r->count[n]; t++)
            start[r->idx[(size_t)n * I + t] + 1]++;
    int used = 0;
    for (int i = 0; i < I; i++) {
        if (start[i + 1])
            r->col_list[used++] = i;
        start[i + 1] += start[i];
    }
    for (int n = 0; n < N; n++) { /* start[i] moves to the end of input i's entries... */
        const size_t at = (size_t)n * I;
        for (int t = 0; t < r->count[n]; t++) {
            const int k = start[r->idx[at + t]]++;
            r->col_n[k] = n;
            r->col_val[k] = scale * r->val[at + t];
        }
    }
    for (int i = I; i > 0; i--) /* ... which is where input i+1's begin: shift back */
        start[i] = start[i - 1];
    start[0] = 0;
    return used;
}

void nn_dense_backward_io(float *dwt, float scale, float *db, const float *dout, const float *inp,
                          int N, int I, int O, struct nn_sparse_rows *rows, int threads)
{
    if (rows->dense) {
        nn_sgemm(1, 0, I, O, N, scale, inp, I, dout, O, 1.0f, dwt, O, threads);
    } else {
        /* each used row of dwt is read and written once, with its sum over the samples
         * built in registers (nn_spmv over the rows of dout); rows are independent, so
         * threads take whole rows and the sums run in sample order whatever their count */
        const int used = columns_from_rows(rows, N, I, scale);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && used >= 32)
        for (int k = 0; k < used; k++) {
            const int i = rows->col_list[k], s = rows->col_start[i];
            float *d = dwt + (size_t)i * O;
            nn_spmv(d, d, rows->col_n + s, rows->col_val + s, rows->col_start[i + 1] - s, dout, O,
                    O);
        }
    }
    add_bias_grad(db, dout, N, O);
}

/* Rows idx[n] (or n) of the byte matrix x (rows of I) as a new (N, I) float matrix (the
 * fallback when no byte kernel fits); NULL when out of memory. */
static float *gather_bytes(const uint8_t *x, const uint32_t *idx, int N, int I)
{
    float *dst = malloc((size_t)N * I * sizeof *dst);
    if (!dst)
        return NULL;
    for (int n = 0; n < N; n++)
        nn_bytes_to_float(dst + (size_t)n * I, x + (idx ? (size_t)idx[n] : (size_t)n) * I,
                          (size_t)I);
    return dst;
}

int nn_dense_forward_u8(float *out, const uint8_t *x, const uint32_t *idx, const float *w,
                        const float *b, int N, int I, int O, int threads)
{
    if (nn_sgemm_u8_nt(N, O, I, x, idx, (size_t)I, 1.0f / 255.0f, w, I, out, O, threads) == 0) {
        add_bias(out, b, N, O);
        return NN_OK;
    }
    float *tmp = gather_bytes(x, idx, N, I);
    if (!tmp)
        return NN_ENOMEM;
    nn_dense_forward(out, tmp, w, b, N, I, O, threads);
    free(tmp);
    return NN_OK;
}

int nn_dense_backward_u8(float *dw, float *db, const float *dout, const uint8_t *x,
                         const uint32_t *idx, int N, int I, int O, int threads)
{
    if (nn_sgemm_u8_tn(O, I, N, dout, O, x, idx, (size_t)I, 1.0f / 255.0f, dw, I, threads) == 0) {
        add_bias_grad(db, dout, N, O);
        return NN_OK;
    }
    float *tmp = gather_bytes(x, idx, N, I);
    if (!tmp)
        return NN_ENOMEM;
    nn_dense_backward(NULL, dw, db, dout, tmp, NULL, N, I, O, threads);
    free(tmp);
    return NN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Activations: element-wise over n values; backward uses the forward output y               */
/* ---------------------------------------------------------------------------------------- */

void nn_relu_forward(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void nn_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void nn_sigmoid_forward(float *y, const float *x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + nn_exp_approx(-x[i]));
}

void nn_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

void nn_tanh_forward(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

void nn_tanh_backward(float *dx, const float *dy, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* ---------------------------------------------------------------------------------------- */
/* Softmax + cross-entropy, fused: gradient w.r.t. logits is (p - onehot(y)) * scale          */
/* ---------------------------------------------------------------------------------------- */

/* One row: p = softmax(z), d = (p - onehot(y)) * scale; returns the loss term (0 without a
 * label). */
static inline double softmax_row(float *p, float *d, const float *z, int y, int O, float scale)
{
    float mx = z[0];
    for (int o = 1; o < O; o++)
        mx = z[o] > mx ? z[o] : mx;
    double sum = 0.0;
    for (int o = 0; o < O; o++) {
        p[o] = expf(z[o] - mx);
        sum += p[o];
    }
    float inv = (float)(1.0 / sum);
    for (int o = 0; o < O; o++)
        p[o] *= inv;
    if (y < 0)
        return 0.0;
    if (d) {
        for (int o = 0; o < O; o++)
            d[o] = (p[o] - (o == y ? 1.0f : 0.0f)) * scale;
    }
    /* log p_y = z_y - mx - log(sum): exact even when p_y underflows to 0 */
    return -((double)z[y] - mx - log(sum));
}

/* Below this many rows one thread does the whole softmax. */
#define SOFTMAX_PAR_ROWS 512

static inline double softmax_nth(float *probs, float *dlogits, const float *logits,
                                 const uint8_t *labels, int n, int O, float scale)
{
    const size_t at = (size_t)n * O;
    return softmax_row(probs + at, dlogits ? dlogits + at : NULL, logits + at,
                       labels ? labels[n] : -1, O, scale);
}

double nn_softmax_xent(float *probs, float *dlogits, const float *logits, const uint8_t *labels,
                       int N, int O, float scale, int threads)
{
    /* Rows are independent; only the loss is a sum. With threads, each row's term is kept and
     * the terms are added in row order afterwards: the same additions in the same order as
     * one thread, so the loss does not depend on the thread count. */
    double *terms = threads > 1 && N >= SOFTMAX_PAR_ROWS ? malloc((size_t)N * sizeof *terms) : NULL;
    if (terms) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int n = 0; n < N; n++)
            terms[n] = softmax_nth(probs, dlogits, logits, labels, n, O, scale);
    }
    double loss = 0.0;
    for (int n = 0; n < N; n++)
        loss += terms ? terms[n] : softmax_nth(probs, dlogits, logits, labels, n, O, scale);
    free(terms);
    return loss;
}

/* ---------------------------------------------------------------------------------------- */
/* Convolution via im2col, batched over groups of samples                                    */
/* ---------------------------------------------------------------------------------------- */

/* The output columns [*lo, *hi) whose tap kx reads inside the row: 0 <= ox*s + kx - pad < W. */
static void valid_ox(int *lo, int *hi, int kx, int s, int pad, int W, int OW)
{
    int l = 0, h = OW;
    while (l < OW && l * s + kx - pad < 0)
        l++;
    while (h > l && (h - 1) * s + kx - pad >= W)
        h--;
    *lo = l;
    *hi = h;
}

/* im2col (below) in plain C, for any stride */
static void im2col_scalar(float *col, size_t ld, const float *im, int C, int H, int W, int K, int s,
                          int pad, int OH, int OW)
{
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < K; ky++) {
            for (int kx = 0; kx < K; kx++) {
                float *dst = col + (((size_t)c * K + ky) * K + kx) * ld;
                int x_lo, x_hi;
                valid_ox(&x_lo, &x_hi, kx, s, pad, W, OW);
                for (int oy = 0; oy < OH; oy++) {
                    int y = oy * s + ky - pad;
                    float *d = dst + (size_t)oy * OW;
                    if (y < 0 || y >= H) {
                        for (int ox = 0; ox < OW; ox++)
                            d[ox] = 0.0f;
                        continue;
                    }
                    const float *src = im + ((size_t)c * H + y) * W + kx - pad;
                    for (int ox = 0; ox < x_lo; ox++)
                        d[ox] = 0.0f;
                    if (s == 1) { /* rows of 8-28 floats: a loop, not a memcpy call each */
                        for (int ox = x_lo; ox < x_hi; ox++)
                            d[ox] = src[ox];
                    } else {
                        for (int ox = x_lo; ox < x_hi; ox++)
                            d[ox] = src[ox * s];
                    }
                    for (int ox = x_hi; ox < OW; ox++)
                        d[ox] = 0.0f;
                }
            }
        }
    }
}

#if LAYERS_X86
/*
 * Stride 1 with AVX-512: each output row segment (OW floats) is ceil(OW/16) masked loads and
 * stores, the lanes outside the image masked off (so they read nothing and store zeros),
 * instead of a loop of a handful of floats with its own bounds per row. Same values as
 * im2col_scalar (which CPUs without AVX-512, and valgrind, run).
 */
static __attribute__((target("avx512f"))) void im2col_avx512(float *col, size_t ld, const float *im,
                                                             int C, int H, int W, int K, int pad,
                                                             int OH, int OW)
{
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < K; ky++) {
            for (int kx = 0; kx < K; kx++) {
                float *dst = col + (((size_t)c * K + ky) * K + kx) * ld;
                /* valid ox: 0 <= ox + kx - pad < W */
                const int x_lo = pad - kx > 0 ? pad - kx : 0;
                const int x_hi = W + pad - kx < OW ? W + pad - kx : OW;
                for (int oy = 0; oy < OH; oy++) {
                    const int y = oy + ky - pad;
                    float *d = dst + (size_t)oy * OW;
                    /* element ox of this segment is row[ox + kx - pad] */
                    const intptr_t row = (intptr_t)(im + ((size_t)c * H + (y < 0 ? 0 : y)) * W);
                    for (int x0 = 0; x0 < OW; x0 += 16) {
                        const int n = OW - x0 < 16 ? OW - x0 : 16;
                        const __mmask16 all = (__mmask16)((1u << n) - 1u);
                        int lo = x_lo - x0, hi = x_hi - x0;
                        lo = lo < 0 ? 0 : lo;
                        hi = hi > n ? n : hi;
                        __mmask16 valid = 0;
                        if (y >= 0 && y < H && hi > lo)
                            valid = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
                        /* the address of lane 0 may lie outside the image; lanes outside
                         * `valid` are never read */
                        const float *src = (const float *)(row + (intptr_t)(x0 + kx - pad) *
                                                                     (intptr_t)sizeof(float));
                        _mm512_mask_storeu_ps(d + x0, all, _mm512_maskz_loadu_ps(valid, src));
                    }
                }
            }
        }
    }
}
#endif

/*
 * col (C*K*K rows, row stride ld) from one image im (C,H,W): row (c,ky,kx), column oy*OW+ox
 * holds im[c, oy*s+ky-pad, ox*s+kx-pad] or 0 outside the image. Several images side by side
 * (ld = G*P) make one wide matrix for the whole group.
 */
static void im2col(float *col, size_t ld, const float *im, int C, int H, int W, int K, int s,
                   int pad, int OH, int OW)
{
#if LAYERS_X86
    if (s == 1 && nn_sgemm_isa_best() == NN_GEMM_AVX512) {
        im2col_avx512(col, ld, im, C, H, W, K, pad, OH, OW);
        return;
    }
#endif
    im2col_scalar(col, ld, im, C, H, W, K, s, pad, OH, OW);
}

/*
 * Direct convolution of one zero-padded image xp (C, Hp, Wp), stride 1: PB output positions
 * (consecutive in row-major order, across row ends) x a group of filters (FV vectors) of
 * accumulators; for each weight row (c, ky, kx) one load per filter vector and one broadcast
 * per position, and each output is one chain of fused multiply-adds in (c, ky, kx) order, then
 * the bias: the same bits on AVX-512 and AVX2. The last block repeats its last position in
 * unused lanes rather than branching. out (F, P).
 */
#define DIRECT_PB_MAX 16 /* positions per block */
#define DIRECT_FG_MAX 64 /* filters per group */

#if LAYERS_X86
/* off[p]: where position q0 + p (or the last one, past P) starts in a padded plane. */
static inline void direct_offsets(int *off, int PB, int q0, int P, int OW, int Wp)
{
    for (int p = 0; p < PB; p++) {
        const int q = q0 + p < P ? q0 + p : P - 1;
        off[p] = q / OW * Wp + q % OW;
    }
}

/* The block's accumulators, tile[p * DIRECT_FG_MAX + f], to out with the bias: n positions
 * from q0, the group's FG filters from f0. */
static inline void direct_store(float *out, const float *tile, const float *b, int f0, int FG,
                                int q0, int n, int P)
{
    for (int f = 0; f < FG; f++)
        for (int p = 0; p < n; p++)
            out[(size_t)(f0 + f) * P + q0 + p] = tile[p * DIRECT_FG_MAX + f] + b[f0 + f];
}

/* AVX-512: all F (<= 64) filters in one group, FV vectors of 16, PB * FV <= 24 leaves
 * registers for the operands. */
static inline __attribute__((always_inline, target("avx512f"))) void
conv_direct_tile(const int FV, const int PB, float *out, const float *xp, int Hp, int Wp,
                 const float *wt, const float *b, int C, int K, int F, int OH, int OW)
{
    const int P = OH * OW;
    __mmask16 fm[4];
#pragma GCC unroll 4
    for (int v = 0; v < FV; v++)
        fm[v] = F - 16 * v >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (F - 16 * v)) - 1u);
    for (int q0 = 0; q0 < P; q0 += PB) {
        int off[DIRECT_PB_MAX];
        direct_offsets(off, PB, q0, P, OW, Wp);
        __m512 acc[16][4];
#pragma GCC unroll 16
        for (int p = 0; p < PB; p++)
#pragma GCC unroll 4
            for (int v = 0; v < FV; v++)
                acc[p][v] = _mm512_setzero_ps();
        for (int c = 0; c < C; c++) {
            for (int ky = 0; ky < K; ky++) {
                const float *xr = xp + ((size_t)c * Hp + ky) * Wp;
                const float *wr = wt + ((size_t)c * K + ky) * K * F;
                for (int kx = 0; kx < K; kx++, xr++, wr += F) {
                    __m512 w[4];
#pragma GCC unroll 4
                    for (int v = 0; v < FV; v++)
                        w[v] = _mm512_maskz_loadu_ps(fm[v], wr + 16 * v);
#pragma GCC unroll 16
                    for (int p = 0; p < PB; p++) {
                        const __m512 x = _mm512_set1_ps(xr[off[p]]);
#pragma GCC unroll 4
                        for (int v = 0; v < FV; v++)
                            acc[p][v] = _mm512_fmadd_ps(x, w[v], acc[p][v]);
                    }
                }
            }
        }
        float tile[DIRECT_PB_MAX * DIRECT_FG_MAX];
#pragma GCC unroll 16
        for (int p = 0; p < PB; p++)
#pragma GCC unroll 4
            for (int v = 0; v < FV; v++)
                _mm512_storeu_ps(tile + p * DIRECT_FG_MAX + 16 * v, acc[p][v]);
        direct_store(out, tile, b, 0, F, q0, P - q0 < PB ? P - q0 : PB, P);
    }
}

static __attribute__((target("avx512f"))) void conv_direct_avx512(float *out, const float *xp,
                                                                  int Hp, int Wp, const float *wt,
                                                                  const float *b, int C, int K,
                                                                  int F, int OH, int OW)
{
    switch ((F + 15) / 16) {
    case 1: conv_direct_tile(1, 16, out, xp, Hp, Wp, wt, b, C, K, F, OH, OW); break;
    case 2: conv_direct_tile(2, 12, out, xp, Hp, Wp, wt, b, C, K, F, OH, OW); break;
    case 3: conv_direct_tile(3, 8, out, xp, Hp, Wp, wt, b, C, K, F, OH, OW); break;
    default: conv_direct_tile(4, 6, out, xp, Hp, Wp, wt, b, C, K, F, OH, OW); break;
    }
}

/* AVX2, which has 16 registers: groups of up to 16 filters (FV <= 2 vectors of 8) from f0,
 * PB * FV = 12 accumulators. (Groups of 8, 24 or 32 filters, with 12 positions, 4 or 3, were
 * 7-33% slower on the shipped CNN.) */
static inline __attribute__((always_inline, target("avx2,fma"))) void
conv_direct_tile_avx2(const int FV, const int PB, float *out, const float *xp, int Hp, int Wp,
                      const float *wt, const float *b, int C, int K, int F, int f0, int OH,
                      int OW)
{
    const int P = OH * OW, FG = F - f0 < 8 * FV ? F - f0 : 8 * FV;
    __m256i fm[2];
#pragma GCC unroll 2
    for (int v = 0; v < FV; v++)
        fm[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(FG - 8 * v),
                                   _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int q0 = 0; q0 < P; q0 += PB) {
        int off[DIRECT_PB_MAX];
        direct_offsets(off, PB, q0, P, OW, Wp);
        __m256 acc[12][2];
#pragma GCC unroll 12
        for (int p = 0; p < PB; p++)
#pragma GCC unroll 2
            for (int v = 0; v < FV; v++)
                acc[p][v] = _mm256_setzero_ps();
        for (int c = 0; c < C; c++) {
            for (int ky = 0; ky < K; ky++) {
                const float *xr = xp + ((size_t)c * Hp + ky) * Wp;
                const float *wr = wt + ((size_t)c * K + ky) * K * F + f0;
                for (int kx = 0; kx < K; kx++, xr++, wr += F) {
                    __m256 w[2];
#pragma GCC unroll 2
                    for (int v = 0; v < FV; v++)
                        w[v] = _mm256_maskload_ps(wr + 8 * v, fm[v]);
#pragma GCC unroll 12
                    for (int p = 0; p < PB; p++) {
                        const __m256 x = _mm256_broadcast_ss(xr + off[p]);
#pragma GCC unroll 2
                        for (int v = 0; v < FV; v++)
                            acc[p][v] = _mm256_fmadd_ps(x, w[v], acc[p][v]);
                    }
                }
            }
        }
        float tile[DIRECT_PB_MAX * DIRECT_FG_MAX];
#pragma GCC unroll 12
        for (int p = 0; p < PB; p++)
#pragma GCC unroll 2
            for (int v = 0; v < FV; v++)
                _mm256_storeu_ps(tile + p * DIRECT_FG_MAX + 8 * v, acc[p][v]);
        direct_store(out, tile, b, f0, FG, q0, P - q0 < PB ? P - q0 : PB, P);
    }
}

static __attribute__((target("avx2,fma"))) void conv_direct_avx2(float *out, const float *xp,
                                                                 int Hp, int Wp, const float *wt,
                                                                 const float *b, int C, int K,
                                                                 int F, int OH, int OW)
{
    for (int f0 = 0; f0 < F; f0 += 16) {
        if (F - f0 <= 8)
            conv_direct_tile_avx2(1, 12, out, xp, Hp, Wp, wt, b, C, K, F, f0, OH, OW);
        else
            conv_direct_tile_avx2(2, 6, out, xp, Hp, Wp, wt, b, C, K, F, f0, OH, OW);
    }
}
#endif

/* The layers the direct kernels take, on any instruction set they have. */
static int direct_shape(const struct nn_layer *L)
{
    return LAYERS_X86 && L->spec.stride == 1 && L->out_c >= 1 && L->out_c <= DIRECT_FG_MAX;
}

int nn_conv_direct_supported(const struct nn_layer *L)
{
    return direct_shape(L) && nn_sgemm_isa_best() >= NN_GEMM_AVX2;
}

int nn_conv_forward_direct(float *out, const float *inp, const float *wt, const float *b,
                           float *scratch, const struct nn_layer *L)
{
    return nn_conv_forward_direct_isa(nn_sgemm_isa_best(), out, inp, wt, b, scratch, L);
}

int nn_conv_forward_direct_isa(enum nn_gemm_isa isa, float *out, const float *inp,
                               const float *wt, const float *b, float *scratch,
                               const struct nn_layer *L)
{
    if (!direct_shape(L) || isa < NN_GEMM_AVX2 || !nn_sgemm_isa_supported(isa))
        return -1;
#if LAYERS_X86
    const int C = L->in_c, H = L->in_h, W = L->in_w, F = L->out_c, K = L->spec.kernel;
    const int pad = L->spec.pad, Hp = H + 2 * pad, Wp = W + 2 * pad;
    float *xp = scratch; /* (C, Hp, Wp): the image with its zero border */
    for (int c = 0; c < C; c++) {
        float *d = xp + (size_t)c * Hp * Wp;
        for (int i = 0; i < Hp * Wp; i++)
            d[i] = 0.0f;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                d[(size_t)(y + pad) * Wp + x + pad] = inp[((size_t)c * H + y) * W + x];
    }
    (isa == NN_GEMM_AVX512 ? conv_direct_avx512 : conv_direct_avx2)(out, xp, Hp, Wp, wt, b, C, K,
                                                                    F, L->out_h, L->out_w);
#else
    (void)out, (void)inp, (void)wt, (void)b, (void)scratch;
#endif
    return 0;
}

/*
 * Training without columns, for a first layer: a stride-1 convolution of few input planes
 * with a 3x3 or 5x5 kernel (the race CNN's conv:16:5 on 28x28 digits). Forward is
 * conv_direct image by image; the weight gradient is conv_dw_tile below. Neither builds the
 * (C*K*K, P) columns of im2col, 25 times the image, that the GEMM path writes and reads twice.
 */
#define DW_GROUP 4 /* samples per partial sum of the weight gradient */

int nn_conv_train_direct_supported(const struct nn_layer *L)
{
    const int K = L->spec.kernel;
    return nn_conv_direct_supported(L) && nn_sgemm_isa_best() == NN_GEMM_AVX512 &&
           (K == 3 || K == 5) && L->in_c <= 4;
}

/* Floats of one padded input plane in conv_dw_tile: the image with its zero border, and room
 * for the last chunk's reads (up to Q - 1 + (K-1)*Wp + K-1). *Q: positions along padded rows,
 * OH * Wp rounded up to whole chunks of 16. */
static size_t dw_plane(const struct nn_layer *L, size_t *Q)
{
    const size_t K = (size_t)L->spec.kernel, Wp = (size_t)L->in_w + 2 * (size_t)L->spec.pad;
    const size_t Hp = (size_t)L->in_h + 2 * (size_t)L->spec.pad;
    *Q = ((size_t)L->out_h * Wp + 15) / 16 * 16;
    const size_t reads = *Q + (K - 1) * Wp + K, image = Hp * Wp;
    return ((reads > image ? reads : image) + 15) / 16 * 16;
}

int nn_conv_forward_train_direct(float *out, const float *inp, const float *w, const float *b,
                                 const struct nn_layer *L, int N, int threads)
{
    if (!nn_conv_train_direct_supported(L))
        return NN_EINVAL;
    const size_t per = (size_t)L->in_c * (L->in_h + 2 * L->spec.pad) * (L->in_w + 2 * L->spec.pad);
    float *wt = malloc((L->n_w + (size_t)threads * per) * sizeof *wt);
    if (!wt)
        return NN_ENOMEM;
    float *scratch = wt + L->n_w;
    /* (F, CKK) to (CKK, F) here, not nn_model_weights_t's cache: the weights change every
     * step, and callers of nn_model_loss_grad may write them between calls */
    nn_transpose(wt, w, (size_t)L->out_c, L->n_w / (size_t)L->out_c);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && N > 1)
    for (int n = 0; n < N; n++)
        nn_conv_forward_direct(out + (size_t)n * L->out_size, inp + (size_t)n * L->in_size, wt, b,
                               scratch + (size_t)nn_thread_num() * per, L);
    free(wt);
    return NN_OK;
}

#if LAYERS_X86
/*
 * One group's weight gradient: part (F, C*K*K) = sum over its g samples of dout (x) columns,
 * partb (F) = sums of dout. xp holds each sample's C padded planes (stride plane), dy its
 * (F, Q) errors laid along padded rows: position y*Wp + x, zero where x >= OW or past OH rows.
 * Then tap (c, ky, kx) of a chunk of 16 positions starting at q is the contiguous
 * xp[c][q + ky*Wp + kx ..], and the K*K accumulators of one (f, c) stay in registers.
 */
static inline __attribute__((always_inline, target("avx512f"))) void
conv_dw_tile(const int K, float *part, float *partb, const float *xp, size_t plane, const float *dy,
             size_t Q, int g, int C, int F, int Wp)
{
    const int T = K * K;
    for (int f = 0; f < F; f++) {
        __m512 sb = _mm512_setzero_ps();
        for (int n = 0; n < g; n++)
            for (size_t q = 0; q < Q; q += 16)
                sb = _mm512_add_ps(sb, _mm512_loadu_ps(dy + ((size_t)n * F + f) * Q + q));
        partb[f] = _mm512_reduce_add_ps(sb);
        for (int c = 0; c < C; c++) {
            __m512 acc[25];
#pragma GCC unroll 25
            for (int t = 0; t < T; t++)
                acc[t] = _mm512_setzero_ps();
            for (int n = 0; n < g; n++) {
                const float *d = dy + ((size_t)n * F + f) * Q;
                const float *x = xp + ((size_t)n * C + c) * plane;
                for (size_t q = 0; q < Q; q += 16) {
                    const __m512 dv = _mm512_loadu_ps(d + q);
#pragma GCC unroll 5
                    for (int ky = 0; ky < K; ky++)
#pragma GCC unroll 5
                        for (int kx = 0; kx < K; kx++)
                            acc[ky * K + kx] =
                                _mm512_fmadd_ps(dv, _mm512_loadu_ps(x + q + (size_t)ky * Wp + kx),
                                                acc[ky * K + kx]);
                }
            }
#pragma GCC unroll 25
            for (int t = 0; t < T; t++)
                part[(size_t)f * C * T + (size_t)c * T + t] = _mm512_reduce_add_ps(acc[t]);
        }
    }
}

static __attribute__((target("avx512f"))) void conv_dw_group(float *part, float *partb,
                                                             const float *xp, size_t plane,
                                                             const float *dy, size_t Q, int g,
                                                             int C, int F, int K, int Wp)
{
    if (K == 3)
        conv_dw_tile(3, part, partb, xp, plane, dy, Q, g, C, F, Wp);
    else
        conv_dw_tile(5, part, partb, xp, plane, dy, Q, g, C, F, Wp);
}
#endif

int nn_conv_backward_dw_direct(float *dw, float *db, const float *dout, const float *inp,
                               const struct nn_layer *L, int N, int threads)
{
    if (!nn_conv_train_direct_supported(L))
        return NN_EINVAL;
#if LAYERS_X86
    const int C = L->in_c, H = L->in_h, W = L->in_w, F = L->out_c, K = L->spec.kernel;
    const int pad = L->spec.pad, OH = L->out_h, OW = L->out_w, Wp = W + 2 * pad;
    const size_t CKK = (size_t)C * K * K, P = (size_t)OH * OW;
    size_t Q;
    const size_t plane = dw_plane(L, &Q);
    const int groups = (N + DW_GROUP - 1) / DW_GROUP;
    const size_t work = (size_t)DW_GROUP * ((size_t)C * plane + (size_t)F * Q);
    float *parts =
        malloc(((size_t)groups * (F * CKK + F) + (size_t)threads * work) * sizeof(float));
    if (!parts)
        return NN_ENOMEM;
    float *works = parts + (size_t)groups * (F * CKK + F);
#pragma omp parallel num_threads(threads) if (threads > 1 && groups > 1)
    {
        /* zeroed once: every group writes the same image interiors and error rows, so the
         * borders and the columns past OW stay zero */
        float *xp = works + (size_t)nn_thread_num() * work, *dy = xp + (size_t)DW_GROUP * C * plane;
        memset(xp, 0, work * sizeof *xp);
#pragma omp for schedule(static)
        for (int gi = 0; gi < groups; gi++) {
            const int n0 = gi * DW_GROUP, g = N - n0 < DW_GROUP ? N - n0 : DW_GROUP;
            for (int n = 0; n < g; n++) {
                for (int c = 0; c < C; c++)
                    for (int y = 0; y < H; y++)
                        memcpy(xp + ((size_t)n * C + c) * plane + (size_t)(y + pad) * Wp + pad,
                               inp + (size_t)(n0 + n) * L->in_size + ((size_t)c * H + y) * W,
                               (size_t)W * sizeof *xp);
                for (int f = 0; f < F; f++)
                    for (int y = 0; y < OH; y++)
                        memcpy(dy + ((size_t)n * F + f) * Q + (size_t)y * Wp,
                               dout + (size_t)(n0 + n) * F * P + (size_t)f * P + (size_t)y * OW,
                               (size_t)OW * sizeof *dy);
            }
            float *part = parts + (size_t)gi * (F * CKK + F);
            conv_dw_group(part, part + F * CKK, xp, plane, dy, Q, g, C, F, K, Wp);
        }
    }
    for (int gi = 0; gi < groups; gi++) { /* in order: the same sums for any thread count */
        const float *part = parts + (size_t)gi * (F * CKK + F);
        for (size_t i = 0; i < F * CKK; i++)
            dw[i] += part[i];
        for (int f = 0; f < F; f++)
            db[f] += part[F * CKK + f];
    }
    free(parts);
    return NN_OK;
#else /* not reached: nn_conv_train_direct_supported is 0 without x86 */
    (void)dw, (void)db, (void)dout, (void)inp, (void)N, (void)threads;
    return NN_EINVAL;
#endif
}

/* im (C,H,W) += scatter of col (C*K*K rows, stride ld): the adjoint of im2col */
static void col2im(float *im, const float *col, size_t ld, int C, int H, int W, int K, int s,
                   int pad, int OH, int OW)
{
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < K; ky++) {
            for (int kx = 0; kx < K; kx++) {
                const float *srcc = col + (((size_t)c * K + ky) * K + kx) * ld;
                int x_lo, x_hi;
                valid_ox(&x_lo, &x_hi, kx, s, pad, W, OW);
                for (int oy = 0; oy < OH; oy++) {
                    int y = oy * s + ky - pad;
                    if (y < 0 || y >= H)
                        continue;
                    float *dst = im + ((size_t)c * H + y) * W + kx - pad;
                    const float *sp = srcc + (size_t)oy * OW;
                    if (s == 1) {
                        for (int ox = x_lo; ox < x_hi; ox++)
                            dst[ox] += sp[ox];
                    } else {
                        for (int ox = x_lo; ox < x_hi; ox++)
                            dst[ox * s] += sp[ox];
                    }
                }
            }
        }
    }
}

/* Samples per group: one product per group of G images (cols side by side) instead of one
 * per image, so the products are wide enough to run at full speed and to be split over
 * threads, while the group's columns (C*K*K x G*OH*OW) stay a few MiB. */
static int conv_group(const struct nn_layer *L, int N)
{
    const size_t P = (size_t)L->out_h * L->out_w;
    const size_t CKK = (size_t)L->in_c * L->spec.kernel * L->spec.kernel;
    size_t g = (size_t)(1u << 20) / (CKK * P + 1); /* about 4 MiB of columns */
    if (g < 1)
        g = 1;
    if (g > 64)
        g = 64;
    return N < (int)g ? (N > 0 ? N : 1) : (int)g;
}

size_t nn_conv_scratch_floats(const struct nn_layer *L, int N)
{
    const size_t P = (size_t)L->out_h * L->out_w;
    const size_t CKK = (size_t)L->in_c * L->spec.kernel * L->spec.kernel;
    return (CKK + (size_t)L->out_c) * P * (size_t)conv_group(L, N);
}

/*
 * out (N,F,OH,OW) = conv(inp (N,C,H,W), w (F, C*K*K)) + b (F).
 * Per group of G samples: cols (CKK, G*P) by im2col, tmp (F, G*P) = w @ cols with nn_sgemm
 * (threaded inside), then tmp is scattered to (n, F, P) with the bias added. Every output
 * element is one GEMM element, so the result does not depend on the thread count.
 * keep (NULL, or N*CKK*P floats): the columns are built there instead of in scratch and kept
 * for nn_conv_backward, which then need not build them again.
 */
void nn_conv_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                     float *keep, const struct nn_layer *L, int N, int threads)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, F = L->out_c, K = L->spec.kernel;
    const int P = L->out_h * L->out_w, CKK = C * K * K;
    const int G = conv_group(L, N);
    for (int n0 = 0; n0 < N; n0 += G) {
        const int g = N - n0 < G ? N - n0 : G;
        const size_t ld = (size_t)g * P;
        float *cols = keep ? keep + (size_t)n0 * CKK * P : scratch;
        float *tmp = scratch + (size_t)CKK * ld;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && g > 1)
        for (int i = 0; i < g; i++)
            im2col(cols + (size_t)i * P, ld, inp + (size_t)(n0 + i) * C * H * W, C, H, W, K,
                   L->spec.stride, L->spec.pad, L->out_h, L->out_w);
        nn_sgemm(0, 0, F, (int)ld, CKK, 1.0f, w, CKK, cols, (int)ld, 0.0f, tmp, (int)ld, threads);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && g > 1)
        for (int i = 0; i < g; i++) {
            float *o = out + (size_t)(n0 + i) * F * P;
            for (int f = 0; f < F; f++) {
                const float *t = tmp + (size_t)f * ld + (size_t)i * P;
                float *of = o + (size_t)f * P;
                const float bf = b[f];
                for (int p = 0; p < P; p++)
                    of[p] = t[p] + bf;
            }
        }
    }
}

/*
 * dinp (N,C,H,W) = conv^T(dout); dw (F,CKK) += sum_n dout_n @ col_n^T; db (F) += sums.
 * Per group: dt (F, G*P) gathers dout, dw += dt @ cols^T and dcols = w^T @ dt are single
 * products (K = G*P for dw), dcols is scattered back by col2im. Groups are added in order and
 * every product is deterministic, so the result does not depend on the thread count.
 * kept: the columns nn_conv_forward kept for this batch, or NULL to build them again.
 */
void nn_conv_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                      const float *w, float *scratch, const float *kept, const struct nn_layer *L,
                      int N, int threads)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, F = L->out_c, K = L->spec.kernel;
    const int P = L->out_h * L->out_w, CKK = C * K * K;
    const int G = conv_group(L, N);
    for (int n0 = 0; n0 < N; n0 += G) {
        const int g = N - n0 < G ? N - n0 : G;
        const size_t ld = (size_t)g * P;
        float *dcols = scratch, *dt = scratch + (size_t)CKK * ld;
        const float *cols = kept ? kept + (size_t)n0 * CKK * P : scratch;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && g > 1)
        for (int i = 0; i < g; i++) {
            const float *d = dout + (size_t)(n0 + i) * F * P;
            for (int f = 0; f < F; f++)
                memcpy(dt + (size_t)f * ld + (size_t)i * P, d + (size_t)f * P,
                       (size_t)P * sizeof *dt);
        }
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && F > 1)
        for (int f = 0; f < F; f++) {
            const float *r = dt + (size_t)f * ld;
            float sum = 0.0f;
            for (size_t j = 0; j < ld; j++)
                sum += r[j];
            db[f] += sum;
        }
        if (!kept) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && g > 1)
            for (int i = 0; i < g; i++)
                im2col(scratch + (size_t)i * P, ld, inp + (size_t)(n0 + i) * C * H * W, C, H, W, K,
                       L->spec.stride, L->spec.pad, L->out_h, L->out_w);
        }
        nn_sgemm(0, 1, F, CKK, (int)ld, 1.0f, dt, (int)ld, cols, (int)ld, 1.0f, dw, CKK, threads);
        if (dinp) {
            nn_sgemm(1, 0, CKK, (int)ld, F, 1.0f, w, CKK, dt, (int)ld, 0.0f, dcols, (int)ld,
                     threads);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && g > 1)
            for (int i = 0; i < g; i++) {
                float *di = dinp + (size_t)(n0 + i) * C * H * W;
                memset(di, 0, (size_t)C * H * W * sizeof *di);
                col2im(di, dcols + (size_t)i * P, ld, C, H, W, K, L->spec.stride, L->spec.pad,
                       L->out_h, L->out_w);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Max-pooling: out (N,C,OH,OW); idx records the argmax input offset for backward            */
/* ---------------------------------------------------------------------------------------- */

void nn_maxpool_forward(float *out, int32_t *idx, const float *inp, const struct nn_layer *L, int N,
                        int threads)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    const int K = L->spec.kernel, s = L->spec.stride;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && N > 1)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const float *im = inp + ((size_t)n * C + c) * H * W;
            size_t obase = ((size_t)n * C + c) * OH * OW;
            if (K == 2 && s == 2) {
                /* the common 2x2 window, branch-free; same first-max-wins rule as below */
                for (int oy = 0; oy < OH; oy++) {
                    const float *r0 = im + (size_t)2 * oy * W, *r1 = r0 + W;
                    float *o = out + obase + (size_t)oy * OW;
                    int32_t *ix = idx ? idx + obase + (size_t)oy * OW : NULL;
                    for (int ox = 0; ox < OW; ox++) {
                        float best = r0[2 * ox];
                        int at = 2 * oy * W + 2 * ox;
                        int bi = at;
                        bi = r0[2 * ox + 1] > best ? at + 1 : bi;
                        best = r0[2 * ox + 1] > best ? r0[2 * ox + 1] : best;
                        bi = r1[2 * ox] > best ? at + W : bi;
                        best = r1[2 * ox] > best ? r1[2 * ox] : best;
                        bi = r1[2 * ox + 1] > best ? at + W + 1 : bi;
                        best = r1[2 * ox + 1] > best ? r1[2 * ox + 1] : best;
                        o[ox] = best;
                        if (ix)
                            ix[ox] = bi;
                    }
                }
                continue;
            }
            for (int oy = 0; oy < OH; oy++) {
                for (int ox = 0; ox < OW; ox++) {
                    int best = oy * s * W + ox * s;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int at = (oy * s + ky) * W + ox * s + kx;
                            if (im[at] > im[best])
                                best = at;
                        }
                    out[obase + (size_t)oy * OW + ox] = im[best];
                    if (idx)
                        idx[obase + (size_t)oy * OW + ox] = best;
                }
            }
        }
    }
}

void nn_maxpool_backward(float *dinp, const float *dout, const int32_t *idx,
                         const struct nn_layer *L, int N, int threads)
{
    const int C = L->in_c, HW = L->in_h * L->in_w, P = L->out_h * L->out_w;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && N > 1)
    for (int n = 0; n < N; n++) {
        memset(dinp + (size_t)n * C * HW, 0, (size_t)C * HW * sizeof *dinp);
        for (size_t nc = (size_t)n * C; nc < (size_t)(n + 1) * C; nc++)
            for (int p = 0; p < P; p++)
                dinp[nc * HW + idx[nc * P + p]] += dout[nc * P + p];
    }
}
