/* The layer graph: shape inference as layers are added, one reservation of all device memory
 * for the maximum batch, and forward / loss / backward passes that only enqueue device work. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph-impl.h"

enum ncl_status ncl_graph_create(struct ncl_ctx *ctx, struct ncl_shape input, struct ncl_graph **out)
{
    *out = NULL;
    if (input.n < 1 || input.c < 1 || input.h < 1 || input.w < 1)
        return ncl_fail(NCL_ERR_ARG, "graph input must have a positive batch and size, got %dx%dx%dx%d", input.n,
                        input.c, input.h, input.w);
    struct ncl_graph *g = calloc(1, sizeof *g);
    if (!g)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    g->ctx = ctx;
    g->input.shape = input;
    g->seed = 0;
    g->next_input = -2;
    *out = g;
    return NCL_OK;
}

static void release_mem(cl_mem *m)
{
    if (*m)
        clReleaseMemObject(*m);
    *m = NULL;
}

static void release_kernel(cl_kernel *k)
{
    if (*k)
        clReleaseKernel(*k);
    *k = NULL;
}

void ncl_graph_free(struct ncl_graph *g)
{
    if (!g)
        return;
    if (g->ctx && g->ctx->queue)
        clFinish(g->ctx->queue);
    for (int i = 0; i < g->layer_count; i++) {
        struct ncl_layer *l = &g->layers[i];
        for (int k = 0; k < NCL_LAYER_MAX_KERNELS; k++)
            release_kernel(&l->k[k]);
        release_mem(&l->aux);
    }
    for (int i = 0; i < g->act_pool_count; i++)
        release_mem(&g->act_pool[i]);
    for (int i = 0; i < g->grad_pool_count; i++)
        release_mem(&g->grad_pool[i]);
    release_mem(&g->input.buf);
    release_mem(&g->param_buf);
    release_mem(&g->grad_buf);
    release_mem(&g->velocity_buf);
    release_mem(&g->state_buf);
    release_mem(&g->workspace);
    release_mem(&g->labels);
    release_mem(&g->metric_loss);
    release_mem(&g->metric_counts);
    release_kernel(&g->k_loss);
    release_kernel(&g->k_sgd);
    release_kernel(&g->k_fill);
    release_kernel(&g->k_accumulate);
    ncl_graph_set_profiling(g, 0);
    free(g->host_staging);
    free(g->layers);
    free(g->outputs);
    free(g->params);
    free(g->states);
    free(g->act_pool);
    free(g->grad_pool);
    free(g);
}

struct ncl_ctx *ncl_graph_ctx(const struct ncl_graph *g)
{
    return g->ctx;
}

static struct ncl_tensor *last_tensor(struct ncl_graph *g)
{
    return g->layer_count ? &g->outputs[g->layer_count - 1] : &g->input;
}

static struct ncl_tensor *tensor_by_id(struct ncl_graph *g, int id)
{
    return id < 0 ? &g->input : &g->outputs[id];
}

/* x, xs and y point into outputs: set after every move of the arrays. */
static void point_layer(struct ncl_graph *g, int i)
{
    struct ncl_layer *l = &g->layers[i];
    for (int j = 0; j < l->ninputs; j++)
        l->xs[j] = tensor_by_id(g, l->input_ids[j]);
    l->x = l->xs[0];
    l->y = &g->outputs[i];
}

int ncl_graph_last(const struct ncl_graph *g)
{
    return g->layer_count - 1;
}

enum ncl_status ncl_graph_use_input(struct ncl_graph *g, int tensor)
{
    if (tensor < -1 || tensor >= g->layer_count)
        return ncl_fail(NCL_ERR_ARG, "tensor %d does not exist (-1 is the input, 0..%d the layers' outputs)", tensor,
                        g->layer_count - 1);
    g->next_input = tensor;
    return NCL_OK;
}

/* Appends a layer, runs its shape inference, and names it in any error. The layer reads
 * proto->input_ids when proto->ninputs is set, else the tensor of ncl_graph_use_input, else the
 * previous layer's output. */
static enum ncl_status add_layer(struct ncl_graph *g, const struct ncl_layer_ops *ops, const char *name, int group,
                                 const char *group_name, struct ncl_layer *proto)
{
    if (g->reserved)
        return ncl_fail(NCL_ERR_ARG, "cannot add layer %s: the graph is already reserved", name);
    if (strlen(name) >= sizeof proto->name || strlen(group_name) >= sizeof proto->group_name)
        return ncl_fail(NCL_ERR_ARG, "layer name too long: %s", name);
    if (proto->ninputs == 0) {
        proto->ninputs = 1;
        proto->input_ids[0] = g->next_input >= -1 ? g->next_input : g->layer_count - 1;
    }
    g->next_input = -2;
    for (int j = 0; j < proto->ninputs; j++)
        if (proto->input_ids[j] < -1 || proto->input_ids[j] >= g->layer_count)
            return ncl_fail(NCL_ERR_ARG, "layer %s: input tensor %d does not exist (-1 is the input, 0..%d the "
                            "layers' outputs)", name, proto->input_ids[j], g->layer_count - 1);
    if (g->layer_count == g->layer_cap) {
        int cap = g->layer_cap ? 2 * g->layer_cap : 16;
        struct ncl_layer *layers = realloc(g->layers, (size_t)cap * sizeof *layers);
        if (!layers)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        g->layers = layers;
        struct ncl_tensor *outputs = realloc(g->outputs, (size_t)cap * sizeof *outputs);
        if (!outputs)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        g->outputs = outputs;
        g->layer_cap = cap;
        for (int i = 0; i < g->layer_count; i++)
            point_layer(g, i);
    }
    struct ncl_layer *l = &g->layers[g->layer_count];
    *l = *proto;
    l->ops = ops;
    l->g = g;
    strcpy(l->name, name);
    strcpy(l->group_name, group_name);
    l->group = group;
    l->fused_group = -1;
    memset(&g->outputs[g->layer_count], 0, sizeof g->outputs[0]);
    point_layer(g, g->layer_count);
    int params_before = g->param_count, states_before = g->state_count;
    enum ncl_status s = ops->setup(l);
    if (s == NCL_OK && (l->y->shape.c < 1 || l->y->shape.h < 1 || l->y->shape.w < 1))
        s = ncl_fail(NCL_ERR_SHAPE, "layer %s (%s) would have an empty output (%dx%dx%d) for input %dx%dx%d", name,
                     ops->kind, l->y->shape.c, l->y->shape.h, l->y->shape.w, l->x->shape.c, l->x->shape.h,
                     l->x->shape.w);
    else if (s != NCL_OK)
        ncl_fail_prefix(s, "layer %s (%s)", name, ops->kind);
    if (s != NCL_OK) {
        g->param_count = params_before;
        g->state_count = states_before;
        return s;
    }
    l->y->shape.n = g->input.shape.n;
    l->y->flat = ops == &ncl_layer_flatten_ops || (l->x->flat && l->y->shape.h == 1 && l->y->shape.w == 1);
    g->layer_count++;
    return NCL_OK;
}

