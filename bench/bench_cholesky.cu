#include "kernels/cuda_common.cuh"

// The hand-written CUDA Cholesky (kernels/cholesky.cu) against cuSOLVER in one run: the blocked
// factorisation for D = 512, 768, 1024 against cusolverDnSpotrf, and the batched one for many
// small matrices against cusolverDnSpotrfBatched. GPU only; results in bench/RESULTS.md.
//
// Both factor in place, so every timed call starts from a fresh copy of A (the copy is outside
// the timed interval). Also timed: the whole policy driver cholesky_f32_cuda (validation scan,
// copy, factorisation, reading the pivot status back), which is what the programs call.
#include <cusolverDn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cholesky.h"

static void cusolver_check(cusolverStatus_t st, int line) {
    if (st != CUSOLVER_STATUS_SUCCESS) {
        fprintf(stderr, "error: bench_cholesky.cu:%d: cuSOLVER status %d\n", line, (int)st);
        exit(1);
    }
}
#define cusolverCheck(st) cusolver_check((st), __LINE__)

// batch SPD matrices A = B B^T / D + I / 4 (row-major, exactly symmetric), on the host.
static float* random_spd(int batch, int D, unsigned long long seed) {
    float* A = (float*)malloc(sizeof(float) * batch * D * D);
    float* B = (float*)malloc(sizeof(float) * D * D);
    if (!A || !B) { fprintf(stderr, "error: out of host memory\n"); exit(1); }
    for (int m = 0; m < batch; m++) {
        for (int k = 0; k < D * D; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            B[k] = (float)((seed >> 40) * 0x1.0p-24) * 2.0f - 1.0f;
        }
        float* a = A + (size_t)m * D * D;
        for (int i = 0; i < D; i++)
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int k = 0; k < D; k++) s += (double)B[i * D + k] * B[j * D + k];
                a[i * D + j] = a[j * D + i] = (float)(s / D + (i == j ? 0.25 : 0.0));
            }
    }
    free(B);
    return A;
}

// ||L L^T - A|| / ||A|| of a row-major lower factor (the check that both produced a factor).
static double factor_error(const float* L, const float* A, int D) {
    double num = 0, den = 0;
    for (int i = 0; i < D; i++)
        for (int j = 0; j <= i; j++) {
            double p = 0;
            for (int k = 0; k <= j; k++) p += (double)L[i * D + k] * L[j * D + k];
            double w = i == j ? 1 : 2;
            num += w * (p - A[i * D + j]) * (p - A[i * D + j]);
            den += w * (double)A[i * D + j] * A[i * D + j];
        }
    return sqrt(num / den);
}

typedef struct {
    cudaEvent_t start, stop;
    float total_ms;
} Timer;

static void timer_start(Timer* t) { cudaCheck(cudaEventRecord(t->start)); }
static void timer_stop(Timer* t) {
    cudaCheck(cudaEventRecord(t->stop));
    cudaCheck(cudaEventSynchronize(t->stop));
    float ms;
    cudaCheck(cudaEventElapsedTime(&ms, t->start, t->stop));
    t->total_ms += ms;
}

static void bench_single(cusolverDnHandle_t handle, int D, int iters) {
    float* A = random_spd(1, D, 42 + D);
    size_t bytes = sizeof(float) * D * D;
    float *dA, *dL;
    int* info;
    cudaCheck(cudaMalloc(&dA, bytes));
    cudaCheck(cudaMalloc(&dL, bytes));
    cudaCheck(cudaMalloc(&info, sizeof(int)));
    cudaCheck(cudaMemcpy(dA, A, bytes, cudaMemcpyHostToDevice));
    // cuSOLVER works column-major: the row-major lower triangle is its upper one.
    int lwork;
    cusolverCheck(cusolverDnSpotrf_bufferSize(handle, CUBLAS_FILL_MODE_UPPER, D, dL, D, &lwork));
    float* work;
    cudaCheck(cudaMalloc(&work, sizeof(float) * (lwork > 0 ? lwork : 1)));
    Timer ours = {0, 0, 0}, theirs = {0, 0, 0}, policy = {0, 0, 0};
    cudaEventCreate(&ours.start), cudaEventCreate(&ours.stop), cudaEventCreate(&theirs.start),
        cudaEventCreate(&theirs.stop), cudaEventCreate(&policy.start), cudaEventCreate(&policy.stop);
    char err[512];
    for (int it = -2; it < iters; it++) {  // two warm-up rounds
        if (it == 0) ours.total_ms = theirs.total_ms = policy.total_ms = 0;
        cudaCheck(cudaMemcpy(dL, dA, bytes, cudaMemcpyDeviceToDevice));
        timer_start(&ours);
        cholesky_factor_f32_cuda(dL, D, info);
        timer_stop(&ours);
        cudaCheck(cudaMemcpy(dL, dA, bytes, cudaMemcpyDeviceToDevice));
        timer_start(&theirs);
        cusolverCheck(cusolverDnSpotrf(handle, CUBLAS_FILL_MODE_UPPER, D, dL, D, work, lwork, info));
        timer_stop(&theirs);
        timer_start(&policy);
        if (cholesky_f32_cuda(dL, dA, D, NULL, NULL, err, sizeof err)) {
            fprintf(stderr, "error: %s\n", err);
            exit(1);
        }
        timer_stop(&policy);
    }
    float* L = (float*)malloc(bytes);
    cudaCheck(cudaMemcpy(L, dL, bytes, cudaMemcpyDeviceToHost));
    double e = factor_error(L, A, D);
    double flops = (double)D * D * D / 3.0;
    printf("cholesky D=%4d: ours %8.3f ms (%6.1f GFLOP/s)  cusolver potrf %8.3f ms  ratio ours/cusolver %.2f  "
           "| with validation and jitter policy %8.3f ms | ||LL^T-A||/||A|| %.1e\n",
           D, ours.total_ms / iters, flops / (ours.total_ms / iters * 1e6), theirs.total_ms / iters,
           ours.total_ms / theirs.total_ms, policy.total_ms / iters, e);
    free(A);
    free(L);
    cudaFree(dA), cudaFree(dL), cudaFree(info), cudaFree(work);
}

