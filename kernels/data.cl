/* Batches straight from the data set on the device: uint8 images are gathered in the
 * epoch's order, resized and scaled to [0, 1] on the fly, so the resized set (12 GB for
 * Fashion-MNIST at 224) never exists anywhere. */

/* Bilinear with half-pixel centres (PyTorch's interpolate(mode="bilinear",
 * align_corners=False) on images / 255). Output is the graph input [1, batch, OH, OW]. */
__kernel void resize_bilinear_u8(__global const uchar *images, int IH, int IW, __global const int *order,
                                 ulong first, int batch, int OH, int OW, __global float *out)
{
    int p = get_global_id(0), n = get_global_id(1);
    if (p >= OH * OW || n >= batch)
        return;
    int oy = p / OW, ox = p - oy * OW;
    __global const uchar *img = images + (size_t)order[first + n] * IH * IW;
    float fy = fmax(((float)IH / OH) * (oy + 0.5f) - 0.5f, 0.0f);
    float fx = fmax(((float)IW / OW) * (ox + 0.5f) - 0.5f, 0.0f);
    int y0 = (int)fy, x0 = (int)fx;
    int y1 = y0 + (y0 < IH - 1), x1 = x0 + (x0 < IW - 1);
    float ly = fy - y0, lx = fx - x0;
    const float s = 1.0f / 255.0f;
    float a = img[y0 * IW + x0] * s, b = img[y0 * IW + x1] * s;
    float c = img[y1 * IW + x0] * s, d = img[y1 * IW + x1] * s;
    out[(size_t)n * OH * OW + p] = (1.0f - ly) * ((1.0f - lx) * a + lx * b) + ly * ((1.0f - lx) * c + lx * d);
}

__kernel void gather_labels(__global const uchar *labels, __global const int *order, ulong first, int batch,
                            __global int *out)
{
    int n = get_global_id(0);
    if (n < batch)
        out[n] = labels[order[first + n]];
}
