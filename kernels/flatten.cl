/* Flatten a CNHW tensor [C, N, H, W] to features x batch [C*H*W, N] (feature f = (c, y, x) in
 * PyTorch's flatten order), and back. */
__kernel void flatten_forward(__global const float *x, ulong x_off, int batch, int C, int HW,
                              __global float *y, ulong y_off)
{
    int n = get_global_id(0), f = get_global_id(1);
    if (n >= batch || f >= C * HW)
        return;
    int c = f / HW, i = f - c * HW;
    y[y_off + (size_t)f * batch + n] = x[x_off + ((size_t)c * batch + n) * HW + i];
}

__kernel void flatten_backward(__global const float *dy, ulong dy_off, int batch, int C, int HW,
                               __global float *dx, ulong dx_off)
{
    int n = get_global_id(0), f = get_global_id(1);
    if (n >= batch || f >= C * HW)
        return;
    int c = f / HW, i = f - c * HW;
    dx[dx_off + ((size_t)c * batch + n) * HW + i] = dy[dy_off + (size_t)f * batch + n];
}
