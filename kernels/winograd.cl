/* Winograd convolution F(WM x WM, WR x WR) for stride-1 convolutions on CNHW activations
 * (runtime/ops/conv-winograd.c): each WM x WM output tile is A^T [U (.) V] A, where
 * U = G g G^T is the transformed filter and V = B^T d B the transformed ALPHA x ALPHA input
 * patch; summed over input channels, the (.) becomes ALPHA^2 independent GEMMs
 * M[e] = U[e] x V[e] that the host runs. The weight gradient is the correlation of each input
 * patch with its WM x WM output-gradient tile, F(WR x WR, WM x WM): the same input transform,
 * the tile transformed by GW, ALPHA^2 GEMMs summing over tiles, and AW^T . AW back to WR x WR.
 * Built with -DWM=2 -DWR=5 or -DWM=4 -DWR=3; all four use ALPHA = 6 and the points
 * 0, 1, -1, 2, -2, infinity, so they share B^T. The matrices are printed and checked exactly by
 * scripts/winograd-matrices.py (F(2,5), F(4,3), and F(5,2), F(3,4) for the weight gradients). */
#ifndef WM
#define WM 2
#endif
#ifndef WR
#define WR 5
#endif
#define ALPHA (WM + WR - 1)

#if ALPHA != 6
#error "winograd.cl: F(2x2, 5x5) and F(4x4, 3x3) only"
#endif

/* Private constant arrays: after unrolling the compiler folds the zeros and ones away. */
#define WINOGRAD_BT                                                                                               \
    {{4.0f, 0.0f, -5.0f, 0.0f, 1.0f, 0.0f},  {0.0f, -4.0f, -4.0f, 1.0f, 1.0f, 0.0f},                             \
     {0.0f, 4.0f, -4.0f, -1.0f, 1.0f, 0.0f}, {0.0f, -2.0f, -1.0f, 2.0f, 1.0f, 0.0f},                             \
     {0.0f, 2.0f, -1.0f, -2.0f, 1.0f, 0.0f}, {0.0f, 4.0f, 0.0f, -5.0f, 0.0f, 1.0f}}
#if WM == 2
#define WINOGRAD_G                                                                                                \
    {{0.25f, 0.0f, 0.0f, 0.0f, 0.0f},                                                                             \
     {-1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6},                                                     \
     {-1.0f / 6, 1.0f / 6, -1.0f / 6, 1.0f / 6, -1.0f / 6},                                                       \
     {1.0f / 24, 1.0f / 12, 1.0f / 6, 1.0f / 3, 2.0f / 3},                                                        \
     {1.0f / 24, -1.0f / 12, 1.0f / 6, -1.0f / 3, 2.0f / 3},                                                      \
     {0.0f, 0.0f, 0.0f, 0.0f, 1.0f}}
#define WINOGRAD_AT {{1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f}, {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 1.0f}}
/* F(5x5, 2x2) */
#define WINOGRAD_GW                                                                                               \
    {{0.25f, 0.0f}, {-1.0f / 6, -1.0f / 6}, {-1.0f / 6, 1.0f / 6}, {1.0f / 24, 1.0f / 12}, {1.0f / 24, -1.0f / 12}, \
     {0.0f, 1.0f}}
#define WINOGRAD_AWT                                                                                              \
    {{1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f},                                                                        \
     {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 0.0f},                                                                      \
     {0.0f, 1.0f, 1.0f, 4.0f, 4.0f, 0.0f},                                                                        \
     {0.0f, 1.0f, -1.0f, 8.0f, -8.0f, 0.0f},                                                                      \
     {0.0f, 1.0f, 1.0f, 16.0f, 16.0f, 1.0f}}
#else
#define WINOGRAD_G                                                                                                \
    {{0.25f, 0.0f, 0.0f},                                                                                         \
     {-1.0f / 6, -1.0f / 6, -1.0f / 6},                                                                           \
     {-1.0f / 6, 1.0f / 6, -1.0f / 6},                                                                            \
     {1.0f / 24, 1.0f / 12, 1.0f / 6},                                                                            \
     {1.0f / 24, -1.0f / 12, 1.0f / 6},                                                                           \
     {0.0f, 0.0f, 1.0f}}
#define WINOGRAD_AT                                                                                               \
    {{1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f},                                                                        \
     {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 0.0f},                                                                      \
     {0.0f, 1.0f, 1.0f, 4.0f, 4.0f, 0.0f},                                                                        \
     {0.0f, 1.0f, -1.0f, 8.0f, -8.0f, 1.0f}}
/* F(3x3, 4x4) */
#define WINOGRAD_GW                                                                                               \
    {{0.25f, 0.0f, 0.0f, 0.0f},                                                                                   \
     {-1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6},                                                                \
     {-1.0f / 6, 1.0f / 6, -1.0f / 6, 1.0f / 6},                                                                  \
     {1.0f / 24, 1.0f / 12, 1.0f / 6, 1.0f / 3},                                                                  \
     {1.0f / 24, -1.0f / 12, 1.0f / 6, -1.0f / 3},                                                                \
     {0.0f, 0.0f, 0.0f, 1.0f}}
