// Multi-head scaled dot-product attention, forward and backward.
//
//   qkv [B,T,3C]: per token q, then k, then v, each H heads of hs = C/H channels
//   out [B,T,C]:  out[b,i,h,:] = sum_j softmax_j(s_ij) v[b,j,h,:],  s_ij = q_i . k_j / sqrt(hs)
//   lse [B,H,T]:  log sum_j exp(s_ij) over the valid keys j (fp32), saved for the backward
//
// Key j is valid for query i iff j < key_len[b] (key_len may be NULL: all T keys) and, when
// causal, j <= i; so the valid keys of a row are always the prefix j < n_i. key_len[b] is
// clamped to [0, T]. A row with no valid key (only when key_len[b] <= 0) gets out = 0,
// lse = -inf, and contributes nothing and receives zero in the backward; never NaN.
// The backward OVERWRITES dqkv [B,T,3C]: dq, dk, dv for every token, head and channel.
//
// CPU reference: attention.c (fp32, and a double instance for gradient checks).
// CUDA: attention.cu (hand-written flash-attention kernels, fp32 or bf16 storage, fp32
// accumulation, deterministic); head size 1..128 (padded internally to 64 or 128; 64 is the
// fast path). cuDNN's fused attention is an optional bf16 path: kernels/attention_cudnn.h.
#pragma once
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// CPU reference, fp32 host buffers; key_len is a host array or NULL.
void attention_forward_cpu(float* out, float* lse, const float* qkv, const int* key_len,
                           int B, int T, int C, int H, int causal);
void attention_backward_cpu(float* dqkv, const float* dout, const float* out, const float* lse,
                            const float* qkv, const int* key_len, int B, int T, int C, int H, int causal);

// The same code in double precision (finite-difference gradient checks).
void attention_forward_cpu_f64(double* out, double* lse, const double* qkv, const int* key_len,
                               int B, int T, int C, int H, int causal);
void attention_backward_cpu_f64(double* dqkv, const double* dout, const double* out, const double* lse,
                                const double* qkv, const int* key_len, int B, int T, int C, int H,
                                int causal);

// The entries of the CPU backend's table (kernels/backend_cpu.c): act is fp32, key_len on the host.
void attention_forward_backend_cpu(Backend* be, void* out, float* lse, const void* qkv, const int* key_len,
                                   int B, int T, int C, int H, int causal);
void attention_backward_backend_cpu(Backend* be, void* dqkv, const void* dout, const void* out, const float* lse,
                                    const void* qkv, const int* key_len, int B, int T, int C, int H, int causal);

// Largest head size the CUDA kernels take.
#define ATTENTION_MAX_HEAD_SIZE 128

// CUDA launchers (device buffers; key_len device int[B] or NULL); act buffers hold `dtype`.
// Asynchronous on the default stream. The backward keeps a cached device scratch buffer of
// B*H*T floats (grown on demand, never freed), so it is not reentrant across host threads.
// Exits with a clear error for a head size outside 1..ATTENTION_MAX_HEAD_SIZE or C % H != 0.
void attention_forward_cuda(void* out, float* lse, const void* qkv, const int* key_len,
                            int B, int T, int C, int H, int causal, DType dtype);
void attention_backward_cuda(void* dqkv, const void* dout, const void* out, const float* lse,
                             const void* qkv, const int* key_len, int B, int T, int C, int H, int causal,
                             DType dtype);

// The entries of the CUDA backend's table (kernels/backend_cuda.cu): the launchers with be->act.
void attention_forward_backend_cuda(Backend* be, void* out, float* lse, const void* qkv, const int* key_len,
                                    int B, int T, int C, int H, int causal);
void attention_backward_backend_cuda(Backend* be, void* dqkv, const void* dout, const void* out, const float* lse,
                                     const void* qkv, const int* key_len, int B, int T, int C, int H, int causal);

#ifdef __cplusplus
}
#endif
