/* Private: the GEMM implementations behind ncl_gemm (runtime/gemm.c). */
#ifndef NCL_GEMM_IMPL_H
#define NCL_GEMM_IMPL_H

#include "ctx-impl.h"

/* GEMM shaped for CPU OpenCL devices (kernels/gemm-packed.cl); same contract as ncl_gemm.
 * Its packing buffers and kernels live in ctx->gemm_state. */
enum ncl_status ncl_gemm_packed(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                                float beta, cl_mem c, size_t c_off, size_t ldc);
void ncl_gemm_packed_state_free(struct ncl_ctx *ctx);
/* Device bytes held by the packing buffers. */
uint64_t ncl_gemm_packed_device_bytes(const struct ncl_ctx *ctx);

#endif
