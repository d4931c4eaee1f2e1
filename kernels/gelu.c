// CPU reference of GELU (see gelu.h): gelu_ref.inc in fp32 and in double.
#include "kernels/gelu.h"

#include <tgmath.h>

#define REAL float
#define REF(name) name##_cpu
#include "kernels/gelu_ref.inc"
#undef REAL
#undef REF

#define REAL double
#define REF(name) name##_cpu_f64
#include "kernels/gelu_ref.inc"
#undef REAL
#undef REF
