/* BatchNorm2d and BatchNorm1d exactly as PyTorch's (kernels/batchnorm.cl): train mode
 * normalises by the batch statistics and updates the running ones, eval mode uses the running
 * ones. Parameters weight (1) and bias (0) train with SGD; running_mean, running_var and
 * num_batches_tracked are state (g->states), saved with PyTorch's names. aux keeps the mean
 * and 1/std the forward used, for backward. */
#include "graph-impl.h"

enum { K_FORWARD, K_BACKWARD };

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static enum ncl_status bn_setup(struct ncl_layer *l)
{
    struct ncl_shape in = l->x->shape;
    l->y->shape = in;
    int64_t dims[1] = {in.c};
    NCL_TRY(ncl_layer_add_param(l, "weight", 1, dims, in.c, in.c, 0));
    NCL_TRY(ncl_layer_add_param(l, "bias", 1, dims, in.c, 0, 1));
    for (int i = 0; i < 2; i++) {
        struct ncl_param *p = layer_param(l, i);
        p->init_const = 1;
        p->init_value = i == 0 ? 1.0f : 0.0f;
    }
    NCL_TRY(ncl_layer_add_state(l, "running_mean", in.c, 0.0f, 0));
    NCL_TRY(ncl_layer_add_state(l, "running_var", in.c, 1.0f, 0));
    NCL_TRY(ncl_layer_add_state(l, "num_batches_tracked", 1, 0.0f, 1));
    l->aux_bytes = 2 * (size_t)in.c * sizeof(float);
    l->flops = 4.0 * (double)ncl_shape_per_image(in);
    return NCL_OK;
}

static const char *bn_options(const struct ncl_layer *l)
{
    return ncl_ctx_is_cpu(layer_ctx(l)) ? "-DBN_WG=1" : "";
}

static size_t bn_wg(const struct ncl_layer *l)
{
    return ncl_ctx_is_cpu(layer_ctx(l)) ? 1 : 256;
}

static enum ncl_status bn_create_kernels(struct ncl_layer *l)
{
    /* a work-item of bn_forward loops 3 times over its share of a channel, plus two group sums */
    struct ncl_shape in = l->x->shape;
    size_t n = (size_t)in.n * in.h * in.w, wg = bn_wg(l);
    NCL_TRY(ncl_ctx_check_loops(layer_ctx(l), 3 * ((n + wg - 1) / wg) + 32, "the batch statistics"));
    NCL_TRY(ncl_kernel_create(layer_ctx(l), "batchnorm.cl", bn_options(l), "bn_forward", &l->k[K_FORWARD]));
    return ncl_kernel_create(layer_ctx(l), "batchnorm.cl", bn_options(l), "bn_backward", &l->k[K_BACKWARD]);
}

static enum ncl_status bn_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    struct ncl_shape in = l->x->shape;
    int n = batch * in.h * in.w, C = in.c, train = mode == NCL_MODE_TRAIN;
    if (train && n < 2)
        return ncl_fail(NCL_ERR_SHAPE, "training needs more than one value per channel (batch %d of %dx%d); PyTorch "
                        "refuses this too", batch, in.h, in.w);
    cl_ulong zero = 0, w_off = layer_param(l, 0)->offset, b_off = layer_param(l, 1)->offset;
    cl_ulong mean_off = layer_state(l, 0)->offset, var_off = layer_state(l, 1)->offset;
    float momentum = BN_MOMENTUM, eps = BN_EPS;
    struct ncl_arg args[] = {NCL_ARG(l->x->buf),     NCL_ARG(zero),     NCL_ARG(n),       NCL_ARG(C),
                             NCL_ARG(l->y->buf),     NCL_ARG(zero),     NCL_ARG(l->g->param_buf), NCL_ARG(w_off),
                             NCL_ARG(b_off),         NCL_ARG(l->g->state_buf), NCL_ARG(mean_off), NCL_ARG(var_off),
                             NCL_ARG(l->aux),        NCL_ARG(train),    NCL_ARG(momentum), NCL_ARG(eps)};
    size_t wg = bn_wg(l), global = wg * (size_t)C;
    NCL_TRY(ncl_enqueue(layer_ctx(l), l->k[K_FORWARD], "bn_forward", 1, &global, &wg, 16, args));
    l->last_train = train;
    if (train)
        l->batches_tracked++;
    return NCL_OK;
}

static enum ncl_status bn_backward(struct ncl_layer *l, int batch, int need_dx)
{
    struct ncl_shape in = l->x->shape;
    int n = batch * in.h * in.w, C = in.c, train = l->last_train, need = need_dx;
    cl_ulong zero = 0, w_off = layer_param(l, 0)->offset;
    cl_ulong dw_off = layer_param(l, 0)->offset, db_off = layer_param(l, 1)->offset;
    cl_mem dx = need_dx ? l->dx : l->dy;   /* any buffer: not written */
    struct ncl_arg args[] = {NCL_ARG(l->x->buf), NCL_ARG(zero),  NCL_ARG(l->dy),  NCL_ARG(zero),
                             NCL_ARG(n),         NCL_ARG(C),     NCL_ARG(l->aux), NCL_ARG(l->g->param_buf),
                             NCL_ARG(w_off),     NCL_ARG(l->g->grad_buf), NCL_ARG(dw_off), NCL_ARG(db_off),
                             NCL_ARG(dx),        NCL_ARG(zero),  NCL_ARG(train),  NCL_ARG(need)};
    size_t wg = bn_wg(l), global = wg * (size_t)C;
    return ncl_enqueue(layer_ctx(l), l->k[K_BACKWARD], "bn_backward", 1, &global, &wg, 16, args);
}

static int bn_backward_reads(const struct ncl_layer *l)
{
    return NCL_READS_X;
}

const struct ncl_layer_ops ncl_layer_batchnorm2d_ops = {
    .kind = "BatchNorm2d",
    .setup = bn_setup,
    .create_kernels = bn_create_kernels,
    .forward = bn_forward,
    .backward = bn_backward,
    .backward_reads = bn_backward_reads,
};

const struct ncl_layer_ops ncl_layer_batchnorm1d_ops = {
    .kind = "BatchNorm1d",
    .setup = bn_setup,
    .create_kernels = bn_create_kernels,
    .forward = bn_forward,
    .backward = bn_backward,
    .backward_reads = bn_backward_reads,
};
