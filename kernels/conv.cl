/* Convolution helpers around the GEMM. Activations are CNHW: (c, n, y, x) of a batch of
 * `batch` images is at ((c * batch + n) * H + y) * W + x. A convolution over images
 * [n0, n0 + g) is W[OC, K] x col[K, g * P] with K = C * KH * KW and P = OH * OW, so im2col
 * writes col rows in the PyTorch weight order (c, ky, kx) and columns (image, oy, ox). */

/* GPU variant of im2col: one work-item per element, so neighbouring work-items write
 * neighbouring columns (coalesced). */
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

/* GPU variant of col2im, a gather: each input pixel sums the column entries that read it, so
 * no two work-items write the same element and the result is deterministic. */
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

/* The output columns ox whose input column ox * stride - pad + kx lies inside [0, W): [*ox0, *ox1). */
void valid_columns(int kx, int W, int stride, int pad, int OW, int *ox0, int *ox1)
{
    int lo = pad - kx, hi = W - 1 + pad - kx;   /* need lo <= ox * stride <= hi */
    int a = lo > 0 ? (lo + stride - 1) / stride : 0;
    int b = hi < 0 ? 0 : min(OW, hi / stride + 1);
    *ox0 = min(a, OW);
    *ox1 = max(b, *ox0);
}

/* CPU variant of im2col: row kk = (c, ky, kx) of col for image img, one work-item writing its
 * P = OH * OW contiguous values row by row, so the index arithmetic is paid per row and the
 * copy is a plain strided loop (on PoCL 8x faster than one work-item per element). */
__kernel void im2col_rows(__global const float *x, ulong x_off, int batch, int n0, int g, int C, int H, int W,
                          int KH, int KW, int stride, int pad, int OH, int OW,
                          __global float *col, ulong col_off)
{
    int kk = get_global_id(0), img = get_global_id(1);
    if (kk >= C * KH * KW || img >= g)
        return;
    int c = kk / (KH * KW), r = kk - c * KH * KW;
    int ky = r / KW, kx = r - ky * KW;
    int P = OH * OW;
    __global float *dst = col + col_off + (size_t)kk * g * P + (size_t)img * P;
    __global const float *plane = x + x_off + (size_t)(c * batch + n0 + img) * H * W;
    int ox0, ox1;
    valid_columns(kx, W, stride, pad, OW, &ox0, &ox1);
    for (int oy = 0; oy < OH; oy++, dst += OW) {
        int iy = oy * stride - pad + ky;
        int ox = 0;
        if (iy >= 0 && iy < H) {
            int at = iy * W + kx - pad;   /* plane[at + ox * stride], inside the row for ox in [ox0, ox1) */
            for (; ox < ox0; ox++)
                dst[ox] = 0.0f;
            for (; ox < ox1; ox++)
                dst[ox] = plane[at + ox * stride];
        }
        for (; ox < OW; ox++)
            dst[ox] = 0.0f;
    }
}

/* CPU variant of col2im: one work-item owns the input plane (c, img) and adds the column
 * entries of its KH * KW rows into it in a fixed order, so no two work-items write the same
 * element and the result is deterministic. */
__kernel void col2im_planes(__global const float *col, ulong col_off, int batch, int n0, int g, int C, int H,
                            int W, int KH, int KW, int stride, int pad, int OH, int OW,
                            __global float *dx, ulong dx_off)
{
    int c = get_global_id(0), img = get_global_id(1);
    if (c >= C || img >= g)
        return;
    int P = OH * OW;
    __global float *plane = dx + dx_off + (size_t)(c * batch + n0 + img) * H * W;
    for (int i = 0; i < H * W; i++)
        plane[i] = 0.0f;
    for (int ky = 0; ky < KH; ky++)
        for (int kx = 0; kx < KW; kx++) {
            int kk = (c * KH + ky) * KW + kx;
            __global const float *src = col + col_off + (size_t)kk * g * P + (size_t)img * P;
            int ox0, ox1;
            valid_columns(kx, W, stride, pad, OW, &ox0, &ox1);
            for (int oy = 0; oy < OH; oy++) {
                int iy = oy * stride - pad + ky;
                if (iy < 0 || iy >= H)
                    continue;
                int at = iy * W + kx - pad;
                __global const float *row = src + oy * OW;
                for (int ox = ox0; ox < ox1; ox++)
                    plane[at + ox * stride] += row[ox];
            }
        }
}

/* y[c * ld + i] = relu?(y[c * ld + i] + b[c]) over i in [0, n), channels c < C (y from y_off). */
__kernel void bias_act(__global float *y, ulong y_off, int n, ulong ld, int C,
                       __global const float *b, ulong b_off, int relu)
{
    int i = get_global_id(0), c = get_global_id(1);
    if (i >= n || c >= C)
        return;
    size_t at = y_off + (size_t)c * ld + i;
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

/* CPU variant of bias_act_backward: one work-item per channel streams it with 16-wide vectors
 * (the work-group reduction above runs 17x slower on PoCL). */
__kernel void bias_act_backward_channel(__global float *dy, ulong dy_off, __global const float *y, ulong y_off,
                                        int per_channel, __global float *db, ulong db_off, int relu)
{
    int c = get_global_id(0);
    __global float *d = dy + dy_off + (size_t)c * per_channel;
    __global const float *a = y + y_off + (size_t)c * per_channel;
    int n16 = per_channel / 16 * 16;
    float16 acc = (float16)(0.0f);
    if (relu) {
        for (int i = 0; i < n16; i += 16) {
            float16 v = select((float16)(0.0f), vload16(0, d + i), isgreater(vload16(0, a + i), (float16)(0.0f)));
            vstore16(v, 0, d + i);
            acc += v;
        }
    } else {
        for (int i = 0; i < n16; i += 16)
            acc += vload16(0, d + i);
    }
    float8 h8 = acc.lo + acc.hi;
    float4 h4 = h8.lo + h8.hi;
    float sum = (h4.x + h4.y) + (h4.z + h4.w);
    for (int i = n16; i < per_channel; i++) {
        float v = d[i];
        if (relu && !(a[i] > 0.0f)) {
            v = 0.0f;
            d[i] = 0.0f;
        }
        sum += v;
    }
    db[db_off + c] += sum;
}
