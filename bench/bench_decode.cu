#include "bench/gpu_bench.cuh"

// The incremental-decoding ops on the GPU (kernels/decode.cu): time per call and the memory
// bandwidth it reaches, for GPT-2 small (H=12, C=768, V=50257 padded to 50304) decoding with
// beam 5: 64 images (320 rows) and a single image (5 rows). fp32 and bf16. GPU only; see
// bench/RESULTS.md.
//
// Bytes counted: cached attention reads q and the cached keys and values, writes out and the
// new cache rows; rows gather reads and writes each row once; top-k reads the real logits.
#include "kernels/decode.h"

typedef struct {
    cudaEvent_t start, stop;
} Timer;

static void timer_start(Timer* t) {
    cudaCheck(cudaEventCreate(&t->start));
    cudaCheck(cudaEventCreate(&t->stop));
    cudaCheck(cudaEventRecord(t->start));
}
// Milliseconds per call over `iters` calls since timer_start.
static float timer_stop(Timer* t, int iters) {
    cudaCheck(cudaEventRecord(t->stop));
    cudaCheck(cudaEventSynchronize(t->stop));
    float ms;
    cudaCheck(cudaEventElapsedTime(&ms, t->start, t->stop));
    cudaCheck(cudaEventDestroy(t->start));
    cudaCheck(cudaEventDestroy(t->stop));
    return ms / iters;
}

static const char* dtype_name(DType d) { return d == DTYPE_BF16 ? "bf16" : "fp32"; }

static void bench_cached(int B, int Tn, int past, DType dtype, int iters) {
    const int C = 768, H = 12, Tmax = 1024;
    unsigned long long state = 1234;
    void* qkv = random_device((size_t)B * Tn * 3 * C, dtype, 1.0f, &state);
    void* kcache = random_device((size_t)B * Tmax * C, dtype, 1.0f, &state);
    void* vcache = random_device((size_t)B * Tmax * C, dtype, 1.0f, &state);
    void* out;
    cudaCheck(cudaMalloc(&out, (size_t)B * Tn * C * dtype_size(dtype)));
    for (int i = 0; i < 3; i++) attention_forward_cached_cuda(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H, dtype);
    Timer t;
    timer_start(&t);
    for (int i = 0; i < iters; i++) attention_forward_cached_cuda(out, qkv, kcache, vcache, past, B, Tn, Tmax, C, H, dtype);
    const float ms = timer_stop(&t, iters);
    const double bytes = (double)dtype_size(dtype) * B * C * (2.0 * past + 6.0 * Tn);  // q, k, v in; out, 2 cache rows out
    printf("attention_forward_cached %s B=%-4d Tn=%-3d past=%-5d H=%d C=%d  %9.1f us  %7.1f GB/s\n", dtype_name(dtype),
           B, Tn, past, H, C, ms * 1e3, bytes / (ms * 1e6));
    cudaCheck(cudaFree(qkv));
    cudaCheck(cudaFree(kcache));
    cudaCheck(cudaFree(vcache));
    cudaCheck(cudaFree(out));
}

static void bench_gather(int n, size_t row, DType dtype, int iters) {
    unsigned long long state = 99;
    const size_t row_bytes = row * dtype_size(dtype);
    void* src = random_device((size_t)n * row, dtype, 1.0f, &state);
    void* dst;
    cudaCheck(cudaMalloc(&dst, (size_t)n * row_bytes));
    int* idx_host = (int*)malloc(n * sizeof(int));
    for (int i = 0; i < n; i++) idx_host[i] = (i / 5) * 5 + (int)((i * 7u) % 5);  // beams of one image reorder
    int* idx;
    cudaCheck(cudaMalloc((void**)&idx, n * sizeof(int)));
    cudaCheck(cudaMemcpy(idx, idx_host, n * sizeof(int), cudaMemcpyHostToDevice));
    for (int i = 0; i < 3; i++) rows_gather_cuda(dst, src, idx, n, row_bytes);
    Timer t;
    timer_start(&t);
    for (int i = 0; i < iters; i++) rows_gather_cuda(dst, src, idx, n, row_bytes);
    const float ms = timer_stop(&t, iters);
    printf("rows_gather              %s n=%-4d row=%-8zu (%.2f MB)  %9.1f us  %7.1f GB/s\n", dtype_name(dtype), n, row,
           row_bytes / 1e6, ms * 1e3, 2.0 * n * row_bytes / (ms * 1e6));
    free(idx_host);
    cudaCheck(cudaFree(src));
    cudaCheck(cudaFree(dst));
    cudaCheck(cudaFree(idx));
}

static void bench_topk(int N, int k, DType dtype, int iters) {
    const int V = 50257, Vp = 50304;
    unsigned long long state = 7;
    void* logits = random_device((size_t)N * Vp, dtype, 8.0f, &state);
    float* values;
    int* ids;
    cudaCheck(cudaMalloc((void**)&values, (size_t)N * k * sizeof(float)));
    cudaCheck(cudaMalloc((void**)&ids, (size_t)N * k * sizeof(int)));
    for (int i = 0; i < 3; i++) logsoftmax_topk_cuda(values, ids, logits, N, V, Vp, k, dtype);
    Timer t;
    timer_start(&t);
    for (int i = 0; i < iters; i++) logsoftmax_topk_cuda(values, ids, logits, N, V, Vp, k, dtype);
    const float ms = timer_stop(&t, iters);
    printf("logsoftmax_topk          %s N=%-4d V=%d k=%-3d  %9.1f us  %7.1f GB/s\n", dtype_name(dtype), N, V, k,
           ms * 1e3, (double)N * V * dtype_size(dtype) / (ms * 1e6));
    cudaCheck(cudaFree(logits));
    cudaCheck(cudaFree(values));
    cudaCheck(cudaFree(ids));
}

int main(int argc, char** argv) {
    const int iters = gpu_bench_start(
        argc, argv, "bench_decode",
        "Times the incremental-decoding ops (kernels/decode.cu) on the current GPU for GPT-2 small\n"
        "decoding with beam 5 (320 rows for 64 images, 5 rows for one image), fp32 and bf16:\n"
        "cached attention over 15 .. 1023 cached positions, the beam reorder of key/value caches\n"
        "(rows gather) and the log-softmax top-k over V=50257. Prints microseconds per call and\n"
        "the memory bandwidth reached.\n", 50);
    for (int d = 0; d < 2; d++) {
        const DType dtype = d == 0 ? DTYPE_BF16 : DTYPE_F32;
        const int pasts[] = {15, 63, 255, 1023};
        for (int p = 0; p < 4; p++) bench_cached(320, 1, pasts[p], dtype, iters);
        bench_cached(5, 1, 63, dtype, iters);
        bench_cached(320, 10, 0, dtype, iters);  // the prefix, fed at once
        bench_gather(320, (size_t)2 * 80 * 768, dtype, iters);  // one layer's K and V cache rows, Tmax 80
        const int ks[] = {5, 10, 64};
        for (int k = 0; k < 3; k++) bench_topk(320, ks[k], dtype, iters);
        bench_topk(5, 10, dtype, iters);
    }
    return 0;
}
