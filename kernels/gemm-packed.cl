/* GEMM shaped for CPU OpenCL (PoCL): row-major C = alpha * op(A) op(B) + beta * C.
 * runtime/gemm/gemm-packed.c chooses the path and the launch sizes.
 *
 * Outer-product path (every transpose combination): one work-item owns a column block of NR
 * columns of C and a group of MR-row tiles; for each tile it keeps the MR x NR tile of C in
 * registers (MR * NV vectors of VW floats) over a block of KB values of k, loading NV vectors
 * of B and broadcasting MR values of A per k. A is packed as [M/MR][K][MR] (gemm_pack_a); B is
 * either read in place (op(B) = B, N >= NR: row k of the block is NR contiguous floats) or packed
 * as [N/NR][K][NR] (gemm_pack_b); both zero-padded to the tile. Launched with local size 1,
 * so PoCL compiles each work-item as plain vector code with the accumulators in registers.
 *
 * Dot path (op(A) = A, op(B) = B^T, large K: the weight gradient): both operands have k
 * contiguous, so a work-item keeps DR x DC accumulator vectors along k and reads A and B in
 * place, no packing at all.
 *
 * Either path can split K into slices (the second work-item index) when the tiles are too few
 * for the cores or, on the dot path, K too long for the cache: slice s then writes its partial
 * product to a workspace at s * c_slice and gemm_reduce sums the slices into C.
 *
 * beta == 0 never reads C (so C may hold garbage or NaN). */

#ifndef MR
#define MR 8 /* rows of the register tile */
#endif
#ifndef NV
#define NV 3 /* vectors per row of the register tile: NR = NV * VW columns */
#endif
#ifndef VW
#define VW 16 /* floats per vector: 16 (AVX-512), 8 (AVX2), 4 or 2 */
#endif
#ifndef KB
#define KB 512 /* k values per block: the B block (KB x NR) stays in L1/L2 across the row tiles */
#endif
#ifndef DR
#define DR 4 /* dot path tile rows */
#endif
#ifndef DC
#define DC 6 /* dot path tile columns */
#endif

#define NR (NV * VW)
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VEC CAT(float, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)

/* The sum of a vector's lanes, as a tree of halves. */
float hsum(VEC v)
{
#if VW == 16
    float8 h8 = v.lo + v.hi;
    float4 h4 = h8.lo + h8.hi;
#elif VW == 8
    float4 h4 = v.lo + v.hi;
#elif VW == 4
    float4 h4 = v;
#endif
#if VW >= 4
    float2 h2 = h4.lo + h4.hi;
#elif VW == 2
    float2 h2 = v;
#endif
    return h2.x + h2.y;
}

/* Ap[t][k][r] = op(A)[t * MR + r][k] for t < ceil(M / MR), zero past M.
 * Work-item (t, kb) packs k in [kb * 64, kb * 64 + 64). a_rs / a_ks: element strides of op(A)
 * along rows and along k (lda and 1, or 1 and lda). */
__kernel void gemm_pack_a(__global const float *A, ulong a_off, ulong a_rs, ulong a_ks, int M, int K,
                          __global float *Ap)
{
    int t = get_global_id(0);
    int k0 = get_global_id(1) * 64;
    if (t * MR >= M || k0 >= K)
        return;
    int k1 = min(K, k0 + 64);
    A += a_off;
    __global float *dst = Ap + ((ulong)t * K) * MR;
    for (int r = 0; r < MR; r++) {
        int i = t * MR + r;
        if (i < M) {
            __global const float *src = A + (ulong)i * a_rs;
            for (int k = k0; k < k1; k++)
                dst[(ulong)k * MR + r] = src[(ulong)k * a_ks];
        } else {
            for (int k = k0; k < k1; k++)
                dst[(ulong)k * MR + r] = 0.0f;
        }
    }
}

/* Bp[t][k][c] = op(B)[k][t * NR + c] for t < ceil(N / NR), zero past N.
 * Work-item (t, kb) packs k in [kb * 16, kb * 16 + 16). b_ks / b_cs: element strides of op(B)
 * along k and along columns (ldb and 1, or 1 and ldb). */
