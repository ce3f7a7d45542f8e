/* Every layer on the OpenCL device (PoCL in CI), through the real graph, against the naive
 * references in tests/ref/ref-layers.c and against central finite differences of the device's
 * own forward:
 *   - forward of Conv2d (kernel 11/4/0, 5/1/2, 3/2/1, 1x1 direct and 1x1 stride 2; odd sizes,
 *     3/5/7 channels, batch 1 and 3, ReLU on and off; im2col chunks smaller than the batch;
 *     batches smaller than the reserved maximum), MaxPool2d 3/2 and 2/2 (ties), global average
 *     pool, Dropout (train: the Random123 Philox mask bit for bit; eval: identity), Flatten
 *     (PyTorch order), Linear;
 *   - backward of each: dx and parameter gradients against the reference (tight) and against
 *     finite differences (loose, see FD_* below);
 *   - gradient accumulation, SGD (plain, momentum + weight decay as torch.optim.SGD);
 *   - softmax cross-entropy: loss, correct count, the gradient it writes, logits near +-1e4;
 *   - a small NiN-like chain (conv, pool, 1x1 conv, dropout, GAP, flatten, linear, loss) end to end.
 * The test reaches into runtime/graph/graph-impl.h for what the public API does not expose: the
 * output-gradient buffer g->grad_act[layer_count % 2], g->want_input_grad (the first layer then
 * writes dx into g->grad_act[0]) and a conv layer's im2col chunk. */
#include "check.h"
#include "graph-impl.h"
#include "nincl.h"
#include "ref/ref-layers.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct ncl_ctx *ctx;
static int verbose;
/* this pass runs 3x3 and 5x5 stride-1 convolutions by Winograd: 0 never, 1 all of them, 2 those
 * with 16 or more input channels (auto on a CPU) */
static int expect_winograd;

#define OK(call) CHECK((call) == NCL_OK, "%s", ncl_last_error())

/* ---- host helpers ------------------------------------------------------------------------- */

static uint64_t rng_state = 0x5eed;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float urand(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rng_next() >> 40) * (1.0 / 16777216.0));
}

static float *fvec(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    return v;
}

static float *frand(size_t n, float lo, float hi)
{
    float *v = fvec(n);
    for (size_t i = 0; i < n; i++)
        v[i] = urand(lo, hi);
    return v;
}

static size_t per_image(struct ncl_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* Bitwise mismatches; prints the first few unless what is NULL. */
static int count_exact_mismatches(const char *what, const float *got, const float *want, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            if (what && bad < 5)
                fprintf(stderr, "  %s[%zu]: got %.9g want %.9g (bitwise)\n", what, i, got[i], want[i]);
            bad++;
        }
    return bad;
}

/* ---- device helpers ----------------------------------------------------------------------- */

static struct ncl_graph *graph_begin(int n, int c, int h, int w)
{
    struct ncl_graph *g = NULL;
    OK(ncl_graph_create(ctx, (struct ncl_shape){n, c, h, w}, &g));
    return g;
}

static size_t mem_size(cl_mem m)
{
    size_t bytes = 0;
    clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    return bytes;
}

static int graph_finish(struct ncl_graph *g)
{
    if (!g)
        return 0;
    g->want_input_grad = 1;
    enum ncl_status s = ncl_graph_reserve(g);
    CHECK(s == NCL_OK, "reserve: %s", ncl_last_error());
    if (s != NCL_OK)
        return 0;
    return 1;
}

static void dev_forward(struct ncl_graph *g, const float *x, int batch, enum ncl_mode mode, uint64_t step, float *y)
{
    OK(ncl_graph_write_input(g, x, batch));
    OK(ncl_graph_forward(g, batch, mode, step));
    OK(ncl_graph_read_output(g, y, batch));
}

/* NCHW <-> the device's CNHW for `batch` images of per-image shape s. */
static void nchw_to_cnhw(const float *src, float *dst, int batch, struct ncl_shape s)
{
    size_t hw = (size_t)s.h * s.w;
    for (int n = 0; n < batch; n++)
        for (int c = 0; c < s.c; c++)
            memcpy(dst + ((size_t)c * batch + n) * hw, src + ((size_t)n * s.c + c) * hw, hw * sizeof(float));
}

static void cnhw_to_nchw(const float *src, float *dst, int batch, struct ncl_shape s)
{
    size_t hw = (size_t)s.h * s.w;
    for (int n = 0; n < batch; n++)
        for (int c = 0; c < s.c; c++)
            memcpy(dst + ((size_t)n * s.c + c) * hw, src + ((size_t)c * batch + n) * hw, hw * sizeof(float));
}

/* Writes dL/dy (host NCHW) where backward reads it: the buffer the loss would write. */
static void dev_write_dy(struct ncl_graph *g, const float *dy, int batch)
{
    struct ncl_shape s = ncl_graph_output_shape(g);
    size_t n = (size_t)batch * per_image(s);
    float *t = fvec(n);
    nchw_to_cnhw(dy, t, batch, s);
    cl_int err = clEnqueueWriteBuffer(g->ctx->queue, g->grad_act[g->layer_count % 2], CL_TRUE, 0, n * sizeof(float), t,
                                      0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "writing the output gradient: %d", err);
    free(t);
}

/* Reads an activation-gradient buffer holding `batch` images of shape s (CNHW) as NCHW. */
static void dev_read_act_grad(struct ncl_graph *g, cl_mem buf, struct ncl_shape s, int batch, float *out)
{
    size_t n = (size_t)batch * per_image(s);
    float *t = fvec(n);
    cl_int err = clEnqueueReadBuffer(g->ctx->queue, buf, CL_TRUE, 0, n * sizeof(float), t, 0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "reading an activation gradient: %d", err);
    cnhw_to_nchw(t, out, batch, s);
    free(t);
}

/* dL/dy = dy: zero the gradients, backward, read dx (NCHW) and every parameter's gradient. */
static void dev_backward(struct ncl_graph *g, const float *dy, int batch, int zero, float *dx, float **dp)
{
    if (zero)
        OK(ncl_graph_zero_grads(g));
    dev_write_dy(g, dy, batch);
    OK(ncl_graph_backward(g, batch));
    if (dx)
        dev_read_act_grad(g, g->grad_act[0], g->input.shape, batch, dx);
    for (int i = 0; dp && i < ncl_graph_param_count(g); i++)
        OK(ncl_graph_read_grad(g, i, dp[i]));
}

/* ---- one layer graph against its reference and finite differences ------------------------- */

struct layer_ref {
    void *ud;
    void (*forward)(void *ud, int batch, const float *x, float *const *p, float *y);
    /* y: the forward's output (ReLU mask); writes dx and dp[i] (overwrite) */
    void (*backward)(void *ud, int batch, const float *x, float *const *p, const float *y, const float *dy, float *dx,
                     float **dp);
    /* Optional. Every layer here is piecewise linear in each input and parameter; this writes the
     * linear piece at (x, p) (max-pool winners), -1 for an entry too close to a kink for the
     * device and the reference to agree. A finite difference whose two sides lie in different
     * pieces is skipped (and fails the check: the inputs are built to avoid it). NULL: no kinks. */
    void (*region)(void *ud, int batch, const float *x, float *const *p, int *pat);
    /* Optional. Zeroes the weights r of the outputs whose pre-activation is within KINK_MARGIN
     * of a ReLU kink, so that L = sum(y * r) is linear in every single perturbation of size eps. */
    void (*mask_r)(void *ud, int batch, const float *x, float *const *p, float *r);
};

