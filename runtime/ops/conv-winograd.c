/* Winograd convolution (kernels/winograd.cl) for stride-1 5x5 and 3x3 layers, all three
 * products of training: the forward pass and the input gradient by F(2x2, 5x5) and
 * F(4x4, 3x3), the weight gradient by F(5x5, 2x2) and F(3x3, 4x4). Each needs 36
 * multiplications per tile and channel pair where the direct product needs 100 (5x5) or 144
 * (3x3): 2.8x and 4x fewer multiply-adds, moved into 36 GEMMs per round of the same shapes as
 * the 1x1 convolutions' (which the packed GEMM runs at ~200 GFLOP/s on a CPU). The price is
 * the transforms (memory-bound: a transformed patch is 9x (5x5) or 2.25x (3x3) the input)
 * and rounding: the weight gradient's back-transform has coefficients up to 16 (measured
 * error up to 1e-5 of the largest gradient, im2col's 1e-6; tests/test-layers.c). Used with the
 * CPU kernel variants, where it was measured (docs/performance.md); NINCL_CONV /
 * ncl_ctx_params.conv choose it everywhere or nowhere. */
#include <stdio.h>

#include "conv-winograd.h"

#define ALPHA2 36   /* (WM + WR - 1)^2 for every variant */

enum { K_FILTER, K_INPUT, K_OUTPUT, K_DY, K_FILTER_GRAD };

static int ceil_div(int a, int b)
{
    return (a + b - 1) / b;
}

int ncl_conv_winograd_tile(const struct ncl_layer *l)
{
    const struct ncl_conv_params *p = &l->conv;
    enum ncl_conv_impl how = layer_ctx(l)->conv;
    if (how == NCL_CONV_IM2COL || (how == NCL_CONV_AUTO && !ncl_ctx_is_cpu(layer_ctx(l))))
        return 0;
    /* the input gradient convolves with padding kernel - 1 - pad, which must not be negative */
    if (l->linear_out || p->stride != 1 || (p->kernel != 3 && p->kernel != 5) || p->pad > p->kernel - 1)
        return 0;
    int m = p->kernel == 5 ? 2 : 4;
    if (how == NCL_CONV_WINOGRAD)
        return m;
    /* auto: not on few input channels, where the transforms cost more than the products they
     * save (nin-small's first layer, 1 -> 48 channels 5x5 at 28x28: 8x slower forward); and
     * only where it saves enough multiply-adds per (in, out) channel pair over the batch to pay
     * for the transforms. Measured on NiN's 3x3 layers: 4.0 (256 -> 384) 1.5x slower saving
     * 1728 (96x96 input, batch 16), 5% faster at 3456 (batch 32), 2.3x faster at 31104
     * (224x224, batch 32); 7.0 (384 -> 10, where im2col's GEMM has too few rows) 1.7x faster
     * at 2592 (224x224, batch 32). */
    struct ncl_shape out = l->y->shape;
    long tiles = (long)ceil_div(out.h, m) * ceil_div(out.w, m);
    long saved = (long)out.n * ((long)p->kernel * p->kernel * out.h * out.w - ALPHA2 * tiles);
    return l->x->shape.c >= 16 && saved >= 2048 ? m : 0;
}

/* Tiles per image of the larger of the two outputs the path computes (y, and x's gradient). */
static size_t tiles_per_image(const struct ncl_layer *l, int m)
{
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    size_t fwd = (size_t)ceil_div(out.h, m) * ceil_div(out.w, m);
    size_t bwd = (size_t)ceil_div(in.h, m) * ceil_div(in.w, m);
    return fwd > bwd ? fwd : bwd;
}

size_t ncl_conv_winograd_setup(struct ncl_layer *l, size_t budget_floats)
{
    int m = ncl_conv_winograd_tile(l);
    l->winograd_tile = m;
    if (!m)
        return 0;
    struct ncl_shape in = l->x->shape;
    size_t oc = (size_t)l->conv.out_channels, ic = (size_t)in.c;
    size_t filters = ALPHA2 * oc * ic, per_image = ALPHA2 * (ic + oc) * tiles_per_image(l, m);
    size_t chunk = budget_floats > filters ? (budget_floats - filters) / per_image : 0;
    if (chunk < 1)
        chunk = 1;
    if (chunk > (size_t)in.n)
        chunk = (size_t)in.n;
    l->winograd_chunk = (int)chunk;
    return filters + chunk * per_image;
}

