/*
 * gemm.c - single-precision matrix product C = alpha * op(A) * op(B) + beta * C (row-major),
 * tuned after Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS
 * 2008) and the BLIS loop structure (Van Zee & van de Geijn, TOMS 2015).
 *
 * Shape legend: op(A) is (M, K), op(B) is (K, N), C is (M, N). MR x NR is the register tile
 * (micro-kernel), KC the depth of one packed block, MC x KC the packed block of A, KC x NC the
 * packed block of B. In the MLP, dense forward is NT (M = batch, N = outputs, K = inputs), the
 * weight gradient TN (M = outputs, N = inputs, K = batch), the input gradient NN.
 *
 * Loop nest, per thread, over that thread's rectangle of C:
 *   for pc in K step KC          depth block; every C element sums its k in the same order
 *     for jc in N step NC        pack op(B)[pc:pc+KC, jc:jc+NC] into NR-wide panels (L2)
 *       for ic in M step MC      pack op(A)[ic:ic+MC, pc:pc+KC] into MR-tall panels
 *         for ir in MC step MR   one A micro-panel (KC x MR) stays in L1 ...
 *           for jr in NC step NR ... while B micro-panels stream from L2
 *             micro-kernel: MR x NR accumulators in registers, KC rank-1 updates
 * Packing makes every operand layout (NN, NT, TN, TT, any leading dimension) look the same to
 * the micro-kernel: panels are contiguous, 64-byte aligned and zero-padded to MR / NR, so edge
 * tiles run the same kernel and only their stores are masked. A packed panel is a plain copy
 * when the operand is contiguous along the panel's width, otherwise a 4x4 SSE transpose.
 * Two shortcuts for small products, both chosen from the shape only: a row-contiguous B (NN,
 * TN) is read in place when the thread has at most GEMM_DIRECT_B_MAX_M rows of C (packing
 * would not be amortised), and a narrow C (e.g. N = 10 logits) is computed as
 * C^T = op(B)^T op(A)^T so that the long side fills the 32-wide vectors. A third, for NT
 * products with a short side of at most 16 rows and a long side of at least 128 (or a short
 * side of 1-2: single-image inference), skips packing altogether: dot products along k read
 * both operands in place (dot_rows, AVX-512; on AVX2 dot_skinny_avx2, for a short side of 1-2
 * too small to thread). The same kernel reads a byte operand
 * (nn_sgemm_u8_nt / _tn: a first layer fed straight from the dataset bytes). A fourth, for NN
 * and TN products too small to thread (AVX-512): B read in place, A packed into a stack buffer,
 * row tiles of exactly the rows left, no loop nest (small_avx512; same bits as the blocked path).
 * A fifth, for other NT products too small to thread with a C of at most 48x48 and K >= 32:
 * tiles of 16 dot products read in place, reduced by one shuffle tree (dot_small_avx512).
 *
 * Blocking: KC = 256 so that an A micro-panel (12 x 256 floats = 12 KiB) sits in the 32 KiB L1
 * with room for the streamed B panels; NC = 512 so that the packed B block (256 x 512 floats
 * = 512 KiB) stays in a 1-2 MiB L2; MC = 192 bounds the A buffer (192 KiB). Kernels:
 *   AVX-512F  12 x 32: 24 zmm accumulators + 2 B vectors + 1 broadcast of the 32 registers.
 *   AVX2+FMA   6 x 16: 12 ymm accumulators + 2 B vectors + 1 broadcast of the 16 registers
 *              (with F16C, which every AVX2 CPU has, for the half-precision sparse product).
 *   scalar     4 x 16: plain C the compiler may vectorise; for CPUs without AVX2.
 * The instruction set is chosen on every call with __builtin_cpu_supports (a few loads; no
 * mutable global of ours), and the AVX functions carry target attributes, so even a
 * PORTABLE=1 (-march=x86-64) build runs the AVX-512 kernel on a CPU that has it.
 *
 * Determinism: each C element is computed as a chain of fused multiply-adds over k in
 * increasing order within each KC block, then c = alpha * acc + beta * c (beta = 1 after the
 * first block). Nothing of that depends on the thread count or on where a tile starts: SIMD
 * lanes are independent and K is never split. Threads only take disjoint rectangles of C, so
 * results are bit-identical for any `threads`. (They do depend on the instruction set.)
 *
 * Threads: one OpenMP team (libgomp keeps its threads between calls) when the product has at
 * least GEMM_PAR_FLOPS flops; below that the fork/join costs more than it saves. C is split
 * into tn column groups x tm row groups of whole tiles, choosing the grid with the least work
 * on the busiest thread (column groups preferred: each thread then packs only its own B).
 *
 * Reentrant: no static mutable data. Packing buffers are allocated per call and per thread
 * (aligned_alloc); if that fails, a bounded stack buffer (< 64 KiB) with MC = MR, NC = NR is
 * used, which is slower but gives the same bits.
 */
#include "nn_impl.h"

#include "gemm_isa.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GEMM_X86 1
#else
#define GEMM_X86 0
#endif
/* Advanced SIMD is part of every AArch64 CPU: no run-time check is needed. */
#if defined(__aarch64__)
#include <arm_neon.h>
#define GEMM_NEON 1
#else
#define GEMM_NEON 0
#endif

/* F16C, which the AVX2 half-precision product needs and every AVX2 CPU has. clang 14's
 * __builtin_cpu_supports does not know "f16c" (and CPUID on every call is a trap to the
 * hypervisor in a VM: microseconds), so clang builds (the fuzzers) take it from AVX2. */
#if defined(__clang__)
#define HAS_F16C 1
#else
#define HAS_F16C __builtin_cpu_supports("f16c")
#endif

/* The best instruction set the library may use (a build option, make MAX_ISA=avx2): runs on
 * an AVX-512 machine the code a CPU without AVX-512 runs, for its tests and benchmarks. */
#ifndef NN_GEMM_MAX_ISA
#define NN_GEMM_MAX_ISA NN_GEMM_AVX512
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#define GEMM_KC 256
#define GEMM_NC 512 /* multiple of every NR */
#define GEMM_MC 192 /* multiple of every MR */
#ifndef GEMM_DIRECT_B_MAX_M
#define GEMM_DIRECT_B_MAX_M 48 /* rows of C up to which a row-contiguous B is not packed */
#endif
#define GEMM_MR_MAX 12
#define GEMM_NR_MAX 32
/* Products below this many flops (2*M*N*K) run on the calling thread only; measured with
 * tests/bench/bench_gemm (DIGITS_BENCH_THRESHOLD=1) on a 2-core EPYC. */
#ifndef GEMM_PAR_FLOPS
#define GEMM_PAR_FLOPS 2.0e6
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define TARGET_AVX512 __attribute__((target("avx512f,fma")))
#define TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

/* One product, as given by the caller, with op() resolved into element strides:
 * op(A)(i,k) = A[i*a_si + k*a_sk], op(B)(k,j) = B[j*b_sj + k*b_sk]. */
struct gemm_job {
    int M, N, K;
    float alpha, beta;
    const float *A;
    ptrdiff_t a_si, a_sk;
    const float *B;
    ptrdiff_t b_sj, b_sk;
    float *C;
    ptrdiff_t c_si, c_sj; /* C(i,j) = C[i*c_si + j*c_sj]; c_sj != 1 only for swapped jobs */
};

/* c (mr x nr; element (i,j) at c[i*c_si + j*c_sj]) = alpha * acc + beta * c, where acc is the
 * MR x NR product of a packed A micro-panel (kc, MR) and a B micro-panel whose row k starts at
 * b + k*sb (packed: sb = NR). beta == 0 never reads c. */
typedef void (*gemm_kernel)(int kc, const float *restrict a, const float *restrict b, ptrdiff_t sb,
                            float *c, ptrdiff_t c_si, ptrdiff_t c_sj, int mr, int nr, float alpha,
                            float beta);

static int imin(int a, int b) { return a < b ? a : b; }

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* Where part p of `parts` near-equal shares of `units` starts (p = parts: units). */
static int share_start(int units, int p, int parts) { return (int)((long)units * p / parts); }

/* ---------------------------------------------------------------------------------------- */
/* Packing                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/*
 * One panel: dst (kc, w) with dst[k*w + x] = src[x*sx + k*sk] for x < nv and 0 for
 * nv <= x < w. When the source is contiguous along x this is a row copy; when it is
 * contiguous along k it is a transpose, done in 4x4 blocks with SSE.
 */
