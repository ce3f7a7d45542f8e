/* Conv2d with fused bias and ReLU. On CNHW activations a convolution of a batch is one GEMM:
 * y[OC, batch * P] = W[OC, K] x col[K, batch * P]. A 1x1 stride-1 unpadded convolution needs
 * no im2col at all (x already is col); larger kernels build col in chunks of images so the
 * workspace stays bounded. Stride-1 3x3 and 5x5 layers may run by Winograd instead
 * (runtime/ops/conv-winograd.c decides and computes). Linear layers are 1x1 convolutions on
 * [features, batch] tensors (linear_setup below). */
#include "conv-winograd.h"

/* Workspace bound for im2col (floats). On a GPU, large enough to keep its GEMMs big; on a
 * CPU, a few images' columns that stay in the last-level cache between im2col and the GEMM
 * (measured on NiN at batch 128 with PoCL: 16M floats as fast as 64M or faster, and 200 MB
 * less memory; 4M and 2M slower, the GEMMs too small). */
static size_t conv_workspace_floats(const struct ncl_layer *l)
{
    return ncl_ctx_is_cpu(layer_ctx(l)) ? (size_t)16 << 20 : (size_t)64 << 20;
}

enum { K_IM2COL, K_COL2IM, K_BIAS_ACT, K_BIAS_ACT_BACKWARD, K_WINOGRAD /* five: conv-winograd.c */ };

static int conv_is_direct(const struct ncl_layer *l)
{
    return l->conv.kernel == 1 && l->conv.stride == 1 && l->conv.pad == 0;
}

static enum ncl_status conv_setup(struct ncl_layer *l)
{
    struct ncl_shape in = l->x->shape;
    const struct ncl_conv_params *p = &l->conv;
    int oh = in.h + 2 * p->pad >= p->kernel ? (in.h + 2 * p->pad - p->kernel) / p->stride + 1 : 0;
    int ow = in.w + 2 * p->pad >= p->kernel ? (in.w + 2 * p->pad - p->kernel) / p->stride + 1 : 0;
    l->y->shape = (struct ncl_shape){in.n, p->out_channels, oh, ow};
    if (oh < 1 || ow < 1)
        return NCL_OK;   /* add_layer reports the empty output */
    int kk = p->kernel * p->kernel, fan_in = in.c * kk;
    int64_t wdims[4] = {p->out_channels, in.c, p->kernel, p->kernel}, bdims[1] = {p->out_channels};
    if (l->linear_out)   /* a Linear layer: PyTorch's weight is [out, in] */
        NCL_TRY(ncl_layer_add_param(l, "weight", 2, wdims, fan_in, p->out_channels * kk, 0));
    else
        NCL_TRY(ncl_layer_add_param(l, "weight", 4, wdims, fan_in, p->out_channels * kk, 0));
    NCL_TRY(ncl_layer_add_param(l, "bias", 1, bdims, fan_in, 0, 1));
    l->flops = 2.0 * p->out_channels * fan_in * oh * ow;
    if (!conv_is_direct(l)) {
        size_t per_image = (size_t)fan_in * oh * ow;
        size_t chunk = conv_workspace_floats(l) / per_image;
        if (chunk < 1)
            chunk = 1;
        if (chunk > (size_t)in.n)
            chunk = (size_t)in.n;
        l->chunk = (int)chunk;
        size_t winograd = ncl_conv_winograd_setup(l, conv_workspace_floats(l));
        l->workspace_floats = l->winograd_tile ? winograd : chunk * per_image;   /* one path or the other */
    }
    return NCL_OK;
}

/* Kernels per device class (ncl_ctx_is_cpu): the CPU variants give each work-item whole rows
 * or planes, the GPU variants one element each (coalesced); tests run both. */
static enum ncl_status conv_create_kernels(struct ncl_layer *l)
{
    struct ncl_ctx *ctx = layer_ctx(l);
    int cpu = ncl_ctx_is_cpu(ctx);
    if (!conv_is_direct(l) && !l->winograd_tile) {
        NCL_TRY(ncl_kernel_create(ctx, "conv.cl", "", cpu ? "im2col_rows" : "im2col", &l->k[K_IM2COL]));
        NCL_TRY(ncl_kernel_create(ctx, "conv.cl", "", cpu ? "col2im_planes" : "col2im", &l->k[K_COL2IM]));
    }
    if (l->winograd_tile)
        NCL_TRY(ncl_conv_winograd_create_kernels(l, &l->k[K_WINOGRAD]));
    NCL_TRY(ncl_kernel_create(ctx, "conv.cl", "", "bias_act", &l->k[K_BIAS_ACT]));
    NCL_TRY(ncl_kernel_create(ctx, "conv.cl", "", cpu ? "bias_act_backward_channel" : "bias_act_backward",
                              &l->k[K_BIAS_ACT_BACKWARD]));
    /* bias_act_backward's work-items (256 a channel; a device with a loop limit runs the GPU
     * set) each sum their share of a channel's pixels, then the group's tree */
    size_t per_channel = (size_t)l->y->shape.n * l->y->shape.h * l->y->shape.w;
    return ncl_ctx_check_loops(ctx, per_channel / 256 + 1 + 16, "the bias gradient's sums");
}

