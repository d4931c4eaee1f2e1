#include "kernels/cuda_common.cuh"

// CUDA: matmul with bias and GELU through cuBLASLt (see matmul.h). Row-major [rows, cols] is
// column-major [cols, rows], so every product is written for cuBLASLt's column-major view:
//   forward   out^T [OC,N]   = W^T' [OC,C] (W viewed [C,OC], transposed) x inp^T [C,N]
//                              epilogue BIAS, or GELU_AUX_BIAS writing gelu_pre as the aux matrix
//   dinp      dinp^T [C,N]   = W [C,OC] (W viewed) x d^T [OC,N]
//   dweight   dW^T [C,OC]   += inp^T [C,N] x d [N,OC] (d viewed [OC,N], transposed); fp32 output
//                              from act inputs, beta = 1
//   dbias     column sums of d, two-pass and deterministic (colsum.cuh)
// Compute in fp32 (CUBLAS_COMPUTE_32F: no TF32), so fp32 results match the CPU to ~1e-6.
// Why not the cuBLASLt backward epilogues: DGELU needs a GEMM whose output is d(gelu out), which
// this op's contract does not have (dout arrives as an input), and the BGRAD epilogues write
// the bias gradient in the output type (bf16 for bf16 outputs) and overwrite instead of adding.
// The GELU aux matrix needs a leading dimension divisible by 8 (cublasLt.h,
// CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD): for other OC, or when cuBLASLt offers no GELU_AUX
// algorithm for the problem, the forward writes gelu_pre with the BIAS epilogue and applies GELU
// in a separate kernel.
#include <stdint.h>
#include <stdlib.h>

#include "common/check.h"
#include "kernels/colsum.cuh"
#include "kernels/gelu.h"
#include "kernels/matmul.h"

#define MATMUL_WORKSPACE_BYTES ((size_t)32 << 20)

struct MatmulCuda {
    cublasLtHandle_t handle;
    void* workspace;  // [MATMUL_WORKSPACE_BYTES]
};

MatmulCuda* matmul_cuda_create(void) {
    MatmulCuda* mm = (MatmulCuda*)callocCheck(1, sizeof(MatmulCuda));
    cublasCheck(cublasLtCreate(&mm->handle));
    cudaCheck(cudaMalloc(&mm->workspace, MATMUL_WORKSPACE_BYTES));
    return mm;
}

void matmul_cuda_destroy(MatmulCuda* mm) {
    if (!mm) return;
    cudaCheck(cudaFree(mm->workspace));
    cublasCheck(cublasLtDestroy(mm->handle));
    free(mm);
}

static void set_attr(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void* value, size_t size) {
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, attr, value, size));
}

// Largest power of two (up to 256) dividing the address: cuBLASLt's heuristic assumes 256-byte
// aligned matrices unless told otherwise, and the model's tensors sit at arbitrary offsets.
static uint32_t pointer_alignment(const void* p) {
    uint32_t align = 256;
    while (align > 1 && (uintptr_t)p % align) align /= 2;
    return align;
}

// D [m,n] (column-major, ld ldd, type d_type) = op(A) [m,k] x op(B) [k,n] + beta D, A and B of
// type ab_type; bias [m] and aux [m,n] (ld m) as the epilogue needs them. Returns 0 when
// cuBLASLt has no algorithm for this problem (nothing ran), 1 when it ran.
static int lt_matmul(MatmulCuda* mm, void* d, cudaDataType_t d_type, int ldd, const void* a, int lda, int trans_a,
                     const void* b, int ldb, int trans_b, cudaDataType_t ab_type, int m, int n, int k, float beta,
                     cublasLtEpilogue_t epilogue, const void* bias, void* aux) {
    cublasLtMatmulDesc_t desc;
    cublasCheck(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    set_attr(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a);
    set_attr(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b);
    set_attr(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
    if (bias) set_attr(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    if (aux) {
        int64_t ld_aux = m;
        set_attr(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux);
        set_attr(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld_aux, sizeof ld_aux);
    }
    cublasLtMatrixLayout_t layout_a, layout_b, layout_d;
    cublasCheck(cublasLtMatrixLayoutCreate(&layout_a, ab_type, trans_a ? k : m, trans_a ? m : k, lda));
    cublasCheck(cublasLtMatrixLayoutCreate(&layout_b, ab_type, trans_b ? n : k, trans_b ? k : n, ldb));
    cublasCheck(cublasLtMatrixLayoutCreate(&layout_d, d_type, m, n, ldd));
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    size_t workspace_bytes = MATMUL_WORKSPACE_BYTES;
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                     sizeof workspace_bytes));
    uint32_t align_a = pointer_alignment(a), align_b = pointer_alignment(b), align_d = pointer_alignment(d);
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                                     sizeof align_a));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                                     sizeof align_b));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_d,
                                                     sizeof align_d));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d,
                                                     sizeof align_d));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    // CUBLAS_STATUS_NOT_SUPPORTED: no algorithm for this configuration (found stays 0)
    cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(mm->handle, desc, layout_a, layout_b, layout_d, layout_d,
                                                           pref, 1, &heuristic, &found);
    if (status != CUBLAS_STATUS_NOT_SUPPORTED) cublasCheck(status);
    if (found > 0) {
        const float alpha = 1.0f;
        cublasCheck(cublasLtMatmul(mm->handle, desc, &alpha, a, layout_a, b, layout_b, &beta, d, layout_d, d, layout_d,
                                   &heuristic.algo, mm->workspace, MATMUL_WORKSPACE_BYTES, 0));
    }
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    cublasCheck(cublasLtMatrixLayoutDestroy(layout_d));
    cublasCheck(cublasLtMatrixLayoutDestroy(layout_b));
    cublasCheck(cublasLtMatrixLayoutDestroy(layout_a));
    cublasCheck(cublasLtMatmulDescDestroy(desc));
    return found > 0;
}