static ALWAYS_INLINE void pack_panel(float *restrict dst, const float *restrict src, ptrdiff_t sx,
                                     ptrdiff_t sk, int w, int nv, int kc)
{
    if (sx == 1) {
        for (int k = 0; k < kc; k++) {
            const float *s = src + k * sk;
            float *d = dst + (size_t)k * w;
            if (nv == w) {
                /* a full row of the panel: w is a constant where this is inlined, so the copy
                 * is a few vector moves (as a loop of unknown length it became a memmove call
                 * per row: 8% of CNN training) */
                memcpy(d, s, sizeof(float) * (size_t)w);
                continue;
            }
            for (int x = 0; x < nv; x++)
                d[x] = s[x];
            for (int x = nv; x < w; x++)
                d[x] = 0.0f;
        }
        return;
    }
    int x = 0;
#if GEMM_X86
    if (sk == 1) {
        for (; x + 4 <= nv; x += 4) {
            const float *s0 = src + x * sx, *s1 = s0 + sx, *s2 = s1 + sx, *s3 = s2 + sx;
            int k = 0;
            for (; k + 4 <= kc; k += 4) {
                __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
                __m128 r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                float *d = dst + (size_t)k * w + x;
                _mm_storeu_ps(d, r0);
                _mm_storeu_ps(d + w, r1);
                _mm_storeu_ps(d + 2 * w, r2);
                _mm_storeu_ps(d + 3 * w, r3);
            }
            for (; k < kc; k++) {
                float *d = dst + (size_t)k * w + x;
                d[0] = s0[k];
                d[1] = s1[k];
                d[2] = s2[k];
                d[3] = s3[k];
            }
        }
    }
#endif
    for (; x < nv; x++) {
        const float *s = src + x * sx;
        for (int k = 0; k < kc; k++)
            dst[(size_t)k * w + x] = s[k * sk];
    }
    for (; x < w; x++) {
        for (int k = 0; k < kc; k++)
            dst[(size_t)k * w + x] = 0.0f;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Micro-kernels                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* a: packed (kc, MR), b: (kc, NR) with row step sb; each computes the full zero-padded tile.
 * Stores go through store_strided when C is written transposed (swapped jobs); it performs
 * the same float operations as the vector stores, so the bits do not depend on the path. */

static ALWAYS_INLINE void store_strided(const float *acc, int NR, float *c, ptrdiff_t c_si,
                                        ptrdiff_t c_sj, int mr, int nr, float alpha, float beta)
{
    for (int i = 0; i < mr; i++) {
        for (int j = 0; j < nr; j++) {
            float *cij = c + i * c_si + j * c_sj;
            float r = alpha * acc[i * NR + j];
            if (beta != 0.0f)
                r = r + beta * *cij;
            *cij = r;
        }
    }
}

static void kernel_scalar(int kc, const float *restrict a, const float *restrict b, ptrdiff_t sb,
                          float *c, ptrdiff_t c_si, ptrdiff_t c_sj, int mr, int nr, float alpha,
                          float beta)
{
    enum { MR = 4, NR = 16 };
    float acc[MR][NR] = {{0}};
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < MR; i++) {
            float av = a[k * MR + i];
            for (int j = 0; j < NR; j++)
                acc[i][j] += av * b[k * sb + j];
        }
    }
    store_strided(&acc[0][0], NR, c, c_si, c_sj, mr, nr, alpha, beta);
}

#if GEMM_NEON
/* 6 x 16 on AArch64: 24 accumulators of 4 floats, 4 B vectors and 2 of A (6 values) of the
 * 32 registers. Every element is the same chain of fused multiply-adds over k as on x86, and
 * every store path (full tile, edge tile, transposed C) does the same alpha * acc + beta * c
 * in vector registers, so the bits do not depend on where a tile falls. */
#define NEON_ROW(i, v, lane, FMA)                                                                  \
    do {                                                                                           \
        acc[i][0] = FMA(acc[i][0], b0, v, lane);                                                   \
        acc[i][1] = FMA(acc[i][1], b1, v, lane);                                                   \
        acc[i][2] = FMA(acc[i][2], b2, v, lane);                                                   \
        acc[i][3] = FMA(acc[i][3], b3, v, lane);                                                   \
    } while (0)

static void kernel_neon(int kc, const float *restrict a, const float *restrict b, ptrdiff_t sb,
                        float *c, ptrdiff_t c_si, ptrdiff_t c_sj, int mr, int nr, float alpha,
                        float beta)
{
    enum { MR = 6, NR = 16 };
    float32x4_t acc[MR][4];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = vdupq_n_f32(0.0f);
    for (int k = 0; k < kc; k++) {
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
        const float32x4_t b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
        const float32x4_t a0 = vld1q_f32(a);
        const float32x2_t a1 = vld1_f32(a + 4);
        NEON_ROW(0, a0, 0, vfmaq_laneq_f32);
        NEON_ROW(1, a0, 1, vfmaq_laneq_f32);
        NEON_ROW(2, a0, 2, vfmaq_laneq_f32);
        NEON_ROW(3, a0, 3, vfmaq_laneq_f32);
        NEON_ROW(4, a1, 0, vfmaq_lane_f32);
        NEON_ROW(5, a1, 1, vfmaq_lane_f32);
        a += MR;
        b += sb;
    }
    const float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(beta);
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * c_si;
        float row[NR] = {0};
        const int direct = c_sj == 1 && nr == NR;
        float *p = direct ? ci : row;
        if (!direct && beta != 0.0f)
            for (int j = 0; j < nr; j++)
                row[j] = ci[j * c_sj];
        for (int j = 0; j < 4; j++) {
            float32x4_t r = vmulq_f32(va, acc[i][j]);
            if (beta != 0.0f)
                r = vaddq_f32(r, vmulq_f32(vb, vld1q_f32(p + 4 * j)));
            vst1q_f32(p + 4 * j, r);
        }
        if (!direct)
            for (int j = 0; j < nr; j++)
                ci[j * c_sj] = row[j];
    }
}
#undef NEON_ROW
#endif

#if GEMM_X86
static TARGET_AVX2 void kernel_avx2(int kc, const float *restrict a, const float *restrict b,
                                    ptrdiff_t sb, float *c, ptrdiff_t c_si, ptrdiff_t c_sj, int mr,
                                    int nr, float alpha, float beta)
{
    enum { MR = 6, NR = 16 };
    __m256 acc[MR][2];
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
        a += MR;
        b += sb;
    }
    if (c_sj != 1) {
        float t[MR * NR];
        for (int i = 0; i < MR; i++) {
            _mm256_storeu_ps(t + i * NR, acc[i][0]);
            _mm256_storeu_ps(t + i * NR + 8, acc[i][1]);
        }
        store_strided(t, NR, c, c_si, c_sj, mr, nr, alpha, beta);
        return;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        if (i >= mr)
            break;
        float *ci = c + i * c_si;
        __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
        if (nr == NR) {
            if (beta != 0.0f) {
                r0 = _mm256_add_ps(r0, _mm256_mul_ps(vb, _mm256_loadu_ps(ci)));
                r1 = _mm256_add_ps(r1, _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8)));
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        } else {
            if (beta != 0.0f) {
                r0 = _mm256_add_ps(r0, _mm256_mul_ps(vb, _mm256_maskload_ps(ci, m0)));
                r1 = _mm256_add_ps(r1, _mm256_mul_ps(vb, _mm256_maskload_ps(ci + 8, m1)));
            }
            _mm256_maskstore_ps(ci, m0, r0);
            _mm256_maskstore_ps(ci + 8, m1, r1);
        }
    }
}

/* The AVX-512 tile, shared by kernel_avx512 (MR = 12, B packed) and small_tile (MR = the rows
 * left, B in place): acc[i] += a[k*MR + i] * B row k over 32 columns, B row k at b + k*sb;
 * MASKED reads only the lanes in m0/m1 (B in place is not padded to 32 columns). */
static ALWAYS_INLINE TARGET_AVX512 void tile_fma_avx512(const int MR, const int MASKED, int kc,
                                                        const float *restrict a,
                                                        const float *restrict b, ptrdiff_t sb,
                                                        __mmask16 m0, __mmask16 m1, __m512 acc[][2])
{
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = MASKED ? _mm512_maskz_loadu_ps(m0, b) : _mm512_loadu_ps(b);
        const __m512 b1 = MASKED ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            const __m512 av = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
        a += MR;
        b += sb;
    }
}

/* Lane masks of the first nr (<= 32) columns: m0 for columns 0-15, m1 for 16-31. */
static ALWAYS_INLINE void tile_masks(int nr, __mmask16 *m0, __mmask16 *m1)
{
    *m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1u);
    *m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1u);
}

/* Rows i < mr of C (row i at c + i*c_si, lanes m0/m1) = alpha * acc[i] + beta * C. alpha == 1
 * and beta == 1 skip multiplications that are exact, so the bits are those of the full form;
 * beta == 0 never reads C (it may hold NaN). */
static ALWAYS_INLINE TARGET_AVX512 void tile_store_avx512(const int MR, __m512 acc[][2], float *c,
                                                          ptrdiff_t c_si, int mr, __mmask16 m0,
                                                          __mmask16 m1, float alpha, float beta)
{
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if (i >= mr)
            break;
        float *ci = c + i * c_si;
        __m512 r0 = acc[i][0], r1 = acc[i][1];
        if (alpha != 1.0f) {
            r0 = _mm512_mul_ps(va, r0);
            r1 = _mm512_mul_ps(va, r1);
        }
        if (beta != 0.0f) {
            __m512 c0 = _mm512_maskz_loadu_ps(m0, ci), c1 = _mm512_maskz_loadu_ps(m1, ci + 16);
            if (beta != 1.0f) {
                c0 = _mm512_mul_ps(vb, c0);
                c1 = _mm512_mul_ps(vb, c1);
            }
            r0 = _mm512_add_ps(r0, c0);
            r1 = _mm512_add_ps(r1, c1);
        }
        _mm512_mask_storeu_ps(ci, m0, r0);
        _mm512_mask_storeu_ps(ci + 16, m1, r1);
    }
}

static TARGET_AVX512 void kernel_avx512(int kc, const float *restrict a, const float *restrict b,
                                        ptrdiff_t sb, float *c, ptrdiff_t c_si, ptrdiff_t c_sj,
                                        int mr, int nr, float alpha, float beta)
{
    enum { MR = 12, NR = 32 };
    __m512 acc[MR][2];
    tile_fma_avx512(MR, 0, kc, a, b, sb, 0xFFFF, 0xFFFF, acc);
    if (c_sj != 1) {
        float t[MR * NR];
        for (int i = 0; i < MR; i++) {
            _mm512_storeu_ps(t + i * NR, acc[i][0]);
            _mm512_storeu_ps(t + i * NR + 16, acc[i][1]);
        }
        store_strided(t, NR, c, c_si, c_sj, mr, nr, alpha, beta);
        return;
    }
    __mmask16 m0, m1;
    tile_masks(nr, &m0, &m1);
    tile_store_avx512(MR, acc, c, c_si, mr, m0, m1, alpha, beta);
}
#endif

