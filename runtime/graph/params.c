/* Parameter access from the host (checkpoints, tests) and their initialisation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph-impl.h"

int ncl_graph_param_count(const struct ncl_graph *g)
{
    return g->param_count;
}

void ncl_graph_param_info(const struct ncl_graph *g, int i, struct ncl_param_info *info)
{
    const struct ncl_param *p = &g->params[i];
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", p->name);
    info->ndim = p->ndim;
    memcpy(info->dims, p->dims, sizeof info->dims);
    info->count = p->count;
}

static enum ncl_status arena_io(struct ncl_graph *g, cl_mem arena, int i, float *host, int write)
{
    if (!g->reserved)
        return ncl_fail(NCL_ERR_ARG, "the graph is not reserved");
    if (i < 0 || i >= g->param_count)
        return ncl_fail(NCL_ERR_ARG, "parameter index %d outside 0..%d", i, g->param_count - 1);
    const struct ncl_param *p = &g->params[i];
    size_t off = p->offset * sizeof(float), bytes = p->count * sizeof(float);
    cl_int err = write ? clEnqueueWriteBuffer(g->ctx->queue, arena, CL_TRUE, off, bytes, host, 0, NULL, NULL)
                       : clEnqueueReadBuffer(g->ctx->queue, arena, CL_TRUE, off, bytes, host, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return ncl_cl_fail(err, write ? "writing a parameter" : "reading a parameter");
    return NCL_OK;
}

enum ncl_status ncl_graph_read_param(struct ncl_graph *g, int i, float *host)
{
    return arena_io(g, g->param_buf, i, host, 0);
}

enum ncl_status ncl_graph_write_param(struct ncl_graph *g, int i, const float *host)
{
    return arena_io(g, g->param_buf, i, (float *)host, 1);
}

enum ncl_status ncl_graph_read_grad(struct ncl_graph *g, int i, float *host)
{
    return arena_io(g, g->grad_buf, i, host, 0);
}

enum ncl_status ncl_graph_read_velocity(struct ncl_graph *g, int i, float *host)
{
    return arena_io(g, g->velocity_buf, i, host, 0);
}

enum ncl_status ncl_graph_write_velocity(struct ncl_graph *g, int i, const float *host)
{
    g->momentum_started = 1;
    return arena_io(g, g->velocity_buf, i, (float *)host, 1);
}

int ncl_graph_momentum_started(const struct ncl_graph *g)
{
    return g->momentum_started;
}

/* splitmix64: a small, well-mixed generator; initialisation needs reproducibility, not speed. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *state, float bound)
{
    double u = (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);   /* [0, 1) */
    return (float)((2.0 * u - 1.0) * bound);
}

enum ncl_status ncl_graph_init_params(struct ncl_graph *g, uint64_t seed)
{
    if (!g->reserved)
        return ncl_fail(NCL_ERR_ARG, "the graph is not reserved");
    uint64_t state = seed;
    for (int i = 0; i < g->param_count; i++) {
        const struct ncl_param *p = &g->params[i];
        /* d2l: xavier_uniform_ on weights; biases keep PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
         * Kaiming (nin-small): kaiming_uniform_(nonlinearity="relu") weights, zero biases. */
        float bound = p->is_bias ? 1.0f / sqrtf((float)p->fan_in) : sqrtf(6.0f / (float)(p->fan_in + p->fan_out));
        if (g->init_kaiming)
            bound = p->is_bias ? 0.0f : sqrtf(6.0f / (float)p->fan_in);
        if (p->init_const) {   /* BatchNorm: weight 1, bias 0; draws nothing, so other layers' draws stay */
            NCL_TRY(ncl_fill(g, g->param_buf, p->offset, p->count, p->init_value));
            continue;
        }
        /* the staging area holds the largest activation, normally far more than any parameter */
        float *host = g->host_staging, *buf = NULL;
        if (p->count > g->host_staging_floats) {
            host = buf = malloc(p->count * sizeof(float));
            if (!buf)
                return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        }
        for (size_t j = 0; j < p->count; j++)
            host[j] = uniform(&state, bound);
        enum ncl_status s = ncl_graph_write_param(g, i, host);
        free(buf);
        NCL_TRY(s);
    }
    g->momentum_started = 0;
    NCL_TRY(ncl_graph_reset_states(g));
    NCL_TRY(ncl_fill(g, g->velocity_buf, 0, g->param_floats, 0.0f));
    return ncl_fill(g, g->grad_buf, 0, g->param_floats, 0.0f);
}
