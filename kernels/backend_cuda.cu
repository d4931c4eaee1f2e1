#include "kernels/cuda_common.cuh"

// The CUDA backend: the kernels of kernels/<op>.cu behind the interface of backend.h, with act
// buffers in fp32 or bf16. Everything runs on the default stream, in order; download() and
// sync() wait. Built with nvcc for the GPU, and with the host compiler under the emulation of
// CUDA (kernels/emu/), where it is named "cuda-emu".
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/log.h"
#include "kernels/adamw.h"
#include "kernels/add.h"
#include "kernels/attention.h"
#include "kernels/attention_cudnn.h"
#include "kernels/backend.h"
#include "kernels/bag_mean.h"
#include "kernels/cast.h"
#include "kernels/crossentropy.h"
#include "kernels/decode.h"
#include "kernels/embedding.h"
#include "kernels/gap_sample.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/matmul.h"
#include "kernels/reduce.h"
#include "kernels/rowscatter.h"

typedef struct {
    MatmulCuda* matmul;
    float* scratch;  // device fp32 for the two-pass reductions and the gap backward, grown on demand
    size_t scratch_floats;
    void* plan_dev;  // device copy of the row-scatter plan, grown on demand
    size_t plan_bytes;
    RowScatterPlan plan;  // host
    int* entry_rows;      // host workspace of the plan's entries: [targets | source rows]
    size_t entry_cap;
    float* entry_weights;
} CudaImpl;

static CudaImpl* impl_of(Backend* be) { return (CudaImpl*)be->impl; }

// Device buffers that earlier kernels may still use are freed only after the device is idle.
static float* scratch_f32(Backend* be, size_t n) {
    CudaImpl* im = impl_of(be);
    if (n > im->scratch_floats) {
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaFree(im->scratch));
        cudaCheck(cudaMalloc((void**)&im->scratch, n * sizeof(float)));
        im->scratch_floats = n;
    }
    return im->scratch;
}

static void* plan_device(Backend* be, size_t bytes) {
    CudaImpl* im = impl_of(be);
    if (bytes > im->plan_bytes) {
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaFree(im->plan_dev));
        cudaCheck(cudaMalloc(&im->plan_dev, bytes));
        im->plan_bytes = bytes;
    }
    return im->plan_dev;
}

// Host workspace for n plan entries: targets [n], source rows [n], weights [n].
static void entries_reserve(CudaImpl* im, size_t n) {
    if (n <= im->entry_cap) return;
    im->entry_cap = n;
    im->entry_rows = (int*)reallocCheck(im->entry_rows, 2 * n * sizeof(int));
    im->entry_weights = (float*)reallocCheck(im->entry_weights, n * sizeof(float));
}

static void scatter_rows(Backend* be, float* dst, const void* src, int C) {
    CudaImpl* im = impl_of(be);
    void* dev = plan_device(be, rowscatter_device_bytes(&im->plan));
    rowscatter_add_cuda(dst, src, C, &im->plan, dev, be->act);
}

