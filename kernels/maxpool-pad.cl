/* MaxPool2d(K, S, P) with padding P > 0 (as PyTorch: the padding never wins, floor mode);
 * pool.cl keeps the unpadded kernels NiN runs. CNHW: a (c, n) pair is one H x W plane. */

/* GPU and CPU: one work-item per output; argmax keeps the winner's index in the plane. Ties go
 * to the first maximum and NaN propagates, as in PyTorch. */
__kernel void maxpool_pad_forward(__global const float *x, ulong x_off, int planes, int H, int W, int K, int S,
                                  int P, int OH, int OW, __global float *y, ulong y_off, __global int *argmax)
{
    int o = get_global_id(0), plane = get_global_id(1);
    if (o >= OH * OW || plane >= planes)
        return;
    int oy = o / OW, ox = o - oy * OW;
    int y0 = max(oy * S - P, 0), y1 = min(oy * S - P + K, H);
    int x0 = max(ox * S - P, 0), x1 = min(ox * S - P + K, W);
    __global const float *in = x + x_off + (size_t)plane * H * W;
    int best = y0 * W + x0;
    float m = in[best];
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = in[iy * W + ix];
            if (v > m || isnan(v)) {
                m = v;
                best = iy * W + ix;
            }
        }
    size_t out = (size_t)plane * OH * OW + o;
    y[y_off + out] = m;
    argmax[out] = best;
}

/* GPU backward, a gather: each input sums the gradients of the windows whose argmax it is. */
__kernel void maxpool_pad_backward(__global const float *dy, ulong dy_off, __global const int *argmax, int planes,
                                   int H, int W, int K, int S, int P, int OH, int OW, __global float *dx,
                                   ulong dx_off)
{
    int i = get_global_id(0), plane = get_global_id(1);
    if (i >= H * W || plane >= planes)
        return;
    int iy = i / W + P, ix = i - (i / W) * W + P;   /* in padded coordinates */
    int oy0 = iy >= K ? (iy - K) / S + 1 : 0, oy1 = min(iy / S, OH - 1);
    int ox0 = ix >= K ? (ix - K) / S + 1 : 0, ox1 = min(ix / S, OW - 1);
    size_t base = (size_t)plane * OH * OW;
    float sum = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++) {
            size_t o = base + oy * OW + ox;
            if (argmax[o] == i)
                sum += dy[dy_off + o];
        }
    dx[dx_off + (size_t)plane * H * W + i] = sum;
}

/* CPU backward: one work-item per plane zeroes it and adds each window's gradient at its
 * argmax, windows in order (deterministic, no atomics). */
__kernel void maxpool_pad_backward_planes(__global const float *dy, ulong dy_off, __global const int *argmax,
                                          int planes, int H, int W, int K, int S, int P, int OH, int OW,
                                          __global float *dx, ulong dx_off)
{
    int plane = get_global_id(0);
    if (plane >= planes)
        return;
    __global float *d = dx + dx_off + (size_t)plane * H * W;
    for (int i = 0; i < H * W; i++)
        d[i] = 0.0f;
    size_t base = (size_t)plane * OH * OW;
    for (int o = 0; o < OH * OW; o++)
        d[argmax[base + o]] += dy[dy_off + base + o];
}
