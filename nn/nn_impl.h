/*
 * nn_impl.h - private structures and kernels shared by the files of libnn.
 *
 * Never included from server/ (it uses nn.h only). Tests may include it to reach kernels.
 *
 * Shape legend used in kernel comments:
 *   N batch, C channels, H height, W width, K kernel side, I inputs, O outputs.
 * All tensors are row-major and contiguous; images are (N, C, H, W).
 */
#ifndef NN_IMPL_H
#define NN_IMPL_H

#include "gemm_isa.h"
#include "nn.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The calling thread's number in its OpenMP team (0 outside one, or without OpenMP): the
 * index of its own scratch buffer. */
static inline int nn_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* One layer, with its shapes resolved when the model is built. Parameters live in the model's
 * single parameter array at w_off (weights) and b_off (biases), llm.c style. */
struct nn_layer {
    struct nn_layer_spec spec;
    int in_c, in_h, in_w;    /* input shape per sample */
    int out_c, out_h, out_w; /* output shape per sample */
    size_t in_size, out_size;
    size_t w_off, n_w; /* dense: (O, I); conv: (F, C*K*K) */
    size_t b_off, n_b; /* dense: O; conv: F */
};

struct nn_model {
    int in_c, in_h, in_w;
    int n_layers;
    struct nn_layer_spec specs[NN_MAX_LAYERS];
    struct nn_layer layers[NN_MAX_LAYERS];
    size_t n_params;
    float *params;
    enum nn_preprocess prep;
    struct nn_meta meta;
    float reject_threshold; /* p(not a digit) from which nn_model_answer rejects; 0 = never */
    /* Inference caches: conv layers' weights transposed (float), dense layers' transposed in
     * half precision (uint16_t), or NULL. See nn_model_weights_t; freed by
     * nn_model_weights_changed. */
    _Atomic(void *) wt_cache[NN_MAX_LAYERS];
    _Atomic(void *) wt_half_cache[NN_MAX_LAYERS];
};

/* Resolves shapes and parameter offsets of model->specs into model->layers and sets
 * n_params (does not allocate). Errors: NN_EINVAL / NN_ERANGE with detail. */
int nn_model_layout(struct nn_model *model, char *err, size_t errlen);

/*
 * Inference of single images reads weights in another order than the batched products:
 *  - dense layers skip their zero inputs (about 80% of an MNIST-style digit's pixels, and the
 *    half or so of hidden units a ReLU leaves at zero), reading the weights by input row, in
 *    half precision (nn_spmv_half: half the bytes; probabilities move by about 1e-3 at most);
 *  - conv layers run a direct convolution over all filters at once, by (c, ky, kx) row.
 * nn_model_weights_t returns conv layer i's weights transposed ((F, C*K*K) to (C*K*K, F));
 * nn_model_weights_half returns dense layer i's transposed ((O, I) to (I, O), rows of O
 * rounded up to 16 with zeros) as halves. Each builds its copy on first use, or returns NULL
 * when layer i has no weights worth it or memory is short. A const model shared by threads
 * needs no lock: each builder publishes with compare-and-swap and a loser frees its copy.
 * Anything that may change the weights calls nn_model_weights_changed, which drops the copies
 * (nn_model_params does; so does every trainer step), so they are never stale; like any write
 * to the weights, that must not race with inference on the same model.
 */
const float *nn_model_weights_t(const struct nn_model *model, int layer);
const uint16_t *nn_model_weights_half(const struct nn_model *model, int layer);
/* Row length (in halves) of nn_model_weights_half for a layer of O outputs: O rounded up to 16. */
static inline int nn_weights_half_ld(int O) { return (O + 15) / 16 * 16; }
void nn_model_weights_changed(struct nn_model *model);
/* dst (cols, rows) = the transpose of src (rows, cols); they must not overlap. */
void nn_transpose(float *dst, const float *src, size_t rows, size_t cols);

/* Largest per-sample activation size over the input and all layer outputs. */
size_t nn_model_max_activation(const struct nn_model *model);

/* snprintf into err if err is not NULL; returns status, so `return seterr(...)` reads well. */
int nn_seterr(char *err, size_t errlen, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---------------------------------------------------------------------------------------- */
/* Matrix product (nn/gemm.c)                                                                */
/* ---------------------------------------------------------------------------------------- */

/*
 * C = alpha * op(A) * op(B) + beta * C, row-major, single precision.
 *   op(A) is (M, K): A is (M, K) with lda >= K, or (K, M) with lda >= M when trans_a.
 *   op(B) is (K, N): B is (K, N) with ldb >= N, or (N, K) with ldb >= K when trans_b.
 *   C is (M, N) with ldc >= N. beta == 0 means C is write-only (NaNs in C are ignored).
 * threads >= 1: work is split so that no two threads write the same element and every
 * element's sum is computed in the same order whatever the thread count, so results are
 * bit-identical for any threads value.
 */
void nn_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc, int threads);

