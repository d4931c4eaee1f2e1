// CPU reference of the token + position embedding (see embedding.h): embedding_ref.inc in fp32
// and in double.
#include "kernels/embedding.h"

#include <string.h>

#include "common/check.h"

#define REAL float
#define REF(name) name##_cpu
#include "kernels/embedding_ref.inc"
#undef REAL
#undef REF

#define REAL double
#define REF(name) name##_cpu_f64
#include "kernels/embedding_ref.inc"
#undef REAL
#undef REF