/* ---------------------------------------------------------------------------------------- */
/* Blocked loop nest (inlined into one copy per instruction set)                            */
/* ---------------------------------------------------------------------------------------- */

/* C[m0:m1, n0:n1] with packing buffers ap (mcap x KC) and bp (KC x ncap). */
static ALWAYS_INLINE void gemm_block(const struct gemm_job *g, int m0, int m1, int n0, int n1,
                                     float *restrict ap, int mcap, float *restrict bp, int ncap,
                                     const int MR, const int NR, gemm_kernel kernel)
{
    /* A B micro-panel packed once serves every MR-row tile of this thread; with few such
     * tiles, reading a row-contiguous B in place is cheaper than copying it. */
    const int direct_b = g->b_sj == 1 && m1 - m0 <= GEMM_DIRECT_B_MAX_M;
    for (int pc = 0; pc < g->K; pc += GEMM_KC) {
        const int kc = imin(GEMM_KC, g->K - pc);
        const float beta = pc == 0 ? g->beta : 1.0f;
        for (int jc = n0; jc < n1; jc += ncap) {
            const int nc = imin(ncap, n1 - jc);
            for (int jr = 0; jr < nc; jr += NR) {
                if (direct_b && jr + NR <= nc)
                    continue;
                pack_panel(bp + (size_t)jr * kc, g->B + (jc + jr) * g->b_sj + pc * g->b_sk, g->b_sj,
                           g->b_sk, NR, imin(NR, nc - jr), kc);
            }
            for (int ic = m0; ic < m1; ic += mcap) {
                const int mc = imin(mcap, m1 - ic);
                for (int ir = 0; ir < mc; ir += MR) {
                    pack_panel(ap + (size_t)ir * kc, g->A + (ic + ir) * g->a_si + pc * g->a_sk,
                               g->a_si, g->a_sk, MR, imin(MR, mc - ir), kc);
                }
                for (int ir = 0; ir < mc; ir += MR) {
                    float *c = g->C + (ic + ir) * g->c_si + jc * g->c_sj;
                    for (int jr = 0; jr < nc; jr += NR) {
                        const float *b = bp + (size_t)jr * kc;
                        ptrdiff_t sb = NR;
                        if (direct_b && jr + NR <= nc) {
                            b = g->B + (jc + jr) + pc * g->b_sk;
                            sb = g->b_sk;
                        }
                        kernel(kc, ap + (size_t)ir * kc, b, sb, c + jr * g->c_sj, g->c_si, g->c_sj,
                               imin(MR, mc - ir), imin(NR, nc - jr), g->alpha, beta);
                    }
                }
            }
        }
    }
}

/* The fallback when the heap is exhausted: one micro-panel of each operand on the stack. */
static __attribute__((noinline)) void gemm_block_stack(const struct gemm_job *g, int m0, int m1,
                                                       int n0, int n1, int MR, int NR,
                                                       gemm_kernel kernel)
{
    _Alignas(64) float ap[GEMM_MR_MAX * GEMM_KC];
    _Alignas(64) float bp[GEMM_NR_MAX * GEMM_KC];
    gemm_block(g, m0, m1, n0, n1, ap, MR, bp, NR, MR, NR, kernel);
}

static ALWAYS_INLINE void gemm_rect(const struct gemm_job *g, int m0, int m1, int n0, int n1,
                                    const int MR, const int NR, gemm_kernel kernel)
{
    if (m0 >= m1 || n0 >= n1)
        return;
    const int kc = imin(GEMM_KC, g->K);
    const int mcap = imin(GEMM_MC, round_up(m1 - m0, MR));
    const int ncap = imin(GEMM_NC, round_up(n1 - n0, NR));
    /* Both parts are multiples of 16 floats, so bp stays 64-byte aligned. */
    size_t a_floats = (size_t)round_up(mcap * kc, 16), b_floats = (size_t)round_up(ncap * kc, 16);
    float *buf = aligned_alloc(64, (a_floats + b_floats) * sizeof(float));
    if (!buf) {
        gemm_block_stack(g, m0, m1, n0, n1, MR, NR, kernel);
        return;
    }
    gemm_block(g, m0, m1, n0, n1, buf, mcap, buf + a_floats, ncap, MR, NR, kernel);
    free(buf);
}

/* One copy of the loop nest and packing per instruction set, so that they are compiled (and
 * auto-vectorised) for it. */
typedef void (*gemm_rect_fn)(const struct gemm_job *g, int m0, int m1, int n0, int n1);

static void rect_scalar(const struct gemm_job *g, int m0, int m1, int n0, int n1)
{
    gemm_rect(g, m0, m1, n0, n1, 4, 16, kernel_scalar);
}

#if GEMM_X86
static TARGET_AVX2 void rect_avx2(const struct gemm_job *g, int m0, int m1, int n0, int n1)
{
    gemm_rect(g, m0, m1, n0, n1, 6, 16, kernel_avx2);
}

static TARGET_AVX512 void rect_avx512(const struct gemm_job *g, int m0, int m1, int n0, int n1)
{
    gemm_rect(g, m0, m1, n0, n1, 12, 32, kernel_avx512);
}
#endif

#if GEMM_NEON
static void rect_neon(const struct gemm_job *g, int m0, int m1, int n0, int n1)
{
    gemm_rect(g, m0, m1, n0, n1, 6, 16, kernel_neon);
}
#endif

/* ---------------------------------------------------------------------------------------- */
/* Small products with a row-contiguous B: B read in place, exact row tiles (AVX-512)       */
/* ---------------------------------------------------------------------------------------- */
/*
 * For NN and TN products below GEMM_PAR_FLOPS (one thread; 1-10 us per call, e.g. the MLP's
 * 10-row weight gradient or its K = 10 input gradient) the blocked path spends a third or more
 * of its time outside the multiply-adds: it pads M to 12-row tiles (10 rows of 12, or 32 of
 * 36), allocates its buffers, and calls the kernel and its stores once per tile. Here B is
 * read in place (as the blocked path does for few rows), A is packed per group of rows into a
 * stack buffer (it is small: MR x kc floats per tile, reused by every 32-column panel), and
 * each tile has exactly as many rows as are left (MR = 1..12, a compile-time constant).
 * Every C element is the same fused multiply-add chain over k within each KC block, followed
 * by the same alpha * acc + beta * c, as in kernel_avx512, so the bits equal the blocked path.
 */
#define GEMM_SMALL_A_MAX 4096 /* floats of packed A per group of rows: 16 KiB of stack */

#if GEMM_X86
/* One MR x 32 tile (first nr <= 32 columns valid): a packed (kc, MR), B row k at b + k*sb
 * read in place, C row i at c + i*c_si. */
static ALWAYS_INLINE TARGET_AVX512 void small_tile(const int MR, int kc, const float *restrict a,
                                                   const float *restrict b, ptrdiff_t sb, float *c,
                                                   ptrdiff_t c_si, int nr, float alpha, float beta)
{
    __m512 acc[GEMM_MR_MAX][2];
    __mmask16 m0, m1;
    tile_masks(nr, &m0, &m1);
    tile_fma_avx512(MR, 1, kc, a, b, sb, m0, m1, acc);
    tile_store_avx512(MR, acc, c, c_si, MR, m0, m1, alpha, beta);
}

/* C = alpha * op(A) B + beta * C for a job with b_sj == 1 and c_sj == 1. */
static TARGET_AVX512 void small_avx512(const struct gemm_job *g)
{
    enum { MR = 12, NR = 32 };
    _Alignas(64) float ap[GEMM_SMALL_A_MAX];
    for (int pc = 0; pc < g->K; pc += GEMM_KC) {
        const int kc = imin(GEMM_KC, g->K - pc);
        const float beta = pc == 0 ? g->beta : 1.0f;
        /* whole tiles of rows whose packed A fits ap (at least one: MR * GEMM_KC fits) */
        const int rows = GEMM_SMALL_A_MAX / kc / MR * MR;
        for (int ig = 0; ig < g->M; ig += rows) {
            const int mg = imin(rows, g->M - ig);
            for (int ir = 0; ir < mg; ir += MR) {
                const int mr = imin(MR, mg - ir);
                pack_panel(ap + (size_t)ir * kc, g->A + (ig + ir) * g->a_si + pc * g->a_sk, g->a_si,
                           g->a_sk, mr, mr, kc);
            }
            /* column panels outside, so that one panel of B stays in L1 for all row tiles */
            for (int j = 0; j < g->N; j += NR) {
                const float *b = g->B + j + pc * g->b_sk;
                const int nr = imin(NR, g->N - j);
                for (int ir = 0; ir < mg; ir += MR) {
                    const float *a = ap + (size_t)ir * kc;
                    float *c = g->C + (ig + ir) * g->c_si + j;
#define SMALL_CASE(mr_)                                                                            \
    case mr_: small_tile(mr_, kc, a, b, g->b_sk, c, g->c_si, nr, g->alpha, beta); break
                    switch (imin(MR, mg - ir)) {
                        SMALL_CASE(1);
                        SMALL_CASE(2);
                        SMALL_CASE(3);
                        SMALL_CASE(4);
                        SMALL_CASE(5);
                        SMALL_CASE(6);
                        SMALL_CASE(7);
                        SMALL_CASE(8);
                        SMALL_CASE(9);
                        SMALL_CASE(10);
                        SMALL_CASE(11);
                        SMALL_CASE(12);
                    default: break;
                    }
#undef SMALL_CASE
                }
            }
        }
    }
}
#endif