static void bench_batched(cusolverDnHandle_t handle, int batch, int D, int iters) {
    float* A = random_spd(batch, D, 7 + D);
    size_t bytes = sizeof(float) * batch * D * D;
    float *dA, *dL;
    int* info;
    cudaCheck(cudaMalloc(&dA, bytes));
    cudaCheck(cudaMalloc(&dL, bytes));
    cudaCheck(cudaMalloc(&info, sizeof(int) * batch));
    cudaCheck(cudaMemcpy(dA, A, bytes, cudaMemcpyHostToDevice));
    float** ptrs = (float**)malloc(sizeof(float*) * batch);
    for (int m = 0; m < batch; m++) ptrs[m] = dL + (size_t)m * D * D;
    float** dptrs;
    cudaCheck(cudaMalloc(&dptrs, sizeof(float*) * batch));
    cudaCheck(cudaMemcpy(dptrs, ptrs, sizeof(float*) * batch, cudaMemcpyHostToDevice));
    Timer ours = {0, 0, 0}, theirs = {0, 0, 0};
    cudaEventCreate(&ours.start), cudaEventCreate(&ours.stop), cudaEventCreate(&theirs.start), cudaEventCreate(&theirs.stop);
    for (int it = -2; it < iters; it++) {
        if (it == 0) ours.total_ms = theirs.total_ms = 0;
        cudaCheck(cudaMemcpy(dL, dA, bytes, cudaMemcpyDeviceToDevice));
        timer_start(&ours);
        cholesky_batched_factor_f32_cuda(dL, batch, D, info);
        timer_stop(&ours);
        cudaCheck(cudaMemcpy(dL, dA, bytes, cudaMemcpyDeviceToDevice));
        timer_start(&theirs);
        cusolverCheck(cusolverDnSpotrfBatched(handle, CUBLAS_FILL_MODE_UPPER, D, dptrs, D, info, batch));
        timer_stop(&theirs);
    }
    float* L = (float*)malloc(bytes);
    cudaCheck(cudaMemcpy(L, dL, bytes, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (int m = 0; m < batch; m += batch / 16 + 1)
        worst = fmax(worst, factor_error(L + (size_t)m * D * D, A + (size_t)m * D * D, D));
    printf("batched %6d x D=%2d: ours %8.3f ms  cusolver potrfBatched %8.3f ms  ratio ours/cusolver %.2f | "
           "worst ||LL^T-A||/||A|| %.1e\n",
           batch, D, ours.total_ms / iters, theirs.total_ms / iters, ours.total_ms / theirs.total_ms, worst);
    free(A);
    free(L);
    free(ptrs);
    cudaFree(dA), cudaFree(dL), cudaFree(info), cudaFree(dptrs);
}

int main(int argc, char** argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 20;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (%d SMs)\n", prop.name, prop.multiProcessorCount);
    cusolverDnHandle_t handle;
    cusolverCheck(cusolverDnCreate(&handle));
    int sizes[] = {512, 768, 1024};
    for (int s = 0; s < 3; s++) bench_single(handle, sizes[s], iters);
    int dims[] = {8, 16, 32, 64};
    for (int s = 0; s < 4; s++) bench_batched(handle, 10000, dims[s], iters);
    cusolverDnDestroy(handle);
    return 0;
}
