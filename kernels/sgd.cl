/* SGD over the whole parameter arena in one launch, as PyTorch's torch.optim.SGD:
 * g' = g + wd * w; v = momentum * v + g' (v = g' on the first step); w -= lr * v.
 * Consumes the gradient: it is zeroed for the next accumulation. */
__kernel void sgd_step(__global float *w, __global float *g, __global float *v, int n, float lr, float momentum,
                       float weight_decay, int first_step)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float d = g[i] + weight_decay * w[i];
    if (momentum != 0.0f) {
        d = first_step ? d : momentum * v[i] + d;
        v[i] = d;
    }
    w[i] -= lr * d;
    g[i] = 0.0f;
}

__kernel void fill(__global float *x, ulong off, int n, float value)
{
    int i = get_global_id(0);
    if (i < n)
        x[off + i] = value;
}