/*
 * Products with a byte operand, for a first dense layer with few outputs fed straight from the
 * dataset: row k of X is X + idx[k]*ldx (idx NULL: k*ldx) and element x means (float)x * scale,
 * exactly what nn_bytes_to_float stores, and the results are bit-identical to nn_sgemm on the
 * converted rows. Each returns 0 when it ran, or -1 (nothing written) when this CPU or shape
 * has no such kernel (not AVX-512, or the short side over 16): convert and call nn_sgemm then.
 *   nn_sgemm_u8_nt: C (M,N) = X (M,K) @ B^T, B (N,K) with ldb; N <= 16; beta = 0.
 *   nn_sgemm_u8_tn: C (M,N) += A^T @ X, A (K,M) with lda, X (K,N); M <= 16.
 */
int nn_sgemm_u8_nt(int M, int N, int K, const uint8_t *X, const uint32_t *idx, size_t ldx,
                   float scale, const float *B, int ldb, float *C, int ldc, int threads);
int nn_sgemm_u8_tn(int M, int N, int K, const float *A, int lda, const uint8_t *X,
                   const uint32_t *idx, size_t ldx, float scale, float *C, int ldc, int threads);

/*
 * Sparse vector times matrix, for one image through a dense layer with its weights transposed
 * and in IEEE half precision (binary16, as bits; B is (K, N) with ldb, rows readable up to N
 * rounded up to 16): y (N) = bias + sum over t < nnz of val[t] * B[idx[t], :], each weight
 * widened exactly to float. bias may be NULL. Each y element sums its terms in t order
 * (AVX-512 or scalar; the two may differ in the last bits, as nn_sgemm's kernels do).
 */
void nn_spmv_half(float *y, const float *bias, const int32_t *idx, const float *val, int nnz,
                  const uint16_t *B, int ldb, int N);
/* The same with float weights, B (K, N) with ldb (no padding needed); y may be bias (adds
 * to y in place). For the trainer's first layer (nn_dense_forward_io, _backward_io). */
void nn_spmv(float *y, const float *bias, const int32_t *idx, const float *val, int nnz,
             const float *B, int ldb, int N);
/* The nonzero entries of x (n) as positions idx and values val, in order; returns how many.
 * Both lists need room for n entries. */
int nn_nonzeros(const float *x, int n, int32_t *idx, float *val);
/* float -> half, rounded to nearest even (overflow to inf, NaN stays NaN); half -> float is
 * exact. */
uint16_t nn_half_from_float(float f);
float nn_float_from_half(uint16_t h);

/* The plain triple loop: the test oracle for nn_sgemm. Same contract. */
void nn_sgemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* ---------------------------------------------------------------------------------------- */
/* Layer kernels (nn/layers.c): <layer>_forward / _backward pairs                            */
/* ---------------------------------------------------------------------------------------- */

/* out (N,O) = inp (N,I) @ w^T (I,O) + b (O) */
void nn_dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int I,
                      int O, int threads);
/* dinp (N,I) = dout (N,O) @ w (O,I) (skipped when dinp is NULL);
 * dw (O,I) += dout^T @ inp; db (O) += sum over N of dout. */
void nn_dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                       const float *w, int N, int I, int O, int threads);

/* Each sample's nonzero inputs, as nn_dense_forward_io found them for nn_dense_backward_io:
 * row n's positions and values at n*I in idx and val (N*I entries each), count[n] of them;
 * dense: the input was too dense to skip zeros, both went through nn_sgemm. The col_ arrays
 * are backward's room for the same by input: col_start I+1 entries, col_n and col_val N*I,
 * col_list I. */
struct nn_sparse_rows {
    int32_t *idx;
    float *val;
    int *count;
    int dense;
    int *col_start, *col_list;
    int32_t *col_n;
    float *col_val;
};
/* Room for N samples of I inputs in every list: NN_OK, or NN_ENOMEM (nn_sparse_rows_free
 * still frees what was allocated). */
int nn_sparse_rows_alloc(struct nn_sparse_rows *r, size_t N, size_t I);
void nn_sparse_rows_free(struct nn_sparse_rows *r);
/* A first dense layer (no input gradient) with transposed weights wt (I,O), skipping zero
 * inputs: out (N,O) = inp @ wt + b; dwt (I,O) += scale * inp^T @ dout (dwt may be the weights
 * themselves: a fused SGD step with scale -lr); db += colsum(dout). Results do not depend on
 * the thread count. */
void nn_dense_forward_io(float *out, const float *inp, const float *wt, const float *b, int N,
                         int I, int O, struct nn_sparse_rows *rows, int threads);
void nn_dense_backward_io(float *dwt, float scale, float *db, const float *dout, const float *inp,
                          int N, int I, int O, struct nn_sparse_rows *rows, int threads);

/* nn_dense_forward / _backward for a first layer whose input is dataset bytes: sample n is
 * x + idx[n]*I (idx NULL: n*I), scaled by 1/255 as nn_bytes_to_float does; bit-identical to
 * converting and calling the float kernels (which is what they do when no byte kernel fits).
 * Returns NN_OK or NN_ENOMEM (fallback buffer). */
