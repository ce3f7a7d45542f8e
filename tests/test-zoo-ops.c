/* The zoo's layers and the branched graph on the OpenCL device (PoCL in CI), with both kernel
 * variants, against the naive references in tests/ref/ref-zoo.c and central finite differences
 * of the device's own forward:
 *   - BatchNorm2d and BatchNorm1d: eval and train forward, the running statistics and
 *     num_batches_tracked after a train forward, the train backward (dx, weight, bias);
 *   - Sigmoid, ReLU, AvgPool2d, MaxPool2d with padding on both sides, Add, Concat;
 *   - a branched graph (a tensor read by three layers, Add, Concat, BatchNorm, pools, Linear,
 *     BatchNorm1d) against finite differences, and the memory plan's buffer reuse;
 * on awkward shapes: batch 1 and 3, odd sizes, channel counts that are not multiples of 4.
 * It reaches into runtime/graph/graph-impl.h for the gradient buffers (g->output_grad, g->input_grad). */
#include "check.h"
#include "graph-impl.h"
#include "nincl.h"
#include "ref/ref-layers.h"
#include "ref/ref-zoo.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct ncl_ctx *ctx;

#define OK(call) CHECK((call) == NCL_OK, "%s", ncl_last_error())

static uint64_t rng_state = 0x200;

static float urand(float lo, float hi)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((double)(z >> 40) * (1.0 / 16777216.0));
}

