// Kernels and library calls for tests/test_emu.c, in tests/emu_test_kernels.cu: built under the CUDA
// emulation for `make test`, and with nvcc for `make test-gpu`, where the same cases check the
// emulation's expectations against a real GPU. Every function takes and returns host arrays; those
// returning int return the cudaError_t (or cublasStatus_t) under test, 0 for success.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int x, y, z;
} EtkDim;

int etk_emulated(void);      // 1 under the emulation
int etk_device_count(void);  // usable devices (0: no GPU)

// ---- thread identity, barriers, shared memory
// Every thread whose linear index t is < active exchanges values through shared memory across
// three barriers; out[b * T + t] = 10000 b + t + 0.5 (T threads per block, b the linear block
// index); threads t >= active return at once and leave out untouched.
int etk_barrier_rotate(EtkDim grid, EtkDim block, int active, float* out);
// Per block: __syncthreads_count(t % 3 == 0), __syncthreads_and(t < T), __syncthreads_and(t % 3 == 0),
// __syncthreads_or(t == T - 1), __syncthreads_or(0) -> out[5 b + 0..4].
int etk_barrier_reduce(int blocks, int threads, int* out);
// A __shared__ scalar written by thread 0 and read by all: out[b * T + t] = 3 b + 1.
int etk_shared_private(int blocks, int threads, float* out);
// Dynamic shared memory of `bytes` (cudaFuncSetAttribute raises the limit first when needed):
// out[b * T + t] = 1000 b + (T - 1 - t).
int etk_dynamic_shared(int blocks, int threads, size_t bytes, float* out);
// Bits of a __shared__ float and of dynamic shared memory read before any write in the block,
// after an earlier launch of the same kernel wrote both.
int etk_shared_unwritten(uint32_t* static_bits, uint32_t* dynamic_bits);
// Sum of a 32 KiB local array in each of `threads` threads: out[t] = sum_{i<8192} (i % 7) * t.
int etk_local_array(int threads, float* out);

// ---- warp exchanges, one block of `threads` threads; lanes outside `mask` return at once
// op: 0 __shfl_sync, 1 __shfl_up_sync, 2 __shfl_down_sync, 3 __shfl_xor_sync; arg[t]: the lane,
// delta or lane mask of thread t; type: 0 float, 1 double, 2 int, 3 __nv_bfloat16. Lane L of warp W
// offers the value L + 1 + 64 W (L + 1 for bf16); out[t] = what thread t received (-1 if it
// returned at once).
int etk_shuffle(int op, int type, int threads, unsigned mask, const int* arg, int width, double* out);
// ballot/any/all of pred[t] over `mask`; lanes outside the mask return at once.
int etk_vote(int threads, unsigned mask, const int* pred, unsigned* ballot, int* any, int* all);
// Shared-memory exchange inside each warp around __syncwarp(): out[t] = 3 * (t's next lane in its warp).
int etk_syncwarp(int threads, int* out);

// ---- atomics over blocks x threads threads with global index g
// results: [0] int counter (+1 each), [1] unsigned (+2 each), [2] max of (7919 g) % 10007,
// [3] min of (7919 g) % 10007 - 5000, [4] int (-1 each from 0), [5] the atomicExch chain's final value
// fsum: float +0.5 each; dsum: double +0.25 each; cas: 64-bit +3 each through an atomicCAS loop;
// ticket[g]: the value atomicAdd returned for the int counter; exch[g]: what atomicExch returned
// (the chain starts at -1).
int etk_atomics(int blocks, int threads, int* results, float* fsum, double* dsum, unsigned long long* cas,
                int* ticket, int* exch);

