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

/* One Philox call gives four 32-bit words: element i takes word i % 4 of the block i / 4.
 * Nonzero when kept: a uniform 24-bit draw in [0, 1) compared with p. */
int keep_word(uint w, float p)
{
    return (float)(w >> 8) * (1.0f / 16777216.0f) >= p;
}

/* One work-item per block of four elements. backward: the same mask applied to dy. */
void dropout_block(__global const float *x, __global float *y, int n, float p, ulong seed, ulong step)
{
    ulong q = get_global_id(0);
    int i0 = (int)(q * 4);
    if (i0 >= n)
        return;
    uint4 r = philox4x32_10((uint4)((uint)q, (uint)(q >> 32), (uint)step, (uint)(step >> 32)),
                            (uint2)((uint)seed, (uint)(seed >> 32)));
    if (i0 + 4 <= n) {   /* whole blocks as one vector, keep_word's rule lane by lane */
        float4 v = vload4(0, x + i0) / (1.0f - p);
        int4 keep = (convert_float4(r >> 8) * (1.0f / 16777216.0f)) >= (float4)(p);
        vstore4(select((float4)(0.0f), v, keep), 0, y + i0);
        return;
    }
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int j = 0; i0 + j < n; j++)
        y[i0 + j] = keep_word(w[j], p) ? x[i0 + j] / (1.0f - p) : 0.0f;
}

__kernel void dropout_forward(__global const float *x, ulong x_off, int n, float p, ulong seed, ulong step,
                              __global float *y, ulong y_off)
{
    dropout_block(x + x_off, y + y_off, n, p, seed, step);
}

__kernel void dropout_backward(__global const float *dy, ulong dy_off, int n, float p, ulong seed, ulong step,
                               __global float *dx, ulong dx_off)
{
    dropout_block(dy + dy_off, dx + dx_off, n, p, seed, step);
}

/* A replica's slice of a global batch (data parallel training): images offset .. offset + batch
 * of a global batch of global_batch. Element (c, n, pixel) takes the mask of element
 * (c, offset + n, pixel) of the global batch's CNHW buffer, so N replicas draw exactly the masks
 * one device draws for the whole batch. One work-item per element (the global index's block of
 * four need not start at a local one). */
void dropout_slice(__global const float *x, __global float *y, int n, float p, ulong seed, ulong step, int batch,
                   int global_batch, int offset, int plane)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    int per_channel = batch * plane, c = i / per_channel, rest = i - c * per_channel;
    ulong g = ((ulong)c * global_batch + offset + rest / plane) * plane + rest % plane, q = g / 4;
    uint4 r = philox4x32_10((uint4)((uint)q, (uint)(q >> 32), (uint)step, (uint)(step >> 32)),
                            (uint2)((uint)seed, (uint)(seed >> 32)));
    uint w[4] = {r.x, r.y, r.z, r.w};
    y[i] = keep_word(w[g % 4], p) ? x[i] / (1.0f - p) : 0.0f;
}

__kernel void dropout_slice_forward(__global const float *x, ulong x_off, int n, float p, ulong seed, ulong step,
                                    int batch, int global_batch, int offset, int plane, __global float *y,
                                    ulong y_off)
{
    dropout_slice(x + x_off, y + y_off, n, p, seed, step, batch, global_batch, offset, plane);
}

__kernel void dropout_slice_backward(__global const float *dy, ulong dy_off, int n, float p, ulong seed, ulong step,
                                     int batch, int global_batch, int offset, int plane, __global float *dx,
                                     ulong dx_off)
{
    dropout_slice(dy + dy_off, dx + dx_off, n, p, seed, step, batch, global_batch, offset, plane);
}

/* Eval mode (and p = 0) is the identity. */
__kernel void copy(__global const float *x, ulong x_off, int n, __global float *y, ulong y_off)
{
    int i = get_global_id(0);
    if (i < n)
        y[y_off + i] = x[x_off + i];
}
