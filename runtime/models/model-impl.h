/* Private: what the model builders (runtime/models/model-*.c) share. Layer names are the PyTorch
 * module paths of the book's nn.Sequential, so parameters save as its state_dict keys; the
 * group of a layer is the top-level module nincl shapes prints it under. */
#ifndef NCL_MODEL_IMPL_H
#define NCL_MODEL_IMPL_H

#include "graph-impl.h"

enum ncl_status ncl_model_build_lenet(struct ncl_graph *g);
enum ncl_status ncl_model_build_lenet_bn(struct ncl_graph *g);
enum ncl_status ncl_model_build_alexnet(struct ncl_graph *g);
enum ncl_status ncl_model_build_vgg11(struct ncl_graph *g);
enum ncl_status ncl_model_build_resnet18(struct ncl_graph *g);
enum ncl_status ncl_model_build_googlenet(struct ncl_graph *g);
enum ncl_status ncl_model_build_densenet(struct ncl_graph *g);
/* Sequential `0` of ResNet and DenseNet: C(1,64,7,2,3) BN ReLU MaxPool(3, 2, 1). */
enum ncl_status ncl_model_stem_bn(struct ncl_graph *g);

/* A convolution (relu: fused) named `name`. */
enum ncl_status ncl_model_conv(struct ncl_graph *g, const char *name, int group, const char *group_name, int out,
                               int kernel, int stride, int pad, int relu);
/* Linear(in_features, out) as the book declares it: an input size that does not flatten to
 * in_features fails naming the layer, as PyTorch would. */
enum ncl_status ncl_model_linear(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                 int in_features, int out, int relu);

#endif
