/* GEMM shaped for CPU OpenCL devices (PoCL): register-tiled micro-kernels with local size 1
 * (kernels/gemm-packed.cl). Two paths:
 *   outer: A packed as [M/MR][K][MR]; B read in place when op(B) = B and N >= NR, else packed
 *          as [N/NR][K][NR]; one work-item per NR-column block (and group of MR-row tiles).
 *   dot:   A B^T with large K (the convolution weight gradient): both operands have k contiguous,
 *          read in place, accumulators along k; no packing.
 * Either splits K into slices summed by gemm_reduce when the tiles alone are too few for the
 * device's cores or (dot path) K is too long for A to stay in cache.
 * Packing buffers and the slice workspace are allocated on first use and grow only when a larger
 * GEMM arrives, so a training step after the first allocates nothing. The slice workspace and
 * gemm_reduce also serve CLBlast's split K (gemm-impl.h).
 *
 * On a device whose compiler ends a work-item's loops after a number of iterations (llvmpipe:
 * ctx->loop_limit), a plan keeps each work-item under half of it: fewer row tiles per work-item,
 * and where one tile's K is still too long, K in passes (consecutive launches, each adding its
 * part of K to C).
 *
 * Tuning (kernel work only): NINCL_GEMM_PACKED="mr=8,nv=3,vw=16,kb=512,dr=4,dc=6" sets the
 * register tiles; "path=outer|dot", "slices=N" and "packb=1" force a plan for every GEMM;
 * "loops=N" a loop budget of N iterations a work-item (to test the passes on any device).
 * Per-kernel times: nincl bench's per-layer profile. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm-impl.h"

/* Register tiles. Outer path: MR x (NV * VW) in two shapes, "wide" for long K and "narrow"
 * (one vector per row, more rows) for short K, where it streams B and C better; dot path:
 * DR x DC. Chosen by the device's native float vector width. */
struct gemm_tune {
    int vw, kb, dr, dc;
    int mr[2], nv[2];    /* [VAR_WIDE], [VAR_NARROW] */
    int force_path;      /* -1: choose; 0 outer; 1 dot */
    int force_slices;    /* 0: choose */
    int force_pack_b;    /* outer path: pack B even where it could be read in place */
    size_t loop_budget;  /* most loop iterations a work-item may run (loop_estimate); 0: any */
};

enum { VAR_WIDE, VAR_NARROW, VAR_COUNT };
enum { K_PACK_A, K_PACK_B, K_TILE, K_DOT, K_REDUCE, K_COUNT };
static const char *const kernel_names[K_COUNT] = {"gemm_pack_a", "gemm_pack_b", "gemm_tile", "gemm_dot_nt",
                                                  "gemm_reduce"};

struct gemm_buf {
    cl_mem mem;
    size_t floats;
};

struct ncl_gemm_state {
    struct gemm_tune t;
    cl_kernel k[VAR_COUNT][K_COUNT];  /* built on first use; dot and reduce from VAR_WIDE */
    struct gemm_buf pa, pb, work;
};

static void tune_default(struct gemm_tune *t, cl_uint native_width)
{
    if (native_width >= 16)   /* AVX-512: 32 vector registers, measured on Zen 4 with PoCL 3.1 */
        *t = (struct gemm_tune){.vw = 16, .kb = 512, .dr = 4, .dc = 6, .mr = {8, 16}, .nv = {3, 1}};
    else                      /* AVX2 and narrower: 16 vector registers */
        *t = (struct gemm_tune){.vw = native_width >= 8 ? 8 : 4, .kb = 512, .dr = 2, .dc = 4, .mr = {6, 12},
                                .nv = {2, 1}};
    t->force_path = -1;
}

/* NINCL_GEMM_PACKED="mr=8,nv=3,vw=16,kb=512,dr=4,dc=6,path=dot,slices=4,packb=1": tuning
 * only; mr/nv set both outer tiles. */
