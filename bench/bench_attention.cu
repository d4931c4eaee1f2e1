#include "bench/gpu_bench.cuh"

// Attention forward + backward on the GPU (kernels/attention.cu): time per call and achieved
// TFLOP/s for the GPT-2 decoder shape (B=256, T=50, H=12, C=768) and longer sequences, fp32
// and bf16, causal and bidirectional; in bf16 also cuDNN's fused attention on the same shapes
// (TIPCAP_ATTENTION=cudnn, kernels/attention_cudnn.h) when the build has it, and the ratio.
// Both run through the CUDA backend's table. GPU only; see bench/RESULTS.md.
//
// FLOPs are counted as in the flash-attention papers: forward 4 B H T^2 hs (QK^T and PV),
// backward 2.5x that (five matmuls), halved when causal. The kernels do more work than that
// (64-row tiles padded past T; the dQ pass recomputes the scores), so the rates are "useful"
// rates.
#include "kernels/attention.h"
#include "kernels/backend.h"

typedef struct {
    int B, T, C, H, causal;
} BenchShape;

// Milliseconds per forward + backward; prints the line of `label`.
static float bench_shape(Backend* be, const char* label, const BenchShape* s, int iters) {
    const DType dtype = be->act;
    unsigned long long state = 1234;
    const size_t n_qkv = (size_t)s->B * s->T * 3 * s->C, n_out = (size_t)s->B * s->T * s->C;
    void* qkv = random_device(n_qkv, dtype, 1.0f, &state);
    void* dout = random_device(n_out, dtype, 1.0f, &state);
    void *out, *dqkv;
    float* lse;
    cudaCheck(cudaMalloc(&out, n_out * dtype_size(dtype)));
    cudaCheck(cudaMalloc(&dqkv, n_qkv * dtype_size(dtype)));
    cudaCheck(cudaMalloc((void**)&lse, (size_t)s->B * s->H * s->T * sizeof(float)));

    cudaEvent_t start, mid, stop;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&mid));
    cudaCheck(cudaEventCreate(&stop));
    for (int i = 0; i < 3; i++) {  // warm-up: module load, shared-memory carve-out, scratch allocation
        be->attention_forward(be, out, lse, qkv, NULL, s->B, s->T, s->C, s->H, s->causal);
        be->attention_backward(be, dqkv, dout, out, lse, qkv, NULL, s->B, s->T, s->C, s->H, s->causal);
    }
    float fwd_ms = 0, bwd_ms = 0;
    for (int i = 0; i < iters; i++) {
        cudaCheck(cudaEventRecord(start));
        be->attention_forward(be, out, lse, qkv, NULL, s->B, s->T, s->C, s->H, s->causal);
        cudaCheck(cudaEventRecord(mid));
        be->attention_backward(be, dqkv, dout, out, lse, qkv, NULL, s->B, s->T, s->C, s->H, s->causal);
        cudaCheck(cudaEventRecord(stop));
        cudaCheck(cudaEventSynchronize(stop));
        float f, b;
        cudaCheck(cudaEventElapsedTime(&f, start, mid));
        cudaCheck(cudaEventElapsedTime(&b, mid, stop));
        fwd_ms += f;
        bwd_ms += b;
    }
    fwd_ms /= iters;
    bwd_ms /= iters;
    const double hs = (double)s->C / s->H;
    const double fwd_flops = 4.0 * s->B * s->H * (double)s->T * s->T * hs * (s->causal ? 0.5 : 1.0);
    const double bwd_flops = 2.5 * fwd_flops;
    printf("%-6s %-4s B=%-4d T=%-5d H=%-3d C=%-5d %-6s  fwd %8.3f ms %6.2f TFLOP/s   bwd %8.3f ms %6.2f TFLOP/s   "
           "fwd+bwd %8.3f ms %6.2f TFLOP/s\n",
           label, dtype == DTYPE_BF16 ? "bf16" : "fp32", s->B, s->T, s->H, s->C, s->causal ? "causal" : "bidir", fwd_ms,
           fwd_flops / (fwd_ms * 1e9), bwd_ms, bwd_flops / (bwd_ms * 1e9), fwd_ms + bwd_ms,
           (fwd_flops + bwd_flops) / ((fwd_ms + bwd_ms) * 1e9));
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(mid));
    cudaCheck(cudaEventDestroy(stop));
    cudaCheck(cudaFree(qkv));
    cudaCheck(cudaFree(dout));
    cudaCheck(cudaFree(out));
    cudaCheck(cudaFree(dqkv));
    cudaCheck(cudaFree(lse));
    return fwd_ms + bwd_ms;
}

int main(int argc, char** argv) {
    const int iters = gpu_bench_start(
        argc, argv, "bench_attention",
        "Times attention forward and backward (kernels/attention.cu) on the current GPU for the\n"
        "decoder shape B=256 T=50 H=12 C=768 and longer sequences, fp32 and bf16, and prints\n"
        "milliseconds per call and achieved TFLOP/s (flash-attention FLOP counts); in bf16 also\n"
        "cuDNN's fused attention when the build has it.\n", 20);
    const BenchShape shapes[] = {
        {256, 50, 768, 12, 1},  // GPT-2 small decoder: prefix + caption
        {256, 50, 768, 12, 0},  // the same, bidirectional (prompt-interaction encoder)
        {16, 1024, 768, 12, 1}, // longer sequences
        {4, 4096, 768, 12, 1},
    };
    Backend* bf16 = backend_cuda_create(DTYPE_BF16);
    Backend* fp32 = backend_cuda_create(DTYPE_F32);
    Backend* cudnn = NULL;
#ifdef TIPCAP_HAVE_CUDNN_FRONTEND
    setenv("TIPCAP_ATTENTION", "cudnn", 1);
    cudnn = backend_cuda_create(DTYPE_BF16);
    unsetenv("TIPCAP_ATTENTION");
#else
    printf("cudnn: not in this build (cudnn_frontend.h was not found at build time)\n");
#endif
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const float ours = bench_shape(bf16, "tipcap", &shapes[k], iters);
        if (cudnn) {
            const float theirs = bench_shape(cudnn, "cudnn", &shapes[k], iters);
            printf("       tipcap / cudnn time: %.2fx\n", ours / theirs);
        }
    }
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) bench_shape(fp32, "tipcap", &shapes[k], iters);
    bf16->destroy(bf16);
    fp32->destroy(fp32);
    if (cudnn) cudnn->destroy(cudnn);
    return 0;
}
