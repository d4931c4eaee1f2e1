// cuBLAS and cuBLASLt under the emulation: OpenBLAS sgemm on fp32 copies of the operands, then
// the epilogue in fp32 and one rounding to the output type. Column-major, as the real libraries.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "kernels/emu/emu_check.h"
#include "kernels/emu/emu_internal.h"

struct EmuCublas {
    cudaStream_t stream;
};
struct EmuCublasLt {
    int unused;
};
struct EmuLtMatmulDesc {
    cublasComputeType_t compute_type;
    cudaDataType_t scale_type;
    int32_t transa, transb;
    uint32_t epilogue;
    const void* bias;
    int32_t bias_type;  // -1: the type of D
    int64_t bias_batch_stride;
    void* aux;
    int64_t aux_ld;
    int64_t aux_batch_stride;
    int32_t aux_type;  // -1: the type of D
    int32_t pointer_mode;
};
struct EmuLtLayout {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
    int32_t order;
    int32_t batch_count;
    int64_t batch_stride;  // elements
};
struct EmuLtPreference {
    uint64_t max_workspace;
    uint32_t min_alignment[4];  // bytes, of A, B, C, D
};

const char* cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

// ---------------------------------------------------------------- element access
static size_t type_size(cudaDataType_t t) { return t == CUDA_R_16BF ? 2 : 4; }
static bool supported_type(int t) { return t == CUDA_R_32F || t == CUDA_R_16BF; }
static float load(const void* p, cudaDataType_t t, size_t i) {
    if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16*)p)[i]);
    return ((const float*)p)[i];
}
static void store(void* p, cudaDataType_t t, size_t i, float v) {
    if (t == CUDA_R_16BF) ((__nv_bfloat16*)p)[i] = __float2bfloat16(v);
    else ((float*)p)[i] = v;
}
static bool compute_32f(int c) {
    return c == CUBLAS_COMPUTE_32F || c == CUBLAS_COMPUTE_32F_PEDANTIC || c == CUBLAS_COMPUTE_32F_FAST_16F ||
           c == CUBLAS_COMPUTE_32F_FAST_16BF || c == CUBLAS_COMPUTE_32F_FAST_TF32;
}

// A stored column-major matrix: rows x cols with leading dimension ld.
struct Matrix {
    const void* data;
    cudaDataType_t type;
    int64_t rows, cols, ld;
    size_t extent_bytes() const { return rows && cols ? ((size_t)(cols - 1) * (size_t)ld + (size_t)rows) * type_size(type) : 0; }
    float at(int64_t r, int64_t c) const { return load(data, type, (size_t)(r + c * ld)); }
};

static void require_range(const Matrix& m, const char* call, const char* what) {
    char label[96];
    snprintf(label, sizeof label, "%s: matrix %s", call, what);
    if (m.rows && m.cols) emu_require_device_range(m.data, m.extent_bytes(), label);
}

// fp32 copy of a stored matrix, packed (ld = rows).
static std::vector<float> to_f32(const Matrix& m) {
    std::vector<float> out((size_t)(m.rows * m.cols));
    for (int64_t c = 0; c < m.cols; c++)
        for (int64_t r = 0; r < m.rows; r++) out[(size_t)(r + c * m.rows)] = m.at(r, c);
    return out;
}

// out (m x n, packed fp32) = alpha op(A) op(B) + beta C, C read only when beta != 0 (BLAS convention).
static void gemm_f32(std::vector<float>& out, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const Matrix& A, const Matrix& B, float beta, const Matrix* C) {
    out.assign((size_t)(m * n), 0.0f);
    if (beta != 0.0f && C)
        for (int64_t c = 0; c < n; c++)
            for (int64_t r = 0; r < m; r++) out[(size_t)(r + c * m)] = C->at(r, c);
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0.0f) {
        for (float& v : out) v *= beta;
        return;
    }
    std::vector<float> a32, b32;
    const float* a = (const float*)A.data;
    const float* b = (const float*)B.data;
    int64_t lda = A.ld, ldb = B.ld;
    if (A.type != CUDA_R_32F) { a32 = to_f32(A); a = a32.data(); lda = A.rows; }
    if (B.type != CUDA_R_32F) { b32 = to_f32(B); b = b32.data(); ldb = B.rows; }
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)(lda > 0 ? lda : 1), b, (int)(ldb > 0 ? ldb : 1), beta, out.data(), (int)m);
}