__kernel void gemm_pack_b(__global const float *B, ulong b_off, ulong b_ks, ulong b_cs, int N, int K,
                          __global float *Bp)
{
    int t = get_global_id(0);
    int k0 = get_global_id(1) * 16;
    if (t * NR >= N || k0 >= K)
        return;
    int k1 = min(K, k0 + 16);
    int cols = min(NR, N - t * NR);
    B += b_off + (ulong)t * NR * b_cs;
    __global float *dst = Bp + ((ulong)t * K) * NR;
    if (b_cs == 1) {   /* rows of op(B) contiguous */
        for (int k = k0; k < k1; k++) {
            __global const float *src = B + (ulong)k * b_ks;
            for (int c = 0; c < cols; c++)
                dst[(ulong)k * NR + c] = src[c];
            for (int c = cols; c < NR; c++)
                dst[(ulong)k * NR + c] = 0.0f;
        }
    } else {           /* columns of op(B) contiguous: transpose a 16 x NR block */
        for (int c = 0; c < cols; c++) {
            __global const float *src = B + (ulong)c * b_cs;
            for (int k = k0; k < k1; k++)
                dst[(ulong)k * NR + c] = src[(ulong)k * b_ks];
        }
        for (int k = k0; k < k1; k++)
            for (int c = cols; c < NR; c++)
                dst[(ulong)k * NR + c] = 0.0f;
    }
}

/* Stores an MR x NR register tile: rows i0.., columns jb.. of which only [j_own, j_end) belong
 * to this work-item (the last column block of an in-place B is shifted left to stay in bounds).
 * first: C = alpha * acc + beta * C (beta == 0: C is not read); else C += alpha * acc. */
