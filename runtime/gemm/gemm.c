/* The one GEMM entry point: chooses the implementation per device and shape. */
#include <clblast_c.h>

#include "gemm-impl.h"

/* The implementation for one GEMM. AUTO: the packed kernels on CPU devices (PoCL; CLBlast's
 * default parameters reach only a few percent of a CPU's peak), CLBlast elsewhere (it is tuned
 * for GPUs). The one place to put a per-shape tuning table. (CLBlast's NT products may also run
 * with K split: NINCL_GEMM_SPLITK, gemm-clblast.c.) */
static enum ncl_gemm_impl gemm_choose(const struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n,
                                      size_t k)
{
    (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k;
    if (ctx->gemm != NCL_GEMM_AUTO)
        return ctx->gemm;
    return ncl_ctx_is_cpu(ctx) ? NCL_GEMM_PACKED : NCL_GEMM_CLBLAST;
}

enum ncl_status ncl_gemm_fused(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                               float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                               float beta, cl_mem c, size_t c_off, size_t ldc, const struct ncl_gemm_epilogue *ep,
                               int *applied)
{
    if (applied)
        *applied = 0;
    if (m == 0 || n == 0)
        return NCL_OK;
    /* k == 0 is C = beta * C: CLBlast refuses it, the packed path scales C */
    if (k == 0 || gemm_choose(ctx, trans_a, trans_b, m, n, k) == NCL_GEMM_PACKED)
        return ncl_gemm_packed(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off,
                               ldc, ep, applied);
    return ncl_gemm_clblast(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc);
}

enum ncl_status ncl_gemm(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                         cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta, cl_mem c,
                         size_t c_off, size_t ldc)
{
    return ncl_gemm_fused(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc,
                          NULL, NULL);
}

enum ncl_status ncl_gemm_sliced(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t kc,
                                size_t slices, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                                size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc, size_t c_slice)
{
    if (m == 0 || n == 0 || slices == 0)
        return NCL_OK;
    if (kc == 0 || gemm_choose(ctx, trans_a, trans_b, m, n, kc) == NCL_GEMM_PACKED)
        return ncl_gemm_packed_sliced(ctx, trans_a, trans_b, m, n, kc, slices, alpha, a, a_off, lda, b, b_off, ldb,
                                      beta, c, c_off, ldc, c_slice);
    return ncl_gemm_clblast_sliced(ctx, trans_a, trans_b, m, n, kc, slices, alpha, a, a_off, lda, b, b_off, ldb, beta,
                                   c, c_off, ldc, c_slice);
}

void ncl_gemm_state_free(struct ncl_ctx *ctx)
{
    ncl_gemm_packed_state_free(ctx);   /* with the slice workspace CLBlast's split K shares */
    /* CLBlast's program cache holds every context it served (~4 MB each) until cleared; other
     * live contexts just recompile on their next GEMM */
    if (ctx->clblast_used)
        CLBlastClearCache();
}

uint64_t ncl_ctx_device_bytes(const struct ncl_ctx *ctx)
{
    return ncl_gemm_packed_device_bytes(ctx);   /* CLBlast's own temporaries are not seen */
}
