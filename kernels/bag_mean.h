// Mean of embedding-table rows per bag (the prompt entities, each a bag of word-piece ids):
//   out[i,:] = mean_{j in [offsets[i], offsets[i+1])} table[ids[j],:]   (an empty bag gives zeros)
// Shapes: out [n_bags,C]; table [V,C]; ids [offsets[n_bags]]; offsets [n_bags+1].
// Backward: dtable [V,C] += dout[i,:] / |bag i| for every id of bag i. Deterministic: the CPU adds
// in (bag, position) order; CUDA buckets by id on the host and sums each bucket in that order.
#pragma once
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// CPU reference (fp32) and its double instance. Ids outside [0, V) are fatal errors.
void bag_mean_forward_cpu(float* out, const float* table, const int* ids, const int* offsets, int n_bags, int C);
void bag_mean_backward_cpu(float* dtable, const float* dout, const int* ids, const int* offsets, int n_bags, int C,
                           int V);
void bag_mean_forward_cpu_f64(double* out, const double* table, const int* ids, const int* offsets, int n_bags,
                              int C);
void bag_mean_backward_cpu_f64(double* dtable, const double* dout, const int* ids, const int* offsets, int n_bags,
                               int C, int V);

// CUDA (kernels/bag_mean.cu): the forward. The backward is a row scatter (kernels/rowscatter.h).
void bag_mean_forward_cuda(void* out, const void* table, const int* ids, const int* offsets, int n_bags, int C,
                           DType act);

#ifdef __cplusplus
}
#endif
