// Kernels and library calls behind tests/test_emu.c (see tests/emu_test_kernels.h): the same source
// runs under the CUDA emulation in `make test` and on a real GPU in `make test-gpu`.
#include "kernels/cuda_common.cuh"

#include <string.h>

#include "tests/emu_test_kernels.h"
#ifdef TIPCAP_CUDA_EMU
#include "kernels/emu/emu_check.h"
#endif

// ---------------------------------------------------------------- helpers
template <typename T>
static T* device_copy(const T* host, size_t n) {
    T* d = NULL;
    cudaCheck(cudaMalloc((void**)&d, n * sizeof(T)));
    if (host) cudaCheck(cudaMemcpy(d, host, n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
template <typename T>
static void host_copy(T* host, const T* device, size_t n) {
    cudaCheck(cudaMemcpy(host, device, n * sizeof(T), cudaMemcpyDeviceToHost));
}
// Waits for the launch and returns its configuration error, if any.
static int launch_status(void) {
    int err = (int)cudaGetLastError();
    cudaCheck(cudaDeviceSynchronize());
    return err;
}
__device__ __forceinline__ int linear_thread(void) {
    return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
}
__device__ __forceinline__ int linear_block(void) {
    return (int)(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
}

extern "C" int etk_emulated(void) {
#ifdef TIPCAP_CUDA_EMU
    return 1;
#else
    return 0;
#endif
}

extern "C" int etk_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

// ---------------------------------------------------------------- barriers and shared memory
__global__ void barrier_rotate_kernel(float* out, int active) {
    __shared__ float s[1024];
    int t = linear_thread(), b = linear_block();
    int T = (int)(blockDim.x * blockDim.y * blockDim.z);
    if (t >= active) return;
    s[t] = 10000.0f * (float)b + (float)t;
    __syncthreads();
    float v = s[(t + 1) % active];
    __syncthreads();
    s[t] = v + 0.5f;
    __syncthreads();
    out[(size_t)b * T + t] = s[(t + active - 1) % active];
}

extern "C" int etk_barrier_rotate(EtkDim grid, EtkDim block, int active, float* out) {
    size_t n = (size_t)grid.x * grid.y * grid.z * block.x * block.y * block.z;
    float* d = device_copy(out, n);
    LAUNCH(barrier_rotate_kernel, dim3(grid.x, grid.y, grid.z), dim3(block.x, block.y, block.z), 0, d, active);
    int err = launch_status();
    host_copy(out, d, n);
    cudaCheck(cudaFree(d));
    return err;
}

__global__ void barrier_reduce_kernel(int* out) {
    int t = (int)threadIdx.x, T = (int)blockDim.x;
    int* o = out + 5 * blockIdx.x;
    int count = __syncthreads_count(t % 3 == 0);
    int and_all = __syncthreads_and(t < T);
    int and_some = __syncthreads_and(t % 3 == 0);
    int or_one = __syncthreads_or(t == T - 1);
    int or_none = __syncthreads_or(0);
    if (t == 0) {
        o[0] = count;
        o[1] = and_all;
        o[2] = and_some;
        o[3] = or_one;
        o[4] = or_none;
    }
}

extern "C" int etk_barrier_reduce(int blocks, int threads, int* out) {
    int* d = device_copy<int>(NULL, (size_t)blocks * 5);
    LAUNCH(barrier_reduce_kernel, blocks, threads, 0, d);
    int err = launch_status();
    host_copy(out, d, (size_t)blocks * 5);
    cudaCheck(cudaFree(d));
    return err;
}

// A __device__ function with its own __shared__ variable: one per block, like the kernel's.
__device__ float block_value(void) {
    __shared__ float value;
    if (threadIdx.x == 0) value = 3.0f * (float)blockIdx.x + 1.0f;
    __syncthreads();
    return value;
}

__global__ void shared_private_kernel(float* out) {
    float v = block_value();
    out[(size_t)blockIdx.x * blockDim.x + threadIdx.x] = v;
}

extern "C" int etk_shared_private(int blocks, int threads, float* out) {
    size_t n = (size_t)blocks * threads;
    float* d = device_copy<float>(NULL, n);
    LAUNCH(shared_private_kernel, blocks, threads, 0, d);
    int err = launch_status();
    host_copy(out, d, n);
    cudaCheck(cudaFree(d));
    return err;
}

template <typename T>
__global__ void dynamic_shared_kernel(T* out) {
    DYNAMIC_SHARED(T, buf, 227 * 1024);  // launched with every size some device allows
    int t = (int)threadIdx.x, n = (int)blockDim.x;
    buf[t] = (T)(1000.0f * (float)blockIdx.x + (float)t);
    __syncthreads();
    out[(size_t)blockIdx.x * n + t] = buf[n - 1 - t];
}

extern "C" int etk_dynamic_shared(int blocks, int threads, size_t bytes, float* out) {
    size_t n = (size_t)blocks * threads;
    float* d = device_copy<float>(NULL, n);
    // the C form, with a cast, as llm.c writes it
    if (bytes > 48 * 1024)
        cudaCheck(cudaFuncSetAttribute((const void*)dynamic_shared_kernel<float>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    LAUNCH(dynamic_shared_kernel<float>, blocks, threads, bytes, d);
    int err = launch_status();
    host_copy(out, d, n);
    cudaCheck(cudaFree(d));
    return err;
}

__global__ void shared_unwritten_kernel(uint32_t* out, int write) {
    __shared__ float s[4];
    DYNAMIC_SHARED(float, dyn, 16);
    if (write) {
        s[0] = 1.0f;
        dyn[0] = 2.0f;
        return;
    }
    out[0] = __float_as_uint(s[0]);
    out[1] = __float_as_uint(dyn[0]);
}

extern "C" int etk_shared_unwritten(uint32_t* static_bits, uint32_t* dynamic_bits) {
    uint32_t* d = device_copy<uint32_t>(NULL, 2);
    LAUNCH(shared_unwritten_kernel, 1, 1, 16, d, 1);
    LAUNCH(shared_unwritten_kernel, 1, 1, 16, d, 0);
    int err = launch_status();
    uint32_t h[2];
    host_copy(h, d, 2);
    *static_bits = h[0];
    *dynamic_bits = h[1];
    cudaCheck(cudaFree(d));
    return err;
}

__global__ void local_array_kernel(float* out) {
    float local[8192];
    int t = (int)threadIdx.x;
    for (int i = 0; i < 8192; i++) local[i] = (float)((i % 7) * t);
    float sum = 0.0f;
    for (int i = 8191; i >= 0; i--) sum += local[i];
    out[t] = sum;
}

extern "C" int etk_local_array(int threads, float* out) {
    float* d = device_copy<float>(NULL, (size_t)threads);
    LAUNCH(local_array_kernel, 1, threads, 0, d);
    int err = launch_status();
    host_copy(out, d, (size_t)threads);
    cudaCheck(cudaFree(d));
    return err;
}

// ---------------------------------------------------------------- warp exchanges
template <typename T>
__device__ __forceinline__ T offered_value(int t) {
    return (T)((t % 32) + 1 + 64 * (t / 32));
}
template <>
__device__ __forceinline__ __nv_bfloat16 offered_value<__nv_bfloat16>(int t) {
    return __float2bfloat16((float)((t % 32) + 1));
}
__device__ __forceinline__ double as_double(float v) { return (double)v; }
__device__ __forceinline__ double as_double(double v) { return v; }
__device__ __forceinline__ double as_double(int v) { return (double)v; }
__device__ __forceinline__ double as_double(__nv_bfloat16 v) { return (double)__bfloat162float(v); }

template <typename T>
__global__ void shuffle_kernel(int op, unsigned mask, const int* arg, int width, double* out) {
    int t = (int)threadIdx.x, lane = t % 32;
    if (!((mask >> lane) & 1u)) {
        out[t] = -1.0;
        return;
    }
    T v = offered_value<T>(t);
    T r;
    switch (op) {
        case 0: r = __shfl_sync(mask, v, arg[t], width); break;
        case 1: r = __shfl_up_sync(mask, v, (unsigned)arg[t], width); break;
        case 2: r = __shfl_down_sync(mask, v, (unsigned)arg[t], width); break;
        default: r = __shfl_xor_sync(mask, v, arg[t], width); break;
    }
    out[t] = as_double(r);
}

extern "C" int etk_shuffle(int op, int type, int threads, unsigned mask, const int* arg, int width, double* out) {
    int* d_arg = device_copy(arg, (size_t)threads);
    double* d_out = device_copy<double>(NULL, (size_t)threads);
    switch (type) {
        case 0: LAUNCH(shuffle_kernel<float>, 1, threads, 0, op, mask, d_arg, width, d_out); break;
        case 1: LAUNCH(shuffle_kernel<double>, 1, threads, 0, op, mask, d_arg, width, d_out); break;
        case 2: LAUNCH(shuffle_kernel<int>, 1, threads, 0, op, mask, d_arg, width, d_out); break;
        default: LAUNCH(shuffle_kernel<__nv_bfloat16>, 1, threads, 0, op, mask, d_arg, width, d_out); break;
    }
    int err = launch_status();
    host_copy(out, d_out, (size_t)threads);
    cudaCheck(cudaFree(d_arg));
    cudaCheck(cudaFree(d_out));
    return err;
}

__global__ void vote_kernel(unsigned mask, const int* pred, unsigned* ballot, int* any, int* all) {
    int t = (int)threadIdx.x;
    if (!((mask >> (t % 32)) & 1u)) return;
    ballot[t] = __ballot_sync(mask, pred[t]);
    any[t] = __any_sync(mask, pred[t]);
    all[t] = __all_sync(mask, pred[t]);
}

extern "C" int etk_vote(int threads, unsigned mask, const int* pred, unsigned* ballot, int* any, int* all) {
    size_t n = (size_t)threads;
    int* d_pred = device_copy(pred, n);
    unsigned* d_ballot = device_copy(ballot, n);
    int* d_any = device_copy(any, n);
    int* d_all = device_copy(all, n);
    LAUNCH(vote_kernel, 1, threads, 0, mask, d_pred, d_ballot, d_any, d_all);
    int err = launch_status();
    host_copy(ballot, d_ballot, n);
    host_copy(any, d_any, n);
    host_copy(all, d_all, n);
    cudaCheck(cudaFree(d_pred));
    cudaCheck(cudaFree(d_ballot));
    cudaCheck(cudaFree(d_any));
    cudaCheck(cudaFree(d_all));
    return err;
}

__global__ void syncwarp_kernel(int* out) {
    __shared__ int s[1024];
    int t = (int)threadIdx.x;
    s[t] = 3 * t;
    __syncwarp();
    out[t] = s[(t & ~31) | ((t + 1) & 31)];
}

extern "C" int etk_syncwarp(int threads, int* out) {
    int* d = device_copy<int>(NULL, (size_t)threads);
    LAUNCH(syncwarp_kernel, 1, threads, 0, d);
    int err = launch_status();
    host_copy(out, d, (size_t)threads);
    cudaCheck(cudaFree(d));
    return err;
}

// ---------------------------------------------------------------- atomics
__global__ void atomics_kernel(int* results, float* fsum, double* dsum, unsigned long long* cas, int* ticket,
                               int* exch) {
    int g = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    ticket[g] = atomicAdd(&results[0], 1);
    atomicAdd((unsigned*)&results[1], 2u);
    atomicMax(&results[2], (7919 * g) % 10007);
    atomicMin(&results[3], (7919 * g) % 10007 - 5000);
    atomicSub(&results[4], 1);
    exch[g] = atomicExch(&results[5], g);
    atomicAdd(fsum, 0.5f);
    atomicAdd(dsum, 0.25);
    unsigned long long seen = *cas, assumed;
    do {
        assumed = seen;
        seen = atomicCAS(cas, assumed, assumed + 3ull);
    } while (seen != assumed);
}

extern "C" int etk_atomics(int blocks, int threads, int* results, float* fsum, double* dsum, unsigned long long* cas,
                           int* ticket, int* exch) {
    size_t n = (size_t)blocks * threads;
    int init[6] = {0, 0, -1, 1 << 30, 0, -1};
    int* d_results = device_copy(init, 6);
    float zero_f = 0.0f;
    double zero_d = 0.0;
    unsigned long long zero_u = 0;
    float* d_fsum = device_copy(&zero_f, 1);
    double* d_dsum = device_copy(&zero_d, 1);
    unsigned long long* d_cas = device_copy(&zero_u, 1);
    int* d_ticket = device_copy<int>(NULL, n);
    int* d_exch = device_copy<int>(NULL, n);
    LAUNCH(atomics_kernel, blocks, threads, 0, d_results, d_fsum, d_dsum, d_cas, d_ticket, d_exch);
    int err = launch_status();
    host_copy(results, d_results, 6);
    host_copy(fsum, d_fsum, 1);
    host_copy(dsum, d_dsum, 1);
    host_copy(cas, d_cas, 1);
    host_copy(ticket, d_ticket, n);
    host_copy(exch, d_exch, n);
    cudaCheck(cudaFree(d_results));
    cudaCheck(cudaFree(d_fsum));
    cudaCheck(cudaFree(d_dsum));
    cudaCheck(cudaFree(d_cas));
    cudaCheck(cudaFree(d_ticket));
    cudaCheck(cudaFree(d_exch));
    return err;
}

__global__ void more_atomics_kernel(unsigned* bits, unsigned* wrap, unsigned* down, __nv_bfloat16* bf, float* fx) {
    unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
    atomicOr(&bits[0], 1u << (g % 32));
    atomicAnd(&bits[1], ~(1u << (g % 32)));
    atomicXor(&bits[2], g);
    atomicInc(wrap, 9u);
    atomicDec(down, 9u);
    atomicAdd(bf, __float2bfloat16(0.25f));
    atomicExch(fx, (float)g);
}

extern "C" int etk_more_atomics(int blocks, int threads, unsigned* bits, unsigned* wrap, unsigned* down, uint16_t* bf,
                                float* fx) {
    unsigned init_bits[3] = {0u, ~0u, 0u}, zero = 0;
    float minus_one = -1.0f;
    uint16_t bf_zero = 0;
    unsigned* d_bits = device_copy(init_bits, 3);
    unsigned* d_wrap = device_copy(&zero, 1);
    unsigned* d_down = device_copy(&zero, 1);
    __nv_bfloat16* d_bf = (__nv_bfloat16*)device_copy(&bf_zero, 1);
    float* d_fx = device_copy(&minus_one, 1);
    LAUNCH(more_atomics_kernel, blocks, threads, 0, d_bits, d_wrap, d_down, d_bf, d_fx);
    int err = launch_status();
    host_copy(bits, d_bits, 3);
    host_copy(wrap, d_wrap, 1);
    host_copy(down, d_down, 1);
    host_copy(bf, (uint16_t*)d_bf, 1);
    host_copy(fx, d_fx, 1);
    void* buffers[5] = {d_bits, d_wrap, d_down, d_bf, d_fx};
    for (void* p : buffers) cudaCheck(cudaFree(p));
    return err;
}

// ---------------------------------------------------------------- bf16
// Grid-stride loops: a few fibers each convert many values.
#define GRID_STRIDE(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)
static const int kConvertBlocks = 64, kConvertThreads = 256;

__global__ void float_to_bf16_kernel(const float* in, uint16_t* out, size_t n, int rn) {
    GRID_STRIDE(i, n) out[i] = __bfloat16_as_ushort(rn ? __float2bfloat16_rn(in[i]) : __float2bfloat16(in[i]));
}
__global__ void double_to_bf16_kernel(const double* in, uint16_t* out, size_t n) {
    GRID_STRIDE(i, n) out[i] = __bfloat16_as_ushort(__double2bfloat16(in[i]));
}
__global__ void bf16_to_float_kernel(const uint16_t* in, float* out, size_t n) {
    GRID_STRIDE(i, n) out[i] = __bfloat162float(__ushort_as_bfloat16(in[i]));
}
__global__ void bf16_pairs_kernel(const float* in, uint16_t* out, float* back, size_t n) {
    GRID_STRIDE(i, n) {
        __nv_bfloat162 p = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
        out[2 * i] = __bfloat16_as_ushort(p.x);
        out[2 * i + 1] = __bfloat16_as_ushort(p.y);
        back[2 * i] = __low2float(p);
        back[2 * i + 1] = __high2float(p);
    }
}
__global__ void bf16_arith_kernel(const uint16_t* a, const uint16_t* b, const uint16_t* c, uint16_t* out, size_t n) {
    GRID_STRIDE(i, n) {
        __nv_bfloat16 x = __ushort_as_bfloat16(a[i]), y = __ushort_as_bfloat16(b[i]), z = __ushort_as_bfloat16(c[i]);
        out[5 * i + 0] = __bfloat16_as_ushort(x + y);
        out[5 * i + 1] = __bfloat16_as_ushort(x - y);
        out[5 * i + 2] = __bfloat16_as_ushort(x * y);
        out[5 * i + 3] = __bfloat16_as_ushort(x / y);
        out[5 * i + 4] = __bfloat16_as_ushort(__hfma(x, y, z));
    }
}

template <typename In, typename Out, typename Launcher>
static int convert(const In* in, size_t n_in, Out* out, size_t n_out, Launcher launch) {
    In* d_in = device_copy(in, n_in);
    Out* d_out = device_copy<Out>(NULL, n_out);
    launch(d_in, d_out);
    int err = launch_status();
    host_copy(out, d_out, n_out);
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_out));
    return err;
}

extern "C" int etk_float_to_bf16(const float* in, uint16_t* out, size_t n) {
    return convert(in, n, out, n, [&](const float* i, uint16_t* o) {
        LAUNCH(float_to_bf16_kernel, kConvertBlocks, kConvertThreads, 0, i, o, n, 0);
    });
}
extern "C" int etk_float_to_bf16_rn(const float* in, uint16_t* out, size_t n) {
    return convert(in, n, out, n, [&](const float* i, uint16_t* o) {
        LAUNCH(float_to_bf16_kernel, kConvertBlocks, kConvertThreads, 0, i, o, n, 1);
    });
}
extern "C" int etk_double_to_bf16(const double* in, uint16_t* out, size_t n) {
    return convert(in, n, out, n, [&](const double* i, uint16_t* o) {
        LAUNCH(double_to_bf16_kernel, kConvertBlocks, kConvertThreads, 0, i, o, n);
    });
}
extern "C" int etk_bf16_to_float(const uint16_t* in, float* out, size_t n) {
    return convert(in, n, out, n, [&](const uint16_t* i, float* o) {
        LAUNCH(bf16_to_float_kernel, kConvertBlocks, kConvertThreads, 0, i, o, n);
    });
}
extern "C" int etk_bf16_pairs(const float* in, uint16_t* out, float* back, size_t n) {
    float* d_back = device_copy<float>(NULL, 2 * n);
    int err = convert(in, 2 * n, out, 2 * n, [&](const float* i, uint16_t* o) {
        LAUNCH(bf16_pairs_kernel, kConvertBlocks, kConvertThreads, 0, i, o, d_back, n);
    });
    host_copy(back, d_back, 2 * n);
    cudaCheck(cudaFree(d_back));
    return err;
}
extern "C" int etk_bf16_arith(const uint16_t* a, const uint16_t* b, const uint16_t* c, uint16_t* out, size_t n) {
    uint16_t* d_b = device_copy(b, n);
    uint16_t* d_c = device_copy(c, n);
    int err = convert(a, n, out, 5 * n, [&](const uint16_t* i, uint16_t* o) {
        LAUNCH(bf16_arith_kernel, kConvertBlocks, kConvertThreads, 0, i, d_b, d_c, o, n);
    });
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_c));
    return err;
}

// ---------------------------------------------------------------- launch configuration
__global__ void flag_kernel(int* flag) {
    if (threadIdx.x == 0 && blockIdx.x == 0) *flag = 1;
}

extern "C" int etk_func_attribute(int max_dynamic) {
    int err = (int)cudaFuncSetAttribute(flag_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, max_dynamic);
    cudaGetLastError();
    return err;
}

extern "C" int etk_launch_config(EtkDim grid, EtkDim block, size_t shared_bytes, int max_dynamic, int* ran,
                                 int* error_again) {
    cudaCheck(cudaFuncSetAttribute(flag_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   max_dynamic < 0 ? 48 * 1024 : max_dynamic));
    int zero = 0;
    int* d = device_copy(&zero, 1);
    cudaGetLastError();
    LAUNCH(flag_kernel, dim3(grid.x, grid.y, grid.z), dim3(block.x, block.y, block.z), shared_bytes, d);
    int err = (int)cudaGetLastError();
    *error_again = (int)cudaGetLastError();
    cudaCheck(cudaDeviceSynchronize());
    host_copy(ran, d, 1);
    cudaCheck(cudaFree(d));
    return err;
}

extern "C" int etk_peek_then_get(int* peek1, int* peek2, int* get, int* get_again) {
    int zero = 0;
    int* d = device_copy(&zero, 1);
    cudaGetLastError();
    LAUNCH(flag_kernel, 1, 0, 0, d);
    *peek1 = (int)cudaPeekAtLastError();
    *peek2 = (int)cudaPeekAtLastError();
    *get = (int)cudaGetLastError();
    *get_again = (int)cudaGetLastError();
    cudaCheck(cudaFree(d));
    return 0;
}

// ---------------------------------------------------------------- device limits
// Full unrolling keeps register_heavy_kernel's values in registers on the GPU; the host compiler of
// the emulation does not know the pragma.
#ifdef TIPCAP_CUDA_EMU
#define UNROLL
#else
#define UNROLL _Pragma("unroll")
#endif

// 16 KiB of static shared memory beside the dynamic: the shared memory limits count both. Two
// instantiations: <0> never opts in to more dynamic shared memory, <1> does.
template <int OPT_IN>
__global__ void static_shared_kernel(float* out) {
    __shared__ float fixed[4096];
    DYNAMIC_SHARED(float, dyn, 227 * 1024);  // launched with every size some device allows
    fixed[threadIdx.x] = (float)threadIdx.x;
    dyn[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = fixed[(threadIdx.x + 1) % blockDim.x] + dyn[threadIdx.x];
}

extern "C" int etk_static_shared_attribute(int max_dynamic) {
    int err = (int)cudaFuncSetAttribute(static_shared_kernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        max_dynamic);
    cudaGetLastError();
    return err;
}

extern "C" int etk_static_shared_launch(int opt_in, size_t dynamic_bytes) {
    float* d = device_copy<float>(NULL, 32);
    cudaGetLastError();
    if (opt_in) LAUNCH(static_shared_kernel<1>, 1, 32, dynamic_bytes, d);
    else LAUNCH(static_shared_kernel<0>, 1, 32, dynamic_bytes, d);
    int err = launch_status();
    cudaCheck(cudaFree(d));
    return err;
}

// All 96 loads must precede the first store (out may alias in), so each thread holds 96 values at
// once: about 100 registers, more than the 64 that 1024 threads may have.
#define REGISTER_HEAVY_VALUES 96
__global__ void register_heavy_kernel(float* out, const float* in) {
    float v[REGISTER_HEAVY_VALUES];
    UNROLL for (int i = 0; i < REGISTER_HEAVY_VALUES; i++) v[i] = in[i * blockDim.x + threadIdx.x];
    UNROLL for (int i = 0; i < REGISTER_HEAVY_VALUES; i++)
        out[i * blockDim.x + threadIdx.x] = v[i] * v[REGISTER_HEAVY_VALUES - 1 - i];
}

extern "C" int etk_register_heavy(int threads) {
    size_t n = (size_t)REGISTER_HEAVY_VALUES * threads;
    float* d = device_copy<float>(NULL, n);
    cudaCheck(cudaMemset(d, 0, n * sizeof(float)));
    cudaGetLastError();
    LAUNCH(register_heavy_kernel, 1, threads, 0, d, d);
    int err = launch_status();
    cudaCheck(cudaFree(d));
    return err;
}

extern "C" int etk_register_heavy_registers(const char* profile) {
#ifdef TIPCAP_CUDA_EMU
    return emu_kernel_registers((const void*)register_heavy_kernel, profile);
#else
    cudaFuncAttributes a;
    cudaCheck(cudaFuncGetAttributes(&a, register_heavy_kernel));
    return a.numRegs;
#endif
}

// ---------------------------------------------------------------- memory and device API
extern "C" void* etk_malloc(size_t bytes) {
    void* p = NULL;
    cudaCheck(cudaMalloc(&p, bytes));
    return p;
}
extern "C" int etk_free(void* p) {
    int err = (int)cudaFree(p);
    cudaGetLastError();
    return err;
}
extern "C" int etk_memcpy(void* dst, const void* src, size_t bytes, int kind) {
    int err = (int)cudaMemcpy(dst, src, bytes, (cudaMemcpyKind)kind);
    cudaGetLastError();
    return err;
}
extern "C" int etk_memset(void* p, int value, size_t bytes) {
    int err = (int)cudaMemset(p, value, bytes);
    cudaGetLastError();
    return err;
}
extern "C" int etk_device_properties(int* sms, size_t* shared_per_block, size_t* shared_optin, int* warp, int* major) {
    cudaDeviceProp p;
    int err = (int)cudaGetDeviceProperties(&p, 0);
    *sms = p.multiProcessorCount;
    *shared_per_block = p.sharedMemPerBlock;
    *shared_optin = p.sharedMemPerBlockOptin;
    *warp = p.warpSize;
    *major = p.major;
    return err;
}
extern "C" int etk_events(float* elapsed_ms) {
    cudaEvent_t start, stop;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&stop));
    float* d = device_copy<float>(NULL, 64);
    cudaCheck(cudaEventRecord(start, 0));
    LAUNCH(barrier_rotate_kernel, 1, 64, 0, d, 64);
    cudaCheck(cudaEventRecord(stop, 0));
    cudaCheck(cudaEventSynchronize(stop));
    int err = (int)cudaEventElapsedTime(elapsed_ms, start, stop);
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(stop));
    cudaCheck(cudaFree(d));
    return err;
}

