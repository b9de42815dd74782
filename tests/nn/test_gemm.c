/*
 * test_gemm.c - the tuned nn_sgemm against the naive triple loop, on every instruction set this
 * CPU can run: odd shapes, all four transpose combinations, padded leading dimensions,
 * alpha/beta cases, beta = 0 over NaN, and bit-identical results for any thread count. The
 * shapes reach every path nn_sgemm_isa chooses on AVX-512: blocked (swapped or not), the small
 * NN/TN path, dot_rows for skinny NT and the 2x8 / 8x2 / 16x1 dot tiles for small NT; and
 * on AVX2 the dot products for a short side of 1-2 (M or N = 1 in odd_shapes, with K = 1, 300
 * and 784 around its 8-wide tail).
 */
#include "nn/gemm_isa.h"
#include "nn/nn_impl.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dims {
    int M, N, K;
};

static const struct dims odd_shapes[] = {
    {1, 1, 1},     {1, 784, 1},    {1, 1, 784},   {33, 17, 5},   {7, 300, 129},
    {64, 64, 64},  {250, 97, 513}, {13, 33, 257}, {32, 10, 256}, {10, 256, 32},
    {12, 32, 256}, {5, 1, 300},    {32, 256, 10}, {50, 20, 130}, {25, 47, 3},
};