/* Finite differences. L = sum(y * r) in double on the host, y from the device's forward, and
 * dL/dv ~ (L(v + eps) - L(v - eps)) / (2 eps) for one input or parameter element v at a time.
 * Every layer is piecewise linear in each single v, so a central difference that stays inside
 * one linear piece has no truncation error at all; the kinks are kept out of it:
 *  - ReLU: r is zeroed (before backward, so the device gradient uses the same r) on the outputs
 *    whose pre-activation z is within KINK_MARGIN = 0.05 of 0. One perturbation moves any z by
 *    at most eps * max(|x|, |w|, 1) = 1e-2 (inputs in [-1, 1], weights below sqrt(3 / fan_in)
 *    <= 1, bias steps of eps), 5x less than the margin, so no output that counts crosses 0;
 *  - max-pool: inputs are distinct multiples of 0.03 > 2 * eps inside each plane, so no window
 *    changes its winner (checked with the reference: a sample that would cross one is
 *    skipped, and the test fails if any is).
 * What remains is float32 rounding of y+ and y-: a GEMM output of K <= 363 products of O(1)
 * values carries about sqrt(K) * 2^-24 ~ 1e-6 error; only the outputs that depend on v differ
 * between the two runs (the rest are bit-identical), and their errors, of random sign over up
 * to a few hundred outputs, add to ~sqrt(200) * 1e-6 ~ 1.5e-5 in L+ - L-, i.e. ~7e-4 in the
 * quotient at eps = 1e-2 (measured: under 1e-4 everywhere). The outputs that depend on v are
 * also what its gradient sums over, so the many-output ones (weights) have the large
 * gradients, O(1..10). Hence eps = 1e-2 (as large as the margins allow: the rounding noise
 * falls as 1 / eps) and |fd - grad| <= FD_ABS + FD_REL * |fd| with FD_ABS = 6e-4, FD_REL = 3e-3:
 * a gradient off by 1% is caught wherever |g| > 0.09 (checked by hand: one input gradient and
 * one weight gradient of every case scaled by 1.01 made the check fail wherever |g| > 0.09). */
#define FD_EPS 1e-2f
#define FD_ABS 6e-4
#define FD_REL 3e-3
#define KINK_MARGIN 0.05f

struct fd_opts {
    float eps;
    int max_x, max_w;   /* samples of the input and of the weight; every bias element */
};
static const struct fd_opts fd_default = {FD_EPS, 96, 48};

struct fd_run {
    struct ncl_graph *g;
    int batch;
    enum ncl_mode mode;
    uint64_t step;
    const float *x, *r;
    float *y;
    size_t ny;
};

static double dev_loss(const struct fd_run *f)
{
    dev_forward(f->g, f->x, f->batch, f->mode, f->step, f->y);
    double sum = 0.0;
    for (size_t i = 0; i < f->ny; i++)
        sum += (double)f->y[i] * f->r[i];
    return sum;
}

static size_t sample_index(int k, int m, size_t count)
{
    return (size_t)(((double)k + 0.5) * (double)count / m);
}

/* Checks the graph g (parameters p already chosen) at input x of `batch` images. */
static void check_layer(const char *name, struct ncl_graph *g, int batch, enum ncl_mode mode, uint64_t step, float *x,
                        float **p, const struct layer_ref *ref, const struct fd_opts *fd)
{
    char what[160];
    int np = ncl_graph_param_count(g);
    CHECK(np <= NCL_LAYER_MAX_PARAMS, "%s: check_layer takes graphs of one parameterised layer", name);
    if (np > NCL_LAYER_MAX_PARAMS)
        return;
    size_t nx = (size_t)batch * per_image(ncl_graph_input_shape(g));
    size_t ny = (size_t)batch * per_image(ncl_graph_output_shape(g));
    size_t pc[NCL_LAYER_MAX_PARAMS] = {0};
    float *dp[NCL_LAYER_MAX_PARAMS] = {0}, *rp[NCL_LAYER_MAX_PARAMS] = {0};
    for (int i = 0; i < np; i++) {
        struct ncl_param_info info;
        ncl_graph_param_info(g, i, &info);
        pc[i] = info.count;
        dp[i] = fvec(pc[i]);
        rp[i] = fvec(pc[i]);
        OK(ncl_graph_write_param(g, i, p[i]));
    }
    float *y = fvec(ny), *y_ref = fvec(ny), *r = frand(ny, -1.0f, 1.0f), *dx = fvec(nx), *dx_ref = fvec(nx);
    if (fd && ref->mask_r)
        ref->mask_r(ref->ud, batch, x, p, r);

    /* forward */
    dev_forward(g, x, batch, mode, step, y);
    ref->forward(ref->ud, batch, x, p, y_ref);
    snprintf(what, sizeof what, "%s: forward", name);
    CHECK_CLOSE(what, y, y_ref, (long)ny);

    /* backward against the reference */
    dev_backward(g, r, batch, 1, dx, dp);
    ref->backward(ref->ud, batch, x, p, y_ref, r, dx_ref, rp);
    snprintf(what, sizeof what, "%s: dx vs reference", name);
    CHECK_CLOSE(what, dx, dx_ref, (long)nx);
    for (int i = 0; i < np; i++) {
        snprintf(what, sizeof what, "%s: d%s vs reference", name, g->params[i].name);
        /* A parameter gradient is a sum over the batch and every pixel: its rounding error
         * scales with the gradient's magnitude, not with each element (an element that
         * cancels to near zero keeps the error of its terms). Winograd's weight gradient
         * (F(5x5, 2x2)'s back-transform has coefficients up to 16) measured up to 9e-6 of the
         * largest element, im2col's 1e-6; a wrong coefficient is off by the magnitude itself. */
        double big = 0;
        for (size_t j = 0; j < pc[i]; j++)
            big = fmax(big, fabs(rp[i][j]));
        CHECK(check_close_tol(what, dp[i], rp[i], (long)pc[i], 1e-4 + 2e-5 * big, 1e-3) == 0, "%s", what);
    }

    /* backward against central differences of the device's forward */
    if (fd) {
        struct fd_run run = {g, batch, mode, step, x, r, fvec(ny), ny};
        int *pat_p = calloc(ny, sizeof *pat_p), *pat_m = calloc(ny, sizeof *pat_m);
        for (int which = -1; which < np; which++) {
            float *v = which < 0 ? x : p[which];
            const float *grad = which < 0 ? dx : dp[which];
            size_t count = which < 0 ? nx : pc[which];
            int m = which < 0 ? fd->max_x : g->params[which].is_bias ? (int)count : fd->max_w;
            if ((size_t)m > count)
                m = (int)count;
            float *got = fvec((size_t)m), *want = fvec((size_t)m);
            int used = 0, skipped = 0;
            double worst = 0.0;
            for (int k = 0; k < m; k++) {
                size_t j = sample_index(k, m, count);
                float orig = v[j], vp = orig + fd->eps, vm = orig - fd->eps;
                if (ref->region) {
                    v[j] = vp;
                    ref->region(ref->ud, batch, x, p, pat_p);
                    v[j] = vm;
                    ref->region(ref->ud, batch, x, p, pat_m);
                    v[j] = orig;
                    int stable = 1;
                    for (size_t i = 0; i < ny && stable; i++)
                        stable = pat_p[i] >= 0 && pat_p[i] == pat_m[i];
                    if (!stable) {
                        skipped++;
                        continue;
                    }
                }
                v[j] = vp;
                if (which >= 0)
                    OK(ncl_graph_write_param(g, which, v));
                double lp = dev_loss(&run);
                v[j] = vm;
                if (which >= 0)
                    OK(ncl_graph_write_param(g, which, v));
                double lm = dev_loss(&run);
                v[j] = orig;
                if (which >= 0)
                    OK(ncl_graph_write_param(g, which, v));
                /* the steps actually taken in float: vp - orig and orig - vm */
                double q = (lp - lm) / ((double)vp - (double)vm);
                got[used] = grad[j];
                want[used] = (float)q;
                double err = fabs(q - grad[j]);
                if (err > worst)
                    worst = err;
                used++;
            }
            snprintf(what, sizeof what, "%s: d%s vs finite differences", name,
                     which < 0 ? "input" : g->params[which].name);
            CHECK(check_close_tol(what, got, want, used, FD_ABS, FD_REL) == 0, "%s", what);
            CHECK(used >= 1 && skipped == 0, "%s: %d of %d samples would cross a kink", what, skipped, m);
            if (verbose)
                printf("  %-44s %3d samples (%d skipped), max |fd - grad| %.2e\n", what, used, skipped, worst);
            free(got);
            free(want);
        }
        free(pat_p);
        free(pat_m);
        free(run.y);
    }
    for (int i = 0; i < np; i++) {
        free(dp[i]);
        free(rp[i]);
    }
    free(y);
    free(y_ref);
    free(r);
    free(dx);
    free(dx_ref);
}

/* ---- references as layer_ref callbacks ---------------------------------------------------- */

struct conv_ud {
    int c, h, w, oc, k, s, pad, relu;
};

static void conv_fwd(void *ud, int n, const float *x, float *const *p, float *y)
{
    const struct conv_ud *u = ud;
    ref_conv2d_forward(x, n, u->c, u->h, u->w, p[0], p[1], u->oc, u->k, u->s, u->pad, u->relu, y);
}

