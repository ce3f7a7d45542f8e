/* Which kernel variants a device runs (ncl_ctx_params.kernels "auto"): the CPU-shaped set (one
 * work-item per row or plane, the packed GEMM, Winograd) or the GPU-shaped one (one work-item
 * per element, CLBlast, im2col). Device type alone chooses badly: Mesa's rusticl runs a CPU
 * device with the CPU variants 8x slower than with the GPU ones (it vectorises across
 * work-items, which the CPU variants have few of). So:
 *   1. devices that were measured (the table below) take what measured fastest there;
 *   2. else the on-disk cache (runtime/tune/tune-cache.c) holds an earlier measurement;
 *   3. else one training step of nin-small (one 28x28 image) is timed with each set, after an
 *      untimed one that builds and first launches the kernels, and the faster is kept in the
 *      cache. The CPU set is given up on when its first forward pass takes 3x the GPU set's.
 * "measure" skips 1 and 2, so users can measure a device that the table names (tests/test-tune.c
 * skips only 1, to see the cache at work on PoCL). A device that ends long loops (llvmpipe,
 * ncl_device_loop_limit) never gets here: the CPU set's work-items loop over whole planes, so
 * it runs the GPU set (runtime/core/device.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tune-impl.h"

/* Measured: PoCL on x86 CPUs (docs/performance.md: the CPU variants are what make nincl faster
 * than PyTorch there), NVIDIA's OpenCL on the H200 (docs/gpu-runs/). */
