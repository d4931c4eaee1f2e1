// AdamW with decoupled weight decay (as PyTorch's AdamW and llm.c), on fp32 master weights:
//   g = grads[i] * grad_scale                       (grad_scale: the clipping factor, or 1)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   params[i] -= lr * ((m / bc1) / (sqrt(v / bc2) + eps) + weight_decay * params[i])
//   with bc1 = 1 - beta1^t, bc2 = 1 - beta2^t (step t >= 1), computed once on the host.
// The weight-decay mask is per tensor: the caller passes weight_decay = 0 for the tensors that
// take none (biases, layer-norm gains, embeddings as it chooses). params_act (may be NULL)
// receives the updated parameters rounded to the act type (nearest even for bf16).
#pragma once
#include <math.h>
#include <stddef.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// 1 - beta^t in double, rounded once: both backends use this value.
static inline float adamw_bias_correction(float beta, int t) { return (float)(1.0 - pow((double)beta, t)); }

// CPU reference. params_act: fp32 copy or NULL.
void adamw_update_cpu(float* params, float* params_act, const float* grads, float* m, float* v, size_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, float grad_scale, int t);
// CUDA (kernels/adamw.cu)
void adamw_update_cuda(float* params, void* params_act, const float* grads, float* m, float* v, size_t n, float lr,
                       float beta1, float beta2, float eps, float weight_decay, float grad_scale, int t, DType act);

#ifdef __cplusplus
}
#endif
