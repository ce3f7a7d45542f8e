/* MaxPool2d(kernel, stride, pad), pad 0 (NiN, AlexNet, VGG) or more (GoogLeNet, ResNet,
 * DenseNet); the argmax is kept for backward (kernels/maxpool.cl). */
#include "graph-impl.h"

enum { K_FORWARD, K_BACKWARD };

static enum ncl_status maxpool_setup(struct ncl_layer *l)
{
    struct ncl_shape in = l->x->shape;
    int k = l->pool_kernel, s = l->pool_stride, p = l->pool_pad;
    int oh = in.h + 2 * p >= k ? (in.h + 2 * p - k) / s + 1 : 0;
    int ow = in.w + 2 * p >= k ? (in.w + 2 * p - k) / s + 1 : 0;
    l->y->shape = (struct ncl_shape){in.n, in.c, oh, ow};
    l->aux_bytes = (size_t)in.n * in.c * oh * ow * sizeof(int32_t);
    return NCL_OK;
}

/* Kernels per device class (ncl_ctx_is_cpu): the CPU variants give each work-item a plane
 * (the backward a scatter in window order), the GPU variants an element (the backward a gather). */
static enum ncl_status maxpool_create_kernels(struct ncl_layer *l)
{
    int cpu = ncl_ctx_is_cpu(layer_ctx(l));
    NCL_TRY(ncl_kernel_create(layer_ctx(l), "maxpool.cl", "", cpu ? "maxpool_forward_planes" : "maxpool_forward",
                              &l->k[K_FORWARD]));
    return ncl_kernel_create(layer_ctx(l), "maxpool.cl", "", cpu ? "maxpool_backward_planes" : "maxpool_backward",
                             &l->k[K_BACKWARD]);
}

/* Launches a max-pool kernel over `planes` planes of `per_plane` elements (the GPU variant's
 * work-items per plane). */
static enum ncl_status maxpool_run(struct ncl_layer *l, int which, const char *name, int planes, size_t per_plane,
                                   const struct ncl_arg *args)
{
    if (ncl_ctx_is_cpu(layer_ctx(l))) {
        size_t global = (size_t)planes, local = 8;
        return ncl_enqueue(layer_ctx(l), l->k[which], name, 1, &global, &local, 13, args);
    }
    return ncl_launch(layer_ctx(l), l->k[which], name, per_plane, (size_t)planes, 13, args);
}

static enum ncl_status maxpool_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    cl_ulong zero = 0;
    int planes = in.c * batch;
    struct ncl_arg args[] = {NCL_ARG(l->x->buf),      NCL_ARG(zero),          NCL_ARG(planes),
                             NCL_ARG(in.h),           NCL_ARG(in.w),          NCL_ARG(l->pool_kernel),
                             NCL_ARG(l->pool_stride), NCL_ARG(l->pool_pad),   NCL_ARG(out.h),
                             NCL_ARG(out.w),          NCL_ARG(l->y->buf),     NCL_ARG(zero),
                             NCL_ARG(l->aux)};
    return maxpool_run(l, K_FORWARD, "maxpool_forward", planes, (size_t)out.h * out.w, args);
}

static enum ncl_status maxpool_backward(struct ncl_layer *l, int batch, int need_dx)
{
    if (!need_dx)
        return NCL_OK;
    struct ncl_shape in = l->x->shape, out = l->y->shape;
    cl_ulong zero = 0;
    int planes = in.c * batch;
    struct ncl_arg args[] = {NCL_ARG(l->dy),       NCL_ARG(zero),  NCL_ARG(l->aux),         NCL_ARG(planes),
                             NCL_ARG(in.h),        NCL_ARG(in.w),  NCL_ARG(l->pool_kernel), NCL_ARG(l->pool_stride),
                             NCL_ARG(l->pool_pad), NCL_ARG(out.h), NCL_ARG(out.w),          NCL_ARG(l->dx),
                             NCL_ARG(zero)};
    return maxpool_run(l, K_BACKWARD, "maxpool_backward", planes, (size_t)in.h * in.w, args);
}

const struct ncl_layer_ops ncl_layer_maxpool_ops = {
    .kind = "MaxPool2d",
    .setup = maxpool_setup,
    .create_kernels = maxpool_create_kernels,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .backward_reads = ncl_backward_reads_none,
};
