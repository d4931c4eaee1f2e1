// The CUDA execution model on the CPU, so that the kernel sources of kernels/ compile unchanged
// with the host C++ compiler (-DTIPCAP_CUDA_EMU -x c++) and run in `make test` on machines
// without a GPU. See kernels/emu/README.md for how it works and what it cannot detect.
//
// - Each block runs on an emulator worker thread; its threads are cooperative fibers that run until
//   they block (__syncthreads, a warp exchange) or exit. Blocks of one launch are spread over the
//   workers; each worker runs one block at a time.
// - `__shared__` variables are thread_local statics: one copy per worker, so shared by the fibers
//   of a block and private to it; the worker poisons them (and dynamic shared memory) with NaN at
//   every block start. Dynamic shared memory comes from DYNAMIC_SHARED (kernels/cuda_common.cuh).
// - threadIdx/blockIdx/blockDim/gridDim are read from the current fiber's header, found by masking
//   the stack pointer (fiber stacks are EMU_FIBER_REGION-aligned regions).
// - The runtime API works on host memory: device allocations sit between poisoned red zones that
//   are checked after every launch; fresh allocations are filled with NaN.
// - cuBLAS and cuBLASLt calls are served by CPU code (emu_cublas.h).
#pragma once
#ifndef TIPCAP_CUDA_EMU
#error "kernels/emu/cuda_emu.h is the CPU emulation of CUDA: compile with -DTIPCAP_CUDA_EMU"
#endif
#ifndef __cplusplus
#error "kernels/emu/cuda_emu.h is C++: compile .cu files with -x c++"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

struct __nv_bfloat16;
struct __nv_bfloat162;

// ---------------------------------------------------------------- qualifiers
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__  // empty: GCC's own headers write __attribute__((__noinline__))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ thread_local  // at block scope, thread_local implies static
// __restrict__ is a GCC keyword already.

// ---------------------------------------------------------------- vector types
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
struct __align__(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) uint4 { unsigned int x, y, z, w; };
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(16) double2 { double x, y; };
static inline int2 make_int2(int x, int y) { return int2{x, y}; }
static inline int3 make_int3(int x, int y, int z) { return int3{x, y, z}; }
static inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
static inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
static inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline double2 make_double2(double x, double y) { return double2{x, y}; }

// ---------------------------------------------------------------- runtime API types
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorUnknown = 999,
} cudaError_t;

typedef enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
} cudaMemcpyKind;

typedef enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9,
} cudaFuncAttribute;

typedef enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
} cudaDeviceAttr;

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int regsPerBlock;
    int warpSize;
    size_t memPitch;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    size_t totalConstMem;
    int major;
    int minor;
    size_t textureAlignment;
    int multiProcessorCount;
    int integrated;
    int canMapHostMemory;
    int concurrentKernels;
    int ECCEnabled;
    int pciBusID;
    int pciDeviceID;
    int pciDomainID;
    int asyncEngineCount;
    int unifiedAddressing;
    int memoryBusWidth;
    int l2CacheSize;
    int persistingL2CacheMaxSize;
    int maxThreadsPerMultiProcessor;
    size_t sharedMemPerMultiprocessor;
    int regsPerMultiprocessor;
    int managedMemory;
    int cooperativeLaunch;
    size_t sharedMemPerBlockOptin;
    int maxBlocksPerMultiProcessor;
    size_t reservedSharedMemPerBlock;
};

typedef struct EmuStream* cudaStream_t;
typedef struct EmuEvent* cudaEvent_t;
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00

// ---------------------------------------------------------------- runtime API
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

cudaError_t cudaMalloc(void** ptr, size_t size);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t size);
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemset(void* ptr, int value, size_t count);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream = 0);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// __constant__ and __device__ variables are ordinary host globals under emulation.
template <typename T>
cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, size_t count, size_t offset = 0,
                               cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
    if (offset + count > sizeof(T)) return cudaErrorInvalidValue;
    memcpy((char*)&symbol + offset, src, count);
    return cudaSuccess;
}
template <typename T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t count, size_t offset = 0,
                                 cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
    if (offset + count > sizeof(T)) return cudaErrorInvalidValue;
    memcpy(dst, (const char*)&symbol + offset, count);
    return cudaSuccess;
}

