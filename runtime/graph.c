/* The layer graph: shape inference as layers are added, one reservation of all device memory
 * for the maximum batch, and forward / loss / backward passes that only enqueue device work. */
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
        release_mem(&g->outputs[i].buf);
    }
    release_mem(&g->input.buf);
    release_mem(&g->param_buf);
    release_mem(&g->grad_buf);
    release_mem(&g->velocity_buf);
    release_mem(&g->grad_act[0]);
    release_mem(&g->grad_act[1]);
    release_mem(&g->workspace);
    release_mem(&g->labels);
    release_mem(&g->metric_loss);
    release_mem(&g->metric_counts);
    release_kernel(&g->k_loss);
    release_kernel(&g->k_sgd);
    release_kernel(&g->k_fill);
    ncl_graph_set_profiling(g, 0);
    free(g->host_staging);
    free(g->layers);
    free(g->outputs);
    free(g->params);
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

/* Appends a layer, runs its shape inference, and names it in any error. */
static enum ncl_status add_layer(struct ncl_graph *g, const struct ncl_layer_ops *ops, const char *name, int group,
                                 const char *group_name, struct ncl_layer *proto)
{
    if (g->reserved)
        return ncl_fail(NCL_ERR_ARG, "cannot add layer %s: the graph is already reserved", name);
    if (strlen(name) >= sizeof proto->name || strlen(group_name) >= sizeof proto->group_name)
        return ncl_fail(NCL_ERR_ARG, "layer name too long: %s", name);
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
        /* x and y point into outputs: re-point after the move */
        for (int i = 0; i < g->layer_count; i++) {
            g->layers[i].x = i ? &g->outputs[i - 1] : &g->input;
            g->layers[i].y = &g->outputs[i];
        }
    }
    struct ncl_layer *l = &g->layers[g->layer_count];
    *l = *proto;
    l->ops = ops;
    l->g = g;
    strcpy(l->name, name);
    strcpy(l->group_name, group_name);
    l->group = group;
    l->x = last_tensor(g);
    l->y = &g->outputs[g->layer_count];
    memset(l->y, 0, sizeof *l->y);
    int params_before = g->param_count;
    enum ncl_status s = ops->setup(l);
    if (s == NCL_OK && (l->y->shape.c < 1 || l->y->shape.h < 1 || l->y->shape.w < 1))
        s = ncl_fail(NCL_ERR_SHAPE, "layer %s (%s) would have an empty output (%dx%dx%d) for input %dx%dx%d", name,
                     ops->kind, l->y->shape.c, l->y->shape.h, l->y->shape.w, l->x->shape.c, l->x->shape.h,
                     l->x->shape.w);
    else if (s != NCL_OK)
        ncl_fail_prefix(s, "layer %s (%s)", name, ops->kind);
    if (s != NCL_OK) {
        g->param_count = params_before;
        return s;
    }
    l->y->shape.n = g->input.shape.n;
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

/* Device bytes the graph will allocate: parameters x 3 (weights, gradients, momentum), input,
 * outputs and layer state, two activation-gradient buffers, workspace, labels. */
static uint64_t planned_bytes(const struct ncl_graph *g, int batch)
{
    uint64_t params = 0, acts = 0, max_act = 0, workspace = 0;
    struct ncl_shape in = g->input.shape;
    in.n = batch;
    uint64_t in_floats = tensor_floats(in);
    max_act = in_floats;
    for (int i = 0; i < g->param_count; i++)
        params += g->params[i].count;
    for (int i = 0; i < g->layer_count; i++) {
        const struct ncl_layer *l = &g->layers[i];
        struct ncl_shape out = l->y->shape;
        out.n = batch;
        uint64_t n = tensor_floats(out);
        acts += n + l->aux_bytes / sizeof(float) * (uint64_t)batch / (uint64_t)g->input.shape.n;
        if (n > max_act)
            max_act = n;
        if (l->workspace_floats > workspace)
            workspace = l->workspace_floats;
    }
    return 4 * (3 * params + in_floats + acts + 2 * max_act + workspace + (uint64_t)batch);
}

/* Refuses, before allocating anything, a plan larger than the device's memory, with the batch
 * that would fit: a clear message instead of a failure deep inside an allocation. */
