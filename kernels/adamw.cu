#include "kernels/cuda_common.cuh"

// CUDA: AdamW on fp32 master weights with an optional act-typed copy (see adamw.h).
#include "common/check.h"
#include "kernels/adamw.h"
#include "kernels/cuda_utils.cuh"

template <typename T>
__global__ void adamw_kernel(float* params, T* params_act, const float* grads, float* m, float* v, size_t n, float lr,
                             float beta1, float beta2, float bc1, float bc2, float eps, float weight_decay,
                             float grad_scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grads[i] * grad_scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = params[i];
        p -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + weight_decay * p);
        params[i] = p;
        if (params_act) params_act[i] = from_float<T>(p);
    }
}

void adamw_update_cuda(float* params, void* params_act, const float* grads, float* m, float* v, size_t n, float lr,
                       float beta1, float beta2, float eps, float weight_decay, float grad_scale, int t, DType act) {
    if (t < 1) FATAL("adamw_update: step t = %d, must be >= 1", t);
    if (n == 0) return;
    float bc1 = adamw_bias_correction(beta1, t), bc2 = adamw_bias_correction(beta2, t);
    if (act == DTYPE_BF16)
        LAUNCH(adamw_kernel<__nv_bfloat16>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, params,
               (__nv_bfloat16*)params_act, grads, m, v, n, lr, beta1, beta2, bc1, bc2, eps, weight_decay, grad_scale);
    else
        LAUNCH(adamw_kernel<float>, elementwise_blocks(n), ELEMENTWISE_THREADS, 0, params, (float*)params_act, grads,
               m, v, n, lr, beta1, beta2, bc1, bc2, eps, weight_decay, grad_scale);
    cudaCheckLaunch();
}