// cudaFuncSetAttribute(kernel, attr, value): the emulator launches kernels by name (LAUNCH passes
// #kernel), so the attribute is keyed by the kernel's name without template arguments.
cudaError_t emu_func_set_attribute(const char* kernel_text, cudaFuncAttribute attr, int value);
#define cudaFuncSetAttribute(...) emu_func_set_attribute_checked(#__VA_ARGS__, __VA_ARGS__)
template <typename F>
cudaError_t emu_func_set_attribute_checked(const char* text, F func, cudaFuncAttribute attr, int value) {
    static_assert(std::is_pointer<F>::value || std::is_function<F>::value,
                  "cudaFuncSetAttribute: the first argument must be a kernel");
    return emu_func_set_attribute(text, attr, value);
}

// ---------------------------------------------------------------- launches
// LAUNCH(kernel, grid, block, shared_bytes, args...) (kernels/cuda_common.cuh) calls
// emu_launch(#kernel, grid, block, shared_bytes, [&]() { kernel(args...); }): every thread of every
// block calls the closure on its own fiber. A bad configuration is reported by cudaGetLastError
// and nothing runs, as on hardware.
void emu_launch_impl(const char* name, dim3 grid, dim3 block, size_t shared_bytes, void (*invoke)(const void*),
                     const void* closure);
template <typename F>
void emu_launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, const F& body) {
    emu_launch_impl(name, grid, block, shared_bytes, [](const void* c) { (*static_cast<const F*>(c))(); }, &body);
}

// Shuffle mode: fibers resume in a random order at every barrier, warp exchange and atomic, and
// blocks run in a random order, so that missing barriers and races show up. Seeded (reproducible
// per block); also enabled by the environment variable TIPCAP_EMU_SHUFFLE=seed. seed 0 turns it off.
void emu_set_shuffle(uint64_t seed);
uint64_t emu_get_shuffle(void);

// Counters since program start, for benchmarks.
struct EmuStats {
    uint64_t launches;
    uint64_t blocks;
    uint64_t threads;
    uint64_t switches;  // fiber context switches
};
EmuStats emu_stats(void);

// ---------------------------------------------------------------- device side: thread identity
// Fiber stacks are regions of EMU_FIBER_REGION bytes aligned to their size. The header that
// describes the fiber sits just above the top of its stack, so that a switch touches neighbouring
// cache lines; both lie up to 64 KiB below the region's end, at an offset that depends on the
// region's address, so that the fibers of a block spread over the cache sets instead of all
// competing for one. Device code finds the header from the stack pointer.
#define EMU_FIBER_REGION ((uintptr_t)512 * 1024)
#define EMU_FIBER_HEADER_BYTES ((uintptr_t)256)
struct EmuBlockInfo {
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
    void* dynamic_shared;
};
struct EmuFiberHeader {
    uint3 thread_idx;
    const EmuBlockInfo* block;
};
__attribute__((always_inline)) inline EmuFiberHeader* emu_fiber_header(uintptr_t region) {
    uintptr_t color = ((region / EMU_FIBER_REGION) * 17) & 1023;
    return (EmuFiberHeader*)(region + EMU_FIBER_REGION - color * 64 - EMU_FIBER_HEADER_BYTES);
}
__attribute__((always_inline)) inline EmuFiberHeader* emu_fiber(void) {
    return emu_fiber_header((uintptr_t)__builtin_frame_address(0) & ~(EMU_FIBER_REGION - 1));
}
#define threadIdx (emu_fiber()->thread_idx)
#define blockIdx (emu_fiber()->block->block_idx)
#define blockDim (emu_fiber()->block->block_dim)
#define gridDim (emu_fiber()->block->grid_dim)
static constexpr int warpSize = 32;
inline void* emu_dynamic_shared(void) { return emu_fiber()->block->dynamic_shared; }