extern "C" int etk_runtime_misc(int* err, int* copied, int* sms, size_t* free_bytes, size_t* total_bytes) {
    cudaStream_t stream;
    int host[64], back[64];
    for (int i = 0; i < 64; i++) host[i] = 3 * i + 1;
    int* d = device_copy<int>(NULL, 64);
    err[0] = (int)cudaStreamCreate(&stream);
    err[1] = (int)cudaMemcpyAsync(d, host, sizeof host, cudaMemcpyHostToDevice, stream);
    err[2] = (int)cudaMemsetAsync(d, 0, sizeof(int), stream);
    err[3] = (int)cudaStreamSynchronize(stream);
    cudaCheck(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost));
    *copied = back[0] == 0 && memcmp(back + 1, host + 1, sizeof host - sizeof(int)) == 0;
    err[4] = (int)cudaStreamDestroy(stream);
#ifdef TIPCAP_CUDA_EMU
    err[5] = (int)cudaStreamDestroy(stream);  // undefined behaviour on a GPU
#else
    err[5] = -1;
#endif
    void* pinned = NULL;
    err[6] = (int)cudaMallocHost(&pinned, 1000);
    err[7] = (int)cudaFreeHost(pinned);
    int devices = 0;
    cudaCheck(cudaGetDeviceCount(&devices));
    err[8] = (int)cudaSetDevice(devices);  // one past the last device
    cudaGetLastError();
    cudaCheck(cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, 0));
    cudaCheck(cudaMemGetInfo(free_bytes, total_bytes));
    cudaCheck(cudaFree(d));
    return 0;
}

