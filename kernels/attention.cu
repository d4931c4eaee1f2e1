#include "kernels/cuda_common.cuh"

// Multi-head scaled dot-product attention on CUDA, flash-attention style (see attention.h for
// the contract and docs/KERNELS.md for the algorithm). Storage T = float or __nv_bfloat16,
// all arithmetic in fp32, no float atomics: every output element is summed by one thread in a
// fixed order, so results are bitwise reproducible.
//
// One block of 256 threads owns a tile of 64 queries (forward, dQ) or 64 keys (dK/dV) of one
// (batch, head) and walks over the tiles of the other side, of WT = 64 rows, or of fewer (32 in the
// forward, 16 in the backward) for head sizes 65-128 where the device's opt-in shared memory per
// block is smaller than the 116 KiB (forward) and 150 KiB (backward) that 64 rows take (99 KiB on
// sm_86, sm_89, sm_120; the launchers ask cudaDevAttrMaxSharedMemoryPerBlockOptin). Tiles live in shared memory as fp32,
// rows of HD = 64 or 128 channels (the head size zero-padded) with a row stride of HD + 4
// floats so that 16 lanes reading 16 different rows with float4 hit distinct banks. Thread
// (tx, ty) = (tid % 16, tid / 16) computes
//   score micro-tiles:  rows ty*4 + i (i < 4)  x  columns tx + 16 j (j < WT/16)    (tile_dot)
//   output micro-tiles: rows ty*4 + i (i < 4)  x  channels tx*HD/16 + k            (tile_accumulate)
// so the 16 lanes of a row group hold one score row (softmax reductions are 4 xor-shuffles).
#include <math.h>

#include "common/check.h"
#include "kernels/attention.h"

#define ATT_TILE 64     // queries and keys per tile
#define ATT_THREADS 256  // 16 x 16
#define ATT_LS (ATT_TILE + 4)  // row stride of 64 x 64 score tiles in shared memory

template <int HD> struct AttDims {
    static constexpr int LD = HD + 4;      // row stride of token tiles [64][LD]
    static constexpr int DN = HD / 16;     // channels per thread in output micro-tiles
    static constexpr int TOKEN_TILE = ATT_TILE * LD;
    static constexpr int MIN_BLOCKS = HD <= 64 ? 2 : 1;  // register cap 128 at HD 64; HD 128 would spill
    // the walked tiles where the device allows less shared memory than 64 rows take (64: all do at HD 64)
    static constexpr int SMALL_FORWARD_WT = HD <= 64 ? ATT_TILE : 32;
    static constexpr int SMALL_BACKWARD_WT = HD <= 64 ? ATT_TILE : 16;
    // dynamic shared memory: forward a token tile, two walked tiles (K, V) and P [WT][ATT_LS]; backward
    // two token tiles, two walked tiles, a score tile [WT][ATT_LS], lse and delta [64]
    __host__ __device__ static constexpr size_t forward_shared_bytes(int wt) {
        return ((size_t)(ATT_TILE + 2 * wt) * LD + (size_t)wt * ATT_LS) * sizeof(float);
    }
    __host__ __device__ static constexpr size_t backward_shared_bytes(int wt) {
        return ((size_t)(2 * ATT_TILE + 2 * wt) * LD + (size_t)wt * ATT_LS + 2 * ATT_TILE) * sizeof(float);
    }
};

// Valid keys of a batch row: key_len[b] clamped to [0, T] (all T when key_len is NULL).
__device__ __forceinline__ int attention_key_count(const int* key_len, int b, int T) {
    int n = key_len ? key_len[b] : T;
    return n < 0 ? 0 : (n > T ? T : n);
}

// dst [ROWS][LD] (fp32) = rows row0 .. row0+ROWS-1 of src (row stride `stride` elements), channels
// 0..hs-1; rows >= n_rows and channels >= hs are zero.
template <typename T, int HD, int ROWS>
__device__ void load_token_tile(float* dst, const T* src, size_t stride, int row0, int n_rows, int hs) {
    constexpr int LD = AttDims<HD>::LD;
    for (int idx = threadIdx.x; idx < ROWS * HD; idx += ATT_THREADS) {
        const int r = idx / HD, d = idx % HD;
        dst[r * LD + d] = (r < n_rows && d < hs) ? to_float(src[(size_t)(row0 + r) * stride + d]) : 0.0f;
    }
}

