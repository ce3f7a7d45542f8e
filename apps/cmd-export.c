/* nincl export: a checkpoint as a standard ONNX inference model. */
#include <stdio.h>
#include <string.h>

#include "checkpoint-ref.h"
#include "commands.h"
#include "flags.h"

int cmd_export(int argc, char **argv)
{
    struct device_flags df = {0};
    const char *checkpoint = NULL, *onnx = NULL, *model_flag = NULL;
    int resize = 0;
    struct flag flags[] = {
        {"checkpoint", FLAG_STRING, &checkpoint, "checkpoint file (DIR/checkpoint.safetensors) or run folder", 0, 0,
         0, 0},
        {"onnx", FLAG_STRING, &onnx, "the ONNX file to write", 0, 0, 0, 0},
        {"model", FLAG_STRING, &model_flag, "model, if the checkpoint does not say", 0, 0, 0, 0},
        {"resize", FLAG_INT, &resize, "input size, if the checkpoint does not say", 0, 4096, 0, 0},
        DEVICE_FLAGS(df),
    };
    int rc = flags_parse("export", "Write a checkpoint as an ONNX inference model (eval-mode BatchNorm, no Dropout, "
                                   "symbolic batch, weights inside) for other engines.",
                         flags, sizeof flags / sizeof flags[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (!checkpoint || !onnx) {
        fprintf(stderr, "nincl export: --checkpoint and --onnx are required\n");
        return EXIT_USAGE;
    }
    struct checkpoint_ref ref;
    if ((rc = checkpoint_resolve("export", checkpoint, model_flag, resize, &ref)) >= 0)
        return rc;
    struct ncl_ctx *ctx;
    if ((rc = open_device(&df, 0, &ctx)) >= 0)
        return rc;
    struct ncl_graph *g = NULL;
    enum ncl_status s = ncl_model_build(ctx, ref.model, (struct ncl_shape){1, 1, ref.resize, ref.resize}, &g);
    if (s == NCL_OK)
        s = ncl_checkpoint_load(g, ref.path, NULL);
    if (s == NCL_OK)
        s = ncl_onnx_export(g, onnx);
    if (s != NCL_OK) {
        fprintf(stderr, "nincl export: %s\n", ncl_last_error());
        rc = exit_code_for(s);
    } else {
        printf("%s (model %s, 1x%dx%d) written to %s\n", ref.path, ref.model, ref.resize, ref.resize, onnx);
        rc = EXIT_OK;
    }
    ncl_graph_free(g);
    ncl_ctx_free(ctx);
    return rc;
}
