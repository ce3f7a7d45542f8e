/* MaxPool2d(kernel, stride, pad) with pad > 0 (GoogLeNet, ResNet, DenseNet); the unpadded
 * pool NiN runs stays in layer-pool.c. The argmax is kept for backward. */
#include "graph-impl.h"

enum { K_FORWARD, K_BACKWARD };

static enum ncl_status maxpool_pad_setup(struct ncl_layer *l)
{
    struct ncl_shape in = l->x->shape;
    int k = l->pool_kernel, s = l->pool_stride, p = l->pool_pad;
    int oh = in.h + 2 * p >= k ? (in.h + 2 * p - k) / s + 1 : 0, ow = in.w + 2 * p >= k ? (in.w + 2 * p - k) / s + 1 : 0;
    l->y->shape = (struct ncl_shape){in.n, in.c, oh, ow};
    l->aux_bytes = (size_t)in.n * in.c * oh * ow * sizeof(int32_t);
    return NCL_OK;
}

/* The CPU backward gives each work-item a plane (a scatter in window order), the GPU's each
 * input element (a gather). */
static enum ncl_status maxpool_pad_create_kernels(struct ncl_layer *l)
{
    int cpu = ncl_ctx_is_cpu(layer_ctx(l));
    NCL_TRY(ncl_kernel_create(layer_ctx(l), "maxpool-pad.cl", "", "maxpool_pad_forward", &l->k[K_FORWARD]));
    return ncl_kernel_create(layer_ctx(l), "maxpool-pad.cl", "",
                             cpu ? "maxpool_pad_backward_planes" : "maxpool_pad_backward", &l->k[K_BACKWARD]);
}

static enum ncl_status maxpool_pad_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    cl_ulong zero = 0;
    int planes = in.c * batch;
    struct ncl_arg args[] = {NCL_ARG(l->x->buf),    NCL_ARG(zero),          NCL_ARG(planes),      NCL_ARG(in.h),
                             NCL_ARG(in.w),         NCL_ARG(l->pool_kernel), NCL_ARG(l->pool_stride),
                             NCL_ARG(l->pool_pad),  NCL_ARG(out.h),         NCL_ARG(out.w),       NCL_ARG(l->y->buf),
                             NCL_ARG(zero),         NCL_ARG(l->aux)};
    return ncl_launch(layer_ctx(l), l->k[K_FORWARD], "maxpool_pad_forward", (size_t)out.h * out.w, (size_t)planes,
                      13, args);
}

static enum ncl_status maxpool_pad_backward(struct ncl_layer *l, int batch, int need_dx)
{
    if (!need_dx)
        return NCL_OK;
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    cl_ulong zero = 0;
    int planes = in.c * batch;
    struct ncl_arg args[] = {NCL_ARG(l->dy),        NCL_ARG(zero),  NCL_ARG(l->aux),         NCL_ARG(planes),
                             NCL_ARG(in.h),         NCL_ARG(in.w),  NCL_ARG(l->pool_kernel), NCL_ARG(l->pool_stride),
                             NCL_ARG(l->pool_pad),  NCL_ARG(out.h), NCL_ARG(out.w),          NCL_ARG(l->dx),
                             NCL_ARG(zero)};
    if (ncl_ctx_is_cpu(layer_ctx(l))) {
        size_t global = (size_t)planes, local = 8;
        return ncl_enqueue(layer_ctx(l), l->k[K_BACKWARD], "maxpool_pad_backward", 1, &global, &local, 13, args);
    }
    return ncl_launch(layer_ctx(l), l->k[K_BACKWARD], "maxpool_pad_backward", (size_t)in.h * in.w, (size_t)planes,
                      13, args);
}

const struct ncl_layer_ops ncl_layer_maxpool_pad_ops = {
    .kind = "MaxPool2d",
    .setup = maxpool_pad_setup,
    .create_kernels = maxpool_pad_create_kernels,
    .forward = maxpool_pad_forward,
    .backward = maxpool_pad_backward,
    .backward_reads = ncl_backward_reads_none,
};
