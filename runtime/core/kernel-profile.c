/* Per-kernel device times (nincl bench): while on, ncl_enqueue keeps each launch's event and
 * ncl_ctx_kernel_times sums them by kernel name. Off by default: an event per launch costs a
 * little host time and memory. GEMMs run by CLBlast are not seen here (their time shows in
 * the per-layer profile). */
#include <stdlib.h>
#include <string.h>

#include "ctx-impl.h"

static void drop_events(struct ncl_ctx *ctx)
{
    for (int i = 0; i < ctx->kprof_count; i++)
        clReleaseEvent(ctx->kprof[i].event);
    ctx->kprof_count = 0;
}

void ncl_ctx_set_kernel_profiling(struct ncl_ctx *ctx, int on)
{
    drop_events(ctx);
    if (!on) {
        free(ctx->kprof);
        ctx->kprof = NULL;
        ctx->kprof_cap = 0;
    }
    ctx->kprof_on = on && ctx->profile;
}

cl_event *ncl_kernel_profile_slot(struct ncl_ctx *ctx, const char *name)
{
    if (!ctx->kprof_on)
        return NULL;
    if (ctx->kprof_count == ctx->kprof_cap) {
        int cap = ctx->kprof_cap ? 2 * ctx->kprof_cap : 256;
        void *p = realloc(ctx->kprof, (size_t)cap * sizeof *ctx->kprof);
        if (!p)
            return NULL;   /* profiling is best effort: the launch still runs */
        ctx->kprof = p;
        ctx->kprof_cap = cap;
    }
    ctx->kprof[ctx->kprof_count].name = name;
    ctx->kprof[ctx->kprof_count].event = NULL;
    return &ctx->kprof[ctx->kprof_count].event;
}

void ncl_kernel_profile_commit(struct ncl_ctx *ctx, cl_event *slot)
{
    if (slot && *slot)
        ctx->kprof_count++;
}

enum ncl_status ncl_ctx_kernel_times(struct ncl_ctx *ctx, struct ncl_kernel_time *out, int max, int *count,
                                     double *gap_ms)
{
    *count = 0;
    if (gap_ms)
        *gap_ms = 0;
    NCL_TRY(ncl_ctx_finish(ctx));
    cl_ulong prev_end = 0;   /* the queue is in order: launch i + 1 starts after launch i ends */
    for (int i = 0; i < ctx->kprof_count; i++) {
        cl_ulong t0 = 0, t1 = 0;
        cl_event e = ctx->kprof[i].event;
        if (clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) != CL_SUCCESS ||
            clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) != CL_SUCCESS)
            continue;
        if (gap_ms && prev_end && t0 > prev_end)
            *gap_ms += (double)(t0 - prev_end) * 1e-6;
        prev_end = t1;
        int j = 0;
        while (j < *count && strcmp(out[j].name, ctx->kprof[i].name) != 0)
            j++;
        if (j == *count) {
            if (*count == max)
                continue;
            out[j] = (struct ncl_kernel_time){.name = ctx->kprof[i].name};
            (*count)++;
        }
        out[j].calls++;
        out[j].ms += (double)(t1 - t0) * 1e-6;
    }
    drop_events(ctx);
    /* longest first */
    for (int a = 1; a < *count; a++)
        for (int b = a; b > 0 && out[b].ms > out[b - 1].ms; b--) {
            struct ncl_kernel_time t = out[b];
            out[b] = out[b - 1];
            out[b - 1] = t;
        }
    return NCL_OK;
}
