// CPU reference of the fused softmax + cross-entropy (see crossentropy.h): crossentropy_ref.inc
// in fp32 and in double.
#include "kernels/crossentropy.h"

#include <stddef.h>
#include <tgmath.h>

#include "common/check.h"

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
