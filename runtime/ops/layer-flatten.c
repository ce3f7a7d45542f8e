/* Flatten: [C, H, W] per image becomes [C*H*W] features in PyTorch's order; on the device
 * a CNHW tensor becomes [features, batch] (the layout Linear and the loss read). */
#include "graph-impl.h"

enum { K_FORWARD, K_BACKWARD };

static enum ncl_status flatten_setup(struct ncl_layer *l)
{
    struct ncl_shape in = l->x->shape;
    l->y->shape = (struct ncl_shape){in.n, in.c * in.h * in.w, 1, 1};
    return NCL_OK;
}

static enum ncl_status flatten_create_kernels(struct ncl_layer *l)
{
    NCL_TRY(ncl_kernel_create(layer_ctx(l), "flatten.cl", "", "flatten_forward", &l->k[K_FORWARD]));
    return ncl_kernel_create(layer_ctx(l), "flatten.cl", "", "flatten_backward", &l->k[K_BACKWARD]);
}

static enum ncl_status flatten_run(struct ncl_layer *l, int batch, int backward)
{
    struct ncl_shape in = l->x->shape;
    cl_ulong zero = 0;
    int hw = in.h * in.w;
    cl_mem src = backward ? l->dy : l->x->buf, dst = backward ? l->dx : l->y->buf;
    struct ncl_arg args[] = {NCL_ARG(src),  NCL_ARG(zero), NCL_ARG(batch), NCL_ARG(in.c),
                             NCL_ARG(hw),   NCL_ARG(dst),  NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[backward ? K_BACKWARD : K_FORWARD],
                      backward ? "flatten_backward" : "flatten_forward", (size_t)batch, (size_t)in.c * hw, 7, args);
}

static enum ncl_status flatten_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    return flatten_run(l, batch, 0);
}

static enum ncl_status flatten_backward(struct ncl_layer *l, int batch, int need_dx)
{
    return need_dx ? flatten_run(l, batch, 1) : NCL_OK;
}

const struct ncl_layer_ops ncl_layer_flatten_ops = {
    .kind = "Flatten",
    .setup = flatten_setup,
    .create_kernels = flatten_create_kernels,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .backward_reads = ncl_backward_reads_none,
};
