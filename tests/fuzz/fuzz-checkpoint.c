/* libFuzzer target for the checkpoint loader at the graph level (ncl_checkpoint_load on a real
 * graph on the OpenCL device present, PoCL in CI). The graph is tiny so a run stays fast:
 * Conv2d(1->2, 3x3, pad 1) "0.0", global average pool, Flatten, Linear(2->3) "3", whose
 * parameters are 0.0.weight [2,1,3,3], 0.0.bias [2], 3.weight [3,2], 3.bias [3].
 *
 * Input: a 4-byte little-endian length L, then L bytes of checkpoint file, then (if any bytes
 * are left) the optimizer file beside it (<stem>.optimizer.safetensors). Contract checked:
 *  - a refusal names one of the files in its message;
 *  - an accepted load leaves the parameters bit-identical to the file's tensors (all finite),
 *    the gradients zero, and the momentum equal to the optimizer file's tensors when the
 *    checkpoint says momentum_state "1" (that file then exists with the same "step"), else
 *    zero and not started;
 *  - *meta receives the file on success (same tensors and metadata), then is freed.
 * Build and run: tests/fuzz/run.sh (CMake targets under -DNINCL_FUZZ=ON with clang). */
#include "nincl.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct ncl_ctx *ctx;
static struct ncl_graph *graph;
static char stem[128], path[160], opt_path[200], pending_path[220];
static float host[64], host2[64];
static int verbose;   /* $FUZZ_VERBOSE: say what became of each input (to check the seeds) */

static void remove_temps(void)
{
    remove(path);
    remove(opt_path);
    remove(pending_path);
    ncl_graph_free(graph);
    ncl_ctx_free(ctx);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz-checkpoint: %s: %s\n", what, ncl_last_error());
    exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(stem, sizeof stem, "%s/fuzz-ckpt-%ld", tmp && strlen(tmp) < 64 ? tmp : "/tmp", (long)getpid());
    snprintf(path, sizeof path, "%s.safetensors", stem);
    ncl_checkpoint_optimizer_path(path, opt_path, sizeof opt_path);
    /* where an interrupted save leaves the momentum (runtime/io/checkpoint.c); never written here */
    snprintf(pending_path, sizeof pending_path, "%s.pending", opt_path);
    if (ncl_ctx_create(NULL, &ctx) != NCL_OK)
        die("no OpenCL device");
    if (ncl_graph_create(ctx, (struct ncl_shape){1, 1, 4, 4}, &graph) != NCL_OK ||
        ncl_graph_add_conv(graph, "0.0", 0, "Sequential", (struct ncl_conv_params){2, 3, 1, 1, 1}) != NCL_OK ||
        ncl_graph_add_global_avgpool(graph, "1", 1, "AdaptiveAvgPool2d") != NCL_OK ||
        ncl_graph_add_flatten(graph, "2", 2, "Flatten") != NCL_OK ||
        ncl_graph_add_linear(graph, "3", 3, "Linear", 3, 0) != NCL_OK || ncl_graph_reserve(graph) != NCL_OK)
        die("building the graph");
    for (int i = 0; i < ncl_graph_param_count(graph); i++) {
        struct ncl_param_info info;
        ncl_graph_param_info(graph, i, &info);
        if (info.count > sizeof host / sizeof host[0])
            die("a parameter is larger than the fuzzer's buffers");
    }
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    atexit(remove_temps);
    return 0;
}

static int write_file(const char *p, const uint8_t *data, size_t size)
{
    FILE *f = fopen(p, "wb");
    if (!f)
        return 0;
    size_t written = fwrite(data, 1, size, f);
    return fclose(f) == 0 && written == size;
}

