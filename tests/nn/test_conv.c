/*
 * test_conv.c - the convolution and max-pool kernels against plain loops written here (the
 * oracles), on odd shapes, strides, padding and batches that cross the kernels' sample groups;
 * bit-identity across thread counts; and the byte-input dense kernels against the float path.
 */
#include "nn/gemm_isa.h"
#include "nn/nn_impl.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Oracles                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static float in_at(const float *im, int C, int H, int W, int n, int c, int y, int x)
{
    if (y < 0 || y >= H || x < 0 || x >= W)
        return 0.0f;
    return im[(((size_t)n * C + c) * H + y) * W + x];
}

/* out (N,F,OH,OW) = b + sum w * in, zero padding */
static void conv_naive(float *out, const float *in, const float *w, const float *b,
                       const struct nn_layer *L, int N)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, F = L->out_c, K = L->spec.kernel;
    const int s = L->spec.stride, p = L->spec.pad, OH = L->out_h, OW = L->out_w;
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double acc = b[f];
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++)
                                acc += (double)w[((f * C + c) * K + ky) * K + kx] *
                                       in_at(in, C, H, W, n, c, oy * s + ky - p, ox * s + kx - p);
                    out[(((size_t)n * F + f) * OH + oy) * OW + ox] = (float)acc;
                }
}

/* dinp = conv^T(dout), dw += dout (x) in, db += sum dout */
static void conv_backward_naive(float *dinp, float *dw, float *db, const float *dout,
                                const float *in, const float *w, const struct nn_layer *L, int N)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, F = L->out_c, K = L->spec.kernel;
    const int s = L->spec.stride, p = L->spec.pad, OH = L->out_h, OW = L->out_w;
    memset(dinp, 0, (size_t)N * C * H * W * sizeof *dinp);
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    float d = dout[(((size_t)n * F + f) * OH + oy) * OW + ox];
                    db[f] += d;
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int y = oy * s + ky - p, x = ox * s + kx - p;
                                if (y < 0 || y >= H || x < 0 || x >= W)
                                    continue;
                                size_t wi = ((size_t)(f * C + c) * K + ky) * K + kx;
                                size_t ii = (((size_t)n * C + c) * H + y) * W + x;
                                dw[wi] += d * in[ii];
                                dinp[ii] += d * w[wi];
                            }
                }
}

static void pool_naive(float *out, const float *in, const struct nn_layer *L, int N)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, K = L->spec.kernel, s = L->spec.stride;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int oy = 0; oy < L->out_h; oy++)
                for (int ox = 0; ox < L->out_w; ox++) {
                    float m = -INFINITY;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            float v = in_at(in, C, H, W, n, c, oy * s + ky, ox * s + kx);
                            m = v > m ? v : m;
                        }
                    out[(((size_t)n * C + c) * L->out_h + oy) * L->out_w + ox] = m;
                }
}

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static float *randoms(size_t n, uint32_t *seed)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        v[i] = (float)((*seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return v;
}

static struct nn_layer conv_layer(int C, int H, int W, int F, int K, int s, int p)
{
    struct nn_layer L;
    memset(&L, 0, sizeof L);
    L.spec.kind = NN_LAYER_CONV2D;
    L.spec.units = F;
    L.spec.kernel = K;
    L.spec.stride = s;
    L.spec.pad = p;
    L.in_c = C, L.in_h = H, L.in_w = W;
    L.out_c = F, L.out_h = (H + 2 * p - K) / s + 1, L.out_w = (W + 2 * p - K) / s + 1;
    L.in_size = (size_t)C * H * W;
    L.out_size = (size_t)F * L.out_h * L.out_w;
    L.n_w = (size_t)F * C * K * K;
    L.n_b = (size_t)F;
    return L;
}

static int close_enough(const float *got, const float *want, size_t n, double tol, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - (double)want[i]);
        if (!(err <= tol * (1.0 + fabs((double)want[i])))) {
            cr_log_error("%s[%zu]: got %g, want %g", what, i, (double)got[i], (double)want[i]);
            return 0;
        }
    }
    return 1;
}

