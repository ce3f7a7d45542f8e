/* nincl bench: training-step and inference images/s, per-layer device times from OpenCL
 * profiling events, GFLOP/s, start-up time and device memory, as text or one JSON object.
 * Every timer stops after clFinish. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-parallel.h"
#include "cold-cache.h"
#include "commands.h"
#include "flags.h"
#include "run-util.h"

/* Whether a set of profiled device times of one training step can be shown. Some drivers give
 * no times, or stamp start and end together when a command is submitted, not when it runs:
 * Mesa's rusticl 22.3 on llvmpipe sums a 6 s step's kernels to under 0.1 ms. A step's device
 * times below 1% of its wall time (step_ms) are such stamps: unavailable, not 0.00 ms. */
static int times_usable(double sum_ms, double step_ms)
{
    return sum_ms > 0 && sum_ms >= 0.01 * step_ms;
}

static double sum_ms(const double *ms, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += ms[i] > 0 ? ms[i] : 0;
    return sum;
}

/* "%11.2f" of ms, or "n/a" right-aligned in the same width */
static void print_ms(int usable, double ms)
{
    if (usable && ms >= 0)
        printf(" %11.2f", ms);
    else
        printf(" %11s", "n/a");
}

/* a JSON number with three decimals, or null */
static void json_ms(const char *key, int usable, double ms)
{
    if (usable && ms >= 0)
        printf("\"%s\": %.3f", key, ms);
    else
        printf("\"%s\": null", key);
}

static double timed_steps(struct ncl_ctx *ctx, struct ncl_graph *g, int batch, int steps, int train,
                          enum ncl_status *s)
{
    struct ncl_sgd_params sgd = {0.01f, 0, 0};
    double t0 = now_seconds();
    for (int i = 0; i < steps && *s == NCL_OK; i++) {
        *s = ncl_graph_forward(g, batch, train ? NCL_MODE_TRAIN : NCL_MODE_EVAL, (uint64_t)i);
        if (*s == NCL_OK && train)
            *s = ncl_graph_loss(g, batch);
        if (*s == NCL_OK && train)
            *s = ncl_graph_backward(g, batch);
        if (*s == NCL_OK && train)
            *s = ncl_graph_sgd_step(g, &sgd);
    }
    if (*s == NCL_OK)
        *s = ncl_ctx_finish(ctx);
    return now_seconds() - t0;
}

