#include "kernels/cuda_common.cuh"

// CUDA: fp32 <-> activation storage type (see cast.h). bf16 rounds to nearest even.
#include "kernels/cast.h"
#include "kernels/cuda_utils.cuh"

template <typename T>
__global__ void cast_to_act_kernel(T* out, const float* in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = from_float<T>(in[i]);
}

template <typename T>
__global__ void cast_to_f32_kernel(float* out, const T* in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = to_float(in[i]);
}

void cast_to_act_cuda(void* out, const float* in, size_t n, DType act) {
    if (n == 0) return;
    if (act == DTYPE_F32) {
        if (out != (const void*)in) cudaCheck(cudaMemcpy(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice));
        return;
    }
    LAUNCH(cast_to_act_kernel<__nv_bfloat16>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, (__nv_bfloat16*)out,
           in, n);
    cudaCheckLaunch();
}

void cast_to_f32_cuda(float* out, const void* in, size_t n, DType act) {
    if (n == 0) return;
    if (act == DTYPE_F32) {
        if ((const void*)out != in) cudaCheck(cudaMemcpy(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice));
        return;
    }
    LAUNCH(cast_to_f32_kernel<__nv_bfloat16>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, out,
           (const __nv_bfloat16*)in, n);
    cudaCheckLaunch();
}