// Columns 0..n-1 of an m-row output written (for the initialisation check).
static void mark_written(const void* data, cudaDataType_t type, int64_t ld, int64_t m, int64_t n) {
    for (int64_t c = 0; c < n; c++)
        emu_check_host_write((const char*)data + (size_t)(c * ld) * type_size(type), (size_t)m * type_size(type));
}
static void store_matrix(void* data, cudaDataType_t type, int64_t ld, const std::vector<float>& v, int64_t m, int64_t n) {
    for (int64_t c = 0; c < n; c++)
        for (int64_t r = 0; r < m; r++) store(data, type, (size_t)(r + c * ld), v[(size_t)(r + c * m)]);
    mark_written(data, type, ld, m, n);
}

// ---------------------------------------------------------------- cuBLAS
cublasStatus_t cublasCreate(cublasHandle_t* handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new EmuCublas{nullptr};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && workspace) emu_require_device_range(workspace, bytes, "cublasSetWorkspace");
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
    return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

static bool valid_op(int op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T; }

static cublasStatus_t gemm_batched(const char* call, cublasHandle_t handle, cublasOperation_t transa,
                                   cublasOperation_t transb, int m, int n, int k, const void* alpha, const void* A,
                                   cudaDataType Atype, int lda, long long strideA, const void* B, cudaDataType Btype,
                                   int ldb, long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
                                   long long strideC, int batch_count, int compute_type) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0 || batch_count < 0 || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    bool ta = transa == CUBLAS_OP_T, tb = transb == CUBLAS_OP_T;
    int a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!supported_type(Atype) || Btype != Atype || !supported_type(Ctype) || !compute_32f(compute_type))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    emu_check_red_zones_before(call);
    float a = *(const float*)alpha, b = *(const float*)beta;
    std::vector<float> out;
    for (int i = 0; i < batch_count; i++) {
        Matrix Am{(const char*)A + (size_t)(i * strideA) * type_size(Atype), Atype, a_rows, a_cols, lda};
        Matrix Bm{(const char*)B + (size_t)(i * strideB) * type_size(Btype), Btype, b_rows, b_cols, ldb};
        Matrix Cm{(const char*)C + (size_t)(i * strideC) * type_size(Ctype), Ctype, m, n, ldc};
        if (k > 0) {
            require_range(Am, call, "A");
            require_range(Bm, call, "B");
        }
        require_range(Cm, call, "C");
        gemm_f32(out, ta, tb, m, n, k, a, Am, Bm, b, &Cm);
        store_matrix((void*)Cm.data, Ctype, ldc, out, m, n);
    }
    emu_check_red_zones(call);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
    return gemm_batched("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F,
                        ldb, 0, beta, C, CUDA_R_32F, ldc, 0, 1, CUBLAS_COMPUTE_32F);
}
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t compute_type, cublasGemmAlgo_t algo) {
    return gemm_batched("cublasGemmEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0,
                        beta, C, Ctype, ldc, 0, 1, compute_type);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                          int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
                                          long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
                                          long long strideC, int batch_count, cublasComputeType_t compute_type,
                                          cublasGemmAlgo_t algo) {
    return gemm_batched("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA,
                        B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batch_count, compute_type);
}

// ---------------------------------------------------------------- cuBLASLt descriptors
cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new EmuCublasLt{0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute_type,
                                        cudaDataType_t scale_type) {
    if (!desc) return CUBLAS_STATUS_INVALID_VALUE;
    *desc = new EmuLtMatmulDesc{compute_type, scale_type, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT,
                                nullptr, -1, 0, nullptr, 0, 0, -1, CUBLASLT_POINTER_MODE_HOST};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}