static const struct {
    const char *platform, *type;
    int cpu_kernels;
} measured[] = {
    {"Portable Computing Language", "CPU", 1},
    {"NVIDIA CUDA", "GPU", 0},
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* One image: the sets differ by 5-13x where they differ at all, and a step of the slow one
 * must stay short (rusticl's packed GEMM makes a batch-1 step 10 s). */
enum { PROBE_BATCH = 1, PROBE_SIZE = 28 };

static enum ncl_status probe_forward(struct ncl_ctx *ctx, struct ncl_graph *g, double *ms)
{
    double t0 = now_ms();
    NCL_TRY(ncl_graph_forward(g, PROBE_BATCH, NCL_MODE_TRAIN, 0));
    NCL_TRY(ncl_ctx_finish(ctx));
    *ms = now_ms() - t0;
    return NCL_OK;
}

/* A training step (forward, loss, backward, SGD), waited for. */
static enum ncl_status probe_step(struct ncl_ctx *ctx, struct ncl_graph *g, double *ms)
{
    static const struct ncl_sgd_params sgd = {0.01f, 0, 0};
    double t0 = now_ms();
    NCL_TRY(ncl_graph_forward(g, PROBE_BATCH, NCL_MODE_TRAIN, 1));
    NCL_TRY(ncl_graph_loss(g, PROBE_BATCH));
    NCL_TRY(ncl_graph_backward(g, PROBE_BATCH));
    NCL_TRY(ncl_graph_sgd_step(g, &sgd));
    NCL_TRY(ncl_ctx_finish(ctx));
    *ms = now_ms() - t0;
    return NCL_OK;
}

/* nin-small with one variant set: the first forward pass (kernels built, first launches) in
 * *first_ms; then, unless that exceeded give_up_ms, a timed training step in *step_ms (else
 * *step_ms < 0). */
static enum ncl_status probe_variant(struct ncl_ctx *ctx, int cpu_kernels, double give_up_ms, double *first_ms,
                                     double *step_ms)
{
    ctx->cpu_kernels = cpu_kernels;
    *step_ms = -1;
    struct ncl_graph *g = NULL;
    NCL_TRY(ncl_model_build(ctx, "nin-small", (struct ncl_shape){PROBE_BATCH, 1, PROBE_SIZE, PROBE_SIZE}, &g));
    float x[PROBE_BATCH * PROBE_SIZE * PROBE_SIZE];
    int32_t labels[PROBE_BATCH];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (int i = 0; i < PROBE_BATCH; i++)
        labels[i] = i % 10;
    enum ncl_status s = ncl_graph_init_params(g, 1);
    if (s == NCL_OK)
        s = ncl_graph_write_input(g, x, PROBE_BATCH);
    if (s == NCL_OK)
        s = ncl_graph_write_labels(g, labels, PROBE_BATCH);
    if (s == NCL_OK)
        s = probe_forward(ctx, g, first_ms);
    double untimed;
    if (s == NCL_OK && *first_ms <= give_up_ms)
        s = probe_step(ctx, g, &untimed);   /* every backward kernel's first launch */
    if (s == NCL_OK && *first_ms <= give_up_ms)
        s = probe_step(ctx, g, step_ms);
    ncl_graph_free(g);
    return s;
}

enum ncl_status ncl_variant_choose(struct ncl_ctx *ctx, int use_table, int use_cache)
{
    for (size_t i = 0; use_table && i < sizeof measured / sizeof measured[0]; i++)
        if (strstr(ctx->info.platform_name, measured[i].platform) && strcmp(ctx->info.type, measured[i].type) == 0) {
            ctx->cpu_kernels = measured[i].cpu_kernels;
            snprintf(ctx->variant_how, sizeof ctx->variant_how, "the table of measured devices: %s %s",
                     measured[i].platform, measured[i].type);
            return NCL_OK;
        }
    char key[512], value[128];
    ncl_tune_key(ctx, key, sizeof key);
    int cpu;
    double cpu_ms, gpu_ms;   /* a training step; cpu_ms < 0: given up on after its forward pass */
    if (use_cache && ncl_tune_cache_get(ctx, key, "kernels", value, sizeof value) &&
        sscanf(value, "%d %lf %lf", &cpu, &cpu_ms, &gpu_ms) == 3 && (cpu == 0 || cpu == 1)) {
        ctx->cpu_kernels = cpu;
        snprintf(ctx->variant_how, sizeof ctx->variant_how, "measured on this device earlier (tuning cache): cpu %s%.1f ms, "
                 "gpu %.1f ms a step", cpu_ms < 0 ? "over " : "", cpu_ms < 0 ? -cpu_ms : cpu_ms, gpu_ms);
        return NCL_OK;
    }
    char path[4096] = "(no cache folder)";
    ncl_tune_cache_path(path, sizeof path);
    ncl_ctx_warn(ctx, "measuring which kernel variants run faster on %s (%s), once: a few seconds; kept in %s",
                 ctx->info.name, ctx->info.platform_name, path);
    /* the GPU set first (the safer default off the table); the CPU set is given up on when its
       first forward pass takes 3x the GPU set's (both first launches: PoCL compiles each kernel
       for its work-group size there, so a warm step would not be a fair yardstick) */
    double gpu_first, cpu_first;
    NCL_TRY(probe_variant(ctx, 0, 1e300, &gpu_first, &gpu_ms));
    NCL_TRY(probe_variant(ctx, 1, 3 * gpu_first, &cpu_first, &cpu_ms));
    ctx->cpu_kernels = cpu_ms >= 0 && cpu_ms < gpu_ms;
    if (cpu_ms >= 0)
        snprintf(ctx->variant_how, sizeof ctx->variant_how,
                 "measured on this device: cpu %.1f ms, gpu %.1f ms a step", cpu_ms, gpu_ms);
    else
        snprintf(ctx->variant_how, sizeof ctx->variant_how,
                 "measured on this device: cpu given up on (first forward pass %.1f ms, gpu's %.1f ms), gpu %.1f "
                 "ms a step", cpu_first, gpu_first, gpu_ms);
    snprintf(value, sizeof value, "%d %.3f %.3f", ctx->cpu_kernels, cpu_ms >= 0 ? cpu_ms : -cpu_first, gpu_ms);
    ncl_tune_cache_put(ctx, key, "kernels", value);
    return NCL_OK;
}
