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