#define STORE_TILE(acc, C, ldc, i0, M, jb, j_own, j_end, alpha, beta, first)                          \
    do {                                                                                            \
        if ((i0) + MR <= (M) && (jb) == (j_own) && (jb) + NR <= (j_end)) {                          \
            for (int r_ = 0; r_ < MR; r_++) {                                                       \
                __global float *c_ = (C) + (ulong)((i0) + r_) * (ldc) + (jb);                       \
                for (int v_ = 0; v_ < NV; v_++) {                                                   \
                    VEC o_ = (alpha) * acc[r_][v_];                                                 \
                    if (!(first))                                                                   \
                        o_ += VLOAD(v_, c_);                                                        \
                    else if ((beta) != 0.0f)                                                        \
                        o_ += (beta) * VLOAD(v_, c_);                                               \
                    VSTORE(o_, v_, c_);                                                             \
                }                                                                                   \
            }                                                                                       \
        } else {                                                                                    \
            for (int r_ = 0; r_ < MR && (i0) + r_ < (M); r_++) {                                    \
                __global float *c_ = (C) + (ulong)((i0) + r_) * (ldc);                              \
                for (int v_ = 0; v_ < NV; v_++) {                                                   \
                    float t_[VW];                                                                   \
                    VSTORE(acc[r_][v_], 0, t_);                                                     \
                    for (int l_ = 0; l_ < VW; l_++) {                                               \
                        int j_ = (jb) + v_ * VW + l_;                                               \
                        if (j_ < (j_own) || j_ >= (j_end))                                          \
                            continue;                                                               \
                        float o_ = (alpha) * t_[l_];                                                \
                        if (!(first))                                                               \
                            o_ += c_[j_];                                                           \
                        else if ((beta) != 0.0f)                                                    \
                            o_ += (beta) * c_[j_];                                                  \
                        c_[j_] = o_;                                                                \
                    }                                                                               \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    } while (0)

/* Outer-product micro-kernel. Work-item (nt + ntiles * g, s): column block nt, row tiles
 * [g * mt_per_item, (g + 1) * mt_per_item), k slice [s * kc, s * kc + kc).
 * b_packed: B is Bp from gemm_pack_b (b_off, ldb ignored); else op(B) = B row-major, N >= NR.
 * Slice s writes to C + c_off + s * c_slice. epi (only without K slices): 1 then adds
 * bias[row] (from bias + bias_off) to the work-item's part of C, 2 also applies ReLU: the
 * convolution's bias and activation while that part is still in cache. */
__kernel void gemm_tile(__global const float *Ap, __global const float *B, ulong b_off, ulong ldb, int b_packed,
                        __global float *C, ulong c_off, ulong ldc, ulong c_slice, int M, int N, int K, int kc,
                        int mt_per_item, float alpha, float beta, __global const float *bias, ulong bias_off,
                        int epi)
{
    int ntiles = (N + NR - 1) / NR, mtiles = (M + MR - 1) / MR;
    int nt = get_global_id(0) % ntiles, g = get_global_id(0) / ntiles;
    int s = get_global_id(1);
    int ks0 = s * kc, ks1 = min(K, ks0 + kc);
    int mt0 = g * mt_per_item, mt1 = min(mtiles, mt0 + mt_per_item);
    if (mt0 >= mtiles || ks0 >= K)
        return;
    int j_own = nt * NR, j_end = min(N, j_own + NR);
    int jb;
    __global const float *pb;
    ulong bstride;
    if (b_packed) {
        jb = j_own;
        pb = B + (ulong)nt * K * NR;
        bstride = NR;
    } else {
        jb = min(j_own, N - NR);
        pb = B + b_off + jb;
        bstride = ldb;
    }
    C += c_off + (ulong)s * c_slice;
    bias += bias_off;
    for (int k0 = ks0; k0 < ks1; k0 += KB) {
        int k1 = min(ks1, k0 + KB);
        int first = k0 == ks0;
        for (int mt = mt0; mt < mt1; mt++) {
            __global const float *pa = Ap + ((ulong)mt * K + k0) * MR;
            __global const float *q = pb + (ulong)k0 * bstride;
            VEC acc[MR][NV];
#pragma unroll
            for (int r = 0; r < MR; r++)
#pragma unroll
                for (int v = 0; v < NV; v++)
                    acc[r][v] = (VEC)(0.0f);
            for (int k = k0; k < k1; k++) {
                VEC b[NV];
#pragma unroll
                for (int v = 0; v < NV; v++)
                    b[v] = VLOAD(v, q);
#pragma unroll
                for (int r = 0; r < MR; r++) {
                    VEC a = (VEC)(pa[r]);
#pragma unroll
                    for (int v = 0; v < NV; v++)
                        acc[r][v] = fma(a, b[v], acc[r][v]);
                }
                pa += MR;
                q += bstride;
            }
            STORE_TILE(acc, C, ldc, mt * MR, M, jb, j_own, j_end, alpha, beta, first);
        }
    }
    /* The epilogue as a pass over this work-item's columns, still in cache, rather than inside
     * STORE_TILE: there it measured 12% slower (the hot loop compiled worse). */
    if (epi) {
        for (int i = mt0 * MR; i < min(M, mt1 * MR); i++) {
            __global float *c = C + (ulong)i * ldc;
            float b = bias[i];
            for (int j = j_own; j < j_end; j++) {
                float v = c[j] + b;
                c[j] = epi == 2 ? fmax(v, 0.0f) : v;
            }
        }
    }
}

/* Dot micro-kernel for C = alpha * A B^T + beta * C with A [M][K] (lda) and B [N][K] (ldb):
 * work-item (jt + jtiles * g, s) owns columns [jt * DC, jt * DC + DC), row tiles
 * [g * mt_per_item, ...) of DR rows, and the k slice [s * kc, s * kc + kc). Rows and columns
 * past the edge are clamped to the last one (read, never stored). (Blocking k inside the slice
 * to keep B's rows in L1 measured 10% slower: the lane sums per block cost more.) */
__kernel void gemm_dot_nt(__global const float *A, ulong a_off, ulong lda, __global const float *B, ulong b_off,
                          ulong ldb, __global float *C, ulong c_off, ulong ldc, ulong c_slice, int M, int N, int K,
                          int kc, int mt_per_item, float alpha, float beta)
{
    int jtiles = (N + DC - 1) / DC, mtiles = (M + DR - 1) / DR;
    int jt = get_global_id(0) % jtiles, g = get_global_id(0) / jtiles;
    int s = get_global_id(1);
    int ks0 = s * kc, ks1 = min(K, ks0 + kc);
    int mt0 = g * mt_per_item, mt1 = min(mtiles, mt0 + mt_per_item);
    if (mt0 >= mtiles || ks0 >= K)
        return;
    A += a_off;
    B += b_off;
    C += c_off + (ulong)s * c_slice;
    __global const float *pb[DC];
#pragma unroll
    for (int c = 0; c < DC; c++)
        pb[c] = B + (ulong)min(jt * DC + c, N - 1) * ldb;
    int kv1 = ks0 + (ks1 - ks0) / VW * VW;
    for (int mt = mt0; mt < mt1; mt++) {
        __global const float *pa[DR];
#pragma unroll
        for (int r = 0; r < DR; r++)
            pa[r] = A + (ulong)min(mt * DR + r, M - 1) * lda;
        VEC acc[DR][DC];
#pragma unroll
        for (int r = 0; r < DR; r++)
#pragma unroll
            for (int c = 0; c < DC; c++)
                acc[r][c] = (VEC)(0.0f);
        for (int k = ks0; k < kv1; k += VW) {
            VEC b[DC];
#pragma unroll
            for (int c = 0; c < DC; c++)
                b[c] = VLOAD(0, pb[c] + k);
#pragma unroll
            for (int r = 0; r < DR; r++) {
                VEC a = VLOAD(0, pa[r] + k);
#pragma unroll
                for (int c = 0; c < DC; c++)
                    acc[r][c] = fma(a, b[c], acc[r][c]);
            }
        }
        for (int r = 0; r < DR; r++) {
            int i = mt * DR + r;
            if (i >= M)
                break;
            for (int c = 0; c < DC; c++) {
                int j = jt * DC + c;
                if (j >= N)
                    break;
                float sum = hsum(acc[r][c]);
                for (int k = kv1; k < ks1; k++)
                    sum = fma(pa[r][k], pb[c][k], sum);
                __global float *o = C + (ulong)i * ldc + j;
                float v = alpha * sum;
                if (beta != 0.0f)
                    v += beta * *o;
                *o = v;
            }
        }
    }
}

/* C[i][j] = alpha * sum_s W[s * M * N + i * N + j] + beta * C[i][j] (beta == 0: C not read).
 * Work-item (jb, i) handles 64 columns of row i. */
__kernel void gemm_reduce(__global const float *W, int slices, __global float *C, ulong c_off, ulong ldc, int M,
                          int N, float alpha, float beta)
{
    int j0 = get_global_id(0) * 64, i = get_global_id(1);
    if (i >= M || j0 >= N)
        return;
    ulong mn = (ulong)M * N;
    __global float *c = C + c_off + (ulong)i * ldc + j0;
    __global const float *w = W + (ulong)i * N + j0;
    if (j0 + 64 <= N) {
        /* four named vectors, not an initialised array: rusticl keeps such an array's
         * initialiser in a constant buffer whose address it reads inside the loop, which Mesa's
         * llvmpipe warns about ("Treating load_kernel_arg in control flow as uniform") */
        float16 s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (int s = 0; s < slices; s++, w += mn) {
            s0 += vload16(0, w);
            s1 += vload16(1, w);
            s2 += vload16(2, w);
            s3 += vload16(3, w);
        }
        s0 *= alpha, s1 *= alpha, s2 *= alpha, s3 *= alpha;
        if (beta != 0.0f) {
            s0 += beta * vload16(0, c);
            s1 += beta * vload16(1, c);
            s2 += beta * vload16(2, c);
            s3 += beta * vload16(3, c);
        }
        vstore16(s0, 0, c);
        vstore16(s1, 1, c);
        vstore16(s2, 2, c);
        vstore16(s3, 3, c);
        return;
    }
    for (int j = 0; j < N - j0; j++) {
        float sum = 0.0f;
        for (int s = 0; s < slices; s++)
            sum += w[s * mn + j];
        float v = alpha * sum;
        if (beta != 0.0f)
            v += beta * c[j];
        c[j] = v;
    }
}
