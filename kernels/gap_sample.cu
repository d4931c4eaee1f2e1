#include "kernels/cuda_common.cuh"
// CUDA Gaussian mapping (see gap_sample.h), all fp32:
// forward:  gap_noise_kernel      z = Philox normals (the same numbers as the CPU's)
//           gap_trmm_add_kernel   y = t + mu + z L^T, on 64 x 64 tiles of [B, D], k over j <= i only
//           gap_normalize_kernel  norm = ||y||, x = y / norm (a warp per row)
// backward: gap_dy_kernel         dy = (dx - x (x . dx)) / norm (a warp per row)
//           gap_dmu_kernel        dmu += sum_b dy (a thread per column, b in order)
//           gap_dl_kernel         dL += lower(dy^T z), on the lower 64 x 64 tiles of [D, D]
// Every sum runs in a fixed order: no atomics, deterministic results.
#include <stdint.h>

#include "kernels/cuda_utils.cuh"
#include "kernels/gap_sample.h"
#include "kernels/philox.h"

// Full unrolling keeps the small per-thread arrays in registers on the GPU; the host compiler
// of the emulation has its own heuristics and does not know the pragma.
#ifdef TIPCAP_CUDA_EMU
#define UNROLL
#else
#define UNROLL _Pragma("unroll")
#endif

#define GAP_TILE 64     // output tile edge of the two products
#define GAP_TK 16       // k-chunk of the products
#define GAP_LD (GAP_TK + 1)
#define GAP_ROW_THREADS 256  // 8 rows (warps) per block in the row kernels
#define GAP_MAX_BLOCKS 1024  // grid cap of the grid-stride kernels: enough to fill a GPU
#define GAP_TRMM_SHARED_BYTES (2 * GAP_TILE * GAP_LD * sizeof(float))  // dynamic shared memory of the two products
#define GAP_DL_SHARED_BYTES (2 * GAP_TK * (GAP_TILE + 1) * sizeof(float))

__global__ void gap_noise_kernel(float* z, size_t n, uint64_t seed, uint64_t stream, uint64_t first) {
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x)
        z[idx] = philox_normal(seed, stream, first + idx);
}

// y[b,i] = t[b,i] + mu[i] + sum_{j <= i} L[i,j] z[b,j] for the tile (b0, i0); 16 x 16 threads,
// each 4 x 4 outputs strided by 16 (coalesced loads and stores along i).
__global__ void gap_trmm_add_kernel(float* y, const float* z, const float* t, const float* mu, const float* L, int B,
                                    int D) {
    DYNAMIC_SHARED(float, smem, GAP_TRMM_SHARED_BYTES);
    float* zs = smem;                        // [GAP_TILE, GAP_LD]: z[b0 + r, j0 + k]
    float* ls = smem + GAP_TILE * GAP_LD;    // [GAP_TILE, GAP_LD]: L[i0 + c, j0 + k], 0 above the diagonal
    int b0 = blockIdx.y * GAP_TILE, i0 = blockIdx.x * GAP_TILE;
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    float acc[4][4] = {{0}};
    int k_end = min(D, i0 + GAP_TILE);  // L[i, j] = 0 for j > i
    for (int j0 = 0; j0 < k_end; j0 += GAP_TK) {
        for (int idx = tid; idx < GAP_TILE * GAP_TK; idx += 256) {
            int r = idx / GAP_TK, k = idx % GAP_TK;
            int b = b0 + r, i = i0 + r, j = j0 + k;
            zs[r * GAP_LD + k] = b < B && j < D ? z[(size_t)b * D + j] : 0.0f;
            ls[r * GAP_LD + k] = i < D && j <= i ? L[(size_t)i * D + j] : 0.0f;
        }
        __syncthreads();
UNROLL
        for (int k = 0; k < GAP_TK; k++) {
            float a[4], w[4];
UNROLL
            for (int q = 0; q < 4; q++) {
                a[q] = zs[(ty + 16 * q) * GAP_LD + k];
                w[q] = ls[(tx + 16 * q) * GAP_LD + k];
            }
UNROLL
            for (int r = 0; r < 4; r++)
UNROLL
                for (int c = 0; c < 4; c++) acc[r][c] += a[r] * w[c];
        }
        __syncthreads();
    }
UNROLL
    for (int r = 0; r < 4; r++) {
        int b = b0 + ty + 16 * r;
        if (b >= B) continue;
UNROLL
        for (int c = 0; c < 4; c++) {
            int i = i0 + tx + 16 * c;
            if (i < D) y[(size_t)b * D + i] = t[(size_t)b * D + i] + mu[i] + acc[r][c];
        }
    }
}

// x[b,:] = y[b,:] / ||y[b,:]|| in place (x holds y); norm[b] = ||y[b,:]||. A warp per row,
// rows strided over the grid.
__global__ void gap_normalize_kernel(float* x, float* norm, int B, int D) {
    int lane = threadIdx.x % WARP_SIZE;
    int warps = gridDim.x * (blockDim.x / WARP_SIZE);
    for (int b = blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE; b < B; b += warps) {
        float* row = x + (size_t)b * D;
        float sq = 0.0f;
        for (int i = lane; i < D; i += WARP_SIZE) sq += row[i] * row[i];
        float n = sqrtf(warp_sum(sq));
        if (lane == 0) norm[b] = n;
        float inv = 1.0f / n;
        for (int i = lane; i < D; i += WARP_SIZE) row[i] *= inv;
    }
}

