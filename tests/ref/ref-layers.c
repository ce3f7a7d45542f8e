/* Naive references for tests/test-layers.c: direct loops over NCHW tensors, double sums. */
#include "ref-layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <Random123/philox.h>

int ref_out_size(int in, int kernel, int stride, int pad)
{
    return in + 2 * pad >= kernel ? (in + 2 * pad - kernel) / stride + 1 : 0;
}

void ref_conv2d_forward(const float *x, int n, int c, int h, int w, const float *weight, const float *bias, int oc,
                        int k, int stride, int pad, int relu, float *y)
{
    int oh = ref_out_size(h, k, stride, pad), ow = ref_out_size(w, k, stride, pad);
    for (int b = 0; b < n; b++)
        for (int o = 0; o < oc; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double s = bias ? bias[o] : 0.0;
                    for (int ci = 0; ci < c; ci++)
                        for (int ky = 0; ky < k; ky++) {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= h)
                                continue;
                            for (int kx = 0; kx < k; kx++) {
                                int ix = ox * stride - pad + kx;
                                if (ix < 0 || ix >= w)
                                    continue;
                                s += (double)weight[((size_t)(o * c + ci) * k + ky) * k + kx] *
                                     x[((size_t)(b * c + ci) * h + iy) * w + ix];
                            }
                        }
                    if (relu && s < 0.0)
                        s = 0.0;
                    y[((size_t)(b * oc + o) * oh + oy) * ow + ox] = (float)s;
                }
}

void ref_conv2d_backward(const float *x, int n, int c, int h, int w, const float *weight, int oc, int k, int stride,
                         int pad, int relu, const float *y, const float *dy, float *dx, float *dweight, float *dbias)
{
    int oh = ref_out_size(h, k, stride, pad), ow = ref_out_size(w, k, stride, pad);
    size_t nx = (size_t)n * c * h * w, nw = (size_t)oc * c * k * k, ny = (size_t)n * oc * oh * ow;
    double *gx = calloc(nx, sizeof *gx), *gw = calloc(nw, sizeof *gw), *gb = calloc((size_t)oc, sizeof *gb);
    for (size_t j = 0; j < ny; j++) {
        if (relu && !(y[j] > 0.0f))
            continue;
        size_t t = j;
        int ox = (int)(t % ow);
        t /= ow;
        int oy = (int)(t % oh);
        t /= oh;
        int o = (int)(t % oc), b = (int)(t / oc);
        double d = dy[j];
        gb[o] += d;
        for (int ci = 0; ci < c; ci++)
            for (int ky = 0; ky < k; ky++) {
                int iy = oy * stride - pad + ky;
                if (iy < 0 || iy >= h)
                    continue;
                for (int kx = 0; kx < k; kx++) {
                    int ix = ox * stride - pad + kx;
                    if (ix < 0 || ix >= w)
                        continue;
                    size_t wi = ((size_t)(o * c + ci) * k + ky) * k + kx, xi = ((size_t)(b * c + ci) * h + iy) * w + ix;
                    gw[wi] += d * x[xi];
                    gx[xi] += d * weight[wi];
                }
            }
    }
    for (size_t i = 0; dx && i < nx; i++)
        dx[i] = (float)gx[i];
    for (size_t i = 0; dweight && i < nw; i++)
        dweight[i] = (float)gw[i];
    for (int i = 0; dbias && i < oc; i++)
        dbias[i] = (float)gb[i];
    free(gx);
    free(gw);
    free(gb);
}

void ref_maxpool_forward(const float *x, int n, int c, int h, int w, int k, int stride, float *y, int32_t *argmax)
{
    int oh = ref_out_size(h, k, stride, 0), ow = ref_out_size(w, k, stride, 0);
    for (int p = 0; p < n * c; p++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *plane = x + (size_t)p * h * w;
                int best = oy * stride * w + ox * stride;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int at = (oy * stride + ky) * w + ox * stride + kx;
                        if (plane[at] > plane[best])
                            best = at;
                    }
                size_t o = ((size_t)p * oh + oy) * ow + ox;
                y[o] = plane[best];
                if (argmax)
                    argmax[o] = best;
            }
}

