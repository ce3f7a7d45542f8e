/* A data set on the device: uint8 images and labels uploaded once (47 MB for Fashion-MNIST's
 * training set), an epoch's order uploaded once per epoch, and each batch produced by one
 * gather-resize kernel into the graph's input. A step therefore moves nothing between host
 * and device. */
#include <stdlib.h>

#include "graph-impl.h"

struct ncl_device_data {
    struct ncl_ctx *ctx;
    int64_t count;
    int rows, cols;
    cl_mem images, labels, order;
    int64_t order_count;
    cl_kernel k_resize, k_labels;
};

void ncl_device_data_free(struct ncl_device_data *d)
{
    if (!d)
        return;
    if (d->images)
        clReleaseMemObject(d->images);
    if (d->labels)
        clReleaseMemObject(d->labels);
    if (d->order)
        clReleaseMemObject(d->order);
    if (d->k_resize)
        clReleaseKernel(d->k_resize);
    if (d->k_labels)
        clReleaseKernel(d->k_labels);
    free(d);
}

static enum ncl_status upload(struct ncl_ctx *ctx, const void *host, size_t bytes, const char *what, cl_mem *out)
{
    NCL_TRY(ncl_buffer_create(ctx, bytes, what, out));
    NCL_CL_TRY(clEnqueueWriteBuffer(ctx->queue, *out, CL_TRUE, 0, bytes, host, 0, NULL, NULL), what);
    return NCL_OK;
}

enum ncl_status ncl_device_data_create(struct ncl_ctx *ctx, const struct ncl_dataset *ds,
                                       struct ncl_device_data **out)
{
    *out = NULL;
    if (ds->count < 1 || ds->rows < 1 || ds->cols < 1 || ds->count > INT32_MAX)
        return ncl_fail(NCL_ERR_ARG, "empty or oversized data set");
    struct ncl_device_data *d = calloc(1, sizeof *d);
    if (!d)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    d->ctx = ctx;
    d->count = ds->count;
    d->rows = ds->rows;
    d->cols = ds->cols;
    size_t pixels = (size_t)ds->count * ds->rows * ds->cols;
    enum ncl_status s = upload(ctx, ds->images, pixels, "uploading the data set's images", &d->images);
    if (s == NCL_OK)
        s = upload(ctx, ds->labels, (size_t)ds->count, "uploading the data set's labels", &d->labels);
    if (s == NCL_OK)
        s = ncl_buffer_create(ctx, (size_t)ds->count * sizeof(int32_t), "the epoch order", &d->order);
    if (s == NCL_OK)
        s = ncl_kernel_create(ctx, "data.cl", "", "resize_bilinear_u8", &d->k_resize);
    if (s == NCL_OK)
        s = ncl_kernel_create(ctx, "data.cl", "", "gather_labels", &d->k_labels);
    if (s != NCL_OK) {
        ncl_device_data_free(d);
        return s;
    }
    *out = d;
    return NCL_OK;
}

enum ncl_status ncl_device_data_set_order(struct ncl_device_data *d, const int32_t *order, int64_t count)
{
    if (count < 1 || count > d->count)
        return ncl_fail(NCL_ERR_ARG, "order of %lld examples for a data set of %lld", (long long)count,
                        (long long)d->count);
    for (int64_t i = 0; i < count; i++)
        if (order[i] < 0 || order[i] >= d->count)
            return ncl_fail(NCL_ERR_ARG, "order[%lld] = %d is outside the data set", (long long)i, (int)order[i]);
    NCL_CL_TRY(clEnqueueWriteBuffer(d->ctx->queue, d->order, CL_TRUE, 0, (size_t)count * sizeof(int32_t), order, 0,
                                    NULL, NULL),
               "uploading the epoch order");
    d->order_count = count;
    return NCL_OK;
}

enum ncl_status ncl_graph_load_batch(struct ncl_graph *g, struct ncl_device_data *d, int64_t first, int batch)
{
    struct ncl_shape in = g->input.shape;
    if (batch < 1 || batch > in.n || first < 0 || first + batch > d->order_count)
        return ncl_fail(NCL_ERR_ARG, "batch [%lld, %lld) is outside the order (%lld examples) or the graph's maximum "
                                     "batch %d",
                        (long long)first, (long long)first + batch, (long long)d->order_count, in.n);
    if (in.c != 1)
        return ncl_fail(NCL_ERR_SHAPE, "the data set has 1 channel, the model takes %d", in.c);
    cl_ulong f = (cl_ulong)first;
    struct ncl_arg args[] = {NCL_ARG(d->images), NCL_ARG(d->rows), NCL_ARG(d->cols), NCL_ARG(d->order), NCL_ARG(f),
                             NCL_ARG(batch),     NCL_ARG(in.h),    NCL_ARG(in.w),    NCL_ARG(g->input.buf)};
    NCL_TRY(ncl_launch(g->ctx, d->k_resize, "resize_bilinear_u8", (size_t)in.h * in.w, (size_t)batch, 9, args));
    struct ncl_arg largs[] = {NCL_ARG(d->labels), NCL_ARG(d->order), NCL_ARG(f), NCL_ARG(batch), NCL_ARG(g->labels)};
    return ncl_launch(g->ctx, d->k_labels, "gather_labels", (size_t)batch, 0, 5, largs);
}

/* Fisher-Yates with splitmix64 seeded by (seed, epoch): the same order on every machine. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ncl_epoch_order(uint64_t seed, int epoch, int32_t *order, int64_t count)
{
    uint64_t state = seed * 0x100000001B3ull + (uint64_t)epoch;
    for (int64_t i = 0; i < count; i++)
        order[i] = (int32_t)i;
    for (int64_t i = count - 1; i > 0; i--) {   /* Fisher-Yates */
        int64_t j = (int64_t)(splitmix64(&state) % (uint64_t)(i + 1));
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