static void conv_bwd(void *ud, int n, const float *x, float *const *p, const float *y, const float *dy, float *dx,
                     float **dp)
{
    const struct conv_ud *u = ud;
    ref_conv2d_backward(x, n, u->c, u->h, u->w, p[0], u->oc, u->k, u->s, u->pad, u->relu, y, dy, dx, dp[0], dp[1]);
}

/* ReLU: r = 0 where the pre-activation is within KINK_MARGIN of zero. */
static void conv_mask_r(void *ud, int n, const float *x, float *const *p, float *r)
{
    const struct conv_ud *u = ud;
    size_t ny = (size_t)n * u->oc * ref_out_size(u->h, u->k, u->s, u->pad) * ref_out_size(u->w, u->k, u->s, u->pad);
    float *z = fvec(ny);
    ref_conv2d_forward(x, n, u->c, u->h, u->w, p[0], p[1], u->oc, u->k, u->s, u->pad, 0, z);
    for (size_t i = 0; i < ny; i++)
        if (u->relu && fabsf(z[i]) < KINK_MARGIN)
            r[i] = 0.0f;
    free(z);
}

struct pool_ud {
    int c, h, w, k, s;
};

static void pool_fwd(void *ud, int n, const float *x, float *const *p, float *y)
{
    const struct pool_ud *u = ud;
    ref_maxpool_forward(x, n, u->c, u->h, u->w, u->k, u->s, y, NULL);
}

static void pool_bwd(void *ud, int n, const float *x, float *const *p, const float *y, const float *dy, float *dx,
                     float **dp)
{
    const struct pool_ud *u = ud;
    size_t ny = (size_t)n * u->c * ref_out_size(u->h, u->k, u->s, 0) * ref_out_size(u->w, u->k, u->s, 0);
    float *t = fvec(ny);
    int32_t *arg = calloc(ny, sizeof *arg);
    ref_maxpool_forward(x, n, u->c, u->h, u->w, u->k, u->s, t, arg);
    ref_maxpool_backward(dy, arg, n, u->c, u->h, u->w, u->k, u->s, dx);
    free(t);
    free(arg);
}

/* Max-pool region: each window's winner, -1 where the runner-up is within 1e-5 of it. */
static void pool_region(void *ud, int n, const float *x, float *const *p, int *pat)
{
    const struct pool_ud *u = ud;
    int oh = ref_out_size(u->h, u->k, u->s, 0), ow = ref_out_size(u->w, u->k, u->s, 0);
    for (int pl = 0; pl < n * u->c; pl++)
        for (int o = 0; o < oh * ow; o++) {
            const float *in = x + (size_t)pl * u->h * u->w;
            int oy = o / ow, ox = o % ow, best = -1;
            float b1 = -INFINITY, b2 = -INFINITY;
            for (int ky = 0; ky < u->k; ky++)
                for (int kx = 0; kx < u->k; kx++) {
                    int at = (oy * u->s + ky) * u->w + ox * u->s + kx;
                    if (in[at] > b1) {
                        b2 = b1;
                        b1 = in[at];
                        best = at;
                    } else if (in[at] > b2) {
                        b2 = in[at];
                    }
                }
            pat[(size_t)pl * oh * ow + o] = b1 - b2 > 1e-5f ? best : -1;
        }
}

struct gap_ud {
    int c, hw;
};

static void gap_fwd(void *ud, int n, const float *x, float *const *p, float *y)
{
    const struct gap_ud *u = ud;
    ref_gap_forward(x, n, u->c, u->hw, y);
}

static void gap_bwd(void *ud, int n, const float *x, float *const *p, const float *y, const float *dy, float *dx,
                    float **dp)
{
    const struct gap_ud *u = ud;
    ref_gap_backward(dy, n, u->c, u->hw, dx);
}

struct dropout_ud {
    int c, h, w, train;
    float p;
    uint64_t seed, step;
    int offset, global_n;       /* a replica's slice of a global batch; 0, 0: the whole */
};

static void dropout_fwd(void *ud, int n, const float *x, float *const *p, float *y)
{
    const struct dropout_ud *u = ud;
    if (u->train)
        ref_dropout_slice_forward(x, n, u->c, u->h, u->w, u->p, u->seed, u->step, u->offset,
                                  u->global_n ? u->global_n : n, y);
    else
        memcpy(y, x, (size_t)n * u->c * u->h * u->w * sizeof(float));
}

static void dropout_bwd(void *ud, int n, const float *x, float *const *p, const float *y, const float *dy, float *dx,
                        float **dp)
{
    dropout_fwd(ud, n, dy, p, dx);   /* the same mask and scale */
}

struct flat_ud {
    size_t per_image;
};

static void flat_fwd(void *ud, int n, const float *x, float *const *p, float *y)
{
    const struct flat_ud *u = ud;
    memcpy(y, x, (size_t)n * u->per_image * sizeof(float));   /* NCHW [n, c, h, w] is [n, c*h*w] */
}

static void flat_bwd(void *ud, int n, const float *x, float *const *p, const float *y, const float *dy, float *dx,
                     float **dp)
{
    flat_fwd(ud, n, dy, p, dx);
}

/* ---- Conv2d ------------------------------------------------------------------------------- */

struct conv_case {
    const char *name;
    int n, c, h, w, oc, k, s, pad, relu;
    int reserve_n;   /* 0: n */
    int chunk;       /* 0: as planned; else force this many images per im2col + GEMM (or Winograd) round */
};

/* Weights ~ U(+-sqrt(3 / fan_in)) keep pre-activations O(1) for inputs in [-1, 1]. */
static void conv_params(int c, int oc, int k, float **w, float **b)
{
    float bound = sqrtf(3.0f / (float)(c * k * k));
    *w = frand((size_t)oc * c * k * k, -bound, bound);
    *b = frand((size_t)oc, -0.5f, 0.5f);
}

static void test_conv(const struct conv_case *cc, const int *batches, int fd_first)
{
    int maxn = cc->reserve_n ? cc->reserve_n : cc->n;
    struct ncl_graph *g = graph_begin(maxn, cc->c, cc->h, cc->w);
    OK(ncl_graph_add_conv(g, "conv", 0, "Sequential", (struct ncl_conv_params){cc->oc, cc->k, cc->s, cc->pad, cc->relu}));
    if (!graph_finish(g)) {
        ncl_graph_free(g);
        return;
    }
    struct ncl_shape out = ncl_graph_output_shape(g);
    /* auto's rule (runtime/ops/conv-winograd.c): 16 or more input channels, and 2048 or more
     * multiply-adds saved per channel pair over the reserved batch */
    int m = cc->k == 5 ? 2 : 4, oh = ref_out_size(cc->h, cc->k, cc->s, cc->pad), ow = ref_out_size(cc->w, cc->k, cc->s, cc->pad);
    long saved = (long)(cc->reserve_n ? cc->reserve_n : cc->n) *
                 ((long)cc->k * cc->k * oh * ow - 36L * ((oh + m - 1) / m) * ((ow + m - 1) / m));
    int winograd = expect_winograd && cc->s == 1 && (cc->k == 3 || cc->k == 5) && cc->pad <= cc->k - 1 &&
                   (expect_winograd == 1 || (cc->c >= 16 && saved >= 2048));
    CHECK(g->layers[0].winograd_tile == (winograd ? (cc->k == 5 ? 2 : 4) : 0), "%s: Winograd tile %d", cc->name,
          g->layers[0].winograd_tile);
    CHECK(out.c == cc->oc && out.h == ref_out_size(cc->h, cc->k, cc->s, cc->pad) &&
              out.w == ref_out_size(cc->w, cc->k, cc->s, cc->pad),
          "%s: output shape %dx%dx%d", cc->name, out.c, out.h, out.w);
    if (cc->chunk) {
        struct ncl_layer *l = &g->layers[0];
        /* the workspace holds l->chunk images; a smaller chunk fits in it */
        CHECK(l->chunk >= cc->chunk, "%s: planned chunk %d < %d", cc->name, l->chunk, cc->chunk);
        l->chunk = cc->chunk;
        if (l->winograd_tile) {   /* and per Winograd round */
            CHECK(l->winograd_chunk >= cc->chunk, "%s: planned Winograd chunk %d < %d", cc->name, l->winograd_chunk,
                  cc->chunk);
            l->winograd_chunk = cc->chunk;
        }
    }
    float *w, *b;
    conv_params(cc->c, cc->oc, cc->k, &w, &b);
    float *p[2] = {w, b};
    struct conv_ud u = {cc->c, cc->h, cc->w, cc->oc, cc->k, cc->s, cc->pad, cc->relu};
    struct layer_ref ref = {.ud = &u, .forward = conv_fwd, .backward = conv_bwd, .mask_r = conv_mask_r};
    for (int i = 0; batches[i]; i++) {
        int n = batches[i];
        float *x = frand((size_t)n * cc->c * cc->h * cc->w, -1.0f, 1.0f);
        char name[128];
        snprintf(name, sizeof name, "%s batch %d", cc->name, n);
        check_layer(name, g, n, NCL_MODE_EVAL, 0, x, p, &ref, i == 0 && fd_first ? &fd_default : NULL);
        free(x);
    }
    free(w);
    free(b);
    ncl_graph_free(g);
}

