/*
 * test_sparse.c - the kernels of single-image inference through dense layers: half-precision
 * conversion (against the CPU's own F16C instructions where it has them, and known values),
 * the nonzero lists and the sparse-vector product with half or float weights, on every
 * instruction set this CPU can run.
 */
#include "nn/gemm_isa.h"
#include "nn/nn_impl.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t next_random(uint32_t *seed)
{
    *seed = *seed * 1664525u + 1013904223u;
    return *seed;
}

/* ---------------------------------------------------------------------------------------- */
/* Half precision                                                                            */
/* ---------------------------------------------------------------------------------------- */

Test(half, known_values_round_to_nearest_even)
{
    static const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},        {-0.0f, 0x8000},     {1.0f, 0x3C00},
        {-2.0f, 0xC000},       {0.5f, 0x3800},      {65504.0f, 0x7BFF}, /* largest half */
        {65519.0f, 0x7BFF},    {65520.0f, 0x7C00}, /* halfway to 65536 rounds to inf */
        {1e9f, 0x7C00},        {-INFINITY, 0xFC00}, {0x1p-14f, 0x0400}, /* smallest normal */
        {0x1p-24f, 0x0001},                                             /* smallest subnormal */
        {0x1p-25f, 0x0000},    /* halfway to it: ties to even, zero */
        {0x1.8p-24f, 0x0002},  /* 1.5 ulp: ties to even, 2 */
        {0x1.001p0f, 0x3C00},  /* 1 + a quarter of the step: down */
        {0x1.002p0f, 0x3C00},  /* exactly halfway between 0x3C00 and 0x3C01: even, down */
        {0x1.006p0f, 0x3C02},  /* halfway between 0x3C01 and 0x3C02: even, up */
        {0x1.0021p0f, 0x3C01}, /* just above halfway: up */
        {0x1.ffep0f, 0x4000},  /* halfway from 0x3FFF up: even is the next exponent */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint16_t h = nn_half_from_float(cases[i].f);
        cr_expect_eq(h, cases[i].h, "%a -> 0x%04x, expected 0x%04x", (double)cases[i].f, h,
                     cases[i].h);
    }
    uint16_t nan = nn_half_from_float(NAN);
    cr_expect((nan & 0x7C00) == 0x7C00 && (nan & 0x3FF), "NaN stays NaN: 0x%04x", nan);
    cr_expect(isnan(nn_float_from_half(0x7E00)));
    cr_expect_eq(nn_float_from_half(0x7C00), INFINITY);
    cr_expect_eq(nn_float_from_half(0x0001), 0x1p-24f);
    cr_expect_eq(bits_of(nn_float_from_half(0x8000)), 0x80000000u);
    cr_expect_eq(nn_float_from_half(0x7BFF), 65504.0f);
}

Test(half, every_half_widens_exactly_and_converts_back_to_itself)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = nn_float_from_half((uint16_t)h);
        if (isnan(f)) {
            cr_assert((h & 0x7C00) == 0x7C00 && (h & 0x3FF), "0x%04x widened to NaN", h);
            continue;
        }
        cr_assert_eq(nn_half_from_float(f), h, "0x%04x -> %a -> 0x%04x", h, (double)f,
                     nn_half_from_float(f));
    }
}

#if HAVE_X86
/* CPUID leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c") */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

__attribute__((target("f16c"))) static uint16_t cpu_half_from_float(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

__attribute__((target("f16c"))) static float cpu_float_from_half(uint16_t h)
{
    return _cvtsh_ss(h);
}
#endif

/* The CPU's conversion instructions as the oracle: every half, and floats around every half
 * and every midpoint between two halves (the rounding cases), plus random bit patterns. */
Test(half, matches_the_cpus_f16c_conversions)
{
#if HAVE_X86
    if (!cpu_has_f16c())
        cr_skip_test("no F16C on this CPU: compared with known values only");
    for (uint32_t h = 0; h < 0x10000; h++) {
        float ours = nn_float_from_half((uint16_t)h), cpu = cpu_float_from_half((uint16_t)h);
        if (isnan(cpu)) {
            cr_assert(isnan(ours), "0x%04x", h);
            continue;
        }
        cr_assert_eq(bits_of(ours), bits_of(cpu), "0x%04x: %a vs %a", h, (double)ours, (double)cpu);
        /* the float of h, the midpoint to h + 1, and one float step either side of both */
        float mid = h < 0x7C00 || (h >= 0x8000 && h < 0xFC00)
                        ? (ours + nn_float_from_half((uint16_t)(h + 1))) / 2
                        : ours;
        const float probes[] = {ours,
                                mid,
                                nextafterf(ours, INFINITY),
                                nextafterf(ours, -INFINITY),
                                nextafterf(mid, INFINITY),
                                nextafterf(mid, -INFINITY)};
        for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
            float f = probes[i];
            if (isnan(f))
                continue;
            cr_assert_eq(nn_half_from_float(f), cpu_half_from_float(f), "%a: 0x%04x vs 0x%04x",
                         (double)f, nn_half_from_float(f), cpu_half_from_float(f));
        }
    }
    uint32_t seed = 5;
    for (int i = 0; i < 1000000; i++) {
        float f = float_of(next_random(&seed));
        if (isnan(f))
            continue;
        cr_assert_eq(nn_half_from_float(f), cpu_half_from_float(f), "%a", (double)f);
    }
#else
    cr_skip_test("not an x86 CPU: compared with known values only");
#endif
}

