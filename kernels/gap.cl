/* The global average pool (AdaptiveAvgPool2d((1, 1))). Tensors are CNHW, so a (c, n) pair is
 * one contiguous H x W plane. */

/* y[plane] = mean of the plane; one work-item per plane (planes are small at the end of a CNN). */
__kernel void gap_forward(__global const float *x, ulong x_off, int planes, int HW, __global float *y, ulong y_off)
{
    int plane = get_global_id(0);
    if (plane >= planes)
        return;
    float sum = 0.0f;
    for (int i = 0; i < HW; i++)
        sum += x[x_off + (size_t)plane * HW + i];
    y[y_off + plane] = sum / HW;
}

__kernel void gap_backward(__global const float *dy, ulong dy_off, int planes, int HW, __global float *dx,
                           ulong dx_off)
{
    int i = get_global_id(0), plane = get_global_id(1);
    if (i >= HW || plane >= planes)
        return;
    dx[dx_off + (size_t)plane * HW + i] = dy[dy_off + plane] / HW;
}