static void test_convs(void)
{
    static const int one[] = {1, 0}, three[] = {3, 0}, smaller[] = {2, 1, 3, 0};
    static const struct conv_case k11 = {"conv k11 s4 p0 relu", 1, 3, 27, 31, 5, 11, 4, 0, 1, 0, 0};
    static const struct conv_case k5 = {"conv k5 s1 p2", 3, 5, 13, 17, 7, 5, 1, 2, 0, 0, 0};
    static const struct conv_case k3 = {"conv k3 s2 p1 relu", 3, 7, 13, 17, 5, 3, 2, 1, 1, 0, 0};
    static const struct conv_case k1 = {"conv k1 direct relu", 3, 5, 13, 17, 7, 1, 1, 0, 1, 0, 0};
    static const struct conv_case k1n = {"conv k1 direct", 1, 3, 13, 17, 5, 1, 1, 0, 0, 0, 0};
    static const struct conv_case k1s2 = {"conv k1 s2 (im2col)", 3, 3, 13, 17, 4, 1, 2, 0, 0, 0, 0};
    static const struct conv_case chunk1 = {"conv k3 s1 p0 chunk 1", 3, 3, 9, 11, 4, 3, 1, 0, 1, 0, 1};
    static const struct conv_case chunk2 = {"conv k3 s1 p1 chunk 2", 3, 5, 9, 11, 3, 3, 1, 1, 0, 0, 2};
    static const struct conv_case small = {"conv k3 s2 p1 reserve 3", 3, 3, 13, 17, 5, 3, 2, 1, 1, 3, 0};
    static const struct conv_case small_direct = {"conv k1 direct reserve 3", 3, 5, 7, 9, 6, 1, 1, 0, 0, 3, 0};
    /* enough output channels and columns for whole register tiles, where the packed GEMM
     * stores with full vectors and applies the fused bias + ReLU there */
    static const struct conv_case wide = {"conv k3 s1 p1 relu, whole tiles", 2, 4, 13, 17, 35, 3, 1, 1, 1, 0, 0};
    static const struct conv_case wide_direct = {"conv k1 direct relu, whole tiles", 3, 8, 13, 17, 33, 1, 1, 0, 1, 0, 0};
    test_conv(&k11, one, 1);
    test_conv(&k5, three, 1);
    test_conv(&k3, three, 1);
    test_conv(&k1, three, 1);
    test_conv(&k1n, one, 1);
    test_conv(&k1s2, three, 1);
    test_conv(&chunk1, three, 1);
    test_conv(&chunk2, three, 1);
    test_conv(&small, smaller, 1);
    test_conv(&small_direct, smaller, 0);
    test_conv(&wide, one, 0);
    test_conv(&wide_direct, one, 0);
    /* stride 1, 3x3 and 5x5: Winograd with the CPU kernel variants; pads other than "same" give
     * the input gradient other pads (r - 1 - pad), odd sizes give partial tiles */
    static const struct conv_case k5p0 = {"conv k5 s1 p0 relu", 3, 4, 11, 14, 6, 5, 1, 0, 1, 0, 0};
    static const struct conv_case k5p4 = {"conv k5 s1 p4", 3, 2, 6, 9, 5, 5, 1, 4, 0, 0, 0};
    static const struct conv_case k3p2 = {"conv k3 s1 p2 relu", 3, 6, 7, 10, 9, 3, 1, 2, 1, 0, 0};
    static const struct conv_case k5c = {"conv k5 s1 p2 relu chunk 1", 3, 16, 26, 26, 24, 5, 1, 2, 1, 0, 1};
    test_conv(&k5p0, three, 1);
    test_conv(&k5p4, three, 1);
    test_conv(&k3p2, three, 1);
    test_conv(&k5c, three, 0);
    /* enough channels but too few pixels for auto to choose Winograd (saves 180 per pair) */
    static const struct conv_case few = {"conv k3 s1 p1, 16 channels, 6x7", 1, 16, 6, 7, 8, 3, 1, 1, 1, 0, 0};
    test_conv(&few, one, 1);
}

/* ---- MaxPool2d ---------------------------------------------------------------------------- */

/* Values spaced 0.03 > 2 * FD_EPS apart inside each plane (a shuffled ramp), so no central
 * difference changes a window's winner. */
