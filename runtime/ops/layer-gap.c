/* The global average pool, AdaptiveAvgPool2d((1, 1)) (kernels/gap.cl). */
#include "graph-impl.h"

enum { K_FORWARD, K_BACKWARD };

static enum ncl_status gap_setup(struct ncl_layer *l)
{
    struct ncl_shape in = l->x->shape;
    l->y->shape = (struct ncl_shape){in.n, in.c, 1, 1};
    return NCL_OK;
}

static enum ncl_status gap_create_kernels(struct ncl_layer *l)
{
    NCL_TRY(ncl_kernel_create(layer_ctx(l), "gap.cl", "", "gap_forward", &l->k[K_FORWARD]));
    return ncl_kernel_create(layer_ctx(l), "gap.cl", "", "gap_backward", &l->k[K_BACKWARD]);
}

static enum ncl_status gap_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    struct ncl_shape in = l->x->shape;
    cl_ulong zero = 0;
    int planes = in.c * batch, hw = in.h * in.w;
    struct ncl_arg args[] = {NCL_ARG(l->x->buf), NCL_ARG(zero), NCL_ARG(planes), NCL_ARG(hw),
                             NCL_ARG(l->y->buf), NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[K_FORWARD], "gap_forward", (size_t)planes, 0, 6, args);
}

static enum ncl_status gap_backward(struct ncl_layer *l, int batch, int need_dx)
{
    if (!need_dx)
        return NCL_OK;
    struct ncl_shape in = l->x->shape;
    cl_ulong zero = 0;
    int planes = in.c * batch, hw = in.h * in.w;
    struct ncl_arg args[] = {NCL_ARG(l->dy), NCL_ARG(zero), NCL_ARG(planes), NCL_ARG(hw),
                             NCL_ARG(l->dx), NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[K_BACKWARD], "gap_backward", (size_t)hw, (size_t)planes, 6, args);
}

const struct ncl_layer_ops ncl_layer_gap_ops = {
    .kind = "AdaptiveAvgPool2d",
    .setup = gap_setup,
    .create_kernels = gap_create_kernels,
    .forward = gap_forward,
    .backward = gap_backward,
    .backward_reads = ncl_backward_reads_none,
};
