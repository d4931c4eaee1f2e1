#include "kernels/cuda_common.cuh"

// The Gaussian mapping's sampling kernels (kernels/gap_sample.cu) on the GPU: time per call of
// the forward (Philox noise, y = t + mu + z L^T, normalisation) and of the backward (dy, dmu,
// dL = lower(dy^T z)) for training batches and large batches, against two floors:
//   memory: the bytes a call must move at least, at the device's measured copy bandwidth
//           (forward: read t, L's lower half, write z and x; backward: read dx, x, z, write dt,
//           read and write dL's lower half);
//   compute: B D^2 / 2 fused multiply-adds for the triangular product (forward) and for
//           lower(dy^T z) (backward), reported as achieved GFLOP/s.
// GPU only; results in bench/RESULTS.md.
#include <stdio.h>
#include <stdlib.h>

#include "kernels/gap_sample.h"

static float* device_uniform(size_t n, float scale, unsigned long long seed) {
    float* host = (float*)malloc(sizeof(float) * n);
    if (!host) { fprintf(stderr, "error: out of host memory\n"); exit(1); }
    for (size_t k = 0; k < n; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        host[k] = scale * ((float)((seed >> 40) * 0x1.0p-24) * 2.0f - 1.0f);
    }
    float* dev;
    cudaCheck(cudaMalloc(&dev, sizeof(float) * n));
    cudaCheck(cudaMemcpy(dev, host, sizeof(float) * n, cudaMemcpyHostToDevice));
    free(host);
    return dev;
}

// Device-to-device copy bandwidth (read + write bytes per second) over a 1 GiB buffer.
static double copy_bandwidth(void) {
    size_t bytes = (size_t)1 << 30;
    void *a, *b;
    cudaCheck(cudaMalloc(&a, bytes));
    cudaCheck(cudaMalloc(&b, bytes));
    cudaCheck(cudaMemset(a, 0, bytes));
    cudaEvent_t start, stop;
    cudaEventCreate(&start), cudaEventCreate(&stop);
    cudaCheck(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    cudaEventRecord(start);
    for (int i = 0; i < 10; i++) cudaCheck(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms;
    cudaEventElapsedTime(&ms, start, stop);
    cudaFree(a), cudaFree(b);
    return 2.0 * bytes * 10 / (ms * 1e-3);
}

static void bench_shape(int B, int D, int iters, double bandwidth) {
    size_t n = (size_t)B * D, nl = (size_t)D * D;
    float* t = device_uniform(n, 0.05f, 1);
    float* mu = device_uniform(D, 0.01f, 2);
    float* L = device_uniform(nl, 0.01f, 3);
    float* dx = device_uniform(n, 1.0f, 4);
    float *x, *z, *norm, *dt, *dmu, *dL;
    cudaCheck(cudaMalloc(&x, sizeof(float) * n));
    cudaCheck(cudaMalloc(&z, sizeof(float) * n));
    cudaCheck(cudaMalloc(&norm, sizeof(float) * B));
    cudaCheck(cudaMalloc(&dt, sizeof(float) * n));
    cudaCheck(cudaMalloc(&dmu, sizeof(float) * D));
    cudaCheck(cudaMalloc(&dL, sizeof(float) * nl));
    cudaCheck(cudaMemset(dmu, 0, sizeof(float) * D));
    cudaCheck(cudaMemset(dL, 0, sizeof(float) * nl));
    cudaEvent_t e0, e1, e2;
    cudaEventCreate(&e0), cudaEventCreate(&e1), cudaEventCreate(&e2);
    float fwd_ms = 0, bwd_ms = 0;
    for (int it = -3; it < iters; it++) {  // three warm-up rounds
        cudaEventRecord(e0);
        gap_sample_forward_cuda(x, z, norm, t, mu, L, B, D, 1234, 0, (uint64_t)it * B);
        cudaEventRecord(e1);
        gap_sample_backward_cuda(dt, dmu, dL, dx, x, z, norm, B, D, NULL);
        cudaEventRecord(e2);
        cudaCheck(cudaEventSynchronize(e2));
        float a, b;
        cudaEventElapsedTime(&a, e0, e1);
        cudaEventElapsedTime(&b, e1, e2);
        if (it >= 0) fwd_ms += a, bwd_ms += b;
    }
    fwd_ms /= iters, bwd_ms /= iters;
    double fwd_bytes = 4.0 * (3.0 * n + nl / 2.0 + D), bwd_bytes = 4.0 * (4.0 * n + nl + 2.0 * D);
    double flops = (double)B * D * D;  // B D^2 / 2 FMAs
    double fwd_floor = fwd_bytes / bandwidth * 1e3, bwd_floor = bwd_bytes / bandwidth * 1e3;
    printf("B=%6d D=%4d  forward %8.4f ms (memory floor %7.4f ms, x%5.1f; %7.1f GFLOP/s)  "
           "backward %8.4f ms (floor %7.4f ms, x%5.1f; %7.1f GFLOP/s)  %.3g samples/s\n",
           B, D, fwd_ms, fwd_floor, fwd_ms / fwd_floor, flops / (fwd_ms * 1e6), bwd_ms, bwd_floor, bwd_ms / bwd_floor,
           flops / (bwd_ms * 1e6), B / (fwd_ms * 1e-3));
    cudaFree(t), cudaFree(mu), cudaFree(L), cudaFree(dx), cudaFree(x), cudaFree(z), cudaFree(norm), cudaFree(dt),
        cudaFree(dmu), cudaFree(dL);
}

int main(int argc, char** argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 50;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    double bw = copy_bandwidth();
    printf("device: %s (%d SMs); device-to-device copy bandwidth %.0f GB/s\n", prop.name, prop.multiProcessorCount, bw / 1e9);
    int shapes[][2] = {{40, 512}, {256, 512}, {4096, 512}, {65536, 512}, {40, 768}, {65536, 768}, {65536, 1024}};
    for (int s = 0; s < 7; s++) bench_shape(shapes[s][0], shapes[s][1], iters, bw);
    return 0;
}
