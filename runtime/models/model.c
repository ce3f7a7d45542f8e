/* Model builders: the d2l NiN and a NiN sized for 28x28 input here, the rest of the book's
 * zoo in runtime/models/model-*.c, and every model's recipe. Layer names are the PyTorch
 * module paths of the reference nn.Sequential, so parameters save as its state_dict keys. */
#include <stdio.h>
#include <string.h>

#include "model-impl.h"
#include "onnx-impl.h"

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

static enum ncl_status build_nin_d2l(struct ncl_graph *g)
{
    /* d2l: nin_block(1, 96, 11, 4, 0), (96, 256, 5, 1, 2), (256, 384, 3, 1, 1), (384, 10, 3, 1, 1) */
    static const struct nin_block nin[4] = {{96, 11, 4, 0, 0}, {256, 5, 1, 2, 0}, {384, 3, 1, 1, 0}, {10, 3, 1, 1, 0}};
    return build_nin(g, nin);
}

static enum ncl_status build_nin_small(struct ncl_graph *g)
{
    /* nin-small for 28x28: same structure, narrower, a 5x5 stride-1 first block, and class
     * scores that may be negative (no ReLU before the average pool; docs/models.md). Xavier
     * (d2l) leaves a 12-layer ReLU stack without normalisation stuck at chance for an epoch or
     * more; Kaiming init keeps the signal's scale, so nin-small learns from the start. */
    static const struct nin_block small[4] = {{48, 5, 1, 2, 0}, {96, 3, 1, 1, 0}, {192, 3, 1, 1, 0}, {10, 3, 1, 1, 1}};
    g->init_kaiming = 1;
    return build_nin(g, small);
}

/* Every model with the book's recipe (d2l train_ch6: plain SGD, 10 epochs); nin-small has its own. */
static const struct model_entry {
    const char *name;
    enum ncl_status (*build)(struct ncl_graph *g);
    struct ncl_model_recipe recipe;   /* epochs, batch, input_size, lr, momentum, weight_decay */
} models[] = {
    {"nin", build_nin_d2l, {10, 128, 224, 0.1f, 0.0f, 0.0f}},
    {"nin-small", build_nin_small, {5, 64, 28, 0.02f, 0.9f, 0.0f}},
    {"lenet", ncl_model_build_lenet, {10, 256, 28, 0.9f, 0.0f, 0.0f}},
    {"lenet-bn", ncl_model_build_lenet_bn, {10, 256, 28, 1.0f, 0.0f, 0.0f}},
    {"alexnet", ncl_model_build_alexnet, {10, 128, 224, 0.01f, 0.0f, 0.0f}},
    {"vgg11", ncl_model_build_vgg11, {10, 128, 224, 0.05f, 0.0f, 0.0f}},
    {"googlenet", ncl_model_build_googlenet, {10, 128, 96, 0.1f, 0.0f, 0.0f}},
    {"resnet18", ncl_model_build_resnet18, {10, 256, 96, 0.05f, 0.0f, 0.0f}},
    {"densenet", ncl_model_build_densenet, {10, 256, 96, 0.1f, 0.0f, 0.0f}},
};
#define MODEL_COUNT (int)(sizeof models / sizeof models[0])

static const struct model_entry *find_model(const char *model)
{
    for (int i = 0; model && i < MODEL_COUNT; i++)
        if (strcmp(model, models[i].name) == 0)
            return &models[i];
    return NULL;
}

static enum ncl_status unknown_model(const char *model)
{
    return ncl_fail(NCL_ERR_ARG, "unknown model '%s' (choose nin, nin-small, lenet, lenet-bn, alexnet, vgg11, "
                    "googlenet, resnet18, densenet, or an .onnx file)", model ? model : "(null)");
}

enum ncl_status ncl_model_build(struct ncl_ctx *ctx, const char *model, struct ncl_shape input, struct ncl_graph **out)
{
    *out = NULL;
    if (ncl_onnx_is_path(model))
        return ncl_onnx_build(ctx, model, input, out);
    const struct model_entry *m = find_model(model);
    if (!m)
        return unknown_model(model);
    NCL_TRY(ncl_graph_create(ctx, input, out));
    enum ncl_status s = m->build(*out);
    if (s == NCL_OK)
        s = ncl_graph_reserve(*out);
    if (s != NCL_OK) {
        ncl_graph_free(*out);
        *out = NULL;
    }
    return s;
}

/* An ONNX model trains with nin's recipe at the size of the file's input. */
static enum ncl_status onnx_recipe(const char *path, struct ncl_model_recipe *out)
{
    Onnx__ModelProto *m;
    NCL_TRY(ncl_onnx_load(path, &m));
    const Onnx__ValueInfoProto *input;
    struct ncl_shape chw;
    enum ncl_status s = ncl_onnx_input(path, m->graph, &input, &chw);
    ncl_onnx_unload(m);
    NCL_TRY(s);
    if (chw.h != chw.w)
        return ncl_fail(NCL_ERR_SHAPE, "%s: the model's input is %dx%d; nincl trains on square images", path, chw.h,
                        chw.w);
    if (chw.c != 1)
        return ncl_fail(NCL_ERR_SHAPE, "%s: the model takes %d-channel images; Fashion-MNIST's have 1 channel", path,
                        chw.c);
    if (out) {
        *out = find_model("nin")->recipe;
        out->input_size = chw.h;
    }
    return NCL_OK;
}

enum ncl_status ncl_model_default_recipe(const char *model, struct ncl_model_recipe *out)
{
    if (ncl_onnx_is_path(model))
        return onnx_recipe(model, out);
    const struct model_entry *m = find_model(model);
    if (!m)
        return unknown_model(model);
    if (out)
        *out = m->recipe;
    return NCL_OK;
}

int ncl_model_input_size(const char *model)
{
    struct ncl_model_recipe r;
    return ncl_model_default_recipe(model, &r) == NCL_OK ? r.input_size : 224;
}