// acc[i][j] = sum_d A[ty*4 + i][d] * B[tx + 16 j][d] over token tiles A [64][LD], B [16 NJ][LD].
template <int HD, int NJ>
__device__ __forceinline__ void tile_dot(float acc[4][NJ], const float* A, const float* Bt) {
    constexpr int LD = AttDims<HD>::LD;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < NJ; j++) acc[i][j] = 0.0f;
    for (int d = 0; d < HD; d += 4) {
        float4 a[4], b[NJ];
        for (int i = 0; i < 4; i++) a[i] = *(const float4*)&A[(ty * 4 + i) * LD + d];
        for (int j = 0; j < NJ; j++) b[j] = *(const float4*)&Bt[(tx + 16 * j) * LD + d];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < NJ; j++)
                acc[i][j] += a[i].x * b[j].x + a[i].y * b[j].y + a[i].z * b[j].z + a[i].w * b[j].w;
    }
}

// acc[i][k] += sum_{c < n} S[c][ty*4 + i] * X[c][tx*DN + k] for a score tile S stored
// column-major [64][ATT_LS] (its row index is the micro-tile row) and a token tile X [64][LD].
template <int HD>
__device__ __forceinline__ void tile_accumulate(float acc[4][AttDims<HD>::DN], const float* S, const float* X, int n) {
    constexpr int LD = AttDims<HD>::LD, DN = AttDims<HD>::DN;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int c = 0; c < n; c++) {
        const float4 s = *(const float4*)&S[c * ATT_LS + ty * 4];
        const float sv[4] = {s.x, s.y, s.z, s.w};
        for (int k4 = 0; k4 < DN; k4 += 4) {
            const float4 x = *(const float4*)&X[c * LD + tx * DN + k4];
            for (int i = 0; i < 4; i++) {
                acc[i][k4 + 0] += sv[i] * x.x;
                acc[i][k4 + 1] += sv[i] * x.y;
                acc[i][k4 + 2] += sv[i] * x.z;
                acc[i][k4 + 3] += sv[i] * x.w;
            }
        }
    }
}

// Stores v[i][j] (micro-tile rows ty*4 + i, columns tx + 16 j) column-major: S[tx + 16 j][ty*4 + i].
template <int NJ>
__device__ __forceinline__ void store_scores_transposed(float* S, const float v[4][NJ]) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int j = 0; j < NJ; j++)
        *(float4*)&S[(tx + 16 * j) * ATT_LS + ty * 4] = make_float4(v[0][j], v[1][j], v[2][j], v[3][j]);
}

