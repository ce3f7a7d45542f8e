/* Naive C references of the zoo's layers (BatchNorm, AvgPool, padded MaxPool), used only by
 * tests/test-zoo-ops.c. Host tensors are NCHW; sums in double, rounded to float once. */
#ifndef NCL_REF_ZOO_H
#define NCL_REF_ZOO_H

#include <stdint.h>

/* BatchNorm over (N, H, W) per channel of x [n, c, hw] (BatchNorm1d: hw = 1), eps 1e-5.
 * train: batch mean and biased variance; mean/var (may be NULL) get the batch mean and the
 * unbiased variance (what running statistics take). eval: running_mean / running_var. */
void ref_batchnorm_forward(const float *x, int n, int c, int hw, const float *weight, const float *bias, int train,
                           const float *running_mean, const float *running_var, float *y, float *mean,
                           float *unbiased_var);
/* Train-mode backward: dx, dweight, dbias (any may be NULL). */
void ref_batchnorm_backward(const float *x, int n, int c, int hw, const float *weight, const float *dy, float *dx,
                            float *dweight, float *dbias);

/* AvgPool2d(k, stride), no padding, floor mode. */
void ref_avgpool_forward(const float *x, int n, int c, int h, int w, int k, int stride, float *y);
void ref_avgpool_backward(const float *dy, int n, int c, int h, int w, int k, int stride, float *dx);

/* MaxPool2d(k, stride, pad): padding never wins; ties to the first maximum in window order. */
void ref_maxpool_pad_forward(const float *x, int n, int c, int h, int w, int k, int stride, int pad, float *y,
                             int32_t *argmax);
void ref_maxpool_pad_backward(const float *dy, const int32_t *argmax, int n, int c, int h, int w, int k, int stride,
                              int pad, float *dx);

#endif
