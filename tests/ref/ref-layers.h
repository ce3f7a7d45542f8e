/* Naive C references of the layer kernels, used only by tests. Host tensors are NCHW
 * (PyTorch order); every sum is accumulated in double and rounded to float once. Gradient
 * functions overwrite their outputs (they do not accumulate); any output may be NULL. */
#ifndef NCL_REF_LAYERS_H
#define NCL_REF_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* Output size of a convolution or pooling window along one axis (floor mode), 0 if empty. */
int ref_out_size(int in, int kernel, int stride, int pad);

/* Conv2d: x [n, c, h, w], weight [oc, c, k, k], bias [oc] -> y [n, oc, oh, ow];
 * relu: y = max(z, 0). */
void ref_conv2d_forward(const float *x, int n, int c, int h, int w, const float *weight, const float *bias, int oc,
                        int k, int stride, int pad, int relu, float *y);
/* Given the forward's output y (its ReLU mask: dz = dy where y > 0) and dy [n, oc, oh, ow]:
 * dx [n, c, h, w], dweight [oc, c, k, k], dbias [oc]. */
void ref_conv2d_backward(const float *x, int n, int c, int h, int w, const float *weight, int oc, int k, int stride,
                         int pad, int relu, const float *y, const float *dy, float *dx, float *dweight, float *dbias);

/* MaxPool2d(k, stride), no padding, floor mode. argmax (may be NULL) gets the index within the
 * h x w plane of each output's winner; ties go to the first maximum in row-major window order. */
void ref_maxpool_forward(const float *x, int n, int c, int h, int w, int k, int stride, float *y, int32_t *argmax);
void ref_maxpool_backward(const float *dy, const int32_t *argmax, int n, int c, int h, int w, int k, int stride,
                          float *dx);

/* Global average pool: x [n, c, hw] -> y [n, c]; backward spreads dy / hw. */
void ref_gap_forward(const float *x, int n, int c, int hw, float *y);
void ref_gap_backward(const float *dy, int n, int c, int hw, float *dx);

/* Random123's philox4x32 with 10 rounds: out = philox4x32_R(10, ctr, key). */
void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* Dropout keep decision of element i (Random123 philox4x32, 10 rounds; counter (i_lo, i_hi,
 * step_lo, step_hi), key (seed_lo, seed_hi); kept iff (r.v[0] >> 8) * 2^-24 >= p). */
int ref_dropout_keep(uint64_t i, uint64_t seed, uint64_t step, float p);
/* Train-mode inverted dropout of x [n, c, h, w]: y = keep ? x / (1 - p) : 0, in float as the
 * device does. Element (b, ch, yy, xx) is numbered as on the device, in the CNHW order of the
 * batch actually run: i = ((ch * n + b) * h + yy) * w + xx. Backward is the same map on dy. */
void ref_dropout_forward(const float *x, int n, int c, int h, int w, float p, uint64_t seed, uint64_t step, float *y);
/* The same for images offset .. offset + n of a global batch of global_n (a replica's slice):
 * element (b, ch, yy, xx) takes the mask of ((ch * global_n + offset + b) * h + yy) * w + xx. */
void ref_dropout_slice_forward(const float *x, int n, int c, int h, int w, float p, uint64_t seed, uint64_t step,
                               int offset, int global_n, float *y);

/* Linear: x [n, in], weight [out, in] (PyTorch), bias [out] -> y [n, out]. */
void ref_linear_forward(const float *x, int n, int in, const float *weight, const float *bias, int out, int relu,
                        float *y);
void ref_linear_backward(const float *x, int n, int in, const float *weight, int out, int relu, const float *y,
                         const float *dy, float *dx, float *dweight, float *dbias);

/* Softmax cross-entropy of logits [n, classes] against labels, mean over the batch (returned).
 * correct (may be NULL): how many rows have their first maximum at the label. grad (may be NULL):
 * (softmax - onehot) / n. losses (may be NULL): the per-example losses. */
double ref_softmax_xent(const float *logits, const int32_t *labels, int n, int classes, int *correct, float *grad,
                        double *losses);

#endif
