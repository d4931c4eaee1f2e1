// One GPT-2 transformer block, forward and backward, on the CPU backend (kernels/backend_cpu.c),
// in the order the model runs it (train/model.c): ms per step, tokens per second and the time of
// each op. Default shape: GPT-2 small's block, B=8, T=50, C=768, H=12, causal.
// usage: bin/bench/bench_cpu_block [--B n] [--T n] [--C n] [--H n] [--iters n]
// Threads: OMP_NUM_THREADS (the kernels) and OPENBLAS_NUM_THREADS (sgemm).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/timer.h"
#include "kernels/backend.h"

enum { OP_LN1, OP_QKV, OP_ATTN, OP_PROJ, OP_RES_LN2, OP_FC, OP_FCPROJ, OP_ADD, OP_COUNT };
static const char* op_names[OP_COUNT] = {"layernorm", "matmul qkv", "attention", "matmul proj",
                                         "residual+layernorm", "matmul fc+gelu", "matmul fcproj", "residual add"};
static double fwd_s[OP_COUNT], bwd_s[OP_COUNT];

#define TIMED(acc, call)                 \
    do {                                 \
        double t0_ = timer_now();        \
        call;                            \
        (acc) += timer_now() - t0_;      \
    } while (0)

static float* filled(Backend* be, size_t n, float scale, unsigned* state) {
    float* h = mallocCheck(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        h[i] = scale * ((float)(*state >> 8) / 16777216.0f * 2.0f - 1.0f);
    }
    float* d = be->alloc(be, n * sizeof(float));
    be->upload(be, d, h, n * sizeof(float));
    free(h);
    return d;
}

static void usage(void) {
    printf("usage: bench_cpu_block [--B n] [--T n] [--C n] [--H n] [--iters n]\n"
           "One transformer block forward+backward on the CPU backend; prints ms per step, tokens/s\n"
           "and the time of each op. Defaults: B=8 T=50 C=768 H=12 iters=5.\n");
}

