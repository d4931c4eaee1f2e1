#include "kernels/cuda_common.cuh"

// CUDA: GELU, tanh form (see gelu.h); fp32 math on either storage type.
#include "kernels/cuda_utils.cuh"
#include "kernels/gelu.h"

__device__ __forceinline__ float gelu_value(float x) {
    const float s = (float)GELU_SCALING_FACTOR;
    float cube = 0.044715f * x * x * x;
    return 0.5f * x * (1.0f + tanhf(s * (x + cube)));
}

__device__ __forceinline__ float gelu_derivative(float x) {
    const float s = (float)GELU_SCALING_FACTOR;
    float cube = 0.044715f * x * x * x;
    float t = tanhf(s * (x + cube));
    float sech2 = 1.0f - t * t;
    return 0.5f * (1.0f + t) + x * 0.5f * sech2 * s * (1.0f + 3.0f * 0.044715f * x * x);
}

template <typename T>
__global__ void gelu_forward_kernel(T* out, const T* inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = from_float<T>(gelu_value(to_float(inp[i])));
}

// dinp may alias dout: each element is read before it is written, by the same thread.
template <typename T>
__global__ void gelu_backward_kernel(T* dinp, const T* inp, const T* dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dinp[i] = from_float<T>(gelu_derivative(to_float(inp[i])) * to_float(dout[i]));
}

void gelu_forward_cuda(void* out, const void* inp, size_t n, DType act) {
    if (n == 0) return;
    if (act == DTYPE_BF16)
        LAUNCH(gelu_forward_kernel<__nv_bfloat16>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, (__nv_bfloat16*)out,
               (const __nv_bfloat16*)inp, n);
    else
        LAUNCH(gelu_forward_kernel<float>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, (float*)out,
               (const float*)inp, n);
    cudaCheckLaunch();
}

void gelu_backward_cuda(void* dinp, const void* inp, const void* dout, size_t n, DType act) {
    if (n == 0) return;
    if (act == DTYPE_BF16)
        LAUNCH(gelu_backward_kernel<__nv_bfloat16>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0,
               (__nv_bfloat16*)dinp, (const __nv_bfloat16*)inp, (const __nv_bfloat16*)dout, n);
    else
        LAUNCH(gelu_backward_kernel<float>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, (float*)dinp,
               (const float*)inp, (const float*)dout, n);
    cudaCheckLaunch();
}