// ---------------------------------------------------------------- memory
static void* cuda_alloc(Backend* be, size_t bytes) {
    void* p = NULL;
    cudaCheck(cudaMalloc(&p, bytes ? bytes : 1));
    cudaCheck(cudaMemset(p, 0, bytes ? bytes : 1));
    return p;
}
static void cuda_free(Backend* be, void* ptr) { cudaCheck(cudaFree(ptr)); }
static void cuda_upload(Backend* be, void* dst, const void* src, size_t bytes) {
    if (bytes) cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
static void cuda_download(Backend* be, void* dst, const void* src, size_t bytes) {
    if (bytes) cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
static void cuda_copy(Backend* be, void* dst, const void* src, size_t bytes) {
    if (bytes) cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}
static void cuda_zero(Backend* be, void* dst, size_t bytes) {
    if (bytes) cudaCheck(cudaMemset(dst, 0, bytes));
}
static void cuda_sync(Backend* be) { cudaCheck(cudaDeviceSynchronize()); }

static void cuda_destroy(Backend* be) {
    CudaImpl* im = impl_of(be);
    cudaCheck(cudaDeviceSynchronize());
    matmul_cuda_destroy(im->matmul);
    cudaCheck(cudaFree(im->scratch));
    cudaCheck(cudaFree(im->plan_dev));
    rowscatter_plan_free(&im->plan);
    free(im->entry_rows);
    free(im->entry_weights);
    free(im);
    free(be);
}

// ---------------------------------------------------------------- ops
static void cuda_cast_to_act(Backend* be, void* out, const float* in, size_t n) { cast_to_act_cuda(out, in, n, be->act); }
static void cuda_cast_to_f32(Backend* be, float* out, const void* in, size_t n) { cast_to_f32_cuda(out, in, n, be->act); }

static void cuda_embedding_forward(Backend* be, void* out, const void* prefix, int prefix_T, const int* tokens,
                                   const void* table, const void* pos_table, const int* pos_ids, int B, int T, int K,
                                   int C) {
    embedding_forward_cuda(out, prefix, prefix_T, tokens, table, pos_table, pos_ids, B, T, K, C, be->act);
}

static void cuda_embedding_backward(Backend* be, void* dprefix, int prefix_T, float* dtable, float* dpos_table,
                                    const void* dout, const int* tokens, const int* tokens_host, const int* pos_ids,
                                    const int* pos_ids_host, int B, int T, int K, int C, int V, int P) {
    CudaImpl* im = impl_of(be);
    int L = T - K;
    if (dprefix) embedding_backward_prefix_cuda(dprefix, prefix_T, dout, B, T, K, C, be->act);
    entries_reserve(im, (size_t)B * T);
    int* targets = im->entry_rows;
    int* src_rows = im->entry_rows + (size_t)B * T;
    if (dtable && L > 0) {  // caption rows b*T + t (t >= K) go to table row tokens[b, t-K]
        for (int b = 0; b < B; b++)
            for (int t = K; t < T; t++) {
                targets[b * L + t - K] = tokens_host[b * L + t - K];
                src_rows[b * L + t - K] = b * T + t;
            }
        rowscatter_plan_build(&im->plan, B * L, targets, src_rows, NULL, V, "embedding_backward: token");
        scatter_rows(be, dtable, dout, C);
    }
    if (dpos_table) {  // row b*T + t goes to position row pos_ids[t]
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                if (pos_ids_host[t] < 0 || pos_ids_host[t] >= P)
                    FATAL("embedding_backward: pos_ids[%d] = %d outside [0, %d)", t, pos_ids_host[t], P);
                targets[b * T + t] = pos_ids_host[t];
            }
        rowscatter_plan_build(&im->plan, B * T, targets, NULL, NULL, P, "embedding_backward: position");
        scatter_rows(be, dpos_table, dout, C);
    }
}

static void cuda_bag_mean_forward(Backend* be, void* out, const void* table, const int* ids, const int* offsets,
                                  int n_bags, int C) {
    bag_mean_forward_cuda(out, table, ids, offsets, n_bags, C, be->act);
}

static void cuda_bag_mean_backward(Backend* be, float* dtable, const void* dout, const int* ids_host,
                                   const int* offsets_host, int n_bags, int C, int V) {
    CudaImpl* im = impl_of(be);
    if (n_bags <= 0) return;
    int n = offsets_host[n_bags];
    entries_reserve(im, (size_t)n);
    int* src_rows = im->entry_rows + n;
    for (int i = 0; i < n_bags; i++) {  // id j of bag i: table row ids[j] += dout[i] / |bag i|
        int size = offsets_host[i + 1] - offsets_host[i];
        if (size < 0)
            FATAL("bag_mean_backward: offsets[%d] = %d > offsets[%d] = %d", i, offsets_host[i], i + 1, offsets_host[i + 1]);
        for (int j = offsets_host[i]; j < offsets_host[i + 1]; j++) {
            if (ids_host[j] < 0) FATAL("bag_mean_backward: ids[%d] = %d outside [0, %d)", j, ids_host[j], V);
            src_rows[j] = i;
            im->entry_weights[j] = 1.0f / (float)size;
        }
    }
    rowscatter_plan_build(&im->plan, n, ids_host, src_rows, im->entry_weights, V, "bag_mean_backward: id");
    scatter_rows(be, dtable, dout, C);
}

static void cuda_layernorm_forward(Backend* be, void* out, float* mean, float* rstd, const void* inp,
                                   const void* weight, const void* bias, int N, int C) {
    layernorm_forward_cuda(NULL, out, mean, rstd, inp, NULL, weight, bias, N, C, be->act);
}

static void cuda_residual_layernorm_forward(Backend* be, void* residual, void* out, float* mean, float* rstd,
                                            const void* a, const void* b, const void* weight, const void* bias, int N,
                                            int C) {
    layernorm_forward_cuda(residual, out, mean, rstd, a, b, weight, bias, N, C, be->act);
}

static void cuda_layernorm_backward(Backend* be, void* dinp, float* dweight, float* dbias, const void* dout,
                                    const void* inp, const void* weight, const float* mean, const float* rstd, int N,
                                    int C) {
    float* scratch = scratch_f32(be, layernorm_backward_scratch_floats(N, C));
    layernorm_backward_cuda(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, scratch, be->act);
}

static void cuda_matmul_forward(Backend* be, void* out, void* gelu_pre, const void* inp, const void* weight,
                                const void* bias, int N, int C, int OC) {
    matmul_forward_cuda(impl_of(be)->matmul, out, gelu_pre, inp, weight, bias, N, C, OC, be->act);
}

static void cuda_matmul_backward(Backend* be, void* dinp, float* dweight, float* dbias, const void* dout,
                                 const void* gelu_pre, void* scratch, const void* inp, const void* weight, int N,
                                 int C, int OC) {
    float* colsum_scratch = dbias ? scratch_f32(be, matmul_backward_scratch_floats(N, OC)) : NULL;
    matmul_backward_cuda(impl_of(be)->matmul, dinp, dweight, dbias, dout, gelu_pre, scratch, inp, weight, N, C, OC,
                         colsum_scratch, be->act);
}

static void cuda_gelu_forward(Backend* be, void* out, const void* inp, size_t n) { gelu_forward_cuda(out, inp, n, be->act); }
static void cuda_gelu_backward(Backend* be, void* dinp, const void* inp, const void* dout, size_t n) {
    gelu_backward_cuda(dinp, inp, dout, n, be->act);
}
static void cuda_add(Backend* be, void* out, const void* a, const void* b, size_t n) { add_cuda(out, a, b, n, be->act); }

static void cuda_crossentropy_forward_backward(Backend* be, float* losses, void* logits, const int* targets,
                                               const int* targets_host, int N, int V, int Vp, float label_smoothing,
                                               float dlogits_scale) {
    crossentropy_check_targets(targets_host, N, V);
    crossentropy_forward_backward_cuda(losses, logits, targets, N, V, Vp, label_smoothing, dlogits_scale, be->act);
}

static void cuda_adamw_update(Backend* be, float* params, void* params_act, const float* grads, float* m, float* v,
                              size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                              float grad_scale, int t) {
    adamw_update_cuda(params, params_act, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_scale, t, be->act);
}

static double cuda_sum_squares(Backend* be, const float* x, size_t n) {
    return sum_squares_cuda(x, n, scratch_f32(be, sum_squares_scratch_floats(n)));
}
static void cuda_scale_f32(Backend* be, float* x, float s, size_t n) { scale_f32_cuda(x, s, n); }

static void cuda_gap_sample_forward(Backend* be, float* x, float* z, float* norm, const float* t, const float* mu,
                                    const float* L, int B, int D, uint64_t seed, uint64_t stream, uint64_t row0) {
    gap_sample_forward_cuda(x, z, norm, t, mu, L, B, D, seed, stream, row0);
}

static void cuda_gap_sample_backward(Backend* be, float* dt, float* dmu, float* dL, const float* dx, const float* x,
                                     const float* z, const float* norm, int B, int D) {
    float* dy_scratch = dt ? NULL : scratch_f32(be, (size_t)B * D);
    gap_sample_backward_cuda(dt, dmu, dL, dx, x, z, norm, B, D, dy_scratch);
}

// TIPCAP_ATTENTION=cudnn: cuDNN's fused attention (kernels/attention_cudnn.h) for bf16; unset or
// "tipcap": tipcap's kernels.
static void choose_attention(Backend* be) {
    const char* choice = getenv("TIPCAP_ATTENTION");
    be->attention_forward = attention_forward_backend_cuda;  // kernels/attention.{h,cu}
    be->attention_backward = attention_backward_backend_cuda;
    if (!choice || !*choice || !strcmp(choice, "tipcap")) return;
    if (strcmp(choice, "cudnn")) FATAL("TIPCAP_ATTENTION=%s: tipcap or cudnn", choice);
#if defined(TIPCAP_HAVE_CUDNN_FRONTEND) && !defined(TIPCAP_CUDA_EMU)
    if (be->act != DTYPE_BF16) {
        LOG_WARN("TIPCAP_ATTENTION=cudnn: cuDNN's fused attention takes bf16 only; fp32 uses tipcap's kernels");
        return;
    }
    be->attention_forward = attention_forward_backend_cudnn;
    be->attention_backward = attention_backward_backend_cudnn;
#else
    FATAL("TIPCAP_ATTENTION=cudnn: this build has no cuDNN attention (%s)",
#ifdef TIPCAP_CUDA_EMU
          "the CUDA emulation has no cuDNN");
#else
          "cudnn_frontend.h was not found at build time: scripts/install-deps.sh installs it");
#endif
#endif
}

