// CPU reference of the fp32 reductions (see reduce.h).
#include "kernels/reduce.h"

#include <stdlib.h>

#include "common/check.h"

// Fixed chunks, each summed in double, then the chunks in order: the result does not depend on
// the number of threads.
#define SUM_SQUARES_CHUNK 65536

double sum_squares_cpu(const float* x, size_t n) {
    size_t n_chunks = (n + SUM_SQUARES_CHUNK - 1) / SUM_SQUARES_CHUNK;
    double* chunk_sums = (double*)mallocCheck((n_chunks ? n_chunks : 1) * sizeof(double));
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n_chunks; k++) {
        size_t end = (k + 1) * SUM_SQUARES_CHUNK < n ? (k + 1) * SUM_SQUARES_CHUNK : n;
        double s = 0;
        for (size_t i = k * SUM_SQUARES_CHUNK; i < end; i++) s += (double)x[i] * (double)x[i];
        chunk_sums[k] = s;
    }
    double total = 0;
    for (size_t k = 0; k < n_chunks; k++) total += chunk_sums[k];
    free(chunk_sums);
    return total;
}

void scale_f32_cpu(float* x, float s, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
