/*
 * layers.c - layer kernels as <layer>_forward / _backward pairs, over a whole mini-batch.
 *
 * Shape legend: N batch, C channels, H/W height/width, K kernel side, F filters, P = OH*OW
 * output positions, I inputs, O outputs. Row-major, contiguous; images are (N, C, H, W).
 * Dense and conv both go through nn_sgemm (conv via im2col), so tuning one product speeds up
 * every layer.
 */
#include "nn_impl.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------------------------------- */
/* Dense                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* out (N,O) = inp (N,I) @ w^T + b, with w (O,I) */
void nn_dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int I,
                      int O, int threads)
{
    nn_sgemm(0, 1, N, O, I, 1.0f, inp, I, w, I, 0.0f, out, O, threads);
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * O;
        for (int o = 0; o < O; o++)
            row[o] += b[o];
    }
}

/* dinp (N,I) = dout (N,O) @ w (O,I); dw (O,I) += dout^T @ inp; db (O) += colsum(dout) */
void nn_dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                       const float *w, int N, int I, int O, int threads)
{
    if (dinp)
        nn_sgemm(0, 0, N, I, O, 1.0f, dout, O, w, I, 0.0f, dinp, I, threads);
    nn_sgemm(1, 0, O, I, N, 1.0f, dout, O, inp, I, 1.0f, dw, I, threads);
    for (int n = 0; n < N; n++) {
        const float *row = dout + (size_t)n * O;
        for (int o = 0; o < O; o++)
            db[o] += row[o];
    }
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
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
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

double nn_softmax_xent(float *probs, float *dlogits, const float *logits, const uint8_t *labels,
                       int N, int O, float scale)
{
    double loss = 0.0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * O;
        float *p = probs + (size_t)n * O;
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
        if (labels) {
            int y = labels[n];
            /* log p_y = z_y - mx - log(sum): exact even when p_y underflows to 0 */
            loss += -((double)z[y] - mx - log(sum));
            if (dlogits) {
                float *d = dlogits + (size_t)n * O;
                for (int o = 0; o < O; o++)
                    d[o] = (p[o] - (o == y ? 1.0f : 0.0f)) * scale;
            }
        }
    }
    return loss;
}

/* ---------------------------------------------------------------------------------------- */
/* Convolution via im2col                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* col (C*K*K, OH*OW) from one image im (C,H,W); zero padding pad, stride s */
static void im2col(float *col, const float *im, int C, int H, int W, int K, int s, int pad,
                   int OH, int OW)
{
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < K; ky++) {
            for (int kx = 0; kx < K; kx++) {
                float *dst = col + (((size_t)c * K + ky) * K + kx) * OH * OW;
                for (int oy = 0; oy < OH; oy++) {
                    int y = oy * s + ky - pad;
                    float *d = dst + (size_t)oy * OW;
                    if (y < 0 || y >= H) {
                        memset(d, 0, (size_t)OW * sizeof *d);
                        continue;
                    }
                    const float *src = im + ((size_t)c * H + y) * W;
                    for (int ox = 0; ox < OW; ox++) {
                        int x = ox * s + kx - pad;
                        d[ox] = (x >= 0 && x < W) ? src[x] : 0.0f;
                    }
                }
            }
        }
    }
}

/* im (C,H,W) += scatter of col (C*K*K, OH*OW): the adjoint of im2col */
static void col2im(float *im, const float *col, int C, int H, int W, int K, int s, int pad, int OH,
                   int OW)
{
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < K; ky++) {
            for (int kx = 0; kx < K; kx++) {
                const float *srcc = col + (((size_t)c * K + ky) * K + kx) * OH * OW;
                for (int oy = 0; oy < OH; oy++) {
                    int y = oy * s + ky - pad;
                    if (y < 0 || y >= H)
                        continue;
                    float *dst = im + ((size_t)c * H + y) * W;
                    const float *sp = srcc + (size_t)oy * OW;
                    for (int ox = 0; ox < OW; ox++) {
                        int x = ox * s + kx - pad;
                        if (x >= 0 && x < W)
                            dst[x] += sp[ox];
                    }
                }
            }
        }
    }
}

/*
 * out (N,F,OH,OW) = conv(inp (N,C,H,W), w (F, C*K*K)) + b (F).
 * Samples are split over threads; each thread uses its own col scratch of C*K*K*OH*OW floats
 * (scratch holds threads of them). Each output element is computed by one thread in a fixed
 * order, so the result does not depend on the thread count.
 */
