// Standard normal numbers from Philox4x32-10 (kernels/philox.h):
//   out[i] = philox_normal(seed, stream, offset + i)   for i < n
// The same (seed, stream, offset) gives the same numbers on the CPU and on the GPU, and any
// slice of a stream can be drawn on its own (offset), e.g. per rank or per step.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void random_normal_cpu(float* out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset);
// CUDA (kernels/random.cu); out: device fp32 [n]
void random_normal_cuda(float* out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset);

#ifdef __cplusplus
}
#endif