static float *random_floats(size_t n, uint32_t *seed)
{
    float *m = malloc(n * sizeof(float) + 1);
    cr_assert_not_null(m);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        m[i] = (float)(*seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    return m;
}

/*
 * Runs one case on isa and the oracle and compares element-wise with a relative tolerance of
 * 1e-5 * sqrt(K) against the sum of |terms| (so cancellation does not make it fail). Leading
 * dimensions are the minimum plus pad. Returns the number of mismatches.
 */
static int check_case(enum nn_gemm_isa isa, int ta, int tb, struct dims d, int pad, float alpha,
                      float beta, int threads)
{
    uint32_t seed = (uint32_t)(d.M * 7919 + d.N * 104729 + d.K * 31 + ta * 2 + tb);
    int lda = (ta ? d.M : d.K) + pad, ldb = (tb ? d.K : d.N) + pad, ldc = d.N + pad;
    int a_rows = ta ? d.K : d.M, b_rows = tb ? d.N : d.K;
    float *A = random_floats((size_t)a_rows * lda, &seed);
    float *B = random_floats((size_t)b_rows * ldb, &seed);
    float *C = random_floats((size_t)d.M * ldc, &seed);
    float *R = malloc((size_t)d.M * ldc * sizeof(float));
    cr_assert_not_null(R);
    memcpy(R, C, (size_t)d.M * ldc * sizeof(float));
    /* Scale for the tolerance: the same product on absolute values. */
    float *Aa = malloc((size_t)a_rows * lda * sizeof(float));
    float *Ba = malloc((size_t)b_rows * ldb * sizeof(float));
    float *S = calloc((size_t)d.M * ldc, sizeof(float));
    cr_assert(Aa && Ba && S);
    for (size_t i = 0; i < (size_t)a_rows * lda; i++)
        Aa[i] = fabsf(A[i]);
    for (size_t i = 0; i < (size_t)b_rows * ldb; i++)
        Ba[i] = fabsf(B[i]);
    nn_sgemm_naive(ta, tb, d.M, d.N, d.K, 1.0f, Aa, lda, Ba, ldb, 0.0f, S, ldc);

    nn_sgemm_isa(isa, ta, tb, d.M, d.N, d.K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
    nn_sgemm_naive(ta, tb, d.M, d.N, d.K, alpha, A, lda, B, ldb, beta, R, ldc);

    int bad = 0;
    double tol = 1e-5 * sqrt((double)d.K) + 1e-6;
    for (int i = 0; i < d.M; i++) {
        for (int j = 0; j < d.N; j++) {
            size_t at = (size_t)i * ldc + j;
            double scale = fabs((double)alpha) * S[at] + fabs((double)beta) * 1.0 + 1e-30;
            double err = fabs((double)C[at] - (double)R[at]);
            if (!(err <= tol * scale)) {
                if (bad < 3) {
                    cr_log_error("%s %c%c M=%d N=%d K=%d pad=%d alpha=%g beta=%g threads=%d: "
                                 "C[%d][%d] = %.9g, naive %.9g",
                                 nn_sgemm_isa_name(isa), ta ? 'T' : 'N', tb ? 'T' : 'N', d.M, d.N,
                                 d.K, pad, (double)alpha, (double)beta, threads, i, j,
                                 (double)C[at], (double)R[at]);
                }
                bad++;
            }
        }
        /* Padding columns of C must be untouched. */
        for (int j = d.N; j < ldc; j++) {
            size_t at = (size_t)i * ldc + j;
            if (memcmp(&C[at], &R[at], sizeof(float)) != 0)
                bad++;
        }
    }
    free(A);
    free(B);
    free(C);
    free(R);
    free(Aa);
    free(Ba);
    free(S);
    return bad;
}

static int for_each_isa(int (*fn)(enum nn_gemm_isa isa))
{
    int bad = 0, ran = 0;
    for (int isa = NN_GEMM_SCALAR; isa < NN_GEMM_ISA_COUNT; isa++) {
        if (!nn_sgemm_isa_supported((enum nn_gemm_isa)isa))
            continue;
        ran++;
        bad += fn((enum nn_gemm_isa)isa);
    }
    cr_assert_geq(ran, 1);
    return bad;
}

static int odd_shapes_all_ops(enum nn_gemm_isa isa)
{
    int bad = 0;
    for (size_t s = 0; s < sizeof odd_shapes / sizeof odd_shapes[0]; s++) {
        for (int op = 0; op < 4; op++)
            bad += check_case(isa, op >> 1, op & 1, odd_shapes[s], 0, 1.0f, 0.0f, 1);
    }
    return bad;
}

Test(gemm, tuned_matches_naive_on_odd_shapes_for_all_transposes)
{
    cr_expect_eq(for_each_isa(odd_shapes_all_ops), 0);
}

static int strided_all_ops(enum nn_gemm_isa isa)
{
    int bad = 0;
    const struct dims d[] = {{33, 17, 5},   {7, 300, 129}, {250, 97, 513}, {1, 784, 1},
                             {32, 25, 784}, {13, 33, 257}, {50, 20, 130},  {20, 3, 100}};
    for (size_t s = 0; s < sizeof d / sizeof d[0]; s++) {
        for (int op = 0; op < 4; op++) {
            bad += check_case(isa, op >> 1, op & 1, d[s], 3, 1.0f, 0.0f, 1);
            bad += check_case(isa, op >> 1, op & 1, d[s], 16, 1.0f, 0.0f, 2);
        }
    }
    return bad;
}

Test(gemm, tuned_matches_naive_with_padded_leading_dimensions)
{
    cr_expect_eq(for_each_isa(strided_all_ops), 0);
}

static int alpha_beta_cases(enum nn_gemm_isa isa)
{
    int bad = 0;
    const float ab[][2] = {{1.0f, 1.0f},  {0.5f, -2.0f}, {-1.5f, 0.0f},
                           {2.0f, 0.25f}, {0.0f, 3.0f},  {0.0f, 0.0f}};
    const struct dims d[] = {{33, 17, 5},   {64, 64, 64}, {13, 33, 600},
                             {32, 10, 256}, {9, 25, 40},  {32, 25, 784}};
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++) {
        for (size_t s = 0; s < sizeof d / sizeof d[0]; s++) {
            for (int op = 0; op < 4; op++)
                bad += check_case(isa, op >> 1, op & 1, d[s], 1, ab[i][0], ab[i][1], 2);
        }
    }
    return bad;
}

Test(gemm, tuned_matches_naive_for_general_alpha_and_beta)
{
    cr_expect_eq(for_each_isa(alpha_beta_cases), 0);
}

static int nan_output_case(enum nn_gemm_isa isa)
{
    int bad = 0;
    const struct dims d[] = {{33, 17, 5}, {64, 70, 300}, {1, 1, 1}, {32, 10, 256}};
    for (size_t s = 0; s < sizeof d / sizeof d[0]; s++) {
        for (int op = 0; op < 4; op++) {
            int M = d[s].M, N = d[s].N, K = d[s].K, ta = op >> 1, tb = op & 1;
            uint32_t seed = 99;
            float *A = random_floats((size_t)M * K, &seed);
            float *B = random_floats((size_t)K * N, &seed);
            float *C = malloc((size_t)M * N * sizeof(float));
            cr_assert_not_null(C);
            for (size_t i = 0; i < (size_t)M * N; i++)
                C[i] = NAN;
            nn_sgemm_isa(isa, ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N, 2);
            for (size_t i = 0; i < (size_t)M * N; i++)
                bad += !isfinite(C[i]);
            free(A);
            free(B);
            free(C);
        }
    }
    return bad;
}

Test(gemm, beta_zero_ignores_nan_in_c) { cr_expect_eq(for_each_isa(nan_output_case), 0); }

static int thread_bits_case(enum nn_gemm_isa isa)
{
    /* Shapes above the threading threshold, with ragged edges and K over several blocks. */
    const struct dims d[] = {{128, 256, 784}, {250, 97, 513}, {256, 784, 32},
                             {37, 1000, 300}, {300, 45, 700}, {64, 196, 800}};
    int bad = 0;
    for (size_t s = 0; s < sizeof d / sizeof d[0]; s++) {
        for (int op = 0; op < 4; op++) {
            int M = d[s].M, N = d[s].N, K = d[s].K, ta = op >> 1, tb = op & 1;
            uint32_t seed = 7;
            float *A = random_floats((size_t)M * K, &seed);
            float *B = random_floats((size_t)K * N, &seed);
            float *C0 = random_floats((size_t)M * N, &seed);
            float *C1 = malloc((size_t)M * N * sizeof(float));
            float *C2 = malloc((size_t)M * N * sizeof(float));
            float *C3 = malloc((size_t)M * N * sizeof(float));
            cr_assert(C1 && C2 && C3);
            memcpy(C1, C0, (size_t)M * N * sizeof(float));
            memcpy(C2, C0, (size_t)M * N * sizeof(float));
            memcpy(C3, C0, (size_t)M * N * sizeof(float));
            int lda = ta ? M : K, ldb = tb ? K : N;
            nn_sgemm_isa(isa, ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 1.0f, C1, N, 1);
            nn_sgemm_isa(isa, ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 1.0f, C2, N, 2);
            nn_sgemm_isa(isa, ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 1.0f, C3, N, 3);
            if (memcmp(C1, C2, (size_t)M * N * sizeof(float)) != 0 ||
                memcmp(C1, C3, (size_t)M * N * sizeof(float)) != 0) {
                cr_log_error("%s op=%d M=%d N=%d K=%d: threads 1/2/3 differ in bits",
                             nn_sgemm_isa_name(isa), op, M, N, K);
                bad++;
            }
            free(A);
            free(B);
            free(C0);
            free(C1);
            free(C2);
            free(C3);
        }
    }
    return bad;
}

Test(gemm, results_are_bit_identical_for_any_thread_count)
{
    cr_expect_eq(for_each_isa(thread_bits_case), 0);
}

/*
 * Products too small to thread take their own paths (no packing of B, exact row tiles). For NN
 * and TN each C element must still be the blocked path's chain of operations, bit for bit: C's
 * first M rows against the same product with rows appended to A, which is large enough to be
 * blocked. The shapes cover 1-12-row tiles, masked column tails, K over several KC blocks and
 * more rows than one packed group of A holds.
 */
static int small_bits_case(enum nn_gemm_isa isa)
{
    const struct dims d[] = {{10, 256, 32}, {32, 256, 10}, {128, 256, 10}, {13, 33, 257},
                             {50, 20, 130}, {7, 300, 129}, {32, 784, 25},  {1, 40, 600}};
    const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.7f, -0.5f}};
    int bad = 0;
    for (size_t s = 0; s < sizeof d / sizeof d[0]; s++) {
        const int M = d[s].M, N = d[s].N, K = d[s].K;
        const int big = M + (int)(2.0e6 / (2.0 * N * K)) + 13; /* over GEMM_PAR_FLOPS */
        for (int ta = 0; ta < 2; ta++) {
            for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++) {
                uint32_t seed = (uint32_t)(s * 4 + (size_t)ta);
                const int lda = ta ? big : K;
                float *A = random_floats((size_t)big * K, &seed);
                float *B = random_floats((size_t)K * N, &seed);
                float *C1 = random_floats((size_t)big * N, &seed);
                float *C2 = malloc((size_t)big * N * sizeof(float));
                cr_assert_not_null(C2);
                memcpy(C2, C1, (size_t)big * N * sizeof(float));
                nn_sgemm_isa(isa, ta, 0, M, N, K, ab[i][0], A, lda, B, N, ab[i][1], C1, N, 1);
                nn_sgemm_isa(isa, ta, 0, big, N, K, ab[i][0], A, lda, B, N, ab[i][1], C2, N, 1);
                if (memcmp(C1, C2, (size_t)M * N * sizeof(float)) != 0) {
                    cr_log_error("%s %cN M=%d N=%d K=%d alpha=%g beta=%g: bits differ from the "
                                 "blocked path",
                                 nn_sgemm_isa_name(isa), ta ? 'T' : 'N', M, N, K, (double)ab[i][0],
                                 (double)ab[i][1]);
                    bad++;
                }
                free(A);
                free(B);
                free(C1);
                free(C2);
            }
        }
    }
    return bad;
}