/* Runs im2col or col2im for images [n0, n0 + g) of a batch. */
static enum ncl_status conv_cols(struct ncl_layer *l, int which, int batch, int n0, int g, cl_mem act)
{
    struct ncl_ctx *ctx = layer_ctx(l);
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    int k = l->conv.kernel;
    cl_ulong zero = 0;
    int K = in.c * k * k;
    size_t P = (size_t)out.h * out.w;
    struct ncl_arg args[] = {NCL_ARG(l->g->workspace), NCL_ARG(zero), NCL_ARG(batch),  NCL_ARG(n0),
                             NCL_ARG(g),               NCL_ARG(in.c), NCL_ARG(in.h),   NCL_ARG(in.w),
                             NCL_ARG(k),               NCL_ARG(k),    NCL_ARG(l->conv.stride), NCL_ARG(l->conv.pad),
                             NCL_ARG(out.h),           NCL_ARG(out.w), NCL_ARG(act),   NCL_ARG(zero)};
    if (which == K_IM2COL) {
        /* im2col reads the activation and writes the workspace: swap the buffer arguments */
        args[0] = NCL_ARG(act);
        args[14] = NCL_ARG(l->g->workspace);
    }
    const char *name = which == K_IM2COL ? "im2col" : "col2im";
    if (ncl_ctx_is_cpu(ctx)) {   /* (row of col or input plane, image) */
        size_t global[2] = {which == K_IM2COL ? (size_t)K : (size_t)in.c, (size_t)g}, local[2] = {8, 1};
        return ncl_enqueue(ctx, l->k[which], name, 2, global, local, 16, args);
    }
    /* GPU: (column, row of col) or (input pixel, input channel) */
    if (which == K_IM2COL)
        return ncl_launch(ctx, l->k[which], name, (size_t)g * P, (size_t)K, 16, args);
    return ncl_launch(ctx, l->k[which], name, (size_t)g * in.h * in.w, (size_t)in.c, 16, args);
}

/* y[c][first + i] = relu?(y[c][first + i] + bias[c]) for i < count, rows of ld floats. */
static enum ncl_status conv_bias_act(struct ncl_layer *l, size_t first, size_t count, size_t ld)
{
    const struct ncl_param *b = layer_param(l, 1);
    cl_ulong y_off = first, LD = ld, b_off = b->offset;
    int n = (int)count, relu = l->conv.relu;
    struct ncl_arg args[] = {NCL_ARG(l->y->buf), NCL_ARG(y_off), NCL_ARG(n),     NCL_ARG(LD),
                             NCL_ARG(l->y->shape.c), NCL_ARG(l->g->param_buf), NCL_ARG(b_off), NCL_ARG(relu)};
    return ncl_launch(layer_ctx(l), l->k[K_BIAS_ACT], "bias_act", count, (size_t)l->y->shape.c, 8, args);
}

/* y = relu?(W x col + b) for the images [n0, n0 + g) (all of the batch for a direct
 * convolution): the bias and ReLU are applied inside the GEMM where the implementation can (the
 * packed GEMM), else bias_act applies them to these columns after it. */
static enum ncl_status conv_gemm_forward(struct ncl_layer *l, int batch, int n0, int g, cl_mem col)
{
    struct ncl_ctx *ctx = layer_ctx(l);
    size_t K = (size_t)l->x->shape.c * l->conv.kernel * l->conv.kernel;
    size_t P = (size_t)l->y->shape.h * l->y->shape.w, cols = (size_t)batch * P;
    const struct ncl_param *w = layer_param(l, 0), *b = layer_param(l, 1);
    struct ncl_gemm_epilogue ep = {l->g->param_buf, b->offset, l->conv.relu};
    int applied = 0;
    NCL_TRY(ncl_gemm_fused(ctx, 0, 0, l->y->shape.c, g * P, K, 1.0f, l->g->param_buf, w->offset, K, col, 0, g * P,
                           0.0f, l->y->buf, n0 * P, cols, &ep, &applied));
    return applied ? NCL_OK : conv_bias_act(l, n0 * P, g * P, cols);
}

static enum ncl_status conv_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    if (conv_is_direct(l))   /* x already is col */
        return conv_gemm_forward(l, batch, 0, batch, l->x->buf);
    if (l->winograd_tile)
        return ncl_conv_winograd_forward(l, &l->k[K_WINOGRAD], batch);
    for (int n0 = 0; n0 < batch; n0 += l->chunk) {
        int g = batch - n0 < l->chunk ? batch - n0 : l->chunk;
        NCL_TRY(conv_cols(l, K_IM2COL, batch, n0, g, l->x->buf));
        NCL_TRY(conv_gemm_forward(l, batch, n0, g, l->g->workspace));
    }
    return NCL_OK;
}