// Sum / max over the 16 lanes of a row group (lanes differ in tx only).
__device__ __forceinline__ float row_group_sum(float v) {
    for (int offset = 8; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
__device__ __forceinline__ float row_group_max(float v) {
    for (int offset = 8; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// grid (ceil(T/64), H, B). out [B,T,C], lse [B,H,T], qkv [B,T,3C], key_len [B] or NULL. Key tiles of WT.
template <typename T, int HD, int WT>
__global__ void __launch_bounds__(ATT_THREADS, AttDims<HD>::MIN_BLOCKS)
attention_forward_kernel(T* out, float* lse, const T* qkv, const int* key_len, int seq, int C, int H, int causal,
                         float scale) {
    using Dims = AttDims<HD>;
    constexpr int DN = Dims::DN, NJ = WT / 16;
    DYNAMIC_SHARED(float, smem, Dims::forward_shared_bytes(WT));
    float* Qs = smem;                    // [64][LD] queries of this tile
    float* Ks = Qs + Dims::TOKEN_TILE;   // [WT][LD] keys of the current key tile
    float* Vs = Ks + WT * Dims::LD;      // [WT][LD] values of the current key tile
    float* Pt = Vs + WT * Dims::LD;      // [WT keys][ATT_LS] probabilities, column-major
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int q0 = blockIdx.x * ATT_TILE, h = blockIdx.y, b = blockIdx.z;
    const int hs = C / H;
    const size_t stride = 3 * (size_t)C;
    const T* base = qkv + (size_t)b * seq * stride + h * hs;
    const int n_keys = attention_key_count(key_len, b, seq);
    const int key_end = causal ? min(n_keys, q0 + ATT_TILE) : n_keys;  // keys past it are masked for all rows

    load_token_tile<T, HD, ATT_TILE>(Qs, base, stride, q0, seq - q0, hs);
    float o[4][DN], m[4], l[4];
    for (int i = 0; i < 4; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
        for (int k = 0; k < DN; k++) o[i][k] = 0.0f;
    }
    for (int k0 = 0; k0 < key_end; k0 += WT) {
        __syncthreads();  // the previous tile's Ks, Vs, Pt are no longer read
        load_token_tile<T, HD, WT>(Ks, base + C, stride, k0, key_end - k0, hs);
        load_token_tile<T, HD, WT>(Vs, base + 2 * C, stride, k0, key_end - k0, hs);
        __syncthreads();
        float s[4][NJ];
        tile_dot<HD, NJ>(s, Qs, Ks);
        for (int i = 0; i < 4; i++) {
            const int row = q0 + ty * 4 + i;
            float tile_max = -INFINITY;
            for (int j = 0; j < NJ; j++) {
                const int key = k0 + tx + 16 * j;
                const bool valid = key < key_end && (!causal || key <= row);
                s[i][j] = valid ? s[i][j] * scale : -INFINITY;
                tile_max = fmaxf(tile_max, s[i][j]);
            }
            const float m_new = fmaxf(m[i], row_group_max(tile_max));
            const float m_ref = m_new == -INFINITY ? 0.0f : m_new;  // no valid key yet: exp(-inf) = 0, not NaN
            const float correction = expf(m[i] - m_ref);
            float tile_sum = 0.0f;
            for (int j = 0; j < NJ; j++) {
                s[i][j] = expf(s[i][j] - m_ref);
                tile_sum += s[i][j];
            }
            l[i] = l[i] * correction + row_group_sum(tile_sum);
            m[i] = m_new;
            for (int k = 0; k < DN; k++) o[i][k] *= correction;
        }
        store_scores_transposed<NJ>(Pt, s);
        __syncthreads();
        tile_accumulate<HD>(o, Pt, Vs, min(WT, key_end - k0));
    }
    for (int i = 0; i < 4; i++) {
        const int row = q0 + ty * 4 + i;
        if (row >= seq) continue;
        const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        T* dst = out + ((size_t)b * seq + row) * C + h * hs;
        for (int k = 0; k < DN; k++) {
            const int d = tx * DN + k;
            if (d < hs) dst[d] = from_float<T>(o[i][k] * inv);
        }
        if (tx == 0) lse[((size_t)b * H + h) * seq + row] = l[i] > 0.0f ? m[i] + logf(l[i]) : -INFINITY;
    }
}

// delta [B,H,T] = rowsum(dout * out) per head; one warp per (b, t, h), n_rows = B*T*H.
template <typename T>
__global__ void attention_delta_kernel(float* delta, const T* dout, const T* out, int n_rows, int seq, int C, int H) {
    const int row = blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;
    const int lane = threadIdx.x % WARP_SIZE;
    if (row >= n_rows) return;  // whole warps leave together
    const int h = row % H, bt = row / H;
    const int hs = C / H;
    const size_t offset = (size_t)bt * C + h * hs;
    float sum = 0.0f;
    for (int d = lane; d < hs; d += WARP_SIZE) sum += to_float(dout[offset + d]) * to_float(out[offset + d]);
    for (int o = WARP_SIZE / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (lane == 0) delta[((size_t)(bt / seq) * H + h) * seq + bt % seq] = sum;
}

// dK, dV of one key tile: grid (ceil(T/64), H, B). Walks over the query tiles (of WT) that can see it:
//   p = exp(scale q.k - lse), ds = p (dout.v - delta);  dv += p dout,  dk += scale ds q
template <typename T, int HD, int WT>
__global__ void __launch_bounds__(ATT_THREADS, AttDims<HD>::MIN_BLOCKS)
attention_backward_dkdv_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                               const int* key_len, int seq, int C, int H, int causal, float scale) {
    using Dims = AttDims<HD>;
    constexpr int DN = Dims::DN, NJ = WT / 16;
    DYNAMIC_SHARED(float, smem, Dims::backward_shared_bytes(WT));
    float* Ks = smem;                     // [64][LD] keys of this tile
    float* Vs = Ks + Dims::TOKEN_TILE;    // [64][LD] values of this tile
    float* Qs = Vs + Dims::TOKEN_TILE;    // [WT][LD] queries of the current query tile
    float* dOs = Qs + WT * Dims::LD;      // [WT][LD] output gradients of the current query tile
    float* St = dOs + WT * Dims::LD;      // [WT queries][ATT_LS]: p, then ds (column-major over keys)
    float* lse_s = St + WT * ATT_LS;      // [64], the first WT used
    float* delta_s = lse_s + ATT_TILE;    // [64], the first WT used
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int k0 = blockIdx.x * ATT_TILE, h = blockIdx.y, b = blockIdx.z;
    const int hs = C / H;
    const size_t stride = 3 * (size_t)C;
    const T* base = qkv + (size_t)b * seq * stride + h * hs;
    const T* dout_base = dout + (size_t)b * seq * C + h * hs;
    const float* lse_row = lse + ((size_t)b * H + h) * seq;
    const float* delta_row = delta + ((size_t)b * H + h) * seq;
    const int n_keys = attention_key_count(key_len, b, seq);

    load_token_tile<T, HD, ATT_TILE>(Ks, base + C, stride, k0, n_keys - k0, hs);
    load_token_tile<T, HD, ATT_TILE>(Vs, base + 2 * C, stride, k0, n_keys - k0, hs);
    float dk[4][DN], dv[4][DN];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < DN; k++) dk[i][k] = dv[i][k] = 0.0f;
    // A fully masked key tile gets zero gradients; causal: queries before k0 cannot see it.
    const int q_begin = k0 >= n_keys ? seq : (causal ? k0 : 0);
    for (int q0 = q_begin; q0 < seq; q0 += WT) {
        __syncthreads();  // the previous query tile is no longer read
        load_token_tile<T, HD, WT>(Qs, base, stride, q0, seq - q0, hs);
        load_token_tile<T, HD, WT>(dOs, dout_base, C, q0, seq - q0, hs);
        for (int r = threadIdx.x; r < WT; r += ATT_THREADS) {
            lse_s[r] = q0 + r < seq ? lse_row[q0 + r] : 0.0f;
            delta_s[r] = q0 + r < seq ? delta_row[q0 + r] : 0.0f;
        }
        __syncthreads();
        float p[4][NJ], ds[4][NJ];  // rows: keys ty*4 + i; columns: queries tx + 16 j
        tile_dot<HD, NJ>(p, Ks, Qs);
        tile_dot<HD, NJ>(ds, Vs, dOs);
        for (int i = 0; i < 4; i++) {
            const int key = k0 + ty * 4 + i;
            for (int j = 0; j < NJ; j++) {
                const int r = tx + 16 * j, row = q0 + r;
                const bool valid = key < n_keys && row < seq && (!causal || key <= row);
                p[i][j] = valid ? expf(p[i][j] * scale - lse_s[r]) : 0.0f;
                ds[i][j] = p[i][j] * (ds[i][j] - delta_s[r]);
            }
        }
        const int n_rows = min(WT, seq - q0);
        store_scores_transposed<NJ>(St, p);
        __syncthreads();
        tile_accumulate<HD>(dv, St, dOs, n_rows);
        __syncthreads();  // p is read; St takes ds
        store_scores_transposed<NJ>(St, ds);
        __syncthreads();
        tile_accumulate<HD>(dk, St, Qs, n_rows);
    }
    for (int i = 0; i < 4; i++) {
        const int key = k0 + ty * 4 + i;
        if (key >= seq) continue;
        T* dst = dqkv + ((size_t)b * seq + key) * stride + h * hs;
        for (int k = 0; k < DN; k++) {
            const int d = tx * DN + k;
            if (d < hs) {
                dst[C + d] = from_float<T>(dk[i][k] * scale);
                dst[2 * C + d] = from_float<T>(dv[i][k]);
            }
        }
    }
}

// dQ of one query tile: grid (ceil(T/64), H, B). Walks over the key tiles (of WT) it sees:
//   dq += scale ds k
template <typename T, int HD, int WT>
__global__ void __launch_bounds__(ATT_THREADS, AttDims<HD>::MIN_BLOCKS)
attention_backward_dq_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                             const int* key_len, int seq, int C, int H, int causal, float scale) {
    using Dims = AttDims<HD>;
    constexpr int DN = Dims::DN, NJ = WT / 16;
    DYNAMIC_SHARED(float, smem, Dims::backward_shared_bytes(WT));
    float* Qs = smem;                     // [64][LD] queries of this tile
    float* dOs = Qs + Dims::TOKEN_TILE;   // [64][LD] their output gradients
    float* Ks = dOs + Dims::TOKEN_TILE;   // [WT][LD] keys of the current key tile
    float* Vs = Ks + WT * Dims::LD;       // [WT][LD] values of the current key tile
    float* dSt = Vs + WT * Dims::LD;      // [WT keys][ATT_LS] ds, column-major over queries
    float* lse_s = dSt + WT * ATT_LS;     // [64]
    float* delta_s = lse_s + ATT_TILE;    // [64]
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int q0 = blockIdx.x * ATT_TILE, h = blockIdx.y, b = blockIdx.z;
    const int hs = C / H;
    const size_t stride = 3 * (size_t)C;
    const T* base = qkv + (size_t)b * seq * stride + h * hs;
    const int n_keys = attention_key_count(key_len, b, seq);
    const int key_end = causal ? min(n_keys, q0 + ATT_TILE) : n_keys;

    load_token_tile<T, HD, ATT_TILE>(Qs, base, stride, q0, seq - q0, hs);
    load_token_tile<T, HD, ATT_TILE>(dOs, dout + (size_t)b * seq * C + h * hs, C, q0, seq - q0, hs);
    for (int r = threadIdx.x; r < ATT_TILE; r += ATT_THREADS) {
        lse_s[r] = q0 + r < seq ? lse[((size_t)b * H + h) * seq + q0 + r] : 0.0f;
        delta_s[r] = q0 + r < seq ? delta[((size_t)b * H + h) * seq + q0 + r] : 0.0f;
    }
    float dq[4][DN];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < DN; k++) dq[i][k] = 0.0f;
    for (int k0 = 0; k0 < key_end; k0 += WT) {
        __syncthreads();  // the previous key tile is no longer read
        load_token_tile<T, HD, WT>(Ks, base + C, stride, k0, key_end - k0, hs);
        load_token_tile<T, HD, WT>(Vs, base + 2 * C, stride, k0, key_end - k0, hs);
        __syncthreads();
        float ds[4][NJ], dp[4][NJ];  // rows: queries ty*4 + i; columns: keys tx + 16 j
        tile_dot<HD, NJ>(ds, Qs, Ks);
        tile_dot<HD, NJ>(dp, dOs, Vs);
        for (int i = 0; i < 4; i++) {
            const int r = ty * 4 + i, row = q0 + r;
            for (int j = 0; j < NJ; j++) {
                const int key = k0 + tx + 16 * j;
                const bool valid = key < key_end && row < seq && (!causal || key <= row);
                ds[i][j] = valid ? expf(ds[i][j] * scale - lse_s[r]) * (dp[i][j] - delta_s[r]) : 0.0f;
            }
        }
        store_scores_transposed<NJ>(dSt, ds);
        __syncthreads();
        tile_accumulate<HD>(dq, dSt, Ks, min(WT, key_end - k0));
    }
    for (int i = 0; i < 4; i++) {
        const int row = q0 + ty * 4 + i;
        if (row >= seq) continue;
        T* dst = dqkv + ((size_t)b * seq + row) * stride + h * hs;
        for (int k = 0; k < DN; k++) {
            const int d = tx * DN + k;
            if (d < hs) dst[d] = from_float<T>(dq[i][k] * scale);
        }
    }
}

// ------------------------------------------------------------------------------------ launchers

// Checks the shape and returns the padded head size (64 or 128).
static int attention_head_tile(int B, int T, int C, int H, const char* what) {
    if (B < 0 || T < 0 || C <= 0 || H <= 0 || C % H != 0)
        FATAL("%s: bad shape B=%d T=%d C=%d H=%d (C must be a positive multiple of H)", what, B, T, C, H);
    const int hs = C / H;
    if (hs > ATTENTION_MAX_HEAD_SIZE)
        FATAL("%s: head size C/H = %d is not supported (the CUDA kernels take 1..%d)", what, hs,
              ATTENTION_MAX_HEAD_SIZE);
    if (H > 65535 || B > 65535) FATAL("%s: B=%d or H=%d exceeds the grid limit 65535", what, B, H);
    return hs <= 64 ? 64 : 128;
}

// The dynamic shared memory a block of the current device may opt in to (99 KiB on sm_86, sm_89 and
// sm_120; 163 KiB on sm_80; 227 KiB on sm_90 and sm_100).
static size_t attention_shared_optin(void) {
    int device = 0, optin = 0;
    cudaCheck(cudaGetDevice(&device));
    cudaCheck(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return (size_t)optin;
}

// The walked tile: 64 rows where the device allows their shared memory, else `small`.
static int attention_walked_tile(size_t fast_bytes, int small, size_t small_bytes, const char* what) {
    const size_t optin = attention_shared_optin();
    if (fast_bytes <= optin) return ATT_TILE;
    if (small_bytes > optin)
        FATAL("%s: the kernels need %zu bytes of shared memory per block, the device allows %zu", what, small_bytes,
              optin);
    return small;
}

template <typename T, int HD, int WT>
static void attention_forward_launch(void* out, float* lse, const void* qkv, const int* key_len, int B, int T_,
                                     int C, int H, int causal) {
    const size_t shared = AttDims<HD>::forward_shared_bytes(WT);
    cudaCheck(cudaFuncSetAttribute(attention_forward_kernel<T, HD, WT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   (int)shared));
    const dim3 grid(CEIL_DIV(T_, ATT_TILE), H, B);
    const float scale = 1.0f / sqrtf((float)(C / H));
    LAUNCH((attention_forward_kernel<T, HD, WT>), grid, ATT_THREADS, shared, (T*)out, lse, (const T*)qkv, key_len, T_,
           C, H, causal, scale);
    cudaCheckLaunch();
}

template <typename T, int HD>
static void attention_forward_tiles(void* out, float* lse, const void* qkv, const int* key_len, int B, int T_, int C,
                                    int H, int causal) {
    using Dims = AttDims<HD>;
    constexpr int SMALL = Dims::SMALL_FORWARD_WT;
    if (attention_walked_tile(Dims::forward_shared_bytes(ATT_TILE), SMALL, Dims::forward_shared_bytes(SMALL),
                              "attention_forward_cuda") == ATT_TILE)
        attention_forward_launch<T, HD, ATT_TILE>(out, lse, qkv, key_len, B, T_, C, H, causal);
    else
        attention_forward_launch<T, HD, SMALL>(out, lse, qkv, key_len, B, T_, C, H, causal);
}

// The backward's scratch: delta [B,H,T], grown on demand and kept.
static float* attention_delta_buffer(size_t n) {
    static float* buffer;
    static size_t capacity;
    if (n > capacity) {
        if (buffer) cudaCheck(cudaFree(buffer));
        cudaCheck(cudaMalloc((void**)&buffer, n * sizeof(float)));
        capacity = n;
    }
    return buffer;
}

template <typename T, int HD, int WT>
static void attention_backward_launch(void* dqkv, const void* dout, const void* out, const float* lse,
                                      const void* qkv, const int* key_len, int B, int T_, int C, int H, int causal) {
    const int n_rows = B * T_ * H;
    float* delta = attention_delta_buffer((size_t)n_rows);
    const int warps_per_block = ATT_THREADS / WARP_SIZE;
    LAUNCH((attention_delta_kernel<T>), CEIL_DIV(n_rows, warps_per_block), ATT_THREADS, 0, delta, (const T*)dout,
           (const T*)out, n_rows, T_, C, H);
    cudaCheckLaunch();

    const dim3 grid(CEIL_DIV(T_, ATT_TILE), H, B);
    const float scale = 1.0f / sqrtf((float)(C / H));
    const size_t shared = AttDims<HD>::backward_shared_bytes(WT);
    cudaCheck(cudaFuncSetAttribute(attention_backward_dkdv_kernel<T, HD, WT>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared));
    cudaCheck(cudaFuncSetAttribute(attention_backward_dq_kernel<T, HD, WT>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared));
    LAUNCH((attention_backward_dkdv_kernel<T, HD, WT>), grid, ATT_THREADS, shared, (T*)dqkv, (const T*)dout,
           (const T*)qkv, lse, delta, key_len, T_, C, H, causal, scale);
    cudaCheckLaunch();
    LAUNCH((attention_backward_dq_kernel<T, HD, WT>), grid, ATT_THREADS, shared, (T*)dqkv, (const T*)dout,
           (const T*)qkv, lse, delta, key_len, T_, C, H, causal, scale);
    cudaCheckLaunch();
}

template <typename T, int HD>
static void attention_backward_tiles(void* dqkv, const void* dout, const void* out, const float* lse, const void* qkv,
                                     const int* key_len, int B, int T_, int C, int H, int causal) {
    using Dims = AttDims<HD>;
    constexpr int SMALL = Dims::SMALL_BACKWARD_WT;
    if (attention_walked_tile(Dims::backward_shared_bytes(ATT_TILE), SMALL, Dims::backward_shared_bytes(SMALL),
                              "attention_backward_cuda") == ATT_TILE)
        attention_backward_launch<T, HD, ATT_TILE>(dqkv, dout, out, lse, qkv, key_len, B, T_, C, H, causal);
    else
        attention_backward_launch<T, HD, SMALL>(dqkv, dout, out, lse, qkv, key_len, B, T_, C, H, causal);
}

extern "C" void attention_forward_cuda(void* out, float* lse, const void* qkv, const int* key_len, int B, int T,
                                       int C, int H, int causal, DType dtype) {
    const int hd = attention_head_tile(B, T, C, H, "attention_forward_cuda");
    if ((size_t)B * T == 0) return;
    if (dtype == DTYPE_BF16) {
        if (hd == 64) attention_forward_tiles<__nv_bfloat16, 64>(out, lse, qkv, key_len, B, T, C, H, causal);
        else attention_forward_tiles<__nv_bfloat16, 128>(out, lse, qkv, key_len, B, T, C, H, causal);
    } else {
        if (hd == 64) attention_forward_tiles<float, 64>(out, lse, qkv, key_len, B, T, C, H, causal);
        else attention_forward_tiles<float, 128>(out, lse, qkv, key_len, B, T, C, H, causal);
    }
}

extern "C" void attention_backward_cuda(void* dqkv, const void* dout, const void* out, const float* lse,
                                        const void* qkv, const int* key_len, int B, int T, int C, int H, int causal,
                                        DType dtype) {
    const int hd = attention_head_tile(B, T, C, H, "attention_backward_cuda");
    if ((size_t)B * T == 0) return;
    if (dtype == DTYPE_BF16) {
        if (hd == 64)
            attention_backward_tiles<__nv_bfloat16, 64>(dqkv, dout, out, lse, qkv, key_len, B, T, C, H, causal);
        else
            attention_backward_tiles<__nv_bfloat16, 128>(dqkv, dout, out, lse, qkv, key_len, B, T, C, H, causal);
    } else {
        if (hd == 64) attention_backward_tiles<float, 64>(dqkv, dout, out, lse, qkv, key_len, B, T, C, H, causal);
        else attention_backward_tiles<float, 128>(dqkv, dout, out, lse, qkv, key_len, B, T, C, H, causal);
    }
}

extern "C" void attention_forward_backend_cuda(Backend* be, void* out, float* lse, const void* qkv, const int* key_len,
                                               int B, int T, int C, int H, int causal) {
    attention_forward_cuda(out, lse, qkv, key_len, B, T, C, H, causal, be->act);
}

extern "C" void attention_backward_backend_cuda(Backend* be, void* dqkv, const void* dout, const void* out,
                                                const float* lse, const void* qkv, const int* key_len, int B, int T,
                                                int C, int H, int causal) {
    attention_backward_cuda(dqkv, dout, out, lse, qkv, key_len, B, T, C, H, causal, be->act);
}