// Copies an attribute value after checking its size, as cuBLASLt does.
template <typename T>
static cublasStatus_t set_attr(T* field, const void* buf, size_t bytes) {
    if (!buf || bytes != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(field, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t bytes) {
    if (!desc) return CUBLAS_STATUS_NOT_INITIALIZED;
    switch (attr) {
        case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return set_attr(&desc->compute_type, buf, bytes);
        case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return set_attr(&desc->scale_type, buf, bytes);
        case CUBLASLT_MATMUL_DESC_POINTER_MODE: return set_attr(&desc->pointer_mode, buf, bytes);
        case CUBLASLT_MATMUL_DESC_TRANSA: return set_attr(&desc->transa, buf, bytes);
        case CUBLASLT_MATMUL_DESC_TRANSB: return set_attr(&desc->transb, buf, bytes);
        case CUBLASLT_MATMUL_DESC_TRANSC: {
            int32_t op;
            cublasStatus_t s = set_attr(&op, buf, bytes);
            return s != CUBLAS_STATUS_SUCCESS ? s : (op == CUBLAS_OP_N ? s : CUBLAS_STATUS_NOT_SUPPORTED);
        }
        case CUBLASLT_MATMUL_DESC_EPILOGUE: return set_attr(&desc->epilogue, buf, bytes);
        case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set_attr(&desc->bias, buf, bytes);
        case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: return set_attr(&desc->bias_batch_stride, buf, bytes);
        case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return set_attr(&desc->aux, buf, bytes);
        case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return set_attr(&desc->aux_ld, buf, bytes);
        case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE: return set_attr(&desc->aux_batch_stride, buf, bytes);
        case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: return set_attr(&desc->aux_type, buf, bytes);
        case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return set_attr(&desc->bias_type, buf, bytes);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if (!layout) return CUBLAS_STATUS_INVALID_VALUE;
    *layout = new EmuLtLayout{type, rows, cols, ld, CUBLASLT_ORDER_COL, 1, 0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t bytes) {
    if (!layout) return CUBLAS_STATUS_NOT_INITIALIZED;
    switch (attr) {
        case CUBLASLT_MATRIX_LAYOUT_TYPE: return set_attr(&layout->type, buf, bytes);
        case CUBLASLT_MATRIX_LAYOUT_ORDER: return set_attr(&layout->order, buf, bytes);
        case CUBLASLT_MATRIX_LAYOUT_ROWS: return set_attr(&layout->rows, buf, bytes);
        case CUBLASLT_MATRIX_LAYOUT_COLS: return set_attr(&layout->cols, buf, bytes);
        case CUBLASLT_MATRIX_LAYOUT_LD: return set_attr(&layout->ld, buf, bytes);
        case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return set_attr(&layout->batch_count, buf, bytes);
        case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return set_attr(&layout->batch_stride, buf, bytes);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
    if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
    *pref = new EmuLtPreference{0, {0, 0, 0, 0}};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t bytes) {
    if (!pref) return CUBLAS_STATUS_NOT_INITIALIZED;
    switch (attr) {
        case CUBLASLT_MATMUL_PREF_SEARCH_MODE: {
            uint32_t mode;
            return set_attr(&mode, buf, bytes);
        }
        case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return set_attr(&pref->max_workspace, buf, bytes);
        case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return set_attr(&pref->min_alignment[0], buf, bytes);
        case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return set_attr(&pref->min_alignment[1], buf, bytes);
        case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return set_attr(&pref->min_alignment[2], buf, bytes);
        case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return set_attr(&pref->min_alignment[3], buf, bytes);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

// ---------------------------------------------------------------- cuBLASLt matmul
// GELU, tanh form, and its derivative, as the GELU epilogues compute them.
static const float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)
static float gelu(float x) {
    float u = kGeluScale * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}
static float gelu_grad(float x) {
    float u = kGeluScale * (x + 0.044715f * x * x * x);
    float t = tanhf(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
}

enum : uint32_t { EP_BIAS = 4, EP_BGRAD = 16, EP_GELU = 32, EP_DGELU = 64, EP_AUX = 128 };

static bool known_epilogue(uint32_t e) {
    switch (e) {
        case CUBLASLT_EPILOGUE_DEFAULT: case CUBLASLT_EPILOGUE_BIAS: case CUBLASLT_EPILOGUE_GELU:
        case CUBLASLT_EPILOGUE_GELU_AUX: case CUBLASLT_EPILOGUE_GELU_BIAS: case CUBLASLT_EPILOGUE_GELU_AUX_BIAS:
        case CUBLASLT_EPILOGUE_DGELU: case CUBLASLT_EPILOGUE_DGELU_BGRAD: case CUBLASLT_EPILOGUE_BGRADA:
        case CUBLASLT_EPILOGUE_BGRADB:
            return true;
    }
    return false;
}

// The checks shared by the heuristic and the matmul. Sets m, n, k, the transposes and the
// bias length on success.
struct Problem {
    int64_t m, n, k;
    bool ta, tb;
    int64_t bias_len;  // 0: no bias vector
    bool uses_aux;
};
static cublasStatus_t check_problem(const EmuLtMatmulDesc* d, const EmuLtLayout* A, const EmuLtLayout* B,
                                    const EmuLtLayout* C, const EmuLtLayout* D, Problem* p) {
    if (!d || !A || !B || !C || !D) return CUBLAS_STATUS_INVALID_VALUE;
    if (!compute_32f(d->compute_type) || d->scale_type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (!valid_op(d->transa) || !valid_op(d->transb)) return CUBLAS_STATUS_INVALID_VALUE;
    for (const EmuLtLayout* l : {A, B, C, D}) {
        if (l->order != CUBLASLT_ORDER_COL || !supported_type(l->type)) return CUBLAS_STATUS_NOT_SUPPORTED;
        if (l->ld < (int64_t)(l->rows > 1 ? l->rows : 1) || l->batch_count < 1) return CUBLAS_STATUS_INVALID_VALUE;
        if (l->batch_count != D->batch_count) return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (B->type != A->type || C->type != D->type) return CUBLAS_STATUS_NOT_SUPPORTED;
    p->ta = d->transa == CUBLAS_OP_T;
    p->tb = d->transb == CUBLAS_OP_T;
    p->m = (int64_t)D->rows;
    p->n = (int64_t)D->cols;
    p->k = (int64_t)(p->ta ? A->rows : A->cols);
    if ((int64_t)(p->ta ? A->cols : A->rows) != p->m || (int64_t)(p->tb ? B->cols : B->rows) != p->k ||
        (int64_t)(p->tb ? B->rows : B->cols) != p->n || C->rows != D->rows || C->cols != D->cols)
        return CUBLAS_STATUS_INVALID_VALUE;
    uint32_t e = d->epilogue;
    if (!known_epilogue(e)) return CUBLAS_STATUS_NOT_SUPPORTED;
    p->bias_len = e == CUBLASLT_EPILOGUE_BGRADB ? p->n : ((e & (EP_BIAS | EP_BGRAD)) || e == CUBLASLT_EPILOGUE_BGRADA ? p->m : 0);
    if (p->bias_len && (!d->bias || (d->bias_type != -1 && !supported_type(d->bias_type))))
        return CUBLAS_STATUS_INVALID_VALUE;
    p->uses_aux = (e & EP_AUX) != 0;
    if (p->uses_aux) {
        if (!d->aux || (d->aux_type != -1 && !supported_type(d->aux_type))) return CUBLAS_STATUS_INVALID_VALUE;
        // "Must be divisible by 8 and be no less than the number of rows in the output matrix."
        if (d->aux_ld < p->m || d->aux_ld % 8 != 0) return CUBLAS_STATUS_NOT_SUPPORTED;
        if (D->batch_count > 1 && d->aux_batch_stride % 8 != 0) return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t* results, int* returned) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (requested < 1 || !results || !returned || !pref) return CUBLAS_STATUS_INVALID_VALUE;
    *returned = 0;
    Problem p;
    cublasStatus_t s = check_problem(desc, Adesc, Bdesc, Cdesc, Ddesc, &p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    memset(&results[0], 0, sizeof results[0]);
    results[0].algo.data[0] = 1;
    for (int i = 0; i < 4; i++) results[0].algo.data[1 + i] = pref->min_alignment[i];
    results[0].workspaceSize = 0;
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
    static const char* call = "cublasLtMatmul";
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    Problem p;
    cublasStatus_t s = check_problem(desc, Adesc, Bdesc, Cdesc, Ddesc, &p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (!alpha || !beta || !D || (!C && *(const float*)beta != 0.0f)) return CUBLAS_STATUS_INVALID_VALUE;
    if (workspace_bytes && workspace) emu_require_device_range(workspace, workspace_bytes, "cublasLtMatmul: workspace");
    emu_check_red_zones_before(call);
    if (algo) {
        const void* operands[4] = {A, B, C, D};
        const char* names[4] = {"A", "B", "C", "D"};
        for (int i = 0; i < 4; i++) {
            uint64_t promised = algo->data[1 + i];
            if (operands[i] && promised > 1 && (uintptr_t)operands[i] % promised != 0) {
                fprintf(stderr, "cuda-emu: cublasLtMatmul: %s at %p is not aligned to the %llu bytes promised to "
                        "cublasLtMatmulAlgoGetHeuristic\n", names[i], operands[i], (unsigned long long)promised);
                return CUBLAS_STATUS_INVALID_VALUE;
            }
        }
    }
    const float a = *(const float*)alpha, b = *(const float*)beta;
    const uint32_t e = desc->epilogue;
    const cudaDataType_t bias_type = desc->bias_type == -1 ? Ddesc->type : (cudaDataType_t)desc->bias_type;
    const cudaDataType_t aux_type = desc->aux_type == -1 ? Ddesc->type : (cudaDataType_t)desc->aux_type;
    const int64_t m = p.m, n = p.n, k = p.k;
    std::vector<float> t, bias_grad;
    for (int batch = 0; batch < Ddesc->batch_count; batch++) {
        auto at = [&](const void* base, const EmuLtLayout* l) {
            return (const char*)base + (size_t)(batch * l->batch_stride) * type_size(l->type);
        };
        Matrix Am{at(A, Adesc), Adesc->type, (int64_t)Adesc->rows, (int64_t)Adesc->cols, Adesc->ld};
        Matrix Bm{at(B, Bdesc), Bdesc->type, (int64_t)Bdesc->rows, (int64_t)Bdesc->cols, Bdesc->ld};
        Matrix Cm{C ? at(C, Cdesc) : nullptr, Cdesc->type, m, n, Cdesc->ld};
        Matrix Dm{at(D, Ddesc), Ddesc->type, m, n, Ddesc->ld};
        if (k > 0) {
            require_range(Am, call, "A");
            require_range(Bm, call, "B");
        }
        if (b != 0.0f) require_range(Cm, call, "C");
        require_range(Dm, call, "D");
        char* bias = p.bias_len ? (char*)desc->bias + (size_t)(batch * desc->bias_batch_stride) * type_size(bias_type)
                                : nullptr;
        if (bias) emu_require_device_range(bias, (size_t)p.bias_len * type_size(bias_type), "cublasLtMatmul: bias");
        Matrix Aux{p.uses_aux ? (char*)desc->aux + (size_t)(batch * desc->aux_batch_stride) * type_size(aux_type)
                              : nullptr,
                   aux_type, m, n, desc->aux_ld};
        if (p.uses_aux) require_range(Aux, call, "epilogue aux");

        // BGRADA/BGRADB reduce an input over k: from the operands as stored, before the product.
        if (e == CUBLASLT_EPILOGUE_BGRADA || e == CUBLASLT_EPILOGUE_BGRADB) {
            bias_grad.assign((size_t)p.bias_len, 0.0f);
            for (int64_t i = 0; i < p.bias_len; i++) {
                float sum = 0.0f;
                for (int64_t kk = 0; kk < k; kk++)
                    sum += e == CUBLASLT_EPILOGUE_BGRADA ? (p.ta ? Am.at(kk, i) : Am.at(i, kk))
                                                         : (p.tb ? Bm.at(i, kk) : Bm.at(kk, i));
                bias_grad[(size_t)i] = sum;
            }
        }

        gemm_f32(t, p.ta, p.tb, m, n, k, a, Am, Bm, b, &Cm);

        for (int64_t c = 0; c < n; c++) {
            for (int64_t r = 0; r < m; r++) {
                float& v = t[(size_t)(r + c * m)];
                if (e & EP_BIAS) v += load(bias, bias_type, (size_t)r);
                if (e & EP_GELU) {
                    if (e & EP_AUX) store((void*)Aux.data, aux_type, (size_t)(r + c * Aux.ld), v);
                    v = gelu(v);
                }
                if (e & EP_DGELU) v *= gelu_grad(Aux.at(r, c));
            }
        }
        if (e & EP_BGRAD) {  // DGELU_BGRAD: the bias gradient of the output, summed over columns
            bias_grad.assign((size_t)m, 0.0f);
            for (int64_t c = 0; c < n; c++)
                for (int64_t r = 0; r < m; r++) bias_grad[(size_t)r] += t[(size_t)(r + c * m)];
        }
        if ((e & EP_BGRAD) || e == CUBLASLT_EPILOGUE_BGRADA || e == CUBLASLT_EPILOGUE_BGRADB)
            for (int64_t i = 0; i < p.bias_len; i++) store(bias, bias_type, (size_t)i, bias_grad[(size_t)i]);
        if ((e & EP_GELU) && (e & EP_AUX)) mark_written(Aux.data, aux_type, Aux.ld, m, n);
        if ((e & EP_BGRAD) || e == CUBLASLT_EPILOGUE_BGRADA || e == CUBLASLT_EPILOGUE_BGRADB)
            emu_check_host_write(bias, (size_t)p.bias_len * type_size(bias_type));
        store_matrix((void*)Dm.data, Dm.type, Dm.ld, t, m, n);
    }
    emu_check_red_zones(call);
    return CUBLAS_STATUS_SUCCESS;
}