static enum ncl_status conv_backward(struct ncl_layer *l, int batch, int need_dx)
{
    struct ncl_ctx *ctx = layer_ctx(l);
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    const struct ncl_param *w = layer_param(l, 0), *b = layer_param(l, 1);
    cl_mem params = l->g->param_buf, grads = l->g->grad_buf;
    size_t P = (size_t)out.h * out.w, cols = (size_t)batch * P;

    /* dy *= relu'(y) in place, db += sum over batch and pixels */
    cl_ulong zero = 0, b_off = b->offset;
    int per_channel = (int)cols, relu = l->conv.relu;
    struct ncl_arg args[] = {NCL_ARG(l->dy),  NCL_ARG(zero),        NCL_ARG(l->y->buf), NCL_ARG(zero),
                             NCL_ARG(per_channel), NCL_ARG(grads), NCL_ARG(b_off),     NCL_ARG(relu)};
    /* CPU variant: one work-item per channel; GPU: a work-group of REDUCE_WG per channel */
    int cpu = ncl_ctx_is_cpu(ctx);
    size_t global = (cpu ? 1 : 256) * (size_t)out.c, local = cpu ? 1 : 256;
    NCL_TRY(ncl_enqueue(ctx, l->k[K_BIAS_ACT_BACKWARD], "bias_act_backward", 1, &global, &local, 8, args));

    if (conv_is_direct(l)) {
        NCL_TRY(ncl_gemm(ctx, 0, 1, out.c, in.c, cols, 1.0f, l->dy, 0, cols, l->x->buf, 0, cols, 1.0f, grads,
                         w->offset, in.c));
        if (need_dx)
            NCL_TRY(ncl_gemm(ctx, 1, 0, in.c, cols, out.c, 1.0f, params, w->offset, in.c, l->dy, 0, cols, 0.0f, l->dx,
                             0, cols));
        return NCL_OK;
    }
    if (l->winograd_tile) {   /* one after the other: both use the workspace */
        NCL_TRY(ncl_conv_winograd_weight_grad(l, &l->k[K_WINOGRAD], batch));
        return need_dx ? ncl_conv_winograd_input_grad(l, &l->k[K_WINOGRAD], batch) : NCL_OK;
    }
    size_t K = (size_t)in.c * l->conv.kernel * l->conv.kernel;
    for (int n0 = 0; n0 < batch; n0 += l->chunk) {
        int g = batch - n0 < l->chunk ? batch - n0 : l->chunk;
        NCL_TRY(conv_cols(l, K_IM2COL, batch, n0, g, l->x->buf));
        NCL_TRY(ncl_gemm(ctx, 0, 1, out.c, K, g * P, 1.0f, l->dy, n0 * P, cols, l->g->workspace, 0, g * P, 1.0f, grads,
                         w->offset, K));
        if (need_dx) {
            NCL_TRY(ncl_gemm(ctx, 1, 0, K, g * P, out.c, 1.0f, params, w->offset, K, l->dy, n0 * P, cols, 0.0f,
                             l->g->workspace, 0, g * P));
            NCL_TRY(conv_cols(l, K_COL2IM, batch, n0, g, l->dx));
        }
    }
    return NCL_OK;
}

static const char *conv_method(const struct ncl_layer *l)
{
    return conv_is_direct(l) ? "gemm" : l->winograd_tile ? "winograd" : "im2col";
}

const struct ncl_layer_ops ncl_layer_conv_ops = {
    .kind = "Conv2d",
    .setup = conv_setup,
    .create_kernels = conv_create_kernels,
    .forward = conv_forward,
    .backward = conv_backward,
    .method = conv_method,
};

/* Linear: a 1x1 convolution over a flattened [features, batch] input. */
static enum ncl_status linear_setup(struct ncl_layer *l)
{
    struct ncl_shape in = l->x->shape;
    if (in.h != 1 || in.w != 1)
        return ncl_fail(NCL_ERR_SHAPE, "Linear needs a flattened input, got %dx%dx%d (add a Flatten)", in.c, in.h,
                        in.w);
    l->conv = (struct ncl_conv_params){.out_channels = l->linear_out, .kernel = 1, .stride = 1, .relu = l->linear_relu};
    return conv_setup(l);
}

const struct ncl_layer_ops ncl_layer_linear_ops = {
    .kind = "Linear",
    .setup = linear_setup,
    .create_kernels = conv_create_kernels,
    .forward = conv_forward,
    .backward = conv_backward,
    .method = conv_method,
};
