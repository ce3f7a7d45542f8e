/* ncl_gemm against a naive double-accumulation reference, for every implementation (CLBlast, the
 * packed CPU kernels with their default plan, the packed kernels forced onto their other plans
 * and tiles through NINCL_GEMM_PACKED, and CLBlast with K split by NINCL_GEMM_SPLITK, forced and
 * by its policy, whose plan and bad values are checked too): all four transpose combinations,
 * alpha/beta (beta = 0 over a NaN-filled C must not read C; beta = 1 accumulates), nonzero offsets
 * and leading dimensions wider than the matrix (the gaps hold NaN in A and B, which must never
 * be used, and a sentinel in C, which must never be written), awkward sizes and NiN-like shapes.
 *
 * Tolerance: |got - want| <= 1e-4, or <= 1e-3 * max(|want|, scale) with
 * scale = |alpha| sqrt(sum_k (a_ik b_kj)^2) + |beta c_ij|. A float sum of K terms rounds with an
 * error that grows with its terms, about eps * sqrt(K) * scale for any order of summation
 * (blocked, sliced over K, FMA), not with the result: where the terms cancel, |want| alone
 * would ask for more than float can give. For the largest K here (20000) the expected error is
 * ~2e-5 * scale, well inside 1e-3 * scale, while a lost or doubled k term (about
 * scale / sqrt(K) >= 7e-3 * scale) or a wrong slice still fails.
 *
 * NINCL_GEMM_BENCH=1 instead times CLBlast and the packed kernels on NiN's GEMM shapes at
 * batch 128 (forward, weight gradient, input gradient) and prints GFLOP/s. */
#include "check.h"
#include "gemm-impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void)   /* uniform in [-1, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / (double)(1ull << 23) - 1.0);
}

static cl_mem upload(struct ncl_ctx *ctx, const float *x, size_t n)
{
    cl_int err;
    float dummy = 0.0f;   /* k = 0: A and B are empty */
    cl_mem m = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, (n ? n : 1) * sizeof(float),
                              n ? (void *)x : &dummy, &err);
    CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu floats): %d", n, (int)err);
    return err == CL_SUCCESS ? m : NULL;
}

#define SENTINEL 12345.0f

/* One GEMM through ncl_gemm on ctx against the reference, or with slices > 0 that many
 * through ncl_gemm_sliced (K = slices x k: product s takes K values [s k, s k + k) into its own
 * C, slices apart by m x ldc plus a gap of 4 that must stay untouched); returns mismatches. */
