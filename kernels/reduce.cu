#include "kernels/cuda_common.cuh"

// CUDA: sum of squares (deterministic two-pass) and scaling of fp32 buffers (see reduce.h).
#include <stdlib.h>

#include "common/check.h"
#include "kernels/cuda_utils.cuh"
#include "kernels/reduce.h"

#define SUM_SQUARES_THREADS 256
#define SUM_SQUARES_MAX_BLOCKS 1024

// The number of blocks depends on n alone, so the order of the sums does too.
static int sum_squares_blocks(size_t n) {
    return (int)grid_stride_blocks(CEIL_DIV(n, (size_t)SUM_SQUARES_THREADS * 8), SUM_SQUARES_MAX_BLOCKS);
}

size_t sum_squares_scratch_floats(size_t n) { return (size_t)sum_squares_blocks(n); }

// partials[block] = sum of x[i]^2 over the block's grid-stride elements
__global__ void sum_squares_kernel(float* partials, const float* x, size_t n) {
    float acc = 0.0f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        acc += x[i] * x[i];
    acc = block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

double sum_squares_cuda(const float* x, size_t n, float* partials) {
    if (n == 0) return 0.0;
    int blocks = sum_squares_blocks(n);
    LAUNCH(sum_squares_kernel, blocks, SUM_SQUARES_THREADS, 0, partials, x, n);
    cudaCheckLaunch();
    float host[SUM_SQUARES_MAX_BLOCKS];
    cudaCheck(cudaMemcpy(host, partials, (size_t)blocks * sizeof(float), cudaMemcpyDeviceToHost));
    double total = 0.0;
    for (int b = 0; b < blocks; b++) total += (double)host[b];
    return total;
}

__global__ void scale_f32_kernel(float* x, float s, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

void scale_f32_cuda(float* x, float s, size_t n) {
    if (n == 0) return;
    LAUNCH(scale_f32_kernel, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, x, s, n);
    cudaCheckLaunch();
}
