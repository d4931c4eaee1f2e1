// The Gaussian modality-gap mapping of a text embedding (all fp32):
//   z[b,d]  = philox_normal(seed, stream, (row0 + b) * D + d)          (kernels/philox.h)
//   y[b,:]  = t[b,:] + mu + L z[b,:]        L [D,D] lower-triangular (only j <= i is read)
//   norm[b] = ||y[b,:]||;  x[b,:] = y[b,:] / norm[b]
// Backward from dx [B,D]:
//   dy[b,:] = (dx[b,:] - x[b,:] (x[b,:] . dx[b,:])) / norm[b]
//   dt = dy (overwritten; may be NULL); dmu [D] += sum_b dy[b,:]; dL[i,j] += sum_b dy[b,i] z[b,j]
//   for j <= i (the upper triangle is untouched); dmu, dL may be NULL.
// Deterministic: every sum over b runs in order b = 0..B-1 on both backends.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// CPU reference (fp32) and its double instance (z is drawn in fp32, then widened).
void gap_sample_forward_cpu(float* x, float* z, float* norm, const float* t, const float* mu, const float* L, int B,
                            int D, uint64_t seed, uint64_t stream, uint64_t row0);
void gap_sample_backward_cpu(float* dt, float* dmu, float* dL, const float* dx, const float* x, const float* z,
                             const float* norm, int B, int D);
void gap_sample_forward_cpu_f64(double* x, double* z, double* norm, const double* t, const double* mu,
                                const double* L, int B, int D, uint64_t seed, uint64_t stream, uint64_t row0);
void gap_sample_backward_cpu_f64(double* dt, double* dmu, double* dL, const double* dx, const double* x,
                                 const double* z, const double* norm, int B, int D);

// CUDA (kernels/gap_sample.cu). `dy_scratch`: device fp32 [B,D] (used when dt is NULL).
void gap_sample_forward_cuda(float* x, float* z, float* norm, const float* t, const float* mu, const float* L, int B,
                             int D, uint64_t seed, uint64_t stream, uint64_t row0);
void gap_sample_backward_cuda(float* dt, float* dmu, float* dL, const float* dx, const float* x, const float* z,
                              const float* norm, int B, int D, float* dy_scratch);

#ifdef __cplusplus
}
#endif
