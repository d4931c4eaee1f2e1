// Check macros for the CUDA runtime and cuBLAS: on failure print file:line and the
// library's error text, then exit. Used by real CUDA builds and by the CPU emulation of CUDA
// (kernels/emu/), which provides the same types and error strings.
#pragma once
#include <stdio.h>
#include <stdlib.h>

static inline void cuda_check(cudaError_t err, const char* file, int line) {
    if (err != cudaSuccess) {
        fprintf(stderr, "error: %s:%d: CUDA: %s\n", file, line, cudaGetErrorString(err));
        exit(1);
    }
}
#define cudaCheck(err) cuda_check((err), __FILE__, __LINE__)

// After a kernel launch: reports launch-configuration errors at the launch site.
#define cudaCheckLaunch() cuda_check(cudaGetLastError(), __FILE__, __LINE__)

static inline void cublas_check(cublasStatus_t status, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "error: %s:%d: cuBLAS status %d\n", file, line, (int)status);
        exit(1);
    }
}
#define cublasCheck(status) cublas_check((status), __FILE__, __LINE__)
