// CPU reference of the bag mean (see bag_mean.h): bag_mean_ref.inc in fp32 and in double.
#include "kernels/bag_mean.h"

#include <stddef.h>

#include "common/check.h"

#define REAL float
#define REF(name) name##_cpu
#include "kernels/bag_mean_ref.inc"
#undef REAL
#undef REF

#define REAL double
#define REF(name) name##_cpu_f64
#include "kernels/bag_mean_ref.inc"
#undef REAL
#undef REF
