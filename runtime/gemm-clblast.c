/* GEMM through CLBlast: the reference implementation and the fallback on every device. */
#include <clblast_c.h>

#include "ctx-impl.h"

enum ncl_status ncl_gemm_clblast(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                 float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                                 float beta, cl_mem c, size_t c_off, size_t ldc)
{
    ctx->clblast_used = 1;
    CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off,
                                        lda, b, b_off, ldb, beta, c, c_off, ldc, &ctx->queue, NULL);
    if (st != CLBlastSuccess)
        return ncl_fail(NCL_ERR_GEMM, "CLBlastSgemm(%s%s, m=%zu n=%zu k=%zu) failed with CLBlast status %d", trans_a ? "T" : "N",
                        trans_b ? "T" : "N", m, n, k, (int)st);
    return NCL_OK;
}
