// CPU reference of the fused softmax + cross-entropy (see crossentropy.h): crossentropy_ref.inc
// in fp32 and in double.
#include "kernels/crossentropy.h"

#include <stddef.h>
#include <tgmath.h>

#include "common/check.h"

void crossentropy_check_targets(const int* targets, int N, int V) {
    for (int n = 0; n < N; n++)
        if (targets[n] < -1 || targets[n] >= V) FATAL("crossentropy: targets[%d] = %d outside [-1, %d)", n, targets[n], V);
}

#define REAL float
#define REF(name) name##_cpu
#include "kernels/crossentropy_ref.inc"
#undef REAL
#undef REF

#define REAL double
#define REF(name) name##_cpu_f64
#include "kernels/crossentropy_ref.inc"
#undef REAL
#undef REF
