// CPU reference of the Gaussian mapping (see gap_sample.h): gap_sample_ref.inc in fp32 and in
// double.
#include "kernels/gap_sample.h"

#include <stddef.h>
#include <stdlib.h>
#include <tgmath.h>

#include "common/check.h"
#include "kernels/philox.h"

#define REAL float
#define REF(name) name##_cpu
#include "kernels/gap_sample_ref.inc"
#undef REAL
#undef REF

#define REAL double
#define REF(name) name##_cpu_f64
#include "kernels/gap_sample_ref.inc"
#undef REAL
#undef REF
