/*
 * bench_gemm.c - GFLOP/s of nn_sgemm on the products the trainer runs, one JSON line per figure.
 *
 * Each figure is the median over many timed repetitions after a warm-up. Built with
 * -DDIGITS_BENCH_OPENBLAS (make bench BLAS=openblas) it also times cblas_sgemm on the same
 * shape and thread count and prints a ratio line (ours / OpenBLAS).
 *
 * Shapes (op: M N K): dense forward out(N,O) = in(N,I) @ W^T is NT (batch, O, I); the weight
 * gradient dW(O,I) += dout^T @ in is TN (O, I, batch); the input gradient din = dout @ W is NN
 * (batch, I, O). Convolutions via im2col: out(F, H*W) = W(F, C*K*K) @ cols(C*K*K, H*W).
 *
 * Environment: DIGITS_BENCH_QUICK=1 (short runs), DIGITS_BENCH_THREADS=1,2 (thread counts),
 * DIGITS_BENCH_FILTER=word (only shapes whose name contains word).
 */
#include "nn/gemm_isa.h"
#include "nn/nn_impl.h"
#include "tests/bench/bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef DIGITS_BENCH_OPENBLAS
#include <cblas.h>
/* Declared by OpenBLAS's cblas.h; repeated for other cblas.h providers. */
void openblas_set_num_threads(int num_threads);
#endif

struct shape {
    const char *name;
    int ta, tb, M, N, K;
    float beta;
};

static const struct shape shapes[] = {
    /* 784-256-10 MLP, batch 32 */
    {"mlp256_b32_fwd1", 0, 1, 32, 256, 784, 0.0f},
    {"mlp256_b32_fwd2", 0, 1, 32, 10, 256, 0.0f},
    {"mlp256_b32_dw1", 1, 0, 256, 784, 32, 1.0f},
    {"mlp256_b32_dw2", 1, 0, 10, 256, 32, 1.0f},
    {"mlp256_b32_din2", 0, 0, 32, 256, 10, 0.0f},
    {"mlp256_b32_din1", 0, 0, 32, 784, 256, 0.0f},
    /* 784-256-10 MLP, batch 128 */
    {"mlp256_b128_fwd1", 0, 1, 128, 256, 784, 0.0f},
    {"mlp256_b128_fwd2", 0, 1, 128, 10, 256, 0.0f},
    {"mlp256_b128_dw1", 1, 0, 256, 784, 128, 1.0f},
    {"mlp256_b128_dw2", 1, 0, 10, 256, 128, 1.0f},
    {"mlp256_b128_din2", 0, 0, 128, 256, 10, 0.0f},
    {"mlp256_b128_din1", 0, 0, 128, 784, 256, 0.0f},
    /* 784-512-256-10 MLP, batch 128 */
    {"mlp512_b128_fwd1", 0, 1, 128, 512, 784, 0.0f},
    {"mlp512_b128_fwd2", 0, 1, 128, 256, 512, 0.0f},
    {"mlp512_b128_fwd3", 0, 1, 128, 10, 256, 0.0f},
    {"mlp512_b128_dw1", 1, 0, 512, 784, 128, 1.0f},
    {"mlp512_b128_dw2", 1, 0, 256, 512, 128, 1.0f},
    {"mlp512_b128_dw3", 1, 0, 10, 256, 128, 1.0f},
    {"mlp512_b128_din2", 0, 0, 128, 512, 256, 0.0f},
    {"mlp512_b128_din3", 0, 0, 128, 256, 10, 0.0f},
    /* LeNet-like conv via im2col: conv1 32x5x5 over 1x28x28 'same', conv2 64x5x5 over
     * 32x14x14 'same'; per image and batched over 32 images (cols side by side). */
    {"conv1_fwd_img", 0, 0, 32, 784, 25, 0.0f},
    {"conv1_fwd_b32", 0, 0, 32, 25088, 25, 0.0f},
    {"conv1_dw_img", 0, 1, 32, 25, 784, 1.0f},
    {"conv2_fwd_img", 0, 0, 64, 196, 800, 0.0f},
    {"conv2_fwd_b32", 0, 0, 64, 6272, 800, 0.0f},
    {"conv2_dw_img", 0, 1, 64, 800, 196, 1.0f},
    {"conv2_dcols_img", 1, 0, 800, 196, 64, 0.0f},
    /* square */
    {"square_1024", 0, 0, 1024, 1024, 1024, 0.0f},
};

static const char *op_name(const struct shape *s)
{
    return s->ta ? (s->tb ? "TT" : "TN") : (s->tb ? "NT" : "NN");
}

struct operands {
    float *A, *B, *C;
    int lda, ldb, ldc;
};

static void run_once(int impl, const struct shape *s, struct operands *o, int threads)
{
    if (impl == 0) {
        nn_sgemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, o->A, o->lda, o->B, o->ldb, s->beta, o->C,
                 o->ldc, threads);
        return;
    }
#ifdef DIGITS_BENCH_OPENBLAS
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                s->M, s->N, s->K, 1.0f, o->A, o->lda, o->B, o->ldb, s->beta, o->C, o->ldc);
#endif
}

