/* Convolution helpers around the GEMM. Activations are CNHW: (c, n, y, x) of a batch of
 * `batch` images is at ((c * batch + n) * H + y) * W + x. A convolution over images
 * [n0, n0 + g) is W[OC, K] x col[K, g * P] with K = C * KH * KW and P = OH * OW, so im2col
 * writes col rows in the PyTorch weight order (c, ky, kx) and columns (image, oy, ox). */

/* col[kk, j] for j in [0, g * P): one work-item per element, columns contiguous. */
__kernel void im2col(__global const float *x, ulong x_off, int batch, int n0, int g, int C, int H, int W,
                     int KH, int KW, int stride, int pad, int OH, int OW,
                     __global float *col, ulong col_off)
{
    int j = get_global_id(0), kk = get_global_id(1);
    int P = OH * OW;
    if (j >= g * P || kk >= C * KH * KW)
        return;
    int img = j / P, p = j - img * P;
    int oy = p / OW, ox = p - oy * OW;
    int c = kk / (KH * KW), r = kk - c * KH * KW;
    int ky = r / KW, kx = r - ky * KW;
    int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
    float v = 0.0f;
    if (iy >= 0 && iy < H && ix >= 0 && ix < W)
        v = x[x_off + ((size_t)(c * batch + n0 + img) * H + iy) * W + ix];
    col[col_off + (size_t)kk * g * P + j] = v;
}

/* The adjoint of im2col as a gather: each input pixel sums the column entries that read it,
 * so no two work-items write the same element and the result is deterministic. */
__kernel void col2im(__global const float *col, ulong col_off, int batch, int n0, int g, int C, int H, int W,
                     int KH, int KW, int stride, int pad, int OH, int OW,
                     __global float *dx, ulong dx_off)
{
    int i = get_global_id(0), c = get_global_id(1);
    if (i >= g * H * W || c >= C)
        return;
    int img = i / (H * W), r = i - img * H * W;
    int iy = r / W, ix = r - iy * W;
    int P = OH * OW;
    size_t ld = (size_t)g * P;
    float sum = 0.0f;
    for (int ky = 0; ky < KH; ky++) {
        int ty = iy + pad - ky;
        if (ty < 0 || ty % stride)
            continue;
        int oy = ty / stride;
        if (oy >= OH)
            continue;
        for (int kx = 0; kx < KW; kx++) {
            int tx = ix + pad - kx;
            if (tx < 0 || tx % stride)
                continue;
            int ox = tx / stride;
            if (ox >= OW)
                continue;
            int kk = (c * KH + ky) * KW + kx;
            sum += col[col_off + kk * ld + (size_t)img * P + oy * OW + ox];
        }
    }
    dx[dx_off + ((size_t)(c * batch + n0 + img) * H + iy) * W + ix] = sum;
}

/* y[c, i] = relu?(y[c, i] + b[c]) over i in [0, per_channel). */
__kernel void bias_act(__global float *y, ulong y_off, int per_channel, int C,
                       __global const float *b, ulong b_off, int relu)
{
    int i = get_global_id(0), c = get_global_id(1);
    if (i >= per_channel || c >= C)
        return;
    size_t at = y_off + (size_t)c * per_channel + i;
    float v = y[at] + b[b_off + c];
    y[at] = relu ? fmax(v, 0.0f) : v;
}

#ifndef REDUCE_WG
#define REDUCE_WG 256
#endif

/* Backward of bias_act, one work-group per channel: dy *= (y > 0) when relu (y is the
 * activated output, so y > 0 exactly where the ReLU passed), and db[c] += sum of dy. */
__kernel __attribute__((reqd_work_group_size(REDUCE_WG, 1, 1)))
void bias_act_backward(__global float *dy, ulong dy_off, __global const float *y, ulong y_off,
                       int per_channel, __global float *db, ulong db_off, int relu)
{
    __local float part[REDUCE_WG];
    int c = get_group_id(0), lid = get_local_id(0);
    size_t base = (size_t)c * per_channel;
    float sum = 0.0f;
    for (int i = lid; i < per_channel; i += REDUCE_WG) {
        float d = dy[dy_off + base + i];
        if (relu && !(y[y_off + base + i] > 0.0f)) {
            d = 0.0f;
            dy[dy_off + base + i] = 0.0f;
        }
        sum += d;
    }
    part[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = REDUCE_WG / 2; s > 0; s >>= 1) {
        if (lid < s)
            part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        db[db_off + c] += part[0];
}
