/* zoo-dump MODEL SIZE BATCH STEPS LR DIR [BUILTIN]: what scripts/zoo-vs-pytorch.py compares with
 * the book's PyTorch model. Builds MODEL for BATCH images of 1xSIZExSIZE on the device, initialises
 * it (seed 7; an .onnx MODEL keeps its file's weights) and writes into DIR:
 *   weights.safetensors   the parameters and running statistics (the state_dict)
 *   batch.safetensors     x [BATCH,1,SIZE,SIZE] uniform [-0.5,0.5), labels (I64), and the logits
 *                         "eval" and "train" of one forward each from the weights (the train
 *                         forward's running-statistics update is undone by reloading)
 *   after-K.safetensors   the state_dict after each of STEPS SGD steps (lr LR) on that batch
 * Dropout is set to p = 0 so that train mode is deterministic on both sides. With BUILTIN (for an
 * .onnx MODEL), the built-in model of that name must have the same parameters and running
 * statistics (names, shapes, order) and output shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph-impl.h"
#include "nincl.h"

static int fail(const char *what)
{
    fprintf(stderr, "zoo-dump: %s: %s\n", what, ncl_last_error());
    return 1;
}

/* The parameters and states of a and b: same names and shapes in the same order. */
static int same_structure(struct ncl_graph *a, struct ncl_graph *b, const char *builtin)
{
    int bad = 0;
    for (int kind = 0; kind < 2; kind++) {
        int na = kind ? ncl_graph_state_count(a) : ncl_graph_param_count(a);
        int nb = kind ? ncl_graph_state_count(b) : ncl_graph_param_count(b);
        if (na != nb) {
            fprintf(stderr, "zoo-dump: %d %s from the ONNX file, %d in the built-in %s\n", na,
                    kind ? "states" : "parameters", nb, builtin);
            return 0;
        }
        for (int i = 0; i < na; i++) {
            struct ncl_param_info pa, pb;
            (kind ? ncl_graph_state_info : ncl_graph_param_info)(a, i, &pa);
            (kind ? ncl_graph_state_info : ncl_graph_param_info)(b, i, &pb);
            int same = strcmp(pa.name, pb.name) == 0 && pa.ndim == pb.ndim && pa.count == pb.count;
            for (int d = 0; same && d < pa.ndim; d++)
                same = pa.dims[d] == pb.dims[d];
            if (!same) {
                fprintf(stderr, "zoo-dump: %s %d: '%s' (%zu values) from the ONNX file, '%s' (%zu) built in\n",
                        kind ? "state" : "parameter", i, pa.name, pa.count, pb.name, pb.count);
                bad = 1;
            }
        }
        printf("zoo-dump: %d %s with the built-in %s's names and shapes\n", na, kind ? "states" : "parameters",
               builtin);
    }
    struct ncl_shape oa = ncl_graph_output_shape(a), ob = ncl_graph_output_shape(b);
    if (oa.c != ob.c || oa.h != ob.h || oa.w != ob.w) {
        fprintf(stderr, "zoo-dump: output %dx%dx%d from the ONNX file, %dx%dx%d built in\n", oa.c, oa.h, oa.w, ob.c,
                ob.h, ob.w);
        bad = 1;
    }
    return !bad;
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: zoo-dump MODEL SIZE BATCH STEPS LR DIR [BUILTIN]\n");
        return 2;
    }
    const char *model = argv[1], *dir = argv[6];
    int size = atoi(argv[2]), batch = atoi(argv[3]), steps = atoi(argv[4]);
    float lr = (float)atof(argv[5]);
    struct ncl_ctx *ctx;
    struct ncl_ctx_params cp = {0};
    if (ncl_ctx_create(&cp, &ctx))
        return fail("device");
    struct ncl_graph *g;
    if (ncl_model_build(ctx, model, (struct ncl_shape){batch, 1, size, size}, &g))
        return fail("build");
    for (int i = 0; i < g->layer_count; i++)
        if (g->layers[i].ops == &ncl_layer_dropout_ops)
            g->layers[i].dropout_p = 0.0f;
    int onnx = strlen(model) > 5 && strcmp(model + strlen(model) - 5, ".onnx") == 0;
    if (!onnx && ncl_graph_init_params(g, 7))
        return fail("init");
    if (argc == 8) {
        struct ncl_graph *builtin;
        if (ncl_model_build(ctx, argv[7], (struct ncl_shape){batch, 1, size, size}, &builtin))
            return fail("build the built-in model");
        int same = same_structure(g, builtin, argv[7]);
        ncl_graph_free(builtin);
        if (!same)
            return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if (ncl_checkpoint_save(g, path, NULL, NULL, 0))
        return fail("save");

    size_t nx = (size_t)batch * size * size, classes = (size_t)ncl_graph_output_shape(g).c;
    float *x = malloc(nx * sizeof *x), *eval = malloc(batch * classes * sizeof *eval),
          *train = malloc(batch * classes * sizeof *train);
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    int64_t *labels64 = malloc((size_t)batch * sizeof *labels64);
    if (!x || !eval || !train || !labels || !labels64)
        return 1;
    uint64_t state = 12345;
    for (size_t i = 0; i < nx; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(state >> 40) / 16777216.0f - 0.5f;   /* centred: as well-conditioned as normalised data */
    }
    for (int i = 0; i < batch; i++)
        labels64[i] = labels[i] = (i * 7 + 3) % (int)classes;
    if (ncl_graph_write_input(g, x, batch) || ncl_graph_write_labels(g, labels, batch) ||
        ncl_graph_forward(g, batch, NCL_MODE_EVAL, 0) || ncl_graph_read_output(g, eval, batch) ||
        ncl_graph_forward(g, batch, NCL_MODE_TRAIN, 0) || ncl_graph_read_output(g, train, batch))
        return fail("forward");
    struct ncl_st_tensor t[4] = {
        {"x", 4, {batch, 1, size, size}, x, 0, NULL},
        {"labels", 1, {batch}, NULL, 1, labels64},
        {"eval", 2, {batch, (int64_t)classes}, eval, 0, NULL},
        {"train", 2, {batch, (int64_t)classes}, train, 0, NULL},
    };
    snprintf(path, sizeof path, "%s/batch.safetensors", dir);
    if (ncl_st_write(path, t, 4, NULL, NULL, 0))
        return fail("write batch");
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if (ncl_checkpoint_load(g, path, NULL))
        return fail("reload");
    struct ncl_sgd_params sgd = {.lr = lr};
    for (int s = 0; s < steps; s++) {
        if (ncl_graph_forward(g, batch, NCL_MODE_TRAIN, (uint64_t)s + 1) || ncl_graph_loss(g, batch) ||
            ncl_graph_backward(g, batch) || ncl_graph_sgd_step(g, &sgd))
            return fail("step");
        snprintf(path, sizeof path, "%s/after-%d.safetensors", dir, s + 1);
        if (ncl_checkpoint_save(g, path, NULL, NULL, 0))
            return fail("save after a step");
    }
    free(x);
    free(eval);
    free(train);
    free(labels);
    free(labels64);
    ncl_graph_free(g);
    ncl_ctx_free(ctx);
    return 0;
}
