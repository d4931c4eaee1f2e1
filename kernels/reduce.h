// Reductions and scaling of fp32 buffers, for the global gradient norm and its clipping.
//   sum_squares: sum_i x[i]^2, deterministic (fixed chunks summed in a fixed order); returned in
//                double to the host
//   scale_f32:   x[i] *= s
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

double sum_squares_cpu(const float* x, size_t n);
void scale_f32_cpu(float* x, float s, size_t n);

// CUDA (kernels/reduce.cu). sum_squares: per-block partial sums on the device (a fixed number of
// blocks for a given n), added in double on the host in block order. `partials`: device fp32 of
// sum_squares_scratch_floats(n). Synchronous (returns the value).
size_t sum_squares_scratch_floats(size_t n);
double sum_squares_cuda(const float* x, size_t n, float* partials);
void scale_f32_cuda(float* x, float s, size_t n);

#ifdef __cplusplus
}
#endif
