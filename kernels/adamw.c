// CPU reference of AdamW (see adamw.h).
#include "kernels/adamw.h"

#include "common/check.h"

void adamw_update_cpu(float* params, float* params_act, const float* grads, float* m, float* v, size_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, float grad_scale, int t) {
    if (t < 1) FATAL("adamw_update: step t = %d, must be >= 1", t);
    float bc1 = adamw_bias_correction(beta1, t), bc2 = adamw_bias_correction(beta2, t);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] * grad_scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = params[i];
        p -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + weight_decay * p);
        params[i] = p;
        if (params_act) params_act[i] = p;
    }
}