/* Forward and backward of one shape against the oracles, and 1 vs 2 threads bit for bit. */
static void check_conv(int N, int C, int H, int W, int F, int K, int s, int p)
{
    struct nn_layer L = conv_layer(C, H, W, F, K, s, p);
    uint32_t seed = (uint32_t)(N * 7 + C * 11 + H * 13 + K * 17 + s * 19 + p * 23);
    size_t nin = (size_t)N * L.in_size, nout = (size_t)N * L.out_size;
    float *in = randoms(nin, &seed), *w = randoms(L.n_w, &seed), *b = randoms(L.n_b, &seed);
    float *dout = randoms(nout, &seed);
    float *scratch = malloc(nn_conv_scratch_floats(&L, N) * sizeof(float));
    float *out1 = malloc(nout * sizeof(float)), *out2 = malloc(nout * sizeof(float));
    float *ref = malloc(nout * sizeof(float));
    float *di1 = malloc(nin * sizeof(float)), *di2 = malloc(nin * sizeof(float));
    float *diref = malloc(nin * sizeof(float));
    float *dw1 = calloc(L.n_w + L.n_b, sizeof(float)), *dw2 = calloc(L.n_w + L.n_b, sizeof(float));
    float *dwref = calloc(L.n_w + L.n_b, sizeof(float));
    cr_assert(scratch && out1 && out2 && ref && di1 && di2 && diref && dw1 && dw2 && dwref);

    conv_naive(ref, in, w, b, &L, N);
    /* 1 thread building columns in scratch; 2 threads keeping them for backward */
    const size_t CKK = (size_t)C * K * K;
    float *kept = malloc((size_t)N * CKK * L.out_h * L.out_w * sizeof(float));
    cr_assert_not_null(kept);
    nn_conv_forward(out1, in, w, b, scratch, NULL, &L, N, 1);
    nn_conv_forward(out2, in, w, b, scratch, kept, &L, N, 2);
    double tol = 1e-5 * sqrt((double)C * K * K) + 1e-6;
    cr_expect(close_enough(out1, ref, nout, tol, "conv forward"),
              "N=%d C=%d H=%d W=%d F=%d K=%d s=%d p=%d", N, C, H, W, F, K, s, p);
    cr_expect_eq(memcmp(out1, out2, nout * sizeof(float)), 0,
                 "forward: 1 vs 2 threads, columns kept or not");

    conv_backward_naive(diref, dwref, dwref + L.n_w, dout, in, w, &L, N);
    nn_conv_backward(di1, dw1, dw1 + L.n_w, dout, in, w, scratch, NULL, &L, N, 1);
    nn_conv_backward(di2, dw2, dw2 + L.n_w, dout, in, w, scratch, kept, &L, N, 2);
    double tol_w = 1e-5 * sqrt((double)N * L.out_h * L.out_w) + 1e-5;
    cr_expect(close_enough(di1, diref, nin, tol, "conv dinp"), "N=%d C=%d K=%d s=%d p=%d", N, C, K,
              s, p);
    cr_expect(close_enough(dw1, dwref, L.n_w + L.n_b, tol_w, "conv dw/db"),
              "N=%d C=%d K=%d s=%d p=%d", N, C, K, s, p);
    cr_expect_eq(memcmp(di1, di2, nin * sizeof(float)), 0,
                 "dinp: 1 vs 2 threads, columns kept or not");
    cr_expect_eq(memcmp(dw1, dw2, (L.n_w + L.n_b) * sizeof(float)), 0,
                 "dw: 1 vs 2 threads, columns kept or not");

    /* without dinp (first layer) the weight gradient is the same */
    float *dw3 = calloc(L.n_w + L.n_b, sizeof(float));
    cr_assert_not_null(dw3);
    nn_conv_backward(NULL, dw3, dw3 + L.n_w, dout, in, w, scratch, NULL, &L, N, 1);
    cr_expect_eq(memcmp(dw1, dw3, (L.n_w + L.n_b) * sizeof(float)), 0, "dw without dinp");

    free(in), free(w), free(b), free(dout), free(scratch), free(out1), free(out2), free(ref);
    free(di1), free(di2), free(diref), free(dw1), free(dw2), free(dwref), free(dw3), free(kept);
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                     */
/* ---------------------------------------------------------------------------------------- */

Test(conv, matches_naive_loops_on_odd_shapes_strides_and_padding)
{
    check_conv(1, 1, 5, 5, 1, 5, 1, 0);   /* kernel = image: one output */
    check_conv(3, 2, 7, 9, 5, 3, 2, 1);   /* stride 2, padding 1, non-square */
    check_conv(2, 3, 6, 5, 4, 2, 1, 2);   /* even kernel, padding wider than half the kernel */
    check_conv(2, 1, 28, 28, 6, 5, 1, 2); /* MNIST first layer, 'same' */
    check_conv(2, 4, 11, 10, 7, 3, 3, 0); /* stride 3 */
    check_conv(1, 2, 4, 4, 3, 1, 1, 0);   /* 1x1 kernel */
}

Test(conv, batches_larger_than_one_sample_group_match_naive_loops)
{
    check_conv(70, 1, 12, 12, 8, 5, 1, 0);  /* groups of 64: one full group and a tail */
    check_conv(45, 8, 12, 12, 16, 5, 1, 2); /* groups of a handful of samples */
}

Test(maxpool, forward_matches_naive_and_backward_routes_to_the_argmax)
{
    const int shapes[][5] = {{2, 3, 8, 8, 2}, {1, 2, 7, 9, 2}, {2, 1, 9, 9, 3}, {1, 4, 6, 6, 1}};
    const int strides[] = {2, 2, 2, 1};
    for (int t = 0; t < 4; t++) {
        int N = shapes[t][0], C = shapes[t][1], H = shapes[t][2], W = shapes[t][3];
        int K = shapes[t][4], s = strides[t];
        struct nn_layer L;
        memset(&L, 0, sizeof L);
        L.spec.kind = NN_LAYER_MAXPOOL;
        L.spec.kernel = K;
        L.spec.stride = s;
        L.in_c = C, L.in_h = H, L.in_w = W;
        L.out_c = C, L.out_h = (H - K) / s + 1, L.out_w = (W - K) / s + 1;
        size_t nin = (size_t)N * C * H * W, nout = (size_t)N * C * L.out_h * L.out_w;
        uint32_t seed = 77u + (uint32_t)t;
        float *in = randoms(nin, &seed), *dout = randoms(nout, &seed);
        float *out = malloc(nout * sizeof(float)), *ref = malloc(nout * sizeof(float));
        float *out2 = malloc(nout * sizeof(float));
        float *din = malloc(nin * sizeof(float));
        int32_t *idx = malloc(nout * sizeof(int32_t));
        cr_assert(out && ref && out2 && din && idx);
        pool_naive(ref, in, &L, N);
        nn_maxpool_forward(out, idx, in, &L, N, 2);
        nn_maxpool_forward(out2, NULL, in, &L, N, 1);
        cr_expect_eq(memcmp(out, ref, nout * sizeof(float)), 0, "pool shape %d", t);
        cr_expect_eq(memcmp(out2, ref, nout * sizeof(float)), 0, "pool without idx, shape %d", t);
        nn_maxpool_backward(din, dout, idx, &L, N, 2);
        /* the gradient of each window lands on an input equal to the window's max */
        double sum_in = 0.0, sum_out = 0.0;
        for (size_t i = 0; i < nin; i++)
            sum_in += din[i];
        for (size_t i = 0; i < nout; i++) {
            sum_out += dout[i];
            size_t plane = i / ((size_t)L.out_h * L.out_w);
            cr_expect_eq(in[plane * H * W + (size_t)idx[i]], ref[i], "argmax of window %zu", i);
        }
        cr_expect(fabs(sum_in - sum_out) < 1e-3, "gradient mass %g vs %g", sum_in, sum_out);
        free(in), free(dout), free(out), free(ref), free(out2), free(din), free(idx);
    }
}

/* The byte-input first layer gives exactly the bits of converting and using the float path. */
/* N = 300: the byte kernels run; N = 77: too few rows for them, the fallback converts. */
static void check_bytes(int N, int I, int O)
{
    uint32_t seed = 5;
    uint8_t *x = malloc((size_t)2 * N * I);
    uint32_t *idx = malloc((size_t)N * sizeof *idx);
    float *xf = malloc((size_t)N * I * sizeof *xf);
    float *w = randoms((size_t)O * I, &seed), *b = randoms((size_t)O, &seed);
    float *dout = randoms((size_t)N * O, &seed);
    float *o1 = malloc((size_t)N * O * sizeof *o1), *o2 = malloc((size_t)N * O * sizeof *o2);
    float *g1 = calloc((size_t)O * I + O, sizeof *g1), *g2 = calloc((size_t)O * I + O, sizeof *g2);
    cr_assert(x && idx && xf && o1 && o2 && g1 && g2);
    for (int i = 0; i < 2 * N * I; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (seed >> 24) < 150 ? 0 : (uint8_t)(seed >> 16);
    }
    for (int n = 0; n < N; n++) {
        idx[n] = (uint32_t)((n * 37 + 11) % (2 * N));
        nn_bytes_to_float(xf + (size_t)n * I, x + (size_t)idx[n] * I, (size_t)I);
    }
    for (int threads = 1; threads <= 2; threads++) {
        nn_dense_forward(o1, xf, w, b, N, I, O, threads);
        cr_assert_eq(nn_dense_forward_u8(o2, x, idx, w, b, N, I, O, threads), NN_OK);
        cr_expect_eq(memcmp(o1, o2, (size_t)N * O * sizeof *o1), 0, "forward, %d threads", threads);
        nn_dense_backward(NULL, g1, g1 + (size_t)O * I, dout, xf, w, N, I, O, threads);
        cr_assert_eq(nn_dense_backward_u8(g2, g2 + (size_t)O * I, dout, x, idx, N, I, O, threads),
                     NN_OK);
        cr_expect_eq(memcmp(g1, g2, ((size_t)O * I + O) * sizeof *g1), 0, "backward, %d threads",
                     threads);
    }
    free(x), free(idx), free(xf), free(w), free(b), free(dout), free(o1), free(o2), free(g1);
    free(g2);
}

Test(dense_bytes, byte_input_kernels_match_the_float_path_bit_for_bit)
{
    check_bytes(300, 100, 10);
    check_bytes(77, 100, 10);
    check_bytes(500, 33, 2);
    check_bytes(260, 784, 16);
}

/* The single-image direct convolution (inference) against the naive loops, on every
 * instruction set the CPU has a kernel for: filter counts around its 8- and 16-wide vectors
 * and AVX2's groups of 16, position counts around its blocks, padding, 1x1 kernels. AVX2 and
 * AVX-512 give the same bits. */
static void check_direct(int C, int H, int W, int F, int K, int p)
{
    struct nn_layer L = conv_layer(C, H, W, F, K, 1, p);
    uint32_t seed = (uint32_t)(C * 3 + H * 5 + F * 7 + K * 11 + p * 13);
    const size_t CKK = (size_t)C * K * K;
    float *in = randoms(L.in_size, &seed), *w = randoms(L.n_w, &seed);
    float *b = randoms(L.n_b, &seed), *wt = malloc(L.n_w * sizeof *wt);
    float *out[2] = {malloc(L.out_size * sizeof(float)), malloc(L.out_size * sizeof(float))};
    float *ref = malloc(L.out_size * sizeof *ref);
    float *scratch = malloc(nn_conv_scratch_floats(&L, 1) * sizeof *scratch);
    cr_assert(wt && out[0] && out[1] && ref && scratch);
    for (int f = 0; f < F; f++)
        for (size_t k = 0; k < CKK; k++)
            wt[k * F + f] = w[f * CKK + k];
    conv_naive(ref, in, w, b, &L, 1);
    const enum nn_gemm_isa isas[2] = {NN_GEMM_AVX2, NN_GEMM_AVX512};
    for (int i = 0; i < 2; i++) {
        if (!nn_sgemm_isa_supported(isas[i]))
            continue;
        cr_assert_eq(nn_conv_forward_direct_isa(isas[i], out[i], in, wt, b, scratch, &L), 0,
                     "%s F=%d", nn_sgemm_isa_name(isas[i]), F);
        cr_expect(close_enough(out[i], ref, L.out_size, 1e-5 * sqrt((double)CKK) + 1e-6, "direct"),
                  "%s C=%d H=%d W=%d F=%d K=%d p=%d", nn_sgemm_isa_name(isas[i]), C, H, W, F, K, p);
    }
    if (nn_sgemm_isa_supported(NN_GEMM_AVX512))
        cr_expect(memcmp(out[0], out[1], L.out_size * sizeof(float)) == 0,
                  "AVX2 and AVX-512 differ: C=%d H=%d W=%d F=%d K=%d p=%d", C, H, W, F, K, p);
    free(in), free(w), free(b), free(wt), free(out[0]), free(out[1]), free(ref), free(scratch);
}

Test(conv, direct_single_image_kernel_matches_naive_loops)
{
    if (!nn_sgemm_isa_supported(NN_GEMM_AVX2)) {
        struct nn_layer L = conv_layer(1, 8, 8, 4, 3, 1, 1);
        float x[64], wt[36], b[4], out[256], scratch[256];
        memset(x, 0, sizeof x), memset(wt, 0, sizeof wt), memset(b, 0, sizeof b);
        cr_assert_eq(nn_conv_forward_direct(out, x, wt, b, scratch, &L), -1,
                     "no AVX2: the caller must be told to use im2col");
        return;
    }
    check_direct(1, 28, 28, 16, 5, 2);  /* the bench CNN's first layer */
    check_direct(16, 14, 14, 32, 5, 2); /* and its second */
    check_direct(1, 28, 28, 32, 5, 2);  /* the shipped CNN's first */
    check_direct(32, 14, 14, 64, 5, 0); /* and its second */
    check_direct(3, 9, 7, 1, 3, 0);     /* one filter, 7x5 positions, no padding */
    check_direct(2, 6, 6, 17, 3, 1);    /* 16 + 1 filters */
    check_direct(2, 5, 5, 33, 1, 0);    /* 32 + 1 filters, 1x1 kernel */
    check_direct(2, 7, 5, 41, 3, 1);    /* 16 + 16 + 8 + 1 filters */
    check_direct(1, 6, 5, 25, 3, 1);    /* 16 + 9 filters */
    check_direct(1, 4, 4, 50, 4, 3);    /* even kernel, padding wider than half of it */
    check_direct(1, 3, 3, 64, 2, 0);    /* 64 filters, 4 positions */
}

Test(conv, direct_kernel_declines_strides_and_wide_layers)
{
    float x[1] = {0}, w[1] = {0}, b[1] = {0}, out[4096], scratch[8192];
    struct nn_layer s2 = conv_layer(1, 8, 8, 4, 3, 2, 1), wide = conv_layer(1, 4, 4, 65, 1, 1, 0);
    cr_expect_eq(nn_conv_forward_direct(out, x, w, b, scratch, &s2), -1, "stride 2");
    cr_expect_eq(nn_conv_forward_direct(out, x, w, b, scratch, &wide), -1, "65 filters");
}

/* Training a first layer without columns (forward image by image, weight gradient in
 * registers) against the naive loops: sample counts around its groups of 4, filter counts
 * around 16, padding, both kernel sizes; bit-identical for 1, 2 and 3 threads; gradients added
 * to what is there. */
static void check_train_direct(int N, int C, int H, int W, int F, int K, int p)
{
    struct nn_layer L = conv_layer(C, H, W, F, K, 1, p);
    uint32_t seed = (uint32_t)(N * 3 + C * 5 + H * 7 + F * 11 + K * 13 + p * 17);
    const size_t CKK = (size_t)C * K * K, nin = (size_t)N * L.in_size;
    const size_t nout = (size_t)N * L.out_size, ng = L.n_w + L.n_b;
    float *in = randoms(nin, &seed), *w = randoms(L.n_w, &seed), *b = randoms(L.n_b, &seed);
    float *dout = randoms(nout, &seed);
    float *out = malloc(nout * sizeof *out), *ref = malloc(nout * sizeof *ref);
    float *g[3], *gref = calloc(ng, sizeof *gref), *diref = malloc(nin * sizeof *diref);
    for (int t = 0; t < 3; t++) {
        g[t] = calloc(ng, sizeof **g);
        cr_assert_not_null(g[t]);
    }
    cr_assert(out && ref && gref && diref);

    conv_naive(ref, in, w, b, &L, N);
    conv_backward_naive(diref, gref, gref + L.n_w, dout, in, w, &L, N);
    for (int t = 0; t < 3; t++) {
        cr_assert_eq(nn_conv_forward_train_direct(out, in, w, b, &L, N, t + 1), NN_OK);
        cr_expect(close_enough(out, ref, nout, 1e-5 * sqrt((double)CKK) + 1e-6, "forward"),
                  "N=%d C=%d H=%d F=%d K=%d p=%d threads %d", N, C, H, F, K, p, t + 1);
        cr_assert_eq(nn_conv_backward_dw_direct(g[t], g[t] + L.n_w, dout, in, &L, N, t + 1), NN_OK);
    }
    double tol_w = 1e-5 * sqrt((double)N * L.out_h * L.out_w) + 1e-5;
    cr_expect(close_enough(g[0], gref, ng, tol_w, "dw/db"), "N=%d C=%d H=%d F=%d K=%d p=%d", N, C,
              H, F, K, p);
    for (int t = 1; t < 3; t++)
        cr_expect_eq(memcmp(g[0], g[t], ng * sizeof **g), 0, "dw/db: %d threads vs 1", t + 1);
    for (size_t i = 0; i < ng; i++) /* from 1: gref + 1 */
        g[1][i] = 1.0f, gref[i] += 1.0f;
    cr_assert_eq(nn_conv_backward_dw_direct(g[1], g[1] + L.n_w, dout, in, &L, N, 2), NN_OK);
    cr_expect(close_enough(g[1], gref, ng, tol_w, "added to what is there"));
    free(in), free(w), free(b), free(dout), free(out), free(ref), free(gref);
    free(diref), free(g[0]), free(g[1]), free(g[2]);
}

Test(conv, first_layer_training_without_columns_matches_naive_loops)
{
    if (nn_sgemm_isa_best() != NN_GEMM_AVX512) {
        struct nn_layer L = conv_layer(1, 8, 8, 4, 3, 1, 1);
        cr_assert_not(nn_conv_train_direct_supported(&L), "no AVX-512: im2col it is");
        return;
    }
    check_train_direct(7, 1, 28, 28, 16, 5, 0); /* the race CNN's first layer, odd batch */
    check_train_direct(4, 1, 28, 28, 32, 5, 2); /* the shipped CNN's */
    check_train_direct(5, 2, 9, 7, 17, 3, 1);   /* 16 + 1 filters, non-square */
    check_train_direct(3, 4, 8, 8, 40, 5, 2);   /* four planes, padding 2 */
    check_train_direct(1, 3, 5, 5, 1, 3, 0);    /* one sample, one filter, 3x3 outputs */
}

Test(conv, first_layer_training_without_columns_declines_other_shapes)
{
    struct nn_layer ok = conv_layer(1, 8, 8, 4, 3, 1, 1), s2 = conv_layer(1, 8, 8, 4, 3, 2, 1);
    struct nn_layer k7 = conv_layer(1, 9, 9, 4, 7, 1, 0), c5 = conv_layer(5, 8, 8, 4, 3, 1, 1);
    struct nn_layer k4 = conv_layer(1, 8, 8, 4, 4, 1, 0), wide = conv_layer(1, 8, 8, 65, 3, 1, 1);
    cr_expect_eq(nn_conv_train_direct_supported(&ok), nn_sgemm_isa_best() == NN_GEMM_AVX512);
    const struct nn_layer *no[] = {&s2, &k7, &c5, &k4, &wide};
    float x[1024] = {0}, w[4096] = {0}, out[8192];
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        cr_expect_not(nn_conv_train_direct_supported(no[i]), "case %zu", i);
        cr_expect_eq(nn_conv_forward_train_direct(out, x, w, w, no[i], 1, 1), NN_EINVAL);
        cr_expect_eq(nn_conv_backward_dw_direct(w, w, x, x, no[i], 1, 1), NN_EINVAL);
    }
}
