// cuDNN's fused flash attention as an optional path of the CUDA backend (bf16 only): cuDNN 9
// through the header-only cudnn-frontend graph API (kernels/attention_cudnn.cpp). Built when nvcc,
// cuDNN and cudnn_frontend.h are found (scripts/install-deps.sh fetches the frontend's headers);
// chosen at run time with TIPCAP_ATTENTION=cudnn (default: tipcap's own kernels, attention.cu).
//
// Same contract as attention.h, with two limits: head sizes that are a multiple of 8 up to 128
// (other head sizes fall back to tipcap's kernels, in both directions alike), and key_len[b] >= 1
// (the model never masks every key of a row). The backward is cuDNN's deterministic algorithm.
// lse holds cuDNN's softmax statistics (natural-log logsumexp of the scaled scores), which only
// its own backward reads. A shape whose graph cuDNN refuses to build (no engine for that shape,
// GPU or version) runs on tipcap's kernels, said once in the log: a refused forward in both
// directions; a refused backward after cuDNN's forward recomputes tipcap's forward first, so that
// tipcap's backward reads its own output and statistics.
#pragma once
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// Entries of the CUDA backend's table (device buffers, act = bf16).
void attention_forward_backend_cudnn(Backend* be, void* out, float* lse, const void* qkv, const int* key_len,
                                     int B, int T, int C, int H, int causal);
void attention_backward_backend_cudnn(Backend* be, void* dqkv, const void* dout, const void* out, const float* lse,
                                      const void* qkv, const int* key_len, int B, int T, int C, int H, int causal);

#ifdef __cplusplus
}
#endif
