// The backend interface: every op the model runs, written once for both backends (the split of
// ggml's backends). The CPU backend (kernels/backend_cpu.c, plain C + OpenMP + OpenBLAS, fp32)
// is always built; the CUDA backend (kernels/backend_cuda.cu) when nvcc exists, and the same
// CUDA sources also run on the CPU under the emulation of CUDA in kernels/emu/ (tests).
//
// Conventions (as llm.c):
// - Row-major. B batch, T sequence, C channels, H heads, V vocabulary (Vp padded), N rows.
// - "act" buffers (void*) hold the backend's activation type, be->act: fp32 or bf16. They are
//   the compute copies of parameters, activations and activation gradients.
// - float* buffers are always fp32: master weights, parameter gradients, optimiser moments,
//   layer-norm statistics, losses, the attention log-sum-exp.
// - Backward ops ACCUMULATE (+=) into parameter gradients and into dinp of layer norm;
//   matmul_backward and attention_backward OVERWRITE dinp / dqkv.
// - Ops with a `_host` argument get the same data on the host too, for deterministic
//   scatter-adds (bucketed on the host, summed in a fixed order on the device: no float atomics).
// - Every op is asynchronous on the device; download() and sync() wait.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DTYPE_F32 = 0, DTYPE_BF16 = 1 } DType;

static inline size_t dtype_size(DType t) { return t == DTYPE_BF16 ? 2 : 4; }

typedef struct Backend Backend;

struct Backend {
    const char* name;  // "cpu", "cuda" or "cuda-emu"
    DType act;         // storage type of act buffers
    void* impl;        // backend-private state (handles, workspace)

    // ---- memory
    void* (*alloc)(Backend* be, size_t bytes);  // zero-filled
    void (*free)(Backend* be, void* ptr);
    void (*upload)(Backend* be, void* dst_dev, const void* src_host, size_t bytes);
    void (*download)(Backend* be, void* dst_host, const void* src_dev, size_t bytes);  // synchronous
    void (*copy)(Backend* be, void* dst_dev, const void* src_dev, size_t bytes);
    void (*zero)(Backend* be, void* dst_dev, size_t bytes);
    void (*sync)(Backend* be);
    void (*destroy)(Backend* be);

    // ---- precision
    // out (act) [n] = in (fp32) [n], rounded to nearest even for bf16
    void (*cast_to_act)(Backend* be, void* out, const float* in, size_t n);
    // out (fp32) [n] = in (act) [n]
    void (*cast_to_f32)(Backend* be, float* out, const void* in, size_t n);

    // ---- embeddings
    // out[b,t,:] = (t < K ? prefix[b,t,:] : table[tokens[b,t-K],:]) + pos_table[pos_ids[t],:]
    //   out (act) [B,T,C]; prefix (act) [B,prefix_T,C] (its first K rows per batch are used), NULL if K = 0;
    //   tokens [B,T-K] (-1: padding, a zero row); table (act) [V,C]; pos_table (act) [P,C]; pos_ids [T]
    void (*embedding_forward)(Backend* be, void* out, const void* prefix, int prefix_T, const int* tokens,
                              const void* table, const void* pos_table, const int* pos_ids,
                              int B, int T, int K, int C);
    // dprefix (act) [B,prefix_T,C]: rows t < K overwritten with dout, others untouched (may be NULL);
    // dtable (fp32) [V,C] += by token; dpos_table (fp32) [P,C] += (either may be NULL). tokens_host,
    // pos_ids_host: the same arrays on the host. (When the table is an activation, pass a zeroed fp32
    // buffer and cast_to_act it afterwards.)
    void (*embedding_backward)(Backend* be, void* dprefix, int prefix_T, float* dtable, float* dpos_table,
                               const void* dout, const int* tokens, const int* tokens_host, const int* pos_ids,
                               const int* pos_ids_host, int B, int T, int K, int C, int V, int P);
    // Mean of table rows per bag: out[i,:] = mean_{j in [offsets[i], offsets[i+1])} table[ids[j],:]
    //   out (act) [n_bags,C]; table (act) [V,C]; ids [offsets[n_bags]]; offsets [n_bags+1] (device and host)
    void (*bag_mean_forward)(Backend* be, void* out, const void* table, const int* ids, const int* offsets,
                             int n_bags, int C);
    // dtable (fp32) [V,C] += scatter of dout / bag size. ids_host, offsets_host: host copies.
    void (*bag_mean_backward)(Backend* be, float* dtable, const void* dout, const int* ids_host,
                              const int* offsets_host, int n_bags, int C, int V);

    // ---- layer norm (eps 1e-5)
    // out (act) [N,C] = (inp - mean) * rstd * weight + bias; mean, rstd (fp32) [N]; weight, bias (act) [C]
    void (*layernorm_forward)(Backend* be, void* out, float* mean, float* rstd, const void* inp,
                              const void* weight, const void* bias, int N, int C);
    // residual (act) [N,C] = a + b, then out = layernorm(residual)
    void (*residual_layernorm_forward)(Backend* be, void* residual, void* out, float* mean, float* rstd,
                                       const void* a, const void* b, const void* weight, const void* bias,
                                       int N, int C);
    // dinp (act) [N,C] +=; dweight, dbias (fp32) [C] +=
    void (*layernorm_backward)(Backend* be, void* dinp, float* dweight, float* dbias, const void* dout,
                               const void* inp, const void* weight, const float* mean, const float* rstd,
                               int N, int C);