void ref_maxpool_backward(const float *dy, const int32_t *argmax, int n, int c, int h, int w, int k, int stride,
                          float *dx)
{
    int oh = ref_out_size(h, k, stride, 0), ow = ref_out_size(w, k, stride, 0);
    size_t plane = (size_t)h * w;
    double *g = calloc((size_t)n * c * plane, sizeof *g);
    for (int p = 0; p < n * c; p++)
        for (int o = 0; o < oh * ow; o++)
            g[p * plane + (size_t)argmax[(size_t)p * oh * ow + o]] += dy[(size_t)p * oh * ow + o];
    for (size_t i = 0; i < (size_t)n * c * plane; i++)
        dx[i] = (float)g[i];
    free(g);
}

void ref_gap_forward(const float *x, int n, int c, int hw, float *y)
{
    for (int p = 0; p < n * c; p++) {
        double s = 0.0;
        for (int i = 0; i < hw; i++)
            s += x[(size_t)p * hw + i];
        y[p] = (float)(s / hw);
    }
}

void ref_gap_backward(const float *dy, int n, int c, int hw, float *dx)
{
    for (int p = 0; p < n * c; p++)
        for (int i = 0; i < hw; i++)
            dx[(size_t)p * hw + i] = (float)((double)dy[p] / hw);
}

void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    philox4x32_ctr_t c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
    philox4x32_key_t k = {{key[0], key[1]}};
    philox4x32_ctr_t r = philox4x32_R(10, c, k);
    for (int i = 0; i < 4; i++)
        out[i] = r.v[i];
}

int ref_dropout_keep(uint64_t i, uint64_t seed, uint64_t step, float p)
{
    /* one Philox block per four elements: element i takes word i % 4 of block i / 4 */
    uint64_t q = i / 4;
    uint32_t ctr[4] = {(uint32_t)q, (uint32_t)(q >> 32), (uint32_t)step, (uint32_t)(step >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, r[4];
    ref_philox4x32_10(ctr, key, r);
    return (double)(r[i % 4] >> 8) * (1.0 / 16777216.0) >= (double)p;
}

void ref_dropout_forward(const float *x, int n, int c, int h, int w, float p, uint64_t seed, uint64_t step, float *y)
{
    ref_dropout_slice_forward(x, n, c, h, w, p, seed, step, 0, n, y);
}

void ref_dropout_slice_forward(const float *x, int n, int c, int h, int w, float p, uint64_t seed, uint64_t step,
                               int offset, int global_n, float *y)
{
    size_t hw = (size_t)h * w;
    float scale = 1.0f - p;
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (size_t i = 0; i < hw; i++) {
                size_t at = ((size_t)b * c + ch) * hw + i;
                uint64_t dev = ((uint64_t)ch * global_n + offset + b) * hw + i;
                y[at] = ref_dropout_keep(dev, seed, step, p) ? x[at] / scale : 0.0f;
            }
}

void ref_linear_forward(const float *x, int n, int in, const float *weight, const float *bias, int out, int relu,
                        float *y)
{
    ref_conv2d_forward(x, n, in, 1, 1, weight, bias, out, 1, 1, 0, relu, y);
}

void ref_linear_backward(const float *x, int n, int in, const float *weight, int out, int relu, const float *y,
                         const float *dy, float *dx, float *dweight, float *dbias)
{
    ref_conv2d_backward(x, n, in, 1, 1, weight, out, 1, 1, 0, relu, y, dy, dx, dweight, dbias);
}

double ref_softmax_xent(const float *logits, const int32_t *labels, int n, int classes, int *correct, float *grad,
                        double *losses)
{
    double total = 0.0;
    int right = 0;
    for (int b = 0; b < n; b++) {
        const float *l = logits + (size_t)b * classes;
        int arg = 0;
        for (int c = 1; c < classes; c++)
            if (l[c] > l[arg])
                arg = c;
        double m = l[arg], s = 0.0;
        for (int c = 0; c < classes; c++)
            s += exp((double)l[c] - m);
        /* loss = lse - l[label] = log(s) + (m - l[label]): no cancellation for large logits */
        double loss = log(s) + (m - (double)l[labels[b]]);
        total += loss;
        if (losses)
            losses[b] = loss;
        right += arg == labels[b];
        for (int c = 0; grad && c < classes; c++) {
            double prob = exp((double)l[c] - m) / s;
            grad[(size_t)b * classes + c] = (float)((prob - (c == labels[b] ? 1.0 : 0.0)) / n);
        }
    }
    if (correct)
        *correct = right;
    return total / n;
}