// ---------------------------------------------------------------- device side: synchronisation
// Each call site is passed along so that threads waiting at different barriers (divergent
// __syncthreads) or at different warp exchanges are reported instead of matched.
void emu_syncthreads(const char* file, int line);
int emu_syncthreads_reduce(const char* file, int line, int op, int predicate);
#define __syncthreads() emu_syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(p) emu_syncthreads_reduce(__FILE__, __LINE__, 0, (p))
#define __syncthreads_and(p) emu_syncthreads_reduce(__FILE__, __LINE__, 1, (p))
#define __syncthreads_or(p) emu_syncthreads_reduce(__FILE__, __LINE__, 2, (p))

enum EmuWarpOp {
    EMU_SHFL_IDX, EMU_SHFL_UP, EMU_SHFL_DOWN, EMU_SHFL_XOR, EMU_BALLOT, EMU_VOTE_ANY, EMU_VOTE_ALL, EMU_SYNCWARP
};
// One exchange among the non-exited lanes of `mask` (each lane must name itself). Shuffles return
// the `value` of the source lane that `op`, `arg` and `width` select (the caller's own value when
// the source falls outside its segment, a NaN pattern when the source lane is not taking part);
// votes return the ballot, any or all of the lanes' `value != 0`.
uint64_t emu_warp_exchange(const char* file, int line, EmuWarpOp op, unsigned mask, uint64_t value, int arg,
                           int width);
// The non-exited lanes of the caller's warp.
unsigned emu_activemask(void);

