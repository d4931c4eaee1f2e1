#include "kernels/cuda_common.cuh"

// The core ops of the CUDA backend (kernels/<op>.cu through backend_cuda.cu) on a GPU: time per
// call, achieved GB/s (memory-bound ops) or TFLOP/s (matmuls), and the ratio to the device's
// references measured here: the copy bandwidth of a large cudaMemcpy device-to-device (bytes
// read + written per second) and cuBLAS's rate (cublasGemmEx, fp32 compute) on the same shape.
// Shapes: GPT-2 small training, B=32, T=64 (N=2048 rows), C=768, V=50257 (Vp=50304), all
// parameters of GPT-2 small for the optimiser; fp32 and bf16 storage. GPU only; see
// bench/RESULTS.md. usage: bin/bench/bench_kernels [--help]
//
// Bytes counted are the minimum the op must move (each input read once, each output written
// once); a ratio well below 1 to the copy bandwidth means the kernel moves more or stalls.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "kernels/backend.h"
#include "kernels/random.h"

#define B_ 32
#define T_ 64
#define N_ (B_ * T_)
#define C_ 768
#define V_ 50257
#define VP_ 50304
#define P_ 1024
#define GPT2_PARAMS 124439808ull

static double copy_gbs;  // device copy bandwidth, GB/s (read + write)

template <typename F>
static float time_ms(F f, int iters) {
    f();  // warm-up (and first-call setup such as scratch allocation)
    cudaCheck(cudaDeviceSynchronize());
    cudaEvent_t start, stop;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&stop));
    cudaCheck(cudaEventRecord(start));
    for (int i = 0; i < iters; i++) f();
    cudaCheck(cudaEventRecord(stop));
    cudaCheck(cudaEventSynchronize(stop));
    float ms = 0;
    cudaCheck(cudaEventElapsedTime(&ms, start, stop));
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(stop));
    return ms / iters;
}

static void report_bw(const char* op, DType act, float ms, double bytes) {
    double gbs = bytes / (ms * 1e6);
    printf("%-34s %s %10.1f us %9.1f GB/s  %5.2f of copy\n", op, act == DTYPE_BF16 ? "bf16" : "fp32", ms * 1e3, gbs,
           gbs / copy_gbs);
}

// Device buffer of n act (or fp32) elements, uniform in [-scale, scale).
static void* random_buffer(Backend* be, size_t n, int f32, float scale, uint64_t stream) {
    float* tmp = (float*)be->alloc(be, n * sizeof(float));
    random_normal_cuda(tmp, n, 1234, stream, 0);
    be->scale_f32(be, tmp, scale, n);
    if (f32) return tmp;
    void* out = be->alloc(be, n * dtype_size(be->act));
    be->cast_to_act(be, out, tmp, n);
    be->free(be, tmp);
    return out;
}

static void measure_copy_bandwidth(void) {
    size_t bytes = (size_t)1 << 30;
    void *a, *b;
    cudaCheck(cudaMalloc(&a, bytes));
    cudaCheck(cudaMalloc(&b, bytes));
    float ms = time_ms([&]() { cudaCheck(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice)); }, 10);
    copy_gbs = 2.0 * (double)bytes / (ms * 1e6);
    printf("device copy (cudaMemcpy D2D, 1 GiB): %.1f GB/s (read + write)\n", copy_gbs);
    cudaCheck(cudaFree(a));
    cudaCheck(cudaFree(b));
}