// dy[b,:] = (dx[b,:] - x[b,:] (x[b,:] . dx[b,:])) / norm[b]; a warp per row as above.
__global__ void gap_dy_kernel(float* dy, const float* dx, const float* x, const float* norm, int B, int D) {
    int lane = threadIdx.x % WARP_SIZE;
    int warps = gridDim.x * (blockDim.x / WARP_SIZE);
    for (int b = blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE; b < B; b += warps) {
        size_t off = (size_t)b * D;
        float dot = 0.0f;
        for (int i = lane; i < D; i += WARP_SIZE) dot += x[off + i] * dx[off + i];
        dot = warp_sum(dot);
        float inv = 1.0f / norm[b];
        for (int i = lane; i < D; i += WARP_SIZE) dy[off + i] = (dx[off + i] - x[off + i] * dot) * inv;
    }
}

// dmu[i] += sum_b dy[b,i], b in order.
__global__ void gap_dmu_kernel(float* dmu, const float* dy, int B, int D) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= D) return;
    float acc = 0.0f;
    for (int b = 0; b < B; b++) acc += dy[(size_t)b * D + i];
    dmu[i] += acc;
}

// dL[i,j] += sum_b dy[b,i] z[b,j] for j <= i, on the lower tile (ti, tj) (blocks in row-major
// order of the lower tiles); 16 x 16 threads, 4 x 4 outputs each, b in chunks of GAP_TK.
__global__ void gap_dl_kernel(float* dL, const float* dy, const float* z, int B, int D) {
    DYNAMIC_SHARED(float, smem, GAP_DL_SHARED_BYTES);
    float* ys = smem;                       // [GAP_TK, GAP_TILE + 1]: dy[b0 + k, i0 + r]
    float* zs = smem + GAP_TK * (GAP_TILE + 1);
    int t = blockIdx.x;
    int ti = (int)((sqrtf(8.0f * t + 1.0f) - 1.0f) * 0.5f);
    while ((ti + 1) * (ti + 2) / 2 <= t) ti++;
    while (ti * (ti + 1) / 2 > t) ti--;
    int tj = t - ti * (ti + 1) / 2;
    int i0 = ti * GAP_TILE, j0 = tj * GAP_TILE;
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    float acc[4][4] = {{0}};
    for (int b0 = 0; b0 < B; b0 += GAP_TK) {
        for (int idx = tid; idx < GAP_TK * GAP_TILE; idx += 256) {
            int k = idx / GAP_TILE, r = idx % GAP_TILE;
            int b = b0 + k;
            ys[k * (GAP_TILE + 1) + r] = b < B && i0 + r < D ? dy[(size_t)b * D + i0 + r] : 0.0f;
            zs[k * (GAP_TILE + 1) + r] = b < B && j0 + r < D ? z[(size_t)b * D + j0 + r] : 0.0f;
        }
        __syncthreads();
UNROLL
        for (int k = 0; k < GAP_TK; k++) {
            float a[4], w[4];
UNROLL
            for (int q = 0; q < 4; q++) {
                a[q] = ys[k * (GAP_TILE + 1) + ty + 16 * q];
                w[q] = zs[k * (GAP_TILE + 1) + tx + 16 * q];
            }
UNROLL
            for (int r = 0; r < 4; r++)
UNROLL
                for (int c = 0; c < 4; c++) acc[r][c] += a[r] * w[c];
        }
        __syncthreads();
    }
UNROLL
    for (int r = 0; r < 4; r++) {
        int i = i0 + ty + 16 * r;
UNROLL
        for (int c = 0; c < 4; c++) {
            int j = j0 + tx + 16 * c;
            if (i < D && j <= i) dL[(size_t)i * D + j] += acc[r][c];
        }
    }
}

void gap_sample_forward_cuda(float* x, float* z, float* norm, const float* t, const float* mu, const float* L, int B,
                             int D, uint64_t seed, uint64_t stream, uint64_t row0) {
    if (B <= 0 || D <= 0) return;
    size_t n = (size_t)B * D;
    LAUNCH(gap_noise_kernel, (int)grid_stride_blocks(CEIL_DIV(n, (size_t)256), GAP_MAX_BLOCKS), 256, 0, z, n, seed,
           stream, row0 * (uint64_t)D);
    cudaCheckLaunch();
    LAUNCH(gap_trmm_add_kernel, dim3(CEIL_DIV(D, GAP_TILE), CEIL_DIV(B, GAP_TILE)), dim3(16, 16),
           GAP_TRMM_SHARED_BYTES, x, z, t, mu, L, B, D);
    cudaCheckLaunch();
    int row_blocks = (int)grid_stride_blocks(CEIL_DIV(B, GAP_ROW_THREADS / WARP_SIZE), GAP_MAX_BLOCKS);
    LAUNCH(gap_normalize_kernel, row_blocks, GAP_ROW_THREADS, 0, x, norm, B, D);
    cudaCheckLaunch();
}

void gap_sample_backward_cuda(float* dt, float* dmu, float* dL, const float* dx, const float* x, const float* z,
                              const float* norm, int B, int D, float* dy_scratch) {
    if (B <= 0 || D <= 0) return;
    float* dy = dt ? dt : dy_scratch;
    int row_blocks = (int)grid_stride_blocks(CEIL_DIV(B, GAP_ROW_THREADS / WARP_SIZE), GAP_MAX_BLOCKS);
    LAUNCH(gap_dy_kernel, row_blocks, GAP_ROW_THREADS, 0, dy, dx, x, norm, B, D);
    cudaCheckLaunch();
    if (dmu) {
        LAUNCH(gap_dmu_kernel, CEIL_DIV(D, 256), 256, 0, dmu, dy, B, D);
        cudaCheckLaunch();
    }
    if (dL) {
        int tiles = CEIL_DIV(D, GAP_TILE);
        LAUNCH(gap_dl_kernel, tiles * (tiles + 1) / 2, dim3(16, 16), GAP_DL_SHARED_BYTES, dL,
               dy, z, B, D);
        cudaCheckLaunch();
    }
}
