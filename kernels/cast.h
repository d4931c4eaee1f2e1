// Precision conversions between fp32 and the activation storage type.
// bf16 on the host is its bit pattern (uint16_t); fp32 -> bf16 rounds to nearest even with NaN
// kept quiet, bit-exact with CUDA's __float2bfloat16.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline uint16_t bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);  // NaN: keep it quiet
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

// CPU reference. out [n] (bf16 bits) = in [n] (fp32)
void cast_f32_to_bf16_cpu(uint16_t* out, const float* in, size_t n);
// out [n] (fp32) = in [n] (bf16 bits)
void cast_bf16_to_f32_cpu(float* out, const uint16_t* in, size_t n);

// CUDA (kernels/cast.cu). out (act) [n] = in (fp32) [n]; out (fp32) [n] = in (act) [n]
void cast_to_act_cuda(void* out, const float* in, size_t n, DType act);
void cast_to_f32_cuda(float* out, const void* in, size_t n, DType act);

#ifdef __cplusplus
}
#endif
