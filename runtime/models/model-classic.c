/* The book's plain chains: LeNet (6.6), LeNet with BatchNorm (8.5), AlexNet (8.1) and VGG-11
 * with a quarter of the channels (8.2). Top-level ReLUs after a convolution or Linear are fused
 * into it and keep their module index for nincl shapes. */
#include <stdio.h>

#include "model-impl.h"

enum ncl_status ncl_model_conv(struct ncl_graph *g, const char *name, int group, const char *group_name, int out,
                               int kernel, int stride, int pad, int relu)
{
    return ncl_graph_add_conv(g, name, group, group_name, (struct ncl_conv_params){out, kernel, stride, pad, relu});
}

enum ncl_status ncl_model_linear(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                 int in_features, int out, int relu)
{
    struct ncl_shape in = ncl_graph_output_shape(g);
    if (in.c != in_features)
        return ncl_fail(NCL_ERR_SHAPE, "layer %s (Linear(%d, %d)) needs %d input features, but this input size "
                        "gives it %d: the book's model takes one input size", name, in_features, out,
                        in_features, in.c);
    return ncl_graph_add_linear(g, name, group, group_name, out, relu);
}

static enum ncl_status relu_module(struct ncl_graph *g, int group)
{
    return ncl_graph_set_fused_group(g, group, "ReLU");
}

/* C(1,6,5,p) Sig AvgP C(6,16,5) Sig AvgP Flat L(.,120) Sig L(120,84) Sig L(84,10); bn puts a
 * BatchNorm after every convolution and hidden Linear (and the first conv loses its padding). */
static enum ncl_status build_lenet(struct ncl_graph *g, int bn)
{
    int i = 0;
    char name[16];
#define NAME (snprintf(name, sizeof name, "%d", i), name)
    for (int block = 0; block < 2; block++) {
        NCL_TRY(ncl_model_conv(g, NAME, i, "Conv2d", block ? 16 : 6, 5, 1, block || bn ? 0 : 2, 0));
        i++;
        if (bn) {
            NCL_TRY(ncl_graph_add_batchnorm(g, NAME, i, "BatchNorm2d"));
            i++;
        }
        NCL_TRY(ncl_graph_add_sigmoid(g, NAME, i, "Sigmoid"));
        i++;
        NCL_TRY(ncl_graph_add_avgpool(g, NAME, i, "AvgPool2d", 2, 2));
        i++;
    }
    NCL_TRY(ncl_graph_add_flatten(g, NAME, i, "Flatten"));
    i++;
    static const int widths[3] = {120, 84, 10};
    int in = bn ? 256 : 400;
    for (int k = 0; k < 3; k++) {
        NCL_TRY(ncl_model_linear(g, NAME, i, "Linear", in, widths[k], 0));
        i++;
        in = widths[k];
        if (k == 2)
            break;
        if (bn) {
            NCL_TRY(ncl_graph_add_batchnorm(g, NAME, i, "BatchNorm1d"));
            i++;
        }
        NCL_TRY(ncl_graph_add_sigmoid(g, NAME, i, "Sigmoid"));
        i++;
    }
#undef NAME
    return NCL_OK;
}

enum ncl_status ncl_model_build_lenet(struct ncl_graph *g)
{
    return build_lenet(g, 0);
}

enum ncl_status ncl_model_build_lenet_bn(struct ncl_graph *g)
{
    return build_lenet(g, 1);
}

/* Flatten at `at`, then Linear(in, 4096) ReLU Dropout Linear(4096, 4096) ReLU Dropout Linear(4096, 10). */
static enum ncl_status add_classifier(struct ncl_graph *g, int at, int in_features)
{
    char name[16];
    snprintf(name, sizeof name, "%d", at);
    NCL_TRY(ncl_graph_add_flatten(g, name, at, "Flatten"));
    for (int k = 0; k < 2; k++) {
        int i = at + 1 + 3 * k;
        snprintf(name, sizeof name, "%d", i);
        NCL_TRY(ncl_model_linear(g, name, i, "Linear", k ? 4096 : in_features, 4096, 1));
        NCL_TRY(relu_module(g, i + 1));
        snprintf(name, sizeof name, "%d", i + 2);
        NCL_TRY(ncl_graph_add_dropout(g, name, i + 2, "Dropout", 0.5f));
    }
    snprintf(name, sizeof name, "%d", at + 7);
    return ncl_model_linear(g, name, at + 7, "Linear", 4096, 10, 0);
}

enum ncl_status ncl_model_build_alexnet(struct ncl_graph *g)
{
    NCL_TRY(ncl_model_conv(g, "0", 0, "Conv2d", 96, 11, 4, 1, 1));
    NCL_TRY(relu_module(g, 1));
    NCL_TRY(ncl_graph_add_maxpool(g, "2", 2, "MaxPool2d", 3, 2));
    NCL_TRY(ncl_model_conv(g, "3", 3, "Conv2d", 256, 5, 1, 2, 1));
    NCL_TRY(relu_module(g, 4));
    NCL_TRY(ncl_graph_add_maxpool(g, "5", 5, "MaxPool2d", 3, 2));
    static const int widths[3] = {384, 384, 256};
    for (int k = 0; k < 3; k++) {
        char name[8];
        snprintf(name, sizeof name, "%d", 6 + 2 * k);
        NCL_TRY(ncl_model_conv(g, name, 6 + 2 * k, "Conv2d", widths[k], 3, 1, 1, 1));
        NCL_TRY(relu_module(g, 7 + 2 * k));
    }
    NCL_TRY(ncl_graph_add_maxpool(g, "12", 12, "MaxPool2d", 3, 2));
    return add_classifier(g, 13, 6400);
}

/* vgg_block(n, c) = n x [Conv(3, pad 1) ReLU] MaxPool(2, 2), as Sequential `index`. */
enum ncl_status ncl_model_build_vgg11(struct ncl_graph *g)
{
    static const int arch[5][2] = {{1, 16}, {1, 32}, {2, 64}, {2, 128}, {2, 128}};
    char name[16];
    for (int b = 0; b < 5; b++) {
        for (int k = 0; k < arch[b][0]; k++) {
            snprintf(name, sizeof name, "%d.%d", b, 2 * k);
            NCL_TRY(ncl_model_conv(g, name, b, "Sequential", arch[b][1], 3, 1, 1, 1));
        }
        snprintf(name, sizeof name, "%d.%d", b, 2 * arch[b][0]);
        NCL_TRY(ncl_graph_add_maxpool(g, name, b, "Sequential", 2, 2));
    }
    return add_classifier(g, 5, 128 * 7 * 7);
}