/* The graph's tensor i (parameter or velocity) must hold exactly `want` (NULL: zeros). */
static void expect_tensor(int i, int velocity, const struct ncl_st_tensor *want)
{
    struct ncl_param_info info;
    ncl_graph_param_info(graph, i, &info);
    if ((velocity ? ncl_graph_read_velocity(graph, i, host) : ncl_graph_read_param(graph, i, host)) != NCL_OK)
        die("reading back");
    if (want) {
        if (memcmp(host, want->data, info.count * sizeof(float)) != 0) {
            fprintf(stderr, "%s %s differs from the file after a successful load\n", info.name,
                    velocity ? "momentum" : "value");
            abort();
        }
    } else {
        memset(host2, 0, sizeof host2);
        if (memcmp(host, host2, info.count * sizeof(float)) != 0) {
            fprintf(stderr, "%s momentum is not zero after loading a checkpoint without momentum\n", info.name);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    remove(pending_path);
    size_t len = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
    data += 4, size -= 4;
    if (len > size)
        len = size;
    remove(opt_path);
    if (!write_file(path, data, len) || (size > len && !write_file(opt_path, data + len, size - len)))
        return 0;

    struct ncl_st_file meta;
    enum ncl_status s = ncl_checkpoint_load(graph, path, &meta);
    if (verbose)
        fprintf(stderr, "load: %s%s%s, momentum %d\n", ncl_status_str(s), s ? ": " : "", s ? ncl_last_error() : "",
                ncl_graph_momentum_started(graph));
    if (s != NCL_OK) {
        if (!strstr(ncl_last_error(), stem)) {
            fprintf(stderr, "the refusal does not name the file: %s\n", ncl_last_error());
            abort();
        }
        return 0;
    }
    /* Accepted: compare against independent reads of the same files. */
    struct ncl_st_file f, o = {0};
    if (ncl_st_read(path, &f) != NCL_OK)
        die("re-reading an accepted checkpoint");
    const char *state = ncl_st_meta(&f, "momentum_state");
    int momentum = state && strcmp(state, "1") == 0;
    if (momentum) {
        const char *a = ncl_st_meta(&f, "step"), *b;
        if (size == len || ncl_st_read(opt_path, &o) != NCL_OK || !a || !(b = ncl_st_meta(&o, "step")) ||
            strcmp(a, b) != 0) {
            fprintf(stderr, "accepted a checkpoint with momentum_state 1 without the momentum of its step\n");
            abort();
        }
    }
    if (ncl_graph_momentum_started(graph) != momentum) {
        fprintf(stderr, "momentum started = %d, but the checkpoint's momentum_state is %s\n",
                ncl_graph_momentum_started(graph), state ? state : "absent");
        abort();
    }
    if (meta.count != f.count || meta.meta_count != f.meta_count)
        abort();
    for (int i = 0; i < f.meta_count; i++) {
        const char *v = ncl_st_meta(&meta, f.meta_keys[i]);
        if (!v || strcmp(v, f.meta_values[i]) != 0)
            abort();
    }
    for (int i = 0; i < ncl_graph_param_count(graph); i++) {
        struct ncl_param_info info;
        ncl_graph_param_info(graph, i, &info);
        const struct ncl_st_tensor *t = ncl_st_find(&f, info.name);
        if (!t)
            abort();   /* accepted without one of the model's tensors */
        for (size_t k = 0; k < info.count; k++)
            if (!isfinite(t->data[k]))
                abort();   /* accepted a NaN or infinite parameter */
        expect_tensor(i, 0, t);
        const struct ncl_st_tensor *v = momentum ? ncl_st_find(&o, info.name) : NULL;
        if (momentum && !v)
            abort();   /* momentum accepted without one of the model's tensors */
        expect_tensor(i, 1, v);
        if (ncl_graph_read_grad(graph, i, host) != NCL_OK)
            die("reading a gradient");
        memset(host2, 0, sizeof host2);
        if (memcmp(host, host2, info.count * sizeof(float)) != 0)
            abort();   /* a load zeroes the gradients */
    }
    ncl_st_free(&o);
    ncl_st_free(&f);
    ncl_st_free(&meta);
    return 0;
}