static void lt_matmul_required(MatmulCuda* mm, void* d, cudaDataType_t d_type, int ldd, const void* a, int lda,
                               int trans_a, const void* b, int ldb, int trans_b, cudaDataType_t ab_type, int m, int n,
                               int k, float beta, cublasLtEpilogue_t epilogue, const void* bias) {
    if (!lt_matmul(mm, d, d_type, ldd, a, lda, trans_a, b, ldb, trans_b, ab_type, m, n, k, beta, epilogue, bias, NULL))
        FATAL("cuBLASLt has no algorithm for m=%d n=%d k=%d (transa %d, transb %d, epilogue %d, A/B type %d, D type %d)",
              m, n, k, trans_a, trans_b, (int)epilogue, (int)ab_type, (int)d_type);
}

void matmul_forward_cuda(MatmulCuda* mm, void* out, void* gelu_pre, const void* inp, const void* weight,
                         const void* bias, int N, int C, int OC, DType act) {
    if (N <= 0 || OC <= 0) return;
    cudaDataType_t t = act == DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    if (gelu_pre && OC % 8 == 0 &&
        lt_matmul(mm, out, t, OC, weight, C, 1, inp, C, 0, t, OC, N, C, 0.0f,
                  bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX, bias, gelu_pre))
        return;
    void* affine = gelu_pre ? gelu_pre : out;
    lt_matmul_required(mm, affine, t, OC, weight, C, 1, inp, C, 0, t, OC, N, C, 0.0f,
                       bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT, bias);
    if (gelu_pre) gelu_forward_cuda(out, gelu_pre, (size_t)N * OC, act);
}

template <typename T>
struct BiasGradRows {
    static constexpr int NQ = 1;
    const T* d;
    int OC;
    __device__ void operator()(int row, int col, float* acc) const { acc[0] += to_float(d[(size_t)row * OC + col]); }
};

size_t matmul_backward_scratch_floats(int N, int OC) { return colsum_scratch_floats(N, OC, 1); }

void matmul_backward_cuda(MatmulCuda* mm, void* dinp, float* dweight, float* dbias, const void* dout,
                          const void* gelu_pre, void* scratch, const void* inp, const void* weight, int N, int C,
                          int OC, float* colsum_scratch, DType act) {
    if (N <= 0 || OC <= 0) return;
    cudaDataType_t t = act == DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    const void* d = dout;  // [N,OC]
    if (gelu_pre) {
        gelu_backward_cuda(scratch, gelu_pre, dout, (size_t)N * OC, act);
        d = scratch;
    }
    if (dinp) lt_matmul_required(mm, dinp, t, C, weight, C, 0, d, OC, 0, t, C, N, OC, 0.0f, CUBLASLT_EPILOGUE_DEFAULT, NULL);
    if (dweight)
        lt_matmul_required(mm, dweight, CUDA_R_32F, C, inp, C, 0, d, OC, 1, t, C, OC, N, 1.0f, CUBLASLT_EPILOGUE_DEFAULT,
                           NULL);
    if (dbias) {
        if (act == DTYPE_BF16) {
            BiasGradRows<__nv_bfloat16> f = {(const __nv_bfloat16*)d, OC};
            colsum(dbias, (float*)NULL, N, OC, f, colsum_scratch);
        } else {
            BiasGradRows<float> f = {(const float*)d, OC};
            colsum(dbias, (float*)NULL, N, OC, f, colsum_scratch);
        }
    }
}
