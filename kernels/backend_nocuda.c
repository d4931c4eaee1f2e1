// Builds without CUDA: no CUDA backend (kernels/backend_cuda.cu otherwise; the emulation's in tests).
#include "kernels/backend.h"

Backend* backend_cuda_create(DType act) { return NULL; }
