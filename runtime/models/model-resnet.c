/* ResNet-18 (book 8.6): b1 = C(1,64,7,2,3) BN ReLU MaxP(3,2,1), four stages of two Residual
 * blocks (the first of stages 3-5 halves the size with a 1x1 conv3 shortcut, no BN on it),
 * then AdaptiveAvgPool2d, Flatten, Linear(512, 10). */
#include <stdio.h>

#include "model-impl.h"

enum ncl_status ncl_model_stem_bn(struct ncl_graph *g)
{
    NCL_TRY(ncl_model_conv(g, "0.0", 0, "Sequential", 64, 7, 2, 3, 0));
    NCL_TRY(ncl_graph_add_batchnorm(g, "0.1", 0, "Sequential"));
    NCL_TRY(ncl_graph_add_relu(g, "0.2", 0, "Sequential"));
    return ncl_graph_add_maxpool_padded(g, "0.3", 0, "Sequential", 3, 2, 1);
}

/* Residual: Y = bn2(conv2(relu(bn1(conv1(X))))); out = relu(Y + (conv3(X) or X)). */
static enum ncl_status add_residual(struct ncl_graph *g, const char *p, int group, int c, int use_1x1, int stride)
{
    char name[32];
    int x = ncl_graph_last(g);
#define N(suffix) (snprintf(name, sizeof name, "%s.%s", p, suffix), name)
    NCL_TRY(ncl_model_conv(g, N("conv1"), group, "Sequential", c, 3, stride, 1, 0));
    NCL_TRY(ncl_graph_add_batchnorm(g, N("bn1"), group, "Sequential"));
    NCL_TRY(ncl_graph_add_relu(g, N("relu1"), group, "Sequential"));
    NCL_TRY(ncl_model_conv(g, N("conv2"), group, "Sequential", c, 3, 1, 1, 0));
    NCL_TRY(ncl_graph_add_batchnorm(g, N("bn2"), group, "Sequential"));
    int y = ncl_graph_last(g), shortcut = x;
    if (use_1x1) {
        NCL_TRY(ncl_graph_use_input(g, x));
        NCL_TRY(ncl_model_conv(g, N("conv3"), group, "Sequential", c, 1, stride, 0, 0));
        shortcut = ncl_graph_last(g);
    }
    NCL_TRY(ncl_graph_add_add(g, N("add"), group, "Sequential", y, shortcut));
    return ncl_graph_add_relu(g, N("relu"), group, "Sequential");
#undef N
}

enum ncl_status ncl_model_build_resnet18(struct ncl_graph *g)
{
    NCL_TRY(ncl_model_stem_bn(g));
    static const int channels[4] = {64, 128, 256, 512};
    char p[16];
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 2; k++) {
            snprintf(p, sizeof p, "%d.%d", s + 1, k);
            int first = k == 0 && s > 0;
            NCL_TRY(add_residual(g, p, s + 1, channels[s], first, first ? 2 : 1));
        }
    NCL_TRY(ncl_graph_add_global_avgpool(g, "5", 5, "AdaptiveAvgPool2d"));
    NCL_TRY(ncl_graph_add_flatten(g, "6", 6, "Flatten"));
    return ncl_model_linear(g, "7", 7, "Linear", 512, 10, 0);
}