// ---------------------------------------------------------------- cuBLAS / cuBLASLt
static size_t elem_size(int type) { return type ? 2 : 4; }
static cudaDataType_t data_type(int type) { return type ? CUDA_R_16BF : CUDA_R_32F; }
static size_t matrix_bytes(int rows, int cols, int ld, int type) {
    return rows && cols ? ((size_t)(cols - 1) * ld + rows) * elem_size(type) : 0;
}
static void* device_bytes(const void* host, size_t bytes) {
    if (!host || !bytes) return NULL;
    void* d = NULL;
    cudaCheck(cudaMalloc(&d, bytes));
    cudaCheck(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice));
    return d;
}
static void host_bytes(void* host, const void* device, size_t bytes) {
    if (host && device && bytes) cudaCheck(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost));
}

extern "C" int etk_gemm(int ta, int tb, int m, int n, int k, float alpha, const void* A, int lda, const void* B,
                        int ldb, float beta, void* C, int ldc, int ab_type, int c_type, int batch, long long stride_a,
                        long long stride_b, long long stride_c) {
    size_t a_bytes = matrix_bytes(ta ? k : m, ta ? m : k, lda, ab_type) + (size_t)(batch - 1) * stride_a * elem_size(ab_type);
    size_t b_bytes = matrix_bytes(tb ? n : k, tb ? k : n, ldb, ab_type) + (size_t)(batch - 1) * stride_b * elem_size(ab_type);
    size_t c_bytes = matrix_bytes(m, n, ldc, c_type) + (size_t)(batch - 1) * stride_c * elem_size(c_type);
    void* dA = device_bytes(A, a_bytes);
    void* dB = device_bytes(B, b_bytes);
    void* dC = device_bytes(C, c_bytes);
    cublasHandle_t handle;
    cublasCheck(cublasCreate(&handle));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    int status;
    if (batch == 1)
        status = (int)cublasGemmEx(handle, opa, opb, m, n, k, &alpha, dA, data_type(ab_type), lda, dB, data_type(ab_type),
                                   ldb, &beta, dC, data_type(c_type), ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    else
        status = (int)cublasGemmStridedBatchedEx(handle, opa, opb, m, n, k, &alpha, dA, data_type(ab_type), lda, stride_a,
                                                 dB, data_type(ab_type), ldb, stride_b, &beta, dC, data_type(c_type),
                                                 ldc, stride_c, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    cudaCheck(cudaDeviceSynchronize());
    host_bytes(C, dC, c_bytes);
    cublasCheck(cublasDestroy(handle));
    cudaCheck(cudaFree(dA));
    cudaCheck(cudaFree(dB));
    cudaCheck(cudaFree(dC));
    return status;
}

extern "C" int etk_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B,
                         int ldb, float beta, float* C, int ldc) {
    size_t a_bytes = matrix_bytes(ta ? k : m, ta ? m : k, lda, 0), b_bytes = matrix_bytes(tb ? n : k, tb ? k : n, ldb, 0);
    size_t c_bytes = matrix_bytes(m, n, ldc, 0);
    float* dA = (float*)device_bytes(A, a_bytes);
    float* dB = (float*)device_bytes(B, b_bytes);
    float* dC = (float*)device_bytes(C, c_bytes);
    cublasHandle_t handle;
    cublasCheck(cublasCreate(&handle));
    int status = (int)cublasSgemm(handle, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
                                  dA, lda, dB, ldb, &beta, dC, ldc);
    cudaCheck(cudaDeviceSynchronize());
    host_bytes(C, dC, c_bytes);
    cublasCheck(cublasDestroy(handle));
    cudaCheck(cudaFree(dA));
    cudaCheck(cudaFree(dB));
    cudaCheck(cudaFree(dC));
    return status;
}

extern "C" int etk_lt_matmul(const EtkLtArgs* g, int* algos) {
    size_t more = (size_t)(g->batch - 1);  // matrices after the first
    int bias_type = g->bias_type < 0 ? g->cd_type : g->bias_type;
    size_t a_bytes = matrix_bytes(g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda, g->ab_type) +
                     more * g->stride_a * elem_size(g->ab_type);
    size_t b_bytes = matrix_bytes(g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb, g->ab_type) +
                     more * g->stride_b * elem_size(g->ab_type);
    size_t d_bytes = matrix_bytes(g->m, g->n, g->ldc, g->cd_type) + more * g->stride_c * elem_size(g->cd_type);
    size_t bias_bytes = ((size_t)(g->epilogue == CUBLASLT_EPILOGUE_BGRADB ? g->n : g->m) + more * g->stride_bias) *
                        elem_size(bias_type);
    size_t aux_bytes = matrix_bytes(g->m, g->n, g->aux_ld, g->cd_type) + more * g->stride_aux * elem_size(g->cd_type);
    void* dA = device_bytes(g->A, a_bytes);
    void* dB = device_bytes(g->B, b_bytes);
    void* dC = device_bytes(g->C, d_bytes);
    void* dD = device_bytes(g->D, d_bytes);
    void* dbias = device_bytes(g->bias, bias_bytes);
    void* daux = device_bytes(g->aux, aux_bytes);

    cublasLtHandle_t handle;
    cublasCheck(cublasLtCreate(&handle));
    cublasLtMatmulDesc_t desc;
    cublasCheck(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = g->ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = g->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtEpilogue_t epilogue = (cublasLtEpilogue_t)g->epilogue;
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    if (dbias) {
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &dbias, sizeof dbias));
        if (g->bias_type >= 0) {
            int32_t t = (int32_t)data_type(g->bias_type);
            cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof t));
        }
    }
    if (daux) {
        int64_t ld = g->aux_ld;
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &daux, sizeof daux));
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld));
    }
    cublasLtMatrixLayout_t la, lb, lc;
    cublasCheck(cublasLtMatrixLayoutCreate(&la, data_type(g->ab_type), g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda));
    cublasCheck(cublasLtMatrixLayoutCreate(&lb, data_type(g->ab_type), g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb));
    cublasCheck(cublasLtMatrixLayoutCreate(&lc, data_type(g->cd_type), g->m, g->n, g->ldc));
    if (g->batch > 1) {
        int32_t count = g->batch;
        int64_t strides[3] = {g->stride_a, g->stride_b, g->stride_c}, bias_stride = g->stride_bias,
                aux_stride = g->stride_aux;
        cublasLtMatrixLayout_t layouts[3] = {la, lb, lc};
        for (int i = 0; i < 3; i++) {
            cublasCheck(cublasLtMatrixLayoutSetAttribute(layouts[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                         sizeof count));
            cublasCheck(cublasLtMatrixLayoutSetAttribute(layouts[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                         &strides[i], sizeof strides[i]));
        }
        if (dbias)
            cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bias_stride,
                                                       sizeof bias_stride));
        if (daux)
            cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, &aux_stride,
                                                       sizeof aux_stride));
    }
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    size_t workspace_bytes = 1 << 22;
    void* workspace = NULL;
    cudaCheck(cudaMalloc(&workspace, workspace_bytes));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                     sizeof workspace_bytes));
    cublasLtMatmulHeuristicResult_t heuristic;
    *algos = 0;
    int status = (int)cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, 1, &heuristic, algos);
    if (status == CUBLAS_STATUS_SUCCESS && *algos > 0) {
        status = (int)cublasLtMatmul(handle, desc, &g->alpha, dA, la, dB, lb, &g->beta, dC ? dC : dD, lc, dD, lc,
                                     &heuristic.algo, workspace, workspace_bytes, 0);
        cudaCheck(cudaDeviceSynchronize());
    }
    host_bytes(g->D, dD, d_bytes);
    host_bytes(g->bias, dbias, bias_bytes);
    host_bytes(g->aux, daux, aux_bytes);
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    cublasCheck(cublasLtMatrixLayoutDestroy(la));
    cublasCheck(cublasLtMatrixLayoutDestroy(lb));
    cublasCheck(cublasLtMatrixLayoutDestroy(lc));
    cublasCheck(cublasLtMatmulDescDestroy(desc));
    cublasCheck(cublasLtDestroy(handle));
    void* buffers[7] = {dA, dB, dC, dD, dbias, daux, workspace};
    for (void* p : buffers) cudaCheck(cudaFree(p));
    return status;
}