/* ---------------------------------------------------------------------------------------- */
/* Small NT products: tiles of 16 dot products (AVX-512)                                    */
/* ---------------------------------------------------------------------------------------- */
/*
 * C = alpha * A B^T + beta * C, both operands contiguous along k, with a small C (at most
 * GEMM_DOT_TILE_MAX_MN elements), too small to thread and not skinny enough for dot_rows: e.g.
 * 32x10x256, the MLP's logits for a batch of 32, or 32x25x784, conv1's weight gradient for one
 * image. The blocked path transposes both operands into panels on every call (half of its time
 * at 32x10x256) and pads 10 or 25 columns to 32. Here a tile of C is 16 dot products over k
 * read in place, RI rows of A by RJ rows of B (RI * RJ = 16), 16 lanes at a time into 16
 * accumulators, which are then reduced together by a tree of 45 shuffles and adds (sum4,
 * sum_lanes) instead of 16 separate horizontal sums. Columns go in groups of 8 (2x8 tiles:
 * 10 loads per 16 multiply-adds and 2 row stores), then a pair (8x2), then a single one
 * (16x1), so that no column is padded (10 = 8 + 2, 25 = 3 * 8 + 1); rows past M repeat a row.
 * Measured against 4x4 tiles (8 loads, 4 stores) and the blocked path, best of 100-call
 * batches, GFLOP/s: 32x10x256 85 (4x4 67, blocked 44), 32x25x784 87 (80, 48), 64x64x64 80
 * (blocked 82: packing pays off from about 48x48), 32x32x8 14 (blocked 33: below K = 32 a
 * 16-lane step is mostly padding).
 * Each C element is the same operations wherever its tile starts (16 lane chains over k, then
 * the same tree), so the results do not depend on the shape around it or on threads; they
 * differ in the last bits from the blocked path's single chain over k.
 */
#ifndef GEMM_DOT_TILE_MIN_K
#define GEMM_DOT_TILE_MIN_K 32
#endif
#ifndef GEMM_DOT_TILE_MAX_MN
#define GEMM_DOT_TILE_MAX_MN (48 * 48)
#endif

#if GEMM_X86
/* Per 128-bit lane L: the sums of lane L's 4 floats of x, y, z and w, in that order. */
static ALWAYS_INLINE TARGET_AVX512 __m512 sum4(__m512 x, __m512 y, __m512 z, __m512 w)
{
    const __m512 s01 = _mm512_add_ps(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y));
    const __m512 s23 = _mm512_add_ps(_mm512_unpacklo_ps(z, w), _mm512_unpackhi_ps(z, w));
    return _mm512_add_ps(_mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* 128-bit lane i of the result: the sum of the four 128-bit lanes of r_i. */
static ALWAYS_INLINE TARGET_AVX512 __m512 sum_lanes(__m512 r0, __m512 r1, __m512 r2, __m512 r3)
{
    const __m512 g01 =
        _mm512_add_ps(_mm512_shuffle_f32x4(r0, r1, 0x44), _mm512_shuffle_f32x4(r0, r1, 0xEE));
    const __m512 g23 =
        _mm512_add_ps(_mm512_shuffle_f32x4(r2, r3, 0x44), _mm512_shuffle_f32x4(r2, r3, 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(g01, g23, 0x88),
                         _mm512_shuffle_f32x4(g01, g23, 0xDD));
}

/* The k steps of one tile: acc[n] += rows ar[n / RJ] * br[n % RJ], 16 lanes at a time; MASKED
 * for the last, partial step. */
static ALWAYS_INLINE TARGET_AVX512 void dot_tile_step(const int RJ, const int MASKED, __mmask16 m,
                                                      const float *const *ar,
                                                      const float *const *br, int k, __m512 *acc)
{
    const int RI = 16 / RJ;
    __m512 av[16], bv[16];
#pragma GCC unroll 16
    for (int i = 0; i < RI; i++)
        av[i] = MASKED ? _mm512_maskz_loadu_ps(m, ar[i] + k) : _mm512_loadu_ps(ar[i] + k);
#pragma GCC unroll 16
    for (int j = 0; j < RJ; j++)
        bv[j] = MASKED ? _mm512_maskz_loadu_ps(m, br[j] + k) : _mm512_loadu_ps(br[j] + k);
#pragma GCC unroll 16
    for (int i = 0; i < RI; i++)
#pragma GCC unroll 16
        for (int j = 0; j < RJ; j++)
            acc[i * RJ + j] = _mm512_fmadd_ps(av[i], bv[j], acc[i * RJ + j]);
}

/* C[0:mr, 0:nr] (mr <= 16 / RJ, nr <= RJ; row i at c + i*ldc) from rows a + i*lda and
 * b + j*ldb of K floats each. Rows past mr or nr repeat row 0 and are not stored. */
static ALWAYS_INLINE TARGET_AVX512 void dot_tile(const int RJ, int K, const float *a, ptrdiff_t lda,
                                                 const float *b, ptrdiff_t ldb, float *c,
                                                 ptrdiff_t ldc, int mr, int nr, float alpha,
                                                 float beta)
{
    const int RI = 16 / RJ;
    const float *ar[16], *br[16];
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < RI; i++)
        ar[i] = a + (i < mr ? i : 0) * lda;
#pragma GCC unroll 16
    for (int j = 0; j < RJ; j++)
        br[j] = b + (j < nr ? j : 0) * ldb;
#pragma GCC unroll 16
    for (int n = 0; n < 16; n++)
        acc[n] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16)
        dot_tile_step(RJ, 0, 0xFFFF, ar, br, k, acc);
    if (k < K)
        dot_tile_step(RJ, 1, (__mmask16)((1u << (K - k)) - 1u), ar, br, k, acc);
    /* t[n] = the sum of acc[n]'s lanes: row n / RJ, column n % RJ of the tile (t is padded so
     * that a 16-float read from any row start stays inside it; the lanes past nr are masked) */
    _Alignas(64) float t[32];
    _mm512_store_ps(t, sum_lanes(sum4(acc[0], acc[1], acc[2], acc[3]),
                                 sum4(acc[4], acc[5], acc[6], acc[7]),
                                 sum4(acc[8], acc[9], acc[10], acc[11]),
                                 sum4(acc[12], acc[13], acc[14], acc[15])));
    _mm512_store_ps(t + 16, _mm512_setzero_ps());
    const __mmask16 mk = (__mmask16)((1u << nr) - 1u);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < RI; i++) {
        if (i >= mr)
            break;
        float *ci = c + i * ldc;
        __m512 r = _mm512_loadu_ps(t + i * RJ);
        if (alpha != 1.0f)
            r = _mm512_mul_ps(va, r);
        if (beta != 0.0f) {
            __m512 cv = _mm512_maskz_loadu_ps(mk, ci);
            if (beta != 1.0f)
                cv = _mm512_mul_ps(vb, cv);
            r = _mm512_add_ps(r, cv);
        }
        _mm512_mask_storeu_ps(ci, mk, r);
    }
}

/* C (M,N) = alpha * A B^T + beta * C, A (M,K) with lda, B (N,K) with ldb, by tiles of
 * (16 / RJ) x RJ dot products. */
static ALWAYS_INLINE TARGET_AVX512 void dot_tiles(const int RJ, int M, int N, int K, float alpha,
                                                  const float *A, int lda, const float *B, int ldb,
                                                  float beta, float *C, int ldc)
{
    const int RI = 16 / RJ;
    for (int i = 0; i < M; i += RI) {
        for (int j = 0; j < N; j += RJ) {
            dot_tile(RJ, K, A + (size_t)i * lda, lda, B + (size_t)j * ldb, ldb,
                     C + (size_t)i * ldc + j, ldc, imin(RI, M - i), imin(RJ, N - j), alpha, beta);
        }
    }
}

