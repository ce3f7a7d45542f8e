/* onnx-run MODEL CHECKPOINT|- SIZE IN.f32 N OUT.f32: eval-mode logits of N images of 1 x SIZE x
 * SIZE raw float32 (NCHW) through MODEL (a built-in name or an .onnx file) holding CHECKPOINT's
 * parameters ("-": as built: an .onnx file's own weights), written as raw float32 [N, classes].
 * tests/onnx-cli.py runs a checkpoint and its export through it and through OpenCV's dnn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nincl.h"

static int fail(const char *what)
{
    fprintf(stderr, "onnx-run: %s: %s\n", what, ncl_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: onnx-run MODEL CHECKPOINT|- SIZE IN.f32 N OUT.f32\n");
        return 2;
    }
    int size = atoi(argv[3]), n = atoi(argv[5]);
    if (size < 1 || n < 1)
        return 2;
    size_t count = (size_t)n * size * size;
    float *x = malloc(count * sizeof *x);
    FILE *f = fopen(argv[4], "rb");
    if (!x || !f || fread(x, sizeof *x, count, f) != count) {
        fprintf(stderr, "onnx-run: cannot read %zu floats from %s\n", count, argv[4]);
        return 2;
    }
    fclose(f);
    struct ncl_ctx *ctx;
    struct ncl_graph *g;
    if (ncl_ctx_create(NULL, &ctx))
        return fail("device");
    if (ncl_model_build(ctx, argv[1], (struct ncl_shape){n, 1, size, size}, &g))
        return fail("build");
    if (strcmp(argv[2], "-") != 0 && ncl_checkpoint_load(g, argv[2], NULL))
        return fail("checkpoint");
    int classes = ncl_graph_output_shape(g).c;
    float *y = malloc((size_t)n * classes * sizeof *y);
    if (!y || ncl_graph_write_input(g, x, n) || ncl_graph_forward(g, n, NCL_MODE_EVAL, 0) ||
        ncl_graph_read_output(g, y, n))
        return fail("forward");
    f = fopen(argv[6], "wb");
    if (!f || fwrite(y, sizeof *y, (size_t)n * classes, f) != (size_t)n * classes || fclose(f) != 0) {
        fprintf(stderr, "onnx-run: cannot write %s\n", argv[6]);
        return 1;
    }
    free(x);
    free(y);
    ncl_graph_free(g);
    ncl_ctx_free(ctx);
    return 0;
}