static float *fvec(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        abort();
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

static void nchw_cnhw(const float *src, float *dst, int batch, struct ncl_shape s, int to_cnhw)
{
    size_t hw = (size_t)s.h * s.w;
    for (int n = 0; n < batch; n++)
        for (int c = 0; c < s.c; c++) {
            size_t a = ((size_t)n * s.c + c) * hw, b = ((size_t)c * batch + n) * hw;
            memcpy(dst + (to_cnhw ? b : a), src + (to_cnhw ? a : b), hw * sizeof(float));
        }
}

static struct ncl_graph *begin(int n, int c, int h, int w)
{
    struct ncl_graph *g = NULL;
    OK(ncl_graph_create(ctx, (struct ncl_shape){n, c, h, w}, &g));
    return g;
}

/* Reserves with the input's gradient kept; parameters from a seed (BatchNorm: random too). */
static int finish(struct ncl_graph *g)
{
    g->want_input_grad = 1;
    enum ncl_status s = ncl_graph_reserve(g);
    CHECK(s == NCL_OK, "reserve: %s", ncl_last_error());
    if (s != NCL_OK)
        return 0;
    OK(ncl_graph_init_params(g, 3));
    for (int i = 0; i < ncl_graph_param_count(g); i++)
        if (g->params[i].init_const) {   /* BatchNorm weight and bias: not 1 and 0 */
            float *v = frand(g->params[i].count, 0.5f, 1.5f);
            OK(ncl_graph_write_param(g, i, v));
            free(v);
        }
    return 1;
}

static void fwd(struct ncl_graph *g, const float *x, int batch, enum ncl_mode mode, float *y)
{
    OK(ncl_graph_write_input(g, x, batch));
    OK(ncl_graph_forward(g, batch, mode, 0));
    OK(ncl_graph_read_output(g, y, batch));
}

/* dL/dy = dy (NCHW): zero the gradients, backward, read dx (NCHW) and the parameters' gradients. */
static void bwd(struct ncl_graph *g, const float *dy, int batch, float *dx, float **dp)
{
    struct ncl_shape so = ncl_graph_output_shape(g), si = ncl_graph_input_shape(g);
    size_t no = (size_t)batch * per_image(so), ni = (size_t)batch * per_image(si);
    float *t = fvec(no > ni ? no : ni);
    OK(ncl_graph_zero_grads(g));
    nchw_cnhw(dy, t, batch, so, 1);
    CHECK(clEnqueueWriteBuffer(g->ctx->queue, g->output_grad, CL_TRUE, 0, no * sizeof(float), t, 0, NULL, NULL) ==
              CL_SUCCESS,
          "writing dy");
    OK(ncl_graph_backward(g, batch));
    if (dx) {
        CHECK(clEnqueueReadBuffer(g->ctx->queue, g->input_grad, CL_TRUE, 0, ni * sizeof(float), t, 0, NULL, NULL) ==
                  CL_SUCCESS,
              "reading dx");
        nchw_cnhw(t, dx, batch, si, 0);
    }
    for (int i = 0; dp && i < ncl_graph_param_count(g); i++)
        OK(ncl_graph_read_grad(g, i, dp[i]));
    free(t);
}

static double loss_of(struct ncl_graph *g, const float *x, int batch, enum ncl_mode mode, const float *r, float *y,
                      size_t ny)
{
    fwd(g, x, batch, mode, y);
    double s = 0;
    for (size_t i = 0; i < ny; i++)
        s += (double)y[i] * r[i];
    return s;
}

/* One entry of the input or of a parameter, set to a value before the loss is taken. */
struct probe {
    struct ncl_graph *g;
    int batch, param; /* param < 0: the input */
    enum ncl_mode mode;
    float *x, *w, *r, *y;
    size_t ny, i;
};

static double loss_at(const struct probe *pb, float v)
{
    float *a = pb->param < 0 ? pb->x : pb->w, keep = a[pb->i];
    a[pb->i] = v;
    if (pb->param >= 0)
        OK(ncl_graph_write_param(pb->g, pb->param, pb->w));
    double l = loss_of(pb->g, pb->x, pb->batch, pb->mode, pb->r, pb->y, pb->ny);
    a[pb->i] = keep;
    if (pb->param >= 0)
        OK(ncl_graph_write_param(pb->g, pb->param, pb->w));
    return l;
}

/* Whether the backward's dL/dv at the probed entry agrees with finite differences. The
 * central difference is off by eps^2 L'''/6; where a layer curves sharply (BatchNorm over a
 * batch of 2 or 3) that alone comes near the tolerance, and float rounding of L, which differs
 * between OpenCL implementations, tips it over. Such an entry gets a second look with the
 * five-point stencil (off by eps^4 L'''''/30): a wrong backward fails both. */
static int fd_agrees(const struct probe *pb, float eps, double grad, double *fd)
{
    float v = (pb->param < 0 ? pb->x : pb->w)[pb->i];
    double d1 = loss_at(pb, v + eps) - loss_at(pb, v - eps);
    *fd = d1 / (2.0 * eps);
    if (fabs(*fd - grad) <= 2e-3 + 1e-2 * fabs(*fd))
        return 1;
    double d2 = loss_at(pb, v + 2 * eps) - loss_at(pb, v - 2 * eps);
    *fd = (8 * d1 - d2) / (12.0 * eps);
    return fabs(*fd - grad) <= 2e-3 + 1e-2 * fabs(*fd);
}

/* Finite differences of L = sum(y * r) against the device's backward, for up to `samples`
 * input elements and as many of each parameter. The layers here are smooth or piecewise
 * linear with kinks kept away from the samples by the inputs the tests build; float32
 * rounding of L over eps gives the tolerance. */
static void fd_check(const char *name, struct ncl_graph *g, int batch, enum ncl_mode mode, float *x, float eps,
                     int samples)
{
    struct ncl_shape so = ncl_graph_output_shape(g), si = ncl_graph_input_shape(g);
    size_t ny = (size_t)batch * per_image(so), nx = (size_t)batch * per_image(si);
    float *r = frand(ny, -1, 1), *y = fvec(ny), *dx = fvec(nx);
    int np = ncl_graph_param_count(g);
    float *dp[16] = {0};
    for (int i = 0; i < np && i < 16; i++)
        dp[i] = fvec(g->params[i].count);
    fwd(g, x, batch, mode, y);
    bwd(g, r, batch, dx, dp);
    int bad = 0, checked = 0;
    struct probe pb = {g, batch, -1, mode, x, NULL, r, y, ny, 0};
    for (int k = 0; k < samples && (size_t)k < nx; k++) {
        pb.i = (size_t)(((double)k + 0.5) * (double)nx / (samples < (int)nx ? samples : (int)nx));
        double fd;
        checked++;
        if (!fd_agrees(&pb, eps, dx[pb.i], &fd) && bad++ < 4)
            fprintf(stderr, "  %s: dx[%zu]: finite difference %.6g, backward %.6g\n", name, pb.i, fd, dx[pb.i]);
    }
    for (int p = 0; p < np && p < 16; p++) {
        size_t count = g->params[p].count;
        float *w = fvec(count);
        OK(ncl_graph_read_param(g, p, w));
        pb.param = p;
        pb.w = w;
        int m = samples < (int)count ? samples : (int)count;
        for (int k = 0; k < m; k++) {
            pb.i = (size_t)(((double)k + 0.5) * (double)count / m);
            double fd;
            checked++;
            if (!fd_agrees(&pb, eps, dp[p][pb.i], &fd) && bad++ < 4)
                fprintf(stderr, "  %s: d%s[%zu]: finite difference %.6g, backward %.6g\n", name, g->params[p].name,
                        pb.i, fd, dp[p][pb.i]);
        }
        free(w);
    }
    CHECK(bad == 0, "%s: %d of %d finite differences disagree with backward", name, bad, checked);
    for (int i = 0; i < np && i < 16; i++)
        free(dp[i]);
    free(r);
    free(y);
    free(dx);
}

/* ---- BatchNorm ------------------------------------------------------------------------------ */

static void test_batchnorm(int n, int c, int h, int w, int flat)
{
    char name[64];
    snprintf(name, sizeof name, "BatchNorm%s %dx%dx%dx%d", flat ? "1d" : "2d", n, c, h, w);
    struct ncl_graph *g = begin(n, c, h, w);
    if (flat)
        OK(ncl_graph_add_flatten(g, "f", 0, "Flatten"));
    OK(ncl_graph_add_batchnorm(g, "bn", 1, "BatchNorm"));
    if (!finish(g)) {
        ncl_graph_free(g);
        return;
    }
    struct ncl_layer_info info;
    ncl_graph_layer_info(g, flat, &info);
    CHECK(strcmp(info.kind, flat ? "BatchNorm1d" : "BatchNorm2d") == 0, "%s: kind %s", name, info.kind);
    int C = flat ? c * h * w : c, HW = flat ? 1 : h * w;
    size_t nx = (size_t)n * c * h * w;
    float *x = frand(nx, -1, 2), *y = fvec(nx), *want = fvec(nx), *wt = fvec(C), *bs = fvec(C);
    float *rm = frand(C, -0.5f, 0.5f), *rv = frand(C, 0.5f, 2), *mean = fvec(C), *uvar = fvec(C);
    OK(ncl_graph_read_param(g, 0, wt));
    OK(ncl_graph_read_param(g, 1, bs));
    CHECK(ncl_graph_state_count(g) == 3, "%s: %d state tensors", name, ncl_graph_state_count(g));
    struct ncl_param_info si;
    ncl_graph_state_info(g, 2, &si);
    CHECK(strcmp(si.name, "bn.num_batches_tracked") == 0 && si.is_i64 && si.ndim == 0, "%s: state 2 is %s", name,
          si.name);
    OK(ncl_graph_write_state(g, 0, rm));
    OK(ncl_graph_write_state(g, 1, rv));

    fwd(g, x, n, NCL_MODE_EVAL, y);
    ref_batchnorm_forward(x, n, C, HW, wt, bs, 0, rm, rv, want, NULL, NULL);
    CHECK(check_close_tol("eval y", y, want, (long)nx, 1e-5, 1e-5) == 0, "%s: eval forward", name);
    fwd(g, x, n, NCL_MODE_TRAIN, y);
    ref_batchnorm_forward(x, n, C, HW, wt, bs, 1, NULL, NULL, want, mean, uvar);
    CHECK(check_close_tol("train y", y, want, (long)nx, 1e-5, 1e-5) == 0, "%s: train forward", name);
    float *got_m = fvec(C), *got_v = fvec(C);
    int64_t tracked = -1;
    OK(ncl_graph_read_state(g, 0, got_m));
    OK(ncl_graph_read_state(g, 1, got_v));
    OK(ncl_graph_read_state(g, 2, &tracked));
    for (int i = 0; i < C; i++) {
        rm[i] = 0.9f * rm[i] + 0.1f * mean[i];
        rv[i] = 0.9f * rv[i] + 0.1f * uvar[i];
    }
    CHECK(check_close_tol("running_mean", got_m, rm, C, 1e-6, 1e-5) == 0, "%s: running mean", name);
    CHECK(check_close_tol("running_var", got_v, rv, C, 1e-6, 1e-5) == 0, "%s: running var (unbiased)", name);
    CHECK(tracked == 1, "%s: num_batches_tracked %lld after one train forward", name, (long long)tracked);

    float *dy = frand(nx, -1, 1), *dx = fvec(nx), *dw = fvec(C), *db = fvec(C), *wdx = fvec(nx), *wdw = fvec(C),
          *wdb = fvec(C);
    float *dp[2] = {dw, db};
    bwd(g, dy, n, dx, dp);
    ref_batchnorm_backward(x, n, C, HW, wt, dy, wdx, wdw, wdb);
    CHECK(check_close_tol("dx", dx, wdx, (long)nx, 1e-5, 1e-4) == 0, "%s: dx", name);
    CHECK(check_close_tol("dweight", dw, wdw, C, 1e-5, 1e-4) == 0, "%s: dweight", name);
    CHECK(check_close_tol("dbias", db, wdb, C, 1e-5, 1e-4) == 0, "%s: dbias", name);
    fd_check(name, g, n, NCL_MODE_TRAIN, x, 1e-2f, 40);
    float *all[] = {x, y, want, wt, bs, rm, rv, mean, uvar, got_m, got_v, dy, dx, dw, db, wdx, wdw, wdb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    ncl_graph_free(g);
}

/* ---- activations and pools ------------------------------------------------------------------ */

static void test_activation(int relu, int n, int c, int h, int w)
{
    char name[64];
    snprintf(name, sizeof name, "%s %dx%dx%dx%d", relu ? "ReLU" : "Sigmoid", n, c, h, w);
    struct ncl_graph *g = begin(n, c, h, w);
    OK(relu ? ncl_graph_add_relu(g, "a", 0, "ReLU") : ncl_graph_add_sigmoid(g, "a", 0, "Sigmoid"));
    if (!finish(g)) {
        ncl_graph_free(g);
        return;
    }
    size_t nx = (size_t)n * c * h * w;
    float *x = frand(nx, -3, 3), *y = fvec(nx), *want = fvec(nx), *dy = frand(nx, -1, 1), *dx = fvec(nx),
          *wdx = fvec(nx);
    for (size_t i = 0; relu && i < nx; i++)   /* away from the kink for the finite differences */
        x[i] += x[i] >= 0 ? 0.05f : -0.05f;
    for (size_t i = 0; i < nx; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i]));
        want[i] = relu ? (x[i] > 0 ? x[i] : 0.0f) : (float)s;
        wdx[i] = relu ? (x[i] > 0 ? dy[i] : 0.0f) : (float)(dy[i] * s * (1 - s));
    }
    fwd(g, x, n, NCL_MODE_TRAIN, y);
    CHECK(check_close_tol("y", y, want, (long)nx, 1e-6, 1e-5) == 0, "%s: forward", name);
    bwd(g, dy, n, dx, NULL);
    CHECK(check_close_tol("dx", dx, wdx, (long)nx, 1e-6, 1e-5) == 0, "%s: backward", name);
    fd_check(name, g, n, NCL_MODE_TRAIN, x, 1e-2f, 60);
    free(x);
    free(y);
    free(want);
    free(dy);
    free(dx);
    free(wdx);
    ncl_graph_free(g);
}

