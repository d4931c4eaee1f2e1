// GELU, tanh form: gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   forward:  out[i] = gelu(inp[i])
//   backward: dinp[i] = gelu'(inp[i]) * dout[i]   (dinp overwritten; it may alias dout)
// Elementwise over n values; CUDA computes in fp32 whatever the storage type.
#pragma once
#include <stddef.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GELU_SCALING_FACTOR 0.7978845608028654  // sqrt(2 / pi)

// CPU reference (fp32) and its double instance.
void gelu_forward_cpu(float* out, const float* inp, size_t n);
void gelu_backward_cpu(float* dinp, const float* inp, const float* dout, size_t n);
void gelu_forward_cpu_f64(double* out, const double* inp, size_t n);
void gelu_backward_cpu_f64(double* dinp, const double* inp, const double* dout, size_t n);

// CUDA (kernels/gelu.cu)
void gelu_forward_cuda(void* out, const void* inp, size_t n, DType act);
void gelu_backward_cuda(void* dinp, const void* inp, const void* dout, size_t n, DType act);

#ifdef __cplusplus
}
#endif
