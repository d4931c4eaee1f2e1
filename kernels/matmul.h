// Matmul with bias and an optional GELU (the linear layers):
//   forward:  out[N,OC] = inp[N,C] @ weight[OC,C]^T + bias[OC]; with gelu_pre: gelu_pre = that
//             affine result and out = gelu(gelu_pre)
//   backward: d = dout, or with gelu_pre d = dout * gelu'(gelu_pre), stored in scratch [N,OC];
//             dinp [N,C] = d @ weight (overwritten); dweight [OC,C] += d^T @ inp;
//             dbias [OC] += column sums of d. dinp, dweight, dbias may each be NULL (not
//             needed, or a frozen parameter): that part is skipped.
// CPU: OpenBLAS sgemm. CUDA: cuBLASLt (fp32 compute; bias and GELU_AUX_BIAS epilogues; the
// weight gradient accumulated in fp32 straight from act inputs) and a deterministic two-pass
// column sum for the bias gradient (kernels/colsum.cuh).
#pragma once
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// CPU reference (fp32) and its double instance (cblas_dgemm).
void matmul_forward_cpu(float* out, float* gelu_pre, const float* inp, const float* weight, const float* bias,
                        int N, int C, int OC);
void matmul_backward_cpu(float* dinp, float* dweight, float* dbias, const float* dout, const float* gelu_pre,
                         float* scratch, const float* inp, const float* weight, int N, int C, int OC);
void matmul_forward_cpu_f64(double* out, double* gelu_pre, const double* inp, const double* weight,
                            const double* bias, int N, int C, int OC);
void matmul_backward_cpu_f64(double* dinp, double* dweight, double* dbias, const double* dout,
                             const double* gelu_pre, double* scratch, const double* inp, const double* weight,
                             int N, int C, int OC);

// CUDA (kernels/matmul.cu): a cuBLASLt handle and its workspace.
typedef struct MatmulCuda MatmulCuda;
MatmulCuda* matmul_cuda_create(void);
void matmul_cuda_destroy(MatmulCuda* mm);
void matmul_forward_cuda(MatmulCuda* mm, void* out, void* gelu_pre, const void* inp, const void* weight,
                         const void* bias, int N, int C, int OC, DType act);
// `colsum_scratch`: device fp32 of matmul_backward_scratch_floats(N, OC), used when dbias.
size_t matmul_backward_scratch_floats(int N, int OC);
void matmul_backward_cuda(MatmulCuda* mm, void* dinp, float* dweight, float* dbias, const void* dout,
                          const void* gelu_pre, void* scratch, const void* inp, const void* weight, int N, int C,
                          int OC, float* colsum_scratch, DType act);

#ifdef __cplusplus
}
#endif