static void tune_parse(struct gemm_tune *t)
{
    const char *e = getenv("NINCL_GEMM_PACKED");
    while (e && *e) {
        char key[16] = "", val[16] = "";
        size_t len = strcspn(e, ",");
        if (sscanf(e, " %15[a-z] = %15[a-z0-9]", key, val) == 2) {
            int v = atoi(val);
            if (strcmp(key, "path") == 0)
                t->force_path = strcmp(val, "dot") == 0;
            else if (strcmp(key, "mr") == 0)
                t->mr[0] = t->mr[1] = v;
            else if (strcmp(key, "nv") == 0)
                t->nv[0] = t->nv[1] = v;
            else if (strcmp(key, "vw") == 0)
                t->vw = v;
            else if (strcmp(key, "kb") == 0)
                t->kb = v;
            else if (strcmp(key, "dr") == 0)
                t->dr = v;
            else if (strcmp(key, "dc") == 0)
                t->dc = v;
            else if (strcmp(key, "packb") == 0)
                t->force_pack_b = v;
            else if (strcmp(key, "slices") == 0)
                t->force_slices = v;
            else if (strcmp(key, "loops") == 0)
                t->loop_budget = v > 0 ? (size_t)v : 0;
        }
        e += len;
        if (*e)
            e++;
    }
}

static int tune_ok(const struct gemm_tune *t)
{
    for (int v = 0; v < VAR_COUNT; v++)
        if (t->mr[v] < 1 || t->mr[v] > 32 || t->nv[v] < 1 || t->nv[v] > 16)
            return 0;
    return (t->vw == 2 || t->vw == 4 || t->vw == 8 || t->vw == 16) && t->kb >= 1 && t->dr >= 1 &&
           t->dr <= 16 && t->dc >= 1 && t->dc <= 16;
}

static enum ncl_status state_get(struct ncl_ctx *ctx, struct ncl_gemm_state **out)
{
    if (!ctx->gemm_state) {
        struct ncl_gemm_state *st = calloc(1, sizeof *st);
        if (!st)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        cl_uint width = 0;
        if (clGetDeviceInfo(ctx->device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof width, &width, NULL) !=
            CL_SUCCESS)
            width = 4;
        tune_default(&st->t, width);
        st->t.loop_budget = ctx->loop_limit / 2;   /* loop_estimate counts ~10% low there */
        tune_parse(&st->t);
        if (!tune_ok(&st->t)) {
            const struct gemm_tune t = st->t;
            free(st);
            return ncl_fail(NCL_ERR_ARG, "NINCL_GEMM_PACKED: tile out of range (mr %d, nv %d, vw %d, kb %d, dr %d, "
                                         "dc %d)", t.mr[0], t.nv[0], t.vw, t.kb, t.dr, t.dc);
        }
        ctx->gemm_state = st;
    }
    *out = ctx->gemm_state;
    return NCL_OK;
}

/* The kernel `which` of tile variant `var`, built on first use (the program cache in
 * program.c builds each option set once per context). */
static enum ncl_status kernel_get(struct ncl_ctx *ctx, struct ncl_gemm_state *st, int var, int which, cl_kernel *out)
{
    if (which == K_DOT || which == K_REDUCE)
        var = VAR_WIDE;
    if (!st->k[var][which]) {
        const struct gemm_tune *t = &st->t;
        char options[160];
        snprintf(options, sizeof options, "-DMR=%d -DNV=%d -DVW=%d -DKB=%d -DDR=%d -DDC=%d", t->mr[var], t->nv[var],
                 t->vw, t->kb, t->dr, t->dc);
        NCL_TRY(ncl_kernel_create(ctx, "gemm-packed.cl", options, kernel_names[which], &st->k[var][which]));
    }
    *out = st->k[var][which];
    return NCL_OK;
}

void ncl_gemm_packed_state_free(struct ncl_ctx *ctx)
{
    struct ncl_gemm_state *st = ctx->gemm_state;
    if (!st)
        return;
    for (int v = 0; v < VAR_COUNT; v++)
        for (int i = 0; i < K_COUNT; i++)
            if (st->k[v][i])
                clReleaseKernel(st->k[v][i]);
    struct gemm_buf *bufs[] = {&st->pa, &st->pb, &st->work};
    for (int i = 0; i < 3; i++)
        if (bufs[i]->mem)
            clReleaseMemObject(bufs[i]->mem);
    free(st);
    ctx->gemm_state = NULL;
}

/* Grows b to hold `floats` (the old buffer is released; OpenCL keeps it alive until the
 * commands already queued on it have finished). */
static enum ncl_status buf_reserve(struct ncl_ctx *ctx, struct gemm_buf *b, size_t floats, const char *what)
{
    if (b->mem && b->floats >= floats)
        return NCL_OK;
    if (b->mem)
        clReleaseMemObject(b->mem);
    b->mem = NULL;
    b->floats = 0;
    NCL_TRY(ncl_buffer_create(ctx, floats * sizeof(float), what, &b->mem));
    b->floats = floats;
    return NCL_OK;
}