/* Inputs distinct within each plane by at least 0.03 (a shuffled ramp), so no finite
 * difference of size 1e-2 changes a max-pool window's winner. */
static float *distinct_planes(int planes, int hw)
{
    float *x = fvec((size_t)planes * hw);
    for (int p = 0; p < planes; p++) {
        float *v = x + (size_t)p * hw;
        for (int i = 0; i < hw; i++)
            v[i] = -1.0f + 0.03f * i;
        for (int i = hw - 1; i > 0; i--) {
            int j = (int)urand(0, (float)i + 0.999f);
            float t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    }
    return x;
}

static void test_pool(int max, int n, int c, int h, int w, int k, int s, int p)
{
    char name[80];
    snprintf(name, sizeof name, "%sPool2d(%d, %d, %d) %dx%dx%dx%d", max ? "Max" : "Avg", k, s, p, n, c, h, w);
    struct ncl_graph *g = begin(n, c, h, w);
    OK(max ? ncl_graph_add_maxpool_padded(g, "p", 0, "MaxPool2d", k, s, p)
           : ncl_graph_add_avgpool(g, "p", 0, "AvgPool2d", k, s));
    if (!finish(g)) {
        ncl_graph_free(g);
        return;
    }
    int oh = ref_out_size(h, k, s, p), ow = ref_out_size(w, k, s, p);
    struct ncl_shape out = ncl_graph_output_shape(g);
    CHECK(out.h == oh && out.w == ow, "%s: output %dx%d, want %dx%d", name, out.h, out.w, oh, ow);
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * oh * ow;
    float *x = distinct_planes(n * c, h * w), *y = fvec(ny), *want = fvec(ny), *dy = frand(ny, -1, 1),
          *dx = fvec(nx), *wdx = fvec(nx);
    int32_t *arg = calloc(ny, sizeof *arg);
    if (max) {
        ref_maxpool_pad_forward(x, n, c, h, w, k, s, p, want, arg);
        ref_maxpool_pad_backward(dy, arg, n, c, h, w, k, s, p, wdx);
    } else {
        ref_avgpool_forward(x, n, c, h, w, k, s, want);
        ref_avgpool_backward(dy, n, c, h, w, k, s, wdx);
    }
    fwd(g, x, n, NCL_MODE_TRAIN, y);
    CHECK(check_close_tol("y", y, want, (long)ny, 1e-6, 1e-5) == 0, "%s: forward", name);
    bwd(g, dy, n, dx, NULL);
    CHECK(check_close_tol("dx", dx, wdx, (long)nx, 1e-6, 1e-5) == 0, "%s: backward", name);
    fd_check(name, g, n, NCL_MODE_TRAIN, x, 1e-2f, 60);
    free(arg);
    free(x);
    free(y);
    free(want);
    free(dy);
    free(dx);
    free(wdx);
    ncl_graph_free(g);
}

/* ---- Add, Concat and the branched graph ---------------------------------------------------- */

/* y = x + sigmoid(x), and y = x + x (one tensor read twice by one layer). */
static void test_add(int n, int c, int h, int w)
{
    for (int twice = 0; twice < 2; twice++) {
        char name[64];
        snprintf(name, sizeof name, "Add(%s) %dx%dx%dx%d", twice ? "x, x" : "x, sigmoid(x)", n, c, h, w);
        struct ncl_graph *g = begin(n, c, h, w);
        if (!twice)
            OK(ncl_graph_add_sigmoid(g, "s", 0, "Sigmoid"));
        OK(ncl_graph_add_add(g, "add", 1, "Add", NCL_GRAPH_INPUT, twice ? NCL_GRAPH_INPUT : 0));
        if (!finish(g)) {
            ncl_graph_free(g);
            continue;
        }
        size_t nx = (size_t)n * c * h * w;
        float *x = frand(nx, -2, 2), *y = fvec(nx), *want = fvec(nx), *dy = frand(nx, -1, 1), *dx = fvec(nx),
              *wdx = fvec(nx);
        for (size_t i = 0; i < nx; i++) {
            double s = 1.0 / (1.0 + exp(-(double)x[i]));
            want[i] = twice ? 2 * x[i] : (float)(x[i] + s);
            wdx[i] = twice ? 2 * dy[i] : (float)(dy[i] * (1 + s * (1 - s)));
        }
        fwd(g, x, n, NCL_MODE_TRAIN, y);
        CHECK(check_close_tol("y", y, want, (long)nx, 1e-6, 1e-5) == 0, "%s: forward", name);
        bwd(g, dy, n, dx, NULL);
        CHECK(check_close_tol("dx", dx, wdx, (long)nx, 1e-6, 1e-5) == 0, "%s: backward (gradients summed)", name);
        fd_check(name, g, n, NCL_MODE_TRAIN, x, 1e-2f, 40);
        free(x);
        free(y);
        free(want);
        free(dy);
        free(dx);
        free(wdx);
        ncl_graph_free(g);
    }
}

/* y = cat(sigmoid(x), x, sigmoid(x)) on channels: the sigmoid's output read twice. */
static void test_concat(int n, int c, int h, int w)
{
    char name[64];
    snprintf(name, sizeof name, "Concat %dx%dx%dx%d", n, c, h, w);
    struct ncl_graph *g = begin(n, c, h, w);
    OK(ncl_graph_add_sigmoid(g, "s", 0, "Sigmoid"));
    int inputs[3] = {0, NCL_GRAPH_INPUT, 0};
    OK(ncl_graph_add_concat(g, "cat", 1, "Concat", 3, inputs));
    if (!finish(g)) {
        ncl_graph_free(g);
        return;
    }
    struct ncl_shape out = ncl_graph_output_shape(g);
    CHECK(out.c == 3 * c && out.h == h && out.w == w, "%s: output %dx%dx%d", name, out.c, out.h, out.w);
    size_t nx = (size_t)n * c * h * w, hw = (size_t)h * w;
    float *x = frand(nx, -2, 2), *y = fvec(3 * nx), *want = fvec(3 * nx), *dy = frand(3 * nx, -1, 1),
          *dx = fvec(nx), *wdx = fvec(nx);
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (size_t i = 0; i < hw; i++) {
                size_t at = ((size_t)b * c + ch) * hw + i;
                double s = 1.0 / (1.0 + exp(-(double)x[at]));
                size_t o0 = ((size_t)b * 3 * c + ch) * hw + i, o1 = o0 + c * hw, o2 = o1 + c * hw;
                want[o0] = want[o2] = (float)s;
                want[o1] = x[at];
                wdx[at] = (float)((dy[o0] + dy[o2]) * s * (1 - s) + dy[o1]);
            }
    fwd(g, x, n, NCL_MODE_TRAIN, y);
    CHECK(check_close_tol("y", y, want, (long)(3 * nx), 1e-6, 1e-5) == 0, "%s: forward", name);
    bwd(g, dy, n, dx, NULL);
    CHECK(check_close_tol("dx", dx, wdx, (long)nx, 1e-6, 1e-5) == 0, "%s: backward", name);
    fd_check(name, g, n, NCL_MODE_TRAIN, x, 1e-2f, 40);
    free(x);
    free(y);
    free(want);
    free(dy);
    free(dx);
    free(wdx);
    ncl_graph_free(g);
}

/* t0 = conv3x3(x), read by three layers: t1 = sigmoid(BN(t0)), t3 = conv1x1(t0), t4 = t1 + t3,
 * t5 = cat(t4, t0); then avg pool, flatten, Linear, BatchNorm1d: smooth, so that finite
 * differences (whose perturbations move whole channels) cross no kink. Against them in train
 * mode and in eval mode, every parameter and the input. */
static void test_branched(int n)
{
    char name[64];
    snprintf(name, sizeof name, "branched graph, batch %d", n);
    struct ncl_graph *g = begin(n, 3, 9, 7);
    OK(ncl_graph_add_conv(g, "c0", 0, "Conv2d", (struct ncl_conv_params){5, 3, 1, 1, 0}));
    int t0 = ncl_graph_last(g);
    OK(ncl_graph_add_batchnorm(g, "bn", 1, "BatchNorm2d"));
    OK(ncl_graph_add_sigmoid(g, "sig", 2, "Sigmoid"));
    int t2 = ncl_graph_last(g);
    OK(ncl_graph_use_input(g, t0));
    OK(ncl_graph_add_conv(g, "c1", 3, "Conv2d", (struct ncl_conv_params){5, 1, 1, 0, 0}));
    OK(ncl_graph_add_add(g, "add", 4, "Add", t2, ncl_graph_last(g)));
    int cat[2] = {ncl_graph_last(g), t0};
    OK(ncl_graph_add_concat(g, "cat", 5, "Concat", 2, cat));
    OK(ncl_graph_add_avgpool(g, "ap", 7, "AvgPool2d", 3, 2));
    OK(ncl_graph_add_flatten(g, "fl", 8, "Flatten"));
    OK(ncl_graph_add_linear(g, "lin", 9, "Linear", 6, 0));
    OK(ncl_graph_add_batchnorm(g, "bn1", 10, "BatchNorm1d"));
    if (!finish(g)) {
        ncl_graph_free(g);
        return;
    }
    struct ncl_shape out = ncl_graph_output_shape(g);
    CHECK(out.c == 6 && out.h == 1 && out.w == 1, "%s: output %dx%dx%d", name, out.c, out.h, out.w);
    size_t nx = (size_t)n * 3 * 9 * 7;
    float *x = frand(nx, -1, 1);
    /* smaller steps than elsewhere: BatchNorm1d over a batch of 2 or 3 curves sharply */
    fd_check(name, g, n, NCL_MODE_TRAIN, x, 3e-3f, 40);
    fd_check(name, g, n, NCL_MODE_EVAL, x, 3e-3f, 40);
    free(x);
    ncl_graph_free(g);
}

/* Tensors no backward reads share buffers once dead: pool -> pool -> flatten needs two. */
static void test_memory_plan(void)
{
    struct ncl_graph *g = begin(3, 5, 9, 9);
    OK(ncl_graph_add_maxpool_padded(g, "a", 0, "MaxPool2d", 3, 1, 1));
    OK(ncl_graph_add_avgpool(g, "b", 1, "AvgPool2d", 2, 2));
    OK(ncl_graph_add_maxpool_padded(g, "c", 2, "MaxPool2d", 3, 1, 1));
    OK(ncl_graph_add_flatten(g, "d", 3, "Flatten"));
    if (!finish(g)) {
        ncl_graph_free(g);
        return;
    }
    CHECK(g->act_pool_count == 2, "4 layers whose backwards read nothing: %d activation buffers, want 2",
          g->act_pool_count);
    CHECK(g->outputs[0].buf == g->outputs[2].buf && g->outputs[1].buf == g->outputs[3].buf,
          "the dead tensors' buffers are reused in turn");
    size_t nx = 3 * 5 * 9 * 9;
    float *x = distinct_planes(15, 81);
    fd_check("memory plan graph", g, 3, NCL_MODE_TRAIN, x, 1e-2f, 40);
    free(x);
    ncl_graph_free(g);
    (void)nx;

    /* a layer's output nobody reads is refused at reserve, with its name */
    g = begin(2, 3, 5, 5);
    OK(ncl_graph_add_sigmoid(g, "dead", 0, "Sigmoid"));
    OK(ncl_graph_use_input(g, NCL_GRAPH_INPUT));
    OK(ncl_graph_add_relu(g, "r", 1, "ReLU"));
    enum ncl_status s = ncl_graph_reserve(g);
    CHECK(s == NCL_ERR_ARG && strstr(ncl_last_error(), "dead"), "unread output: %d %s", s, ncl_last_error());
    ncl_graph_free(g);
}

/* BatchNorm state in checkpoints: num_batches_tracked as an I64 0-d tensor, running statistics
 * restored on load, and a file whose num_batches_tracked is F32 refused naming it. */
static void test_checkpoint_state(void)
{
    struct ncl_graph *g = begin(3, 4, 5, 5);
    OK(ncl_graph_add_batchnorm(g, "0", 0, "BatchNorm2d"));
    if (!finish(g)) {
        ncl_graph_free(g);
        return;
    }
    size_t nx = 3 * 4 * 5 * 5;
    float *x = frand(nx, -1, 1), *y = fvec(nx), *m0 = fvec(4), *m1 = fvec(4);
    fwd(g, x, 3, NCL_MODE_TRAIN, y);
    fwd(g, x, 3, NCL_MODE_TRAIN, y);
    OK(ncl_graph_read_state(g, 0, m0));
    char path[] = "/tmp/nincl-zoo-ops-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    OK(ncl_checkpoint_save(g, path, NULL, NULL, 0));
    struct ncl_st_file f = {0};
    OK(ncl_st_read(path, &f));
    const struct ncl_st_tensor *t = ncl_st_find(&f, "0.num_batches_tracked");
    CHECK(t && t->is_i64 && t->ndim == 0 && t->data_i64 && t->data_i64[0] == 2, "num_batches_tracked saved as I64 2");
    CHECK(ncl_st_find(&f, "0.running_var") && ncl_st_find(&f, "0.weight"), "running_var and weight saved");
    OK(ncl_graph_reset_states(g));
    OK(ncl_checkpoint_load(g, path, NULL));
    int64_t tracked = 0;
    OK(ncl_graph_read_state(g, 0, m1));
    OK(ncl_graph_read_state(g, 2, &tracked));
    CHECK(tracked == 2 && memcmp(m0, m1, 4 * sizeof *m0) == 0, "running statistics restored (tracked %lld)",
          (long long)tracked);
    /* the same file with num_batches_tracked as F32 */
    struct ncl_st_tensor *ts = calloc((size_t)f.count, sizeof *ts);
    float one = 2.0f;
    for (int i = 0; ts && i < f.count; i++) {
        ts[i] = f.tensors[i];
        if (ts[i].is_i64) {
            ts[i].is_i64 = 0;
            ts[i].data_i64 = NULL;
            ts[i].data = &one;
        }
    }
    OK(ncl_st_write(path, ts, f.count, NULL, NULL, 0));
    enum ncl_status s = ncl_checkpoint_load(g, path, NULL);
    CHECK(s == NCL_ERR_FORMAT && strstr(ncl_last_error(), "num_batches_tracked") && strstr(ncl_last_error(), "I64"),
          "F32 num_batches_tracked: %d %s", s, ncl_last_error());
    free(ts);
    ncl_st_free(&f);
    remove(path);
    if (fd >= 0)
        close(fd);
    free(x);
    free(y);
    free(m0);
    free(m1);
    ncl_graph_free(g);
}

int main(void)
{
    static const char *const variants[] = {"cpu", "gpu"};
    for (int v = 0; v < 2; v++) {
        struct ncl_ctx_params cp = {.kernels = variants[v], .gemm = v ? "clblast" : "packed"};
        enum ncl_status s = ncl_ctx_create(&cp, &ctx);
        CHECK(s == NCL_OK, "no OpenCL device: %s", ncl_last_error());
        if (s != NCL_OK)
            break;
        printf("%s kernels on %s\n", variants[v], ncl_ctx_device(ctx)->name);
        test_batchnorm(3, 5, 7, 9, 0);
        test_batchnorm(1, 3, 5, 4, 0);
        test_batchnorm(2, 6, 1, 1, 0);
        test_batchnorm(3, 7, 1, 1, 1);
        test_batchnorm(4, 2, 3, 1, 1);
        test_activation(0, 3, 5, 7, 9);
        test_activation(1, 1, 3, 4, 5);
        test_pool(0, 3, 5, 7, 9, 2, 2, 0);
        test_pool(0, 1, 3, 8, 5, 3, 2, 0);
        test_pool(1, 3, 5, 7, 9, 3, 2, 1);
        test_pool(1, 1, 3, 5, 6, 3, 1, 1);
        test_pool(1, 2, 3, 8, 8, 5, 2, 2);
        test_add(3, 5, 7, 9);
        test_add(1, 3, 4, 5);
        test_concat(3, 5, 7, 9);
        test_concat(1, 3, 4, 5);
        test_branched(3);
        test_branched(2);
        test_memory_plan();
        if (v == 0)
            test_checkpoint_state();
        ncl_ctx_free(ctx);
    }
    return check_done("zoo-ops");
}