    // ---- matmul: out[N,OC] = inp[N,C] @ weight[OC,C]^T + bias[OC]
    // bias may be NULL. If gelu_pre is not NULL: gelu_pre = the affine result, out = gelu(gelu_pre).
    //   out, inp, weight, bias, gelu_pre: act
    void (*matmul_forward)(Backend* be, void* out, void* gelu_pre, const void* inp, const void* weight,
                           const void* bias, int N, int C, int OC);
    // dinp (act) [N,C] overwritten (may be NULL); dweight (fp32) [OC,C] +=; dbias (fp32) [OC] += (may be NULL).
    // If gelu_pre is not NULL, dout is the gradient after GELU and is first multiplied by gelu'(gelu_pre);
    // `scratch` (act) [N,OC] receives that product (may alias dout).
    void (*matmul_backward)(Backend* be, void* dinp, float* dweight, float* dbias, const void* dout,
                            const void* gelu_pre, void* scratch, const void* inp, const void* weight,
                            int N, int C, int OC);

    // ---- GELU, tanh form: out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    void (*gelu_forward)(Backend* be, void* out, const void* inp, size_t n);
    void (*gelu_backward)(Backend* be, void* dinp, const void* inp, const void* dout, size_t n);  // dinp overwritten

    // ---- residual add: out (act) [n] = a + b
    void (*add)(Backend* be, void* out, const void* a, const void* b, size_t n);

    // ---- multi-head scaled dot-product attention
    // qkv (act) [B,T,3C] (q, k, v each [H, C/H] per token); out (act) [B,T,C]; lse (fp32) [B,H,T];
    // key_len (device, [B]) or NULL: keys at positions >= key_len[b] are masked; causal: key <= query.
    void (*attention_forward)(Backend* be, void* out, float* lse, const void* qkv, const int* key_len,
                              int B, int T, int C, int H, int causal);
    // dqkv (act) [B,T,3C] overwritten
    void (*attention_backward)(Backend* be, void* dqkv, const void* dout, const void* out, const float* lse,
                               const void* qkv, const int* key_len, int B, int T, int C, int H, int causal);

    // ---- fused softmax + cross-entropy over logits (act) [N,Vp] of which the first V columns are real.
    // targets [N], -1 ignored (loss 0, zero gradient); targets_host: the same on the host, where every
    // backend checks that they lie in [-1, V) before any work (a fatal error names the row). Label
    // smoothing eps: the target distribution is (1 - eps) one-hot + eps / V uniform. losses (fp32) [N].
    // If dlogits_scale != 0 the logits are overwritten in place by dloss/dlogits * dlogits_scale
    // (padded columns get 0).
    void (*crossentropy_forward_backward)(Backend* be, float* losses, void* logits, const int* targets,
                                          const int* targets_host, int N, int V, int Vp, float label_smoothing,
                                          float dlogits_scale);

    // ---- optimiser
    // AdamW on n fp32 master weights; grads are multiplied by grad_scale first (clipping);
    // step t >= 1 for bias correction; params_act (act copy, may be NULL) receives the rounded params.
    void (*adamw_update)(Backend* be, float* params, void* params_act, const float* grads, float* m, float* v,
                         size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                         float grad_scale, int t);
    // Sum of squares of x (fp32) [n], deterministic; returned to the host.
    double (*sum_squares)(Backend* be, const float* x, size_t n);
    // x (fp32) [n] *= s
    void (*scale_f32)(Backend* be, float* x, float s, size_t n);

    // ---- incremental decoding (inference)
    // Causal attention of Tn new tokens per row over a key/value cache: appends the new keys and values
    // (from qkv (act) [B,Tn,3C]) to kcache, vcache (act) [B,Tmax,C] at positions past .. past+Tn-1, then
    // out (act) [B,Tn,C]: new token i (absolute position past+i) attends to cached positions 0 .. past+i.
    // The same numbers as attention_forward over the whole sequence, up to summation order.
    void (*attention_forward_cached)(Backend* be, void* out, const void* qkv, void* kcache, void* vcache, int past,
                                     int B, int Tn, int Tmax, int C, int H);
    // dst (act) [n,row] : dst[i,:] = src[idx[i],:]; idx on the device; dst and src do not overlap.
    void (*rows_gather)(Backend* be, void* dst, const void* src, const int* idx, int n, size_t row);
    // Per row of logits (act) [N,Vp] (first V columns real): the k largest log-softmax values, sorted
    // descending (ties: smaller id first), into values (fp32) [N,k] and ids [N,k] (device buffers).
    void (*logsoftmax_topk)(Backend* be, float* values, int* ids, const void* logits, int N, int V, int Vp, int k);

    // ---- Gaussian modality-gap mapping (kernels/gap_sample.*), all fp32
    // x [B,D] = normalize(t + mu + L z) with z[b,d] = philox_normal(seed, stream, (row0 + b) * D + d);
    // z [B,D] and norm [B] (of t + mu + L z) are saved for the backward. L [D,D] lower-triangular.
    void (*gap_sample_forward)(Backend* be, float* x, float* z, float* norm, const float* t, const float* mu,
                               const float* L, int B, int D, uint64_t seed, uint64_t stream, uint64_t row0);
    // From dx [B,D]: dt [B,D] overwritten (may be NULL); dmu [D] += and dL [D,D] += lower(sum_b dy_b z_b^T)
    // where dy is the gradient before the normalisation (either may be NULL).
    void (*gap_sample_backward)(Backend* be, float* dt, float* dmu, float* dL, const float* dx, const float* x,
                                const float* z, const float* norm, int B, int D);
};

// The CPU backend (always available; act is fp32).
Backend* backend_cpu_create(void);
// The CUDA backend on the current device (act fp32 or bf16). NULL when there is no GPU
// (real build) or no CUDA build. Under emulation it always succeeds and is named "cuda-emu".
Backend* backend_cuda_create(DType act);

#ifdef __cplusplus
}
#endif