static enum ncl_status check_memory_plan(const struct ncl_graph *g)
{
    const struct ncl_device_info *d = &g->ctx->info;
    uint64_t need = planned_bytes(g, g->input.shape.n);
    if (need <= d->global_mem_bytes)
        return NCL_OK;
    if (planned_bytes(g, 1) > d->global_mem_bytes / 10 * 9)
        return ncl_fail(NCL_ERR_NO_MEMORY,
                        "one %dx%dx%d input needs %.1f MiB of device memory; %s has %.1f MiB: use a smaller input "
                        "size (--resize / --input)",
                        g->input.shape.c, g->input.shape.h, g->input.shape.w, planned_bytes(g, 1) / 1048576.0, d->name,
                        d->global_mem_bytes / 1048576.0);
    int fits = 1, too_big = g->input.shape.n;   /* the largest batch within 90% of memory */
    while (too_big - fits > 1) {
        int mid = fits + (too_big - fits) / 2;
        if (planned_bytes(g, mid) <= d->global_mem_bytes / 10 * 9)
            fits = mid;
        else
            too_big = mid;
    }
    return ncl_fail(NCL_ERR_NO_MEMORY,
                    "batch %d needs %.1f MiB of device memory; %s has %.1f MiB: use a smaller --batch (about %d fits)",
                    g->input.shape.n, need / 1048576.0, d->name, d->global_mem_bytes / 1048576.0, fits);
}

enum ncl_status ncl_graph_reserve(struct ncl_graph *g)
{
    if (g->reserved)
        return NCL_OK;
    if (g->layer_count == 0)
        return ncl_fail(NCL_ERR_ARG, "the graph has no layers");
    struct ncl_ctx *ctx = g->ctx;
    NCL_TRY(check_memory_plan(g));
    uint64_t total = 0;
    char what[96];
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

    size_t in_floats = tensor_floats(g->input.shape);
    NCL_TRY(ncl_buffer_create(ctx, in_floats * sizeof(float), "input batch", &g->input.buf));
    total += in_floats * sizeof(float);
    /* the input's own gradient (tests: want_input_grad) shares these buffers too */
    size_t max_act = in_floats, max_host = in_floats;
    for (int i = 0; i < g->layer_count; i++) {
        struct ncl_layer *l = &g->layers[i];
        size_t n = tensor_floats(l->y->shape);
        snprintf(what, sizeof what, "output of layer %s (%s)", l->name, l->ops->kind);
        NCL_TRY(ncl_buffer_create(ctx, n * sizeof(float), what, &l->y->buf));
        total += n * sizeof(float);
        if (n > max_act)
            max_act = n;
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
    for (int i = 0; i < 2; i++) {
        NCL_TRY(ncl_buffer_create(ctx, max_act * sizeof(float), "activation gradients", &g->grad_act[i]));
        total += max_act * sizeof(float);
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

    for (int i = 0; i < g->layer_count; i++) {
        struct ncl_layer *l = &g->layers[i];
        l->dx = g->grad_act[i % 2];
        l->dy = g->grad_act[(i + 1) % 2];
        if (l->ops->create_kernels) {
            enum ncl_status s = l->ops->create_kernels(l);
            if (s != NCL_OK)
                return ncl_fail_prefix(s, "layer %s (%s)", l->name, l->ops->kind);
        }
    }
    NCL_TRY(ncl_kernel_create(ctx, "loss.cl", "", "softmax_xent", &g->k_loss));
    NCL_TRY(ncl_kernel_create(ctx, "sgd.cl", "", "sgd_step", &g->k_sgd));
    NCL_TRY(ncl_kernel_create(ctx, "sgd.cl", "", "fill", &g->k_fill));
    g->reserved = 1;
    NCL_TRY(ncl_fill(g, g->grad_buf, 0, g->param_floats, 0.0f));
    NCL_TRY(ncl_fill(g, g->velocity_buf, 0, g->param_floats, 0.0f));
    NCL_TRY(ncl_graph_read_metrics(g, NULL, 1));
    return NCL_OK;
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
                             NCL_ARG(g->grad_act[g->layer_count % 2]),
                             NCL_ARG(zero),       NCL_ARG(g->metric_loss),
                             NCL_ARG(g->metric_counts)};
    return ncl_enqueue(g->ctx, g->k_loss, "softmax_xent", 1, &global, &local, 10, args);
}

enum ncl_status ncl_graph_backward(struct ncl_graph *g, int batch)
{
    NCL_TRY(check_batch(g, batch));
    if (g->profiling)
        NCL_TRY(mark(g, &g->bwd_events[g->layer_count]));
    for (int i = g->layer_count - 1; i >= 0; i--) {
        struct ncl_layer *l = &g->layers[i];
        enum ncl_status s = l->ops->backward(l, batch, i > 0 || g->want_input_grad);
        if (s != NCL_OK)
            return ncl_fail_prefix(s, "backward of layer %s (%s)", l->name, l->ops->kind);
        if (g->profiling)
            NCL_TRY(mark(g, &g->bwd_events[i]));
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