/* Median seconds per call; *reps receives the number of timed calls. */
static double time_shape(int impl, const struct shape *s, struct operands *o, int threads,
                         double budget_s, int *reps)
{
#ifdef DIGITS_BENCH_OPENBLAS
    if (impl == 1)
        openblas_set_num_threads(threads);
#endif
    /* Warm-up: caches, page faults, the thread team, and a first estimate of the call time. */
    double t0 = bench_now();
    int warm = 0;
    do {
        run_once(impl, s, o, threads);
        warm++;
    } while (warm < 3 || (bench_now() - t0 < 0.2 * budget_s && warm < 1000));
    double per_call = (bench_now() - t0) / warm;
    int n = (int)(budget_s / (per_call > 1e-9 ? per_call : 1e-9));
    if (n < 11)
        n = 11;
    if (n > 20001)
        n = 20001;
    double *t = malloc(sizeof(double) * (size_t)n);
    if (!t) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    for (int r = 0; r < n; r++) {
        double a = bench_now();
        run_once(impl, s, o, threads);
        t[r] = bench_now() - a;
    }
    double med = bench_median(t, n);
    free(t);
    *reps = n;
    return med;
}

static float *random_matrix(size_t n, unsigned *seed)
{
    float *m = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!m) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        m[i] = (float)(*seed >> 8) / 16777216.0f - 0.5f;
    }
    return m;
}

int main(void)
{
    const char *quick = getenv("DIGITS_BENCH_QUICK");
    const char *filter = getenv("DIGITS_BENCH_FILTER");
    const char *tlist = getenv("DIGITS_BENCH_THREADS");
    double budget = quick && *quick && strcmp(quick, "0") ? 0.03 : 0.4;
    int thread_counts[8], n_threads = 0;
    if (tlist && *tlist) {
        for (const char *p = tlist; *p && n_threads < 8;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 1 || v > 256) {
                fprintf(stderr, "bench_gemm: DIGITS_BENCH_THREADS: bad list '%s'\n", tlist);
                return 1;
            }
            thread_counts[n_threads++] = (int)v;
            p = *end == ',' ? end + 1 : end;
        }
    } else {
        thread_counts[n_threads++] = 1;
        thread_counts[n_threads++] = 2;
    }
    const char *isa = nn_sgemm_isa_name(nn_sgemm_isa_best());
    unsigned seed = 12345;

    /* All our figures first, then OpenBLAS's: both keep their worker threads spinning for a
     * while after a call, and on 2 cores that would slow whichever runs next. */
    static double gflops[2][sizeof shapes / sizeof shapes[0]][8];
    int n_impl = 1;
#ifdef DIGITS_BENCH_OPENBLAS
    n_impl = 2;
#endif
    for (int impl = 0; impl < n_impl; impl++) {
        if (n_impl > 1) { /* let the other library's spinning workers go to sleep */
            struct timespec pause = {0, 500000000L};
            nanosleep(&pause, NULL);
        }
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const struct shape *s = &shapes[si];
            if (filter && *filter && !strstr(s->name, filter))
                continue;
            struct operands o;
            int a_rows = s->ta ? s->K : s->M, a_cols = s->ta ? s->M : s->K;
            int b_rows = s->tb ? s->N : s->K, b_cols = s->tb ? s->K : s->N;
            o.lda = a_cols;
            o.ldb = b_cols;
            o.ldc = s->N;
            o.A = random_matrix((size_t)a_rows * a_cols, &seed);
            o.B = random_matrix((size_t)b_rows * b_cols, &seed);
            o.C = random_matrix((size_t)s->M * s->N, &seed);
            double flops = 2.0 * s->M * s->N * s->K;
            for (int ti = 0; ti < n_threads; ti++) {
                int th = thread_counts[ti], reps;
                double med = time_shape(impl, s, &o, th, budget, &reps);
                gflops[impl][si][ti] = flops / med * 1e-9;
                printf("{\"bench\":\"sgemm\",\"impl\":\"%s\",\"isa\":\"%s\",\"shape\":\"%s\","
                       "\"op\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"beta\":%g,\"threads\":%d,"
                       "\"gflops\":%.1f,\"median_ms\":%.4f,\"reps\":%d}\n",
                       impl ? "openblas" : "digits", impl ? "auto" : isa, s->name, op_name(s), s->M,
                       s->N, s->K, (double)s->beta, th, gflops[impl][si][ti], med * 1e3, reps);
                fflush(stdout);
            }
            free(o.A);
            free(o.B);
            free(o.C);
        }
    }
    for (size_t si = 0; n_impl == 2 && si < sizeof shapes / sizeof shapes[0]; si++) {
        const struct shape *s = &shapes[si];
        if (filter && *filter && !strstr(s->name, filter))
            continue;
        for (int ti = 0; ti < n_threads; ti++) {
            printf("{\"bench\":\"sgemm\",\"impl\":\"ratio\",\"shape\":\"%s\",\"op\":\"%s\","
                   "\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"digits_over_openblas\":%.3f}\n",
                   s->name, op_name(s), s->M, s->N, s->K, thread_counts[ti],
                   gflops[0][si][ti] / gflops[1][si][ti]);
        }
    }
    return 0;
}
