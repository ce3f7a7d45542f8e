/* Non-trained state of the graph (BatchNorm running statistics) from the host: checkpoints
 * and tests. Floats live in g->state_buf; num_batches_tracked is a host counter of its layer. */
#include <stdio.h>
#include <string.h>

#include "graph-impl.h"

int ncl_graph_state_count(const struct ncl_graph *g)
{
    return g->state_count;
}

void ncl_graph_state_info(const struct ncl_graph *g, int i, struct ncl_param_info *info)
{
    const struct ncl_param *p = &g->states[i];
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", p->name);
    info->ndim = p->ndim;
    memcpy(info->dims, p->dims, sizeof info->dims);
    info->count = p->count;
    info->is_i64 = p->is_i64;
}

static enum ncl_status state_io(struct ncl_graph *g, int i, void *host, int write)
{
    if (!g->reserved)
        return ncl_fail(NCL_ERR_ARG, "the graph is not reserved");
    if (i < 0 || i >= g->state_count)
        return ncl_fail(NCL_ERR_ARG, "state index %d outside 0..%d", i, g->state_count - 1);
    const struct ncl_param *p = &g->states[i];
    if (p->is_i64) {
        int64_t *counter = &g->layers[p->layer].batches_tracked;
        NCL_TRY(ncl_ctx_finish(g->ctx));   /* the counter moves with forwards already enqueued */
        if (write)
            memcpy(counter, host, sizeof *counter);
        else
            memcpy(host, counter, sizeof *counter);
        return NCL_OK;
    }
    size_t off = p->offset * sizeof(float), bytes = p->count * sizeof(float);
    cl_int err = write ? clEnqueueWriteBuffer(g->ctx->queue, g->state_buf, CL_TRUE, off, bytes, host, 0, NULL, NULL)
                       : clEnqueueReadBuffer(g->ctx->queue, g->state_buf, CL_TRUE, off, bytes, host, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return ncl_cl_fail(err, write ? "writing a running statistic" : "reading a running statistic");
    return NCL_OK;
}

enum ncl_status ncl_graph_read_state(struct ncl_graph *g, int i, void *host)
{
    return state_io(g, i, host, 0);
}

enum ncl_status ncl_graph_write_state(struct ncl_graph *g, int i, const void *host)
{
    return state_io(g, i, (void *)host, 1);
}
