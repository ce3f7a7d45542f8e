/* Add: y = a + b, ResNet's residual connection. Backward hands dy to both inputs. */
#include "graph-impl.h"

enum { K_FORWARD };

static enum ncl_status add_setup(struct ncl_layer *l)
{
    struct ncl_shape a = l->xs[0]->shape, b = l->xs[1]->shape;
    if (a.c != b.c || a.h != b.h || a.w != b.w)
        return ncl_fail(NCL_ERR_SHAPE, "Add needs inputs of the same shape, got %dx%dx%d and %dx%dx%d", a.c, a.h, a.w,
                        b.c, b.h, b.w);
    l->y->shape = a;
    return NCL_OK;
}

static enum ncl_status add_create_kernels(struct ncl_layer *l)
{
    return ncl_kernel_create(layer_ctx(l), "add.cl", "", "add_forward", &l->k[K_FORWARD]);
}

static enum ncl_status add_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    cl_ulong zero = 0;
    int n = (int)((size_t)batch * ncl_shape_per_image(l->x->shape));
    struct ncl_arg args[] = {NCL_ARG(l->xs[0]->buf), NCL_ARG(zero), NCL_ARG(l->xs[1]->buf), NCL_ARG(zero),
                             NCL_ARG(n),             NCL_ARG(l->y->buf), NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[K_FORWARD], "add_forward", (size_t)n, 0, 7, args);
}

static enum ncl_status add_backward(struct ncl_layer *l, int batch, int need_dx)
{
    size_t n = (size_t)batch * ncl_shape_per_image(l->x->shape);
    for (int j = 0; j < 2; j++)
        if (l->dxs[j])
            NCL_TRY(ncl_copy(l->g, l->dy, 0, l->dxs[j], 0, n));
    return NCL_OK;
}

const struct ncl_layer_ops ncl_layer_add_ops = {
    .kind = "Add",
    .setup = add_setup,
    .create_kernels = add_create_kernels,
    .forward = add_forward,
    .backward = add_backward,
    .backward_reads = ncl_backward_reads_none,
};
