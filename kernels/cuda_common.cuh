// Included first by every .cu file. The same kernel source builds two ways:
// - nvcc: real CUDA (cuda_runtime, bf16, cuBLAS/cuBLASLt);
// - the host C++ compiler with TIPCAP_CUDA_EMU: kernels/emu/cuda_emu.h runs every block's threads
//   as fibers on the CPU and serves the same runtime and library calls, so `make test` executes
//   each kernel as written and compares it with the CPU reference.
// Kernel code uses only what both provide; the two differences of syntax go through macros:
//   LAUNCH(kernel, grid, block, shared_bytes, args...)   instead of kernel<<<...>>>(args...)
//   DYNAMIC_SHARED(type, name, max_bytes);              instead of extern __shared__ type name[]
// max_bytes, a constant, is the most dynamic shared memory the kernel uses: its launches request at
// most that (the emulation checks), and `make check-cuda` lists it in build/cuda-resources.tsv.
#pragma once

#ifdef TIPCAP_CUDA_EMU
#include "kernels/emu/cuda_emu.h"
#else
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#endif

#include "common/cuda_check.h"

#ifdef TIPCAP_CUDA_EMU
#define LAUNCH(kernel, grid, block, shared_bytes, ...) \
    emu_launch(#kernel, kernel, EMU_PTXAS_REPORTED, dim3(grid), dim3(block), (size_t)(shared_bytes), \
               [&]() { kernel(__VA_ARGS__); })
#define DYNAMIC_SHARED(type, name, max_bytes)                                                 \
    static constexpr size_t emu_dynamic_shared_max __attribute__((used)) = (max_bytes);      \
    type* name = (type*)emu_dynamic_shared(emu_dynamic_shared_max)
#else
#define LAUNCH(kernel, grid, block, shared_bytes, ...) \
    kernel<<<(grid), (block), (shared_bytes)>>>(__VA_ARGS__)
#define DYNAMIC_SHARED(type, name, max_bytes)                                      \
    static_assert((max_bytes) > 0, "DYNAMIC_SHARED: the most bytes the kernel uses"); \
    extern __shared__ __align__(16) unsigned char name##_bytes[];                 \
    type* name = (type*)name##_bytes
#endif

#define WARP_SIZE 32
#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

// Storage-type conversions used by templated kernels: T is float or __nv_bfloat16.
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
