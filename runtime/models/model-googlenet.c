/* GoogLeNet (book 8.4, no BN, no auxiliary heads): b1 = C(1,64,7,2,3) ReLU MaxP(3,2,1);
 * b2 = C(64,64,1) ReLU C(64,192,3,1,1) ReLU MaxP(3,2,1); then Inception blocks whose four paths
 * are concatenated on channels; b5 ends in AdaptiveAvgPool2d and Flatten; Linear(1024, 10). */
#include <stdio.h>

#include "model-impl.h"

/* Inception(c1, (c2a, c2b), (c3a, c3b), c4) at module path p: p1_1 | p2_1, p2_2 | p3_1, p3_2 |
 * p4_1 (MaxPool(3, 1, 1)), p4_2, ReLU after every conv, all four reading the block's input. */
static enum ncl_status add_inception(struct ncl_graph *g, const char *p, int group, int c1, int c2a, int c2b,
                                     int c3a, int c3b, int c4)
{
    char name[32];
    int x = ncl_graph_last(g), paths[4];
#define N(suffix) (snprintf(name, sizeof name, "%s.%s", p, suffix), name)
    NCL_TRY(ncl_model_conv(g, N("p1_1"), group, "Sequential", c1, 1, 1, 0, 1));
    paths[0] = ncl_graph_last(g);
    NCL_TRY(ncl_graph_use_input(g, x));
    NCL_TRY(ncl_model_conv(g, N("p2_1"), group, "Sequential", c2a, 1, 1, 0, 1));
    NCL_TRY(ncl_model_conv(g, N("p2_2"), group, "Sequential", c2b, 3, 1, 1, 1));
    paths[1] = ncl_graph_last(g);
    NCL_TRY(ncl_graph_use_input(g, x));
    NCL_TRY(ncl_model_conv(g, N("p3_1"), group, "Sequential", c3a, 1, 1, 0, 1));
    NCL_TRY(ncl_model_conv(g, N("p3_2"), group, "Sequential", c3b, 5, 1, 2, 1));
    paths[2] = ncl_graph_last(g);
    NCL_TRY(ncl_graph_use_input(g, x));
    NCL_TRY(ncl_graph_add_maxpool_padded(g, N("p4_1"), group, "Sequential", 3, 1, 1));
    NCL_TRY(ncl_model_conv(g, N("p4_2"), group, "Sequential", c4, 1, 1, 0, 1));
    paths[3] = ncl_graph_last(g);
    return ncl_graph_add_concat(g, N("cat"), group, "Sequential", 4, paths);
#undef N
}

enum ncl_status ncl_model_build_googlenet(struct ncl_graph *g)
{
    NCL_TRY(ncl_model_conv(g, "0.0", 0, "Sequential", 64, 7, 2, 3, 1));
    NCL_TRY(ncl_graph_add_maxpool_padded(g, "0.2", 0, "Sequential", 3, 2, 1));
    NCL_TRY(ncl_model_conv(g, "1.0", 1, "Sequential", 64, 1, 1, 0, 1));
    NCL_TRY(ncl_model_conv(g, "1.2", 1, "Sequential", 192, 3, 1, 1, 1));
    NCL_TRY(ncl_graph_add_maxpool_padded(g, "1.4", 1, "Sequential", 3, 2, 1));
    /* (block, index in it, c1, c2a, c2b, c3a, c3b, c4) */
    static const int inc[9][8] = {
        {2, 0, 64, 96, 128, 16, 32, 32},    {2, 1, 128, 128, 192, 32, 96, 64},  {3, 0, 192, 96, 208, 16, 48, 64},
        {3, 1, 160, 112, 224, 24, 64, 64},  {3, 2, 128, 128, 256, 24, 64, 64},  {3, 3, 112, 144, 288, 32, 64, 64},
        {3, 4, 256, 160, 320, 32, 128, 128}, {4, 0, 256, 160, 320, 32, 128, 128}, {4, 1, 384, 192, 384, 48, 128, 128},
    };
    char p[16];
    for (int i = 0; i < 9; i++) {
        const int *b = inc[i];
        snprintf(p, sizeof p, "%d.%d", b[0], b[1]);
        NCL_TRY(add_inception(g, p, b[0], b[2], b[3], b[4], b[5], b[6], b[7]));
        if (i == 1 || i == 6) {   /* b3 and b4 end in MaxPool(3, 2, 1) */
            snprintf(p, sizeof p, "%d.%d", b[0], b[1] + 1);
            NCL_TRY(ncl_graph_add_maxpool_padded(g, p, b[0], "Sequential", 3, 2, 1));
        }
    }
    NCL_TRY(ncl_graph_add_global_avgpool(g, "4.2", 4, "Sequential"));
    NCL_TRY(ncl_graph_add_flatten(g, "4.3", 4, "Sequential"));
    return ncl_model_linear(g, "5", 5, "Linear", 1024, 10, 0);
}