// The other atomics, over blocks x threads threads with global index g: bits[0] (from 0) |= 1 << (g % 32),
// bits[1] (from ~0) &= ~(1 << (g % 32)), bits[2] (from 0) ^= g; *wrap: atomicInc with limit 9 from 0;
// *down: atomicDec with limit 9 from 0; *bf: bf16 bits of atomicAdd(bf16) of 0.25 each from 0;
// *fx: what atomicExch(float) of (float)g left.
int etk_more_atomics(int blocks, int threads, unsigned* bits, unsigned* wrap, unsigned* down, uint16_t* bf, float* fx);

// ---- bf16 (bits as uint16_t)
int etk_float_to_bf16(const float* in, uint16_t* out, size_t n);     // __float2bfloat16
int etk_float_to_bf16_rn(const float* in, uint16_t* out, size_t n);  // __float2bfloat16_rn
int etk_double_to_bf16(const double* in, uint16_t* out, size_t n);   // __double2bfloat16
int etk_bf16_to_float(const uint16_t* in, float* out, size_t n);     // __bfloat162float
// __floats2bfloat162_rn(in[2i], in[2i+1]) -> out[2i], out[2i+1]; __low2float/__high2float -> back
int etk_bf16_pairs(const float* in, uint16_t* out, float* back, size_t n);
// a+b, a-b, a*b, a/b (operators) and __hfma(a, b, c) -> out[5 i + 0..4]
int etk_bf16_arith(const uint16_t* a, const uint16_t* b, const uint16_t* c, uint16_t* out, size_t n);

// ---- launch configuration: launches a kernel that sets a flag, after setting the kernel's
// maximum dynamic shared memory to max_dynamic (48 KiB when < 0); returns cudaGetLastError()
// right after the launch; *ran: whether the kernel ran. *error_again: cudaGetLastError() once more.
int etk_launch_config(EtkDim grid, EtkDim block, size_t shared_bytes, int max_dynamic, int* ran, int* error_again);
int etk_func_attribute(int max_dynamic);  // cudaFuncSetAttribute's result
// cudaPeekAtLastError twice then cudaGetLastError after a launch with a 0-thread block.
int etk_peek_then_get(int* peek1, int* peek2, int* get, int* get_again);

// ---- device limits. A kernel with 16 KiB of static shared memory: cudaFuncSetAttribute's result for
// its maximum dynamic shared memory, and the launch error of one block of 32 threads with
// dynamic_bytes of dynamic shared memory (opt_in 0: the instantiation that never calls it).
int etk_static_shared_attribute(int max_dynamic);
int etk_static_shared_launch(int opt_in, size_t dynamic_bytes);
// The launch error of one block of `threads` threads of a kernel of about 100 registers per thread,
// and its registers (ptxas's report for the profile under the emulation; cudaFuncGetAttributes on a GPU).
int etk_register_heavy(int threads);
int etk_register_heavy_registers(const char* profile);

// ---- memory and device API
void* etk_malloc(size_t bytes);
int etk_free(void* p);
int etk_memcpy(void* dst, const void* src, size_t bytes, int kind);  // kind: cudaMemcpyKind
int etk_memset(void* p, int value, size_t bytes);
int etk_device_properties(int* sms, size_t* shared_per_block, size_t* shared_optin, int* warp, int* major);
int etk_events(float* elapsed_ms);  // two recorded events around a launch
// Streams, pinned memory, device attributes: the errors of cudaStreamCreate, cudaMemcpyAsync and
// cudaMemsetAsync on it, cudaStreamSynchronize, cudaStreamDestroy, a second cudaStreamDestroy
// (under the emulation only; -1 on a GPU), cudaMallocHost, cudaFreeHost, cudaSetDevice(device count)
// in err[0..8]; *copied: the async copy's result was right; *sms: cudaDevAttrMultiProcessorCount;
// *free_bytes, *total_bytes: cudaMemGetInfo.
int etk_runtime_misc(int* err, int* copied, int* sms, size_t* free_bytes, size_t* total_bytes);

