// Helpers of the kernels in kernels/*.cu: the grid of an elementwise launch, and warp and block
// reductions with a fixed tree (the same inputs give the same bits on every run: no atomics, no
// dependence on scheduling).
#pragma once
#include "kernels/cuda_common.cuh"

#ifdef TIPCAP_CUDA_EMU
#include <stdlib.h>

#include "common/check.h"
#endif

// The grid of a grid-stride launch that needs `needed` blocks for one pass, at most `cap`. Under
// the emulation TIPCAP_EMU_MAX_BLOCKS=N lowers every cap to N, so that the small arrays of the
// tests run each loop's later passes (make test runs the kernel tests so, with N = 2).
static inline size_t grid_stride_blocks(size_t needed, size_t cap) {
#ifdef TIPCAP_CUDA_EMU
    const char* env = getenv("TIPCAP_EMU_MAX_BLOCKS");
    if (env && *env) {
        char* end;
        long v = strtol(env, &end, 10);
        if (*end || v < 1) FATAL("TIPCAP_EMU_MAX_BLOCKS=%s is not a positive number of blocks", env);
        if ((size_t)v < cap) cap = (size_t)v;
    }
#endif
    return needed < 1 ? 1 : needed > cap ? cap : needed;
}

// Blocks for a grid-stride loop over n elements: enough to fill any current GPU, capped so that
// each thread takes several elements of a large array.
#define ELEMENTWISE_THREADS 256
static inline int elementwise_blocks(size_t n) {
    return (int)grid_stride_blocks(CEIL_DIV(n, (size_t)ELEMENTWISE_THREADS), 2048);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over a 1-D block whose size is a multiple of 32 (at most 1024); every thread gets the
// result. Every thread of the block must call it (it holds a barrier). Two calls need a
// __syncthreads() between them (the second one's writes of warp_sums race with the first one's
// reads); no caller makes two, so the barrier is not paid by every call.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float warp_sums[32];
    int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE, n_warps = blockDim.x / WARP_SIZE;
    v = warp_sum(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    return warp_sum(lane < n_warps ? warp_sums[lane] : 0.0f);
}