/* ---------------------------------------------------------------------------------------- */
/* Nonzero lists and the sparse product                                                      */
/* ---------------------------------------------------------------------------------------- */

/* nn_nonzeros against a plain loop, for lengths around the 16-wide vector and its tail, on
 * inputs with runs of zeros, negative zeros (zero) and NaN (not zero). */
static void check_nonzeros(enum nn_gemm_isa isa)
{
    enum { MAX_N = 100 };
    uint32_t seed = 3;
    for (int n = 0; n <= MAX_N; n++) {
        for (int round = 0; round < 20; round++) {
            float x[MAX_N], val[MAX_N];
            int32_t idx[MAX_N];
            int want = 0;
            for (int i = 0; i < n; i++) {
                uint32_t r = next_random(&seed) >> 24;
                x[i] = r < 150 ? 0.0f : r < 160 ? -0.0f : r < 162 ? NAN : (float)r / 255.0f;
                want += !(x[i] == 0.0f);
            }
            int got = nn_nonzeros_isa(isa, x, n, idx, val);
            cr_assert_eq(got, want, "%s n=%d: %d nonzeros, expected %d", nn_sgemm_isa_name(isa), n,
                         got, want);
            for (int t = 0, i = 0; i < n; i++) {
                if (x[i] == 0.0f)
                    continue;
                cr_assert_eq(idx[t], i, "%s n=%d: entry %d", nn_sgemm_isa_name(isa), n, t);
                cr_assert_eq(bits_of(val[t]), bits_of(x[i]), "%s n=%d: entry %d",
                             nn_sgemm_isa_name(isa), n, t);
                t++;
            }
        }
    }
}

Test(sparse, nonzero_lists_match_a_plain_loop)
{
    check_nonzeros(NN_GEMM_SCALAR);
    if (nn_sgemm_isa_supported(NN_GEMM_AVX512))
        check_nonzeros(NN_GEMM_AVX512);
}

/* nn_spmv_half (half) or nn_spmv against a double-precision loop over the (widened)
 * weights, for widths around the 256-column register block and every tail length class, with
 * and without bias and, for floats, in place (y is the bias), with a leading dimension beyond
 * the width. */
static void check_spmv(enum nn_gemm_isa isa, int half)
{
    static const int widths[] = {1, 10, 15, 16, 17, 100, 255, 256, 257, 512, 600};
    enum { K = 300 };
    uint32_t seed = 11;
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        const int N = widths[w], ldb = (N + 15) / 16 * 16 + 16;
        uint16_t *Bh = malloc((size_t)K * ldb * sizeof *Bh);
        float *Bf = malloc((size_t)K * ldb * sizeof *Bf);
        float *bias = malloc((size_t)N * sizeof *bias), *y = malloc((size_t)N * sizeof *y);
        float val[K];
        int32_t idx[K];
        cr_assert(Bh && Bf && bias && y);
        for (size_t i = 0; i < (size_t)K * ldb; i++) {
            Bh[i] = nn_half_from_float((float)(next_random(&seed) >> 8) / 8388608.0f - 1.0f);
            Bf[i] = half ? nn_float_from_half(Bh[i])
                         : (float)(next_random(&seed) >> 8) / 8388608.0f - 1.0f;
        }
        for (int j = 0; j < N; j++)
            bias[j] = (float)(next_random(&seed) >> 8) / 8388608.0f - 1.0f;
        int nnz = 0;
        for (int k = 0; k < K; k += 1 + k % 5) { /* irregular gaps, increasing rows */
            idx[nnz] = k;
            val[nnz++] = (float)(k % 7) / 7.0f - 0.3f;
        }
        for (int mode = 0; mode < (half ? 2 : 3); mode++) { /* no bias, bias, in place */
            const int with_bias = mode > 0;
            for (int j = 0; j < N; j++)
                y[j] = mode == 2 ? bias[j] : NAN;
            const float *b = mode == 2 ? y : mode == 1 ? bias : NULL;
            if (half)
                nn_spmv_half_isa(isa, y, b, idx, val, nnz, Bh, ldb, N);
            else
                nn_spmv_isa(isa, y, b, idx, val, nnz, Bf, ldb, N);
            for (int j = 0; j < N; j++) {
                double ref = with_bias ? bias[j] : 0.0, mag = fabs(ref);
                for (int t = 0; t < nnz; t++) {
                    double term = (double)val[t] * Bf[(size_t)idx[t] * ldb + j];
                    ref += term;
                    mag += fabs(term);
                }
                cr_assert(fabs(y[j] - ref) <= 1e-5 * mag + 1e-7,
                          "%s %s N=%d j=%d mode=%d: %g vs %g", nn_sgemm_isa_name(isa),
                          half ? "half" : "float", N, j, mode, (double)y[j], ref);
            }
        }
        free(Bh);
        free(Bf);
        free(bias);
        free(y);
    }
}

