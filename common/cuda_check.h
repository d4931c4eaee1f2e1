// Check macros for the CUDA runtime and cuBLAS: on failure print file:line and the
// library's error text, then exit. Used by real CUDA builds and by the CPU emulation of CUDA
// (kernels/emu/), which provides the same types and error strings.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void cuda_check(cudaError_t err, const char* file, int line) {
    if (err != cudaSuccess) {
        fprintf(stderr, "error: %s:%d: CUDA: %s\n", file, line, cudaGetErrorString(err));
        exit(1);
    }
}
#define cudaCheck(err) cuda_check((err), __FILE__, __LINE__)

// TIPCAP_CUDA_SYNC=1: after every launch and library call, wait for the device and check, so that
// a fault while a kernel runs is reported at its own launch site. Otherwise it surfaces at the
// next synchronising call, under that call's name. Slow: for finding such a fault.
// Read at every call (a lookup in a short environment, next to a launch's microseconds), so that a
// test can set it in a child process.
static inline int cuda_sync_each_launch(void) {
    const char* v = getenv("TIPCAP_CUDA_SYNC");
    return v && *v && strcmp(v, "0") != 0;
}

// After a kernel launch or library call in `func`: the launch-configuration error, or with
// TIPCAP_CUDA_SYNC=1 any error of the work itself.
static inline void cuda_check_launch(const char* file, int line, const char* func) {
    cudaError_t err = cudaGetLastError();
    int synced = err == cudaSuccess && cuda_sync_each_launch();
    if (synced) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        fprintf(stderr, "error: %s:%d: CUDA: %s %s %s()%s\n", file, line, cudaGetErrorString(err),
                synced ? "while running the work launched in" : "at a launch in", func,
                synced ? " (TIPCAP_CUDA_SYNC=1)" : "");
        exit(1);
    }
}
#define cudaCheckLaunch() cuda_check_launch(__FILE__, __LINE__, __func__)

static inline void cublas_check(cublasStatus_t status, const char* file, int line, const char* func) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "error: %s:%d: cuBLAS status %d in %s()\n", file, line, (int)status, func);
        exit(1);
    }
    if (cuda_sync_each_launch()) cuda_check_launch(file, line, func);
}
#define cublasCheck(status) cublas_check((status), __FILE__, __LINE__, __func__)
