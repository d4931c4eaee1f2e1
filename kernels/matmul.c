// CPU reference of the matmul (see matmul.h): matmul_ref.inc over OpenBLAS sgemm, and in double
// over dgemm.
#include "kernels/matmul.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "kernels/gelu.h"

#define REAL float
#define REF(name) name##_cpu
#define GEMM cblas_sgemm
#include "kernels/matmul_ref.inc"
#undef REAL
#undef REF
#undef GEMM

#define REAL double
#define REF(name) name##_cpu_f64
#define GEMM cblas_dgemm
#include "kernels/matmul_ref.inc"
#undef REAL
#undef REF
#undef GEMM