Test(sparse, half_product_matches_a_plain_loop_on_block_and_tail_widths)
{
    check_spmv(NN_GEMM_SCALAR, 1);
    if (nn_sgemm_isa_supported(NN_GEMM_AVX2))
        check_spmv(NN_GEMM_AVX2, 1);
    if (nn_sgemm_isa_supported(NN_GEMM_AVX512))
        check_spmv(NN_GEMM_AVX512, 1);
}

Test(sparse, float_product_matches_a_plain_loop_also_in_place)
{
    check_spmv(NN_GEMM_SCALAR, 0);
    if (nn_sgemm_isa_supported(NN_GEMM_AVX2))
        check_spmv(NN_GEMM_AVX2, 0);
    if (nn_sgemm_isa_supported(NN_GEMM_AVX512))
        check_spmv(NN_GEMM_AVX512, 0);
}

/* The vector products compute each element as one chain of fused multiply-adds in t order
 * from the bias (or 0), so AVX2 and AVX-512 give the same bits as fmaf in a loop, whichever
 * the CPU has: on every tail width of both register blocks, half and float, with and without
 * bias, and they write nothing past the width. */
static void spmv_fma_chain(float *y, const float *bias, const int32_t *idx, const float *val,
                           int nnz, const uint16_t *Bh, const float *Bf, int ldb, int N)
{
    for (int j = 0; j < N; j++) {
        float acc = bias ? bias[j] : 0.0f;
        for (int t = 0; t < nnz; t++) {
            const size_t at = (size_t)idx[t] * ldb + j;
            acc = fmaf(val[t], Bh ? nn_float_from_half(Bh[at]) : Bf[at], acc);
        }
        y[j] = acc;
    }
}

Test(sparse, vector_products_are_the_fused_multiply_add_chain_bit_for_bit)
{
    if (!nn_sgemm_isa_supported(NN_GEMM_AVX2))
        cr_skip_test("no AVX2 on this CPU: the plain loops are checked against doubles only");
    enum { K = 200, MAX_N = 300, LDB = (MAX_N + 15) / 16 * 16 };
    static uint16_t Bh[K * LDB];
    static float Bf[K * LDB];
    float bias[MAX_N], want[MAX_N], y[MAX_N + 1], val[K];
    int32_t idx[K];
    uint32_t seed = 5;
    for (int i = 0; i < K * LDB; i++) {
        Bh[i] = nn_half_from_float((float)(next_random(&seed) >> 8) / 8388608.0f - 1.0f);
        Bf[i] = (float)(next_random(&seed) >> 8) / 8388608.0f - 1.0f;
    }
    for (int j = 0; j < MAX_N; j++)
        bias[j] = (float)(next_random(&seed) >> 8) / 8388608.0f - 1.0f;
    int nnz = 0;
    for (int k = 0; k < K; k += 1 + k % 3) {
        idx[nnz] = k;
        val[nnz++] = (float)(next_random(&seed) >> 8) / 8388608.0f;
    }
    const enum nn_gemm_isa isas[] = {NN_GEMM_AVX2, NN_GEMM_AVX512};
    int compared = 0;
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        if (!nn_sgemm_isa_supported(isas[i]))
            continue;
        const char *name = nn_sgemm_isa_name(isas[i]);
        for (int N = 1; N <= MAX_N; N++) {
            for (int mode = 0; mode < 4; mode++) { /* half/float x no bias/bias */
                const int half = mode & 1;
                const float *b = mode & 2 ? bias : NULL;
                spmv_fma_chain(want, b, idx, val, nnz, half ? Bh : NULL, Bf, LDB, N);
                y[N] = 42.0f; /* the element past the width must stay untouched */
                if (half)
                    nn_spmv_half_isa(isas[i], y, b, idx, val, nnz, Bh, LDB, N);
                else
                    nn_spmv_isa(isas[i], y, b, idx, val, nnz, Bf, LDB, N);
                for (int j = 0; j < N; j++, compared++)
                    cr_assert_eq(bits_of(y[j]), bits_of(want[j]), "%s N=%d mode=%d j=%d: %a vs %a",
                                 name, N, mode, j, (double)y[j], (double)want[j]);
                cr_assert(y[N] == 42.0f, "%s N=%d mode=%d: wrote past the width", name, N, mode);
            }
        }
    }
    cr_assert_geq(compared, 4 * MAX_N * (MAX_N + 1) / 2);
}