enum ncl_status ncl_conv_winograd_create_kernels(struct ncl_layer *l, cl_kernel *k)
{
    char options[32];
    snprintf(options, sizeof options, "-DWM=%d -DWR=%d", l->winograd_tile, l->conv.kernel);
    struct ncl_ctx *ctx = layer_ctx(l);
    NCL_TRY(ncl_kernel_create(ctx, "winograd.cl", options, "winograd_filter", &k[K_FILTER]));
    NCL_TRY(ncl_kernel_create(ctx, "winograd.cl", options, "winograd_input", &k[K_INPUT]));
    NCL_TRY(ncl_kernel_create(ctx, "winograd.cl", options, "winograd_output", &k[K_OUTPUT]));
    NCL_TRY(ncl_kernel_create(ctx, "winograd.cl", options, "winograd_dy", &k[K_DY]));
    return ncl_kernel_create(ctx, "winograd.cl", options, "winograd_filter_grad", &k[K_FILTER_GRAD]);
}

/* One convolution by Winograd: the forward pass (grad = 0: x -> y with bias and ReLU) or the
 * input gradient (grad = 1: dy -> dx, the filter rotated and its channels swapped). The
 * workspace holds U [cout][36][cin], then per round of images V [36][cin][T] and
 * M [36][cout][T], T = tiles of the round: the 36 products M[e] = U[.][e][.] x V[e] are one
 * GEMM's K (36 x cin) cut into 36 independent products, one launch (ncl_gemm_sliced). */
static enum ncl_status winograd_run(struct ncl_layer *l, const cl_kernel *k, int batch, int grad)
{
    struct ncl_ctx *ctx = layer_ctx(l);
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    const struct ncl_param *w = layer_param(l, 0), *b = layer_param(l, 1);
    int m = l->winograd_tile, r = l->conv.kernel;
    int cin = grad ? out.c : in.c, cout = grad ? in.c : out.c;
    int src_h = grad ? out.h : in.h, src_w = grad ? out.w : in.w;
    int dst_h = grad ? in.h : out.h, dst_w = grad ? in.w : out.w;
    int pad = grad ? r - 1 - l->conv.pad : l->conv.pad;
    int tiles_h = ceil_div(dst_h, m), tiles_w = ceil_div(dst_w, m);
    cl_mem src = grad ? l->dy : l->x->buf, dst = grad ? l->dx : l->y->buf, ws = l->g->workspace;
    cl_mem params = l->g->param_buf;
    cl_ulong zero = 0, w_off = w->offset, b_off = b->offset;

    int oc = out.c, ic = in.c;
    struct ncl_arg fargs[] = {NCL_ARG(params), NCL_ARG(w_off), NCL_ARG(oc), NCL_ARG(ic), NCL_ARG(grad),
                              NCL_ARG(ws),     NCL_ARG(zero)};
    NCL_TRY(ncl_launch(ctx, k[K_FILTER], "winograd_filter", (size_t)oc * ic, 0, 7, fargs));

    size_t u_floats = ALPHA2 * (size_t)cout * cin;
    int use_bias = !grad, relu = !grad && l->conv.relu;
    for (int n0 = 0; n0 < batch; n0 += l->winograd_chunk) {
        int g = batch - n0 < l->winograd_chunk ? batch - n0 : l->winograd_chunk;
        int T = g * tiles_h * tiles_w;
        cl_ulong v_off = u_floats, m_off = u_floats + ALPHA2 * (size_t)cin * T;
        cl_ulong e_stride = (cl_ulong)cin * T, c_stride = (cl_ulong)T;   /* V [36][cin][T] */
        struct ncl_arg iargs[] = {NCL_ARG(src),   NCL_ARG(zero),    NCL_ARG(batch),   NCL_ARG(n0), NCL_ARG(cin),
                                  NCL_ARG(src_h), NCL_ARG(src_w),   NCL_ARG(pad),     NCL_ARG(tiles_h),
                                  NCL_ARG(tiles_w), NCL_ARG(T),     NCL_ARG(ws),      NCL_ARG(v_off),
                                  NCL_ARG(e_stride), NCL_ARG(c_stride)};
        NCL_TRY(ncl_launch(ctx, k[K_INPUT], "winograd_input", (size_t)T, (size_t)cin, 15, iargs));
        NCL_TRY(ncl_gemm_sliced(ctx, 0, 0, cout, T, cin, ALPHA2, 1.0f, ws, 0, ALPHA2 * (size_t)cin, ws, v_off, T,
                                0.0f, ws, m_off, T, (size_t)cout * T));
        struct ncl_arg oargs[] = {NCL_ARG(ws),      NCL_ARG(m_off),   NCL_ARG(T),        NCL_ARG(cout),
                                  NCL_ARG(batch),   NCL_ARG(n0),      NCL_ARG(dst_h),    NCL_ARG(dst_w),
                                  NCL_ARG(tiles_h), NCL_ARG(tiles_w), NCL_ARG(params),   NCL_ARG(b_off),
                                  NCL_ARG(use_bias), NCL_ARG(relu),   NCL_ARG(dst),      NCL_ARG(zero)};
        NCL_TRY(ncl_launch(ctx, k[K_OUTPUT], "winograd_output", (size_t)T, (size_t)cout, 16, oargs));
    }
    return NCL_OK;
}

