// CPU reference of the Philox normals (see random.h).
#include "kernels/random.h"

#include "kernels/philox.h"

void random_normal_cpu(float* out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
#pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) out[i] = philox_normal(seed, stream, offset + i);
}
