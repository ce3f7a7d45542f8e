/* ReLU and Sigmoid as layers of their own, where no convolution before them can fuse the
 * activation (after a BatchNorm or an Add; LeNet's sigmoids). Backward reads the output. */
#include "graph-impl.h"

enum { K_FORWARD, K_BACKWARD };

static enum ncl_status act_setup(struct ncl_layer *l)
{
    l->y->shape = l->x->shape;
    return NCL_OK;
}

static const char *act_name(const struct ncl_layer *l, int backward)
{
    if (l->act == NCL_ACT_RELU)
        return backward ? "relu_backward" : "relu_forward";
    return backward ? "sigmoid_backward" : "sigmoid_forward";
}

static enum ncl_status act_create_kernels(struct ncl_layer *l)
{
    NCL_TRY(ncl_kernel_create(layer_ctx(l), "act.cl", "", act_name(l, 0), &l->k[K_FORWARD]));
    return ncl_kernel_create(layer_ctx(l), "act.cl", "", act_name(l, 1), &l->k[K_BACKWARD]);
}

static enum ncl_status act_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    cl_ulong zero = 0;
    int n = (int)((size_t)batch * ncl_shape_per_image(l->x->shape));
    struct ncl_arg args[] = {NCL_ARG(l->x->buf), NCL_ARG(zero), NCL_ARG(n), NCL_ARG(l->y->buf), NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[K_FORWARD], act_name(l, 0), (size_t)n, 0, 5, args);
}

static enum ncl_status act_backward(struct ncl_layer *l, int batch, int need_dx)
{
    if (!need_dx)
        return NCL_OK;
    cl_ulong zero = 0;
    int n = (int)((size_t)batch * ncl_shape_per_image(l->x->shape));
    struct ncl_arg args[] = {NCL_ARG(l->dy), NCL_ARG(zero), NCL_ARG(l->y->buf), NCL_ARG(zero),
                             NCL_ARG(n),     NCL_ARG(l->dx), NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[K_BACKWARD], act_name(l, 1), (size_t)n, 0, 7, args);
}

const struct ncl_layer_ops ncl_layer_relu_ops = {
    .kind = "ReLU",
    .setup = act_setup,
    .create_kernels = act_create_kernels,
    .forward = act_forward,
    .backward = act_backward,
    .backward_reads = ncl_backward_reads_y,
};

const struct ncl_layer_ops ncl_layer_sigmoid_ops = {
    .kind = "Sigmoid",
    .setup = act_setup,
    .create_kernels = act_create_kernels,
    .forward = act_forward,
    .backward = act_backward,
    .backward_reads = ncl_backward_reads_y,
};
