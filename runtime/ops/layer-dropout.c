/* Dropout: inverted (kept values scaled by 1 / (1 - p)) in training, the identity in eval.
 * The mask is a function of (graph seed, step, element of the global batch) and is regenerated
 * in backward; a replica running a slice of the batch (ncl_graph_set_batch_slice) draws the
 * masks of its images. */
#include "graph-impl.h"

enum { K_FORWARD, K_BACKWARD, K_COPY, K_SLICE_FORWARD, K_SLICE_BACKWARD };

static enum ncl_status dropout_setup(struct ncl_layer *l)
{
    l->y->shape = l->x->shape;
    return NCL_OK;
}

static enum ncl_status dropout_create_kernels(struct ncl_layer *l)
{
    struct ncl_ctx *ctx = layer_ctx(l);
    NCL_TRY(ncl_kernel_create(ctx, "dropout.cl", "", "dropout_forward", &l->k[K_FORWARD]));
    NCL_TRY(ncl_kernel_create(ctx, "dropout.cl", "", "dropout_backward", &l->k[K_BACKWARD]));
    NCL_TRY(ncl_kernel_create(ctx, "dropout.cl", "", "dropout_slice_forward", &l->k[K_SLICE_FORWARD]));
    NCL_TRY(ncl_kernel_create(ctx, "dropout.cl", "", "dropout_slice_backward", &l->k[K_SLICE_BACKWARD]));
    return ncl_kernel_create(ctx, "dropout.cl", "", "copy", &l->k[K_COPY]);
}

static enum ncl_status dropout_run(struct ncl_layer *l, int batch, int backward)
{
    cl_mem src = backward ? l->dy : l->x->buf, dst = backward ? l->dx : l->y->buf;
    cl_ulong zero = 0, seed = l->g->seed, step = l->last_step;
    int n = (int)((size_t)batch * ncl_shape_per_image(l->x->shape));
    float p = l->dropout_p;
    if (!l->last_train || p == 0.0f) {
        struct ncl_arg args[] = {NCL_ARG(src), NCL_ARG(zero), NCL_ARG(n), NCL_ARG(dst), NCL_ARG(zero)};
        return ncl_launch(layer_ctx(l), l->k[K_COPY], "copy", (size_t)n, 0, 5, args);
    }
    int global_batch = l->g->slice_global_batch, offset = l->g->slice_offset;
    if (global_batch && (global_batch != batch || offset != 0)) {
        int plane = l->x->shape.h * l->x->shape.w;
        struct ncl_arg args[] = {NCL_ARG(src),   NCL_ARG(zero),         NCL_ARG(n),      NCL_ARG(p),
                                 NCL_ARG(seed),  NCL_ARG(step),         NCL_ARG(batch),  NCL_ARG(global_batch),
                                 NCL_ARG(offset), NCL_ARG(plane),       NCL_ARG(dst),    NCL_ARG(zero)};
        return ncl_launch(layer_ctx(l), l->k[backward ? K_SLICE_BACKWARD : K_SLICE_FORWARD],
                          backward ? "dropout_slice_backward" : "dropout_slice_forward", (size_t)n, 0, 12, args);
    }
    struct ncl_arg args[] = {NCL_ARG(src),  NCL_ARG(zero), NCL_ARG(n),   NCL_ARG(p),
                             NCL_ARG(seed), NCL_ARG(step), NCL_ARG(dst), NCL_ARG(zero)};
    return ncl_launch(layer_ctx(l), l->k[backward ? K_BACKWARD : K_FORWARD],
                      backward ? "dropout_backward" : "dropout_forward", ((size_t)n + 3) / 4, 0, 8, args);
}

static enum ncl_status dropout_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    l->last_step = step;
    l->last_train = mode == NCL_MODE_TRAIN;
    return dropout_run(l, batch, 0);
}

static enum ncl_status dropout_backward(struct ncl_layer *l, int batch, int need_dx)
{
    return need_dx ? dropout_run(l, batch, 1) : NCL_OK;
}

const struct ncl_layer_ops ncl_layer_dropout_ops = {
    .kind = "Dropout",
    .setup = dropout_setup,
    .create_kernels = dropout_create_kernels,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .backward_reads = ncl_backward_reads_none,
};
