/* Private: the layer graph and the interface every layer implements. */
#ifndef NCL_GRAPH_IMPL_H
#define NCL_GRAPH_IMPL_H

#include "ctx-impl.h"

/* A device activation. Physical order is CNHW for the batch actually run: element (n, c, y, x)
 * of a batch of `batch` images sits at ((c * batch + n) * h + y) * w + x. `shape.n` is the
 * maximum batch the buffer holds. */
struct ncl_tensor {
    cl_mem buf;             /* an activation buffer of the graph's pool, shared with tensors whose lifetimes differ */
    struct ncl_shape shape;
    int flat;               /* a [features, batch] tensor (after Flatten): shapes prints it 2-d */
};

static inline size_t ncl_shape_per_image(struct ncl_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* A parameter tensor: a slice of the graph's parameter, gradient and velocity arenas. */
struct ncl_param {
    char name[96];           /* the state_dict key */
    int ndim;
    int64_t dims[4];
    size_t offset, count;   /* in floats, within the arenas */
    int fan_in, fan_out;    /* for initialisation */
    int is_bias;
    int init_const;         /* initialised to init_value, not drawn (BatchNorm weight 1, bias 0) */
    float init_value;
    int layer;              /* states: the layer owning it */
    int is_i64;             /* states: an int64 host counter (num_batches_tracked), not in the arena */
};

struct ncl_layer;
struct ncl_graph;

/* One small interface per layer kind. setup() computes the output shape for an input shape
 * (n = max batch) and declares parameters and workspace; create_kernels() runs once the graph
 * is reserved; forward/backward enqueue device work for `batch` images. backward is given
 * `need_dx` = 0 for the first layer, whose input gradient nobody needs. */
struct ncl_layer_ops {
    const char *kind;
    enum ncl_status (*setup)(struct ncl_layer *l);
    enum ncl_status (*create_kernels)(struct ncl_layer *l);
    enum ncl_status (*forward)(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step);
    enum ncl_status (*backward)(struct ncl_layer *l, int batch, int need_dx);
    const char *(*method)(const struct ncl_layer *l);   /* optional: ncl_layer_info.method */
    /* optional: which of the layer's own tensors its backward reads (NCL_READS_*); without it,
     * both its input and its output. The memory plan keeps only those alive until backward. */
    int (*backward_reads)(const struct ncl_layer *l);
};

enum { NCL_READS_NONE = 0, NCL_READS_X = 1, NCL_READS_Y = 2 };
int ncl_backward_reads_none(const struct ncl_layer *l);
int ncl_backward_reads_y(const struct ncl_layer *l);

#define NCL_LAYER_MAX_PARAMS 2
#define NCL_LAYER_MAX_KERNELS 10
#define NCL_LAYER_MAX_INPUTS 4
#define NCL_LAYER_MAX_STATES 3

struct ncl_layer {
    const struct ncl_layer_ops *ops;
    struct ncl_graph *g;
    char name[64], group_name[32];   /* name: module path (ONNX: its parameters' prefix or node name) */
    int group;
    struct ncl_tensor *x, *y;       /* first input (xs[0]) and output */
    cl_mem dx, dy;                  /* gradient buffers of x (dxs[0]) and y; dx is NULL when nobody needs it */
    /* Inputs: tensor ids, -1 the graph input, else the index of the producing layer (by
     * default the previous layer). backward writes (overwrites) input j's gradient into dxs[j]
     * (NULL: not needed); where a later reader already wrote that tensor's gradient, dxs[j] is
     * a scratch slot that the graph then adds into acc_into[j] (gradients of fan-out summed). */
    int ninputs;
    int input_ids[NCL_LAYER_MAX_INPUTS];
    struct ncl_tensor *xs[NCL_LAYER_MAX_INPUTS];
    cl_mem dxs[NCL_LAYER_MAX_INPUTS], acc_into[NCL_LAYER_MAX_INPUTS];
    int nstates;                    /* non-trained state (BatchNorm running statistics): into g->states */
    int state_index[NCL_LAYER_MAX_STATES];
    int64_t batches_tracked;        /* BatchNorm: num_batches_tracked */
    int pool_pad;                   /* MaxPool2d padding (-inf) */
    int act;                        /* activation layers: NCL_ACT_* */
    char fused_group_name[32];      /* a fused ReLU that is its own top-level module (shapes prints it) */
    int fused_group;
    int nparams;
    int param_index[NCL_LAYER_MAX_PARAMS];   /* into g->params (weight, bias) */
    size_t workspace_floats;        /* shared scratch the layer needs (max over layers is allocated) */
    cl_mem aux;                     /* layer-private device memory (max-pool argmax) */
    size_t aux_bytes;
    cl_kernel k[NCL_LAYER_MAX_KERNELS];
    /* configuration, by kind */
    struct ncl_conv_params conv;
    int pool_kernel, pool_stride;
    float dropout_p;
    int linear_out, linear_relu;
    int chunk;                      /* conv: images per im2col + GEMM round (workspace bound) */
    int winograd_tile;              /* conv: output tile of the Winograd path (2 or 4), 0: im2col only */
    int winograd_chunk;             /* conv: images per Winograd round */
    uint64_t last_step;             /* dropout: the step whose mask backward regenerates */
    int last_train;
    double flops;                   /* forward multiply-adds x 2 per image */
};

struct ncl_graph {
    struct ncl_ctx *ctx;
    struct ncl_tensor input;
    struct ncl_layer *layers;
    struct ncl_tensor *outputs;     /* one per layer */
    int layer_count, layer_cap;
    int next_input;                 /* ncl_graph_use_input: the tensor the next layer reads, -2: the last */
    cl_mem *act_pool;               /* activation buffers, each shared by tensors with disjoint lifetimes */
    int act_pool_count;
    cl_mem *grad_pool;              /* activation-gradient slots, planned over the backward pass */
    int grad_pool_count;
    cl_mem output_grad, input_grad; /* the loss writes output_grad; input_grad: want_input_grad */
    struct ncl_param *states;       /* BatchNorm running statistics: not trained, saved in checkpoints */
    int state_count, state_cap;
    size_t state_floats;
    cl_mem state_buf;
    cl_kernel k_accumulate;
    struct ncl_param *params;
    int param_count, param_cap;
    size_t param_floats;
    cl_mem param_buf, grad_buf, velocity_buf;
    cl_mem grad_act[2];             /* aliases into grad_pool for a chain: the output's gradient is
                                       grad_act[layer_count % 2], the input's grad_act[0] (tests) */
    cl_mem workspace;
    size_t workspace_floats;
    cl_mem labels;                  /* int32 [max batch] */
    cl_mem metric_loss, metric_counts;   /* float loss_sum; uint correct, count */
    float *host_staging;            /* NCHW <-> CNHW reordering on the host */
    size_t host_staging_floats;
    int momentum_started;           /* the velocity holds a first SGD step */
    int init_kaiming;               /* ncl_graph_init_params: Kaiming-uniform weights, zero biases */
    cl_kernel k_loss, k_sgd, k_fill;
    uint64_t seed;
    int slice_offset, slice_global_batch;   /* ncl_graph_set_batch_slice; 0, 0: the batch is the whole */
    uint64_t device_bytes;
    int reserved;
    int want_input_grad;            /* tests: backward also computes the input's gradient (grad_act[0]) */
    int profiling;                  /* record a marker event after each layer (nincl bench) */
    cl_event *fwd_events, *bwd_events;   /* [layer_count + 1] when profiling */
};

static inline struct ncl_ctx *layer_ctx(const struct ncl_layer *l)
{
    return l->g->ctx;
}

static inline struct ncl_param *layer_param(const struct ncl_layer *l, int i)
{
    return &l->g->params[l->param_index[i]];
}

/* Declares a parameter of the layer (dims in PyTorch order), placed in the arenas at reserve. */
enum ncl_status ncl_layer_add_param(struct ncl_layer *l, const char *suffix, int ndim, const int64_t *dims,
                                    int fan_in, int fan_out, int is_bias);
/* A 1-d or 2-d launch with work-groups of 64 x 1 (global sizes rounded up). */
enum ncl_status ncl_launch(struct ncl_ctx *ctx, cl_kernel k, const char *name, size_t g0, size_t g1, int nargs,
                           const struct ncl_arg *args);
enum ncl_status ncl_fill(struct ncl_graph *g, cl_mem buf, size_t offset, size_t count, float value);
/* Declares a state tensor of the layer (running statistics), float in g->state_buf or an int64 host counter. */
enum ncl_status ncl_layer_add_state(struct ncl_layer *l, const char *suffix, int64_t count, float init_value,
                                    int is_i64);
static inline struct ncl_param *layer_state(const struct ncl_layer *l, int i)
{
    return &l->g->states[l->state_index[i]];
}
/* ncl_graph_backward, calling done(user, i) once layer i's backward is enqueued: the gradients
 * of its parameters are final once the queue gets there (no lower layer writes them), so a
 * data parallel run can start summing them while the layers below still run. */
typedef enum ncl_status (*ncl_layer_done_fn)(void *user, int layer);
enum ncl_status ncl_graph_backward_each(struct ncl_graph *g, int batch, ncl_layer_done_fn done, void *user);
/* Copies count floats between device buffers (clEnqueueCopyBuffer; offsets in floats). */
enum ncl_status ncl_copy(struct ncl_graph *g, cl_mem src, size_t src_off, cl_mem dst, size_t dst_off, size_t count);

enum { NCL_ACT_RELU, NCL_ACT_SIGMOID };

extern const struct ncl_layer_ops ncl_layer_conv_ops, ncl_layer_maxpool_ops, ncl_layer_gap_ops,
    ncl_layer_dropout_ops, ncl_layer_flatten_ops, ncl_layer_linear_ops;
extern const struct ncl_layer_ops ncl_layer_relu_ops, ncl_layer_sigmoid_ops, ncl_layer_avgpool_ops,
    ncl_layer_add_ops, ncl_layer_concat_ops, ncl_layer_batchnorm2d_ops,
    ncl_layer_batchnorm1d_ops;

#endif