Test(gemm, small_nn_and_tn_products_have_the_bits_of_the_blocked_path)
{
    cr_expect_eq(for_each_isa(small_bits_case), 0);
}

Test(gemm, public_entry_uses_a_supported_kernel_and_agrees_with_it)
{
    enum nn_gemm_isa best = nn_sgemm_isa_best();
    cr_assert(nn_sgemm_isa_supported(best));
    const int M = 45, N = 77, K = 300;
    uint32_t seed = 3;
    float *A = random_floats((size_t)M * K, &seed);
    float *B = random_floats((size_t)K * N, &seed);
    float *C1 = calloc((size_t)M * N, sizeof(float)), *C2 = calloc((size_t)M * N, sizeof(float));
    cr_assert(C1 && C2);
    nn_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N, 2);
    nn_sgemm_isa(best, 0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N, 1);
    cr_expect_eq(memcmp(C1, C2, (size_t)M * N * sizeof(float)), 0);
    free(A);
    free(B);
    free(C1);
    free(C2);
}

/* The library runs the best instruction set the CPU has, up to the build's cap (make
 * MAX_ISA=avx2 sets NN_GEMM_MAX_ISA): so that make test MAX_ISA=avx2 really runs the AVX2
 * code on an AVX-512 machine, and a normal build really runs AVX-512 where there is one. */
