// Residual add: out[i] = a[i] + b[i] over n values (out may alias a or b). CUDA adds in fp32
// and rounds once to the storage type.
#pragma once
#include <stddef.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

void add_cpu(float* out, const float* a, const float* b, size_t n);
void add_cuda(void* out, const void* a, const void* b, size_t n, DType act);

#ifdef __cplusplus
}
#endif
