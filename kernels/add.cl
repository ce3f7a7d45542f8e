/* Elementwise sums: the residual Add (y = a + b) and the graph's gradient accumulation for a
 * tensor read by several layers (grad += scratch). */
__kernel void add_forward(__global const float *a, ulong a_off, __global const float *b, ulong b_off, int n,
                          __global float *y, ulong y_off)
{
    int i = get_global_id(0);
    if (i < n)
        y[y_off + i] = a[a_off + i] + b[b_off + i];
}

__kernel void accumulate(__global float *grad, ulong grad_off, __global const float *scratch, ulong scratch_off,
                         int n)
{
    int i = get_global_id(0);
    if (i < n)
        grad[grad_off + i] += scratch[scratch_off + i];
}