/* Columns in groups of 8, then a pair, then a single one (see the section comment). */
static TARGET_AVX512 void dot_small_avx512(int M, int N, int K, float alpha, const float *A,
                                           int lda, const float *B, int ldb, float beta, float *C,
                                           int ldc)
{
    const int n8 = N / 8 * 8, n2 = N / 2 * 2;
    if (n8 > 0)
        dot_tiles(8, M, n8, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (n2 > n8)
        dot_tiles(2, M, n2 - n8, K, alpha, A, lda, B + (size_t)n8 * ldb, ldb, beta, C + n8, ldc);
    if (N > n2)
        dot_tiles(1, M, 1, K, alpha, A, lda, B + (size_t)n2 * ldb, ldb, beta, C + n2, ldc);
}
#endif

/* ---------------------------------------------------------------------------------------- */
/* Skinny NT products: dot-product kernel                                                    */
/* ---------------------------------------------------------------------------------------- */
/*
 * C = alpha * A B^T + beta * C with both operands contiguous along k (NT) and one side short
 * (S <= GEMM_DOT_MAX_S rows: the 10 logits, a dense layer with few units, one image at
 * inference). The blocked path would pack (transpose) the whole long operand on every call
 * and fill at most S of MR or NR tile lanes; here both operands are read in place along k,
 * 16 lanes at a time, LB long rows x S short rows of accumulators, and each accumulator is
 * reduced horizontally at the end. Every C element is still a fixed sequence of operations
 * (16 lane chains over k, then a fixed reduction tree), whoever computes it.
 *   long rows  L (nl, K), row l at L + l*ldl;   short rows S (S, K), row s at Sp + s*lds
 *   C(l, s) at C + l*c_l + s*c_s
 */
#define GEMM_DOT_MAX_S 16
/* ... and a long side of at least this many rows (or a short side of 1-2): below it the
 * horizontal reductions cost more than the blocked path's packing (measured: 32x10x256). */
#ifndef GEMM_DOT_MIN_L
#define GEMM_DOT_MIN_L 128
#endif

#if GEMM_X86
/* Byte rows (L8 != NULL): long row l is L8 + idx[l]*ldl (idx NULL: l*ldl), element value
 * (float)byte * scale, exactly as nn_bytes_to_float would have stored it. */
struct dot_u8 {
    const uint8_t *L8;
    const uint32_t *idx;
    float scale;
};

/* 16 bytes, or the first popcount(m) of them (m = 2^n - 1) and zeros, without AVX-512BW. */
static ALWAYS_INLINE TARGET_AVX512 __m128i load_bytes(const uint8_t *p, __mmask16 m)
{
    if (m == 0xFFFF)
        return _mm_loadu_si128((const __m128i *)(const void *)p);
    _Alignas(16) uint8_t t[16] = {0};
    for (int i = 0; i < 16 && (m >> i) & 1; i++)
        t[i] = p[i];
    return _mm_load_si128((const __m128i *)(const void *)t);
}

static ALWAYS_INLINE TARGET_AVX512 __m512 load_long(const int U8, const float *lr,
                                                    const uint8_t *l8, int k, __mmask16 m,
                                                    __m512 scale)
{
    if (!U8)
        return _mm512_maskz_loadu_ps(m, lr + k);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(load_bytes(l8 + k, m))), scale);
}

static ALWAYS_INLINE TARGET_AVX512 void
dot_block(const int LB, const int S, const int U8, int l_first, int nl, int K, const float *L,
          ptrdiff_t ldl, const struct dot_u8 *u8, const float *Sp, ptrdiff_t lds, float *C,
          ptrdiff_t c_l, ptrdiff_t c_s, float alpha, float beta)
{
    const __m512 vscale = _mm512_set1_ps(U8 ? u8->scale : 1.0f);
    if (!U8)
        L += (ptrdiff_t)l_first * ldl;
    C += (ptrdiff_t)l_first * c_l;
    for (int l0 = 0; l0 < nl; l0 += LB) {
        const int lb = imin(LB, nl - l0);
        /* fixed sizes (not [LB][S], which would be a variable-length array in memory):
         * after unrolling only the [LB][S] corner is used, and it lives in registers */
        __m512 acc[8][GEMM_DOT_MAX_S];
#pragma GCC unroll 8
        for (int i = 0; i < LB; i++)
#pragma GCC unroll 16
            for (int s = 0; s < S; s++)
                acc[i][s] = _mm512_setzero_ps();
        const float *lr[8];
        const uint8_t *l8[8];
#pragma GCC unroll 8
        for (int i = 0; i < LB; i++) {
            const ptrdiff_t row = l_first + (i < lb ? l0 + i : l0);
            lr[i] = NULL;
            l8[i] = NULL;
            if (U8)
                l8[i] = u8->L8 + (u8->idx ? (ptrdiff_t)u8->idx[row] : row) * ldl;
            else
                lr[i] = L + (ptrdiff_t)(i < lb ? l0 + i : l0) * ldl;
        }
        /* the next block's rows: shuffled dataset rows defeat the hardware prefetcher */
        const char *pf[8];
#pragma GCC unroll 8
        for (int i = 0; i < LB; i++) {
            const ptrdiff_t nxt = l0 + LB + i < nl ? l0 + LB + i : l0;
            if (U8)
                pf[i] = (const char *)(u8->L8 + (u8->idx ? (ptrdiff_t)u8->idx[l_first + nxt]
                                                         : l_first + nxt) *
                                                    ldl);
            else
                pf[i] = (const char *)(L + nxt * ldl);
        }
        for (int k = 0; k < K; k += 16) {
            const __mmask16 m = K - k >= 16 ? 0xFFFF : (__mmask16)((1u << (K - k)) - 1u);
            if (!U8 || !(k & 63)) {
#pragma GCC unroll 8
                for (int i = 0; i < LB; i++)
                    _mm_prefetch(pf[i] + (U8 ? k : 4 * k), _MM_HINT_T0);
            }
            __m512 lv[8];
#pragma GCC unroll 8
            for (int i = 0; i < LB; i++)
                lv[i] = load_long(U8, lr[i], l8[i], k, m, vscale);
#pragma GCC unroll 16
            for (int s = 0; s < S; s++) {
                const __m512 sv = _mm512_maskz_loadu_ps(m, Sp + s * lds + k);
#pragma GCC unroll 8
                for (int i = 0; i < LB; i++)
                    acc[i][s] = _mm512_fmadd_ps(lv[i], sv, acc[i][s]);
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < LB; i++) {
            if (i >= lb)
                break;
            float *c = C + (ptrdiff_t)(l0 + i) * c_l;
#pragma GCC unroll 16
            for (int s = 0; s < S; s++) {
                float r = alpha * _mm512_reduce_add_ps(acc[i][s]);
                if (beta != 0.0f)
                    r = r + beta * c[s * c_s];
                c[s * c_s] = r;
            }
        }
    }
}

/* Rows [l0, l1) of the long side; S and the block height LB as compile-time constants. */
static TARGET_AVX512 void dot_rows(int S, int l0, int l1, int K, const float *L, ptrdiff_t ldl,
                                   const struct dot_u8 *u8, const float *Sp, ptrdiff_t lds,
                                   float *C, ptrdiff_t c_l, ptrdiff_t c_s, float alpha, float beta)
{
    const int nl = l1 - l0;
#define DOT_CASE(s_, lb_)                                                                          \
    case s_:                                                                                       \
        if (u8)                                                                                    \
            dot_block(lb_, s_, 1, l0, nl, K, L, ldl, u8, Sp, lds, C, c_l, c_s, alpha, beta);       \
        else                                                                                       \
            dot_block(lb_, s_, 0, l0, nl, K, L, ldl, u8, Sp, lds, C, c_l, c_s, alpha, beta);       \
        break
    switch (S) {
        DOT_CASE(1, 8);
        DOT_CASE(2, 8);
        DOT_CASE(3, 6);
        DOT_CASE(4, 4);
        DOT_CASE(5, 4);
        DOT_CASE(6, 3);
        DOT_CASE(7, 3);
        DOT_CASE(8, 2);
        DOT_CASE(9, 2);
        DOT_CASE(10, 2);
        DOT_CASE(11, 2);
        DOT_CASE(12, 2);
        DOT_CASE(13, 1);
        DOT_CASE(14, 1);
        DOT_CASE(15, 1);
        DOT_CASE(16, 1);
    default: break;
    }
#undef DOT_CASE
}
#endif

#if GEMM_X86
/* An NT product C (M,N) = A B^T as dot products: nl rows of the long side L (stride ldl) by S
 * rows of the short side Sp (stride lds), C's element (l, s) at l * c_l + s * c_s. The short
 * side is A when short_m, else B. */
struct dot_sides {
    int nl, S;
    const float *L, *Sp;
    ptrdiff_t ldl, lds, c_l, c_s;
};

static struct dot_sides dot_sides_of(int short_m, int M, int N, const float *A, int lda,
                                     const float *B, int ldb, int ldc)
{
    if (short_m)
        return (struct dot_sides){N, M, B, A, ldb, lda, 1, ldc};
    return (struct dot_sides){M, N, A, B, lda, ldb, ldc, 1};
}

/* C (M,N) = alpha * A B^T + beta * C through dot_rows, long side split over threads in whole
 * blocks of 8 rows. u8 (A given as bytes) requires N <= GEMM_DOT_MAX_S. */
static void dot_run(int M, int N, int K, float alpha, const float *A, int lda,
                    const struct dot_u8 *u8, const float *B, int ldb, float beta, float *C, int ldc,
                    int threads)
{
    const struct dot_sides d = dot_sides_of(!u8 && M <= N, M, N, A, lda, B, ldb, ldc);
    int nt = threads < 1 ? 1 : threads;
    if (2.0 * M * N * K < GEMM_PAR_FLOPS || d.nl < 16 * nt)
        nt = 1;
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num(), n = omp_get_num_threads();
            const int blocks = (d.nl + 7) / 8;
            const int b0 = share_start(blocks, t, n), b1 = share_start(blocks, t + 1, n);
            dot_rows(d.S, b0 * 8, imin(d.nl, b1 * 8), K, d.L, d.ldl, u8, d.Sp, d.lds, C, d.c_l,
                     d.c_s, alpha, beta);
        }
        return;
    }
#endif
    dot_rows(d.S, 0, d.nl, K, d.L, d.ldl, u8, d.Sp, d.lds, C, d.c_l, d.c_s, alpha, beta);
}

/*
 * AVX2 for NT products with a short side of 1 or 2 (single-image inference through a dense
 * layer): 4 rows of the long side at a time, each element a dot product over k in 8 lanes,
 * then summed across the lanes; no packing. C's layout as in dot_run.
 */
