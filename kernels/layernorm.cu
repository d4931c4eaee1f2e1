#include "kernels/cuda_common.cuh"

// CUDA: layer norm forward (optionally fused with the residual add) and backward (see
// layernorm.h). One warp per row with fp32 statistics; the parameter gradients by the
// deterministic column sum of colsum.cuh.
#include "kernels/colsum.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/layernorm.h"

#define LAYERNORM_WARPS 8  // rows per block

// residual (may be NULL) [N,C]; out [N,C]; mean, rstd [N]; a, b [N,C] (b unused without residual)
template <typename T>
__global__ void layernorm_forward_kernel(T* residual, T* out, float* mean, float* rstd, const T* a, const T* b,
                                         const T* weight, const T* bias, int N, int C) {
    int lane = threadIdx.x % WARP_SIZE;
    int row = blockIdx.x * LAYERNORM_WARPS + threadIdx.x / WARP_SIZE;
    if (row >= N) return;  // a whole warp leaves together; there is no block barrier below
    size_t base = (size_t)row * C;
    const T* x = a + base;
    float sum = 0.0f;
    if (residual) {
        for (int c = lane; c < C; c += WARP_SIZE) {
            T r = from_float<T>(to_float(a[base + c]) + to_float(b[base + c]));
            residual[base + c] = r;
            sum += to_float(r);
        }
        x = residual + base;  // each lane reads back only what it wrote
    } else {
        for (int c = lane; c < C; c += WARP_SIZE) sum += to_float(x[c]);
    }
    float m = warp_sum(sum) / (float)C;
    float var = 0.0f;
    for (int c = lane; c < C; c += WARP_SIZE) {
        float d = to_float(x[c]) - m;
        var += d * d;
    }
    float s = 1.0f / sqrtf(warp_sum(var) / (float)C + (float)LAYERNORM_EPS);
    for (int c = lane; c < C; c += WARP_SIZE)
        out[base + c] = from_float<T>((to_float(x[c]) - m) * s * to_float(weight[c]) + to_float(bias[c]));
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = s;
    }
}

// dinp [N,C] += (w dout - mean(w dout) - norm mean(w dout norm)) rstd, one warp per row
template <typename T>
__global__ void layernorm_backward_dinp_kernel(T* dinp, const T* dout, const T* inp, const T* weight,
                                               const float* mean, const float* rstd, int N, int C) {
    int lane = threadIdx.x % WARP_SIZE;
    int row = blockIdx.x * LAYERNORM_WARPS + threadIdx.x / WARP_SIZE;
    if (row >= N) return;
    size_t base = (size_t)row * C;
    float m = mean[row], s = rstd[row];
    float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
    for (int c = lane; c < C; c += WARP_SIZE) {
        float wd = to_float(weight[c]) * to_float(dout[base + c]);
        float norm = (to_float(inp[base + c]) - m) * s;
        dnorm_mean += wd;
        dnorm_norm_mean += wd * norm;
    }
    dnorm_mean = warp_sum(dnorm_mean) / (float)C;
    dnorm_norm_mean = warp_sum(dnorm_norm_mean) / (float)C;
    for (int c = lane; c < C; c += WARP_SIZE) {
        float wd = to_float(weight[c]) * to_float(dout[base + c]);
        float norm = (to_float(inp[base + c]) - m) * s;
        dinp[base + c] = from_float<T>(to_float(dinp[base + c]) + (wd - dnorm_mean - norm * dnorm_norm_mean) * s);
    }
}

// The two column sums of the parameter gradients: dweight = sum dout * norm, dbias = sum dout.
template <typename T>
struct LayernormParamGrads {
    static constexpr int NQ = 2;
    const T* dout;
    const T* inp;
    const float* mean;
    const float* rstd;
    int C;
    __device__ void operator()(int row, int col, float* acc) const {
        float d = to_float(dout[(size_t)row * C + col]);
        acc[0] += (to_float(inp[(size_t)row * C + col]) - mean[row]) * rstd[row] * d;
        acc[1] += d;
    }
};

template <typename T>
static void layernorm_forward(T* residual, T* out, float* mean, float* rstd, const T* a, const T* b, const T* weight,
                              const T* bias, int N, int C) {
    LAUNCH(layernorm_forward_kernel<T>, CEIL_DIV(N, LAYERNORM_WARPS), LAYERNORM_WARPS * WARP_SIZE, 0, residual, out,
           mean, rstd, a, b, weight, bias, N, C);
    cudaCheckLaunch();
}

template <typename T>
static void layernorm_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight,
                               const float* mean, const float* rstd, int N, int C, float* scratch) {
    LAUNCH(layernorm_backward_dinp_kernel<T>, CEIL_DIV(N, LAYERNORM_WARPS), LAYERNORM_WARPS * WARP_SIZE, 0, dinp, dout,
           inp, weight, mean, rstd, N, C);
    cudaCheckLaunch();
    if (dweight || dbias) {
        LayernormParamGrads<T> f = {dout, inp, mean, rstd, C};
        colsum(dweight, dbias, N, C, f, scratch);
    }
}

void layernorm_forward_cuda(void* residual, void* out, float* mean, float* rstd, const void* a, const void* b,
                            const void* weight, const void* bias, int N, int C, DType act) {
    if (N <= 0) return;
    if (act == DTYPE_BF16)
        layernorm_forward((__nv_bfloat16*)residual, (__nv_bfloat16*)out, mean, rstd, (const __nv_bfloat16*)a,
                          (const __nv_bfloat16*)b, (const __nv_bfloat16*)weight, (const __nv_bfloat16*)bias, N, C);
    else
        layernorm_forward((float*)residual, (float*)out, mean, rstd, (const float*)a, (const float*)b,
                          (const float*)weight, (const float*)bias, N, C);
}

size_t layernorm_backward_scratch_floats(int N, int C) { return colsum_scratch_floats(N, C, 2); }

void layernorm_backward_cuda(void* dinp, float* dweight, float* dbias, const void* dout, const void* inp,
                             const void* weight, const float* mean, const float* rstd, int N, int C, float* scratch,
                             DType act) {
    if (N <= 0) return;
    if (act == DTYPE_BF16)
        layernorm_backward((__nv_bfloat16*)dinp, dweight, dbias, (const __nv_bfloat16*)dout,
                           (const __nv_bfloat16*)inp, (const __nv_bfloat16*)weight, mean, rstd, N, C, scratch);
    else
        layernorm_backward((float*)dinp, dweight, dbias, (const float*)dout, (const float*)inp, (const float*)weight,
                           mean, rstd, N, C, scratch);
}