int main(int argc, char** argv) {
    int B = 8, T = 50, C = 768, H = 12, iters = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
        if (i + 1 >= argc) FATAL("option %s needs a value (see --help)", argv[i]);
        int v = atoi(argv[i + 1]);
        if (v <= 0) FATAL("option %s: expected a positive integer, got '%s'", argv[i], argv[i + 1]);
        if (!strcmp(argv[i], "--B")) B = v;
        else if (!strcmp(argv[i], "--T")) T = v;
        else if (!strcmp(argv[i], "--C")) C = v;
        else if (!strcmp(argv[i], "--H")) H = v;
        else if (!strcmp(argv[i], "--iters")) iters = v;
        else FATAL("unknown option %s (see --help)", argv[i]);
        i++;
    }
    if (C % H) FATAL("C = %d is not a multiple of H = %d", C, H);
    Backend* be = backend_cpu_create();
    if (!be->attention_forward || !be->attention_backward) FATAL("the CPU backend has no attention");
    int N = B * T;
    size_t NC = (size_t)N * C;
    unsigned st = 12345;
    // parameters (act copies; fp32 on the CPU) and their gradients
    float *ln1_w = filled(be, C, 1, &st), *ln1_b = filled(be, C, 0.1f, &st);
    float *qkv_w = filled(be, (size_t)3 * C * C, 0.02f, &st), *qkv_b = filled(be, 3 * C, 0.02f, &st);
    float *proj_w = filled(be, (size_t)C * C, 0.02f, &st), *proj_b = filled(be, C, 0.02f, &st);
    float *ln2_w = filled(be, C, 1, &st), *ln2_b = filled(be, C, 0.1f, &st);
    float *fc_w = filled(be, (size_t)4 * C * C, 0.02f, &st), *fc_b = filled(be, 4 * C, 0.02f, &st);
    float *fcproj_w = filled(be, (size_t)4 * C * C, 0.02f, &st), *fcproj_b = filled(be, C, 0.02f, &st);
    float *g_ln1_w = be->alloc(be, C * 4), *g_ln1_b = be->alloc(be, C * 4);
    float *g_qkv_w = be->alloc(be, (size_t)12 * C * C), *g_qkv_b = be->alloc(be, 12 * C);
    float *g_proj_w = be->alloc(be, (size_t)4 * C * C), *g_proj_b = be->alloc(be, 4 * C);
    float *g_ln2_w = be->alloc(be, C * 4), *g_ln2_b = be->alloc(be, C * 4);
    float *g_fc_w = be->alloc(be, (size_t)16 * C * C), *g_fc_b = be->alloc(be, 16 * C);
    float *g_fcproj_w = be->alloc(be, (size_t)16 * C * C), *g_fcproj_b = be->alloc(be, 4 * C);
    // activations
    float* x = filled(be, NC, 1, &st);
    float *ln1 = be->alloc(be, NC * 4), *ln1_mean = be->alloc(be, N * 4), *ln1_rstd = be->alloc(be, N * 4);
    float *qkv = be->alloc(be, 3 * NC * 4), *atty = be->alloc(be, NC * 4), *lse = be->alloc(be, (size_t)B * H * T * 4);
    float *proj = be->alloc(be, NC * 4), *res2 = be->alloc(be, NC * 4), *ln2 = be->alloc(be, NC * 4);
    float *ln2_mean = be->alloc(be, N * 4), *ln2_rstd = be->alloc(be, N * 4);
    float *fch = be->alloc(be, 4 * NC * 4), *fch_pre = be->alloc(be, 4 * NC * 4);
    float *fcproj = be->alloc(be, NC * 4), *out = be->alloc(be, NC * 4);
    // gradients of activations
    float* dout = filled(be, NC, 1, &st);
    float *dres = be->alloc(be, NC * 4), *d4C = be->alloc(be, 4 * NC * 4), *dC = be->alloc(be, NC * 4);
    float* d3C = be->alloc(be, 3 * NC * 4);

    double step_s = 0;
    for (int it = -1; it < iters; it++) {  // iteration -1 warms up and is not counted
        if (it == 0) {
            memset(fwd_s, 0, sizeof fwd_s);
            memset(bwd_s, 0, sizeof bwd_s);
        }
        double t0 = timer_now();
        TIMED(fwd_s[OP_LN1], be->layernorm_forward(be, ln1, ln1_mean, ln1_rstd, x, ln1_w, ln1_b, N, C));
        TIMED(fwd_s[OP_QKV], be->matmul_forward(be, qkv, NULL, ln1, qkv_w, qkv_b, N, C, 3 * C));
        TIMED(fwd_s[OP_ATTN], be->attention_forward(be, atty, lse, qkv, NULL, B, T, C, H, 1));
        TIMED(fwd_s[OP_PROJ], be->matmul_forward(be, proj, NULL, atty, proj_w, proj_b, N, C, C));
        TIMED(fwd_s[OP_RES_LN2],
              be->residual_layernorm_forward(be, res2, ln2, ln2_mean, ln2_rstd, x, proj, ln2_w, ln2_b, N, C));
        TIMED(fwd_s[OP_FC], be->matmul_forward(be, fch, fch_pre, ln2, fc_w, fc_b, N, C, 4 * C));
        TIMED(fwd_s[OP_FCPROJ], be->matmul_forward(be, fcproj, NULL, fch, fcproj_w, fcproj_b, N, 4 * C, C));
        TIMED(fwd_s[OP_ADD], be->add(be, out, res2, fcproj, NC));

        be->copy(be, dres, dout, NC * 4);  // out = res2 + fcproj: both get dout
        TIMED(bwd_s[OP_FCPROJ], be->matmul_backward(be, d4C, g_fcproj_w, g_fcproj_b, dres, NULL, NULL, fch, fcproj_w,
                                                    N, 4 * C, C));
        TIMED(bwd_s[OP_FC],
              be->matmul_backward(be, dC, g_fc_w, g_fc_b, d4C, fch_pre, d4C, ln2, fc_w, N, C, 4 * C));
        TIMED(bwd_s[OP_RES_LN2],
              be->layernorm_backward(be, dres, g_ln2_w, g_ln2_b, dC, res2, ln2_w, ln2_mean, ln2_rstd, N, C));
        TIMED(bwd_s[OP_PROJ],
              be->matmul_backward(be, dC, g_proj_w, g_proj_b, dres, NULL, NULL, atty, proj_w, N, C, C));
        TIMED(bwd_s[OP_ATTN], be->attention_backward(be, d3C, dC, atty, lse, qkv, NULL, B, T, C, H, 1));
        TIMED(bwd_s[OP_QKV],
              be->matmul_backward(be, dC, g_qkv_w, g_qkv_b, d3C, NULL, NULL, ln1, qkv_w, N, C, 3 * C));
        TIMED(bwd_s[OP_LN1],
              be->layernorm_backward(be, dres, g_ln1_w, g_ln1_b, dC, x, ln1_w, ln1_mean, ln1_rstd, N, C));
        if (it >= 0) step_s += timer_now() - t0;
    }
    double ms = 1e3 * step_s / iters;
    double flops = 2.0 * N * ((double)C * 3 * C + (double)C * C + 8.0 * C * C) * 3;  // matmuls: fwd + 2 bwd
    printf("transformer block forward+backward, CPU backend: B=%d T=%d C=%d H=%d (%d iterations)\n", B, T, C, H,
           iters);
    printf("  %.1f ms per step, %.0f tokens/s, matmuls %.1f GFLOP/s\n", ms, N / (ms * 1e-3),
           flops / (ms * 1e-3) / 1e9 * (1.0));
    printf("  %-20s %10s %10s\n", "op", "fwd ms", "bwd ms");
    for (int k = 0; k < OP_COUNT; k++)
        printf("  %-20s %10.2f %10.2f\n", op_names[k], 1e3 * fwd_s[k] / iters, 1e3 * bwd_s[k] / iters);
    be->destroy(be);  // the buffers are host memory, released at exit
    return 0;
}
