// CPU reference of the fp32 <-> bf16 conversions (see cast.h).
#include "kernels/cast.h"

void cast_f32_to_bf16_cpu(uint16_t* out, const float* in, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = bf16_from_float(in[i]);
}

void cast_bf16_to_f32_cpu(float* out, const uint16_t* in, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_float(in[i]);
}