#define WINOGRAD_AWT                                                                                              \
    {{1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f}, {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 0.0f}, {0.0f, 1.0f, 1.0f, 4.0f, 4.0f, 1.0f}}
#endif

/* The two halves of every transform, fully unrolled so the constant matrices fold away:
 * dst = L X (dst[i][j] = sum_k L[i][k] X[k][j]) and dst = X R^T (sum_k X[i][k] R[j][k]). */
#define LEFT_PRODUCT(dst, L, X, NI, NJ, NK)                                                                     \
    _Pragma("unroll") for (int i_ = 0; i_ < (NI); i_++) _Pragma("unroll") for (int j_ = 0; j_ < (NJ); j_++) {     \
        float s_ = 0.0f;                                                                                          \
        _Pragma("unroll") for (int k_ = 0; k_ < (NK); k_++) s_ += (L)[i_][k_] * (X)[k_][j_];                      \
        (dst)[i_][j_] = s_;                                                                                       \
    }
#define RIGHT_PRODUCT(dst, X, R, NI, NJ, NK)                                                                    \
    _Pragma("unroll") for (int i_ = 0; i_ < (NI); i_++) _Pragma("unroll") for (int j_ = 0; j_ < (NJ); j_++) {     \
        float s_ = 0.0f;                                                                                          \
        _Pragma("unroll") for (int k_ = 0; k_ < (NK); k_++) s_ += (X)[i_][k_] * (R)[j_][k_];                      \
        (dst)[i_][j_] = s_;                                                                                       \
    }

/* U[row][e][col] = (G g G^T)[e] for every (out channel, in channel) filter g of w[OC][IC][WR][WR]
 * (row by row, the A of the 36 products cut out of one K: runtime/ops/conv-winograd.c).
 * transpose = 0: row = out channel, col = in channel (the forward pass). transpose = 1: the
 * filter rotated by 180 degrees with row = in channel, col = out channel: the input gradient of
 * a stride-1 convolution is the convolution of the output gradient with that filter. */
__kernel void winograd_filter(__global const float *w, ulong w_off, int OC, int IC, int transpose,
                              __global float *U, ulong u_off)
{
    int i = get_global_id(0);
    if (i >= OC * IC)
        return;
    const float G[ALPHA][WR] = WINOGRAD_G;
    /* consecutive work-items write consecutive columns of U (contiguous stores) */
    int oc = transpose ? i % OC : i / IC, ic = transpose ? i / OC : i % IC;
    __global const float *src = w + w_off + ((size_t)oc * IC + ic) * WR * WR;
    float g[WR][WR], t[ALPHA][WR], u[ALPHA][ALPHA];
#pragma unroll
    for (int a = 0; a < WR * WR; a++)   /* rotated by 180 degrees: read backwards */
        g[a / WR][a % WR] = src[transpose ? WR * WR - 1 - a : a];
    LEFT_PRODUCT(t, G, g, ALPHA, WR, WR);
    RIGHT_PRODUCT(u, t, G, ALPHA, ALPHA, WR);
    int row = transpose ? ic : oc, col = transpose ? oc : ic, cols = transpose ? OC : IC;
    __global float *out = U + u_off + (size_t)row * ALPHA * ALPHA * cols + col;
#pragma unroll
    for (int e = 0; e < ALPHA * ALPHA; e++)
        out[e * cols] = u[e / ALPHA][e % ALPHA];
}

/* V[v_off + e * e_stride + c * c_stride + t] = (B^T d B)[e] for tile t of the images
 * [n0, n0 + T / tiles) of a batch of `batch`, channel c of x (C x H x W per image, CNHW): [e][c][t]
 * for the forward products, [c][e][t] for the weight gradient's. Tile t = (image, ty, tx)
 * covers input rows ty * WM - pad .. + ALPHA - 1 (zeros outside the image). One work-item per
 * (tile, channel). */
__kernel void winograd_input(__global const float *x, ulong x_off, int batch, int n0, int C, int H, int W, int pad,
                             int tiles_h, int tiles_w, int T, __global float *V, ulong v_off, ulong e_stride,
                             ulong c_stride)
{
    int t = get_global_id(0), c = get_global_id(1);
    if (t >= T || c >= C)
        return;
    const float BT[ALPHA][ALPHA] = WINOGRAD_BT;
    int per_image = tiles_h * tiles_w, img = t / per_image, r = t % per_image;
    int y0 = (r / tiles_w) * WM - pad, x0 = (r % tiles_w) * WM - pad;
    __global const float *plane = x + x_off + ((size_t)c * batch + n0 + img) * H * W;
    float d[ALPHA][ALPHA], u[ALPHA][ALPHA], v[ALPHA][ALPHA];
#pragma unroll
    for (int i = 0; i < ALPHA; i++)
#pragma unroll
        for (int j = 0; j < ALPHA; j++) {
            int y = y0 + i, xx = x0 + j;
            d[i][j] = (y >= 0 && y < H && xx >= 0 && xx < W) ? plane[y * W + xx] : 0.0f;
        }
    LEFT_PRODUCT(u, BT, d, ALPHA, ALPHA, ALPHA);
    RIGHT_PRODUCT(v, u, BT, ALPHA, ALPHA, ALPHA);
    __global float *out = V + v_off + c * c_stride + t;
#pragma unroll
    for (int e = 0; e < ALPHA * ALPHA; e++)
        out[e * e_stride] = v[e / ALPHA][e % ALPHA];
}