enum ncl_status ncl_conv_winograd_forward(struct ncl_layer *l, const cl_kernel *k, int batch)
{
    return winograd_run(l, k, batch, 0);
}

enum ncl_status ncl_conv_winograd_input_grad(struct ncl_layer *l, const cl_kernel *k, int batch)
{
    return winograd_run(l, k, batch, 1);
}

/* dw += the weight gradient for x and dy (already through the ReLU): per round of images, the
 * input patches V [ic][36][T] and the output-gradient tiles D [oc][36][T] transformed, then
 * S[e] (+)= D[.][e][.] x V[.][e][.]^T, the sums over the round's tiles (one launch: K = 36 x T
 * cut into 36 products), accumulated in the workspace's first 36 x oc x ic floats; one
 * back-transform at the end. */
enum ncl_status ncl_conv_winograd_weight_grad(struct ncl_layer *l, const cl_kernel *k, int batch)
{
    struct ncl_ctx *ctx = layer_ctx(l);
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    const struct ncl_param *w = layer_param(l, 0);
    int m = l->winograd_tile, ic = in.c, oc = out.c, pad = l->conv.pad;
    int tiles_h = ceil_div(out.h, m), tiles_w = ceil_div(out.w, m);
    cl_mem ws = l->g->workspace;
    cl_ulong zero = 0, w_off = w->offset;
    size_t s_floats = ALPHA2 * (size_t)oc * ic;
    for (int n0 = 0; n0 < batch; n0 += l->winograd_chunk) {
        int g = batch - n0 < l->winograd_chunk ? batch - n0 : l->winograd_chunk;
        int T = g * tiles_h * tiles_w;
        cl_ulong v_off = s_floats, d_off = s_floats + ALPHA2 * (size_t)ic * T;
        cl_ulong e_stride = (cl_ulong)T, c_stride = ALPHA2 * (cl_ulong)T;   /* V [ic][36][T] */
        struct ncl_arg iargs[] = {NCL_ARG(l->x->buf), NCL_ARG(zero),    NCL_ARG(batch), NCL_ARG(n0),
                                  NCL_ARG(ic),        NCL_ARG(in.h),    NCL_ARG(in.w),  NCL_ARG(pad),
                                  NCL_ARG(tiles_h),   NCL_ARG(tiles_w), NCL_ARG(T),     NCL_ARG(ws),
                                  NCL_ARG(v_off),     NCL_ARG(e_stride), NCL_ARG(c_stride)};
        NCL_TRY(ncl_launch(ctx, k[K_INPUT], "winograd_input", (size_t)T, (size_t)ic, 15, iargs));
        struct ncl_arg dargs[] = {NCL_ARG(l->dy),   NCL_ARG(zero),    NCL_ARG(batch), NCL_ARG(n0),
                                  NCL_ARG(oc),      NCL_ARG(out.h),   NCL_ARG(out.w), NCL_ARG(tiles_h),
                                  NCL_ARG(tiles_w), NCL_ARG(T),       NCL_ARG(ws),    NCL_ARG(d_off)};
        NCL_TRY(ncl_launch(ctx, k[K_DY], "winograd_dy", (size_t)T, (size_t)oc, 12, dargs));
        float beta = n0 == 0 ? 0.0f : 1.0f;
        NCL_TRY(ncl_gemm_sliced(ctx, 0, 1, oc, ic, T, ALPHA2, 1.0f, ws, d_off, ALPHA2 * (size_t)T, ws, v_off,
                                ALPHA2 * (size_t)T, beta, ws, 0, ic, (size_t)oc * ic));
    }
    cl_mem grads = l->g->grad_buf;
    struct ncl_arg gargs[] = {NCL_ARG(ws), NCL_ARG(zero), NCL_ARG(oc), NCL_ARG(ic), NCL_ARG(grads), NCL_ARG(w_off)};
    return ncl_launch(ctx, k[K_FILTER_GRAD], "winograd_filter_grad", (size_t)oc * ic, 0, 6, gargs);
}
