/* AvgPool2d(kernel, stride) without padding (LeNet, DenseNet's transition layers). */
#include "graph-impl.h"

enum { K_FORWARD, K_BACKWARD };

static enum ncl_status avgpool_setup(struct ncl_layer *l)
{
    struct ncl_shape in = l->x->shape;
    int k = l->pool_kernel, s = l->pool_stride;
    int oh = in.h >= k ? (in.h - k) / s + 1 : 0, ow = in.w >= k ? (in.w - k) / s + 1 : 0;
    l->y->shape = (struct ncl_shape){in.n, in.c, oh, ow};
    return NCL_OK;
}

static enum ncl_status avgpool_create_kernels(struct ncl_layer *l)
{
    NCL_TRY(ncl_kernel_create(layer_ctx(l), "avgpool.cl", "", "avgpool_forward", &l->k[K_FORWARD]));
    return ncl_kernel_create(layer_ctx(l), "avgpool.cl", "", "avgpool_backward", &l->k[K_BACKWARD]);
}

static enum ncl_status avgpool_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    cl_ulong zero = 0;
    int planes = in.c * batch;
    struct ncl_arg args[] = {NCL_ARG(l->x->buf), NCL_ARG(zero),          NCL_ARG(planes), NCL_ARG(in.h),
                             NCL_ARG(in.w),      NCL_ARG(l->pool_kernel), NCL_ARG(l->pool_stride), NCL_ARG(out.h),
                             NCL_ARG(out.w),     NCL_ARG(l->y->buf),      NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[K_FORWARD], "avgpool_forward", (size_t)out.h * out.w, (size_t)planes, 11,
                      args);
}

static enum ncl_status avgpool_backward(struct ncl_layer *l, int batch, int need_dx)
{
    if (!need_dx)
        return NCL_OK;
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    cl_ulong zero = 0;
    int planes = in.c * batch;
    struct ncl_arg args[] = {NCL_ARG(l->dy), NCL_ARG(zero),          NCL_ARG(planes), NCL_ARG(in.h),
                             NCL_ARG(in.w),  NCL_ARG(l->pool_kernel), NCL_ARG(l->pool_stride), NCL_ARG(out.h),
                             NCL_ARG(out.w), NCL_ARG(l->dx),          NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[K_BACKWARD], "avgpool_backward", (size_t)in.h * in.w, (size_t)planes, 11,
                      args);
}

const struct ncl_layer_ops ncl_layer_avgpool_ops = {
    .kind = "AvgPool2d",
    .setup = avgpool_setup,
    .create_kernels = avgpool_create_kernels,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .backward_reads = ncl_backward_reads_none,
};
