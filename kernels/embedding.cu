#include "kernels/cuda_common.cuh"

// CUDA: token + position embedding forward, and the prefix part of its backward (see
// embedding.h); the table and position gradients are row scatters (rowscatter.h).
#include "kernels/embedding.h"

#define EMBEDDING_THREADS 256

// grid (B*T rows, column tiles)
template <typename T>
__global__ void embedding_forward_kernel(T* out, const T* prefix, int prefix_T, const int* tokens, const T* table,
                                         const T* pos_table, const int* pos_ids, int T_len, int K, int C) {
    int row = blockIdx.x;
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int b = row / T_len, t = row % T_len;
    float v = to_float(pos_table[(size_t)pos_ids[t] * C + c]);
    if (t < K) {
        v += to_float(prefix[((size_t)b * prefix_T + t) * C + c]);
    } else {
        int token = tokens[(size_t)b * (T_len - K) + t - K];
        if (token >= 0) v += to_float(table[(size_t)token * C + c]);
    }
    out[(size_t)row * C + c] = from_float<T>(v);
}

// grid (B*K rows, column tiles): dprefix[b, t < K, :] = dout[b, t, :]
template <typename T>
__global__ void embedding_backward_prefix_kernel(T* dprefix, int prefix_T, const T* dout, int T_len, int K, int C) {
    int b = blockIdx.x / K, t = blockIdx.x % K;
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    dprefix[((size_t)b * prefix_T + t) * C + c] = dout[((size_t)b * T_len + t) * C + c];
}

void embedding_forward_cuda(void* out, const void* prefix, int prefix_T, const int* tokens, const void* table,
                            const void* pos_table, const int* pos_ids, int B, int T, int K, int C, DType act) {
    if (B <= 0 || T <= 0) return;
    dim3 grid(B * T, CEIL_DIV(C, EMBEDDING_THREADS));
    if (act == DTYPE_BF16)
        LAUNCH(embedding_forward_kernel<__nv_bfloat16>, grid, EMBEDDING_THREADS, 0, (__nv_bfloat16*)out,
               (const __nv_bfloat16*)prefix, prefix_T, tokens, (const __nv_bfloat16*)table,
               (const __nv_bfloat16*)pos_table, pos_ids, T, K, C);
    else
        LAUNCH(embedding_forward_kernel<float>, grid, EMBEDDING_THREADS, 0, (float*)out, (const float*)prefix,
               prefix_T, tokens, (const float*)table, (const float*)pos_table, pos_ids, T, K, C);
    cudaCheckLaunch();
}

void embedding_backward_prefix_cuda(void* dprefix, int prefix_T, const void* dout, int B, int T, int K, int C,
                                    DType act) {
    if (B <= 0 || K <= 0) return;
    dim3 grid(B * K, CEIL_DIV(C, EMBEDDING_THREADS));
    if (act == DTYPE_BF16)
        LAUNCH(embedding_backward_prefix_kernel<__nv_bfloat16>, grid, EMBEDDING_THREADS, 0, (__nv_bfloat16*)dprefix,
               prefix_T, (const __nv_bfloat16*)dout, T, K, C);
    else
        LAUNCH(embedding_backward_prefix_kernel<float>, grid, EMBEDDING_THREADS, 0, (float*)dprefix, prefix_T,
               (const float*)dout, T, K, C);
    cudaCheckLaunch();
}
