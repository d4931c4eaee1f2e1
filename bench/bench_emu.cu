// Speed of the CPU emulation of CUDA (kernels/emu): launches per second, fiber switches per second
// and emulated threads per second for kernels shaped like the project's (blocks of 128-1024
// threads, dozens of barriers, warp reductions). Compiled under the emulation, not with nvcc:
//   make bench-emu && bin/bench/bench_emu        (TIPCAP_EMU_WORKERS=n sets the worker threads)
#include "kernels/cuda_common.cuh"
#undef EMU_PTXAS_REPORTED
#define EMU_PTXAS_REPORTED 0  // nvcc never compiles these kernels: ptxas has no report on them

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "common/timer.h"

// CPU time of the whole process (the launching thread sleeps while the workers run the blocks)
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

__global__ void empty_kernel(float* out) {
    if (threadIdx.x == 0 && blockIdx.x == 0) out[0] = 1.0f;
}

// `rounds` barriers, each after a shared-memory exchange
__global__ void barrier_kernel(float* out, int rounds) {
    __shared__ float s[1024];
    int t = (int)threadIdx.x;
    float v = (float)t;
    for (int r = 0; r < rounds; r++) {
        s[t] = v;
        __syncthreads();
        v += s[(t + 1) % blockDim.x];
        __syncthreads();
    }
    out[blockIdx.x * blockDim.x + t] = v;
}

// a block reduction as the kernels do it: warp shuffles, then shared memory, then shuffles
__global__ void warp_reduce_kernel(const float* x, float* out, int n) {
    __shared__ float partial[32];
    int t = (int)threadIdx.x, lane = t % 32, warp = t / 32;
    float v = 0.0f;
    for (int i = (int)blockIdx.x * blockDim.x + t; i < n; i += gridDim.x * blockDim.x) v += x[i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x / 32) ? partial[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) out[blockIdx.x] = v;
    }
}

// elementwise: one element per thread, no synchronisation
__global__ void axpy_kernel(float* y, const float* x, float a, int n) {
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) y[i] += a * x[i];
}

template <typename Body>
static void measure(const char* name, int launches, Body body) {
    EmuStats before = emu_stats();
    double t0 = timer_now(), c0 = cpu_now();
    for (int i = 0; i < launches; i++) body();
    double dt = timer_now() - t0, cpu = cpu_now() - c0;
    EmuStats after = emu_stats();
    double threads = (double)(after.threads - before.threads), switches = (double)(after.switches - before.switches);
    printf("%-44s %9.0f launches/s %8.2f M threads/s %8.2f M switches/s %7.1f ns CPU/switch\n", name, launches / dt,
           threads / dt * 1e-6, switches / dt * 1e-6, switches > 0 ? cpu / switches * 1e9 : 0.0);
}

int main(int argc, char** argv) {
    if (argc > 1) {
        printf("usage: bench_emu   (TIPCAP_EMU_WORKERS=n: worker threads)\n");
        return argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
    }
    const int n = 1 << 20;
    float *x, *y;
    cudaCheck(cudaMalloc((void**)&x, n * sizeof(float)));
    cudaCheck(cudaMalloc((void**)&y, n * sizeof(float)));
    cudaCheck(cudaMemset(x, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(y, 0, n * sizeof(float)));
    const char* workers = getenv("TIPCAP_EMU_WORKERS");
    printf("CUDA emulation benchmark (TIPCAP_EMU_WORKERS=%s)\n", workers ? workers : "unset: one per CPU");

    measure("empty kernel <<<1, 32>>>", 20000, [&] { LAUNCH(empty_kernel, 1, 32, 0, x); });
    measure("empty kernel <<<64, 256>>>", 500, [&] { LAUNCH(empty_kernel, 64, 256, 0, x); });
    measure("axpy <<<4096, 256>>> (1M elements)", 20, [&] { LAUNCH(axpy_kernel, 4096, 256, 0, y, x, 0.5f, n); });
    measure("64 barriers <<<16, 128>>>", 100, [&] { LAUNCH(barrier_kernel, 16, 128, 0, y, 32); });
    measure("64 barriers <<<16, 256>>>", 50, [&] { LAUNCH(barrier_kernel, 16, 256, 0, y, 32); });
    measure("64 barriers <<<4, 1024>>>", 50, [&] { LAUNCH(barrier_kernel, 4, 1024, 0, y, 32); });
    measure("warp-shuffle block reduction <<<128, 256>>>", 50, [&] { LAUNCH(warp_reduce_kernel, 128, 256, 0, x, y, n); });
    emu_set_shuffle(12345);
    measure("64 barriers <<<16, 256>>>, shuffle mode", 50, [&] { LAUNCH(barrier_kernel, 16, 256, 0, y, 32); });
    measure("warp-shuffle reduction, shuffle mode", 50, [&] { LAUNCH(warp_reduce_kernel, 128, 256, 0, x, y, n); });
    emu_set_shuffle(0);
    cudaCheck(cudaFree(x));
    cudaCheck(cudaFree(y));
    return 0;
}