/* Lanes 0..n-1 of 8 set: the mask of a vector with n elements left (all of them when n >= 8). */
static ALWAYS_INLINE TARGET_AVX2 __m256i lanes_below_avx2(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static ALWAYS_INLINE TARGET_AVX2 __m256 skinny_load(const int TAIL, const float *p, __m256i m)
{
    return TAIL ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}

static ALWAYS_INLINE TARGET_AVX2 void skinny_step(const int S, const int TAIL, __m256 acc[4][2],
                                                  const float *const lr[4], const float *Sp,
                                                  ptrdiff_t lds, int k, __m256i m)
{
    __m256 sv[2];
    for (int s = 0; s < S; s++)
        sv[s] = skinny_load(TAIL, Sp + s * lds + k, m);
    for (int i = 0; i < 4; i++) {
        const __m256 lv = skinny_load(TAIL, lr[i] + k, m);
        for (int s = 0; s < S; s++)
            acc[i][s] = _mm256_fmadd_ps(lv, sv[s], acc[i][s]);
    }
}

static ALWAYS_INLINE TARGET_AVX2 float sum_lanes_avx2(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static ALWAYS_INLINE TARGET_AVX2 void skinny_rows(const int S, const struct dot_sides *d, int K,
                                                  float *C, float alpha, float beta)
{
    const int k8 = K / 8 * 8;
    const __m256i tail = lanes_below_avx2(K - k8);
    for (int l0 = 0; l0 < d->nl; l0 += 4) {
        const int lb = imin(4, d->nl - l0);
        const float *lr[4];
        __m256 acc[4][2];
        for (int i = 0; i < 4; i++) {
            lr[i] = d->L + (ptrdiff_t)(i < lb ? l0 + i : l0) * d->ldl;
            acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        }
        for (int k = 0; k < k8; k += 8)
            skinny_step(S, 0, acc, lr, d->Sp, d->lds, k, tail);
        if (k8 < K)
            skinny_step(S, 1, acc, lr, d->Sp, d->lds, k8, tail);
        for (int i = 0; i < lb; i++) {
            float *c = C + (ptrdiff_t)(l0 + i) * d->c_l;
            for (int s = 0; s < S; s++) {
                float r = alpha * sum_lanes_avx2(acc[i][s]);
                if (beta != 0.0f)
                    r = r + beta * c[s * d->c_s];
                c[s * d->c_s] = r;
            }
        }
    }
}

static TARGET_AVX2 void dot_skinny_avx2(int M, int N, int K, float alpha, const float *A, int lda,
                                        const float *B, int ldb, float beta, float *C, int ldc)
{
    const struct dot_sides d = dot_sides_of(M <= N, M, N, A, lda, B, ldb, ldc);
    if (d.S == 1)
        skinny_rows(1, &d, K, C, alpha, beta);
    else
        skinny_rows(2, &d, K, C, alpha, beta);
}

/*
 * C (M,N) += A^T X with A (K,M) floats (lda), X (K,N) bytes: row k at X + idx[k]*ldx scaled by
 * `scale`; M <= GEMM_DOT_MAX_S. Mirrors what the blocked kernel does for this TN product
 * (beta = 1, alpha = 1): per KC block of k, each element is a fused multiply-add chain over k
 * in order, then added to C, so the bits equal nn_sgemm on the converted rows.
 */
static ALWAYS_INLINE TARGET_AVX512 void u8_tn_block(const int MM, const int NV, int n0, int n1,
                                                    int K, const float *A, int lda,
                                                    const uint8_t *X, const uint32_t *idx,
                                                    size_t ldx, float scale, float *C, int ldc)
{
    const __m512 vs = _mm512_set1_ps(scale);
    for (int j = n0; j < n1; j += 16 * NV) {
        __mmask16 mk[2];
        for (int v = 0; v < 2; v++) {
            const int left = n1 - j - 16 * v;
            mk[v] = left >= 16 ? 0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1u);
        }
        for (int pc = 0; pc < K; pc += GEMM_KC) {
            const int kc = imin(GEMM_KC, K - pc);
            __m512 acc[GEMM_DOT_MAX_S][2];
#pragma GCC unroll 16
            for (int i = 0; i < MM; i++)
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++)
                    acc[i][v] = _mm512_setzero_ps();
            for (int k = pc; k < pc + kc; k++) {
                const uint8_t *x = X + (idx ? (size_t)idx[k] : (size_t)k) * ldx + j;
                __m512 xv[2];
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++)
                    xv[v] = _mm512_mul_ps(
                        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(load_bytes(x + 16 * v, mk[v]))),
                        vs);
                const float *a = A + (size_t)k * lda;
#pragma GCC unroll 16
                for (int i = 0; i < MM; i++) {
                    const __m512 av = _mm512_set1_ps(a[i]);
#pragma GCC unroll 2
                    for (int v = 0; v < NV; v++)
                        acc[i][v] = _mm512_fmadd_ps(av, xv[v], acc[i][v]);
                }
            }
#pragma GCC unroll 16
            for (int i = 0; i < MM; i++) {
                float *c = C + (size_t)i * ldc + j;
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++)
                    _mm512_mask_storeu_ps(
                        c + 16 * v, mk[v],
                        _mm512_add_ps(acc[i][v], _mm512_maskz_loadu_ps(mk[v], c + 16 * v)));
            }
        }
    }
}

/* Columns [n0, n1) of C; M as a compile-time constant (32 columns per pass up to 14 rows of
 * accumulators, 16 above, so that they fit the 32 registers). */
static TARGET_AVX512 void u8_tn_cols(int M, int n0, int n1, int K, const float *A, int lda,
                                     const uint8_t *X, const uint32_t *idx, size_t ldx, float scale,
                                     float *C, int ldc)
{
#define TN_CASE(m_, nv_)                                                                           \
    case m_: u8_tn_block(m_, nv_, n0, n1, K, A, lda, X, idx, ldx, scale, C, ldc); break
    switch (M) {
        TN_CASE(1, 2);
        TN_CASE(2, 2);
        TN_CASE(3, 2);
        TN_CASE(4, 2);
        TN_CASE(5, 2);
        TN_CASE(6, 2);
        TN_CASE(7, 2);
        TN_CASE(8, 2);
        TN_CASE(9, 2);
        TN_CASE(10, 2);
        TN_CASE(11, 2);
        TN_CASE(12, 2);
        TN_CASE(13, 2);
        TN_CASE(14, 2);
        TN_CASE(15, 1);
        TN_CASE(16, 1);
    default: break;
    }
#undef TN_CASE
}
#endif

int nn_sgemm_u8_nt(int M, int N, int K, const uint8_t *X, const uint32_t *idx, size_t ldx,
                   float scale, const float *B, int ldb, float *C, int ldc, int threads)
{
#if GEMM_X86
    /* exactly the shapes for which nn_sgemm takes the dot path, so the bits agree */
    if (M > 0 && N > 0 && N <= GEMM_DOT_MAX_S && (M >= GEMM_DOT_MIN_L || N <= 2) && K > 0 &&
        nn_sgemm_isa_best() == NN_GEMM_AVX512) {
        const struct dot_u8 u8 = {.L8 = X, .idx = idx, .scale = scale};
        dot_run(M, N, K, 1.0f, NULL, (int)ldx, &u8, B, ldb, 0.0f, C, ldc, threads);
        return 0;
    }
#endif
    (void)M, (void)N, (void)K, (void)X, (void)idx, (void)ldx, (void)scale, (void)B, (void)ldb;
    (void)C, (void)ldc, (void)threads;
    return -1;
}

int nn_sgemm_u8_tn(int M, int N, int K, const float *A, int lda, const uint8_t *X,
                   const uint32_t *idx, size_t ldx, float scale, float *C, int ldc, int threads)
{
#if GEMM_X86
    if (M > 0 && M <= GEMM_DOT_MAX_S && N > 0 && K > 0 && nn_sgemm_isa_best() == NN_GEMM_AVX512) {
        int nt = threads < 1 ? 1 : threads;
        const int panels = (N + 31) / 32;
        if (2.0 * M * N * K < GEMM_PAR_FLOPS || panels < 2 * nt)
            nt = 1;
#ifdef _OPENMP
        if (nt > 1) {
#pragma omp parallel num_threads(nt)
            {
                const int t = omp_get_thread_num(), n = omp_get_num_threads();
                const int p0 = share_start(panels, t, n), p1 = share_start(panels, t + 1, n);
                u8_tn_cols(M, p0 * 32, imin(N, p1 * 32), K, A, lda, X, idx, ldx, scale, C, ldc);
            }
            return 0;
        }
#endif
        u8_tn_cols(M, 0, N, K, A, lda, X, idx, ldx, scale, C, ldc);
        return 0;
    }
#endif
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)X, (void)idx, (void)ldx, (void)scale;
    (void)C, (void)ldc, (void)threads;
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Work split                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Chooses tm x tn = nt groups of whole tiles minimising the tiles of the busiest thread. */
static void split_grid(int nt, int tiles_m, int panels_n, int *tm, int *tn)
{
    long best = -1;
    *tm = 1;
    *tn = 1;
    for (int n = nt; n >= 1; n--) {
        if (nt % n)
            continue;
        int m = nt / n;
        long cost = (long)((panels_n + n - 1) / n) * ((tiles_m + m - 1) / m);
        if (best < 0 || cost < best) {
            best = cost;
            *tm = m;
            *tn = n;
        }
    }
}

/* Thread t of nt runs its rectangle of C. */
static void run_share(const struct gemm_job *g, gemm_rect_fn rect, int MR, int NR, int t, int nt)
{
    const int tiles_m = (g->M + MR - 1) / MR, panels_n = (g->N + NR - 1) / NR;
    int tm, tn;
    split_grid(nt, tiles_m, panels_n, &tm, &tn);
    const int gm = t / tn, gn = t % tn;
    const int m0 = share_start(tiles_m, gm, tm) * MR;
    const int m1 = imin(g->M, share_start(tiles_m, gm + 1, tm) * MR);
    const int n0 = share_start(panels_n, gn, tn) * NR;
    const int n1 = imin(g->N, share_start(panels_n, gn + 1, tn) * NR);
    rect(g, m0, m1, n0, n1);
}