Test(gemm, the_best_instruction_set_is_the_cpus_up_to_the_builds_cap)
{
#ifdef NN_GEMM_MAX_ISA
    const enum nn_gemm_isa cap = NN_GEMM_MAX_ISA;
#else
    const enum nn_gemm_isa cap = NN_GEMM_AVX512;
#endif
    enum nn_gemm_isa cpu = NN_GEMM_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        cpu = NN_GEMM_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
        cpu = NN_GEMM_AVX512;
    const enum nn_gemm_isa want = cpu < cap ? cpu : cap;
#elif defined(__aarch64__)
    (void)cap; /* the cap is x86's; every AArch64 CPU has Advanced SIMD */
    const enum nn_gemm_isa want = cpu = NN_GEMM_NEON;
#else
    (void)cap;
    const enum nn_gemm_isa want = cpu;
#endif
    cr_assert_eq(nn_sgemm_isa_best(), want, "runs %s; the CPU has %s and the build allows %s",
                 nn_sgemm_isa_name(nn_sgemm_isa_best()), nn_sgemm_isa_name(cpu),
                 nn_sgemm_isa_name(cap));
}

Test(gemm, empty_products_leave_c_scaled_by_beta)
{
    float C[6] = {1, 2, 3, 4, 5, 6};
    nn_sgemm(0, 0, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 2.0f, C, 3, 1);
    cr_expect_float_eq(C[5], 12.0f, 0.0f);
    nn_sgemm(0, 0, 0, 3, 5, 1.0f, NULL, 5, NULL, 3, 0.0f, C, 3, 1);
    cr_expect_float_eq(C[0], 2.0f, 0.0f);
    C[1] = NAN;
    nn_sgemm(0, 0, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 0.0f, C, 3, 1);
    cr_expect_float_eq(C[1], 0.0f, 0.0f);
}
