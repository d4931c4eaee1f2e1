// CPU reference of layer norm (see layernorm.h): layernorm_ref.inc in fp32 and in double.
#include "kernels/layernorm.h"

#include <omp.h>
#include <stddef.h>
#include <tgmath.h>

#define REAL float
#define REF(name) name##_cpu
#include "kernels/layernorm_ref.inc"
#undef REAL
#undef REF

#define REAL double
#define REF(name) name##_cpu_f64
#include "kernels/layernorm_ref.inc"
#undef REAL
#undef REF