/* C = beta * C, for alpha == 0 or K == 0 (A and B are not read, as in BLAS). */
static void scale_c(float *C, int M, int N, int ldc, float beta)
{
    if (beta == 1.0f)
        return;
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++)
            c[j] = beta == 0.0f ? 0.0f : beta * c[j];
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Sparse vector times matrix: one image through a dense layer, zero inputs skipped          */
/* ---------------------------------------------------------------------------------------- */

/* The weights are IEEE half precision: a hidden layer's rows read at half the bytes (the
 * 784x512 layer of the shipped MLP: 0.8 MB, within L2), widened exactly to float, so the sums
 * are the float sums of the rounded weights. */

uint16_t nn_half_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7FFFFFFFu;
    if (x >= 0x47800000u) /* >= 65536, inf or NaN: inf, or a quiet NaN */
        return (uint16_t)(sign | (x > 0x7F800000u ? 0x7E00u : 0x7C00u));
    if (x < 0x38800000u) { /* below 2^-14: a subnormal half (or zero) */
        /* adding 0.5 leaves the value's multiples of 2^-24 in the low mantissa bits, rounded
         * to nearest even by the addition itself */
        float a;
        memcpy(&a, &x, sizeof a);
        a += 0.5f;
        memcpy(&x, &a, sizeof x);
        return (uint16_t)(sign | (x - 0x3F000000u));
    }
    /* rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even; a carry
     * out of the mantissa moves to the exponent, up to inf at 65520 */
    x += ((uint32_t)(15 - 127) << 23) + 0xFFFu + ((x >> 13) & 1u);
    return (uint16_t)(sign | (x >> 13));
}

float nn_float_from_half(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    uint32_t x;
    if (e == 0x1F) {
        x = sign | 0x7F800000u | (m << 13);
    } else if (e) {
        x = sign | ((e + 127 - 15) << 23) | (m << 13);
    } else { /* zero or subnormal: m * 2^-24, exact in a float */
        float f = (float)m * 0x1p-24f;
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* y = bias + sum over t of val[t] * B[idx[t], :], in t order for every element; B holds
 * floats, or halves when HALF. */
static ALWAYS_INLINE float spmv_weight(const void *B, const int HALF, size_t at)
{
    return HALF ? nn_float_from_half(((const uint16_t *)B)[at]) : ((const float *)B)[at];
}

static ALWAYS_INLINE void spmv_scalar(const int HALF, float *y, const float *bias,
                                      const int32_t *idx, const float *val, int nnz, const void *B,
                                      int ldb, int N)
{
    for (int j = 0; j < N; j++)
        y[j] = bias ? bias[j] : 0.0f;
    for (int t = 0; t < nnz; t++) {
        const float v = val[t];
        const size_t row = (size_t)idx[t] * ldb;
        for (int j = 0; j < N; j++)
            y[j] += v * spmv_weight(B, HALF, row + j);
    }
}

#if GEMM_X86
/* NV vectors (up to 256 columns) of y in registers while the nonzeros stream past. Half rows
 * are read 16 at a time (their rows are padded to 16); float rows are read with the lane mask
 * of the last vector, as the stores are. */
static ALWAYS_INLINE TARGET_AVX512 void spmv_block(const int HALF, const int NV, float *y,
                                                   const float *bias, const int32_t *idx,
                                                   const float *val, int nnz, const void *B,
                                                   int ldb, int j0, int N)
{
    __m512 acc[16];
    __mmask16 m[16];
    for (int v = 0; v < NV; v++) {
        int left = N - j0 - 16 * v;
        m[v] = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
        acc[v] = bias ? _mm512_maskz_loadu_ps(m[v], bias + j0 + 16 * v) : _mm512_setzero_ps();
    }
    for (int t = 0; t < nnz; t++) {
        const __m512 x = _mm512_set1_ps(val[t]);
        const size_t row = (size_t)idx[t] * ldb + j0;
        for (int v = 0; v < NV; v++) {
            const __m512 w =
                HALF ? _mm512_cvtph_ps(_mm256_loadu_si256(
                           (const __m256i *)((const uint16_t *)B + row + 16 * v)))
                     : _mm512_maskz_loadu_ps(m[v], (const float *)B + row + 16 * v);
            acc[v] = _mm512_fmadd_ps(x, w, acc[v]);
        }
    }
    for (int v = 0; v < NV; v++)
        _mm512_mask_storeu_ps(y + j0 + 16 * v, m[v], acc[v]);
}

static ALWAYS_INLINE TARGET_AVX512 void spmv_avx512(const int HALF, float *y, const float *bias,
                                                    const int32_t *idx, const float *val, int nnz,
                                                    const void *B, int ldb, int N)
{
    int j0 = 0;
    for (; j0 + 256 <= N; j0 += 256)
        spmv_block(HALF, 16, y, bias, idx, val, nnz, B, ldb, j0, N);
    switch ((N - j0 + 15) / 16) { /* constant vector counts, so acc[] stays in registers */
    case 0: break;
#define TAIL(n)                                                                                    \
    case n: spmv_block(HALF, n, y, bias, idx, val, nnz, B, ldb, j0, N); break;
        TAIL(1)
        TAIL(2)
        TAIL(3)
        TAIL(4)
        TAIL(5) TAIL(6) TAIL(7) TAIL(8) TAIL(9) TAIL(10) TAIL(11) TAIL(12) TAIL(13) TAIL(14)
            TAIL(15) TAIL(16)
#undef TAIL
    }
}

static TARGET_AVX512 void spmv_half_avx512(float *y, const float *bias, const int32_t *idx,
                                           const float *val, int nnz, const void *B, int ldb,
                                           int N)
{
    spmv_avx512(1, y, bias, idx, val, nnz, B, ldb, N);
}

static TARGET_AVX512 void spmv_float_avx512(float *y, const float *bias, const int32_t *idx,
                                            const float *val, int nnz, const void *B, int ldb,
                                            int N)
{
    spmv_avx512(0, y, bias, idx, val, nnz, B, ldb, N);
}

/* The same on AVX2: NV (up to 12) vectors of 8 columns of y in registers, the same chain of
 * fused multiply-adds per element in t order, so the same bits as AVX-512. Only the last
 * vector can be partial: its lanes beyond N are masked in the loads of bias and float rows and
 * in the store; half rows are read 8 at a time within their padding to 16. */
static ALWAYS_INLINE TARGET_AVX2 void spmv_block_avx2(const int HALF, const int NV, float *y,
                                                      const float *bias, const int32_t *idx,
                                                      const float *val, int nnz, const void *B,
                                                      int ldb, int j0, int N)
{
    const __m256i last = lanes_below_avx2(N - j0 - 8 * (NV - 1));
    __m256 acc[12];
    for (int v = 0; v < NV; v++)
        acc[v] = !bias         ? _mm256_setzero_ps()
                 : v < NV - 1 ? _mm256_loadu_ps(bias + j0 + 8 * v)
                              : _mm256_maskload_ps(bias + j0 + 8 * v, last);
    for (int t = 0; t < nnz; t++) {
        const __m256 x = _mm256_set1_ps(val[t]);
        const size_t row = (size_t)idx[t] * ldb + j0;
        for (int v = 0; v < NV; v++) {
            const float *f = (const float *)B + row + 8 * v;
            const __m256 w =
                HALF ? _mm256_cvtph_ps(
                           _mm_loadu_si128((const __m128i *)((const uint16_t *)B + row + 8 * v)))
                : v < NV - 1 ? _mm256_loadu_ps(f)
                             : _mm256_maskload_ps(f, last);
            acc[v] = _mm256_fmadd_ps(x, w, acc[v]);
        }
    }
    for (int v = 0; v < NV - 1; v++)
        _mm256_storeu_ps(y + j0 + 8 * v, acc[v]);
    _mm256_maskstore_ps(y + j0 + 8 * (NV - 1), last, acc[NV - 1]);
}

static ALWAYS_INLINE TARGET_AVX2 void spmv_avx2(const int HALF, float *y, const float *bias,
                                                const int32_t *idx, const float *val, int nnz,
                                                const void *B, int ldb, int N)
{
    int j0 = 0;
    for (; j0 + 96 <= N; j0 += 96)
        spmv_block_avx2(HALF, 12, y, bias, idx, val, nnz, B, ldb, j0, N);
    switch ((N - j0 + 7) / 8) { /* constant vector counts, so acc[] stays in registers */
    case 0: break;
#define TAIL(n)                                                                                    \
    case n: spmv_block_avx2(HALF, n, y, bias, idx, val, nnz, B, ldb, j0, N); break;
        TAIL(1)
        TAIL(2)
        TAIL(3)
        TAIL(4)
        TAIL(5) TAIL(6) TAIL(7) TAIL(8) TAIL(9) TAIL(10) TAIL(11) TAIL(12)
#undef TAIL
    }
}

static TARGET_AVX2 void spmv_half_avx2(float *y, const float *bias, const int32_t *idx,
                                       const float *val, int nnz, const void *B, int ldb, int N)
{
    spmv_avx2(1, y, bias, idx, val, nnz, B, ldb, N);
}

static TARGET_AVX2 void spmv_float_avx2(float *y, const float *bias, const int32_t *idx,
                                        const float *val, int nnz, const void *B, int ldb, int N)
{
    spmv_avx2(0, y, bias, idx, val, nnz, B, ldb, N);
}
#endif

/* Appends the nonzero entries of x[i0..n) to idx/val from position nnz; returns the new count.
 * Branch-free: every entry is written, the count only moves past nonzeros. */
static int nonzeros_from(const float *x, int i0, int n, int32_t *idx, float *val, int nnz)
{
    for (int i = i0; i < n; i++) {
        idx[nnz] = i;
        val[nnz] = x[i];
        nnz += x[i] != 0.0f;
    }
    return nnz;
}

#if GEMM_X86
/* 16 entries at a time: compress in registers, then store whole vectors (the form that
 * compresses straight to memory is microcoded and slow on AMD's Zen 4). The stores stay within
 * n entries: before block i there are at most i nonzeros. */
static TARGET_AVX512 int nonzeros_avx512(const float *x, int n, int32_t *idx, float *val)
{
    int nnz = 0, i = 0;
    __m512i pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __mmask16 nz = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_storeu_ps(val + nnz, _mm512_maskz_compress_ps(nz, v));
        _mm512_storeu_si512(idx + nnz, _mm512_maskz_compress_epi32(nz, pos));
        nnz += __builtin_popcount(nz);
        pos = _mm512_add_epi32(pos, step);
    }
    return nonzeros_from(x, i, n, idx, val, nnz);
}
#endif

int nn_nonzeros_isa(enum nn_gemm_isa isa, const float *x, int n, int32_t *idx, float *val)
{
#if GEMM_X86
    if (isa == NN_GEMM_AVX512 && nn_sgemm_isa_supported(NN_GEMM_AVX512))
        return nonzeros_avx512(x, n, idx, val);
#endif
    (void)isa;
    return nonzeros_from(x, 0, n, idx, val, 0);
}

int nn_nonzeros(const float *x, int n, int32_t *idx, float *val)
{
    return nn_nonzeros_isa(nn_sgemm_isa_best(), x, n, idx, val);
}

/* The best of isa and what the CPU supports, else plain loops; HALF: B holds halves. */
static ALWAYS_INLINE void spmv_on(enum nn_gemm_isa isa, const int HALF, float *y,
                                  const float *bias, const int32_t *idx, const float *val,
                                  int nnz, const void *B, int ldb, int N)
{
#if GEMM_X86
    if (isa == NN_GEMM_AVX512 && nn_sgemm_isa_supported(NN_GEMM_AVX512)) {
        (HALF ? spmv_half_avx512 : spmv_float_avx512)(y, bias, idx, val, nnz, B, ldb, N);
        return;
    }
    if ((isa == NN_GEMM_AVX2 || isa == NN_GEMM_AVX512) && nn_sgemm_isa_supported(NN_GEMM_AVX2)) {
        (HALF ? spmv_half_avx2 : spmv_float_avx2)(y, bias, idx, val, nnz, B, ldb, N);
        return;
    }
#endif
    (void)isa;
    spmv_scalar(HALF, y, bias, idx, val, nnz, B, ldb, N);
}

void nn_spmv_half_isa(enum nn_gemm_isa isa, float *y, const float *bias, const int32_t *idx,
                      const float *val, int nnz, const uint16_t *B, int ldb, int N)
{
    spmv_on(isa, 1, y, bias, idx, val, nnz, B, ldb, N);
}

void nn_spmv_isa(enum nn_gemm_isa isa, float *y, const float *bias, const int32_t *idx,
                 const float *val, int nnz, const float *B, int ldb, int N)
{
    spmv_on(isa, 0, y, bias, idx, val, nnz, B, ldb, N);
}

void nn_spmv(float *y, const float *bias, const int32_t *idx, const float *val, int nnz,
             const float *B, int ldb, int N)
{
    nn_spmv_isa(nn_sgemm_isa_best(), y, bias, idx, val, nnz, B, ldb, N);
}

void nn_spmv_half(float *y, const float *bias, const int32_t *idx, const float *val, int nnz,
                  const uint16_t *B, int ldb, int N)
{
    nn_spmv_half_isa(nn_sgemm_isa_best(), y, bias, idx, val, nnz, B, ldb, N);
}

/* ---------------------------------------------------------------------------------------- */
/* Public functions                                                                         */
/* ---------------------------------------------------------------------------------------- */

int nn_sgemm_isa_supported(enum nn_gemm_isa isa)
{
    if (isa != NN_GEMM_NEON && isa > NN_GEMM_MAX_ISA) /* the cap is for x86 (MAX_ISA=avx2) */
        return 0;
    switch (isa) {
    case NN_GEMM_SCALAR: return 1;
    case NN_GEMM_NEON: return GEMM_NEON;
#if GEMM_X86
    case NN_GEMM_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && HAS_F16C;
    case NN_GEMM_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    default: return 0;
    }
}

enum nn_gemm_isa nn_sgemm_isa_best(void)
{
    if (GEMM_NEON)
        return NN_GEMM_NEON;
    if (nn_sgemm_isa_supported(NN_GEMM_AVX512))
        return NN_GEMM_AVX512;
    if (nn_sgemm_isa_supported(NN_GEMM_AVX2))
        return NN_GEMM_AVX2;
    return NN_GEMM_SCALAR;
}

const char *nn_sgemm_isa_name(enum nn_gemm_isa isa)
{
    switch (isa) {
    case NN_GEMM_AVX2: return "avx2";
    case NN_GEMM_AVX512: return "avx512";
    case NN_GEMM_NEON: return "neon";
    default: return "scalar";
    }
}

void nn_sgemm_isa(enum nn_gemm_isa isa, int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  int threads)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(C, M, N, ldc, beta);
        return;
    }
    struct gemm_job g = {
        .M = M,
        .N = N,
        .K = K,
        .alpha = alpha,
        .beta = beta,
        .A = A,
        .a_si = trans_a ? 1 : lda,
        .a_sk = trans_a ? lda : 1,
        .B = B,
        .b_sj = trans_b ? ldb : 1,
        .b_sk = trans_b ? 1 : ldb,
        .C = C,
        .c_si = ldc,
        .c_sj = 1,
    };
    gemm_rect_fn rect = rect_scalar;
    int MR = 4, NR = 16;
    if (!nn_sgemm_isa_supported(isa))
        isa = NN_GEMM_SCALAR;
