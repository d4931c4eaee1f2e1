// Shared by the GPU microbenchmarks that take `--iters N`: random device buffers and the common
// start of main() (options, the GPU check, the device line).
#pragma once
#include "kernels/cuda_common.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"

static float random_uniform(unsigned long long* state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*state >> 40) * 0x1.0p-24) * 2.0f - 1.0f;
}

// Device buffer of n act elements filled with uniform [-scale, scale).
static void* random_device(size_t n, DType dtype, float scale, unsigned long long* state) {
    const size_t bytes = n * dtype_size(dtype);
    void* host = malloc(bytes);
    if (!host) {
        fprintf(stderr, "error: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        const float x = scale * random_uniform(state);
        if (dtype == DTYPE_BF16) ((__nv_bfloat16*)host)[i] = __float2bfloat16(x);
        else ((float*)host)[i] = x;
    }
    void* dev;
    cudaCheck(cudaMalloc(&dev, bytes));
    cudaCheck(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
    free(host);
    return dev;
}

// Parses `[--iters N]` (default_iters otherwise) and `--help` (prints "usage: NAME [--iters N]"
// and `about`, then exits 0); exits 1 on a bad option or when there is no GPU. Prints the device
// and returns the iterations per shape.
static int gpu_bench_start(int argc, char** argv, const char* name, const char* about, int default_iters) {
    int iters = default_iters;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s [--iters N]\n%s", name, about);
            exit(0);
        }
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
            iters = atoi(argv[++i]);
            if (iters < 1) {
                fprintf(stderr, "error: --iters must be a positive integer\n");
                exit(1);
            }
        } else {
            fprintf(stderr, "error: unknown argument %s (see --help)\n", argv[i]);
            exit(1);
        }
    }
    int n_devices = 0;
    if (cudaGetDeviceCount(&n_devices) != cudaSuccess || n_devices == 0) {
        fprintf(stderr, "error: %s needs a CUDA GPU and found none\n", name);
        exit(1);
    }
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (sm_%d%d), %d iterations per shape\n", prop.name, prop.major, prop.minor, iters);
    return iters;
}