// ---- cuBLAS / cuBLASLt. Matrices are column-major host arrays; type 0 fp32 (float), 1 bf16
// (uint16_t bits). Buffers are copied to the device and back (C, D, bias, aux included).
int etk_gemm(int ta, int tb, int m, int n, int k, float alpha, const void* A, int lda, const void* B, int ldb,
             float beta, void* C, int ldc, int ab_type, int c_type, int batch, long long stride_a,
             long long stride_b, long long stride_c);
int etk_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
              float beta, float* C, int ldc);
typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc;  // D has the layout of C
    int ab_type, cd_type;
    int epilogue;   // cublasLtEpilogue_t
    int bias_type;  // -1: the default (the type of D), else 0 / 1
    int aux_ld;     // GELU aux / DGELU input [m, n] with this leading dimension (of the type of D)
    float alpha, beta;
    const void* A;
    const void* B;
    const void* C;  // may be NULL when beta == 0
    void* D;
    void* bias;  // length m (n for BGRADB), or NULL
    void* aux;   // or NULL
    int batch;   // matrices in each operand: the i-th starts i * stride_x elements after the first
    long long stride_a, stride_b, stride_c, stride_bias, stride_aux;  // stride_c is D's too
} EtkLtArgs;
// Returns the heuristic's status (then *algos = number returned) or, if it found one, the matmul's.
int etk_lt_matmul(const EtkLtArgs* args, int* algos);

#ifndef TIPCAP_TEST_GPU
// ---- emulation only (defined under TIPCAP_CUDA_EMU; test_emu.c skips them against a real GPU)
void etk_set_shuffle(uint64_t seed);
int etk_set_device(const char* profile);  // emu_set_device
const char* etk_device_profiles(void);    // emu_device_profiles
// The race, barrier and initialisation checks on (1) or off (0) for the launches that follow.
void etk_set_checks(int on);
// One case of the checks' tests: even variants are correct, odd ones must be reported. 0/1: a global
// write read by the block's other threads after a barrier / without one; 2/3: two blocks write one
// word atomically / plainly; 4/5: a read of device memory after a memset / never written;
// 6/7: a shuffle whose mask names only live lanes / exited ones.
int etk_check_case(int variant);
// Order in which the threads of one block pass an atomicAdd after a barrier: out[t] = position.
int etk_arrival_order(int threads, int* out);
// The two bugs the harness must catch, each with its correct twin (variant 0):
// reduction of x[n] into block sums of 256: 1 = no barrier after the shared store, 2 = no barrier in
// the loop; tiled C[M,N] = A[M,K] B[K,N] (row-major, 16x16 tiles): 1 = tile count K / 16 instead of
// ceil(K / 16); 2 = output bound row <= M (an out-of-bounds store).
int etk_reduce_sum(const float* x, int n, int variant, float* block_sums);
int etk_tiled_matmul(const float* A, const float* B, float* C, int M, int N, int K, int variant);
// Each of these makes the emulation report an error and exit (tests run them in a child process).
void etk_oob_write(long index);        // writes element `index` of a 100-float buffer
void etk_oob_dynamic_shared(void);     // writes one float past 64 bytes of dynamic shared memory
void etk_divergent_barrier(void);      // two different __syncthreads() in one block
void etk_barrier_deadlock(void);       // a shuffle whose mask names a lane waiting at __syncthreads()
void etk_divergent_shuffle(void);      // half a warp at one __shfl_xor_sync, half at another
void etk_shuffle_mask_without_self(void);
void etk_stack_overflow(void);         // unbounded recursion on a fiber stack
void etk_trap_then_copy(void);        // a kernel that traps, then cudaMemcpy
void etk_trap_sticky(int codes[5]);   // what the calls after a trap return (see the .cu)
void etk_wild_pointer(void);           // a store through an invalid pointer
void etk_dynamic_shared_over_declared(void);  // a launch with more dynamic shared memory than DYNAMIC_SHARED declares
#endif

#ifdef __cplusplus
}
#endif
