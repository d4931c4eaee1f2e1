// Token + position embedding with an optional per-sample prefix (the K prefix tokens that the
// projector and the prompt-interaction module produce):
//   out[b,t,:] = (t < K ? prefix[b,t,:] : table[tokens[b,t-K],:]) + pos_table[pos_ids[t],:]
// Shapes: out [B,T,C]; prefix [B,prefix_T,C] (rows t < K used; NULL when K = 0); tokens [B,T-K]
// (-1: padding, embeds as a zero row); table [V,C]; pos_table [P,C]; pos_ids [T].
// Backward: dprefix rows t < K are overwritten with dout (others untouched; may be NULL);
// dtable [V,C] += dout rows by token; dpos_table [P,C] += dout summed over the batch by pos_ids
// (either may be NULL). Deterministic on both backends: the CPU adds in (b, t) order; CUDA buckets
// the rows by target on the host and sums each bucket in that same order (kernels/rowscatter.h).
#pragma once
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// CPU reference (fp32), and the same code in double for the gradient checks.
// Token ids outside [-1, V) and position ids outside [0, P) are fatal errors.
void embedding_forward_cpu(float* out, const float* prefix, int prefix_T, const int* tokens, const float* table,
                           const float* pos_table, const int* pos_ids, int B, int T, int K, int C);
void embedding_backward_cpu(float* dprefix, int prefix_T, float* dtable, float* dpos_table, const float* dout,
                            const int* tokens, const int* pos_ids, int B, int T, int K, int C, int V, int P);
void embedding_forward_cpu_f64(double* out, const double* prefix, int prefix_T, const int* tokens,
                               const double* table, const double* pos_table, const int* pos_ids, int B, int T,
                               int K, int C);
void embedding_backward_cpu_f64(double* dprefix, int prefix_T, double* dtable, double* dpos_table,
                                const double* dout, const int* tokens, const int* pos_ids, int B, int T, int K,
                                int C, int V, int P);

// CUDA (kernels/embedding.cu); buffers as in backend.h, `act` the storage type of act buffers.
void embedding_forward_cuda(void* out, const void* prefix, int prefix_T, const int* tokens, const void* table,
                            const void* pos_table, const int* pos_ids, int B, int T, int K, int C, DType act);
// The prefix rows of the backward (a strided copy); the CUDA backend adds the table and position
// gradients with row scatters planned on the host from tokens_host / pos_ids_host (rowscatter.h).
void embedding_backward_prefix_cuda(void* dprefix, int prefix_T, const void* dout, int B, int T, int K, int C,
                                    DType act);

#ifdef __cplusplus
}
#endif