/* y = relu?(A^T M[.][c][t] A + bias[c]) for tile t and channel c of the output (C x OH x OW per
 * image, CNHW), the tiles numbered as in winograd_input; parts of a tile past the image edge
 * are not written. use_bias = 0 and relu = 0 for the input gradient. */
__kernel void winograd_output(__global const float *M, ulong m_off, int T, int C, int batch, int n0, int OH, int OW,
                              int tiles_h, int tiles_w, __global const float *bias, ulong b_off, int use_bias,
                              int relu, __global float *y, ulong y_off)
{
    int t = get_global_id(0), c = get_global_id(1);
    if (t >= T || c >= C)
        return;
    const float AT[WM][ALPHA] = WINOGRAD_AT;
    size_t plane_stride = (size_t)C * T;
    __global const float *in = M + m_off + (size_t)c * T + t;
    float m[ALPHA][ALPHA], u[WM][ALPHA], v[WM][WM];
#pragma unroll
    for (int e = 0; e < ALPHA * ALPHA; e++)
        m[e / ALPHA][e % ALPHA] = in[e * plane_stride];
    LEFT_PRODUCT(u, AT, m, WM, ALPHA, ALPHA);
    RIGHT_PRODUCT(v, u, AT, WM, WM, ALPHA);
    int per_image = tiles_h * tiles_w, img = t / per_image, r = t % per_image;
    int y0 = (r / tiles_w) * WM, x0 = (r % tiles_w) * WM;
    float b = use_bias ? bias[b_off + c] : 0.0f;
    __global float *plane = y + y_off + ((size_t)c * batch + n0 + img) * OH * OW;
#pragma unroll
    for (int i = 0; i < WM; i++)
#pragma unroll
        for (int j = 0; j < WM; j++) {
            float s = v[i][j] + b;
            if (relu)
                s = fmax(s, 0.0f);
            if (y0 + i < OH && x0 + j < OW)
                plane[(y0 + i) * OW + x0 + j] = s;
        }
}

/* D[c][e][t] = (GW dy GW^T)[e] for the WM x WM tile t of channel c of the output gradient
 * (C x OH x OW per image, CNHW; zeros past the edge), tiles numbered as in winograd_input. */
__kernel void winograd_dy(__global const float *dy, ulong dy_off, int batch, int n0, int C, int OH, int OW,
                          int tiles_h, int tiles_w, int T, __global float *D, ulong d_off)
{
    int t = get_global_id(0), c = get_global_id(1);
    if (t >= T || c >= C)
        return;
    const float GW[ALPHA][WM] = WINOGRAD_GW;
    int per_image = tiles_h * tiles_w, img = t / per_image, r = t % per_image;
    int y0 = (r / tiles_w) * WM, x0 = (r % tiles_w) * WM;
    __global const float *plane = dy + dy_off + ((size_t)c * batch + n0 + img) * OH * OW;
    float d[WM][WM], u[ALPHA][WM], v[ALPHA][ALPHA];
#pragma unroll
    for (int i = 0; i < WM; i++)
#pragma unroll
        for (int j = 0; j < WM; j++)
            d[i][j] = (y0 + i < OH && x0 + j < OW) ? plane[(y0 + i) * OW + x0 + j] : 0.0f;
    LEFT_PRODUCT(u, GW, d, ALPHA, WM, WM);
    RIGHT_PRODUCT(v, u, GW, ALPHA, ALPHA, WM);
    __global float *out = D + d_off + (size_t)c * ALPHA * ALPHA * T + t;
#pragma unroll
    for (int e = 0; e < ALPHA * ALPHA; e++)
        out[(size_t)e * T] = v[e / ALPHA][e % ALPHA];
}

/* dw[oc][ic] += AW^T S[.][oc][ic] AW (WR x WR) for the summed products S [ALPHA^2][OC][IC]. */
__kernel void winograd_filter_grad(__global const float *S, ulong s_off, int OC, int IC, __global float *dw,
                                   ulong dw_off)
{
    int i = get_global_id(0);
    if (i >= OC * IC)
        return;
    const float AWT[WR][ALPHA] = WINOGRAD_AWT;
    size_t plane = (size_t)OC * IC;
    float s[ALPHA][ALPHA], u[WR][ALPHA], v[WR][WR];
#pragma unroll
    for (int e = 0; e < ALPHA * ALPHA; e++)
        s[e / ALPHA][e % ALPHA] = S[s_off + (size_t)e * plane + i];
    LEFT_PRODUCT(u, AWT, s, WR, ALPHA, ALPHA);
    RIGHT_PRODUCT(v, u, AWT, WR, WR, ALPHA);
    __global float *out = dw + dw_off + (size_t)i * WR * WR;
#pragma unroll
    for (int e = 0; e < WR * WR; e++)
        out[e] += v[e / WR][e % WR];
}
