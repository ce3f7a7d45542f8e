/* Naive references for tests/test-zoo-ops.c (see ref-zoo.h). */
#include "ref-zoo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref-layers.h"

#define BN_EPS 1e-5

static double channel_mean(const float *x, int n, int c, int hw, int ch)
{
    double s = 0;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < hw; i++)
            s += x[((size_t)b * c + ch) * hw + i];
    return s / ((double)n * hw);
}

static double channel_var(const float *x, int n, int c, int hw, int ch, double mean)
{
    double s = 0;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < hw; i++) {
            double d = x[((size_t)b * c + ch) * hw + i] - mean;
            s += d * d;
        }
    return s / ((double)n * hw);
}

void ref_batchnorm_forward(const float *x, int n, int c, int hw, const float *weight, const float *bias, int train,
                           const float *running_mean, const float *running_var, float *y, float *mean,
                           float *unbiased_var)
{
    double count = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double m, v;
        if (train) {
            m = channel_mean(x, n, c, hw, ch);
            v = channel_var(x, n, c, hw, ch, m);
            if (mean)
                mean[ch] = (float)m;
            if (unbiased_var)
                unbiased_var[ch] = (float)(count > 1 ? v * count / (count - 1) : v);
        } else {
            m = running_mean[ch];
            v = running_var[ch];
        }
        double inv = 1.0 / sqrt(v + BN_EPS);
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++) {
                size_t at = ((size_t)b * c + ch) * hw + i;
                y[at] = (float)((x[at] - m) * inv * weight[ch] + bias[ch]);
            }
    }
}

void ref_batchnorm_backward(const float *x, int n, int c, int hw, const float *weight, const float *dy, float *dx,
                            float *dweight, float *dbias)
{
    double count = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double m = channel_mean(x, n, c, hw, ch), inv = 1.0 / sqrt(channel_var(x, n, c, hw, ch, m) + BN_EPS);
        double sdy = 0, sdyx = 0;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++) {
                size_t at = ((size_t)b * c + ch) * hw + i;
                sdy += dy[at];
                sdyx += dy[at] * (x[at] - m) * inv;
            }
        if (dweight)
            dweight[ch] = (float)sdyx;
        if (dbias)
            dbias[ch] = (float)sdy;
        for (int b = 0; dx && b < n; b++)
            for (int i = 0; i < hw; i++) {
                size_t at = ((size_t)b * c + ch) * hw + i;
                double xhat = (x[at] - m) * inv;
                dx[at] = (float)((dy[at] - sdy / count - xhat * sdyx / count) * inv * weight[ch]);
            }
    }
}

void ref_avgpool_forward(const float *x, int n, int c, int h, int w, int k, int stride, float *y)
{
    int oh = ref_out_size(h, k, stride, 0), ow = ref_out_size(w, k, stride, 0);
    for (int p = 0; p < n * c; p++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double s = 0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        s += x[((size_t)p * h + oy * stride + ky) * w + ox * stride + kx];
                y[((size_t)p * oh + oy) * ow + ox] = (float)(s / (k * k));
            }
}

void ref_avgpool_backward(const float *dy, int n, int c, int h, int w, int k, int stride, float *dx)
{
    int oh = ref_out_size(h, k, stride, 0), ow = ref_out_size(w, k, stride, 0);
    double *acc = calloc((size_t)n * c * h * w, sizeof *acc);
    if (!acc)
        abort();
    for (int p = 0; p < n * c; p++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        acc[((size_t)p * h + oy * stride + ky) * w + ox * stride + kx] +=
                            dy[((size_t)p * oh + oy) * ow + ox] / (double)(k * k);
    for (size_t i = 0; i < (size_t)n * c * h * w; i++)
        dx[i] = (float)acc[i];
    free(acc);
}

void ref_maxpool_pad_forward(const float *x, int n, int c, int h, int w, int k, int stride, int pad, float *y,
                             int32_t *argmax)
{
    int oh = ref_out_size(h, k, stride, pad), ow = ref_out_size(w, k, stride, pad);
    for (int p = 0; p < n * c; p++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int best = -1;
                float m = 0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        float v = x[((size_t)p * h + iy) * w + ix];
                        if (best < 0 || v > m) {
                            m = v;
                            best = iy * w + ix;
                        }
                    }
                y[((size_t)p * oh + oy) * ow + ox] = m;
                if (argmax)
                    argmax[((size_t)p * oh + oy) * ow + ox] = best;
            }
}

void ref_maxpool_pad_backward(const float *dy, const int32_t *argmax, int n, int c, int h, int w, int k, int stride,
                              int pad, float *dx)
{
    int oh = ref_out_size(h, k, stride, pad), ow = ref_out_size(w, k, stride, pad);
    memset(dx, 0, (size_t)n * c * h * w * sizeof *dx);
    for (int p = 0; p < n * c; p++)
        for (int o = 0; o < oh * ow; o++)
            dx[(size_t)p * h * w + argmax[(size_t)p * oh * ow + o]] += dy[(size_t)p * oh * ow + o];
}