// ---------------------------------------------------------------- emulation only
#ifdef TIPCAP_CUDA_EMU
#undef EMU_PTXAS_REPORTED
#define EMU_PTXAS_REPORTED 0  // nvcc never compiles the kernels below: ptxas has no report on them
extern "C" void etk_set_shuffle(uint64_t seed) { emu_set_shuffle(seed); }
extern "C" int etk_set_device(const char* profile) { return emu_set_device(profile); }
extern "C" const char* etk_device_profiles(void) { return emu_device_profiles(); }
extern "C" void etk_set_checks(int on) { emu_set_checks(on); }

// The faults the race, barrier and initialisation checks report, each with a correct twin.
__global__ void global_race_kernel(int variant, int* x, int* out) {
    int t = threadIdx.x;
    switch (variant) {
        case 0:  // thread 0 writes, a barrier, all read
        case 1:  // ... without the barrier
            if (t == 0) x[0] = 7;
            if (variant == 0) __syncthreads();
            out[blockIdx.x * blockDim.x + t] = x[0];
            break;
        case 2: if (t == 0) atomicAdd(&x[0], 1); break;           // every block adds to x[0]
        case 3: if (t == 0) x[0] = blockIdx.x; break;             // every block writes x[0]
        case 4: case 5: out[t] = x[t]; break;                     // x: set (4), cudaMalloc'd only (5)
        case 6: case 7:  // lanes 16-31 exit; the others shuffle among themselves (6) or the whole warp (7)
            if (t % 32 >= 16) return;
            out[t] = __shfl_xor_sync(variant == 7 ? 0xffffffffu : 0x0000ffffu, t, 1);
            break;
    }
}
extern "C" int etk_check_case(int variant) {
    int* x = device_copy<int>(NULL, 64);
    int* out = device_copy<int>(NULL, 128);
    if (variant != 5) cudaCheck(cudaMemset(x, 0, 64 * sizeof(int)));
    LAUNCH(global_race_kernel, variant == 2 || variant == 3 ? 2 : 1, 64, 0, variant, x, out);
    int status = launch_status();
    cudaCheck(cudaFree(x));
    cudaCheck(cudaFree(out));
    return status;
}

