// CPU reference of multi-head scaled dot-product attention (see attention.h): the body lives
// in attention_cpu.inc and is instantiated here in fp32 and in double precision.
#include "kernels/attention.h"

#include <math.h>
#include <stdlib.h>

#include "common/check.h"

#define REAL float
#define FN(name) name
#define EXP expf
#define LOG logf
#define SQRT sqrtf
#include "kernels/attention_cpu.inc"
#undef REAL
#undef FN
#undef EXP
#undef LOG
#undef SQRT

#define REAL double
#define FN(name) name##_f64
#define EXP exp
#define LOG log
#define SQRT sqrt
#include "kernels/attention_cpu.inc"
#undef REAL
#undef FN
#undef EXP
#undef LOG
#undef SQRT

void attention_forward_backend_cpu(Backend* be, void* out, float* lse, const void* qkv, const int* key_len,
                                   int B, int T, int C, int H, int causal) {
    attention_forward_cpu((float*)out, lse, (const float*)qkv, key_len, B, T, C, H, causal);
}

void attention_backward_backend_cpu(Backend* be, void* dqkv, const void* dout, const void* out, const float* lse,
                                    const void* qkv, const int* key_len, int B, int T, int C, int H, int causal) {
    attention_backward_cpu((float*)dqkv, (const float*)dout, (const float*)out, lse, (const float*)qkv, key_len, B, T,
                           C, H, causal);
}
