/* nincl shapes: builds a model on the device, runs one batch through it and prints the output
 * shape of each top-level module, as the d2l chapter prints them. Shapes come from the
 * graph's tensors after a real forward pass, not from a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "flags.h"

int cmd_shapes(int argc, char **argv)
{
    struct device_flags df = {0};
    const char *model = "nin", *input = "1x224x224";
    char input_default[32];
    int batch = 1;
    struct flag flags[] = {
        {"model", FLAG_STRING, &model,
         "model: nin, nin-small, lenet, lenet-bn, alexnet, vgg11, googlenet, resnet18, densenet or an .onnx file", 0, 0, 0, 0},
        {"input", FLAG_STRING, &input, "input size per image as CxHxW (not given: the model's own size)", 0, 0, 0, 0},
        {"batch", FLAG_INT, &batch, "batch size", 1, 65536, 0, 0},
        DEVICE_FLAGS(df),
    };
    int rc = flags_parse("shapes", "Run one input through a model on the device and print each block's output "
                                   "shape.",
                         flags, sizeof flags / sizeof flags[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (!flags[1].set) {   /* the model's own size */
        snprintf(input_default, sizeof input_default, "1x%dx%d", ncl_model_input_size(model),
                 ncl_model_input_size(model));
        input = input_default;
    }
    int c, h, w;
    char tail;
    if (sscanf(input, "%dx%dx%d%c", &c, &h, &w, &tail) != 3 || c < 1 || h < 1 || w < 1 || c > 4096 || h > 65536 ||
        w > 65536) {
        fprintf(stderr, "nincl shapes: --input must be CxHxW with positive sizes, e.g. 1x224x224, not '%s'\n", input);
        return EXIT_USAGE;
    }
    struct ncl_ctx *ctx;
    if ((rc = open_device(&df, 0, &ctx)) >= 0)
        return rc;
    struct ncl_graph *g = NULL;
    enum ncl_status s = ncl_model_build(ctx, model, (struct ncl_shape){batch, c, h, w}, &g);
    size_t in_count = (size_t)batch * c * h * w;
    float *x = s == NCL_OK ? calloc(in_count, sizeof *x) : NULL;
    if (s == NCL_OK && !x)
        s = NCL_ERR_NO_MEMORY;
    for (size_t i = 0; x && i < in_count; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;   /* any finite input will do */
    if (s == NCL_OK)
        s = ncl_graph_init_params(g, 0);
    if (s == NCL_OK)
        s = ncl_graph_write_input(g, x, batch);
    if (s == NCL_OK)
        s = ncl_graph_forward(g, batch, NCL_MODE_EVAL, 0);
    if (s == NCL_OK)
        s = ncl_ctx_finish(ctx);
    if (s != NCL_OK) {
        fprintf(stderr, "nincl shapes: %s\n", ncl_last_error());
        rc = exit_code_for(s);
    } else {
        int n = ncl_graph_layer_count(g);
        for (int i = 0; i < n; i++) {
            struct ncl_layer_info info, next;
            ncl_graph_layer_info(g, i, &info);
            if (i + 1 < n) {
                ncl_graph_layer_info(g, i + 1, &next);
                if (next.group == info.group)
                    continue;   /* print each module once, after its last layer */
            }
            char label[64], dims[96];
            snprintf(label, sizeof label, "%s output shape:", info.group_name);
            if (info.out.h == 1 && info.out.w == 1 && info.flat)
                snprintf(dims, sizeof dims, "torch.Size([%d, %d])", batch, info.out.c);
            else
                snprintf(dims, sizeof dims, "torch.Size([%d, %d, %d, %d])", batch, info.out.c, info.out.h,
                         info.out.w);
            printf("%-33s%s\n", label, dims);
            if (info.fused_group >= 0) {   /* a fused ReLU that is a module of its own */
                snprintf(label, sizeof label, "%s output shape:", info.fused_group_name);
                printf("%-33s%s\n", label, dims);
            }
        }
        rc = EXIT_OK;
    }
    free(x);
    ncl_graph_free(g);
    ncl_ctx_free(ctx);
    return rc;
}