template <typename T>
inline T emu_shfl(const char* file, int line, EmuWarpOp op, unsigned mask, T var, int arg, int width) {
    static_assert(std::is_arithmetic<T>::value || std::is_same<T, __nv_bfloat16>::value ||
                      std::is_same<T, __nv_bfloat162>::value,
                  "warp shuffles take arithmetic, __nv_bfloat16 and __nv_bfloat162 values");
    static_assert(sizeof(T) <= 8, "warp shuffles move at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &var, sizeof(T));
    bits = emu_warp_exchange(file, line, op, mask, bits, arg, width);
    T out;
    memcpy((void*)&out, &bits, sizeof(T));
    return out;
}
inline int emu_width_(void) { return 32; }
inline int emu_width_(int width) { return width; }
#define EMU_SHFL_(op, mask, var, arg, ...) \
    emu_shfl(__FILE__, __LINE__, op, (mask), (var), (int)(arg), emu_width_(__VA_ARGS__))
#define __shfl_sync(mask, var, ...) EMU_SHFL_(EMU_SHFL_IDX, mask, var, __VA_ARGS__)
#define __shfl_up_sync(mask, var, ...) EMU_SHFL_(EMU_SHFL_UP, mask, var, __VA_ARGS__)
#define __shfl_down_sync(mask, var, ...) EMU_SHFL_(EMU_SHFL_DOWN, mask, var, __VA_ARGS__)
#define __shfl_xor_sync(mask, var, ...) EMU_SHFL_(EMU_SHFL_XOR, mask, var, __VA_ARGS__)
#define EMU_VOTE_(op, mask, pred) emu_warp_exchange(__FILE__, __LINE__, op, (mask), (pred) ? 1 : 0, 0, 32)
#define __ballot_sync(mask, pred) ((unsigned)EMU_VOTE_(EMU_BALLOT, mask, pred))
#define __any_sync(mask, pred) ((int)EMU_VOTE_(EMU_VOTE_ANY, mask, pred))
#define __all_sync(mask, pred) ((int)EMU_VOTE_(EMU_VOTE_ALL, mask, pred))
inline unsigned emu_syncwarp_mask_(unsigned mask = 0xffffffffu) { return mask; }
#define __syncwarp(...) \
    ((void)emu_warp_exchange(__FILE__, __LINE__, EMU_SYNCWARP, emu_syncwarp_mask_(__VA_ARGS__), 0, 0, 32))
#define __activemask() emu_activemask()

// Stops the grid with cudaErrorLaunchFailure, reported by the next synchronising call.
[[noreturn]] void emu_trap(const char* file, int line);
#define __trap() emu_trap(__FILE__, __LINE__)

inline void __threadfence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---------------------------------------------------------------- device side: atomics
// Blocks run concurrently on the workers, so atomics are real atomics. In shuffle mode each one
// is also a point where the fiber may be switched out.
extern int emu_shuffle_active;
void emu_yield(void);
inline void emu_atomic_point(void) {
    if (__builtin_expect(emu_shuffle_active, 0)) emu_yield();
}
template <typename T>
inline T emu_atomic_fetch_add(T* p, T v) {
    emu_atomic_point();
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <typename T, typename F>
inline T emu_atomic_update(T* p, F update) {
    emu_atomic_point();
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(p, &old, update(old), true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
inline int atomicAdd(int* p, int v) { return emu_atomic_fetch_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return emu_atomic_fetch_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return emu_atomic_fetch_add(p, v); }
inline float atomicAdd(float* p, float v) {
    uint32_t old = emu_atomic_update((uint32_t*)p, [v](uint32_t bits) {
        float f;
        memcpy(&f, &bits, 4);
        f += v;
        memcpy(&bits, &f, 4);
        return bits;
    });
    float out;
    memcpy(&out, &old, 4);
    return out;
}
inline double atomicAdd(double* p, double v) {
    uint64_t old = emu_atomic_update((uint64_t*)p, [v](uint64_t bits) {
        double d;
        memcpy(&d, &bits, 8);
        d += v;
        memcpy(&bits, &d, 8);
        return bits;
    });
    double out;
    memcpy(&out, &old, 8);
    return out;
}
inline int atomicSub(int* p, int v) { emu_atomic_point(); return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicSub(unsigned* p, unsigned v) { emu_atomic_point(); return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline int atomicExch(int* p, int v) { emu_atomic_point(); return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned* p, unsigned v) { emu_atomic_point(); return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicExch(unsigned long long* p, unsigned long long v) {
    emu_atomic_point();
    return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}
inline float atomicExch(float* p, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    emu_atomic_point();
    uint32_t old = __atomic_exchange_n((uint32_t*)p, bits, __ATOMIC_RELAXED);
    float out;
    memcpy(&out, &old, 4);
    return out;
}
template <typename T>
inline T emu_atomic_cas(T* p, T compare, T value) {
    emu_atomic_point();
    __atomic_compare_exchange_n(p, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return compare;  // the old value whether or not the swap happened
}
inline int atomicCAS(int* p, int compare, int value) { return emu_atomic_cas(p, compare, value); }
inline unsigned atomicCAS(unsigned* p, unsigned compare, unsigned value) { return emu_atomic_cas(p, compare, value); }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long compare, unsigned long long value) {
    return emu_atomic_cas(p, compare, value);
}
inline unsigned short atomicCAS(unsigned short* p, unsigned short compare, unsigned short value) {
    return emu_atomic_cas(p, compare, value);
}
#define EMU_ATOMIC_MINMAX_(T)                                                                     \
    inline T atomicMax(T* p, T v) { return emu_atomic_update(p, [v](T old) { return old > v ? old : v; }); } \
    inline T atomicMin(T* p, T v) { return emu_atomic_update(p, [v](T old) { return old < v ? old : v; }); }
EMU_ATOMIC_MINMAX_(int)
EMU_ATOMIC_MINMAX_(unsigned)
EMU_ATOMIC_MINMAX_(long long)
EMU_ATOMIC_MINMAX_(unsigned long long)
#undef EMU_ATOMIC_MINMAX_
#define EMU_ATOMIC_BITS_(T)                                                                                  \
    inline T atomicAnd(T* p, T v) { emu_atomic_point(); return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); } \
    inline T atomicOr(T* p, T v) { emu_atomic_point(); return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }   \
    inline T atomicXor(T* p, T v) { emu_atomic_point(); return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }
EMU_ATOMIC_BITS_(int)
EMU_ATOMIC_BITS_(unsigned)
EMU_ATOMIC_BITS_(unsigned long long)
#undef EMU_ATOMIC_BITS_
inline unsigned atomicInc(unsigned* p, unsigned limit) {
    return emu_atomic_update(p, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* p, unsigned limit) {
    return emu_atomic_update(p, [limit](unsigned old) { return (old == 0 || old > limit) ? limit : old - 1; });
}

// ---------------------------------------------------------------- device side: math
// The CUDA math library maps onto the C library; the fast intrinsics (__expf, ...) are the
// accurate functions here, which differ from the GPU's within the intrinsics' documented error.
template <typename T>
__attribute__((always_inline)) inline T __ldg(const T* p) { return *p; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline double __dadd_rn(double x, double y) { return x + y; }
inline double __dmul_rn(double x, double y) { return x * y; }
inline double __fma_rn(double x, double y, double z) { return fma(x, y, z); }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }  // NaN -> 0
inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
inline double normcdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752); }
inline int __float2int_rn(float x) { return (int)rintf(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)floorf(x); }
inline int __float2int_ru(float x) { return (int)ceilf(x); }
inline unsigned __float2uint_rn(float x) { return (unsigned)rintf(x); }
inline long long __float2ll_rn(float x) { return (long long)rintf(x); }
inline float __int2float_rn(int x) { return (float)x; }
inline float __uint2float_rn(unsigned x) { return (float)x; }
inline int __double2int_rn(double x) { return (int)rint(x); }
inline float __double2float_rn(double x) { return (float)x; }
inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
inline long long __double_as_longlong(double x) { long long i; memcpy(&i, &x, 8); return i; }
inline double __longlong_as_double(long long x) { double d; memcpy(&d, &x, 8); return d; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}
inline unsigned __umul24(unsigned x, unsigned y) { return (x & 0xffffffu) * (y & 0xffffffu); }
inline int __mulhi(int x, int y) { return (int)(((long long)x * (long long)y) >> 32); }
inline unsigned __umulhi(unsigned x, unsigned y) { return (unsigned)(((unsigned long long)x * y) >> 32); }
inline unsigned long long __umul64hi(unsigned long long x, unsigned long long y) {
    return (unsigned long long)(((unsigned __int128)x * y) >> 64);
}

// min/max as CUDA's math headers declare them for host and device code.
#define EMU_MINMAX_(T)                                      \
    inline T min(T a, T b) { return a < b ? a : b; }        \
    inline T max(T a, T b) { return a > b ? a : b; }
EMU_MINMAX_(int)
EMU_MINMAX_(unsigned int)
EMU_MINMAX_(long)
EMU_MINMAX_(unsigned long)
EMU_MINMAX_(long long)
EMU_MINMAX_(unsigned long long)
#undef EMU_MINMAX_
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline unsigned int min(int a, unsigned int b) { return min((unsigned int)a, b); }
inline unsigned int min(unsigned int a, int b) { return min(a, (unsigned int)b); }
inline unsigned int max(int a, unsigned int b) { return max((unsigned int)a, b); }
inline unsigned int max(unsigned int a, int b) { return max(a, (unsigned int)b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double max(double a, float b) { return fmax(a, b); }
inline unsigned int umin(unsigned int a, unsigned int b) { return min(a, b); }
inline unsigned int umax(unsigned int a, unsigned int b) { return max(a, b); }

#include "kernels/emu/emu_bf16.h"
#include "kernels/emu/emu_cublas.h"
