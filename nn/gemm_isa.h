/*
 * gemm_isa.h - private to nn/gemm.c and its tests: run nn_sgemm on a chosen instruction set.
 *
 * nn_sgemm picks the best kernel the CPU supports on every call. Tests use these entry points
 * to check every kernel the machine can run (not only the best one) against nn_sgemm_naive,
 * and the benchmark to label its figures.
 */
#ifndef NN_GEMM_ISA_H
#define NN_GEMM_ISA_H

#include <stdint.h>

enum nn_gemm_isa {
    NN_GEMM_SCALAR = 0, /* portable C, any CPU */
    NN_GEMM_AVX2 = 1,   /* AVX2 + FMA (+ F16C), 6x16 micro-kernel */
    NN_GEMM_AVX512 = 2, /* AVX-512F, 12x32 micro-kernel */
    NN_GEMM_NEON = 3,   /* AArch64 Advanced SIMD, 6x16 micro-kernel (not ordered with x86's) */
};
#define NN_GEMM_ISA_COUNT 4

/* 1 if this CPU (and OS) can run kernels for isa, else 0. */
int nn_sgemm_isa_supported(enum nn_gemm_isa isa);
/* The instruction set nn_sgemm uses on this CPU. */
enum nn_gemm_isa nn_sgemm_isa_best(void);
/* "scalar", "avx2", "avx512", "neon". */
const char *nn_sgemm_isa_name(enum nn_gemm_isa isa);

/* nn_sgemm on the given instruction set, which must be supported (else the scalar kernel is
 * used). Same contract as nn_sgemm, including bit-identity across thread counts. */
void nn_sgemm_isa(enum nn_gemm_isa isa, int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  int threads);

/* nn_nonzeros (AVX-512 or else a plain loop), nn_spmv_half and nn_spmv (AVX-512, AVX2 or
 * plain loops) on the given instruction set, or the best below it that the CPU supports. */
int nn_nonzeros_isa(enum nn_gemm_isa isa, const float *x, int n, int32_t *idx, float *val);
void nn_spmv_half_isa(enum nn_gemm_isa isa, float *y, const float *bias, const int32_t *idx,
                      const float *val, int nnz, const uint16_t *B, int ldb, int N);
void nn_spmv_isa(enum nn_gemm_isa isa, float *y, const float *bias, const int32_t *idx,
                 const float *val, int nnz, const float *B, int ldb, int N);

#endif
