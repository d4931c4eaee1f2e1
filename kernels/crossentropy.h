// Fused softmax + cross-entropy with ignore-index and label smoothing, over logits [N,Vp] of
// which the first V columns are real (Vp: the vocabulary padded for the matmuls).
//   target distribution q = (1 - eps) onehot(target) + eps / V on every real column
//   losses[n] = -sum_j q_j log softmax(z)_j = lse - (1 - eps) z_target - (eps / V) sum_j z_j
//   targets[n] = -1: ignored (loss 0, zero gradient on the whole row)
// If dlogits_scale != 0 the logits are overwritten by (softmax(z) - q) * dlogits_scale on the
// real columns and 0 on the padded ones; the padded columns are never read.
// CUDA: one block per row, an online max/sum-exp per thread combined in a fixed tree, fp32.
#pragma once
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// Exits naming the first row whose target (host memory) lies outside [-1, V).
void crossentropy_check_targets(const int* targets, int N, int V);

// CPU reference (fp32) and its double instance. A target outside [-1, V) is a fatal error.
void crossentropy_forward_backward_cpu(float* losses, float* logits, const int* targets, int N, int V, int Vp,
                                       float label_smoothing, float dlogits_scale);
void crossentropy_forward_backward_cpu_f64(double* losses, double* logits, const int* targets, int N, int V,
                                           int Vp, double label_smoothing, double dlogits_scale);

// CUDA (kernels/crossentropy.cu). Targets must lie in [-1, V): the device does not check them (a
// target >= Vp would read out of bounds), so callers check the host copy first.
void crossentropy_forward_backward_cuda(float* losses, void* logits, const int* targets, int N, int V, int Vp,
                                        float label_smoothing, float dlogits_scale, DType act);

#ifdef __cplusplus
}
#endif
