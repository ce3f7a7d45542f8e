/* BatchNorm2d / BatchNorm1d as PyTorch computes them. On CNHW activations (and [features,
 * batch] after Flatten) channel c is one contiguous run of n = batch * H * W values, so both
 * are one reduction per channel. One work-group of BN_WG work-items per channel (GPU: 256;
 * CPU: 1, each work-item streaming its channel, as the CPU reductions elsewhere); sums are
 * compensated (Kahan) so a long channel sums as accurately as PyTorch's. */
#ifndef BN_WG
#define BN_WG 256
#endif

/* The work-group's sum of v (all work-items return it). */
float group_sum(float v, __local float *part)
{
    int lid = get_local_id(0);
    part[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = BN_WG / 2; s > 0; s >>= 1) {
        if (lid < s)
            part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

#define KAHAN_ADD(sum, comp, v)       \
    do {                              \
        float y_ = (v) - (comp);      \
        float t_ = (sum) + y_;        \
        (comp) = (t_ - (sum)) - y_;   \
        (sum) = t_;                   \
    } while (0)

/* train: normalise by the batch mean and biased variance, save (mean, 1/std) for backward,
 * running = (1 - momentum) * running + momentum * batch (unbiased variance);
 * eval: normalise by the running statistics (saved too, for a backward in eval mode). */
__kernel __attribute__((reqd_work_group_size(BN_WG, 1, 1)))
void bn_forward(__global const float *x, ulong x_off, int n, int C, __global float *y, ulong y_off,
                __global const float *params, ulong w_off, ulong b_off, __global float *state, ulong mean_off,
                ulong var_off, __global float *saved, int train, float momentum, float eps)
{
    __local float part[BN_WG];
    int c = get_group_id(0), lid = get_local_id(0);
    __global const float *xc = x + x_off + (size_t)c * n;
    __global float *yc = y + y_off + (size_t)c * n;
    /* the batch statistics in either mode: every barrier is reached by the whole work-group
     * unconditionally (PoCL crashes on the reductions inside a branch) */
    float s = 0.0f, k = 0.0f;
    for (int i = lid; i < n; i += BN_WG)
        KAHAN_ADD(s, k, xc[i]);
    float mean = group_sum(s, part) / n;
    float q = 0.0f, kq = 0.0f;
    for (int i = lid; i < n; i += BN_WG) {
        float d = xc[i] - mean;
        KAHAN_ADD(q, kq, d * d);
    }
    float var = group_sum(q, part) / n;
    float invstd = 1.0f / sqrt(var + eps);
    if (train && lid == 0) {
        float unbiased = n > 1 ? var * ((float)n / (float)(n - 1)) : var;
        state[mean_off + c] = (1.0f - momentum) * state[mean_off + c] + momentum * mean;
        state[var_off + c] = (1.0f - momentum) * state[var_off + c] + momentum * unbiased;
    }
    if (!train) {
        mean = state[mean_off + c];
        invstd = 1.0f / sqrt(state[var_off + c] + eps);
    }
    if (lid == 0) {
        saved[c] = mean;
        saved[C + c] = invstd;
    }
    float w = params[w_off + c], b = params[b_off + c];
    for (int i = lid; i < n; i += BN_WG)
        yc[i] = (xc[i] - mean) * invstd * w + b;
}

/* dw += sum(dy * xhat), db += sum(dy); train: dx = w / std * (dy - mean(dy) - xhat * mean(dy * xhat)),
 * eval: dx = w / std * dy (the statistics are constants). */
__kernel __attribute__((reqd_work_group_size(BN_WG, 1, 1)))
void bn_backward(__global const float *x, ulong x_off, __global const float *dy, ulong dy_off, int n, int C,
                 __global const float *saved, __global const float *params, ulong w_off, __global float *grads,
                 ulong dw_off, ulong db_off, __global float *dx, ulong dx_off, int train, int need_dx)
{
    __local float part[BN_WG];
    int c = get_group_id(0), lid = get_local_id(0);
    __global const float *xc = x + x_off + (size_t)c * n, *gc = dy + dy_off + (size_t)c * n;
    float mean = saved[c], invstd = saved[C + c];
    float s = 0.0f, k = 0.0f, sx = 0.0f, kx = 0.0f;
    for (int i = lid; i < n; i += BN_WG) {
        float g = gc[i];
        KAHAN_ADD(s, k, g);
        KAHAN_ADD(sx, kx, g * (xc[i] - mean) * invstd);
    }
    float sum_dy = group_sum(s, part), sum_dy_xhat = group_sum(sx, part);
    if (lid == 0) {
        grads[dw_off + c] += sum_dy_xhat;
        grads[db_off + c] += sum_dy;
    }
    if (!need_dx)
        return;
    float w = params[w_off + c], scale = w * invstd;
    __global float *dc = dx + dx_off + (size_t)c * n;
    if (!train) {
        for (int i = lid; i < n; i += BN_WG)
            dc[i] = gc[i] * scale;
        return;
    }
    float mean_dy = sum_dy / n, mean_dy_xhat = sum_dy_xhat / n;
    for (int i = lid; i < n; i += BN_WG) {
        float xhat = (xc[i] - mean) * invstd;
        dc[i] = (gc[i] - mean_dy - xhat * mean_dy_xhat) * scale;
    }
}