static enum ncl_status run(struct ncl_ctx *ctx, struct ncl_gemm_state *st, int var, int which, const size_t *global,
                           int nargs, const struct ncl_arg *args)
{
    static const size_t one[2] = {1, 1};
    cl_kernel kernel;
    NCL_TRY(kernel_get(ctx, st, var, which, &kernel));
    return ncl_enqueue(ctx, kernel, kernel_names[which], 2, global, one, nargs, args);
}

static size_t cdiv(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* How a GEMM runs: which path and tile, how tiles group into work-items and K into slices. */
struct gemm_plan {
    int dot;               /* dot path, else outer */
    int var;               /* outer: VAR_WIDE or VAR_NARROW */
    int b_packed;          /* outer: B packed, else read in place */
    size_t tiles_n;        /* column blocks (NR or DC wide) */
    size_t tiles_m;        /* row tiles (MR or DR high) */
    size_t mt_per_item;    /* row tiles per work-item */
    size_t slices, kc;     /* K slices of kc values */
};

/* Loop iterations (back-edges) one work-item of plan p runs, counted as if no loop were
 * unrolled: llvmpipe unrolls none of the #pragma unroll loops, and measured ~10% more than
 * this (tests/test-gemm.c runs the plans under a small budget on any device; test-loop-limit.c
 * measures the device's limit). */
static size_t loop_estimate(const struct gemm_tune *t, const struct gemm_plan *p)
{
    size_t T = p->mt_per_item, kc = p->kc, vw = (size_t)t->vw;
    if (p->dot) {
        size_t dr = (size_t)t->dr, dc = (size_t)t->dc;
        size_t per_step = 1 + dc + dr * (1 + dc);   /* VW values of k */
        return dc + T * (1 + dr + dr * dc + kc / vw * per_step + dr * (1 + dc * (1 + vw)));
    }
    size_t mr = (size_t)t->mr[p->var], nv = (size_t)t->nv[p->var], blocks = cdiv(kc, (size_t)t->kb);
    size_t per_k = 1 + nv + mr * (1 + nv);
    size_t per_tile = 1 + mr * (1 + nv) + mr * (1 + nv * (1 + vw));   /* zeroing, the slower store */
    return blocks * (1 + T * per_tile) + T * kc * per_k + T * mr * (1 + nv * vw);   /* last: the epilogue */
}

/* The one place that decides the plan from the shape; a per-shape table can replace it.
 * Measured on NiN's shapes (tests/test-gemm.c, NINCL_GEMM_BENCH): the dot path wins every
 * weight gradient (A B^T, K = batch pixels), the narrow tile the short-K products. */
static struct gemm_plan plan_choose(const struct ncl_ctx *ctx, const struct gemm_tune *t, int trans_a, int trans_b,
                                    size_t m, size_t n, size_t k)
{
    struct gemm_plan p = {0};
    p.dot = !trans_a && trans_b && k >= 128;
    if (t->force_path >= 0)
        p.dot = trans_b && !trans_a ? t->force_path : 0;
    p.var = k <= 512 && m <= 512 ? VAR_NARROW : VAR_WIDE;
    size_t nr = (size_t)t->nv[p.var] * t->vw;
    if (p.dot) {
        p.tiles_n = cdiv(n, (size_t)t->dc);
        p.tiles_m = cdiv(m, (size_t)t->dr);
    } else {
        p.b_packed = trans_b || n < nr || t->force_pack_b;
        p.tiles_n = cdiv(n, nr);
        p.tiles_m = cdiv(m, (size_t)t->mr[p.var]);
    }
    /* Enough work-items to keep every core busy with some balance; row tiles stay together
     * (they share the B block in cache) unless the column blocks alone are too few. */
    size_t cores = ctx->info.compute_units ? ctx->info.compute_units : 1;
    size_t want = 8 * cores;
    size_t groups = 1;
    if (p.tiles_n < want)
        groups = cdiv(want, p.tiles_n) < p.tiles_m ? cdiv(want, p.tiles_n) : p.tiles_m;
    p.mt_per_item = cdiv(p.tiles_m, groups);
    groups = cdiv(p.tiles_m, p.mt_per_item);
    size_t items = p.tiles_n * groups;
    /* Split K when the items are still too few and each slice keeps at least 256 values of k. */
    p.slices = 1;
    if (items < want && k >= 512) {
        p.slices = cdiv(want, items);
        if (p.slices > k / 256)
            p.slices = k / 256;
    }
    /* The dot path reads all of A once per column block: slices of about 4096 keep it in cache
     * (measured: 2048 pays more in partial sums, 8192 more in cache misses). */
    if (p.dot && k > 8192 && cdiv(k, 4096) > p.slices)
        p.slices = cdiv(k, 4096);
    if (p.slices > 1 && p.slices * m * n > NCL_GEMM_SLICE_WORKSPACE_FLOATS)
        p.slices = NCL_GEMM_SLICE_WORKSPACE_FLOATS / (m * n) > 1 ? NCL_GEMM_SLICE_WORKSPACE_FLOATS / (m * n) : 1;
    if (t->force_slices > 0)
        p.slices = (size_t)t->force_slices < k ? (size_t)t->force_slices : k;
    p.kc = cdiv(k, p.slices);
    p.slices = cdiv(k, p.kc);
    while (t->loop_budget && p.mt_per_item > 1 && loop_estimate(t, &p) > t->loop_budget)
        p.mt_per_item = cdiv(p.mt_per_item, 2);
    return p;
}

/* Launches plan p (of a product with K = k) needs under the loop budget: 1, or the number of
 * passes over K (cdiv(k, passes) values each, one row tile a work-item) that keeps a work-item
 * of each under it. */
static size_t loop_passes(const struct gemm_tune *t, const struct gemm_plan *p, size_t k)
{
    if (!t->loop_budget || loop_estimate(t, p) <= t->loop_budget)
        return 1;
    struct gemm_plan q = *p;
    q.mt_per_item = 1;
    size_t passes = 1;
    for (q.kc = k; q.kc > 1 && loop_estimate(t, &q) > t->loop_budget; q.kc = cdiv(k, passes))
        passes *= 2;
    return passes;
}

/* Runs plan p: the micro-kernels write slice s (K values [s * kc, s * kc + kc)) of the product
 * to out + out_off + s * out_slice, row stride out_ld, as out_alpha * product + out_beta * out. */
static enum ncl_status packed_run(struct ncl_ctx *ctx, struct ncl_gemm_state *st, const struct gemm_plan *p,
                                  int trans_a, int trans_b, size_t m, size_t n, size_t k, cl_mem a, size_t a_off,
                                  size_t lda, cl_mem b, size_t b_off, size_t ldb, cl_mem out, cl_ulong out_off,
                                  cl_ulong out_ld, cl_ulong out_slice, float out_alpha, float out_beta,
                                  const struct ncl_gemm_epilogue *ep, int *ep_applied)
{
    const struct gemm_tune *t = &st->t;
    cl_int M = (cl_int)m, N = (cl_int)n, K = (cl_int)k;
    cl_int KC = (cl_int)p->kc, MT = (cl_int)p->mt_per_item;
    size_t global[2] = {p->tiles_n * cdiv(p->tiles_m, p->mt_per_item), p->slices};

    if (p->dot) {
        cl_ulong A_OFF = a_off, LDA = lda, B_OFF = b_off, LDB = ldb;
        struct ncl_arg args[] = {NCL_ARG(a),   NCL_ARG(A_OFF),   NCL_ARG(LDA),     NCL_ARG(b),  NCL_ARG(B_OFF),
                                 NCL_ARG(LDB), NCL_ARG(out),     NCL_ARG(out_off), NCL_ARG(out_ld),
                                 NCL_ARG(out_slice), NCL_ARG(M), NCL_ARG(N),       NCL_ARG(K),  NCL_ARG(KC),
                                 NCL_ARG(MT),  NCL_ARG(out_alpha), NCL_ARG(out_beta)};
        return run(ctx, st, VAR_WIDE, K_DOT, global, 17, args);
    }
    size_t mr = (size_t)t->mr[p->var], nr = (size_t)t->nv[p->var] * t->vw;
    NCL_TRY(buf_reserve(ctx, &st->pa, p->tiles_m * mr * k, "GEMM packed A"));
    {
        cl_ulong A_OFF = a_off, RS = trans_a ? 1 : lda, KS = trans_a ? lda : 1;
        size_t g[2] = {p->tiles_m, cdiv(k, 64)};
        struct ncl_arg args[] = {NCL_ARG(a), NCL_ARG(A_OFF), NCL_ARG(RS), NCL_ARG(KS),
                                 NCL_ARG(M), NCL_ARG(K),     NCL_ARG(st->pa.mem)};
        NCL_TRY(run(ctx, st, p->var, K_PACK_A, g, 7, args));
    }
    cl_mem bsrc = b;
    cl_int packed = p->b_packed;
    if (p->b_packed) {
        NCL_TRY(buf_reserve(ctx, &st->pb, p->tiles_n * nr * k, "GEMM packed B"));
        cl_ulong B_OFF = b_off, KS = trans_b ? 1 : ldb, CS = trans_b ? ldb : 1;
        size_t g[2] = {p->tiles_n, cdiv(k, 16)};
        struct ncl_arg args[] = {NCL_ARG(b), NCL_ARG(B_OFF), NCL_ARG(KS), NCL_ARG(CS),
                                 NCL_ARG(N), NCL_ARG(K),     NCL_ARG(st->pb.mem)};
        NCL_TRY(run(ctx, st, p->var, K_PACK_B, g, 7, args));
        bsrc = st->pb.mem;
    }
    /* gemm_tile applies the epilogue to its columns after the product; with K slices only the
     * reduction sees the finished C, so then the caller applies it */
    cl_int epi = ep && p->slices == 1 ? (ep->relu ? 2 : 1) : 0;
    cl_mem bias = epi ? ep->bias : out;   /* any valid buffer when unused */
    cl_ulong B_OFF = b_off, LDB = ldb, BIAS_OFF = epi ? ep->bias_off : 0;
    struct ncl_arg args[] = {NCL_ARG(st->pa.mem), NCL_ARG(bsrc),     NCL_ARG(B_OFF), NCL_ARG(LDB),
                             NCL_ARG(packed),     NCL_ARG(out),      NCL_ARG(out_off), NCL_ARG(out_ld),
                             NCL_ARG(out_slice),  NCL_ARG(M),        NCL_ARG(N),     NCL_ARG(K),
                             NCL_ARG(KC),         NCL_ARG(MT),       NCL_ARG(out_alpha), NCL_ARG(out_beta),
                             NCL_ARG(bias),       NCL_ARG(BIAS_OFF), NCL_ARG(epi)};
    NCL_TRY(run(ctx, st, p->var, K_TILE, global, 19, args));
    if (ep_applied)
        *ep_applied = epi != 0;
    return NCL_OK;
}

static enum ncl_status check_dims(int trans_a, int trans_b, size_t m, size_t n, size_t k, size_t lda, size_t ldb,
                                  size_t ldc)
{
    if (lda < (trans_a ? m : k) || ldb < (trans_b ? k : n) || ldc < n || m > INT32_MAX || n > INT32_MAX ||
        k > INT32_MAX)
        return ncl_fail(NCL_ERR_ARG, "gemm %s%s m=%zu n=%zu k=%zu: bad leading dimension (lda %zu, ldb %zu, ldc %zu)",
                        trans_a ? "T" : "N", trans_b ? "T" : "N", m, n, k, lda, ldb, ldc);
    return NCL_OK;
}

enum ncl_status ncl_gemm_packed(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                                float beta, cl_mem c, size_t c_off, size_t ldc, const struct ncl_gemm_epilogue *ep,
                                int *ep_applied)
{
    if (ep_applied)
        *ep_applied = 0;
    if (m == 0 || n == 0)
        return NCL_OK;
    NCL_TRY(check_dims(trans_a, trans_b, m, n, k, lda, ldb, ldc));
    struct ncl_gemm_state *st = NULL;
    NCL_TRY(state_get(ctx, &st));

    if (k == 0)   /* C = beta * C: a reduction over no slices */
        return ncl_gemm_reduce(ctx, c, 0, m, n, alpha, beta, c, c_off, ldc);

    struct gemm_plan p = plan_choose(ctx, &st->t, trans_a, trans_b, m, n, k);
    size_t passes = loop_passes(&st->t, &p, k);
    if (passes > 1 && k > 1) {   /* each pass adds its part of K to C (the first scales C by beta) */
        size_t kp = cdiv(k, passes);
        for (size_t k0 = 0; k0 < k; k0 += kp) {
            size_t len = k - k0 < kp ? k - k0 : kp;
            int last = k0 + len == k;
            NCL_TRY(ncl_gemm_packed(ctx, trans_a, trans_b, m, n, len, alpha, a, a_off + k0 * (trans_a ? lda : 1),
                                    lda, b, b_off + k0 * (trans_b ? 1 : ldb), ldb, k0 == 0 ? beta : 1.0f, c, c_off,
                                    ldc, last ? ep : NULL, last ? ep_applied : NULL));
        }
        return NCL_OK;
    }
    if (p.slices == 1)
        return packed_run(ctx, st, &p, trans_a, trans_b, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, 0,
                          alpha, beta, ep, ep_applied);
    /* per-slice partial products into the workspace, then their sum into C */
    cl_mem work;
    NCL_TRY(ncl_gemm_slice_workspace(ctx, p.slices * m * n, &work));
    NCL_TRY(packed_run(ctx, st, &p, trans_a, trans_b, m, n, k, a, a_off, lda, b, b_off, ldb, work, 0, n,
                       (cl_ulong)m * n, 1.0f, 0.0f, NULL, NULL));
    return ncl_gemm_reduce(ctx, work, p.slices, m, n, alpha, beta, c, c_off, ldc);
}

enum ncl_status ncl_gemm_packed_sliced(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t kc,
                                       size_t slices, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b,
                                       size_t b_off, size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc,
                                       size_t c_slice)
{
    if (m == 0 || n == 0 || slices == 0)
        return NCL_OK;
    NCL_TRY(check_dims(trans_a, trans_b, m, n, kc * slices, lda, ldb, ldc));
    struct ncl_gemm_state *st = NULL;
    NCL_TRY(state_get(ctx, &st));
    if (kc == 0) {   /* C_s = beta * C_s */
        for (size_t s = 0; s < slices; s++)
            NCL_TRY(ncl_gemm_reduce(ctx, c, 0, m, n, alpha, beta, c, c_off + s * c_slice, ldc));
        return NCL_OK;
    }
    /* the path and tile as for one product; the slices are the products, each its own C */
    struct gemm_plan p = plan_choose(ctx, &st->t, trans_a, trans_b, m, n, kc);
    p.slices = slices;
    p.kc = kc;
    if (loop_passes(&st->t, &p, kc) > 1 && kc > 1) {   /* too long for one launch: each product by itself, in passes */
        for (size_t s = 0; s < slices; s++)
            NCL_TRY(ncl_gemm_packed(ctx, trans_a, trans_b, m, n, kc, alpha, a, a_off + s * kc * (trans_a ? lda : 1),
                                    lda, b, b_off + s * kc * (trans_b ? 1 : ldb), ldb, beta, c, c_off + s * c_slice,
                                    ldc, NULL, NULL));
        return NCL_OK;
    }
    return packed_run(ctx, st, &p, trans_a, trans_b, m, n, kc * slices, a, a_off, lda, b, b_off, ldb, c, c_off, ldc,
                      c_slice, alpha, beta, NULL, NULL);
}

enum ncl_status ncl_gemm_slice_workspace(struct ncl_ctx *ctx, size_t floats, cl_mem *out)
{
    struct ncl_gemm_state *st = NULL;
    NCL_TRY(state_get(ctx, &st));
    NCL_TRY(buf_reserve(ctx, &st->work, floats, "GEMM slice workspace"));
    *out = st->work.mem;
    return NCL_OK;
}

enum ncl_status ncl_gemm_reduce(struct ncl_ctx *ctx, cl_mem work, size_t slices, size_t m, size_t n, float alpha,
                                float beta, cl_mem c, size_t c_off, size_t ldc)
{
    struct ncl_gemm_state *st = NULL;
    NCL_TRY(state_get(ctx, &st));
    cl_kernel kernel;
    NCL_TRY(kernel_get(ctx, st, VAR_WIDE, K_REDUCE, &kernel));
    cl_int S = (cl_int)slices, M = (cl_int)m, N = (cl_int)n;
    cl_ulong off = c_off, LDC = ldc;
    size_t global[2] = {cdiv(n, 64), m};
    struct ncl_arg args[] = {NCL_ARG(work), NCL_ARG(S), NCL_ARG(c),     NCL_ARG(off), NCL_ARG(LDC),
                             NCL_ARG(M),    NCL_ARG(N), NCL_ARG(alpha), NCL_ARG(beta)};
    /* Local size 1 compiles each work-item as plain vector code on a CPU (as for the other
     * kernels here); a GPU (CLBlast's split K) would run one lane per work-group, so there the
     * driver chooses: the kernel checks its bounds and shares nothing between work-items. */
    static const size_t one[2] = {1, 1};
    return ncl_enqueue(ctx, kernel, kernel_names[K_REDUCE], 2, global, ncl_ctx_is_cpu(ctx) ? one : NULL, 9, args);
}

uint64_t ncl_gemm_packed_device_bytes(const struct ncl_ctx *ctx)
{
    const struct ncl_gemm_state *st = ctx->gemm_state;
    return st ? (uint64_t)(st->pa.floats + st->pb.floats + st->work.floats) * sizeof(float) : 0;
}
