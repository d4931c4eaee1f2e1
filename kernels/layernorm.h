// Layer normalisation over the last dimension (eps 1e-5), and the residual add fused with it.
//   forward:  mean[n] = mean_c inp[n,c]; rstd[n] = 1 / sqrt(var_c inp[n,c] + eps)
//             out[n,c] = (inp[n,c] - mean[n]) * rstd[n] * weight[c] + bias[c]
//   residual: residual = a + b (rounded to the storage type), then out = layernorm(residual)
//   backward: dinp [N,C] +=, dweight, dbias [C] += (fp32; either may be NULL: a frozen parameter)
// Shapes: inp, out, residual, a, b, dinp, dout [N,C]; weight, bias [C]; mean, rstd [N] (fp32).
// CUDA: one warp per row, fp32 statistics; dweight/dbias by a two-pass column reduction over
// fixed row chunks (kernels/colsum.cuh), so the sums have a fixed order: no float atomics.
#pragma once
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAYERNORM_EPS 1e-5

// CPU reference (fp32) and its double instance.
void layernorm_forward_cpu(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                           const float* bias, int N, int C);
void residual_layernorm_forward_cpu(float* residual, float* out, float* mean, float* rstd, const float* a,
                                    const float* b, const float* weight, const float* bias, int N, int C);
void layernorm_backward_cpu(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                            const float* weight, const float* mean, const float* rstd, int N, int C);
void layernorm_forward_cpu_f64(double* out, double* mean, double* rstd, const double* inp, const double* weight,
                               const double* bias, int N, int C);
void residual_layernorm_forward_cpu_f64(double* residual, double* out, double* mean, double* rstd, const double* a,
                                        const double* b, const double* weight, const double* bias, int N, int C);
void layernorm_backward_cpu_f64(double* dinp, double* dweight, double* dbias, const double* dout,
                                const double* inp, const double* weight, const double* mean, const double* rstd,
                                int N, int C);

// CUDA (kernels/layernorm.cu). `residual` NULL: plain layer norm of `a`; otherwise the fused
// residual add (residual = a + b).
void layernorm_forward_cuda(void* residual, void* out, float* mean, float* rstd, const void* a, const void* b,
                            const void* weight, const void* bias, int N, int C, DType act);
// `scratch`: device fp32 of layernorm_backward_scratch_floats(N, C).
size_t layernorm_backward_scratch_floats(int N, int C);
void layernorm_backward_cuda(void* dinp, float* dweight, float* dbias, const void* dout, const void* inp,
                             const void* weight, const float* mean, const float* rstd, int N, int C,
                             float* scratch, DType act);

#ifdef __cplusplus
}
#endif
