/* GEMM through CLBlast: the reference implementation and the fallback on every device.
 *
 * Split K (opt-in: NINCL_GEMM_SPLITK). The convolution weight gradient dW = dY X^T (op NT) has
 * a small output (96 x 96 to 256 x 256) and a K of batch x pixels (up to 373,248): CLBlast
 * gives such an output only a few work-groups, each walking all of K, which leaves most of a
 * GPU idle (measured on an H200: 0.4-0.7 TFLOP/s, 62 of the 97 ms backward pass). Split, K runs
 * as slices of kc values in one CLBlastSgemmStridedBatched call (one batch member per slice,
 * so slices times more work-groups), each writing its partial product to the slice workspace,
 * and gemm_reduce sums them into C with alpha and beta (ncl_gemm_reduce).
 *
 *   NINCL_GEMM_SPLITK unset, empty or 0   off: every GEMM is one CLBlastSgemm
 *   NINCL_GEMM_SPLITK=1                   split the NT GEMMs with a small output and a long K
 *                                         (split_slices_wanted)
 *   NINCL_GEMM_SPLITK=S (2..4096)         every NT GEMM in S slices (testing)
 *
 * Only NT is split: it is the weight-gradient case, and there both operands hold K contiguous,
 * so slice s simply starts s * kc elements further into each row. */
#include <errno.h>
#include <stdlib.h>

#include <clblast_c.h>

#include "gemm-impl.h"

enum { SPLIT_OFF = 0, SPLIT_POLICY = 1, SPLIT_FORCED_MAX = 4096 };   /* ctx->split_k; above 1: forced */

/* Reads NINCL_GEMM_SPLITK into ctx->split_k the first time, strictly: a typo must not quietly
 * measure the unsplit GEMM. */
static enum ncl_status split_mode_read(struct ncl_ctx *ctx)
{
    if (ctx->split_k_read)
        return NCL_OK;
    const char *e = getenv("NINCL_GEMM_SPLITK");
    long v = SPLIT_OFF;
    if (e && *e) {
        char *end = NULL;
        errno = 0;
        v = e[0] >= '0' && e[0] <= '9' ? strtol(e, &end, 10) : -1;
        if (v < 0 || errno || *end || v > SPLIT_FORCED_MAX)
            return ncl_fail(NCL_ERR_ARG, "NINCL_GEMM_SPLITK='%s': expected 0 (off), 1 (split the weight-gradient "
                                         "GEMMs where it pays) or a slice count from 2 to %d", e, SPLIT_FORCED_MAX);
    }
    ctx->split_k = (int)v;
    ctx->split_k_read = 1;
    return NCL_OK;
}

/* Slices asked for (1: no split). The policy splits an output of at most 512 x 512 whose K is
 * at least 64 times its larger side, into slices of at least 1024 values of k and at most 64
 * slices: the point is more work-groups, not shorter ones. Every split fits the workspace. */
static size_t split_slices_wanted(const struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k)
{
    if (ctx->split_k == SPLIT_OFF || trans_a || !trans_b || m == 0 || n == 0 || k == 0)
        return 1;
    size_t slices = (size_t)ctx->split_k;
    if (ctx->split_k == SPLIT_POLICY) {
        if (m * n > (size_t)512 * 512 || k < 64 * (m > n ? m : n))
            return 1;
        slices = k / 1024 < 64 ? k / 1024 : 64;
    }
    if (slices > k)
        slices = k;
    if (slices > NCL_GEMM_SLICE_WORKSPACE_FLOATS / (m * n))
        slices = NCL_GEMM_SLICE_WORKSPACE_FLOATS / (m * n);
    return slices > 1 ? slices : 1;
}

/* K as `full` slices of kc values (the batched call) and, when kc does not divide K, one
 * shorter remainder slice (a plain call): `slots` partial products in all, never more than the
 * slices wanted, so the workspace bound holds. */
struct split_plan {
    size_t kc, full, rem, slots;
};

static struct split_plan split_plan(size_t k, size_t slices)
{
    struct split_plan p;
    p.kc = (k + slices - 1) / slices;
    p.full = k / p.kc;
    p.rem = k - p.full * p.kc;
    p.slots = p.full + (p.rem > 0);
    return p;
}

