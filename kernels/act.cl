/* Activations that cannot be fused into the layer before them (after a BatchNorm, an Add, or
 * LeNet's sigmoids). Backward reads the output y, not the input. */
__kernel void relu_forward(__global const float *x, ulong x_off, int n, __global float *y, ulong y_off)
{
    int i = get_global_id(0);
    if (i < n) {
        float v = x[x_off + i];
        y[y_off + i] = v > 0.0f ? v : (isnan(v) ? v : 0.0f);   /* NaN propagates, as torch.relu */
    }
}

__kernel void relu_backward(__global const float *dy, ulong dy_off, __global const float *y, ulong y_off, int n,
                            __global float *dx, ulong dx_off)
{
    int i = get_global_id(0);
    if (i < n)
        dx[dx_off + i] = y[y_off + i] > 0.0f ? dy[dy_off + i] : 0.0f;
}

__kernel void sigmoid_forward(__global const float *x, ulong x_off, int n, __global float *y, ulong y_off)
{
    int i = get_global_id(0);
    if (i < n)
        y[y_off + i] = 1.0f / (1.0f + exp(-x[x_off + i]));
}

__kernel void sigmoid_backward(__global const float *dy, ulong dy_off, __global const float *y, ulong y_off, int n,
                               __global float *dx, ulong dx_off)
{
    int i = get_global_id(0);
    if (i < n) {
        float s = y[y_off + i];
        dx[dx_off + i] = dy[dy_off + i] * s * (1.0f - s);
    }
}