Backend* backend_cuda_create(DType act) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        LOG_INFO("cuda: no GPU found (cudaGetDeviceCount: %s); the CUDA backend is not available",
                 err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
        cudaGetLastError();  // clear the error, so later CUDA calls do not report it
        return NULL;
    }
    Backend* be = (Backend*)callocCheck(1, sizeof(Backend));
    CudaImpl* im = (CudaImpl*)callocCheck(1, sizeof(CudaImpl));
    im->matmul = matmul_cuda_create();
#ifdef TIPCAP_CUDA_EMU
    be->name = "cuda-emu";
#else
    be->name = "cuda";
#endif
    be->act = act;
    be->impl = im;
    be->alloc = cuda_alloc;
    be->free = cuda_free;
    be->upload = cuda_upload;
    be->download = cuda_download;
    be->copy = cuda_copy;
    be->zero = cuda_zero;
    be->sync = cuda_sync;
    be->destroy = cuda_destroy;
    be->cast_to_act = cuda_cast_to_act;
    be->cast_to_f32 = cuda_cast_to_f32;
    be->embedding_forward = cuda_embedding_forward;
    be->embedding_backward = cuda_embedding_backward;
    be->bag_mean_forward = cuda_bag_mean_forward;
    be->bag_mean_backward = cuda_bag_mean_backward;
    be->layernorm_forward = cuda_layernorm_forward;
    be->residual_layernorm_forward = cuda_residual_layernorm_forward;
    be->layernorm_backward = cuda_layernorm_backward;
    be->matmul_forward = cuda_matmul_forward;
    be->matmul_backward = cuda_matmul_backward;
    be->gelu_forward = cuda_gelu_forward;
    be->gelu_backward = cuda_gelu_backward;
    be->add = cuda_add;
    choose_attention(be);
    be->crossentropy_forward_backward = cuda_crossentropy_forward_backward;
    be->adamw_update = cuda_adamw_update;
    be->sum_squares = cuda_sum_squares;
    be->scale_f32 = cuda_scale_f32;
    be->attention_forward_cached = attention_forward_cached_backend_cuda;  // kernels/decode.{h,cu}
    be->rows_gather = rows_gather_backend_cuda;
    be->logsoftmax_topk = logsoftmax_topk_backend_cuda;
    be->gap_sample_forward = cuda_gap_sample_forward;
    be->gap_sample_backward = cuda_gap_sample_backward;
    return be;
}
