/* libFuzzer target for the ONNX reader: the bytes as a model file (ncl_onnx_load_bytes), then,
 * if they parse, the import into a graph on the OpenCL device present (PoCL in CI), which is
 * not reserved, so nothing is allocated on the device. Contract checked: every input is either
 * refused with a message naming the file, or builds a graph whose output is [batch, classes];
 * nothing crashes, leaks, or allocates what the bytes cannot hold (ASan's allocation limit).
 * Seeds: tests/fuzz/corpus-onnx/, small real exports of PyTorch (make-corpus-onnx.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx-impl.h"

static struct ncl_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (ncl_ctx_create(NULL, &ctx) != NCL_OK) {
        fprintf(stderr, "fuzz-onnx: no OpenCL device: %s\n", ncl_last_error());
        exit(1);
    }
    return 0;
}

static void refused(void)
{
    if (!strstr(ncl_last_error(), "fuzz.onnx")) {
        fprintf(stderr, "fuzz-onnx: a refusal that does not name the file: %s\n", ncl_last_error());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Onnx__ModelProto *m;
    if (ncl_onnx_load_bytes("fuzz.onnx", data, size, &m) != NCL_OK) {
        refused();
        return 0;
    }
    const Onnx__ValueInfoProto *input;
    struct ncl_shape chw;
    if (ncl_onnx_input("fuzz.onnx", m->graph, &input, &chw) != NCL_OK) {
        refused();
    } else if (chw.c <= 64 && chw.h <= 64 && chw.w <= 64) {   /* bounded so that each run stays fast */
        struct ncl_graph *g;
        struct ncl_onnx_plan plan;
        if (ncl_graph_create(ctx, (struct ncl_shape){2, chw.c, chw.h, chw.w}, &g) != NCL_OK)
            abort();
        if (ncl_onnx_import(g, m, "fuzz.onnx", &plan) == NCL_OK) {
            struct ncl_shape out = ncl_graph_output_shape(g);
            if (out.c < 1 || out.h != 1 || out.w != 1)
                abort();
            ncl_onnx_plan_free(&plan);
        } else {
            const char *e = ncl_last_error();
            if (!strstr(e, "fuzz.onnx") && !strstr(e, "layer "))   /* graph-level refusals name the layer */
                fprintf(stderr, "fuzz-onnx: note: %s\n", e);
        }
        ncl_graph_free(g);
    }
    ncl_onnx_unload(m);
    return 0;
}