static int gemm_case_sliced(struct ncl_ctx *ctx, const char *impl, int ta, int tb, size_t m, size_t n, size_t k,
                            size_t slices, float alpha, float beta, int padded)
{
    size_t S = slices ? slices : 1, K = S * k;   /* the whole K of A and B */
    size_t a_rows = ta ? K : m, a_cols = ta ? m : K, b_rows = tb ? n : K, b_cols = tb ? K : n;
    size_t lda = a_cols + (padded ? 3 : 0), ldb = b_cols + (padded ? 1 : 0), ldc = n + (padded ? 2 : 0);
    size_t a_off = padded ? 5 : 0, b_off = padded ? 9 : 0, c_off = padded ? 7 : 0;
    size_t c_slice = m * ldc + (slices ? 4 : 0);
    size_t a_len = a_off + a_rows * lda, b_len = b_off + b_rows * ldb, c_len = c_off + S * c_slice + 3;
    float *A = malloc(a_len * sizeof *A), *B = malloc(b_len * sizeof *B), *C = malloc(c_len * sizeof *C);
    float *got = malloc(c_len * sizeof *got), *want = malloc(S * m * n * sizeof *want);
    double *scale = malloc(S * m * n * sizeof *scale);
    if (!A || !B || !C || !got || !want || !scale) {
        CHECK(0, "out of host memory");
        free(A), free(B), free(C), free(got), free(want), free(scale);
        return 1;
    }
    for (size_t i = 0; i < a_len; i++)
        A[i] = NAN;
    for (size_t i = 0; i < b_len; i++)
        B[i] = NAN;
    for (size_t i = 0; i < c_len; i++)
        C[i] = SENTINEL;
    for (size_t r = 0; r < a_rows; r++)
        for (size_t c = 0; c < a_cols; c++)
            A[a_off + r * lda + c] = frand();
    for (size_t r = 0; r < b_rows; r++)
        for (size_t c = 0; c < b_cols; c++)
            B[b_off + r * ldb + c] = frand();
    for (size_t z = 0; z < S; z++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                C[c_off + z * c_slice + i * ldc + j] = beta == 0.0f ? NAN : frand();

    for (size_t z = 0; z < S; z++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0, s2 = 0;
                for (size_t p = z * k; p < z * k + k; p++) {
                    double t = (double)A[a_off + (ta ? p * lda + i : i * lda + p)] *
                               (double)B[b_off + (tb ? j * ldb + p : p * ldb + j)];
                    s += t;
                    s2 += t * t;
                }
                double c = beta == 0.0f ? 0.0 : (double)beta * C[c_off + z * c_slice + i * ldc + j];
                want[(z * m + i) * n + j] = (float)(alpha * s + c);
                scale[(z * m + i) * n + j] = fabs(alpha) * sqrt(s2) + fabs(c);
            }

    int bad = 0;
    cl_mem a = upload(ctx, A, a_len), b = upload(ctx, B, b_len), c = upload(ctx, C, c_len);
    if (a && b && c) {
        enum ncl_status s =
            slices ? ncl_gemm_sliced(ctx, ta, tb, m, n, k, slices, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off,
                                     ldc, c_slice)
                   : ncl_gemm(ctx, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc);
        CHECK(s == NCL_OK, "%s: ncl_gemm failed: %s", impl, ncl_last_error());
        cl_int err = clEnqueueReadBuffer(ctx->queue, c, CL_TRUE, 0, c_len * sizeof *got, got, 0, NULL, NULL);
        CHECK(err == CL_SUCCESS, "clEnqueueReadBuffer: %d", (int)err);
        if (s != NCL_OK || err != CL_SUCCESS)
            bad = 1;
    } else {
        bad = 1;
    }
    for (size_t x = 0; x < c_len && !bad; x++) {
        size_t z = x >= c_off ? (x - c_off) / c_slice : 0, r = x >= c_off ? (x - c_off) % c_slice : 0;
        size_t i = r / ldc, j = r % ldc;
        int inside = x >= c_off && z < S && i < m && j < n;
        if (!inside) {
            if (got[x] != SENTINEL) {
                if (bad < 3)
                    fprintf(stderr, "  C[%zu] outside the matrix was written: %g\n", x, got[x]);
                bad++;
            }
            continue;
        }
        size_t y = (z * m + i) * n + j;
        double g = got[x], w = want[y], d = fabs(g - w);
        double ref = fabs(w) > scale[y] ? fabs(w) : scale[y];
        if (isnan(g) || !(d <= 1e-4 || d <= 1e-3 * ref)) {
            if (bad < 3)
                fprintf(stderr, "  C%zu[%zu][%zu]: got %.7g want %.7g (scale %.3g)\n", z, i, j, g, w, scale[y]);
            bad++;
        }
    }
    CHECK(bad == 0, "%s: gemm %s%s m=%zu n=%zu k=%zu%s alpha=%g beta=%g%s: %d mismatches", impl, ta ? "T" : "N",
          tb ? "T" : "N", m, n, k, slices ? " (sliced)" : "", alpha, beta, padded ? " (offsets, padded ld)" : "", bad);
    if (a)
        clReleaseMemObject(a);
    if (b)
        clReleaseMemObject(b);
    if (c)
        clReleaseMemObject(c);
    free(A), free(B), free(C), free(got), free(want), free(scale);
    return bad;
}

static int gemm_case(struct ncl_ctx *ctx, const char *impl, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                     float beta, int padded)
{
    return gemm_case_sliced(ctx, impl, ta, tb, m, n, k, 0, alpha, beta, padded);
}

struct impl {
    const char *name, *gemm, *tune;   /* tune: NINCL_GEMM_PACKED for this context */
};

static const struct impl impls[] = {
    {"clblast", "clblast", NULL},
    {"packed", "packed", NULL},
    /* every product through the outer-product path (B packed for NT too), K split in 3 slices */
    {"packed(path=outer,slices=3)", "packed", "path=outer,slices=3"},
    /* odd tiles (5x24 outer, 3x5 dot), 8-wide vectors (AVX2 devices), k blocks of 7, and every
     * A B^T through the dot path, however short K */
    {"packed(mr=5,nv=3,vw=8,dr=3,dc=5,kb=7,path=dot)", "packed", "mr=5,nv=3,vw=8,dr=3,dc=5,kb=7,path=dot"},
    /* a work-item's loops kept under 3000 iterations, as llvmpipe needs under 65535: one row tile
     * a work-item, and long K in passes (on every device, so PoCL runs what rusticl needs) */
    {"packed(loops=3000)", "packed", "loops=3000"},
};

static const size_t shapes[][3] = {
    {1, 1, 1},   {7, 5, 3},   {13, 65, 17}, {97, 129, 33}, {5, 200, 40},   /* M < MR */
    {50, 10, 20},                                                           /* N < NR */
    {33, 70, 1},                                                            /* K = 1 */
    {20, 30, 700},                                                          /* few tiles, K split */
    {6, 64, 130},                                                           /* exactly one tile */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void run_tests(void)
{
    unsetenv("NINCL_GEMM_SPLITK");   /* "clblast" is one CLBlastSgemm; run_split_k_tests splits */
    for (size_t ii = 0; ii < sizeof impls / sizeof impls[0]; ii++) {
        const struct impl *im = &impls[ii];
        if (im->tune)
            setenv("NINCL_GEMM_PACKED", im->tune, 1);
        else
            unsetenv("NINCL_GEMM_PACKED");
        struct ncl_ctx *ctx = NULL;
        struct ncl_ctx_params p = {.gemm = im->gemm};
        enum ncl_status s = ncl_ctx_create(&p, &ctx);
        CHECK(s == NCL_OK, "ncl_ctx_create(%s): %s", im->name, ncl_last_error());
        if (s != NCL_OK)
            continue;
        int failed_before = check_failed;
        double t_impl = now();
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            size_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
            for (int t = 0; t < 4; t++) {
                int ta = t >> 1, tb = t & 1;
                gemm_case(ctx, im->name, ta, tb, m, n, k, 1.0f, 0.0f, 1);     /* NaN C, not read */
                gemm_case(ctx, im->name, ta, tb, m, n, k, 1.0f, 1.0f, 0);     /* accumulate */
                gemm_case(ctx, im->name, ta, tb, m, n, k, -1.5f, 0.25f, 1);
            }
        }
        /* NiN-like: conv1 at 54x54 for one image (forward NN, input gradient TN), weight
         * gradients over a long batch (NT, K sliced), conv2's forward at a reduced pixel count
         * (K = 2400 runs several k blocks) */
        gemm_case(ctx, im->name, 0, 0, 96, 2916, 121, 1.0f, 0.0f, 0);
        gemm_case(ctx, im->name, 1, 0, 121, 2916, 96, 1.0f, 0.0f, 0);
        gemm_case(ctx, im->name, 0, 1, 64, 96, 12000, 1.0f, 1.0f, 0);
        gemm_case(ctx, im->name, 0, 1, 40, 121, 5832, 1.0f, 1.0f, 1);
        gemm_case(ctx, im->name, 0, 0, 128, 300, 2400, 1.0f, 0.0f, 0);
        /* conv1's weight gradient at batch 128 in miniature: K = 128 x 54 x 54, longer than the
         * 65535 loop iterations llvmpipe lets a work-item run (with few output tiles) */
        gemm_case(ctx, im->name, 0, 1, 8, 12, 373248, 1.0f, 0.0f, 0);
        /* K cut into independent products (Winograd's 36 per round): every transpose, one
         * product, a few with gaps between their C blocks, the Winograd shapes in miniature */
        for (int t = 0; t < 4; t++) {
            gemm_case_sliced(ctx, im->name, t >> 1, t & 1, 13, 65, 17, 3, 1.0f, 0.0f, 1);
            gemm_case_sliced(ctx, im->name, t >> 1, t & 1, 7, 5, 3, 1, -1.5f, 0.25f, 1);
        }
        gemm_case_sliced(ctx, im->name, 0, 0, 24, 150, 16, 36, 1.0f, 0.0f, 0);    /* forward, input gradient */
        gemm_case_sliced(ctx, im->name, 0, 1, 24, 16, 150, 36, 1.0f, 1.0f, 0);    /* weight gradient, accumulated */
        gemm_case_sliced(ctx, im->name, 0, 0, 9, 70, 0, 2, 1.0f, 0.5f, 1);        /* kc = 0: C_s = beta C_s */
        /* k = 0: C = beta * C */
        gemm_case(ctx, im->name, 0, 0, 9, 70, 0, 1.0f, 0.5f, 1);
        gemm_case(ctx, im->name, 1, 1, 9, 70, 0, 1.0f, 0.0f, 0);
        /* bad leading dimension: an error, not a crash */
        if (strcmp(im->gemm, "packed") == 0) {
            s = ncl_gemm(ctx, 0, 0, 4, 4, 4, 1.0f, NULL, 0, 3, NULL, 0, 4, 0.0f, NULL, 0, 4);
            CHECK(s == NCL_ERR_ARG, "%s: lda < k accepted", im->name);
        }
        printf("%-36s %s (%.1f s)\n", im->name, check_failed == failed_before ? "ok" : "FAILED", now() - t_impl);
        ncl_ctx_free(ctx);
    }
    unsetenv("NINCL_GEMM_PACKED");
}

/* A context for CLBlast with NINCL_GEMM_SPLITK set while it is created and read (at its first
 * GEMM, here ncl_gemm_clblast_slices); NULL (and a failed check) if it cannot be made. */
static struct ncl_ctx *split_ctx(const char *splitk)
{
    setenv("NINCL_GEMM_SPLITK", splitk, 1);
    struct ncl_ctx *ctx = NULL;
    struct ncl_ctx_params p = {.gemm = "clblast"};
    enum ncl_status s = ncl_ctx_create(&p, &ctx);
    CHECK(s == NCL_OK, "ncl_ctx_create(clblast, NINCL_GEMM_SPLITK=%s): %s", splitk, ncl_last_error());
    size_t slices = 0;
    if (s == NCL_OK) {
        s = ncl_gemm_clblast_slices(ctx, 0, 1, 1, 1, 1, &slices);
        CHECK(s == NCL_OK, "NINCL_GEMM_SPLITK=%s refused: %s", splitk, ncl_last_error());
    }
    unsetenv("NINCL_GEMM_SPLITK");
    if (s != NCL_OK && ctx) {
        ncl_ctx_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static size_t split_slices(struct ncl_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k)
{
    size_t slices = 0;
    enum ncl_status s = ncl_gemm_clblast_slices(ctx, ta, tb, m, n, k, &slices);
    CHECK(s == NCL_OK, "ncl_gemm_clblast_slices: %s", ncl_last_error());
    return slices;
}

/* CLBlast's split K: the plan (which GEMMs split, into how many partial products), the products
 * against the reference (remainder slices, alpha, beta 0 over NaN, beta != 0, offsets, padded
 * ld), the workspace, and NINCL_GEMM_SPLITK's bad values. */
static void run_split_k_tests(void)
{
    double t0 = now();
    int failed_before = check_failed;
    const char *name = "clblast(NINCL_GEMM_SPLITK=4)";
    struct ncl_ctx *ctx = split_ctx("4");
    if (ctx) {
        /* K = 3001 in 4: three slices of 751 in the batched call and a remainder of 748 */
        CHECK(split_slices(ctx, 0, 1, 7, 5, 3001) == 4, "%s: 7x5x3001 not in 4 slices", name);
        CHECK(split_slices(ctx, 0, 1, 3, 4, 3) == 3, "%s: K = 3 not in 3 slices of one", name);
        CHECK(split_slices(ctx, 0, 0, 7, 5, 3001) == 1 && split_slices(ctx, 1, 1, 7, 5, 3001) == 1 &&
                  split_slices(ctx, 1, 0, 7, 5, 3001) == 1, "%s: a product other than NT split", name);
        /* the workspace bound (16M floats): 2048 x 4096 fits 2 slots, 4096 x 4096 none */
        CHECK(split_slices(ctx, 0, 1, 2048, 4096, 100) == 2, "%s: 2048x4096 not in 2 slices", name);
        CHECK(split_slices(ctx, 0, 1, 4096, 4096, 100) == 1, "%s: 4096x4096 split past the workspace", name);
        gemm_case(ctx, name, 0, 1, 7, 5, 3001, 1.0f, 0.0f, 1);     /* NaN C, not read */
        gemm_case(ctx, name, 0, 1, 7, 5, 3001, 1.0f, 1.0f, 0);     /* accumulate */
        gemm_case(ctx, name, 0, 1, 7, 5, 3001, -1.5f, 0.25f, 1);
        gemm_case(ctx, name, 0, 1, 13, 65, 2000, 0.5f, 0.0f, 1);   /* 4 equal slices, no remainder */
        gemm_case(ctx, name, 0, 1, 3, 4, 3, 2.0f, -1.0f, 1);       /* slices of one value */
        gemm_case(ctx, name, 0, 1, 40, 121, 5832, -1.5f, 0.25f, 1);
        /* the other products are not split, and still right */
        for (int t = 0; t < 3; t++)
            gemm_case(ctx, name, t >> 1, !(t & 1), 7, 5, 3001, -1.5f, 0.25f, 1);
        CHECK(ncl_ctx_device_bytes(ctx) >= 40 * 121 * 4 * sizeof(float),
              "%s: the slice workspace (%llu bytes) holds fewer than 4 slices of 40x121", name,
              (unsigned long long)ncl_ctx_device_bytes(ctx));
        ncl_ctx_free(ctx);
    }

    name = "clblast(NINCL_GEMM_SPLITK=1)";
    ctx = split_ctx("1");
    if (ctx) {
        /* a small output, K >= 64 * its larger side: slices of >= 1024 values, at most 64 */
        CHECK(split_slices(ctx, 0, 1, 96, 96, 20000) == 19, "%s: 96x96x20000 not in 19 slices", name);
        CHECK(split_slices(ctx, 0, 1, 96, 121, 373248) == 64, "%s: 96x121x373248 not in 64 slices", name);
        CHECK(split_slices(ctx, 0, 1, 256, 256, 86528) == 64, "%s: 256x256x86528 not in 64 slices", name);
        CHECK(split_slices(ctx, 0, 1, 96, 96, 6000) == 1, "%s: K < 64 * 96 split", name);
        CHECK(split_slices(ctx, 0, 1, 600, 500, 1000000) == 1, "%s: an output over 512 x 512 split", name);
        CHECK(split_slices(ctx, 0, 0, 96, 96, 20000) == 1 && split_slices(ctx, 1, 0, 96, 96, 20000) == 1,
              "%s: a product other than NT split", name);
        CHECK(ncl_ctx_device_bytes(ctx) == 0, "%s: workspace allocated before any split GEMM", name);
        gemm_case(ctx, name, 0, 1, 96, 96, 20000, -1.5f, 0.25f, 1);
        gemm_case(ctx, name, 0, 1, 96, 96, 20000, 1.0f, 0.0f, 0);
        CHECK(ncl_ctx_device_bytes(ctx) >= 19 * 96 * 96 * sizeof(float),
              "%s: the slice workspace (%llu bytes) holds fewer than 19 slices of 96x96", name,
              (unsigned long long)ncl_ctx_device_bytes(ctx));
        ncl_ctx_free(ctx);
    }

    ctx = split_ctx("0");
    if (ctx) {
        CHECK(split_slices(ctx, 0, 1, 96, 96, 20000) == 1, "NINCL_GEMM_SPLITK=0 split");
        ncl_ctx_free(ctx);
    }

    /* bad values: every GEMM fails with a message naming the variable, none runs unsplit */
    static const char *const bad[] = {"2x", "-1", "+3", " 1", "4097", "99999999999999999999", "on"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ncl_ctx_params p = {.gemm = "clblast"};
        setenv("NINCL_GEMM_SPLITK", bad[i], 1);
        if (ncl_ctx_create(&p, &ctx) != NCL_OK) {
            CHECK(0, "ncl_ctx_create(clblast): %s", ncl_last_error());
            continue;
        }
        enum ncl_status s = ncl_gemm(ctx, 0, 1, 4, 4, 4, 1.0f, NULL, 0, 4, NULL, 0, 4, 0.0f, NULL, 0, 4);
        CHECK(s == NCL_ERR_ARG && strstr(ncl_last_error(), "NINCL_GEMM_SPLITK"),
              "NINCL_GEMM_SPLITK='%s' accepted (status %d: %s)", bad[i], (int)s, ncl_last_error());
        ncl_ctx_free(ctx);
    }
    unsetenv("NINCL_GEMM_SPLITK");
    printf("%-36s %s (%.1f s)\n", "clblast split K", check_failed == failed_before ? "ok" : "FAILED", now() - t0);
}

/* ---- NINCL_GEMM_BENCH ------------------------------------------------------------------ */


/* Seconds per GEMM: one warm-up, then the fastest of `runs` (at least 2 and until 1 s), with
 * clFinish around each: the machine is shared, and others' work only ever slows a run down. */
static double bench_one(struct ncl_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, cl_mem a, cl_mem b,
                        cl_mem c, int runs)
{
    size_t lda = ta ? m : k, ldb = tb ? k : n;
    if (ncl_gemm(ctx, ta, tb, m, n, k, 1.0f, a, 0, lda, b, 0, ldb, 0.0f, c, 0, n) != NCL_OK) {
        fprintf(stderr, "gemm failed: %s\n", ncl_last_error());
        return -1;
    }
    clFinish(ctx->queue);
    double best = 1e30, total = 0;
    for (int r = 0; r < runs || (r < 20 && total < 1.0); r++) {
        double t0 = now();
        ncl_gemm(ctx, ta, tb, m, n, k, 1.0f, a, 0, lda, b, 0, ldb, 0.0f, c, 0, n);
        clFinish(ctx->queue);
        double t = now() - t0;
        total += t;
        if (t < best)
            best = t;
    }
    return best;
}

static int run_bench(void)
{
    /* NiN at batch 128: conv1 (11x11/4 -> 54x54), conv2 (5x5 -> 26x26), conv3 (3x3 -> 12x12), the
     * 1x1 convolutions after each, conv4 (3x3 -> 5x5, 10 classes). Forward y = W col (NN); weight
     * gradient dW = dy col^T (NT, K = batch pixels); input gradient dcol = W^T dy (TN). conv2's
     * im2col runs in chunks of 41 images (layer-conv.c bounds the workspace to 64M floats), so
     * its GEMMs see 41 * 676 = 27716 columns. */
    static const struct {
        const char *name;
        size_t oc, cols, kk;   /* out channels, batch * pixels, C * k * k */
    } layers[] = {
        {"conv1 11x11", 96, 373248, 121}, {"conv1 1x1", 96, 373248, 96},   {"conv2 5x5", 256, 27716, 2400},
        {"conv2 1x1", 256, 86528, 256},   {"conv3 3x3", 384, 18432, 2304}, {"conv3 1x1", 384, 18432, 384},
        {"conv4 3x3", 10, 3200, 3456},
    };
    const char *only = getenv("NINCL_GEMM_BENCH_ONLY");   /* substring of "conv2 5x5 NT" */
    const char *shape = getenv("NINCL_GEMM_BENCH_SHAPE");  /* "NT,96,96,373248": that shape only */
    const char *impl_names[] = {"clblast", "packed"};
    struct ncl_ctx *ctx[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        struct ncl_ctx_params p = {.gemm = impl_names[i]};
        if (ncl_ctx_create(&p, &ctx[i]) != NCL_OK) {
            fprintf(stderr, "%s\n", ncl_last_error());
            return 1;
        }
    }
    const char *skip = getenv("NINCL_GEMM_BENCH_SKIP");   /* "clblast": time the packed kernels only */
    int runs = getenv("NINCL_GEMM_BENCH_RUNS") ? atoi(getenv("NINCL_GEMM_BENCH_RUNS")) : 3;
    printf("device: %s\n%-16s %-3s %6s %7s %6s %10s %10s\n", ctx[0]->info.name, "layer", "op", "M", "N", "K",
           "clblast", "packed");
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        for (int op = 0; op < 3; op++) {
            static const char *const ops[] = {"NN", "NT", "TN"};
            size_t m = op == 0 ? layers[l].oc : op == 1 ? layers[l].oc : layers[l].kk;
            size_t n = op == 0 ? layers[l].cols : op == 1 ? layers[l].kk : layers[l].cols;
            size_t k = op == 0 ? layers[l].kk : op == 1 ? layers[l].cols : layers[l].oc;
            int ta = op == 2, tb = op == 1;
            char tt[3];
            if (shape) {
                if (l > 0 || op > 0 || sscanf(shape, "%2[NT],%zu,%zu,%zu", tt, &m, &n, &k) != 4)
                    continue;
                ta = tt[0] == 'T', tb = tt[1] == 'T';
            }
            char label[64];
            snprintf(label, sizeof label, "%s %s", layers[l].name, ops[op]);
            if (shape)
                snprintf(label, sizeof label, "%s", shape);
            if (only && !strstr(label, only))
                continue;
            printf("%-16s %-3s %6zu %7zu %6zu", shape ? "custom" : layers[l].name, shape ? tt : ops[op], m, n, k);
            fflush(stdout);
            for (int i = 0; i < 2; i++) {
                if (i == 0 && skip && strstr(skip, "clblast")) {
                    printf(" %10s", "-");
                    continue;
                }
                cl_int err;
                cl_mem a = clCreateBuffer(ctx[i]->context, CL_MEM_READ_WRITE, m * k * 4, NULL, &err);
                cl_mem b = clCreateBuffer(ctx[i]->context, CL_MEM_READ_WRITE, k * n * 4, NULL, &err);
                cl_mem c = clCreateBuffer(ctx[i]->context, CL_MEM_READ_WRITE, m * n * 4, NULL, &err);
                float zero = 0.0f;
                clEnqueueFillBuffer(ctx[i]->queue, a, &zero, 4, 0, m * k * 4, 0, NULL, NULL);
                clEnqueueFillBuffer(ctx[i]->queue, b, &zero, 4, 0, k * n * 4, 0, NULL, NULL);
                double t = bench_one(ctx[i], ta, tb, m, n, k, a, b, c, runs);
                printf(" %10.1f", t > 0 ? 2.0 * m * n * k / t * 1e-9 : 0.0);
                fflush(stdout);
                clReleaseMemObject(a);
                clReleaseMemObject(b);
                clReleaseMemObject(c);
            }
            printf("\n");
        }
    }
    ncl_ctx_free(ctx[0]);
    ncl_ctx_free(ctx[1]);
    return 0;
}

int main(void)
{
    if (getenv("NINCL_GEMM_BENCH"))
        return run_bench();
    double t0 = now();
    run_tests();
    run_split_k_tests();
    printf("(%.1f s)\n", now() - t0);
    return check_done("test-gemm");
}
