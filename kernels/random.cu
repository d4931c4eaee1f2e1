#include "kernels/cuda_common.cuh"

// CUDA: Philox normals (see random.h); the generator is kernels/philox.h, shared with the host.
#include "kernels/cuda_utils.cuh"
#include "kernels/philox.h"
#include "kernels/random.h"

__global__ void random_normal_kernel(float* out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = philox_normal(seed, stream, offset + i);
}

void random_normal_cuda(float* out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    if (n == 0) return;
    LAUNCH(random_normal_kernel, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, out, n, seed, stream, offset);
    cudaCheckLaunch();
}