enum ncl_status ncl_graph_add_conv(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                   struct ncl_conv_params p)
{
    if (p.out_channels < 1 || p.kernel < 1 || p.stride < 1 || p.pad < 0)
        return ncl_fail(NCL_ERR_ARG, "conv %s: out_channels, kernel and stride must be >= 1 and pad >= 0", name);
    struct ncl_layer proto = {.conv = p};
    return add_layer(g, &ncl_layer_conv_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_linear(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                     int out_features, int relu)
{
    if (out_features < 1)
        return ncl_fail(NCL_ERR_ARG, "linear %s: out_features must be >= 1", name);
    struct ncl_layer proto = {.linear_out = out_features, .linear_relu = relu};
    return add_layer(g, &ncl_layer_linear_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_maxpool(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                      int kernel, int stride)
{
    if (kernel < 1 || stride < 1)
        return ncl_fail(NCL_ERR_ARG, "maxpool %s: kernel and stride must be >= 1", name);
    struct ncl_layer proto = {.pool_kernel = kernel, .pool_stride = stride};
    return add_layer(g, &ncl_layer_maxpool_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_dropout(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                      float p)
{
    if (!(p >= 0.0f && p < 1.0f))
        return ncl_fail(NCL_ERR_ARG, "dropout %s: p must be in [0, 1), got %g", name, p);
    struct ncl_layer proto = {.dropout_p = p};
    return add_layer(g, &ncl_layer_dropout_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_global_avgpool(struct ncl_graph *g, const char *name, int group,
                                             const char *group_name)
{
    struct ncl_layer proto = {0};
    return add_layer(g, &ncl_layer_gap_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_flatten(struct ncl_graph *g, const char *name, int group, const char *group_name)
{
    struct ncl_layer proto = {0};
    return add_layer(g, &ncl_layer_flatten_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_maxpool_padded(struct ncl_graph *g, const char *name, int group,
                                             const char *group_name, int kernel, int stride, int pad)
{
    if (kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel)
        return ncl_fail(NCL_ERR_ARG, "maxpool %s: kernel and stride must be >= 1 and 0 <= pad <= kernel / 2", name);
    struct ncl_layer proto = {.pool_kernel = kernel, .pool_stride = stride, .pool_pad = pad};
    return add_layer(g, &ncl_layer_maxpool_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_avgpool(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                      int kernel, int stride)
{
    if (kernel < 1 || stride < 1)
        return ncl_fail(NCL_ERR_ARG, "avgpool %s: kernel and stride must be >= 1", name);
    struct ncl_layer proto = {.pool_kernel = kernel, .pool_stride = stride};
    return add_layer(g, &ncl_layer_avgpool_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_relu(struct ncl_graph *g, const char *name, int group, const char *group_name)
{
    struct ncl_layer proto = {.act = NCL_ACT_RELU};
    return add_layer(g, &ncl_layer_relu_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_sigmoid(struct ncl_graph *g, const char *name, int group, const char *group_name)
{
    struct ncl_layer proto = {.act = NCL_ACT_SIGMOID};
    return add_layer(g, &ncl_layer_sigmoid_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_batchnorm(struct ncl_graph *g, const char *name, int group, const char *group_name)
{
    struct ncl_layer proto = {0};
    int id = g->next_input >= -1 ? g->next_input : g->layer_count - 1;
    const struct ncl_tensor *x = id >= -1 && id < g->layer_count ? tensor_by_id(g, id) : NULL;
    return add_layer(g, x && x->flat ? &ncl_layer_batchnorm1d_ops : &ncl_layer_batchnorm2d_ops, name, group,
                     group_name, &proto);
}

enum ncl_status ncl_graph_add_add(struct ncl_graph *g, const char *name, int group, const char *group_name, int a,
                                  int b)
{
    struct ncl_layer proto = {.ninputs = 2, .input_ids = {a, b}};
    return add_layer(g, &ncl_layer_add_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_add_concat(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                     int count, const int *inputs)
{
    if (count < 1 || count > NCL_LAYER_MAX_INPUTS)
        return ncl_fail(NCL_ERR_ARG, "concat %s: 1..%d inputs, not %d", name, NCL_LAYER_MAX_INPUTS, count);
    struct ncl_layer proto = {.ninputs = count};
    memcpy(proto.input_ids, inputs, (size_t)count * sizeof *inputs);
    return add_layer(g, &ncl_layer_concat_ops, name, group, group_name, &proto);
}

enum ncl_status ncl_graph_set_fused_group(struct ncl_graph *g, int group, const char *group_name)
{
    if (!g->layer_count || strlen(group_name) >= sizeof g->layers[0].fused_group_name)
        return ncl_fail(NCL_ERR_ARG, "no layer to name a fused module of, or its name is too long");
    struct ncl_layer *l = &g->layers[g->layer_count - 1];
    l->fused_group = group;
    strcpy(l->fused_group_name, group_name);
    return NCL_OK;
}

enum ncl_status ncl_layer_add_state(struct ncl_layer *l, const char *suffix, int64_t count, float init_value,
                                    int is_i64)
{
    struct ncl_graph *g = l->g;
    if (l->nstates == NCL_LAYER_MAX_STATES)
        return ncl_fail(NCL_ERR_ARG, "too many state tensors");
    if (g->state_count == g->state_cap) {
        int cap = g->state_cap ? 2 * g->state_cap : 16;
        struct ncl_param *p = realloc(g->states, (size_t)cap * sizeof *p);
        if (!p)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        g->states = p;
        g->state_cap = cap;
    }
    struct ncl_param *p = &g->states[g->state_count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", l->name, suffix);
    p->ndim = is_i64 ? 0 : 1;   /* num_batches_tracked is a 0-d tensor in PyTorch */
    p->dims[0] = count;
    p->count = (size_t)count;
    p->init_value = init_value;
    p->is_i64 = is_i64;
    p->layer = (int)(l - g->layers);
    l->state_index[l->nstates++] = g->state_count++;
    return NCL_OK;
}

enum ncl_status ncl_layer_add_param(struct ncl_layer *l, const char *suffix, int ndim, const int64_t *dims,
                                    int fan_in, int fan_out, int is_bias)
{
    struct ncl_graph *g = l->g;
    if (l->nparams == NCL_LAYER_MAX_PARAMS)
        return ncl_fail(NCL_ERR_ARG, "too many parameters");
    if (g->param_count == g->param_cap) {
        int cap = g->param_cap ? 2 * g->param_cap : 16;
        struct ncl_param *p = realloc(g->params, (size_t)cap * sizeof *p);
        if (!p)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        g->params = p;
        g->param_cap = cap;
    }
    struct ncl_param *p = &g->params[g->param_count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", l->name, suffix);
    p->ndim = ndim;
    p->count = 1;
    for (int i = 0; i < ndim; i++) {
        p->dims[i] = dims[i];
        p->count *= (size_t)dims[i];
    }
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    p->is_bias = is_bias;
    l->param_index[l->nparams++] = g->param_count++;
    return NCL_OK;
}

static size_t tensor_floats(struct ncl_shape s)
{
    return (size_t)s.n * s.c * s.h * s.w;
}

int ncl_backward_reads_none(const struct ncl_layer *l)
{
    return NCL_READS_NONE;
}

int ncl_backward_reads_y(const struct ncl_layer *l)
{
    return NCL_READS_Y;
}

static int backward_reads(const struct ncl_layer *l)
{
    return l->ops->backward_reads ? l->ops->backward_reads(l) : NCL_READS_X | NCL_READS_Y;
}

/* The last forward step (layer index) that reads tensor t, or INT_MAX when a backward reads it
 * or it is the graph's output: it then lives through the whole step. */
static int tensor_last_use(const struct ncl_graph *g, int t)
{
    if (t == g->layer_count - 1 || (backward_reads(&g->layers[t]) & NCL_READS_Y))
        return INT_MAX;
    int last = t;
    for (int i = t + 1; i < g->layer_count; i++) {
        const struct ncl_layer *l = &g->layers[i];
        for (int j = 0; j < l->ninputs; j++)
            if (l->input_ids[j] == t) {
                if (backward_reads(l) & NCL_READS_X)
                    return INT_MAX;
                last = i;
            }
    }
    return last;
}

/* The memory plan, independent of the batch: which pool buffer holds each layer's output
 * (sizes in floats per image), and which gradient slot each backward reads and writes. */
struct plan {
    int *act_of;            /* [layer] -> activation buffer */
    size_t *act_size;       /* [buffer] floats per image */
    int act_count;
    int *dy_slot;           /* [layer] */
    int *dx_slot, *acc_slot;   /* [layer * NCL_LAYER_MAX_INPUTS + j], -1: none */
    int input_slot;
    int grad_count;
    size_t grad_size;       /* floats per image of every slot */
};

static void plan_free(struct plan *p)
{
    free(p->act_of);
    free(p->act_size);
    free(p->dy_slot);
    free(p->dx_slot);
    free(p->acc_slot);
    memset(p, 0, sizeof *p);
}

/* Activations, greedily in layer order: a tensor takes a buffer whose tensor is dead (the
 * smallest that fits, else the largest, grown), or a new one. */
static void plan_activations(const struct ncl_graph *g, struct plan *p, int *busy_until)
{
    for (int t = 0; t < g->layer_count; t++) {
        size_t need = ncl_shape_per_image(g->outputs[t].shape);
        int best = -1;
        for (int b = 0; b < p->act_count; b++) {
            if (busy_until[b] >= t)
                continue;
            int fits = p->act_size[b] >= need, best_fits = best >= 0 && p->act_size[best] >= need;
            if (best < 0 || (fits && (!best_fits || p->act_size[b] < p->act_size[best])) ||
                (!fits && !best_fits && p->act_size[b] > p->act_size[best]))
                best = b;
        }
        if (best < 0) {
            best = p->act_count++;
            p->act_size[best] = 0;
        }
        if (p->act_size[best] < need)
            p->act_size[best] = need;
        busy_until[best] = tensor_last_use(g, t);
        p->act_of[t] = best;
    }
}

static int slot_take(int *used, int *count)
{
    int s = 0;
    while (s < *count && used[s])
        s++;
    if (s == *count)
        (*count)++;
    used[s] = 1;
    return s;
}

/* Gradients, by simulating the backward pass: a tensor's gradient takes a slot when its last
 * reader's backward writes it and frees it after its producer's backward has read it; a reader
 * finding the gradient already written writes into a scratch slot that is then added to it. */
static enum ncl_status plan_gradients(const struct ncl_graph *g, struct plan *p, int *used, int *slot_of)
{
    int L = g->layer_count;
    for (int t = 0; t <= L; t++)
        slot_of[t] = -1;   /* slot_of[t + 1]: tensor t, slot_of[0] the input */
    slot_of[L] = slot_take(used, &p->grad_count);   /* the loss writes the output's gradient */
    for (int i = L - 1; i >= 0; i--) {
        const struct ncl_layer *l = &g->layers[i];
        if (slot_of[i + 1] < 0)
            return ncl_fail(NCL_ERR_ARG, "layer %s (%s): its output is read by no layer (only the last layer's "
                            "may be)", l->name, l->ops->kind);
        p->dy_slot[i] = slot_of[i + 1];
        int scratch[NCL_LAYER_MAX_INPUTS], nscratch = 0;
        for (int j = 0; j < l->ninputs; j++) {
            int t = l->input_ids[j], at = i * NCL_LAYER_MAX_INPUTS + j;
            p->dx_slot[at] = p->acc_slot[at] = -1;
            if (t < 0 && !g->want_input_grad)
                continue;
            if (slot_of[t + 1] < 0) {
                slot_of[t + 1] = p->dx_slot[at] = slot_take(used, &p->grad_count);
            } else {
                p->acc_slot[at] = slot_of[t + 1];
                p->dx_slot[at] = scratch[nscratch++] = slot_take(used, &p->grad_count);
            }
        }
        used[p->dy_slot[i]] = 0;
        for (int k = 0; k < nscratch; k++)
            used[scratch[k]] = 0;
    }
    p->input_slot = slot_of[0];
    return NCL_OK;
}

static enum ncl_status plan_make(const struct ncl_graph *g, struct plan *p)
{
    int L = g->layer_count;
    memset(p, 0, sizeof *p);
    p->act_of = malloc((size_t)L * sizeof *p->act_of);
    p->act_size = malloc((size_t)L * sizeof *p->act_size);
    p->dy_slot = malloc((size_t)L * sizeof *p->dy_slot);
    p->dx_slot = malloc((size_t)L * NCL_LAYER_MAX_INPUTS * sizeof *p->dx_slot);
    p->acc_slot = malloc((size_t)L * NCL_LAYER_MAX_INPUTS * sizeof *p->acc_slot);
    /* at most one slot per tensor plus the scratch slots of one layer are ever live */
    int *used = calloc((size_t)L + 2 + NCL_LAYER_MAX_INPUTS, sizeof *used);
    int *scratch = malloc(((size_t)L + 1) * sizeof *scratch);
    enum ncl_status s = NCL_OK;
    if (!p->act_of || !p->act_size || !p->dy_slot || !p->dx_slot || !p->acc_slot || !used || !scratch)
        s = ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    if (s == NCL_OK) {
        plan_activations(g, p, scratch);
        s = plan_gradients(g, p, used, scratch);
    }
    p->grad_size = ncl_shape_per_image(g->input.shape);
    for (int i = 0; i < L; i++)
        if (ncl_shape_per_image(g->outputs[i].shape) > p->grad_size)
            p->grad_size = ncl_shape_per_image(g->outputs[i].shape);
    free(used);
    free(scratch);
    if (s != NCL_OK)
        plan_free(p);
    return s;
}

/* Device bytes the graph will allocate: parameters x 3 (weights, gradients, momentum), state,
 * input, the activation buffers and layer state, the gradient slots, workspace, labels. */
static uint64_t planned_bytes(const struct ncl_graph *g, const struct plan *p, int batch)
{
    uint64_t params = 0, acts = 0, workspace = 0;
    struct ncl_shape in = g->input.shape;
    in.n = batch;
    uint64_t in_floats = tensor_floats(in);
    for (int i = 0; i < g->param_count; i++)
        params += g->params[i].count;
    for (int b = 0; b < p->act_count; b++)
        acts += (uint64_t)p->act_size[b] * batch;
    for (int i = 0; i < g->layer_count; i++) {
        const struct ncl_layer *l = &g->layers[i];
        acts += l->aux_bytes / sizeof(float) * (uint64_t)batch / (uint64_t)g->input.shape.n;
        if (l->workspace_floats > workspace)
            workspace = l->workspace_floats;
    }
    uint64_t grads = (uint64_t)p->grad_count * p->grad_size * batch;
    return 4 * (3 * params + g->state_floats + in_floats + acts + grads + workspace + (uint64_t)batch);
}

/* Refuses, before allocating anything, a plan larger than the device's memory, with the batch
 * that would fit: a clear message instead of a failure deep inside an allocation. */
static enum ncl_status check_memory_plan(const struct ncl_graph *g, const struct plan *p)
{
    const struct ncl_device_info *d = &g->ctx->info;
    uint64_t need = planned_bytes(g, p, g->input.shape.n);
    if (need <= d->global_mem_bytes)
        return NCL_OK;
    if (planned_bytes(g, p, 1) > d->global_mem_bytes / 10 * 9)
        return ncl_fail(NCL_ERR_NO_MEMORY,
                        "one %dx%dx%d input needs %.1f MiB of device memory; %s has %.1f MiB: use a smaller input "
                        "size (--resize / --input)",
                        g->input.shape.c, g->input.shape.h, g->input.shape.w, planned_bytes(g, p, 1) / 1048576.0,
                        d->name, d->global_mem_bytes / 1048576.0);
    int fits = 1, too_big = g->input.shape.n;   /* the largest batch within 90% of memory */
    while (too_big - fits > 1) {
        int mid = fits + (too_big - fits) / 2;
        if (planned_bytes(g, p, mid) <= d->global_mem_bytes / 10 * 9)
            fits = mid;
        else
            too_big = mid;
    }
    return ncl_fail(NCL_ERR_NO_MEMORY,
                    "batch %d needs %.1f MiB of device memory; %s has %.1f MiB: use a smaller --batch (about %d fits)",
                    g->input.shape.n, need / 1048576.0, d->name, d->global_mem_bytes / 1048576.0, fits);
}

static enum ncl_status reserve_with_plan(struct ncl_graph *g, const struct plan *p)
{
    struct ncl_ctx *ctx = g->ctx;
    NCL_TRY(check_memory_plan(g, p));
    uint64_t total = 0;
    char what[160];
    int N = g->input.shape.n;
    /* parameters, gradients and momentum in three arenas: one SGD launch updates them all */
    for (int i = 0; i < g->param_count; i++) {
        g->params[i].offset = g->param_floats;
        g->param_floats += g->params[i].count;
    }
    size_t pbytes = g->param_floats * sizeof(float);
    NCL_TRY(ncl_buffer_create(ctx, pbytes, "parameters", &g->param_buf));
    NCL_TRY(ncl_buffer_create(ctx, pbytes, "gradients", &g->grad_buf));
    NCL_TRY(ncl_buffer_create(ctx, pbytes, "SGD momentum", &g->velocity_buf));
    total += 3 * (uint64_t)pbytes;
    for (int i = 0; i < g->state_count; i++)
        if (!g->states[i].is_i64) {
            g->states[i].offset = g->state_floats;
            g->state_floats += g->states[i].count;
        }
    if (g->state_floats) {
        NCL_TRY(ncl_buffer_create(ctx, g->state_floats * sizeof(float), "running statistics", &g->state_buf));
        total += g->state_floats * sizeof(float);
    }

    size_t in_floats = tensor_floats(g->input.shape);
    NCL_TRY(ncl_buffer_create(ctx, in_floats * sizeof(float), "input batch", &g->input.buf));
    total += in_floats * sizeof(float);
    g->act_pool = calloc((size_t)p->act_count, sizeof *g->act_pool);
    g->grad_pool = calloc((size_t)p->grad_count, sizeof *g->grad_pool);
    if (!g->act_pool || !g->grad_pool)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    for (int b = 0; b < p->act_count; b++) {
        int first = 0;
        while (p->act_of[first] != b)
            first++;
        snprintf(what, sizeof what, "activations (first: output of layer %s)", g->layers[first].name);
        NCL_TRY(ncl_buffer_create(ctx, p->act_size[b] * N * sizeof(float), what, &g->act_pool[b]));
        g->act_pool_count++;
        total += p->act_size[b] * N * sizeof(float);
    }
    size_t max_host = in_floats;
    for (int i = 0; i < g->layer_count; i++) {
        struct ncl_layer *l = &g->layers[i];
        l->y->buf = g->act_pool[p->act_of[i]];
        size_t n = tensor_floats(l->y->shape);
        if (n > max_host)
            max_host = n;
        if (l->aux_bytes) {
            snprintf(what, sizeof what, "state of layer %s (%s)", l->name, l->ops->kind);
            NCL_TRY(ncl_buffer_create(ctx, l->aux_bytes, what, &l->aux));
            total += l->aux_bytes;
        }
        if (l->workspace_floats > g->workspace_floats)
            g->workspace_floats = l->workspace_floats;
    }
    for (int i = 0; i < p->grad_count; i++) {
        NCL_TRY(ncl_buffer_create(ctx, p->grad_size * N * sizeof(float), "activation gradients", &g->grad_pool[i]));
        g->grad_pool_count++;
        total += p->grad_size * N * sizeof(float);
    }
    if (g->workspace_floats) {
        NCL_TRY(ncl_buffer_create(ctx, g->workspace_floats * sizeof(float), "convolution workspace", &g->workspace));
        total += g->workspace_floats * sizeof(float);
    }
    NCL_TRY(ncl_buffer_create(ctx, (size_t)g->input.shape.n * sizeof(int32_t), "labels", &g->labels));
    NCL_TRY(ncl_buffer_create(ctx, sizeof(float), "metrics", &g->metric_loss));
    NCL_TRY(ncl_buffer_create(ctx, 2 * sizeof(uint32_t), "metrics", &g->metric_counts));
    total += (size_t)g->input.shape.n * sizeof(int32_t) + 3 * 4;
    g->device_bytes = total;

    g->host_staging = malloc(max_host * sizeof(float));
    g->host_staging_floats = max_host;
    if (!g->host_staging)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory (%zu bytes of staging)", max_host * sizeof(float));

    int L = g->layer_count;
    g->output_grad = g->grad_pool[p->dy_slot[L - 1]];
    g->input_grad = p->input_slot >= 0 ? g->grad_pool[p->input_slot] : NULL;
    /* a chain's slots alternate; the tests' names for them (graph-impl.h) */
    g->grad_act[L % 2] = g->output_grad;
    g->grad_act[(L + 1) % 2] = p->grad_count > 1 ? g->grad_pool[1 - p->dy_slot[L - 1]] : g->output_grad;
    if (g->input_grad)
        g->grad_act[0] = g->input_grad;
    for (int i = 0; i < L; i++) {
        struct ncl_layer *l = &g->layers[i];
        l->dy = g->grad_pool[p->dy_slot[i]];
        for (int j = 0; j < l->ninputs; j++) {
            int at = i * NCL_LAYER_MAX_INPUTS + j;
            l->dxs[j] = p->dx_slot[at] >= 0 ? g->grad_pool[p->dx_slot[at]] : NULL;
            l->acc_into[j] = p->acc_slot[at] >= 0 ? g->grad_pool[p->acc_slot[at]] : NULL;
        }
        l->dx = l->dxs[0];
        if (l->ops->create_kernels) {
            enum ncl_status s = l->ops->create_kernels(l);
            if (s != NCL_OK)
                return ncl_fail_prefix(s, "layer %s (%s)", l->name, l->ops->kind);
        }
    }
    NCL_TRY(ncl_kernel_create(ctx, "loss.cl", "", "softmax_xent", &g->k_loss));
    NCL_TRY(ncl_kernel_create(ctx, "sgd.cl", "", "sgd_step", &g->k_sgd));
    NCL_TRY(ncl_kernel_create(ctx, "sgd.cl", "", "fill", &g->k_fill));
    NCL_TRY(ncl_kernel_create(ctx, "add.cl", "", "accumulate", &g->k_accumulate));
    g->reserved = 1;
    NCL_TRY(ncl_fill(g, g->grad_buf, 0, g->param_floats, 0.0f));
    NCL_TRY(ncl_fill(g, g->velocity_buf, 0, g->param_floats, 0.0f));
    NCL_TRY(ncl_graph_reset_states(g));
    NCL_TRY(ncl_graph_read_metrics(g, NULL, 1));
    return NCL_OK;
}

enum ncl_status ncl_graph_reserve(struct ncl_graph *g)
{
    if (g->reserved)
        return NCL_OK;
    if (g->layer_count == 0)
        return ncl_fail(NCL_ERR_ARG, "the graph has no layers");
    struct plan p;
    NCL_TRY(plan_make(g, &p));
    enum ncl_status s = reserve_with_plan(g, &p);
    plan_free(&p);
    return s;
}

uint64_t ncl_graph_device_bytes(const struct ncl_graph *g)
{
    return g->device_bytes;
}

enum ncl_status ncl_launch(struct ncl_ctx *ctx, cl_kernel k, const char *name, size_t g0, size_t g1, int nargs,
                           const struct ncl_arg *args)
{
    size_t global[2] = {g0, g1}, local[2] = {64, 1};
    return ncl_enqueue(ctx, k, name, g1 ? 2 : 1, global, local, nargs, args);
}

enum ncl_status ncl_fill(struct ncl_graph *g, cl_mem buf, size_t offset, size_t count, float value)
{
    cl_ulong off = offset;
    int n = (int)count;
    struct ncl_arg args[] = {NCL_ARG(buf), NCL_ARG(off), NCL_ARG(n), NCL_ARG(value)};
    return ncl_launch(g->ctx, g->k_fill, "fill", count, 0, 4, args);
}

enum ncl_status ncl_copy(struct ncl_graph *g, cl_mem src, size_t src_off, cl_mem dst, size_t dst_off, size_t count)
{
    if (!count)
        return NCL_OK;
    NCL_CL_TRY(clEnqueueCopyBuffer(g->ctx->queue, src, dst, src_off * sizeof(float), dst_off * sizeof(float),
                                   count * sizeof(float), 0, NULL, NULL),
               "clEnqueueCopyBuffer");
    return NCL_OK;
}

/* The running statistics back to PyTorch's initial values (mean 0, var 1, no batches). */
enum ncl_status ncl_graph_reset_states(struct ncl_graph *g)
{
    for (int i = 0; i < g->state_count; i++) {
        struct ncl_param *p = &g->states[i];
        if (p->is_i64)
            g->layers[p->layer].batches_tracked = 0;
        else
            NCL_TRY(ncl_fill(g, g->state_buf, p->offset, p->count, p->init_value));
    }
    return NCL_OK;
}

int ncl_graph_layer_count(const struct ncl_graph *g)
{
    return g->layer_count;
}

void ncl_graph_layer_info(const struct ncl_graph *g, int i, struct ncl_layer_info *info)
{
    const struct ncl_layer *l = &g->layers[i];
    info->name = l->name;
    info->kind = l->ops->kind;
    info->method = l->ops->method ? l->ops->method(l) : "";
    info->group_name = l->group_name;
    info->group = l->group;
    info->out = l->y->shape;
    info->out.n = 1;
    info->flat = l->y->flat;
    info->fused_group = l->fused_group;
    info->fused_group_name = l->fused_group_name;
}

struct ncl_shape ncl_graph_input_shape(const struct ncl_graph *g)
{
    return g->input.shape;
}

struct ncl_shape ncl_graph_output_shape(const struct ncl_graph *g)
{
    return g->layer_count ? g->outputs[g->layer_count - 1].shape : g->input.shape;
}

void ncl_graph_set_seed(struct ncl_graph *g, uint64_t seed)
{
    g->seed = seed;
}

enum ncl_status ncl_graph_set_batch_slice(struct ncl_graph *g, int offset, int global_batch)
{
    if (offset < 0 || global_batch < 0 || (global_batch == 0 && offset != 0))
        return ncl_fail(NCL_ERR_ARG, "batch slice at %d of %d: offset and global batch must be >= 0", offset,
                        global_batch);
    g->slice_offset = offset;
    g->slice_global_batch = global_batch;
    return NCL_OK;
}

static enum ncl_status check_batch(const struct ncl_graph *g, int batch)
{
    if (g->slice_global_batch && g->slice_offset + batch > g->slice_global_batch)
        return ncl_fail(NCL_ERR_ARG, "a batch of %d at offset %d does not fit the global batch of %d", batch,
                        g->slice_offset, g->slice_global_batch);
    if (!g->reserved)
        return ncl_fail(NCL_ERR_ARG, "the graph is not reserved (call ncl_graph_reserve)");
    if (batch < 1 || batch > g->input.shape.n)
        return ncl_fail(NCL_ERR_ARG, "batch %d is outside 1..%d (the graph's reserved maximum)", batch,
                        g->input.shape.n);
    return NCL_OK;
}

/* Host NCHW <-> device CNHW for `batch` images of per-image shape s. */
static void nchw_to_cnhw(const float *src, float *dst, int batch, struct ncl_shape s)
{
    size_t hw = (size_t)s.h * s.w;
    for (int n = 0; n < batch; n++)
        for (int c = 0; c < s.c; c++)
            memcpy(dst + ((size_t)c * batch + n) * hw, src + ((size_t)n * s.c + c) * hw, hw * sizeof(float));
}

static void cnhw_to_nchw(const float *src, float *dst, int batch, struct ncl_shape s)
{
    size_t hw = (size_t)s.h * s.w;
    for (int n = 0; n < batch; n++)
        for (int c = 0; c < s.c; c++)
            memcpy(dst + ((size_t)n * s.c + c) * hw, src + ((size_t)c * batch + n) * hw, hw * sizeof(float));
}

enum ncl_status ncl_graph_write_input(struct ncl_graph *g, const float *nchw, int batch)
{
    NCL_TRY(check_batch(g, batch));
    size_t n = (size_t)batch * ncl_shape_per_image(g->input.shape);
    nchw_to_cnhw(nchw, g->host_staging, batch, g->input.shape);
    NCL_CL_TRY(clEnqueueWriteBuffer(g->ctx->queue, g->input.buf, CL_TRUE, 0, n * sizeof(float), g->host_staging, 0,
                                    NULL, NULL),
               "writing the input batch");
    return NCL_OK;
}

enum ncl_status ncl_graph_write_labels(struct ncl_graph *g, const int32_t *labels, int batch)
{
    NCL_TRY(check_batch(g, batch));
    int classes = ncl_graph_output_shape(g).c;
    for (int i = 0; i < batch; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return ncl_fail(NCL_ERR_ARG, "label %d of the batch is %d, outside 0..%d", i, (int)labels[i],
                            classes - 1);
    NCL_CL_TRY(clEnqueueWriteBuffer(g->ctx->queue, g->labels, CL_TRUE, 0, (size_t)batch * sizeof(int32_t), labels, 0,
                                    NULL, NULL),
               "writing labels");
    return NCL_OK;
}

enum ncl_status ncl_graph_read_output(struct ncl_graph *g, float *nchw, int batch)
{
    NCL_TRY(check_batch(g, batch));
    struct ncl_tensor *t = last_tensor(g);
    size_t n = (size_t)batch * ncl_shape_per_image(t->shape);
    NCL_CL_TRY(clEnqueueReadBuffer(g->ctx->queue, t->buf, CL_TRUE, 0, n * sizeof(float), g->host_staging, 0, NULL,
                                   NULL),
               "reading the output");
    cnhw_to_nchw(g->host_staging, nchw, batch, t->shape);
    return NCL_OK;
}

/* Profiling: a marker after each layer; in an in-order queue the time between consecutive
 * markers' ends is the layer's device time. */
static enum ncl_status mark(struct ncl_graph *g, cl_event *slot)
{
    if (*slot)
        clReleaseEvent(*slot);
    *slot = NULL;
    NCL_CL_TRY(clEnqueueMarkerWithWaitList(g->ctx->queue, 0, NULL, slot), "clEnqueueMarkerWithWaitList");
    return NCL_OK;
}

void ncl_graph_set_profiling(struct ncl_graph *g, int on)
{
    for (int i = 0; i <= g->layer_count && (g->fwd_events || g->bwd_events); i++) {
        if (g->fwd_events && g->fwd_events[i])
            clReleaseEvent(g->fwd_events[i]);
        if (g->bwd_events && g->bwd_events[i])
            clReleaseEvent(g->bwd_events[i]);
    }
    free(g->fwd_events);
    free(g->bwd_events);
    g->fwd_events = g->bwd_events = NULL;
    g->profiling = 0;
    if (on && g->ctx->profile) {
        g->fwd_events = calloc((size_t)g->layer_count + 1, sizeof(cl_event));
        g->bwd_events = calloc((size_t)g->layer_count + 1, sizeof(cl_event));
        g->profiling = g->fwd_events && g->bwd_events;
    }
}

static double event_gap_ms(cl_event a, cl_event b)
{
    cl_ulong ta = 0, tb = 0;
    if (!a || !b || clGetEventProfilingInfo(a, CL_PROFILING_COMMAND_END, sizeof ta, &ta, NULL) != CL_SUCCESS ||
        clGetEventProfilingInfo(b, CL_PROFILING_COMMAND_END, sizeof tb, &tb, NULL) != CL_SUCCESS)
        return -1.0;
    return (double)(tb - ta) * 1e-6;
}

enum ncl_status ncl_graph_layer_times(struct ncl_graph *g, double *forward_ms, double *backward_ms)
{
    if (!g->profiling)
        return ncl_fail(NCL_ERR_ARG, "profiling is off (create the context with profile = 1)");
    NCL_TRY(ncl_ctx_finish(g->ctx));
    for (int i = 0; i < g->layer_count; i++) {
        forward_ms[i] = event_gap_ms(g->fwd_events[i], g->fwd_events[i + 1]);
        /* backward runs from the last layer down: layer i ends at bwd_events[i] */
        backward_ms[i] = event_gap_ms(g->bwd_events[i + 1], g->bwd_events[i]);
    }
    return NCL_OK;
}

double ncl_graph_layer_flops(const struct ncl_graph *g, int i)
{
    return g->layers[i].flops;
}

enum ncl_status ncl_graph_forward(struct ncl_graph *g, int batch, enum ncl_mode mode, uint64_t step)
{
    NCL_TRY(check_batch(g, batch));
    if (g->profiling)
        NCL_TRY(mark(g, &g->fwd_events[0]));
    for (int i = 0; i < g->layer_count; i++) {
        struct ncl_layer *l = &g->layers[i];
        enum ncl_status s = l->ops->forward(l, batch, mode, step);
        if (s != NCL_OK)
            return ncl_fail_prefix(s, "forward of layer %s (%s)", l->name, l->ops->kind);
        if (g->profiling)
            NCL_TRY(mark(g, &g->fwd_events[i + 1]));
    }
    return NCL_OK;
}

enum ncl_status ncl_graph_loss(struct ncl_graph *g, int batch)
{
    NCL_TRY(check_batch(g, batch));
    struct ncl_tensor *t = last_tensor(g);
    if (t->shape.h != 1 || t->shape.w != 1)
        return ncl_fail(NCL_ERR_SHAPE, "the loss needs a [batch, classes] output; the last layer gives %dx%dx%d",
                        t->shape.c, t->shape.h, t->shape.w);
    cl_ulong zero = 0;
    int classes = t->shape.c;
    /* a replica's slice: the gradient of the global batch's mean, so replicas' gradients sum */
    int mean_over = g->slice_global_batch ? g->slice_global_batch : batch;
    size_t global = 64, local = 64;
    struct ncl_arg args[] = {NCL_ARG(t->buf),     NCL_ARG(zero),
                             NCL_ARG(g->labels),  NCL_ARG(batch),
                             NCL_ARG(mean_over),  NCL_ARG(classes),
                             NCL_ARG(g->output_grad),
                             NCL_ARG(zero),       NCL_ARG(g->metric_loss),
                             NCL_ARG(g->metric_counts)};
    return ncl_enqueue(g->ctx, g->k_loss, "softmax_xent", 1, &global, &local, 10, args);
}

/* grad += scratch over count floats: a second reader's gradient of a fan-out tensor. */
static enum ncl_status accumulate(struct ncl_graph *g, cl_mem grad, cl_mem scratch, size_t count)
{
    cl_ulong zero = 0;
    int n = (int)count;
    struct ncl_arg args[] = {NCL_ARG(grad), NCL_ARG(zero), NCL_ARG(scratch), NCL_ARG(zero), NCL_ARG(n)};
    return ncl_launch(g->ctx, g->k_accumulate, "accumulate", count, 0, 5, args);
}

enum ncl_status ncl_graph_backward(struct ncl_graph *g, int batch)
{
    return ncl_graph_backward_each(g, batch, NULL, NULL);
}

enum ncl_status ncl_graph_backward_each(struct ncl_graph *g, int batch, ncl_layer_done_fn done, void *user)
{
    NCL_TRY(check_batch(g, batch));
    if (g->profiling)
        NCL_TRY(mark(g, &g->bwd_events[g->layer_count]));
    for (int i = g->layer_count - 1; i >= 0; i--) {
        struct ncl_layer *l = &g->layers[i];
        enum ncl_status s = l->ops->backward(l, batch, l->dx != NULL);
        for (int j = 0; s == NCL_OK && j < l->ninputs; j++)
            if (l->acc_into[j])
                s = accumulate(g, l->acc_into[j], l->dxs[j], (size_t)batch * ncl_shape_per_image(l->xs[j]->shape));
        if (s != NCL_OK)
            return ncl_fail_prefix(s, "backward of layer %s (%s)", l->name, l->ops->kind);
        if (g->profiling)
            NCL_TRY(mark(g, &g->bwd_events[i]));
        if (done)
            NCL_TRY(done(user, i));
    }
    return NCL_OK;
}

enum ncl_status ncl_graph_read_metrics(struct ncl_graph *g, struct ncl_metrics *m, int reset)
{
    if (m) {
        float loss = 0;
        uint32_t counts[2] = {0, 0};
        NCL_CL_TRY(clEnqueueReadBuffer(g->ctx->queue, g->metric_loss, CL_FALSE, 0, sizeof loss, &loss, 0, NULL, NULL),
                   "reading metrics");
        NCL_CL_TRY(clEnqueueReadBuffer(g->ctx->queue, g->metric_counts, CL_TRUE, 0, sizeof counts, counts, 0, NULL,
                                       NULL),
                   "reading metrics");
        m->loss_sum = loss;
        m->correct = counts[0];
        m->count = counts[1];
    }
    if (reset) {
        static const float zero_f = 0;
        static const uint32_t zero_u[2] = {0, 0};
        NCL_CL_TRY(clEnqueueWriteBuffer(g->ctx->queue, g->metric_loss, CL_TRUE, 0, sizeof zero_f, &zero_f, 0, NULL,
                                        NULL),
                   "resetting metrics");
        NCL_CL_TRY(clEnqueueWriteBuffer(g->ctx->queue, g->metric_counts, CL_TRUE, 0, sizeof zero_u, zero_u, 0, NULL,
                                        NULL),
                   "resetting metrics");
    }
    return NCL_OK;
}

enum ncl_status ncl_graph_sgd_step(struct ncl_graph *g, const struct ncl_sgd_params *p)
{
    if (!g->reserved)
        return ncl_fail(NCL_ERR_ARG, "the graph is not reserved");
    if (!(p->lr > 0.0f) || !(p->momentum >= 0.0f) || !(p->weight_decay >= 0.0f))
        return ncl_fail(NCL_ERR_ARG, "SGD needs lr > 0, momentum >= 0 and weight decay >= 0");
    int n = (int)g->param_floats;
    int first = !g->momentum_started;
    size_t global = g->param_floats, local = 64;
    struct ncl_arg args[] = {NCL_ARG(g->param_buf), NCL_ARG(g->grad_buf), NCL_ARG(g->velocity_buf),
                             NCL_ARG(n),            NCL_ARG(p->lr),       NCL_ARG(p->momentum),
                             NCL_ARG(p->weight_decay), NCL_ARG(first)};
    NCL_TRY(ncl_enqueue(g->ctx, g->k_sgd, "sgd_step", 1, &global, &local, 8, args));
    if (p->momentum != 0.0f)
        g->momentum_started = 1;
    return NCL_OK;
}

enum ncl_status ncl_graph_zero_grads(struct ncl_graph *g)
{
    return ncl_fill(g, g->grad_buf, 0, g->param_floats, 0.0f);
}
