// Ops of incremental decoding (caption generation), the "incremental decoding" part of backend.h.
//
// attention_forward_cached: causal attention of Tn new tokens per row over a key/value cache.
//   qkv    [B,Tn,3C]  the new tokens' q, k, v (each H heads of hs = C/H channels, as attention.h)
//   kcache [B,Tmax,C] keys of positions 0 .. past-1 on entry; the new keys are written at
//   vcache [B,Tmax,C] positions past .. past+Tn-1 (values likewise); later positions untouched
//   out    [B,Tn,C]   new token i (absolute position past+i) attends to positions 0 .. past+i:
//                     out[b,i,h,:] = sum_j softmax_j(q_i . k_j / sqrt(hs)) v[b,j,h,:]
//   Feeding a sequence in chunks (a prefix, then one token at a time) gives the numbers of
//   attention_forward over the whole sequence with causal = 1, up to summation order.
//   Requires 0 <= past, past + Tn <= Tmax, C % H == 0.
//
// rows_gather: dst [n,row] : dst[i,:] = src[idx[i],:] (rows of `row` elements); idx [n] must
//   name rows of src (not checked: src's row count is not an argument); dst and src do not overlap.
//
// logsoftmax_topk: per row of logits [N,Vp] (first V columns real, the padding never read):
//   values [N,k] (fp32) the k largest log-softmax values z_j - log sum_{j'<V} exp(z_j'), sorted
//   descending, ids [N,k] their columns. Ranked by the logit z_j (the exact log-softmax), ties
//   broken by the smaller id. Requires 1 <= k <= V <= Vp; the CUDA kernel takes k <= 64.
//
// CPU reference: decode.c (fp32, host buffers). CUDA: decode.cu (fp32 or bf16 storage, fp32
// arithmetic, deterministic: no float atomics, fixed merge orders); see docs/KERNELS.md.
#pragma once
#include <stddef.h>

#include "common/check.h"
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// Largest k of the CUDA logsoftmax_topk, and largest head size of the CUDA cached attention.
#define LOGSOFTMAX_TOPK_MAX_K 64
#define ATTENTION_CACHED_MAX_HEAD_SIZE 128

// Shape checks shared by both backends (inline: the CUDA library must not depend on decode.c):
// exit with a message naming `op` and the bad value.
static inline void attention_cached_check_shape(const char* op, int past, int B, int Tn, int Tmax, int C, int H) {
    if (B < 0 || Tn < 0 || C <= 0 || H <= 0 || C % H != 0)
        FATAL("%s: bad shape B=%d Tn=%d C=%d H=%d (C must be a positive multiple of H)", op, B, Tn, C, H);
    if (past < 0 || Tmax < 0 || (long long)past + Tn > Tmax)
        FATAL("%s: past=%d + Tn=%d new tokens do not fit the cache of Tmax=%d positions", op, past, Tn, Tmax);
}
static inline void logsoftmax_topk_check_shape(const char* op, int N, int V, int Vp, int k) {
    if (N < 0 || V <= 0 || Vp < V) FATAL("%s: bad shape N=%d V=%d Vp=%d (need N >= 0, 1 <= V <= Vp)", op, N, V, Vp);
    if (k < 1 || k > V) FATAL("%s: k=%d is outside 1..V=%d", op, k, V);
}

// ---- CPU reference (host buffers, fp32)
// out [B,Tn,C]; qkv [B,Tn,3C]; kcache, vcache [B,Tmax,C] (positions past .. past+Tn-1 written)
void attention_forward_cached_cpu(float* out, const float* qkv, float* kcache, float* vcache, int past, int B, int Tn,
                                  int Tmax, int C, int H);
// dst [n,row_bytes] bytes: dst row i = src row idx[i]
void rows_gather_cpu(void* dst, const void* src, const int* idx, int n, size_t row_bytes);
// values [N,k], ids [N,k]; logits [N,Vp]
void logsoftmax_topk_cpu(float* values, int* ids, const float* logits, int N, int V, int Vp, int k);

// The entries of the CPU backend's table (kernels/backend_cpu.c).
void attention_forward_cached_backend_cpu(Backend* be, void* out, const void* qkv, void* kcache, void* vcache,
                                          int past, int B, int Tn, int Tmax, int C, int H);
void rows_gather_backend_cpu(Backend* be, void* dst, const void* src, const int* idx, int n, size_t row);
void logsoftmax_topk_backend_cpu(Backend* be, float* values, int* ids, const void* logits, int N, int V, int Vp,
                                 int k);

// ---- CUDA launchers (device buffers; act buffers hold `dtype`), asynchronous on the default
// stream. Bad shapes exit with a message naming the op and the bad value.
void attention_forward_cached_cuda(void* out, const void* qkv, void* kcache, void* vcache, int past, int B, int Tn,
                                   int Tmax, int C, int H, DType dtype);
// dst [n,row_bytes] bytes
void rows_gather_cuda(void* dst, const void* src, const int* idx, int n, size_t row_bytes);
void logsoftmax_topk_cuda(float* values, int* ids, const void* logits, int N, int V, int Vp, int k, DType dtype);

// The entries of the CUDA backend's table (kernels/backend_cuda.cu): the launchers with be->act.
void attention_forward_cached_backend_cuda(Backend* be, void* out, const void* qkv, void* kcache, void* vcache,
                                           int past, int B, int Tn, int Tmax, int C, int H);
void rows_gather_backend_cuda(Backend* be, void* dst, const void* src, const int* idx, int n, size_t row);
void logsoftmax_topk_backend_cuda(Backend* be, float* values, int* ids, const void* logits, int N, int V, int Vp,
                                  int k);

#ifdef __cplusplus
}
#endif
