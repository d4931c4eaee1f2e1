// The CPU backend: the fp32 reference implementation of every op (kernels/<op>.c), behind the
// interface of backend.h. "Device" memory is host memory; every op is synchronous.
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "kernels/adamw.h"
#include "kernels/add.h"
#include "kernels/attention.h"
#include "kernels/backend.h"
#include "kernels/bag_mean.h"
#include "kernels/crossentropy.h"
#include "kernels/decode.h"
#include "kernels/embedding.h"
#include "kernels/gap_sample.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/matmul.h"
#include "kernels/reduce.h"

static void* cpu_alloc(Backend* be, size_t bytes) { return callocCheck(1, bytes); }
static void cpu_free(Backend* be, void* ptr) { free(ptr); }
static void cpu_upload(Backend* be, void* dst, const void* src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_download(Backend* be, void* dst, const void* src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_copy(Backend* be, void* dst, const void* src, size_t bytes) { memmove(dst, src, bytes); }
static void cpu_zero(Backend* be, void* dst, size_t bytes) { memset(dst, 0, bytes); }
static void cpu_sync(Backend* be) {}
static void cpu_destroy(Backend* be) { free(be); }

// act is fp32 on the CPU: the casts are copies
static void cpu_cast(Backend* be, void* out, const void* in, size_t n) {
    if (out != in) memmove(out, in, n * sizeof(float));
}
static void cpu_cast_to_act(Backend* be, void* out, const float* in, size_t n) { cpu_cast(be, out, in, n); }
static void cpu_cast_to_f32(Backend* be, float* out, const void* in, size_t n) { cpu_cast(be, out, in, n); }

static void cpu_embedding_forward(Backend* be, void* out, const void* prefix, int prefix_T, const int* tokens,
                                  const void* table, const void* pos_table, const int* pos_ids, int B, int T, int K,
                                  int C) {
    embedding_forward_cpu((float*)out, (const float*)prefix, prefix_T, tokens, (const float*)table,
                          (const float*)pos_table, pos_ids, B, T, K, C);
}

static void cpu_embedding_backward(Backend* be, void* dprefix, int prefix_T, float* dtable, float* dpos_table,
                                   const void* dout, const int* tokens, const int* tokens_host, const int* pos_ids,
                                   const int* pos_ids_host, int B, int T, int K, int C, int V, int P) {
    embedding_backward_cpu((float*)dprefix, prefix_T, dtable, dpos_table, (const float*)dout, tokens, pos_ids, B, T,
                           K, C, V, P);
}

static void cpu_bag_mean_forward(Backend* be, void* out, const void* table, const int* ids, const int* offsets,
                                 int n_bags, int C) {
    bag_mean_forward_cpu((float*)out, (const float*)table, ids, offsets, n_bags, C);
}

static void cpu_bag_mean_backward(Backend* be, float* dtable, const void* dout, const int* ids_host,
                                  const int* offsets_host, int n_bags, int C, int V) {
    bag_mean_backward_cpu(dtable, (const float*)dout, ids_host, offsets_host, n_bags, C, V);
}

static void cpu_layernorm_forward(Backend* be, void* out, float* mean, float* rstd, const void* inp,
                                  const void* weight, const void* bias, int N, int C) {
    layernorm_forward_cpu((float*)out, mean, rstd, (const float*)inp, (const float*)weight, (const float*)bias, N, C);
}

static void cpu_residual_layernorm_forward(Backend* be, void* residual, void* out, float* mean, float* rstd,
                                           const void* a, const void* b, const void* weight, const void* bias, int N,
                                           int C) {
    residual_layernorm_forward_cpu((float*)residual, (float*)out, mean, rstd, (const float*)a, (const float*)b,
                                   (const float*)weight, (const float*)bias, N, C);
}

static void cpu_layernorm_backward(Backend* be, void* dinp, float* dweight, float* dbias, const void* dout,
                                   const void* inp, const void* weight, const float* mean, const float* rstd, int N,
                                   int C) {
    layernorm_backward_cpu((float*)dinp, dweight, dbias, (const float*)dout, (const float*)inp, (const float*)weight,
                           mean, rstd, N, C);
}

static void cpu_matmul_forward(Backend* be, void* out, void* gelu_pre, const void* inp, const void* weight,
                               const void* bias, int N, int C, int OC) {
    matmul_forward_cpu((float*)out, (float*)gelu_pre, (const float*)inp, (const float*)weight, (const float*)bias, N,
                       C, OC);
}

static void cpu_matmul_backward(Backend* be, void* dinp, float* dweight, float* dbias, const void* dout,
                                const void* gelu_pre, void* scratch, const void* inp, const void* weight, int N,
                                int C, int OC) {
    matmul_backward_cpu((float*)dinp, dweight, dbias, (const float*)dout, (const float*)gelu_pre, (float*)scratch,
                        (const float*)inp, (const float*)weight, N, C, OC);
}

static void cpu_gelu_forward(Backend* be, void* out, const void* inp, size_t n) {
    gelu_forward_cpu((float*)out, (const float*)inp, n);
}

static void cpu_gelu_backward(Backend* be, void* dinp, const void* inp, const void* dout, size_t n) {
    gelu_backward_cpu((float*)dinp, (const float*)inp, (const float*)dout, n);
}

static void cpu_add(Backend* be, void* out, const void* a, const void* b, size_t n) {
    add_cpu((float*)out, (const float*)a, (const float*)b, n);
}

static void cpu_crossentropy_forward_backward(Backend* be, float* losses, void* logits, const int* targets,
                                              const int* targets_host, int N, int V, int Vp, float label_smoothing,
                                              float dlogits_scale) {
    crossentropy_forward_backward_cpu(losses, (float*)logits, targets, N, V, Vp, label_smoothing, dlogits_scale);
}

static void cpu_adamw_update(Backend* be, float* params, void* params_act, const float* grads, float* m, float* v,
                             size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                             float grad_scale, int t) {
    adamw_update_cpu(params, (float*)params_act, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_scale, t);
}

static double cpu_sum_squares(Backend* be, const float* x, size_t n) { return sum_squares_cpu(x, n); }
static void cpu_scale_f32(Backend* be, float* x, float s, size_t n) { scale_f32_cpu(x, s, n); }

static void cpu_gap_sample_forward(Backend* be, float* x, float* z, float* norm, const float* t, const float* mu,
                                   const float* L, int B, int D, uint64_t seed, uint64_t stream, uint64_t row0) {
    gap_sample_forward_cpu(x, z, norm, t, mu, L, B, D, seed, stream, row0);
}

static void cpu_gap_sample_backward(Backend* be, float* dt, float* dmu, float* dL, const float* dx, const float* x,
                                    const float* z, const float* norm, int B, int D) {
    gap_sample_backward_cpu(dt, dmu, dL, dx, x, z, norm, B, D);
}

Backend* backend_cpu_create(void) {
    Backend* be = (Backend*)callocCheck(1, sizeof(Backend));
    be->name = "cpu";
    be->act = DTYPE_F32;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_upload;
    be->download = cpu_download;
    be->copy = cpu_copy;
    be->zero = cpu_zero;
    be->sync = cpu_sync;
    be->destroy = cpu_destroy;
    be->cast_to_act = cpu_cast_to_act;
    be->cast_to_f32 = cpu_cast_to_f32;
    be->embedding_forward = cpu_embedding_forward;
    be->embedding_backward = cpu_embedding_backward;
    be->bag_mean_forward = cpu_bag_mean_forward;
    be->bag_mean_backward = cpu_bag_mean_backward;
    be->layernorm_forward = cpu_layernorm_forward;
    be->residual_layernorm_forward = cpu_residual_layernorm_forward;
    be->layernorm_backward = cpu_layernorm_backward;
    be->matmul_forward = cpu_matmul_forward;
    be->matmul_backward = cpu_matmul_backward;
    be->gelu_forward = cpu_gelu_forward;
    be->gelu_backward = cpu_gelu_backward;
    be->add = cpu_add;
    be->attention_forward = attention_forward_backend_cpu;    // kernels/attention.{h,c}
    be->attention_backward = attention_backward_backend_cpu;
    be->crossentropy_forward_backward = cpu_crossentropy_forward_backward;
    be->adamw_update = cpu_adamw_update;
    be->sum_squares = cpu_sum_squares;
    be->scale_f32 = cpu_scale_f32;
    be->attention_forward_cached = attention_forward_cached_backend_cpu;  // kernels/decode.{h,c}
    be->rows_gather = rows_gather_backend_cpu;
    be->logsoftmax_topk = logsoftmax_topk_backend_cpu;
    be->gap_sample_forward = cpu_gap_sample_forward;
    be->gap_sample_backward = cpu_gap_sample_backward;
    return be;
}