enum ncl_status ncl_gemm_clblast_slices(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                        size_t *slices)
{
    NCL_TRY(split_mode_read(ctx));
    size_t wanted = split_slices_wanted(ctx, trans_a, trans_b, m, n, k);
    *slices = wanted > 1 ? split_plan(k, wanted).slots : 1;
    return NCL_OK;
}

static enum ncl_status clblast_fail(const char *call, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                    CLBlastStatusCode st)
{
    return ncl_fail(NCL_ERR_GEMM, "%s(%s%s, m=%zu n=%zu k=%zu) failed with CLBlast status %d", call,
                    trans_a ? "T" : "N", trans_b ? "T" : "N", m, n, k, (int)st);
}

/* The NT product in plan.slots partial products, then their sum into C. Row-major A is m x K
 * (lda) and B is n x K (ldb): slice s is the column block starting at s * kc in both, so the
 * batch stride is kc for both operands and m * n (one slot) for the workspace. */
static enum ncl_status gemm_split(struct ncl_ctx *ctx, struct split_plan p, size_t m, size_t n, float alpha, cl_mem a,
                                  size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta, cl_mem c,
                                  size_t c_off, size_t ldc)
{
    cl_mem work;
    NCL_TRY(ncl_gemm_slice_workspace(ctx, p.slots * m * n, &work));
    CLBlastStatusCode st = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes,
                                                      m, n, p.kc, 1.0f, a, a_off, lda, p.kc, b, b_off, ldb, p.kc, 0.0f,
                                                      work, 0, n, m * n, p.full, &ctx->queue, NULL);
    if (st != CLBlastSuccess)
        return clblast_fail("CLBlastSgemmStridedBatched", 0, 1, m, n, p.kc, st);
    if (p.rem) {
        size_t k0 = p.full * p.kc;
        st = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, m, n, p.rem, 1.0f, a,
                          a_off + k0, lda, b, b_off + k0, ldb, 0.0f, work, p.full * m * n, n, &ctx->queue, NULL);
        if (st != CLBlastSuccess)
            return clblast_fail("CLBlastSgemm", 0, 1, m, n, p.rem, st);
    }
    return ncl_gemm_reduce(ctx, work, p.slots, m, n, alpha, beta, c, c_off, ldc);
}

enum ncl_status ncl_gemm_clblast(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                 float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                                 float beta, cl_mem c, size_t c_off, size_t ldc)
{
    ctx->clblast_used = 1;
    NCL_TRY(split_mode_read(ctx));
    /* A leading dimension too small for the whole product is CLBlastSgemm's to report: each
     * slice alone would pass CLBlast's checks */
    size_t slices = split_slices_wanted(ctx, trans_a, trans_b, m, n, k);
    if (slices > 1 && lda >= k && ldb >= k && ldc >= n)
        return gemm_split(ctx, split_plan(k, slices), m, n, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc);
    CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off,
                                        lda, b, b_off, ldb, beta, c, c_off, ldc, &ctx->queue, NULL);
    if (st != CLBlastSuccess)
        return clblast_fail("CLBlastSgemm", trans_a, trans_b, m, n, k, st);
    return NCL_OK;
}

enum ncl_status ncl_gemm_clblast_sliced(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t kc,
                                        size_t slices, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b,
                                        size_t b_off, size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc,
                                        size_t c_slice)
{
    ctx->clblast_used = 1;
    /* slice s starts kc columns of op(A) and kc rows of op(B) further on */
    size_t a_stride = trans_a ? kc * lda : kc, b_stride = trans_b ? kc : kc * ldb;
    CLBlastStatusCode st = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, kc, alpha, a, a_off, lda, a_stride, b, b_off, ldb,
        b_stride, beta, c, c_off, ldc, c_slice, slices, &ctx->queue, NULL);
    if (st != CLBlastSuccess)
        return clblast_fail("CLBlastSgemmStridedBatched", trans_a, trans_b, m, n, kc, st);
    return NCL_OK;
}