__global__ void arrival_order_kernel(int* out) {
    __shared__ int counter;
    if (threadIdx.x == 0) counter = 0;
    __syncthreads();
    out[threadIdx.x] = atomicAdd(&counter, 1);
}

extern "C" int etk_arrival_order(int threads, int* out) {
    int* d = device_copy<int>(NULL, (size_t)threads);
    LAUNCH(arrival_order_kernel, 1, threads, 0, d);
    int err = launch_status();
    host_copy(out, d, (size_t)threads);
    cudaCheck(cudaFree(d));
    return err;
}

// Block sums of 256 values. VARIANT 1 drops the barrier between the shared store and the first
// read of another thread's element; VARIANT 2 drops the barrier between the reduction steps.
template <int VARIANT>
__global__ void reduce_kernel(const float* x, float* out, int n) {
    __shared__ float s[256];
    int t = (int)threadIdx.x, i = (int)blockIdx.x * 256 + t;
    s[t] = i < n ? x[i] : 0.0f;
    if (VARIANT != 1) __syncthreads();
    for (int stride = 128; stride > 0; stride >>= 1) {
        if (t < stride) s[t] += s[t + stride];
        if (VARIANT != 2) __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

extern "C" int etk_reduce_sum(const float* x, int n, int variant, float* block_sums) {
    int blocks = CEIL_DIV(n, 256);
    float* d_x = device_copy(x, (size_t)n);
    float* d_out = device_copy<float>(NULL, (size_t)blocks);
    if (variant == 1) LAUNCH(reduce_kernel<1>, blocks, 256, 0, d_x, d_out, n);
    else if (variant == 2) LAUNCH(reduce_kernel<2>, blocks, 256, 0, d_x, d_out, n);
    else LAUNCH(reduce_kernel<0>, blocks, 256, 0, d_x, d_out, n);
    int err = launch_status();
    host_copy(block_sums, d_out, (size_t)blocks);
    cudaCheck(cudaFree(d_x));
    cudaCheck(cudaFree(d_out));
    return err;
}

// C[M,N] = A[M,K] B[K,N], row-major, through 16x16 tiles of A and B in shared memory.
// VARIANT 1: the number of k tiles is K / 16, which drops the last partial tile;
// VARIANT 2: the output guard is row <= M, which stores one row past C.
template <int VARIANT>
__global__ void tiled_matmul_kernel(const float* A, const float* B, float* C, int M, int N, int K) {
    __shared__ float As[16][16], Bs[16][16];
    int tx = (int)threadIdx.x, ty = (int)threadIdx.y;
    int row = (int)blockIdx.y * 16 + ty, col = (int)blockIdx.x * 16 + tx;
    int tiles = VARIANT == 1 ? K / 16 : CEIL_DIV(K, 16);
    float acc = 0.0f;
    for (int tile = 0; tile < tiles; tile++) {
        int ka = tile * 16 + tx, kb = tile * 16 + ty;
        As[ty][tx] = row < M && ka < K ? A[(size_t)row * K + ka] : 0.0f;
        Bs[ty][tx] = kb < K && col < N ? B[(size_t)kb * N + col] : 0.0f;
        __syncthreads();
        for (int k = 0; k < 16; k++) acc += As[ty][k] * Bs[k][tx];
        __syncthreads();
    }
    if ((VARIANT == 2 ? row <= M : row < M) && col < N) C[(size_t)row * N + col] = acc;
}

extern "C" int etk_tiled_matmul(const float* A, const float* B, float* C, int M, int N, int K, int variant) {
    float* dA = device_copy(A, (size_t)M * K);
    float* dB = device_copy(B, (size_t)K * N);
    float* dC = device_copy<float>(NULL, (size_t)M * N);
    dim3 grid(CEIL_DIV(N, 16), CEIL_DIV(M, 16)), block(16, 16);
    if (variant == 1) LAUNCH(tiled_matmul_kernel<1>, grid, block, 0, dA, dB, dC, M, N, K);
    else if (variant == 2) LAUNCH(tiled_matmul_kernel<2>, grid, block, 0, dA, dB, dC, M, N, K);
    else LAUNCH(tiled_matmul_kernel<0>, grid, block, 0, dA, dB, dC, M, N, K);
    int err = launch_status();
    host_copy(C, dC, (size_t)M * N);
    cudaCheck(cudaFree(dA));
    cudaCheck(cudaFree(dB));
    cudaCheck(cudaFree(dC));
    return err;
}

__global__ void oob_write_kernel(float* p, long index) {
    if (threadIdx.x == 0) p[index] = 1.0f;
}
extern "C" void etk_oob_write(long index) {
    float* d = device_copy<float>(NULL, 100);
    LAUNCH(oob_write_kernel, 1, 32, 0, d, index);
    launch_status();
}

__global__ void oob_dynamic_shared_kernel(void) {
    DYNAMIC_SHARED(float, s, 64);
    if (threadIdx.x == 0) s[16] = 1.0f;
}
extern "C" void etk_oob_dynamic_shared(void) {
    LAUNCH(oob_dynamic_shared_kernel, 2, 32, 64);
    launch_status();
}

__global__ void divergent_barrier_kernel(float* out) {
    if (threadIdx.x < 16) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}
extern "C" void etk_divergent_barrier(void) {
    float* d = device_copy<float>(NULL, 64);
    LAUNCH(divergent_barrier_kernel, 1, 64, 0, d);
    launch_status();
}

__global__ void barrier_deadlock_kernel(float* out) {
    float v = (float)threadIdx.x;
    if (threadIdx.x == 0) __syncthreads();
    else v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}
extern "C" void etk_barrier_deadlock(void) {
    float* d = device_copy<float>(NULL, 32);
    LAUNCH(barrier_deadlock_kernel, 1, 32, 0, d);
    launch_status();
}

__global__ void divergent_shuffle_kernel(float* out) {
    float v = (float)threadIdx.x;
    if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
    else v = __shfl_xor_sync(0xffffffffu, v, 2);
    out[threadIdx.x] = v;
}
extern "C" void etk_divergent_shuffle(void) {
    float* d = device_copy<float>(NULL, 32);
    LAUNCH(divergent_shuffle_kernel, 1, 32, 0, d);
    launch_status();
}

__global__ void mask_without_self_kernel(float* out) {
    out[threadIdx.x] = __shfl_xor_sync(0x1u, 1.0f, 1);
}
extern "C" void etk_shuffle_mask_without_self(void) {
    float* d = device_copy<float>(NULL, 32);
    LAUNCH(mask_without_self_kernel, 1, 32, 0, d);
    launch_status();
}

__device__ __noinline__ float deep_recursion(volatile float* sink, int depth) {
    volatile float frame[1024];
    frame[depth % 1024] = (float)depth;
    *sink = frame[(depth * 7) % 1024];
    return depth > 1000000 ? 0.0f : deep_recursion(sink, depth + 1) + frame[3];
}
__global__ void stack_overflow_kernel(float* out) { out[threadIdx.x] = deep_recursion(out, 0); }
extern "C" void etk_stack_overflow(void) {
    float* d = device_copy<float>(NULL, 32);
    LAUNCH(stack_overflow_kernel, 1, 32, 0, d);
    launch_status();
}

// A fault while the grid runs: thread 5 of block 1 traps.
__global__ void trap_kernel(float* out) {
    if (blockIdx.x == 1 && threadIdx.x == 5) __trap();
    out[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}
extern "C" void etk_trap_then_copy(void) {
    float* d = device_copy<float>(NULL, 4 * 32);
    LAUNCH(trap_kernel, 4, 32, 0, d);
    cudaCheckLaunch();
    float h[4 * 32];
    host_copy(h, d, 4 * 32);
}
extern "C" void etk_trap_sticky(int codes[5]) {
    float* d = device_copy<float>(NULL, 4 * 32);
    LAUNCH(trap_kernel, 4, 32, 0, d);
    codes[0] = (int)cudaGetLastError();  // the launch itself succeeded
    codes[1] = (int)cudaDeviceSynchronize();
    codes[2] = (int)cudaGetLastError();  // sticky: not cleared by reading it
    LAUNCH(trap_kernel, 1, 32, 0, d);    // does not run
    codes[3] = (int)cudaGetLastError();
    float h[32];
    codes[4] = (int)cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
}
extern "C" void etk_dynamic_shared_over_declared(void) {
    uint32_t* d = device_copy<uint32_t>(NULL, 2);
    LAUNCH(shared_unwritten_kernel, 1, 1, 32, d, 1);  // it declares 16 bytes
    launch_status();
}

__global__ void wild_pointer_kernel(float* p) { p[threadIdx.x] = 1.0f; }
extern "C" void etk_wild_pointer(void) {
    volatile uintptr_t wild = 64;  // volatile: the compiler must not see the constant
    LAUNCH(wild_pointer_kernel, 1, 32, 0, (float*)wild);
    launch_status();
}
#endif
