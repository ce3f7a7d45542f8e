/* MaxPool2d(K, S, P) as PyTorch's: floor mode, and the padding (P >= 0) never wins. Tensors
 * are CNHW, so a (c, n) pair is one contiguous H x W plane; argmax keeps each output's winner
 * as its index in the plane, for backward. */

/* The maximum of output (oy, ox)'s window, clipped to the plane, and in *best its index. Ties
 * go to the first maximum and NaN propagates, as in PyTorch. */
float window_max(__global const float *in, int H, int W, int K, int S, int P, int oy, int ox, int *best)
{
    int y0 = max(oy * S - P, 0), y1 = min(oy * S - P + K, H);
    int x0 = max(ox * S - P, 0), x1 = min(ox * S - P + K, W);
    int b = y0 * W + x0;
    float m = in[b];
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = in[iy * W + ix];
            if (v > m || isnan(v)) {
                m = v;
                b = iy * W + ix;
            }
        }
    *best = b;
    return m;
}

/* GPU variant: one work-item per output element. */
__kernel void maxpool_forward(__global const float *x, ulong x_off, int planes, int H, int W, int K, int S, int P,
                              int OH, int OW, __global float *y, ulong y_off, __global int *argmax)
{
    int o = get_global_id(0), plane = get_global_id(1);
    if (o >= OH * OW || plane >= planes)
        return;
    int oy = o / OW, ox = o - oy * OW, best;
    size_t out = (size_t)plane * OH * OW + o;
    y[y_off + out] = window_max(x + x_off + (size_t)plane * H * W, H, W, K, S, P, oy, ox, &best);
    argmax[out] = best;
}

/* CPU variant (on PoCL 1.2-1.7x faster than one work-item per element): one work-item per
 * plane walks its outputs in order. */
__kernel void maxpool_forward_planes(__global const float *x, ulong x_off, int planes, int H, int W, int K, int S,
                                     int P, int OH, int OW, __global float *y, ulong y_off, __global int *argmax)
{
    int plane = get_global_id(0);
    if (plane >= planes)
        return;
    __global const float *in = x + x_off + (size_t)plane * H * W;
    size_t out = (size_t)plane * OH * OW;
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++, out++) {
            int best;
            y[y_off + out] = window_max(in, H, W, K, S, P, oy, ox, &best);
            argmax[out] = best;
        }
}

/* GPU variant of the backward, a gather: each input element sums the gradients of the windows
 * whose argmax it is (one work-item per element, coalesced). */
__kernel void maxpool_backward(__global const float *dy, ulong dy_off, __global const int *argmax, int planes,
                               int H, int W, int K, int S, int P, int OH, int OW, __global float *dx, ulong dx_off)
{
    int i = get_global_id(0), plane = get_global_id(1);
    if (i >= H * W || plane >= planes)
        return;
    /* in padded coordinates, the windows oy with oy * S <= iy < oy * S + K */
    int iy = i / W + P, ix = i - (i / W) * W + P;
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

/* CPU variant of the backward (on PoCL 20x faster than the gather for NiN at batch 128): one
 * work-item per plane zeroes it, then adds each window's gradient at its argmax, windows in
 * order, so every element is written by one work-item in a fixed order (deterministic, no
 * atomics). K, S and P are the gather's arguments, unused here. */
__kernel void maxpool_backward_planes(__global const float *dy, ulong dy_off, __global const int *argmax, int planes,
                                      int H, int W, int K, int S, int P, int OH, int OW, __global float *dx,
                                      ulong dx_off)
{
    int plane = get_global_id(0);
    if (plane >= planes)
        return;
    __global float *d = dx + dx_off + (size_t)plane * H * W;
    for (int i = 0; i < H * W; i++)
        d[i] = 0.0f;
    size_t base = (size_t)plane * OH * OW;
    __global const int *arg = argmax + base;
    __global const float *g = dy + dy_off + base;
    for (int o = 0; o < OH * OW; o++)
        d[arg[o]] += g[o];
}
