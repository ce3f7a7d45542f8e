/* Inverted dropout with a counter-based generator: the mask of element i at training step
 * `step` is a pure function of (seed, step, i), so backward regenerates it instead of storing
 * it, and a seeded (or resumed) run draws exactly the same masks. */

/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011);
 * tests/test-layers.c checks it against Random123's philox4x32. */
uint4 philox4x32_10(uint4 c, uint2 k)
{
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k.x += 0x9E3779B9u;
            k.y += 0xBB67AE85u;
        }
        uint hi0 = mul_hi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        uint hi1 = mul_hi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

/* Nonzero when element i is kept: a uniform 24-bit draw in [0, 1) compared with p. */
int dropout_keep(ulong i, ulong seed, ulong step, float p)
{
    uint4 r = philox4x32_10((uint4)((uint)i, (uint)(i >> 32), (uint)step, (uint)(step >> 32)),
                            (uint2)((uint)seed, (uint)(seed >> 32)));
    return (float)(r.x >> 8) * (1.0f / 16777216.0f) >= p;
}

__kernel void dropout_forward(__global const float *x, ulong x_off, int n, float p, ulong seed, ulong step,
                              __global float *y, ulong y_off)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    y[y_off + i] = dropout_keep((ulong)i, seed, step, p) ? x[x_off + i] / (1.0f - p) : 0.0f;
}

__kernel void dropout_backward(__global const float *dy, ulong dy_off, int n, float p, ulong seed, ulong step,
                               __global float *dx, ulong dx_off)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    dx[dx_off + i] = dropout_keep((ulong)i, seed, step, p) ? dy[dy_off + i] / (1.0f - p) : 0.0f;
}

/* Eval mode (and p = 0) is the identity. */
__kernel void copy(__global const float *x, ulong x_off, int n, __global float *y, ulong y_off)
{
    int i = get_global_id(0);
    if (i < n)
        y[y_off + i] = x[x_off + i];
}