static float *spaced_planes(int n, int c, int h, int w)
{
    size_t hw = (size_t)h * w;
    float *x = fvec((size_t)n * c * hw);
    int *perm = malloc(hw * sizeof *perm);
    for (int pl = 0; pl < n * c; pl++) {
        for (size_t i = 0; i < hw; i++)
            perm[i] = (int)i;
        for (size_t i = hw - 1; i > 0; i--) {
            size_t j = rng_next() % (i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (size_t i = 0; i < hw; i++)
            x[(size_t)pl * hw + i] = 0.03f * (float)(perm[i] - (int)hw / 2);
    }
    free(perm);
    return x;
}

static void test_maxpool_case(int n, int c, int h, int w, int k, int s)
{
    struct ncl_graph *g = graph_begin(n, c, h, w);
    OK(ncl_graph_add_maxpool(g, "pool", 0, "Sequential", k, s));
    if (!graph_finish(g)) {
        ncl_graph_free(g);
        return;
    }
    struct pool_ud u = {c, h, w, k, s};
    struct layer_ref ref = {.ud = &u, .forward = pool_fwd, .backward = pool_bwd, .region = pool_region};
    char name[96];
    /* ties: small integers, so most windows hold several equal maxima; the first one wins and
     * takes the whole gradient */
    size_t nx = (size_t)n * c * h * w;
    float *x = fvec(nx);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)(rng_next() % 3);
    ref.region = NULL;
    for (int b = n; b >= 1 && b >= n - 1; b--) {   /* also one image less than reserved */
        snprintf(name, sizeof name, "maxpool %d/%d %dx%dx%dx%d ties", k, s, b, c, h, w);
        check_layer(name, g, b, NCL_MODE_EVAL, 0, x, NULL, &ref, NULL);
    }
    free(x);
    /* distinct values: finite differences */
    x = spaced_planes(n, c, h, w);
    ref.region = pool_region;
    snprintf(name, sizeof name, "maxpool %d/%d %dx%dx%dx%d", k, s, n, c, h, w);
    check_layer(name, g, n, NCL_MODE_EVAL, 0, x, NULL, &ref, &fd_default);
    free(x);
    ncl_graph_free(g);
}

static void test_maxpool(void)
{
    test_maxpool_case(3, 5, 13, 17, 3, 2);
    test_maxpool_case(1, 3, 11, 15, 2, 2);
    test_maxpool_case(3, 2, 7, 6, 2, 2);
}

/* ---- global average pool, flatten, linear ------------------------------------------------- */

static void test_gap(void)
{
    struct ncl_graph *g = graph_begin(3, 5, 7, 9);
    OK(ncl_graph_add_global_avgpool(g, "gap", 0, "Sequential"));
    if (graph_finish(g)) {
        struct ncl_shape out = ncl_graph_output_shape(g);
        CHECK(out.c == 5 && out.h == 1 && out.w == 1, "gap output %dx%dx%d", out.c, out.h, out.w);
        struct gap_ud u = {5, 63};
        struct layer_ref ref = {.ud = &u, .forward = gap_fwd, .backward = gap_bwd};
        float *x = frand(3 * 5 * 63, -1.0f, 1.0f);
        check_layer("global avgpool 3x5x7x9", g, 3, NCL_MODE_EVAL, 0, x, NULL, &ref, &fd_default);
        check_layer("global avgpool 2x5x7x9 (reserved 3)", g, 2, NCL_MODE_EVAL, 0, x, NULL, &ref, NULL);
        free(x);
    }
    ncl_graph_free(g);
}

static void test_flatten_linear(void)
{
    /* Flatten alone: [2, 3, 2, 4] -> [2, 24] in PyTorch order, which on the host is the same
     * memory, so the output must equal the input bit for bit */
    struct ncl_graph *g = graph_begin(2, 3, 2, 4);
    OK(ncl_graph_add_flatten(g, "flatten", 0, "Sequential"));
    if (graph_finish(g)) {
        struct ncl_shape out = ncl_graph_output_shape(g);
        CHECK(out.c == 24 && out.h == 1 && out.w == 1, "flatten output %dx%dx%d", out.c, out.h, out.w);
        float *x = fvec(48), *y = fvec(48), *dx = fvec(48), *r = frand(48, -1.0f, 1.0f);
        for (int i = 0; i < 48; i++)
            x[i] = (float)i;   /* value = NCHW position */
        dev_forward(g, x, 2, NCL_MODE_EVAL, 0, y);
        CHECK(count_exact_mismatches("flatten forward", y, x, 48) == 0, "flatten is not PyTorch's order");
        dev_backward(g, r, 2, 1, dx, NULL);
        CHECK(count_exact_mismatches("flatten backward", dx, r, 48) == 0, "flatten backward");
        free(x);
        free(y);
        free(dx);
        free(r);
        struct flat_ud u = {24};
        struct layer_ref ref = {.ud = &u, .forward = flat_fwd, .backward = flat_bwd};
        x = frand(48, -1.0f, 1.0f);
        check_layer("flatten [2,3,2,4]", g, 2, NCL_MODE_EVAL, 0, x, NULL, &ref, &fd_default);
        free(x);
    }
    ncl_graph_free(g);

    /* Linear after Flatten, ReLU off and on, batch 3 and (reserved 3) batch 2 */
    for (int relu = 0; relu < 2; relu++) {
        g = graph_begin(3, 3, 2, 4);
        OK(ncl_graph_add_flatten(g, "0", 0, "Sequential"));
        OK(ncl_graph_add_linear(g, "1", 0, "Sequential", 5, relu));
        if (graph_finish(g)) {
            struct ncl_param_info wi;
            ncl_graph_param_info(g, 0, &wi);
            CHECK(wi.ndim == 2 && wi.dims[0] == 5 && wi.dims[1] == 24, "linear weight %s is %dd", wi.name, wi.ndim);
            float *w, *b;
            conv_params(24, 5, 1, &w, &b);
            float *p[2] = {w, b};
            struct conv_ud u = {24, 1, 1, 5, 1, 1, 0, relu};
            struct layer_ref ref = {.ud = &u, .forward = conv_fwd, .backward = conv_bwd, .mask_r = conv_mask_r};
            for (int n = 3; n >= 2; n--) {
                float *x = frand((size_t)n * 24, -1.0f, 1.0f);
                char name[64];
                snprintf(name, sizeof name, "flatten+linear%s batch %d", relu ? " relu" : "", n);
                check_layer(name, g, n, NCL_MODE_EVAL, 0, x, p, &ref, n == 3 ? &fd_default : NULL);
                free(x);
            }
            free(w);
            free(b);
        }
        ncl_graph_free(g);
    }
}

/* ---- Dropout ------------------------------------------------------------------------------ */

static void test_dropout(void)
{
    const int n = 3, c = 5, h = 7, w = 9;
    const size_t nx = (size_t)n * c * h * w;
    const float p = 0.3f;
    struct ncl_graph *g = graph_begin(n, c, h, w);
    OK(ncl_graph_add_dropout(g, "drop", 0, "Sequential", p));
    if (!graph_finish(g)) {
        ncl_graph_free(g);
        return;
    }
    float *x = frand(nx, -1.0f, 1.0f), *y = fvec(nx), *y2 = fvec(nx), *want = fvec(nx);
    for (size_t i = 0; i < nx; i++)
        if (x[i] == 0.0f)
            x[i] = 0.5f;   /* a dropped element must be told from a kept zero */
    static const struct {
        uint64_t seed, step;
        int batch;
    } keys[] = {{1234, 7, 3}, {1234, 8, 3}, {99, 7, 3}, {0x0123456789abcdefull, (1ull << 32) + 5, 3}, {1234, 7, 2}};
    float *first = fvec(nx);
    for (size_t t = 0; t < sizeof keys / sizeof keys[0]; t++) {
        int b = keys[t].batch;
        size_t m = (size_t)b * c * h * w;
        ncl_graph_set_seed(g, keys[t].seed);
        dev_forward(g, x, b, NCL_MODE_TRAIN, keys[t].step, y);
        ref_dropout_forward(x, b, c, h, w, p, keys[t].seed, keys[t].step, want);
        char what[96];
        snprintf(what, sizeof what, "dropout train seed %llu step %llu batch %d", (unsigned long long)keys[t].seed,
                 (unsigned long long)keys[t].step, b);
        CHECK(count_exact_mismatches(what, y, want, m) == 0, "%s: not the Random123 mask", what);
        size_t kept = 0;
        for (size_t i = 0; i < m; i++)
            kept += y[i] != 0.0f;
        CHECK(fabs((double)kept / m - (1.0 - p)) < 0.1, "%s: kept %zu of %zu", what, kept, m);
        if (t == 0) {
            memcpy(first, y, nx * sizeof(float));
            dev_forward(g, x, n, NCL_MODE_TRAIN, keys[t].step, y2);   /* same key: same mask */
            CHECK(count_exact_mismatches("dropout repeat", y2, y, nx) == 0, "dropout is not reproducible");
        } else if (b == n) {
            CHECK(count_exact_mismatches(NULL, y, first, nx) > 0,
                  "%s: same mask as seed 1234 step 7", what);
        }
    }
    /* eval: the identity */
    dev_forward(g, x, n, NCL_MODE_EVAL, 7, y);
    CHECK(count_exact_mismatches("dropout eval", y, x, nx) == 0, "dropout eval is not the identity");

    /* backward, train and eval */
    struct dropout_ud u = {c, h, w, 1, p, 1234, 7, 0, 0};
    struct layer_ref ref = {.ud = &u, .forward = dropout_fwd, .backward = dropout_bwd};
    ncl_graph_set_seed(g, 1234);
    check_layer("dropout train", g, n, NCL_MODE_TRAIN, 7, x, NULL, &ref, &fd_default);
    u.train = 0;
    check_layer("dropout eval", g, n, NCL_MODE_EVAL, 7, x, NULL, &ref, NULL);

    /* replicas' slices of a global batch of 8 (3 + 2 + 3 images): each slice gets exactly the
     * masks one device draws for those images of the whole batch, forward and backward */
    const int global = 8, offsets[] = {0, 3, 5, 8};
    size_t per = (size_t)c * h * w;
    float *xg = frand(global * per, -1.0f, 1.0f), *whole = fvec(global * per);
    for (size_t i = 0; i < global * per; i++)
        if (xg[i] == 0.0f)
            xg[i] = 0.5f;
    ref_dropout_forward(xg, global, c, h, w, p, 1234, 9, whole);
    for (int k = 0; k < 3; k++) {
        int off = offsets[k], b = offsets[k + 1] - off;
        OK(ncl_graph_set_batch_slice(g, off, global));
        dev_forward(g, xg + off * per, b, NCL_MODE_TRAIN, 9, y);
        char what[64];
        snprintf(what, sizeof what, "dropout slice %d..%d of %d", off, off + b, global);
        CHECK(count_exact_mismatches(what, y, whole + off * per, (size_t)b * per) == 0,
              "%s: not the whole batch's masks", what);
        struct dropout_ud us = {c, h, w, 1, p, 1234, 9, off, global};
        struct layer_ref rs = {.ud = &us, .forward = dropout_fwd, .backward = dropout_bwd};
        check_layer(what, g, b, NCL_MODE_TRAIN, 9, xg + off * per, NULL, &rs, k == 1 ? &fd_default : NULL);
    }
    OK(ncl_graph_set_batch_slice(g, 0, 0));
    CHECK(ncl_graph_set_batch_slice(g, 2, 0) == NCL_ERR_ARG, "an offset without a global batch was accepted");
    OK(ncl_graph_set_batch_slice(g, 6, 8));
    CHECK(ncl_graph_forward(g, 3, NCL_MODE_TRAIN, 9) == NCL_ERR_ARG, "a slice past the global batch was accepted");
    OK(ncl_graph_set_batch_slice(g, 0, 0));
    free(xg);
    free(whole);
    free(x);
    free(y);
    free(y2);
    free(want);
    free(first);
    ncl_graph_free(g);
}

/* ---- the input gradient buffer ------------------------------------------------------------ */

/* With want_input_grad, the first layer writes dx (input-sized) into grad_act[0]; reserve must
 * make that buffer large enough even when every layer output is smaller than the input. */
static void test_input_grad_buffer(void)
{
    struct ncl_graph *g = graph_begin(2, 3, 13, 17);
    OK(ncl_graph_add_maxpool(g, "pool", 0, "Sequential", 3, 2));
    g->want_input_grad = 1;
    OK(ncl_graph_reserve(g));
    size_t need = 2 * 3 * 13 * 17 * sizeof(float), have = mem_size(g->grad_act[0]);
    CHECK(have >= need,
          "grad_act[0] holds %zu bytes but the input gradient backward writes there needs %zu: "
          "ncl_graph_reserve must count the input in max_act",
          have, need);
    ncl_graph_free(g);
}

/* ---- gradient accumulation and SGD -------------------------------------------------------- */

static void test_accumulate_sgd(void)
{
    const int n = 3;
    struct ncl_graph *g = graph_begin(n, 3, 5, 6);
    OK(ncl_graph_add_conv(g, "0", 0, "Sequential", (struct ncl_conv_params){4, 3, 1, 1, 0}));
    OK(ncl_graph_add_flatten(g, "1", 0, "Sequential"));
    OK(ncl_graph_add_linear(g, "2", 0, "Sequential", 5, 0));
    if (!graph_finish(g)) {
        ncl_graph_free(g);
        return;
    }
    int np = ncl_graph_param_count(g);
    CHECK(np == 4, "expected 4 parameters, got %d", np);
    float *w[4], *g1[4], *g2[4], *v[4], *dev[4];
    size_t pc[4];
    for (int i = 0; i < np && i < 4; i++) {
        struct ncl_param_info info;
        ncl_graph_param_info(g, i, &info);
        pc[i] = info.count;
        w[i] = frand(pc[i], -0.4f, 0.4f);
        g1[i] = fvec(pc[i]);
        g2[i] = fvec(pc[i]);
        v[i] = fvec(pc[i]);
        dev[i] = fvec(pc[i]);
        OK(ncl_graph_write_param(g, i, w[i]));
    }
    size_t nx = (size_t)n * 3 * 5 * 6, ny = (size_t)n * 5;
    float *x = frand(nx, -1.0f, 1.0f), *r = frand(ny, -1.0f, 1.0f), *y = fvec(ny), *dxa = fvec(nx), *dxb = fvec(nx);

    /* two backward passes without zeroing: twice the gradient, the same dx */
    dev_forward(g, x, n, NCL_MODE_TRAIN, 0, y);
    dev_backward(g, r, n, 1, dxa, g1);
    dev_backward(g, r, n, 0, dxb, g2);
    CHECK_CLOSE("dx of the second backward", dxb, dxa, (long)nx);
    for (int i = 0; i < np; i++) {
        for (size_t j = 0; j < pc[i]; j++)
            g1[i][j] *= 2.0f;
        CHECK_CLOSE(g->params[i].name, g2[i], g1[i], (long)pc[i]);
    }

    /* plain SGD consumes the gradient: w -= lr * g, g = 0, no momentum buffer */
    struct ncl_sgd_params sgd = {.lr = 0.1f};
    OK(ncl_graph_sgd_step(g, &sgd));
    for (int i = 0; i < np; i++) {
        for (size_t j = 0; j < pc[i]; j++)
            w[i][j] -= sgd.lr * g2[i][j];
        OK(ncl_graph_read_param(g, i, dev[i]));
        CHECK_CLOSE("sgd w - lr * g", dev[i], w[i], (long)pc[i]);
        memcpy(w[i], dev[i], pc[i] * sizeof(float));
        OK(ncl_graph_read_grad(g, i, dev[i]));
        size_t nonzero = 0;
        for (size_t j = 0; j < pc[i]; j++)
            nonzero += dev[i][j] != 0.0f;
        CHECK(nonzero == 0, "%s: %zu gradients not zeroed by the SGD step", g->params[i].name, nonzero);
    }
    CHECK(!ncl_graph_momentum_started(g), "momentum started without momentum");

    /* momentum 0.9 and weight decay over two steps, as torch.optim.SGD:
     * d = g + wd * w; v = d on the first step, else v = momentum * v + d; w -= lr * v */
    sgd = (struct ncl_sgd_params){.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f};
    for (int step = 0; step < 2; step++) {
        dev_forward(g, x, n, NCL_MODE_TRAIN, 0, y);
        dev_backward(g, r, n, 1, NULL, g1);
        OK(ncl_graph_sgd_step(g, &sgd));
        for (int i = 0; i < np; i++) {
            for (size_t j = 0; j < pc[i]; j++) {
                float d = g1[i][j] + sgd.weight_decay * w[i][j];
                v[i][j] = step == 0 ? d : sgd.momentum * v[i][j] + d;
                w[i][j] -= sgd.lr * v[i][j];
            }
            char what[160];
            snprintf(what, sizeof what, "momentum step %d: %s", step + 1, g->params[i].name);
            OK(ncl_graph_read_param(g, i, dev[i]));
            CHECK_CLOSE(what, dev[i], w[i], (long)pc[i]);
            OK(ncl_graph_read_velocity(g, i, dev[i]));
            snprintf(what, sizeof what, "momentum step %d: velocity of %s", step + 1, g->params[i].name);
            CHECK_CLOSE(what, dev[i], v[i], (long)pc[i]);
        }
        CHECK(ncl_graph_momentum_started(g), "momentum not started after a momentum step");
    }
    for (int i = 0; i < np; i++) {
        free(w[i]);
        free(g1[i]);
        free(g2[i]);
        free(v[i]);
        free(dev[i]);
    }
    free(x);
    free(r);
    free(y);
    free(dxa);
    free(dxb);
    ncl_graph_free(g);
}

/* ---- softmax cross-entropy ---------------------------------------------------------------- */

/* Graph [n + 1, classes, 1, 1] -> Flatten -> Linear(classes), run with batch n (one less than
 * reserved), with weight = scale * I and the given bias: logits = scale * x + bias. Checks loss, correct count and the written gradient against
 * the reference on the logits the device produced, then backward through the linear layer. */
static void check_xent(const char *name, int n, int classes, const float *x, float scale, const float *bias,
                       const int32_t *labels, double loss_tol, int expect_correct)
{
    struct ncl_graph *g = graph_begin(n + 1, classes, 1, 1);
    OK(ncl_graph_add_flatten(g, "0", 0, "Sequential"));
    OK(ncl_graph_add_linear(g, "1", 0, "Sequential", classes, 0));
    if (!graph_finish(g)) {
        ncl_graph_free(g);
        return;
    }
    size_t nl = (size_t)n * classes;
    float *w = fvec((size_t)classes * classes), *logits = fvec(nl), *grad = fvec(nl), *want = fvec(nl);
    float *dx = fvec(nl), *dw = fvec((size_t)classes * classes), *db = fvec((size_t)classes);
    for (int i = 0; i < classes; i++)
        w[(size_t)i * classes + i] = scale;
    OK(ncl_graph_write_param(g, 0, w));
    OK(ncl_graph_write_param(g, 1, bias));
    OK(ncl_graph_write_labels(g, labels, n));
    OK(ncl_graph_read_metrics(g, NULL, 1));
    dev_forward(g, x, n, NCL_MODE_TRAIN, 0, logits);
    for (size_t i = 0; i < nl; i++) {
        float expect = scale * x[i] + bias[i % classes];
        CHECK(fabsf(logits[i] - expect) <= 1e-6f * fabsf(expect) + 1e-6f, "%s: logit %zu is %g, want %g", name, i,
              logits[i], expect);
    }
    OK(ncl_graph_loss(g, n));
    struct ncl_metrics m = {0};
    OK(ncl_graph_read_metrics(g, &m, 0));
    int correct = -1;
    double losses[64];
    double mean = ref_softmax_xent(logits, labels, n, classes, &correct, want, losses);
    CHECK(isfinite(m.loss_sum), "%s: loss sum %g", name, m.loss_sum);
    CHECK(fabs(m.loss_sum - mean * n) <= loss_tol, "%s: loss sum %.9g, want %.9g", name, m.loss_sum, mean * n);
    CHECK(m.correct == correct && correct == expect_correct, "%s: correct %lld, reference %d, expected %d", name,
          (long long)m.correct, correct, expect_correct);
    CHECK(m.count == n, "%s: count %lld", name, (long long)m.count);
    if (verbose)
        printf("  %-44s loss sum %.9g, reference %.9g\n", name, m.loss_sum, mean * n);
    /* the gradient the loss wrote where backward reads it: (softmax - onehot) / n */
    dev_read_act_grad(g, g->grad_act[g->layer_count % 2], ncl_graph_output_shape(g), n, grad);
    char what[128];
    snprintf(what, sizeof what, "%s: dlogits", name);
    CHECK_CLOSE(what, grad, want, (long)nl);
    for (size_t i = 0; i < nl; i++)
        CHECK(isfinite(grad[i]), "%s: dlogits[%zu] = %g", name, i, grad[i]);
    /* as a replica's slice of a global batch of 3n images: the global mean's gradient, 1/3 of it */
    OK(ncl_graph_set_batch_slice(g, n, 3 * n));
    OK(ncl_graph_loss(g, n));
    float *sliced = fvec(nl);
    dev_read_act_grad(g, g->grad_act[g->layer_count % 2], ncl_graph_output_shape(g), n, sliced);
    for (size_t i = 0; i < nl; i++)
        want[i] /= 3.0f;
    snprintf(what, sizeof what, "%s: dlogits of a slice of 3n", name);
    CHECK_CLOSE(what, sliced, want, (long)nl);
    for (size_t i = 0; i < nl; i++)
        want[i] *= 3.0f;
    free(sliced);
    OK(ncl_graph_set_batch_slice(g, 0, 0));
    OK(ncl_graph_read_metrics(g, NULL, 1));
    OK(ncl_graph_loss(g, n));   /* the whole batch again, for the backward check below */
    /* backward through Linear(scale * I) and Flatten: dx = scale * dlogits, db = sum over the batch */
    OK(ncl_graph_zero_grads(g));
    OK(ncl_graph_backward(g, n));
    dev_read_act_grad(g, g->grad_act[0], ncl_graph_input_shape(g), n, dx);
    OK(ncl_graph_read_grad(g, 1, db));
    float *dx_want = fvec(nl), *db_want = fvec((size_t)classes);
    for (size_t i = 0; i < nl; i++) {
        dx_want[i] = scale * want[i];
        db_want[i % classes] += want[i];
    }
    snprintf(what, sizeof what, "%s: dx after the loss", name);
    CHECK_CLOSE(what, dx, dx_want, (long)nl);
    snprintf(what, sizeof what, "%s: dbias after the loss", name);
    CHECK_CLOSE(what, db, db_want, classes);
    /* metrics accumulate until reset */
    OK(ncl_graph_loss(g, n));
    struct ncl_metrics m2 = {0};
    OK(ncl_graph_read_metrics(g, &m2, 1));
    CHECK(m2.count == 2 * n && m2.correct == 2 * m.correct && fabs(m2.loss_sum - 2 * m.loss_sum) <= 1e-5 * fabs(m.loss_sum) + 1e-6,
          "%s: metrics after two losses: %g %lld %lld", name, m2.loss_sum, (long long)m2.correct, (long long)m2.count);
    OK(ncl_graph_read_metrics(g, &m2, 0));
    CHECK(m2.count == 0 && m2.correct == 0 && m2.loss_sum == 0.0, "%s: metrics not reset", name);
    free(w);
    free(logits);
    free(grad);
    free(want);
    free(dx);
    free(dw);
    free(db);
    free(dx_want);
    free(db_want);
    ncl_graph_free(g);
}

static void test_softmax_xent(void)
{
    enum { N = 3, C = 10 };
    float x[N * C], bias[C];
    int32_t labels[N] = {2, 7, 0};
    for (int i = 0; i < N * C; i++)
        x[i] = urand(-3.0f, 3.0f);
    for (int i = 0; i < C; i++)
        bias[i] = urand(-0.5f, 0.5f);
    /* rows 0 and 1 predict their label, row 2 does not */
    x[0 * C + 2] = 6.0f;
    x[1 * C + 7] = 5.0f;
    x[2 * C + 0] = -4.0f;
    /* the loss sum is a float of ~6: a few ulp */
    check_xent("xent moderate logits", N, C, x, 1.0f, bias, labels, 1e-5, 2);

    /* logits = 1e4 * x + bias, around +-1e4 (bias = class / 4):
     * row 0: classes 3 and 5 near +1e4 (10000.75 and 10001.25), the label 3: loss ~ 0.97;
     * row 1: all near -1e4, class 9 the largest (-9997.75) and the label: correct, loss ~ 0.5;
     * row 2: class 4 at +10001, the label 6 at -9998.5: loss ~ 2e4, softmax exactly 0 and 1.
     * The logits' own float spacing near 1e4 is 2^-10 ~ 1e-3, and a float log-sum-exp formed as
     * max + log(sum) is rounded at that spacing, so the loss sum may be off by ~2 of those:
     * tolerance 4e-3 (the same for the 2e4 row, whose float sum has spacing 2e-3). */
    float big[N * C], bbias[C];
    for (int i = 0; i < N * C; i++)
        big[i] = -1.0f;
    for (int i = 0; i < C; i++)
        bbias[i] = (float)i * 0.25f;
    big[0 * C + 3] = 1.0f;
    big[0 * C + 5] = 1.0f;
    labels[0] = 3;
    labels[1] = 9;
    big[2 * C + 4] = 1.0f;
    labels[2] = 6;
    check_xent("xent logits +-1e4", N, C, big, 1e4f, bbias, labels, 4e-3, 1);
    /* rows 0 and 1 only: small losses at large logits */
    check_xent("xent logits +-1e4, small losses", 2, C, big, 1e4f, bbias, labels, 4e-3, 1);
}

/* ---- a small chain, end to end with the loss ---------------------------------------------- */

static void test_chain(void)
{
    enum { N = 3, C = 3, H = 11, W = 13, C1 = 4, C2 = 6, K = 10 };
    const float p = 0.5f;
    const uint64_t seed = 77, step = 3;
    struct ncl_graph *g = graph_begin(N, C, H, W);
    OK(ncl_graph_add_conv(g, "0.0", 0, "Sequential", (struct ncl_conv_params){C1, 3, 1, 1, 1}));
    OK(ncl_graph_add_maxpool(g, "1", 1, "MaxPool2d", 3, 2));
    OK(ncl_graph_add_conv(g, "2.0", 2, "Sequential", (struct ncl_conv_params){C2, 1, 1, 0, 1}));
    OK(ncl_graph_add_dropout(g, "3", 3, "Dropout", p));
    OK(ncl_graph_add_global_avgpool(g, "4", 4, "AdaptiveAvgPool2d"));
    OK(ncl_graph_add_flatten(g, "5", 5, "Flatten"));
    OK(ncl_graph_add_linear(g, "6", 6, "Linear", K, 0));
    if (!graph_finish(g)) {
        ncl_graph_free(g);
        return;
    }
    ncl_graph_set_seed(g, seed);
    int PH = ref_out_size(H, 3, 2, 0), PW = ref_out_size(W, 3, 2, 0);
    float *w0, *b0, *w2, *b2, *w6, *b6;
    conv_params(C, C1, 3, &w0, &b0);
    conv_params(C1, C2, 1, &w2, &b2);
    conv_params(C2, K, 1, &w6, &b6);
    for (int i = 0; i < C2 * K; i++)
        w6[i] *= 4.0f;   /* GAP shrinks the features: keep the logits O(1) */
    float *params[6] = {w0, b0, w2, b2, w6, b6};
    for (int i = 0; i < 6; i++)
        OK(ncl_graph_write_param(g, i, params[i]));
    size_t nx = (size_t)N * C * H * W, n1 = (size_t)N * C1 * H * W, n2 = (size_t)N * C1 * PH * PW,
           n3 = (size_t)N * C2 * PH * PW;
    float *x = frand(nx, -1.0f, 1.0f);
    int32_t labels[N] = {1, 4, 9};

    /* reference forward */
    float *a1 = fvec(n1), *a2 = fvec(n2), *a3 = fvec(n3), *a4 = fvec(n3), *a5 = fvec((size_t)N * C2);
    float *logits = fvec((size_t)N * K), *dlog = fvec((size_t)N * K);
    int32_t *arg = calloc(n2, sizeof *arg);
    ref_conv2d_forward(x, N, C, H, W, w0, b0, C1, 3, 1, 1, 1, a1);
    ref_maxpool_forward(a1, N, C1, H, W, 3, 2, a2, arg);
    ref_conv2d_forward(a2, N, C1, PH, PW, w2, b2, C2, 1, 1, 0, 1, a3);
    ref_dropout_forward(a3, N, C2, PH, PW, p, seed, step, a4);
    ref_gap_forward(a4, N, C2, PH * PW, a5);
    ref_linear_forward(a5, N, C2, w6, b6, K, 0, logits);
    int correct = 0;
    double mean = ref_softmax_xent(logits, labels, N, K, &correct, dlog, NULL);

    /* device forward, loss, backward */
    float *y = fvec((size_t)N * K);
    dev_forward(g, x, N, NCL_MODE_TRAIN, step, y);
    CHECK_CLOSE("chain: logits", y, logits, N * K);
    OK(ncl_graph_write_labels(g, labels, N));
    OK(ncl_graph_read_metrics(g, NULL, 1));
    OK(ncl_graph_loss(g, N));
    struct ncl_metrics m = {0};
    OK(ncl_graph_read_metrics(g, &m, 1));
    CHECK(fabs(m.loss_sum / N - mean) <= 1e-4 + 1e-3 * fabs(mean), "chain: loss %.7g, want %.7g", m.loss_sum / N,
          mean);
    CHECK(m.correct == correct && m.count == N, "chain: correct %lld of %lld, want %d of %d", (long long)m.correct,
          (long long)m.count, correct, N);
    OK(ncl_graph_zero_grads(g));
    OK(ncl_graph_backward(g, N));
    float *dx = fvec(nx);
    dev_read_act_grad(g, g->grad_act[0], g->input.shape, N, dx);

    /* reference backward */
    float *g5 = fvec((size_t)N * C2), *g4 = fvec(n3), *g3 = fvec(n3), *g2 = fvec(n2), *g1 = fvec(n1), *gx = fvec(nx);
    float *dw[6], *got = NULL;
    for (int i = 0; i < 6; i++) {
        struct ncl_param_info info;
        ncl_graph_param_info(g, i, &info);
        dw[i] = fvec(info.count);
    }
    ref_linear_backward(a5, N, C2, w6, K, 0, logits, dlog, g5, dw[4], dw[5]);
    ref_gap_backward(g5, N, C2, PH * PW, g4);
    ref_dropout_forward(g4, N, C2, PH, PW, p, seed, step, g3);
    ref_conv2d_backward(a2, N, C1, PH, PW, w2, C2, 1, 1, 0, 1, a3, g3, g2, dw[2], dw[3]);
    ref_maxpool_backward(g2, arg, N, C1, H, W, 3, 2, g1);
    ref_conv2d_backward(x, N, C, H, W, w0, C1, 3, 1, 1, 1, a1, g1, gx, dw[0], dw[1]);
    CHECK_CLOSE("chain: dx", dx, gx, (long)nx);
    for (int i = 0; i < 6; i++) {
        struct ncl_param_info info;
        ncl_graph_param_info(g, i, &info);
        got = fvec(info.count);
        OK(ncl_graph_read_grad(g, i, got));
        char what[160];
        snprintf(what, sizeof what, "chain: d%s", info.name);
        CHECK_CLOSE(what, got, dw[i], (long)info.count);
        free(got);
        free(dw[i]);
    }
    free(w0);
    free(b0);
    free(w2);
    free(b2);
    free(w6);
    free(b6);
    free(x);
    free(a1);
    free(a2);
    free(a3);
    free(a4);
    free(a5);
    free(logits);
    free(dlog);
    free(arg);
    free(y);
    free(dx);
    free(g5);
    free(g4);
    free(g3);
    free(g2);
    free(g1);
    free(gx);
    ncl_graph_free(g);
}

/* ---- Random123 self-check ----------------------------------------------------------------- */

/* The reference's Philox against Random123's published known answers (tests/kat_vectors of
 * github.com/DEShawResearch/random123, the three "philox4x32 10" lines), so a broken build of
 * the reference cannot vouch for a broken kernel. */
static void test_philox_reference(void)
{
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1}};
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        ref_philox4x32_10(kat[t], kat[t] + 4, out);
        CHECK(memcmp(out, kat[t] + 6, sizeof out) == 0, "philox4x32-10 known answer %d: got %08x %08x %08x %08x", t,
              out[0], out[1], out[2], out[3]);
    }
    /* and the keep rule on it: counter 0, key 0 gives word 0x6627e8d5, u = 0x6627e8 / 2^24 */
    double u = (double)(0x6627e8d5u >> 8) / 16777216.0;
    CHECK(ref_dropout_keep(0, 0, 0, (float)(u - 1e-6)) == 1 && ref_dropout_keep(0, 0, 0, (float)(u + 1e-6)) == 0,
          "dropout keep rule around u = %.7f", u);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void)
{
    verbose = getenv("NCL_TEST_VERBOSE") != NULL;
    double t0 = now();
    test_philox_reference();
    /* every test once per GEMM implementation and kernel variant: the CPU default (packed GEMM,
     * CPU kernels) with Winograd wherever it applies, what GPUs run (CLBlast, GPU kernels,
     * im2col), and Winograd on CLBlast with the GPU kernels (NINCL_CONV=winograd on a GPU);
     * then the convolutions once more as a CPU runs them by default (auto: Winograd from 16
     * input channels, im2col below) */
    static const char *const gemms[] = {"packed", "clblast", "clblast", "packed"},
                             *const variants[] = {"cpu", "gpu", "gpu", "cpu"};
    static const char *const convs[] = {"winograd", "auto", "winograd", "auto"};
    static const int expect[] = {1, 0, 1, 2};
    for (int gi = 0; gi < 4; gi++) {
        struct ncl_ctx_params cp = {.gemm = gemms[gi], .kernels = variants[gi], .conv = convs[gi]};
        expect_winograd = expect[gi];
        enum ncl_status s = ncl_ctx_create(&cp, &ctx);
        CHECK(s == NCL_OK, "no OpenCL device: %s", ncl_last_error());
        if (s != NCL_OK)
            break;
        /* a device that cannot run the cpu set gets the gpu set (llvmpipe: ncl_device_loop_limit),
         * where auto means im2col */
        const char *got = ncl_ctx_kernel_variants(ctx, NULL);
        if (expect_winograd == 2 && strcmp(got, "cpu") != 0)
            expect_winograd = 0;
        printf("gemm %s, %s kernels (asked: %s), conv %s, on %s\n", gemms[gi], got, variants[gi], convs[gi],
               ncl_ctx_device(ctx)->name);
        fprintf(stderr, "-- gemm %s, %s kernels, conv %s\n", gemms[gi], got, convs[gi]);
        if (gi == 0)
            test_input_grad_buffer();
        struct {
            const char *name;
            void (*fn)(void);
        } tests[] = {{"conv", test_convs},
                     {"maxpool", test_maxpool},
                     {"gap", test_gap},
                     {"flatten/linear", test_flatten_linear},
                     {"dropout", test_dropout},
                     {"accumulate/sgd", test_accumulate_sgd},
                     {"softmax xent", test_softmax_xent},
                     {"chain", test_chain}};
        for (size_t i = 0; i < (gi == 3 ? 1 : sizeof tests / sizeof tests[0]); i++) {   /* the last: convs */
            double t = now();
            tests[i].fn();
            if (verbose)
                printf("%s: %.2f s\n", tests[i].name, now() - t);
        }
        ncl_ctx_free(ctx);
        ctx = NULL;
    }
    printf("test-layers: %.1f s\n", now() - t0);
    return check_done("test-layers");
}