// cublasGemmEx on the row-major problem out[N,OC] = inp[N,C] @ W[OC,C]^T, for the TFLOP/s ratio
static double cublas_tflops(cublasHandle_t h, DType act, int N, int C, int OC) {
    cudaDataType_t t = act == DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    size_t es = dtype_size(act);
    void *a, *w, *o;
    cudaCheck(cudaMalloc(&a, (size_t)N * C * es));
    cudaCheck(cudaMalloc(&w, (size_t)OC * C * es));
    cudaCheck(cudaMalloc(&o, (size_t)N * OC * es));
    cudaCheck(cudaMemset(a, 0, (size_t)N * C * es));
    cudaCheck(cudaMemset(w, 0, (size_t)OC * C * es));
    const float alpha = 1, beta = 0;
    float ms = time_ms(
        [&]() {
            cublasCheck(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &alpha, w, t, C, a, t, C, &beta, o, t, OC,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        },
        20);
    cudaCheck(cudaFree(a));
    cudaCheck(cudaFree(w));
    cudaCheck(cudaFree(o));
    return 2.0 * N * C * OC / (ms * 1e9);
}

static void bench_matmuls(Backend* be, cublasHandle_t h) {
    struct { const char* name; int C, OC, gelu; } shapes[] = {
        {"qkv", C_, 3 * C_, 0}, {"fc+gelu", C_, 4 * C_, 1}, {"fcproj", 4 * C_, C_, 0}, {"lm head", C_, VP_, 0}};
    for (auto& s : shapes) {
        int C = s.C, OC = s.OC;
        void* inp = random_buffer(be, (size_t)N_ * C, 0, 1, 1);
        void* w = random_buffer(be, (size_t)OC * C, 0, 0.02f, 2);
        void* bias = random_buffer(be, OC, 0, 0.02f, 3);
        void* out = be->alloc(be, (size_t)N_ * OC * dtype_size(be->act));
        void* pre = s.gelu ? be->alloc(be, (size_t)N_ * OC * dtype_size(be->act)) : NULL;
        void* dout = random_buffer(be, (size_t)N_ * OC, 0, 1, 4);
        void* dinp = be->alloc(be, (size_t)N_ * C * dtype_size(be->act));
        float* dw = (float*)be->alloc(be, (size_t)OC * C * sizeof(float));
        float* db = (float*)be->alloc(be, OC * sizeof(float));
        double flop = 2.0 * N_ * C * OC, ref = cublas_tflops(h, be->act, N_, C, OC);
        float fwd = time_ms([&]() { be->matmul_forward(be, out, pre, inp, w, bias, N_, C, OC); }, 20);
        float bwd = time_ms([&]() { be->matmul_backward(be, dinp, dw, db, dout, pre, dout, inp, w, N_, C, OC); }, 20);
        const char* a = be->act == DTYPE_BF16 ? "bf16" : "fp32";
        printf("matmul_forward  %-8s N=%d C=%d OC=%d %s %9.1f us %7.1f TFLOP/s  %5.2f of cuBLAS (%.1f)\n", s.name, N_,
               C, OC, a, fwd * 1e3, flop / (fwd * 1e9), flop / (fwd * 1e9) / ref, ref);
        printf("matmul_backward %-8s N=%d C=%d OC=%d %s %9.1f us %7.1f TFLOP/s  %5.2f of cuBLAS x2\n", s.name, N_, C,
               OC, a, bwd * 1e3, 2 * flop / (bwd * 1e9), 2 * flop / (bwd * 1e9) / ref);
        void* bufs[] = {inp, w, bias, out, pre, dout, dinp, dw, db};
        for (void* p : bufs)
            if (p) be->free(be, p);
    }
}

static void bench_memory_bound(Backend* be) {
    DType a = be->act;
    double s = (double)dtype_size(a);
    size_t NC = (size_t)N_ * C_;
    void* x = random_buffer(be, NC, 0, 1, 10);
    void* y = random_buffer(be, NC, 0, 1, 11);
    void* out = be->alloc(be, NC * s);
    void* res = be->alloc(be, NC * s);
    void* w = random_buffer(be, C_, 0, 1, 12);
    void* bias = random_buffer(be, C_, 0, 1, 13);
    float* mean = (float*)be->alloc(be, N_ * 4);
    float* rstd = (float*)be->alloc(be, N_ * 4);
    float* dw = (float*)be->alloc(be, C_ * 4);
    float* db = (float*)be->alloc(be, C_ * 4);
    report_bw("layernorm_forward", a, time_ms([&]() { be->layernorm_forward(be, out, mean, rstd, x, w, bias, N_, C_); }, 50),
              2 * NC * s);
    report_bw("residual_layernorm_forward", a,
              time_ms([&]() { be->residual_layernorm_forward(be, res, out, mean, rstd, x, y, w, bias, N_, C_); }, 50),
              4 * NC * s);
    report_bw("layernorm_backward", a,
              time_ms([&]() { be->layernorm_backward(be, res, dw, db, y, x, w, mean, rstd, N_, C_); }, 50), 4 * NC * s);
    size_t n4 = 4 * NC;
    void* big = random_buffer(be, n4, 0, 2, 14);
    void* big2 = random_buffer(be, n4, 0, 1, 15);
    void* big_out = be->alloc(be, n4 * s);
    report_bw("gelu_forward (N x 4C)", a, time_ms([&]() { be->gelu_forward(be, big_out, big, n4); }, 50), 2 * n4 * s);
    report_bw("gelu_backward (N x 4C)", a, time_ms([&]() { be->gelu_backward(be, big_out, big, big2, n4); }, 50),
              3 * n4 * s);
    report_bw("add", a, time_ms([&]() { be->add(be, out, x, y, NC); }, 50), 3 * NC * s);
    float* f32 = (float*)random_buffer(be, n4, 1, 1, 16);
    report_bw("cast_to_act (N x 4C)", a, time_ms([&]() { be->cast_to_act(be, big_out, f32, n4); }, 50), n4 * (4 + s));

    // embeddings: N rows of the token table and positions
    int* tokens_h = (int*)mallocCheck(sizeof(int) * N_);
    int* pos_h = (int*)mallocCheck(sizeof(int) * T_);
    for (int i = 0; i < N_; i++) tokens_h[i] = (int)((i * 2654435761u) % V_);
    for (int t = 0; t < T_; t++) pos_h[t] = t;
    int* tokens = (int*)be->alloc(be, sizeof(int) * N_);
    int* pos = (int*)be->alloc(be, sizeof(int) * T_);
    be->upload(be, tokens, tokens_h, sizeof(int) * N_);
    be->upload(be, pos, pos_h, sizeof(int) * T_);
    void* wte = random_buffer(be, (size_t)VP_ * C_, 0, 0.02f, 17);
    void* wpe = random_buffer(be, (size_t)P_ * C_, 0, 0.02f, 18);
    float* dwte = (float*)be->alloc(be, (size_t)VP_ * C_ * 4);
    float* dwpe = (float*)be->alloc(be, (size_t)P_ * C_ * 4);
    report_bw("embedding_forward", a,
              time_ms([&]() { be->embedding_forward(be, out, NULL, 0, tokens, wte, wpe, pos, B_, T_, 0, C_); }, 50),
              3 * NC * s);
    report_bw("embedding_backward (host plan incl.)", a,
              time_ms([&]() {
                  be->embedding_backward(be, NULL, 0, dwte, dwpe, x, tokens, tokens_h, pos, pos_h, B_, T_, 0, C_, VP_,
                                         P_);
              }, 20),
              NC * s + 2 * 4.0 * NC + 2 * 4.0 * T_ * C_);

    // cross-entropy over the padded vocabulary, forward and backward in place
    size_t nl = (size_t)N_ * VP_;
    void* logits = random_buffer(be, nl, 0, 4, 19);
    void* logits_work = be->alloc(be, nl * s);
    float* losses = (float*)be->alloc(be, N_ * 4);
    int* targets = tokens;
    float ms_copy = time_ms([&]() { be->copy(be, logits_work, logits, nl * s); }, 20);
    float ms_ce = time_ms([&]() {
        be->copy(be, logits_work, logits, nl * s);
        be->crossentropy_forward_backward(be, losses, logits_work, targets, tokens_h, N_, V_, VP_, 0.1f, 1.0f / N_);
    }, 20);
    report_bw("crossentropy_forward_backward", a, ms_ce - ms_copy, 2 * nl * s);

    // optimiser over every GPT-2 small parameter
    size_t np = GPT2_PARAMS;
    float* params = (float*)random_buffer(be, np, 1, 0.02f, 20);
    float* grads = (float*)random_buffer(be, np, 1, 0.01f, 21);
    float* m = (float*)be->alloc(be, np * 4);
    float* v = (float*)be->alloc(be, np * 4);
    void* pact = be->alloc(be, np * s);
    report_bw("adamw_update (124M params)", a,
              time_ms([&]() { be->adamw_update(be, params, pact, grads, m, v, np, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1); }, 10),
              np * (16.0 + 12.0 + s));
    report_bw("sum_squares (124M, incl. D2H)", a, time_ms([&]() { be->sum_squares(be, grads, np); }, 10), 4.0 * np);
    report_bw("scale_f32 (124M)", a, time_ms([&]() { be->scale_f32(be, grads, 1.0f, np); }, 10), 8.0 * np);
    float ms_rng = time_ms([&]() { random_normal_cuda(params, (size_t)16 << 20, 7, 1, 0); }, 10);
    report_bw("random_normal (16M)", a, ms_rng, 4.0 * (16 << 20));

    void* bufs[] = {x, y, out, res, w, bias, mean, rstd, dw, db, big, big2, big_out, f32, tokens, pos, wte, wpe, dwte,
                    dwpe, logits, logits_work, losses, params, grads, m, v, pact};
    for (void* p : bufs) be->free(be, p);
    free(tokens_h);
    free(pos_h);
}

int main(int argc, char** argv) {
    if (argc > 1) {
        printf("usage: bench_kernels\nTimes the CUDA backend's core ops (GPT-2 small shapes, fp32 and bf16) against "
               "the device's copy bandwidth and cuBLAS. Needs a GPU.\n");
        return strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? 2 : 0;
    }
    Backend* be32 = backend_cuda_create(DTYPE_F32);
    if (!be32) FATAL("bench_kernels needs a GPU");
    Backend* be16 = backend_cuda_create(DTYPE_BF16);
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    measure_copy_bandwidth();
    cublasHandle_t h;
    cublasCheck(cublasCreate(&h));
    for (Backend* be : {be32, be16}) {
        bench_memory_bound(be);
        bench_matmuls(be, h);
    }
    cublasCheck(cublasDestroy(h));
    be32->destroy(be32);
    be16->destroy(be16);
    return 0;
}
