#include "kernels/cuda_common.cuh"

// CUDA kernels of incremental decoding (see decode.h for the contracts, docs/KERNELS.md for the
// algorithms). Storage T = float or __nv_bfloat16, arithmetic in fp32, no float atomics: every
// result is merged in a fixed order, so two runs give the same bits.
#include <math.h>

#include "common/check.h"
#include "kernels/cuda_utils.cuh"
#include "kernels/decode.h"

#define FULL_MASK 0xffffffffu

// (m, s) <- the log-sum-exp pair of both, where s is the sum of exp(x - m)
__device__ __forceinline__ void logsumexp_merge(float& m, float& s, float m2, float s2) {
    const float mx = fmaxf(m, m2);
    s = mx == -INFINITY ? 0.0f : s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

// ------------------------------------------------------------------------ cached attention
//
// grid (Tn, H, B): one block per (new token, head, row). The block's 256 threads form 32 groups
// of 8 lanes; group g takes keys g, g + 32, g + 64, ... with an online softmax. Lane r of a group
// holds channels 8 (r + 8 c) .. 8 (r + 8 c) + 7 for c < HD / 64 (HD: the head size padded to 64
// or 128), so a key's dot product is 8 channels per lane and three shuffles. The groups'
// (max, sum, output) are then merged in group order. The new keys and values are read from qkv,
// not from the cache: each block appends only its own token, and no block reads the cache at
// positions >= past, so blocks never wait for one another.
#define CACHED_THREADS 256
#define CACHED_GROUP 8                                  // lanes per key
#define CACHED_GROUPS (CACHED_THREADS / CACHED_GROUP)   // keys in flight per block
#define CACHED_GROUPS_PER_WARP (WARP_SIZE / CACHED_GROUP)

// dst[0..7] = src[0..7] as fp32; src 16-byte aligned.
__device__ __forceinline__ void load8_aligned(float dst[8], const float* src) {
    const float4 a = *(const float4*)src, b = *(const float4*)(src + 4);
    dst[0] = a.x, dst[1] = a.y, dst[2] = a.z, dst[3] = a.w;
    dst[4] = b.x, dst[5] = b.y, dst[6] = b.z, dst[7] = b.w;
}
__device__ __forceinline__ void load8_aligned(float dst[8], const __nv_bfloat16* src) {
    const uint4 u = *(const uint4*)src;
    const unsigned words[4] = {u.x, u.y, u.z, u.w};
    for (int e = 0; e < 4; e++) {  // little-endian: the lower half is the earlier element
        dst[2 * e] = __uint_as_float(words[e] << 16);
        dst[2 * e + 1] = __uint_as_float(words[e] & 0xffff0000u);
    }
}

// dst[e] = row[d0 + e] for e < 8 as fp32, 0 at channels >= hs. VEC: hs % 8 == 0 and rows are
// 16-byte aligned at every multiple of 8 channels, so a chunk is wholly inside or outside.
template <typename T, bool VEC>
__device__ __forceinline__ void load8(float dst[8], const T* row, int d0, int hs) {
    if (VEC && d0 < hs) {
        load8_aligned(dst, row + d0);
        return;
    }
    for (int e = 0; e < 8; e++) dst[e] = d0 + e < hs ? to_float(row[d0 + e]) : 0.0f;
}

// out [B,Tn,C]; qkv [B,Tn,3C]; kcache, vcache [B,Tmax,C]
template <typename T, int HD, bool VEC>
__global__ void __launch_bounds__(CACHED_THREADS)
attention_cached_kernel(T* out, const T* qkv, T* kcache, T* vcache, int past, int Tn, int Tmax, int C, int H,
                        float scale) {
    constexpr int CHUNKS = HD / 64;  // 8-channel chunks per lane
    __shared__ float group_m[CACHED_GROUPS], group_l[CACHED_GROUPS], group_w[CACHED_GROUPS];
    __shared__ float group_o[CACHED_GROUPS][HD];
    const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int hs = C / H;
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int r = lane % CACHED_GROUP, group = threadIdx.x / CACHED_GROUP;
    const size_t stride = 3 * (size_t)C;
    const T* tokens = qkv + (size_t)b * Tn * stride + h * hs;  // [Tn,3C] at head h
    const T* kc = kcache + (size_t)b * Tmax * C + h * hs;      // [Tmax,C] at head h
    const T* vc = vcache + (size_t)b * Tmax * C + h * hs;

    const T* token = tokens + (size_t)i * stride;
    const size_t slot = ((size_t)b * Tmax + past + i) * C + h * hs;
    for (int d = threadIdx.x; d < hs; d += CACHED_THREADS) {
        kcache[slot + d] = token[C + d];
        vcache[slot + d] = token[2 * C + d];
    }

    float q[CHUNKS][8], o[CHUNKS][8];
    for (int c = 0; c < CHUNKS; c++) {
        load8<T, VEC>(q[c], token, 8 * (r + 8 * c), hs);
        for (int e = 0; e < 8; e++) o[c][e] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const int n_keys = past + i + 1;
    // j0 is warp-uniform so that the shuffles below always have the whole warp
    for (int j0 = warp * CACHED_GROUPS_PER_WARP; j0 < n_keys; j0 += CACHED_GROUPS) {
        const int j = j0 + lane / CACHED_GROUP;
        const bool valid = j < n_keys;
        float k[CHUNKS][8], v[CHUNKS][8];
        if (valid) {
            const T* krow = j < past ? kc + (size_t)j * C : tokens + (size_t)(j - past) * stride + C;
            const T* vrow = j < past ? vc + (size_t)j * C : tokens + (size_t)(j - past) * stride + 2 * C;
            for (int c = 0; c < CHUNKS; c++) {
                load8<T, VEC>(k[c], krow, 8 * (r + 8 * c), hs);
                load8<T, VEC>(v[c], vrow, 8 * (r + 8 * c), hs);
            }
        } else {
            for (int c = 0; c < CHUNKS; c++)
                for (int e = 0; e < 8; e++) k[c][e] = v[c][e] = 0.0f;
        }
        float dot = 0.0f;
        for (int c = 0; c < CHUNKS; c++)
            for (int e = 0; e < 8; e++) dot += q[c][e] * k[c][e];
        for (int offset = CACHED_GROUP / 2; offset > 0; offset >>= 1) dot += __shfl_xor_sync(FULL_MASK, dot, offset);
        if (valid) {
            const float s = dot * scale;
            float correction = 1.0f, p;
            if (s > m) {  // one exp per key: either the old terms or the new one is rescaled
                correction = expf(m - s);
                p = 1.0f;
                m = s;
            } else {
                p = expf(s - m);
            }
            l = l * correction + p;
            for (int c = 0; c < CHUNKS; c++)
                for (int e = 0; e < 8; e++) o[c][e] = o[c][e] * correction + p * v[c][e];
        }
    }

    if (r == 0) {
        group_m[group] = m;
        group_l[group] = l;
    }
    for (int c = 0; c < CHUNKS; c++)
        for (int e = 0; e < 8; e++) group_o[group][8 * (r + 8 * c) + e] = o[c][e];
    __syncthreads();
    if (threadIdx.x < CACHED_GROUPS) {
        float max = -INFINITY;  // finite: group 0 always has key 0
        for (int g = 0; g < CACHED_GROUPS; g++) max = fmaxf(max, group_m[g]);
        group_w[threadIdx.x] = expf(group_m[threadIdx.x] - max);  // 0 for a group without keys
    }
    __syncthreads();
    T* dst = out + ((size_t)b * Tn + i) * C + h * hs;
    for (int d = threadIdx.x; d < hs; d += CACHED_THREADS) {
        float sum = 0.0f, acc = 0.0f;
        for (int g = 0; g < CACHED_GROUPS; g++) {
            sum += group_l[g] * group_w[g];
            acc += group_o[g][d] * group_w[g];
        }
        dst[d] = from_float<T>(acc / sum);
    }
}

template <typename T, int HD, bool VEC>
static void attention_cached_launch(void* out, const void* qkv, void* kcache, void* vcache, int past, int B, int Tn,
                                    int Tmax, int C, int H) {
    const dim3 grid(Tn, H, B);
    const float scale = 1.0f / sqrtf((float)(C / H));
    LAUNCH((attention_cached_kernel<T, HD, VEC>), grid, CACHED_THREADS, 0, (T*)out, (const T*)qkv, (T*)kcache,
           (T*)vcache, past, Tn, Tmax, C, H, scale);
    cudaCheckLaunch();
}

template <typename T>
static void attention_cached_dispatch(void* out, const void* qkv, void* kcache, void* vcache, int past, int B, int Tn,
                                      int Tmax, int C, int H) {
    const int hs = C / H;
    const bool aligned = ((uintptr_t)qkv | (uintptr_t)kcache | (uintptr_t)vcache) % 16 == 0;
    const bool vec = aligned && hs % 8 == 0;
    if (hs <= 64) {
        if (vec) attention_cached_launch<T, 64, true>(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H);
        else attention_cached_launch<T, 64, false>(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H);
    } else {
        if (vec) attention_cached_launch<T, 128, true>(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H);
        else attention_cached_launch<T, 128, false>(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H);
    }
}

extern "C" void attention_forward_cached_cuda(void* out, const void* qkv, void* kcache, void* vcache, int past, int B,
                                              int Tn, int Tmax, int C, int H, DType dtype) {
    attention_cached_check_shape("attention_forward_cached_cuda", past, B, Tn, Tmax, C, H);
    if (C / H > ATTENTION_CACHED_MAX_HEAD_SIZE)
        FATAL("attention_forward_cached_cuda: head size C/H = %d is not supported (the CUDA kernel takes 1..%d)",
              C / H, ATTENTION_CACHED_MAX_HEAD_SIZE);
    if (H > 65535 || B > 65535)
        FATAL("attention_forward_cached_cuda: B=%d or H=%d exceeds the grid limit 65535", B, H);
    if ((size_t)B * Tn == 0) return;
    if (dtype == DTYPE_BF16)
        attention_cached_dispatch<__nv_bfloat16>(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H);
    else attention_cached_dispatch<float>(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H);
}

// ------------------------------------------------------------------------ rows gather
//
// grid (column blocks, rows): a grid-stride copy in words of W (16 bytes when the row size and
// both pointers allow it).
template <typename W>
__global__ void rows_gather_kernel(W* dst, const W* src, const int* idx, int n, size_t row_words) {
    for (int i = blockIdx.y; i < n; i += gridDim.y) {
        const W* from = src + (size_t)idx[i] * row_words;
        W* to = dst + (size_t)i * row_words;
        for (size_t w = (size_t)blockIdx.x * blockDim.x + threadIdx.x; w < row_words;
             w += (size_t)gridDim.x * blockDim.x)
            to[w] = from[w];
    }
}

#define GATHER_THREADS 256

template <typename W>
static void rows_gather_launch(void* dst, const void* src, const int* idx, int n, size_t row_bytes) {
    const size_t row_words = row_bytes / sizeof(W);
    const dim3 grid((unsigned)grid_stride_blocks(CEIL_DIV(row_words, (size_t)GATHER_THREADS), 4096),
                    (unsigned)grid_stride_blocks((size_t)n, 65535));
    LAUNCH((rows_gather_kernel<W>), grid, GATHER_THREADS, 0, (W*)dst, (const W*)src, idx, n, row_words);
    cudaCheckLaunch();
}

extern "C" void rows_gather_cuda(void* dst, const void* src, const int* idx, int n, size_t row_bytes) {
    if (n < 0) FATAL("rows_gather_cuda: n=%d rows", n);
    if (n == 0 || row_bytes == 0) return;
    const uintptr_t alignment = (uintptr_t)dst | (uintptr_t)src | (uintptr_t)row_bytes;
    if (alignment % 16 == 0) rows_gather_launch<uint4>(dst, src, idx, n, row_bytes);
    else if (alignment % 8 == 0) rows_gather_launch<uint2>(dst, src, idx, n, row_bytes);
    else if (alignment % 4 == 0) rows_gather_launch<unsigned int>(dst, src, idx, n, row_bytes);
    else if (alignment % 2 == 0) rows_gather_launch<unsigned short>(dst, src, idx, n, row_bytes);
    else rows_gather_launch<unsigned char>(dst, src, idx, n, row_bytes);
}

// ------------------------------------------------------------------------ log-softmax top-k
//
// One block of 8 warps per row. Each lane keeps an online (max, sum of exp) of its columns; each
// warp keeps its own top-k list, sorted and spread over its lanes (position p in slot p / 32 of
// lane p % 32). A warp reads 32 columns at a time; a ballot finds those that beat its k-th entry
// (rare once the list has filled), and each is inserted in turn: its position is a ballot count,
// and the entries after it move down one position by a shuffle. The union of the 8 lists holds
// the row's top k; each of the 8k candidates counts the candidates ranked before it, which is its
// output position. The order is total (logit, then id), so the result is unique and exact.
#define TOPK_THREADS 256
#define TOPK_WARPS (TOPK_THREADS / WARP_SIZE)
#define TOPK_UNROLL 4  // columns per lane per step, loaded together

// a ranks before b: the larger logit, then the smaller id; id < 0 marks an empty entry, last
__device__ __forceinline__ bool topk_before(float va, int ia, float vb, int ib) {
    if (ia < 0) return false;
    if (ib < 0) return true;
    return va > vb || (va == vb && ia < ib);
}

// values [N,k], ids [N,k]; logits [N,Vp]. SLOTS = ceil(k / 32) list entries per lane.
template <typename T, int SLOTS>
__global__ void __launch_bounds__(TOPK_THREADS)
logsoftmax_topk_kernel(float* values, int* ids, const T* logits, int V, int Vp, int k) {
    __shared__ float cand_v[TOPK_WARPS * LOGSOFTMAX_TOPK_MAX_K];
    __shared__ int cand_id[TOPK_WARPS * LOGSOFTMAX_TOPK_MAX_K];
    __shared__ float warp_m[TOPK_WARPS], warp_s[TOPK_WARPS];
    const int row = blockIdx.x;
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const T* z = logits + (size_t)row * Vp;
    const int last_lane = (k - 1) % WARP_SIZE, last_slot = (k - 1) / WARP_SIZE;

    float list_v[SLOTS];  // this lane's entries: positions lane + 32 s
    int list_id[SLOTS];
    for (int s = 0; s < SLOTS; s++) {
        list_v[s] = -INFINITY;
        list_id[s] = -1;
    }
    float kth_v = -INFINITY;  // the entry at position k - 1 (empty until the list fills)
    int kth_id = -1;
    float m = -INFINITY, sum = 0.0f;

    constexpr int STEP = WARP_SIZE * TOPK_UNROLL;
    for (int base = warp * STEP; base < V; base += TOPK_WARPS * STEP) {  // warp-uniform
        float x[TOPK_UNROLL];
        for (int u = 0; u < TOPK_UNROLL; u++) {
            const int j = base + u * WARP_SIZE + lane;
            x[u] = j < V ? to_float(z[j]) : -INFINITY;
        }
        for (int u = 0; u < TOPK_UNROLL; u++) {
            const int j0 = base + u * WARP_SIZE, j = j0 + lane;
            if (x[u] > m) {
                sum = sum * expf(m - x[u]) + 1.0f;
                m = x[u];
            } else if (x[u] != -INFINITY) {
                sum += expf(x[u] - m);
            }
            unsigned wanted = __ballot_sync(FULL_MASK, j < V && topk_before(x[u], j, kth_v, kth_id));
            while (wanted) {  // the same on every lane
                const int src = __ffs((int)wanted) - 1;
                wanted &= wanted - 1;
                const float cand_x = __shfl_sync(FULL_MASK, x[u], src);
                const int cand_j = j0 + src;
                if (!topk_before(cand_x, cand_j, kth_v, kth_id)) continue;  // an earlier insertion raised the bar
                int pos = 0;
                for (int s = 0; s < SLOTS; s++)
                    pos += __popc(__ballot_sync(FULL_MASK, topk_before(list_v[s], list_id[s], cand_x, cand_j)));
                // entry q moves to q + 1 for q >= pos: fetch position q - 1 for this lane's positions q
                float prev_v[SLOTS];
                int prev_id[SLOTS];
                for (int s = 0; s < SLOTS; s++) {
                    prev_v[s] = __shfl_up_sync(FULL_MASK, list_v[s], 1);
                    prev_id[s] = __shfl_up_sync(FULL_MASK, list_id[s], 1);
                }
                for (int s = 1; s < SLOTS; s++) {  // position 32 s - 1 sits on lane 31 of slot s - 1
                    const float wrap_v = __shfl_sync(FULL_MASK, list_v[s - 1], WARP_SIZE - 1);
                    const int wrap_id = __shfl_sync(FULL_MASK, list_id[s - 1], WARP_SIZE - 1);
                    if (lane == 0) {
                        prev_v[s] = wrap_v;
                        prev_id[s] = wrap_id;
                    }
                }
                for (int s = 0; s < SLOTS; s++) {
                    const int q = lane + WARP_SIZE * s;
                    if (q == pos) {
                        list_v[s] = cand_x;
                        list_id[s] = cand_j;
                    } else if (q > pos) {
                        list_v[s] = prev_v[s];
                        list_id[s] = prev_id[s];
                    }
                }
                for (int s = 0; s < SLOTS; s++) {
                    const float v = __shfl_sync(FULL_MASK, list_v[s], last_lane);
                    const int id = __shfl_sync(FULL_MASK, list_id[s], last_lane);
                    if (s == last_slot) {
                        kth_v = v;
                        kth_id = id;
                    }
                }
            }
        }
    }

    for (int s = 0; s < SLOTS; s++) {
        const int q = lane + WARP_SIZE * s;
        if (q < k) {
            cand_v[warp * k + q] = list_v[s];
            cand_id[warp * k + q] = list_id[s];
        }
    }
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
        const float m2 = __shfl_xor_sync(FULL_MASK, m, offset);
        const float s2 = __shfl_xor_sync(FULL_MASK, sum, offset);
        logsumexp_merge(m, sum, m2, s2);
    }
    if (lane == 0) {
        warp_m[warp] = m;
        warp_s[warp] = sum;
    }
    __syncthreads();
    m = -INFINITY;
    sum = 0.0f;
    for (int w = 0; w < TOPK_WARPS; w++) logsumexp_merge(m, sum, warp_m[w], warp_s[w]);
    const float lse = m + logf(sum);
    const int n_cand = TOPK_WARPS * k;
    for (int c = threadIdx.x; c < n_cand; c += TOPK_THREADS) {
        const float v = cand_v[c];
        const int id = cand_id[c];
        if (id < 0) continue;
        int rank = 0;
        for (int c2 = 0; c2 < n_cand; c2++) rank += topk_before(cand_v[c2], cand_id[c2], v, id);
        if (rank < k) {
            values[(size_t)row * k + rank] = v - lse;
            ids[(size_t)row * k + rank] = id;
        }
    }
}

template <typename T>
static void logsoftmax_topk_launch(float* values, int* ids, const void* logits, int N, int V, int Vp, int k) {
    if (k <= WARP_SIZE)
        LAUNCH((logsoftmax_topk_kernel<T, 1>), N, TOPK_THREADS, 0, values, ids, (const T*)logits, V, Vp, k);
    else LAUNCH((logsoftmax_topk_kernel<T, 2>), N, TOPK_THREADS, 0, values, ids, (const T*)logits, V, Vp, k);
    cudaCheckLaunch();
}

extern "C" void logsoftmax_topk_cuda(float* values, int* ids, const void* logits, int N, int V, int Vp, int k,
                                     DType dtype) {
    logsoftmax_topk_check_shape("logsoftmax_topk_cuda", N, V, Vp, k);
    if (k > LOGSOFTMAX_TOPK_MAX_K)
        FATAL("logsoftmax_topk_cuda: k=%d is not supported (the CUDA kernel takes k <= %d)", k,
              LOGSOFTMAX_TOPK_MAX_K);
    if (N == 0) return;
    if (dtype == DTYPE_BF16) logsoftmax_topk_launch<__nv_bfloat16>(values, ids, logits, N, V, Vp, k);
    else logsoftmax_topk_launch<float>(values, ids, logits, N, V, Vp, k);
}

// ------------------------------------------------------------------------ backend entries

extern "C" void attention_forward_cached_backend_cuda(Backend* be, void* out, const void* qkv, void* kcache,
                                                      void* vcache, int past, int B, int Tn, int Tmax, int C, int H) {
    attention_forward_cached_cuda(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H, be->act);
}

extern "C" void rows_gather_backend_cuda(Backend* be, void* dst, const void* src, const int* idx, int n, size_t row) {
    rows_gather_cuda(dst, src, idx, n, row * dtype_size(be->act));
}

extern "C" void logsoftmax_topk_backend_cuda(Backend* be, float* values, int* ids, const void* logits, int N, int V,
                                             int Vp, int k) {
    logsoftmax_topk_cuda(values, ids, logits, N, V, Vp, k, be->act);
}
