/* Private: the Winograd path of Conv2d (runtime/ops/conv-winograd.c), used by layer-conv.c. */
#ifndef NCL_CONV_WINOGRAD_H
#define NCL_CONV_WINOGRAD_H

#include "graph-impl.h"

/* The output tile (2 for 5x5, 4 for 3x3) when this layer's forward pass and input gradient
 * run by Winograd on this context, else 0. */
int ncl_conv_winograd_tile(const struct ncl_layer *l);
/* Sets l->winograd_tile and l->winograd_chunk (images per round, so the path's workspace
 * stays within budget_floats where one image allows); returns the workspace floats it needs
 * (0 when the layer does not use the path). */
size_t ncl_conv_winograd_setup(struct ncl_layer *l, size_t budget_floats);
/* Creates the path's five kernels into k[0..4]. */
enum ncl_status ncl_conv_winograd_create_kernels(struct ncl_layer *l, cl_kernel *k);
/* y = relu?(conv(x) + b), overwriting y. */
enum ncl_status ncl_conv_winograd_forward(struct ncl_layer *l, const cl_kernel *k, int batch);
/* dw += the weight gradient for x and dy (already through the ReLU). */
enum ncl_status ncl_conv_winograd_weight_grad(struct ncl_layer *l, const cl_kernel *k, int batch);
/* dx = the input gradient of the convolution for dy (already through the ReLU), overwriting dx. */
enum ncl_status ncl_conv_winograd_input_grad(struct ncl_layer *l, const cl_kernel *k, int batch);

#endif