int cmd_bench(int argc, char **argv)
{
    struct device_flags df = {0};
    const char *model = "nin";
    const char *devices = NULL, *split = "even", *overlap = "auto", *data = DEFAULT_DATA_DIR;
    float bucket_mb = 0;
    int batch = 128, resize = 0, steps = 3, warmup = 1, json = 0, cold = 0;
    struct flag flags[] = {
        {"model", FLAG_STRING, &model, "model: nin, nin-small, lenet, lenet-bn, alexnet, vgg11, googlenet, resnet18, densenet or an .onnx file", 0, 0, 0, 0},
        {"batch", FLAG_INT, &batch, "batch size", 1, 65536, 0, 0},
        {"resize", FLAG_INT, &resize, "input size (0: 224 for nin, 28 for nin-small)", 0, 4096, 0, 0},
        {"steps", FLAG_INT, &steps, "timed steps (training and inference each)", 1, 100000, 0, 0},
        {"warmup", FLAG_INT, &warmup, "untimed steps before timing", 0, 100000, 0, 0},
        {"json", FLAG_BOOL, &json, "print one JSON object instead of text", 0, 0, 0, 0},
        {"cold-cache", FLAG_BOOL, &cold, "start with an empty kernel cache (PoCL's, NVIDIA's): start-up then "
                                         "includes compiling every kernel", 0, 0, 0, 0},
        {"devices", FLAG_STRING, &devices,
         "data parallel: train on these replicas (as nincl train --devices; also under mpirun), on real data", 0, 0,
         0, 0},
        {"split", FLAG_STRING, &split, "with --devices: even or auto", 0, 0, 0, 0},
        OVERLAP_FLAGS(overlap, bucket_mb),
        {"data", FLAG_STRING, &data, "with --devices: folder with the Fashion-MNIST IDX files", 0, 0, 0, 0},
        DEVICE_FLAGS(df),
    };
    int rc = flags_parse("bench", "Measure training and inference speed, per-layer times, start-up and memory.", flags,
                         sizeof flags / sizeof flags[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (devices || getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK")) {
        struct parallel_bench pb = {model, devices, split, overlap, data, bucket_mb, batch, resize, steps, json,
                                    {.platform = df.platform, .device = df.device, .kernel_dir = df.kernel_dir,
                                     .gemm = df.gemm, .conv = df.conv, .kernels = df.kernels}};
        return bench_parallel(&pb);
    }
    if (!resize)
        resize = ncl_model_input_size(model);

    char cold_dir[4096] = "";
    if (cold && cold_cache_begin(cold_dir, sizeof cold_dir) != 0)
        return EXIT_FAILURE_RUNTIME;
    double t0 = now_seconds();
    struct ncl_ctx *ctx = NULL;
    if ((rc = open_device(&df, 1, &ctx)) >= 0) {
        cold_cache_end(cold_dir);
        return rc;
    }
    double t_ctx = now_seconds();
    struct ncl_graph *g = NULL;
    enum ncl_status s = ncl_model_build(ctx, model, (struct ncl_shape){batch, 1, resize, resize}, &g);
    size_t in_count = (size_t)batch * resize * resize;
    float *x = s == NCL_OK ? malloc(in_count * sizeof *x) : NULL;
    int32_t *labels = s == NCL_OK ? malloc((size_t)batch * sizeof *labels) : NULL;
    if (s == NCL_OK && (!x || !labels))
        s = NCL_ERR_NO_MEMORY;
    for (size_t i = 0; x && i < in_count; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (int i = 0; labels && i < batch; i++)
        labels[i] = i % 10;
    if (s == NCL_OK)
        s = ncl_graph_init_params(g, 1);
    if (s == NCL_OK)
        s = ncl_graph_write_input(g, x, batch);
    if (s == NCL_OK)
        s = ncl_graph_write_labels(g, labels, batch);
    if (s == NCL_OK)
        s = ncl_ctx_finish(ctx);
    double t_build = now_seconds();
    double first_step = s == NCL_OK ? timed_steps(ctx, g, batch, 1, 1, &s) : 0;
    double startup = now_seconds() - t0;
    if (s == NCL_OK && warmup > 1)
        timed_steps(ctx, g, batch, warmup - 1, 1, &s);
    double train_s = s == NCL_OK ? timed_steps(ctx, g, batch, steps, 1, &s) : 0;
    if (s == NCL_OK && warmup > 0)
        timed_steps(ctx, g, batch, 1, 0, &s);
    double infer_s = s == NCL_OK ? timed_steps(ctx, g, batch, steps, 0, &s) : 0;

    int layers = g ? ncl_graph_layer_count(g) : 0;
    double *fwd = calloc((size_t)layers + 1, sizeof *fwd), *bwd = calloc((size_t)layers + 1, sizeof *bwd);
    if (s == NCL_OK && (!fwd || !bwd))
        s = NCL_ERR_NO_MEMORY;
    struct ncl_kernel_time kt[64];
    int kernels = 0;
    double gap_ms = 0, profiled_ms = 0;
    if (s == NCL_OK) {   /* one more training step with a marker after every layer */
        ncl_graph_set_profiling(g, 1);
        ncl_ctx_set_kernel_profiling(ctx, 1);
        profiled_ms = 1e3 * timed_steps(ctx, g, batch, 1, 1, &s);
        if (s == NCL_OK)
            s = ncl_graph_layer_times(g, fwd, bwd);
        if (s == NCL_OK)
            s = ncl_ctx_kernel_times(ctx, kt, 64, &kernels, &gap_ms);
        ncl_ctx_set_kernel_profiling(ctx, 0);
        ncl_graph_set_profiling(g, 0);
    }
    if (s != NCL_OK) {
        fprintf(stderr, "nincl bench: %s\n", ncl_last_error());
        rc = exit_code_for(s);
        goto done;
    }
    double flops_per_image = 0;
    for (int i = 0; i < layers; i++)
        flops_per_image += ncl_graph_layer_flops(g, i);
    /* training = forward + two backward GEMMs (input and weight gradients), the first layer
     * needs no input gradient */
    double train_flops = 3 * flops_per_image - (layers ? ncl_graph_layer_flops(g, 0) : 0);
    double train_ips = batch * steps / train_s, infer_ips = batch * steps / infer_s;
    unsigned long long peak = (unsigned long long)ncl_ctx_device_bytes(ctx) + ncl_graph_device_bytes(g);
    const char *device = ncl_ctx_device(ctx)->name, *variants_how = "";
    const char *variants = ncl_ctx_kernel_variants(ctx, &variants_how);
    double kernel_sum = 0;
    for (int i = 0; i < kernels; i++)
        kernel_sum += kt[i].ms > 0 ? kt[i].ms : 0;
    int layers_ok = times_usable(sum_ms(fwd, layers) + sum_ms(bwd, layers), profiled_ms),
        kernels_ok = times_usable(kernel_sum, profiled_ms);
    if (json) {
        printf("{\"framework\": \"nincl\", \"model\": \"%s\", \"device\": \"%s\", \"batch\": %d, \"resize\": %d, "
               "\"steps\": %d, \"train_images_per_sec\": %.2f, \"infer_images_per_sec\": %.2f, "
               "\"train_gflops_per_sec\": %.1f, \"infer_gflops_per_sec\": %.1f, \"startup_seconds\": %.3f, "
               "\"kernel_cache\": \"%s\", \"context_seconds\": %.3f, \"build_seconds\": %.3f, \"ready_seconds\": %.3f, "
               "\"first_step_seconds\": %.3f, \"kernel_variants\": \"%s\", \"kernel_variants_chosen\": \"%s\", "
               "\"peak_device_bytes\": %llu, \"layers\": [",
               model, device, batch, resize, steps, train_ips, infer_ips, train_ips * train_flops * 1e-9,
               infer_ips * flops_per_image * 1e-9, startup, cold ? "cold" : "as found", t_ctx - t0, t_build - t_ctx,
               t_build - t0, first_step, variants, variants_how, peak);
        for (int i = 0; i < layers; i++) {
            struct ncl_layer_info info;
            ncl_graph_layer_info(g, i, &info);
            printf("%s{\"name\": \"%s\", \"kind\": \"%s\", \"method\": \"%s\", ", i ? ", " : "", info.name,
                   info.kind, info.method);
            json_ms("forward_ms", layers_ok, fwd[i]);
            printf(", ");
            json_ms("backward_ms", layers_ok, bwd[i]);
            printf(", \"forward_gflop\": %.3f}", ncl_graph_layer_flops(g, i) * batch * 1e-9);
        }
        printf("], ");
        json_ms("gaps_between_kernels_ms", kernels_ok, gap_ms);
        printf(", \"kernels\": [");
        for (int i = 0; i < kernels; i++) {
            printf("%s{\"name\": \"%s\", \"calls\": %d, ", i ? ", " : "", kt[i].name, kt[i].calls);
            json_ms("ms", kernels_ok, kt[i].ms);
            printf("}");
        }
        printf("], \"profiling_times\": %s}\n", layers_ok && kernels_ok ? "true" : "false");
    } else {
        printf("nincl bench: %s, batch %d, %dx%d, on %s\n", model, batch, resize, resize, device);
        printf("kernel variants: %s (%s)\n", variants, variants_how);
        printf("start-up to the first step: %.3f s (context %.3f s, graph + kernels %.3f s; kernel cache %s); first "
               "training step %.3f s\n", t_build - t0, t_ctx - t0, t_build - t_ctx, cold ? "cold" : "as found",
               first_step);
        printf("training:  %.1f images/s (%.1f GFLOP/s, %.3f s per step)\n", train_ips,
               train_ips * train_flops * 1e-9, train_s / steps);
        printf("inference: %.1f images/s (%.1f GFLOP/s)\n", infer_ips, infer_ips * flops_per_image * 1e-9);
        printf("device memory: %.1f MiB\n\n", peak / 1048576.0);
        /* GFLOP/s count a convolution's direct arithmetic: above the device's peak where Winograd
         * does fewer multiplications */
        int name_w = 6;   /* the layer column as wide as the longest name (ONNX models' are long) */
        for (int i = 0; i < layers; i++) {
            struct ncl_layer_info info;
            ncl_graph_layer_info(g, i, &info);
            name_w = (int)strlen(info.name) > name_w ? (int)strlen(info.name) : name_w;
        }
        printf("%-*s %-18s %-9s %11s %11s %9s %9s\n", name_w, "layer", "kind", "method", "forward ms", "backward ms",
               "fwd GF/s", "bwd GF/s");
        double tf = 0, tb = 0;
        for (int i = 0; i < layers; i++) {
            struct ncl_layer_info info;
            ncl_graph_layer_info(g, i, &info);
            double fl = ncl_graph_layer_flops(g, i) * batch;
            double bfl = i ? 2 * fl : fl;
            printf("%-*s %-18s %-9s", name_w, info.name, info.kind, info.method);
            print_ms(layers_ok, fwd[i]);
            print_ms(layers_ok, bwd[i]);
            if (layers_ok)
                printf(" %9.1f %9.1f\n", fwd[i] > 0 ? fl / fwd[i] * 1e-6 : 0, bwd[i] > 0 ? bfl / bwd[i] * 1e-6 : 0);
            else
                printf(" %9s %9s\n", "n/a", "n/a");
            tf += fwd[i] > 0 ? fwd[i] : 0;
            tb += bwd[i] > 0 ? bwd[i] : 0;
        }
        printf("%-*s %-18s %-9s", name_w, "total", "", "");
        print_ms(layers_ok, tf);
        print_ms(layers_ok, tb);
        printf("\n");
        if (!layers_ok)
            printf("(per-layer times unavailable: %s gives no usable profiling times for markers)\n", device);
        printf("\n%-24s %6s %11s %6s\n", "kernel (same step)", "calls", "ms", "share");
        double tk = 0;
        for (int i = 0; i < kernels; i++)
            tk += kt[i].ms;
        for (int i = 0; i < kernels; i++) {
            printf("%-24s %6d", kt[i].name, kt[i].calls);
            print_ms(kernels_ok, kt[i].ms);
            if (kernels_ok)
                printf(" %5.1f%%\n", 100 * kt[i].ms / tk);
            else
                printf(" %6s\n", "n/a");
        }
        printf("%-24s %6s", "gaps", "");
        print_ms(kernels_ok, gap_ms);
        printf("   (between one kernel's end and the next one's start)\n");
        if (!kernels_ok)
            printf("(per-kernel times unavailable: %s gives no usable profiling times for kernels)\n", device);
    }
    rc = EXIT_OK;
done:
    free(fwd);
    free(bwd);
    free(x);
    free(labels);
    ncl_graph_free(g);
    ncl_ctx_free(ctx);
    cold_cache_end(cold_dir);
    return rc;
}
