/* Model builders: the d2l NiN and a NiN sized for 28x28 input. Layer names are the PyTorch
 * module paths of the reference nn.Sequential, so parameters save as its state_dict keys. */
#include <stdio.h>
#include <string.h>

#include "graph-impl.h"

struct nin_block {
    int out, kernel, stride, pad;
    int no_last_relu;   /* the block's last 1x1 conv has no ReLU (nin-small's class scores) */
};

/* nin_block(in, out, k, s, p) = Conv(k, s, p), ReLU, Conv 1x1, ReLU, Conv 1x1, ReLU: the
 * ReLUs are fused, so the convs are modules .0, .2 and .4 of Sequential `index`. */
static enum ncl_status add_nin_block(struct ncl_graph *g, int index, struct nin_block b)
{
    char name[32];
    snprintf(name, sizeof name, "%d.0", index);
    NCL_TRY(ncl_graph_add_conv(g, name, index, "Sequential",
                               (struct ncl_conv_params){b.out, b.kernel, b.stride, b.pad, 1}));
    snprintf(name, sizeof name, "%d.2", index);
    NCL_TRY(ncl_graph_add_conv(g, name, index, "Sequential", (struct ncl_conv_params){b.out, 1, 1, 0, 1}));
    snprintf(name, sizeof name, "%d.4", index);
    return ncl_graph_add_conv(g, name, index, "Sequential",
                              (struct ncl_conv_params){b.out, 1, 1, 0, !b.no_last_relu});
}

/* blocks[0..2] each followed by MaxPool2d(3, 2), then Dropout(0.5), blocks[3] (10 classes),
 * global average pool and Flatten: the d2l layout, at any width. */
static enum ncl_status build_nin(struct ncl_graph *g, const struct nin_block blocks[4])
{
    char name[8];
    for (int i = 0; i < 3; i++) {
        NCL_TRY(add_nin_block(g, 2 * i, blocks[i]));
        snprintf(name, sizeof name, "%d", 2 * i + 1);
        NCL_TRY(ncl_graph_add_maxpool(g, name, 2 * i + 1, "MaxPool2d", 3, 2));
    }
    NCL_TRY(ncl_graph_add_dropout(g, "6", 6, "Dropout", 0.5f));
    NCL_TRY(add_nin_block(g, 7, blocks[3]));
    NCL_TRY(ncl_graph_add_global_avgpool(g, "8", 8, "AdaptiveAvgPool2d"));
    return ncl_graph_add_flatten(g, "9", 9, "Flatten");
}

enum ncl_status ncl_model_build(struct ncl_ctx *ctx, const char *model, struct ncl_shape input, struct ncl_graph **out)
{
    /* d2l: nin_block(1, 96, 11, 4, 0), (96, 256, 5, 1, 2), (256, 384, 3, 1, 1), (384, 10, 3, 1, 1) */
    static const struct nin_block nin[4] = {{96, 11, 4, 0, 0}, {256, 5, 1, 2, 0}, {384, 3, 1, 1, 0}, {10, 3, 1, 1, 0}};
    /* nin-small for 28x28: same structure, narrower, a 5x5 stride-1 first block, and class
     * scores that may be negative (no ReLU before the average pool; docs/models.md) */
    static const struct nin_block small[4] = {{48, 5, 1, 2, 0}, {96, 3, 1, 1, 0}, {192, 3, 1, 1, 0}, {10, 3, 1, 1, 1}};
    const struct nin_block *blocks;
    if (strcmp(model, "nin") == 0)
        blocks = nin;
    else if (strcmp(model, "nin-small") == 0)
        blocks = small;
    else
        return ncl_fail(NCL_ERR_ARG, "unknown model '%s' (choose nin or nin-small)", model);
    NCL_TRY(ncl_graph_create(ctx, input, out));
    /* Xavier (d2l) leaves a 12-layer ReLU stack without normalisation stuck at chance for an
     * epoch or more; Kaiming init keeps the signal's scale, so nin-small learns from the start. */
    (*out)->init_kaiming = blocks == small;
    enum ncl_status s = build_nin(*out, blocks);
    if (s == NCL_OK)
        s = ncl_graph_reserve(*out);
    if (s != NCL_OK) {
        ncl_graph_free(*out);
        *out = NULL;
    }
    return s;
}

int ncl_model_input_size(const char *model)
{
    return strcmp(model, "nin-small") == 0 ? 28 : 224;
}

enum ncl_status ncl_model_default_recipe(const char *model, struct ncl_model_recipe *out)
{
    /* nin: d2l's train_ch6 (lr 0.1, 10 epochs, batch 128, 224x224, plain SGD); nin-small: the
     * recipe of docs/models.md for the native 28x28 images */
    static const struct {
        const char *name;
        struct ncl_model_recipe recipe;
    } recipes[] = {
        {"nin", {10, 128, 224, 0.1f, 0, 0}},
        {"nin-small", {5, 64, 28, 0.02f, 0.9f, 0}},
    };
    for (size_t i = 0; model && i < sizeof recipes / sizeof recipes[0]; i++)
        if (strcmp(model, recipes[i].name) == 0) {
            if (out)
                *out = recipes[i].recipe;
            return NCL_OK;
        }
    return ncl_fail(NCL_ERR_ARG, "unknown model '%s' (choose nin or nin-small)", model ? model : "(null)");
}