#if GEMM_NEON
    if (isa == NN_GEMM_NEON) {
        rect = rect_neon;
        MR = 6;
        NR = 16;
    }
#endif
#if GEMM_X86
    if (isa == NN_GEMM_AVX512) {
        rect = rect_avx512;
        MR = 12;
        NR = 32;
    } else if (isa == NN_GEMM_AVX2) {
        rect = rect_avx2;
        MR = 6;
        NR = 16;
    }
#endif
    /* too small to thread: the fork/join would cost more than it saves */
    const int small = 2.0 * M * N * K < GEMM_PAR_FLOPS;
#if GEMM_X86
    /* NT with a short side: dot products over k, no packing (see dot_rows). */
    if (isa == NN_GEMM_AVX512 && !trans_a && trans_b &&
        ((M <= GEMM_DOT_MAX_S && (N >= GEMM_DOT_MIN_L || M <= 2)) ||
         (N <= GEMM_DOT_MAX_S && (M >= GEMM_DOT_MIN_L || N <= 2)))) {
        dot_run(M, N, K, alpha, A, lda, NULL, B, ldb, beta, C, ldc, threads);
        return;
    }
    /* Single-image NT products on AVX2: dot products over k, no packing (dot_skinny_avx2). */
    if (isa == NN_GEMM_AVX2 && !trans_a && trans_b && small && (M <= 2 || N <= 2)) {
        dot_skinny_avx2(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Other small NT products: tiles of 16 dot products, no packing (see dot_small_avx512). */
    if (isa == NN_GEMM_AVX512 && !trans_a && trans_b && K >= GEMM_DOT_TILE_MIN_K &&
        (long)M * N <= GEMM_DOT_TILE_MAX_MN && small) {
        dot_small_avx512(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    /* A narrow C (N well below NR, e.g. the 10 logits) wastes most of each tile: compute
     * C^T = op(B)^T op(A)^T instead, which runs the same multiply-adds in the same order. */
    long tiles_plain = (long)round_up(M, MR) * round_up(N, NR);
    long tiles_swap = (long)round_up(N, MR) * round_up(M, NR);
    if (tiles_swap * 5 < tiles_plain * 4) {
        /* the same job with the roles of A and B, and of C's rows and columns, exchanged */
        const struct gemm_job t = g;
        g.M = t.N, g.N = t.M;
        g.A = t.B, g.a_si = t.b_sj, g.a_sk = t.b_sk;
        g.B = t.A, g.b_sj = t.a_si, g.b_sk = t.a_sk;
        g.c_si = t.c_sj, g.c_sj = t.c_si;
    }
    int nt = small || threads < 1 ? 1 : threads;
#if GEMM_X86
    /* Small NN / TN on one thread: no packing of B, exact row tiles (see small_avx512). */
    if (isa == NN_GEMM_AVX512 && small && g.b_sj == 1 && g.c_sj == 1) {
        small_avx512(&g);
        return;
    }
#endif
    const long tiles = (long)((g.M + MR - 1) / MR) * ((g.N + NR - 1) / NR);
    if (nt > tiles)
        nt = (int)tiles;
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        run_share(&g, rect, MR, NR, omp_get_thread_num(), omp_get_num_threads());
        return;
    }
#endif
    run_share(&g, rect, MR, NR, 0, 1);
}

void nn_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc, int threads)
{
    nn_sgemm_isa(nn_sgemm_isa_best(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                 ldc, threads);
}

/* The oracle: a plain triple loop, deliberately untuned. */
void nn_sgemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = alpha * acc + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}
