/* DenseNet (book 8.7): the ResNet stem, four DenseBlocks of four conv_blocks (BN ReLU
 * C(3, pad 1), growth 32), each's output concatenated onto its input, with transition blocks
 * (BN ReLU C(1x1) AvgPool(2, 2)) halving channels and size between them; then BN ReLU
 * AdaptiveAvgPool2d Flatten Linear(248, 10). */
#include <stdio.h>

#include "model-impl.h"

/* DenseBlock `index`: its Sequential `net` holds conv_blocks net.k = (0 BN, 1 ReLU, 2 conv). */
static enum ncl_status add_dense_block(struct ncl_graph *g, int index, int convs, int growth)
{
    char name[32];
    int x = ncl_graph_last(g);
    for (int k = 0; k < convs; k++) {
        NCL_TRY(ncl_graph_use_input(g, x));
        snprintf(name, sizeof name, "%d.net.%d.0", index, k);
        NCL_TRY(ncl_graph_add_batchnorm(g, name, index, "DenseBlock"));
        snprintf(name, sizeof name, "%d.net.%d.1", index, k);
        NCL_TRY(ncl_graph_add_relu(g, name, index, "DenseBlock"));
        snprintf(name, sizeof name, "%d.net.%d.2", index, k);
        NCL_TRY(ncl_model_conv(g, name, index, "DenseBlock", growth, 3, 1, 1, 0));
        int inputs[2] = {x, ncl_graph_last(g)};
        snprintf(name, sizeof name, "%d.cat.%d", index, k);
        NCL_TRY(ncl_graph_add_concat(g, name, index, "DenseBlock", 2, inputs));
        x = ncl_graph_last(g);
    }
    return NCL_OK;
}

static enum ncl_status add_transition(struct ncl_graph *g, int index, int out)
{
    char name[16];
    snprintf(name, sizeof name, "%d.0", index);
    NCL_TRY(ncl_graph_add_batchnorm(g, name, index, "Sequential"));
    snprintf(name, sizeof name, "%d.1", index);
    NCL_TRY(ncl_graph_add_relu(g, name, index, "Sequential"));
    snprintf(name, sizeof name, "%d.2", index);
    NCL_TRY(ncl_model_conv(g, name, index, "Sequential", out, 1, 1, 0, 0));
    snprintf(name, sizeof name, "%d.3", index);
    return ncl_graph_add_avgpool(g, name, index, "Sequential", 2, 2);
}

enum ncl_status ncl_model_build_densenet(struct ncl_graph *g)
{
    NCL_TRY(ncl_model_stem_bn(g));
    int channels = 64, index = 1;
    for (int b = 0; b < 4; b++) {
        NCL_TRY(add_dense_block(g, index++, 4, 32));
        channels += 4 * 32;
        if (b < 3) {
            channels /= 2;
            NCL_TRY(add_transition(g, index++, channels));
        }
    }
    NCL_TRY(ncl_graph_add_batchnorm(g, "8", 8, "BatchNorm2d"));
    NCL_TRY(ncl_graph_add_relu(g, "9", 9, "ReLU"));
    NCL_TRY(ncl_graph_add_global_avgpool(g, "10", 10, "AdaptiveAvgPool2d"));
    NCL_TRY(ncl_graph_add_flatten(g, "11", 11, "Flatten"));
    return ncl_model_linear(g, "12", 12, "Linear", channels, 10, 0);
}
