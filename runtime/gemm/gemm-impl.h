/* Private: the GEMM implementations behind ncl_gemm (runtime/gemm/gemm.c). */
#ifndef NCL_GEMM_IMPL_H
#define NCL_GEMM_IMPL_H

#include "ctx-impl.h"

/* GEMM shaped for CPU OpenCL devices (kernels/gemm-packed.cl); same contract as ncl_gemm_fused
 * (ep and ep_applied may be NULL). Its packing buffers and kernels live in ctx->gemm_state. */
enum ncl_status ncl_gemm_packed(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                                float beta, cl_mem c, size_t c_off, size_t ldc, const struct ncl_gemm_epilogue *ep,
                                int *ep_applied);
/* ncl_gemm_sliced's contract, in one launch of the packed kernels. */
enum ncl_status ncl_gemm_packed_sliced(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t kc,
                                       size_t slices, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b,
                                       size_t b_off, size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc,
                                       size_t c_slice);
/* The same with CLBlast: one CLBlastSgemmStridedBatched. */
enum ncl_status ncl_gemm_clblast_sliced(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t kc,
                                        size_t slices, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b,
                                        size_t b_off, size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc,
                                        size_t c_slice);
void ncl_gemm_packed_state_free(struct ncl_ctx *ctx);
/* Device bytes held by the packing buffers and the slice workspace. */
uint64_t ncl_gemm_packed_device_bytes(const struct ncl_ctx *ctx);

/* K split into slices, shared by the packed kernels and CLBlast's split K: each slice writes its
 * row-major m x n partial product (ld n) to the workspace at s * m * n, and ncl_gemm_reduce sums
 * them into C. The workspace lives in ctx->gemm_state (one per context: both users enqueue on
 * the one in-order queue), is allocated on first use and grows only when a larger GEMM needs
 * it; its bound, in floats, is the reason for fewer and longer slices. */
#define NCL_GEMM_SLICE_WORKSPACE_FLOATS ((size_t)16 << 20)
enum ncl_status ncl_gemm_slice_workspace(struct ncl_ctx *ctx, size_t floats, cl_mem *out);
/* C = alpha * sum of the `slices` partial products in `work` + beta * C (gemm_reduce in
 * kernels/gemm-packed.cl). beta == 0 never reads C; slices == 0 scales C (work is not read). */
enum ncl_status ncl_gemm_reduce(struct ncl_ctx *ctx, cl_mem work, size_t slices, size_t m, size_t n, float alpha,
                                float beta, cl_mem c, size_t c_off, size_t ldc);

/* CLBlast's split K (NINCL_GEMM_SPLITK, runtime/gemm/gemm-clblast.c): how many partial products this
 * GEMM runs as, 1 when it is not split. Fails (NCL_ERR_ARG) on a bad NINCL_GEMM_SPLITK, which is
 * read once per context. */
enum ncl_status ncl_gemm_clblast_slices(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                        size_t *slices);

#endif
