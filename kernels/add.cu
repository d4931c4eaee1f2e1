#include "kernels/cuda_common.cuh"

// CUDA: residual add (see add.h), in fp32 with one rounding to the storage type.
#include "kernels/add.h"
#include "kernels/cuda_utils.cuh"

template <typename T>
__global__ void add_kernel(T* out, const T* a, const T* b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = from_float<T>(to_float(a[i]) + to_float(b[i]));
}

void add_cuda(void* out, const void* a, const void* b, size_t n, DType act) {
    if (n == 0) return;
    if (act == DTYPE_BF16)
        LAUNCH(add_kernel<__nv_bfloat16>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, (__nv_bfloat16*)out,
               (const __nv_bfloat16*)a, (const __nv_bfloat16*)b, n);
    else
        LAUNCH(add_kernel<float>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, (float*)out, (const float*)a,
               (const float*)b, n);
    cudaCheckLaunch();
}