int nn_dense_forward_u8(float *out, const uint8_t *x, const uint32_t *idx, const float *w,
                        const float *b, int N, int I, int O, int threads);
int nn_dense_backward_u8(float *dw, float *db, const float *dout, const uint8_t *x,
                         const uint32_t *idx, int N, int I, int O, int threads);

/*
 * e^x for x in about [-87, 88] (clamped there), relative error about 1e-7: Cody-Waite range
 * reduction x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r (Cephes expf
 * coefficients) and 2^n built in the exponent bits. Branch-free plain C, so the loops that
 * call it are vectorised by the compiler (libm's expf is not).
 */
static inline float nn_exp_approx(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    /* round to nearest by adding and removing 1.5 * 2^23 (floorf would block vectorising) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f; /* ln2 high part, exact in float */
    r = r + n * 2.12194440e-4f;     /* ln2 - 0.693359375 */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* Element-wise activations over n values; backward takes the forward output y. */
void nn_relu_forward(float *y, const float *x, size_t n);
void nn_relu_backward(float *dx, const float *dy, const float *y, size_t n);
void nn_sigmoid_forward(float *y, const float *x, size_t n);
void nn_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n);
void nn_tanh_forward(float *y, const float *x, size_t n);
void nn_tanh_backward(float *dx, const float *dy, const float *y, size_t n);

/*
 * Softmax fused with cross-entropy. logits (N,O) -> probs (N,O); returns the summed loss in
 * double. If dlogits is not NULL it receives (probs - onehot(y)) * scale. labels may be NULL
 * (probabilities only). Subtracts the row max, so logits of +-1000 are fine. threads > 1 splits
 * the rows of large batches; the result is the same for any thread count (if memory for the
 * per-row terms cannot be had, one thread does it all).
 */
double nn_softmax_xent(float *probs, float *dlogits, const float *logits, const uint8_t *labels,
                       int N, int O, float scale, int threads);

/* Convolution (im2col + nn_sgemm over groups of samples). scratch holds
 * nn_conv_scratch_floats(L, N) floats. keep / kept: NULL, or N*C*K*K*P floats where forward
 * leaves the im2col columns for backward (training). Results do not depend on `threads`. */
size_t nn_conv_scratch_floats(const struct nn_layer *L, int N);
void nn_conv_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                     float *keep, const struct nn_layer *L, int N, int threads);
void nn_conv_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                      const float *w, float *scratch, const float *kept, const struct nn_layer *L,
                      int N, int threads);
/* Direct convolution of one image for inference: out (F,OH,OW) from inp (C,H,W), wt the
 * weights transposed to (C*K*K, F) (nn_model_weights_t), scratch C*(H+2pad)*(W+2pad) floats
 * (nn_conv_scratch_floats(L, 1) is enough). Returns 0, or -1 (nothing written) when
 * nn_conv_direct_supported(L) says there is no such kernel for this CPU and layer (AVX2 or
 * AVX-512, stride 1 and F <= 64 only). _isa: on that instruction set (AVX2 or AVX-512, if the
 * CPU has it, else -1); both give the same bits. */
int nn_conv_direct_supported(const struct nn_layer *L);
int nn_conv_forward_direct(float *out, const float *inp, const float *wt, const float *b,
                           float *scratch, const struct nn_layer *L);
int nn_conv_forward_direct_isa(enum nn_gemm_isa isa, float *out, const float *inp,
                               const float *wt, const float *b, float *scratch,
                               const struct nn_layer *L);
/* Training a first conv layer without im2col columns (see layers.c): when supported (AVX-512,
 * stride 1, K 3 or 5, at most 4 input planes), out (N,F,OH,OW) = conv(inp, w (F,C*K*K)) + b,
 * and dw (F,C*K*K) += weight gradient, db (F) += bias gradient
 * from dout (N,F,OH,OW); no input gradient. Both do not depend on threads. NN_OK, NN_EINVAL
 * (not supported) or NN_ENOMEM (nothing written). */
int nn_conv_train_direct_supported(const struct nn_layer *L);
int nn_conv_forward_train_direct(float *out, const float *inp, const float *w, const float *b,
                                 const struct nn_layer *L, int N, int threads);
int nn_conv_backward_dw_direct(float *dw, float *db, const float *dout, const float *inp,
                               const struct nn_layer *L, int N, int threads);
/* Max-pooling; idx (same shape as out) may be NULL at inference. */
void nn_maxpool_forward(float *out, int32_t *idx, const float *inp, const struct nn_layer *L, int N,
                        int threads);
void nn_maxpool_backward(float *dinp, const float *dout, const int32_t *idx,
                         const struct nn_layer *L, int N, int threads);

/* dst[i] = src[i] / 255 (dataset bytes to network input). */
void nn_bytes_to_float(float *dst, const uint8_t *src, size_t n);
/* The other way: src clamped to [0,1], times 255, rounded (a generated sample to bytes). */
void nn_float_to_bytes(uint8_t *dst, const float *src, size_t n);

#endif
