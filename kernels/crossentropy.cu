#include "kernels/cuda_common.cuh"

// CUDA: fused softmax + cross-entropy with ignore-index and label smoothing (see
// crossentropy.h). One block per row: each thread keeps an online (max, sum of exp) over its
// columns, and the block combines them in a fixed tree, so one pass reads the logits for the
// loss and a second writes the gradient.
#include "kernels/crossentropy.h"
#include "kernels/cuda_utils.cuh"

#define CROSSENTROPY_THREADS 256

// (m, s) <- the log-sum-exp pair of both: s is the sum of exp(z - m)
__device__ __forceinline__ void lse_combine(float& m, float& s, float m2, float s2) {
    float mx = fmaxf(m, m2);
    s = mx == -INFINITY ? 0.0f : s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

template <typename T>
__global__ void crossentropy_kernel(float* losses, T* logits, const int* targets, int V, int Vp,
                                    float label_smoothing, float dlogits_scale) {
    __shared__ float warp_m[32], warp_s[32];
    int row = blockIdx.x;
    T* z = logits + (size_t)row * Vp;
    int target = targets[row];
    if (target < 0) {  // the whole block takes this branch
        if (threadIdx.x == 0) losses[row] = 0.0f;
        if (dlogits_scale != 0.0f)
            for (int j = threadIdx.x; j < Vp; j += blockDim.x) z[j] = from_float<T>(0.0f);
        return;
    }
    // read before the barriers below, so before any thread overwrites the row
    float z_target = to_float(z[target]);
    float m = -INFINITY, s = 0.0f, zsum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float x = to_float(z[j]);
        zsum += x;
        if (x > m) {
            s = s * expf(m - x) + 1.0f;
            m = x;
        } else {
            s += expf(x - m);
        }
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        float s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        lse_combine(m, s, m2, s2);
    }
    int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE, n_warps = blockDim.x / WARP_SIZE;
    if (lane == 0) {
        warp_m[warp] = m;
        warp_s[warp] = s;
    }
    __syncthreads();
    m = -INFINITY;
    s = 0.0f;
    for (int w = 0; w < n_warps; w++) lse_combine(m, s, warp_m[w], warp_s[w]);
    zsum = block_sum(zsum);  // its barrier also orders the reads of z above before the writes below
    float lse = m + logf(s);
    float uniform = label_smoothing / (float)V;
    if (threadIdx.x == 0) losses[row] = lse - (1.0f - label_smoothing) * z_target - uniform * zsum;
    if (dlogits_scale == 0.0f) return;
    for (int j = threadIdx.x; j < Vp; j += blockDim.x) {
        float g = 0.0f;
        if (j < V) {
            float q = uniform + (j == target ? 1.0f - label_smoothing : 0.0f);
            g = (expf(to_float(z[j]) - lse) - q) * dlogits_scale;
        }
        z[j] = from_float<T>(g);
    }
}

void crossentropy_forward_backward_cuda(float* losses, void* logits, const int* targets, int N, int V, int Vp,
                                        float label_smoothing, float dlogits_scale, DType act) {
    if (N <= 0) return;
    if (act == DTYPE_BF16)
        LAUNCH(crossentropy_kernel<__nv_bfloat16>, N, CROSSENTROPY_THREADS, 0, losses, (__nv_bfloat16*)logits, targets,
               V, Vp, label_smoothing, dlogits_scale);
    else
        LAUNCH(crossentropy_kernel<float>, N, CROSSENTROPY_THREADS, 0, losses, (float*)logits, targets, V, Vp,
               label_smoothing, dlogits_scale);
    cudaCheckLaunch();
}
