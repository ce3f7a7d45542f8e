/* AvgPool2d(K, S) without padding, floor mode (PyTorch's default). Tensors are CNHW, so a
 * (c, n) pair is one contiguous H x W plane. One work-item per output (forward) or input
 * (backward, a gather: deterministic, no atomics). */
__kernel void avgpool_forward(__global const float *x, ulong x_off, int planes, int H, int W, int K, int S, int OH,
                              int OW, __global float *y, ulong y_off)
{
    int o = get_global_id(0), plane = get_global_id(1);
    if (o >= OH * OW || plane >= planes)
        return;
    int oy = o / OW, ox = o - oy * OW;
    __global const float *in = x + x_off + (size_t)plane * H * W + oy * S * W + ox * S;
    float sum = 0.0f;
    for (int ky = 0; ky < K; ky++)
        for (int kx = 0; kx < K; kx++)
            sum += in[ky * W + kx];
    y[y_off + (size_t)plane * OH * OW + o] = sum / (float)(K * K);
}

__kernel void avgpool_backward(__global const float *dy, ulong dy_off, int planes, int H, int W, int K, int S,
                               int OH, int OW, __global float *dx, ulong dx_off)
{
    int i = get_global_id(0), plane = get_global_id(1);
    if (i >= H * W || plane >= planes)
        return;
    int iy = i / W, ix = i - iy * W;
    /* windows oy with oy * S <= iy < oy * S + K */
    int oy0 = iy >= K ? (iy - K) / S + 1 : 0, oy1 = min(iy / S, OH - 1);
    int ox0 = ix >= K ? (ix - K) / S + 1 : 0, ox1 = min(ix / S, OW - 1);
    __global const float *g = dy + dy_off + (size_t)plane * OH * OW;
    float sum = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++)
            sum += g[oy * OW + ox];
    dx[dx_off + (size_t)plane * H * W + i] = sum / (float)(K * K);
}