void nn_conv_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                     const struct nn_layer *L, int N, int threads)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, F = L->out_c, K = L->spec.kernel;
    const int P = L->out_h * L->out_w, CKK = C * K * K;
    const size_t col_size = (size_t)CKK * P;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && N > 1)
    for (int n = 0; n < N; n++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float *col = scratch + (size_t)t * col_size;
        float *o = out + (size_t)n * F * P;
        im2col(col, inp + (size_t)n * C * H * W, C, H, W, K, L->spec.stride, L->spec.pad,
               L->out_h, L->out_w);
        nn_sgemm(0, 0, F, P, CKK, 1.0f, w, CKK, col, P, 0.0f, o, P, 1);
        for (int f = 0; f < F; f++)
            for (int p = 0; p < P; p++)
                o[(size_t)f * P + p] += b[f];
    }
}

/*
 * dinp (N,C,H,W) = conv^T(dout); dw (F,CKK) += sum_n dout_n @ col_n^T; db (F) += sums.
 * Samples are split into `threads` contiguous chunks; each chunk accumulates into its own
 * partial (threads * (F*CKK + F) floats) and the partials are added in chunk order, so the
 * result is deterministic for a given thread count.
 */
void nn_conv_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                      const float *w, float *scratch, float *partial, const struct nn_layer *L,
                      int N, int threads)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, F = L->out_c, K = L->spec.kernel;
    const int P = L->out_h * L->out_w, CKK = C * K * K;
    const size_t col_size = (size_t)CKK * P, part = (size_t)F * CKK + F;
    if (threads > N)
        threads = N > 0 ? N : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int lo = (int)((long)N * t / nt), hi = (int)((long)N * (t + 1) / nt);
        float *col = scratch + (size_t)t * col_size;
        float *pw = partial + (size_t)t * part, *pb = pw + (size_t)F * CKK;
        memset(pw, 0, part * sizeof *pw);
        for (int n = lo; n < hi; n++) {
            const float *d = dout + (size_t)n * F * P;
            im2col(col, inp + (size_t)n * C * H * W, C, H, W, K, L->spec.stride, L->spec.pad,
                   L->out_h, L->out_w);
            nn_sgemm(0, 1, F, CKK, P, 1.0f, d, P, col, P, 1.0f, pw, CKK, 1);
            for (int f = 0; f < F; f++) {
                float s = 0.0f;
                for (int p = 0; p < P; p++)
                    s += d[(size_t)f * P + p];
                pb[f] += s;
            }
            if (dinp) {
                float *di = dinp + (size_t)n * C * H * W;
                nn_sgemm(1, 0, CKK, P, F, 1.0f, w, CKK, d, P, 0.0f, col, P, 1);
                memset(di, 0, (size_t)C * H * W * sizeof *di);
                col2im(di, col, C, H, W, K, L->spec.stride, L->spec.pad, L->out_h, L->out_w);
            }
        }
    }
    for (int t = 0; t < threads; t++) {
        const float *pw = partial + (size_t)t * part, *pb = pw + (size_t)F * CKK;
        for (size_t i = 0; i < (size_t)F * CKK; i++)
            dw[i] += pw[i];
        for (int f = 0; f < F; f++)
            db[f] += pb[f];
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Max-pooling: out (N,C,OH,OW); idx records the argmax input offset for backward            */
/* ---------------------------------------------------------------------------------------- */

void nn_maxpool_forward(float *out, int32_t *idx, const float *inp, const struct nn_layer *L, int N)
{
    const int C = L->in_c, H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    const int K = L->spec.kernel, s = L->spec.stride;
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const float *im = inp + ((size_t)n * C + c) * H * W;
            size_t obase = ((size_t)n * C + c) * OH * OW;
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
                         const struct nn_layer *L, int N)
{
    const int C = L->in_c, HW = L->in_h * L->in_w, P = L->out_h * L->out_w;
    memset(dinp, 0, (size_t)N * C * HW * sizeof *dinp);
    for (size_t nc = 0; nc < (size_t)N * C; nc++)
        for (int p = 0; p < P; p++)
            dinp[nc * HW + idx[nc * P + p]] += dout[nc * P + p];
}
